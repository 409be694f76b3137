//! The COMMAND family: COMMAND, COMMAND COUNT / LIST / INFO / DOCS /
//! GETKEYS / GETKEYSANDFLAGS / HELP.
//!
//! Everything is served from the `&'static` metadata generated at build time
//! (`commands::spec`), but only for commands kvik actually registered
//! (`srv.commands`): kvik never advertises what it does not serve. Redis
//! lists commands in hash-table order; kvik lists them sorted by name, which
//! is one of the orders Redis could produce and keeps replies stable.
//!
//! The derived parts of `COMMAND INFO` follow Redis's start-up code: the
//! legacy first/last/step triple and the `movablekeys` flag come from the
//! key specs as in `populateCommandLegacyRangeSpec`, and the ACL categories
//! implied by flags are added as in `setImplicitACLCategories`.
//!
//! Public helpers for other families: [`acl_categories`] / [`ACL_CATEGORIES`]
//! (ACL CAT), [`get_keys`] (key extraction with flags, as Redis's
//! `getKeysFromCommandWithSpecs`), [`lookup_by_fullname`].

use crate::cmd::is;
use crate::commands::spec::{Arg, ArgType, BeginSearch, FindKeys, KeySpec, Spec};
use crate::dispatch::{err, Command, CommandTable, Ctx};
use kvik_protocol::ReplyBuf;

/// Registers the family.
pub fn register(t: &mut CommandTable) {
    t.add("command", command_root);
    t.add("command|count", command_count);
    t.add("command|list", command_list);
    t.add("command|info", command_info);
    t.add("command|docs", command_docs);
    t.add("command|getkeys", command_getkeys);
    t.add("command|getkeysandflags", command_getkeysandflags);
    t.add("command|help", command_help);
}

// ---------------------------------------------------------------------------
// Flags and categories
// ---------------------------------------------------------------------------

/// Command flags in the order `COMMAND INFO` lists them (Redis's
/// `addReplyFlagsForCommand`). `may_replicate`, `sentinel`,
/// `only_sentinel`, `protected` and `touches_arbitrary_keys` are hidden on
/// purpose, as in Redis; `movablekeys` is derived from the key specs.
const SHOWN_FLAGS: &[&str] = &[
    "write",
    "readonly",
    "denyoom",
    "module",
    "admin",
    "pubsub",
    "noscript",
    "blocking",
    "loading",
    "stale",
    "skip_monitor",
    "skip_slowlog",
    "asking",
    "fast",
    "no_auth",
    "no_mandatory_keys",
    "no_async_loading",
    "no_multi",
    "movablekeys",
    "allow_busy",
];

/// ACL categories in Redis's order (`ACLCommandCategories`), lower case
/// without the `@`.
pub const ACL_CATEGORIES: &[&str] = &[
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

fn category_bit(name: &str) -> u32 {
    ACL_CATEGORIES
        .iter()
        .position(|c| c.eq_ignore_ascii_case(name))
        .map_or(0, |i| 1 << i)
}

/// The command's ACL categories as a bit set over [`ACL_CATEGORIES`]: the
/// declared ones plus those Redis implies from flags (`@write`, `@read`
/// unless scripting, `@admin`+`@dangerous`, `@pubsub`, `@fast`,
/// `@blocking`, and `@slow` for everything not fast).
pub fn acl_category_bits(spec: &Spec) -> u32 {
    let mut bits = spec.acl.iter().fold(0, |b, c| b | category_bit(c));
    let bit = category_bit;
    if spec.has_flag("write") {
        bits |= bit("write");
    }
    if spec.has_flag("readonly") && bits & bit("scripting") == 0 {
        bits |= bit("read");
    }
    if spec.has_flag("admin") {
        bits |= bit("admin") | bit("dangerous");
    }
    if spec.has_flag("pubsub") {
        bits |= bit("pubsub");
    }
    if spec.has_flag("fast") {
        bits |= bit("fast");
    }
    if spec.has_flag("blocking") {
        bits |= bit("blocking");
    }
    if bits & bit("fast") == 0 {
        bits |= bit("slow");
    }
    bits
}

/// The command's ACL categories (declared and implied), in Redis's order,
/// lower case without `@`.
pub fn acl_categories(spec: &Spec) -> impl Iterator<Item = &'static str> {
    let bits = acl_category_bits(spec);
    ACL_CATEGORIES
        .iter()
        .enumerate()
        .filter(move |(i, _)| bits & (1 << i) != 0)
        .map(|(_, c)| *c)
}

