//! Soak: the KV example in its own process under honest load (plain and
//! TLS, every reply checked) mixed with every kind of faulty client, for
//! minutes. Each second it samples the server's RSS and open descriptors
//! (from /proc) and the honest throughput, writes them to a CSV, and at the
//! end draws them (SVG) and prints a summary: does memory or descriptor
//! use creep while throughput holds?
//!
//! ```text
//! cargo build --release --example kv
//! cargo bench --bench soak -- --seconds 600     # the documented soak
//! ```
//!
//! Not run in CI (it takes minutes); its figures go in closing notes.

#[path = "../tests/util/mod.rs"]
mod util;

#[path = "support/svg.rs"]
mod svg;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use util::faults::{honest_client, inject, Fault, Workload, FAULTY_CLIENT_IDS};
use util::workloads::KvWorkload;
use util::{ClientMode, TestCert};

#[derive(Parser, Debug)]
#[command(
    about = "Soak the KV example with honest load and faults, sampling RSS, descriptors and throughput each second"
)]
struct Args {
    /// How long to run.
    #[arg(long, default_value_t = 600)]
    seconds: u64,
    /// IO threads for the server.
    #[arg(long, default_value_t = 2)]
    io_threads: usize,
    /// Honest clients per transport (plain and TLS).
    #[arg(long, default_value_t = 4)]
    honest: usize,
    /// Pause between two faults of one kind, in milliseconds.
    #[arg(long, default_value_t = 20)]
    fault_pause_ms: u64,
    /// The server's plain port; TLS is the next one.
    #[arg(long, default_value_t = 16390)]
    port: u16,
    /// Where the CSV and SVG go.
    #[arg(long, default_value = "target/soak")]
    out: PathBuf,
    /// Ignored (cargo bench passes it).
    #[arg(long, hide = true)]
    bench: bool,
}

const MAX_BULK: usize = 1 << 20;

struct Server {
    child: Child,
    plain: SocketAddr,
    tls: SocketAddr,
}

fn start_server(args: &Args, cert: &TestCert) -> Server {
    let binary = PathBuf::from("target/release/examples/kv");
    assert!(
        binary.exists(),
        "build it first: cargo build --release --example kv"
    );
    let mut child = Command::new(binary)
        .args(["--bind", "127.0.0.1", "--timeout", "2"])
        .args(["--port", &args.port.to_string()])
        .args(["--tls-port", &(args.port + 1).to_string()])
        .args(["--io-threads", &args.io_threads.to_string()])
        .args(["--proto-max-bulk-len", &MAX_BULK.to_string()])
        .arg("--tls-cert-file")
        .arg(&cert.cert)
        .arg("--tls-key-file")
        .arg(&cert.key)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the kv example");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut addrs = Vec::new();
    while addrs.len() < 2 {
        let mut line = String::new();
        assert!(out.read_line(&mut line).unwrap() > 0, "kv exited");
        if let Some(addr) = line.split_whitespace().nth(3) {
            addrs.push(addr.parse::<SocketAddr>().expect("banner address"));
        }
    }
    // Keep draining its log so a full pipe never blocks it.
    std::thread::spawn(move || for _ in out.lines() {});
    Server {
        child,
        plain: addrs[0],
        tls: addrs[1],
    }
}

/// VmRSS in KiB and open descriptors of `pid`.
fn sample(pid: u32) -> (u64, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0);
    (rss, fds)
}

struct Counters {
    batches: AtomicU64,
    honest_errors: AtomicU64,
    faults: AtomicU64,
    stop: AtomicBool,
}

