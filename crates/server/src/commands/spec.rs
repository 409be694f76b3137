//! Redis 7.2's command metadata, generated at build time from
//! `reference/commands.tsv`. The dispatcher takes arity, flags and key
//! positions from here, and `COMMAND INFO/DOCS/COUNT/LIST` are served from
//! it, so kvik's metadata cannot drift from Redis's.

/// Where the search for a key spec's first key begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BeginSearch {
    /// At this argument index.
    Index(i32),
    /// After this keyword, searching from `startfrom` (negative: from the end).
    Keyword(&'static str, i32),
    /// Only the command knows (e.g. SORT's GET patterns).
    Unknown,
}

/// How keys are found once the search has begun.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FindKeys {
    /// Keys up to `lastkey` (relative; negative counts from the end), every
    /// `step` arguments; `limit` > 1 limits to a fraction of the rest.
    Range {
        /// Last key index relative to the begin index.
        lastkey: i32,
        /// Step between keys.
        step: i32,
        /// Fraction limit (0: none).
        limit: i32,
    },
    /// The key count is an argument.
    Keynum {
        /// Index of the count, relative to the begin index.
        keynumidx: i32,
        /// First key, relative to the begin index.
        firstkey: i32,
        /// Step between keys.
        step: i32,
    },
    /// Only the command knows.
    Unknown,
}

/// One key specification of a command.
#[derive(Debug, Clone, Copy)]
pub struct KeySpec {
    /// Flags such as `RW`, `ACCESS`, `UPDATE` (upper case as in Redis).
    pub flags: &'static [&'static str],
    /// Where the search starts.
    pub begin: BeginSearch,
    /// How keys are found.
    pub find: FindKeys,
    /// Redis's explanatory note (empty when none).
    pub notes: &'static str,
}

/// The type of a documented argument (`COMMAND DOCS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgType {
    /// `string`
    String,
    /// `integer`
    Integer,
    /// `double`
    Double,
    /// `key`
    Key,
    /// `pattern`
    Pattern,
    /// `unix-time`
    UnixTime,
    /// `pure-token`
    PureToken,
    /// `oneof`: exactly one of the nested arguments.
    OneOf,
    /// `block`: all nested arguments in order.
    Block,
}

impl ArgType {
    /// The name `COMMAND DOCS` reports.
    pub fn as_str(self) -> &'static str {
        match self {
            ArgType::String => "string",
            ArgType::Integer => "integer",
            ArgType::Double => "double",
            ArgType::Key => "key",
            ArgType::Pattern => "pattern",
            ArgType::UnixTime => "unix-time",
            ArgType::PureToken => "pure-token",
            ArgType::OneOf => "oneof",
            ArgType::Block => "block",
        }
    }
}

/// One documented argument of a command. Empty strings mean "absent", as
/// NULL does in Redis's generated tables.
#[derive(Debug, Clone, Copy)]
pub struct Arg {
    /// Lower-case name.
    pub name: &'static str,
    /// Type.
    pub kind: ArgType,
    /// Display text when it differs from the name (e.g. `ip:port`).
    pub display: &'static str,
    /// Index of the key spec this key argument belongs to, or -1.
    pub key_spec_index: i32,
    /// Upper-case token preceding the value (`EX`), or empty.
    pub token: &'static str,
    /// Short description, or empty.
    pub summary: &'static str,
    /// Version that added the argument, or empty.
    pub since: &'static str,
    /// Version that deprecated the argument, or empty.
    pub deprecated_since: &'static str,
    /// May be omitted.
    pub optional: bool,
    /// May repeat.
    pub multiple: bool,
    /// Repeats together with its token.
    pub multiple_token: bool,
    /// Nested arguments of `oneof` / `block`.
    pub args: &'static [Arg],
}

/// Metadata of one command or subcommand (`container|sub`).
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// Lower-case name; subcommands are `container|sub`.
    pub name: &'static str,
    /// Command group (`string`, `generic`, `server`, ...).
    pub group: &'static str,
    /// Redis version that introduced it.
    pub since: &'static str,
    /// Redis arity: exact when positive, minimum when negative.
    pub arity: i32,
    /// Command flags, lower case as `COMMAND INFO` reports them.
    pub flags: &'static [&'static str],
    /// ACL categories (upper case, without `@`) beyond those implied by flags.
    pub acl: &'static [&'static str],
    /// Key specifications.
    pub key_specs: &'static [KeySpec],
    /// Documented complexity.
    pub complexity: &'static str,
    /// Doc flags (`DEPRECATED`, `SYSCMD`).
    pub doc_flags: &'static [&'static str],
    /// Version that deprecated it, or empty.
    pub deprecated_since: &'static str,
    /// Command tips, lower case as `COMMAND INFO` reports them
    /// (`nondeterministic_output`, `request_policy:all_shards`).
    pub tips: &'static [&'static str],
    /// The Redis JSON file it came from (under `reference/`).
    pub source: &'static str,
    /// One-line summary.
    pub summary: &'static str,
    /// What replaces a deprecated command, or empty.
    pub replaced_by: &'static str,
    /// `(version, change)` notes.
    pub history: &'static [(&'static str, &'static str)],
    /// Documented arguments.
    pub args: &'static [Arg],
    /// Whether Redis has a command-specific key extraction function (used
    /// when key specs cannot tell, e.g. `SORT`, or flags vary, e.g. `SET`).
    pub getkeys_function: bool,
}

impl Spec {
    /// Whether the command has flag `f` (lower case).
    pub fn has_flag(&self, f: &str) -> bool {
        self.flags.contains(&f)
    }

    /// Whether the argument count `argc` (command name included) fits the
    /// arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        if self.arity >= 0 {
            argc == self.arity as usize
        } else {
            argc >= (-self.arity) as usize
        }
    }
}

include!(concat!(env!("OUT_DIR"), "/commands_gen.rs"));

/// Position of `spec` in [`SPECS`] (specs are only ever borrowed from it).
pub fn index_of(spec: &'static Spec) -> usize {
    (spec as *const Spec as usize - SPECS.as_ptr() as usize) / std::mem::size_of::<Spec>()
}

/// Looks a spec up by lower-case full name.
pub fn find(name: &str) -> Option<&'static Spec> {
    SPECS.iter().find(|s| s.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_reference_shape() {
        let get = find("get").unwrap();
        assert_eq!(get.arity, 2);
        assert_eq!(get.flags, &["readonly", "fast"]);
        assert_eq!(get.key_specs[0].begin, BeginSearch::Index(1));
        let list = find("client|list").unwrap();
        assert_eq!(list.arity, -2);
        assert!(SPECS.len() > 350);
    }
}