/// Key-spec flags as bits, in the order Redis replies with them
/// (`addReplyFlagsForKeyArgs`).
pub mod key_flags {
    /// `RO`
    pub const RO: u16 = 1 << 0;
    /// `RW`
    pub const RW: u16 = 1 << 1;
    /// `OW`
    pub const OW: u16 = 1 << 2;
    /// `RM`
    pub const RM: u16 = 1 << 3;
    /// `access`
    pub const ACCESS: u16 = 1 << 4;
    /// `update`
    pub const UPDATE: u16 = 1 << 5;
    /// `insert`
    pub const INSERT: u16 = 1 << 6;
    /// `delete`
    pub const DELETE: u16 = 1 << 7;
    /// `not_key`
    pub const NOT_KEY: u16 = 1 << 8;
    /// `incomplete`
    pub const INCOMPLETE: u16 = 1 << 9;
    /// `variable_flags`
    pub const VARIABLE_FLAGS: u16 = 1 << 10;

    /// (spec name as in the JSON, name as replied)
    pub(super) const NAMES: &[(&str, &str)] = &[
        ("RO", "RO"),
        ("RW", "RW"),
        ("OW", "OW"),
        ("RM", "RM"),
        ("ACCESS", "access"),
        ("UPDATE", "update"),
        ("INSERT", "insert"),
        ("DELETE", "delete"),
        ("NOT_KEY", "not_key"),
        ("INCOMPLETE", "incomplete"),
        ("VARIABLE_FLAGS", "variable_flags"),
    ];
}

/// A key spec's flags as bits.
pub fn key_spec_bits(ks: &KeySpec) -> u16 {
    ks.flags.iter().fold(0, |b, f| {
        b | key_flags::NAMES
            .iter()
            .position(|(n, _)| n.eq_ignore_ascii_case(f))
            .map_or(0, |i| 1 << i)
    })
}

/// Writes key flags as Redis does: a set of status strings in table order.
fn reply_key_flags(out: &mut ReplyBuf, bits: u16) {
    out.set(bits.count_ones() as usize);
    for (i, (_, shown)) in key_flags::NAMES.iter().enumerate() {
        if bits & (1 << i) != 0 {
            out.simple(shown);
        }
    }
}

/// The legacy (first key, last key, step) triple and whether the command
/// has movable keys, derived from the key specs exactly as Redis's
/// `populateCommandLegacyRangeSpec` does. `last` is absolute when
/// non-negative, as `COMMAND INFO` reports it.
pub fn legacy_range(spec: &Spec) -> (i32, i32, i32, bool) {
    let specs = spec.key_specs;
    if specs.is_empty() {
        return (0, 0, 0, false);
    }
    if let [ks] = specs {
        if let (BeginSearch::Index(pos), FindKeys::Range { lastkey, step, .. }) =
            (ks.begin, ks.find)
        {
            let movable = key_spec_bits(ks) & key_flags::INCOMPLETE != 0;
            let last = if lastkey >= 0 { lastkey + pos } else { lastkey };
            return (pos, last, step, movable);
        }
    }
    let mut movable = false;
    let mut first = i32::MAX;
    // Redis compares `lastkey` as unsigned so that a negative (relative to
    // the end) index wins over any absolute one.
    let mut last: i32 = 0;
    let mut prev_last: i32 = 0;
    for ks in specs {
        let (BeginSearch::Index(pos), FindKeys::Range { lastkey, step, .. }) = (ks.begin, ks.find)
        else {
            movable = true;
            continue;
        };
        if step != 1 || (prev_last != 0 && prev_last != pos - 1) {
            movable = true;
            continue;
        }
        if key_spec_bits(ks) & key_flags::INCOMPLETE != 0 {
            movable = true;
        }
        first = first.min(pos);
        let abs = if lastkey >= 0 { lastkey + pos } else { lastkey };
        if (abs as u32) > (last as u32) {
            last = abs;
        }
        prev_last = last;
    }
    if first == i32::MAX {
        return (0, 0, 0, true);
    }
    (first, last, 1, movable)
}

// ---------------------------------------------------------------------------
// Lookup
// ---------------------------------------------------------------------------

/// A registered subcommand of `cmd` by (any case) name.
fn subcommand<'c>(cmd: &'c Command, name: &[u8]) -> Option<&'c Command> {
    let mut buf = [0u8; 32];
    cmd.subcommands
        .get(crate::util::lower_into(name, &mut buf)?)
}

/// Looks up `name` or `container|sub` as `COMMAND INFO/DOCS` do (Redis's
/// `lookupCommandBySds`): one level of subcommands at most, and a name with
/// a `|` part only matches a registered subcommand.
pub fn lookup_by_fullname<'t>(table: &'t CommandTable, name: &[u8]) -> Option<&'t Command> {
    if name.is_empty() {
        return None;
    }
    let mut parts = name.split(|&c| c == b'|');
    let base = parts.next()?;
    let sub = parts.next();
    if parts.next().is_some() {
        return None;
    }
    let cmd = table.get(base)?;
    match sub {
        None => Some(cmd),
        Some(s) => subcommand(cmd, s),
    }
}

