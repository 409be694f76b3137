//! Sets, in Redis 7.2's three encodings, converting at the same thresholds:
//!
//! * `intset`: every member is a canonical 64-bit integer (`"01"` is not)
//!   and there are at most `set-max-intset-entries`; one sorted contiguous
//!   array of 16-, 32- or 64-bit integers whose width only grows.
//! * `listpack`: at most `set-max-listpack-entries` members of at most
//!   `set-max-listpack-value` bytes; one buffer of length-prefixed members
//!   in insertion order.
//! * `hashtable`: everything else; an open-addressing table of 8-byte
//!   slots (see [`MemberTable`]). Integers below 2^61 and strings of up to
//!   7 bytes live in the slot itself; longer members are one exactly sized
//!   allocation (a varint length and the bytes), so a 16-byte member costs
//!   one 8-byte slot (at 60-80% load) plus a 17-byte allocation, where
//!   Redis spends a dict bucket, a dictEntry and an sds string.
//!
//! As in Redis, a set never goes back to a smaller encoding when members
//! are removed; only the rebuilds Redis does (SPOP of most of a set,
//! SINTERSTORE of integers) produce a smaller encoding.

use crate::num::parse_i64;
use std::ptr;

const _: () = assert!(usize::BITS == 64, "sets pack members into 64-bit slots");

/// Redis's `LISTPACK_MAX_SAFETY_SIZE`: a listpack never grows past 1 GiB.
const LISTPACK_MAX_SAFETY: usize = 1 << 30;
/// Redis limits intsets to 2^30 entries whatever the configuration says.
const INTSET_HARD_MAX: usize = 1 << 30;

/// Encoding thresholds (from `set-max-intset-entries`,
/// `set-max-listpack-entries` and `set-max-listpack-value`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `set-max-intset-entries`.
    pub intset_entries: usize,
    /// `set-max-listpack-entries`.
    pub listpack_entries: usize,
    /// `set-max-listpack-value`.
    pub listpack_value: usize,
}

impl Limits {
    /// Redis's defaults (512, 128, 64).
    pub const DEFAULT: Limits = Limits {
        intset_entries: 512,
        listpack_entries: 128,
        listpack_value: 64,
    };

    /// Limits from configuration values (negative values count as 0).
    pub fn new(intset_entries: i64, listpack_entries: i64, listpack_value: i64) -> Limits {
        let u = |v: i64| usize::try_from(v).unwrap_or(0);
        Limits {
            intset_entries: u(intset_entries),
            listpack_entries: u(listpack_entries),
            listpack_value: u(listpack_value),
        }
    }

    /// Most entries an intset may hold (Redis's `intsetMaxEntries`).
    fn intset_max(&self) -> usize {
        self.intset_entries.min(INTSET_HARD_MAX)
    }
}

/// One member as stored: an integer (intset members and small integers
/// of a hashtable), a borrowed string, or a short string copied out of a
/// hashtable slot. [`Member::bytes`] gives the member's string form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Member<'a> {
    /// A canonical integer (its decimal form is the member).
    Int(i64),
    /// The member's bytes.
    Str(&'a [u8]),
    /// A string of at most 7 bytes: byte 0 is the length, then the bytes.
    Inline([u8; 8]),
}

impl<'a> Member<'a> {
    /// The member's bytes; integers are formatted into `buf`.
    pub fn bytes<'b>(&'b self, buf: &'b mut [u8; 20]) -> &'b [u8] {
        match self {
            Member::Int(v) => crate::num::format_i64(*v, buf),
            Member::Str(s) => s,
            Member::Inline(b) => &b[1..1 + b[0] as usize],
        }
    }

    /// The member as an owned byte string.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut buf = [0u8; 20];
        self.bytes(&mut buf).to_vec()
    }
}

// ---------------------------------------------------------------------------
// varints (member lengths in listpacks and hashtable blobs)

fn varint_len(mut v: usize) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

fn put_varint(out: &mut Vec<u8>, mut v: usize) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a varint at the start of `b`: (value, bytes used).
fn get_varint(b: &[u8]) -> (usize, usize) {
    let mut v = 0usize;
    let mut shift = 0;
    for (i, &c) in b.iter().enumerate() {
        v |= ((c & 0x7f) as usize) << shift;
        if c & 0x80 == 0 {
            return (v, i + 1);
        }
        shift += 7;
    }
    (v, b.len())
}

// ---------------------------------------------------------------------------
// intset

/// Sorted integers at the narrowest width that holds them all (Redis's
/// intset: the width is upgraded when a wider value arrives and never
/// downgraded).
#[derive(Debug, Clone)]
enum Ints {
    W16(Vec<i16>),
    W32(Vec<i32>),
    W64(Vec<i64>),
}

impl Ints {
    fn new() -> Ints {
        Ints::W16(Vec::new())
    }

    fn len(&self) -> usize {
        match self {
            Ints::W16(v) => v.len(),
            Ints::W32(v) => v.len(),
            Ints::W64(v) => v.len(),
        }
    }

    fn get(&self, i: usize) -> i64 {
        match self {
            Ints::W16(v) => v[i] as i64,
            Ints::W32(v) => v[i] as i64,
            Ints::W64(v) => v[i],
        }
    }

    /// Binary search, as `slice::binary_search`.
    fn search(&self, x: i64) -> Result<usize, usize> {
        match self {
            Ints::W16(v) => match i16::try_from(x) {
                Ok(x) => v.binary_search(&x),
                Err(_) => Err(if x < 0 { 0 } else { v.len() }),
            },
            Ints::W32(v) => match i32::try_from(x) {
                Ok(x) => v.binary_search(&x),
                Err(_) => Err(if x < 0 { 0 } else { v.len() }),
            },
            Ints::W64(v) => v.binary_search(&x),
        }
    }

