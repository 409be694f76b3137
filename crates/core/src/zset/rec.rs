//! Members of a large sorted set: one exactly sized heap record per member,
//! shared by the order tree and the member dictionary.
//!
//! ```text
//! [score f64][member_len varint][member bytes]
//! ```
//!
//! A [`Rec`] is a thin pointer (8 bytes). The record is referenced from two
//! places (a tree leaf, which owns it, and a dictionary slot), so it is a
//! `Copy` handle freed explicitly with [`Rec::free`] by the sorted set that
//! owns both structures, never by `Drop`. All `unsafe` of the records is in
//! this file; the invariant is that a `Rec` points to a live record built by
//! [`Rec::new`] until the owning set frees it.

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::ptr::NonNull;

/// Address bits of a pointer (the dictionary keeps a hash tag above them).
const ADDR_MASK: usize = (1 << 48) - 1;

/// A handle to one member record.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rec(NonNull<u8>);

// SAFETY: a record is plain bytes owned by one sorted set; handles move
// between threads only together with the set that owns them.
unsafe impl Send for Rec {}
// SAFETY: shared access only reads the record.
unsafe impl Sync for Rec {}

fn varint_len(mut v: usize) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

impl Rec {
    fn layout(member_len: usize) -> Layout {
        let size = 8 + varint_len(member_len) + member_len;
        Layout::from_size_align(size, 8).expect("member length overflows isize")
    }

    /// Allocates a record for `member` with `score`.
    pub(crate) fn new(member: &[u8], score: f64) -> Rec {
        let layout = Self::layout(member.len());
        // SAFETY: the layout is at least 9 bytes.
        let raw = unsafe { alloc(layout) };
        let Some(ptr) = NonNull::new(raw) else {
            handle_alloc_error(layout)
        };
        assert!(
            raw.addr() & !ADDR_MASK == 0,
            "heap address above 48 bits: sorted set tagging needs 48-bit user addresses"
        );
        // SAFETY: every write below stays inside the `layout.size()` bytes
        // summed in `layout`.
        unsafe {
            raw.cast::<f64>().write(score);
            let mut at = 8;
            let mut v = member.len();
            while v >= 0x80 {
                raw.add(at).write((v as u8) | 0x80);
                v >>= 7;
                at += 1;
            }
            raw.add(at).write(v as u8);
            at += 1;
            std::ptr::copy_nonoverlapping(member.as_ptr(), raw.add(at), member.len());
        }
        Rec(ptr)
    }

    /// The record pointer with a 16-bit tag in its unused top bits (for
    /// the dictionary's slots; provenance is kept).
    #[inline]
    pub(crate) fn tagged(self, tag: u16) -> *mut u8 {
        self.0.as_ptr().map_addr(|a| a | ((tag as usize) << 48))
    }

    /// The tag of a pointer made by [`Rec::tagged`].
    #[inline]
    pub(crate) fn tag_of(p: *mut u8) -> u16 {
        (p.addr() >> 48) as u16
    }

    /// Whether a pointer made by [`Rec::tagged`] is this record's.
    #[inline]
    pub(crate) fn is(self, p: *mut u8) -> bool {
        p.addr() & ADDR_MASK == self.0.as_ptr().addr()
    }

    /// Rebuilds a handle from a pointer made by [`Rec::tagged`].
    ///
    /// # Safety
    /// `p` must come from [`Rec::tagged`] on a live record.
    #[inline]
    pub(crate) unsafe fn from_tagged(p: *mut u8) -> Rec {
        // SAFETY: per the contract the untagged pointer is a live record.
        Rec(unsafe { NonNull::new_unchecked(p.map_addr(|a| a & ADDR_MASK)) })
    }

    /// The score.
    #[inline]
    pub(crate) fn score(self) -> f64 {
        // SAFETY: records are 8-aligned and start with the score.
        unsafe { self.0.as_ptr().cast::<f64>().read() }
    }

    /// Changes the score in place. The caller must have taken the record
    /// out of the order tree first (the tree is ordered by score).
    #[inline]
    pub(crate) fn set_score(self, score: f64) {
        // SAFETY: records are 8-aligned and start with the score; no
        // reference into the record is alive while the set is mutated.
        unsafe { self.0.as_ptr().cast::<f64>().write(score) }
    }

    /// The member bytes. The lifetime is chosen by the caller, which ties
    /// it to a borrow of the owning set.
    #[inline]
    pub(crate) fn member<'a>(self) -> &'a [u8] {
        // SAFETY: the varint and the bytes it counts were written by `new`.
        unsafe {
            let p = self.0.as_ptr();
            let mut at = 8;
            let mut len = 0usize;
            let mut shift = 0;
            loop {
                let b = *p.add(at);
                at += 1;
                len |= ((b & 0x7f) as usize) << shift;
                if b < 0x80 {
                    break;
                }
                shift += 7;
            }
            std::slice::from_raw_parts(p.add(at), len)
        }
    }

    /// Bytes allocated for the record.
    pub(crate) fn alloc_size(self) -> usize {
        Self::layout(self.member().len()).size()
    }

    /// Frees the record.
    ///
    /// # Safety
    /// No copy of this handle may be used afterwards.
    pub(crate) unsafe fn free(self) {
        let layout = Self::layout(self.member().len());
        // SAFETY: allocated by `new` with this layout.
        unsafe { dealloc(self.0.as_ptr(), layout) }
    }
}

impl std::fmt::Debug for Rec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "({}, {:?})",
            self.score(),
            String::from_utf8_lossy(self.member())
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_roundtrip() {
        for len in [0usize, 1, 127, 128, 300, 20000] {
            let m: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let r = Rec::new(&m, -2.5);
            assert_eq!(r.member(), &m[..]);
            assert_eq!(r.score(), -2.5);
            r.set_score(7.0);
            assert_eq!(r.score(), 7.0);
            assert_eq!(r.member(), &m[..]);
            // SAFETY: `r` is not used afterwards.
            unsafe { r.free() };
        }
    }
}