/// Registered commands sorted by name.
fn sorted_commands(table: &CommandTable) -> Vec<&Command> {
    let mut v: Vec<&Command> = table.iter().collect();
    v.sort_unstable_by_key(|c| c.spec.name);
    v
}

/// Registered subcommands of `cmd` sorted by name.
fn sorted_subcommands(cmd: &Command) -> Vec<&Command> {
    let mut v: Vec<&Command> = cmd.subcommands.values().collect();
    v.sort_unstable_by_key(|c| c.spec.name);
    v
}

// ---------------------------------------------------------------------------
// COMMAND INFO entries
// ---------------------------------------------------------------------------

fn reply_key_specs(out: &mut ReplyBuf, spec: &Spec) {
    out.set(spec.key_specs.len());
    for ks in spec.key_specs {
        out.map(if ks.notes.is_empty() { 3 } else { 4 });
        if !ks.notes.is_empty() {
            out.bulk(b"notes");
            out.bulk(ks.notes.as_bytes());
        }
        out.bulk(b"flags");
        reply_key_flags(out, key_spec_bits(ks));
        out.bulk(b"begin_search");
        out.map(2);
        match ks.begin {
            BeginSearch::Index(pos) => {
                out.bulk(b"type");
                out.bulk(b"index");
                out.bulk(b"spec");
                out.map(1);
                out.bulk(b"index");
                out.int(pos as i64);
            }
            BeginSearch::Keyword(kw, startfrom) => {
                out.bulk(b"type");
                out.bulk(b"keyword");
                out.bulk(b"spec");
                out.map(2);
                out.bulk(b"keyword");
                out.bulk(kw.as_bytes());
                out.bulk(b"startfrom");
                out.int(startfrom as i64);
            }
            BeginSearch::Unknown => {
                out.bulk(b"type");
                out.bulk(b"unknown");
                out.bulk(b"spec");
                out.map(0);
            }
        }
        out.bulk(b"find_keys");
        out.map(2);
        match ks.find {
            FindKeys::Range {
                lastkey,
                step,
                limit,
            } => {
                out.bulk(b"type");
                out.bulk(b"range");
                out.bulk(b"spec");
                out.map(3);
                out.bulk(b"lastkey");
                out.int(lastkey as i64);
                out.bulk(b"keystep");
                out.int(step as i64);
                out.bulk(b"limit");
                out.int(limit as i64);
            }
            FindKeys::Keynum {
                keynumidx,
                firstkey,
                step,
            } => {
                out.bulk(b"type");
                out.bulk(b"keynum");
                out.bulk(b"spec");
                out.map(3);
                out.bulk(b"keynumidx");
                out.int(keynumidx as i64);
                out.bulk(b"firstkey");
                out.int(firstkey as i64);
                out.bulk(b"keystep");
                out.int(step as i64);
            }
            FindKeys::Unknown => {
                out.bulk(b"type");
                out.bulk(b"unknown");
                out.bulk(b"spec");
                out.map(0);
            }
        }
    }
}

/// Writes one `COMMAND INFO` entry (Redis's `addReplyCommandInfo`).
pub fn reply_info(out: &mut ReplyBuf, cmd: &Command) {
    let spec = cmd.spec;
    let (first, last, step, movable) = legacy_range(spec);
    out.array(10);
    out.bulk(spec.name.as_bytes());
    out.int(spec.arity as i64);
    let shown: Vec<&str> = SHOWN_FLAGS
        .iter()
        .copied()
        .filter(|&f| (f == "movablekeys" && movable) || spec.has_flag(f))
        .collect();
    out.set(shown.len());
    for f in shown {
        out.simple(f);
    }
    out.int(first as i64);
    out.int(last as i64);
    out.int(step as i64);
    let bits = acl_category_bits(spec);
    out.set(bits.count_ones() as usize);
    for (i, c) in ACL_CATEGORIES.iter().enumerate() {
        if bits & (1 << i) != 0 {
            out.simple(&format!("@{c}"));
        }
    }
    out.set(spec.tips.len());
    for t in spec.tips {
        out.bulk(t.as_bytes());
    }
    reply_key_specs(out, spec);
    if cmd.subcommands.is_empty() {
        out.set(0);
    } else {
        let subs = sorted_subcommands(cmd);
        out.array(subs.len());
        for s in subs {
            reply_info(out, s);
        }
    }
}

// ---------------------------------------------------------------------------
// COMMAND DOCS entries
// ---------------------------------------------------------------------------

