//! The server: built on the thread that will run it, then `run` until a
//! shutdown completes.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_io_threads::{IoPool, LoopSignal, PoolConfig, Slot};
use baton_tls::Transport;
use slab::Slab;

use crate::activation::Activation;
use crate::conn::{Conn, IoLimits, StepReport};
use crate::conn_timers::{ConnTimer, ConnTimers};
use crate::core::{catch, run_job, Core, Done, Job, TimerKind};
use crate::handle::{Control, Mailbox};
use crate::plan::{self, Next, Step};
use crate::reactor::{Reactor, Readiness};
use crate::stats::{Stats, StatsSource};
use crate::timers::{deadline_after, Timers};
use crate::{
    listener, CloseReason, Codec, Config, ConnId, ConnInfo, Ctx, LoopHandle, Service, StatsSnapshot,
};
use baton_tls::rustls::ServerConfig;

/// A listening socket, and the TLS configuration for what it accepts.
#[derive(Debug)]
struct Listener {
    socket: TcpListener,
    tls: Option<Arc<ServerConfig>>,
    /// An accept retry timer is pending.
    retry_armed: bool,
    /// `accept` is failing: how many times since it last worked.
    failing: Option<u64>,
}

/// Poller keys at and above this name listeners (`LISTENER_KEY + index`);
/// below it, connection slots. `usize::MAX` is the poller's own.
const LISTENER_KEY: usize = usize::MAX / 2;
/// How soon to retry `accept` after it failed (out of descriptors).
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// Collects configuration and listen addresses; [`build`](Builder::build)
/// makes the server on the calling thread.
#[derive(Debug, Clone, Default)]
pub struct Builder {
    config: Config,
    addrs: Vec<(SocketAddr, Option<Arc<ServerConfig>>)>,
}

impl Builder {
    /// Replaces the whole configuration.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Number of IO threads (0: all IO inline on the loop).
    pub fn io_threads(mut self, n: usize) -> Self {
        self.config.io_threads = n;
        self
    }

    /// Adds a plain TCP listen address (IPv4 or IPv6; port 0 picks a free
    /// port).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.addrs.push((addr, None));
        self
    }

    /// Adds a TLS listen address. Build `tls` with
    /// [`TlsSettings::build`](baton_tls::TlsSettings::build); replace it at run
    /// time with [`LoopHandle::reload_tls`].
    pub fn listen_tls(mut self, addr: SocketAddr, tls: Arc<ServerConfig>) -> Self {
        self.addrs.push((addr, Some(tls)));
        self
    }

    /// Binds the listeners, creates the poller and starts the IO threads.
    ///
    /// The returned server is `!Send`: it must run on the thread that built
    /// it, which becomes the loop's thread.
    pub fn build<S: Service>(self, service: S) -> io::Result<Server<S>> {
        Server::new(self.config, &self.addrs, service)
    }
}

