//! cargo run --release --example echo -- --bind 127.0.0.1 --port 7000 --io-threads 2
//!
//! An echo server on baton: every byte received is sent back in order.
//! SIGINT or SIGTERM shuts it down gracefully (in-flight replies flush for up
//! to five seconds); it then exits 0.

mod service;

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use baton::{Config, Server};
use clap::Parser;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// An echo server on baton.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Addresses to listen on (IPv4 or IPv6; repeat or list several).
    #[arg(long, num_args = 1.., default_value = "127.0.0.1")]
    bind: Vec<IpAddr>,
    /// TCP port.
    #[arg(long, default_value_t = 7000)]
    port: u16,
    /// IO threads besides the main loop; 0 runs all socket IO inline on the loop.
    #[arg(long, default_value_t = 0)]
    io_threads: usize,
    /// Maximum connections open at once; more are closed at once and counted.
    #[arg(long, default_value_t = 10_000)]
    maxclients: usize,
    /// Close connections idle for this many seconds; 0 means never.
    #[arg(long, default_value_t = 0)]
    timeout: u64,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("echo: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> std::io::Result<()> {
    let config = Config {
        io_threads: args.io_threads,
        max_connections: args.maxclients,
        idle_timeout: (args.timeout > 0).then(|| Duration::from_secs(args.timeout)),
        ..Config::default()
    };
    let mut builder = Server::builder().config(config);
    for ip in &args.bind {
        builder = builder.listen(SocketAddr::new(*ip, args.port));
    }
    let server = builder.build(service::Echo)?;
    for addr in server.local_addrs() {
        println!("echo listening on {addr} (io threads: {})", args.io_threads);
    }
    let handle = server.handle();
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            tracing::info!(signal, "signal received; shutting down");
            handle.shutdown(Duration::from_secs(5));
        }
    });
    let report = server.run()?;
    println!(
        "echo stopped: {} connections served, {} bytes in, {} bytes out",
        report.stats.connections_accepted, report.stats.bytes_in, report.stats.bytes_out
    );
    Ok(())
}
