//! Upstreams that fail: refused, too slow to accept (connect timeout), a
//! TLS certificate the proxy does not trust, and an upstream that closes
//! (FIN) or resets in the middle of its reply.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use baton::Connect;
use socket2::{Domain, Socket, Type};

use crate::harness::{
    free_port, reason_index, serial, settle, tls_upstream, ClientSide, ProxyServer, Threads, SETTLE,
};
use crate::util::fake_upstream::FakeUpstream;
use crate::util::faults::Stream;
use crate::util::{open_fds, reset, ClientMode, TestCert};

/// Clients per case.
const CLIENTS: usize = 6;

/// How a client's connection ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// An orderly end (TLS: close_notify).
    Orderly,
    /// A FIN without close_notify (TLS only), a reset or a broken pipe.
    Abrupt(ErrorKind),
}

/// Reads everything until the stream ends; a timeout fails the test (the
/// proxy must close a client it cannot serve).
fn read_to_end(stream: &mut Stream) -> (Vec<u8>, End) {
    let mut all = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return (all, End::Orderly),
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("the proxy neither answered nor closed the client")
            }
            Err(e) => return (all, End::Abrupt(e.kind())),
        }
    }
}

/// Connects `CLIENTS` clients (TLS) to a proxy whose upstream cannot be
/// opened, checks each is closed without a byte, and that each failure is
/// counted under `reason` by the proxy and by the runtime.
fn clients_are_closed(cert: &TestCert, threads: Threads, upstream: Connect, reason: &str) {
    let config = threads.config().connect_timeout(Duration::from_millis(300));
    let proxy = ProxyServer::start(config, Some(cert.server_config()), upstream);
    let baseline = open_fds();
    let what = format!("{reason}, {threads:?}");
    for _ in 0..CLIENTS {
        let mut stream = Stream::connect(&cert.client(None), proxy.addr, SETTLE).expect("connect");
        stream.handshake().expect("TLS handshake with the proxy");
        // The request may meet the closed client; it must not get through.
        let _ = stream.write_all(b"PING\r\n");
        let (got, _) = read_to_end(&mut stream);
        assert!(got.is_empty(), "{what}: the client got bytes from nowhere");
    }
    let report = settle(proxy, baseline, &what);
    let counters = &report.service.counters;
    assert_eq!(
        counters.connect_failures.get(reason).copied(),
        Some(CLIENTS as u64),
        "{what}: the proxy's connect_failed counters: {:?}",
        counters.connect_failures
    );
    assert_eq!(counters.upstreams, 0, "{what}");
    assert_eq!(report.stats.connects_started, CLIENTS as u64, "{what}");
    assert_eq!(report.stats.connects_failed, CLIENTS as u64, "{what}");
    assert_eq!(
        report.stats.connect_failures[reason_index(reason)],
        CLIENTS as u64,
        "{what}: {:?}",
        report.stats.connect_failures
    );
}

#[test]
fn a_refused_upstream_closes_the_client_and_is_counted() {
    let _serial = serial();
    let cert = TestCert::new("proxy-refused");
    // Free now and nobody listening: connects are refused.
    let refused = SocketAddr::from(([127, 0, 0, 1], free_port()));
    for threads in Threads::BOTH {
        clients_are_closed(&cert, threads, Connect::plain(refused), "io_error");
    }
}

/// A listener with a backlog of 0 whose accept queue is full (nobody
/// accepts): the kernel drops further SYNs, so a connect neither succeeds
/// nor fails until it times out. Returns the listener and the connections
/// filling its queue.
fn full_listener() -> (Socket, Vec<TcpStream>) {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket
        .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    socket.listen(0).unwrap();
    let addr = socket.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    loop {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(s) => fillers.push(s),
            Err(e) if e.kind() == ErrorKind::TimedOut => return (socket, fillers),
            Err(e) => panic!("filling the accept queue: {e}"),
        }
        assert!(fillers.len() < 16, "the accept queue never filled");
    }
}

#[test]
fn an_upstream_slow_to_accept_times_out_and_closes_the_client() {
    let _serial = serial();
    let cert = TestCert::new("proxy-slow-accept");
    let (listener, _fillers) = full_listener();
    let addr = listener.local_addr().unwrap().as_socket().unwrap();
    for threads in Threads::BOTH {
        clients_are_closed(&cert, threads, Connect::plain(addr), "connect_timeout");
    }
}

#[test]
fn an_upstream_certificate_not_trusted_closes_the_client_and_is_counted() {
    let _serial = serial();
    let cert = TestCert::new("proxy-upstream-cert");
    let other_ca = TestCert::new("proxy-other-ca");
    // A TLS upstream: a second proxy (its upstream never matters: no
    // handshake with it completes).
    let refused = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let upstream = ProxyServer::start(
        Threads::Inline.config(),
        Some(cert.server_config()),
        Connect::plain(refused),
    );
    for threads in Threads::BOTH {
        let target = tls_upstream(upstream.addr, &other_ca);
        let config = threads.config();
        let proxy = ProxyServer::start(config, Some(cert.server_config()), target);
        let baseline = open_fds();
        let what = format!("untrusted upstream certificate, {threads:?}");
        for _ in 0..CLIENTS {
            let mut stream =
                Stream::connect(&cert.client(None), proxy.addr, SETTLE).expect("connect");
            stream.handshake().expect("TLS handshake with the proxy");
            let _ = stream.write_all(b"PING\r\n");
            let (got, _) = read_to_end(&mut stream);
            assert!(got.is_empty(), "{what}: the client got bytes from nowhere");
        }
        let report = settle(proxy, baseline, &what);
        let counters = &report.service.counters;
        let failures: u64 = counters.connect_failures.values().sum();
        assert_eq!(failures, CLIENTS as u64, "{what}");
        assert!(
            counters
                .connect_failures
                .keys()
                .all(|k| k.starts_with("tls_")),
            "{what}: counted under {:?}",
            counters.connect_failures
        );
        assert_eq!(report.stats.connects_failed, CLIENTS as u64, "{what}");
        let tls_failures: u64 = baton::CloseReason::NAMES
            .iter()
            .zip(report.stats.connect_failures.iter())
            .filter(|(name, _)| name.starts_with("tls_"))
            .map(|(_, n)| n)
            .sum();
        assert_eq!(tls_failures, CLIENTS as u64, "{what}");
    }
    // The upstream proxy saw its handshakes fail and opened nothing.
    let report = upstream.stop();
    assert_eq!(report.service.counters.clients, 0);
    assert_eq!(report.stats.handshakes_failed, 2 * CLIENTS as u64);
}

