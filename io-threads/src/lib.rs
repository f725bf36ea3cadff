//! baton's IO thread pool.
//!
//! The main event loop *hands* a job (in baton: a connection, by value) to one
//! of N IO threads and gets it *handed back* as a completion. This crate is the
//! machinery of that handoff and nothing else: it knows nothing of sockets,
//! TLS or pollers (it does not depend on `polling`), so an IO thread cannot
//! reach the event loop's poller even by mistake.
//!
//! * [`IoPool`]: N worker threads, each with its own bounded job queue
//!   (main loop -> IO thread, SPSC). A full queue returns the job to the caller
//!   (`Err(job)`), who does the work inline: dispatch never blocks.
//! * Completions go back through one lock-free queue (IO threads -> main loop,
//!   MPSC) followed by [`LoopSignal::notify`], which wakes the loop only when
//!   it may be asleep; concurrent notifications coalesce into one wake-up.
//!   Every dispatched job comes back as a [`Completion`], even if its handler
//!   panicked.
//! * Idle workers spin briefly, then park; dispatch unparks only a parked one.
//! * [`Inbox`]: messages from any thread to the loop (MPSC, lock-free,
//!   unbounded), with the same coalesced wake-up; a message it accepts is
//!   popped by the loop or dropped by its close, never left queued.
//! * [`Slot`]: the state of a table entry whose value may be away on a worker
//!   (`Home` or `Away`), with what was recorded for it while away.
//!
//! Under `--cfg loom` the atomics, threads and parking come from `loom` (the
//! same orderings as production) and the crossbeam queues are replaced by
//! lock-free loom stand-ins, and `tests/loom_handoff.rs` model-checks the
//! protocol.
#![forbid(unsafe_code)]

mod handoff;
mod inbox;
mod pool;
mod queue;
mod signal;
mod sync;
mod wake_state;

pub use handoff::{NotAway, Slot};
pub use inbox::Inbox;
pub use pool::{Completion, IoPool, PoolConfig, PoolStatsReader, WorkerStats};
pub use signal::{LoopSignal, SignalStats, Wake};
