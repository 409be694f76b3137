//! The `hashtable` encoding of large hashes: open addressing over
//! single-allocation field+value(+expiry) blobs, with a time index of the
//! fields that have an expiry.

use super::*;

pub(super) const ADDR_MASK: usize = (1 << 48) - 1;
pub(super) const FB_EXPIRE: u8 = 1;

/// One field and its value (and expiry) in one exactly sized allocation,
/// owned through a thin pointer whose top 16 bits hold a tag.
///
/// Invariant: `ptr` (masked) points to a blob built by [`FieldBox::new`],
/// whose header describes its own length.
pub(super) struct FieldBox {
    pub(super) ptr: NonNull<u8>,
}

// SAFETY: a FieldBox exclusively owns its blob of plain bytes.
unsafe impl Send for FieldBox {}
// SAFETY: shared access only reads the blob.
unsafe impl Sync for FieldBox {}

/// Offsets inside a field blob.
pub(super) struct FbShape {
    pub(super) expire: Option<i64>,
    pub(super) field: Range<usize>,
    pub(super) value: Range<usize>,
}

impl FieldBox {
    pub(super) fn new(field: &[u8], value: &[u8], expire: Option<i64>, tag: u16) -> FieldBox {
        let total = 1
            + if expire.is_some() { 8 } else { 0 }
            + varint_len(field.len() as u64)
            + field.len()
            + varint_len(value.len() as u64)
            + value.len();
        let mut head = Vec::with_capacity(20);
        head.push(if expire.is_some() { FB_EXPIRE } else { 0 });
        if let Some(t) = expire {
            head.extend_from_slice(&t.to_le_bytes());
        }
        put_varint(&mut head, field.len() as u64);
        let mut mid = Vec::with_capacity(10);
        put_varint(&mut mid, value.len() as u64);
        let layout = Layout::from_size_align(total, 1).expect("field size overflows isize");
        // SAFETY: total >= 3 > 0.
        let raw = unsafe { alloc(layout) };
        let Some(ptr) = NonNull::new(raw) else {
            handle_alloc_error(layout)
        };
        assert!(
            raw.addr() & !ADDR_MASK == 0,
            "heap address above 48 bits: field tagging needs 48-bit user addresses"
        );
        // SAFETY: the four parts written below add up to `total` bytes, the
        // size of the fresh allocation.
        let blob = unsafe { std::slice::from_raw_parts_mut(raw, total) };
        let mut at = 0;
        for part in [&head[..], field, &mid[..], value] {
            blob[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        debug_assert_eq!(at, total);
        let mut fb = FieldBox { ptr };
        fb.set_tag(tag);
        fb
    }

    #[inline]
    pub(super) fn base(&self) -> *mut u8 {
        self.ptr.as_ptr().map_addr(|a| a & ADDR_MASK)
    }

    #[inline]
    pub(super) fn tag(&self) -> u16 {
        (self.ptr.as_ptr().addr() >> 48) as u16
    }

    pub(super) fn set_tag(&mut self, tag: u16) {
        let tagged = self.base().map_addr(|a| a | ((tag as usize) << 48));
        // SAFETY: adding high bits to a non-null address keeps it non-null;
        // every dereference masks them off (`base`).
        self.ptr = unsafe { NonNull::new_unchecked(tagged) };
    }

    /// The blob's bytes up to and including the value.
    pub(super) fn shape(&self) -> (FbShape, &[u8]) {
        // SAFETY: the header (flag byte, optional 8-byte expiry and two
        // varints) was written by `new`; reading it stays in bounds, and the
        // lengths it holds give the blob's total size.
        unsafe {
            let p = self.base();
            let flags = *p;
            let mut at = 1usize;
            let expire = if flags & FB_EXPIRE != 0 {
                let mut b = [0u8; 8];
                std::ptr::copy_nonoverlapping(p.add(1), b.as_mut_ptr(), 8);
                at += 8;
                Some(i64::from_le_bytes(b))
            } else {
                None
            };
            let read_varint = |at: &mut usize| {
                let mut v = 0usize;
                let mut shift = 0;
                loop {
                    let b = *p.add(*at);
                    *at += 1;
                    v |= ((b & 0x7f) as usize) << shift;
                    if b & 0x80 == 0 {
                        return v;
                    }
                    shift += 7;
                }
            };
            let fl = read_varint(&mut at);
            let field = at..at + fl;
            at += fl;
            let vl = read_varint(&mut at);
            let value = at..at + vl;
            at += vl;
            let blob = std::slice::from_raw_parts(p, at);
            (
                FbShape {
                    expire,
                    field,
                    value,
                },
                blob,
            )
        }
    }

    pub(super) fn field(&self) -> &[u8] {
        let (s, b) = self.shape();
        &b[s.field]
    }

    pub(super) fn value(&self) -> &[u8] {
        let (s, b) = self.shape();
        &b[s.value]
    }

    pub(super) fn parts(&self) -> (&[u8], &[u8], Option<i64>) {
        let (s, b) = self.shape();
        (&b[s.field], &b[s.value], s.expire)
    }

    pub(super) fn expire(&self) -> Option<i64> {
        self.shape().0.expire
    }

    pub(super) fn size(&self) -> usize {
        self.shape().1.len()
    }

    /// Overwrites the value with one of the same length (HINCRBY and
    /// friends mostly keep the length): no reallocation.
    pub(super) fn overwrite_value(&mut self, value: &[u8]) {
        let range = self.shape().0.value;
        assert_eq!(range.len(), value.len(), "same-length overwrite only");
        // SAFETY: `range` lies inside the blob (from `shape`), and `&mut
        // self` gives exclusive access to it.
        unsafe {
            std::ptr::copy_nonoverlapping(value.as_ptr(), self.base().add(range.start), value.len())
        }
    }
}

impl Drop for FieldBox {
    fn drop(&mut self) {
        let total = self.size();
        // SAFETY: allocated by `new` with this size and alignment 1.
        unsafe { dealloc(self.base(), Layout::from_size_align_unchecked(total, 1)) }
    }
}

#[inline]
pub(super) fn tag_of(h: u64) -> u16 {
    (h >> 48) as u16
}

/// Index of the fields that have an expiry: `(expiry, field hash)` with a
/// count for the (astronomically rare) equal pairs.
#[derive(Debug, Default)]
pub(super) struct TtlIndex {
    pub(super) by_time: BTreeMap<(i64, u64), u32>,
}

impl TtlIndex {
    pub(super) fn add(&mut self, t: i64, h: u64) {
        *self.by_time.entry((t, h)).or_insert(0) += 1;
    }

    pub(super) fn remove(&mut self, t: i64, h: u64) {
        if let Some(c) = self.by_time.get_mut(&(t, h)) {
            *c -= 1;
            if *c == 0 {
                self.by_time.remove(&(t, h));
            }
        }
    }

    pub(super) fn len(&self) -> usize {
        self.by_time.values().map(|&c| c as usize).sum()
    }
}

pub(super) const MIN_CAPACITY: usize = 8;

/// The hashtable encoding (see the module docs).
pub(super) struct FieldTable {
    pub(super) slots: Vec<Option<FieldBox>>,
    pub(super) len: usize,
    pub(super) ttl: TtlIndex,
    pub(super) stamp: i64,
}

impl FieldTable {
    pub(super) fn with_capacity(n: usize) -> FieldTable {
        let mut t = FieldTable {
            slots: Vec::new(),
            len: 0,
            ttl: TtlIndex::default(),
            stamp: NOT_QUEUED,
        };
        t.resize(Self::capacity_for(n));
        t
    }

    /// Smallest power-of-two capacity that holds `n` under 3/4 load.
    pub(super) fn capacity_for(n: usize) -> usize {
        let mut cap = MIN_CAPACITY;
        while n * 4 > cap * 3 {
            cap *= 2;
        }
        cap
    }

    pub(super) fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    pub(super) fn find_hashed(&self, field: &[u8], h: u64) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        let mask = self.mask();
        let tag = tag_of(h);
        let mut i = h as usize & mask;
        loop {
            match &self.slots[i] {
                None => return None,
                Some(f) if f.tag() == tag && f.field() == field => return Some(i),
                Some(_) => i = (i + 1) & mask,
            }
        }
    }

    pub(super) fn find(&self, field: &[u8]) -> Option<usize> {
        self.find_hashed(field, hash_key(field))
    }

    pub(super) fn get(&self, field: &[u8]) -> Option<&FieldBox> {
        self.find(field).and_then(|i| self.slots[i].as_ref())
    }

    /// Puts a new field in a free slot (the field must be absent).
    pub(super) fn place(&mut self, fb: FieldBox, h: u64) {
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.resize((self.slots.len() * 2).max(MIN_CAPACITY));
        }
        let mask = self.mask();
        let mut i = h as usize & mask;
        while self.slots[i].is_some() {
            i = (i + 1) & mask;
        }
        if let Some(t) = fb.expire() {
            self.ttl.add(t, h);
        }
        self.slots[i] = Some(fb);
        self.len += 1;
    }

