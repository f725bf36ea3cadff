//! Admission: accepting sockets, refusing what is over the limits, and
//! opening a connection to the service (at accept for plain TCP, once the
//! handshake is done for TLS).

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use baton_tls::Transport;

use crate::conn::Conn;
use crate::conn_timers::ConnTimer;
use crate::core::{catch, TimerKind};
use crate::table::Entry;
use crate::{listener, CloseReason, ConnId, ConnInfo, Origin, Server, Service};

/// How soon to retry `accept` after it failed (out of descriptors).
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

impl<S: Service> Server<S> {
    pub(crate) fn accept_all(&mut self, index: usize) {
        loop {
            let Some(Some(listener)) = self.listeners.get_mut(index) else {
                return;
            };
            let result = listener::accept(&listener.socket, self.core.config.socket_send_buffer);
            // Success or an empty backlog both show accept works again.
            if result.is_ok() || matches!(&result, Err(e) if e.kind() == io::ErrorKind::WouldBlock)
            {
                if let Some(failures) = listener.failing.take() {
                    tracing::info!(failures, "accept works again");
                }
            }
            match result {
                Ok((stream, peer)) => self.admit(index, stream, peer),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => {}
                Err(e) => {
                    // Out of descriptors or memory: the pending connections
                    // stay in the backlog and their edge will not come again,
                    // so retry on a timer: one per listener however many
                    // edges fail, and one log line per failing spell (every
                    // failure is counted in `accept_errors`).
                    self.core.stats.accept_errors.add(1);
                    match &mut listener.failing {
                        Some(failures) => *failures += 1,
                        None => {
                            tracing::warn!(error = %e, "accept failed; retrying every {ACCEPT_RETRY:?} until it works");
                            listener.failing = Some(1);
                        }
                    }
                    if !listener.retry_armed {
                        listener.retry_armed = true;
                        self.core
                            .set_timer(ACCEPT_RETRY, TimerKind::AcceptRetry(index));
                    }
                    return;
                }
            }
        }
    }

    fn admit(&mut self, index: usize, stream: TcpStream, peer: SocketAddr) {
        let core = &mut self.core;
        if core.table.len() >= core.config.max_connections || core.shutdown_deadline.is_some() {
            core.stats.rejected.add(1);
            tracing::debug!(%peer, "connection rejected: max connections reached");
            return;
        }
        let listener = self.listeners[index].as_ref();
        let Some(local) = listener
            .and_then(|l| l.fixed_local)
            .or_else(|| stream.local_addr().ok())
        else {
            return;
        };
        let tls = listener.and_then(|l| l.tls.clone());
        let is_tls = tls.is_some();
        // Made before the socket is registered: a failure drops the socket,
        // which must not still be in the poller then.
        let transport = match tls {
            None => Transport::plain(stream),
            Some(config) => match Transport::tls_server(stream, config) {
                Ok(transport) => transport,
                Err(e) => {
                    core.stats.accept_errors.add(1);
                    tracing::warn!(error = %e, "could not start a TLS session");
                    return;
                }
            },
        };
        if let Err(e) = core
            .reactor
            .register(transport.socket(), core.table.next_key())
        {
            core.stats.accept_errors.add(1);
            tracing::warn!(error = %e, "could not register a connection");
            return;
        }
        let info = ConnInfo {
            peer,
            local,
            origin: Origin::Listener(index),
            tls: None,
        };
        let now = core.now;
        let id = core.table.insert(|id| {
            let span = tracing::debug_span!("conn", id = id.serial(), %peer);
            let conn = Conn::new(id, transport, None, span);
            Entry::new(id, Box::new(conn), info, now)
        });
        core.stats.accepted.add(1);
        core.stats.open.add(1);
        if let Some(timeout) = core.config.idle_timeout {
            core.set_deadline(id, ConnTimer::Idle, timeout);
        }
        if is_tls {
            let timeout = core.config.handshake_timeout;
            core.set_deadline(id, ConnTimer::Handshake, timeout);
        } else {
            self.open(id);
        }
        self.core.schedule(id);
    }

    /// Opens `id` to the service: makes its codec, then calls `on_open`,
    /// which gives the connection's state. A panic in either closes the
    /// connection (`ServicePanic`) without `on_close`.
    pub(crate) fn open(&mut self, id: ConnId) {
        let Some(entry) = self.core.table.get_mut(id) else {
            return;
        };
        if let Some(conn) = entry.home() {
            if let Some(info) = conn.transport.tls_info() {
                entry.info.tls = Some(info);
            }
        }
        let service = &mut self.service;
        let info = &entry.info;
        let Some(codec) = catch(|| service.codec(info)) else {
            self.core.stats.service_panics.add(1);
            tracing::error!(peer = %entry.info.peer, "Service::codec panicked; closing the connection");
            self.core.abort(id, CloseReason::ServicePanic);
            return;
        };
        let Some(conn) = entry.home_mut() else {
            unreachable!("a connection opens on the loop, after accept or a step");
        };
        conn.install_codec(codec);
        tracing::debug!(parent: &conn.span, "connection opened");
        entry.opened = true;
        // Its handshake is over: the deadline would only wake the loop (and
        // re-arm every 10 ms while the connection is on an IO thread).
        if let Some(timer) = entry.deadlines.take(ConnTimer::Handshake) {
            self.core.timers.cancel(timer);
        }
        let mut state = None;
        self.call_service(Some(id), |s, ctx| state = Some(s.on_open(ctx, id)));
        if let Some(entry) = self.core.table.get_mut(id) {
            entry.state = state;
        }
        self.core.schedule(id);
    }
}
