//! A connection's steps on the loop: readiness marks it, `advance` decides
//! its next step from its facts (`plan`), the step runs inline or on an IO
//! thread, `complete` takes it back, and `close_now` ends it.

use baton_io_threads::IoPool;

use crate::conn::{Conn, Edges, StepReport};
use crate::conn_timers::ConnTimer;
use crate::connect;
use crate::core::{apply_codec_changes, catch, run_job, Done, Job};
use crate::plan::{self, Next, Step};
use crate::reactor::Readiness;
use crate::table::{Entry, WriteShutdown};
use crate::{AfterEof, CloseReason, ConnId, Origin, Server, Service};

/// Which steps a pass of [`Server::advance_scheduled`] may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    Any,
    /// No reads: a step that would read is cut to its write, or left for
    /// the next iteration.
    WritesOnly,
    /// No step: a connection that needs one is left for the next iteration.
    NoSteps,
}

impl Pass {
    /// The part of `step` this pass runs now; `None` leaves it for the next
    /// iteration.
    fn allows(self, step: Step) -> Option<Step> {
        match self {
            Pass::Any => Some(step),
            Pass::WritesOnly if step.write => Some(Step {
                read: false,
                write: true,
            }),
            Pass::WritesOnly | Pass::NoSteps => None,
        }
    }
}

impl<S: Service> Server<S> {
    pub(crate) fn mark_ready(&mut self, event: Readiness) {
        let edges = Edges {
            readable: event.readable,
            writable: event.writable,
            read_to_would_block: event.read_to_would_block,
        };
        let Some(entry) = self.core.table.by_key_mut(event.key) else {
            return;
        };
        match entry.home_mut() {
            Some(conn) => {
                conn.edges.merge(edges);
                entry.schedule_into(&mut self.core.scheduled);
            }
            None => entry.away_mut().expect("not home").add_edges(edges),
        }
    }

    pub(crate) fn drain_completions(&mut self) {
        while let Some(done) = self.core.pool.as_ref().and_then(IoPool::pop_completion) {
            self.complete(done);
        }
    }

    /// A connection came home: join what happened while it was away, then
    /// act on what its step did. A step that panicked outside `run_step`'s
    /// own `catch_unwind` (a tracing subscriber, say) closes the connection.
    pub(crate) fn complete(&mut self, done: Done<S::Codec>) {
        let Done { job, panicked } = done;
        if panicked {
            tracing::warn!(parent: &job.conn.span, "IO step panicked on an IO thread; closing the connection");
        }
        let id = self.core.table.restore(job.conn, panicked);
        self.apply_codec_changes_made_away(id);
        self.after_step(id, job.report);
    }

    /// Codec changes the service asked for while the connection was away
    /// are applied as it comes back, before the frames its step decoded
    /// are delivered.
    fn apply_codec_changes_made_away(&mut self, id: ConnId) {
        let Some(entry) = self.core.table.get_mut(id) else {
            return;
        };
        if entry.codec_changes.is_empty() {
            return;
        }
        let changes = std::mem::take(&mut entry.codec_changes);
        let conn = entry.home_mut().expect("restored");
        if !apply_codec_changes(conn, changes) {
            self.core.abort(id, CloseReason::CodecPanic);
        }
    }

    /// Counts, opens a TLS connection whose handshake just completed,
    /// delivers decoded frames to the service, and schedules the connection
    /// for its next step.
    pub(crate) fn after_step(&mut self, id: ConnId, report: StepReport) {
        let now = self.core.now;
        let stats = &self.core.stats;
        let Some(entry) = self.core.table.get_mut(id) else {
            return;
        };
        stats.bytes_in.add(report.bytes_in);
        stats.bytes_out.add(report.bytes_out);
        if report.bytes_in > 0 {
            entry.last_active = now;
        }
        let conn = entry.home().expect("a step's connection is home after it");
        let dead = conn.is_dead();
        // A close asked for before the handshake finished (a service giving
        // up a connect, a shutdown) wins: it never opens.
        if !entry.opened
            && entry.closing.is_none()
            && conn.failed.is_none()
            && !conn.transport.is_handshaking()
        {
            if let Some(info) = conn.transport.tls_info() {
                tracing::debug!(
                    parent: &conn.span,
                    version = ?info.version,
                    suite = ?info.suite,
                    resumed = info.resumed,
                    "TLS handshake complete"
                );
                stats.handshake_completed(&info);
            }
            self.open(id);
        }
        self.deliver_frames(id);
        // Looked up again only after a socket error (rare), not every step.
        let delivering = dead
            && self
                .core
                .table
                .get(id)
                .and_then(|e| e.home())
                .is_some_and(Conn::delivering_before_error);
        if delivering {
            // Frames read before a reset wait only as long as a closing
            // connection's output would (a paused service could hold them
            // for ever).
            let timeout = self.core.config.close_flush_timeout;
            self.core.arm_close_flush(id, timeout);
        }
        self.core.schedule(id);
    }

