//! A global allocator that counts allocations, for the tests that hold the
//! hot path to allocating nothing. Include it with `mod counting_alloc;` in
//! a test binary of its own (it installs itself as the global allocator),
//! and hold [`alone`] for the whole of each test that counts.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
/// Bytes allocated and not yet freed, and the most there were since
/// [`reset_peak`].
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(live, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Bytes in use by the whole test binary now.
pub fn live_bytes() -> usize {
    LIVE.load(Ordering::Relaxed)
}

/// The most bytes in use at once since the last call, which starts the
/// next measure from what is in use now.
pub fn reset_peak() -> usize {
    PEAK.swap(LIVE.load(Ordering::Relaxed), Ordering::Relaxed)
}

pub fn peak_bytes() -> usize {
    PEAK.load(Ordering::Relaxed)
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made so far by the whole test binary.
pub fn allocations() -> usize {
    ALLOCATIONS.load(Ordering::Relaxed)
}

static ALONE: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Held for the whole of a test that counts: the count is the binary's, so
/// two such tests in one binary take turns.
pub fn alone() -> std::sync::MutexGuard<'static, ()> {
    ALONE.lock().unwrap_or_else(|e| e.into_inner())
}