/// The reply's bytes: a pattern whose every position is checkable.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// Bytes the kernel holds in `stream`'s send queue (not yet acknowledged
/// by the peer).
fn unacked(stream: &TcpStream) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: TIOCOUTQ (SIOCOUTQ) writes one c_int through the pointer,
    // which points at `n` for the call; the descriptor is open.
    let rc = unsafe { libc::ioctl(stream.as_raw_fd(), libc::TIOCOUTQ, &mut n) };
    assert_eq!(rc, 0, "SIOCOUTQ: {}", io::Error::last_os_error());
    n as usize
}

/// An upstream that answers a request line with `len` bytes of
/// [`pattern`] and then ends: FIN, or, once the proxy has acknowledged
/// every byte (so none is lost in the kernel), a reset.
fn cut_upstream(len: usize, with_reset: bool) -> FakeUpstream {
    let reply = pattern(len);
    FakeUpstream::spawn(move |mut stream| {
        let mut request = [0u8; 5];
        if stream.read_exact(&mut request).is_err() {
            return;
        }
        if stream.write_all(&reply).is_err() {
            return;
        }
        if with_reset {
            let start = Instant::now();
            while unacked(&stream) > 0 && start.elapsed() < SETTLE {
                std::thread::sleep(Duration::from_millis(1));
            }
            reset(stream);
        }
        // Dropped: FIN (the request was read, so not a reset).
    })
}

/// Clients of an upstream that sends `len` bytes and then ends (FIN, or
/// RST once they are acknowledged) get exactly those bytes, then the end.
fn upstream_ends_mid_reply(name: &str, with_reset: bool) {
    let cert = TestCert::new(name);
    // Small (one read), and past the proxy's high-water mark (the end comes
    // while the upstream side is paused for backpressure).
    for len in [1000, 3 << 20] {
        let upstream = cut_upstream(len, with_reset);
        for threads in Threads::BOTH {
            for side in ClientSide::BOTH {
                let what = format!(
                    "{len} bytes then {}, {threads:?}, client {side:?}",
                    if with_reset { "RST" } else { "FIN" }
                );
                let (listen, mode) = side.listen(&cert);
                let proxy =
                    ProxyServer::start(threads.config(), listen, Connect::plain(upstream.addr));
                let baseline = open_fds();
                for _ in 0..CLIENTS / 2 {
                    mid_reply_client(&mode, proxy.addr, len, with_reset, &what);
                }
                let report = settle(proxy, baseline, &what);
                let counters = &report.service.counters;
                assert_eq!(
                    counters.bytes_to_client,
                    (CLIENTS / 2 * len) as u64,
                    "{what}"
                );
                let closes = crate::harness::closed_by_name(&report.stats);
                if with_reset {
                    assert_eq!(counters.upstream_errors, (CLIENTS / 2) as u64, "{what}");
                } else {
                    assert_eq!(counters.upstream_errors, 0, "{what}: {closes:?}");
                    let resets = report.stats.closed[reason_index("io_error")];
                    assert_eq!(resets, 0, "{what}: a FIN made a reset: {closes:?}");
                }
            }
        }
    }
}

#[test]
fn an_upstream_closing_mid_reply_passes_exactly_its_bytes_then_the_end() {
    let _serial = serial();
    upstream_ends_mid_reply("proxy-mid-reply-fin", false);
}

/// Fails with the runtime at d5471fe: bytes read from the upstream in the
/// step that met its reset are dropped (`deliver.rs`: frames of a failed
/// connection are cleared), and so are frames held while its reading is
/// paused for backpressure when the reset closes it.
#[test]
fn an_upstream_resetting_mid_reply_passes_every_byte_it_sent_then_closes() {
    let _serial = serial();
    upstream_ends_mid_reply("proxy-mid-reply-rst", true);
}

fn mid_reply_client(mode: &ClientMode, addr: SocketAddr, len: usize, with_reset: bool, what: &str) {
    let mut stream = Stream::connect(mode, addr, SETTLE).expect("connect");
    stream.write_all(b"GIVE\n").unwrap();
    let (got, end) = read_to_end(&mut stream);
    assert_eq!(got.len(), len, "{what}: bytes received");
    assert!(got == pattern(len), "{what}: the bytes changed on the way");
    if !with_reset {
        // The upstream's FIN is passed on as an orderly end (TLS: with
        // close_notify).
        assert_eq!(end, End::Orderly, "{what}");
        // The client's own end finishes the pair.
        stream.shutdown_write().unwrap();
    }
}
