//! One key and its value in a single heap allocation.
//!
//! The keyspace table stores one 8-byte pointer per key; everything else
//! lives in one exactly sized blob behind it:
//!
//! ```text
//! [flags:8 | lru:24] [key_len varint] [key bytes] [expire ms i64, if set] [payload]
//! payload: embstr -> [len varint][bytes]   (strings up to 44 bytes)
//!          int    -> [i64]                 (strings that are integers)
//!          object -> [*mut Object]         (raw strings, collections)
//! ```
//!
//! A 16-byte key with a 32-byte value is a 54-byte blob (a 64-byte malloc
//! class) plus the 8-byte table slot, where Redis spends a dictEntry, a
//! robj, an sds key and an sds value. Fields are read unaligned; the blob
//! has alignment 1.
//!
//! All `unsafe` of the keyspace is in this file; the invariant is that
//! `ptr` always points to a blob built by [`Entry::assemble`] whose header
//! describes its own length.

use crate::object::Object;
use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::ptr::NonNull;

/// Longest string stored inline (Redis's embstr limit, so `OBJECT ENCODING`
/// answers as Redis does).
pub const EMBSTR_MAX: usize = 44;

const KIND_MASK: u32 = 0b11;
const KIND_EMB: u32 = 0;
const KIND_INT: u32 = 1;
const KIND_OBJ: u32 = 2;
const FLAG_EXPIRE: u32 = 1 << 2;
/// An integer value that Redis would hold as its own object rather than a
/// shared one (a COPY of a small integer): `OBJECT REFCOUNT` answers 1.
const FLAG_UNSHARED: u32 = 1 << 3;
/// Flags carried over when a blob is rebuilt.
const KEEP_FLAGS: u32 = FLAG_UNSHARED;
const LRU_SHIFT: u32 = 8;
/// Largest value of the 24-bit LRU/LFU field.
pub const LRU_MAX: u32 = (1 << 24) - 1;

