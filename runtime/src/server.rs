//! The server: the main event loop and what it owns. One iteration waits
//! for readiness, then, in this order: accepts, marks connections ready,
//! takes back connections from the IO threads, serves the mailbox, fires
//! timers and advances every connection scheduled. The pieces live beside
//! it: `accept.rs` (admission), `lifecycle.rs` (a connection's steps and
//! its close), `deliver.rs` (frames to the service), `control.rs` (mailbox
//! and timers), `shutdown.rs`.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_io_threads::{IoPool, LoopSignal, PoolConfig};
use baton_tls::rustls::ServerConfig;

use crate::activation::Activation;
use crate::conn::IoLimits;
use crate::core::{run_job, Core, Job};
use crate::handle::Mailbox;
use crate::reactor::{Reactor, Readiness};
use crate::stats::{Stats, StatsSource};
use crate::table::Table;
use crate::timers::Timers;
use crate::{listener, ConnId, Ctx, LoopHandle, Service, StatsSnapshot};

/// A listening socket, and the TLS configuration for what it accepts.
#[derive(Debug)]
pub(crate) struct Listener {
    pub(crate) socket: TcpListener,
    pub(crate) tls: Option<Arc<ServerConfig>>,
    /// Its connections' own address, when it is bound to one address
    /// (see `listener::fixed_local_addr`); `None`: ask each socket.
    pub(crate) fixed_local: Option<SocketAddr>,
    /// An accept retry timer is pending.
    pub(crate) retry_armed: bool,
    /// `accept` is failing: how many times since it last worked.
    pub(crate) failing: Option<u64>,
}

/// Poller keys at and above this name listeners (`LISTENER_KEY + index`);
/// below it, connection slots. `usize::MAX` is the poller's own.
pub(crate) const LISTENER_KEY: usize = usize::MAX / 2;

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
///     type ConnState = ();
///     type Command = ();
///     fn codec(&mut self, _: &baton_runtime::ConnInfo) -> Nothing { Nothing }
///     fn on_open(&mut self, _: &mut Ctx<'_, Self>, _: ConnId) {}
///     fn on_frame(&mut self, _: &mut Ctx<'_, Self>, _: ConnId, _: &mut (), _: ()) {}
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
/// #     type ConnState = ();
/// #     type Command = ();
/// #     fn codec(&mut self, _: &baton_runtime::ConnInfo) -> Nothing { Nothing }
/// #     fn on_open(&mut self, _: &mut Ctx<'_, Self>, _: ConnId) {}
/// #     fn on_frame(&mut self, _: &mut Ctx<'_, Self>, _: ConnId, _: &mut (), _: ()) {}
/// # }
/// let server = Server::builder().listen("127.0.0.1:0".parse().unwrap()).build(Idle).unwrap();
/// server.run().unwrap();
/// ```
pub struct Server<S: Service> {
    pub(crate) core: Core<S>,
    pub(crate) service: S,
    pub(crate) listeners: Vec<Option<Listener>>,
    /// Events of the current iteration (kept to reuse its allocation).
    events: Vec<Readiness>,
    /// The schedule being worked through (`advance_scheduled`): it and
    /// `Core::scheduled` trade places each pass, so passes allocate nothing.
    pub(crate) batch: Vec<ConnId>,
    /// Connections closed by the shutdown deadline without being flushed.
    pub(crate) closed_at_deadline: usize,
    /// When the last iteration with readiness events ended: this thread's
    /// receive-buffer pool is released a second after it.
    io_seen_at: Instant,
}

/// How long the loop keeps its thread's receive-buffer pool
/// (`baton_tls::recycle`) without IO: long enough to span the pauses of a
/// busy server, short enough that an idle one gives the memory back.
const POOL_IDLE: Duration = Duration::from_secs(1);

impl<S: Service> std::fmt::Debug for Server<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("listeners", &self.local_addrs())
            .finish_non_exhaustive()
    }
}

/// What [`Server::run`] returns once shutdown completes.
#[non_exhaustive]
pub struct RunReport<S> {
    /// The counters at the end.
    pub stats: StatsSnapshot,
    /// Connections that were still open at the shutdown deadline and were
    /// closed without flushing.
    pub closed_at_deadline: usize,
    /// The service, given back with whatever state it kept.
    pub service: S,
}

impl<S> RunReport<S> {
    /// The same report with the service replaced by `f(service)`: for
    /// example `map_service(drop)` to send the report to a thread the
    /// service (which need not be `Send`) cannot go to.
    pub fn map_service<T>(self, f: impl FnOnce(S) -> T) -> RunReport<T> {
        RunReport {
            stats: self.stats,
            closed_at_deadline: self.closed_at_deadline,
            service: f(self.service),
        }
    }
}

