//! The proxy's own counters and the stats line printed on SIGUSR1 and at
//! exit (the runtime's counters, handshakes and closes by reason, come from
//! `StatsSnapshot`, which `LoopHandle::stats` also gives).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use baton::{CloseReason, StatsSnapshot};

#[derive(Debug, Default)]
pub struct Counters {
    /// Client connections opened (TLS handshake done).
    pub clients: u64,
    /// Upstream connections opened.
    pub upstreams: u64,
    /// Bytes forwarded from clients to upstreams, and back.
    pub bytes_to_upstream: u64,
    pub bytes_to_client: u64,
    /// Upstream connections that could not be opened, by reason.
    pub connect_failures: BTreeMap<String, u64>,
    /// Upstream connections that ended other than cleanly (reset, error,
    /// timeout).
    pub upstream_errors: u64,
}

impl Counters {
    pub fn connect_failed(&mut self, reason: &str) {
        *self.connect_failures.entry(reason.to_owned()).or_default() += 1;
    }

    /// One line: pairs, bytes each way, connect failures by reason, TLS
    /// handshake failures by class.
    pub fn line(&self, stats: &StatsSnapshot) -> String {
        let mut line = format!(
            "tls_proxy stats: clients={} upstreams={} open_connections={} bytes_to_upstream={} bytes_to_client={} upstream_errors={} handshakes_ok={} handshakes_failed={}",
            self.clients,
            self.upstreams,
            stats.connections_open,
            self.bytes_to_upstream,
            self.bytes_to_client,
            self.upstream_errors,
            stats.handshakes_ok,
            stats.handshakes_failed,
        );
        let failures: u64 = self.connect_failures.values().sum();
        let _ = write!(line, " upstream_connect_failures={failures}");
        for (reason, n) in &self.connect_failures {
            let _ = write!(line, " connect_failed.{reason}={n}");
        }
        // Handshake failures by class.
        for (name, n) in CloseReason::NAMES.iter().zip(stats.closed.iter()) {
            if *n > 0 && (name.starts_with("tls_") || *name == "handshake_timeout") {
                let _ = write!(line, " closed.{name}={n}");
            }
        }
        line
    }
}
