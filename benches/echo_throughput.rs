//! Echo throughput, latency, server CPU and syscalls per request.
//!
//! ```text
//! cargo bench --bench echo_throughput                 # the matrix, in-process server
//! cargo bench --bench echo_throughput -- --seconds 3 --rounds 5
//! cargo build --release --example echo && \
//!   cargo bench --bench echo_throughput -- --strace   # syscalls/request (needs strace)
//! ```
//!
//! 64 connections; 64 B and 4 KiB messages; 1 message in flight per
//! connection or 16 pipelined; 0 and 2 IO threads. Contenders alternate
//! (A B A B ...) within each round, and medians over rounds are reported,
//! because this machine is shared and noisy. Latency is the round trip of one
//! batch (one message, or 16 pipelined ones).

#[path = "../examples/echo/service.rs"]
mod echo;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use baton::{Config, Server};
use hdrhistogram::Histogram;
use polling::{Event, Events, PollMode, Poller};

const CONNS: usize = 64;

struct Options {
    seconds: f64,
    rounds: usize,
    strace: bool,
}

fn options() -> Options {
    let mut o = Options {
        seconds: 2.0,
        rounds: 3,
        strace: false,
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

struct Sample {
    msgs_per_sec: f64,
    p50_us: f64,
    p99_us: f64,
    /// Server CPU seconds (loop + IO threads) per million messages.
    cpu_per_million: f64,
    messages: u64,
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
    println!(
        "echo, {CONNS} connections, {:.1} s per run, {} rounds, medians",
        o.seconds, o.rounds
    );
    println!(
        "{:>6} {:>5} {:>4} | {:>12} {:>9} {:>9} {:>10} {:>9} | {:>7}",
        "size", "depth", "io", "msgs/s", "p50 us", "p99 us", "cpu s/M", "ctl/msg", "vs io=0"
    );
    for load in loads {
        let mut samples: [Vec<Sample>; 2] = [Vec::new(), Vec::new()];
        for _ in 0..o.rounds {
            for (i, io_threads) in [0, 2].into_iter().enumerate() {
                samples[i].push(run_in_process(io_threads, load, o.seconds));
            }
        }
        let base = median(samples[0].iter().map(|s| s.msgs_per_sec));
        for (i, io_threads) in [0, 2].into_iter().enumerate() {
            let s = &samples[i];
            let rate = median(s.iter().map(|s| s.msgs_per_sec));
            let ctl = s.iter().map(|s| s.ctl_calls).sum::<u64>() as f64
                / s.iter().map(|s| s.messages).sum::<u64>() as f64;
            println!(
                "{:>6} {:>5} {:>4} | {:>12.0} {:>9.1} {:>9.1} {:>10.3} {:>9.5} | {:>6.2}x",
                load.size,
                load.depth,
                io_threads,
                rate,
                median(s.iter().map(|s| s.p50_us)),
                median(s.iter().map(|s| s.p99_us)),
                median(s.iter().map(|s| s.cpu_per_million)),
                ctl,
                rate / base
            );
        }
    }
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn run_in_process(io_threads: usize, load: Load, seconds: f64) -> Sample {
    let (tx, rx) = std::sync::mpsc::channel();
    let server = std::thread::Builder::new()
        .name("baton-loop".into())
        .spawn(move || {
            let server = Server::builder()
                .config(Config {
                    io_threads,
                    ..Config::default()
                })
                .listen("127.0.0.1:0".parse().unwrap())
                .build(echo::Echo)
                .unwrap();
            tx.send((server.local_addrs()[0], server.handle())).unwrap();
            server.run().unwrap()
        })
        .unwrap();
    let (addr, handle) = rx.recv().unwrap();
    let warm = drive(addr, load, Duration::from_secs_f64(0.3));
    let cpu_before = server_cpu_seconds();
    let ctl_before = handle.stats().poller_ctl_calls;
    let measured = drive(addr, load, Duration::from_secs_f64(seconds));
    let cpu = server_cpu_seconds() - cpu_before;
    let ctl_calls = handle.stats().poller_ctl_calls - ctl_before;
    handle.shutdown(Duration::from_secs(1));
    server.join().unwrap();
    drop(warm);
    let messages = measured.messages;
    Sample {
        msgs_per_sec: messages as f64 / measured.elapsed.as_secs_f64(),
        p50_us: measured.latency.value_at_quantile(0.5) as f64 / 1000.0,
        p99_us: measured.latency.value_at_quantile(0.99) as f64 / 1000.0,
        cpu_per_million: cpu / (messages as f64 / 1e6),
        messages,
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
    messages: u64,
    elapsed: Duration,
    latency: Histogram<u64>,
}

struct Client {
    stream: TcpStream,
    to_send: usize,
    sent: usize,
    received: usize,
    started: Instant,
}

/// Runs the closed-loop load for `duration`: each connection sends a batch
/// of `depth` messages, waits for all of it to come back, and repeats.
fn drive(addr: SocketAddr, load: Load, duration: Duration) -> Measured {
    let poller = Poller::new().unwrap();
    let batch = load.size * load.depth;
    let payload = vec![0x5au8; batch];
    let mut clients: Vec<Client> = (0..CONNS)
        .map(|_| {
            let stream = TcpStream::connect(addr).unwrap();
            stream.set_nodelay(true).unwrap();
            stream.set_nonblocking(true).unwrap();
            Client {
                stream,
                to_send: batch,
                sent: 0,
                received: 0,
                started: Instant::now(),
            }
        })
        .collect();
    for (key, c) in clients.iter().enumerate() {
        // SAFETY: every stream outlives the poller, which is dropped first
        // (declared after `clients`, so dropped before them).
        unsafe {
            poller
                .add_with_mode(&c.stream, Event::all(key), PollMode::Level)
                .unwrap()
        };
    }
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut events = Events::new();
    let mut messages = 0u64;
    let start = Instant::now();
    while start.elapsed() < duration {
        events.clear();
        poller
            .wait(&mut events, Some(Duration::from_millis(50)))
            .unwrap();
        for ev in events.iter() {
            let c = &mut clients[ev.key];
            if ev.writable && c.sent < c.to_send {
                match c.stream.write(&payload[c.sent..]) {
                    Ok(n) => c.sent += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) => panic!("write: {e}"),
                }
            }
            if ev.readable {
                loop {
                    match c.stream.read(&mut buf) {
                        Ok(0) => panic!("server closed"),
                        Ok(n) => c.received += n,
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) => panic!("read: {e}"),
                    }
                }
            }
            if c.received >= batch {
                assert_eq!(c.received, batch, "echo returned more than was sent");
                latency
                    .record(c.started.elapsed().as_nanos() as u64)
                    .unwrap();
                messages += load.depth as u64;
                c.sent = 0;
                c.received = 0;
                c.started = Instant::now();
            }
            let interest = if c.sent < c.to_send {
                Event::all(ev.key)
            } else {
                Event::readable(ev.key)
            };
            poller
                .modify_with_mode(&c.stream, interest, PollMode::Level)
                .unwrap();
        }
    }
    let elapsed = start.elapsed();
    for c in &clients {
        poller.delete(&c.stream).unwrap();
    }
    Measured {
        messages,
        elapsed,
        latency,
    }
}

/// Counts the echo example's system calls per message with `strace -c -f`.
fn syscalls(o: &Options, loads: &[Load]) {
    let bin = concat!(env!("CARGO_MANIFEST_DIR"), "/target/release/examples/echo");
    assert!(
        std::path::Path::new(bin).exists(),
        "build it first: cargo build --release --example echo"
    );
    println!("syscalls per message (strace -c -f on the echo example), {CONNS} connections");
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
            drop(drive(addr, *load, Duration::from_secs_f64(0.3)));
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
            let measured = drive(addr, *load, Duration::from_secs_f64(o.seconds));
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
                measured.messages,
                total,
                total as f64 / measured.messages as f64
            );
        }
    }
}