fn reply_args(out: &mut ReplyBuf, args: &[Arg]) {
    out.array(args.len());
    for a in args {
        let nested = matches!(a.kind, ArgType::OneOf | ArgType::Block);
        let flags = [
            (a.optional, "optional"),
            (a.multiple, "multiple"),
            (a.multiple_token, "multiple_token"),
        ];
        let nflags = flags.iter().filter(|(on, _)| *on).count();
        let strs = [a.token, a.summary, a.since, a.deprecated_since];
        let n = 2
            + usize::from(a.key_spec_index != -1)
            + strs.iter().filter(|s| !s.is_empty()).count()
            + usize::from(nflags > 0)
            + 1; // display_text, or the nested arguments
        out.map(n);
        out.bulk(b"name");
        out.bulk(a.name.as_bytes());
        out.bulk(b"type");
        out.bulk(a.kind.as_str().as_bytes());
        if !nested {
            out.bulk(b"display_text");
            let text = if a.display.is_empty() {
                a.name
            } else {
                a.display
            };
            out.bulk(text.as_bytes());
        }
        if a.key_spec_index != -1 {
            out.bulk(b"key_spec_index");
            out.int(a.key_spec_index as i64);
        }
        for (label, v) in [
            ("token", a.token),
            ("summary", a.summary),
            ("since", a.since),
            ("deprecated_since", a.deprecated_since),
        ] {
            if !v.is_empty() {
                out.bulk(label.as_bytes());
                out.bulk(v.as_bytes());
            }
        }
        if nflags > 0 {
            out.bulk(b"flags");
            out.set(nflags);
            for (_, f) in flags.iter().filter(|(on, _)| *on) {
                out.simple(f);
            }
        }
        if nested {
            out.bulk(b"arguments");
            reply_args(out, a.args);
        }
    }
}

/// Writes one `COMMAND DOCS` map (Redis's `addReplyCommandDocs`).
pub fn reply_docs(out: &mut ReplyBuf, cmd: &Command) {
    let spec = cmd.spec;
    let doc_flags: Vec<&str> = ["deprecated", "syscmd"]
        .into_iter()
        .filter(|f| spec.doc_flags.iter().any(|d| d.eq_ignore_ascii_case(f)))
        .collect();
    let strs = [
        spec.summary,
        spec.since,
        spec.complexity,
        spec.deprecated_since,
        spec.replaced_by,
    ];
    let n = 1
        + strs.iter().filter(|s| !s.is_empty()).count()
        + usize::from(!doc_flags.is_empty())
        + usize::from(!spec.history.is_empty())
        + usize::from(!spec.args.is_empty())
        + usize::from(!cmd.subcommands.is_empty());
    out.map(n);
    for (label, v) in [("summary", spec.summary), ("since", spec.since)] {
        if !v.is_empty() {
            out.bulk(label.as_bytes());
            out.bulk(v.as_bytes());
        }
    }
    out.bulk(b"group");
    // Redis spells the group `sorted-set` where its JSON says `sorted_set`.
    out.bulk(spec.group.replace('_', "-").as_bytes());
    if !spec.complexity.is_empty() {
        out.bulk(b"complexity");
        out.bulk(spec.complexity.as_bytes());
    }
    if !doc_flags.is_empty() {
        out.bulk(b"doc_flags");
        out.set(doc_flags.len());
        for f in &doc_flags {
            out.simple(f);
        }
    }
    for (label, v) in [
        ("deprecated_since", spec.deprecated_since),
        ("replaced_by", spec.replaced_by),
    ] {
        if !v.is_empty() {
            out.bulk(label.as_bytes());
            out.bulk(v.as_bytes());
        }
    }
    if !spec.history.is_empty() {
        out.bulk(b"history");
        out.set(spec.history.len());
        for (version, change) in spec.history {
            out.array(2);
            out.bulk(version.as_bytes());
            out.bulk(change.as_bytes());
        }
    }
    if !spec.args.is_empty() {
        out.bulk(b"arguments");
        reply_args(out, spec.args);
    }
    if !cmd.subcommands.is_empty() {
        out.bulk(b"subcommands");
        let subs = sorted_subcommands(cmd);
        out.map(subs.len());
        for s in subs {
            out.bulk(s.spec.name.as_bytes());
            reply_docs(out, s);
        }
    }
}

// ---------------------------------------------------------------------------
// Key extraction (COMMAND GETKEYS)
// ---------------------------------------------------------------------------

/// One key found in a command line: its argument index and key flags
/// (bits of [`key_flags`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRef {
    /// Argument index (0 is the command name).
    pub pos: usize,
    /// Key flags.
    pub flags: u16,
}