/// A server: the main event loop, its listeners, connections, timers, IO
/// threads and the application's [`Service`].
///
/// `!Send` and `!Sync`: it owns the poller, which only the loop's thread may
/// touch. Other threads use a [`LoopHandle`]. This does not compile:
///
/// ```compile_fail
/// use baton_runtime::{Codec, ConnId, Ctx, ProtocolError, RecvBuf, Server, Service};
/// struct Nothing;
/// impl Codec for Nothing {
///     type In = ();
///     type Out = ();
///     fn decode(&mut self, _: &mut RecvBuf) -> Result<Option<()>, ProtocolError> { Ok(None) }
///     fn encode(&mut self, _: (), _: &mut Vec<u8>) {}
///     fn encoded_len(_: &()) -> usize { 0 }
/// }
/// struct Idle;
/// impl Service for Idle {
///     type Codec = Nothing;
///     type Command = ();
///     fn codec(&mut self, _: &baton_runtime::ConnInfo) -> Nothing { Nothing }
///     fn on_frame(&mut self, _: &mut Ctx<'_, Self>, _: ConnId, _: ()) {}
/// }
/// let server = Server::builder().listen("127.0.0.1:0".parse().unwrap()).build(Idle).unwrap();
/// // The poller cannot leave its thread:
/// std::thread::spawn(move || server.run());
/// ```
///
/// The same program, run on the thread that built it, compiles:
///
/// ```no_run
/// # use baton_runtime::{Codec, ConnId, Ctx, ProtocolError, RecvBuf, Server, Service};
/// # struct Nothing;
/// # impl Codec for Nothing {
/// #     type In = ();
/// #     type Out = ();
/// #     fn decode(&mut self, _: &mut RecvBuf) -> Result<Option<()>, ProtocolError> { Ok(None) }
/// #     fn encode(&mut self, _: (), _: &mut Vec<u8>) {}
/// #     fn encoded_len(_: &()) -> usize { 0 }
/// # }
/// # struct Idle;
/// # impl Service for Idle {
/// #     type Codec = Nothing;
/// #     type Command = ();
/// #     fn codec(&mut self, _: &baton_runtime::ConnInfo) -> Nothing { Nothing }
/// #     fn on_frame(&mut self, _: &mut Ctx<'_, Self>, _: ConnId, _: ()) {}
/// # }
/// let server = Server::builder().listen("127.0.0.1:0".parse().unwrap()).build(Idle).unwrap();
/// server.run().unwrap();
/// ```
pub struct Server<S: Service> {
    core: Core<S>,
    service: S,
    listeners: Vec<Option<Listener>>,
    /// Events of the current iteration (kept to reuse its allocation).
    events: Vec<Readiness>,
    /// Connections closed by the shutdown deadline without being flushed.
    closed_at_deadline: usize,
}

impl<S: Service> std::fmt::Debug for Server<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("listeners", &self.local_addrs())
            .finish_non_exhaustive()
    }
}

/// What [`Server::run`] returns once shutdown completes.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The counters at the end.
    pub stats: StatsSnapshot,
    /// Connections that were still open at the shutdown deadline and were
    /// closed without flushing.
    pub closed_at_deadline: usize,
}

impl Server<()> {
    /// Starts configuring a server.
    pub fn builder() -> Builder {
        Builder::default()
    }
}

