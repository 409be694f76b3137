//! SORT and SORT_RO (Redis's `sort.c`): sort the elements of a list, set
//! or sorted set numerically or lexicographically, optionally by the values
//! of other keys (`BY weight_*`, `BY obj_*->field`), fetch other keys per
//! element (`GET #`, `GET data_*`, `GET h_*->field`), page with LIMIT and
//! store the result as a list (SORT only).
//!
//! SORT's key specs say "unknown" for its patterns and STORE, so the
//! dispatcher locks every shard: any key may be read or written here.
//!
//! Redis details reproduced on purpose:
//! * options are C strings: a keyword, the `#` pattern, the `*` and `->`
//!   searches all stop at the first NUL byte of the argument;
//! * numeric sort values are parsed with plain `strtod` (leading spaces and
//!   trailing bytes after a NUL are accepted, the empty string is 0);
//! * a full sort is glibc's stable merge sort, a sort limited by LIMIT
//!   together with a BY pattern is Redis's partial quicksort ([`pqsort`]),
//!   which orders tied elements differently; both are emulated so tied
//!   elements come out in Redis's order.

use super::c_str;
use crate::dispatch::{err, CommandTable, Ctx};
use kvik_core::entry::{Entry, NewValue, ValueRef};
use kvik_core::object::Object;
use std::cmp::Ordering;

/// Registers the family.
pub fn register(t: &mut CommandTable) {
    t.add("sort", sort);
    t.add("sort_ro", sort_ro);
}

/// Case-insensitive comparison of an argument with a keyword the way C's
/// `strcasecmp` sees it: the argument ends at its first NUL byte. Shared with
/// the GEO commands.
pub fn c_keyword(arg: &[u8], kw: &str) -> bool {
    c_str(arg).eq_ignore_ascii_case(kw.as_bytes())
}

// ---------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------

/// Parsed SORT options.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SortOptions<'a> {
    /// DESC (the last of ASC/DESC wins).
    pub desc: bool,
    /// ALPHA.
    pub alpha: bool,
    /// LIMIT offset count, as given.
    pub limit: Option<(i64, i64)>,
    /// BY pattern (the last one wins).
    pub by: Option<&'a [u8]>,
    /// The BY pattern has no `*`: keep the native order.
    pub dontsort: bool,
    /// GET patterns, in order.
    pub gets: Vec<&'a [u8]>,
    /// STORE destination (SORT only).
    pub store: Option<&'a [u8]>,
}

/// Why option parsing failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortParseError {
    /// A LIMIT argument is not an integer.
    NotInt,
    /// Anything else.
    Syntax,
}

impl SortParseError {
    fn message(self) -> &'static str {
        match self {
            SortParseError::NotInt => err::NOT_INT,
            SortParseError::Syntax => err::SYNTAX,
        }
    }
}

/// Parses `SORT key [options]` (`args[0]` is the command name) as Redis's
/// `sortCommandGeneric` does; `readonly` (SORT_RO) rejects STORE as a syntax
/// error.
pub fn parse_options<'a>(
    args: &[&'a [u8]],
    readonly: bool,
) -> Result<SortOptions<'a>, SortParseError> {
    let mut o = SortOptions::default();
    let mut j = 2;
    while j < args.len() {
        let a = args[j];
        let left = args.len() - j - 1;
        if c_keyword(a, "asc") {
            o.desc = false;
        } else if c_keyword(a, "desc") {
            o.desc = true;
        } else if c_keyword(a, "alpha") {
            o.alpha = true;
        } else if c_keyword(a, "limit") && left >= 2 {
            let start = kvik_core::num::parse_i64(args[j + 1]).ok_or(SortParseError::NotInt)?;
            let count = kvik_core::num::parse_i64(args[j + 2]).ok_or(SortParseError::NotInt)?;
            o.limit = Some((start, count));
            j += 2;
        } else if !readonly && c_keyword(a, "store") && left >= 1 {
            o.store = Some(args[j + 1]);
            j += 1;
        } else if c_keyword(a, "by") && left >= 1 {
            let p = args[j + 1];
            o.by = Some(p);
            // A BY pattern without `*` means "do not sort" (the pattern is
            // never looked up), a way to use GET on the native order.
            o.dontsort = !c_str(p).contains(&b'*');
            j += 1;
        } else if c_keyword(a, "get") && left >= 1 {
            o.gets.push(args[j + 1]);
            j += 1;
        } else {
            return Err(SortParseError::Syntax);
        }
        j += 1;
    }
    Ok(o)
}