    fn contains(&self, x: i64) -> bool {
        self.search(x).is_ok()
    }

    /// Widens the storage so that `x` fits.
    fn upgrade_for(&mut self, x: i64) {
        let need = if i16::try_from(x).is_ok() {
            2
        } else if i32::try_from(x).is_ok() {
            4
        } else {
            8
        };
        let have = match self {
            Ints::W16(_) => 2,
            Ints::W32(_) => 4,
            Ints::W64(_) => 8,
        };
        if need <= have {
            return;
        }
        let all: Vec<i64> = (0..self.len()).map(|i| self.get(i)).collect();
        *self = if need == 4 {
            Ints::W32(all.iter().map(|&v| v as i32).collect())
        } else {
            Ints::W64(all)
        };
    }

    /// Inserts `x`; false if present. Grows by exactly one element, as
    /// Redis reallocates an intset on every insert.
    fn insert(&mut self, x: i64) -> bool {
        let Err(at) = self.search(x) else {
            return false;
        };
        self.upgrade_for(x);
        match self {
            Ints::W16(v) => {
                v.reserve_exact(1);
                v.insert(at, x as i16)
            }
            Ints::W32(v) => {
                v.reserve_exact(1);
                v.insert(at, x as i32)
            }
            Ints::W64(v) => {
                v.reserve_exact(1);
                v.insert(at, x)
            }
        }
        true
    }

    fn remove_at(&mut self, i: usize) {
        match self {
            Ints::W16(v) => {
                v.remove(i);
            }
            Ints::W32(v) => {
                v.remove(i);
            }
            Ints::W64(v) => {
                v.remove(i);
            }
        }
    }

    fn remove(&mut self, x: i64) -> bool {
        match self.search(x) {
            Ok(i) => {
                self.remove_at(i);
                true
            }
            Err(_) => false,
        }
    }

    fn heap_size(&self) -> usize {
        match self {
            Ints::W16(v) => v.capacity() * 2,
            Ints::W32(v) => v.capacity() * 4,
            Ints::W64(v) => v.capacity() * 8,
        }
    }
}

/// Length of the decimal form of `v` (Redis's `sdigits10`).
fn digits10(v: i64) -> usize {
    let mut buf = [0u8; 20];
    crate::num::format_i64(v, &mut buf).len()
}

// ---------------------------------------------------------------------------
// listpack

/// Members in insertion order, each a varint length and the bytes, in one
/// buffer (the role of Redis's listpack).
#[derive(Debug, Clone, Default)]
struct Pack {
    buf: Vec<u8>,
    n: usize,
}

impl Pack {
    fn iter(&self) -> PackIter<'_> {
        PackIter {
            buf: &self.buf,
            at: 0,
        }
    }

    /// Byte range of the entry holding `m`.
    fn find(&self, m: &[u8]) -> Option<std::ops::Range<usize>> {
        let mut it = self.iter();
        loop {
            let start = it.at;
            let s = it.next()?;
            if s == m {
                return Some(start..it.at);
            }
        }
    }

    /// Byte range and bytes of entry `i`.
    fn nth(&self, i: usize) -> (std::ops::Range<usize>, &[u8]) {
        let mut it = self.iter();
        for _ in 0..i {
            it.next();
        }
        let start = it.at;
        let s = it.next().unwrap_or_default();
        (start..it.at, s)
    }

    fn push(&mut self, m: &[u8]) {
        self.buf.reserve_exact(varint_len(m.len()) + m.len());
        put_varint(&mut self.buf, m.len());
        self.buf.extend_from_slice(m);
        self.n += 1;
    }

    fn remove_range(&mut self, r: std::ops::Range<usize>) {
        self.buf.drain(r);
        self.n -= 1;
    }

    /// Keeps only the entries whose index is not in `drop` (sorted).
    fn remove_indices(&mut self, drop: &[usize]) {
        let mut out = Vec::with_capacity(self.buf.len());
        let mut d = drop.iter().peekable();
        let mut it = self.iter();
        let mut i = 0;
        let mut kept = 0;
        loop {
            let start = it.at;
            if it.next().is_none() {
                break;
            }
            if d.peek() == Some(&&i) {
                d.next();
            } else {
                out.extend_from_slice(&self.buf[start..it.at]);
                kept += 1;
            }
            i += 1;
        }
        out.shrink_to_fit();
        self.buf = out;
        self.n = kept;
    }
}

struct PackIter<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Iterator for PackIter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.at >= self.buf.len() {
            return None;
        }
        let (len, used) = get_varint(&self.buf[self.at..]);
        let start = self.at + used;
        let end = (start + len).min(self.buf.len());
        self.at = end;
        Some(&self.buf[start..end])
    }
}

mod table;
use table::*;

// ---------------------------------------------------------------------------
// Set

#[derive(Debug, Clone)]
enum Enc {
    Ints(Ints),
    Pack(Pack),
    Table(MemberTable),
}

/// A Redis set value.
#[derive(Debug, Clone)]
pub struct Set {
    enc: Enc,
}

impl PartialEq for Set {
    /// Set equality, whatever the encodings.
    fn eq(&self, other: &Set) -> bool {
        let mut buf = [0u8; 20];
        self.len() == other.len() && self.iter().all(|m| other.contains(m.bytes(&mut buf)))
    }
}

impl Default for Set {
    fn default() -> Set {
        Set::new_intset()
    }
}

impl Set {
    /// An empty intset-encoded set (the start of SUNIONSTORE/SDIFFSTORE
    /// results and of SPOP rebuilds of intsets).
    pub fn new_intset() -> Set {
        Set {
            enc: Enc::Ints(Ints::new()),
        }
    }

    /// An empty listpack-encoded set.
    pub fn new_listpack() -> Set {
        Set {
            enc: Enc::Pack(Pack::default()),
        }
    }

