//! TLS settings, and the rustls `ServerConfig` built from them.
//!
//! Defaults are rustls's safe ones: TLS 1.3 and 1.2 with their modern AEAD
//! suites only, no client authentication unless asked, a session cache and
//! stateless tickets for resumption.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{
    ClientHello, ResolvesServerCert, ServerSessionMemoryCache, WebPkiClientVerifier,
};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig, SupportedProtocolVersion};

/// The crypto provider baton uses: aws-lc-rs when the `aws-lc-rs` feature is
/// on (the default; see ARCHITECTURE.md for the measurements), otherwise ring.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    #[cfg(feature = "aws-lc-rs")]
    return Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    #[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
    return Arc::new(rustls::crypto::ring::default_provider());
}

fn ticketer() -> Result<Arc<dyn rustls::server::ProducesTickets>, rustls::Error> {
    #[cfg(feature = "aws-lc-rs")]
    return rustls::crypto::aws_lc_rs::Ticketer::new();
    #[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
    return rustls::crypto::ring::Ticketer::new();
}

/// Whether clients must present a certificate (mTLS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    /// Clients are not asked for a certificate (Redis `tls-auth-clients no`).
    #[default]
    No,
    /// A certificate is verified if given; clients without one are accepted.
    Optional,
    /// A certificate signed by the CA is required.
    Required,
}

/// A certificate chosen when the client asks for `name` (SNI).
#[derive(Debug, Clone)]
pub struct SniCert {
    /// The server name, exactly as clients send it.
    pub name: String,
    /// PEM certificate chain.
    pub cert_file: PathBuf,
    /// PEM private key.
    pub key_file: PathBuf,
}

/// Where the default certificate comes from.
#[derive(Debug, Clone)]
pub enum CertSource {
    /// PEM files given by the operator.
    Files {
        /// PEM certificate chain.
        cert_file: PathBuf,
        /// PEM private key.
        key_file: PathBuf,
    },
}

/// Everything needed to build a server-side TLS configuration. Building
/// reads the files; a bad file is an error and nothing changes.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// The certificate for clients that send no SNI (or any name, when
    /// `sni` is empty).
    pub cert: CertSource,
    /// Certificates by server name. When non-empty, a client asking for a
    /// name not listed here is refused (the handshake fails and is counted
    /// as an unknown server name); a client sending no name gets `cert`.
    pub sni: Vec<SniCert>,
    /// CA certificates (PEM) that sign client certificates.
    pub ca_file: Option<PathBuf>,
    /// Client certificate policy; `Optional` and `Required` need `ca_file`.
    pub client_auth: ClientAuth,
    /// ALPN protocols offered, in preference order (empty: no ALPN).
    pub alpn: Vec<Vec<u8>>,
    /// Also allow TLS 1.2 (TLS 1.3 is always on). Default true.
    pub tls12: bool,
    /// Sessions kept for resumption by session id; 0 turns the cache off.
    /// Default 10,240.
    pub session_cache: usize,
    /// Stateless resumption tickets. Default on.
    pub tickets: bool,
}

impl TlsSettings {
    /// Settings with the given default certificate and the defaults above.
    pub fn from_files(cert_file: impl Into<PathBuf>, key_file: impl Into<PathBuf>) -> Self {
        Self {
            cert: CertSource::Files {
                cert_file: cert_file.into(),
                key_file: key_file.into(),
            },
            sni: Vec::new(),
            ca_file: None,
            client_auth: ClientAuth::No,
            alpn: Vec::new(),
            tls12: true,
            session_cache: 10_240,
            tickets: true,
        }
    }

    /// Reads the files and builds the rustls configuration.
    pub fn build(&self) -> Result<Arc<ServerConfig>, TlsConfigError> {
        let provider = crypto_provider();
        let CertSource::Files {
            cert_file,
            key_file,
        } = &self.cert;
        let default = load_certified_key(&provider, cert_file, key_file)?;
        let mut by_name = HashMap::new();
        for sni in &self.sni {
            by_name.insert(
                sni.name.clone(),
                load_certified_key(&provider, &sni.cert_file, &sni.key_file)?,
            );
        }
        let versions: &[&rustls::SupportedProtocolVersion] = if self.tls12 {
            &[&rustls::version::TLS13, &rustls::version::TLS12]
        } else {
            &[&rustls::version::TLS13]
        };
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(versions)
            .map_err(|e| TlsConfigError::new("TLS versions", None, e))?;
        let builder = match (self.client_auth, &self.ca_file) {
            (ClientAuth::No, _) => builder.with_no_client_auth(),
            (_, None) => {
                return Err(TlsConfigError::new(
                    "client authentication",
                    None,
                    "a CA file is needed to verify client certificates",
                ))
            }
            (auth, Some(ca_file)) => {
                let mut roots = RootCertStore::empty();
                for cert in read_certs(ca_file)? {
                    roots
                        .add(cert)
                        .map_err(|e| TlsConfigError::new("CA certificate", Some(ca_file), e))?;
                }
                let verifier = WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    Arc::clone(&provider),
                );
                let verifier = if auth == ClientAuth::Optional {
                    verifier.allow_unauthenticated()
                } else {
                    verifier
                };
                let verifier = verifier
                    .build()
                    .map_err(|e| TlsConfigError::new("client verifier", Some(ca_file), e))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder.with_cert_resolver(Arc::new(SniResolver { default, by_name }));
        config.alpn_protocols = self.alpn.clone();
        config.session_storage = if self.session_cache > 0 {
            ServerSessionMemoryCache::new(self.session_cache)
        } else {
            Arc::new(rustls::server::NoServerSessionStorage {})
        };
        if self.tickets {
            config.ticketer =
                ticketer().map_err(|e| TlsConfigError::new("session tickets", None, e))?;
            // TLS 1.3 clients get tickets after the handshake: a few, so
            // parallel reconnects can each resume.
            config.send_tls13_tickets = 2;
        }
        Ok(Arc::new(config))
    }
}

/// Chooses the certificate by SNI; see [`TlsSettings::sni`].
#[derive(Debug)]
struct SniResolver {
    default: Arc<CertifiedKey>,
    by_name: HashMap<String, Arc<CertifiedKey>>,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        match hello.server_name() {
            None => Some(Arc::clone(&self.default)),
            Some(_) if self.by_name.is_empty() => Some(Arc::clone(&self.default)),
            Some(name) => self.by_name.get(name).cloned(),
        }
    }
}

