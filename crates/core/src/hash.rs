//! The hash type, in Redis's two encodings, with per-field expiry (Redis
//! 7.4 hash field expiration).
//!
//! * **listpack**: one exactly sized buffer of `[len varint][field][len
//!   varint][value]` pairs in insertion order, behind a 5-byte header
//!   (`count: u32`, `flags: u8`). Used up to `hash-max-listpack-entries`
//!   pairs whose fields and values are at most `hash-max-listpack-value`
//!   bytes, as in Redis. Once a field expiry command touches it, it becomes
//!   **listpackex** (Redis 7.4's name): every pair gains a varint expiry
//!   (0: none), the header an 8-byte queue stamp, and pairs are kept ordered
//!   by expiry (soonest first, persistent fields last) exactly as Redis
//!   orders them, so expired fields are always a prefix.
//! * **hashtable**: an open-addressing table (linear probing, power-of-two
//!   capacity, backward-shift deletion) of thin pointers, each to one
//!   exactly sized allocation `[flags][expiry i64 if set][len][field][len]
//!   [value]` whose top 16 pointer bits carry hash bits, so probes compare
//!   tags without dereferencing. A field costs its blob plus ~1.5 slots of
//!   8 bytes, where Redis spends a dictEntry, two sds strings and a bucket.
//!   Fields with an expiry are also indexed by `(expiry, hash)` in a
//!   B-tree, so expired fields are found without walking the table.
//!
//! Expired fields are not hidden here: callers purge them with
//! [`Hash::purge_expired`] (cheap when nothing is due) before using a hash,
//! so the server never shows them. A field expires when its time is at or
//! before the clock (`expire <= now`), the rule kvik applies to keys.
//!
//! All `unsafe` code of this module is in [`FieldBox`].

use crate::table::hash_key;
use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::collections::BTreeMap;
use std::ops::Range;
use std::ptr::NonNull;

/// Conversion thresholds (`hash-max-listpack-entries`,
/// `hash-max-listpack-value`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most pairs a listpack holds.
    pub max_entries: usize,
    /// Longest field or value a listpack holds.
    pub max_value: usize,
}

impl Limits {
    /// Limits from the (possibly negative) configured values.
    pub fn new(max_entries: i64, max_value: i64) -> Limits {
        Limits {
            max_entries: max_entries.max(0) as usize,
            max_value: max_value.max(0) as usize,
        }
    }
}

impl Default for Limits {
    /// Redis's defaults (128 entries, 64 bytes).
    fn default() -> Self {
        Limits::new(128, 64)
    }
}

/// Largest listpack buffer: past it Redis converts to a hashtable whatever
/// the thresholds say (`lpSafeToAdd`).
const LISTPACK_MAX_SAFETY_SIZE: usize = 1 << 30;

/// A callback receiving `(field, value, expiry)`.
pub type FieldVisitor<'a> = dyn FnMut(&[u8], &[u8], Option<i64>) + 'a;

/// "Not queued" stamp (see [`Hash::queued_at`]).
pub const NOT_QUEUED: i64 = i64::MAX;

// ---------------------------------------------------------------------------
// varints

fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// Appends `v` as a LEB128 varint.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a varint at `*pos`, advancing it. The buffers are built by this
/// module, so a malformed varint is a bug, not input.
#[inline]
pub(crate) fn get_varint(buf: &[u8], pos: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let b = buf[*pos];
        *pos += 1;
        v |= ((b & 0x7f) as u64) << shift;
        if b & 0x80 == 0 {
            return v;
        }
        shift += 7;
    }
}

/// An expiry as stored in a listpackex (0: none; stored times are >= 1).
fn exp_code(e: Option<i64>) -> u64 {
    e.map_or(0, |t| t.max(1) as u64)
}

// ---------------------------------------------------------------------------
// listpack

const LP_COUNT: usize = 0;
const LP_FLAGS: usize = 4;
const LP_STAMP: usize = 5;
const LP_HDR: usize = 5;
const LP_HDR_EX: usize = 13;
const LP_FLAG_EX: u8 = 1;

/// One decoded pair of a listpack.
#[derive(Debug, Clone)]
struct LpPair {
    start: usize,
    field: Range<usize>,
    value: Range<usize>,
    expire: Option<i64>,
    end: usize,
}

/// The compact encoding: one exactly sized buffer (see the module docs).
struct Listpack {
    buf: Box<[u8]>,
}

impl Listpack {
    fn new() -> Listpack {
        Listpack {
            buf: vec![0u8; LP_HDR].into_boxed_slice(),
        }
    }

    fn len(&self) -> usize {
        u32::from_le_bytes(self.buf[LP_COUNT..LP_COUNT + 4].try_into().unwrap()) as usize
    }

    fn set_len(&mut self, n: usize) {
        self.buf[LP_COUNT..LP_COUNT + 4].copy_from_slice(&(n as u32).to_le_bytes());
    }