    /// An empty hashtable-encoded set sized for `n` members.
    pub fn new_hashtable(n: usize) -> Set {
        Set {
            enc: Enc::Table(MemberTable::with_capacity(n)),
        }
    }

    /// A new empty set meant to receive `first` and about `size_hint`
    /// members in all (Redis's `setTypeCreate`): an intset when `first` is
    /// an integer and the hint fits an intset, else a listpack when the
    /// hint fits one, else a hashtable presized for the hint.
    pub fn create_for(first: &[u8], size_hint: usize, lim: &Limits) -> Set {
        if parse_i64(first).is_some() && size_hint <= lim.intset_entries {
            Set::new_intset()
        } else if size_hint <= lim.listpack_entries {
            Set::new_listpack()
        } else {
            Set::new_hashtable(size_hint)
        }
    }

    /// Converts to a hashtable up front when about `size_hint` members are
    /// coming that cannot fit the current encoding (Redis's
    /// `setTypeMaybeConvert`, used by SADD with the number of arguments).
    pub fn maybe_convert(&mut self, size_hint: usize, lim: &Limits) {
        let convert = match &self.enc {
            Enc::Pack(_) => size_hint > lim.listpack_entries,
            Enc::Ints(_) => size_hint > lim.intset_entries,
            Enc::Table(_) => false,
        };
        if convert {
            self.convert_to_table(size_hint);
        }
    }