/// Keys from the key specs, as Redis's `getKeysUsingKeySpecs`. None when a
/// spec cannot be applied to these arguments (unknown or incomplete spec,
/// bad key count, keys out of range): the caller then falls back to the
/// command-specific extraction.
pub fn keys_from_specs(spec: &Spec, args: &[&[u8]]) -> Option<Vec<KeyRef>> {
    let argc = args.len() as i64;
    let mut keys = Vec::new();
    for ks in spec.key_specs {
        let flags = key_spec_bits(ks);
        if flags & key_flags::NOT_KEY != 0 {
            continue;
        }
        let mut first: i64 = match ks.begin {
            BeginSearch::Index(pos) => pos as i64,
            BeginSearch::Keyword(kw, startfrom) => {
                let startfrom = startfrom as i64;
                let (start, end) = if startfrom > 0 {
                    (startfrom, argc - 1)
                } else {
                    (argc + startfrom, 1)
                };
                // The search stops before `end`: a keyword in the last
                // position (or at index 1 when searching backwards) has no
                // key after it.
                let mut i = start;
                let mut found = 0;
                while i != end {
                    if i >= argc || i < 1 {
                        break;
                    }
                    if is(args[i as usize], kw) {
                        found = i + 1;
                        break;
                    }
                    i += if start <= end { 1 } else { -1 };
                }
                if found == 0 {
                    continue;
                }
                found
            }
            BeginSearch::Unknown => return None,
        };
        let (last, step) = match ks.find {
            FindKeys::Range {
                lastkey,
                step,
                limit,
            } => {
                let (lastkey, limit) = (lastkey as i64, limit as i64);
                let last = if lastkey >= 0 {
                    first + lastkey
                } else if limit == 0 {
                    argc + lastkey
                } else {
                    first + ((argc - first) / limit + lastkey)
                };
                (last, step as i64)
            }
            FindKeys::Keynum {
                keynumidx,
                firstkey,
                step,
            } => {
                let idx = first + keynumidx as i64;
                if idx >= argc {
                    return None;
                }
                let n = crate::util::parse_i64(args[idx as usize]).filter(|&n| n >= 0)?;
                first += firstkey as i64;
                (first.saturating_add(n) - 1, step as i64)
            }
            FindKeys::Unknown => return None,
        };
        if last >= argc || last < first || first >= argc {
            return None;
        }
        let mut i = first;
        while i <= last {
            keys.push(KeyRef {
                pos: i as usize,
                flags,
            });
            i += step.max(1);
        }
        if flags & key_flags::INCOMPLETE != 0 {
            return None;
        }
    }
    Some(keys)
}

/// Redis's `genericGetKeys`: `num` keys (count at `count_at`) from
/// `first_at` every `step`, then the destination at `store_at` (0: none).
/// Flags are unknown (0), as in Redis.
fn generic_keys(
    store_at: usize,
    count_at: usize,
    first_at: usize,
    step: usize,
    args: &[&[u8]],
) -> Vec<KeyRef> {
    let num = args.get(count_at).map_or(0, |a| kvik_core::num::atoi(a));
    let room = (args.len().saturating_sub(first_at) / step) as i64;
    if num < 1 || num > room {
        return Vec::new();
    }
    let mut keys: Vec<KeyRef> = (0..num as usize)
        .map(|i| KeyRef {
            pos: first_at + i * step,
            flags: 0,
        })
        .collect();
    if store_at != 0 {
        keys.push(KeyRef {
            pos: store_at,
            flags: 0,
        });
    }
    keys
}