    fn is_ex(&self) -> bool {
        self.buf[LP_FLAGS] & LP_FLAG_EX != 0
    }

    fn hdr(&self) -> usize {
        if self.is_ex() {
            LP_HDR_EX
        } else {
            LP_HDR
        }
    }

    fn stamp(&self) -> i64 {
        if self.is_ex() {
            i64::from_le_bytes(self.buf[LP_STAMP..LP_STAMP + 8].try_into().unwrap())
        } else {
            NOT_QUEUED
        }
    }

    fn set_stamp(&mut self, t: i64) {
        if self.is_ex() {
            self.buf[LP_STAMP..LP_STAMP + 8].copy_from_slice(&t.to_le_bytes());
        }
    }

    fn pair_at(&self, start: usize) -> LpPair {
        let b = &self.buf[..];
        let mut p = start;
        let fl = get_varint(b, &mut p) as usize;
        let field = p..p + fl;
        p += fl;
        let vl = get_varint(b, &mut p) as usize;
        let value = p..p + vl;
        p += vl;
        let expire = if self.is_ex() {
            match get_varint(b, &mut p) {
                0 => None,
                t => Some(t as i64),
            }
        } else {
            None
        };
        LpPair {
            start,
            field,
            value,
            expire,
            end: p,
        }
    }

    fn pairs(&self) -> LpPairs<'_> {
        LpPairs {
            lp: self,
            pos: self.hdr(),
        }
    }

    fn find(&self, field: &[u8]) -> Option<LpPair> {
        self.pairs().find(|p| &self.buf[p.field.clone()] == field)
    }

    /// Replaces `range` of the buffer with `with`, keeping the allocation
    /// exactly sized (one realloc at most).
    fn splice(&mut self, range: Range<usize>, with: &[u8]) {
        if range.len() == with.len() {
            self.buf[range].copy_from_slice(with);
            return;
        }
        let mut v = std::mem::take(&mut self.buf).into_vec();
        if with.len() > range.len() {
            v.reserve_exact(with.len() - range.len());
        }
        v.splice(range, with.iter().copied());
        self.buf = v.into_boxed_slice();
    }

    fn encode(&self, field: &[u8], value: &[u8], expire: Option<i64>) -> Vec<u8> {
        let mut e = Vec::with_capacity(field.len() + value.len() + 12);
        put_varint(&mut e, field.len() as u64);
        e.extend_from_slice(field);
        put_varint(&mut e, value.len() as u64);
        e.extend_from_slice(value);
        if self.is_ex() {
            put_varint(&mut e, exp_code(expire));
        }
        e
    }

    /// Where a pair expiring at `expire` goes in a listpackex: before the
    /// first pair that is persistent or expires at or after it, as Redis's
    /// `listpackExAddInternal`; persistent pairs go last.
    fn ex_position(&self, expire: Option<i64>) -> usize {
        if let Some(t) = expire {
            for p in self.pairs() {
                match p.expire {
                    None => return p.start,
                    Some(x) if x >= t => return p.start,
                    _ => {}
                }
            }
        }
        self.buf.len()
    }

    /// Inserts a new pair (the field must be absent).
    fn insert_new(&mut self, field: &[u8], value: &[u8], expire: Option<i64>) {
        let bytes = self.encode(field, value, expire);
        let at = self.ex_position(expire);
        self.splice(at..at, &bytes);
        let n = self.len() + 1;
        self.set_len(n);
    }

    fn remove_pair(&mut self, p: &LpPair) {
        self.splice(p.start..p.end, &[]);
        let n = self.len() - 1;
        self.set_len(n);
    }

    /// Sets a field; returns true when it is new. An existing field keeps
    /// its place; its expiry is kept with `keep_ttl`, else dropped (which
    /// moves it to the end of a listpackex, as in Redis).
    fn set(&mut self, field: &[u8], value: &[u8], keep_ttl: bool) -> bool {
        match self.find(field) {
            None => {
                self.insert_new(field, value, None);
                true
            }
            Some(p) => {
                if p.expire.is_some() && !keep_ttl {
                    self.remove_pair(&p);
                    self.insert_new(field, value, None);
                } else {
                    let mut bytes = Vec::with_capacity(value.len() + 2);
                    put_varint(&mut bytes, value.len() as u64);
                    bytes.extend_from_slice(value);
                    // The value's varint starts right after the field.
                    self.splice(p.field.end..p.value.end, &bytes);
                }
                false
            }
        }
    }

    /// Changes a field's expiry, re-placing it in expiry order.
    fn set_expire(&mut self, p: &LpPair, expire: Option<i64>) {
        let field = self.buf[p.field.clone()].to_vec();
        let value = self.buf[p.value.clone()].to_vec();
        self.remove_pair(p);
        self.insert_new(&field, &value, expire);
    }

    /// Becomes a listpackex: every pair gains an empty expiry.
    fn make_ex(&mut self) {
        if self.is_ex() {
            return;
        }
        let n = self.len();
        let mut out = Vec::with_capacity(self.buf.len() + 8 + n);
        out.extend_from_slice(&self.buf[..LP_HDR]);
        out[LP_FLAGS] |= LP_FLAG_EX;
        out.extend_from_slice(&NOT_QUEUED.to_le_bytes());
        for p in self.pairs() {
            out.extend_from_slice(&self.buf[p.start..p.end]);
            out.push(0);
        }
        self.buf = out.into_boxed_slice();
    }

    /// Removes the expired prefix of a listpackex (at most `max` pairs);
    /// returns how many.
    fn purge(&mut self, now: i64, max: usize) -> usize {
        if !self.is_ex() {
            return 0;
        }
        let start = self.hdr();
        let mut end = start;
        let mut n = 0;
        for p in self.pairs().take(max) {
            match p.expire {
                Some(t) if t <= now => {
                    end = p.end;
                    n += 1;
                }
                _ => break,
            }
        }
        if n > 0 {
            self.splice(start..end, &[]);
            let left = self.len() - n;
            self.set_len(left);
        }
        n
    }

    fn min_expire(&self) -> Option<i64> {
        if !self.is_ex() {
            return None;
        }
        self.pairs().next().and_then(|p| p.expire)
    }

    fn nth(&self, n: usize) -> Option<LpPair> {
        self.pairs().nth(n)
    }
}

