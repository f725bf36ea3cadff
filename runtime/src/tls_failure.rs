//! Why a TLS session failed, in the categories an operator acts on.

use baton_tls::rustls;

/// A TLS failure, classified from the rustls error. More categories may be
/// added in minor versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TlsFailure {
    /// The bytes were not TLS (garbage, plaintext to the TLS port).
    NotTls,
    /// The client asked (SNI) for a name this server has no certificate for.
    UnknownServerName,
    /// Client authentication is required and no certificate was presented.
    NoClientCertificate,
    /// The client's certificate did not verify.
    BadClientCertificate,
    /// No common protocol version, cipher suite or other parameter.
    Incompatible,
    /// The peer sent a fatal alert.
    AlertReceived,
    /// Anything else.
    Other,
}

impl TlsFailure {
    /// Classifies a rustls error.
    pub(crate) fn classify(error: &rustls::Error) -> Self {
        use rustls::Error as E;
        match error {
            E::InvalidMessage(_)
            | E::InappropriateMessage { .. }
            | E::InappropriateHandshakeMessage { .. } => TlsFailure::NotTls,
            E::NoCertificatesPresented => TlsFailure::NoClientCertificate,
            E::InvalidCertificate(_) => TlsFailure::BadClientCertificate,
            E::PeerIncompatible(_) => TlsFailure::Incompatible,
            E::AlertReceived(_) => TlsFailure::AlertReceived,
            // rustls reports a resolver that found no certificate this way;
            // `tests/tls.rs` pins the text so an upgrade that changes it fails.
            E::General(message) if message.contains("no server certificate chain resolved") => {
                TlsFailure::UnknownServerName
            }
            _ => TlsFailure::Other,
        }
    }
}
