//! Generates the command metadata table from `reference/commands.tsv` (Redis
//! 7.2's command table), so arity, flags, key specs and ACL categories are
//! never typed by hand. The documentation side of each command (summary,
//! history, argument tree, key-spec notes, whether Redis has a
//! command-specific key-extraction function) comes from the command's JSON
//! file in `reference/redis-7.2-commands/`, named in the TSV's last column.
//!
//! Commands newer than 7.2 that kvik also serves (hash field expiry from
//! Redis 7.4/8.0) are rows of `reference/commands-extra.tsv`, same columns,
//! with their JSON files in `reference/commands-extra/`.
//!
//! The output depends only on those files, in TSV row order, so builds are
//! deterministic.

use serde_json::Value;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn str_list(items: &[&str]) -> String {
    let mut s = String::from("&[");
    for i in items.iter().filter(|i| !i.is_empty()) {
        write!(s, "{:?},", i).unwrap();
    }
    s.push(']');
    s
}

fn args_of(call: &str) -> Vec<String> {
    let open = call.find('(').map(|i| i + 1).unwrap_or(call.len());
    let close = call.rfind(')').unwrap_or(call.len());
    if open >= close {
        return Vec::new();
    }
    call[open..close]
        .split(',')
        .map(|s| s.trim().to_string())
        .collect()
}

fn key_spec(spec: &str, notes: &str) -> String {
    let (flags, rest) = spec.split_once('@').expect("key spec has '@'");
    let (begin, find) = rest.split_once('>').expect("key spec has '>'");
    let flags: Vec<&str> = flags.split(',').collect();
    let begin = if begin.starts_with("index") {
        format!("BeginSearch::Index({})", args_of(begin)[0])
    } else if begin.starts_with("keyword") {
        let a = args_of(begin);
        format!("BeginSearch::Keyword({:?}, {})", a[0], a[1])
    } else {
        "BeginSearch::Unknown".to_string()
    };
    let find = if find.starts_with("range") {
        let a = args_of(find);
        format!(
            "FindKeys::Range {{ lastkey: {}, step: {}, limit: {} }}",
            a[0], a[1], a[2]
        )
    } else if find.starts_with("keynum") {
        let a = args_of(find);
        format!(
            "FindKeys::Keynum {{ keynumidx: {}, firstkey: {}, step: {} }}",
            a[0], a[1], a[2]
        )
    } else {
        "FindKeys::Unknown".to_string()
    };
    format!(
        "KeySpec {{ flags: {}, begin: {}, find: {}, notes: {:?} }}",
        str_list(&flags),
        begin,
        find,
        notes
    )
}

/// A string field of a JSON object, "" when absent. Redis treats empty and
/// missing strings alike (NULL in its generated tables).
fn jstr<'a>(v: &'a Value, field: &str) -> &'a str {
    v.get(field).and_then(Value::as_str).unwrap_or("")
}

fn jbool(v: &Value, field: &str) -> bool {
    v.get(field).and_then(Value::as_bool).unwrap_or(false)
}

/// Rust source for one argument (and, recursively, its sub-arguments),
/// normalised as Redis's `generate-command-code.py` does: lower-case name,
/// upper-case token.
fn arg_code(a: &Value, out: &mut String) {
    let kind = match jstr(a, "type") {
        "string" => "String",
        "integer" => "Integer",
        "double" => "Double",
        "key" => "Key",
        "pattern" => "Pattern",
        "unix-time" => "UnixTime",
        "pure-token" => "PureToken",
        "oneof" => "OneOf",
        "block" => "Block",
        other => panic!("unknown argument type {other:?}"),
    };
    let key_spec_index = a
        .get("key_spec_index")
        .and_then(Value::as_i64)
        .unwrap_or(-1);
    write!(
        out,
        "Arg {{ name: {:?}, kind: ArgType::{}, display: {:?}, key_spec_index: {}, token: {:?}, summary: {:?}, since: {:?}, deprecated_since: {:?}, optional: {}, multiple: {}, multiple_token: {}, args: &[",
        jstr(a, "name").to_ascii_lowercase(),
        kind,
        jstr(a, "display"),
        key_spec_index,
        jstr(a, "token").to_ascii_uppercase(),
        jstr(a, "summary"),
        jstr(a, "since"),
        jstr(a, "deprecated_since"),
        jbool(a, "optional"),
        jbool(a, "multiple"),
        jbool(a, "multiple_token"),
    )
    .unwrap();
    if let Some(subs) = a.get("arguments").and_then(Value::as_array) {
        for s in subs {
            arg_code(s, out);
            out.push(',');
        }
    }
    out.push_str("] }");
}

