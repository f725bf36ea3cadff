//! What every example server does around its service: logging, listeners
//! (plain and TLS on each bind address), the banner, signals, run.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use baton::{Config, LoopHandle, RunReport, Server, Service};

use crate::tls_args::{handle_signals, TlsArgs};

/// Sets up logging (`RUST_LOG`, default `info`), runs `run`, and turns its
/// error into a message and a failing exit code.
pub fn main_with(name: &str, run: impl FnOnce() -> Result<(), String>) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Where to listen: plain `port` (if any) and, unless `tls_port` is 0, TLS
/// on each of `binds`.
pub struct Listen<'a> {
    pub binds: &'a [IpAddr],
    pub port: Option<u16>,
    pub tls_port: u16,
    pub tls: &'a TlsArgs,
}

/// Builds the server, prints where it listens, handles signals (graceful
/// shutdown with five seconds to flush; SIGHUP reloads TLS) and runs it.
pub fn serve<S: Service>(
    name: &str,
    listen: Listen<'_>,
    config: Config,
    service: S,
) -> Result<RunReport<S>, String> {
    serve_with(name, listen, config, service, |_| Ok(()))
}

/// [`serve`], calling `before_run` with the loop's handle first (to start
/// threads of the server's own, such as another signal's).
pub fn serve_with<S: Service>(
    name: &str,
    listen: Listen<'_>,
    mut config: Config,
    service: S,
    before_run: impl FnOnce(&LoopHandle<S::Command>) -> std::io::Result<()>,
) -> Result<RunReport<S>, String> {
    config.handshake_timeout = listen.tls.handshake_timeout();
    let io_threads = config.io_threads;
    let tls = (listen.tls_port != 0)
        .then(|| listen.tls.settings(name))
        .transpose()?;
    let mut builder = Server::builder().config(config);
    for ip in listen.binds {
        if let Some(port) = listen.port {
            builder = builder.listen(SocketAddr::new(*ip, port));
        }
        if let Some(settings) = &tls {
            builder = builder.listen_tls(
                SocketAddr::new(*ip, listen.tls_port),
                TlsArgs::build(settings)?,
            );
        }
    }
    let server = builder
        .build(service)
        .map_err(|e| format!("cannot listen: {e}"))?;
    for addr in server.local_addrs() {
        println!("{name} listening on {addr} (io threads: {io_threads})");
    }
    before_run(&server.handle()).map_err(|e| e.to_string())?;
    handle_signals(server.handle(), tls, Duration::from_secs(5)).map_err(|e| e.to_string())?;
    server.run().map_err(|e| e.to_string())
}
