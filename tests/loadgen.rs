//! The load generator measures what it claims: every request it counts was
//! answered with the reply it expects, refusals are counted as errors, and
//! the command line works. The benchmarks rest on it.

mod util;

include!("util/kv_example.rs");

#[path = "../examples/echo/service.rs"]
mod echo;
#[path = "../examples/loadgen/engine.rs"]
mod engine;
#[path = "../examples/loadgen/replies.rs"]
mod replies;
#[path = "../examples/loadgen/requests.rs"]
mod requests;
#[path = "../examples/loadgen/tls_client.rs"]
mod tls_client;

use std::process::Command;
use std::time::Duration;

use baton::Config;
use engine::{Live, Plan, Target};
use replies::{next_reply, Reply};
use requests::Workload;
use tls_client::{client_config, server_name, Trust};
use util::{spawn_server, spawn_tls_server, TestCert};

fn kv(requirepass: Option<&str>) -> service::Kv {
    service::Kv::new(service::KvConfig {
        requirepass: requirepass.map(str::to_owned),
        proto_max_bulk_len: 512 << 20,
        port: 0,
        tls_port: 0,
        io_threads: 0,
        maxclients: 10_000,
        timeout_secs: 0,
    })
}

fn plan(workload: Workload, pipeline: usize) -> Plan {
    Plan {
        connections: 8,
        pipeline,
        workload,
        size: 32,
        keyspace: 500,
        warmup: Duration::from_millis(100),
        duration: Duration::from_millis(500),
        requests: None,
        threads: 2,
        reconnect: false,
        sequential_keys: false,
    }
}

fn plain(addr: std::net::SocketAddr) -> Target {
    Target { addr, tls: None }
}

#[test]
fn get_after_prefill_hits_every_key_and_the_server_counts_the_same_requests() {
    let server = spawn_server(Config::default(), || kv(None));
    let target = plain(server.addr);
    let get = plan(Workload::Get, 16);
    engine::prefill(&target, &get).unwrap();
    let before = server.handle.stats().frames_in;
    let report = engine::run(&target, &get, &Live::default()).unwrap();
    let served = server.handle.stats().frames_in - before;
    assert!(report.requests > 1000, "{report:?}");
    assert_eq!(report.errors, 0, "{:?}", report.first_error);
    assert_eq!(report.misses, 0, "prefill set every key");
    assert_eq!(report.failed_connections, 0);
    // The generator counts only measured replies; the server also saw the
    // warm-up and the batches cut off at the end.
    assert!(
        served >= report.requests,
        "served {served} < counted {}",
        report.requests
    );
    assert!(report.latency.len() == report.requests);
    assert!(report.throughput() > 0.0);
    assert!(report.latency_us(0.99) >= report.latency_us(0.5));
    server.stop(Duration::from_secs(1));
}

#[test]
fn refused_commands_are_errors_not_throughput() {
    let server = spawn_server(Config::default(), || kv(Some("secret")));
    let report = engine::run(
        &plain(server.addr),
        &plan(Workload::Set, 4),
        &Live::default(),
    )
    .unwrap();
    assert!(report.requests > 0);
    assert_eq!(
        report.errors, report.requests,
        "every SET is refused with NOAUTH"
    );
    assert!(
        report
            .first_error
            .as_deref()
            .unwrap()
            .starts_with("-NOAUTH"),
        "{:?}",
        report.first_error
    );
    server.stop(Duration::from_secs(1));
}

