//! cargo run --release --example echo -- --bind 127.0.0.1 --port 7000 --io-threads 2
//!
//! An echo server on baton: every byte received is sent back in order, on a
//! plain port (7000) and a TLS port (7001, a generated certificate unless
//! --tls-cert-file/--tls-key-file are given). SIGINT or SIGTERM shuts it down
//! gracefully (in-flight replies flush for up to five seconds), then it exits
//! 0; SIGHUP reloads the certificate files.

#[path = "../common/runtime_args.rs"]
mod runtime_args;
#[path = "../common/serve.rs"]
mod serve;
mod service;
#[path = "../common/tls_args.rs"]
mod tls_args;

use std::net::IpAddr;
use std::process::ExitCode;

use clap::Parser;
use runtime_args::RuntimeArgs;
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
    #[command(flatten)]
    runtime: RuntimeArgs,
    #[command(flatten)]
    tls: TlsArgs,
}

fn main() -> ExitCode {
    let args = Args::parse();
    serve::main_with("echo", || {
        let config = args.runtime.config();
        let listen = serve::Listen {
            binds: &args.bind,
            port: Some(args.port),
            tls_port: args.tls_port,
            tls: &args.tls,
        };
        let report = serve::serve("echo", listen, config, service::Echo)?;
        println!(
            "echo stopped: {} connections served, {} bytes in, {} bytes out",
            report.stats.connections_accepted, report.stats.bytes_in, report.stats.bytes_out
        );
        Ok(())
    })
}
