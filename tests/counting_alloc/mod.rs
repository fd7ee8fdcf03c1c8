//! A global allocator that counts allocations, for the tests that hold the
//! hot path to allocating nothing. Include it with `mod counting_alloc;` in
//! a test binary of its own (it installs itself as the global allocator),
//! and hold [`alone`] for the whole of each test that counts.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
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
