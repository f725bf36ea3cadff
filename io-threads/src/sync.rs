//! One place that decides where atomics, `Arc` and threads come from: `std`
//! normally, `loom` under `--cfg loom`, so the same protocol code is both the
//! production code and the model-checked code.

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::Arc;
#[cfg(not(loom))]
pub(crate) use std::thread;

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
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

/// Parks the current worker until an unpark, remembering an unpark that comes
/// first (a sticky token), like `std::thread::park`.
///
/// Under loom a Mutex + Condvar stand-in is used: loom's own `park` drops the
/// token when the target thread happens to be blocked on something else (a
/// model lock, a yield), which real threads never do.
#[derive(Debug, Default)]
pub(crate) struct Parker {
    #[cfg(loom)]
    token: loom::sync::Mutex<bool>,
    #[cfg(loom)]
    wake: loom::sync::Condvar,
}

impl Parker {
    /// Blocks the calling thread (the one `unpark` will be given) until
    /// unparked. May return spuriously.
    pub(crate) fn park(&self) {
        #[cfg(not(loom))]
        std::thread::park();
        #[cfg(loom)]
        {
            let mut token = self.token.lock().unwrap();
            while !*token {
                token = self.wake.wait(token).unwrap();
            }
            *token = false;
        }
    }

    /// Unparks `thread`, the thread that parks on this parker.
    pub(crate) fn unpark(&self, thread: &thread::Thread) {
        #[cfg(not(loom))]
        thread.unpark();
        #[cfg(loom)]
        {
            let _ = thread;
            *self.token.lock().unwrap() = true;
            self.wake.notify_one();
        }
    }
}