    /// Sets a field; returns true when it is new.
    pub(super) fn set(&mut self, field: &[u8], value: &[u8], keep_ttl: bool) -> bool {
        let h = hash_key(field);
        match self.find_hashed(field, h) {
            Some(i) => {
                let old = self.slots[i].as_ref().and_then(FieldBox::expire);
                let expire = if keep_ttl { old } else { None };
                if let (Some(t), None) = (old, expire) {
                    self.ttl.remove(t, h);
                }
                match &mut self.slots[i] {
                    Some(fb) if expire == old && fb.value().len() == value.len() => {
                        fb.overwrite_value(value)
                    }
                    slot => *slot = Some(FieldBox::new(field, value, expire, tag_of(h))),
                }
                false
            }
            None => {
                self.place(FieldBox::new(field, value, None, tag_of(h)), h);
                true
            }
        }
    }

    pub(super) fn set_expire_at(&mut self, i: usize, expire: Option<i64>) {
        let Some(old) = self.slots[i].take() else {
            return;
        };
        let (field, value, prev) = old.parts();
        let h = hash_key(field);
        if let Some(t) = prev {
            self.ttl.remove(t, h);
        }
        if let Some(t) = expire {
            self.ttl.add(t, h);
        }
        self.slots[i] = Some(FieldBox::new(field, value, expire, old.tag()));
    }

