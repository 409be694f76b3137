//! Differential test: every script in `tests/diff/*.txt` is run against a
//! real redis-server (the oracle) and against kvik, and every reply is
//! compared exactly. The script format is documented in
//! `tests/diff/README.md`.
//!
//! Environment:
//! - `KVIK_REDIS_SERVER=/path/redis-server`: the oracle binary (else `PATH`).
//! - `KVIK_SKIP_DIFF=1`: when no redis-server exists, skip instead of failing.
//! - `KVIK_DIFF_SELF=1`: run the scripts against two redis-servers (checks
//!   the harness and the corpus, and finds nondeterministic lines).
//! - `KVIK_DIFF_FILTER=substr`: only run files whose name contains `substr`
//!   (files named in `tests/diff/SKIP` are still skipped unless
//!   `KVIK_DIFF_ALL=1`).
//! - `KVIK_DIFF_VERBOSE=1`: print every command and both replies.
//! - `KVIK_DIFF_MAX_DETAILS=N`: detailed mismatches shown per file (default 40).
//! - `KVIK_DIFF_DIR=path`: use another corpus directory.

mod support;

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use support::resp::{Reply, RespConn};
use support::script::{parse_script, split_args, CommandStep, Compare, Step};
use support::server::{KvikServer, RedisServer, ServerProcess};

/// Upper bound on SCAN calls made by one `@scan-all` command.
const MAX_SCAN_CALLS: usize = 10_000;

/// Longest `@sleep` accepted, so a typo cannot stall the run.
const MAX_SLEEP_MS: u64 = 10_000;

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| v == "1")
}

fn corpus_dir() -> PathBuf {
    match std::env::var_os("KVIK_DIFF_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/diff"),
    }
}

