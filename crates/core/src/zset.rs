//! Sorted sets: members with double scores, ordered by (score, member).
//!
//! Two encodings, switched at Redis's thresholds so `OBJECT ENCODING`
//! answers as Redis does:
//!
//! * `listpack` ([`pack`]): one contiguous buffer of entries sorted by
//!   (score, member), used up to `zset-max-listpack-entries` members of at
//!   most `zset-max-listpack-value` bytes.
//! * `skiplist` (Redis's name; here [`tree`] + [`dict`]): every member in
//!   one exactly sized heap record ([`rec`]), indexed twice: by an
//!   order-statistic B+tree of record handles (rank, rank → member and
//!   range bounds in O(log n)) and by an open-addressing member → record
//!   table (score lookups in O(1)). About 50 bytes per short member, where
//!   Redis spends a skiplist node, an sds and a dict entry (~110 bytes).
//!
//! Conversions follow Redis 7.2: `listpack` → `skiplist` when an insertion
//! would pass either threshold (or a ZADD brings more pairs than the entry
//! limit); back to `listpack` only for freshly stored results
//! ([`ZSet::from_unique_pairs`], [`ZSet::convert_to_listpack_if_needed`]).
//!
//! # API for other commands (GEO, SORT ...)
//!
//! * build: [`ZSet::new`], [`ZSet::with_hint`], [`ZSet::from_unique_pairs`]
//! * write: [`ZSet::insert`] (plain upsert), [`ZSet::add`] (ZADD flags),
//!   [`ZSet::remove`], [`ZSet::remove_range`], [`ZSet::pop`]
//! * read: [`ZSet::score`], [`ZSet::rank`], [`ZSet::get`], [`ZSet::iter`],
//!   [`ZSet::iter_range`], [`ZSet::range_by_score`],
//!   [`ZSet::score_range_ranks`], [`ZSet::lex_range_ranks`]
//! * ranges: [`ScoreRange`] (with Redis's `(` / `inf` parsing) and
//!   [`LexRange`].

mod dict;
mod pack;
mod rec;
mod tree;

#[cfg(test)]
mod tests;

use dict::Dict;
use pack::{cmp_pair, Pack, PackIter};
use rec::Rec;
use std::cmp::Ordering;
use tree::Tree;

/// The encoding thresholds (`zset-max-listpack-entries`,
/// `zset-max-listpack-value`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most members of a `listpack`-encoded set.
    pub max_entries: usize,
    /// Longest member (bytes) of a `listpack`-encoded set.
    pub max_value: usize,
}

impl Limits {
    /// Redis's defaults (128 entries, 64 bytes).
    pub const DEFAULT: Limits = Limits {
        max_entries: 128,
        max_value: 64,
    };

