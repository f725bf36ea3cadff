//! The connection table: which connections are open, where each one is
//! (home on the loop, or lent to an IO thread), and the join that puts a
//! lent connection back together with what happened while it was away.
//!
//! A connection is two halves. The [`Conn`] travels: socket, TLS state,
//! codec, buffers, everything an IO step touches. The [`Entry`] stays on the
//! loop's thread: the service's per-connection state, its [`ConnInfo`],
//! timers, the close decision. So the loop can answer about any open
//! connection at any time, and an IO thread can never reach service state.
//!
//! A [`ConnId`] names one connection forever: the slot plus a generation
//! that is never reused. [`Table::get`] is the one place that checks it.

use std::time::Instant;

use baton_io_threads::Slot;
use slab::Slab;

use crate::conn::{Conn, Edges, Output};
use crate::conn_timers::ConnDeadlines;
use crate::{AfterEof, CloseReason, Codec, ConnId, ConnInfo, Service, TimerId};

/// A frame the service sends.
pub(crate) type Out<S> = <<S as Service>::Codec as Codec>::Out;

/// A change the service asked for of a connection's codec
/// ([`Ctx::update_codec`](crate::Ctx::update_codec)) while the connection
/// was on an IO thread. It never leaves the loop's thread, so it need not
/// be `Send`.
pub(crate) type CodecChange<C> = Box<dyn FnOnce(&mut C)>;

/// What the loop records about a connection while it is on an IO thread;
/// [`Away::join`] applies it, in order, when the connection comes back.
pub(crate) struct Away<O> {
    /// Output bytes the connection held when it left.
    base_output: usize,
    /// Frames sent while away, each with its `encoded_len` (taken once,
    /// when sent, so the join calls no codec code).
    pending: Vec<(O, usize)>,
    pending_bytes: usize,
    /// Readiness edges that arrived while away.
    edges: Edges,
    /// An abortive close decided while away (output limit, timeout,
    /// shutdown deadline): the output is dropped when it comes back.
    abort: Option<CloseReason>,
}

impl<O> Default for Away<O> {
    fn default() -> Self {
        Self {
            base_output: 0,
            pending: Vec::new(),
            pending_bytes: 0,
            edges: Edges::default(),
            abort: None,
        }
    }
}

impl<O> Away<O> {
    /// Output held: what the connection left with, plus what was sent since.
    /// An upper bound: the IO thread may have written some of it already.
    pub(crate) fn output_bytes(&self) -> usize {
        self.base_output + self.pending_bytes
    }

    pub(crate) fn queue(&mut self, frame: O, len: usize) {
        self.pending.push((frame, len));
        self.pending_bytes += len;
    }

    /// Records an abortive close; output sent while away is dropped now.
    /// The first reason wins.
    pub(crate) fn abort(&mut self, reason: CloseReason) {
        self.pending.clear();
        self.pending_bytes = 0;
        self.abort.get_or_insert(reason);
    }

    pub(crate) fn is_aborted(&self) -> bool {
        self.abort.is_some()
    }

    pub(crate) fn add_edges(&mut self, edges: Edges) {
        self.edges.merge(edges);
    }

    /// The join: output sent while away goes after what the connection
    /// still held (so frames to one connection stay in order), edges seen
    /// meanwhile are added to what the step left, and an abort drops all
    /// output and fails the connection. A step that panicked outside its own
    /// catch may have stopped anywhere: nothing it left is trusted.
    pub(crate) fn join(
        self,
        output: &mut Output<O>,
        edges: &mut Edges,
        failed: &mut Option<CloseReason>,
        panicked: bool,
    ) {
        for (frame, len) in self.pending {
            output.queue(frame, len);
        }
        edges.merge(self.edges);
        if let Some(reason) = self.abort {
            output.discard();
            failed.get_or_insert(reason);
        }
        if panicked {
            output.discard();
            *failed = Some(CloseReason::CodecPanic);
        }
    }
}

/// A connection's travelling half, out of the table.
pub(crate) type Lent<S> = Box<Conn<<S as Service>::Codec>>;

/// Where a connection's travelling half is.
type Place<S> = Slot<Box<Conn<<S as Service>::Codec>>, Away<Out<S>>>;

