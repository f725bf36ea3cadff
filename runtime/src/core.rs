//! The loop's state apart from the service: the connection table, timers,
//! the IO pool and the reactor. `Ctx` and the loop both work through it.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_io_threads::{Completion, IoPool, LoopSignal, Slot};
use slab::Slab;

use crate::activation::Activation;
use crate::conn::{Conn, IoLimits, StepReport};
use crate::conn_timers::{ConnTimer, ConnTimers};
use crate::handle::Mailbox;
use crate::plan::Step;
use crate::reactor::Reactor;
use crate::stats::{Stats, StatsSource};
use crate::timers::{deadline_after, Timers};
use crate::{CloseReason, Codec, Config, ConnId, SendError, Service};

pub(crate) type Out<S> = <<S as Service>::Codec as Codec>::Out;

/// What the loop remembers about a connection while it is on an IO thread.
/// It joins the connection, in order, when the connection comes home.
pub(crate) struct Away<C: Codec> {
    pub(crate) generation: u64,
    /// Output bytes the connection held when it left.
    pub(crate) base_output: usize,
    /// Frames sent while away, each with its `encoded_len` (taken once,
    /// when sent, so joining them calls no codec code on the loop).
    pub(crate) pending: Vec<(C::Out, usize)>,
    pub(crate) pending_bytes: usize,
    /// Readiness edges that arrived while away.
    pub(crate) readable: bool,
    pub(crate) writable: bool,
    /// An edge that arrived while away said reads must go to `WouldBlock`
    /// (the peer's end or urgent data; see `Readiness`).
    pub(crate) read_to_would_block: bool,
    /// A graceful close requested while away.
    pub(crate) close: Option<CloseReason>,
    /// An abortive close decided while away (output limit, timeout).
    pub(crate) abort: Option<CloseReason>,
}

impl<C: Codec> Default for Away<C> {
    fn default() -> Self {
        Self {
            generation: 0,
            base_output: 0,
            pending: Vec::new(),
            pending_bytes: 0,
            readable: false,
            writable: false,
            read_to_would_block: false,
            close: None,
            abort: None,
        }
    }
}

pub(crate) type Entry<C> = Slot<Box<Conn<C>>, Away<C>>;

/// The IO threads, moving connections out as jobs and back as completions.
pub(crate) type Pool<C> = IoPool<Job<C>>;

/// A connection handed to an IO thread, with the step to run; it comes back
/// (always, even if the step panicked outside its own `catch_unwind`) with
/// what the step did.
pub(crate) struct Job<C: Codec> {
    pub(crate) conn: Box<Conn<C>>,
    pub(crate) step: Step,
    pub(crate) report: StepReport,
}

/// Runs codec or service code the loop calls itself (not a service
/// callback, which `call_service` guards); `None` if it panicked. The caller
/// closes the connection it was about, so the panic is pinned on that
/// connection and never takes the loop down.
pub(crate) fn catch<T>(f: impl FnOnce() -> T) -> Option<T> {
    catch_unwind(AssertUnwindSafe(f)).ok()
}

/// A job handed back by an IO thread (or run inline).
pub(crate) type Done<C> = Completion<Job<C>>;

/// Runs a job's step, in place, on an IO thread or inline.
pub(crate) fn run_job<C: Codec>(job: &mut Job<C>, limits: IoLimits) {
    job.report = job.conn.run_step(job.step, limits);
}

/// What a timer does when it fires.
#[derive(Debug, Clone, Copy)]
pub(crate) enum TimerKind {
    /// A service timer, with its token.
    User(u64),
    /// Check whether this connection has been idle too long.
    Idle(ConnId),
    /// A closing connection must be gone by now.
    CloseFlush(ConnId),
    /// Accept again after `accept` failed (for example out of descriptors).
    AcceptRetry(usize),
    /// A TLS handshake must be complete by now.
    Handshake(ConnId),
}

pub(crate) struct Core<S: Service> {
    pub(crate) config: Config,
    pub(crate) limits: IoLimits,
    pub(crate) reactor: Reactor,
    pub(crate) table: Slab<Entry<S::Codec>>,
    pub(crate) next_generation: u64,
    pub(crate) pool: Option<Pool<S::Codec>>,
    /// Whether IO steps go to the pool now (meaningless without one).
    pub(crate) activation: Activation,
    pub(crate) signal: Arc<LoopSignal>,
    pub(crate) mailbox: Arc<Mailbox<S::Command>>,
    pub(crate) stats: Arc<Stats>,
    pub(crate) stats_source: StatsSource,
    pub(crate) timers: Timers<TimerKind>,
    /// Each connection's pending loop timers, cancelled when it closes.
    pub(crate) conn_timers: ConnTimers,
    /// Connections to look at before the next wait.
    pub(crate) scheduled: Vec<ConnId>,
    /// Set once a shutdown has begun: the time by which it must finish.
    pub(crate) shutdown_deadline: Option<Instant>,
    pub(crate) now: Instant,
}

impl<S: Service> Core<S> {
    /// The connection, if `id` names a live one that is home.
    pub(crate) fn home_mut(&mut self, id: ConnId) -> Option<&mut Conn<S::Codec>> {
        match self.table.get_mut(id.slot())? {
            Slot::Home(conn) if conn.id == id => Some(conn),
            _ => None,
        }
    }

