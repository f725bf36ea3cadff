//! Every byte an echo client sends comes back, in order, whatever the
//! payload size and however it is chunked, with 0, 1 and 4 IO threads.

mod util;

#[path = "../examples/echo/service.rs"]
mod echo;

use std::time::Duration;

use baton::{Config, IoActivation};
use util::{run_echo_clients, spawn_server, EchoPlan};

const CLIENTS: usize = 500;
const MAX_PAYLOAD: usize = 1 << 20;

fn echo_integrity(io_threads: usize, seed: u64) {
    let server = spawn_server(
        Config::default()
            .io_threads(io_threads)
            .io_activation(IoActivation::Always),
        || echo::Echo,
    );
    let mut rng = util::rng(seed);
    let mut plans: Vec<EchoPlan> = (0..CLIENTS)
        .map(|_| EchoPlan::random(&mut rng, MAX_PAYLOAD))
        .collect();
    // Always include both extremes.
    plans[0] = EchoPlan {
        payload: vec![42],
        chunks: vec![1],
    };
    plans[1] = EchoPlan {
        payload: util::random_bytes(&mut rng, MAX_PAYLOAD),
        chunks: vec![MAX_PAYLOAD],
    };
    let total: usize = plans.iter().map(|p| p.payload.len()).sum();
    run_echo_clients(server.addr, plans, Duration::from_secs(120));
    server.wait_for("all bytes counted", Duration::from_secs(10), |s| {
        s.bytes_out == total as u64
    });
    let report = server.stop(Duration::from_secs(5));
    assert_eq!(report.stats.bytes_in, total as u64);
    assert_eq!(report.stats.connections_accepted, CLIENTS as u64);
    if io_threads > 0 {
        let jobs: u64 = report.stats.io_threads.iter().map(|w| w.jobs).sum();
        assert!(
            jobs > 0,
            "IO threads did the work: {:?}",
            report.stats.io_threads
        );
        assert_eq!(report.stats.io_threads.len(), io_threads);
    } else {
        assert!(report.stats.io_threads.is_empty());
        assert!(report.stats.inline_steps > 0);
    }
}

#[test]
fn echo_integrity_inline() {
    echo_integrity(0, 1);
}

#[test]
fn echo_integrity_one_io_thread() {
    echo_integrity(1, 2);
}

#[test]
fn echo_integrity_four_io_threads() {
    echo_integrity(4, 3);
}
