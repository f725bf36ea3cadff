//! The runtime's own deadlines for one connection (idle, handshake, close
//! flush, connect): at most one pending timer of each kind, replaced when re-armed
//! and all cancelled when the connection closes.

use crate::TimerId;

/// Which of a connection's deadlines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConnTimer {
    Idle = 0,
    Handshake = 1,
    CloseFlush = 2,
    Connect = 3,
}

/// A connection's pending deadline timers, one per [`ConnTimer`].
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ConnDeadlines([Option<TimerId>; 4]);

impl ConnDeadlines {
    /// Records `timer` as the pending `which`; returns the one it replaces
    /// (to cancel).
    pub(crate) fn replace(&mut self, which: ConnTimer, timer: TimerId) -> Option<TimerId> {
        self.0[which as usize].replace(timer)
    }

    /// Forgets the pending `which` (to cancel it).
    pub(crate) fn take(&mut self, which: ConnTimer) -> Option<TimerId> {
        self.0[which as usize].take()
    }

    pub(crate) fn get(&self, which: ConnTimer) -> Option<TimerId> {
        self.0[which as usize]
    }

    /// All of them, to cancel on close.
    pub(crate) fn take_all(&mut self) -> [Option<TimerId>; 4] {
        std::mem::take(&mut self.0)
    }
}