/// The command's object inside its JSON file (`{"NAME": {...}}`).
fn load_doc(dir: &Path, file: &str) -> Value {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let obj = v.as_object().expect("command JSON is an object");
    assert_eq!(obj.len(), 1, "{file}: one command per file");
    obj.values().next().cloned().unwrap()
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let tsv_path = manifest.join("../../reference/commands.tsv");
    let json_dir = manifest.join("../../reference/redis-7.2-commands");
    let extra_tsv_path = manifest.join("../../reference/commands-extra.tsv");
    let extra_json_dir = manifest.join("../../reference/commands-extra");
    for p in [&tsv_path, &json_dir, &extra_tsv_path, &extra_json_dir] {
        println!("cargo:rerun-if-changed={}", p.display());
    }
    let tsv = std::fs::read_to_string(&tsv_path).expect("reference/commands.tsv");
    let extra = std::fs::read_to_string(&extra_tsv_path).expect("reference/commands-extra.tsv");
    let rows = tsv
        .lines()
        .skip(1)
        .map(|l| (l, &json_dir))
        .chain(extra.lines().skip(1).map(|l| (l, &extra_json_dir)));
    let mut out = String::from(
        "// Generated by build.rs from reference/commands.tsv and commands-extra.tsv. Do not edit.\n",
    );
    out.push_str("pub static SPECS: &[Spec] = &[\n");
    for (line, dir) in rows {
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        assert!(f.len() >= 12, "bad row: {line}");
        let name = f[0].to_ascii_lowercase();
        let doc = load_doc(dir, f[11]);
        let flags: Vec<String> = f[4]
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| s.to_ascii_lowercase())
            .collect();
        let flag_refs: Vec<&str> = flags.iter().map(|s| s.as_str()).collect();
        let acl: Vec<&str> = f[5].split(',').collect();
        let json_specs = doc
            .get("key_specs")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let specs: Vec<String> = f[6]
            .split(';')
            .filter(|s| !s.is_empty())
            .enumerate()
            .map(|(i, s)| key_spec(s, json_specs.get(i).map_or("", |j| jstr(j, "notes"))))
            .collect();
        assert_eq!(
            specs.len(),
            json_specs.len(),
            "{name}: key specs of TSV and JSON"
        );
        let doc_flags: Vec<&str> = f[8].split(',').collect();
        let tips: Vec<String> = f[10].split(',').map(|t| t.to_ascii_lowercase()).collect();
        let tip_refs: Vec<&str> = tips.iter().map(|s| s.as_str()).collect();
        let mut history = String::from("&[");
        if let Some(h) = doc.get("history").and_then(Value::as_array) {
            for e in h {
                let e = e.as_array().expect("history entry is a pair");
                write!(
                    history,
                    "({:?}, {:?}),",
                    e[0].as_str().unwrap_or(""),
                    e[1].as_str().unwrap_or("")
                )
                .unwrap();
            }
        }
        history.push(']');
        let mut args = String::from("&[");
        if let Some(a) = doc.get("arguments").and_then(Value::as_array) {
            for x in a {
                arg_code(x, &mut args);
                args.push(',');
            }
        }
        args.push(']');
        writeln!(
            out,
            "    Spec {{ name: {:?}, group: {:?}, since: {:?}, arity: {}, flags: {}, acl: {}, key_specs: &[{}], complexity: {:?}, doc_flags: {}, deprecated_since: {:?}, tips: {}, source: {:?}, summary: {:?}, replaced_by: {:?}, history: {}, args: {}, getkeys_function: {} }},",
            name,
            f[1],
            f[2],
            f[3],
            str_list(&flag_refs),
            str_list(&acl),
            specs.join(", "),
            f[7],
            str_list(&doc_flags),
            f[9],
            str_list(&tip_refs),
            f[11],
            jstr(&doc, "summary"),
            jstr(&doc, "replaced_by"),
            history,
            args,
            doc.get("get_keys_function").is_some(),
        )
        .unwrap();
    }
    out.push_str("];\n");
    let dest = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("commands_gen.rs");
    std::fs::write(dest, out).unwrap();
}