impl Clone for Listpack {
    fn clone(&self) -> Self {
        let mut c = Listpack {
            buf: self.buf.clone(),
        };
        // A copy is a new value: it is in no expiry queue yet.
        c.set_stamp(NOT_QUEUED);
        c
    }
}

struct LpPairs<'a> {
    lp: &'a Listpack,
    pos: usize,
}

impl Iterator for LpPairs<'_> {
    type Item = LpPair;
    fn next(&mut self) -> Option<LpPair> {
        if self.pos >= self.lp.buf.len() {
            return None;
        }
        let p = self.lp.pair_at(self.pos);
        self.pos = p.end;
        Some(p)
    }
}

mod table;
use table::*;

// ---------------------------------------------------------------------------
// the hash

enum Repr {
    Lp(Listpack),
    Ht(Box<FieldTable>),
}

/// A Redis hash (see the module docs).
pub struct Hash {
    repr: Repr,
}

/// A field to access, with what [`Hash::field_info`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldState {
    /// No such field.
    Missing,
    /// The field exists, with this expiry.
    Present(Option<i64>),
}

impl Default for Hash {
    fn default() -> Self {
        Hash::new()
    }
}

impl Hash {
    /// An empty listpack hash.
    pub fn new() -> Hash {
        Hash {
            repr: Repr::Lp(Listpack::new()),
        }
    }

