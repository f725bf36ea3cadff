//! Client-side TLS settings (for connections a server opens itself: a
//! proxy's upstream, a replica's primary), and the rustls `ClientConfig`
//! built from them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

use crate::config::{read_certs, TlsConfigError};
use crate::crypto_provider;

/// Where the system's trusted roots are, by distribution, when no CA file
/// is given (`SSL_CERT_FILE` first, as OpenSSL does).
const SYSTEM_BUNDLES: [&str; 3] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// Everything needed to build a client-side TLS configuration. Building
/// reads the files; a bad file is an error.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ClientTlsSettings {
    /// CA certificates (PEM) the server's certificate must chain to. `None`:
    /// the system's bundle (`SSL_CERT_FILE`, else the distribution's file).
    pub ca_file: Option<PathBuf>,
    /// A client certificate chain and key (PEM), for servers that require
    /// one (mTLS).
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// ALPN protocols offered, in preference order (empty: no ALPN).
    pub alpn: Vec<Vec<u8>>,
    /// Refuse TLS 1.2 (TLS 1.3 is always allowed).
    pub tls13_only: bool,
}

impl ClientTlsSettings {
    /// Settings that trust the CAs in `ca_file` and the defaults otherwise.
    pub fn trusting(ca_file: impl Into<PathBuf>) -> Self {
        Self {
            ca_file: Some(ca_file.into()),
            ..Self::default()
        }
    }

    /// Reads the files and builds the rustls configuration. Sessions are
    /// kept for resumption (rustls's in-memory store), so reconnecting to
    /// the same server is cheaper.
    pub fn build(&self) -> Result<Arc<ClientConfig>, TlsConfigError> {
        let provider = crypto_provider();
        let ca_file = match &self.ca_file {
            Some(path) => path.clone(),
            None => system_bundle()?,
        };
        let mut roots = RootCertStore::empty();
        for cert in read_certs(&ca_file)? {
            roots
                .add(cert)
                .map_err(|e| TlsConfigError::new("CA certificate", Some(&ca_file), e))?;
        }
        let versions: &[&rustls::SupportedProtocolVersion] = if self.tls13_only {
            &[&rustls::version::TLS13]
        } else {
            &[&rustls::version::TLS13, &rustls::version::TLS12]
        };
        let builder = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .map_err(|e| TlsConfigError::new("TLS versions", None, e))?
            .with_root_certificates(roots);
        let mut config = match &self.client_cert {
            None => builder.with_no_client_auth(),
            Some((cert_file, key_file)) => {
                let certs: Vec<CertificateDer<'static>> = read_certs(cert_file)?;
                let key = PrivateKeyDer::from_pem_file(key_file)
                    .map_err(|e| TlsConfigError::new("key file", Some(key_file), e))?;
                builder
                    .with_client_auth_cert(certs, key)
                    .map_err(|e| TlsConfigError::new("client certificate", Some(cert_file), e))?
            }
        };
        config.alpn_protocols = self.alpn.clone();
        Ok(Arc::new(config))
    }
}

fn system_bundle() -> Result<PathBuf, TlsConfigError> {
    let from_env = std::env::var_os("SSL_CERT_FILE").map(PathBuf::from);
    from_env
        .into_iter()
        .chain(SYSTEM_BUNDLES.iter().map(PathBuf::from))
        .find(|p| Path::new(p).is_file())
        .ok_or_else(|| {
            TlsConfigError::new(
                "CA file",
                None,
                "no CA file given and no system bundle found (set SSL_CERT_FILE)",
            )
        })
}
