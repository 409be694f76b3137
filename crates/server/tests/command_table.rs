//! Command metadata drift test: every command and subcommand the running
//! kvik-server registers must report, through `COMMAND INFO`, exactly the
//! metadata of Redis 7.2's command table in `reference/commands.tsv`
//! (arity, flags, first/last/step, ACL categories, tips, key specs).
//!
//! The TSV is parsed here on its own and the derived values (hidden flags,
//! `movablekeys`, the legacy key range, implied ACL categories) are
//! recomputed from Redis's rules, so a bug in the generated table or in the
//! COMMAND implementation cannot hide itself.
//!
//! A second test prints which commands of kvik's documented command list
//! are registered (a coverage report; it does not fail on gaps).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use support::{KvikServer, Reply, RespConn};

/// One row of `reference/commands.tsv`.
#[derive(Debug)]
struct Row {
    arity: i64,
    /// Upper case, as in the TSV.
    flags: Vec<String>,
    /// Upper case, without `@`.
    acl: Vec<String>,
    /// Short form `FLAGS@begin>find`, one per spec.
    key_specs: Vec<String>,
    /// Upper case, as in the TSV.
    tips: Vec<String>,
}

fn split_list(s: &str, sep: char) -> Vec<String> {
    s.split(sep)
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

/// The reference table by lower-case full name (`container|sub`).
fn reference() -> BTreeMap<String, Row> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../reference/commands.tsv");
    let text = std::fs::read_to_string(path).expect("reference/commands.tsv");
    // Commands newer than Redis 7.2 (hash field expiry) have their rows in
    // commands-extra.tsv, same columns.
    let extra_path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../reference/commands-extra.tsv"
    );
    let extra = std::fs::read_to_string(extra_path).expect("reference/commands-extra.tsv");
    let text = text
        + &extra
            .lines()
            .skip(1)
            .map(|l| format!("{l}\n"))
            .collect::<String>();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split('\t').collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("no column {name}"))
    };
    let (c_name, c_arity, c_flags, c_acl, c_specs, c_tips) = (
        col("command"),
        col("arity"),
        col("flags"),
        col("acl_categories"),
        col("key_specs"),
        col("command_tips"),
    );
    let mut map = BTreeMap::new();
    for line in lines {
        let f: Vec<&str> = line.split('\t').collect();
        let field = |i: usize| f.get(i).copied().unwrap_or("");
        map.insert(
            field(c_name).to_ascii_lowercase(),
            Row {
                arity: field(c_arity).parse().expect("arity"),
                flags: split_list(field(c_flags), ','),
                acl: split_list(field(c_acl), ','),
                key_specs: split_list(field(c_specs), ';'),
                tips: split_list(field(c_tips), ','),
            },
        );
    }
    map
}

/// A parsed short-form key spec.
#[derive(Debug, Clone, PartialEq)]
enum Begin {
    Index(i64),
    Keyword(String, i64),
    Unknown,
}

#[derive(Debug, Clone, PartialEq)]
enum Find {
    Range(i64, i64, i64),
    Keynum(i64, i64, i64),
    Unknown,
}

fn call_args(s: &str) -> Vec<String> {
    let inner = s
        .split_once('(')
        .map(|(_, r)| r.trim_end_matches(')'))
        .unwrap_or("");
    inner
        .split(',')
        .filter(|x| !x.is_empty())
        .map(|x| x.trim().to_string())
        .collect()
}

fn parse_spec(short: &str) -> (BTreeSet<String>, Begin, Find) {
    let (flags, rest) = short.split_once('@').expect("'@' in key spec");
    let (begin, find) = rest.split_once('>').expect("'>' in key spec");
    let flags = split_list(flags, ',').into_iter().collect();
    let n = |v: &Vec<String>, i: usize| v[i].parse::<i64>().expect("number in key spec");
    let b = call_args(begin);
    let begin = if begin.starts_with("index") {
        Begin::Index(n(&b, 0))
    } else if begin.starts_with("keyword") {
        Begin::Keyword(b[0].clone(), n(&b, 1))
    } else {
        Begin::Unknown
    };
    let k = call_args(find);
    let find = if find.starts_with("range") {
        Find::Range(n(&k, 0), n(&k, 1), n(&k, 2))
    } else if find.starts_with("keynum") {
        Find::Keynum(n(&k, 0), n(&k, 1), n(&k, 2))
    } else {
        Find::Unknown
    };
    (flags, begin, find)
}

