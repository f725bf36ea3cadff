//! Echo throughput, latency, server CPU, syscalls, and TLS handshakes.
//!
//! ```text
//! cargo bench --bench echo_throughput                      # plain vs TLS echo matrix
//! cargo bench --bench echo_throughput -- --seconds 3 --rounds 5
//! cargo bench --bench echo_throughput -- --handshakes      # full and resumed handshakes/s
//! cargo bench -F baton-tls/aws-lc-rs --bench echo_throughput -- --handshakes   # other provider
//! cargo build --release --example echo && \
//!   cargo bench --bench echo_throughput -- --strace        # syscalls/message (needs strace)
//! ```
//!
//! 64 connections; 64 B and 4 KiB messages; 1 message in flight per
//! connection or 16 pipelined; 0 and 2 IO threads; plain and TLS 1.3.
//! Contenders alternate (A B A B ...) within each round and medians over
//! rounds are reported, because this machine is shared and noisy. Latency is
//! the round trip of one batch (one message, or 16 pipelined ones). The load
//! generator is one thread of this process, on the same 2 cores.

#[path = "../examples/echo/service.rs"]
mod echo;

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton::tls::rustls::client::Resumption;
use baton::tls::rustls::pki_types::ServerName;
use baton::tls::rustls::ClientConfig;
use baton::tls::{client_config_trusting, generate_self_signed, IoState, TlsSettings, Transport};
use baton::{Config, LoopHandle, RecvBuf, Server};
use hdrhistogram::Histogram;
use polling::{Event, Events, PollMode, Poller};

const CONNS: usize = 64;

struct Options {
    seconds: f64,
    rounds: usize,
    strace: bool,
    handshakes: bool,
}

fn options() -> Options {
    let mut o = Options {
        seconds: 2.0,
        rounds: 3,
        strace: false,
        handshakes: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                o.seconds = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--seconds N")
            }
            "--rounds" => {
                o.rounds = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--rounds N")
            }
            "--strace" => o.strace = true,
            "--handshakes" => o.handshakes = true,
            "--bench" => {}
            other => panic!("unknown option {other}; see the file's header"),
        }
    }
    o
}

#[derive(Clone, Copy, Debug)]
struct Load {
    size: usize,
    depth: usize,
}

/// How the load generator connects.
#[derive(Clone)]
enum Mode {
    Plain,
    Tls(Arc<ClientConfig>),
}

impl Mode {
    fn connect(&self, addr: SocketAddr) -> Transport {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_nodelay(true).unwrap();
        stream.set_nonblocking(true).unwrap();
        match self {
            Mode::Plain => Transport::plain(stream),
            Mode::Tls(config) => Transport::tls_client(
                stream,
                Arc::clone(config),
                ServerName::try_from("localhost").unwrap(),
            )
            .unwrap(),
        }
    }
}

/// A generated certificate and a client config trusting it.
struct Tls {
    cert: PathBuf,
    key: PathBuf,
}

impl Tls {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("baton-bench-{}", std::process::id()));
        let (cert, key) = generate_self_signed(&dir).unwrap();
        Self { cert, key }
    }
    fn client(&self, resume: bool) -> Arc<ClientConfig> {
        let mut config = client_config_trusting(&self.cert, &[]).unwrap();
        if !resume {
            config.resumption = Resumption::disabled();
        }
        Arc::new(config)
    }
}

struct Sample {
    per_sec: f64,
    p50_us: f64,
    p99_us: f64,
    /// Server CPU seconds (loop + IO threads) per million operations.
    cpu_per_million: f64,
    ops: u64,
    ctl_calls: u64,
}