/// The command-specific key extraction Redis uses when key specs cannot
/// tell (its `*GetKeys` functions in db.c).
fn keys_from_function(spec: &Spec, args: &[&[u8]]) -> Vec<KeyRef> {
    use key_flags::*;
    let argc = args.len();
    match spec.name {
        "zunion" | "zinter" | "zdiff" | "zintercard" | "sintercard" | "lmpop" | "zmpop" => {
            generic_keys(0, 1, 2, 1, args)
        }
        "zunionstore" | "zinterstore" | "zdiffstore" => generic_keys(1, 2, 3, 1, args),
        "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro" | "blmpop"
        | "bzmpop" => generic_keys(0, 2, 3, 1, args),
        "set" => {
            // The key is read only when GET is given.
            let get = args.iter().skip(3).any(|a| is(a, "get"));
            let flags = if get {
                RW | ACCESS | UPDATE
            } else {
                OW | UPDATE
            };
            vec![KeyRef { pos: 1, flags }]
        }
        "bitfield" => {
            let mut readonly = true;
            let mut i = 2;
            while i < argc {
                let rem = argc - i - 1;
                let a = args[i];
                if is(a, "get") && rem >= 2 {
                    i += 2;
                } else if (is(a, "set") || is(a, "incrby")) && rem >= 3 {
                    readonly = false;
                    break;
                } else if is(a, "overflow") && rem >= 1 {
                    i += 1;
                } else {
                    // A syntax error: assume the worst.
                    readonly = false;
                    break;
                }
                i += 1;
            }
            let flags = if readonly {
                RO | ACCESS
            } else {
                RW | ACCESS | UPDATE
            };
            vec![KeyRef { pos: 1, flags }]
        }
        "sort" | "sort_ro" => {
            let mut keys = vec![KeyRef {
                pos: 1,
                flags: RO | ACCESS,
            }];
            if spec.name == "sort_ro" {
                return keys;
            }
            let mut store = None;
            let mut i = 2;
            while i < argc {
                let a = args[i];
                if is(a, "limit") {
                    i += 2;
                } else if is(a, "get") || is(a, "by") {
                    i += 1;
                } else if is(a, "store") && i + 1 < argc {
                    // The last STORE wins, as in SORT itself; its key is
                    // then scanned as an option name, as Redis does.
                    store = Some(i + 1);
                }
                i += 1;
            }
            if let Some(pos) = store {
                keys.push(KeyRef {
                    pos,
                    flags: OW | UPDATE,
                });
            }
            keys
        }
        "migrate" => {
            let (mut first, mut num) = (3, 1);
            if argc > 6 {
                let mut i = 6;
                while i < argc {
                    let a = args[i];
                    if is(a, "keys") {
                        if !args[3].is_empty() {
                            // Both a single key and KEYS: an error.
                            return Vec::new();
                        }
                        first = i + 1;
                        num = argc - first;
                        break;
                    }
                    if is(a, "auth") {
                        i += 1;
                    } else if is(a, "auth2") {
                        i += 2;
                    }
                    i += 1;
                }
            }
            (first..first + num)
                .map(|pos| KeyRef {
                    pos,
                    flags: RW | ACCESS | DELETE,
                })
                .collect()
        }
        "georadius" | "georadiusbymember" => {
            let mut stored = None;
            let mut i = 5;
            while i < argc {
                if (is(args[i], "store") || is(args[i], "storedist")) && i + 1 < argc {
                    stored = Some(i + 1);
                    i += 1;
                }
                i += 1;
            }
            let mut keys = vec![KeyRef { pos: 1, flags: 0 }];
            if let Some(pos) = stored {
                keys.push(KeyRef { pos, flags: 0 });
            }
            keys
        }
        "xread" | "xreadgroup" => {
            let mut streams = None;
            let mut i = 1;
            while i < argc {
                let a = args[i];
                if is(a, "block") || is(a, "count") {
                    i += 1;
                } else if is(a, "group") {
                    i += 2;
                } else if is(a, "noack") {
                } else if is(a, "streams") {
                    streams = Some(i);
                    break;
                } else {
                    break;
                }
                i += 1;
            }
            let Some(sp) = streams else {
                return Vec::new();
            };
            let num = argc - sp - 1;
            if num == 0 || !num.is_multiple_of(2) {
                return Vec::new();
            }
            (sp + 1..sp + 1 + num / 2)
                .map(|pos| KeyRef { pos, flags: 0 })
                .collect()
        }
        _ => Vec::new(),
    }
}

/// Whether Redis considers the command to take keys at all
/// (`doesCommandHaveKeys`).
pub fn has_keys(spec: &Spec) -> bool {
    spec.getkeys_function
        || spec
            .key_specs
            .iter()
            .any(|ks| key_spec_bits(ks) & key_flags::NOT_KEY == 0)
}

/// The keys of a command line with their flags, as Redis's
/// `getKeysFromCommandWithSpecs`: key specs when they are reliable, else
/// the command's own extraction. Empty when the arguments do not let the
/// keys be found (the command would reply with an error).
pub fn get_keys(spec: &Spec, args: &[&[u8]]) -> Vec<KeyRef> {
    let reliable = spec
        .key_specs
        .iter()
        .any(|ks| key_spec_bits(ks) & key_flags::NOT_KEY == 0)
        && !spec
            .key_specs
            .iter()
            .any(|ks| key_spec_bits(ks) & key_flags::VARIABLE_FLAGS != 0);
    if reliable {
        if let Some(keys) = keys_from_specs(spec, args) {
            return keys;
        }
    }
    if spec.getkeys_function {
        return keys_from_function(spec, args);
    }
    Vec::new()
}

// ---------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------

/// `COMMAND` alone lists everything (with arguments, the dispatcher
/// resolves the subcommand before any handler runs).
fn command_root(ctx: &mut Ctx<'_>, _args: &[&[u8]]) {
    let cmds = sorted_commands(&ctx.srv.commands);
    ctx.out.array(cmds.len());
    for c in cmds {
        reply_info(ctx.out, c);
    }
}

fn command_count(ctx: &mut Ctx<'_>, _args: &[&[u8]]) {
    ctx.out.int(ctx.srv.commands.len() as i64);
}