/// The loop's half of one connection.
pub(crate) struct Entry<S: Service> {
    pub(crate) id: ConnId,
    place: Place<S>,
    pub(crate) info: ConnInfo,
    /// The service's state: `None` until `on_open` returned it, and while a
    /// callback about this connection holds it.
    pub(crate) state: Option<S::ConnState>,
    /// `on_open` returned: the service knows this connection, and `on_close`
    /// will be called for it.
    pub(crate) opened: bool,
    /// A graceful close was requested, with this reason (flush, then close).
    pub(crate) closing: Option<CloseReason>,
    /// The runtime's own deadlines for this connection.
    pub(crate) deadlines: ConnDeadlines,
    /// The service's timers for this connection, cancelled when it closes.
    pub(crate) user_timers: Vec<TimerId>,
    /// When bytes last arrived (for the idle timeout).
    pub(crate) last_active: Instant,
    /// The idle timeout does not apply (a subscriber waiting for pushes).
    pub(crate) idle_exempt: bool,
    /// Already in the loop's list of connections to look at.
    pub(crate) scheduled: bool,
    /// Reading is paused because output is over the soft limit (counted in
    /// `paused`).
    pub(crate) over_soft_limit: bool,
    /// The service paused reading and delivery.
    pub(crate) reading_paused: bool,
    /// `on_drained` is wanted once output is at or below this many bytes.
    pub(crate) drain_below: Option<usize>,
    /// close_notify has been queued (graceful TLS close, or the TLS side of
    /// a write shutdown).
    pub(crate) close_notify_sent: bool,
    /// An outbound connection whose TCP connect has not completed: it takes
    /// no step until an edge shows the connect's outcome.
    pub(crate) connecting: bool,
    /// `on_peer_eof` was called (or is not wanted: the connection was
    /// closing already).
    pub(crate) eof_told: bool,
    /// What the service answered to `on_peer_eof`.
    pub(crate) after_eof: AfterEof,
    /// Where the service's `shutdown_write` stands.
    pub(crate) write_shutdown: WriteShutdown,
    /// Codec changes asked for while away, applied in order when the
    /// connection comes back (`Server::complete`).
    pub(crate) codec_changes: Vec<CodecChange<S::Codec>>,
}

/// The service's half-close of a connection's sending side
/// ([`Ctx::shutdown_write`](crate::Ctx::shutdown_write)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteShutdown {
    /// Not asked for.
    Open,
    /// Asked for: output queued before it is flushed first (and TLS's
    /// close_notify), then the socket's write side is shut down.
    Requested,
    /// The FIN has been sent; reading goes on until the peer's end.
    Done,
}

impl<S: Service> Entry<S> {
    pub(crate) fn new(id: ConnId, conn: Box<Conn<S::Codec>>, info: ConnInfo, now: Instant) -> Self {
        Self {
            id,
            place: Slot::Home(conn),
            info,
            state: None,
            opened: false,
            closing: None,
            deadlines: ConnDeadlines::default(),
            user_timers: Vec::new(),
            last_active: now,
            idle_exempt: false,
            scheduled: false,
            over_soft_limit: false,
            reading_paused: false,
            drain_below: None,
            close_notify_sent: false,
            connecting: false,
            eof_told: false,
            after_eof: AfterEof::Close,
            write_shutdown: WriteShutdown::Open,
            codec_changes: Vec::new(),
        }
    }

    /// The travelling half, if it is home.
    pub(crate) fn home(&self) -> Option<&Conn<S::Codec>> {
        match &self.place {
            Slot::Home(conn) => Some(conn),
            Slot::Away(_) => None,
        }
    }

    pub(crate) fn home_mut(&mut self) -> Option<&mut Conn<S::Codec>> {
        self.place.home_mut().map(|conn| &mut **conn)
    }

    pub(crate) fn away_mut(&mut self) -> Option<&mut Away<Out<S>>> {
        self.place.away_mut()
    }

    /// Adds this connection to the loop's list of connections to look at,
    /// once, if it is home (one that is away is looked at when it comes
    /// back).
    pub(crate) fn schedule_into(&mut self, scheduled: &mut Vec<ConnId>) {
        if !self.scheduled && self.home().is_some() {
            self.scheduled = true;
            scheduled.push(self.id);
        }
    }

