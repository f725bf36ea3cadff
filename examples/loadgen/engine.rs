//! Closed-loop load: every connection sends a batch of requests, waits for
//! every reply, and sends the next. Connections are split across threads;
//! each thread runs its own edge-triggered poller, so the generator scales
//! with its threads and spends one `epoll_wait` per burst of replies.

use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use baton::tls::rustls::pki_types::ServerName;
use baton::tls::rustls::ClientConfig;
use baton::tls::{IoState, Transport};
use baton::RecvBuf;
use hdrhistogram::Histogram;
use polling::{Event, Events, PollMode, Poller};

use crate::replies::{next_reply, Reply};
use crate::requests::{Batch, Workload};

/// Where to send the load.
#[derive(Debug, Clone)]
pub struct Target {
    /// The server's address.
    pub addr: SocketAddr,
    /// TLS client configuration and server name; `None` for plain TCP.
    pub tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
}

/// What load to put on the target.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Connections, kept open for the whole run (unless `reconnect`).
    pub connections: usize,
    /// Requests per batch: the next batch goes out once all replies are in.
    pub pipeline: usize,
    /// The requests.
    pub workload: Workload,
    /// Echo message size, or SET value size (GET checks replies against it).
    pub size: usize,
    /// Keys are drawn from `0..keyspace`.
    pub keyspace: u64,
    /// Load before measuring starts (connections warm, handshakes done).
    pub warmup: Duration,
    /// How long to measure (the run ends earlier if `requests` is reached).
    pub duration: Duration,
    /// Stop after this many measured requests.
    pub requests: Option<u64>,
    /// Generator threads; connections are spread over them.
    pub threads: usize,
    /// new connection (and TLS handshake) for every batch: measures
    /// connection setup rather than requests.
    pub reconnect: bool,
    /// Keys count up from 0 instead of being drawn at random (with one
    /// connection and `requests` = `keyspace`: every key set once).
    pub sequential_keys: bool,
}

/// Counters the threads update while they run, for a progress display.
#[derive(Debug, Default)]
pub struct Live {
    /// Requests answered since measuring began.
    pub done: AtomicU64,
    /// Error replies and failed connections since measuring began.
    pub errors: AtomicU64,
    /// Set once the warm-up is over.
    pub measuring: AtomicBool,
    /// Set to end the run early (Ctrl-C, or the request count reached).
    pub stop: AtomicBool,
}

/// What a run measured.
#[derive(Debug)]
pub struct Report {
    /// Requests answered while measuring (for `reconnect`: connections that
    /// completed a handshake and one request).
    pub requests: u64,
    /// Error replies (`-ERR ...`) and replies of the wrong shape.
    pub errors: u64,
    /// GET replies that were nil (the key was not set).
    pub misses: u64,
    /// Connections that failed (refused, reset, closed by the server).
    pub failed_connections: u64,
    /// The measured time.
    pub elapsed: Duration,
    /// Latency of each request, from its batch's send to its reply, in ns.
    pub latency: Histogram<u64>,
    /// The first error seen, as text.
    pub first_error: Option<String>,
}

impl Report {
    /// Requests per second.
    pub fn throughput(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// A latency quantile in microseconds.
    pub fn latency_us(&self, quantile: f64) -> f64 {
        self.latency.value_at_quantile(quantile) as f64 / 1000.0
    }
}

/// Runs `plan` against `target`. Returns an error only if the load could not
/// start (no connection could be opened); failures during the run are
/// counted in the report.
pub fn run(target: &Target, plan: &Plan, live: &Live) -> Result<Report, String> {
    let threads = plan.threads.clamp(1, plan.connections.max(1));
    let barrier = Barrier::new(threads);
    let parts: Vec<Result<Report, String>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                // Spread connections evenly: thread t gets every t-th one.
                let conns = (plan.connections + threads - 1 - t) / threads;
                let barrier = &barrier;
                std::thread::Builder::new()
                    .name(format!("loadgen-{t}"))
                    .spawn_scoped(s, move || worker(target, plan, t, conns, live, barrier))
                    .expect("spawn a load generator thread")
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a load generator thread panicked"))
            .collect()
    });
    let mut parts = parts.into_iter();
    let mut total = parts.next().expect("at least one thread")?;
    for part in parts {
        total.merge(part?);
    }
    Ok(total)
}

