//! cargo run --release --example tls_proxy -- --upstream 127.0.0.1:6379
//!
//! A TLS-terminating TCP proxy on baton, what HAProxy's TCP mode, hitch or
//! stunnel are deployed for in front of Redis: clients connect with TLS to
//! --tls-port (6443; a generated certificate unless --tls-cert-file and
//! --tls-key-file are given), and each gets its own connection to
//! --upstream, plain or (--upstream-tls) TLS. Bytes pass unchanged both
//! ways; one side's end (FIN) is passed on to the other after everything
//! before it; a reset or error on either side closes both.
//!
//! SIGHUP reloads the certificate files, SIGUSR1 prints a stats line,
//! SIGINT/SIGTERM drain (five seconds to flush) and print it at exit.

mod counters;
#[path = "../common/runtime_args.rs"]
mod runtime_args;
// `serve` itself is for servers without threads of their own.
#[allow(dead_code)]
#[path = "../common/serve.rs"]
mod serve;
mod service;
#[path = "../common/tls_args.rs"]
mod tls_args;
mod upstream;

use std::net::IpAddr;
use std::process::ExitCode;

use clap::Parser;
use runtime_args::RuntimeArgs;
use tls_args::TlsArgs;
use upstream::UpstreamArgs;

/// A TLS-terminating TCP proxy on baton.
#[derive(Debug, Parser)]
#[command(
    version,
    about = "A TLS-terminating TCP proxy on baton: TLS in front of a plaintext (or TLS) upstream."
)]
struct Args {
    /// Addresses to listen on (IPv4 or IPv6; repeat or list several).
    #[arg(long, num_args = 1.., default_value = "127.0.0.1")]
    bind: Vec<IpAddr>,
    /// TLS port clients connect to (0 picks a free port).
    #[arg(long, default_value_t = 6443)]
    tls_port: u16,
    /// Also accept plain TCP on this port (off by default).
    #[arg(long)]
    port: Option<u16>,
    #[command(flatten)]
    upstream: UpstreamArgs,
    #[command(flatten)]
    runtime: RuntimeArgs,
    #[command(flatten)]
    tls: TlsArgs,
}

fn main() -> ExitCode {
    let args = Args::parse();
    serve::main_with("tls_proxy", || {
        let target = args.upstream.target()?;
        let config = args
            .runtime
            .config()
            .connect_timeout(args.upstream.connect_timeout());
        let listen = serve::Listen {
            binds: &args.bind,
            port: args.port,
            tls_port: args.tls_port,
            tls: &args.tls,
        };
        println!("tls_proxy forwarding to {}", args.upstream.upstream);
        let proxy = service::Proxy::new(target, args.upstream.fin_timeout());
        let report = serve::serve_with("tls_proxy", listen, config, proxy, |handle| {
            upstream::print_stats_on_usr1(handle.clone())
        })?;
        println!("{}", report.service.counters.line(&report.stats));
        Ok(())
    })
}
