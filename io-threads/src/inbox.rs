//! The loop's inbox: messages from any thread to the main loop (commands,
//! shutdown, a new TLS configuration), each push followed by a coalesced
//! wake-up. Unbounded and lock-free (MPSC): a sender never blocks and never
//! waits for the loop.

use crate::queue::Unbounded;
use crate::signal::LoopSignal;
use crate::sync::{Arc, AtomicBool, Ordering};

/// Any thread pushes; only the loop pops.
///
/// Thread-safety: `push` and `is_open` from any thread; `pop` and `close`
/// only from the loop's thread.
pub struct Inbox<T> {
    queue: Unbounded<T>,
    signal: Arc<LoopSignal>,
    /// Cleared when the loop stops taking messages.
    open: AtomicBool,
}

impl<T> std::fmt::Debug for Inbox<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox")
            .field("open", &self.is_open())
            .finish_non_exhaustive()
    }
}

impl<T> Inbox<T> {
    /// An open inbox that wakes the loop through `signal`.
    pub fn new(signal: Arc<LoopSignal>) -> Self {
        Self {
            queue: Unbounded::new(),
            signal,
            open: AtomicBool::new(true),
        }
    }

    /// Queues `message` and wakes the loop if it sleeps. `Err` gives it
    /// back if the inbox was already closed. A message pushed while the
    /// loop is closing may be dropped unseen.
    pub fn push(&self, message: T) -> Result<(), T> {
        if !self.open.load(Ordering::Acquire) {
            return Err(message);
        }
        self.queue.push(message);
        self.signal.notify();
        Ok(())
    }

    /// Loop side: the oldest message from any sender. Messages from one
    /// sender come out in the order it pushed them.
    pub fn pop(&self) -> Option<T> {
        self.queue.pop()
    }

    /// Loop side: refuses later pushes and drops what is queued.
    pub fn close(&self) {
        self.open.store(false, Ordering::Release);
        while self.queue.pop().is_some() {}
    }

    /// Whether pushes are still taken.
    pub fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }
}
