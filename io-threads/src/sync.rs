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

/// Parks a worker until an unpark, remembering an unpark that comes first
/// (a sticky token), like `std::thread::park`; a park may return
/// spuriously. An unpark happens before the park that consumes its token
/// returns, and orders nothing else.
///
/// Under loom this is a `loom::sync::Notify` (one waiter, a sticky token,
/// release on notify and acquire on the wait that consumes it, spurious
/// returns explored), not loom's own `park`: loom's `unpark` joins the
/// unparker's causality into the target thread at once, even while the
/// target is running, which is stronger than `std` and hid a weakened stop
/// flag ordering from the models.
#[derive(Debug, Default)]
pub(crate) struct Parker {
    #[cfg(loom)]
    notify: loom::sync::Notify,
}

impl Parker {
    /// Blocks the calling thread (the one `unpark` will be given) until
    /// unparked, or spuriously.
    pub(crate) fn park(&self) {
        #[cfg(not(loom))]
        std::thread::park();
        #[cfg(loom)]
        self.notify.wait();
    }

    /// Unparks `thread`, the one thread that parks on this parker.
    pub(crate) fn unpark(&self, thread: &thread::Thread) {
        #[cfg(not(loom))]
        thread.unpark();
        #[cfg(loom)]
        {
            let _ = thread;
            self.notify.notify();
        }
    }
}
