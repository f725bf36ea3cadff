//! What reaches the loop besides IO: commands posted by other threads
//! (the mailbox), and timers, the service's and each connection's own
//! deadlines (idle, handshake, close flush).

use std::sync::Arc;
use std::time::Duration;

use crate::conn_timers::ConnTimer;
use crate::core::TimerKind;
use crate::handle::Control;
use crate::timers::deadline_after;
use crate::{CloseReason, ConnId, Server, Service};

impl<S: Service> Server<S> {
    pub(crate) fn drain_mailbox(&mut self) {
        while let Some(control) = self.core.mailbox.pop() {
            match control {
                Control::User(command) => {
                    self.call_service(None, |s, ctx| s.on_command(ctx, command))
                }
                Control::Shutdown { deadline } => self.begin_shutdown(deadline),
                Control::ReloadTls(config) => {
                    let mut reloaded = 0;
                    for listener in self.listeners.iter_mut().flatten() {
                        if let Some(tls) = &mut listener.tls {
                            *tls = Arc::clone(&config);
                            reloaded += 1;
                        }
                    }
                    self.core.stats.tls_reloads.add(1);
                    tracing::info!(listeners = reloaded, "TLS configuration reloaded");
                }
            }
        }
    }

    pub(crate) fn fire_timers(&mut self) {
        let now = self.core.now;
        let fence = self.core.timers.last_set();
        while let Some((timer, kind)) = self.core.timers.pop_due(now, fence) {
            match kind {
                TimerKind::User(token) => {
                    self.call_service(None, |s, ctx| s.on_timer(ctx, timer, token))
                }
                TimerKind::UserConn(id, token) => {
                    if let Some(entry) = self.core.table.get_mut(id) {
                        entry.user_timers.retain(|&t| t != timer);
                        self.call_with_state(id, |s, ctx, state| {
                            s.on_conn_timer(ctx, id, state, token)
                        });
                    }
                }
                TimerKind::Conn(id, ConnTimer::Idle) => self.check_idle(id),
                TimerKind::Conn(id, ConnTimer::Handshake) => self.check_handshake(id),
                TimerKind::Conn(id, ConnTimer::CloseFlush) => {
                    self.core.abort(id, CloseReason::FlushTimeout)
                }
                TimerKind::Conn(id, ConnTimer::Connect) => {
                    if self.core.table.get(id).is_some_and(|e| e.connecting) {
                        tracing::debug!(conn = ?id, "connect timed out");
                        self.core.abort(id, CloseReason::ConnectTimeout);
                    }
                }
                TimerKind::AcceptRetry(index) => {
                    if let Some(Some(listener)) = self.listeners.get_mut(index) {
                        listener.retry_armed = false;
                    }
                    self.accept_all(index);
                }
            }
        }
    }

    fn check_handshake(&mut self, id: ConnId) {
        let Some(entry) = self.core.table.get(id) else {
            return;
        };
        match entry.home() {
            Some(conn) => {
                if conn.transport.is_handshaking() {
                    tracing::info!(parent: &conn.span, "TLS handshake timed out");
                    self.core.abort(id, CloseReason::HandshakeTimeout);
                }
            }
            // On an IO thread right now: look again as soon as it is back.
            None => self
                .core
                .set_deadline(id, ConnTimer::Handshake, Duration::from_millis(10)),
        }
    }

    fn check_idle(&mut self, id: ConnId) {
        let Some(timeout) = self.core.config.idle_timeout else {
            return;
        };
        let now = self.core.now;
        let Some(entry) = self.core.table.get(id) else {
            return;
        };
        let next = if entry.home().is_none() {
            // On an IO thread right now, so not idle; look again soon.
            timeout / 4
        } else {
            let idle_until = if entry.idle_exempt {
                deadline_after(now, timeout)
            } else {
                deadline_after(entry.last_active, timeout)
            };
            if idle_until <= now {
                self.core.abort(id, CloseReason::IdleTimeout);
                return;
            }
            idle_until - now
        };
        self.core.set_deadline(id, ConnTimer::Idle, next);
    }
}