/// Sets every key of the key space once, over one connection, so a GET run
/// finds them all.
pub fn prefill(target: &Target, plan: &Plan) -> Result<(), String> {
    let fill = Plan {
        connections: 1,
        pipeline: plan.keyspace.clamp(1, 1000) as usize,
        workload: Workload::Set,
        warmup: Duration::ZERO,
        duration: Duration::from_secs(600),
        requests: Some(plan.keyspace),
        threads: 1,
        reconnect: false,
        sequential_keys: true,
        ..plan.clone()
    };
    let report = run(target, &fill, &Live::default())?;
    if report.requests < plan.keyspace || report.errors > 0 || report.failed_connections > 0 {
        return Err(format!(
            "prefill set {} of {} keys ({} errors): {}",
            report.requests,
            plan.keyspace,
            report.errors,
            report.first_error.unwrap_or_default()
        ));
    }
    Ok(())
}

impl Report {
    fn merge(&mut self, other: Report) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.misses += other.misses;
        self.failed_connections += other.failed_connections;
        self.elapsed = self.elapsed.max(other.elapsed);
        self.latency
            .add(&other.latency)
            .expect("same histogram bounds");
        self.first_error = self.first_error.take().or(other.first_error);
    }
}

const READ_BUDGET: usize = 1 << 18;

fn worker(
    target: &Target,
    plan: &Plan,
    thread: usize,
    conns: usize,
    live: &Live,
    barrier: &Barrier,
) -> Result<Report, String> {
    let poller = Poller::new().map_err(|e| format!("poller: {e}"))?;
    let mut report = Report {
        requests: 0,
        errors: 0,
        misses: 0,
        failed_connections: 0,
        elapsed: Duration::ZERO,
        latency: Histogram::new_with_bounds(1, 600_000_000_000, 3).expect("valid bounds"),
        first_error: None,
    };
    let connected = (0..conns)
        .map(|i| Conn::open(target, plan, (thread * 1_000_003 + i) as u64))
        .collect::<Result<Vec<_>, _>>();
    // Every thread passes the barrier, even one that failed to connect, so
    // none waits forever.
    barrier.wait();
    let mut conns: Vec<Option<Conn>> = connected?.into_iter().map(Some).collect();
    for (key, conn) in conns.iter().enumerate() {
        register(&poller, conn.as_ref().expect("just opened"), key)?;
    }
    let begin = Instant::now();
    let measure_from = begin + plan.warmup;
    let until = measure_from + plan.duration;
    let mut measuring = plan.warmup.is_zero();
    if measuring {
        live.measuring.store(true, Ordering::Relaxed);
    }
    let mut alive = conns.len();
    for key in 0..conns.len() {
        step(
            target,
            plan,
            &poller,
            &mut conns,
            key,
            begin,
            &mut report,
            live,
            measuring,
            &mut alive,
        )?;
    }
    let mut events = Events::new();
    loop {
        let now = Instant::now();
        if !measuring && now >= measure_from {
            measuring = true;
            live.measuring.store(true, Ordering::Relaxed);
            let first_error = report.first_error.take();
            report.requests = 0;
            report.errors = 0;
            report.misses = 0;
            report.failed_connections = 0;
            report.latency.reset();
            report.first_error = first_error;
        }
        if now >= until || live.stop.load(Ordering::Relaxed) || alive == 0 {
            report.elapsed = now.saturating_duration_since(measure_from);
            break;
        }
        let next = if measuring { until } else { measure_from };
        events.clear();
        poller
            .wait(
                &mut events,
                Some((next - now).min(Duration::from_millis(100))),
            )
            .map_err(|e| format!("poller wait: {e}"))?;
        let now = Instant::now();
        for ev in events.iter() {
            step(
                target,
                plan,
                &poller,
                &mut conns,
                ev.key,
                now,
                &mut report,
                live,
                measuring,
                &mut alive,
            )?;
        }
        if let Some(limit) = plan.requests {
            if measuring && live.done.load(Ordering::Relaxed) >= limit {
                live.stop.store(true, Ordering::Relaxed);
            }
        }
    }
    for conn in conns.iter().flatten() {
        poller
            .delete(conn.transport.socket())
            .map_err(|e| format!("poller delete: {e}"))?;
    }
    Ok(report)
}

