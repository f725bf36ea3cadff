//! The loop's state apart from the service: the connection table, timers,
//! the IO pool and the reactor. `Ctx` and the loop both work through it.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_io_threads::{Completion, IoPool, LoopSignal};
use baton_tls::{Transport, TransportError};

use crate::activation::Activation;
use crate::conn::{Conn, Edges, IoLimits, StepReport};
use crate::conn_timers::ConnTimer;
use crate::connect::{self, Connect, ConnectError};
use crate::handle::Mailbox;
use crate::plan::Step;
use crate::reactor::Reactor;
use crate::stats::{Stats, StatsSource};
use crate::table::{Entry, Out, Table};
use crate::timers::{deadline_after, Timers};
use crate::{CloseReason, Codec, Config, ConnId, ConnInfo, Origin, SendError, Service};

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
    /// A service timer for one connection, with its token.
    UserConn(ConnId, u64),
    /// One of a connection's own deadlines.
    Conn(ConnId, ConnTimer),
    /// Accept again after `accept` failed (for example out of descriptors).
    AcceptRetry(usize),
}

/// The loop's state apart from the service and the listeners: what a
/// service callback may touch through [`Ctx`](crate::Ctx) and the loop
/// through its own methods. Separate from the service so that a callback can
/// hold `&mut service` and `&mut Core` at once.
pub(crate) struct Core<S: Service> {
    pub(crate) config: Config,
    pub(crate) limits: IoLimits,
    pub(crate) reactor: Reactor,
    pub(crate) table: Table<S>,
    pub(crate) pool: Option<Pool<S::Codec>>,
    /// Whether IO steps go to the pool now (meaningless without one).
    pub(crate) activation: Activation,
    pub(crate) signal: Arc<LoopSignal>,
    pub(crate) mailbox: Arc<Mailbox<S::Command>>,
    pub(crate) stats: Arc<Stats>,
    pub(crate) stats_source: StatsSource,
    pub(crate) timers: Timers<TimerKind>,
    /// Connections to look at before the next wait.
    pub(crate) scheduled: Vec<ConnId>,
    /// Set once a shutdown has begun: the time by which it must finish.
    pub(crate) shutdown_deadline: Option<Instant>,
    pub(crate) now: Instant,
}

impl<S: Service> Core<S> {
    /// Marks a connection to be looked at before the next wait (if it is
    /// open; one that is away is looked at when it comes back).
    pub(crate) fn schedule(&mut self, id: ConnId) {
        if let Some(entry) = self.table.get_mut(id) {
            entry.schedule_into(&mut self.scheduled);
        }
    }

    pub(crate) fn is_live(&self, id: ConnId) -> bool {
        self.table.get(id).is_some()
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
        let entry = self.table.get_mut(id).ok_or(SendError::Gone)?;
        if entry.is_ending() || !entry.opened {
            return Err(SendError::Closing);
        }
        if entry.output_bytes().saturating_add(len) > hard {
            if let Some(conn) = entry.home_mut() {
                conn.output.discard();
            }
            entry.abort(CloseReason::OutputLimit);
            self.schedule(id);
            return Err(SendError::LimitExceeded);
        }
        match entry.home_mut() {
            Some(conn) => {
                conn.output.queue(frame, len);
                self.schedule(id);
            }
            None => {
                entry.away_mut().expect("not home").queue(frame, len);
                self.stats.sends_while_away.add(1);
            }
        }
        Ok(())
    }

    /// Starts an outbound connection. See [`Ctx::connect`](crate::Ctx::connect).
    pub(crate) fn connect(&mut self, target: Connect) -> Result<ConnId, ConnectError> {
        if self.shutdown_deadline.is_some() {
            return Err(ConnectError::ShuttingDown);
        }
        if self.table.len() >= self.config.max_connections {
            return Err(ConnectError::Limit);
        }
        let started = connect::start(target.addr, self.config.socket_send_buffer)
            .map_err(ConnectError::Io)?;
        let local = started
            .stream
            .local_addr()
            .unwrap_or_else(|_| unspecified_like(target.addr));
        // Made before the socket is registered: a failure drops the socket,
        // which must not still be in the poller then.
        let transport = match target.tls {
            None => Transport::plain(started.stream),
            Some((config, name)) => {
                Transport::tls_client(started.stream, config, name).map_err(|e| match e {
                    TransportError::Tls(e) => ConnectError::Tls(e),
                    TransportError::Io(e) => ConnectError::Io(e),
                })?
            }
        };
        self.reactor
            .register(transport.socket(), self.table.next_key())
            .map_err(ConnectError::Io)?;
        let info = ConnInfo {
            peer: target.addr,
            local,
            origin: Origin::Connect,
            tls: None,
        };
        let now = self.now;
        let refused = started.result.err();
        let id = self.table.insert(|id| {
            let span = tracing::debug_span!("conn", id = id.serial(), peer = %target.addr, outbound = true);
            let mut conn = Conn::new(id, transport, None, span);
            // No edge means anything until the connect's outcome is known.
            conn.edges = Edges::default();
            if let Some(e) = &refused {
                conn.failed = Some(CloseReason::Io(e.kind()));
            }
            let mut entry = Entry::new(id, Box::new(conn), info, now);
            entry.connecting = true;
            entry
        });
        self.stats.connects.add(1);
        self.stats.open.add(1);
        let timeout = target.timeout.unwrap_or(self.config.connect_timeout);
        // The idle timeout starts once connected (`advance_connect`).
        self.set_deadline(id, ConnTimer::Connect, timeout);
        // Looked at in this iteration: a connect that completed (or was
        // refused) at once raises no edge to wait for.
        self.schedule(id);
        Ok(id)
    }

