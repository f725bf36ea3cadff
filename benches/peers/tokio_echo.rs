//! cargo run --release --example tokio_echo -- --port 7100 --tls-port 7101
//!
//! The peer for baton's echo example in the benchmarks: the same protocol
//! (every byte comes back, in order), written the way a tokio user would
//! write it: a task per connection, `read` then `write_all`, tokio-rustls
//! for TLS. TLS uses the same rustls `ServerConfig` baton builds (same
//! crypto provider, suites, tickets and session cache), so the comparison is
//! of the runtimes, not of the TLS settings.

use std::net::SocketAddr;
use std::path::PathBuf;

use baton::tls::{generate_self_signed, TlsSettings};
use clap::Parser;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// A tokio + tokio-rustls echo server.
#[derive(Debug, Parser)]
#[command(about = "A tokio + tokio-rustls echo server (the benchmarks' peer for baton's echo).")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    bind: std::net::IpAddr,
    /// Plain TCP port.
    #[arg(long, default_value_t = 7100)]
    port: u16,
    /// TLS port; 0 turns TLS off.
    #[arg(long, default_value_t = 7101)]
    tls_port: u16,
    /// PEM certificate chain (a self-signed one is generated if absent).
    #[arg(long, requires = "tls_key_file")]
    tls_cert_file: Option<PathBuf>,
    /// PEM private key for --tls-cert-file.
    #[arg(long, requires = "tls_cert_file")]
    tls_key_file: Option<PathBuf>,
    /// Worker threads; 0 runs everything on one thread (tokio's
    /// current-thread runtime, like baton with no IO threads).
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

fn main() -> Result<(), String> {
    let args = Args::parse();
    let runtime = if args.threads == 0 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(args.threads);
        b
    }
    .enable_io()
    .build()
    .map_err(|e| e.to_string())?;
    runtime.block_on(serve(args))
}

async fn serve(args: Args) -> Result<(), String> {
    let plain = TcpListener::bind(SocketAddr::new(args.bind, args.port))
        .await
        .map_err(|e| format!("bind port {}: {e}", args.port))?;
    println!(
        "tokio_echo listening on {}",
        plain.local_addr().map_err(|e| e.to_string())?
    );
    if args.tls_port != 0 {
        let (cert, key) = match (&args.tls_cert_file, &args.tls_key_file) {
            (Some(cert), Some(key)) => (cert.clone(), key.clone()),
            _ => generate_self_signed(&std::env::temp_dir().join("baton-tokio-echo-tls"))
                .map_err(|e| e.to_string())?,
        };
        let config = TlsSettings::from_files(cert, key)
            .build()
            .map_err(|e| e.to_string())?;
        let acceptor = TlsAcceptor::from(config);
        let tls = TcpListener::bind(SocketAddr::new(args.bind, args.tls_port))
            .await
            .map_err(|e| format!("bind port {}: {e}", args.tls_port))?;
        println!(
            "tokio_echo listening on {} (TLS)",
            tls.local_addr().map_err(|e| e.to_string())?
        );
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = tls.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(stream) = acceptor.accept(stream).await {
                        echo(stream).await;
                    }
                });
            }
        });
    }
    loop {
        let Ok((stream, _)) = plain.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(echo(stream));
    }
}

/// Sends back everything read until EOF or an error.
async fn echo(mut stream: impl AsyncRead + AsyncWrite + Unpin) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if stream.write_all(&buf[..n]).await.is_err() {
                    break;
                }
                if stream.flush().await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = stream.shutdown().await;
}