#[test]
fn echo_over_tls_and_handshakes_count_round_trips() {
    let cert = TestCert::new("loadgen");
    let server = spawn_tls_server(Config::default(), cert.server_config(), || echo::Echo);
    let target = Target {
        addr: server.addr,
        tls: Some((
            client_config(Trust::CaFile(&cert.cert), true).unwrap(),
            server_name("localhost").unwrap(),
        )),
    };
    let report = engine::run(&target, &plan(Workload::Echo, 4), &Live::default()).unwrap();
    assert!(report.requests > 100 && report.errors == 0, "{report:?}");
    // Handshakes without verifying (the CLI's --insecure): same server work.
    let insecure = Target {
        addr: server.addr,
        tls: Some((
            client_config(Trust::Insecure, false).unwrap(),
            server_name("localhost").unwrap(),
        )),
    };
    let before = server.handle.stats().handshakes_ok;
    let mut handshakes = plan(Workload::Ping, 1);
    handshakes.reconnect = true;
    let report = engine::run(&insecure, &handshakes, &Live::default()).unwrap();
    let done = server.handle.stats().handshakes_ok - before;
    assert!(report.requests > 10 && report.errors == 0, "{report:?}");
    assert!(
        done >= report.requests,
        "each counted request had its own handshake: {done} < {}",
        report.requests
    );
    server.stop(Duration::from_secs(1));
}

#[test]
fn a_server_that_is_not_there_is_an_error_not_a_hang() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let err = engine::run(&plain(port), &plan(Workload::Set, 1), &Live::default()).unwrap_err();
    assert!(err.contains("connect"), "{err}");
}

#[test]
fn reply_scanner_finds_complete_replies_only() {
    assert_eq!(
        next_reply(b"+OK\r\n+OK").unwrap(),
        Some(Reply::Value { len: 5, bulk: None })
    );
    assert_eq!(
        next_reply(b"$3\r\nabc\r\n").unwrap(),
        Some(Reply::Value {
            len: 9,
            bulk: Some(3)
        })
    );
    assert_eq!(next_reply(b"$3\r\nab").unwrap(), None);
    assert_eq!(next_reply(b"$-1\r\n").unwrap(), Some(Reply::Nil { len: 5 }));
    assert_eq!(
        next_reply(b"-ERR x\r\n").unwrap(),
        Some(Reply::Error { len: 8 })
    );
    assert_eq!(
        next_reply(b"*1\r\n$4\r\nPING\r\n").unwrap(),
        Some(Reply::Value {
            len: 14,
            bulk: None
        })
    );
    assert_eq!(next_reply(b"*2\r\n$4\r\nPING\r\n").unwrap(), None);
    assert!(next_reply(b"hello\r\n").is_err());
    assert!(next_reply(b"$3\r\nabcde").is_err());
}

/// The loadgen example `cargo test` built next to this test binary.
fn loadgen_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/loadgen");
    assert!(
        path.exists(),
        "{} missing: cargo test builds the examples",
        path.display()
    );
    path
}

#[test]
fn the_command_line_reports_json_and_fails_on_errors() {
    let help = Command::new(loadgen_binary())
        .arg("--help")
        .output()
        .unwrap();
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("--pipeline"));

    let open = spawn_server(Config::default(), || kv(None));
    let locked = spawn_server(Config::default(), || kv(Some("secret")));
    let run = |port: u16| {
        Command::new(loadgen_binary())
            .args([
                "-p",
                &port.to_string(),
                "-w",
                "get",
                "--prefill",
                "-r",
                "100",
            ])
            .args([
                "-c", "4", "-P", "4", "-t", "0.3", "--warmup", "0.1", "--json",
            ])
            .output()
            .unwrap()
    };
    let out = run(open.addr.port());
    let json = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{json} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        json.starts_with('{') && json.trim_end().ends_with('}'),
        "{json}"
    );
    for field in [
        "\"errors\":0,",
        "\"misses\":0,",
        "\"failed_connections\":0,",
        "\"p99.9\":",
    ] {
        assert!(json.contains(field), "{field} in {json}");
    }
    let requests: u64 = json
        .split("\"requests\":")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(requests > 0, "{json}");

    let refused = run(locked.addr.port());
    assert_eq!(
        refused.status.code(),
        Some(2),
        "the prefill is refused: an error before any load"
    );
    assert!(String::from_utf8_lossy(&refused.stderr).contains("NOAUTH"));
    open.stop(Duration::from_secs(1));
    locked.stop(Duration::from_secs(1));
}