impl Service for () {
    type Codec = NoCodec;
    type Command = ();
    fn codec(&mut self, _: &ConnInfo) -> NoCodec {
        NoCodec
    }
    fn on_frame(&mut self, _: &mut Ctx<'_, Self>, _: ConnId, _: ()) {}
}

/// The codec of the unit service `()`, which exists only so that
/// `Server::builder()` needs no type annotation. Decodes nothing.
#[derive(Debug)]
pub struct NoCodec;

impl Codec for NoCodec {
    type In = ();
    type Out = ();
    fn decode(&mut self, _: &mut baton_tls::RecvBuf) -> Result<Option<()>, crate::ProtocolError> {
        Ok(None)
    }
    fn encode(&mut self, _: (), _: &mut Vec<u8>) {}
    fn encoded_len(_: &()) -> usize {
        0
    }
}

impl<S: Service> Server<S> {
    fn new(
        config: Config,
        addrs: &[(SocketAddr, Option<Arc<ServerConfig>>)],
        service: S,
    ) -> io::Result<Self> {
        let stats = Arc::new(Stats::new());
        let reactor = Reactor::new(Arc::clone(&stats))?;
        let signal = Arc::new(LoopSignal::new(reactor.waker()));
        let limits = IoLimits {
            read_budget: config.read_budget.max(1),
            max_frame_size: config.max_frame_size,
        };
        let pool = if config.io_threads > 0 {
            let pool_config = PoolConfig {
                threads: config.io_threads,
                queue_capacity: config.io_queue_capacity,
                spin: config.io_spin,
                name: "baton-io".into(),
            };
            Some(IoPool::new(
                &pool_config,
                Arc::clone(&signal),
                move |_, job: &mut Job<S::Codec>| run_job(job, limits),
            )?)
        } else {
            None
        };
        let stats_source = StatsSource {
            stats: Arc::clone(&stats),
            signal: Arc::clone(&signal),
            pool: pool.as_ref().map(IoPool::stats_reader),
        };
        let mut listeners = Vec::with_capacity(addrs.len());
        for (index, (addr, tls)) in addrs.iter().enumerate() {
            let socket = listener::bind(*addr, config.backlog)?;
            reactor.register(&socket, LISTENER_KEY + index)?;
            listeners.push(Some(Listener {
                socket,
                tls: tls.clone(),
                retry_armed: false,
                failing: None,
            }));
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let activation = Activation::new(config.io_activation, cores, Instant::now(), 0);
        stats
            .io_offloading
            .add(u64::from(pool.is_some() && activation.offloading()));
        let core = Core {
            mailbox: Arc::new(Mailbox::new(Arc::clone(&signal))),
            config,
            limits,
            reactor,
            table: Slab::new(),
            next_generation: 0,
            pool,
            signal,
            stats,
            stats_source,
            timers: Timers::new(),
            activation,
            conn_timers: ConnTimers::default(),
            scheduled: Vec::new(),
            shutdown_deadline: None,
            now: Instant::now(),
        };
        Ok(Self {
            core,
            service,
            listeners,
            events: Vec::with_capacity(1024),
            closed_at_deadline: 0,
        })
    }

    /// The addresses the listeners are bound to, in the order added.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .flatten()
            .filter_map(|l| l.socket.local_addr().ok())
            .collect()
    }

    /// A handle for other threads: post commands, shut down, read counters.
    pub fn handle(&self) -> LoopHandle<S::Command> {
        LoopHandle {
            mailbox: Arc::clone(&self.core.mailbox),
            stats: self.core.stats_source.clone(),
        }
    }

    /// Runs the loop until a graceful shutdown completes, then joins the IO
    /// threads and returns. Errors only if the poller itself fails.
    pub fn run(mut self) -> io::Result<RunReport> {
        let result = self.run_loop();
        self.finish_shutdown();
        result?;
        Ok(RunReport {
            stats: self.core.stats_source.snapshot(),
            closed_at_deadline: self.closed_at_deadline,
        })
    }

    fn run_loop(&mut self) -> io::Result<()> {
        self.core.now = Instant::now();
        self.call_service(None, |s, ctx| s.on_start(ctx));
        loop {
            let timeout = self.next_timeout();
            let block = timeout != Some(Duration::ZERO) && self.core.signal.try_sleep();
            let adaptive = self.core.pool.is_some() && self.core.activation.adaptive();
            let wait_started = (adaptive && block).then(Instant::now);
            self.core.reactor.wait(
                if block { timeout } else { Some(Duration::ZERO) },
                &mut self.events,
            )?;
            self.core.signal.begin_drain();
            self.core.now = Instant::now();
            self.core.stats.loop_iterations.add(1);
            if adaptive {
                self.update_activation(wait_started);
            }

            for i in 0..self.events.len() {
                let event = self.events[i];
                if event.key >= LISTENER_KEY {
                    self.accept_all(event.key - LISTENER_KEY);
                } else {
                    self.mark_ready(event);
                }
            }
            self.drain_completions();
            self.drain_mailbox();
            self.fire_timers();
            self.advance_scheduled();
            if self.shutdown_finished() {
                return Ok(());
            }
        }
    }

