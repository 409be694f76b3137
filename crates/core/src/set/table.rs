//! The `hashtable` encoding of large sets: open addressing over 8-byte
//! slots; integers below 2^61 and members of up to 7 bytes live inside the
//! slot, longer members in one exactly sized allocation each.

use super::*;
use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};

/// Address bits of a blob pointer; the top 16 bits carry a hash tag.
pub(super) const ADDR_MASK: usize = (1 << 48) - 1;
/// Smallest number of home buckets.
pub(super) const MIN_CAP: usize = 8;
/// Inline integers are kept shifted left by two, so they must fit 62 bits.
pub(super) const INLINE_INT_MIN: i64 = -(1 << 61);
pub(super) const INLINE_INT_MAX: i64 = (1 << 61) - 1;

/// Hash of a member's bytes under a table's seed. Each table has its own
/// seed: members come out of one table in hash order (SMEMBERS, SUNION),
/// and inserting them in that order into another table hashed the same way
/// would pack them all into the start of its slot array (quadratic
/// probing). The process-wide random part keeps hashes unpredictable.
#[inline]
pub(super) fn hash_member(seed: u64, m: &[u8]) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h =
        foldhash::fast::SeedableRandomState::with_seed(seed, foldhash::SharedSeed::global_random())
            .build_hasher();
    h.write(m);
    h.finish()
}

/// A fresh per-table seed: a counter through the splitmix64 finaliser.
pub(super) fn new_seed() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);
    let mut z = NEXT.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Home bucket of hash `h` among `n`: the high bits of `h * n`, so homes
/// are monotonic in the hash (the SSCAN cursor relies on it).
#[inline]
pub(super) fn home(h: u64, n: usize) -> usize {
    ((h as u128 * n as u128) >> 64) as usize
}

/// The slot value of a member stored inline, or None if it needs a blob.
/// Canonical integers in 62-bit range: `v << 2 | 0b01`; other strings of
/// at most 7 bytes: byte 0 = `len << 2 | 0b11`, then the bytes. Blob
/// pointers are even (2-aligned) and non-null, so the kinds never collide,
/// and a member has exactly one representation.
pub(super) fn inline_bits(m: &[u8]) -> Option<usize> {
    if let Some(v) = parse_i64(m) {
        if (INLINE_INT_MIN..=INLINE_INT_MAX).contains(&v) {
            return Some(((v << 2) as usize) | 0b01);
        }
    }
    if m.len() <= 7 {
        let mut b = [0u8; 8];
        b[0] = ((m.len() as u8) << 2) | 0b11;
        b[1..=m.len()].copy_from_slice(m);
        return Some(usize::from_le_bytes(b));
    }
    None
}

#[inline]
pub(super) fn is_blob(s: *mut u8) -> bool {
    let a = s.addr();
    a != 0 && a & 1 == 0
}