    /// Looks at every connection scheduled so far, then once more at those
    /// the first pass scheduled again, for writes only: the replies the
    /// service queued to input read in this iteration go out in it too (as
    /// a task-per-connection runtime writes right after its read), instead
    /// of waiting behind another poller wait. A last pass runs no step: it
    /// settles the connections those writes scheduled (most have nothing
    /// left to do), so the next wait is not cut short for nothing. Nothing
    /// reads twice in one iteration, so one busy connection cannot starve
    /// the poller; what needs a step waits for the next iteration.
    pub(crate) fn advance_scheduled(&mut self) {
        let mut batch = std::mem::take(&mut self.batch);
        for pass in [Pass::Any, Pass::WritesOnly, Pass::NoSteps] {
            // `batch` is empty here: what was scheduled becomes the batch,
            // and what this pass schedules goes to the emptied vector.
            std::mem::swap(&mut batch, &mut self.core.scheduled);
            for &id in &batch {
                self.advance(id, pass);
            }
            batch.clear();
        }
        self.batch = batch;
    }

    fn advance(&mut self, id: ConnId, pass: Pass) {
        if self.past_shutdown_deadline() {
            // No step after the deadline: a connection that keeps becoming
            // writable would otherwise be sent back to an IO thread every
            // iteration and outlive the grace.
            self.close_at_deadline(id);
            return;
        }
        let soft = self.core.config.output_soft_limit;
        let flush_timeout = self.core.config.close_flush_timeout;
        let Some(mut entry) = self.core.table.get_mut(id) else {
            return;
        };
        // Cleared first, so a callback below that schedules the connection
        // again (a new `notify_drained`, a resume) gets another look.
        entry.scheduled = false;
        if entry.connecting {
            self.advance_connect(id);
            return;
        }
        let held_frames = entry
            .home()
            .is_some_and(|c| !c.frames.is_empty() || c.decode_error.is_some());
        if entry.drain_below.is_some() || (held_frames && !entry.reading_paused) {
            // Frames held by a pause or by the soft limit are delivered here
            // once that lifts, even if no new input ever arrives.
            if held_frames {
                self.deliver_frames(id);
            }
            self.notify_if_drained(id);
            let Some(again) = self.core.table.get_mut(id) else {
                return;
            };
            entry = again;
        }
        if !entry.eof_told && entry.home().is_some_and(Conn::input_finished) {
            entry.eof_told = true;
            if entry.opened && entry.closing.is_none() {
                let mut after = AfterEof::Close;
                self.call_with_state(id, |s, ctx, state| after = s.on_peer_eof(ctx, id, state));
                let Some(again) = self.core.table.get_mut(id) else {
                    return;
                };
                again.after_eof = after;
                entry = again;
            }
        }
        if entry.write_shutdown == WriteShutdown::Requested && entry.opened {
            Self::shut_write_when_flushed(entry);
        }
        let stats = &self.core.stats;
        let Some(conn) = entry.home_mut() else {
            return;
        };
        if conn.is_dead() {
            // Sent while it was away, to a peer that is gone.
            conn.output.discard();
        }
        let over_soft_limit = conn.output_bytes() >= soft;
        let mut facts = conn.facts();
        let output_empty = conn.output_bytes() == 0;
        let failed = conn.failure();
        if over_soft_limit != entry.over_soft_limit {
            entry.over_soft_limit = over_soft_limit;
            if over_soft_limit {
                stats.backpressure_pauses.add(1);
                stats.paused.add(1);
            } else {
                stats.paused.sub(1);
            }
        }
        facts.hold_input = over_soft_limit || entry.reading_paused;
        facts.closing = entry.closing.is_some();
        facts.keep_open =
            entry.after_eof == AfterEof::KeepWriting && entry.write_shutdown != WriteShutdown::Done;
        let next = plan::next(facts);
        if next == Next::Close
            && failed.is_none()
            && entry.info.tls.is_some()
            && !entry.close_notify_sent
        {
            // A graceful TLS close says goodbye first: queue close_notify,
            // let it flush (bounded by the close flush timeout), then close.
            entry.close_notify_sent = true;
            let conn = entry.home_mut().expect("home");
            if conn.transport.begin_close() {
                self.core.arm_close_flush(id, flush_timeout);
                self.core.schedule(id);
                return;
            }
        }
        match next {
            Next::Wait => {}
            Next::Close => {
                let reason = failed
                    .or_else(|| entry.closing.clone())
                    .unwrap_or(CloseReason::PeerClosed);
                self.close_now(id, reason);
            }
            Next::Io(step) => match pass.allows(step) {
                Some(step) => {
                    if step.write && output_empty {
                        self.core.stats.tls_write_steps.add(1);
                    }
                    self.run_step(id, step);
                }
                None => self.core.schedule(id),
            },
        }
    }

