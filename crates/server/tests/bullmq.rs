//! BullMQ end-to-end compatibility: runs `scripts/bullmq.sh` (the npm
//! package `bullmq`, pinned in tests/bullmq/package.json, driving workers,
//! delayed jobs, retries, priorities, job schedulers, the rate limiter,
//! flows, job removal, job operations, global concurrency, stalled jobs and
//! competing workers) against a real redis-server and against kvik, and
//! requires the two JSON summaries to be identical and every check to pass.
//!
//! Needs `node` and `npm` (the npm registry is used on the first run to
//! install tests/bullmq/node_modules). Run with
//! `cargo test -p kvik-server --test bullmq -- --nocapture` to see both
//! summaries.

mod support;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Instant;

use support::{KvikServer, RedisServer};

/// The repository's `scripts/bullmq.sh`.
fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/bullmq.sh")
}

/// Panics with an explanation unless `tool --version` runs.
fn require_tool(tool: &str) {
    match Command::new(tool).arg("--version").output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "`{tool} --version` failed ({}): the BullMQ test needs Node.js and npm\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!(
            "`{tool}` not found ({e}): the BullMQ test needs Node.js (>= 18) and npm on PATH; \
             install them (e.g. `apt-get install nodejs npm`) to run it"
        ),
    }
}

/// Result of one scenario run.
struct Run {
    /// The JSON summary printed on stdout.
    summary: String,
    /// Whether the script exited 0 (every check passed).
    passed: bool,
    output: Output,
}

fn run_scenario(label: &str, port: u16) -> Run {
    let started = Instant::now();
    let output = Command::new("bash")
        .arg(script())
        .arg("127.0.0.1")
        .arg(port.to_string())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script().display()));
    let summary = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!(
        "===== BullMQ summary against {label} ({}, {:.1} s) =====\n{summary}",
        output.status,
        started.elapsed().as_secs_f64()
    );
    eprintln!("----- {label} scenario log -----\n{stderr}");
    if output.status.code() == Some(2) || summary.trim().is_empty() {
        panic!(
            "scripts/bullmq.sh could not run against {label} ({}):\n{stderr}",
            output.status
        );
    }
    Run {
        passed: output.status.success(),
        summary,
        output,
    }
}

/// Splits a summary into its top-level sections: each part under `"parts"`
/// (named by the part) plus the remaining top-level fields (named `""`).
/// Relies on the fixed two-space indentation printed by e2e.mjs.
fn sections(summary: &str) -> Vec<(String, Vec<&str>)> {
    let mut out: Vec<(String, Vec<&str>)> = vec![(String::new(), Vec::new())];
    for line in summary.lines() {
        let part_header = line.starts_with("    \"") && !line.starts_with("     ");
        if part_header {
            let name = line.trim().split('"').nth(1).unwrap_or("").to_string();
            out.push((name, vec![line]));
        } else if line.starts_with("  \"") || line.starts_with("  }") || line == "}" {
            out[0].1.push(line);
        } else {
            out.last_mut().expect("non-empty").1.push(line);
        }
    }
    out
}

/// A per-section description of where two summaries differ.
fn describe_differences(redis: &str, kvik: &str) -> String {
    let (rs, ks) = (sections(redis), sections(kvik));
    let mut out = Vec::new();
    for (name, rlines) in &rs {
        let label = if name.is_empty() {
            "top level"
        } else {
            name.as_str()
        };
        let Some((_, klines)) = ks.iter().find(|(n, _)| n == name) else {
            out.push(format!("{label}: missing from kvik's summary"));
            continue;
        };
        if rlines == klines {
            continue;
        }
        // The part's "ok" flag differs whenever anything else does: report
        // the first other line that differs.
        let is_flag = |l: Option<&&str>| l.is_some_and(|l| l.trim_start().starts_with("\"ok\""));
        let i = (0..rlines.len().max(klines.len()))
            .find(|&i| rlines.get(i) != klines.get(i) && !is_flag(rlines.get(i)))
            .unwrap_or(0);
        out.push(format!(
            "{label}: first difference at line {} of the section\n  redis: {}\n  kvik:  {}",
            i + 1,
            rlines.get(i).map_or("<end>", |l| l.trim()),
            klines.get(i).map_or("<end>", |l| l.trim())
        ));
        // The part's failure list says why it failed on kvik.
        let failures: Vec<&str> = klines
            .iter()
            .skip_while(|l| !l.trim_start().starts_with("\"failures\""))
            .skip(1)
            .take_while(|l| !l.trim_start().starts_with(']'))
            .map(|l| l.trim())
            .collect();
        for f in failures.iter().take(5) {
            out.push(format!("    kvik failure: {f}"));
        }
    }
    out.join("\n")
}

#[test]
fn bullmq_scenario_matches_redis() {
    require_tool("node");
    require_tool("npm");

    let redis_run = {
        let redis = RedisServer::start(&[]);
        run_scenario("redis-server", redis.port())
    };
    assert!(
        redis_run.passed,
        "the BullMQ scenario fails against redis-server itself, so the scenario or the \
         environment is broken (see the summary above):\n{}",
        String::from_utf8_lossy(&redis_run.output.stderr)
    );

    let mut kvik = KvikServer::start(&[]);
    let kvik_run = run_scenario("kvik", kvik.port());
    let alive = kvik.check_running();

    assert!(
        alive.is_ok(),
        "kvik died during the BullMQ scenario: {}\n--- kvik log ---\n{}",
        alive.unwrap_err(),
        kvik.log_tail(60)
    );
    assert!(
        kvik_run.summary == redis_run.summary,
        "BullMQ summaries differ between redis-server and kvik:\n{}",
        describe_differences(&redis_run.summary, &kvik_run.summary)
    );
    assert!(
        kvik_run.passed,
        "BullMQ checks failed against kvik:\n{}",
        String::from_utf8_lossy(&kvik_run.output.stderr)
    );
}