    /// Number of fields (expired ones included until purged).
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Lp(lp) => lp.len(),
            Repr::Ht(t) => t.len,
        }
    }

    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The Redis encoding name (`OBJECT ENCODING`): `listpack`,
    /// `listpackex` or `hashtable`.
    pub fn encoding(&self) -> &'static str {
        match &self.repr {
            Repr::Lp(lp) if lp.is_ex() => "listpackex",
            Repr::Lp(_) => "listpack",
            Repr::Ht(_) => "hashtable",
        }
    }

    /// Whether this is the hashtable encoding.
    pub fn is_table(&self) -> bool {
        matches!(self.repr, Repr::Ht(_))
    }

    /// Approximate heap bytes used.
    pub fn heap_size(&self) -> usize {
        match &self.repr {
            Repr::Lp(lp) => lp.buf.len(),
            Repr::Ht(t) => std::mem::size_of::<FieldTable>() + t.heap_size(),
        }
    }

    /// The value of `field` (expiry not checked).
    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match &self.repr {
            Repr::Lp(lp) => lp.find(field).map(|p| &lp.buf[p.value]),
            Repr::Ht(t) => t.get(field).map(FieldBox::value),
        }
    }

    /// The value and expiry of `field`.
    pub fn get_with_expire(&self, field: &[u8]) -> Option<(&[u8], Option<i64>)> {
        match &self.repr {
            Repr::Lp(lp) => lp.find(field).map(|p| (&lp.buf[p.value], p.expire)),
            Repr::Ht(t) => t.get(field).map(|f| {
                let (_, v, e) = f.parts();
                (v, e)
            }),
        }
    }

    /// Whether `field` exists, and its expiry.
    pub fn field_info(&self, field: &[u8]) -> FieldState {
        match self.get_with_expire(field) {
            Some((_, e)) => FieldState::Present(e),
            None => FieldState::Missing,
        }
    }

    /// Converts to the hashtable encoding (sized for `extra` more fields).
    pub fn convert_to_table(&mut self, extra: usize) {
        let Repr::Lp(lp) = &self.repr else {
            return;
        };
        let mut t = FieldTable::with_capacity(lp.len() + extra);
        for p in lp.pairs() {
            let field = &lp.buf[p.field.clone()];
            let h = hash_key(field);
            t.place(
                FieldBox::new(field, &lp.buf[p.value.clone()], p.expire, tag_of(h)),
                h,
            );
        }
        // The queue stamp belongs to the value, whatever its encoding.
        t.stamp = lp.stamp();
        self.repr = Repr::Ht(Box::new(t));
    }

    /// Redis's `hashTypeTryConversion`: before adding `pairs` pairs whose
    /// fields and values have lengths `lens`, converts a listpack that
    /// would get too many entries or a too long element.
    pub fn try_conversion(
        &mut self,
        pairs: usize,
        lens: impl IntoIterator<Item = usize>,
        limits: Limits,
    ) {
        let Repr::Lp(lp) = &self.repr else {
            return;
        };
        if pairs > limits.max_entries {
            self.convert_to_table(pairs);
            return;
        }
        let mut sum = 0usize;
        for l in lens {
            if l > limits.max_value {
                self.convert_to_table(0);
                return;
            }
            sum = sum.saturating_add(l);
        }
        if lp.buf.len().saturating_add(sum) > LISTPACK_MAX_SAFETY_SIZE {
            self.convert_to_table(0);
        }
    }

    /// Sets `field` to `value`; returns true when the field is new. The
    /// field's expiry is kept with `keep_ttl` (HINCRBY, HSETEX KEEPTTL),
    /// else cleared (HSET). Converts to a hashtable past the limits.
    pub fn set(&mut self, field: &[u8], value: &[u8], keep_ttl: bool, limits: Limits) -> bool {
        if let Repr::Lp(lp) = &self.repr {
            if field.len() > limits.max_value
                || value.len() > limits.max_value
                || lp.buf.len() + field.len() + value.len() > LISTPACK_MAX_SAFETY_SIZE
            {
                self.convert_to_table(1);
            }
        }
        match &mut self.repr {
            Repr::Lp(lp) => {
                let new = lp.set(field, value, keep_ttl);
                if lp.len() > limits.max_entries {
                    self.convert_to_table(0);
                }
                new
            }
            Repr::Ht(t) => t.set(field, value, keep_ttl),
        }
    }

    /// Deletes `field`; returns whether it existed.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match &mut self.repr {
            Repr::Lp(lp) => match lp.find(field) {
                Some(p) => {
                    lp.remove_pair(&p);
                    true
                }
                None => false,
            },
            Repr::Ht(t) => t.remove(field),
        }
    }

    /// Prepares for field expiries: a listpack becomes a listpackex (Redis
    /// does this whenever a field-expiry command touches a listpack hash,
    /// even if it sets nothing).
    pub fn enable_expiry(&mut self) {
        if let Repr::Lp(lp) = &mut self.repr {
            lp.make_ex();
        }
    }

    /// Sets (`Some`) or clears (`None`) the expiry of an existing field;
    /// returns false when there is no such field. Setting needs
    /// [`Hash::enable_expiry`] first on a listpack.
    pub fn set_expire(&mut self, field: &[u8], expire: Option<i64>) -> bool {
        match &mut self.repr {
            Repr::Lp(lp) => {
                let Some(p) = lp.find(field) else {
                    return false;
                };
                if p.expire == expire {
                    return true;
                }
                if expire.is_some() {
                    lp.make_ex();
                    // Positions moved: find the pair again.
                    let p = lp.find(field).expect("field just found");
                    lp.set_expire(&p, expire);
                } else {
                    lp.set_expire(&p, None);
                }
                true
            }
            Repr::Ht(t) => match t.find(field) {
                Some(i) => {
                    if t.slots[i].as_ref().and_then(FieldBox::expire) != expire {
                        t.set_expire_at(i, expire);
                    }
                    true
                }
                None => false,
            },
        }
    }

    /// The earliest field expiry, if any field has one.
    pub fn min_expire(&self) -> Option<i64> {
        match &self.repr {
            Repr::Lp(lp) => lp.min_expire(),
            Repr::Ht(t) => t.min_expire(),
        }
    }

    /// Number of fields with an expiry.
    pub fn volatile_len(&self) -> usize {
        match &self.repr {
            Repr::Lp(lp) => lp.pairs().filter(|p| p.expire.is_some()).count(),
            Repr::Ht(t) => t.ttl.len(),
        }
    }

    /// Whether some field expires at or before `now`.
    #[inline]
    pub fn has_expired(&self, now: i64) -> bool {
        matches!(self.min_expire(), Some(t) if t <= now)
    }

    /// Deletes every field whose expiry is at or before `now`; returns how
    /// many. Costs nothing more than a peek when none is due.
    pub fn purge_expired(&mut self, now: i64) -> usize {
        self.purge_expired_max(now, usize::MAX)
    }

    /// [`Hash::purge_expired`], deleting at most about `max` fields (the
    /// active expiry cycle bounds its work per hash with it).
    pub fn purge_expired_max(&mut self, now: i64, max: usize) -> usize {
        if !self.has_expired(now) {
            return 0;
        }
        match &mut self.repr {
            Repr::Lp(lp) => lp.purge(now, max),
            Repr::Ht(t) => t.purge(now, max),
        }
    }

    /// Where this hash was last queued for active field expiry
    /// ([`NOT_QUEUED`] when never, or for a plain listpack). Kept by the
    /// server's expiry queue; a clone starts unqueued.
    pub fn queued_at(&self) -> i64 {
        match &self.repr {
            Repr::Lp(lp) => lp.stamp(),
            Repr::Ht(t) => t.stamp,
        }
    }

    /// Records where this hash is queued (ignored by a plain listpack,
    /// which has no expiries).
    pub fn set_queued_at(&mut self, t: i64) {
        match &mut self.repr {
            Repr::Lp(lp) => lp.set_stamp(t),
            Repr::Ht(ht) => ht.stamp = t,
        }
    }

    /// Iterates over `(field, value)` in storage order.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            inner: self.iter_with_expire(),
        }
    }

    /// Iterates over `(field, value, expiry)` in storage order.
    pub fn iter_with_expire(&self) -> IterEx<'_> {
        match &self.repr {
            Repr::Lp(lp) => IterEx(IterInner::Lp(lp, lp.pairs())),
            Repr::Ht(t) => IterEx(IterInner::Ht(t.slots.iter())),
        }
    }

    /// One HSCAN step: a listpack is visited whole (next cursor 0, as
    /// Redis does for small encodings); a hashtable visits buckets from
    /// `cursor` until `count` fields were seen or `count * 10` buckets
    /// were visited. Returns the next cursor (0 when done).
    pub fn scan(&self, cursor: u64, count: usize, f: &mut FieldVisitor<'_>) -> u64 {
        match &self.repr {
            Repr::Lp(_) => {
                for (k, v, e) in self.iter_with_expire() {
                    f(k, v, e);
                }
                0
            }
            Repr::Ht(t) => {
                let mut seen = 0usize;
                let mut cursor = cursor;
                let mut budget = count.saturating_mul(10).max(1);
                loop {
                    cursor = t.scan(cursor, &mut |k, v, e| {
                        seen += 1;
                        f(k, v, e);
                    });
                    budget -= 1;
                    if cursor == 0 || seen >= count || budget == 0 {
                        return cursor;
                    }
                }
            }
        }
    }

    /// A random field and value (`rand` yields uniform 64-bit numbers).
    /// For the hashtable it takes the first field at or after a random
    /// slot, as kvik's RANDOMKEY does.
    pub fn random(&self, rand: &mut dyn FnMut() -> u64) -> Option<(&[u8], &[u8])> {
        match &self.repr {
            Repr::Lp(lp) => {
                if lp.len() == 0 {
                    return None;
                }
                let p = lp.nth((rand() % lp.len() as u64) as usize)?;
                Some((&lp.buf[p.field], &lp.buf[p.value]))
            }
            Repr::Ht(t) => t.near(rand() as usize).map(|f| {
                let (k, v, _) = f.parts();
                (k, v)
            }),
        }
    }

    /// Calls `f` on `count` random fields, repeats allowed (HRANDFIELD
    /// with a negative count). A listpack is indexed once rather than
    /// walked for every pick.
    pub fn random_many(
        &self,
        count: u64,
        rand: &mut dyn FnMut() -> u64,
        f: &mut dyn FnMut(&[u8], &[u8]),
    ) {
        match &self.repr {
            Repr::Lp(lp) => {
                let pairs: Vec<LpPair> = lp.pairs().collect();
                if pairs.is_empty() {
                    return;
                }
                for _ in 0..count {
                    let p = &pairs[(rand() % pairs.len() as u64) as usize];
                    f(&lp.buf[p.field.clone()], &lp.buf[p.value.clone()]);
                }
            }
            Repr::Ht(t) => {
                for _ in 0..count {
                    if let Some(fb) = t.near(rand() as usize) {
                        let (k, v, _) = fb.parts();
                        f(k, v);
                    }
                }
            }
        }
    }

    /// Picks `count` distinct random fields (`count` < len) and calls `f`
    /// on each: listpacks in storage order (Redis's
    /// `lpRandomPairsUnique`), hashtables in random order.
    pub fn random_distinct(
        &self,
        count: usize,
        rand: &mut dyn FnMut() -> u64,
        f: &mut dyn FnMut(&[u8], &[u8]),
    ) {
        let len = self.len();
        let count = count.min(len);
        match &self.repr {
            Repr::Lp(lp) => {
                // Selection sampling: keep each pair with probability
                // needed / remaining.
                let mut needed = count;
                let mut remaining = len;
                for p in lp.pairs() {
                    if needed == 0 {
                        break;
                    }
                    if rand() % (remaining as u64) < needed as u64 {
                        f(&lp.buf[p.field.clone()], &lp.buf[p.value.clone()]);
                        needed -= 1;
                    }
                    remaining -= 1;
                }
            }
            Repr::Ht(t) => {
                if count * 3 > len {
                    // Most of the table: list it, then drop random ones.
                    let mut all: Vec<&FieldBox> = t.slots.iter().flatten().collect();
                    while all.len() > count {
                        let i = (rand() % all.len() as u64) as usize;
                        all.swap_remove(i);
                    }
                    for fb in all {
                        let (k, v, _) = fb.parts();
                        f(k, v);
                    }
                } else {
                    // Few of many: random slots, skipping repeats.
                    let mut taken = std::collections::HashSet::with_capacity(count);
                    while taken.len() < count {
                        let Some(fb) = t.near(rand() as usize) else {
                            return;
                        };
                        if taken.insert(fb.base() as usize) {
                            let (k, v, _) = fb.parts();
                            f(k, v);
                        }
                    }
                }
            }
        }
    }

    /// Checks internal invariants (tests and debugging).
    pub fn check(&self) -> Result<(), String> {
        match &self.repr {
            Repr::Lp(lp) => {
                let n = lp.pairs().count();
                if n != lp.len() {
                    return Err(format!("listpack count {} != {}", lp.len(), n));
                }
                if lp.is_ex() {
                    let mut last = Some(i64::MIN);
                    for p in lp.pairs() {
                        match (last, p.expire) {
                            (None, Some(_)) => return Err("ttl after persistent".into()),
                            (Some(a), Some(b)) if b < a => return Err("ttl order".into()),
                            _ => {}
                        }
                        last = p.expire;
                    }
                }
                Ok(())
            }
            Repr::Ht(t) => {
                let n = t.slots.iter().flatten().count();
                if n != t.len {
                    return Err(format!("table len {} != {}", t.len, n));
                }
                for (i, f) in t.slots.iter().enumerate() {
                    if let Some(f) = f {
                        if t.find(f.field()) != Some(i) {
                            return Err("unreachable field".into());
                        }
                    }
                }
                let vol = t.slots.iter().flatten().filter(|f| f.expire().is_some());
                if vol.count() != t.ttl.len() {
                    return Err("ttl index size".into());
                }
                Ok(())
            }
        }
    }
}