    /// Limits from configuration values (negative values count as 0).
    pub fn new(max_entries: i64, max_value: i64) -> Limits {
        Limits {
            max_entries: usize::try_from(max_entries).unwrap_or(0),
            max_value: usize::try_from(max_value).unwrap_or(0),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

// ---------------------------------------------------------------------------
// Ranges
// ---------------------------------------------------------------------------

/// A score interval, as given to ZRANGEBYSCORE / ZCOUNT: each bound
/// inclusive, or exclusive when written with a leading `(`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreRange {
    /// Lower bound.
    pub min: f64,
    /// Upper bound.
    pub max: f64,
    /// Whether `min` itself is excluded.
    pub minex: bool,
    /// Whether `max` itself is excluded.
    pub maxex: bool,
}

/// Parses one score bound as Redis's `zslParseRange`: C `strtod` on the
/// string (after an optional `(`), which must consume everything up to the
/// end or a NUL byte, and must not be NaN. So `inf`, `-inf`, `1e400`
/// (= inf), ` 1` (leading blanks) and even the empty string (= 0) are
/// accepted.
fn parse_score_bound(s: &[u8]) -> Option<(f64, bool)> {
    let (ex, body) = match s.first() {
        Some(b'(') => (true, &s[1..]),
        _ => (false, s),
    };
    let r = crate::num::strtod(body);
    let at_end = r.consumed == body.len() || body[r.consumed] == 0;
    (at_end && !r.value.is_nan()).then_some((r.value, ex))
}

impl ScoreRange {
    /// Parses `min` and `max` (`ERR min or max is not a float` on None).
    pub fn parse(min: &[u8], max: &[u8]) -> Option<ScoreRange> {
        let (min, minex) = parse_score_bound(min)?;
        let (max, maxex) = parse_score_bound(max)?;
        Some(ScoreRange {
            min,
            max,
            minex,
            maxex,
        })
    }

    /// The closed interval `[min, max]`.
    pub fn inclusive(min: f64, max: f64) -> ScoreRange {
        ScoreRange {
            min,
            max,
            minex: false,
            maxex: false,
        }
    }

    /// Whether `v` is above the lower bound.
    #[inline]
    pub fn gte_min(&self, v: f64) -> bool {
        if self.minex {
            v > self.min
        } else {
            v >= self.min
        }
    }

    /// Whether `v` is below the upper bound.
    #[inline]
    pub fn lte_max(&self, v: f64) -> bool {
        if self.maxex {
            v < self.max
        } else {
            v <= self.max
        }
    }

    /// Whether no score can be in the range.
    pub fn is_empty(&self) -> bool {
        self.min > self.max || (self.min == self.max && (self.minex || self.maxex))
    }
}

/// One bound of a lexicographic range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LexBound<'a> {
    /// `-`: below every member.
    Min,
    /// `+`: above every member.
    Max,
    /// `[value`.
    Incl(&'a [u8]),
    /// `(value`.
    Excl(&'a [u8]),
}

impl<'a> LexBound<'a> {
    /// Parses `-`, `+`, `[value` or `(value` as Redis's
    /// `zslParseLexRangeItem` (a `+`/`-` may only be followed by a NUL).
    pub fn parse(s: &'a [u8]) -> Option<LexBound<'a>> {
        match s.first()? {
            b'+' if s.len() == 1 || s[1] == 0 => Some(LexBound::Max),
            b'-' if s.len() == 1 || s[1] == 0 => Some(LexBound::Min),
            b'(' => Some(LexBound::Excl(&s[1..])),
            b'[' => Some(LexBound::Incl(&s[1..])),
            _ => None,
        }
    }

    fn exclusive(&self) -> bool {
        !matches!(self, LexBound::Incl(_))
    }

    /// Redis's `sdscmplex` between two bounds.
    fn cmp_bound(&self, other: &LexBound<'_>) -> Ordering {
        use LexBound::*;
        match (self, other) {
            (Min, Min) | (Max, Max) => Ordering::Equal,
            (Min, _) | (_, Max) => Ordering::Less,
            (Max, _) | (_, Min) => Ordering::Greater,
            (Incl(a) | Excl(a), Incl(b) | Excl(b)) => a.cmp(b),
        }
    }
}

/// A lexicographic member interval, as given to ZRANGEBYLEX / ZLEXCOUNT.
/// Meaningful when all scores are equal (then the order is by member).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LexRange<'a> {
    /// Lower bound.
    pub min: LexBound<'a>,
    /// Upper bound.
    pub max: LexBound<'a>,
}

impl<'a> LexRange<'a> {
    /// Parses both bounds (`ERR min or max not valid string range item` on
    /// None).
    pub fn parse(min: &'a [u8], max: &'a [u8]) -> Option<LexRange<'a>> {
        Some(LexRange {
            min: LexBound::parse(min)?,
            max: LexBound::parse(max)?,
        })
    }

    /// Whether `m` is above the lower bound.
    #[inline]
    pub fn gte_min(&self, m: &[u8]) -> bool {
        match self.min {
            LexBound::Min => true,
            LexBound::Max => false,
            LexBound::Incl(x) => m >= x,
            LexBound::Excl(x) => m > x,
        }
    }

    /// Whether `m` is below the upper bound.
    #[inline]
    pub fn lte_max(&self, m: &[u8]) -> bool {
        match self.max {
            LexBound::Max => true,
            LexBound::Min => false,
            LexBound::Incl(x) => m <= x,
            LexBound::Excl(x) => m < x,
        }
    }

    /// Whether the range is empty whatever the members.
    pub fn is_empty(&self) -> bool {
        match self.min.cmp_bound(&self.max) {
            Ordering::Greater => true,
            Ordering::Equal => self.min.exclusive() || self.max.exclusive(),
            Ordering::Less => false,
        }
    }
}

/// The order of sorted set entries: by score (`-0 == 0`), then by member
/// bytes.
pub fn cmp_entries(s1: f64, m1: &[u8], s2: f64, m2: &[u8]) -> Ordering {
    cmp_pair(s1, m1, s2, m2)
}

// ---------------------------------------------------------------------------
// ZADD semantics
// ---------------------------------------------------------------------------

/// ZADD options.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AddFlags {
    /// Only add new members.
    pub nx: bool,
    /// Only update existing members.
    pub xx: bool,
    /// Only update when the new score is greater.
    pub gt: bool,
    /// Only update when the new score is less.
    pub lt: bool,
    /// Add the score to the current one (ZINCRBY).
    pub incr: bool,
}

/// What [`ZSet::add`] did (Redis's `zsetAdd` out flags).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AddOutcome {
    /// A new member, with this score.
    Added(f64),
    /// An existing member got this new score.
    Updated(f64),
    /// An existing member already had this score.
    Unchanged(f64),
    /// Nothing done because of NX / XX / GT / LT.
    Skipped,
    /// The score (or the incremented score) is NaN; nothing done.
    Nan,
}