fn main() {
    let o = options();
    let loads = [
        Load { size: 64, depth: 1 },
        Load {
            size: 64,
            depth: 16,
        },
        Load {
            size: 4096,
            depth: 1,
        },
        Load {
            size: 4096,
            depth: 16,
        },
    ];
    if o.strace {
        return syscalls(&o, &loads);
    }
    let tls = Tls::new();
    println!("crypto provider: {}", provider_name());
    if o.handshakes {
        return handshakes(&o, &tls);
    }
    println!(
        "echo, {CONNS} connections, {:.1} s per run, {} rounds, medians",
        o.seconds, o.rounds
    );
    println!(
        "{:>5} {:>5} {:>2} {:>5} | {:>10} {:>8} {:>8} {:>8} {:>8} | {:>6} {:>9}",
        "size",
        "depth",
        "io",
        "tls",
        "msgs/s",
        "p50 us",
        "p99 us",
        "cpu s/M",
        "ctl/msg",
        "vs io0",
        "vs plain"
    );
    let contenders = [(0, false), (2, false), (0, true), (2, true)];
    for load in loads {
        let mut samples: Vec<Vec<Sample>> = contenders.iter().map(|_| Vec::new()).collect();
        for _ in 0..o.rounds {
            for (i, &(io_threads, use_tls)) in contenders.iter().enumerate() {
                let mode = if use_tls {
                    Mode::Tls(tls.client(true))
                } else {
                    Mode::Plain
                };
                let server_tls = use_tls.then(|| TlsSettings::from_files(&tls.cert, &tls.key));
                samples[i].push(run_echo(io_threads, server_tls, &mode, load, o.seconds));
            }
        }
        let rate = |i: usize| median(samples[i].iter().map(|s| s.per_sec));
        for (i, &(io_threads, use_tls)) in contenders.iter().enumerate() {
            let s = &samples[i];
            let ctl = s.iter().map(|s| s.ctl_calls).sum::<u64>() as f64
                / s.iter().map(|s| s.ops).sum::<u64>() as f64;
            let vs_io0 = rate(i) / rate(if use_tls { 2 } else { 0 });
            let vs_plain = rate(i) / rate(if io_threads == 0 { 0 } else { 1 });
            println!(
                "{:>5} {:>5} {:>2} {:>5} | {:>10.0} {:>8.1} {:>8.1} {:>8.3} {:>8.5} | {:>5.2}x {:>8.2}x",
                load.size,
                load.depth,
                io_threads,
                if use_tls { "tls13" } else { "plain" },
                rate(i),
                median(s.iter().map(|s| s.p50_us)),
                median(s.iter().map(|s| s.p99_us)),
                median(s.iter().map(|s| s.cpu_per_million)),
                ctl,
                vs_io0,
                vs_plain
            );
        }
    }
}

fn provider_name() -> &'static str {
    if format!("{:?}", baton::tls::crypto_provider().key_provider).contains("Ring") {
        "ring"
    } else {
        "aws-lc-rs"
    }
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Starts the echo service in this process (plain, or TLS with `tls`).
fn start(
    io_threads: usize,
    tls: Option<TlsSettings>,
) -> (SocketAddr, LoopHandle<()>, std::thread::JoinHandle<()>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let server = std::thread::Builder::new()
        .name("baton-loop".into())
        .spawn(move || {
            let addr = "127.0.0.1:0".parse().unwrap();
            let builder = Server::builder().config(Config::default().io_threads(io_threads));
            let builder = match tls {
                Some(settings) => builder.listen_tls(addr, settings.build().unwrap()),
                None => builder.listen(addr),
            };
            let server = builder.build(echo::Echo).unwrap();
            tx.send((server.local_addrs()[0], server.handle())).unwrap();
            server.run().unwrap();
        })
        .unwrap();
    let (addr, handle) = rx.recv().unwrap();
    (addr, handle, server)
}

fn run_echo(
    io_threads: usize,
    tls: Option<TlsSettings>,
    mode: &Mode,
    load: Load,
    seconds: f64,
) -> Sample {
    let (addr, handle, server) = start(io_threads, tls);
    drop(drive(addr, mode, load, Duration::from_secs_f64(0.3)));
    let cpu_before = server_cpu_seconds();
    let ctl_before = handle.stats().poller_ctl_calls;
    let measured = drive(addr, mode, load, Duration::from_secs_f64(seconds));
    let cpu = server_cpu_seconds() - cpu_before;
    let ctl_calls = handle.stats().poller_ctl_calls - ctl_before;
    handle.shutdown(Duration::from_secs(1));
    server.join().unwrap();
    Sample {
        per_sec: measured.ops as f64 / measured.elapsed.as_secs_f64(),
        p50_us: measured.latency.value_at_quantile(0.5) as f64 / 1000.0,
        p99_us: measured.latency.value_at_quantile(0.99) as f64 / 1000.0,
        cpu_per_million: cpu / (measured.ops as f64 / 1e6),
        ops: measured.ops,
        ctl_calls,
    }
}