/// File names listed in `SKIP` (one per line, `#` comments allowed).
fn skip_list(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("SKIP"))
        .unwrap_or_default()
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// Every `*.txt` script in the corpus, sorted by name.
fn all_scripts(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read corpus dir {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    files
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// One side of the comparison: a server process and its label.
struct Side {
    label: &'static str,
    server: ServerProcess,
    start: fn() -> Result<ServerProcess, String>,
}

impl Side {
    fn new(label: &'static str, start: fn() -> Result<ServerProcess, String>) -> Side {
        let server = start().unwrap_or_else(|e| panic!("cannot start {label}: {e}"));
        Side {
            label,
            server,
            start,
        }
    }

    /// If the process died, say so (with its log) and start a new one so the
    /// remaining files still run.
    fn check_alive(&mut self) -> Option<String> {
        let err = self.server.check_running().err()?;
        let msg = format!(
            "{err}\n--- last lines of the {} log ---\n{}",
            self.label,
            self.server.log_tail(40)
        );
        match (self.start)() {
            Ok(server) => self.server = server,
            Err(e) => panic!("{msg}\n\nand it could not be restarted: {e}"),
        }
        Some(msg)
    }
}

fn start_redis() -> Result<ServerProcess, String> {
    ServerProcess::start("redis", &RedisServer::binary()?, &[])
}

fn start_redis_b() -> Result<ServerProcess, String> {
    ServerProcess::start("redis-b", &RedisServer::binary()?, &[])
}

fn start_kvik() -> Result<ServerProcess, String> {
    ServerProcess::start("kvik", &KvikServer::binary(), &[])
}

/// What happened in one script file.
#[derive(Default)]
struct Outcome {
    commands: usize,
    mismatches: Vec<String>,
    notes: Vec<String>,
}

/// A named connection to each server.
struct ConnPair {
    name: String,
    oracle: RespConn,
    candidate: RespConn,
}

fn open_pair(name: &str, oracle: &Side, candidate: &Side) -> Result<ConnPair, String> {
    let connect = |side: &Side| {
        side.server
            .connect()
            .map_err(|e| format!("cannot connect to {}: {e}", side.label))
    };
    Ok(ConnPair {
        name: name.to_string(),
        oracle: connect(oracle)?,
        candidate: connect(candidate)?,
    })
}

fn indent(text: &str, pad: &str) -> String {
    text.lines().collect::<Vec<_>>().join(&format!("\n{pad}"))
}

/// Run a SCAN-family command until its cursor returns to 0; the result is
/// the sorted, de-duplicated union of the elements (pairs for HSCAN/ZSCAN).
/// A reply that is not a well-formed SCAN reply is returned as is.
fn scan_all(conn: &mut RespConn, args: &[Vec<u8>]) -> io::Result<Reply> {
    let name = String::from_utf8_lossy(&args[0]).to_ascii_uppercase();
    let cursor_at = if name == "SCAN" { 1 } else { 2 };
    let pairs = name == "HSCAN" || name == "ZSCAN";
    let mut args = args.to_vec();
    let mut items = Vec::new();
    for _ in 0..MAX_SCAN_CALLS {
        let reply = conn.call(&args)?;
        let Reply::Array(parts) = &reply else {
            return Ok(reply);
        };
        let [Reply::Bulk(cursor), Reply::Array(batch)] = parts.as_slice() else {
            return Ok(reply);
        };
        items.extend(batch.iter().cloned());
        if cursor.as_slice() == b"0" {
            if pairs {
                if items.len() % 2 != 0 {
                    return Ok(Reply::Error(
                        b"HARNESS odd number of elements in a pair SCAN".to_vec(),
                    ));
                }
                items = items
                    .chunks(2)
                    .map(|kv| Reply::Array(kv.to_vec()))
                    .collect();
            }
            items.sort();
            items.dedup();
            return Ok(Reply::Array(items));
        }
        args[cursor_at] = cursor.clone();
    }
    Ok(Reply::Error(
        format!("HARNESS cursor not back to 0 after {MAX_SCAN_CALLS} calls").into_bytes(),
    ))
}

fn execute(conn: &mut RespConn, cmd: &CommandStep) -> io::Result<Reply> {
    if cmd.args.is_empty() {
        // `@read`: a reply the server pushes without a request.
        conn.read_reply()
    } else if cmd.scan_all {
        scan_all(conn, &cmd.args)
    } else {
        conn.call(&cmd.args)
    }
}

/// Compare two replies under `mode`; `Err` carries both replies rendered in
/// the compared form (sorted, shapes, ...) for the report.
fn compare(mode: &Compare, oracle: &Reply, candidate: &Reply) -> Result<(), (String, String)> {
    match mode {
        Compare::Skip | Compare::Differs(_) => Ok(()),
        Compare::Exact if oracle == candidate => Ok(()),
        Compare::Exact => Err((oracle.pretty(), candidate.pretty())),
        Compare::Sorted => {
            let (a, b) = (oracle.sorted_top_level(), candidate.sorted_top_level());
            if a == b {
                Ok(())
            } else {
                Err((a.pretty(), b.pretty()))
            }
        }
        Compare::Type => {
            let (a, b) = (oracle.shape(), candidate.shape());
            if a == b {
                Ok(())
            } else {
                Err((a, b))
            }
        }
        Compare::Range(lo, hi) => {
            let in_range = |r: &Reply| matches!(r, Reply::Integer(n) if (*lo..=*hi).contains(n));
            if in_range(oracle) && in_range(candidate) {
                return Ok(());
            }
            let show = |r: &Reply| {
                let verdict = if in_range(r) { "ok" } else { "NOT" };
                format!("{} ({verdict} an integer in {lo}..={hi})", r.pretty())
            };
            Err((show(oracle), show(candidate)))
        }
    }
}

struct Runner<'a> {
    oracle: &'a Side,
    candidate: &'a Side,
    verbose: bool,
}

impl Runner<'_> {
    fn run_file(&self, path: &Path, shown: &str) -> Outcome {
        let mut out = Outcome::default();
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                out.mismatches.push(format!("{shown}: cannot read: {e}"));
                return out;
            }
        };
        let steps = match parse_script(&text) {
            Ok(s) => s,
            Err((line, e)) => {
                out.mismatches
                    .push(format!("{shown}:{line}: script error: {e}"));
                return out;
            }
        };
        let mut conns = match self.fresh_default() {
            Ok(c) => vec![c],
            Err(e) => {
                out.mismatches.push(format!("{shown}: {e}"));
                return out;
            }
        };
        let mut current = 0;
        for located in steps {
            let at = format!("{shown}:{}", located.line);
            match located.step {
                Step::Sleep(ms) => thread::sleep(Duration::from_millis(ms.min(MAX_SLEEP_MS))),
                Step::Conn(name) => {
                    if let Some(i) = conns.iter().position(|c| c.name == name) {
                        current = i;
                    } else {
                        match open_pair(&name, self.oracle, self.candidate) {
                            Ok(pair) => {
                                conns.push(pair);
                                current = conns.len() - 1;
                            }
                            Err(e) => {
                                out.mismatches.push(format!("{at}: @conn {name}: {e}"));
                                return out;
                            }
                        }
                    }
                }
                Step::Read(n) => {
                    let read = CommandStep {
                        args: Vec::new(),
                        text: "@read".to_string(),
                        compare: Compare::Exact,
                        expect: None,
                        scan_all: false,
                    };
                    for _ in 0..n {
                        if !self.run_command(&at, &mut conns[current], &read, &mut out) {
                            out.mismatches.push(format!(
                                "{at}: connection unusable after an I/O error; rest of {shown} not run"
                            ));
                            return out;
                        }
                    }
                }
                Step::Command(cmd) => {
                    out.commands += 1;
                    let pair = &mut conns[current];
                    if !self.run_command(&at, pair, &cmd, &mut out) {
                        out.mismatches.push(format!(
                            "{at}: connection unusable after an I/O error; rest of {shown} not run"
                        ));
                        return out;
                    }
                }
            }
        }
        out
    }

    /// Connections for `@conn default`, after FLUSHALL and SELECT 0.
    fn fresh_default(&self) -> Result<ConnPair, String> {
        let mut pair = open_pair("default", self.oracle, self.candidate)?;
        for (label, conn) in [
            (self.oracle.label, &mut pair.oracle),
            (self.candidate.label, &mut pair.candidate),
        ] {
            for cmd in [&["FLUSHALL"][..], &["SELECT", "0"][..]] {
                match conn.call(cmd) {
                    Ok(Reply::Simple(s)) if s == b"OK" => {}
                    other => {
                        let got = match other {
                            Ok(reply) => reply.compact(),
                            Err(e) => format!("I/O error: {e}"),
                        };
                        return Err(format!(
                            "setup `{}` on {label} failed: {got} \
                             (every script starts with FLUSHALL and SELECT 0; file not run)",
                            cmd.join(" ")
                        ));
                    }
                }
            }
        }
        Ok(pair)
    }

    /// Run one command on both sides and record what differs. Returns false
    /// when a connection can no longer be trusted (I/O error).
    fn run_command(
        &self,
        at: &str,
        pair: &mut ConnPair,
        cmd: &CommandStep,
        out: &mut Outcome,
    ) -> bool {
        let conn_note = if pair.name == "default" {
            String::new()
        } else {
            format!(" [@conn {}]", pair.name)
        };
        let (ol, cl) = (self.oracle.label, self.candidate.label);
        let oracle = execute(&mut pair.oracle, cmd);
        let candidate = execute(&mut pair.candidate, cmd);
        if self.verbose {
            let show = |r: &io::Result<Reply>| match r {
                Ok(r) => indent(&r.pretty(), "         "),
                Err(e) => format!("I/O error: {e}"),
            };
            println!("{at}{conn_note}> {}", cmd.text);
            println!("  {ol:<6} {}", show(&oracle));
            println!("  {cl:<6} {}", show(&candidate));
        }
        let (oracle, candidate) = match (oracle, candidate) {
            (Ok(a), Ok(b)) => (a, b),
            (a, b) => {
                let show = |r: io::Result<Reply>| match r {
                    Ok(r) => r.compact(),
                    Err(e) => format!("I/O error: {e}"),
                };
                out.mismatches.push(format!(
                    "{at}{conn_note}: {}\n  {ol}: {}\n  {cl}: {}",
                    cmd.text,
                    show(a),
                    show(b)
                ));
                return false;
            }
        };
        if let Some(expected) = &cmd.expect {
            let got = oracle.compact();
            if &got != expected {
                out.mismatches.push(format!(
                    "{at}{conn_note}: {}\n  @expect {expected}\n  but {ol} replied {got}",
                    cmd.text
                ));
            }
        }
        if let Compare::Differs(reason) = &cmd.compare {
            out.notes.push(format!(
                "{at}: {} (differs in 7.0: {reason})\n  {ol}: {}\n  {cl}: {}",
                cmd.text,
                oracle.compact(),
                candidate.compact()
            ));
        }
        if let Err((a, b)) = compare(&cmd.compare, &oracle, &candidate) {
            let how = match &cmd.compare {
                Compare::Sorted => " (@sorted)",
                Compare::Type => " (@type: shapes shown)",
                Compare::Range(..) => " (@range)",
                _ => "",
            };
            let pad = " ".repeat(ol.len().max(cl.len()) + 4);
            out.mismatches.push(format!(
                "{at}{conn_note}: {}{how}\n  {ol}:{} {}\n  {cl}:{} {}",
                cmd.text,
                " ".repeat(cl.len().saturating_sub(ol.len())),
                indent(&a, &pad),
                " ".repeat(ol.len().saturating_sub(cl.len())),
                indent(&b, &pad),
            ));
        }
        true
    }
}

