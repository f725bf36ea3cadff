//! What a service callback can do.

use std::time::{Duration, Instant};

use crate::core::{Core, TimerKind};
use crate::{ConnId, ConnInfo, LoopHandle, SendError, Service, StatsSnapshot, TimerId};

/// The loop, as a service callback sees it.
///
/// Only exists inside a callback, on the loop's thread. Everything it does
/// takes effect in order and without locks: writes are queued on the
/// connection (or joined to it when it comes back from an IO thread),
/// closes are decided by the loop, never by another thread.
pub struct Ctx<'a, S: Service> {
    pub(crate) core: &'a mut Core<S>,
}

impl<S: Service> std::fmt::Debug for Ctx<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx").finish_non_exhaustive()
    }
}

impl<S: Service> Ctx<'_, S> {
    /// Queues `frame` for `conn`: a reply, or a push to any other
    /// connection. Frames to one connection are sent in the order queued.
    ///
    /// `Err(Gone)` if `conn` is closed or stale (it never reaches another
    /// connection); `Err(Closing)` if it is closing, or if the codec's
    /// `encoded_len` panicked on `frame` (then `conn` is closed, as
    /// `CodecPanic`, and the frame dropped); `Err(LimitExceeded)` if
    /// the frame would take it past the hard output limit, in which case the
    /// connection is closed (`OutputLimit`).
    pub fn send(
        &mut self,
        conn: ConnId,
        frame: <S::Codec as crate::Codec>::Out,
    ) -> Result<(), SendError> {
        self.core.send(conn, frame)
    }

    /// Closes `conn` after its queued output is flushed (bounded by the
    /// close flush timeout). No further frames from it are delivered.
    /// `Err(Gone)` if it is already closed.
    pub fn close(&mut self, conn: ConnId) -> Result<(), SendError> {
        self.core.request_close(conn, crate::CloseReason::ByService)
    }

    /// Whether `conn` names a connection that is still open.
    pub fn is_open(&self, conn: ConnId) -> bool {
        self.core.is_live(conn)
    }

    /// Peer and local address of `conn`, if it is open and not on an IO
    /// thread at this moment.
    pub fn conn_info(&mut self, conn: ConnId) -> Option<&ConnInfo> {
        self.core.home_mut(conn).map(|c| &c.info)
    }

    /// What the TLS handshake of `conn` negotiated, once it is complete (and
    /// the connection is not on an IO thread at this moment).
    pub fn tls_info(&mut self, conn: ConnId) -> Option<&baton_tls::TlsInfo> {
        self.core.home_mut(conn).and_then(|c| c.tls.as_ref())
    }

    /// Exempts `conn` from the idle timeout (or makes it subject again), as
    /// Redis does for pub/sub subscribers that only wait for pushes. `false`
    /// if `conn` is not open and home right now.
    pub fn set_idle_exempt(&mut self, conn: ConnId, exempt: bool) -> bool {
        let now = self.core.now;
        match self.core.home_mut(conn) {
            Some(c) => {
                c.idle_exempt = exempt;
                if !exempt {
                    c.last_active = now;
                }
                true
            }
            None => false,
        }
    }

    /// Calls [`Service::on_timer`] with `token` after `after`. A delay of a
    /// century or more (`Duration::MAX`) never fires in practice. A timer
    /// set from `on_timer` fires at the earliest on the loop's next
    /// iteration, so re-arming with `Duration::ZERO` lets the loop serve its
    /// connections in between.
    pub fn set_timer(&mut self, after: Duration, token: u64) -> TimerId {
        self.core.set_timer(after, TimerKind::User(token))
    }

    /// Cancels a timer; `false` if it already fired or was cancelled.
    pub fn cancel_timer(&mut self, timer: TimerId) -> bool {
        self.core.timers.cancel(timer)
    }

    /// The loop's clock, read once per loop iteration.
    pub fn now(&self) -> Instant {
        self.core.now
    }

    /// The server's counters now.
    pub fn stats(&self) -> StatsSnapshot {
        self.core.stats_source.snapshot()
    }

    /// A handle for other threads to post commands to this loop.
    pub fn handle(&self) -> LoopHandle<S::Command> {
        LoopHandle {
            mailbox: self.core.mailbox.clone(),
            stats: self.core.stats_source.clone(),
        }
    }

    /// Starts a graceful shutdown (see [`LoopHandle::shutdown`]).
    pub fn shutdown(&mut self, grace: Duration) {
        self.handle().shutdown(grace);
    }
}