/// A `COMMAND LIST FILTERBY` filter.
enum Filter<'a> {
    None,
    /// Modules do not exist in kvik: nothing matches.
    Module,
    /// Category bit (0: unknown category, nothing matches).
    AclCat(u32),
    Pattern(&'a [u8]),
}

impl Filter<'_> {
    fn keeps(&self, spec: &Spec) -> bool {
        match self {
            Filter::None => true,
            Filter::Module => false,
            Filter::AclCat(bit) => *bit != 0 && acl_category_bits(spec) & bit != 0,
            Filter::Pattern(p) => kvik_core::glob::glob_match(p, spec.name.as_bytes(), true),
        }
    }
}

fn command_list(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let mut filter = Filter::None;
    let mut i = 2;
    while i < args.len() {
        let more = args.len() - 1 - i;
        if is(args[i], "filterby") && more == 2 {
            let arg = args[i + 2];
            filter = if is(args[i + 1], "module") {
                Filter::Module
            } else if is(args[i + 1], "aclcat") {
                Filter::AclCat(std::str::from_utf8(arg).map_or(0, category_bit))
            } else if is(args[i + 1], "pattern") {
                Filter::Pattern(arg)
            } else {
                ctx.error(err::SYNTAX);
                return;
            };
            i += 3;
        } else {
            ctx.error(err::SYNTAX);
            return;
        }
    }
    let mut names: Vec<&'static str> = Vec::new();
    for c in sorted_commands(&ctx.srv.commands) {
        if filter.keeps(c.spec) {
            names.push(c.spec.name);
        }
        for s in sorted_subcommands(c) {
            if filter.keeps(s.spec) {
                names.push(s.spec.name);
            }
        }
    }
    ctx.out.array(names.len());
    for n in names {
        ctx.out.bulk(n.as_bytes());
    }
}

fn command_info(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let table = &ctx.srv.commands;
    if args.len() == 2 {
        let cmds = sorted_commands(table);
        ctx.out.array(cmds.len());
        for c in cmds {
            reply_info(ctx.out, c);
        }
        return;
    }
    ctx.out.array(args.len() - 2);
    for name in &args[2..] {
        match lookup_by_fullname(table, name) {
            Some(c) => reply_info(ctx.out, c),
            None => ctx.out.null(),
        }
    }
}

fn command_docs(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let table = &ctx.srv.commands;
    let cmds: Vec<&Command> = if args.len() == 2 {
        sorted_commands(table)
    } else {
        args[2..]
            .iter()
            .filter_map(|n| lookup_by_fullname(table, n))
            .collect()
    };
    ctx.out.map(cmds.len());
    for c in cmds {
        ctx.out.bulk(c.spec.name.as_bytes());
        reply_docs(ctx.out, c);
    }
}

/// COMMAND GETKEYS / GETKEYSANDFLAGS (Redis's `getKeysSubcommandImpl`).
fn getkeys_impl(ctx: &mut Ctx<'_>, args: &[&[u8]], with_flags: bool) {
    let argv = &args[2..];
    // Like Redis's non-strict lookupCommand: a container with a second
    // argument means that subcommand.
    let cmd = ctx.srv.commands.get(argv[0]).and_then(|c| {
        if argv.len() > 1 && !c.subcommands.is_empty() {
            subcommand(c, argv[1])
        } else {
            Some(c)
        }
    });
    let Some(cmd) = cmd else {
        ctx.error("ERR Invalid command specified");
        return;
    };
    let spec = cmd.spec;
    if !has_keys(spec) {
        ctx.error("ERR The command has no key arguments");
        return;
    }
    if !spec.arity_ok(argv.len()) {
        ctx.error("ERR Invalid number of arguments specified for command");
        return;
    }
    let keys = get_keys(spec, argv);
    if keys.is_empty() {
        if spec.has_flag("no_mandatory_keys") {
            ctx.out.array(0);
        } else {
            ctx.error("ERR Invalid arguments specified for command");
        }
        return;
    }
    ctx.out.array(keys.len());
    for k in keys {
        if with_flags {
            ctx.out.array(2);
            ctx.out.bulk(argv[k.pos]);
            reply_key_flags(ctx.out, k.flags);
        } else {
            ctx.out.bulk(argv[k.pos]);
        }
    }
}

fn command_getkeys(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    getkeys_impl(ctx, args, false);
}

fn command_getkeysandflags(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    getkeys_impl(ctx, args, true);
}

const HELP: &[&str] = &[
    "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "(no subcommand)",
    "    Return details about all Redis commands.",
    "COUNT",
    "    Return the total number of commands in this Redis server.",
    "LIST",
    "    Return a list of all commands in this Redis server.",
    "INFO [<command-name> ...]",
    "    Return details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "DOCS [<command-name> ...]",
    "    Return documentation details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "GETKEYS <full-command>",
    "    Return the keys from a full Redis command.",
    "GETKEYSANDFLAGS <full-command>",
    "    Return the keys and the access flags from a full Redis command.",
    "HELP",
    "    Prints this help.",
];

