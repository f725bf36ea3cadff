//! Graceful shutdown: stop accepting, ask every connection to close after
//! flushing, and by the deadline close what is left without flushing; then
//! join the IO threads and close what they give back.

use std::time::Instant;

use crate::{CloseReason, ConnId, Server, Service};

impl<S: Service> Server<S> {
    pub(crate) fn begin_shutdown(&mut self, deadline: Instant) {
        if self.core.shutdown_deadline.is_some() {
            return;
        }
        tracing::info!("shutting down: no longer accepting");
        self.core.shutdown_deadline = Some(deadline);
        for slot in &mut self.listeners {
            if let Some(listener) = slot.take() {
                if let Err(e) = self.core.reactor.deregister(&listener.socket) {
                    tracing::warn!(error = %e, "poller delete of a listener failed");
                }
            }
        }
        for id in self.core.table.ids() {
            let _ = self.core.request_close(id, CloseReason::Shutdown);
        }
    }

    pub(crate) fn past_shutdown_deadline(&self) -> bool {
        self.core
            .shutdown_deadline
            .is_some_and(|deadline| self.core.now >= deadline)
    }

    /// Closes `id` without flushing because the shutdown deadline passed,
    /// if it is home; counts it.
    pub(crate) fn close_at_deadline(&mut self, id: ConnId) {
        if self.core.table.get(id).is_some_and(|e| e.home().is_some()) {
            self.close_now(id, CloseReason::Shutdown);
            self.closed_at_deadline += 1;
        }
    }

    /// During a shutdown: `true` once every connection is closed. Past the
    /// deadline, connections home are closed without flushing, and those on
    /// an IO thread are marked to drop their output when they come back;
    /// `advance` then closes them in the iteration they return.
    pub(crate) fn shutdown_finished(&mut self) -> bool {
        if self.core.shutdown_deadline.is_none() {
            return false;
        }
        if self.past_shutdown_deadline() {
            for id in self.core.table.ids() {
                if self.core.table.get(id).is_some_and(|e| e.home().is_some()) {
                    self.close_at_deadline(id);
                } else {
                    self.core.abort(id, CloseReason::Shutdown);
                }
            }
        }
        self.core.table.is_empty()
    }

    /// After the loop: join the IO threads (no lock is held), close what
    /// came back from them and anything still open, refuse further posts.
    pub(crate) fn finish_shutdown(&mut self) {
        if let Some(pool) = self.core.pool.take() {
            for done in pool.shutdown() {
                let id = done.job.conn.id;
                let reason = if done.panicked {
                    CloseReason::CodecPanic
                } else {
                    CloseReason::Shutdown
                };
                self.complete(done);
                self.close_now(id, reason);
                self.closed_at_deadline += 1;
            }
        }
        for id in self.core.table.ids() {
            self.close_now(id, CloseReason::Shutdown);
            self.closed_at_deadline += 1;
        }
        self.core.mailbox.close();
    }
}