#[test]
fn differential() {
    if let Err(e) = RedisServer::binary() {
        if env_flag("KVIK_SKIP_DIFF") {
            println!("SKIPPED differential test: {e} (KVIK_SKIP_DIFF=1)");
            return;
        }
        panic!(
            "the differential test needs a real redis-server as its oracle: {e}\n\
             (set KVIK_SKIP_DIFF=1 to skip it where no redis-server is available)"
        );
    }
    let self_mode = env_flag("KVIK_DIFF_SELF");
    let verbose = env_flag("KVIK_DIFF_VERBOSE");
    let max_details: usize = std::env::var("KVIK_DIFF_MAX_DETAILS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let filter = std::env::var("KVIK_DIFF_FILTER").unwrap_or_default();
    let dir = corpus_dir();
    let skip = if env_flag("KVIK_DIFF_ALL") {
        Vec::new()
    } else {
        skip_list(&dir)
    };

    let mut files = Vec::new();
    let mut skipped = Vec::new();
    for path in all_scripts(&dir) {
        let name = file_name(&path);
        if !name.contains(&filter) {
            continue;
        }
        if skip.contains(&name) {
            skipped.push(name);
        } else {
            files.push(path);
        }
    }
    assert!(
        !files.is_empty(),
        "no script selected in {} (filter {filter:?}, skipped {skipped:?})",
        dir.display()
    );

    let mut oracle = Side::new("redis", start_redis);
    let mut candidate = if self_mode {
        Side::new("redis2", start_redis_b)
    } else {
        Side::new("kvik", start_kvik)
    };

    let started = Instant::now();
    let mut summary = String::new();
    let mut report = String::new();
    let mut notes = String::new();
    let (mut total_cmds, mut total_bad, mut bad_files) = (0, 0, 0);
    for path in &files {
        let shown = format!("tests/diff/{}", file_name(path));
        let mut outcome = Runner {
            oracle: &oracle,
            candidate: &candidate,
            verbose,
        }
        .run_file(path, &shown);
        for side in [&mut oracle, &mut candidate] {
            if let Some(crash) = side.check_alive() {
                outcome.mismatches.push(format!(
                    "{shown}: {} died while running this file: {crash}",
                    side.label
                ));
            }
        }
        total_cmds += outcome.commands;
        let _ = writeln!(
            summary,
            "  {shown}: {} commands, {} mismatches",
            outcome.commands,
            outcome.mismatches.len()
        );
        if !outcome.mismatches.is_empty() {
            bad_files += 1;
            total_bad += outcome.mismatches.len();
            let _ = writeln!(
                report,
                "\n===== {shown}: {} mismatches =====",
                outcome.mismatches.len()
            );
            for m in outcome.mismatches.iter().take(max_details) {
                let _ = writeln!(report, "{m}");
            }
            if outcome.mismatches.len() > max_details {
                let _ = writeln!(
                    report,
                    "... and {} more (raise KVIK_DIFF_MAX_DETAILS to see them)",
                    outcome.mismatches.len() - max_details
                );
            }
        }
        for n in &outcome.notes {
            let _ = writeln!(notes, "{n}");
        }
    }

    let mode = if self_mode {
        "redis vs redis (KVIK_DIFF_SELF=1)"
    } else {
        "redis vs kvik"
    };
    println!(
        "differential ({mode}): {} files, {total_cmds} commands in {:.1?}",
        files.len(),
        started.elapsed()
    );
    print!("{summary}");
    if !skipped.is_empty() {
        println!("skipped (tests/diff/SKIP): {}", skipped.join(", "));
    }
    if !notes.is_empty() {
        println!("\nnotes (@differs-7.0, not compared):\n{notes}");
    }
    if total_bad > 0 {
        panic!(
            "{total_bad} mismatches in {bad_files} of {} files ({mode}){report}\n\
             (KVIK_DIFF_FILTER=name runs one file; KVIK_DIFF_VERBOSE=1 prints every reply)",
            files.len()
        );
    }
}

/// Every script in the corpus parses (no servers needed), and `SKIP` only
/// names files that exist.
#[test]
fn corpus_scripts_parse() {
    let dir = corpus_dir();
    let scripts = all_scripts(&dir);
    assert!(!scripts.is_empty(), "no scripts in {}", dir.display());
    let names: Vec<String> = scripts.iter().map(|p| file_name(p)).collect();
    for skipped in skip_list(&dir) {
        assert!(
            names.contains(&skipped),
            "SKIP names a missing file: {skipped}"
        );
    }
    for path in &scripts {
        let text = std::fs::read_to_string(path).unwrap();
        if let Err((line, e)) = parse_script(&text) {
            panic!("{}:{line}: {e}", path.display());
        }
    }
}

#[test]
fn split_args_matches_redis_cli() {
    let split = |s: &str| split_args(s).unwrap();
    assert_eq!(
        split("set a b"),
        vec![b"set".to_vec(), b"a".to_vec(), b"b".to_vec()]
    );
    assert_eq!(split("  a   b  "), vec![b"a".to_vec(), b"b".to_vec()]);
    assert_eq!(split(r#"a "" ''"#), vec![b"a".to_vec(), vec![], vec![]]);
    assert_eq!(
        split(r#""x\n\r\t\"\\\x41\xzz" 'it\'s \n'"#),
        vec![b"x\n\r\t\"\\Axzz".to_vec(), b"it's \\n".to_vec()]
    );
    assert_eq!(split(r#"foo"bar baz""#), vec![b"foobar baz".to_vec()]);
    assert_eq!(split("\"\\xff\\x00\""), vec![vec![0xff, 0x00]]);
    assert!(split_args(r#""unterminated"#).is_err());
    assert!(split_args(r#""a"b"#).is_err());
    assert!(split_args("'a'b").is_err());
}

#[test]
fn parse_directives() {
    let steps = parse_script(
        "# comment\n\n@sorted\nKEYS *\n@sleep 5\n@conn other\n@expect :1\n@range 0 10\nTTL k\n",
    )
    .unwrap();
    assert_eq!(steps.len(), 4);
    let Step::Command(cmd) = &steps[3].step else {
        panic!("expected a command");
    };
    assert_eq!(steps[3].line, 9);
    assert_eq!(cmd.compare, Compare::Range(0, 10));
    assert_eq!(cmd.expect.as_deref(), Some(":1"));
    assert!(parse_script("@sorted\n@type\nGET a\n").is_err());
    assert!(parse_script("@sorted\n").is_err());
    assert!(parse_script("@bogus\nGET a\n").is_err());
    assert!(parse_script("@scan-all\nGET a\n").is_err());
}

#[test]
fn resp_parser_keeps_every_type() {
    let parse = |bytes: &[u8]| support::resp::read_reply(&mut &bytes[..], 0).unwrap();
    assert_eq!(parse(b"+OK\r\n").compact(), "+OK");
    assert_eq!(parse(b"-ERR x\r\n").compact(), "-ERR x");
    assert_eq!(parse(b":-5\r\n").compact(), ":-5");
    assert_eq!(parse(b"$3\r\na\nb\r\n").compact(), "\"a\\nb\"");
    assert_eq!(parse(b"$-1\r\n").compact(), "$-1");
    assert_eq!(parse(b"*-1\r\n").compact(), "*-1");
    assert_eq!(parse(b"*2\r\n:1\r\n$0\r\n\r\n").compact(), "[:1, \"\"]");
    assert_eq!(parse(b"%1\r\n+a\r\n#t\r\n").compact(), "{+a: #t}");
    assert_eq!(parse(b"~1\r\n,1.5\r\n").compact(), "~[,1.5]");
    assert_eq!(parse(b"_\r\n").compact(), "_");
    assert_eq!(parse(b"(123\r\n").compact(), "(123");
    assert_eq!(parse(b"=7\r\ntxt:abc\r\n").compact(), "=txt:\"abc\"");
    assert_eq!(parse(b"!3\r\nERR\r\n").compact(), "!\"ERR\"");
    assert_eq!(parse(b">1\r\n+x\r\n").compact(), ">[+x]");
    assert_eq!(parse(b"|1\r\n+k\r\n:1\r\n+v\r\n").compact(), "|{+k: :1} +v");
    let a = parse(b"*2\r\n$2\r\n10\r\n$1\r\n5\r\n");
    let b = parse(b"*2\r\n$2\r\n99\r\n$3\r\n123\r\n");
    assert_eq!(a.shape(), b.shape());
    assert_ne!(a, b);
    assert_ne!(parse(b"-ERR a\r\n").shape(), parse(b"-ERR b\r\n").shape());
    assert_ne!(parse(b"$-1\r\n"), parse(b"*-1\r\n"));
    assert_ne!(parse(b"+OK\r\n"), parse(b"$2\r\nOK\r\n"));
}
