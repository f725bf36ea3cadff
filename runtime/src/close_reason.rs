//! Why a connection closed, and the counter each reason is counted in.

use crate::{ProtocolErrorKind, TlsFailure};

/// Why a connection closed. Each reason is counted separately. More
/// reasons may be added in minor versions: a `match` needs a `_` arm.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The peer closed its side and all output was flushed.
    PeerClosed,
    /// A socket error (reset, broken pipe, ...).
    Io(std::io::ErrorKind),
    /// The service asked for it ([`Ctx::close`](crate::Ctx::close)).
    ByService,
    /// Nothing received within the idle timeout.
    IdleTimeout,
    /// Queued output passed the hard limit.
    OutputLimit,
    /// The peer did not take its last output within the close flush timeout.
    FlushTimeout,
    /// The codec rejected the input.
    Protocol(ProtocolErrorKind),
    /// The codec panicked.
    CodecPanic,
    /// A service callback panicked.
    ServicePanic,
    /// The server is shutting down.
    Shutdown,
    /// TLS failed (during or after the handshake).
    Tls(TlsFailure),
    /// The TLS handshake did not finish within the handshake timeout.
    HandshakeTimeout,
    /// A connection the service opened did not connect within its connect
    /// timeout.
    ConnectTimeout,
}

/// Declares each close reason's counter from one table of `name: pattern`
/// rows: [`CloseReason::NAMES`] (the names, in row order) and
/// [`CloseReason::index`] (the row a reason matches). The match is
/// exhaustive, so a new reason without a row does not compile, and an
/// overlapping row is an unreachable pattern.
macro_rules! close_reason_counters {
    ($($name:ident: $pattern:pat,)*) => {
        /// One variant per row: its discriminant is the row's index.
        #[allow(non_camel_case_types)]
        enum Row {
            $($name,)*
        }

        impl CloseReason {
            /// Every reason's counter name, in [`index`](Self::index) order.
            /// A slice, not an array: appending a reason changes no type.
            pub const NAMES: &'static [&'static str] = &[$(stringify!($name)),*];

            /// How many reasons there are (`NAMES.len()`), for the counters'
            /// own arrays.
            pub(crate) const COUNT: usize = [$(Row::$name),*].len();

            /// Position of this reason in [`NAMES`](Self::NAMES) and in
            /// [`StatsSnapshot::closed`](crate::StatsSnapshot::closed).
            pub fn index(&self) -> usize {
                match self {
                    $($pattern => Row::$name as usize,)*
                }
            }
        }
    };
}

// The names are public (INFO output, dashboards): renaming one is a breaking
// change; appending is not.
close_reason_counters! {
    peer_closed: CloseReason::PeerClosed,
    io_error: CloseReason::Io(_),
    by_service: CloseReason::ByService,
    idle_timeout: CloseReason::IdleTimeout,
    output_limit: CloseReason::OutputLimit,
    flush_timeout: CloseReason::FlushTimeout,
    frame_too_large: CloseReason::Protocol(ProtocolErrorKind::FrameTooLarge),
    protocol_error: CloseReason::Protocol(ProtocolErrorKind::Malformed),
    codec_panic: CloseReason::CodecPanic,
    service_panic: CloseReason::ServicePanic,
    shutdown: CloseReason::Shutdown,
    tls_not_tls: CloseReason::Tls(TlsFailure::NotTls),
    tls_unknown_server_name: CloseReason::Tls(TlsFailure::UnknownServerName),
    tls_no_client_certificate: CloseReason::Tls(TlsFailure::NoClientCertificate),
    tls_bad_client_certificate: CloseReason::Tls(TlsFailure::BadClientCertificate),
    tls_incompatible: CloseReason::Tls(TlsFailure::Incompatible),
    tls_alert_received: CloseReason::Tls(TlsFailure::AlertReceived),
    tls_other: CloseReason::Tls(TlsFailure::Other),
    handshake_timeout: CloseReason::HandshakeTimeout,
    connect_timeout: CloseReason::ConnectTimeout,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_close_reason_has_its_own_counter() {
        let mut reasons = vec![
            CloseReason::PeerClosed,
            CloseReason::Io(std::io::ErrorKind::Other),
            CloseReason::ByService,
            CloseReason::IdleTimeout,
            CloseReason::OutputLimit,
            CloseReason::FlushTimeout,
            CloseReason::Protocol(ProtocolErrorKind::FrameTooLarge),
            CloseReason::Protocol(ProtocolErrorKind::Malformed),
            CloseReason::CodecPanic,
            CloseReason::ServicePanic,
            CloseReason::Shutdown,
            CloseReason::HandshakeTimeout,
            CloseReason::ConnectTimeout,
        ];
        for failure in [
            TlsFailure::NotTls,
            TlsFailure::UnknownServerName,
            TlsFailure::NoClientCertificate,
            TlsFailure::BadClientCertificate,
            TlsFailure::Incompatible,
            TlsFailure::AlertReceived,
            TlsFailure::Other,
        ] {
            reasons.push(CloseReason::Tls(failure));
        }
        let mut indices: Vec<usize> = reasons.iter().map(CloseReason::index).collect();
        indices.sort_unstable();
        assert_eq!(indices, (0..CloseReason::NAMES.len()).collect::<Vec<_>>());
    }
}