impl<S> std::fmt::Debug for RunReport<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunReport")
            .field("stats", &self.stats)
            .field("closed_at_deadline", &self.closed_at_deadline)
            .finish_non_exhaustive()
    }
}

impl<S: Service> Server<S> {
    pub(crate) fn new(
        config: crate::Config,
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
                before_park: baton_tls::release_pooled,
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
                fixed_local: listener::fixed_local_addr(&socket),
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
            table: Table::default(),
            pool,
            signal,
            stats,
            stats_source,
            timers: Timers::new(),
            activation,
            scheduled: Vec::new(),
            shutdown_deadline: None,
            now: Instant::now(),
        };
        Ok(Self {
            core,
            service,
            listeners,
            events: Vec::with_capacity(1024),
            batch: Vec::new(),
            closed_at_deadline: 0,
            io_seen_at: Instant::now(),
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
    /// threads and returns the counters and the service. Errors only if the
    /// poller itself fails.
    pub fn run(mut self) -> io::Result<RunReport<S>> {
        let result = self.run_loop();
        self.finish_shutdown();
        // The thread may go on to other work: it keeps no buffers of ours.
        baton_tls::release_pooled();
        result?;
        Ok(RunReport {
            stats: self.core.stats_source.snapshot(),
            closed_at_deadline: self.closed_at_deadline,
            service: self.service,
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
            self.release_pool_when_idle();
            self.core
                .stats
                .timers
                .set(self.core.timers.pending() as u64);
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

    /// Frees this thread's receive-buffer pool once the loop has had no
    /// readiness event for `POOL_IDLE` (the wait is cut to that while the
    /// pool holds anything: `next_timeout`).
    fn release_pool_when_idle(&mut self) {
        if !self.events.is_empty() {
            self.io_seen_at = self.core.now;
        } else if self.core.now.saturating_duration_since(self.io_seen_at) >= POOL_IDLE {
            baton_tls::release_pooled();
        }
    }

    /// How long the next wait may block: zero while work is pending, else
    /// until the next timer or the pool's release (or forever).
    fn next_timeout(&mut self) -> Option<Duration> {
        if !self.core.scheduled.is_empty() {
            return Some(Duration::ZERO);
        }
        let mut deadline = self.core.timers.next_deadline();
        if baton_tls::pooled_bytes() > 0 {
            let release = self.io_seen_at + POOL_IDLE;
            deadline = Some(deadline.map_or(release, |d| d.min(release)));
        }
        // Once the deadline has passed (and was acted on at the end of the
        // last iteration), only connections on IO threads remain: their
        // completions wake the loop, so it sleeps instead of spinning.
        if let Some(shutdown) = self.core.shutdown_deadline.filter(|&d| self.core.now < d) {
            deadline = Some(deadline.map_or(shutdown, |d| d.min(shutdown)));
        }
        deadline.map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// Runs a service callback that is about no connection's state; a
    /// panic closes `conn` if one is given.
    pub(crate) fn call_service(
        &mut self,
        conn: Option<ConnId>,
        f: impl FnOnce(&mut S, &mut Ctx<'_, S>),
    ) {
        let mut ctx = Ctx {
            core: &mut self.core,
        };
        let service = &mut self.service;
        if catch_unwind(AssertUnwindSafe(|| f(service, &mut ctx))).is_err() {
            self.core.service_panicked(conn);
        }
    }

    /// Runs a service callback about `conn` with its state, taken out of
    /// the table meanwhile (so the callback can hold it and `Ctx` at once).
    /// A panic closes `conn`. `false` if `conn` is not open (or has no
    /// state yet).
    pub(crate) fn call_with_state(
        &mut self,
        conn: ConnId,
        f: impl FnOnce(&mut S, &mut Ctx<'_, S>, &mut S::ConnState),
    ) -> bool {
        let Some(mut state) = self.core.table.get_mut(conn).and_then(|e| e.state.take()) else {
            return false;
        };
        self.call_service(Some(conn), |s, ctx| f(s, ctx, &mut state));
        // Nothing removes an entry during a callback: closes are decided
        // there and carried out by the loop afterwards.
        let entry = self.core.table.get_mut(conn);
        debug_assert!(entry.is_some(), "an entry outlives its callbacks");
        if let Some(entry) = entry {
            entry.state = Some(state);
        }
        true
    }
}
