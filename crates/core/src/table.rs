//! The keyspace hash table: open addressing with linear probing over
//! 8-byte slots, each an `Option<Entry>` (a thin pointer).
//!
//! * Capacity is a power of two; the table grows past 3/4 full and shrinks
//!   below 1/8 full. Deletion shifts followers back (no tombstones).
//! * SCAN walks *home buckets* (hash & mask) in Redis's reverse-binary
//!   cursor order. With linear probing every key whose home is bucket `b`
//!   sits in the run of occupied slots starting at `b`, so visiting a
//!   bucket means walking that run and keeping the keys whose home is `b`.
//!   Because cursors are home buckets, not slot positions, the classic
//!   guarantee holds across growth and shrinking: every key present for the
//!   whole scan is returned at least once.
//! * Hashes are recomputed from the key (no per-slot hash storage) with
//!   foldhash and a per-process random seed, so hash flooding needs the
//!   seed.

use crate::entry::Entry;
use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;

const MIN_CAPACITY: usize = 8;

/// Seeded hasher for keys: foldhash, with a random seed drawn once per
/// process, so colliding keys cannot be precomputed.
fn key_hasher() -> &'static foldhash::fast::RandomState {
    static H: OnceLock<foldhash::fast::RandomState> = OnceLock::new();
    H.get_or_init(foldhash::fast::RandomState::default)
}

/// The 16 hash bits kept in an entry's pointer tag: the top bits, which
/// the bucket index (low bits) does not use.
#[inline]
fn tag_of(hash: u64) -> u16 {
    (hash >> 48) as u16
}

/// The SCAN cursor after bucket `cursor & mask`: a reverse-binary
/// increment of the masked bits, as Redis's `dictScan`, so a scan visits
/// every bucket once even when the table grows or shrinks between steps.
/// Shared by every open-addressing table that serves a SCAN command.
#[inline]
pub fn next_scan_cursor(cursor: u64, mask: u64) -> u64 {
    (cursor | !mask)
        .reverse_bits()
        .wrapping_add(1)
        .reverse_bits()
}

/// Hash of a key as used by every table.
#[inline]
pub fn hash_key(key: &[u8]) -> u64 {
    let mut h = key_hasher().build_hasher();
    h.write(key);
    h.finish()
}

/// Result of [`Table::lookup`].
#[derive(Debug)]
pub enum Lookup<'a> {
    /// The live entry.
    Found(&'a mut Entry),
    /// No such key.
    Missing,
    /// The key had expired and was removed by this lookup.
    Expired,
}

/// An open-addressing table of entries keyed by their own key.
#[derive(Default)]
pub struct Table {
    slots: Vec<Option<Entry>>,
    len: usize,
    volatile: usize,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("len", &self.len)
            .field("capacity", &self.slots.len())
            .finish()
    }
}

