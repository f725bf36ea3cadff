//! Waking the main loop: at most one wake-up per sleep, however many
//! producers finish at once. The state machine is [`WakeState`]'s.

use crate::sync::{AtomicU64, Ordering};
use crate::wake_state::WakeState;

/// The narrow handle a producer uses to wake the main loop.
///
/// The runtime implements it over its poller's `notify`; this crate never sees
/// the poller itself, only this one method.
pub trait Wake: Send + Sync + 'static {
    /// Wakes the loop's current or next wait. Must not block.
    fn wake(&self);
}

/// Shared between the loop and every producer; see the module docs for the
/// protocol.
///
/// Thread-safety: `notify` may be called from any thread at any time;
/// `begin_drain` and `try_sleep` only by the loop's own thread.
pub struct LoopSignal {
    /// Whether the loop is awake, blocked, or notified since it last drained.
    state: WakeState,
    waker: Box<dyn Wake>,
    /// Wake-ups actually sent (a `Wake::wake` call). This and `coalesced`
    /// are `Relaxed` counts: statistics that order nothing.
    sent: AtomicU64,
    /// Notifications that needed no wake-up (the loop was awake, or another
    /// producer already woke it).
    coalesced: AtomicU64,
}

impl std::fmt::Debug for LoopSignal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoopSignal")
            .field("stats", &self.stats())
            .finish()
    }
}

/// Counts of [`LoopSignal::notify`] outcomes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SignalStats {
    /// Notifications that woke the loop.
    pub wakeups_sent: u64,
    /// Notifications that found the loop awake or already woken.
    pub wakeups_coalesced: u64,
}

impl LoopSignal {
    /// A signal that calls `waker` when the loop must be woken.
    pub fn new(waker: impl Wake) -> Self {
        Self {
            state: WakeState::new(),
            waker: Box::new(waker),
            sent: AtomicU64::new(0),
            coalesced: AtomicU64::new(0),
        }
    }

    /// Producer side: call right *after* pushing onto a queue the loop drains.
    /// Wakes the loop only if it is (about to be) blocked.
    pub fn notify(&self) {
        if self.state.notify() {
            self.waker.wake();
            self.sent.fetch_add(1, Ordering::Relaxed);
        } else {
            self.coalesced.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Loop side: call before draining the queues. Everything pushed before
    /// the notification this consumes is visible to the drain that follows.
    pub fn begin_drain(&self) {
        self.state.begin_drain();
    }

    /// Loop side: call after draining every queue completely, just before
    /// blocking. `true`: block; a later `notify` will wake the wait. `false`:
    /// something was pushed since `begin_drain`; do not block (poll with a zero
    /// timeout or go round again).
    pub fn try_sleep(&self) -> bool {
        self.state.try_sleep()
    }

    /// Counts so far.
    pub fn stats(&self) -> SignalStats {
        SignalStats {
            wakeups_sent: self.sent.load(Ordering::Relaxed),
            wakeups_coalesced: self.coalesced.load(Ordering::Relaxed),
        }
    }
}