/// The output window `[start, end]` (inclusive, `end < start` when empty)
/// over `len` elements, with Redis's clamping of LIMIT.
pub fn limit_window(limit: Option<(i64, i64)>, len: i64) -> (i64, i64) {
    let (limit_start, limit_count) = limit.unwrap_or((0, -1));
    let mut start = limit_start.max(0).min(len);
    let count = limit_count.max(-1).min(len);
    let mut end = if count < 0 {
        len - 1
    } else {
        start + count - 1
    };
    if start >= len {
        start = len - 1;
        end = len - 2;
    }
    if end >= len {
        end = len - 1;
    }
    (start, end)
}

// ---------------------------------------------------------------------------
// Patterns
// ---------------------------------------------------------------------------

/// What a BY/GET pattern designates for one element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatternTarget<'p> {
    /// `#`: the element itself.
    Element,
    /// No `*` in the pattern: nothing.
    Nothing,
    /// The string value of this key.
    Key(Vec<u8>),
    /// A field of the hash at this key (`->field`).
    HashField(Vec<u8>, &'p [u8]),
}

/// Substitutes `elem` for the first `*` of `pattern` (Redis's
/// `lookupKeyByPattern`). A `->` after the `*` followed by at least one byte
/// splits off a hash field name. `#`, `*` and `->` are searched for in the
/// C-string view of the pattern, but the field name and the key's tail are
/// taken from the full argument.
pub fn substitute<'p>(pattern: &'p [u8], elem: &[u8]) -> PatternTarget<'p> {
    let c = c_str(pattern);
    if c == b"#" {
        return PatternTarget::Element;
    }
    let Some(star) = c.iter().position(|&b| b == b'*') else {
        return PatternTarget::Nothing;
    };
    let arrow = c[star + 1..]
        .windows(2)
        .position(|w| w == b"->")
        .map(|i| star + 1 + i)
        .filter(|&f| f + 2 < c.len());
    let (field, tail_end) = match arrow {
        Some(f) => (Some(&pattern[f + 2..]), f),
        None => (None, pattern.len()),
    };
    let mut key = Vec::with_capacity(star + elem.len() + (tail_end - star - 1));
    key.extend_from_slice(&pattern[..star]);
    key.extend_from_slice(elem);
    key.extend_from_slice(&pattern[star + 1..tail_end]);
    match field {
        Some(f) => PatternTarget::HashField(key, f),
        None => PatternTarget::Key(key),
    }
}

/// Looks a pattern up for one element: the element itself for `#`, a
/// string key's value, or a hash field's value; `None` when missing or of
/// another type.
fn lookup_pattern(ctx: &mut Ctx<'_>, pattern: &[u8], elem: &[u8]) -> Option<Vec<u8>> {
    match substitute(pattern, elem) {
        PatternTarget::Element => Some(elem.to_vec()),
        PatternTarget::Nothing => None,
        PatternTarget::Key(key) => {
            let e = ctx.ks.lookup_read(&key)?;
            string_value(e)
        }
        PatternTarget::HashField(key, field) => {
            let now = ctx.ks.now_ms;
            let e = ctx.ks.lookup_read(&key)?;
            hash_field(e, field, now)
        }
    }
}

/// A string entry's value (integers formatted), `None` for other types.
fn string_value(e: &Entry) -> Option<Vec<u8>> {
    match e.value() {
        ValueRef::Str(b) => Some(b.to_vec()),
        ValueRef::Int(n) => Some(n.to_string().into_bytes()),
        ValueRef::Obj(Object::Str(v)) => Some(v.clone()),
        ValueRef::Obj(_) => None,
    }
}