    /// Feeds the activation decision with this iteration's wait; counts a
    /// change of mode.
    fn update_activation(&mut self, wait_started: Option<Instant>) {
        let core = &mut self.core;
        let idle = wait_started.map_or(Duration::ZERO, |t| core.now.saturating_duration_since(t));
        let was = core.activation.offloading();
        let trials = core.activation.trials();
        let offloading = core
            .activation
            .tick(core.now, idle, core.stats.frames_in.get());
        if offloading != was {
            core.stats.io_offloading.add(u64::from(offloading));
            core.stats.io_offloading.sub(u64::from(was));
            tracing::debug!(
                offloading,
                "IO threads {}",
                if offloading { "on" } else { "off" }
            );
        }
        core.stats.io_trials.add(core.activation.trials() - trials);
    }

    /// How long the next wait may block: zero while work is pending, else
    /// until the next timer (or forever).
    fn next_timeout(&mut self) -> Option<Duration> {
        if !self.core.scheduled.is_empty() {
            return Some(Duration::ZERO);
        }
        let mut deadline = self.core.timers.next_deadline();
        // Once the deadline has passed (and was acted on at the end of the
        // last iteration), only connections on IO threads remain: their
        // completions wake the loop, so it sleeps instead of spinning.
        if let Some(shutdown) = self.core.shutdown_deadline.filter(|&d| self.core.now < d) {
            deadline = Some(deadline.map_or(shutdown, |d| d.min(shutdown)));
        }
        deadline.map(|d| d.saturating_duration_since(Instant::now()))
    }

    fn ctx(&mut self) -> (&mut S, Ctx<'_, S>) {
        (
            &mut self.service,
            Ctx {
                core: &mut self.core,
            },
        )
    }

