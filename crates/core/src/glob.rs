//! Glob-style pattern matching with the exact semantics of Redis's
//! `stringmatchlen` (used by `KEYS`, `SCAN ... MATCH`, `PSUBSCRIBE`,
//! `CONFIG GET`, ACL key patterns, ...).
//!
//! Supported syntax, including Redis's corner cases:
//!
//! * `*` matches any sequence of bytes, `?` any single byte.
//! * `[abc]`, `[^abc]` and ranges `[a-z]`; a reversed range such as `[z-a]`
//!   is treated as `[a-z]`. Range bounds are compared as C `char`, which is
//!   signed on the platforms Redis runs on, so bytes `>= 0x80` sort *below*
//!   ASCII inside ranges (e.g. `[a-\xff]` is the range `\xff..=a`).
//! * Inside a class, `\x` matches the byte `x` exactly (case-sensitively even
//!   in `nocase` mode); `[a-]` consumes the `]` as the end of the range, so
//!   the class goes on; an unterminated class (`[abc`) extends to the end of
//!   the pattern; `[` alone never matches and `[^` matches any single byte.
//! * Outside a class, `\x` matches `x` literally; a trailing lone `\` matches
//!   a backslash.
//! * `nocase` folds ASCII letters only (the C locale).
//! * An empty string only matches the empty pattern: `*` does **not** match
//!   `""` (callers such as `KEYS`/`SCAN` special-case the pattern `*`).
//! * A pattern with more than 1000 `*` groups followed by something else
//!   never matches (Redis's recursion-depth protection).
//!
//! Unlike Redis's recursive implementation, [`glob_match`] runs in
//! `O(pattern.len() * string.len())` worst-case time using the classic greedy
//! algorithm that only remembers the last `*`, which is exact for globs whose
//! other tokens all consume exactly one byte.

/// Redis stops recursing (and reports "no match") when a match needs more
/// than this many nested `*` expansions.
const MAX_STAR_NESTING: usize = 1000;

/// Returns whether `string` matches the glob `pattern`, exactly like Redis's
/// `stringmatchlen(pattern, string, nocase)`.
///
/// `nocase` makes ASCII letters compare case-insensitively (as Redis does
/// for `CONFIG GET` patterns, for example).
pub fn glob_match(pattern: &[u8], string: &[u8], nocase: bool) -> bool {
    if string.is_empty() {
        // Redis's main loop never runs on an empty string, so only an empty
        // pattern matches it (not even `*`).
        return pattern.is_empty();
    }
    if nested_star_groups(pattern) > MAX_STAR_NESTING {
        return false;
    }

    let (plen, slen) = (pattern.len(), string.len());
    let (mut pi, mut si) = (0usize, 0usize);
    // Pattern index just after the last `*` group, and the string index that
    // group is currently assumed to stop at.
    let mut star: Option<(usize, usize)> = None;
    loop {
        if si == slen {
            while pi < plen && pattern[pi] == b'*' {
                pi += 1;
            }
            return pi == plen;
        }
        if pi < plen && pattern[pi] == b'*' {
            while pi < plen && pattern[pi] == b'*' {
                pi += 1;
            }
            if pi == plen {
                return true;
            }
            star = Some((pi, si));
            continue;
        }
        if pi < plen {
            let (matched, next) = match_token(pattern, pi, string[si], nocase);
            if matched {
                pi = next;
                si += 1;
                continue;
            }
        }
        // Mismatch (or pattern exhausted with input left): let the last star
        // swallow one more byte and retry, or fail if there is none.
        match star {
            Some((after_star, star_si)) => {
                pi = after_star;
                si = star_si + 1;
                star = Some((after_star, si));
            }
            None => return false,
        }
    }
}

