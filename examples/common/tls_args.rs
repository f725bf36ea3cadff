//! Redis-style TLS flags shared by the examples, and the signal thread
//! (SIGINT/SIGTERM: graceful shutdown; SIGHUP: reload the certificate files).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use baton::tls::rustls::ServerConfig;
use baton::tls::{generate_self_signed, ClientAuth, TlsSettings};
use baton::LoopHandle;
use clap::{Args, ValueEnum};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// `--tls-auth-clients`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AuthClients {
    /// Require a client certificate signed by `--tls-ca-cert-file`.
    Yes,
    /// Do not ask for one.
    No,
    /// Verify one if given.
    Optional,
}

/// TLS flags, named as Redis names them.
#[derive(Debug, Args)]
pub struct TlsArgs {
    /// PEM certificate chain. With neither this nor --tls-key-file, a
    /// self-signed certificate for localhost is generated at start.
    #[arg(long, requires = "tls_key_file")]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key for --tls-cert-file.
    #[arg(long, requires = "tls_cert_file")]
    pub tls_key_file: Option<PathBuf>,
    /// PEM CA certificates that sign client certificates.
    #[arg(long)]
    pub tls_ca_cert_file: Option<PathBuf>,
    /// Client certificate policy (yes and optional need --tls-ca-cert-file).
    #[arg(long, value_enum, default_value = "no")]
    pub tls_auth_clients: AuthClients,
    /// Close connections whose TLS handshake takes longer than this.
    #[arg(long, default_value_t = 10_000)]
    pub tls_handshake_timeout_ms: u64,
    /// ALPN protocols offered, in preference order (repeat or list several;
    /// none: no ALPN). A server may fill in its own before serving.
    #[arg(long, num_args = 1..)]
    pub tls_alpn: Vec<String>,
}

impl TlsArgs {
    /// The settings these flags describe, generating a certificate (and
    /// saying where) when none was given.
    pub fn settings(&self, name: &str) -> Result<TlsSettings, String> {
        let (cert, key) = match (&self.tls_cert_file, &self.tls_key_file) {
            (Some(cert), Some(key)) => (cert.clone(), key.clone()),
            _ => {
                let dir = std::env::temp_dir().join(format!("baton-{name}-tls"));
                let (cert, key) = generate_self_signed(&dir).map_err(|e| e.to_string())?;
                println!(
                    "{name}: no --tls-cert-file given; generated a self-signed certificate for localhost: {} \
                     (clients can trust that file, e.g. openssl s_client -CAfile {})",
                    cert.display(),
                    cert.display()
                );
                (cert, key)
            }
        };
        Ok(TlsSettings {
            ca_file: self.tls_ca_cert_file.clone(),
            client_auth: match self.tls_auth_clients {
                AuthClients::Yes => ClientAuth::Required,
                AuthClients::No => ClientAuth::No,
                AuthClients::Optional => ClientAuth::Optional,
            },
            alpn: self
                .tls_alpn
                .iter()
                .map(|p| p.as_bytes().to_vec())
                .collect(),
            ..TlsSettings::from_files(cert, key)
        })
    }

    /// Builds the server configuration, with a clear error for a bad file.
    pub fn build(settings: &TlsSettings) -> Result<Arc<ServerConfig>, String> {
        settings.build().map_err(|e| format!("TLS: {e}"))
    }

    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.tls_handshake_timeout_ms)
    }
}

/// SIGINT/SIGTERM start a graceful shutdown (in-flight replies flush for up
/// to `grace`); SIGHUP re-reads the TLS files (a bad file is logged and the
/// current certificate stays).
pub fn handle_signals<C: Send + 'static>(
    handle: LoopHandle<C>,
    tls: Option<TlsSettings>,
    grace: Duration,
) -> std::io::Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    std::thread::Builder::new().name("signals".into()).spawn(move || {
        for signal in signals.forever() {
            if signal == SIGHUP {
                match &tls {
                    Some(settings) => match handle.reload_tls(settings) {
                        Ok(()) => tracing::info!("SIGHUP: TLS certificate reloaded"),
                        Err(e) => tracing::error!(error = %e, "SIGHUP: TLS reload refused; keeping the current certificate"),
                    },
                    None => tracing::info!("SIGHUP: no TLS listener to reload"),
                }
                continue;
            }
            tracing::info!(signal, "signal received; shutting down");
            handle.shutdown(grace);
            return;
        }
    })?;
    Ok(())
}