    /// Output held for the connection, home or away (away: an upper bound).
    pub(crate) fn output_bytes(&self) -> usize {
        match &self.place {
            Slot::Home(conn) => conn.output_bytes(),
            Slot::Away(away) => away.output_bytes(),
        }
    }

    /// Whether the connection is failing, closing or shutting down its
    /// sending side: it takes no new output.
    pub(crate) fn is_ending(&self) -> bool {
        self.closing.is_some()
            || self.write_shutdown != WriteShutdown::Open
            || match &self.place {
                Slot::Home(conn) => conn.failed.is_some() || conn.is_dead(),
                Slot::Away(away) => away.is_aborted(),
            }
    }

    /// Closes at once with `reason`, home or away; the first reason wins.
    pub(crate) fn abort(&mut self, reason: CloseReason) {
        match &mut self.place {
            Slot::Home(conn) => {
                conn.failed.get_or_insert(reason);
            }
            Slot::Away(away) => away.abort(reason),
        }
    }
}

/// Every open connection, by [`ConnId`].
pub(crate) struct Table<S: Service> {
    slots: Slab<Entry<S>>,
    /// Generations are never reused, so a stale `ConnId` never matches.
    next_generation: u64,
}

impl<S: Service> Default for Table<S> {
    fn default() -> Self {
        Self {
            slots: Slab::new(),
            next_generation: 0,
        }
    }
}

impl<S: Service> Table<S> {
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The entry `id` names, if that connection is still open: the one
    /// liveness check.
    pub(crate) fn get(&self, id: ConnId) -> Option<&Entry<S>> {
        self.slots.get(id.slot()).filter(|e| e.id == id)
    }

    /// See [`get`](Self::get).
    pub(crate) fn get_mut(&mut self, id: ConnId) -> Option<&mut Entry<S>> {
        self.slots.get_mut(id.slot()).filter(|e| e.id == id)
    }

    /// The entry in poller slot `key`, without a generation check: a
    /// readiness event names the slot, not the connection. Sound because a
    /// connection leaves the poller (`close_now`) before its slot can be
    /// reused, and nothing closes a connection between the wait and the end
    /// of that iteration's events (closes happen in `advance` and shutdown,
    /// after the events).
    pub(crate) fn by_key_mut(&mut self, key: usize) -> Option<&mut Entry<S>> {
        self.slots.get_mut(key)
    }

    /// The slot the next [`insert`](Self::insert) uses (to register the
    /// socket under it first).
    pub(crate) fn next_key(&self) -> usize {
        self.slots.vacant_key()
    }

    /// Adds a connection under a new `ConnId`, in slot [`next_key`](Self::next_key).
    pub(crate) fn insert(&mut self, make: impl FnOnce(ConnId) -> Entry<S>) -> ConnId {
        self.next_generation += 1;
        let id = ConnId::new(self.slots.vacant_key(), self.next_generation);
        let key = self.slots.insert(make(id));
        debug_assert_eq!(key, id.slot());
        id
    }

    /// Removes a connection that is home; `None` if `id` is not open or is
    /// away (a connection on an IO thread is removed when it comes back).
    pub(crate) fn remove(&mut self, id: ConnId) -> Option<(Entry<S>, Lent<S>)> {
        self.get(id)?.home()?;
        let mut entry = self.slots.remove(id.slot());
        if self.slots.is_empty() {
            // After a burst the table would keep its peak size (an entry is a
            // few hundred bytes) for good; once empty it starts small again.
            self.slots.shrink_to_fit();
        }
        let conn = entry.place.take().expect("checked home above");
        Some((entry, conn))
    }

    /// Lends `id`'s travelling half to an IO step; until [`restore`](Self::restore)
    /// the entry records what happens meanwhile. `None` if not open and home.
    pub(crate) fn lend(&mut self, id: ConnId) -> Option<Box<Conn<S::Codec>>> {
        let entry = self.get_mut(id)?;
        let conn = entry.place.take()?;
        let away = entry.place.away_mut().expect("just taken");
        away.base_output = conn.output_bytes();
        Some(conn)
    }