    /// An outbound connection's connect: wait for its outcome, then open it
    /// (plain) or let its TLS handshake start (its first step sends the
    /// ClientHello); a failure, a timeout or a close asked for meanwhile
    /// ends it, and `close_now` tells the service.
    fn advance_connect(&mut self, id: ConnId) {
        let handshake_timeout = self.core.config.handshake_timeout;
        let Some(entry) = self.core.table.get_mut(id) else {
            return;
        };
        let closing = entry.closing.clone();
        let conn = entry
            .home_mut()
            .expect("a connecting connection takes no step");
        if conn.failed.is_none() && closing.is_none() {
            match connect::finish(conn.transport.socket()) {
                Ok(false) => return,
                Ok(true) => {
                    conn.edges.writable = true;
                    let handshaking = conn.transport.is_handshaking();
                    tracing::debug!(parent: &conn.span, "connected");
                    entry.connecting = false;
                    entry.last_active = self.core.now;
                    if let Some(timer) = entry.deadlines.take(ConnTimer::Connect) {
                        self.core.timers.cancel(timer);
                    }
                    if let Some(idle) = self.core.config.idle_timeout {
                        self.core.set_deadline(id, ConnTimer::Idle, idle);
                    }
                    if handshaking {
                        self.core
                            .set_deadline(id, ConnTimer::Handshake, handshake_timeout);
                        self.core.schedule(id);
                    } else {
                        self.open(id);
                    }
                    return;
                }
                Err(e) => conn.failed = Some(CloseReason::Io(e.kind())),
            }
        }
        let reason = conn
            .failed
            .clone()
            .or(closing)
            .unwrap_or(CloseReason::ByService);
        self.close_now(id, reason);
    }

    /// Carries out a requested write shutdown once the output queued before
    /// it is written: TLS first queues close_notify (the next write step
    /// sends it), then the socket's sending side is shut down (FIN).
    fn shut_write_when_flushed(entry: &mut Entry<S>) {
        let tls = entry.info.tls.is_some();
        let notify_sent = entry.close_notify_sent;
        let Some(conn) = entry.home_mut() else {
            return;
        };
        if conn.output_bytes() > 0 || conn.transport.wants_write() || conn.failed.is_some() {
            return;
        }
        if tls && !notify_sent {
            let queued = conn.transport.begin_close();
            entry.close_notify_sent = true;
            if queued {
                return;
            }
        }
        let conn = entry.home_mut().expect("home");
        if let Err(e) = conn.transport.shutdown_write() {
            conn.failed = Some(CloseReason::Io(e.kind()));
        }
        tracing::debug!(parent: &conn.span, "sending side shut down");
        entry.write_shutdown = WriteShutdown::Done;
    }

