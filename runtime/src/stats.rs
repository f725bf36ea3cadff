//! Counters a user can read while the server runs, from any thread.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use baton_io_threads::{LoopSignal, PoolStatsReader, WorkerStats};

use crate::CloseReason;

/// A counter with one writer (the loop) and any number of readers.
///
/// The single writer lets an increment be a plain load and store instead of
/// a locked read-modify-write; readers see a recent value.
#[derive(Debug, Default)]
pub(crate) struct Counter(AtomicU64);

impl Counter {
    pub(crate) fn add(&self, n: u64) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }
    pub(crate) fn sub(&self, n: u64) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_sub(n),
            Ordering::Relaxed,
        );
    }
    /// For a gauge the loop recomputes instead of counting.
    pub(crate) fn set(&self, n: u64) {
        self.0.store(n, Ordering::Relaxed);
    }
    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Declares the loop's counters ([`Stats`]), the public copy of them
/// ([`StatsSnapshot`]) and the copy itself (`StatsSource::snapshot`) from
/// one list, so a counter cannot exist without its snapshot field and doc,
/// nor be copied into another counter's field.
///
/// * `counters`: `internal_name => snapshot_field`, each a [`Counter`] in
///   `Stats` copied to a `u64` field; the doc is the snapshot field's.
/// * `internal`: fields of `Stats` that are not copied one to one.
/// * `derived`: snapshot fields computed from `Stats` (`stats`) and the
///   [`StatsSource`] (`source`), with the expression that computes them.
macro_rules! stats {
    (
        counters {
            $($(#[doc = $doc:literal])* $counter:ident => $field:ident,)*
        }
        internal {
            $($(#[doc = $idoc:literal])* $ifield:ident: $ity:ty,)*
        }
        derived |$stats:ident, $source:ident| {
            $($(#[doc = $ddoc:literal])* $dfield:ident: $dty:ty = $dexpr:expr,)*
        }
    ) => {
        /// The loop's counters. Written only by the loop's thread.
        #[derive(Debug, Default)]
        pub(crate) struct Stats {
            $($(#[doc = $doc])* pub(crate) $counter: Counter,)*
            $($(#[doc = $idoc])* pub(crate) $ifield: $ity,)*
        }

        /// A point-in-time copy of the server's counters. Each field is read
        /// separately, so two fields may be a few events apart. More counters
        /// may be added in minor versions.
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct StatsSnapshot {
            $($(#[doc = $doc])* pub $field: u64,)*
            $($(#[doc = $ddoc])* pub $dfield: $dty,)*
        }

        impl StatsSource {
            pub(crate) fn snapshot(&self) -> StatsSnapshot {
                let $stats: &Stats = &self.stats;
                let $source: &StatsSource = self;
                StatsSnapshot {
                    $($field: $stats.$counter.get(),)*
                    $($dfield: $dexpr,)*
                }
            }
        }
    };
}

stats! {
    counters {
        /// Connections open now.
        open => connections_open,
        /// Connections accepted (including rejected ones).
        accepted => connections_accepted,
        /// Outbound connections started with
        /// [`Ctx::connect`](crate::Ctx::connect).
        connects => connects_started,
        /// Of those, connections that never opened (refused, timed out, TLS
        /// failed, ...; the reasons are in `closed`, and each was reported to
        /// [`Service::on_connect_failed`](crate::Service::on_connect_failed)).
        connects_failed => connects_failed,
        /// Connections closed at once because `max_connections` was reached.
        rejected => connections_rejected,
        /// `accept` calls that failed (for example out of descriptors).
        accept_errors => accept_errors,
        /// Application bytes received.
        bytes_in => bytes_in,
        /// Application bytes sent.
        bytes_out => bytes_out,
        /// Frames decoded and delivered to the service.
        frames_in => frames_in,
        /// Frames queued for a connection while it was on an IO thread (they
        /// joined it when it came back).
        sends_while_away => sends_while_away,
        /// Times a connection's queued output reached the soft limit and the
        /// loop stopped reading from it (a client not reading its replies).
        backpressure_pauses => backpressure_pauses,
        /// Connections whose reading is paused by backpressure right now.
        paused => connections_paused,
        /// `epoll_ctl` calls made by the loop (registering and deleting
        /// sockets). Steady-state traffic makes none: see `ARCHITECTURE.md`.
        poller_ctl_calls => poller_ctl_calls,
        /// IO steps the loop planned because the TLS transport wanted to write
        /// (a handshake flight, an alert, close_notify) when there was no
        /// application output: rustls's wants, arriving back at the loop as
        /// state and becoming a step, never as a poller call.
        tls_write_steps => tls_write_steps,
        /// TLS handshakes completed.
        handshakes_ok => handshakes_ok,
        /// Of those, resumed sessions (ticket or session id).
        handshakes_resumed => handshakes_resumed,
        /// TLS connections closed before their handshake completed (any reason;
        /// the reasons are in `closed`).
        handshakes_failed => handshakes_failed,
        /// TLS configurations the loop has switched to
        /// ([`LoopHandle::reload_tls`](crate::LoopHandle::reload_tls)).
        tls_reloads => tls_reloads,
        /// Completed handshakes that negotiated TLS 1.3.
        tls13 => tls13_handshakes,
        /// Completed handshakes that negotiated TLS 1.2.
        tls12 => tls12_handshakes,
        /// Jobs handed to IO threads.
        jobs_dispatched => jobs_dispatched,
        /// Jobs run inline because an IO thread's queue was full.
        inline_fallbacks => inline_fallbacks,
        /// IO steps run inline on the loop: all of them with zero IO threads,
        /// and with [`IoActivation::Adaptive`](crate::IoActivation) those run
        /// while the loop has headroom.
        inline_steps => inline_steps,
        /// Times adaptive activation tried the mode not in use (IO threads when
        /// inline, inline when handing off) to measure which serves more.
        io_trials => io_trials,
        /// Iterations of the main loop.
        loop_iterations => loop_iterations,
        /// Timers waiting to fire, as of the end of the loop's last
        /// iteration: the service's, and each connection's own deadlines
        /// (idle, TLS handshake, connect, close flush). A connection holds
        /// none of its own once it is open, apart from the idle timeout.
        timers => timers_pending,
        /// Service callbacks that panicked.
        service_panics => service_panics,
    }
    internal {
        /// Completed handshakes per cipher suite, in `suite_names` order.
        suites: Vec<Counter>,
        /// The crypto provider's suites, as `TlsInfo::suite` prints them.
        suite_names: Vec<String>,
        /// 1 while IO steps go to the IO threads, else 0.
        io_offloading: Counter,
        /// Closes, indexed as [`CloseReason::NAMES`].
        closed: [Counter; CloseReason::COUNT],
        /// Outbound connections that never opened, by reason.
        connect_failed: [Counter; CloseReason::COUNT],
    }
    derived |stats, source| {
        /// Completed handshakes per cipher suite (suites never used are left out).
        cipher_suites: Vec<(String, u64)> = stats
            .suite_names
            .iter()
            .zip(&stats.suites)
            .map(|(name, count)| (name.clone(), count.get()))
            .filter(|(_, count)| *count > 0)
            .collect(),
        /// IO steps go to the IO threads right now (always with
        /// [`IoActivation::Always`](crate::IoActivation); with `Adaptive`, only
        /// while the loop is saturated and the IO threads serve more).
        io_offloading: bool = stats.io_offloading.get() != 0,
        /// Wake-ups of the loop sent by IO threads and posters.
        wakeups_sent: u64 = source.signal.stats().wakeups_sent,
        /// Notifications that found the loop awake (no wake-up needed).
        wakeups_coalesced: u64 = source.signal.stats().wakeups_coalesced,
        /// Per IO thread: jobs run, parks, panics.
        io_threads: Vec<WorkerStats> = source
            .pool
            .as_ref()
            .map(PoolStatsReader::worker_stats)
            .unwrap_or_default(),
        /// Closes by reason, indexed as [`CloseReason::NAMES`].
        closed: ClosedCounts =
            ClosedCounts(std::array::from_fn(|i| stats.closed[i].get())),
        /// Outbound connections ([`Ctx::connect`](crate::Ctx::connect)) that
        /// never opened, by reason, indexed as [`CloseReason::NAMES`] (each
        /// is also counted in `closed`).
        connect_failures: ClosedCounts =
            ClosedCounts(std::array::from_fn(|i| stats.connect_failed[i].get())),
    }
}

impl Stats {
    /// Counters, with one per cipher suite the crypto provider offers.
    pub(crate) fn new() -> Self {
        let suite_names: Vec<String> = baton_tls::crypto_provider()
            .cipher_suites
            .iter()
            .map(|s| format!("{:?}", s.suite()))
            .collect();
        Self {
            suites: suite_names.iter().map(|_| Counter::default()).collect(),
            suite_names,
            ..Self::default()
        }
    }

    /// Counts a completed handshake.
    pub(crate) fn handshake_completed(&self, info: &baton_tls::TlsInfo) {
        self.handshakes_ok.add(1);
        if info.resumed {
            self.handshakes_resumed.add(1);
        }
        match info.version {
            baton_tls::rustls::ProtocolVersion::TLSv1_3 => self.tls13.add(1),
            baton_tls::rustls::ProtocolVersion::TLSv1_2 => self.tls12.add(1),
            _ => {}
        }
        let name = format!("{:?}", info.suite);
        if let Some(i) = self.suite_names.iter().position(|n| *n == name) {
            self.suites[i].add(1);
        }
    }
}

/// Everything needed to take a snapshot from another thread.
#[derive(Debug, Clone)]
pub(crate) struct StatsSource {
    pub(crate) stats: Arc<Stats>,
    pub(crate) signal: Arc<LoopSignal>,
    pub(crate) pool: Option<PoolStatsReader>,
}

/// Closes counted by reason, indexed as [`CloseReason::NAMES`]
/// (`closed[reason.index()]`). Its length is not part of its type, so a new
/// close reason is not a breaking change.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClosedCounts([u64; CloseReason::COUNT]);

impl ClosedCounts {
    /// The counts, in [`CloseReason::NAMES`] order.
    pub fn iter(&self) -> std::slice::Iter<'_, u64> {
        self.0.iter()
    }
}

impl std::ops::Index<usize> for ClosedCounts {
    type Output = u64;
    fn index(&self, i: usize) -> &u64 {
        &self.0[i]
    }
}

impl IntoIterator for ClosedCounts {
    type Item = u64;
    type IntoIter = std::array::IntoIter<u64, { CloseReason::COUNT }>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a ClosedCounts {
    type Item = &'a u64;
    type IntoIter = std::slice::Iter<'a, u64>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl StatsSnapshot {
    /// Closes counted for `reason`.
    pub fn closed_for(&self, reason: &CloseReason) -> u64 {
        self.closed[reason.index()]
    }

    /// All closes.
    pub fn closed_total(&self) -> u64 {
        self.closed.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoWake;

    impl baton_io_threads::Wake for NoWake {
        fn wake(&self) {}
    }

    fn source(stats: Stats) -> StatsSource {
        StatsSource {
            stats: Arc::new(stats),
            signal: Arc::new(LoopSignal::new(NoWake)),
            pool: None,
        }
    }

    #[test]
    fn each_counter_is_copied_to_its_own_field() {
        let stats = Stats::new();
        // Distinct values, so a counter copied into a neighbour's field
        // shows up; the renamed ones are where a list could drift.
        stats.open.add(1);
        stats.accepted.add(2);
        stats.rejected.add(3);
        stats.paused.add(4);
        stats.tls13.add(5);
        stats.tls12.add(6);
        stats.service_panics.add(7);
        stats.io_offloading.add(1);
        stats.closed[CloseReason::Shutdown.index()].add(8);
        stats.timers.set(9);
        let snapshot = source(stats).snapshot();
        assert_eq!(snapshot.connections_open, 1);
        assert_eq!(snapshot.connections_accepted, 2);
        assert_eq!(snapshot.connections_rejected, 3);
        assert_eq!(snapshot.connections_paused, 4);
        assert_eq!(snapshot.tls13_handshakes, 5);
        assert_eq!(snapshot.tls12_handshakes, 6);
        assert_eq!(snapshot.service_panics, 7);
        assert!(snapshot.io_offloading);
        assert_eq!(snapshot.closed_for(&CloseReason::Shutdown), 8);
        assert_eq!(snapshot.closed_total(), 8);
        assert_eq!(snapshot.timers_pending, 9);
        assert_eq!(snapshot.frames_in, 0);
        assert!(snapshot.io_threads.is_empty());
    }
}