    /// Runs a service callback about `conn`; a panic closes that connection.
    fn call_service(&mut self, conn: Option<ConnId>, f: impl FnOnce(&mut S, &mut Ctx<'_, S>)) {
        let (service, mut ctx) = self.ctx();
        if catch_unwind(AssertUnwindSafe(|| f(service, &mut ctx))).is_err() {
            self.core.stats.service_panics.add(1);
            tracing::error!(?conn, "service callback panicked");
            if let Some(conn) = conn {
                self.core.abort(conn, CloseReason::ServicePanic);
            }
        }
    }

    fn accept_all(&mut self, index: usize) {
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

    fn admit(&mut self, index: usize, stream: std::net::TcpStream, peer: SocketAddr) {
        let core = &mut self.core;
        if core.table.len() >= core.config.max_connections || core.shutdown_deadline.is_some() {
            core.stats.rejected.add(1);
            tracing::debug!(%peer, "connection rejected: max connections reached");
            return;
        }
        let local = match stream.local_addr() {
            Ok(local) => local,
            Err(_) => return,
        };
        let tls = self.listeners[index].as_ref().and_then(|l| l.tls.clone());
        let info = ConnInfo {
            peer,
            local,
            listener: index,
            tls: tls.is_some(),
        };
        // Made before the socket is registered, so a panic here leaves
        // nothing to undo: the socket closes as `stream` drops.
        let service = &mut self.service;
        let Some(codec) = catch(|| service.codec(&info)) else {
            core.stats.accepted.add(1);
            core.stats.service_panics.add(1);
            core.stats.closed[CloseReason::ServicePanic.index()].add(1);
            tracing::error!(%peer, "Service::codec panicked; connection closed");
            return;
        };
        // Also made before the socket is registered: a failure drops the
        // socket, which must not still be in the poller then.
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
        let entry = core.table.vacant_entry();
        if let Err(e) = core.reactor.register(transport.socket(), entry.key()) {
            core.stats.accept_errors.add(1);
            tracing::warn!(error = %e, "could not register a connection");
            return;
        }
        core.next_generation += 1;
        let id = ConnId::new(entry.key(), core.next_generation);
        let is_tls = info.tls;
        let conn = Conn::new(id, info, transport, codec, core.now);
        tracing::debug!(parent: &conn.span, "connection opened");
        entry.insert(Slot::Home(Box::new(conn)));
        core.stats.accepted.add(1);
        core.stats.open.add(1);
        if let Some(timeout) = core.config.idle_timeout {
            core.set_conn_timer(id, ConnTimer::Idle, timeout);
        }
        if is_tls {
            let timeout = core.config.handshake_timeout;
            core.set_conn_timer(id, ConnTimer::Handshake, timeout);
        }
        core.schedule(id);
        self.call_service(Some(id), |s, ctx| s.on_open(ctx, id));
    }

    fn mark_ready(&mut self, event: Readiness) {
        let core = &mut self.core;
        match core.table.get_mut(event.key) {
            Some(Slot::Home(conn)) => {
                conn.readable |= event.readable;
                conn.writable |= event.writable;
                conn.read_to_would_block |= event.read_to_would_block;
                let id = conn.id;
                core.schedule(id);
            }
            Some(Slot::Away(away)) => {
                away.readable |= event.readable;
                away.writable |= event.writable;
                away.read_to_would_block |= event.read_to_would_block;
            }
            None => {}
        }
    }

    fn drain_completions(&mut self) {
        while let Some(done) = self.core.pool.as_ref().and_then(IoPool::pop_completion) {
            self.complete(done);
        }
    }

    /// A connection came home: join what happened while it was away, then
    /// act on what its step did. A step that panicked outside `run_step`'s
    /// own `catch_unwind` (a tracing subscriber, say) closes the connection.
    fn complete(&mut self, done: Done<S::Codec>) {
        let Done { job, panicked } = done;
        let Job {
            mut conn, report, ..
        } = job;
        let id = conn.id;
        let Some(slot) = self.core.table.get_mut(id.slot()) else {
            unreachable!("an away slot is never removed");
        };
        match slot.away_mut() {
            Some(away) if away.generation == id.generation => {
                for (frame, len) in away.pending.drain(..) {
                    conn.queue(frame, len);
                }
                conn.readable |= away.readable;
                conn.writable |= away.writable;
                conn.read_to_would_block |= away.read_to_would_block;
                if let Some(reason) = away.close.take() {
                    conn.closing.get_or_insert(reason);
                }
                if let Some(reason) = away.abort.take() {
                    conn.discard_output();
                    conn.failed.get_or_insert(reason);
                }
            }
            _ => unreachable!("a completion always returns to its own away slot"),
        }
        if panicked {
            // The step may have stopped anywhere: nothing it left is trusted.
            tracing::warn!(parent: &conn.span, "IO step panicked on an IO thread; closing the connection");
            conn.discard_output();
            conn.failed = Some(CloseReason::CodecPanic);
        }
        if let Err((_, conn)) = slot.restore(conn) {
            unreachable!("slot {} was away", conn.id.slot());
        }
        self.after_step(id, report);
    }

    /// Counts, delivers decoded frames to the service, and schedules the
    /// connection for its next step.
    fn after_step(&mut self, id: ConnId, report: StepReport) {
        let now = self.core.now;
        let Some((conn, stats)) = self.core.home_and_stats(id) else {
            return;
        };
        stats.bytes_in.add(report.bytes_in);
        stats.bytes_out.add(report.bytes_out);
        if report.bytes_in > 0 {
            conn.last_active = now;
        }
        if conn.tls.is_none() && !conn.transport.is_handshaking() {
            if let Some(info) = conn.transport.tls_info() {
                tracing::debug!(
                    parent: &conn.span,
                    version = ?info.version,
                    suite = ?info.suite,
                    resumed = info.resumed,
                    "TLS handshake complete"
                );
                stats.handshake_completed(&info);
                conn.tls = Some(info);
            }
        }
        self.deliver_frames(id);
        self.core.schedule(id);
    }

    /// Hands decoded frames to the service in order, while the connection's
    /// output is under the soft limit: backpressure per frame, not per read,
    /// so a client that pipelines requests and never reads holds about the
    /// soft limit plus one reply, not a whole read's worth of replies. The
    /// rest wait on the connection (reading is paused meanwhile) and are
    /// delivered after a write step brings the output back under the limit.
    /// A decode error is acted on once every frame before it is delivered.
    fn deliver_frames(&mut self, id: ConnId) {
        let soft = self.core.config.output_soft_limit;
        let mut delivered = 0;
        while let Some(conn) = self.core.home_mut(id) {
            if conn.closing.is_some() || conn.failed.is_some() {
                // Closed by the service (QUIT) or failed: later frames are
                // dropped, as Redis does.
                conn.frames.clear();
                break;
            }
            if conn.output_bytes() > soft {
                // Paused: the decode error (if any) waits for its frames.
                self.core.stats.frames_in.add(delivered);
                return;
            }
            let Some(frame) = conn.frames.pop_front() else {
                break;
            };
            delivered += 1;
            self.call_service(Some(id), |s, ctx| s.on_frame(ctx, id, frame));
        }
        // One counter update per batch, not per frame.
        self.core.stats.frames_in.add(delivered);
        if let Some(error) = self.core.home_mut(id).and_then(|c| c.decode_error.take()) {
            self.protocol_error(id, error);
        }
    }

    fn protocol_error(&mut self, id: ConnId, error: crate::ProtocolError) {
        let Some(conn) = self.core.home_mut(id) else {
            return;
        };
        tracing::info!(parent: &conn.span, %error, "protocol error; closing");
        if conn.closing.is_none() && conn.failed.is_none() {
            let codec = &mut conn.codec;
            match catch(|| codec.error_frame(&error)) {
                Some(Some(frame)) => {
                    let _ = self.core.send(id, frame);
                }
                Some(None) => {}
                None => {
                    tracing::error!(parent: &conn.span, "codec panicked in error_frame; closing");
                    self.core.abort(id, CloseReason::CodecPanic);
                    return;
                }
            }
        }
        let _ = self
            .core
            .request_close(id, CloseReason::Protocol(error.kind));
    }

    fn drain_mailbox(&mut self) {
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

    fn fire_timers(&mut self) {
        let now = self.core.now;
        let fence = self.core.timers.last_set();
        while let Some((timer, kind)) = self.core.timers.pop_due(now, fence) {
            match kind {
                TimerKind::User(token) => {
                    self.call_service(None, |s, ctx| s.on_timer(ctx, timer, token))
                }
                TimerKind::Idle(id) => self.check_idle(id),
                TimerKind::CloseFlush(id) => {
                    if self.core.is_live(id) {
                        self.core.abort(id, CloseReason::FlushTimeout);
                    }
                }
                TimerKind::AcceptRetry(index) => {
                    if let Some(Some(listener)) = self.listeners.get_mut(index) {
                        listener.retry_armed = false;
                    }
                    self.accept_all(index);
                }
                TimerKind::Handshake(id) => self.check_handshake(id),
            }
        }
    }

    fn check_handshake(&mut self, id: ConnId) {
        let next = match self.core.table.get(id.slot()) {
            Some(Slot::Home(conn)) if conn.id == id => {
                if conn.transport.is_handshaking() {
                    tracing::info!(parent: &conn.span, "TLS handshake timed out");
                    self.core.abort(id, CloseReason::HandshakeTimeout);
                }
                return;
            }
            // On an IO thread right now: look again as soon as it is back.
            Some(Slot::Away(away)) if away.generation == id.generation => Duration::from_millis(10),
            _ => return,
        };
        self.core.set_conn_timer(id, ConnTimer::Handshake, next);
    }

    fn check_idle(&mut self, id: ConnId) {
        let Some(timeout) = self.core.config.idle_timeout else {
            return;
        };
        let now = self.core.now;
        let next = match self.core.table.get(id.slot()) {
            Some(Slot::Home(conn)) if conn.id == id => {
                let idle_until = if conn.idle_exempt {
                    deadline_after(now, timeout)
                } else {
                    deadline_after(conn.last_active, timeout)
                };
                if idle_until <= now {
                    self.core.abort(id, CloseReason::IdleTimeout);
                    return;
                }
                idle_until - now
            }
            // On an IO thread right now, so not idle; look again soon.
            Some(Slot::Away(away)) if away.generation == id.generation => timeout / 4,
            _ => return,
        };
        self.core.set_conn_timer(id, ConnTimer::Idle, next);
    }

    /// Looks at every connection scheduled so far. Connections scheduled
    /// while doing so wait for the next iteration, so one busy connection
    /// cannot starve the poller.
    fn advance_scheduled(&mut self) {
        let batch = std::mem::take(&mut self.core.scheduled);
        for &id in &batch {
            self.advance(id);
        }
        let mut batch = batch;
        batch.clear();
        if self.core.scheduled.is_empty() {
            self.core.scheduled = batch;
        }
    }

    fn advance(&mut self, id: ConnId) {
        if self.past_shutdown_deadline() {
            // No step after the deadline: a connection that keeps becoming
            // writable would otherwise be sent back to an IO thread every
            // iteration and outlive the grace.
            self.close_at_deadline(id);
            return;
        }
        let soft = self.core.config.output_soft_limit;
        let flush_timeout = self.core.config.close_flush_timeout;
        let Some((conn, stats)) = self.core.home_and_stats(id) else {
            return;
        };
        conn.scheduled = false;
        let facts = conn.facts(soft);
        if facts.output_over_soft_limit != conn.paused {
            conn.paused = facts.output_over_soft_limit;
            if conn.paused {
                stats.backpressure_pauses.add(1);
                stats.paused.add(1);
            } else {
                stats.paused.sub(1);
            }
        }
        let next = plan::next(facts);
        if matches!(next, Next::Io(step) if step.write) && conn.output_bytes() == 0 {
            stats.tls_write_steps.add(1);
        }
        if next == Next::Close
            && conn.failed.is_none()
            && conn.tls.is_some()
            && !conn.close_notify_sent
        {
            // A graceful TLS close says goodbye first: queue close_notify,
            // let it flush (bounded by the close flush timeout), then close.
            conn.close_notify_sent = true;
            if conn.transport.begin_close() {
                self.core.arm_close_flush(id, flush_timeout);
                self.core.schedule(id);
                return;
            }
        }
        match next {
            Next::Wait => {}
            Next::Close => {
                let reason = conn
                    .failed
                    .clone()
                    .or_else(|| conn.closing.clone())
                    .unwrap_or(CloseReason::PeerClosed);
                self.close_now(id, reason);
            }
            Next::Io(step) => self.run_step(id, step),
        }
    }

    /// Hands the step to an IO thread, or runs it inline when there are none,
    /// they are not in use now (see [`IoActivation`](crate::IoActivation)),
    /// or that thread's queue is full.
    fn run_step(&mut self, id: ConnId, step: Step) {
        let core = &mut self.core;
        if let Some(pool) = core.pool.as_ref().filter(|_| core.activation.offloading()) {
            let slot = core
                .table
                .get_mut(id.slot())
                .expect("scheduled connections are live");
            let conn = slot.take().expect("only home connections are scheduled");
            let base_output = conn.output_bytes();
            let away = slot.away_mut().expect("just taken");
            away.generation = id.generation;
            away.base_output = base_output;
            let job = Job {
                conn,
                step,
                report: StepReport::default(),
            };
            match pool.dispatch(id.slot(), job) {
                Ok(()) => {
                    core.stats.jobs_dispatched.add(1);
                    return;
                }
                Err(mut job) => {
                    core.stats.inline_fallbacks.add(1);
                    // Caught as the pool catches it on an IO thread.
                    let panicked = catch(|| run_job(&mut job, core.limits)).is_none();
                    self.complete(Done { job, panicked });
                    return;
                }
            }
        }
        let limits = core.limits;
        core.stats.inline_steps.add(1);
        let conn = core.home_mut(id).expect("scheduled connections are live");
        // A panic outside the step's own catch (a tracing layer entering the
        // span) closes this connection, as on an IO thread, instead of
        // unwinding the loop.
        let report = match catch(|| conn.run_step(step, limits)) {
            Some(report) => report,
            None => {
                conn.failed = Some(CloseReason::CodecPanic);
                StepReport::default()
            }
        };
        self.after_step(id, report);
    }

    /// The one close path: remove from the table, delete from the poller,
    /// then drop (closing the socket), count, and tell the service.
    fn close_now(&mut self, id: ConnId, reason: CloseReason) {
        let core = &mut self.core;
        match core.table.get(id.slot()) {
            Some(Slot::Home(conn)) if conn.id == id => {}
            _ => return,
        }
        let Slot::Home(conn) = core.table.remove(id.slot()) else {
            unreachable!("checked above")
        };
        core.cancel_conn_timers(id.slot());
        if let Err(e) = core.reactor.deregister(conn.transport.socket()) {
            tracing::warn!(parent: &conn.span, error = %e, "poller delete failed");
        }
        tracing::debug!(parent: &conn.span, ?reason, "connection closed");
        if conn.paused {
            core.stats.paused.sub(1);
        }
        if conn.transport.is_handshaking() {
            core.stats.handshakes_failed.add(1);
        }
        // Drops the codec and any frames left: user code too. Its socket
        // closes either way (the other fields still drop while unwinding).
        if catch(|| drop(conn)).is_none() {
            tracing::error!(conn = ?id, "dropping the codec or a frame panicked");
        }
        core.stats.open.sub(1);
        core.stats.closed[reason.index()].add(1);
        self.call_service(None, |s, ctx| s.on_close(ctx, id, reason));
    }

    fn begin_shutdown(&mut self, deadline: Instant) {
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
        let ids: Vec<ConnId> = self.live_ids();
        for id in ids {
            let _ = self.core.request_close(id, CloseReason::Shutdown);
        }
    }

    fn live_ids(&self) -> Vec<ConnId> {
        self.core
            .table
            .iter()
            .map(|(slot, entry)| match entry {
                Slot::Home(conn) => conn.id,
                Slot::Away(away) => ConnId::new(slot, away.generation),
            })
            .collect()
    }

    fn past_shutdown_deadline(&self) -> bool {
        self.core
            .shutdown_deadline
            .is_some_and(|deadline| self.core.now >= deadline)
    }

    /// Closes `id` without flushing because the shutdown deadline passed,
    /// if it is home; counts it.
    fn close_at_deadline(&mut self, id: ConnId) {
        if self.core.home_mut(id).is_some() {
            self.close_now(id, CloseReason::Shutdown);
            self.closed_at_deadline += 1;
        }
    }

    /// During a shutdown: `true` once every connection is closed. Past the
    /// deadline, connections home are closed without flushing, and those on
    /// an IO thread are marked to drop their output when they come back;
    /// `advance` then closes them in the iteration they return.
    fn shutdown_finished(&mut self) -> bool {
        if self.core.shutdown_deadline.is_none() {
            return false;
        }
        if self.past_shutdown_deadline() {
            for id in self.live_ids() {
                match self.core.table.get(id.slot()) {
                    Some(Slot::Home(_)) => self.close_at_deadline(id),
                    _ => self.core.abort(id, CloseReason::Shutdown),
                }
            }
        }
        self.core.table.is_empty()
    }

    /// After the loop: join the IO threads (no lock is held), close what
    /// came back from them and anything still open, refuse further posts.
    fn finish_shutdown(&mut self) {
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
        for id in self.live_ids() {
            self.close_now(id, CloseReason::Shutdown);
            self.closed_at_deadline += 1;
        }
        self.core.mailbox.close();
    }
}