    /// Hands the step to an IO thread, or runs it inline when there are none,
    /// they are not in use now (see [`IoActivation`](crate::IoActivation)),
    /// or that thread's queue is full.
    fn run_step(&mut self, id: ConnId, step: Step) {
        let core = &mut self.core;
        if let Some(pool) = core.pool.as_ref().filter(|_| core.activation.offloading()) {
            let conn = core.table.lend(id).expect("scheduled connections are home");
            let job = Job {
                conn,
                step,
                report: StepReport::default(),
            };
            match pool.dispatch(id.slot(), job) {
                Ok(()) => {
                    core.stats.jobs_dispatched.add(1);
                }
                Err(mut job) => {
                    core.stats.inline_fallbacks.add(1);
                    // Caught as the pool catches it on an IO thread.
                    let panicked = catch(|| run_job(&mut job, core.limits)).is_none();
                    self.complete(Done { job, panicked });
                }
            }
            return;
        }
        let limits = core.limits;
        core.stats.inline_steps.add(1);
        let conn = core
            .table
            .get_mut(id)
            .and_then(|e| e.home_mut())
            .expect("scheduled connections are home");
        // A panic outside the step's own catch (a tracing layer entering the
        // span) closes this connection, as on an IO thread, instead of
        // unwinding the loop.
        let report = match catch(|| conn.run_step(step, limits)) {
            Some(report) => report,
            None => {
                conn.output.discard();
                conn.failed = Some(CloseReason::CodecPanic);
                StepReport::default()
            }
        };
        self.after_step(id, report);
    }

    /// The one close path for an open connection: remove it from the table,
    /// delete it from the poller, then drop it (closing the socket), count,
    /// and give the service its state back in `on_close`. Does nothing if
    /// `id` is not open or is away (it closes when it comes back).
    pub(crate) fn close_now(&mut self, id: ConnId, reason: CloseReason) {
        let core = &mut self.core;
        let Some((mut entry, conn)) = core.table.remove(id) else {
            return;
        };
        for timer in entry.deadlines.take_all().into_iter().flatten() {
            core.timers.cancel(timer);
        }
        for timer in entry.user_timers.drain(..) {
            core.timers.cancel(timer);
        }
        // Codec changes never applied (it closed while away): user code,
        // dropped under the same guard as the codec below.
        let changes = std::mem::take(&mut entry.codec_changes);
        if catch(|| drop(changes)).is_none() {
            tracing::error!(conn = ?id, "dropping a codec change panicked");
        }
        if let Err(e) = core.reactor.deregister(conn.transport.socket()) {
            tracing::warn!(parent: &conn.span, error = %e, "poller delete failed");
        }
        tracing::debug!(parent: &conn.span, ?reason, "connection closed");
        if entry.over_soft_limit {
            core.stats.paused.sub(1);
        }
        if conn.transport.is_handshaking() && !entry.connecting {
            core.stats.handshakes_failed.add(1);
        }
        // Drops the codec and any frames left: user code too. Its socket
        // closes either way (the other fields still drop while unwinding).
        if catch(|| drop(conn)).is_none() {
            tracing::error!(conn = ?id, "dropping the codec or a frame panicked");
        }
        core.stats.open.sub(1);
        core.stats.closed[reason.index()].add(1);
        if let Some(state) = entry.state.take() {
            self.call_service(None, |s, ctx| s.on_close(ctx, id, state, reason));
        } else if entry.info.origin == Origin::Connect && !entry.opened {
            core.stats.connects_failed.add(1);
            core.stats.connect_failed[reason.index()].add(1);
            tracing::debug!(conn = ?id, ?reason, "outbound connection failed");
            self.call_service(None, |s, ctx| s.on_connect_failed(ctx, id, reason));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const READ: Step = Step {
        read: true,
        write: false,
    };
    const WRITE: Step = Step {
        read: false,
        write: true,
    };
    const BOTH: Step = Step {
        read: true,
        write: true,
    };

    #[test]
    fn only_the_first_pass_reads_and_the_last_runs_nothing() {
        for step in [READ, WRITE, BOTH] {
            assert_eq!(Pass::Any.allows(step), Some(step));
            assert_eq!(Pass::NoSteps.allows(step), None);
        }
        assert_eq!(Pass::WritesOnly.allows(READ), None);
        assert_eq!(Pass::WritesOnly.allows(WRITE), Some(WRITE));
        assert_eq!(Pass::WritesOnly.allows(BOTH), Some(WRITE));
    }
}
