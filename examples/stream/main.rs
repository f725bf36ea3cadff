//! cargo run --release --example stream -- --bind 127.0.0.1 --port 7100
//!
//! A streaming server on baton. `GET <n>\n` streams `n` bytes of a fixed
//! pattern (byte `i` is `i % 251`), paced by the drain signal: however large
//! `n` and however slow the reader, at most 256 KiB + one 64 KiB chunk is
//! queued for the connection. Try it with
//! `printf 'GET 1073741824\n' | nc -q1 127.0.0.1 7100 | pv > /dev/null`.
//!
//! The TLS port (7101, a generated certificate unless --tls-cert-file and
//! --tls-key-file are given) offers ALPN `stream/1` and `echo/1` (unless
//! --tls-alpn names others) and picks
//! the codec from what the handshake agreed: `stream/1` speaks the line
//! protocol; `echo/1`, or no ALPN at all, echoes every byte instead (so
//! `GET 10` comes back as the line itself):
//! `openssl s_client -connect 127.0.0.1:7101 -alpn echo/1`.
//!
//! SIGINT or SIGTERM shuts down gracefully; SIGHUP reloads the certificate.

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

/// A streaming server on baton.
#[derive(Debug, Parser)]
#[command(
    version,
    about = "A streaming server on baton: GET <n> streams n bytes with bounded memory; the TLS codec is picked by ALPN."
)]
struct Args {
    /// Addresses to listen on (IPv4 or IPv6; repeat or list several).
    #[arg(long, num_args = 1.., default_value = "127.0.0.1")]
    bind: Vec<IpAddr>,
    /// Plain TCP port (0 picks a free port).
    #[arg(long, default_value_t = 7100)]
    port: u16,
    /// TLS port; 0 turns TLS off.
    #[arg(long, default_value_t = 7101)]
    tls_port: u16,
    #[command(flatten)]
    runtime: RuntimeArgs,
    #[command(flatten)]
    tls: TlsArgs,
}

fn main() -> ExitCode {
    let mut args = Args::parse();
    if args.tls.tls_alpn.is_empty() {
        args.tls.tls_alpn = [service::ALPN_STREAM, service::ALPN_ECHO]
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .to_vec();
    }
    serve::main_with("stream", || {
        let config = args.runtime.config();
        let listen = serve::Listen {
            binds: &args.bind,
            port: Some(args.port),
            tls_port: args.tls_port,
            tls: &args.tls,
        };
        let report = serve::serve("stream", listen, config, service::Stream::default())?;
        let s = &report.service;
        println!(
            "stream stopped: {} streams, {} pattern bytes queued, at most {} bytes held for one connection \
             ({} waits for the reader); connections: {} line protocol, {} echo",
            s.streams_completed,
            s.bytes_streamed,
            s.max_output_len,
            s.drains,
            s.opened[0],
            s.opened[1]
        );
        Ok(())
    })
}