/// CPU seconds used so far by this process's server threads (the loop and
/// the IO threads), from /proc.
fn server_cpu_seconds() -> f64 {
    let ticks = 100.0; // USER_HZ on Linux
    let mut total = 0.0;
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if !comm.starts_with("baton-") {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        let (utime, stime): (f64, f64) = (fields[11].parse().unwrap(), fields[12].parse().unwrap());
        total += (utime + stime) / ticks;
    }
    total
}

struct Measured {
    ops: u64,
    elapsed: Duration,
    latency: Histogram<u64>,
}

struct Client {
    transport: Transport,
    sent: usize,
    received: RecvBuf,
    got: usize,
    started: Instant,
}

/// Closed-loop load for `duration`: each connection sends a batch of
/// `depth` messages, waits for all of it to come back, and repeats.
fn drive(addr: SocketAddr, mode: &Mode, load: Load, duration: Duration) -> Measured {
    let poller = Poller::new().unwrap();
    let batch = load.size * load.depth;
    let payload = vec![0x5au8; batch];
    let mut clients: Vec<Client> = (0..CONNS)
        .map(|_| Client {
            transport: mode.connect(addr),
            sent: 0,
            received: RecvBuf::new(),
            got: 0,
            started: Instant::now(),
        })
        .collect();
    for (key, c) in clients.iter().enumerate() {
        // SAFETY: every socket is deleted from the poller before its client
        // is dropped (the loop below ends by deleting all of them).
        unsafe {
            poller
                .add_with_mode(c.transport.socket(), Event::all(key), PollMode::Level)
                .unwrap()
        };
    }
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
    let mut events = Events::new();
    let mut ops = 0u64;
    let start = Instant::now();
    while start.elapsed() < duration {
        events.clear();
        poller
            .wait(&mut events, Some(Duration::from_millis(50)))
            .unwrap();
        for ev in events.iter() {
            let c = &mut clients[ev.key];
            if ev.writable {
                if c.transport.wants_write() {
                    c.transport.flush().unwrap();
                }
                if c.sent < batch && c.transport.accepts_app_data() {
                    c.sent += c.transport.write(&payload[c.sent..]).unwrap().bytes;
                }
            }
            if ev.readable {
                let progress = c.transport.read(&mut c.received, 1 << 20).unwrap();
                assert_ne!(progress.state, IoState::Eof, "server closed");
                c.got += c.received.len();
                c.received.consume(c.received.len());
            }
            if c.got >= batch {
                assert_eq!(c.got, batch, "echo returned more than was sent");
                latency
                    .record(c.started.elapsed().as_nanos() as u64)
                    .unwrap();
                ops += load.depth as u64;
                c.sent = 0;
                c.got = 0;
                c.started = Instant::now();
            }
            let sending = c.sent < batch || c.transport.wants_write();
            rearm(&poller, &c.transport, ev.key, sending);
        }
    }
    finish(&poller, &clients, start, ops, latency)
}

/// Level-triggered interest for a load-generator connection: writable too
/// while it has something to send.
fn rearm(poller: &Poller, transport: &Transport, key: usize, sending: bool) {
    let interest = if sending {
        Event::all(key)
    } else {
        Event::readable(key)
    };
    poller
        .modify_with_mode(transport.socket(), interest, PollMode::Level)
        .unwrap();
}

/// Ends a load run: unregisters every connection and reports.
fn finish(
    poller: &Poller,
    clients: &[Client],
    start: Instant,
    ops: u64,
    latency: Histogram<u64>,
) -> Measured {
    let elapsed = start.elapsed();
    for c in clients {
        poller.delete(c.transport.socket()).unwrap();
    }
    Measured {
        ops,
        elapsed,
        latency,
    }
}

