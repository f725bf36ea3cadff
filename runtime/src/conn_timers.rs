//! The loop's own timers that belong to one connection (idle check,
//! handshake deadline, close-flush deadline), recorded by slot so that
//! closing a connection cancels them.
//!
//! Without this record a closed connection's timers stayed queued until
//! they fired: memory that grew with the close rate times the timeout (the
//! fault storms found it: thousands of resets left megabytes of dead timers
//! behind for an idle timeout's length; with a five-minute timeout and a
//! churning client it would be far more).

use crate::TimerId;

/// Which of a connection's timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConnTimer {
    Idle = 0,
    Handshake = 1,
    CloseFlush = 2,
}

/// At most one pending timer of each kind per connection slot.
#[derive(Debug, Default)]
pub(crate) struct ConnTimers {
    by_slot: Vec<[Option<TimerId>; 3]>,
}

impl ConnTimers {
    /// Records `timer` as the slot's timer of kind `which`; returns the one
    /// it replaces (for the caller to cancel).
    pub(crate) fn replace(
        &mut self,
        slot: usize,
        which: ConnTimer,
        timer: TimerId,
    ) -> Option<TimerId> {
        if self.by_slot.len() <= slot {
            self.by_slot.resize(slot + 1, [None; 3]);
        }
        self.by_slot[slot][which as usize].replace(timer)
    }

    /// The slot's timer of kind `which`, if one was recorded (it may have
    /// fired since).
    pub(crate) fn get(&self, slot: usize, which: ConnTimer) -> Option<TimerId> {
        self.by_slot.get(slot)?[which as usize]
    }

    /// Forgets and returns every timer recorded for the slot.
    pub(crate) fn take_all(&mut self, slot: usize) -> [Option<TimerId>; 3] {
        self.by_slot
            .get_mut(slot)
            .map(std::mem::take)
            .unwrap_or_default()
    }
}