impl Table {
    /// An empty table (allocates nothing until the first insert).
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of keys with an expiry.
    pub fn volatile_len(&self) -> usize {
        self.volatile
    }

    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Bytes used by the slot array.
    pub fn slot_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Option<Entry>>()
    }

    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    fn find(&self, key: &[u8]) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        let mask = self.mask();
        let h = hash_key(key);
        let tag = tag_of(h);
        let mut i = h as usize & mask;
        loop {
            match &self.slots[i] {
                None => return None,
                Some(e) if e.tag() == tag && e.key() == key => return Some(i),
                Some(e) => {
                    // An entry replaced wholesale through `get_mut` would
                    // lose its tag and become unreachable: catch it in tests.
                    debug_assert!(e.key() != key, "entry lost its table tag");
                    i = (i + 1) & mask
                }
            }
        }
    }

    /// The entry for `key`.
    pub fn get(&self, key: &[u8]) -> Option<&Entry> {
        self.find(key).and_then(|i| self.slots[i].as_ref())
    }

    /// One probe for `key` that also applies lazy expiry: an entry whose
    /// expiry is at or before `now_ms` is removed and reported as
    /// [`Lookup::Expired`].
    pub fn lookup(&mut self, key: &[u8], now_ms: i64) -> Lookup<'_> {
        let Some(i) = self.find(key) else {
            return Lookup::Missing;
        };
        if matches!(&self.slots[i], Some(e) if e.is_expired(now_ms)) {
            self.take_slot(i);
            return Lookup::Expired;
        }
        match self.slots[i].as_mut() {
            Some(e) => Lookup::Found(e),
            None => Lookup::Missing,
        }
    }

    /// The entry for `key`, mutably. Callers that change the expiry must
    /// use [`Table::set_expire`] so the volatile count stays right, and
    /// must change the entry through its methods (which keep the pointer
    /// tag), never by assigning a new `Entry` over it.
    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut Entry> {
        let i = self.find(key)?;
        self.slots[i].as_mut()
    }

    /// Sets or clears the expiry of `key`; returns false when absent.
    pub fn set_expire(&mut self, key: &[u8], expire_ms: Option<i64>) -> bool {
        let Some(i) = self.find(key) else {
            return false;
        };
        let Some(e) = self.slots[i].as_mut() else {
            return false;
        };
        match (e.expire().is_some(), expire_ms.is_some()) {
            (false, true) => self.volatile += 1,
            (true, false) => self.volatile -= 1,
            _ => {}
        }
        e.set_expire(expire_ms);
        true
    }

    /// Inserts `entry`, returning the entry it replaced.
    pub fn insert(&mut self, mut entry: Entry) -> Option<Entry> {
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.resize((self.slots.len() * 2).max(MIN_CAPACITY));
        }
        let vol = entry.expire().is_some() as usize;
        let mask = self.mask();
        let h = hash_key(entry.key());
        let tag = tag_of(h);
        entry.set_tag(tag);
        let mut i = h as usize & mask;
        loop {
            match &self.slots[i] {
                None => {
                    self.slots[i] = Some(entry);
                    self.len += 1;
                    self.volatile += vol;
                    return None;
                }
                Some(e) if e.tag() == tag && e.key() == entry.key() => {
                    let old = self.slots[i].replace(entry);
                    if let Some(o) = &old {
                        self.volatile -= o.expire().is_some() as usize;
                    }
                    self.volatile += vol;
                    return old;
                }
                Some(_) => i = (i + 1) & mask,
            }
        }
    }

    /// Removes and returns the entry for `key`.
    pub fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let i = self.find(key)?;
        let removed = self.take_slot(i);
        if self.slots.len() > MIN_CAPACITY && self.len * 8 < self.slots.len() {
            self.resize((self.len * 2).next_power_of_two().max(MIN_CAPACITY));
        }
        removed
    }

    /// Empties slot `i` and shifts the following run back so that every key
    /// stays reachable from its home bucket.
    fn take_slot(&mut self, mut i: usize) -> Option<Entry> {
        let removed = self.slots[i].take();
        if let Some(e) = &removed {
            self.len -= 1;
            self.volatile -= e.expire().is_some() as usize;
        }
        let mask = self.mask();
        let mut j = i;
        loop {
            j = (j + 1) & mask;
            let home = match &self.slots[j] {
                None => break,
                Some(e) => hash_key(e.key()) as usize & mask,
            };
            // The entry at j may move to the hole at i if its home is not
            // cyclically inside (i, j].
            let dist_home = j.wrapping_sub(home) & mask;
            let dist_hole = j.wrapping_sub(i) & mask;
            if dist_home >= dist_hole {
                self.slots[i] = self.slots[j].take();
                i = j;
            }
        }
        removed
    }

    fn resize(&mut self, cap: usize) {
        debug_assert!(cap.is_power_of_two() && cap > self.len);
        let old = std::mem::take(&mut self.slots);
        self.slots = Vec::with_capacity(cap);
        self.slots.resize_with(cap, || None);
        let mask = cap - 1;
        for e in old.into_iter().flatten() {
            let mut i = hash_key(e.key()) as usize & mask;
            while self.slots[i].is_some() {
                i = (i + 1) & mask;
            }
            self.slots[i] = Some(e);
        }
    }

    /// Removes every entry, returning the old slots so a caller can free
    /// them elsewhere (FLUSHALL ASYNC).
    pub fn clear(&mut self) -> Vec<Option<Entry>> {
        self.len = 0;
        self.volatile = 0;
        std::mem::take(&mut self.slots)
    }

    /// Visits the keys of one cursor step and returns the next cursor (0
    /// when the scan is complete). `f` sees each entry whose home bucket is
    /// the cursor's bucket.
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(&Entry)) -> u64 {
        if self.slots.is_empty() {
            return 0;
        }
        let mask = self.mask() as u64;
        let bucket = (cursor & mask) as usize;
        let mut i = bucket;
        while let Some(e) = &self.slots[i] {
            if hash_key(e.key()) as usize & mask as usize == bucket {
                f(e);
            }
            i = (i + 1) & mask as usize;
            if i == bucket {
                break;
            }
        }
        next_scan_cursor(cursor, mask)
    }

    /// The entry in the first occupied slot at or after `pos` (wrapping);
    /// used for random sampling (RANDOMKEY, eviction, active expiry).
    pub fn entry_near(&self, pos: usize) -> Option<&Entry> {
        if self.len == 0 {
            return None;
        }
        let mask = self.mask();
        let mut i = pos & mask;
        loop {
            if let Some(e) = &self.slots[i] {
                return Some(e);
            }
            i = (i + 1) & mask;
        }
    }

    /// Iterates over all entries in slot order.
    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.slots.iter().flatten()
    }

    /// Removes every entry for which `f` returns true, visiting at most the
    /// slots starting at `from` for `budget` slots; returns where to resume
    /// and how many entries were removed. Each removed entry is handed to
    /// `on_removed`. Used by the active expiry cycle.
    pub fn sweep(
        &mut self,
        from: usize,
        budget: usize,
        mut f: impl FnMut(&Entry) -> bool,
        mut on_removed: impl FnMut(Entry),
    ) -> (usize, usize) {
        if self.slots.is_empty() {
            return (0, 0);
        }
        let mask = self.mask();
        let mut i = from & mask;
        let mut removed = 0;
        for _ in 0..budget.min(self.slots.len()) {
            let hit = matches!(&self.slots[i], Some(e) if f(e));
            if hit {
                // The backward shift may move a not yet visited entry into
                // slot i, so look at i again.
                if let Some(e) = self.take_slot(i) {
                    on_removed(e);
                }
                removed += 1;
                continue;
            }
            i = (i + 1) & mask;
        }
        (i, removed)
    }

    /// Shrinks the slot array if it became sparse (after sweeps).
    pub fn maybe_shrink(&mut self) {
        if self.slots.len() > MIN_CAPACITY && self.len * 8 < self.slots.len() {
            self.resize((self.len * 2).next_power_of_two().max(MIN_CAPACITY));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::NewValue;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, BTreeSet};

    fn entry(k: &[u8]) -> Entry {
        Entry::new(k, NewValue::Str(b"v"), None)
    }

    #[test]
    fn insert_get_remove() {
        let mut t = Table::new();
        for i in 0..1000u32 {
            assert!(t.insert(entry(&i.to_be_bytes())).is_none());
        }
        assert_eq!(t.len(), 1000);
        for i in 0..1000u32 {
            assert!(t.get(&i.to_be_bytes()).is_some());
        }
        for i in (0..1000u32).step_by(2) {
            assert!(t.remove(&i.to_be_bytes()).is_some());
        }
        for i in 0..1000u32 {
            assert_eq!(t.get(&i.to_be_bytes()).is_some(), i % 2 == 1);
        }
        assert!(t.insert(entry(&1u32.to_be_bytes())).is_some());
        assert_eq!(t.len(), 500);
    }

    #[test]
    fn volatile_count_tracks_expiry() {
        let mut t = Table::new();
        t.insert(Entry::new(b"a", NewValue::Str(b"1"), Some(10)));
        t.insert(entry(b"b"));
        assert_eq!(t.volatile_len(), 1);
        t.set_expire(b"b", Some(5));
        assert_eq!(t.volatile_len(), 2);
        t.insert(entry(b"a"));
        assert_eq!(t.volatile_len(), 1);
        t.remove(b"b");
        assert_eq!(t.volatile_len(), 0);
    }

    #[test]
    fn sweep_removes_matching() {
        let mut t = Table::new();
        for i in 0..500u32 {
            t.insert(Entry::new(
                &i.to_be_bytes(),
                NewValue::Int(i as i64),
                Some(i as i64),
            ));
        }
        let mut pos = 0;
        let mut total = 0;
        for _ in 0..10 {
            let (p, r) = t.sweep(pos, 1000, |e| e.is_expired(249), drop);
            pos = p;
            total += r;
        }
        assert_eq!(total, 250);
        assert_eq!(t.len(), 250);
        assert!(t.iter().all(|e| !e.is_expired(249)));
    }

    fn full_scan(t: &Table) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut c = 0;
        loop {
            c = t.scan(c, |e| out.push(e.key().to_vec()));
            if c == 0 {
                return out;
            }
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u16),
        Remove(u16),
        ScanStep,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0u16..400).prop_map(Op::Insert),
            2 => (0u16..400).prop_map(Op::Remove),
            1 => Just(Op::ScanStep),
        ]
    }

    proptest! {
        #[test]
        fn behaves_like_a_map(ops in proptest::collection::vec(op(), 0..600)) {
            let mut t = Table::new();
            let mut model = BTreeMap::new();
            for o in ops {
                match o {
                    Op::Insert(k) => {
                        let had = model.insert(k, ()).is_some();
                        prop_assert_eq!(t.insert(entry(&k.to_be_bytes())).is_some(), had);
                    }
                    Op::Remove(k) => {
                        let had = model.remove(&k).is_some();
                        prop_assert_eq!(t.remove(&k.to_be_bytes()).is_some(), had);
                    }
                    Op::ScanStep => {}
                }
                prop_assert_eq!(t.len(), model.len());
            }
            for k in 0u16..400 {
                prop_assert_eq!(t.get(&k.to_be_bytes()).is_some(), model.contains_key(&k));
            }
            let scanned: BTreeSet<Vec<u8>> = full_scan(&t).into_iter().collect();
            let expected: BTreeSet<Vec<u8>> = model.keys().map(|k| k.to_be_bytes().to_vec()).collect();
            prop_assert_eq!(scanned, expected);
        }

        /// Keys present for a whole scan are returned, even while the table
        /// grows and shrinks between cursor steps.
        #[test]
        fn scan_survives_resizes(ops in proptest::collection::vec(op(), 0..800)) {
            let mut t = Table::new();
            for k in 0u16..50 {
                t.insert(entry(&(10_000 + k).to_be_bytes()));
            }
            let stable: BTreeSet<Vec<u8>> = (0u16..50).map(|k| (10_000 + k).to_be_bytes().to_vec()).collect();
            let mut seen = BTreeSet::new();
            let mut cursor = 0u64;
            let mut done = false;
            for o in ops {
                match o {
                    Op::Insert(k) => { t.insert(entry(&k.to_be_bytes())); }
                    Op::Remove(k) => { t.remove(&k.to_be_bytes()); }
                    Op::ScanStep if !done => {
                        cursor = t.scan(cursor, |e| { seen.insert(e.key().to_vec()); });
                        done = cursor == 0;
                    }
                    Op::ScanStep => {}
                }
            }
            while !done {
                cursor = t.scan(cursor, |e| { seen.insert(e.key().to_vec()); });
                done = cursor == 0;
            }
            prop_assert!(stable.is_subset(&seen));
        }
    }
}