    /// Requests a graceful close (flush, then close) of `id`, home or away.
    /// The first reason given wins.
    pub(crate) fn request_close(
        &mut self,
        id: ConnId,
        reason: CloseReason,
    ) -> Result<(), SendError> {
        let entry = self.table.get_mut(id).ok_or(SendError::Gone)?;
        entry.closing.get_or_insert(reason);
        self.schedule(id);
        self.arm_close_flush(id, self.config.close_flush_timeout);
        Ok(())
    }

    /// After a service callback panicked: counts and logs it, and closes
    /// `conn` if the callback was about one.
    pub(crate) fn service_panicked(&mut self, conn: Option<ConnId>) {
        self.stats.service_panics.add(1);
        tracing::error!(?conn, "service callback panicked");
        if let Some(conn) = conn {
            self.abort(conn, CloseReason::ServicePanic);
        }
    }

    /// See [`Ctx::update_codec`](crate::Ctx::update_codec).
    pub(crate) fn update_codec(
        &mut self,
        id: ConnId,
        change: impl FnOnce(&mut S::Codec) + 'static,
    ) -> Result<(), SendError> {
        let entry = self.table.get_mut(id).ok_or(SendError::Gone)?;
        if !entry.opened {
            return Err(SendError::Gone);
        }
        match entry.home_mut() {
            Some(conn) => {
                let changed = apply_codec_changes(conn, std::iter::once(change));
                if !changed {
                    self.abort(id, CloseReason::CodecPanic);
                }
            }
            None => entry.codec_changes.push(Box::new(change)),
        }
        self.schedule(id);
        Ok(())
    }

    /// Closes `id` at once with `reason` (its output is dropped), home or away.
    pub(crate) fn abort(&mut self, id: ConnId, reason: CloseReason) {
        if let Some(entry) = self.table.get_mut(id) {
            entry.abort(reason);
            self.schedule(id);
        }
    }

    pub(crate) fn set_timer(&mut self, after: Duration, kind: TimerKind) -> crate::TimerId {
        self.timers.set(deadline_after(self.now, after), kind)
    }

    /// Sets `id`'s deadline `which` to fire `after` from now, replacing
    /// (cancelling) the one it had.
    pub(crate) fn set_deadline(&mut self, id: ConnId, which: ConnTimer, after: Duration) {
        let Some(entry) = self.table.get_mut(id) else {
            return;
        };
        let timer = self
            .timers
            .set(deadline_after(self.now, after), TimerKind::Conn(id, which));
        if let Some(old) = entry.deadlines.replace(which, timer) {
            self.timers.cancel(old);
        }
    }

    /// A closing connection must be gone `after` from now, unless an earlier
    /// deadline is already set.
    pub(crate) fn arm_close_flush(&mut self, id: ConnId, after: Duration) {
        let Some(entry) = self.table.get(id) else {
            return;
        };
        let pending = entry
            .deadlines
            .get(ConnTimer::CloseFlush)
            .is_some_and(|t| self.timers.is_pending(t));
        if !pending {
            self.set_deadline(id, ConnTimer::CloseFlush, after);
        }
    }
}

/// The unspecified address of `addr`'s family, port 0: what a connecting
/// socket reports as its own address if the kernel will not say.
fn unspecified_like(addr: std::net::SocketAddr) -> std::net::SocketAddr {
    match addr {
        std::net::SocketAddr::V4(_) => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
        std::net::SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    }
}

/// Applies codec changes, in order, to a connection that is home and open;
/// `false` if one panicked (the rest are dropped, and the caller closes
/// the connection). A failed connection's codec is left alone and the
/// changes are dropped. Changes are user code, and so are the values they
/// hold: a panic while dropping one is caught too.
pub(crate) fn apply_codec_changes<C: Codec, F: FnOnce(&mut C)>(
    conn: &mut Conn<C>,
    changes: impl IntoIterator<Item = F>,
) -> bool {
    let mut changes = changes.into_iter();
    let codec = match conn.codec.as_mut() {
        Some(codec) if conn.failed.is_none() => codec,
        _ => return catch(|| drop(changes)).is_some(),
    };
    for change in changes.by_ref() {
        if catch(|| change(codec)).is_none() {
            tracing::error!(parent: &conn.span, "a codec change panicked; closing the connection");
            let _ = catch(|| drop(changes));
            return false;
        }
    }
    conn.codec_changed();
    true
}