// ---------------------------------------------------------------------------
// The large encoding
// ---------------------------------------------------------------------------

/// Records indexed by order and by member.
struct Big {
    tree: Tree,
    dict: Dict,
    /// Bytes of the records (as allocated, with malloc rounding).
    rec_bytes: usize,
}

/// Approximate bytes a malloc of `n` bytes takes (16-byte classes plus an
/// 8-byte header, 32 at least).
fn malloc_cost(n: usize) -> usize {
    ((n + 8 + 15) & !15).max(32)
}

impl Big {
    fn with_capacity(n: usize) -> Big {
        Big {
            tree: Tree::default(),
            dict: Dict::with_capacity(n),
            rec_bytes: 0,
        }
    }

    /// Builds from pairs sorted by (score, member), members unique.
    fn from_sorted<'a>(pairs: impl ExactSizeIterator<Item = (&'a [u8], f64)>) -> Big {
        let n = pairs.len();
        let mut dict = Dict::with_capacity(n);
        let mut recs = Vec::with_capacity(n);
        let mut rec_bytes = 0;
        for (m, s) in pairs {
            let r = Rec::new(m, s);
            rec_bytes += malloc_cost(r.alloc_size());
            dict.insert(r);
            recs.push(r);
        }
        Big {
            tree: Tree::from_sorted(recs),
            dict,
            rec_bytes,
        }
    }

    fn len(&self) -> usize {
        self.tree.len()
    }

    fn insert_new(&mut self, member: &[u8], score: f64) {
        let r = Rec::new(member, score);
        self.rec_bytes += malloc_cost(r.alloc_size());
        self.dict.insert(r);
        self.tree.insert(r);
    }

    fn set_score(&mut self, rec: Rec, score: f64) {
        let old = rec.score();
        let taken = self.tree.remove(old, rec.member());
        debug_assert!(taken == Some(rec));
        rec.set_score(score);
        self.tree.insert(rec);
    }

    /// Drops a record already taken out of the tree.
    fn discard(&mut self, rec: Rec) {
        self.dict.remove_rec(rec);
        self.rec_bytes -= malloc_cost(rec.alloc_size());
        // SAFETY: the record left both indexes; no handle remains.
        unsafe { rec.free() };
    }

    fn heap_size(&self) -> usize {
        std::mem::size_of::<Big>() + self.tree.heap_size() + self.dict.heap_size() + self.rec_bytes
    }
}

impl Drop for Big {
    fn drop(&mut self) {
        // SAFETY: each record is in the tree exactly once; the dictionary
        // goes away with it and is not read again.
        self.tree.for_each(|r| unsafe { r.free() });
    }
}

impl Clone for Big {
    fn clone(&self) -> Big {
        let it = self
            .tree
            .iter_at(0, self.len(), false)
            .map(|r| (r.member(), r.score()));
        Big::from_sorted(it)
    }
}