    pub(super) fn remove(&mut self, field: &[u8]) -> bool {
        let h = hash_key(field);
        match self.find_hashed(field, h) {
            Some(i) => {
                self.take_slot(i, h);
                self.maybe_shrink();
                true
            }
            None => false,
        }
    }

    /// Empties slot `i` (whose field hashes to `h`) and shifts the run that
    /// follows back so every field stays reachable from its home slot.
    pub(super) fn take_slot(&mut self, mut i: usize, h: u64) {
        if let Some(f) = self.slots[i].take() {
            self.len -= 1;
            if let Some(t) = f.expire() {
                self.ttl.remove(t, h);
            }
        }
        let mask = self.mask();
        let mut j = i;
        loop {
            j = (j + 1) & mask;
            let home = match &self.slots[j] {
                None => break,
                Some(f) => hash_key(f.field()) as usize & mask,
            };
            if (j.wrapping_sub(home) & mask) >= (j.wrapping_sub(i) & mask) {
                self.slots[i] = self.slots[j].take();
                i = j;
            }
        }
    }

    pub(super) fn resize(&mut self, cap: usize) {
        let old = std::mem::take(&mut self.slots);
        self.slots = Vec::with_capacity(cap);
        self.slots.resize_with(cap, || None);
        let mask = cap - 1;
        for f in old.into_iter().flatten() {
            let mut i = hash_key(f.field()) as usize & mask;
            while self.slots[i].is_some() {
                i = (i + 1) & mask;
            }
            self.slots[i] = Some(f);
        }
    }