/// Flags Redis never shows in `COMMAND INFO`.
const HIDDEN_FLAGS: &[&str] = &[
    "MAY_REPLICATE",
    "SENTINEL",
    "ONLY_SENTINEL",
    "PROTECTED",
    "TOUCHES_ARBITRARY_KEYS",
];

/// Legacy (first, last, step, movablekeys) per Redis's
/// `populateCommandLegacyRangeSpec`.
fn legacy(row: &Row) -> (i64, i64, i64, bool) {
    let specs: Vec<_> = row.key_specs.iter().map(|s| parse_spec(s)).collect();
    if specs.is_empty() {
        return (0, 0, 0, false);
    }
    if specs.len() == 1 {
        if let (flags, Begin::Index(pos), Find::Range(last, step, _)) = &specs[0] {
            let last = if *last >= 0 { last + pos } else { *last };
            return (*pos, last, *step, flags.contains("INCOMPLETE"));
        }
    }
    let (mut movable, mut first, mut last, mut prev) = (false, i64::MAX, 0u32, 0u32);
    for (flags, begin, find) in &specs {
        let (Begin::Index(pos), Find::Range(lastkey, step, _)) = (begin, find) else {
            movable = true;
            continue;
        };
        if *step != 1 || (prev != 0 && prev as i64 != pos - 1) {
            movable = true;
            continue;
        }
        movable |= flags.contains("INCOMPLETE");
        first = first.min(*pos);
        let abs = if *lastkey >= 0 {
            lastkey + pos
        } else {
            *lastkey
        };
        last = last.max(abs as i32 as u32);
        prev = last;
    }
    if first == i64::MAX {
        return (0, 0, 0, true);
    }
    (first, last as i32 as i64, 1, movable)
}

/// ACL categories including the implied ones (`setImplicitACLCategories`).
fn categories(row: &Row) -> BTreeSet<String> {
    let mut c: BTreeSet<String> = row.acl.iter().map(|a| a.to_ascii_lowercase()).collect();
    let has = |f: &str| row.flags.iter().any(|x| x == f);
    if has("WRITE") {
        c.insert("write".into());
    }
    if has("READONLY") && !c.contains("scripting") {
        c.insert("read".into());
    }
    if has("ADMIN") {
        c.insert("admin".into());
        c.insert("dangerous".into());
    }
    if has("PUBSUB") {
        c.insert("pubsub".into());
    }
    if has("FAST") {
        c.insert("fast".into());
    }
    if has("BLOCKING") {
        c.insert("blocking".into());
    }
    if !c.contains("fast") {
        c.insert("slow".into());
    }
    c
}

// --- reply helpers (RESP2 or RESP3) ---------------------------------------

fn text(r: &Reply) -> String {
    match r {
        Reply::Simple(b) | Reply::Bulk(b) | Reply::Error(b) => String::from_utf8_lossy(b).into(),
        other => panic!("expected a string, got {other:?}"),
    }
}

fn int(r: &Reply) -> i64 {
    match r {
        Reply::Integer(n) => *n,
        other => panic!("expected an integer, got {other:?}"),
    }
}

fn items(r: &Reply) -> Vec<Reply> {
    match r {
        Reply::Array(v) | Reply::Set(v) => v.clone(),
        other => panic!("expected an array, got {other:?}"),
    }
}

fn map(r: &Reply) -> BTreeMap<String, Reply> {
    match r {
        Reply::Map(pairs) => pairs.iter().map(|(k, v)| (text(k), v.clone())).collect(),
        Reply::Array(v) => v.chunks(2).map(|p| (text(&p[0]), p[1].clone())).collect(),
        other => panic!("expected a map, got {other:?}"),
    }
}

fn strings(r: &Reply) -> Vec<String> {
    items(r).iter().map(text).collect()
}

/// A key spec of a `COMMAND INFO` reply, in the parsed short form.
fn reply_spec(r: &Reply) -> (BTreeSet<String>, Begin, Find) {
    let m = map(r);
    let flags = strings(&m["flags"])
        .into_iter()
        .map(|f| f.to_ascii_uppercase())
        .collect();
    let b = map(&m["begin_search"]);
    let bs = map(&b["spec"]);
    let begin = match text(&b["type"]).as_str() {
        "index" => Begin::Index(int(&bs["index"])),
        "keyword" => Begin::Keyword(text(&bs["keyword"]), int(&bs["startfrom"])),
        "unknown" => Begin::Unknown,
        t => panic!("begin_search type {t}"),
    };
    let f = map(&m["find_keys"]);
    let fs = map(&f["spec"]);
    let find = match text(&f["type"]).as_str() {
        "range" => Find::Range(int(&fs["lastkey"]), int(&fs["keystep"]), int(&fs["limit"])),
        "keynum" => Find::Keynum(
            int(&fs["keynumidx"]),
            int(&fs["firstkey"]),
            int(&fs["keystep"]),
        ),
        "unknown" => Find::Unknown,
        t => panic!("find_keys type {t}"),
    };
    (flags, begin, find)
}