/// The bytes of a blob: a varint length, then the member.
///
/// # Safety
/// `s` must be a (possibly tagged) pointer made by [`blob_new`] and not yet
/// freed; the slice lives as long as the blob.
unsafe fn blob_bytes<'a>(s: *mut u8) -> &'a [u8] {
    let p = s.map_addr(|a| a & ADDR_MASK) as *const u8;
    let mut len = 0usize;
    let mut i = 0usize;
    let mut shift = 0;
    loop {
        // SAFETY: the varint was written by blob_new inside the allocation.
        let b = unsafe { *p.add(i) };
        i += 1;
        len |= ((b & 0x7f) as usize) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    // SAFETY: blob_new allocated varint + len bytes.
    unsafe { std::slice::from_raw_parts(p.add(i), len) }
}

pub(super) fn blob_layout(len: usize) -> Layout {
    Layout::from_size_align(varint_len(len) + len, 2).expect("set member too large")
}

/// Allocates a blob for `m`, tagged with `tag` in the top bits.
pub(super) fn blob_new(m: &[u8], tag: u16) -> *mut u8 {
    let layout = blob_layout(m.len());
    // SAFETY: the layout is at least one byte long.
    let p = unsafe { alloc(layout) };
    if p.is_null() {
        handle_alloc_error(layout);
    }
    assert!(
        p.addr() & !ADDR_MASK == 0,
        "heap address above 48 bits: set members need 48-bit user addresses"
    );
    let mut head = Vec::with_capacity(10);
    put_varint(&mut head, m.len());
    // SAFETY: the allocation holds head.len() + m.len() bytes.
    unsafe {
        ptr::copy_nonoverlapping(head.as_ptr(), p, head.len());
        ptr::copy_nonoverlapping(m.as_ptr(), p.add(head.len()), m.len());
    }
    p.map_addr(|a| a | ((tag as usize) << 48))
}

/// Frees a blob made by [`blob_new`].
///
/// # Safety
/// `s` must be a live blob pointer, not used afterwards.
unsafe fn blob_free(s: *mut u8) {
    // SAFETY: per the contract, s is live.
    let len = unsafe { blob_bytes(s) }.len();
    // SAFETY: allocated by blob_new with this layout.
    unsafe { dealloc(s.map_addr(|a| a & ADDR_MASK), blob_layout(len)) }
}

/// Allocation size of a blob holding `len` bytes (for memory accounting).
pub(super) fn blob_size(len: usize) -> usize {
    varint_len(len) + len
}

/// The member in a non-empty slot.
#[inline]
pub(super) fn slot_member<'a>(s: *mut u8) -> Member<'a> {
    let a = s.addr();
    match a & 0b11 {
        0b01 => Member::Int((a as i64) >> 2),
        0b11 => {
            let mut b = a.to_le_bytes();
            b[0] >>= 2;
            Member::Inline(b)
        }
        // SAFETY: an even non-null slot is a live blob owned by the table,
        // which outlives the borrow the caller ties 'a to.
        _ => Member::Str(unsafe { blob_bytes(s) }),
    }
}

pub(super) fn slot_hash(seed: u64, s: *mut u8) -> u64 {
    let m = slot_member(s);
    let mut buf = [0u8; 20];
    hash_member(seed, m.bytes(&mut buf))
}

/// Open addressing with linear probing over 8-byte slots (null = empty).
///
/// * The home bucket of a member is `hash * cap >> 64` (monotonic in the
///   hash), and probing never wraps: `overflow` extra slots follow the
///   `cap` home buckets and the last slot always stays empty, so every
///   probe ends inside the array. Deletion shifts followers back (no
///   tombstones).
/// * Capacity is not a power of two: the table grows by 1.5x past 80% load
///   and shrinks below 1/8, which keeps slot overhead near 10-13 bytes a
///   member.
/// * Because homes are ordered by hash, the SSCAN cursor is a position in
///   hash space ("every member hashing below the cursor was returned"),
///   which stays meaningful across any resize: members present for a whole
///   scan are returned exactly once.
/// * Random members are drawn by rejection sampling over slots, which is
///   exactly uniform; the load bound keeps the expected tries below ~9.
pub(super) struct MemberTable {
    pub(super) slots: Box<[*mut u8]>,
    pub(super) cap: usize,
    pub(super) len: usize,
    /// Bytes allocated for blobs (memory accounting).
    pub(super) blob_bytes: usize,
    /// This table's hash seed (see [`hash_member`]).
    pub(super) seed: u64,
}

// SAFETY: the table exclusively owns its blobs; raw pointers are only
// followed through &self / &mut self.
unsafe impl Send for MemberTable {}
// SAFETY: shared access only reads the blobs.
unsafe impl Sync for MemberTable {}

pub(super) fn overflow_for(cap: usize) -> usize {
    4 + cap / 32
}

/// Home buckets for `n` members at most 80% full.
pub(super) fn cap_for(n: usize) -> usize {
    (n.saturating_mul(5) / 4 + 1).max(MIN_CAP)
}

impl MemberTable {
    pub(super) fn with_capacity(n: usize) -> MemberTable {
        let mut t = MemberTable {
            slots: Box::new([]),
            cap: 0,
            len: 0,
            blob_bytes: 0,
            seed: new_seed(),
        };
        t.rebuild(cap_for(n));
        t
    }

    /// Finds `m`: Ok(slot) when present, else Err(first empty slot of its
    /// probe sequence). The table must have slots.
    pub(super) fn find(&self, m: &[u8], h: u64, bits: Option<usize>) -> Result<usize, usize> {
        let mut i = home(h, self.cap);
        match bits {
            Some(bits) => loop {
                let a = self.slots[i].addr();
                if a == 0 {
                    return Err(i);
                }
                if a == bits {
                    return Ok(i);
                }
                i += 1;
            },
            None => {
                let tag = (h & 0xffff) as usize;
                loop {
                    let s = self.slots[i];
                    let a = s.addr();
                    if a == 0 {
                        return Err(i);
                    }
                    // SAFETY: even non-null slots are live blobs.
                    if a & 1 == 0 && a >> 48 == tag && unsafe { blob_bytes(s) } == m {
                        return Ok(i);
                    }
                    i += 1;
                }
            }
        }
    }

    pub(super) fn contains(&self, m: &[u8]) -> bool {
        self.len > 0
            && self
                .find(m, hash_member(self.seed, m), inline_bits(m))
                .is_ok()
    }

    /// Inserts `m`; false if present.
    pub(super) fn insert(&mut self, m: &[u8]) -> bool {
        if self.slots.is_empty() {
            self.rebuild(MIN_CAP);
        }
        let h = hash_member(self.seed, m);
        let bits = inline_bits(m);
        let mut pos = match self.find(m, h, bits) {
            Ok(_) => return false,
            Err(p) => p,
        };
        if (self.len + 1) * 5 > self.cap * 4 {
            self.rebuild(cap_for(self.len + 1).max(self.cap + self.cap / 2));
            pos = self.find(m, h, bits).unwrap_err();
        }
        // The last slot must stay empty so that probes end in the array.
        while pos == self.slots.len() - 1 {
            self.rebuild(self.cap + self.cap / 2 + 1);
            pos = self.find(m, h, bits).unwrap_err();
        }
        self.slots[pos] = match bits {
            Some(b) => ptr::without_provenance_mut(b),
            None => {
                self.blob_bytes += blob_size(m.len());
                blob_new(m, h as u16)
            }
        };
        self.len += 1;
        true
    }

    pub(super) fn remove(&mut self, m: &[u8]) -> bool {
        if self.len == 0 {
            return false;
        }
        match self.find(m, hash_member(self.seed, m), inline_bits(m)) {
            Ok(i) => {
                self.remove_at(i);
                true
            }
            Err(_) => false,
        }
    }

    /// Removes the member in slot `i` (which must be occupied), shifting
    /// the rest of its run back, and shrinks a sparse table.
    pub(super) fn remove_at(&mut self, i: usize) {
        let s = std::mem::replace(&mut self.slots[i], ptr::null_mut());
        if is_blob(s) {
            // SAFETY: the slot owned this live blob and no longer refers to it.
            self.blob_bytes -= blob_size(unsafe { blob_bytes(s) }.len());
            // SAFETY: as above.
            unsafe { blob_free(s) };
        }
        self.len -= 1;
        let mut hole = i;
        let mut j = i + 1;
        while j < self.slots.len() {
            let s = self.slots[j];
            if s.is_null() {
                break;
            }
            if home(slot_hash(self.seed, s), self.cap) <= hole {
                self.slots[hole] = s;
                self.slots[j] = ptr::null_mut();
                hole = j;
            }
            j += 1;
        }
        if self.cap > MIN_CAP && self.len * 8 < self.cap {
            self.rebuild((self.len * 2).max(MIN_CAP));
        }
    }

    /// Moves every member into a new slot array of `cap` home buckets.
    pub(super) fn rebuild(&mut self, mut cap: usize) {
        cap = cap.max(MIN_CAP);
        loop {
            let total = cap + overflow_for(cap);
            let mut slots = vec![ptr::null_mut::<u8>(); total].into_boxed_slice();
            let mut ok = true;
            for &s in self.slots.iter().filter(|s| !s.is_null()) {
                let mut i = home(slot_hash(self.seed, s), cap);
                while !slots[i].is_null() {
                    i += 1;
                }
                if i == total - 1 {
                    ok = false;
                    break;
                }
                slots[i] = s;
            }
            if ok {
                self.slots = slots;
                self.cap = cap;
                return;
            }
            cap += cap / 2 + 1;
        }
    }

    /// A uniformly random occupied slot (the table must not be empty).
    pub(super) fn random_slot(&self, rng: &mut impl FnMut() -> u64) -> usize {
        debug_assert!(self.len > 0);
        loop {
            let i = home(rng(), self.slots.len());
            if !self.slots[i].is_null() {
                return i;
            }
        }
    }

    /// One SSCAN step from `cursor` (a hash value: every member hashing
    /// below it was returned before). Visits slots until at least `count`
    /// members were returned (or `10 * count` slots seen) and the walk
    /// reaches an empty slot; returns the next cursor, 0 at the end.
    pub(super) fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(Member<'_>)) -> u64 {
        if self.len == 0 {
            return 0;
        }
        let count = count.max(1);
        let budget = count.saturating_mul(10);
        let mut i = home(cursor, self.cap);
        let (mut emitted, mut visited) = (0usize, 0usize);
        loop {
            let s = self.slots[i];
            if s.is_null() {
                if i >= self.cap {
                    return 0;
                }
                if emitted >= count || visited >= budget {
                    // Every member with home < i sits before slot i (no
                    // wrapping, and slot i is empty), so all hashes below
                    // the first hash whose home is i have been seen.
                    return ((i as u128) << 64).div_ceil(self.cap as u128) as u64;
                }
            } else if slot_hash(self.seed, s) >= cursor {
                f(slot_member(s));
                emitted += 1;
            }
            visited += 1;
            i += 1;
        }
    }

    pub(super) fn heap_size(&self) -> usize {
        self.slots.len() * 8 + self.blob_bytes
    }

    /// Longest distance of a member from its home bucket (tests).
    #[cfg(test)]
    pub(super) fn max_displacement(&self) -> usize {
        (0..self.slots.len())
            .filter(|&i| !self.slots[i].is_null())
            .map(|i| i - home(slot_hash(self.seed, self.slots[i]), self.cap))
            .max()
            .unwrap_or(0)
    }
}

impl Clone for MemberTable {
    fn clone(&self) -> MemberTable {
        let slots: Box<[*mut u8]> = self
            .slots
            .iter()
            .map(|&s| {
                if is_blob(s) {
                    // SAFETY: live blob of self.
                    blob_new(unsafe { blob_bytes(s) }, (s.addr() >> 48) as u16)
                } else {
                    s
                }
            })
            .collect();
        MemberTable {
            slots,
            cap: self.cap,
            len: self.len,
            blob_bytes: self.blob_bytes,
            seed: self.seed,
        }
    }
}

impl Drop for MemberTable {
    fn drop(&mut self) {
        for &s in self.slots.iter() {
            if is_blob(s) {
                // SAFETY: the table owns its blobs; they are freed once.
                unsafe { blob_free(s) };
            }
        }
    }
}

impl std::fmt::Debug for MemberTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemberTable")
            .field("len", &self.len)
            .field("cap", &self.cap)
            .finish()
    }
}