/// Handshakes per second: 16 connections in flight, each doing a handshake
/// and a one-byte echo, then closing and starting over.
fn handshakes(o: &Options, tls: &Tls) {
    println!(
        "TLS handshakes (+1 byte echo), 16 in flight, {:.1} s per run, {} rounds, medians",
        o.seconds, o.rounds
    );
    println!(
        "{:>8} {:>2} | {:>12} {:>9} {:>9} {:>12}",
        "kind", "io", "handshakes/s", "p50 us", "p99 us", "cpu ms/1k"
    );
    let contenders = [(false, 0), (false, 2), (true, 0), (true, 2)];
    let mut samples: Vec<Vec<Sample>> = contenders.iter().map(|_| Vec::new()).collect();
    for _ in 0..o.rounds {
        for (i, &(resume, io_threads)) in contenders.iter().enumerate() {
            let settings = TlsSettings::from_files(&tls.cert, &tls.key);
            let (addr, handle, server) = start(io_threads, Some(settings));
            let mode = Mode::Tls(tls.client(resume));
            drop(handshake_load(addr, &mode, Duration::from_secs_f64(0.3)));
            let cpu_before = server_cpu_seconds();
            let measured = handshake_load(addr, &mode, Duration::from_secs_f64(o.seconds));
            let cpu = server_cpu_seconds() - cpu_before;
            let stats = handle.stats();
            if resume {
                assert!(
                    stats.handshakes_resumed * 2 > stats.handshakes_ok,
                    "resumption works: {stats:?}"
                );
            }
            handle.shutdown(Duration::from_secs(1));
            server.join().unwrap();
            samples[i].push(Sample {
                per_sec: measured.ops as f64 / measured.elapsed.as_secs_f64(),
                p50_us: measured.latency.value_at_quantile(0.5) as f64 / 1000.0,
                p99_us: measured.latency.value_at_quantile(0.99) as f64 / 1000.0,
                cpu_per_million: cpu / (measured.ops as f64 / 1e6),
                ops: measured.ops,
                ctl_calls: 0,
            });
        }
    }
    for (i, &(resume, io_threads)) in contenders.iter().enumerate() {
        let s = &samples[i];
        println!(
            "{:>8} {:>2} | {:>12.0} {:>9.1} {:>9.1} {:>12.1}",
            if resume { "resumed" } else { "full" },
            io_threads,
            median(s.iter().map(|s| s.per_sec)),
            median(s.iter().map(|s| s.p50_us)),
            median(s.iter().map(|s| s.p99_us)),
            // CPU seconds per million = CPU milliseconds per thousand.
            median(s.iter().map(|s| s.cpu_per_million)),
        );
    }
}

fn handshake_load(addr: SocketAddr, mode: &Mode, duration: Duration) -> Measured {
    const IN_FLIGHT: usize = 16;
    let poller = Poller::new().unwrap();
    let mut slots: Vec<Client> = Vec::with_capacity(IN_FLIGHT);
    let fresh = |mode: &Mode| Client {
        transport: mode.connect(addr),
        sent: 0,
        received: RecvBuf::new(),
        got: 0,
        started: Instant::now(),
    };
    for key in 0..IN_FLIGHT {
        slots.push(fresh(mode));
        // SAFETY: deleted from the poller before the client is replaced or dropped.
        unsafe {
            poller
                .add_with_mode(
                    slots[key].transport.socket(),
                    Event::all(key),
                    PollMode::Level,
                )
                .unwrap()
        };
    }
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
    let mut events = Events::new();
    let mut ops = 0;
    let start = Instant::now();
    while start.elapsed() < duration {
        events.clear();
        poller
            .wait(&mut events, Some(Duration::from_millis(50)))
            .unwrap();
        for ev in events.iter() {
            let c = &mut slots[ev.key];
            if c.transport.wants_write() {
                c.transport.flush().unwrap();
            }
            if c.sent == 0 && c.transport.accepts_app_data() {
                c.sent = c.transport.write(b"x").unwrap().bytes;
            }
            if ev.readable {
                c.transport.read(&mut c.received, 1 << 20).unwrap();
            }
            if c.received.len() == 1 {
                latency
                    .record(c.started.elapsed().as_nanos() as u64)
                    .unwrap();
                ops += 1;
                poller.delete(c.transport.socket()).unwrap();
                *c = fresh(mode);
                // SAFETY: as above.
                unsafe {
                    poller
                        .add_with_mode(c.transport.socket(), Event::all(ev.key), PollMode::Level)
                        .unwrap()
                };
                continue;
            }
            rearm(
                &poller,
                &c.transport,
                ev.key,
                c.sent == 0 || c.transport.wants_write(),
            );
        }
    }
    finish(&poller, &slots, start, ops, latency)
}