impl Clone for Hash {
    fn clone(&self) -> Self {
        let repr = match &self.repr {
            Repr::Lp(lp) => Repr::Lp(lp.clone()),
            Repr::Ht(t) => Repr::Ht(Box::new((**t).clone())),
        };
        Hash { repr }
    }
}

impl PartialEq for Hash {
    /// Same encoding and the same fields, values and expiries.
    fn eq(&self, other: &Self) -> bool {
        self.encoding() == other.encoding()
            && self.len() == other.len()
            && self
                .iter_with_expire()
                .all(|(k, v, e)| other.get_with_expire(k) == Some((v, e)))
    }
}

impl std::fmt::Debug for Hash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut m = f.debug_map();
        for (k, v, e) in self.iter_with_expire() {
            let key = String::from_utf8_lossy(k);
            match e {
                Some(t) => m.entry(&key, &format_args!("{:?} @{t}", String::from_utf8_lossy(v))),
                None => m.entry(&key, &String::from_utf8_lossy(v)),
            };
        }
        m.finish()
    }
}

/// Iterator over `(field, value, expiry)`.
pub struct IterEx<'a>(IterInner<'a>);

enum IterInner<'a> {
    Lp(&'a Listpack, LpPairs<'a>),
    Ht(std::slice::Iter<'a, Option<FieldBox>>),
}

