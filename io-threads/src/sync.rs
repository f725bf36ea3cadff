//! One place that decides where atomics, `Arc`, threads and parking come
//! from: `std` normally, `loom` under `--cfg loom`, so the same protocol code
//! (with the same orderings) is both the production code and the
//! model-checked code.

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::Arc;
#[cfg(not(loom))]
pub(crate) use std::thread;

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::Arc;
#[cfg(loom)]
pub(crate) use loom::thread;

/// A hint to the CPU that we are spinning. Under loom, a yield so the model
/// explores other threads instead of spinning forever.
#[inline]
pub(crate) fn spin_hint() {
    #[cfg(not(loom))]
    std::hint::spin_loop();
    #[cfg(loom)]
    loom::thread::yield_now();
}

/// Parks the calling thread until its `Thread::unpark` (a token given first
/// is remembered). May return spuriously.
///
/// Under loom this is loom's own park, which keeps a token given to a
/// running thread but drops one given to a thread blocked on something else
/// (a yield, a model lock): stricter than real threads, so it can only add
/// hangs, never hide a lost wake-up. The pool gives no model lock to block
/// on, and a worker unparked while it spins (a yield) re-checks its queue and
/// its wake state before it parks.
#[inline]
pub(crate) fn park() {
    thread::park();
}