fn register(poller: &Poller, conn: &Conn, key: usize) -> Result<(), String> {
    // SAFETY: every socket is deleted from the poller before its connection
    // is dropped (on failure, on reconnect and at the end of the run).
    unsafe { poller.add_with_mode(conn.transport.socket(), Event::all(key), PollMode::Edge) }
        .map_err(|e| format!("poller add: {e}"))
}

/// Moves one connection as far as it can go; handles its failure or
/// reconnection.
#[allow(clippy::too_many_arguments)]
fn step(
    target: &Target,
    plan: &Plan,
    poller: &Poller,
    conns: &mut [Option<Conn>],
    key: usize,
    now: Instant,
    report: &mut Report,
    live: &Live,
    measuring: bool,
    alive: &mut usize,
) -> Result<(), String> {
    let Some(conn) = conns[key].as_mut() else {
        return Ok(());
    };
    let before = (report.requests, report.errors);
    let outcome = conn.pump(now, plan, report);
    if measuring {
        live.done
            .fetch_add(report.requests - before.0, Ordering::Relaxed);
        live.errors
            .fetch_add(report.errors - before.1, Ordering::Relaxed);
    }
    match outcome {
        Ok(Flow::Wait) => Ok(()),
        Ok(Flow::Reconnect) => {
            let old = conns[key].take().expect("present");
            poller
                .delete(old.transport.socket())
                .map_err(|e| format!("poller delete: {e}"))?;
            drop(old);
            match Conn::open(target, plan, key as u64) {
                Ok(fresh) => {
                    register(poller, &fresh, key)?;
                    conns[key] = Some(fresh);
                    step(
                        target, plan, poller, conns, key, now, report, live, measuring, alive,
                    )
                }
                Err(e) => {
                    report.failed_connections += 1;
                    report.first_error.get_or_insert(e);
                    *alive -= 1;
                    Ok(())
                }
            }
        }
        Err(e) => {
            let dead = conns[key].take().expect("present");
            poller
                .delete(dead.transport.socket())
                .map_err(|e| format!("poller delete: {e}"))?;
            report.failed_connections += 1;
            if measuring {
                live.errors.fetch_add(1, Ordering::Relaxed);
            }
            report.first_error.get_or_insert(e);
            *alive -= 1;
            Ok(())
        }
    }
}

enum Flow {
    /// Wait for the next readiness edge.
    Wait,
    /// The batch is done and the plan wants a new connection for the next.
    Reconnect,
}

struct Conn {
    transport: Transport,
    batch: Batch,
    /// Bytes of the batch written so far.
    sent: usize,
    recv: RecvBuf,
    /// Replies (or, for echo, bytes) of the batch received so far.
    got: usize,
    started: Instant,
}

impl Conn {
    fn open(target: &Target, plan: &Plan, seed: u64) -> Result<Conn, String> {
        let started = Instant::now();
        let stream =
            TcpStream::connect(target.addr).map_err(|e| format!("connect {}: {e}", target.addr))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        stream.set_nonblocking(true).map_err(|e| e.to_string())?;
        let transport = match &target.tls {
            None => Transport::plain(stream),
            Some((config, name)) => Transport::tls_client(stream, Arc::clone(config), name.clone())
                .map_err(|e| e.to_string())?,
        };
        Ok(Conn {
            transport,
            batch: if plan.sequential_keys {
                Batch::sequential(plan.workload, plan.pipeline, plan.size, plan.keyspace)
            } else {
                Batch::new(plan.workload, plan.pipeline, plan.size, plan.keyspace, seed)
            },
            sent: 0,
            recv: RecvBuf::new(),
            got: 0,
            started,
        })
    }

