//! Fault storms: honest pipelined clients, every reply checked, mixed with
//! every kind of faulty client (`util::faults::Fault`), against the echo and
//! KV examples, with 0 and 2 IO threads, plain and TLS.
//!
//! After each storm: every honest reply was right, the server still serves,
//! every connection is closed, the process's open descriptors are back to
//! the baseline, and its live heap (counted by this binary's allocator) is
//! back within a bound of the baseline: what faulty clients cost is given
//! back once they are gone.

mod util;

#[path = "../examples/echo/service.rs"]
mod echo;

include!("util/kv_example.rs");

use std::sync::Arc;
use std::time::Duration;

use baton::{CloseReason, Config, IoActivation, ProtocolErrorKind, Service, TlsFailure};
use util::faults::{honest_client, run_storm, Storm, Workload};
use util::heap::{live_bytes, wait_for_heap};
use util::workloads::{EchoWorkload, KvWorkload};
use util::{open_fds, spawn_server, spawn_tls_server, wait_for_fds, ClientMode, TestCert};

#[global_allocator]
static HEAP: util::heap::Counting = util::heap::Counting;

/// Heap the server may keep after a storm beyond what it held before (the
/// warm-up already grew its tables and caches to this storm's size). A leak
/// of one small buffer per faulty connection is well above it.
const HEAP_SLACK: isize = 1 << 20;

const KV_MAX_BULK: usize = 1 << 20;

fn storm_config(io_threads: usize) -> Config {
    Config::default()
        .io_threads(io_threads)
        .io_activation(IoActivation::Always)
        .idle_timeout(Some(Duration::from_secs(2)))
        .handshake_timeout(Duration::from_secs(1))
        .output_soft_limit(256 << 10)
        .output_hard_limit(4 << 20)
}

fn kv_service(io_threads: usize) -> service::Kv {
    service::Kv::new(service::KvConfig {
        requirepass: None,
        proto_max_bulk_len: KV_MAX_BULK,
        port: 0,
        tls_port: 0,
        io_threads,
        maxclients: 10_000,
        timeout_secs: 2,
    })
}

#[derive(Clone, Copy, PartialEq)]
enum Example {
    Echo,
    Kv,
}

/// One storm at a time: they share this process's descriptor and heap
/// counts (a test harness lock, not a server one).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn storm(example: Example, io_threads: usize, tls: bool) {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let cert = tls.then(|| TestCert::new(&format!("storm-{io_threads}")));
    let mode = cert.as_ref().map_or(ClientMode::Plain, |c| c.client(None));
    match example {
        Example::Echo => storm_on(|| echo::Echo, example, io_threads, cert.as_ref(), &mode),
        Example::Kv => storm_on(
            move || kv_service(io_threads),
            example,
            io_threads,
            cert.as_ref(),
            &mode,
        ),
    }
}

fn storm_on<S, F>(
    make: F,
    example: Example,
    io_threads: usize,
    cert: Option<&TestCert>,
    mode: &ClientMode,
) where
    S: Service<Command = ()>,
    F: FnOnce() -> S + Send + 'static,
{
    let config = storm_config(io_threads);
    let server = match cert {
        Some(cert) => spawn_tls_server(config, cert.server_config(), make),
        None => spawn_server(config, make),
    };
    let addr = server.addr;
    let workload: Arc<dyn Workload> = match example {
        Example::Echo => Arc::new(EchoWorkload),
        Example::Kv => {
            let kv = KvWorkload {
                max_bulk: KV_MAX_BULK,
            };
            kv.prepare(mode, addr);
            Arc::new(kv)
        }
    };
    let shape = |duration, seed| Storm {
        honest_clients: 8,
        depth: 16,
        duration,
        faulty_per_kind: 2,
        seed,
    };

    // A warm-up storm grows the server's tables and caches (and this
    // process's client-side ones) to their working size.
    run_storm(mode, addr, Arc::clone(&workload), &shape(Duration::ZERO, 1));
    server.wait_for("warm-up connections closed", Duration::from_secs(30), |s| {
        s.connections_open == 0
    });
    let fds = open_fds();
    let heap = live_bytes();
    let before = server.handle.stats();

    let report = run_storm(
        mode,
        addr,
        Arc::clone(&workload),
        &shape(Duration::from_secs(3), 2),
    );
    eprintln!("storm: {report:?}");
    assert!(report.faults.iter().all(|&(_, n)| n >= 1));

    // Still serving.
    honest_client(mode, addr, &*workload, 0, 16, &|round| round < 10);

    server.wait_for("every connection closed", Duration::from_secs(30), |s| {
        s.connections_open == 0
    });
    wait_for_fds(fds, Duration::from_secs(10));
    wait_for_heap(heap, HEAP_SLACK, Duration::from_secs(10), "after the storm");

    // The faults reached the server as what they are.
    let after = server.handle.stats();
    let closed = |reason: CloseReason| after.closed_for(&reason) - before.closed_for(&reason);
    assert!(
        closed(CloseReason::IdleTimeout) >= 1,
        "stalled clients: {after:#?}"
    );
    assert!(closed(CloseReason::Io(std::io::ErrorKind::ConnectionReset)) >= 1);
    if example == Example::Kv {
        // Garbage and oversized bulk lengths.
        assert!(closed(CloseReason::Protocol(ProtocolErrorKind::Malformed)) >= 2);
    }
    // Never-reading clients are held at the soft limit (reading and frame
    // delivery pause) instead of growing to the hard limit.
    assert!(after.backpressure_pauses > before.backpressure_pauses);
    assert_eq!(closed(CloseReason::OutputLimit), 0, "{after:#?}");
    if cert.is_some() {
        assert!(closed(CloseReason::Tls(TlsFailure::NotTls)) >= 1);
        assert!(closed(CloseReason::HandshakeTimeout) >= 1);
    }

    let report = server.stop(Duration::from_secs(5));
    assert_eq!(
        report.stats.closed_total(),
        report.stats.connections_accepted
    );
    assert_eq!(report.stats.service_panics, 0);
}

#[test]
fn echo_plain_inline() {
    storm(Example::Echo, 0, false);
}

#[test]
fn echo_plain_io_threads() {
    storm(Example::Echo, 2, false);
}

#[test]
fn echo_tls_inline() {
    storm(Example::Echo, 0, true);
}

#[test]
fn echo_tls_io_threads() {
    storm(Example::Echo, 2, true);
}

#[test]
fn kv_plain_inline() {
    storm(Example::Kv, 0, false);
}

#[test]
fn kv_plain_io_threads() {
    storm(Example::Kv, 2, false);
}

#[test]
fn kv_tls_inline() {
    storm(Example::Kv, 0, true);
}

#[test]
fn kv_tls_io_threads() {
    storm(Example::Kv, 2, true);
}
