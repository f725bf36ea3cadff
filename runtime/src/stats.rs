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
    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The loop's counters. Written only by the loop's thread.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) open: Counter,
    pub(crate) accepted: Counter,
    pub(crate) rejected: Counter,
    pub(crate) accept_errors: Counter,
    pub(crate) bytes_in: Counter,
    pub(crate) bytes_out: Counter,
    pub(crate) frames_in: Counter,
    pub(crate) sends_while_away: Counter,
    pub(crate) backpressure_pauses: Counter,
    pub(crate) paused: Counter,
    pub(crate) poller_ctl_calls: Counter,
    pub(crate) tls_write_steps: Counter,
    pub(crate) handshakes_ok: Counter,
    pub(crate) handshakes_resumed: Counter,
    pub(crate) handshakes_failed: Counter,
    pub(crate) tls_reloads: Counter,
    pub(crate) tls13: Counter,
    pub(crate) tls12: Counter,
    /// Completed handshakes per cipher suite, in `suite_names` order.
    pub(crate) suites: Vec<Counter>,
    pub(crate) suite_names: Vec<String>,
    pub(crate) jobs_dispatched: Counter,
    pub(crate) inline_fallbacks: Counter,
    pub(crate) inline_steps: Counter,
    pub(crate) io_offloading: Counter,
    pub(crate) io_trials: Counter,
    pub(crate) loop_iterations: Counter,
    pub(crate) service_panics: Counter,
    pub(crate) closed: [Counter; CloseReason::NAMES.len()],
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

impl StatsSource {
    pub(crate) fn snapshot(&self) -> StatsSnapshot {
        let s = &self.stats;
        let signal = self.signal.stats();
        StatsSnapshot {
            connections_open: s.open.get(),
            connections_accepted: s.accepted.get(),
            connections_rejected: s.rejected.get(),
            accept_errors: s.accept_errors.get(),
            bytes_in: s.bytes_in.get(),
            bytes_out: s.bytes_out.get(),
            frames_in: s.frames_in.get(),
            sends_while_away: s.sends_while_away.get(),
            backpressure_pauses: s.backpressure_pauses.get(),
            connections_paused: s.paused.get(),
            poller_ctl_calls: s.poller_ctl_calls.get(),
            tls_write_steps: s.tls_write_steps.get(),
            handshakes_ok: s.handshakes_ok.get(),
            handshakes_resumed: s.handshakes_resumed.get(),
            handshakes_failed: s.handshakes_failed.get(),
            tls_reloads: s.tls_reloads.get(),
            tls13_handshakes: s.tls13.get(),
            tls12_handshakes: s.tls12.get(),
            cipher_suites: s
                .suite_names
                .iter()
                .zip(&s.suites)
                .map(|(name, count)| (name.clone(), count.get()))
                .filter(|(_, count)| *count > 0)
                .collect(),
            jobs_dispatched: s.jobs_dispatched.get(),
            inline_fallbacks: s.inline_fallbacks.get(),
            inline_steps: s.inline_steps.get(),
            io_offloading: s.io_offloading.get() != 0,
            io_trials: s.io_trials.get(),
            loop_iterations: s.loop_iterations.get(),
            service_panics: s.service_panics.get(),
            wakeups_sent: signal.wakeups_sent,
            wakeups_coalesced: signal.wakeups_coalesced,
            io_threads: self
                .pool
                .as_ref()
                .map(PoolStatsReader::worker_stats)
                .unwrap_or_default(),
            closed: std::array::from_fn(|i| s.closed[i].get()),
        }
    }
}

/// A point-in-time copy of the server's counters. Each field is read
/// separately, so two fields may be a few events apart. More counters may be
/// added in minor versions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatsSnapshot {
    /// Connections open now.
    pub connections_open: u64,
    /// Connections accepted (including rejected ones).
    pub connections_accepted: u64,
    /// Connections closed at once because `max_connections` was reached.
    pub connections_rejected: u64,
    /// `accept` calls that failed (for example out of descriptors).
    pub accept_errors: u64,
    /// Application bytes received.
    pub bytes_in: u64,
    /// Application bytes sent.
    pub bytes_out: u64,
    /// Frames decoded and delivered to the service.
    pub frames_in: u64,
    /// Frames queued for a connection while it was on an IO thread (they
    /// joined it when it came back).
    pub sends_while_away: u64,
    /// Times a connection's queued output reached the soft limit and the
    /// loop stopped reading from it (a client not reading its replies).
    pub backpressure_pauses: u64,
    /// Connections whose reading is paused by backpressure right now.
    pub connections_paused: u64,
    /// `epoll_ctl` calls made by the loop (registering and deleting
    /// sockets). Steady-state traffic makes none: see `ARCHITECTURE.md`.
    pub poller_ctl_calls: u64,
    /// IO steps the loop planned because the TLS transport wanted to write
    /// (a handshake flight, an alert, close_notify) when there was no
    /// application output: rustls's wants, arriving back at the loop as
    /// state and becoming a step, never as a poller call.
    pub tls_write_steps: u64,
    /// TLS handshakes completed.
    pub handshakes_ok: u64,
    /// Of those, resumed sessions (ticket or session id).
    pub handshakes_resumed: u64,
    /// TLS connections closed before their handshake completed (any reason;
    /// the reasons are in `closed`).
    pub handshakes_failed: u64,
    /// TLS configurations the loop has switched to
    /// ([`LoopHandle::reload_tls`](crate::LoopHandle::reload_tls)).
    pub tls_reloads: u64,
    /// Completed handshakes that negotiated TLS 1.3.
    pub tls13_handshakes: u64,
    /// Completed handshakes that negotiated TLS 1.2.
    pub tls12_handshakes: u64,
    /// Completed handshakes per cipher suite (suites never used are left out).
    pub cipher_suites: Vec<(String, u64)>,
    /// Jobs handed to IO threads.
    pub jobs_dispatched: u64,
    /// Jobs run inline because an IO thread's queue was full.
    pub inline_fallbacks: u64,
    /// IO steps run inline on the loop: all of them with zero IO threads,
    /// and with [`IoActivation::Adaptive`](crate::IoActivation) those run
    /// while the loop has headroom.
    pub inline_steps: u64,
    /// IO steps go to the IO threads right now (always with
    /// [`IoActivation::Always`](crate::IoActivation); with `Adaptive`, only
    /// while the loop is saturated and the IO threads serve more).
    pub io_offloading: bool,
    /// Times adaptive activation tried the mode not in use (IO threads when
    /// inline, inline when handing off) to measure which serves more.
    pub io_trials: u64,
    /// Iterations of the main loop.
    pub loop_iterations: u64,
    /// Service callbacks that panicked.
    pub service_panics: u64,
    /// Wake-ups of the loop sent by IO threads and posters.
    pub wakeups_sent: u64,
    /// Notifications that found the loop awake (no wake-up needed).
    pub wakeups_coalesced: u64,
    /// Per IO thread: jobs run, parks, panics.
    pub io_threads: Vec<WorkerStats>,
    /// Closes by reason, indexed as [`CloseReason::NAMES`].
    pub closed: [u64; CloseReason::NAMES.len()],
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
