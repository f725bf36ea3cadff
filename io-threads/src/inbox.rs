//! The loop's inbox: messages from any thread to the main loop (commands,
//! shutdown, a new TLS configuration), each push followed by a coalesced
//! wake-up. Unbounded and lock-free (MPSC): a sender never blocks and never
//! waits for the loop, and closing never waits for a sender.
//!
//! # Closing without losing a message
//!
//! A push that checks "open", then enqueues, can be overtaken by a close
//! that drains in between: the message would then sit in the queue after the
//! close, unseen and undropped, for as long as any sender holds the inbox.
//! So the inbox keeps one state word, `Inbox::state`:
//!
//! ```text
//! bit 0      CLOSED: set once, by `close`; never cleared
//! bits 1..   pushes in progress, each counted as 2 (PUSHER)
//! ```
//!
//! * `push` enters with `fetch_add(PUSHER)`. If that read `CLOSED`, it
//!   enqueues nothing and gives the message back. Otherwise it enqueues,
//!   notifies, and leaves with `fetch_sub(PUSHER)`.
//! * `close` sets `CLOSED` with `fetch_or`.
//! * Exactly one read-modify-write moves the word to "`CLOSED`, no push in
//!   progress": `close`'s own (no push was in progress), or the leaving
//!   `fetch_sub` of the last push that overlapped `close`. Its caller drains
//!   the queue, dropping what it holds. After that read-modify-write no push
//!   can enqueue (a later one reads `CLOSED` on entry), and every enqueue
//!   that preceded it is visible to its drain (below), so nothing stays
//!   queued.
//!
//! Orderings: every access is a read-modify-write of the one word, so they
//! are totally ordered and each continues the release sequence of those
//! before it. A push's leaving `fetch_sub` releases its enqueue; the drainer's
//! read-modify-write (`AcqRel`) acquires every earlier one, so its drain sees
//! every message enqueued before it, and the pops the loop made before
//! `close`. The entering `fetch_add` publishes nothing and needs nothing
//! published to it, so it is `Relaxed`. `close`'s release half is not
//! load-bearing (the queue hands its consumers over by itself; loom passes
//! with `Acquire`) but is kept: it costs nothing on a once-only call.
//! `tests/loom_handoff.rs` (`inbox_close_racing_pushes`) checks this with
//! these orderings; weakening the leaving `fetch_sub` to `Release` or
//! `Relaxed`, or `close` to `Release`, makes it fail.

use crate::queue::Unbounded;
use crate::signal::LoopSignal;
use crate::sync::{Arc, AtomicUsize, Ordering};

/// Set in `Inbox::state` once the inbox is closed.
const CLOSED: usize = 1;
/// One push in progress, as counted in `Inbox::state`.
const PUSHER: usize = 2;

/// Any thread pushes; only the loop pops.
///
/// Thread-safety: `push` and `is_open` from any thread; `pop` and `close`
/// only from the loop's thread, and `pop` only before `close`.
pub struct Inbox<T> {
    queue: Unbounded<T>,
    signal: Arc<LoopSignal>,
    /// `CLOSED` bit plus `PUSHER` times the pushes in progress; see the
    /// module docs for the protocol. Invariant: once `CLOSED` is set and the
    /// count is zero, the queue is empty or being drained by the one caller
    /// that made it so, and no message is enqueued again.
    state: AtomicUsize,
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
            state: AtomicUsize::new(0),
        }
    }

    /// Queues `message` and wakes the loop if it sleeps.
    ///
    /// `Err` gives the message back: the inbox was closed before this push
    /// began. `Ok`: the loop pops the message, or it is dropped by the close
    /// of the inbox, never left queued: a close that comes after this push
    /// drops it on the loop's thread; a close that overlaps this push drops
    /// it before this call (or another push overlapping the same close)
    /// returns, and then [`is_open`](Self::is_open) is already `false` when
    /// this call returns.
    pub fn push(&self, message: T) -> Result<(), T> {
        let entered = self.state.fetch_add(PUSHER, Ordering::Relaxed);
        if entered & CLOSED != 0 {
            self.leave();
            return Err(message);
        }
        self.queue.push(message);
        self.signal.notify();
        self.leave();
        Ok(())
    }

    /// Ends a push; the last push out of a closed inbox drains it.
    fn leave(&self) {
        let before = self.state.fetch_sub(PUSHER, Ordering::AcqRel);
        if before == CLOSED | PUSHER {
            self.drain();
        }
    }

    fn drain(&self) {
        while self.queue.pop().is_some() {}
    }

    /// Loop side: the oldest message from any sender. Messages from one
    /// sender come out in the order it pushed them.
    pub fn pop(&self) -> Option<T> {
        self.queue.pop()
    }

    /// Loop side: refuses later pushes and drops what is queued, here or (for
    /// a message whose push overlaps this call) on the pushing thread.
    /// Returns at once; never waits for a sender.
    pub fn close(&self) {
        let before = self.state.fetch_or(CLOSED, Ordering::AcqRel);
        if before == 0 {
            self.drain();
        }
    }

    /// Whether pushes are still taken.
    pub fn is_open(&self) -> bool {
        self.state.load(Ordering::Acquire) & CLOSED == 0
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::Wake;
    use std::sync::atomic::AtomicUsize as Count;

    struct NoWake;
    impl Wake for NoWake {
        fn wake(&self) {}
    }

    /// Counts its own drop.
    struct Msg(Arc<Count>);
    impl Drop for Msg {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn inbox<T>() -> Inbox<T> {
        Inbox::new(Arc::new(LoopSignal::new(NoWake)))
    }

    #[test]
    fn a_push_after_close_is_refused_and_gives_the_message_back() {
        let inbox = inbox();
        inbox.close();
        assert!(!inbox.is_open());
        assert_eq!(inbox.push(7), Err(7));
        assert_eq!(inbox.pop(), None);
    }

    #[test]
    fn close_drops_what_is_queued() {
        let dropped = Arc::new(Count::new(0));
        let inbox = inbox();
        assert!(inbox.push(Msg(Arc::clone(&dropped))).is_ok());
        assert!(inbox.push(Msg(Arc::clone(&dropped))).is_ok());
        inbox.close();
        assert_eq!(dropped.load(Ordering::SeqCst), 2, "dropped by close");
    }

    #[test]
    fn pushes_racing_close_leave_nothing_queued() {
        for _ in 0..200 {
            let dropped = Arc::new(Count::new(0));
            let inbox = Arc::new(inbox());
            let pushers: Vec<_> = (0..3)
                .map(|_| {
                    let (inbox, dropped) = (Arc::clone(&inbox), Arc::clone(&dropped));
                    std::thread::spawn(move || {
                        let mut refused = 0;
                        for _ in 0..50 {
                            if let Err(m) = inbox.push(Msg(Arc::clone(&dropped))) {
                                std::mem::forget(m);
                                refused += 1;
                            }
                        }
                        refused
                    })
                })
                .collect();
            let mut popped = 0;
            for _ in 0..20 {
                if inbox.pop().is_some() {
                    popped += 1;
                }
            }
            inbox.close();
            let refused: usize = pushers.into_iter().map(|p| p.join().unwrap()).sum();
            // Every accepted message was popped or dropped by the close,
            // while the inbox (and its queue) is still alive.
            assert_eq!(dropped.load(Ordering::SeqCst), 150 - refused);
            assert!(popped <= 150 - refused);
        }
    }
}