// ---------------------------------------------------------------------------
// ZSet
// ---------------------------------------------------------------------------

#[derive(Clone)]
enum Enc {
    Pack(Pack),
    Big(Box<Big>),
}

/// A sorted set.
#[derive(Clone)]
pub struct ZSet {
    enc: Enc,
}

impl Default for ZSet {
    fn default() -> Self {
        ZSet::new()
    }
}

impl std::fmt::Debug for ZSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZSet")
            .field("encoding", &self.encoding())
            .field("len", &self.len())
            .finish()
    }
}

impl PartialEq for ZSet {
    /// Same members with the same scores (whatever the encodings).
    fn eq(&self, other: &ZSet) -> bool {
        self.len() == other.len()
            && self
                .iter()
                .zip(other.iter())
                .all(|((m1, s1), (m2, s2))| m1 == m2 && s1.to_bits() == s2.to_bits())
    }
}

/// Iterator over (member, score) pairs of a [`ZSet`].
pub struct Iter<'a> {
    inner: IterInner<'a>,
}

enum IterInner<'a> {
    Pack(std::iter::Take<PackIter<'a>>),
    Rev(std::iter::Rev<std::vec::IntoIter<(&'a [u8], f64)>>),
    Tree(tree::Iter<'a>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], f64);

    #[inline]
    fn next(&mut self) -> Option<(&'a [u8], f64)> {
        match &mut self.inner {
            IterInner::Pack(it) => it.next(),
            IterInner::Rev(it) => it.next(),
            IterInner::Tree(it) => it.next().map(|r| (r.member(), r.score())),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.inner {
            IterInner::Pack(it) => it.size_hint(),
            IterInner::Rev(it) => it.size_hint(),
            IterInner::Tree(it) => it.size_hint(),
        }
    }
}

impl ExactSizeIterator for Iter<'_> {}

/// Random access by rank for repeated sampling (ZRANDMEMBER): the small
/// encoding is decoded once, the large one is indexed in O(log n).
pub struct Sampler<'a> {
    decoded: Vec<(&'a [u8], f64)>,
    set: &'a ZSet,
}

impl<'a> Sampler<'a> {
    /// The element at `rank` (< the set's length).
    pub fn get(&self, rank: usize) -> Option<(&'a [u8], f64)> {
        match &self.set.enc {
            Enc::Pack(_) => self.decoded.get(rank).copied(),
            Enc::Big(b) => b.tree.get(rank).map(|r| (r.member(), r.score())),
        }
    }
}

impl ZSet {
    /// An empty set (`listpack`).
    pub fn new() -> ZSet {
        ZSet {
            enc: Enc::Pack(Pack::default()),
        }
    }

    /// An empty set in the encoding Redis 7.2's `zsetTypeCreate` picks for
    /// `size_hint` members whose (first) member is `value_len_hint` bytes.
    pub fn with_hint(size_hint: usize, value_len_hint: usize, limits: Limits) -> ZSet {
        if size_hint <= limits.max_entries && value_len_hint <= limits.max_value {
            ZSet::new()
        } else {
            ZSet {
                enc: Enc::Big(Box::new(Big::with_capacity(size_hint))),
            }
        }
    }

    /// Builds a set from pairs with distinct members (any order), in the
    /// encoding Redis gives a stored result: `listpack` when it has at most
    /// `max_entries` members, none longer than `max_value`.
    pub fn from_unique_pairs<M: AsRef<[u8]>>(mut pairs: Vec<(M, f64)>, limits: Limits) -> ZSet {
        pairs.sort_by(|a, b| cmp_pair(a.1, a.0.as_ref(), b.1, b.0.as_ref()));
        debug_assert!(pairs.windows(2).all(|w| w[0].0.as_ref() != w[1].0.as_ref()));
        let small = pairs.len() <= limits.max_entries
            && pairs
                .iter()
                .all(|(m, _)| m.as_ref().len() <= limits.max_value);
        let it = pairs.iter().map(|(m, s)| (m.as_ref(), *s));
        ZSet {
            enc: if small {
                Enc::Pack(Pack::from_sorted(it))
            } else {
                Enc::Big(Box::new(Big::from_sorted(it)))
            },
        }
    }

    /// Redis's `zsetTypeMaybeConvert`: a `listpack` set about to receive
    /// `size_hint` members (a ZADD's pair count) past the entry limit turns
    /// into a `skiplist` first.
    pub fn maybe_convert(&mut self, size_hint: usize, limits: Limits) {
        if matches!(self.enc, Enc::Pack(_)) && size_hint > limits.max_entries {
            self.convert_to_big(size_hint);
        }
    }

    /// Redis's `zsetConvertToListpackIfNeeded` (for stored results built
    /// member by member, e.g. GEORADIUS STORE).
    pub fn convert_to_listpack_if_needed(&mut self, limits: Limits) {
        if let Enc::Big(b) = &self.enc {
            if b.len() <= limits.max_entries
                && self.iter().all(|(m, _)| m.len() <= limits.max_value)
            {
                let p = Pack::from_sorted(self.iter());
                self.enc = Enc::Pack(p);
            }
        }
    }

    fn convert_to_big(&mut self, capacity: usize) {
        if let Enc::Pack(p) = &self.enc {
            let mut big = Big::from_sorted(p.iter());
            if capacity > big.len() {
                // Presize the member index as Redis's dictExpand does.
                let mut dict = Dict::with_capacity(capacity);
                big.tree.for_each(|r| dict.insert(r));
                big.dict = dict;
            }
            self.enc = Enc::Big(Box::new(big));
        }
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        match &self.enc {
            Enc::Pack(p) => p.len(),
            Enc::Big(b) => b.len(),
        }
    }

    /// Whether the set has no members.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The Redis encoding name (`OBJECT ENCODING`).
    pub fn encoding(&self) -> &'static str {
        match &self.enc {
            Enc::Pack(_) => "listpack",
            Enc::Big(_) => "skiplist",
        }
    }

    /// Whether the set uses the compact encoding.
    pub fn is_listpack(&self) -> bool {
        matches!(self.enc, Enc::Pack(_))
    }

    /// Approximate heap bytes used.
    pub fn heap_size(&self) -> usize {
        match &self.enc {
            Enc::Pack(p) => p.heap_size(),
            Enc::Big(b) => b.heap_size(),
        }
    }

    /// The score of `member`.
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match &self.enc {
            Enc::Pack(p) => p.find(member).map(|s| s.score),
            Enc::Big(b) => b.dict.get(member).map(Rec::score),
        }
    }

    /// The ascending rank of `member`, with its score.
    pub fn rank(&self, member: &[u8]) -> Option<(usize, f64)> {
        match &self.enc {
            Enc::Pack(p) => p.find(member).map(|s| (s.index, s.score)),
            Enc::Big(b) => {
                let r = b.dict.get(member)?;
                let score = r.score();
                b.tree.rank(score, member).map(|i| (i, score))
            }
        }
    }

    /// The member at ascending `rank`, with its score.
    pub fn get(&self, rank: usize) -> Option<(&[u8], f64)> {
        match &self.enc {
            Enc::Pack(p) => p.iter().nth(rank),
            Enc::Big(b) => b.tree.get(rank).map(|r| (r.member(), r.score())),
        }
    }

    /// All members in ascending order.
    pub fn iter(&self) -> Iter<'_> {
        self.iter_range(0, self.len(), false)
    }

    /// `count` members from ascending rank `start` (clamped to the set),
    /// going up, or down when `rev` (then `start` is the highest rank).
    pub fn iter_range(&self, start: usize, count: usize, rev: bool) -> Iter<'_> {
        let len = self.len();
        let inner = match &self.enc {
            Enc::Pack(p) => {
                if start >= len {
                    IterInner::Pack(p.iter().take(0))
                } else if !rev {
                    let mut it = p.iter();
                    if start > 0 {
                        it.nth(start - 1);
                    }
                    IterInner::Pack(it.take(count))
                } else {
                    let v: Vec<_> = p.iter().take(start + 1).collect();
                    let skip = v.len().saturating_sub(count);
                    let v: Vec<_> = v.into_iter().skip(skip).collect();
                    IterInner::Rev(v.into_iter().rev())
                }
            }
            Enc::Big(b) => IterInner::Tree(b.tree.iter_at(start, count, rev)),
        };
        Iter { inner }
    }

    /// The members whose score is in `range`, ascending.
    pub fn range_by_score(&self, range: &ScoreRange) -> Iter<'_> {
        let (lo, hi) = self.score_range_ranks(range);
        self.iter_range(lo, hi - lo, false)
    }

    /// Ascending ranks `lo..hi` of the members with scores in `range`.
    pub fn score_range_ranks(&self, range: &ScoreRange) -> (usize, usize) {
        if range.is_empty() {
            return (0, 0);
        }
        match &self.enc {
            Enc::Pack(p) => {
                let mut lo = 0;
                let mut hi = 0;
                for (i, (_, s)) in p.iter().enumerate() {
                    if !range.gte_min(s) {
                        lo = i + 1;
                        hi = i + 1;
                    } else if range.lte_max(s) {
                        hi = i + 1;
                    } else {
                        break;
                    }
                }
                (lo, hi)
            }
            Enc::Big(b) => {
                let lo = b.tree.partition_point(|r| !range.gte_min(r.score()));
                let hi = b.tree.partition_point(|r| range.lte_max(r.score()));
                (lo, hi.max(lo))
            }
        }
    }

    /// Ascending ranks `lo..hi` of the members in the lexicographic
    /// `range` (scores assumed equal, as Redis does).
    pub fn lex_range_ranks(&self, range: &LexRange<'_>) -> (usize, usize) {
        if range.is_empty() || self.is_empty() {
            return (0, 0);
        }
        match &self.enc {
            Enc::Pack(p) => {
                // Redis's listpack walk: quick rejection on the ends, then
                // the first member above min and the run below max.
                let last = p.iter().last().map(|e| e.0).unwrap_or_default();
                let first = p.iter().next().map(|e| e.0).unwrap_or_default();
                if !range.gte_min(last) || !range.lte_max(first) {
                    return (0, 0);
                }
                let mut it = p.iter().enumerate();
                let Some((lo, _)) = it.by_ref().find(|(_, (m, _))| range.gte_min(m)) else {
                    return (0, 0);
                };
                let hi = p
                    .iter()
                    .enumerate()
                    .skip(lo)
                    .find(|(_, (m, _))| !range.lte_max(m))
                    .map_or(p.len(), |(i, _)| i);
                (lo, hi)
            }
            Enc::Big(b) => {
                let lo = b.tree.partition_point(|r| !range.gte_min(r.member()));
                let hi = b.tree.partition_point(|r| range.lte_max(r.member()));
                (lo, hi.max(lo))
            }
        }
    }

    /// Random access helper for sampling by rank.
    pub fn sampler(&self) -> Sampler<'_> {
        Sampler {
            decoded: match &self.enc {
                Enc::Pack(p) => p.iter().collect(),
                Enc::Big(_) => Vec::new(),
            },
            set: self,
        }
    }

    /// ZADD / ZINCRBY on one member, with Redis 7.2's `zsetAdd` semantics
    /// (including the conversion to `skiplist` before an insertion that
    /// would pass the limits).
    pub fn add(
        &mut self,
        member: &[u8],
        score: f64,
        flags: AddFlags,
        limits: Limits,
    ) -> AddOutcome {
        if score.is_nan() {
            return AddOutcome::Nan;
        }
        match self.score(member) {
            Some(cur) => {
                if flags.nx {
                    return AddOutcome::Skipped;
                }
                let mut new = score;
                if flags.incr {
                    new += cur;
                    if new.is_nan() {
                        return AddOutcome::Nan;
                    }
                }
                if (flags.lt && new >= cur) || (flags.gt && new <= cur) {
                    return AddOutcome::Skipped;
                }
                if new != cur {
                    self.set_score(member, new);
                    AddOutcome::Updated(new)
                } else {
                    AddOutcome::Unchanged(new)
                }
            }
            None if flags.xx => AddOutcome::Skipped,
            None => {
                self.insert_new(member, score, limits);
                AddOutcome::Added(score)
            }
        }
    }

    /// Sets `member`'s score, adding it if absent. Returns whether it was
    /// added. `score` must not be NaN (NaN is ignored).
    pub fn insert(&mut self, member: &[u8], score: f64, limits: Limits) -> bool {
        matches!(
            self.add(member, score, AddFlags::default(), limits),
            AddOutcome::Added(_)
        )
    }

    fn insert_new(&mut self, member: &[u8], score: f64, limits: Limits) {
        if let Enc::Pack(p) = &self.enc {
            if p.len() + 1 > limits.max_entries || member.len() > limits.max_value {
                self.convert_to_big(p.len() + 1);
            }
        }
        match &mut self.enc {
            Enc::Pack(p) => p.insert(member, score),
            Enc::Big(b) => b.insert_new(member, score),
        }
    }

    /// Changes the score of an existing member.
    fn set_score(&mut self, member: &[u8], score: f64) {
        match &mut self.enc {
            Enc::Pack(p) => {
                if let Some(s) = p.find(member) {
                    p.remove_span(s.start, s.end, 1);
                    p.insert(member, score);
                }
            }
            Enc::Big(b) => {
                if let Some(r) = b.dict.get(member) {
                    b.set_score(r, score);
                }
            }
        }
    }

    /// Removes `member`; returns whether it was there.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        match &mut self.enc {
            Enc::Pack(p) => match p.find(member) {
                Some(s) => {
                    p.remove_span(s.start, s.end, 1);
                    true
                }
                None => false,
            },
            Enc::Big(b) => {
                let Some(r) = b.dict.get(member) else {
                    return false;
                };
                let taken = b.tree.remove(r.score(), member);
                debug_assert!(taken == Some(r));
                b.discard(r);
                true
            }
        }
    }

    /// Removes the members of ascending ranks `from..to`; returns how many.
    pub fn remove_range(&mut self, from: usize, to: usize) -> usize {
        let to = to.min(self.len());
        if from >= to {
            return 0;
        }
        match &mut self.enc {
            Enc::Pack(p) => p.remove_range(from, to),
            Enc::Big(b) => {
                if from == 0 && to == b.len() {
                    // Everything goes: drop the indexes wholesale (keeping
                    // the encoding, as Redis does).
                    **b = Big::with_capacity(0);
                } else {
                    for _ in from..to {
                        if let Some(r) = b.tree.remove_at(from) {
                            b.discard(r);
                        }
                    }
                }
            }
        }
        to - from
    }

    /// Removes and returns the member with the lowest score (or the highest
    /// when `max`).
    pub fn pop(&mut self, max: bool) -> Option<(Vec<u8>, f64)> {
        let len = self.len();
        if len == 0 {
            return None;
        }
        let rank = if max { len - 1 } else { 0 };
        match &mut self.enc {
            Enc::Pack(p) => {
                let (m, s) = p.iter().nth(rank).map(|(m, s)| (m.to_vec(), s))?;
                p.remove_range(rank, rank + 1);
                Some((m, s))
            }
            Enc::Big(b) => {
                let r = b.tree.remove_at(rank)?;
                let out = (r.member().to_vec(), r.score());
                b.discard(r);
                Some(out)
            }
        }
    }

    /// One ZSCAN step: calls `f` for the members of this step and returns
    /// the next cursor (0 when done). The compact encoding is returned
    /// whole in one step, as Redis does.
    pub fn scan<'a>(&'a self, cursor: u64, mut f: impl FnMut(&'a [u8], f64)) -> u64 {
        match &self.enc {
            Enc::Pack(p) => {
                p.iter().for_each(|(m, s)| f(m, s));
                0
            }
            Enc::Big(b) => b.dict.scan(cursor, |r| f(r.member(), r.score())),
        }
    }

    /// Checks internal invariants (tests).
    #[cfg(test)]
    pub(crate) fn check(&self) {
        if let Enc::Big(b) = &self.enc {
            b.tree.check();
            let mut n = 0;
            b.tree.for_each(|r| {
                assert!(b.dict.get(r.member()) == Some(r));
                n += 1;
            });
            assert_eq!(n, b.len());
        }
    }
}