/// A borrowed view of an entry's value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueRef<'a> {
    /// An embedded string.
    Str(&'a [u8]),
    /// An integer-encoded string.
    Int(i64),
    /// A heap object.
    Obj(&'a Object),
}

/// A value to store.
#[derive(Debug)]
pub enum NewValue<'a> {
    /// A string, encoded as Redis's `tryObjectEncoding` would: `int` when it
    /// is a canonical 64-bit integer, `embstr` up to 44 bytes, else `raw`.
    Str(&'a [u8]),
    /// An integer string.
    Int(i64),
    /// A string kept as `embstr` even when it looks like an integer (Redis
    /// stores INCRBYFLOAT results this way); `raw` past 44 bytes.
    Embstr(&'a [u8]),
    /// A heap object as is (a `raw` string keeps the raw encoding).
    Obj(Object),
}

enum Payload<'a> {
    Emb(&'a [u8]),
    Int(i64),
    Obj(*mut Object),
}

/// A key with its value, expiry and LRU/LFU bits, in one allocation.
///
/// The pointer's top 16 bits may carry a tag (16 bits of the key's hash)
/// set by the keyspace table, so probing compares tags in the slot array
/// and only dereferences entries whose tag matches. User-space addresses
/// on x86-64 and AArch64 Linux fit in 48 bits unless a program asks the
/// kernel for higher ones (kvik and its allocator never do); `assemble`
/// checks it.
pub struct Entry {
    ptr: NonNull<u8>,
}

/// Address bits of a tagged pointer.
const ADDR_MASK: usize = (1 << 48) - 1;

// SAFETY: an Entry exclusively owns its blob and the Object it points to;
// Object is Send + Sync, and the blob is plain bytes.
unsafe impl Send for Entry {}
// SAFETY: shared access only reads the blob.
unsafe impl Sync for Entry {}

/// Offsets inside a blob, decoded from its header.
#[derive(Clone, Copy)]
struct Shape {
    header: u32,
    key_start: usize,
    key_len: usize,
    expire_at: Option<usize>,
    payload: usize,
    total: usize,
}

fn varint_len(mut v: usize) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

fn write_varint(out: &mut [u8], mut v: usize) -> usize {
    let mut i = 0;
    while v >= 0x80 {
        out[i] = (v as u8) | 0x80;
        v >>= 7;
        i += 1;
    }
    out[i] = v as u8;
    i + 1
}

/// Whether a string gets Redis's `int` encoding: a canonical 64-bit
/// integer as `string2ll` reads it (at most 20 bytes, optional '-', no
/// '+', no leading zeros, no spaces, no "-0").
pub fn canonical_i64(s: &[u8]) -> Option<i64> {
    crate::num::parse_i64(s)
}

impl Entry {
    /// Builds an entry for `key` holding `value`.
    pub fn new(key: &[u8], value: NewValue<'_>, expire_ms: Option<i64>) -> Entry {
        match value {
            NewValue::Str(s) => {
                if let Some(n) = canonical_i64(s) {
                    Self::assemble(key, expire_ms, 0, Payload::Int(n))
                } else if s.len() <= EMBSTR_MAX {
                    Self::assemble(key, expire_ms, 0, Payload::Emb(s))
                } else {
                    let obj = Box::into_raw(Box::new(Object::Str(s.to_vec())));
                    Self::assemble(key, expire_ms, 0, Payload::Obj(obj))
                }
            }
            NewValue::Int(n) => Self::assemble(key, expire_ms, 0, Payload::Int(n)),
            NewValue::Embstr(s) if s.len() <= EMBSTR_MAX => {
                Self::assemble(key, expire_ms, 0, Payload::Emb(s))
            }
            NewValue::Embstr(s) => {
                let obj = Box::into_raw(Box::new(Object::Str(s.to_vec())));
                Self::assemble(key, expire_ms, 0, Payload::Obj(obj))
            }
            NewValue::Obj(o) => {
                let obj = Box::into_raw(Box::new(o));
                Self::assemble(key, expire_ms, 0, Payload::Obj(obj))
            }
        }
    }

    /// Builds a blob. `keep` holds header bits in place: the LRU field
    /// (`<< LRU_SHIFT`) and the flags in `KEEP_FLAGS`; other bits are
    /// ignored.
    fn assemble(key: &[u8], expire: Option<i64>, keep: u32, payload: Payload<'_>) -> Entry {
        let (kind, payload_len) = match &payload {
            Payload::Emb(s) => (KIND_EMB, varint_len(s.len()) + s.len()),
            Payload::Int(_) => (KIND_INT, 8),
            Payload::Obj(_) => (KIND_OBJ, std::mem::size_of::<usize>()),
        };
        let total = 4
            + varint_len(key.len())
            + key.len()
            + if expire.is_some() { 8 } else { 0 }
            + payload_len;
        let layout = Layout::from_size_align(total, 1).expect("entry size overflows isize");
        // SAFETY: total > 0 (the header alone is 4 bytes).
        let raw = unsafe { alloc(layout) };
        let Some(ptr) = NonNull::new(raw) else {
            handle_alloc_error(layout)
        };
        assert!(
            raw.addr() & !ADDR_MASK == 0,
            "heap address above 48 bits: entry tagging needs 48-bit user addresses"
        );
        // SAFETY: the blob is `total` bytes long and every write below stays
        // inside the offsets summed into `total` above.
        let blob = unsafe { std::slice::from_raw_parts_mut(raw, total) };
        let header = kind
            | if expire.is_some() { FLAG_EXPIRE } else { 0 }
            | (keep & ((LRU_MAX << LRU_SHIFT) | KEEP_FLAGS));
        blob[..4].copy_from_slice(&header.to_le_bytes());
        let mut at = 4 + write_varint(&mut blob[4..], key.len());
        blob[at..at + key.len()].copy_from_slice(key);
        at += key.len();
        if let Some(e) = expire {
            blob[at..at + 8].copy_from_slice(&e.to_le_bytes());
            at += 8;
        }
        match payload {
            Payload::Emb(s) => {
                at += write_varint(&mut blob[at..], s.len());
                blob[at..at + s.len()].copy_from_slice(s);
            }
            Payload::Int(n) => blob[at..at + 8].copy_from_slice(&n.to_le_bytes()),
            Payload::Obj(p) => blob[at..at + 8].copy_from_slice(&(p as usize).to_le_bytes()),
        }
        Entry { ptr }
    }

    /// The blob's address without the tag.
    #[inline]
    fn base(&self) -> *mut u8 {
        self.ptr.as_ptr().map_addr(|a| a & ADDR_MASK)
    }

    /// Stores a 16-bit tag in the pointer's unused top bits.
    #[inline]
    pub fn set_tag(&mut self, tag: u16) {
        let tagged = self.base().map_addr(|a| a | ((tag as usize) << 48));
        // SAFETY: the blob address is non-null; adding high bits keeps the
        // pointer non-null, and every dereference masks them off again.
        self.ptr = unsafe { NonNull::new_unchecked(tagged) };
    }

    /// The tag set by [`Entry::set_tag`] (0 when none).
    #[inline]
    pub fn tag(&self) -> u16 {
        (self.ptr.as_ptr().addr() >> 48) as u16
    }

    fn shape(&self) -> Shape {
        // SAFETY: the header is always 4 bytes and the varint that follows
        // was written by `assemble`, so reading it stays in bounds.
        let (header, key_len, vlen) = unsafe {
            let p = self.base();
            let header = u32::from_le_bytes(*(p as *const [u8; 4]));
            let mut key_len = 0usize;
            let mut shift = 0;
            let mut i = 4;
            loop {
                let b = *p.add(i);
                key_len |= ((b & 0x7f) as usize) << shift;
                i += 1;
                if b & 0x80 == 0 {
                    break;
                }
                shift += 7;
            }
            (header, key_len, i - 4)
        };
        let key_start = 4 + vlen;
        let mut at = key_start + key_len;
        let expire_at = if header & FLAG_EXPIRE != 0 {
            at += 8;
            Some(at - 8)
        } else {
            None
        };
        let payload = at;
        let total = match header & KIND_MASK {
            KIND_EMB => {
                // SAFETY: the emb payload starts with a 1-byte varint
                // (EMBSTR_MAX < 128).
                let len = unsafe { *self.base().add(payload) } as usize;
                payload + 1 + len
            }
            _ => payload + 8,
        };
        Shape {
            header,
            key_start,
            key_len,
            expire_at,
            payload,
            total,
        }
    }

    fn bytes(&self, start: usize, len: usize) -> &[u8] {
        // SAFETY: callers pass ranges computed by `shape`, which lie inside
        // the blob; the blob lives as long as `self`.
        unsafe { std::slice::from_raw_parts(self.base().add(start), len) }
    }

    fn read8(&self, at: usize) -> [u8; 8] {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.bytes(at, 8));
        b
    }

    /// The key.
    pub fn key(&self) -> &[u8] {
        let s = self.shape();
        self.bytes(s.key_start, s.key_len)
    }

    /// Absolute expiry in Unix milliseconds, if the key is volatile.
    pub fn expire(&self) -> Option<i64> {
        let s = self.shape();
        s.expire_at.map(|at| i64::from_le_bytes(self.read8(at)))
    }

    /// Whether the key has an expiry at or before `now_ms`.
    pub fn is_expired(&self, now_ms: i64) -> bool {
        matches!(self.expire(), Some(t) if t <= now_ms)
    }

    /// Whether an integer value is a private copy (see `FLAG_UNSHARED`).
    pub fn is_unshared(&self) -> bool {
        self.shape().header & FLAG_UNSHARED != 0
    }

    /// The 24-bit LRU clock or LFU counter.
    pub fn lru(&self) -> u32 {
        self.shape().header >> LRU_SHIFT
    }

    /// Sets the 24-bit LRU clock or LFU counter.
    pub fn set_lru(&mut self, lru: u32) {
        let s = self.shape();
        let header = (s.header & ((1 << LRU_SHIFT) - 1)) | ((lru & LRU_MAX) << LRU_SHIFT);
        // SAFETY: the header occupies the first 4 bytes of the blob, and
        // `&mut self` gives exclusive access.
        unsafe { std::ptr::copy_nonoverlapping(header.to_le_bytes().as_ptr(), self.base(), 4) }
    }

    fn payload(&self, s: &Shape) -> Payload<'_> {
        match s.header & KIND_MASK {
            KIND_EMB => {
                let len = self.bytes(s.payload, 1)[0] as usize;
                Payload::Emb(self.bytes(s.payload + 1, len))
            }
            KIND_INT => Payload::Int(i64::from_le_bytes(self.read8(s.payload))),
            _ => Payload::Obj(usize::from_le_bytes(self.read8(s.payload)) as *mut Object),
        }
    }

    /// The value.
    pub fn value(&self) -> ValueRef<'_> {
        let s = self.shape();
        match self.payload(&s) {
            Payload::Emb(b) => ValueRef::Str(b),
            Payload::Int(n) => ValueRef::Int(n),
            // SAFETY: the pointer came from Box::into_raw in `new` and is
            // owned by this entry; the borrow is tied to `&self`.
            Payload::Obj(p) => ValueRef::Obj(unsafe { &*p }),
        }
    }

    /// Mutable access to the value when it is a heap object.
    pub fn object_mut(&mut self) -> Option<&mut Object> {
        let s = self.shape();
        match self.payload(&s) {
            // SAFETY: as in `value`, with exclusive access through `&mut self`.
            Payload::Obj(p) => Some(unsafe { &mut *p }),
            _ => None,
        }
    }

    /// Replaces the value, keeping the key, expiry, LRU bits and tag.
    pub fn set_value(&mut self, value: NewValue<'_>) {
        let expire = self.expire();
        let lru = self.lru();
        let mut fresh = Entry::new(self.key(), value, expire);
        fresh.set_lru(lru);
        fresh.set_tag(self.tag());
        *self = fresh;
    }

    /// Makes the value a heap object (converting embstr/int strings to a
    /// raw string) and returns it, so it can be modified in place.
    /// Collections are returned as they are.
    pub fn make_object(&mut self) -> &mut Object {
        if self.object_mut().is_none() {
            let bytes = match self.value() {
                ValueRef::Str(b) => b.to_vec(),
                ValueRef::Int(n) => n.to_string().into_bytes(),
                ValueRef::Obj(_) => unreachable!("checked above"),
            };
            self.set_value(NewValue::Obj(Object::Str(bytes)));
        }
        match self.object_mut() {
            Some(o) => o,
            None => unreachable!("value was just made an object"),
        }
    }

    /// Sets or clears the expiry. Rebuilds the blob only when the expiry
    /// appears or disappears.
    pub fn set_expire(&mut self, expire_ms: Option<i64>) {
        let s = self.shape();
        match (s.expire_at, expire_ms) {
            (Some(at), Some(t)) => {
                // SAFETY: `at..at+8` is the expiry field inside the blob.
                unsafe {
                    std::ptr::copy_nonoverlapping(t.to_le_bytes().as_ptr(), self.base().add(at), 8)
                }
            }
            (None, None) => {}
            _ => self.rebuild(None, Some(expire_ms)),
        }
    }

    /// Returns the same value under a new key (RENAME, MOVE).
    pub fn rekey(mut self, key: &[u8]) -> Entry {
        self.rebuild(Some(key), None);
        self
    }

    /// Rebuilds the blob with a new key and/or expiry, moving the payload
    /// (an object pointer is transferred, not dropped).
    /// The tag is kept (it belongs to the key; a new key is re-tagged when
    /// it is inserted into a table).
    fn rebuild(&mut self, key: Option<&[u8]>, expire: Option<Option<i64>>) {
        let s = self.shape();
        let key = key.unwrap_or_else(|| self.bytes(s.key_start, s.key_len));
        let expire = expire.unwrap_or_else(|| self.expire());
        let mut fresh = Self::assemble(key, expire, s.header, self.payload(&s));
        fresh.set_tag(self.tag());
        let old = std::mem::replace(self, fresh);
        // The payload now belongs to `fresh`: free only the old blob.
        old.free_blob_only();
    }

    fn free_blob_only(self) {
        let total = self.shape().total;
        let ptr = self.base();
        std::mem::forget(self);
        // SAFETY: the blob was allocated by `assemble` with this size and
        // alignment 1, and `self` was forgotten so it is not freed twice.
        unsafe { dealloc(ptr, Layout::from_size_align_unchecked(total, 1)) }
    }

    /// A deep copy under `key` (COPY), without expiry unless given.
    pub fn duplicate(&self, key: &[u8], expire_ms: Option<i64>) -> Entry {
        match self.value() {
            ValueRef::Str(b) => Self::assemble(key, expire_ms, 0, Payload::Emb(b)),
            ValueRef::Int(n) => Self::assemble(key, expire_ms, FLAG_UNSHARED, Payload::Int(n)),
            ValueRef::Obj(o) => Entry::new(key, NewValue::Obj(o.clone()), expire_ms),
        }
    }

    /// Bytes this entry occupies on the heap (blob plus object), for
    /// memory accounting and `MEMORY USAGE`.
    pub fn heap_size(&self) -> usize {
        let blob = self.shape().total;
        match self.value() {
            ValueRef::Obj(o) => blob + std::mem::size_of::<Object>() + o.heap_size(),
            _ => blob,
        }
    }

    /// The string value as bytes, if it is a string; integers are
    /// formatted into `buf`.
    pub fn str_bytes<'a>(&'a self, buf: &'a mut [u8; 20]) -> Option<&'a [u8]> {
        match self.value() {
            ValueRef::Str(b) => Some(b),
            ValueRef::Int(n) => Some(crate::num::format_i64(n, buf)),
            ValueRef::Obj(Object::Str(v)) => Some(v),
            ValueRef::Obj(_) => None,
        }
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        let s = self.shape();
        if let Payload::Obj(p) = self.payload(&s) {
            // SAFETY: the object pointer came from Box::into_raw and is owned
            // by this entry only (rebuild forgets the old entry).
            drop(unsafe { Box::from_raw(p) });
        }
        // SAFETY: allocated by `assemble` with this size and alignment 1.
        unsafe { dealloc(self.base(), Layout::from_size_align_unchecked(s.total, 1)) }
    }
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("key", &String::from_utf8_lossy(self.key()))
            .field("value", &self.value())
            .field("expire", &self.expire())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn encodings_follow_redis() {
        let e = Entry::new(b"k", NewValue::Str(b"12345"), None);
        assert_eq!(e.value(), ValueRef::Int(12345));
        let e = Entry::new(b"k", NewValue::Str(b"012"), None);
        assert_eq!(e.value(), ValueRef::Str(b"012"));
        let e = Entry::new(b"k", NewValue::Str(b"-0"), None);
        assert_eq!(e.value(), ValueRef::Str(b"-0"));
        let e = Entry::new(b"k", NewValue::Str(&[b'x'; 44]), None);
        assert!(matches!(e.value(), ValueRef::Str(_)));
        let e = Entry::new(b"k", NewValue::Str(&[b'x'; 45]), None);
        assert!(matches!(e.value(), ValueRef::Obj(Object::Str(_))));
        let e = Entry::new(b"k", NewValue::Str(b"-9223372036854775808"), None);
        assert_eq!(e.value(), ValueRef::Int(i64::MIN));
        let e = Entry::new(b"k", NewValue::Str(b"9223372036854775808"), None);
        assert!(matches!(e.value(), ValueRef::Str(_)));
        let e = Entry::new(b"k", NewValue::Embstr(b"2"), None);
        assert_eq!(e.value(), ValueRef::Str(b"2"));
    }

    #[test]
    fn expire_lru_and_rekey() {
        let mut e = Entry::new(b"key", NewValue::Str(b"value"), None);
        e.set_lru(12345);
        e.set_expire(Some(1_700_000_000_000));
        assert_eq!(e.expire(), Some(1_700_000_000_000));
        assert_eq!(e.lru(), 12345);
        e.set_expire(Some(5));
        assert_eq!(e.expire(), Some(5));
        assert!(e.is_expired(5));
        assert!(!e.is_expired(4));
        let mut e = e.rekey(b"another-longer-key");
        assert_eq!(e.key(), b"another-longer-key");
        assert_eq!(e.value(), ValueRef::Str(b"value"));
        assert_eq!(e.expire(), Some(5));
        e.set_expire(None);
        assert_eq!(e.expire(), None);
        assert_eq!(e.lru(), 12345);
    }

    #[test]
    fn objects_move_and_drop_once() {
        let big = vec![7u8; 1000];
        let e = Entry::new(b"k", NewValue::Str(&big), Some(1));
        let mut e = e.rekey(b"k2");
        e.set_expire(None);
        if let Some(Object::Str(v)) = e.object_mut() {
            v.extend_from_slice(b"tail");
        }
        let copy = e.duplicate(b"k3", None);
        drop(e);
        let small = Entry::new(b"n", NewValue::Int(7), None);
        assert!(!small.is_unshared());
        let mut dup = small.duplicate(b"m", None);
        dup.set_expire(Some(9));
        dup.set_lru(3);
        assert!(dup.is_unshared() && dup.lru() == 3 && dup.expire() == Some(9));
        match copy.value() {
            ValueRef::Obj(Object::Str(v)) => assert_eq!(v.len(), 1004),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn tag_survives_rebuilds() {
        let mut e = Entry::new(b"k", NewValue::Str(b"v"), None);
        e.set_tag(0xbeef);
        e.set_expire(Some(1));
        assert_eq!(e.tag(), 0xbeef);
        e.set_value(NewValue::Str(&[b'x'; 100]));
        assert_eq!(e.tag(), 0xbeef);
        e.make_object();
        assert_eq!(e.tag(), 0xbeef);
        assert_eq!(e.key(), b"k");
        assert_eq!(e.expire(), Some(1));
    }

    #[test]
    fn make_object_converts_inline_values() {
        let mut e = Entry::new(b"k", NewValue::Str(b"42"), None);
        if let Object::Str(v) = e.make_object() {
            v.extend_from_slice(b"x");
        }
        assert_eq!(e.value(), ValueRef::Obj(&Object::Str(b"42x".to_vec())));
    }

    #[test]
    fn memory_shape_of_the_benchmark_key() {
        let e = Entry::new(&[b'k'; 16], NewValue::Str(&[b'v'; 32]), None);
        assert_eq!(e.heap_size(), 4 + 1 + 16 + 1 + 32);
        assert_eq!(std::mem::size_of::<Option<Entry>>(), 8);
    }

    proptest! {
        #[test]
        fn roundtrip(key in proptest::collection::vec(any::<u8>(), 0..300),
                     val in proptest::collection::vec(any::<u8>(), 0..100),
                     exp in proptest::option::of(any::<i64>()),
                     lru in 0u32..=LRU_MAX) {
            let mut e = Entry::new(&key, NewValue::Str(&val), exp);
            e.set_lru(lru);
            prop_assert_eq!(e.key(), &key[..]);
            prop_assert_eq!(e.expire(), exp);
            prop_assert_eq!(e.lru(), lru);
            let mut b = [0u8; 20];
            prop_assert_eq!(e.str_bytes(&mut b).unwrap(), &val[..]);
            e.set_expire(None);
            prop_assert_eq!(e.expire(), None);
            prop_assert_eq!(e.key(), &key[..]);
        }
    }
}