    /// Shrinks below 1/8 load, as Redis resizes hash dicts below 10% fill.
    pub(super) fn maybe_shrink(&mut self) {
        if self.slots.len() > MIN_CAPACITY && self.len * 8 < self.slots.len() {
            self.resize(Self::capacity_for(self.len));
        }
    }

    pub(super) fn purge(&mut self, now: i64, max: usize) -> usize {
        let mut n = 0;
        while let Some((&(t, h), _)) = self.ttl.by_time.first_key_value() {
            if t > now || n >= max {
                break;
            }
            self.ttl.by_time.pop_first();
            // Remove every field of that hash and time (normally one); the
            // index entry is already gone, so take_slot's unindexing is a
            // no-op for them.
            let mask = self.mask();
            let tag = tag_of(h);
            let mut i = h as usize & mask;
            let mut steps = 0;
            while steps <= self.slots.len() {
                let hit = match &self.slots[i] {
                    None => break,
                    Some(f) => f.tag() == tag && f.expire() == Some(t) && hash_key(f.field()) == h,
                };
                if hit {
                    self.take_slot(i, h);
                    n += 1;
                    continue;
                }
                i = (i + 1) & mask;
                steps += 1;
            }
        }
        if n > 0 {
            self.maybe_shrink();
        }
        n
    }

    pub(super) fn min_expire(&self) -> Option<i64> {
        self.ttl.by_time.first_key_value().map(|(&(t, _), _)| t)
    }

    /// One SCAN step over home bucket `cursor & mask` (Redis's reverse
    /// binary cursor), visiting the fields whose home it is.
    pub(super) fn scan(&self, cursor: u64, f: &mut FieldVisitor<'_>) -> u64 {
        if self.slots.is_empty() {
            return 0;
        }
        let mask = self.mask() as u64;
        let bucket = (cursor & mask) as usize;
        let mut i = bucket;
        while let Some(fb) = &self.slots[i] {
            let (field, value, expire) = fb.parts();
            if hash_key(field) as usize & mask as usize == bucket {
                f(field, value, expire);
            }
            i = (i + 1) & mask as usize;
            if i == bucket {
                break;
            }
        }
        crate::table::next_scan_cursor(cursor, mask)
    }

    /// The field in the first occupied slot at or after `pos`.
    pub(super) fn near(&self, pos: usize) -> Option<&FieldBox> {
        if self.len == 0 {
            return None;
        }
        let mask = self.mask();
        let mut i = pos & mask;
        loop {
            if let Some(f) = &self.slots[i] {
                return Some(f);
            }
            i = (i + 1) & mask;
        }
    }

    pub(super) fn heap_size(&self) -> usize {
        let blobs: usize = self.slots.iter().flatten().map(FieldBox::size).sum();
        // A B-tree entry costs about its 24 bytes plus node overhead.
        self.slots.capacity() * 8 + blobs + self.ttl.by_time.len() * 40
    }
}

impl Clone for FieldTable {
    fn clone(&self) -> Self {
        let slots = self
            .slots
            .iter()
            .map(|s| {
                s.as_ref().map(|f| {
                    let (field, value, expire) = f.parts();
                    FieldBox::new(field, value, expire, f.tag())
                })
            })
            .collect();
        FieldTable {
            slots,
            len: self.len,
            ttl: TtlIndex {
                by_time: self.ttl.by_time.clone(),
            },
            stamp: NOT_QUEUED,
        }
    }
}
