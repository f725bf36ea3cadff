//! Naming a connection without holding it.

use std::fmt;

/// Names one connection for its whole life, and never another.
///
/// A `ConnId` is the connection's slot in the loop's table plus a
/// generation that is unique for the life of the process. When the
/// connection closes its slot is reused, but with a new generation, so an
/// old `ConnId` is detected as stale (`Err(Gone)`) instead of reaching the
/// connection that reused the slot.
///
/// It is plain data (`Copy`, `Send`): holding one keeps nothing alive.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    pub(crate) slot: u32,
    pub(crate) generation: u64,
}

impl ConnId {
    pub(crate) fn new(slot: usize, generation: u64) -> Self {
        let slot = u32::try_from(slot).expect("connection table larger than u32::MAX slots");
        Self { slot, generation }
    }

    /// A number unique to this connection among all connections this
    /// process has accepted (like Redis's `CLIENT ID`).
    pub fn serial(&self) -> u64 {
        self.generation
    }

    /// The connection's slot in the loop's table. Slots are reused after a
    /// close (with a new generation); useful in logs and tests.
    pub fn slot_index(&self) -> usize {
        self.slot as usize
    }

    pub(crate) fn slot(&self) -> usize {
        self.slot as usize
    }
}

impl fmt::Debug for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnId({}#{})", self.generation, self.slot)
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.generation)
    }
}