/// A hash entry's field value, `None` when the field is missing (or has
/// expired by `now_ms`) or the entry is not a hash.
fn hash_field(e: &Entry, field: &[u8], now_ms: i64) -> Option<Vec<u8>> {
    match e.value() {
        ValueRef::Obj(Object::Hash(h)) => match h.get_with_expire(field)? {
            (_, Some(at)) if at <= now_ms => None,
            (v, _) => Some(v.to_vec()),
        },
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// Sorting
// ---------------------------------------------------------------------------

/// One element being sorted with its sort key.
#[derive(Debug, Clone, PartialEq)]
pub struct SortItem {
    /// The element.
    pub elem: Vec<u8>,
    /// Numeric sort key (0 when the BY key is missing).
    pub score: f64,
    /// ALPHA sort key looked up through BY (`None`: missing).
    pub cmp: Option<Vec<u8>>,
}

impl SortItem {
    /// An element with no sort key yet.
    pub fn new(elem: Vec<u8>) -> SortItem {
        SortItem {
            elem,
            score: 0.0,
            cmp: None,
        }
    }
}

/// How items compare (Redis's `sortCompare` and its globals).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortMode {
    /// DESC.
    pub desc: bool,
    /// ALPHA.
    pub alpha: bool,
    /// A BY pattern supplies the sort keys.
    pub by_pattern: bool,
    /// STORE: ALPHA compares binary-safe instead of with `strcoll`.
    pub store: bool,
}

/// Redis's `compareStringObjects`: memcmp, then length.
fn cmp_binary(a: &[u8], b: &[u8]) -> Ordering {
    a.cmp(b)
}

/// `strcoll` in the C / C.UTF-8 locale Redis runs in: `strcmp` of the C
/// strings (bytes up to the first NUL, unsigned).
fn cmp_coll(a: &[u8], b: &[u8]) -> Ordering {
    c_str(a).cmp(c_str(b))
}

/// Compares two items.
pub fn compare(mode: SortMode, a: &SortItem, b: &SortItem) -> Ordering {
    let cmp = if !mode.alpha {
        if a.score > b.score {
            Ordering::Greater
        } else if a.score < b.score {
            Ordering::Less
        } else {
            // Equal scores: order by the elements, so the result is
            // deterministic.
            cmp_binary(&a.elem, &b.elem)
        }
    } else if mode.by_pattern {
        match (&a.cmp, &b.cmp) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(x), Some(y)) => {
                if mode.store {
                    cmp_binary(x, y)
                } else {
                    cmp_coll(x, y)
                }
            }
        }
    } else if mode.store {
        cmp_binary(&a.elem, &b.elem)
    } else {
        cmp_coll(&a.elem, &b.elem)
    };
    if mode.desc {
        cmp.reverse()
    } else {
        cmp
    }
}

/// Redis's `pqsort`: a Bentley–McIlroy quicksort that only recurses into
/// partitions overlapping `[lrange, rrange]`, so that range ends up sorted
/// (and in place) while the rest is only partitioned. Reimplemented step
/// for step because elements that compare equal end up in an order that
/// depends on the algorithm, and Redis's replies show that order. Shared
/// with the GEO searches (COUNT).
pub fn pqsort<T>(
    v: &mut [T],
    cmp: &mut dyn FnMut(&T, &T) -> Ordering,
    lrange: usize,
    rrange: usize,
) {
    pqsort_range(v, 0, v.len(), cmp, lrange, rrange);
}

fn med3<T>(
    v: &[T],
    a: usize,
    b: usize,
    c: usize,
    cmp: &mut dyn FnMut(&T, &T) -> Ordering,
) -> usize {
    if cmp(&v[a], &v[b]) == Ordering::Less {
        if cmp(&v[b], &v[c]) == Ordering::Less {
            b
        } else if cmp(&v[a], &v[c]) == Ordering::Less {
            c
        } else {
            a
        }
    } else if cmp(&v[b], &v[c]) == Ordering::Greater {
        b
    } else if cmp(&v[a], &v[c]) == Ordering::Less {
        a
    } else {
        c
    }
}

fn vecswap<T>(v: &mut [T], a: usize, b: usize, n: usize) {
    for i in 0..n {
        v.swap(a + i, b + i);
    }
}