    /// The Redis encoding name (`OBJECT ENCODING`).
    pub fn encoding(&self) -> &'static str {
        match self.enc {
            Enc::Ints(_) => "intset",
            Enc::Pack(_) => "listpack",
            Enc::Table(_) => "hashtable",
        }
    }

    /// Approximate heap bytes used.
    pub fn heap_size(&self) -> usize {
        match &self.enc {
            Enc::Ints(i) => i.heap_size(),
            Enc::Pack(p) => p.buf.capacity(),
            Enc::Table(t) => t.heap_size(),
        }
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        match &self.enc {
            Enc::Ints(i) => i.len(),
            Enc::Pack(p) => p.n,
            Enc::Table(t) => t.len,
        }
    }

    /// Whether the set has no members (a stored set never is).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `m` is a member.
    pub fn contains(&self, m: &[u8]) -> bool {
        match &self.enc {
            Enc::Ints(i) => parse_i64(m).is_some_and(|v| i.contains(v)),
            Enc::Pack(p) => p.find(m).is_some(),
            Enc::Table(t) => t.contains(m),
        }
    }

    /// Whether a member of another set is a member of this one (integers
    /// are looked up in an intset without formatting them).
    pub fn contains_member(&self, m: &Member<'_>) -> bool {
        match (&self.enc, m) {
            (Enc::Ints(i), Member::Int(v)) => i.contains(*v),
            _ => {
                let mut buf = [0u8; 20];
                self.contains(m.bytes(&mut buf))
            }
        }
    }

    /// Rebuilds as a hashtable presized for `cap` members.
    fn convert_to_table(&mut self, cap: usize) {
        let mut t = MemberTable::with_capacity(cap.max(self.len()));
        let mut buf = [0u8; 20];
        for m in self.iter() {
            t.insert(m.bytes(&mut buf));
        }
        self.enc = Enc::Table(t);
    }

    /// Adds `m` (Redis's `setTypeAdd`, with its conversions); false if it
    /// was already a member.
    pub fn add(&mut self, m: &[u8], lim: &Limits) -> bool {
        match &mut self.enc {
            Enc::Table(t) => t.insert(m),
            Enc::Pack(p) => {
                if p.find(m).is_some() {
                    return false;
                }
                if p.n < lim.listpack_entries
                    && m.len() <= lim.listpack_value
                    && p.buf.len() + m.len() <= LISTPACK_MAX_SAFETY
                {
                    p.push(m);
                } else {
                    let n = p.n;
                    self.convert_to_table(n + 1);
                    self.add(m, lim);
                }
                true
            }
            Enc::Ints(ints) => {
                if let Some(v) = parse_i64(m) {
                    if !ints.insert(v) {
                        return false;
                    }
                    if ints.len() > lim.intset_max() {
                        self.convert_to_table(self.len());
                    }
                    return true;
                }
                // A string arrives: a listpack if every integer (and the
                // new member) fits one, else a hashtable.
                let n = ints.len();
                let (maxlen, est) = if n == 0 {
                    (0, 0)
                } else {
                    let lo = digits10(ints.get(0));
                    let hi = digits10(ints.get(n - 1));
                    // Redis's estimate of the listpack size: n entries as
                    // long as the widest, about 2 bytes of overhead each.
                    (lo.max(hi), n * (lo.max(hi) + 2))
                };
                if n < lim.listpack_entries
                    && m.len() <= lim.listpack_value
                    && maxlen <= lim.listpack_value
                    && est + m.len() <= LISTPACK_MAX_SAFETY
                {
                    let mut p = Pack::default();
                    let mut buf = [0u8; 20];
                    for i in 0..n {
                        p.push(crate::num::format_i64(ints.get(i), &mut buf));
                    }
                    p.push(m);
                    self.enc = Enc::Pack(p);
                } else {
                    self.convert_to_table(n + 1);
                    self.add(m, lim);
                }
                true
            }
        }
    }

    /// Removes `m`; false if it was not a member. Never changes the
    /// encoding.
    pub fn remove(&mut self, m: &[u8]) -> bool {
        match &mut self.enc {
            Enc::Ints(i) => parse_i64(m).is_some_and(|v| i.remove(v)),
            Enc::Pack(p) => match p.find(m) {
                Some(r) => {
                    p.remove_range(r);
                    true
                }
                None => false,
            },
            Enc::Table(t) => t.remove(m),
        }
    }

    /// The members, in encoding order: ascending for intsets, insertion
    /// order for listpacks, slot order for hashtables.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            inner: match &self.enc {
                Enc::Ints(i) => IterInner::Ints(i, 0),
                Enc::Pack(p) => IterInner::Pack(p.iter()),
                Enc::Table(t) => IterInner::Table(t.slots.iter()),
            },
        }
    }

    /// A uniformly random member (the set must not be empty).
    pub fn random(&self, rng: &mut impl FnMut() -> u64) -> Member<'_> {
        let n = self.len();
        debug_assert!(n > 0);
        match &self.enc {
            Enc::Ints(i) => Member::Int(i.get(home(rng(), n))),
            Enc::Pack(p) => Member::Str(p.nth(home(rng(), n)).1),
            Enc::Table(t) => slot_member(t.slots[t.random_slot(rng)]),
        }
    }

    /// Shows `f` `count` members drawn independently (with repetition, in
    /// random order) until it returns false. A listpack is walked once per
    /// batch of 1000 draws instead of once per draw, as Redis does.
    pub fn random_repeat(
        &self,
        count: u64,
        rng: &mut impl FnMut() -> u64,
        mut f: impl FnMut(Member<'_>) -> bool,
    ) {
        let n = self.len();
        if n == 0 {
            return;
        }
        let Enc::Pack(p) = &self.enc else {
            for _ in 0..count {
                if !f(self.random(rng)) {
                    return;
                }
            }
            return;
        };
        const BATCH: u64 = 1000;
        let mut left = count;
        let mut picks: Vec<(usize, usize)> = Vec::new();
        let mut found: Vec<&[u8]> = Vec::new();
        while left > 0 {
            let k = left.min(BATCH) as usize;
            left -= k as u64;
            // (member index, draw position), walked in member order.
            picks.clear();
            picks.extend((0..k).map(|pos| (home(rng(), n), pos)));
            picks.sort_unstable();
            found.clear();
            found.resize(k, &[]);
            let mut next = picks.iter().peekable();
            for (i, m) in p.iter().enumerate() {
                while let Some(&&(idx, pos)) = next.peek() {
                    if idx != i {
                        break;
                    }
                    found[pos] = m;
                    next.next();
                }
            }
            for m in &found {
                if !f(Member::Str(m)) {
                    return;
                }
            }
        }
    }

    /// Removes a uniformly random member, showing it to `f` first (the set
    /// must not be empty).
    pub fn pop_random(&mut self, rng: &mut impl FnMut() -> u64, f: impl FnOnce(Member<'_>)) {
        let n = self.len();
        debug_assert!(n > 0);
        match &mut self.enc {
            Enc::Ints(i) => {
                let k = home(rng(), n);
                f(Member::Int(i.get(k)));
                i.remove_at(k);
            }
            Enc::Pack(p) => {
                let (r, s) = p.nth(home(rng(), n));
                f(Member::Str(s));
                p.remove_range(r);
            }
            Enc::Table(t) => {
                let k = t.random_slot(rng);
                f(slot_member(t.slots[k]));
                t.remove_at(k);
            }
        }
    }

    /// Shows `f` `count` distinct random members (`count` must be below the
    /// set's size). Work and memory are O(count): a hashtable is sampled
    /// by slot with a seen-set, unless `count` is over a third of the set,
    /// when the members are shuffled partially (O(size) < O(3 count)).
    pub fn random_distinct(
        &self,
        count: usize,
        rng: &mut impl FnMut() -> u64,
        mut f: impl FnMut(Member<'_>),
    ) {
        let n = self.len();
        debug_assert!(count < n);
        match &self.enc {
            Enc::Ints(i) => {
                for k in sample_indices(n, count, rng) {
                    f(Member::Int(i.get(k)));
                }
            }
            Enc::Pack(p) => {
                let mut ks = sample_indices(n, count, rng);
                ks.sort_unstable();
                let mut ks = ks.into_iter().peekable();
                for (k, s) in p.iter().enumerate() {
                    if ks.peek() == Some(&k) {
                        ks.next();
                        f(Member::Str(s));
                    }
                }
            }
            Enc::Table(t) => {
                if count.saturating_mul(3) > n {
                    let occupied: Vec<usize> = (0..t.slots.len())
                        .filter(|&k| !t.slots[k].is_null())
                        .collect();
                    for k in sample_indices(occupied.len(), count, rng) {
                        f(slot_member(t.slots[occupied[k]]));
                    }
                } else {
                    let mut seen = std::collections::HashSet::with_capacity(count);
                    while seen.len() < count {
                        let k = t.random_slot(rng);
                        if seen.insert(k) {
                            f(slot_member(t.slots[k]));
                        }
                    }
                }
            }
        }
    }

    /// SPOP with a count below the set's size: removes `count` random
    /// members, showing each to `f`, the way Redis 7.2 does it. When few
    /// members would remain (`remaining * 5 <= count`), the remaining ones
    /// are drawn into a new set (starting as an intset for intsets, else
    /// as a listpack, and converting as members arrive), every other member
    /// is shown, and the new set replaces this one — so the encoding may
    /// shrink, as in Redis.
    pub fn pop_many(
        &mut self,
        count: usize,
        lim: &Limits,
        rng: &mut impl FnMut() -> u64,
        mut f: impl FnMut(Member<'_>),
    ) {
        let n = self.len();
        debug_assert!(count < n);
        let remaining = n - count;
        if remaining.saturating_mul(5) > count {
            if let Enc::Pack(p) = &mut self.enc {
                // Redis walks the listpack once: members come out in order.
                let mut ks = sample_indices(n, count, rng);
                ks.sort_unstable();
                let mut it = ks.iter().peekable();
                for (k, s) in p.iter().enumerate() {
                    if it.peek() == Some(&&k) {
                        it.next();
                        f(Member::Str(s));
                    }
                }
                p.remove_indices(&ks);
            } else {
                for _ in 0..count {
                    self.pop_random(rng, &mut f);
                }
            }
            return;
        }
        let mut kept = match &self.enc {
            Enc::Ints(_) => Set::new_intset(),
            _ => Set::new_listpack(),
        };
        if let Enc::Pack(p) = &mut self.enc {
            let mut ks = sample_indices(n, remaining, rng);
            ks.sort_unstable();
            let mut it = ks.iter().peekable();
            for (k, s) in p.iter().enumerate() {
                if it.peek() == Some(&&k) {
                    it.next();
                    kept.add(s, lim);
                }
            }
            p.remove_indices(&ks);
        } else {
            for _ in 0..remaining {
                let mut member = Vec::new();
                self.pop_random(rng, |m| member = m.to_vec());
                kept.add(&member, lim);
            }
        }
        for m in self.iter() {
            f(m);
        }
        *self = kept;
    }

    /// Converts to an intset if it holds at most `set-max-intset-entries`
    /// members, which the caller knows are all integers (Redis's
    /// `maybeConvertToIntset`, for SINTERSTORE results).
    pub fn convert_to_intset_if_fits(&mut self, lim: &Limits) {
        if matches!(self.enc, Enc::Ints(_)) || self.len() > lim.intset_max() {
            return;
        }
        let mut ints = Ints::new();
        let mut buf = [0u8; 20];
        for m in self.iter() {
            let v = match m {
                Member::Int(v) => v,
                other => match parse_i64(other.bytes(&mut buf)) {
                    Some(v) => v,
                    None => return,
                },
            };
            ints.insert(v);
        }
        self.enc = Enc::Ints(ints);
    }

    /// One SSCAN step: hashtables return about `count` members per call and
    /// the next cursor; the compact encodings return everything and
    /// cursor 0, as Redis does.
    pub fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(Member<'_>)) -> u64 {
        match &self.enc {
            Enc::Table(t) => t.scan(cursor, count, f),
            _ => {
                for m in self.iter() {
                    f(m);
                }
                0
            }
        }
    }
}

/// `count` distinct indices below `n` in random order: a partial
/// Fisher-Yates shuffle when `count` is a large part of `n`, else rejection
/// with a seen-set (O(count) memory either way up to a factor of 3).
fn sample_indices(n: usize, count: usize, rng: &mut impl FnMut() -> u64) -> Vec<usize> {
    let count = count.min(n);
    if count.saturating_mul(3) > n {
        let mut all: Vec<usize> = (0..n).collect();
        for i in 0..count {
            let j = i + home(rng(), n - i);
            all.swap(i, j);
        }
        all.truncate(count);
        all
    } else {
        let mut seen = std::collections::HashSet::with_capacity(count);
        let mut out = Vec::with_capacity(count);
        while out.len() < count {
            let k = home(rng(), n);
            if seen.insert(k) {
                out.push(k);
            }
        }
        out
    }
}

/// Iterator over a set's members (see [`Set::iter`]).
pub struct Iter<'a> {
    inner: IterInner<'a>,
}

enum IterInner<'a> {
    Ints(&'a Ints, usize),
    Pack(PackIter<'a>),
    Table(std::slice::Iter<'a, *mut u8>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = Member<'a>;

    fn next(&mut self) -> Option<Member<'a>> {
        match &mut self.inner {
            IterInner::Ints(i, k) => {
                if *k < i.len() {
                    *k += 1;
                    Some(Member::Int(i.get(*k - 1)))
                } else {
                    None
                }
            }
            IterInner::Pack(p) => p.next().map(Member::Str),
            IterInner::Table(it) => it.find(|s| !s.is_null()).map(|&s| slot_member(s)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, BTreeSet};

    /// A deterministic xorshift generator for tests.
    fn rng(seed: u64) -> impl FnMut() -> u64 {
        let mut x = seed | 1;
        move || {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            x.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
    }

    const L: Limits = Limits::DEFAULT;

    fn members(s: &Set) -> BTreeSet<Vec<u8>> {
        s.iter().map(|m| m.to_vec()).collect()
    }

    fn filled(items: impl IntoIterator<Item = Vec<u8>>, lim: &Limits) -> Set {
        let mut s = Set::new_intset();
        for m in items {
            s.add(&m, lim);
        }
        s
    }

    fn num(i: i64) -> Vec<u8> {
        i.to_string().into_bytes()
    }

    #[test]
    fn intset_widths_and_order() {
        let mut s = Set::new_intset();
        for v in [5i64, -3, 70_000, i64::MIN, 2, i64::MAX, 0] {
            assert!(s.add(&num(v), &L));
        }
        assert!(!s.add(b"5", &L));
        assert_eq!(s.encoding(), "intset");
        let got: Vec<Member> = s.iter().collect();
        assert_eq!(
            got,
            [i64::MIN, -3, 0, 2, 5, 70_000, i64::MAX]
                .map(Member::Int)
                .to_vec()
        );
        assert!(s.contains(b"-3") && !s.contains(b"-03") && !s.contains(b"x"));
        assert!(s.remove(b"70000") && !s.remove(b"70000") && !s.remove(b"abc"));
        assert_eq!(s.len(), 6);
    }

    #[test]
    fn intset_to_hashtable_past_512() {
        let mut s = Set::new_intset();
        for i in 0..512 {
            s.add(&num(i), &L);
        }
        assert_eq!(s.encoding(), "intset");
        s.add(b"512", &L);
        assert_eq!(s.encoding(), "hashtable");
        assert_eq!(s.len(), 513);
        for i in 0..513 {
            assert!(s.contains(&num(i)));
        }
        // Removing back below the threshold keeps the encoding.
        for i in 0..500 {
            s.remove(&num(i));
        }
        assert_eq!(s.encoding(), "hashtable");
    }

    #[test]
    fn intset_to_listpack_or_hashtable_on_a_string() {
        let mut s = filled((0..127).map(num), &L);
        s.add(b"a", &L);
        assert_eq!(s.encoding(), "listpack");
        assert_eq!(s.len(), 128);
        // Listpack keeps the intset's order, then insertion order.
        let order: Vec<Vec<u8>> = s.iter().map(|m| m.to_vec()).collect();
        assert_eq!(order[0], b"0");
        assert_eq!(order[127], b"a");

        let mut s = filled((0..128).map(num), &L);
        s.add(b"a", &L);
        assert_eq!(s.encoding(), "hashtable");

        // Integers too long for set-max-listpack-value force a hashtable.
        let lim = Limits {
            listpack_value: 5,
            ..L
        };
        let mut s = filled([num(123456)], &lim);
        s.add(b"a", &lim);
        assert_eq!(s.encoding(), "hashtable");
        let mut s = filled([num(-1234)], &lim);
        s.add(b"a", &lim);
        assert_eq!(s.encoding(), "listpack");
        // And so does a string longer than it.
        let mut s = filled([num(1)], &lim);
        s.add(b"abcdef", &lim);
        assert_eq!(s.encoding(), "hashtable");
    }

    #[test]
    fn listpack_limits() {
        let mut s = Set::new_listpack();
        for i in 0..128 {
            s.add(format!("m{i}").as_bytes(), &L);
        }
        assert_eq!(s.encoding(), "listpack");
        s.add(b"m0", &L);
        assert_eq!(s.encoding(), "listpack");
        s.add(b"m128", &L);
        assert_eq!(s.encoding(), "hashtable");
        assert_eq!(s.len(), 129);

        let mut s = Set::new_listpack();
        s.add(&[b'x'; 64], &L);
        assert_eq!(s.encoding(), "listpack");
        s.add(&[b'y'; 65], &L);
        assert_eq!(s.encoding(), "hashtable");
        assert!(s.contains(&[b'x'; 64]) && s.contains(&[b'y'; 65]));
    }

    #[test]
    fn create_and_maybe_convert() {
        assert_eq!(Set::create_for(b"1", 1, &L).encoding(), "intset");
        assert_eq!(Set::create_for(b"1", 512, &L).encoding(), "intset");
        assert_eq!(Set::create_for(b"1", 513, &L).encoding(), "hashtable");
        assert_eq!(Set::create_for(b"a", 128, &L).encoding(), "listpack");
        assert_eq!(Set::create_for(b"a", 129, &L).encoding(), "hashtable");
        assert_eq!(Set::create_for(b"01", 1, &L).encoding(), "listpack");
        let zero = Limits::new(0, 0, 0);
        assert_eq!(Set::create_for(b"1", 1, &zero).encoding(), "hashtable");
        let mut s = Set::create_for(b"a", 3, &L);
        s.maybe_convert(128, &L);
        assert_eq!(s.encoding(), "listpack");
        s.maybe_convert(129, &L);
        assert_eq!(s.encoding(), "hashtable");
        let mut s = Set::new_intset();
        s.maybe_convert(513, &L);
        assert_eq!(s.encoding(), "hashtable");
        assert!(s.is_empty());
    }

    #[test]
    fn hashtable_member_kinds() {
        let mut s = Set::new_hashtable(0);
        let kinds: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"0".to_vec(),
            b"01".to_vec(),
            b"1".to_vec(),
            b"-1".to_vec(),
            b"-0".to_vec(),
            b"abcdefg".to_vec(),
            b"abcdefgh".to_vec(),
            num(INLINE_INT_MAX),
            num(INLINE_INT_MAX + 1),
            num(INLINE_INT_MIN),
            num(INLINE_INT_MIN - 1),
            num(i64::MAX),
            num(i64::MIN),
            b"9223372036854775808".to_vec(),
            vec![0u8; 3],
            vec![0xffu8; 300],
        ];
        for k in &kinds {
            assert!(s.add(k, &L), "{k:?}");
        }
        for k in &kinds {
            assert!(!s.add(k, &L), "{k:?}");
            assert!(s.contains(k), "{k:?}");
        }
        assert_eq!(members(&s), kinds.iter().cloned().collect());
        assert!(!s.contains(b"00") && !s.contains(b"abcdefgh1"));
        for k in &kinds {
            assert!(s.remove(k), "{k:?}");
        }
        assert!(s.is_empty());
    }

    #[test]
    fn hashtable_grows_and_shrinks() {
        let mut s = Set::new_hashtable(0);
        for i in 0..20_000 {
            s.add(format!("member:{i:08}").as_bytes(), &L);
        }
        assert_eq!(s.len(), 20_000);
        let Enc::Table(t) = &s.enc else { panic!() };
        assert!(t.len * 5 <= t.cap * 4);
        for i in 0..19_990 {
            assert!(s.remove(format!("member:{i:08}").as_bytes()));
        }
        let Enc::Table(t) = &s.enc else { panic!() };
        assert!(t.cap < 200, "cap {}", t.cap);
        for i in 19_990..20_000 {
            assert!(s.contains(format!("member:{i:08}").as_bytes()));
        }
        assert_eq!(s.encoding(), "hashtable");
    }

    /// Members leave a table in hash order; feeding them to another table
    /// must not cluster them (each table hashes with its own seed).
    #[test]
    fn copying_in_iteration_order_does_not_cluster() {
        let a = filled((0..100_000).map(|i| format!("m:{i}").into_bytes()), &L);
        // The first part of a's hash order, into tables sized as they grow.
        let mut b = Set::new_listpack();
        let mut buf = [0u8; 20];
        for m in a.iter().take(20_000) {
            b.add(m.bytes(&mut buf), &L);
        }
        let mut c = Set::new_hashtable(0);
        for m in b.iter().take(5_000) {
            c.add(m.bytes(&mut buf), &L);
        }
        for s in [&a, &b, &c] {
            let Enc::Table(t) = &s.enc else { panic!() };
            assert!(t.max_displacement() < 500, "{}", t.max_displacement());
        }
    }

    #[test]
    fn clone_and_eq_across_encodings() {
        let a = filled((0..50).map(num), &L);
        let mut b = Set::new_hashtable(0);
        for i in (0..50).rev() {
            b.add(&num(i), &L);
        }
        assert_eq!(a, b);
        let c = b.clone();
        assert_eq!(c, a);
        b.remove(b"3");
        assert_ne!(a, b);
        let mut d = Set::new_hashtable(0);
        d.add(&[b'z'; 100], &L);
        let e = d.clone();
        drop(d);
        assert!(e.contains(&[b'z'; 100]));
        assert!(e.heap_size() >= 101);
    }

    #[test]
    fn random_is_uniform_on_a_hashtable() {
        let mut s = Set::new_hashtable(0);
        for i in 0..1000 {
            s.add(format!("element-{i}").as_bytes(), &L);
        }
        // Punch holes so that runs vary.
        for i in (0..1000).step_by(3) {
            s.remove(format!("element-{i}").as_bytes());
        }
        let n = s.len();
        let mut r = rng(7);
        let mut counts: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
        let draws = 400 * n;
        for _ in 0..draws {
            *counts.entry(s.random(&mut r).to_vec()).or_default() += 1;
        }
        assert_eq!(counts.len(), n);
        // Expected 400 per member; a fair draw stays well inside 400 +- 100.
        for (m, c) in &counts {
            assert!((300..=500).contains(c), "{m:?} drawn {c} times");
        }
    }

    #[test]
    fn random_repeat_draws_count_members() {
        let mut r = rng(9);
        for s in [
            filled((0..50).map(num), &L),
            filled((0..50).map(|i| format!("s{i}").into_bytes()), &L),
            filled((0..600).map(|i| format!("s{i}").into_bytes()), &L),
        ] {
            let mut counts: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
            let mut k = 0;
            s.random_repeat(2500, &mut r, |m| {
                *counts.entry(m.to_vec()).or_default() += 1;
                k += 1;
                true
            });
            assert_eq!(k, 2500);
            assert!(counts.keys().all(|m| s.contains(m)));
            if s.len() == 50 {
                // 50 draws expected per member.
                assert_eq!(counts.len(), 50);
                assert!(counts.values().all(|&c| (15..=100).contains(&c)));
            }
            let mut k = 0;
            s.random_repeat(u64::MAX, &mut r, |_| {
                k += 1;
                k < 10
            });
            assert_eq!(k, 10);
        }
    }

    #[test]
    fn random_distinct_and_pops() {
        let mut r = rng(3);
        for make in [
            |i: i64| num(i),
            |i: i64| format!("s{i}").into_bytes(),
            |i: i64| format!("a-long-member-name-{i}").into_bytes(),
        ] {
            for size in [10usize, 100, 1000] {
                let s = filled((0..size as i64).map(make), &L);
                for count in [1, size / 4, size / 2, size - 1] {
                    let mut got = BTreeSet::new();
                    let mut k = 0;
                    s.random_distinct(count, &mut r, |m| {
                        got.insert(m.to_vec());
                        k += 1;
                    });
                    assert_eq!((k, got.len()), (count, count));
                    assert!(got.iter().all(|m| s.contains(m)));
                }
                for count in [1, size / 2, size * 5 / 6, size - 1] {
                    let mut t = s.clone();
                    let mut popped = BTreeSet::new();
                    t.pop_many(count, &L, &mut r, |m| {
                        assert!(popped.insert(m.to_vec()));
                    });
                    assert_eq!(popped.len(), count);
                    assert_eq!(t.len(), size - count);
                    let left = members(&t);
                    assert!(popped.is_disjoint(&left));
                    let all: BTreeSet<_> = popped.union(&left).cloned().collect();
                    assert_eq!(all, members(&s));
                }
            }
        }
    }

    #[test]
    fn pop_most_rebuilds_like_redis() {
        let mut r = rng(11);
        // A hashtable of integers keeps few members: they go to a listpack.
        let mut s = filled((0..1000).map(num), &L);
        assert_eq!(s.encoding(), "hashtable");
        s.pop_many(990, &L, &mut r, |_| {});
        assert_eq!((s.encoding(), s.len()), ("listpack", 10));
        // Too many remaining for a listpack: back to a hashtable.
        let mut s = filled((0..1000).map(num), &L);
        s.pop_many(840, &L, &mut r, |_| {});
        assert_eq!((s.encoding(), s.len()), ("hashtable", 160));
        // An intset stays an intset.
        let mut s = filled((0..100).map(num), &L);
        s.pop_many(90, &L, &mut r, |_| {});
        assert_eq!((s.encoding(), s.len()), ("intset", 10));
        // Popping a few does not rebuild.
        let mut s = filled((0..1000).map(num), &L);
        s.pop_many(100, &L, &mut r, |_| {});
        assert_eq!((s.encoding(), s.len()), ("hashtable", 900));
    }

    #[test]
    fn convert_to_intset() {
        let mut s = Set::new_listpack();
        for i in 0..10 {
            s.add(&num(i * 7), &L);
        }
        s.convert_to_intset_if_fits(&L);
        assert_eq!(s.encoding(), "intset");
        let mut s = Set::new_hashtable(0);
        for i in 0..600 {
            s.add(&num(i), &L);
        }
        s.convert_to_intset_if_fits(&L);
        assert_eq!(s.encoding(), "hashtable");
        for i in 0..100 {
            s.remove(&num(i));
        }
        s.convert_to_intset_if_fits(&L);
        assert_eq!(s.encoding(), "intset");
        assert_eq!(members(&s), (100..600).map(num).collect());
    }

    fn full_scan(s: &Set, count: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut c = 0;
        loop {
            c = s.scan(c, count, |m| out.push(m.to_vec()));
            if c == 0 {
                return out;
            }
        }
    }

    #[test]
    fn scan_returns_each_member_once() {
        let s = filled((0..5000).map(|i| format!("k{i}").into_bytes()), &L);
        for count in [1, 10, 1000, 100_000] {
            let got = full_scan(&s, count);
            assert_eq!(got.len(), 5000);
            let uniq: BTreeSet<_> = got.into_iter().collect();
            assert_eq!(uniq, members(&s));
        }
        let small = filled((0..5).map(num), &L);
        assert_eq!(full_scan(&small, 1).len(), 5);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Add(Vec<u8>),
        Remove(Vec<u8>),
        Pop,
        PopMany(usize),
        ScanStep,
    }

    fn member() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            4 => (-40i64..40).prop_map(num),
            1 => any::<i64>().prop_map(num),
            2 => "[a-c]{0,3}".prop_map(|s| s.into_bytes()),
            1 => "[a-z]{5,12}".prop_map(|s| s.into_bytes()),
            1 => Just(b"01".to_vec()),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            8 => member().prop_map(Op::Add),
            4 => member().prop_map(Op::Remove),
            1 => Just(Op::Pop),
            1 => (1usize..30).prop_map(Op::PopMany),
            1 => Just(Op::ScanStep),
        ]
    }

    fn rank(enc: &str) -> u8 {
        match enc {
            "intset" => 0,
            "listpack" => 1,
            _ => 2,
        }
    }

    proptest! {
        #[test]
        fn behaves_like_a_btreeset(
            ops in proptest::collection::vec(op(), 0..300),
            limits in (0usize..12, 0usize..10, 0usize..8),
            seed in any::<u64>(),
        ) {
            let lim = Limits { intset_entries: limits.0, listpack_entries: limits.1, listpack_value: limits.2 };
            let mut r = rng(seed);
            let mut s = Set::new_intset();
            let mut model: BTreeSet<Vec<u8>> = BTreeSet::new();
            let mut cursor = 0u64;
            for o in ops {
                let before = rank(s.encoding());
                let mut shrank_ok = false;
                match o {
                    Op::Add(m) => prop_assert_eq!(s.add(&m, &lim), model.insert(m)),
                    Op::Remove(m) => prop_assert_eq!(s.remove(&m), model.remove(&m)),
                    Op::Pop => {
                        if !model.is_empty() {
                            let mut got = Vec::new();
                            s.pop_random(&mut r, |m| got = m.to_vec());
                            prop_assert!(model.remove(&got));
                        }
                    }
                    Op::PopMany(k) => {
                        if k < model.len() {
                            shrank_ok = true;
                            let mut got = Vec::new();
                            s.pop_many(k, &lim, &mut r, |m| got.push(m.to_vec()));
                            prop_assert_eq!(got.len(), k);
                            for m in got {
                                prop_assert!(model.remove(&m));
                            }
                        }
                    }
                    Op::ScanStep => {
                        cursor = s.scan(cursor, 3, |m| assert!(model.contains(&m.to_vec())));
                    }
                }
                prop_assert_eq!(s.len(), model.len());
                let enc = s.encoding();
                if !shrank_ok {
                    prop_assert!(rank(enc) >= before, "{} after rank {}", enc, before);
                }
                let all_ints = model.iter().all(|m| parse_i64(m).is_some());
                match enc {
                    "intset" => prop_assert!(all_ints && model.len() <= lim.intset_entries),
                    "listpack" => prop_assert!(
                        model.len() <= lim.listpack_entries
                            && model.iter().all(|m| m.len() <= lim.listpack_value)
                    ),
                    _ => {}
                }
            }
            prop_assert_eq!(members(&s), model.clone());
            for m in &model {
                prop_assert!(s.contains(m));
            }
            let scanned: BTreeSet<Vec<u8>> = full_scan(&s, 2).into_iter().collect();
            prop_assert_eq!(scanned, model);
        }

        /// Members present for a whole scan are returned, even while the
        /// table grows and shrinks between cursor steps.
        #[test]
        fn scan_survives_resizes(ops in proptest::collection::vec(op(), 0..400), count in 1usize..20) {
            let mut s = Set::new_hashtable(0);
            let stable: BTreeSet<Vec<u8>> = (0..200).map(|i| format!("stable-{i}").into_bytes()).collect();
            for m in &stable {
                s.add(m, &L);
            }
            let mut seen = BTreeSet::new();
            let mut cursor = 0u64;
            let mut done = false;
            let mut r = rng(5);
            for o in ops {
                match o {
                    Op::Add(m) => { s.add(&m, &L); }
                    Op::Remove(m) => { if !stable.contains(&m) { s.remove(&m); } }
                    Op::Pop | Op::PopMany(_) => {
                        // Many adds then removals: force growth and shrinking.
                        for i in 0..300 { s.add(format!("tmp-{i}").as_bytes(), &L); }
                        for i in 0..300 { s.remove(format!("tmp-{i}").as_bytes()); }
                        let _ = &mut r;
                    }
                    Op::ScanStep if !done => {
                        cursor = s.scan(cursor, count, |m| { seen.insert(m.to_vec()); });
                        done = cursor == 0;
                    }
                    Op::ScanStep => {}
                }
            }
            while !done {
                cursor = s.scan(cursor, count, |m| { seen.insert(m.to_vec()); });
                done = cursor == 0;
            }
            prop_assert!(stable.is_subset(&seen));
        }
    }
}