/// Counts the echo example's system calls per message with `strace -c -f`.
fn syscalls(o: &Options, loads: &[Load]) {
    let bin = concat!(env!("CARGO_MANIFEST_DIR"), "/target/release/examples/echo");
    assert!(
        std::path::Path::new(bin).exists(),
        "build it first: cargo build --release --example echo"
    );
    println!("syscalls per message (strace -c -f on the echo example), {CONNS} connections, plain");
    println!(
        "{:>6} {:>5} {:>4} | {:>10} {:>12} {:>10}",
        "size", "depth", "io", "messages", "syscalls", "per msg"
    );
    for load in loads {
        for io_threads in [0, 2] {
            let mut echo = Command::new(bin)
                .args([
                    "--port",
                    "0",
                    "--tls-port",
                    "0",
                    "--io-threads",
                    &io_threads.to_string(),
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            // "echo listening on 127.0.0.1:PORT (...)": a free port, no clashes.
            let mut banner = String::new();
            std::io::BufRead::read_line(
                &mut std::io::BufReader::new(echo.stdout.take().unwrap()),
                &mut banner,
            )
            .unwrap();
            let addr: SocketAddr = banner
                .split_whitespace()
                .nth(3)
                .and_then(|a| a.parse().ok())
                .unwrap_or_else(|| panic!("unexpected banner {banner:?}"));
            let out = std::env::temp_dir().join(format!("baton-strace-{}.txt", echo.id()));
            drop(drive(
                addr,
                &Mode::Plain,
                *load,
                Duration::from_secs_f64(0.3),
            ));
            let mut strace = Command::new("strace")
                .args(["-f", "-c", "-o"])
                .arg(&out)
                .args(["-p", &echo.id().to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("strace is installed (apt-get install strace)");
            // Measure only once strace says it is attached to every thread.
            let mut lines =
                std::io::BufRead::lines(std::io::BufReader::new(strace.stderr.take().unwrap()));
            let mut said = Vec::new();
            for line in lines.by_ref().map_while(Result::ok) {
                let attached = line.contains("attached");
                said.push(line);
                if attached {
                    break;
                }
            }
            assert!(
                said.last().is_some_and(|l| l.contains("attached")),
                "strace did not attach: {said:?}"
            );
            let drain = std::thread::spawn(move || lines.for_each(drop));
            let measured = drive(
                addr,
                &Mode::Plain,
                *load,
                Duration::from_secs_f64(o.seconds),
            );
            Command::new("kill")
                .args(["-INT", &strace.id().to_string()])
                .status()
                .unwrap();
            strace.wait().unwrap();
            drain.join().unwrap();
            Command::new("kill")
                .args(["-INT", &echo.id().to_string()])
                .status()
                .unwrap();
            echo.wait().unwrap();
            let summary = std::fs::read_to_string(&out).unwrap();
            let total: u64 = summary
                .lines()
                .find(|l| l.trim_end().ends_with("total"))
                .and_then(|l| l.split_whitespace().nth(3).and_then(|v| v.parse().ok()))
                .expect("strace summary has a total line");
            println!(
                "{:>6} {:>5} {:>4} | {:>10} {:>12} {:>10.2}",
                load.size,
                load.depth,
                io_threads,
                measured.ops,
                total,
                total as f64 / measured.ops as f64
            );
        }
    }
}