    /// The connection (if live and home) together with the counters: a split
    /// borrow, so a caller can count while it holds the connection.
    pub(crate) fn home_and_stats(&mut self, id: ConnId) -> Option<(&mut Conn<S::Codec>, &Stats)> {
        match self.table.get_mut(id.slot())? {
            Slot::Home(conn) if conn.id == id => Some((conn, &self.stats)),
            _ => None,
        }
    }

    /// Marks a connection to be looked at before the next wait.
    pub(crate) fn schedule(&mut self, id: ConnId) {
        if let Some(conn) = self.home_mut(id) {
            if !conn.scheduled {
                conn.scheduled = true;
                self.scheduled.push(id);
            }
        }
    }

    pub(crate) fn is_live(&self, id: ConnId) -> bool {
        match self.table.get(id.slot()) {
            Some(Slot::Home(conn)) => conn.id == id,
            Some(Slot::Away(away)) => away.generation == id.generation,
            None => false,
        }
    }

    /// Queues `frame` for `id`, home or away. See [`Ctx::send`](crate::Ctx::send).
    pub(crate) fn send(&mut self, id: ConnId, frame: Out<S>) -> Result<(), SendError> {
        let Some(len) = catch(|| S::Codec::encoded_len(&frame)) else {
            if !self.is_live(id) {
                return Err(SendError::Gone);
            }
            tracing::error!(conn = ?id, "codec panicked in encoded_len; closing the connection");
            self.abort(id, CloseReason::CodecPanic);
            return Err(SendError::Closing);
        };
        let hard = self.config.output_hard_limit;
        match self.table.get_mut(id.slot()) {
            Some(Slot::Home(conn)) if conn.id == id => {
                if conn.failed.is_some() || conn.closing.is_some() {
                    return Err(SendError::Closing);
                }
                if conn.output_bytes().saturating_add(len) > hard {
                    conn.discard_output();
                    conn.failed = Some(CloseReason::OutputLimit);
                    self.schedule(id);
                    return Err(SendError::LimitExceeded);
                }
                conn.queue(frame, len);
                self.schedule(id);
                Ok(())
            }
            Some(Slot::Away(away)) if away.generation == id.generation => {
                if away.abort.is_some() || away.close.is_some() {
                    return Err(SendError::Closing);
                }
                if (away.base_output + away.pending_bytes).saturating_add(len) > hard {
                    away.pending.clear();
                    away.pending_bytes = 0;
                    away.abort = Some(CloseReason::OutputLimit);
                    return Err(SendError::LimitExceeded);
                }
                away.pending.push((frame, len));
                away.pending_bytes += len;
                self.stats.sends_while_away.add(1);
                Ok(())
            }
            _ => Err(SendError::Gone),
        }
    }

    /// Requests a graceful close (flush, then close) of `id`, home or away.
    /// The first reason given wins.
    pub(crate) fn request_close(
        &mut self,
        id: ConnId,
        reason: CloseReason,
    ) -> Result<(), SendError> {
        match self.table.get_mut(id.slot()) {
            Some(Slot::Home(conn)) if conn.id == id => {
                conn.closing.get_or_insert(reason);
                self.schedule(id);
            }
            Some(Slot::Away(away)) if away.generation == id.generation => {
                away.close.get_or_insert(reason);
            }
            _ => return Err(SendError::Gone),
        }
        self.arm_close_flush(id, self.config.close_flush_timeout);
        Ok(())
    }

    /// Closes `id` at once with `reason` (its output is dropped), home or away.
    pub(crate) fn abort(&mut self, id: ConnId, reason: CloseReason) {
        match self.table.get_mut(id.slot()) {
            Some(Slot::Home(conn)) if conn.id == id => {
                conn.failed.get_or_insert(reason);
                self.schedule(id);
            }
            Some(Slot::Away(away)) if away.generation == id.generation => {
                away.abort.get_or_insert(reason);
            }
            _ => {}
        }
    }

    pub(crate) fn set_timer(&mut self, after: Duration, kind: TimerKind) -> crate::TimerId {
        self.timers.set(deadline_after(self.now, after), kind)
    }

    /// Sets `id`'s timer of kind `which` to fire `after` from now, replacing
    /// (cancelling) the one it had.
    pub(crate) fn set_conn_timer(&mut self, id: ConnId, which: ConnTimer, after: Duration) {
        let kind = match which {
            ConnTimer::Idle => TimerKind::Idle(id),
            ConnTimer::Handshake => TimerKind::Handshake(id),
            ConnTimer::CloseFlush => TimerKind::CloseFlush(id),
        };
        let timer = self.timers.set(deadline_after(self.now, after), kind);
        if let Some(old) = self.conn_timers.replace(id.slot(), which, timer) {
            self.timers.cancel(old);
        }
    }

    /// A closing connection must be gone `after` from now, unless an earlier
    /// deadline is already set.
    pub(crate) fn arm_close_flush(&mut self, id: ConnId, after: Duration) {
        let pending = self
            .conn_timers
            .get(id.slot(), ConnTimer::CloseFlush)
            .is_some_and(|t| self.timers.is_pending(t));
        if !pending {
            self.set_conn_timer(id, ConnTimer::CloseFlush, after);
        }
    }

    /// Cancels every loop timer of the connection in `slot` (it is closing).
    pub(crate) fn cancel_conn_timers(&mut self, slot: usize) {
        for timer in self.conn_timers.take_all(slot).into_iter().flatten() {
            self.timers.cancel(timer);
        }
    }
}