impl<'a> Iterator for IterEx<'a> {
    type Item = (&'a [u8], &'a [u8], Option<i64>);
    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.0 {
            IterInner::Lp(lp, it) => it
                .next()
                .map(|p| (&lp.buf[p.field], &lp.buf[p.value], p.expire)),
            IterInner::Ht(it) => it.flatten().next().map(FieldBox::parts),
        }
    }
}

/// Iterator over `(field, value)`.
pub struct Iter<'a> {
    inner: IterEx<'a>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next().map(|(k, v, _)| (k, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, BTreeSet};

    const SMALL: Limits = Limits {
        max_entries: 8,
        max_value: 16,
    };

    fn fields(h: &Hash) -> Vec<String> {
        h.iter()
            .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
            .collect()
    }

    #[test]
    fn listpack_keeps_insertion_order_and_converts() {
        let mut h = Hash::new();
        for f in ["a", "b", "c"] {
            assert!(h.set(f.as_bytes(), b"1", false, SMALL));
        }
        assert!(!h.set(b"b", b"a longer value", false, SMALL));
        assert!(h.remove(b"a"));
        assert_eq!(fields(&h), ["b", "c"]);
        assert_eq!(h.get(b"b"), Some(&b"a longer value"[..]));
        assert_eq!(h.encoding(), "listpack");
        h.set(b"x", &[b'v'; 17], false, SMALL);
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.len(), 3);
        let mut h = Hash::new();
        for i in 0..9u8 {
            h.set(&[b'f', b'0' + i], b"v", false, SMALL);
        }
        assert_eq!(h.encoding(), "hashtable");
        h.check().unwrap();
    }

    #[test]
    fn listpackex_orders_by_expiry_like_redis() {
        let mut h = Hash::new();
        for f in ["a", "b", "c", "d"] {
            h.set(f.as_bytes(), b"v", false, SMALL);
        }
        h.enable_expiry();
        assert_eq!(h.encoding(), "listpackex");
        assert_eq!(h.queued_at(), NOT_QUEUED);
        h.set_expire(b"c", Some(300));
        h.set_expire(b"a", Some(100));
        h.set_expire(b"d", Some(300));
        assert_eq!(fields(&h), ["a", "d", "c", "b"]);
        assert_eq!(h.min_expire(), Some(100));
        // Persisting moves a field to the end; overwriting drops the TTL
        // unless kept.
        h.set_expire(b"d", None);
        assert_eq!(fields(&h), ["a", "c", "b", "d"]);
        h.set(b"c", b"w", true, SMALL);
        assert_eq!(h.get_with_expire(b"c"), Some((&b"w"[..], Some(300))));
        h.set(b"a", b"w", false, SMALL);
        assert_eq!(fields(&h), ["c", "b", "d", "a"]);
        assert_eq!(h.purge_expired(299), 0);
        assert_eq!(h.purge_expired(300), 1);
        assert_eq!(fields(&h), ["b", "d", "a"]);
        assert_eq!(h.min_expire(), None);
        assert_eq!(h.encoding(), "listpackex");
        h.check().unwrap();
    }

    #[test]
    fn table_expiry_index() {
        let mut h = Hash::new();
        h.convert_to_table(0);
        for i in 0..1000u32 {
            h.set(&i.to_be_bytes(), b"v", false, SMALL);
        }
        for i in 0..1000u32 {
            h.set_expire(&i.to_be_bytes(), Some(1000 + (i % 10) as i64));
        }
        assert_eq!(h.min_expire(), Some(1000));
        h.set_expire(&0u32.to_be_bytes(), None);
        h.set(&10u32.to_be_bytes(), b"w", false, SMALL);
        assert_eq!(h.volatile_len(), 998);
        assert_eq!(h.purge_expired(1000), 98);
        assert_eq!(h.len(), 902);
        assert_eq!(h.purge_expired(1004), 400);
        h.check().unwrap();
        assert_eq!(h.purge_expired(2000), 500);
        assert_eq!(h.len(), 2);
        assert_eq!(h.min_expire(), None);
        h.check().unwrap();
        let c = h.clone();
        assert_eq!(c, h);
    }

    #[test]
    fn random_distinct_counts() {
        let mut seed = 0x1234_5678_9abc_def0u64;
        let mut rand = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for n in [5usize, 100, 1000] {
            let mut h = Hash::new();
            for i in 0..n as u32 {
                h.set(&i.to_be_bytes(), b"v", false, Limits::default());
            }
            for count in [1, n / 4, n / 2, n - 1] {
                let mut got = BTreeSet::new();
                h.random_distinct(count, &mut rand, &mut |k, _| {
                    assert!(got.insert(k.to_vec()));
                });
                assert_eq!(got.len(), count);
            }
            assert!(h.random(&mut rand).is_some());
        }
    }

    #[test]
    fn scan_returns_everything_across_resizes() {
        let mut h = Hash::new();
        for i in 0..200u32 {
            h.set(&i.to_be_bytes(), b"v", false, SMALL);
        }
        let mut seen = BTreeSet::new();
        let mut cursor = 0;
        let mut step = 0u32;
        loop {
            cursor = h.scan(cursor, 5, &mut |k, _, _| {
                seen.insert(k.to_vec());
            });
            // Grow and shrink the table while scanning.
            step += 1;
            if step.is_multiple_of(3) {
                for j in 0..50u32 {
                    h.set(&(10_000 + step * 100 + j).to_be_bytes(), b"v", false, SMALL);
                }
            } else if step % 3 == 1 {
                for j in 0..50u32 {
                    h.remove(&(10_000 + (step - 1) * 100 + j).to_be_bytes());
                }
            }
            if cursor == 0 {
                break;
            }
        }
        for i in 0..200u32 {
            assert!(seen.contains(i.to_be_bytes().as_slice()));
        }
    }

    #[test]
    fn memory_is_lean() {
        // A plain hash of ten small pairs is one buffer of ~ the data.
        let mut h = Hash::new();
        for i in 0..10 {
            h.set(
                format!("field:{i}").as_bytes(),
                b"value:1",
                false,
                Limits::default(),
            );
        }
        assert_eq!(h.heap_size(), 5 + 10 * (1 + 7 + 1 + 7));
        assert!(std::mem::size_of::<Hash>() <= 24);
        let fb = FieldBox::new(b"field:123456", b"value:123456", None, 0);
        assert_eq!(fb.size(), 1 + 1 + 12 + 1 + 12);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Set(u8, Vec<u8>, bool),
        Remove(u8),
        Expire(u8, Option<i64>),
        Enable,
        Purge(i64),
        Clone,
    }

    fn op() -> impl Strategy<Value = Op> {
        let value = proptest::collection::vec(any::<u8>(), 0..20);
        prop_oneof![
            6 => (0u8..24, value, any::<bool>()).prop_map(|(f, v, k)| Op::Set(f, v, k)),
            2 => (0u8..24).prop_map(Op::Remove),
            3 => (0u8..24, proptest::option::of(1i64..50)).prop_map(|(f, e)| Op::Expire(f, e)),
            1 => Just(Op::Enable),
            1 => (0i64..60).prop_map(Op::Purge),
            1 => Just(Op::Clone),
        ]
    }

    fn field_name(f: u8) -> Vec<u8> {
        // Some names exceed SMALL.max_value, forcing conversions.
        if f % 11 == 10 {
            vec![b'L'; 20 + f as usize]
        } else {
            format!("f{f}").into_bytes()
        }
    }

    proptest! {
        #[test]
        fn behaves_like_a_map(ops in proptest::collection::vec(op(), 0..300)) {
            let mut h = Hash::new();
            // field -> (value, expiry)
            let mut model: BTreeMap<Vec<u8>, (Vec<u8>, Option<i64>)> = BTreeMap::new();
            // Insertion order while the hash is a plain listpack.
            let mut order: Vec<Vec<u8>> = Vec::new();
            let mut table = false;
            let mut ex = false;
            for o in ops {
                match o {
                    Op::Set(f, v, keep) => {
                        let f = field_name(f);
                        let new = h.set(&f, &v, keep, SMALL);
                        let old = model.get(&f).cloned();
                        prop_assert_eq!(new, old.is_none());
                        let e = if keep { old.and_then(|o| o.1) } else { None };
                        model.insert(f.clone(), (v.clone(), e));
                        if new { order.push(f.clone()); }
                        if f.len() > SMALL.max_value || v.len() > SMALL.max_value
                            || model.len() > SMALL.max_entries {
                            table = true;
                        }
                    }
                    Op::Remove(f) => {
                        let f = field_name(f);
                        prop_assert_eq!(h.remove(&f), model.remove(&f).is_some());
                        order.retain(|x| *x != f);
                    }
                    Op::Expire(f, e) => {
                        let f = field_name(f);
                        if e.is_some() { h.enable_expiry(); ex = true; }
                        let ok = h.set_expire(&f, e);
                        prop_assert_eq!(ok, model.contains_key(&f));
                        if let Some(m) = model.get_mut(&f) { m.1 = e; }
                    }
                    Op::Enable => { h.enable_expiry(); ex = true; }
                    Op::Purge(now) => {
                        let before = model.len();
                        model.retain(|_, (_, e)| !matches!(e, Some(t) if *t <= now));
                        order.retain(|f| model.contains_key(f));
                        prop_assert_eq!(h.purge_expired(now), before - model.len());
                    }
                    Op::Clone => {
                        let c = h.clone();
                        prop_assert_eq!(&c, &h);
                        prop_assert_eq!(c.queued_at(), NOT_QUEUED);
                        h = c;
                    }
                }
                h.check().map_err(TestCaseError::fail)?;
                prop_assert_eq!(h.len(), model.len());
                let expected = if table { "hashtable" } else if ex { "listpackex" } else { "listpack" };
                prop_assert_eq!(h.encoding(), expected);
                let min = model.values().filter_map(|(_, e)| *e).min();
                prop_assert_eq!(h.min_expire(), min);
            }
            for (k, (v, e)) in &model {
                prop_assert_eq!(h.get_with_expire(k), Some((&v[..], *e)));
            }
            let got: BTreeMap<Vec<u8>, (Vec<u8>, Option<i64>)> = h
                .iter_with_expire()
                .map(|(k, v, e)| (k.to_vec(), (v.to_vec(), e)))
                .collect();
            prop_assert_eq!(&got, &model);
            if !table && !ex {
                let listed: Vec<Vec<u8>> = h.iter().map(|(k, _)| k.to_vec()).collect();
                prop_assert_eq!(listed, order);
            }
            let mut scanned = BTreeSet::new();
            let mut c = 0;
            loop {
                c = h.scan(c, 3, &mut |k, _, _| { scanned.insert(k.to_vec()); });
                if c == 0 { break; }
            }
            prop_assert_eq!(scanned, model.keys().cloned().collect::<BTreeSet<_>>());
        }
    }
}