/// Sorts `v[base .. base + n]` (indices are absolute, like the pointers of
/// the C code, so the range test compares with absolute positions).
fn pqsort_range<T>(
    v: &mut [T],
    mut base: usize,
    mut n: usize,
    cmp: &mut dyn FnMut(&T, &T) -> Ordering,
    lrange: usize,
    rrange: usize,
) {
    loop {
        if n < 7 {
            for m in base + 1..base + n {
                let mut l = m;
                while l > base && cmp(&v[l - 1], &v[l]) == Ordering::Greater {
                    v.swap(l, l - 1);
                    l -= 1;
                }
            }
            return;
        }
        let mut pm = base + n / 2;
        if n > 7 {
            let mut pl = base;
            let mut pn = base + n - 1;
            if n > 40 {
                let d = n / 8;
                pl = med3(v, pl, pl + d, pl + 2 * d, cmp);
                pm = med3(v, pm - d, pm, pm + d, cmp);
                pn = med3(v, pn - 2 * d, pn - d, pn, cmp);
            }
            pm = med3(v, pl, pm, pn, cmp);
        }
        v.swap(base, pm);
        let mut pa = base + 1;
        let mut pb = pa;
        // `pc`/`pd` start at the last element; they can go one below
        // `base + 1`, so track them as signed positions.
        let mut pc = (base + n - 1) as isize;
        let mut pd = pc;
        loop {
            while pb as isize <= pc {
                let r = cmp(&v[pb], &v[base]);
                if r == Ordering::Greater {
                    break;
                }
                if r == Ordering::Equal {
                    v.swap(pa, pb);
                    pa += 1;
                }
                pb += 1;
            }
            while pb as isize <= pc {
                let r = cmp(&v[pc as usize], &v[base]);
                if r == Ordering::Less {
                    break;
                }
                if r == Ordering::Equal {
                    v.swap(pc as usize, pd as usize);
                    pd -= 1;
                }
                pc -= 1;
            }
            if pb as isize > pc {
                break;
            }
            v.swap(pb, pc as usize);
            pb += 1;
            pc -= 1;
        }
        let pn = base + n;
        let r = (pa - base).min(pb - pa);
        vecswap(v, base, pb - r, r);
        let pd = pd as usize;
        let pc = pc as usize;
        let r = (pd - pc).min(pn - pd - 1);
        vecswap(v, pb, pn - r, r);
        let overlaps = |start: usize, len: usize| !(rrange < start || lrange >= start + len);
        // The two outer partitions (elements smaller, then larger than the
        // pivot) are sorted independently, so the order in which they are
        // visited does not change the result: recurse into the smaller one
        // and loop on the larger one, which bounds the recursion depth (the
        // C code always recurses on the left).
        let left = (base, pb - pa);
        let right = (pn - (pd - pc), pd - pc);
        let wanted = |(start, len): (usize, usize)| len > 1 && overlaps(start, len);
        let (small, large) = if left.1 <= right.1 {
            (left, right)
        } else {
            (right, left)
        };
        if wanted(small) {
            pqsort_range(v, small.0, small.1, cmp, lrange, rrange);
        }
        if wanted(large) {
            base = large.0;
            n = large.1;
            continue;
        }
        return;
    }
}

/// Parses a numeric sort key as Redis does (`strtod` with the end pointer
/// checked against the C string's end): `None` when it is not a number.
pub fn sort_score(v: &[u8]) -> Option<f64> {
    let r = kvik_core::num::strtod(v);
    let ends = r.consumed == v.len() || v[r.consumed] == 0;
    (ends && !r.range_error && !r.value.is_nan()).then_some(r.value)
}

// ---------------------------------------------------------------------------
// Sources
// ---------------------------------------------------------------------------

/// Loads the elements to sort from the source object. With `window`
/// (lists and sorted sets kept in native order), only that inclusive range,
/// counted from the tail when `desc`.
fn load_elements(obj: &Object, window: Option<(i64, i64)>, desc: bool) -> Vec<Vec<u8>> {
    match obj {
        Object::List(l) => match window {
            Some((start, end)) => {
                let n = (end - start + 1) as usize;
                let start = start as usize;
                if desc {
                    l.iter_rev_from(l.len() - start - 1)
                        .take(n)
                        .map(|e| e.to_vec())
                        .collect()
                } else {
                    l.iter_from(start).take(n).map(|e| e.to_vec()).collect()
                }
            }
            None => l.iter().map(|e| e.to_vec()).collect(),
        },
        Object::Set(s) => s.iter().map(|m| m.to_vec()).collect(),
        Object::ZSet(z) => match window {
            Some((start, end)) => {
                let n = (end - start + 1) as usize;
                let (first, rev) = if desc {
                    (z.len() - 1 - start as usize, true)
                } else {
                    (start as usize, false)
                };
                z.iter_range(first, n, rev)
                    .map(|(m, _)| m.to_vec())
                    .collect()
            }
            None => z.iter().map(|(m, _)| m.to_vec()).collect(),
        },
        Object::Str(_) | Object::Hash(_) | Object::Stream(_) => Vec::new(),
    }
}