/// Counts the `*` groups that are followed by more pattern: each of them
/// costs one level of recursion in Redis's implementation.
fn nested_star_groups(pattern: &[u8]) -> usize {
    let mut count = 0;
    let mut i = 0;
    while i < pattern.len() {
        if pattern[i] == b'*' {
            while i < pattern.len() && pattern[i] == b'*' {
                i += 1;
            }
            if i < pattern.len() {
                count += 1;
            }
        } else {
            i = match_token(pattern, i, 0, false).1;
        }
    }
    count
}

/// ASCII-only `tolower`, as in the C locale.
#[inline]
fn fold(c: u8) -> u8 {
    c.to_ascii_lowercase()
}

#[inline]
fn byte_eq(a: u8, b: u8, nocase: bool) -> bool {
    a == b || (nocase && fold(a) == fold(b))
}

/// C `tolower` applied to a (sign-extended) `char` value.
#[inline]
fn fold_signed(c: i32) -> i32 {
    if (i32::from(b'A')..=i32::from(b'Z')).contains(&c) {
        c + 32
    } else {
        c
    }
}

/// Matches the one-byte token starting at `pattern[pi]` (which must exist and
/// not be `*`) against `c`. Returns whether it matched and the index just past
/// the token. The token's extent never depends on `c`.
fn match_token(pattern: &[u8], pi: usize, c: u8, nocase: bool) -> (bool, usize) {
    match pattern[pi] {
        b'?' => (true, pi + 1),
        b'[' => match_class(pattern, pi + 1, c, nocase),
        b'\\' if pi + 1 < pattern.len() => (byte_eq(pattern[pi + 1], c, nocase), pi + 2),
        lit => (byte_eq(lit, c, nocase), pi + 1),
    }
}

