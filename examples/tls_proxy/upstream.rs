//! The upstream flags (`--upstream`, TLS origination as stunnel's client
//! mode) and the SIGUSR1 stats thread.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use baton::tls::rustls::pki_types::ServerName;
use baton::tls::ClientTlsSettings;
use baton::{Connect, LoopHandle};
use clap::Args;
use signal_hook::consts::SIGUSR1;
use signal_hook::iterator::Signals;

use crate::service::Command;

#[derive(Debug, Args)]
pub struct UpstreamArgs {
    /// The server every client is forwarded to, HOST:PORT.
    #[arg(long)]
    pub upstream: String,
    /// Speak TLS to the upstream (verifying its certificate).
    #[arg(long)]
    pub upstream_tls: bool,
    /// PEM CA certificates the upstream's certificate must chain to
    /// (default: the system's bundle).
    #[arg(long, requires = "upstream_tls")]
    pub upstream_ca_cert_file: Option<PathBuf>,
    /// The name to send (SNI) and verify the upstream's certificate for
    /// (default: the host of --upstream).
    #[arg(long, requires = "upstream_tls")]
    pub upstream_sni: Option<String>,
    /// Give up an upstream connect after this long (the client is closed).
    #[arg(long, default_value_t = 5_000)]
    pub connect_timeout_ms: u64,
    /// Close a pair this long after one side ended (FIN) if the other has
    /// not ended too (HAProxy's `timeout client-fin`).
    #[arg(long, default_value_t = 60_000)]
    pub fin_timeout_ms: u64,
}

impl UpstreamArgs {
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    pub fn fin_timeout(&self) -> Duration {
        Duration::from_millis(self.fin_timeout_ms)
    }

    /// The connection every client gets, resolved once at start.
    pub fn target(&self) -> Result<Connect, String> {
        let addr: SocketAddr = self
            .upstream
            .to_socket_addrs()
            .map_err(|e| format!("--upstream {}: {e}", self.upstream))?
            .next()
            .ok_or_else(|| format!("--upstream {}: no address", self.upstream))?;
        if !self.upstream_tls {
            return Ok(Connect::plain(addr));
        }
        let mut settings = ClientTlsSettings::default();
        settings.ca_file = self.upstream_ca_cert_file.clone();
        let config = settings.build().map_err(|e| format!("upstream TLS: {e}"))?;
        let host = match &self.upstream_sni {
            Some(name) => name.clone(),
            None => host_of(&self.upstream),
        };
        let name = match host.parse::<IpAddr>() {
            Ok(ip) => ServerName::IpAddress(ip.into()),
            Err(_) => ServerName::try_from(host.clone())
                .map_err(|e| format!("--upstream-sni {host}: {e}"))?,
        };
        Ok(Connect::tls(addr, config, name))
    }
}

/// `HOST` of `HOST:PORT` (`[v6]:PORT` too).
fn host_of(upstream: &str) -> String {
    let host = upstream.rsplit_once(':').map_or(upstream, |(h, _)| h);
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned()
}

/// SIGUSR1 asks the loop to print the stats line.
pub fn print_stats_on_usr1(handle: LoopHandle<Command>) -> std::io::Result<()> {
    let mut signals = Signals::new([SIGUSR1])?;
    std::thread::Builder::new()
        .name("sigusr1".into())
        .spawn(move || {
            for _ in signals.forever() {
                if handle.post(Command::PrintStats).is_err() {
                    return;
                }
            }
        })?;
    Ok(())
}