fn command_help(ctx: &mut Ctx<'_>, _args: &[&[u8]]) {
    ctx.out.array(HELP.len());
    for line in HELP {
        ctx.out.simple(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::spec::{self, SPECS};

    fn range(name: &str) -> (i32, i32, i32, bool) {
        legacy_range(spec::find(name).unwrap())
    }

    #[test]
    fn legacy_ranges_match_redis() {
        // Values from Redis 7's COMMAND INFO.
        assert_eq!(range("get"), (1, 1, 1, false));
        assert_eq!(range("mset"), (1, -1, 2, false));
        assert_eq!(range("del"), (1, -1, 1, false));
        assert_eq!(range("zunionstore"), (1, 1, 1, true));
        assert_eq!(range("migrate"), (3, 3, 1, true));
        assert_eq!(range("sort"), (1, 1, 1, true));
        assert_eq!(range("eval"), (0, 0, 0, true));
        assert_eq!(range("xread"), (0, 0, 0, true));
        assert_eq!(range("ping"), (0, 0, 0, false));
        assert_eq!(range("rename"), (1, 2, 1, false));
        assert_eq!(range("lmove"), (1, 2, 1, false));
        assert_eq!(range("georadius"), (1, 1, 1, true));
    }

    #[test]
    fn implied_categories() {
        let cats = |n: &str| acl_categories(spec::find(n).unwrap()).collect::<Vec<_>>();
        assert_eq!(cats("get"), ["read", "string", "fast"]);
        assert_eq!(cats("set"), ["write", "string", "slow"]);
        assert_eq!(cats("swapdb"), ["keyspace", "write", "fast", "dangerous"]);
        assert_eq!(cats("eval_ro"), ["slow", "scripting"]);
        assert_eq!(cats("config|get"), ["admin", "slow", "dangerous"]);
        assert_eq!(cats("blpop"), ["write", "list", "slow", "blocking"]);
    }

    fn keys(line: &str) -> Vec<(String, u16)> {
        let args: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
        let spec = spec::find(line.split(' ').next().unwrap()).unwrap();
        get_keys(spec, &args)
            .into_iter()
            .map(|k| (line.split(' ').nth(k.pos).unwrap().to_string(), k.flags))
            .collect()
    }

    #[test]
    fn getkeys_follows_redis() {
        use key_flags::*;
        let names = |l: &str| keys(l).into_iter().map(|k| k.0).collect::<Vec<_>>();
        assert_eq!(names("mset a 1 b 2"), ["a", "b"]);
        assert_eq!(keys("set a b get"), [("a".into(), RW | ACCESS | UPDATE)]);
        assert_eq!(keys("set a b"), [("a".into(), OW | UPDATE)]);
        assert_eq!(keys("bitfield a get u8 0"), [("a".into(), RO | ACCESS)]);
        assert_eq!(
            keys("bitfield a get u8"),
            [("a".into(), RW | ACCESS | UPDATE)]
        );
        assert_eq!(names("zunionstore d 2 a b"), ["d", "a", "b"]);
        assert_eq!(
            keys("zunionstore d 1x a"),
            [("a".into(), 0), ("d".into(), 0)]
        );
        assert!(keys("zunionstore d 3 a b").is_empty());
        assert!(keys("zunionstore d 0 a").is_empty());
        assert!(keys("eval s 0").is_empty());
        assert_eq!(names("eval s 2 a b c"), ["a", "b"]);
        assert_eq!(names("sort a by x get y store z"), ["a", "z"]);
        assert_eq!(names("xread count 1 streams a b 0 0"), ["a", "b"]);
        assert_eq!(names("xread streams a b 0"), ["a"]);
        assert!(keys("xread count 1 streams a").is_empty());
        assert_eq!(
            names("georadius k 0 0 1 km store d storedist e"),
            ["k", "d", "e"]
        );
        assert_eq!(names("georadius k 0 0 1 km store"), ["k"]);
        assert_eq!(names("lmpop 3 a b left"), ["a", "b", "left"]);
        assert_eq!(names("migrate h p k 0 100"), ["k"]);
        assert!(keys("migrate h p k 0 100 KEYS a b").is_empty());
        assert_eq!(keys("sintercard 1x a b"), [("a".into(), 0)]);
    }

    #[test]
    fn every_spec_is_consistent() {
        for s in SPECS {
            // Nothing panics, and a single plain range is never movable.
            let (first, _, step, _) = legacy_range(s);
            assert!(first >= 0 && step >= 0, "{}", s.name);
            let _ = acl_category_bits(s);
        }
    }
}
