//! A counting global allocator: the system allocator plus a tally of live
//! heap bytes, so INFO's `used_memory` (and later `maxmemory`) see what the
//! data really uses, not the RSS.
//!
//! Threads add to their own cache-line-padded counter (picked once per
//! thread), so counting costs an uncontended relaxed add per allocation.
//! Memory freed by another thread than the one that allocated it makes
//! individual counters drift, but their sum stays exact.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

const SLOTS: usize = 64;

#[repr(align(64))]
struct Padded(AtomicI64);

static COUNTERS: [Padded; SLOTS] = [const { Padded(AtomicI64::new(0)) }; SLOTS];
static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);
/// Whether the counting allocator is installed (the binary installs it;
/// unit tests of the library run without it).
static ACTIVE: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static SLOT: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// This thread's slot number (0..64), assigned round-robin on first use;
/// also used to stripe hot statistics counters by thread.
pub fn slot() -> usize {
    SLOT.try_with(|s| {
        let v = s.get();
        if v != usize::MAX {
            return v;
        }
        let n = NEXT_SLOT.fetch_add(1, Ordering::Relaxed) % SLOTS;
        s.set(n);
        n
    })
    // During thread teardown the thread-local is gone: use slot 0.
    .unwrap_or(0)
}

/// The counting allocator.
pub struct CountingAlloc;

// SAFETY: every method forwards to the system allocator with the same
// arguments; the counters are side bookkeeping only.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ACTIVE.store(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            COUNTERS[slot()]
                .0
                .fetch_add(layout.size() as i64, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        COUNTERS[slot()]
            .0
            .fetch_sub(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ACTIVE.store(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            COUNTERS[slot()]
                .0
                .fetch_add(layout.size() as i64, Ordering::Relaxed);
        }
        p
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            COUNTERS[slot()]
                .0
                .fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        }
        p
    }
}

/// Live heap bytes requested through the allocator, or None when the
/// counting allocator is not installed.
pub fn used_memory() -> Option<u64> {
    if ACTIVE.load(Ordering::Relaxed) == 0 {
        return None;
    }
    let sum: i64 = COUNTERS.iter().map(|c| c.0.load(Ordering::Relaxed)).sum();
    Some(sum.max(0) as u64)
}
