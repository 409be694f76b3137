//! The member → record index of a large sorted set: open addressing with
//! linear probing over 8-byte slots, each a record address with 16 bits of
//! the member's hash in its top bits (0 = empty).
//!
//! Same scheme as the keyspace table: capacity a power of two, growth past
//! 3/4 full, shrinking below 1/8 full, backward-shift deletion, and SCAN by
//! home bucket in reverse-binary cursor order (every member present for the
//! whole scan is returned at least once, across resizes).

use super::rec::Rec;
use crate::table::hash_key;

const MIN_CAPACITY: usize = 8;

#[inline]
fn tag_of(hash: u64) -> u16 {
    (hash >> 48) as u16
}

/// Member → record index. Slots are tagged record pointers (null = empty).
#[derive(Default)]
pub(crate) struct Dict {
    slots: Vec<*mut u8>,
    len: usize,
}

// SAFETY: the slots point to records owned by the same sorted set, which
// moves between threads as a whole; the dictionary only reads them.
unsafe impl Send for Dict {}
// SAFETY: shared access only reads.
unsafe impl Sync for Dict {}

impl Dict {
    /// An empty index sized for `n` members (a hint: presizing stops at a
    /// million slots, the table grows as needed past that).
    pub(crate) fn with_capacity(n: usize) -> Dict {
        const MAX_PRESIZE: usize = 1 << 20;
        let mut d = Dict::default();
        if n > 0 {
            d.resize(Self::capacity_for(n.min(MAX_PRESIZE)));
        }
        d
    }

    fn capacity_for(n: usize) -> usize {
        // Smallest power of two keeping the load at or below 3/4.
        (n.saturating_mul(4) / 3 + 1)
            .next_power_of_two()
            .max(MIN_CAPACITY)
    }

    /// Bytes of the slot array.
    pub(crate) fn heap_size(&self) -> usize {
        self.slots.capacity() * 8
    }

    #[inline]
    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    #[inline]
    fn rec_at(&self, i: usize) -> Option<Rec> {
        let s = self.slots[i];
        // SAFETY: non-empty slots hold tagged pointers to live records.
        (!s.is_null()).then(|| unsafe { Rec::from_tagged(s) })
    }

    fn find(&self, member: &[u8]) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        let mask = self.mask();
        let h = hash_key(member);
        let tag = tag_of(h);
        let mut i = h as usize & mask;
        loop {
            let s = self.slots[i];
            if s.is_null() {
                return None;
            }
            if Rec::tag_of(s) == tag {
                // SAFETY: a non-empty slot holds a tagged live record.
                let r = unsafe { Rec::from_tagged(s) };
                if r.member() == member {
                    return Some(i);
                }
            }
            i = (i + 1) & mask;
        }
    }

    /// The record of `member`.
    pub(crate) fn get(&self, member: &[u8]) -> Option<Rec> {
        self.find(member).and_then(|i| self.rec_at(i))
    }

    /// Adds a record whose member is not in the index yet.
    pub(crate) fn insert(&mut self, rec: Rec) {
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.resize((self.slots.len() * 2).max(MIN_CAPACITY));
        }
        let mask = self.mask();
        let h = hash_key(rec.member());
        let mut i = h as usize & mask;
        while !self.slots[i].is_null() {
            i = (i + 1) & mask;
        }
        self.slots[i] = rec.tagged(tag_of(h));
        self.len += 1;
    }

    /// Removes the slot of `rec` (found by its member, matched by address).
    pub(crate) fn remove_rec(&mut self, rec: Rec) -> bool {
        if self.len == 0 {
            return false;
        }
        let mask = self.mask();
        let mut i = hash_key(rec.member()) as usize & mask;
        loop {
            let s = self.slots[i];
            if s.is_null() {
                return false;
            }
            if rec.is(s) {
                break;
            }
            i = (i + 1) & mask;
        }
        self.take_slot(i);
        if self.slots.len() > MIN_CAPACITY && self.len * 8 < self.slots.len() {
            self.resize(Self::capacity_for(self.len * 2));
        }
        true
    }

    /// Empties slot `i` and shifts the following run back so every member
    /// stays reachable from its home bucket.
    fn take_slot(&mut self, mut i: usize) {
        self.slots[i] = std::ptr::null_mut();
        self.len -= 1;
        let mask = self.mask();
        let mut j = i;
        loop {
            j = (j + 1) & mask;
            let Some(r) = self.rec_at(j) else { break };
            let home = hash_key(r.member()) as usize & mask;
            let dist_home = j.wrapping_sub(home) & mask;
            let dist_hole = j.wrapping_sub(i) & mask;
            if dist_home >= dist_hole {
                self.slots[i] = self.slots[j];
                self.slots[j] = std::ptr::null_mut();
                i = j;
            }
        }
    }

    fn resize(&mut self, cap: usize) {
        debug_assert!(cap.is_power_of_two() && cap > self.len);
        let old = std::mem::replace(&mut self.slots, vec![std::ptr::null_mut(); cap]);
        let mask = cap - 1;
        for s in old.into_iter().filter(|s| !s.is_null()) {
            // SAFETY: non-empty slots hold tagged live records.
            let r = unsafe { Rec::from_tagged(s) };
            let mut i = hash_key(r.member()) as usize & mask;
            while !self.slots[i].is_null() {
                i = (i + 1) & mask;
            }
            self.slots[i] = s;
        }
    }

    /// Visits the records of one cursor step (those whose home bucket is
    /// the cursor's) and returns the next cursor, 0 when done.
    pub(crate) fn scan(&self, cursor: u64, mut f: impl FnMut(Rec)) -> u64 {
        if self.slots.is_empty() {
            return 0;
        }
        let mask = self.mask() as u64;
        let bucket = (cursor & mask) as usize;
        let mut i = bucket;
        while let Some(r) = self.rec_at(i) {
            if hash_key(r.member()) as usize & mask as usize == bucket {
                f(r);
            }
            i = (i + 1) & mask as usize;
            if i == bucket {
                break;
            }
        }
        crate::table::next_scan_cursor(cursor, mask)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn insert_find_remove_scan() {
        let mut d = Dict::default();
        let recs: Vec<Rec> = (0..1000)
            .map(|i| Rec::new(format!("m{i}").as_bytes(), i as f64))
            .collect();
        for r in &recs {
            d.insert(*r);
        }
        for (i, r) in recs.iter().enumerate() {
            assert_eq!(d.get(format!("m{i}").as_bytes()), Some(*r));
        }
        assert!(d.get(b"nope").is_none());
        for r in &recs[..900] {
            assert!(d.remove_rec(*r));
        }
        assert!(d.get(b"m5").is_none());
        assert_eq!(d.get(b"m950"), Some(recs[950]));
        let mut seen = BTreeSet::new();
        let mut cursor = 0;
        loop {
            cursor = d.scan(cursor, |r| {
                seen.insert(r.member().to_vec());
            });
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(seen.len(), 100);
        for r in recs {
            // SAFETY: each record is freed once, after its last use.
            unsafe { r.free() };
        }
    }
}