fn main() {
    let args = Args::parse();
    std::fs::create_dir_all(&args.out).unwrap();
    let cert = TestCert::new("soak");
    let server = start_server(&args, &cert);
    let pid = server.child.id();
    let workload: Arc<dyn Workload> = Arc::new(KvWorkload { max_bulk: MAX_BULK });
    let kv = KvWorkload { max_bulk: MAX_BULK };
    let modes = [
        (ClientMode::Plain, server.plain),
        (cert.client(None), server.tls),
    ];
    for (mode, addr) in &modes {
        kv.prepare(mode, *addr);
    }
    let counters = Arc::new(Counters {
        batches: AtomicU64::new(0),
        honest_errors: AtomicU64::new(0),
        faults: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    });
    eprintln!(
        "soak: kv pid {pid}, plain {} TLS {}, {} s",
        server.plain, server.tls, args.seconds
    );

    let mut threads = Vec::new();
    for (m, (mode, addr)) in modes.iter().enumerate() {
        for h in 0..args.honest {
            let (mode, addr, workload, counters) = (
                mode.clone(),
                *addr,
                Arc::clone(&workload),
                Arc::clone(&counters),
            );
            let client = m * 1000 + h;
            threads.push(std::thread::spawn(move || {
                while !counters.stop.load(Ordering::Relaxed) {
                    // A fresh connection every 500 batches; a wrong reply or
                    // an error is counted, not fatal, so the run goes on.
                    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        honest_client(&mode, addr, &*workload, client, 16, &|round| {
                            if round > 0 {
                                counters.batches.fetch_add(1, Ordering::Relaxed);
                            }
                            round < 500 && !counters.stop.load(Ordering::Relaxed)
                        })
                    }));
                    if run.is_err() {
                        counters.honest_errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        for (k, fault) in Fault::ALL.into_iter().enumerate() {
            if !fault.applies(mode) {
                continue;
            }
            let (mode, addr, workload, counters) = (
                mode.clone(),
                *addr,
                Arc::clone(&workload),
                Arc::clone(&counters),
            );
            let pause = Duration::from_millis(args.fault_pause_ms);
            let client = FAULTY_CLIENT_IDS + m * 1000 + k;
            threads.push(std::thread::spawn(move || {
                let mut rng = util::rng(k as u64);
                while !counters.stop.load(Ordering::Relaxed) {
                    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        inject(fault, &mode, addr, &*workload, &mut rng, client)
                    }));
                    if run.is_err() {
                        eprintln!("fault {fault:?} saw the server misbehave");
                        counters.honest_errors.fetch_add(1, Ordering::Relaxed);
                    }
                    counters.faults.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(pause);
                }
            }));
        }
    }

    let csv_path = args.out.join("soak.csv");
    let mut csv = String::from("second,rss_kib,fds,batches_per_s,faults_per_s,honest_errors\n");
    let mut rows: Vec<(f64, f64, f64, f64)> = Vec::new();
    let start = Instant::now();
    let (mut last_batches, mut last_faults) = (0, 0);
    for second in 1..=args.seconds {
        let next = start + Duration::from_secs(second);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        let (rss, fds) = sample(pid);
        let batches = counters.batches.load(Ordering::Relaxed);
        let faults = counters.faults.load(Ordering::Relaxed);
        let errors = counters.honest_errors.load(Ordering::Relaxed);
        let (b, f) = (batches - last_batches, faults - last_faults);
        (last_batches, last_faults) = (batches, faults);
        csv.push_str(&format!("{second},{rss},{fds},{b},{f},{errors}\n"));
        rows.push((
            second as f64,
            rss as f64 / 1024.0,
            fds as f64,
            b as f64 * 32.0,
        ));
        if second % 10 == 0 {
            std::fs::write(&csv_path, &csv).unwrap();
            eprintln!(
                "{second:>5} s  rss {:>7.1} MiB  fds {fds:>5}  {:>8.0} req/s  faults {f:>4}/s  errors {errors}",
                rss as f64 / 1024.0,
                b as f64 * 32.0
            );
        }
    }
    counters.stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    // Everything gone: what does the server hold now?
    std::thread::sleep(Duration::from_secs(3));
    let (rss_after, fds_after) = sample(pid);
    std::fs::write(&csv_path, &csv).unwrap();

    let series = |f: fn(&(f64, f64, f64, f64)) -> f64| -> Vec<(f64, f64)> {
        rows.iter().map(|r| (r.0, f(r))).collect()
    };
    let svg_path = args.out.join("soak.svg");
    svg::write_panels(
        &svg_path,
        "baton kv soak: honest load + faults",
        &[
            ("server RSS (MiB)", series(|r| r.1)),
            ("server open descriptors", series(|r| r.2)),
            ("honest requests per second", series(|r| r.3)),
        ],
    )
    .unwrap();

    let summary = |name: &str, values: Vec<f64>| {
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        let tenth = values.len() / 10;
        let first: f64 = values[..tenth.max(1)].iter().sum::<f64>() / tenth.max(1) as f64;
        let last: f64 =
            values[values.len() - tenth.max(1)..].iter().sum::<f64>() / tenth.max(1) as f64;
        println!(
            "{name:<28} min {:>10.1}  median {:>10.1}  max {:>10.1}  first-10% mean {:>10.1}  last-10% mean {:>10.1}",
            sorted[0],
            sorted[sorted.len() / 2],
            sorted[sorted.len() - 1],
            first,
            last
        );
    };
    println!(
        "soak: {} s, io threads {}, {} honest batches ({} requests), {} faults, {} honest errors",
        args.seconds,
        args.io_threads,
        last_batches,
        last_batches * 32,
        last_faults,
        counters.honest_errors.load(Ordering::Relaxed)
    );
    summary("RSS MiB", rows.iter().map(|r| r.1).collect());
    summary("open descriptors", rows.iter().map(|r| r.2).collect());
    summary("requests/s", rows.iter().map(|r| r.3).collect());
    println!(
        "after the clients left: RSS {:.1} MiB, {} descriptors",
        rss_after as f64 / 1024.0,
        fds_after
    );
    println!("wrote {} and {}", csv_path.display(), svg_path.display());

    let mut child = server.child;
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let status = child.wait().unwrap();
    println!("kv exited: {status}");
}