/// A client configuration that trusts only the certificates in `ca_file`
/// (PEM), for the given protocol versions (empty: TLS 1.3 and 1.2), with
/// baton's crypto provider. For clients, tests and load generators; returned
/// unwrapped so a caller can adjust it (resumption, ALPN) before `Arc::new`.
pub fn client_config_trusting(
    ca_file: &Path,
    versions: &[&'static SupportedProtocolVersion],
) -> Result<ClientConfig, TlsConfigError> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(ca_file)? {
        roots
            .add(cert)
            .map_err(|e| TlsConfigError::new("CA certificate", Some(ca_file), e))?;
    }
    let versions = if versions.is_empty() {
        rustls::DEFAULT_VERSIONS
    } else {
        versions
    };
    Ok(ClientConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(versions)
        .map_err(|e| TlsConfigError::new("TLS versions", None, e))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

pub(crate) fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| TlsConfigError::new("certificate file", Some(path), e))?
        .collect::<Result<_, _>>()
        .map_err(|e| TlsConfigError::new("certificate file", Some(path), e))?;
    if certs.is_empty() {
        return Err(TlsConfigError::new(
            "certificate file",
            Some(path),
            "no PEM certificate found",
        ));
    }
    Ok(certs)
}

fn load_certified_key(
    provider: &CryptoProvider,
    cert_file: &Path,
    key_file: &Path,
) -> Result<Arc<CertifiedKey>, TlsConfigError> {
    let certs = read_certs(cert_file)?;
    let key = PrivateKeyDer::from_pem_file(key_file)
        .map_err(|e| TlsConfigError::new("key file", Some(key_file), e))?;
    let key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| TlsConfigError::new("key file", Some(key_file), e))?;
    let certified = CertifiedKey::new(certs, key);
    certified
        .keys_match()
        .map_err(|e| TlsConfigError::new("certificate and key", Some(cert_file), e))?;
    Ok(Arc::new(certified))
}

/// Writes a self-signed certificate for `localhost`, `127.0.0.1` and `::1`
/// to `dir` (created if needed) as `cert.pem` and `key.pem` (mode 0600), and
/// returns their paths. For development: clients must trust `cert.pem`
/// explicitly (or skip verification).
pub fn generate_self_signed(dir: &Path) -> Result<(PathBuf, PathBuf), TlsConfigError> {
    let names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    let generated = rcgen::generate_simple_self_signed(names)
        .map_err(|e| TlsConfigError::new("self-signed certificate", None, e))?;
    std::fs::create_dir_all(dir)
        .map_err(|e| TlsConfigError::new("certificate directory", Some(dir), e))?;
    let (cert_file, key_file) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_file, generated.cert.pem())
        .map_err(|e| TlsConfigError::new("certificate file", Some(&cert_file), e))?;
    write_private(&key_file, generated.signing_key.serialize_pem())?;
    Ok((cert_file, key_file))
}

fn write_private(path: &Path, contents: String) -> Result<(), TlsConfigError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| TlsConfigError::new("key file", Some(path), e))?;
    file.write_all(contents.as_bytes())
        .map_err(|e| TlsConfigError::new("key file", Some(path), e))
}

/// A TLS configuration could not be built: which part, which file, why.
#[derive(Debug)]
pub struct TlsConfigError {
    what: &'static str,
    path: Option<PathBuf>,
    reason: String,
}

impl TlsConfigError {
    pub(crate) fn new(what: &'static str, path: Option<&Path>, reason: impl fmt::Display) -> Self {
        Self {
            what,
            path: path.map(Path::to_path_buf),
            reason: reason.to_string(),
        }
    }
}

impl fmt::Display for TlsConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(path) => write!(f, "{} {}: {}", self.what, path.display(), self.reason),
            None => write!(f, "{}: {}", self.what, self.reason),
        }
    }
}

impl std::error::Error for TlsConfigError {}
