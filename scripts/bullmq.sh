#!/usr/bin/env bash
# Runs the BullMQ end-to-end scenario (tests/bullmq/e2e.mjs) against a
# Redis-compatible server and prints its JSON summary on stdout.
#
#   scripts/bullmq.sh [HOST] PORT
#   BULLMQ_HOST=127.0.0.1 BULLMQ_PORT=7000 scripts/bullmq.sh
#
# Installs the pinned npm dependencies into tests/bullmq/node_modules first
# when they are missing (npm ci from package-lock.json). Everything except
# the summary goes to stderr.
#
# Exit status: 0 when every check passed, 1 when a check failed, 2 when
# node/npm are missing, the install failed or the server is unreachable.
set -euo pipefail

dir="$(cd "$(dirname "$0")/../tests/bullmq" && pwd)"

host="${BULLMQ_HOST:-127.0.0.1}"
port="${BULLMQ_PORT:-}"
case $# in
  0) ;;
  1) port="$1" ;;
  2) host="$1"; port="$2" ;;
  *) echo "usage: $0 [HOST] PORT" >&2; exit 2 ;;
esac
if [ -z "$port" ]; then
  echo "usage: $0 [HOST] PORT (or set BULLMQ_HOST / BULLMQ_PORT)" >&2
  exit 2
fi

for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "bullmq.sh: '$tool' not found: install Node.js (>= 18) and npm to run the BullMQ tests" >&2
    exit 2
  fi
done

# Installed when any pinned package is missing or the lock file changed
# since the last install (npm keeps a copy in node_modules/.package-lock.json).
needs_install() {
  [ -f "$dir/node_modules/bullmq/package.json" ] || return 0
  [ -f "$dir/node_modules/ioredis/package.json" ] || return 0
  [ -f "$dir/node_modules/.package-lock.json" ] || return 0
  [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ] && return 0
  return 1
}

if needs_install; then
  echo "bullmq.sh: installing npm dependencies into $dir/node_modules" >&2
  # A lock directory keeps two concurrent runs from installing at once.
  lock="$dir/.install.lock"
  waited=0
  until mkdir "$lock" 2>/dev/null; do
    if [ "$waited" -ge 300 ]; then
      echo "bullmq.sh: $lock held for 5 minutes; remove it if no install is running" >&2
      exit 2
    fi
    sleep 1
    waited=$((waited + 1))
  done
  trap 'rmdir "$lock" 2>/dev/null || true' EXIT
  if needs_install; then
    (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) >&2 || {
      echo "bullmq.sh: npm ci failed in $dir" >&2
      exit 2
    }
  fi
  rmdir "$lock" 2>/dev/null || true
  trap - EXIT
fi

cd "$dir"
exec node e2e.mjs "$host" "$port"