/// Matches a `[...]` class whose body starts at `pattern[start]`.
fn match_class(pattern: &[u8], start: usize, c: u8, nocase: bool) -> (bool, usize) {
    let len = pattern.len();
    let mut i = start;
    let negate = i < len && pattern[i] == b'^';
    if negate {
        i += 1;
    }
    let mut matched = false;
    loop {
        if i >= len {
            // Unterminated class: it extends to the end of the pattern.
            break;
        }
        let rem = len - i;
        if pattern[i] == b'\\' && rem >= 2 {
            i += 1;
            if pattern[i] == c {
                matched = true;
            }
        } else if pattern[i] == b']' {
            i += 1;
            break;
        } else if rem >= 3 && pattern[i + 1] == b'-' {
            // Bounds and subject are compared as signed C chars.
            let mut lo = i32::from(pattern[i] as i8);
            let mut hi = i32::from(pattern[i + 2] as i8);
            let mut ch = i32::from(c as i8);
            if lo > hi {
                std::mem::swap(&mut lo, &mut hi);
            }
            if nocase {
                lo = fold_signed(lo);
                hi = fold_signed(hi);
                ch = fold_signed(ch);
            }
            if lo <= ch && ch <= hi {
                matched = true;
            }
            i += 2;
        } else if byte_eq(pattern[i], c, nocase) {
            matched = true;
        }
        i += 1;
    }
    (matched != negate, i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A literal emulation of Redis's recursive C implementation, working on
    /// a NUL-terminated copy of the pattern with a pointer and a remaining
    /// length, used as the oracle for the property tests.
    fn reference(pattern: &[u8], string: &[u8], nocase: bool) -> bool {
        let mut pat = pattern.to_vec();
        pat.push(0);
        let mut skip_longer = false;
        reference_impl(&pat, 0, pattern.len(), string, nocase, &mut skip_longer, 0)
    }

    fn lower(c: i32) -> i32 {
        if (65..=90).contains(&c) {
            c + 32
        } else {
            c
        }
    }

    fn reference_impl(
        pat: &[u8],
        mut p: usize,
        mut plen: usize,
        string: &[u8],
        nocase: bool,
        skip_longer: &mut bool,
        nesting: usize,
    ) -> bool {
        if nesting > 1000 {
            return false;
        }
        let mut s = 0usize;
        let mut slen = string.len();
        let sc = |s: usize| i32::from(string[s] as i8);
        let pc = |p: usize| i32::from(pat[p] as i8);
        while plen > 0 && slen > 0 {
            match pat[p] {
                b'*' => {
                    while plen > 0 && pat[p + 1] == b'*' {
                        p += 1;
                        plen -= 1;
                    }
                    if plen == 1 {
                        return true;
                    }
                    while slen > 0 {
                        if reference_impl(
                            pat,
                            p + 1,
                            plen - 1,
                            &string[s..],
                            nocase,
                            skip_longer,
                            nesting + 1,
                        ) {
                            return true;
                        }
                        if *skip_longer {
                            return false;
                        }
                        s += 1;
                        slen -= 1;
                    }
                    *skip_longer = true;
                    return false;
                }
                b'?' => {
                    s += 1;
                    slen -= 1;
                }
                b'[' => {
                    p += 1;
                    plen -= 1;
                    let not = pat[p] == b'^';
                    if not {
                        p += 1;
                        plen -= 1;
                    }
                    let mut m = false;
                    loop {
                        if pat[p] == b'\\' && plen >= 2 {
                            p += 1;
                            plen -= 1;
                            if pat[p] == string[s] {
                                m = true;
                            }
                        } else if pat[p] == b']' {
                            break;
                        } else if plen == 0 {
                            p -= 1;
                            plen += 1;
                            break;
                        } else if plen >= 3 && pat[p + 1] == b'-' {
                            let mut start = pc(p);
                            let mut end = pc(p + 2);
                            let mut c = sc(s);
                            if start > end {
                                std::mem::swap(&mut start, &mut end);
                            }
                            if nocase {
                                start = lower(start);
                                end = lower(end);
                                c = lower(c);
                            }
                            p += 2;
                            plen -= 2;
                            if c >= start && c <= end {
                                m = true;
                            }
                        } else if !nocase {
                            if pat[p] == string[s] {
                                m = true;
                            }
                        } else if lower(pc(p)) == lower(sc(s)) {
                            m = true;
                        }
                        p += 1;
                        plen -= 1;
                    }
                    if not {
                        m = !m;
                    }
                    if !m {
                        return false;
                    }
                    s += 1;
                    slen -= 1;
                }
                other => {
                    let mut lit = other;
                    if other == b'\\' && plen >= 2 {
                        p += 1;
                        plen -= 1;
                        lit = pat[p];
                    }
                    let eq = if nocase {
                        lower(i32::from(lit as i8)) == lower(sc(s))
                    } else {
                        lit == string[s]
                    };
                    if !eq {
                        return false;
                    }
                    s += 1;
                    slen -= 1;
                }
            }
            p += 1;
            plen -= 1;
            if slen == 0 {
                while pat[p] == b'*' {
                    p += 1;
                    plen -= 1;
                }
                break;
            }
        }
        plen == 0 && slen == 0
    }

    fn m(p: &str, s: &str) -> bool {
        glob_match(p.as_bytes(), s.as_bytes(), false)
    }

    #[test]
    fn basics() {
        assert!(m("*", "anything"));
        assert!(m("h?llo", "hello"));
        assert!(m("h?llo", "hallo"));
        assert!(!m("h?llo", "hllo"));
        assert!(m("h*llo", "hllo"));
        assert!(m("h*llo", "heeeello"));
        assert!(m("h[ae]llo", "hello"));
        assert!(m("h[ae]llo", "hallo"));
        assert!(!m("h[ae]llo", "hillo"));
        assert!(m("h[^e]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hallo"));
        assert!(m("h[a-b]llo", "hbllo"));
        assert!(!m("h[a-b]llo", "hcllo"));
        assert!(m("user:*:name", "user:1000:name"));
        assert!(!m("user:*:name", "user:1000:names"));
        assert!(m("a*b*c", "axxbyyc"));
        assert!(!m("a*b*c", "axxbyy"));
        assert!(m("", ""));
        assert!(!m("", "a"));
        assert!(!m("a", ""));
    }

    #[test]
    fn empty_string_only_matches_empty_pattern() {
        // Verified with HSCAN ... MATCH on a real Redis.
        assert!(m("", ""));
        assert!(!m("*", ""));
        assert!(!m("**", ""));
        assert!(!m("?", ""));
        // Trailing stars do match nothing after at least one byte.
        assert!(m("a*", "a"));
        assert!(m("a**", "a"));
        assert!(m("*a*", "a"));
    }

    #[test]
    fn escapes() {
        assert!(m("\\*", "*"));
        assert!(!m("\\*", "a"));
        assert!(m("a\\?b", "a?b"));
        assert!(!m("a\\?b", "axb"));
        assert!(m("\\[x]", "[x]"));
        // A trailing lone backslash matches a backslash.
        assert!(m("ab\\", "ab\\"));
        assert!(!m("ab\\", "abc"));
        assert!(m("\\a", "a"));
        // Escapes inside classes are case-sensitive even with nocase.
        assert!(glob_match(b"[\\a]", b"a", true));
        assert!(!glob_match(b"[\\a]", b"A", true));
        assert!(glob_match(b"[a]", b"A", true));
        assert!(m("[\\]]", "]"));
        assert!(m("[\\-]", "-"));
        assert!(!m("[\\-]", "\\"));
    }

    #[test]
    fn class_corner_cases() {
        // `[` alone never matches; `[^` matches any byte.
        assert!(!m("[", "a"));
        assert!(!m("[", "["));
        assert!(m("[^", "a"));
        assert!(!m("[^", "ab"));
        // Empty classes.
        assert!(!m("[]", "a"));
        assert!(!m("[]", "]"));
        assert!(m("[^]", "x"));
        assert!(!m("[]]", "]"));
        assert!(!m("[]]", "]]"));
        // Unterminated class extends to the end of the pattern.
        assert!(m("[abc", "b"));
        assert!(!m("[abc", "d"));
        assert!(m("x[abc", "xc"));
        assert!(!m("[abc", "bc"));
        // Reversed ranges work.
        assert!(m("[z-a]", "m"));
        assert!(!m("[z-a]", "A"));
        // `[a-]` consumes `]` as the range end: the class is unterminated
        // and spans `]`..=`a` (0x5d..=0x61).
        assert!(m("[a-]", "_"));
        assert!(m("[a-]", "]"));
        assert!(!m("[a-]", "b"));
        assert!(m("[a-]x]", "x"));
        // `-` at the start or before `]` is literal when it can't be a range.
        assert!(m("[-a]", "-"));
        assert!(m("[ab-", "-"));
        // Ranges compare signed chars: 0xff is -1, so [a-\xff] is -1..=97.
        assert!(glob_match(b"[a-\xff]", b"0", false));
        assert!(glob_match(b"[a-\xff]", b"\xff", false));
        assert!(!glob_match(b"[a-\xff]", b"b", false));
        assert!(!glob_match(b"[a-\xff]", b"\x80", false));
        assert!(glob_match(b"[\x80-\xff]", b"\x90", false));
        // nocase ranges fold the bounds after ordering them.
        assert!(glob_match(b"[A-C]", b"b", true));
        assert!(glob_match(b"[a-c]", b"B", true));
        // `[Z-a]` folds to the empty range 'z'..='a'.
        assert!(!glob_match(b"[Z-a]", b"z", true));
        assert!(!glob_match(b"[Z-a]", b"_", true));
        assert!(glob_match(b"[Z-a]", b"_", false));
    }

    #[test]
    fn nocase() {
        assert!(glob_match(b"HeLLo*", b"hello world", true));
        assert!(!glob_match(b"HeLLo*", b"hello world", false));
        assert!(glob_match(b"h?LLO", b"HELlo", true));
        // Non-letters don't fold.
        assert!(!glob_match(b"@", b"`", true));
        assert!(!glob_match(b"\xc0", b"\xe0", true));
    }

    #[test]
    fn nesting_limit() {
        // Verified against a real Redis: 1000 nested stars still work,
        // 1001 never match.
        let s = vec![b'a'; 1100];
        for (n, expect) in [(999, true), (1000, true), (1001, false), (1002, false)] {
            let p1 = b"*a".repeat(n);
            assert_eq!(glob_match(&p1, &s, false), expect, "*a x {n}");
            let mut p2 = b"a*".repeat(n);
            p2.push(b'a');
            assert_eq!(glob_match(&p2, &s, false), expect, "a* x {n} a");
        }
        // Consecutive stars count once, and a final star group not at all.
        let mut p = b"*".repeat(5000);
        p.extend_from_slice(b"a");
        assert!(glob_match(&p, b"xa", false));
        let p = b"a*".repeat(1500);
        assert!(!glob_match(&p, &vec![b'a'; 1600], false));
    }

    #[test]
    fn pathological_pattern_is_fast_and_correct() {
        let s = vec![b'a'; 100 * 1024];
        let p = b"a*a*a*a*a*a*a*a*a*a*a*a*a*b";
        assert!(!glob_match(p, &s, false));
        assert!(!glob_match(p, &s, true));
        let mut s2 = s.clone();
        s2.push(b'b');
        assert!(glob_match(p, &s2, false));
        let p = b"*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*c";
        assert!(!glob_match(p, &s, false));
        let p = b"[a]*[a]*[a]*[a]*?*?*?*?*?*?*?*[^a]";
        assert!(!glob_match(p, &s, false));
    }

    #[test]
    fn matches_reference_on_examples() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"*", b"x"),
            (b"[", b"["),
            (b"[^", b"x"),
            (b"[a-", b"-"),
            (b"[a-]", b"]"),
            (b"\\", b"\\"),
            (b"a\\", b"a\\"),
            (b"*\\", b"xx\\"),
            (b"[\\", b"\\"),
            (b"[\\]", b"]"),
            (b"[]-a]", b"^"),
            (b"*[]*", b"]"),
            (b"?*?", b"ab"),
        ];
        for &(p, s) in cases {
            for nocase in [false, true] {
                assert_eq!(
                    glob_match(p, s, nocase),
                    reference(p, s, nocase),
                    "{:?} {:?} {nocase}",
                    String::from_utf8_lossy(p),
                    String::from_utf8_lossy(s)
                );
            }
        }
    }

    fn pattern_strategy() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            proptest::sample::select(
                &[
                    b'a', b'b', b'A', b'B', b'-', b'*', b'?', b'[', b']', b'^', b'\\', b'z', 0xff,
                ][..],
            ),
            0..10,
        )
    }

    fn string_strategy() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            proptest::sample::select(
                &[
                    b'a', b'b', b'A', b'B', b'-', b'*', b'?', b'[', b']', b'^', b'\\', b'z', 0xff,
                ][..],
            ),
            0..8,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]
        #[test]
        fn agrees_with_reference(p in pattern_strategy(), s in string_strategy(), nocase in any::<bool>()) {
            prop_assert_eq!(glob_match(&p, &s, nocase), reference(&p, &s, nocase));
        }

        #[test]
        fn agrees_with_reference_any_bytes(
            p in proptest::collection::vec(any::<u8>(), 0..12),
            s in proptest::collection::vec(any::<u8>(), 0..12),
            nocase in any::<bool>(),
        ) {
            prop_assert_eq!(glob_match(&p, &s, nocase), reference(&p, &s, nocase));
        }

        #[test]
        fn star_pattern_finds_substrings(
            s in proptest::collection::vec(proptest::sample::select(&b"ab"[..]), 1..20),
            a in 0usize..20, b in 0usize..20,
        ) {
            let (a, b) = (a.min(s.len()), b.min(s.len()));
            let (a, b) = (a.min(b), a.max(b));
            let sub: Vec<u8> = s[a..b].to_vec();
            let mut p = b"*".to_vec();
            p.extend_from_slice(&sub);
            p.push(b'*');
            prop_assert!(glob_match(&p, &s, false));
        }
    }
}
