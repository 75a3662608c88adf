//! A counting global allocator: the measured half of the memory story.
//!
//! Reservations say what a stage promised to use; these counters say what the heap really
//! held. Counting costs two relaxed atomic operations per allocation.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static CALLS: AtomicUsize = AtomicUsize::new(0);

/// Wraps the system allocator and counts live and peak heap bytes.
///
/// The library installs it as the global allocator when the default `count-alloc` feature is
/// on; an embedding program with its own allocator turns the feature off and the heap figures
/// in run summaries become `null`.
pub struct CountingAllocator;

#[inline]
fn added(bytes: usize) {
    let now = LIVE.fetch_add(bytes, Relaxed) + bytes;
    PEAK.fetch_max(now, Relaxed);
}

unsafe impl GlobalAlloc for CountingAllocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            added(layout.size());
        }
        p
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            added(layout.size());
        }
        p
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE.fetch_sub(layout.size(), Relaxed);
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            CALLS.fetch_add(1, Relaxed);
            if new_size >= layout.size() {
                added(new_size - layout.size());
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Relaxed);
            }
        }
        p
    }
}

/// Heap bytes live now.
pub fn heap_live() -> usize {
    LIVE.load(Relaxed)
}

/// Highest live heap since the last [`heap_reset_peak`] (or process start).
pub fn heap_peak() -> usize {
    PEAK.load(Relaxed)
}

/// Starts a new peak window at the current live size, which it returns.
pub fn heap_reset_peak() -> usize {
    let live = LIVE.load(Relaxed);
    PEAK.store(live, Relaxed);
    live
}

/// True when the counting allocator is the process's global allocator.
pub fn is_counting() -> bool {
    if LIVE.load(Relaxed) > 0 || CALLS.load(Relaxed) > 0 {
        return true;
    }
    let probe = std::hint::black_box(vec![0u8; 64]);
    let seen = LIVE.load(Relaxed) > 0;
    drop(probe);
    seen
}