    fn pump(&mut self, now: Instant, plan: &Plan, report: &mut Report) -> Result<Flow, String> {
        self.send()?;
        loop {
            let progress = self
                .transport
                .read(&mut self.recv, READ_BUDGET)
                .map_err(|e| e.to_string())?;
            let finished = self.take_replies(now, plan, report)?;
            if progress.state == IoState::Eof {
                return Err("the server closed the connection".into());
            }
            if finished {
                if plan.reconnect {
                    return Ok(Flow::Reconnect);
                }
                self.batch.next_keys();
                self.sent = 0;
                self.got = 0;
                self.started = now;
            }
            self.send()?;
            if progress.state != IoState::Ready {
                return Ok(Flow::Wait);
            }
        }
    }

    /// Writes what the transport holds and what is left of the batch, until
    /// done or the socket is full.
    fn send(&mut self) -> Result<(), String> {
        loop {
            if self.transport.wants_write()
                && self.transport.flush().map_err(|e| e.to_string())? == IoState::Drained
            {
                return Ok(());
            }
            if self.sent == self.batch.bytes.len() || !self.transport.accepts_app_data() {
                return Ok(());
            }
            let progress = self
                .transport
                .write(&self.batch.bytes[self.sent..])
                .map_err(|e| e.to_string())?;
            self.sent += progress.bytes;
            if progress.state == IoState::Drained || progress.bytes == 0 {
                return Ok(());
            }
        }
    }

    /// Counts the replies that arrived; true once the whole batch is answered.
    fn take_replies(
        &mut self,
        now: Instant,
        plan: &Plan,
        report: &mut Report,
    ) -> Result<bool, String> {
        let latency = now.saturating_duration_since(self.started).as_nanos() as u64;
        if plan.workload == Workload::Echo {
            let expected = plan.size * plan.pipeline;
            let before = self.got / plan.size;
            self.got += self.recv.len();
            self.recv.consume(self.recv.len());
            if self.got > expected {
                return Err(format!("echoed {} bytes, sent {expected}", self.got));
            }
            let answered = (self.got / plan.size - before) as u64;
            report.requests += answered;
            report.latency.saturating_record_n(latency.max(1), answered);
            return Ok(self.got == expected);
        }
        while self.got < plan.pipeline {
            let reply = match next_reply(self.recv.as_slice()) {
                Ok(Some(reply)) => reply,
                Ok(None) => break,
                Err(malformed) => return Err(format!("malformed reply: {}", malformed.0)),
            };
            match (plan.workload, reply) {
                (_, Reply::Error { len }) => {
                    report.errors += 1;
                    if report.first_error.is_none() {
                        let text = &self.recv.as_slice()[..len.saturating_sub(2)];
                        report.first_error = Some(String::from_utf8_lossy(text).into_owned());
                    }
                }
                (Workload::Get, Reply::Nil { .. }) => report.misses += 1,
                (Workload::Get, Reply::Value { bulk: Some(n), .. }) if n == plan.size => {}
                (Workload::Set, Reply::Value { bulk: None, .. }) | (Workload::Ping, _) => {}
                (workload, other) => {
                    report.errors += 1;
                    report.first_error.get_or_insert_with(|| {
                        format!("unexpected reply to {}: {other:?}", workload.name())
                    });
                }
            }
            self.recv.consume(reply.len());
            self.got += 1;
            report.requests += 1;
            report.latency.saturating_record(latency.max(1));
        }
        if self.got == plan.pipeline && !self.recv.is_empty() {
            return Err(format!(
                "{} bytes beyond the replies asked for",
                self.recv.len()
            ));
        }
        Ok(self.got == plan.pipeline)
    }
}