/// Compares one `COMMAND INFO` entry with the reference; returns the
/// differences found.
fn check_entry(entry: &Reply, refs: &BTreeMap<String, Row>, problems: &mut Vec<String>) {
    let e = items(entry);
    assert_eq!(e.len(), 10, "COMMAND INFO entry has 10 fields: {entry:?}");
    let name = text(&e[0]);
    let Some(row) = refs.get(&name) else {
        problems.push(format!(
            "{name}: registered but not in reference/commands.tsv"
        ));
        return;
    };
    let mut diff = |what: &str, got: String, want: String| {
        if got != want {
            problems.push(format!("{name}: {what}: kvik {got}, reference {want}"));
        }
    };
    diff("arity", int(&e[1]).to_string(), row.arity.to_string());

    let (first, last, step, movable) = legacy(row);
    let mut want_flags: BTreeSet<String> = row
        .flags
        .iter()
        .filter(|f| !HIDDEN_FLAGS.contains(&f.as_str()))
        .map(|f| f.to_ascii_lowercase())
        .collect();
    if movable {
        want_flags.insert("movablekeys".into());
    }
    let got_flags: BTreeSet<String> = strings(&e[2]).into_iter().collect();
    diff("flags", format!("{got_flags:?}"), format!("{want_flags:?}"));
    diff(
        "first/last/step",
        format!("{} {} {}", int(&e[3]), int(&e[4]), int(&e[5])),
        format!("{first} {last} {step}"),
    );

    let got_cats: BTreeSet<String> = strings(&e[6])
        .into_iter()
        .map(|c| c.trim_start_matches('@').to_string())
        .collect();
    diff(
        "ACL categories",
        format!("{got_cats:?}"),
        format!("{:?}", categories(row)),
    );

    let want_tips: Vec<String> = row.tips.iter().map(|t| t.to_ascii_lowercase()).collect();
    diff(
        "tips",
        format!("{:?}", strings(&e[7])),
        format!("{want_tips:?}"),
    );

    let got_specs: Vec<_> = items(&e[8]).iter().map(reply_spec).collect();
    let want_specs: Vec<_> = row.key_specs.iter().map(|s| parse_spec(s)).collect();
    diff(
        "key specs",
        format!("{got_specs:?}"),
        format!("{want_specs:?}"),
    );

    // Subcommands: a nested array of entries, or an empty set/array.
    for sub in items(&e[9]) {
        let sub_name = text(&items(&sub)[0]);
        if !sub_name.starts_with(&format!("{name}|")) {
            problems.push(format!("{name}: foreign subcommand {sub_name}"));
        }
        check_entry(&sub, refs, problems);
    }
}

fn connect(server: &KvikServer) -> RespConn {
    let mut conn = server.connect().expect("connect to kvik");
    // RESP3 when HELLO is served, so maps and sets are checked as such;
    // the helpers above accept both protocols.
    let _ = conn.call(&["HELLO", "3"]);
    conn
}

#[test]
fn registered_commands_match_reference_metadata() {
    let refs = reference();
    let server = KvikServer::start(&[]);
    let mut conn = connect(&server);

    let all = conn.call(&["COMMAND"]).expect("COMMAND");
    let entries = items(&all);
    let count = int(&conn.call(&["COMMAND", "COUNT"]).expect("COMMAND COUNT"));
    assert_eq!(
        entries.len() as i64,
        count,
        "COMMAND and COMMAND COUNT agree"
    );
    assert!(count > 0, "kvik registers at least COMMAND itself");

    let mut problems = Vec::new();
    let mut names = Vec::new();
    for entry in &entries {
        check_entry(entry, &refs, &mut problems);
        names.push(text(&items(entry)[0]));
        for sub in items(&items(entry)[9]) {
            names.push(text(&items(&sub)[0]));
        }
    }

    // COMMAND INFO by full name reports the same entries, and COMMAND LIST
    // the same names.
    for name in &names {
        let info = conn.call(&["COMMAND", "INFO", name]).expect("COMMAND INFO");
        let info = items(&info);
        assert_eq!(info.len(), 1);
        assert_eq!(text(&items(&info[0])[0]), *name, "COMMAND INFO {name}");
        check_entry(&info[0], &refs, &mut problems);
    }
    let mut listed = strings(&conn.call(&["COMMAND", "LIST"]).expect("COMMAND LIST"));
    listed.sort();
    names.sort();
    assert_eq!(listed, names, "COMMAND LIST lists what COMMAND describes");

    // Unknown names are nil, and nothing unregistered is advertised.
    let info = items(&conn.call(&["COMMAND", "INFO", "no-such-command"]).unwrap());
    assert!(matches!(info[0], Reply::Null | Reply::NullBulk), "{info:?}");

    assert!(
        problems.is_empty(),
        "{} metadata difference(s) from reference/commands.tsv:\n{}",
        problems.len(),
        problems.join("\n")
    );
    println!(
        "{} commands and subcommands checked against the reference",
        names.len()
    );
}

