//! The load generator's TLS client configuration: trust a given CA, or
//! (for benchmarking a server with a throwaway certificate) verify nothing.

use std::path::Path;
use std::sync::Arc;

use baton::tls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use baton::tls::rustls::client::Resumption;
use baton::tls::rustls::crypto::{verify_tls12_signature, verify_tls13_signature};
use baton::tls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use baton::tls::rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use baton::tls::{client_config_trusting, crypto_provider};

/// How the generator checks the server's certificate.
#[derive(Debug, Clone)]
pub enum Trust<'a> {
    /// Only certificates signed by the CA in this PEM file.
    CaFile(&'a Path),
    /// Anything (signatures are still checked, names and chains are not).
    Insecure,
}

/// A client configuration; `resume` turns session resumption (tickets and
/// session ids) on or off.
pub fn client_config(trust: Trust<'_>, resume: bool) -> Result<Arc<ClientConfig>, String> {
    let mut config = match trust {
        Trust::CaFile(path) => client_config_trusting(path, &[]).map_err(|e| e.to_string())?,
        Trust::Insecure => ClientConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate))
            .with_no_client_auth(),
    };
    if !resume {
        config.resumption = Resumption::disabled();
    }
    Ok(Arc::new(config))
}

/// The server name to send in SNI and (when verifying) check.
pub fn server_name(name: &str) -> Result<ServerName<'static>, String> {
    ServerName::try_from(name.to_owned()).map_err(|e| format!("server name {name:?}: {e}"))
}

/// Accepts any certificate chain but still checks the handshake signature,
/// so the server does the same work as with a verifying client.
#[derive(Debug)]
struct AnyCertificate;

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, baton::tls::rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, baton::tls::rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &crypto_provider().signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, baton::tls::rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &crypto_provider().signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        crypto_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}
