//! cargo run --release --example echo -- --bind 127.0.0.1 --port 7000 --io-threads 2
//!
//! An echo server on baton: every byte received is sent back in order, on a
//! plain port (7000) and a TLS port (7001, a generated certificate unless
//! --tls-cert-file/--tls-key-file are given). SIGINT or SIGTERM shuts it down
//! gracefully (in-flight replies flush for up to five seconds), then it exits
//! 0; SIGHUP reloads the certificate files.

mod service;
#[path = "../common/tls_args.rs"]
mod tls_args;

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use baton::{Config, Server};
use clap::Parser;
use tls_args::TlsArgs;

/// An echo server on baton.
#[derive(Debug, Parser)]
#[command(
    version,
    about = "An echo server on baton: every byte comes back, in order, plain and TLS."
)]
struct Args {
    /// Addresses to listen on (IPv4 or IPv6; repeat or list several).
    #[arg(long, num_args = 1.., default_value = "127.0.0.1")]
    bind: Vec<IpAddr>,
    /// Plain TCP port (0 picks a free port).
    #[arg(long, default_value_t = 7000)]
    port: u16,
    /// TLS port; 0 turns TLS off.
    #[arg(long, default_value_t = 7001)]
    tls_port: u16,
    /// IO threads besides the main loop; 0 runs all socket IO inline on the loop.
    #[arg(long, default_value_t = 0)]
    io_threads: usize,
    /// Maximum connections open at once; more are closed at once and counted.
    #[arg(long, default_value_t = 10_000)]
    maxclients: usize,
    /// Close connections idle for this many seconds; 0 means never.
    #[arg(long, default_value_t = 0)]
    timeout: u64,
    #[command(flatten)]
    tls: TlsArgs,
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

fn run(args: &Args) -> Result<(), String> {
    let config = Config {
        io_threads: args.io_threads,
        max_connections: args.maxclients,
        idle_timeout: (args.timeout > 0).then(|| Duration::from_secs(args.timeout)),
        handshake_timeout: args.tls.handshake_timeout(),
        ..Config::default()
    };
    let tls = (args.tls_port != 0)
        .then(|| args.tls.settings("echo"))
        .transpose()?;
    let mut builder = Server::builder().config(config);
    for ip in &args.bind {
        builder = builder.listen(SocketAddr::new(*ip, args.port));
        if let Some(settings) = &tls {
            builder = builder.listen_tls(
                SocketAddr::new(*ip, args.tls_port),
                TlsArgs::build(settings)?,
            );
        }
    }
    let server = builder
        .build(service::Echo)
        .map_err(|e| format!("cannot listen: {e}"))?;
    for addr in server.local_addrs() {
        println!("echo listening on {addr} (io threads: {})", args.io_threads);
    }
    tls_args::handle_signals(server.handle(), tls, Duration::from_secs(5))
        .map_err(|e| e.to_string())?;
    let report = server.run().map_err(|e| e.to_string())?;
    println!(
        "echo stopped: {} connections served, {} bytes in, {} bytes out",
        report.stats.connections_accepted, report.stats.bytes_in, report.stats.bytes_out
    );
    Ok(())
}