/// kvik's documented command list (README "Supported commands").
const DOCUMENTED: &[(&str, &[&str])] = &[
    (
        "connection",
        &[
            "ping",
            "echo",
            "quit",
            "select",
            "hello",
            "auth",
            "reset",
            "client|id",
            "client|setname",
            "client|getname",
            "client|list",
            "client|info",
            "client|kill",
            "client|setinfo",
            "client|reply",
            "client|no-evict",
            "client|no-touch",
            "client|pause",
            "client|unpause",
        ],
    ),
    (
        "server",
        &[
            "info",
            "dbsize",
            "flushdb",
            "flushall",
            "swapdb",
            "time",
            "config|get",
            "config|set",
            "config|resetstat",
            "config|rewrite",
            "command",
            "command|count",
            "command|list",
            "command|info",
            "command|docs",
            "command|getkeys",
            "command|getkeysandflags",
            "debug",
            "shutdown",
            "slowlog|get",
            "slowlog|len",
            "slowlog|reset",
            "latency|latest",
            "latency|history",
            "latency|reset",
            "monitor",
        ],
    ),
    (
        "generic",
        &[
            "del",
            "unlink",
            "exists",
            "type",
            "rename",
            "renamenx",
            "copy",
            "move",
            "keys",
            "scan",
            "randomkey",
            "touch",
            "object|encoding",
            "object|freq",
            "object|idletime",
            "object|refcount",
            "expire",
            "pexpire",
            "expireat",
            "pexpireat",
            "ttl",
            "pttl",
            "expiretime",
            "pexpiretime",
            "persist",
        ],
    ),
    (
        "string",
        &[
            "set",
            "get",
            "getex",
            "getdel",
            "getset",
            "mget",
            "mset",
            "msetnx",
            "setnx",
            "setex",
            "psetex",
            "append",
            "strlen",
            "incr",
            "decr",
            "incrby",
            "decrby",
            "incrbyfloat",
            "getrange",
            "setrange",
            "substr",
            "lcs",
        ],
    ),
    (
        "bitmap",
        &[
            "setbit",
            "getbit",
            "bitcount",
            "bitpos",
            "bitop",
            "bitfield",
            "bitfield_ro",
        ],
    ),
];

#[test]
fn coverage_report() {
    let refs = reference();
    let server = KvikServer::start(&[]);
    let mut conn = connect(&server);
    let registered: BTreeSet<String> =
        strings(&conn.call(&["COMMAND", "LIST"]).expect("COMMAND LIST"))
            .into_iter()
            .collect();

    let (mut have, mut total) = (0, 0);
    println!("coverage of the documented command list:");
    for (family, names) in DOCUMENTED {
        let missing: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| !registered.contains(*n))
            .collect();
        for n in *names {
            assert!(refs.contains_key(*n), "{n} is not a Redis 7.2 command");
        }
        have += names.len() - missing.len();
        total += names.len();
        println!(
            "  {family:<10} {:>3}/{:<3} missing: {}",
            names.len() - missing.len(),
            names.len(),
            if missing.is_empty() {
                "-".to_string()
            } else {
                missing.join(" ")
            }
        );
    }
    let extra: Vec<&String> = registered
        .iter()
        .filter(|n| {
            // Containers count through their subcommands.
            let container = format!("{n}|");
            !DOCUMENTED.iter().any(|(_, ns)| {
                ns.iter()
                    .any(|d| *d == n.as_str() || d.starts_with(&container))
            })
        })
        .collect();
    println!("  total      {have}/{total}");
    if !extra.is_empty() {
        println!(
            "  registered beyond the list: {}",
            extra
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
}