/// Number of elements of a sortable object.
fn object_len(obj: &Object) -> i64 {
    match obj {
        Object::List(l) => l.len() as i64,
        Object::Set(s) => s.len() as i64,
        Object::ZSet(z) => z.len() as i64,
        Object::Str(_) | Object::Hash(_) | Object::Stream(_) => 0,
    }
}

/// Builds the list STORE writes, encoded as Redis 7.2 encodes it: the
/// elements are pushed into a quicklist (nodes filled by the usual node
/// rules), which becomes a listpack when everything fit in one node
/// (`listTypeTryConversion(LIST_CONV_AUTO)`).
fn make_list(ctx: &Ctx<'_>, items: Vec<Vec<u8>>) -> Object {
    use kvik_core::list::{End, List};
    let fill = ctx
        .srv
        .tun
        .list_max_listpack_size
        .load(std::sync::atomic::Ordering::Relaxed);
    let mut quick = List::new();
    // Growing by "everything" always passes the limit: an empty quicklist.
    quick.grow_for(fill, usize::MAX, usize::MAX);
    for v in &items {
        quick.push(End::Tail, v);
    }
    if quick.node_count() > 1 {
        return Object::List(quick);
    }
    drop(quick);
    let mut pack = List::new();
    for v in &items {
        pack.push(End::Tail, v);
    }
    Object::List(pack)
}

// ---------------------------------------------------------------------------
// The command
// ---------------------------------------------------------------------------

fn sort(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    sort_generic(ctx, args, false);
}

fn sort_ro(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    sort_generic(ctx, args, true);
}

/// The kind of object being sorted.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SourceKind {
    List,
    Set,
    ZSet,
}

