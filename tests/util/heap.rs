//! Live heap bytes of the test process, counted by a global allocator the
//! test binary installs:
//! `#[global_allocator] static HEAP: util::heap::Counting = util::heap::Counting;`

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

static LIVE: AtomicIsize = AtomicIsize::new(0);

/// The system allocator, counting bytes allocated and not yet freed.
pub struct Counting;

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so `System`'s guarantees hold; the counter is only arithmetic.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is (see the impl's comment).
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        p
    }
}

/// Bytes allocated and not freed, by every thread of this process.
pub fn live_bytes() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// Waits until the live heap is at most `slack` bytes above `baseline`
/// (the server frees a closed connection's last pieces on its loop's next
/// turn), or panics after `limit` naming `what`. Returns the growth seen.
pub fn wait_for_heap(
    baseline: isize,
    slack: isize,
    limit: std::time::Duration,
    what: &str,
) -> isize {
    let start = std::time::Instant::now();
    loop {
        let grown = live_bytes() - baseline;
        if grown <= slack {
            eprintln!("{what}: heap {grown:+} bytes against the baseline");
            return grown;
        }
        assert!(
            start.elapsed() < limit,
            "{what}: heap grew by {grown} bytes (bound {slack})"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