    /// Takes back a lent connection and joins what happened while it was
    /// away ([`Away::join`]). Returns its id.
    ///
    /// # Panics
    /// If the connection was not lent from this table: an entry is never
    /// removed while away, so that would be a runtime bug.
    pub(crate) fn restore(&mut self, mut conn: Box<Conn<S::Codec>>, panicked: bool) -> ConnId {
        let id = conn.id;
        let entry = self
            .get_mut(id)
            .expect("an entry is never removed while its connection is away");
        let away = match std::mem::replace(&mut entry.place, Slot::Away(Away::default())) {
            Slot::Away(away) => away,
            Slot::Home(_) => unreachable!("a completion returns to an away entry"),
        };
        let Conn {
            output,
            edges,
            failed,
            ..
        } = &mut *conn;
        away.join(output, edges, failed, panicked);
        entry.place = Slot::Home(conn);
        id
    }

    /// The ids of every open connection, home or away.
    pub(crate) fn ids(&self) -> Vec<ConnId> {
        self.slots.iter().map(|(_, e)| e.id).collect()
    }

    pub(crate) fn entries_mut(&mut self) -> impl Iterator<Item = &mut Entry<S>> {
        self.slots.iter_mut().map(|(_, e)| e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joined(
        away: Away<&'static str>,
        held: &[&'static str],
        panicked: bool,
    ) -> (Output<&'static str>, Edges, Option<CloseReason>) {
        let mut output = Output::default();
        for frame in held {
            output.queue(*frame, frame.len());
        }
        let mut edges = Edges::default();
        let mut failed = None;
        away.join(&mut output, &mut edges, &mut failed, panicked);
        (output, edges, failed)
    }

    #[test]
    fn frames_sent_while_away_follow_what_the_connection_still_held() {
        let mut away = Away {
            base_output: 3,
            ..Away::default()
        };
        away.queue("b", 1);
        away.queue("cc", 2);
        assert_eq!(away.output_bytes(), 6, "held on leaving plus sent since");
        assert!(!away.is_aborted(), "sending is not ending");
        let (output, _, failed) = joined(away, &["aaa"], false);
        assert_eq!(
            output.frames().copied().collect::<Vec<_>>(),
            ["aaa", "b", "cc"]
        );
        assert_eq!(output.bytes(), 6);
        assert_eq!(failed, None);
    }

    #[test]
    fn edges_seen_while_away_are_added_never_lost() {
        let mut away: Away<&str> = Away::default();
        away.add_edges(Edges {
            readable: true,
            writable: false,
            read_to_would_block: true,
        });
        away.add_edges(Edges {
            readable: false,
            writable: true,
            read_to_would_block: false,
        });
        let (_, edges, _) = joined(away, &[], false);
        assert_eq!(
            edges,
            Edges {
                readable: true,
                writable: true,
                read_to_would_block: true
            }
        );
    }

    #[test]
    fn an_abort_while_away_drops_all_output_and_the_first_reason_wins() {
        let mut away = Away::default();
        away.queue("x", 1);
        away.abort(CloseReason::OutputLimit);
        away.queue("y", 1);
        away.abort(CloseReason::Shutdown);
        assert!(away.is_aborted());
        let (output, _, failed) = joined(away, &["held"], false);
        assert_eq!(output.bytes(), 0);
        assert_eq!(output.frames().count(), 0);
        assert_eq!(failed, Some(CloseReason::OutputLimit));
    }

    #[test]
    fn a_step_that_panicked_comes_back_failed_with_nothing_to_send() {
        let mut away = Away::default();
        away.queue("x", 1);
        let (output, _, failed) = joined(away, &["held"], true);
        assert_eq!(output.bytes(), 0);
        assert_eq!(failed, Some(CloseReason::CodecPanic));
    }

    #[test]
    fn a_failure_the_step_itself_found_is_kept_over_a_later_abort() {
        let mut away: Away<&str> = Away::default();
        away.abort(CloseReason::IdleTimeout);
        let mut output = Output::default();
        let mut edges = Edges::default();
        let mut failed = Some(CloseReason::Io(std::io::ErrorKind::ConnectionReset));
        away.join(&mut output, &mut edges, &mut failed, false);
        assert_eq!(
            failed,
            Some(CloseReason::Io(std::io::ErrorKind::ConnectionReset))
        );
    }
}
