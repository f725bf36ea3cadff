//! The one sleep/notify state machine baton uses in two places: the main
//! loop blocking in its poller ([`LoopSignal`](crate::LoopSignal)) and an IO
//! thread parking ([`IoPool`](crate::IoPool) workers).
//!
//! One state word, every transition a read-modify-write on it, so all
//! transitions are totally ordered and no reasoning about fences between two
//! locations is needed (an earlier two-flag Dekker version was harder to
//! model-check):
//!
//! ```text
//! AWAKE    --notify: swap(NOTIFIED)-->       NOTIFIED  (sleeper is awake: nothing to do)
//! SLEEPING --notify: swap(NOTIFIED)-->       NOTIFIED  (this notifier must wake the sleeper)
//! NOTIFIED --notify: swap(NOTIFIED)-->       NOTIFIED  (already notified: coalesced)
//! any      --begin_drain: swap(AWAKE)-->     AWAKE     (the sleeper then drains its queue)
//! AWAKE    --try_sleep: CAS(SLEEPING)-->     SLEEPING  (the sleeper then blocks)
//! NOTIFIED --try_sleep fails-->              NOTIFIED  (work arrived: don't block)
//! ```
//!
//! Why nothing is lost: a notifier pushes its item *before* its swap. If the
//! swap came before the sleeper's `begin_drain`, that swap reads it (acquire)
//! and the drain sees the item. If it came after, the state is `NOTIFIED` (the
//! sleeper's `try_sleep` fails) or `SLEEPING` (exactly one notifier sees it
//! and wakes the sleeper). The wake primitive itself (poller notify, thread
//! unpark) must remember a wake that arrives before the block.
//!
//! Encoding and orderings: the word holds one of the three states above and
//! nothing else. `notify` is the release that publishes the notifier's push;
//! `begin_drain` is the acquire that makes it visible to the drain that
//! follows. Both are `AcqRel` swaps, and every transition is a
//! read-modify-write of the one word, so each continues the release
//! sequence of the ones before it. `try_sleep`'s orderings are not
//! load-bearing: its callers always `begin_drain` before they drain again,
//! and a wake-up is carried by the wake primitive (loom passes with both of
//! its orderings `Relaxed`); they are kept as a free margin. The loom models
//! run these exact orderings; `notify` or `begin_drain` weakened to
//! `Relaxed` (or `notify` to `Acquire`) makes them find a loop that sleeps
//! through an item (see `tests/loom_handoff.rs`).

use crate::sync::{AtomicU8, Ordering};

const AWAKE: u8 = 0;
const SLEEPING: u8 = 1;
const NOTIFIED: u8 = 2;

/// See the module docs. `notify` from any thread; `begin_drain` and
/// `try_sleep` only from the one sleeping thread.
#[derive(Debug)]
pub(crate) struct WakeState(AtomicU8);

impl WakeState {
    pub(crate) fn new() -> Self {
        Self(AtomicU8::new(AWAKE))
    }

    /// After pushing work: `true` if the sleeper is blocked (or about to
    /// block) and this caller must wake it.
    pub(crate) fn notify(&self) -> bool {
        self.0.swap(NOTIFIED, Ordering::AcqRel) == SLEEPING
    }

    /// Before draining: consumes any notification; work pushed before it is
    /// visible to the drain that follows.
    pub(crate) fn begin_drain(&self) {
        self.0.swap(AWAKE, Ordering::AcqRel);
    }

    /// After draining completely: `true` means block now; `false` means work
    /// arrived since `begin_drain`.
    pub(crate) fn try_sleep(&self) -> bool {
        self.0
            .compare_exchange(AWAKE, SLEEPING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}
