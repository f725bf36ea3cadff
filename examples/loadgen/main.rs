//! cargo run --release --example loadgen -- --help
//!
//! A closed-loop load generator for the echo and KV examples and for any
//! Redis-protocol server: N connections, each sending a batch of pipelined
//! requests and waiting for every reply before the next. Plain TCP or TLS;
//! latency per request in an HDR histogram; text or JSON report.
//!
//! ```text
//! loadgen -p 6380 -w set -P 16 -c 50 -t 10           # KV SETs, plain
//! loadgen -p 6381 --tls --insecure -w get --prefill  # GETs of keys that exist, TLS
//! loadgen -p 7000 -w echo -d 4096 -c 64              # echo, 4 KiB messages
//! loadgen -p 6381 --tls --insecure --handshakes      # new TLS connection per request
//! ```

mod engine;
mod output;
mod progress;
mod replies;
mod requests;
mod tls_client;

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use engine::{Live, Plan, Target};
use requests::Workload;
use tls_client::Trust;

/// A closed-loop load generator for echo and Redis-protocol servers.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Args {
    /// Server host name or address.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Server port.
    #[arg(short, long, default_value_t = 6380)]
    port: u16,
    /// Connections, kept open for the whole run.
    #[arg(short, long, default_value_t = 50)]
    connections: usize,
    /// Requests in flight per connection (a batch; the next batch goes out
    /// once every reply is in).
    #[arg(short = 'P', long, default_value_t = 1)]
    pipeline: usize,
    /// What to send.
    #[arg(short, long, value_enum, default_value_t = WorkloadArg::Set)]
    workload: WorkloadArg,
    /// SET value size, or echo message size, in bytes (GET replies are
    /// checked against it).
    #[arg(short = 'd', long, default_value_t = 16)]
    size: usize,
    /// Keys are drawn at random from this many (`key:000000000000` ...).
    #[arg(short = 'r', long, default_value_t = 100_000)]
    keyspace: u64,
    /// Before a GET run, SET every key of the key space once (so GETs hit).
    #[arg(long)]
    prefill: bool,
    /// Seconds to measure.
    #[arg(short = 't', long, default_value_t = 10.0)]
    seconds: f64,
    /// Stop after this many measured requests (or at --seconds, if sooner).
    #[arg(short = 'n', long)]
    requests: Option<u64>,
    /// Seconds of load before measuring starts.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Generator threads (connections are spread over them).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Open a new connection for every batch (measures connection setup and
    /// TLS handshakes; use -w ping).
    #[arg(long)]
    handshakes: bool,
    /// Connect with TLS.
    #[arg(long)]
    tls: bool,
    /// Trust only this CA certificate (PEM).
    #[arg(long, requires = "tls", conflicts_with = "insecure")]
    cacert: Option<PathBuf>,
    /// Do not verify the server's certificate (a throwaway test certificate).
    #[arg(long, requires = "tls")]
    insecure: bool,
    /// Server name for SNI and certificate checks.
    #[arg(long, default_value = "localhost")]
    sni: String,
    /// Disable TLS session resumption (every handshake a full one).
    #[arg(long)]
    no_resume: bool,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
    /// When to draw the progress bar (on standard error).
    #[arg(long, value_enum, default_value_t = progress::When::Auto)]
    progress: progress::When,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum WorkloadArg {
    Set,
    Get,
    Ping,
    Echo,
}

impl From<WorkloadArg> for Workload {
    fn from(w: WorkloadArg) -> Self {
        match w {
            WorkloadArg::Set => Workload::Set,
            WorkloadArg::Get => Workload::Get,
            WorkloadArg::Ping => Workload::Ping,
            WorkloadArg::Echo => Workload::Echo,
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(clean) if clean => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::from(2)
        }
    }
}

/// Runs the load; `Ok(false)` if it saw errors.
fn run(args: &Args) -> Result<bool, String> {
    if args.connections == 0 || args.pipeline == 0 {
        return Err("--connections and --pipeline must be at least 1".into());
    }
    if args.workload == WorkloadArg::Echo && args.size == 0 {
        return Err("echo needs --size of at least 1".into());
    }
    let target = target(args)?;
    let plan = Plan {
        connections: args.connections,
        pipeline: args.pipeline,
        workload: args.workload.into(),
        size: args.size,
        keyspace: args.keyspace,
        warmup: seconds(args.warmup, "--warmup")?,
        duration: seconds(args.seconds, "--seconds")?,
        requests: args.requests,
        threads: args.threads,
        reconnect: args.handshakes,
        sequential_keys: false,
    };
    if args.prefill {
        engine::prefill(&target, &plan)?;
    }
    let live = Arc::new(Live::default());
    let interrupted = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&interrupted))
            .map_err(|e| format!("signal handler: {e}"))?;
    }
    let report = std::thread::scope(|s| {
        let bar = progress::Bar::new(args.progress, &plan);
        let load = s.spawn(|| engine::run(&target, &plan, &live));
        while !load.is_finished() {
            if interrupted.load(Ordering::Relaxed) {
                live.stop.store(true, Ordering::Relaxed);
            }
            bar.draw(&live);
            std::thread::sleep(Duration::from_millis(100));
        }
        bar.clear();
        load.join().expect("the load thread panicked")
    })?;
    let described = output::Described {
        target: &target,
        plan: &plan,
        report: &report,
    };
    if args.json {
        println!("{}", described.json());
    } else {
        print!("{}", described.text());
    }
    Ok(report.errors == 0 && report.failed_connections == 0)
}

fn target(args: &Args) -> Result<Target, String> {
    let addr: SocketAddr = (args.host.as_str(), args.port)
        .to_socket_addrs()
        .map_err(|e| format!("{}:{}: {e}", args.host, args.port))?
        .next()
        .ok_or_else(|| format!("{}: no address", args.host))?;
    let tls = if args.tls {
        let trust = match &args.cacert {
            Some(path) => Trust::CaFile(path),
            None if args.insecure => Trust::Insecure,
            None => return Err("--tls needs --cacert FILE or --insecure".into()),
        };
        Some((
            tls_client::client_config(trust, !args.no_resume)?,
            tls_client::server_name(&args.sni)?,
        ))
    } else {
        None
    };
    Ok(Target { addr, tls })
}

fn seconds(value: f64, flag: &str) -> Result<Duration, String> {
    Duration::try_from_secs_f64(value).map_err(|_| format!("{flag} {value}: not a duration"))
}