fn sort_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], readonly: bool) {
    let opts = match parse_options(args, readonly) {
        Ok(o) => o,
        Err(e) => return ctx.error(e.message()),
    };
    let mut dontsort = opts.dontsort;
    let mut alpha = opts.alpha;
    let mut by = opts.by;

    // Load the source (one lookup, as Redis does): a missing key sorts as
    // an empty list.
    let zlimits = super::zsets::limits(ctx);
    let loaded = match ctx.ks.lookup_read(args[1]) {
        None => Ok((SourceKind::List, 0, Vec::new(), (-1, -2))),
        Some(e) => {
            // Redis converts a listpack sorted set to a skiplist for good
            // before sorting it (even SORT_RO does); OBJECT ENCODING shows it.
            if let Some(Object::ZSet(z)) = e.object_mut() {
                let always = kvik_core::zset::Limits {
                    max_entries: 0,
                    ..zlimits
                };
                z.maybe_convert(1, always);
            }
            match e.value() {
                ValueRef::Obj(o) => {
                    let kind = match o {
                        Object::List(_) => Some(SourceKind::List),
                        Object::Set(_) => Some(SourceKind::Set),
                        Object::ZSet(_) => Some(SourceKind::ZSet),
                        _ => None,
                    };
                    match kind {
                        Some(kind) => {
                            // A set has no meaningful native order: when
                            // storing, sort it alphabetically so the stored
                            // result is deterministic.
                            if dontsort && kind == SourceKind::Set && opts.store.is_some() {
                                dontsort = false;
                                alpha = true;
                                by = None;
                            }
                            let len = object_len(o);
                            let (start, end) = limit_window(opts.limit, len);
                            // Lists and sorted sets in native order load just
                            // the window.
                            let native = dontsort && kind != SourceKind::Set;
                            let elements = if native {
                                if end >= start {
                                    load_elements(o, Some((start, end)), opts.desc)
                                } else {
                                    Vec::new()
                                }
                            } else {
                                load_elements(o, None, opts.desc)
                            };
                            Ok((kind, len, elements, (start, end)))
                        }
                        None => Err(()),
                    }
                }
                _ => Err(()),
            }
        }
    };
    let Ok((kind, _len, elements, (mut start, mut end))) = loaded else {
        return ctx.error(err::WRONGTYPE);
    };
    if dontsort && kind != SourceKind::Set {
        // The loaded window is now the whole vector.
        if end >= start {
            end -= start;
        } else {
            end = -1;
        }
        start = 0;
    }
    let mut items: Vec<SortItem> = elements.into_iter().map(SortItem::new).collect();

    let mut conversion_error = false;
    if !dontsort {
        for item in items.iter_mut() {
            let looked_up;
            let value: &[u8] = match by {
                Some(p) => match lookup_pattern(ctx, p, &item.elem) {
                    Some(v) => {
                        looked_up = v;
                        &looked_up
                    }
                    None => continue,
                },
                // ALPHA without BY compares the elements themselves.
                None if alpha => continue,
                None => &item.elem,
            };
            if alpha {
                item.cmp = Some(value.to_vec());
            } else {
                match sort_score(value) {
                    Some(s) => item.score = s,
                    None => conversion_error = true,
                }
            }
        }
        let mode = SortMode {
            desc: opts.desc,
            alpha,
            by_pattern: by.is_some(),
            store: opts.store.is_some(),
        };
        let n = items.len() as i64;
        if by.is_some() && (start != 0 || end != n - 1) && start >= 0 && end >= start {
            pqsort(
                &mut items,
                &mut |a, b| compare(mode, a, b),
                start as usize,
                end as usize,
            );
        } else if by.is_some() && (start != 0 || end != n - 1) {
            // An empty window: Redis's pqsort still partitions, but nothing
            // of it is visible.
        } else {
            items.sort_by(|a, b| compare(mode, a, b));
        }
    }

    if conversion_error {
        return ctx.error("ERR One or more scores can't be converted into double");
    }
    let window: &[SortItem] = if end >= start && start >= 0 {
        items.get(start as usize..=end as usize).unwrap_or(&[])
    } else {
        &[]
    };
    let window_len = window.len();
    let outputlen = if opts.gets.is_empty() {
        window_len
    } else {
        opts.gets.len() * window_len
    };

    match opts.store {
        None => {
            ctx.out.array(outputlen);
            for item in window {
                if opts.gets.is_empty() {
                    ctx.out.bulk(&item.elem);
                }
                for g in &opts.gets {
                    match lookup_pattern(ctx, g, &item.elem) {
                        Some(v) => ctx.out.bulk(&v),
                        None => ctx.out.null(),
                    }
                }
            }
        }
        Some(dst) => {
            let mut out: Vec<Vec<u8>> = Vec::with_capacity(outputlen);
            for item in window {
                if opts.gets.is_empty() {
                    out.push(item.elem.clone());
                }
                for g in &opts.gets {
                    out.push(lookup_pattern(ctx, g, &item.elem).unwrap_or_default());
                }
            }
            if outputlen > 0 {
                let list = make_list(ctx, out);
                ctx.ks.insert(Entry::new(dst, NewValue::Obj(list), None));
                ctx.ks.notify(crate::util::notify::LIST, "sortstore", dst);
            } else if ctx.ks.remove(dst).is_some() {
                ctx.ks.notify(crate::util::notify::GENERIC, "del", dst);
            }
            ctx.out.int(outputlen as i64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<Vec<u8>> {
        s.split(' ').map(|a| a.as_bytes().to_vec()).collect()
    }

    fn parse(s: &str, ro: bool) -> Result<SortOptions<'static>, SortParseError> {
        let owned: &'static Vec<Vec<u8>> = Box::leak(Box::new(args(s)));
        let refs: Vec<&'static [u8]> = owned.iter().map(|a| a.as_slice()).collect();
        parse_options(&refs, ro).map(|o| SortOptions {
            gets: o.gets.clone(),
            ..o
        })
    }

    #[test]
    fn options() {
        let o = parse(
            "sort k desc ALPHA limit 1 2 by w_* get # get h_*->f store d",
            false,
        )
        .unwrap();
        assert!(o.desc && o.alpha && !o.dontsort);
        assert_eq!(o.limit, Some((1, 2)));
        assert_eq!(o.by, Some(&b"w_*"[..]));
        assert_eq!(o.gets, vec![&b"#"[..], &b"h_*->f"[..]]);
        assert_eq!(o.store, Some(&b"d"[..]));
        assert!(parse("sort k by nosort", false).unwrap().dontsort);
        assert_eq!(parse("sort k store d", true), Err(SortParseError::Syntax));
        assert_eq!(parse("sort k limit 1", false), Err(SortParseError::Syntax));
        assert_eq!(
            parse("sort k limit a 1", false),
            Err(SortParseError::NotInt)
        );
        assert_eq!(parse("sort k by", false), Err(SortParseError::Syntax));
        assert_eq!(parse("sort k foo", false), Err(SortParseError::Syntax));
        let o = parse("sort k desc asc", false).unwrap();
        assert!(!o.desc);
        let a: Vec<&[u8]> = vec![b"sort", b"k", b"asc\0x", b"by", b"a\0*"];
        let o = parse_options(&a, false).unwrap();
        assert!(o.dontsort);
    }

    #[test]
    fn windows() {
        assert_eq!(limit_window(None, 5), (0, 4));
        assert_eq!(limit_window(None, 0), (-1, -2));
        assert_eq!(limit_window(Some((1, 2)), 5), (1, 2));
        assert_eq!(limit_window(Some((-5, 2)), 5), (0, 1));
        assert_eq!(limit_window(Some((3, 100)), 5), (3, 4));
        assert_eq!(limit_window(Some((5, 1)), 5), (4, 3));
        assert_eq!(limit_window(Some((0, 0)), 5), (0, -1));
        assert_eq!(limit_window(Some((0, -7)), 5), (0, 4));
        assert_eq!(limit_window(Some((i64::MAX, i64::MAX)), 5), (4, 3));
        assert_eq!(limit_window(Some((i64::MIN, i64::MIN)), 5), (0, 4));
        assert_eq!(limit_window(Some((2, i64::MAX)), 5), (2, 4));
    }

    #[test]
    fn patterns() {
        assert_eq!(substitute(b"#", b"x"), PatternTarget::Element);
        assert_eq!(substitute(b"#\0z", b"x"), PatternTarget::Element);
        assert_eq!(substitute(b"##", b"x"), PatternTarget::Nothing);
        assert_eq!(substitute(b"nosort", b"x"), PatternTarget::Nothing);
        assert_eq!(
            substitute(b"w_*", b"x"),
            PatternTarget::Key(b"w_x".to_vec())
        );
        assert_eq!(
            substitute(b"*_*", b"x"),
            PatternTarget::Key(b"x_*".to_vec())
        );
        assert_eq!(
            substitute(b"h_*->f", b"x"),
            PatternTarget::HashField(b"h_x".to_vec(), b"f")
        );
        assert_eq!(
            substitute(b"h_*->", b"x"),
            PatternTarget::Key(b"h_x->".to_vec())
        );
        assert_eq!(
            substitute(b"h_*a->b->c", b"x"),
            PatternTarget::HashField(b"h_xa".to_vec(), b"b->c")
        );
        // `->` before the `*` does not count.
        assert_eq!(
            substitute(b"a->*", b"x"),
            PatternTarget::Key(b"a->x".to_vec())
        );
        // The field keeps bytes after a NUL.
        assert_eq!(
            substitute(b"h_*->f\0g", b"x"),
            PatternTarget::HashField(b"h_x".to_vec(), b"f\0g")
        );
        // A NUL before `*` hides it.
        assert_eq!(substitute(b"a\0*", b"x"), PatternTarget::Nothing);
    }

    #[test]
    fn scores() {
        assert_eq!(sort_score(b"1.5"), Some(1.5));
        assert_eq!(sort_score(b" 2"), Some(2.0));
        assert_eq!(sort_score(b""), Some(0.0));
        assert_eq!(sort_score(b"3\0x"), Some(3.0));
        assert_eq!(sort_score(b"inf"), Some(f64::INFINITY));
        assert_eq!(sort_score(b"nan"), None);
        assert_eq!(sort_score(b"1e400"), None);
        assert_eq!(sort_score(b"abc"), None);
        assert_eq!(sort_score(b"1 "), None);
    }

    fn item(e: &str, score: f64, cmp: Option<&str>) -> SortItem {
        SortItem {
            elem: e.as_bytes().to_vec(),
            score,
            cmp: cmp.map(|c| c.as_bytes().to_vec()),
        }
    }

    #[test]
    fn comparisons() {
        let num = SortMode {
            desc: false,
            alpha: false,
            by_pattern: false,
            store: false,
        };
        assert_eq!(
            compare(num, &item("b", 1.0, None), &item("a", 2.0, None)),
            Ordering::Less
        );
        assert_eq!(
            compare(num, &item("b", 1.0, None), &item("a", 1.0, None)),
            Ordering::Greater
        );
        let desc = SortMode { desc: true, ..num };
        assert_eq!(
            compare(desc, &item("b", 1.0, None), &item("a", 2.0, None)),
            Ordering::Greater
        );
        let alpha_by = SortMode {
            alpha: true,
            by_pattern: true,
            ..num
        };
        assert_eq!(
            compare(alpha_by, &item("a", 0.0, None), &item("b", 0.0, None)),
            Ordering::Equal
        );
        assert_eq!(
            compare(alpha_by, &item("a", 0.0, None), &item("b", 0.0, Some(""))),
            Ordering::Less
        );
        let alpha = SortMode { alpha: true, ..num };
        assert_eq!(
            compare(alpha, &item("a\0b", 0.0, None), &item("a\0c", 0.0, None)),
            Ordering::Equal
        );
        let alpha_store = SortMode {
            store: true,
            ..alpha
        };
        assert_eq!(
            compare(
                alpha_store,
                &item("a\0b", 0.0, None),
                &item("a\0c", 0.0, None)
            ),
            Ordering::Less
        );
    }

    /// A tiny deterministic generator for the property checks.
    fn next(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    /// Runs SORT's partial sort the way `SORT l BY w_* ALPHA [DESC] LIMIT`
    /// does over elements `e1..=en`, with weights for some of them.
    fn sort_alpha_by(
        n: usize,
        weights: &[(&str, &str)],
        desc: bool,
        start: usize,
        count: usize,
    ) -> String {
        let mut items: Vec<SortItem> = (1..=n)
            .map(|i| {
                let e = format!("e{i}");
                let w = weights.iter().find(|(k, _)| *k == e).map(|(_, w)| *w);
                item(&e, 0.0, w)
            })
            .collect();
        let mode = SortMode {
            desc,
            alpha: true,
            by_pattern: true,
            store: false,
        };
        let end = (start + count - 1).min(n - 1);
        pqsort(&mut items, &mut |a, b| compare(mode, a, b), start, end);
        items[start..=end]
            .iter()
            .map(|i| String::from_utf8_lossy(&i.elem).into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn pqsort_ties_like_redis() {
        // Replies of redis-server 7.0.15.
        assert_eq!(
            sort_alpha_by(50, &[], false, 0, 10),
            "e50 e2 e3 e4 e5 e6 e7 e8 e9 e10"
        );
        assert_eq!(sort_alpha_by(50, &[], false, 5, 3), "e6 e7 e8");
        assert_eq!(
            sort_alpha_by(50, &[], false, 40, 20),
            "e41 e42 e43 e44 e45 e46 e47 e48 e49 e1"
        );
        assert_eq!(sort_alpha_by(9, &[], false, 0, 3), "e9 e2 e3");
        let w = [("e3", "b"), ("e5", "a"), ("e7", "b"), ("e9", "a")];
        assert_eq!(sort_alpha_by(9, &w, false, 0, 4), "e6 e8 e1 e4");
        assert_eq!(sort_alpha_by(9, &w, true, 1, 5), "e7 e9 e5 e1 e6");
    }

    #[test]
    fn pqsort_sorts_the_window() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for round in 0..400 {
            let n = (next(&mut seed) % 120) as usize + 1;
            let v: Vec<u32> = (0..n).map(|_| (next(&mut seed) % 50) as u32).collect();
            let lo = (next(&mut seed) % n as u64) as usize;
            let hi = lo + (next(&mut seed) % (n - lo) as u64) as usize;
            let mut sorted = v.clone();
            sorted.sort();
            let mut got = v.clone();
            pqsort(&mut got, &mut |a, b| a.cmp(b), lo, hi);
            assert_eq!(&got[lo..=hi], &sorted[lo..=hi], "round {round}");
            let mut all = got.clone();
            all.sort();
            assert_eq!(all, sorted, "round {round}: not a permutation");
        }
    }
}
