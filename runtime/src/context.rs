//! What a service callback can do.

use std::time::{Duration, Instant};

use crate::core::{Core, TimerKind};
use crate::table::WriteShutdown;
use crate::{
    ConnId, ConnInfo, Connect, ConnectError, LoopHandle, SendError, Service, StatsSnapshot, TimerId,
};

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

    /// Changes `conn`'s codec: `change` runs on the loop's thread with the
    /// codec, at once if the connection is home (as it always is while its
    /// own frames are delivered), else as soon as its IO step returns,
    /// before the frames that step decoded are delivered (those were
    /// decoded by the codec as it was). Input received but not decoded yet
    /// is then decoded by the changed codec, before anything more is read.
    ///
    /// So a codec can stop at a frame whose answer changes how the rest
    /// must be read (a login that lifts the limits on requests, a switch of
    /// protocol): it returns `Ok(None)` for what follows until the service
    /// has handled that frame and changed it. A codec that does so must be
    /// changed after every such frame, or the connection waits for ever.
    ///
    /// A panic in `change` closes the connection (`CodecPanic`). `Err(Gone)`
    /// if `conn` is closed, stale, or not open yet (a TLS connection has no
    /// codec before its handshake completes). `Ok` does not promise that
    /// `change` runs: a connection that fails or is closed before it comes
    /// back from an IO thread drops it.
    pub fn update_codec(
        &mut self,
        conn: ConnId,
        change: impl FnOnce(&mut S::Codec) + 'static,
    ) -> Result<(), SendError> {
        self.core.update_codec(conn, change)
    }

    /// Closes `conn` after its queued output is flushed (bounded by the
    /// close flush timeout). No further frames from it are delivered.
    /// `Err(Gone)` if it is already closed.
    pub fn close(&mut self, conn: ConnId) -> Result<(), SendError> {
        self.core.request_close(conn, crate::CloseReason::ByService)
    }

    /// Closes `conn` at once: its queued output is dropped, no further frame
    /// from it is delivered, and `on_close` follows with `reason` (counted
    /// under it). For a peer that must not get what was queued for it (a
    /// limit it broke). `Err(Gone)` if it is already closed.
    pub fn abort(&mut self, conn: ConnId, reason: crate::CloseReason) -> Result<(), SendError> {
        if !self.core.is_live(conn) {
            return Err(SendError::Gone);
        }
        self.core.abort(conn, reason);
        Ok(())
    }

    /// Shuts down the sending side of `conn` once the output queued so far is
    /// flushed (for TLS, after a close_notify): the peer reads its end
    /// (a TCP half-close) while this side goes on reading until the peer's
    /// own end, then closes. Further sends are refused (`Closing`). A proxy
    /// passes a client's end on to its upstream this way. `Err(Gone)` if
    /// `conn` is closed.
    pub fn shutdown_write(&mut self, conn: ConnId) -> Result<(), SendError> {
        let entry = self.core.table.get_mut(conn).ok_or(SendError::Gone)?;
        if entry.write_shutdown == WriteShutdown::Open {
            entry.write_shutdown = WriteShutdown::Requested;
        }
        self.core.schedule(conn);
        Ok(())
    }

    /// Opens a connection to `target` (plain TCP or TLS) from the loop. The
    /// `ConnId` is returned at once; the connection goes into the same table
    /// as accepted ones and takes the same trip to IO threads and back. Once
    /// its TCP connect completes (checked with `SO_ERROR` on the socket's
    /// first edge) and, for TLS, its handshake, it opens like an accepted
    /// connection: [`Service::codec`](crate::Service::codec), then
    /// [`Service::on_open`](crate::Service::on_open), with
    /// [`Origin::Connect`](crate::Origin::Connect) in its
    /// [`ConnInfo`](crate::ConnInfo). If it never opens (refused, timed out,
    /// TLS failure, closed first), [`Service::on_connect_failed`](crate::Service::on_connect_failed)
    /// says why, once. Frames sent before it opens are refused (`Closing`);
    /// [`close`](Self::close) gives it up.
    ///
    /// `Err` only when nothing was started: `max_connections` reached,
    /// shutting down, no socket (out of descriptors), or a TLS configuration
    /// rustls refuses.
    pub fn connect(&mut self, target: Connect) -> Result<ConnId, ConnectError> {
        self.core.connect(target)
    }

    /// Whether `conn` names a connection that is still open.
    pub fn is_open(&self, conn: ConnId) -> bool {
        self.core.is_live(conn)
    }

    /// Whether `conn` is closing: a close was requested or decided (output
    /// limit, a socket error, a timeout) or its sending side is shut down,
    /// so it takes no more output. `false`
    /// for a connection that is not open. A service can stop working for a
    /// connection whose replies would be refused.
    pub fn is_closing(&self, conn: ConnId) -> bool {
        self.core.table.get(conn).is_some_and(|e| e.is_ending())
    }

    /// Who `conn` is (addresses, listener, what TLS negotiated), for any
    /// open connection, wherever it is at this moment.
    pub fn conn_info(&self, conn: ConnId) -> Option<&ConnInfo> {
        self.core.table.get(conn).map(|e| &e.info)
    }

    /// The state of another open connection. `None` if `conn` is closed,
    /// not opened yet, or is the connection the running callback is about
    /// (its state is the one the callback was handed).
    pub fn state(&mut self, conn: ConnId) -> Option<&mut S::ConnState> {
        self.core.table.get_mut(conn)?.state.as_mut()
    }

    /// Every open connection's id and state, except the one the running
    /// callback holds. In no particular order.
    pub fn states(&mut self) -> impl Iterator<Item = (ConnId, &mut S::ConnState)> + '_ {
        self.core
            .table
            .entries_mut()
            .filter_map(|e| Some((e.id, e.state.as_mut()?)))
    }

    /// Output bytes held for `conn` (queued frames by their encoded length,
    /// and encoded bytes not yet written). While the connection is on an IO
    /// thread, an upper bound (the thread may have written some). `None` if
    /// it is not open.
    pub fn output_len(&self, conn: ConnId) -> Option<usize> {
        self.core.table.get(conn).map(|e| e.output_bytes())
    }

    /// Asks for one [`Service::on_drained`] call once `conn`'s output is
    /// at or below `mark` bytes (at once, on the loop's next pass, if it
    /// already is; never once the connection is closing or its sending side
    /// is shut down). The way to stream a response larger than the output
    /// limits: send until [`output_len`](Self::output_len) passes a high
    /// mark, ask here, send more from `on_drained`. A later call replaces
    /// the mark. `Err(Gone)` if `conn` is closed.
    pub fn notify_drained(&mut self, conn: ConnId, mark: usize) -> Result<(), SendError> {
        let entry = self.core.table.get_mut(conn).ok_or(SendError::Gone)?;
        entry.drain_below = Some(mark);
        self.core.schedule(conn);
        Ok(())
    }

    /// Stops reading from `conn` and delivering its frames until
    /// [`resume_reading`](Self::resume_reading): the peer is held back by
    /// TCP flow control (a proxy waiting for its other side, say). Output
    /// still flows. `false` if `conn` is not open.
    pub fn pause_reading(&mut self, conn: ConnId) -> bool {
        self.set_reading_paused(conn, true)
    }

    /// Undoes [`pause_reading`](Self::pause_reading). `false` if `conn` is
    /// not open.
    pub fn resume_reading(&mut self, conn: ConnId) -> bool {
        self.set_reading_paused(conn, false)
    }

    fn set_reading_paused(&mut self, conn: ConnId, paused: bool) -> bool {
        let Some(entry) = self.core.table.get_mut(conn) else {
            return false;
        };
        entry.reading_paused = paused;
        self.core.schedule(conn);
        true
    }

    /// What the TLS handshake of `conn` negotiated (`None` for plain TCP
    /// or a closed connection).
    pub fn tls_info(&self, conn: ConnId) -> Option<&baton_tls::TlsInfo> {
        self.conn_info(conn)?.tls.as_ref()
    }

    /// Exempts `conn` from the idle timeout (or makes it subject again), as
    /// Redis does for pub/sub subscribers that only wait for pushes. `false`
    /// if `conn` is not open.
    pub fn set_idle_exempt(&mut self, conn: ConnId, exempt: bool) -> bool {
        let now = self.core.now;
        let Some(entry) = self.core.table.get_mut(conn) else {
            return false;
        };
        entry.idle_exempt = exempt;
        if !exempt {
            entry.last_active = now;
        }
        true
    }

    /// Calls [`Service::on_conn_timer`] for `conn` with `token` after
    /// `after`, unless `conn` closes first (its timers are cancelled then).
    /// `Err(Gone)` if it is not open.
    pub fn set_conn_timer(
        &mut self,
        conn: ConnId,
        after: Duration,
        token: u64,
    ) -> Result<TimerId, SendError> {
        if !self.core.is_live(conn) {
            return Err(SendError::Gone);
        }
        let timer = self.core.set_timer(after, TimerKind::UserConn(conn, token));
        let entry = self.core.table.get_mut(conn).expect("checked live");
        // Fired and cancelled timers leave their ids here until the next
        // one is set: the list stays as long as the live ones.
        let timers = &self.core.timers;
        entry.user_timers.retain(|&t| timers.is_pending(t));
        entry.user_timers.push(timer);
        Ok(timer)
    }

    /// Calls [`Service::on_timer`] with `token` after `after`. A delay of a
    /// century or more (`Duration::MAX`) never fires in practice. A timer
    /// set from `on_timer` fires at the earliest on the loop's next
    /// iteration, so re-arming with `Duration::ZERO` lets the loop serve its
    /// connections in between.
    pub fn set_timer(&mut self, after: Duration, token: u64) -> TimerId {
        self.core.set_timer(after, TimerKind::User(token))
    }

    /// Cancels a timer (set with [`set_timer`](Self::set_timer) or
    /// [`set_conn_timer`](Self::set_conn_timer)); `false` if it already
    /// fired or was cancelled.
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
