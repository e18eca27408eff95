//! A counting global allocator: what one call allocated, at most at once and in one piece.
//!
//! The fuzz targets install [`Meter`] as their `#[global_allocator]` and wrap the call under
//! test in [`Meter::measure`]. Fuzzing is single-threaded, so nothing else allocates meanwhile.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// The system allocator, counting.
pub struct Meter {
    /// Bytes allocated and not yet freed.
    live: AtomicUsize,
    /// Highest `live` since the last reset.
    peak: AtomicUsize,
    /// Largest single allocation (or reallocation) since the last reset.
    largest: AtomicUsize,
}

/// What a measured call allocated.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// Largest single allocation, in bytes.
    pub largest: usize,
    /// Most bytes held at once by the call (on top of what was live before it).
    pub peak: usize,
}

impl Meter {
    pub const fn new() -> Self {
        Meter {
            live: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            largest: AtomicUsize::new(0),
        }
    }

    /// Runs `f` and reports what it allocated.
    pub fn measure<R>(&self, f: impl FnOnce() -> R) -> (R, Usage) {
        let base = self.live.load(Relaxed);
        self.peak.store(base, Relaxed);
        self.largest.store(0, Relaxed);
        let result = f();
        let usage = Usage {
            largest: self.largest.load(Relaxed),
            peak: self.peak.load(Relaxed).saturating_sub(base),
        };
        (result, usage)
    }

    fn grew(&self, size: usize) {
        self.largest.fetch_max(size, Relaxed);
        let live = self.live.fetch_add(size, Relaxed) + size;
        self.peak.fetch_max(live, Relaxed);
    }
}

impl Default for Meter {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: every call is forwarded unchanged to `System`; only counters are added.
unsafe impl GlobalAlloc for Meter {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as ours.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            self.grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as ours.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            self.grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) };
        self.live.fetch_sub(layout.size(), Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as ours.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            self.live.fetch_sub(layout.size(), Relaxed);
            self.grew(new_size);
        }
        p
    }
}
