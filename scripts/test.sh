#!/usr/bin/env bash
# Runs kvik's whole test suite: unit and property tests of every crate,
# integration tests against the real kvik-server binary, and the
# differential tests against a real redis-server (installed here if
# missing, from the distribution's packages).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null 2>&1; then
  echo "redis-server not found: installing redis-server and redis-tools (needed as the differential oracle)"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq redis-server redis-tools >/dev/null
fi

# The BullMQ end-to-end test (crates/server/tests/bullmq.rs) drives the
# npm package `bullmq` with Node.js; scripts/bullmq.sh installs the pinned
# packages on first use.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "node/npm not found: installing nodejs and npm (needed by the BullMQ end-to-end test)"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq nodejs npm >/dev/null
fi

cargo test --workspace --all-targets "$@"
