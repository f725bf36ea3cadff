//! One measured run against a running server, and medians over rounds.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::engine::{self, Live, Plan, Target};
use crate::servers::Running;

/// What one run measured.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Requests (or handshakes) per second.
    pub throughput: f64,
    /// Latency quantiles, in microseconds.
    pub p50_us: f64,
    /// 99th percentile latency, in microseconds.
    pub p99_us: f64,
    /// Server CPU seconds (all its threads) per million requests.
    pub cpu_per_million: f64,
    /// Requests measured.
    pub requests: u64,
    /// Error replies, wrong replies and failed connections.
    pub errors: u64,
}

/// Runs `plan` against `server` and samples the server's CPU time over the
/// measured part of the run (after the warm-up).
pub fn measure(server: &Running, target: &Target, plan: &Plan) -> Result<Sample, String> {
    let live = Live::default();
    let (report, cpu) = std::thread::scope(|s| {
        let load = s.spawn(|| engine::run(target, plan, &live));
        while !live.measuring.load(Ordering::Relaxed) && !load.is_finished() {
            std::thread::sleep(Duration::from_micros(500));
        }
        let before = server.cpu_seconds();
        let report = load.join().expect("load generator panicked");
        (report, server.cpu_seconds() - before)
    });
    let report = report?;
    if report.requests == 0 {
        return Err(format!(
            "no request answered: {}",
            report.first_error.unwrap_or_default()
        ));
    }
    Ok(Sample {
        throughput: report.throughput(),
        p50_us: report.latency_us(0.5),
        p99_us: report.latency_us(0.99),
        cpu_per_million: cpu / (report.requests as f64 / 1e6),
        requests: report.requests,
        errors: report.errors + report.failed_connections,
    })
}

/// The median of each field over rounds.
pub fn median(samples: &[Sample]) -> Sample {
    let pick = |f: fn(&Sample) -> f64| {
        let mut v: Vec<f64> = samples.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    Sample {
        throughput: pick(|s| s.throughput),
        p50_us: pick(|s| s.p50_us),
        p99_us: pick(|s| s.p99_us),
        cpu_per_million: pick(|s| s.cpu_per_million),
        requests: samples.iter().map(|s| s.requests).sum(),
        errors: samples.iter().map(|s| s.errors).sum(),
    }
}

/// Runs `run` for every contender, round after round (A B C A B C ...), so
/// that drift on a shared machine hits every contender alike; returns each
/// contender's samples.
pub fn alternate<C, S>(
    rounds: usize,
    contenders: &[C],
    mut run: impl FnMut(&C) -> Result<S, String>,
) -> Result<Vec<Vec<S>>, String> {
    let mut samples: Vec<Vec<S>> = contenders.iter().map(|_| Vec::new()).collect();
    for _ in 0..rounds {
        for (i, c) in contenders.iter().enumerate() {
            samples[i].push(run(c)?);
        }
    }
    Ok(samples)
}
