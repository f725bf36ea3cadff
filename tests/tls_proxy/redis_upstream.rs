//! A real redis-server behind the proxy, plain and TLS upstream: a random
//! command stream answered byte for byte as redis answers it directly, and
//! the ways a client ends (request+FIN, request+RST, bare FIN).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use baton::Connect;
use rand::rngs::SmallRng;
use rand::Rng;

use crate::harness::{free_port, serial, settle, tls_upstream, ClientSide, ProxyServer, Threads};
use crate::util::faults::Stream;
use crate::util::real_redis::RealRedis;
use crate::util::{open_fds, rng, ClientMode, TestCert};

/// A redis-server listening plain (for the direct connections and the
/// readiness check) and TLS with `cert`.
struct Redis {
    server: RealRedis,
    tls_addr: SocketAddr,
}

impl Redis {
    fn start(cert: &TestCert) -> Self {
        let tls_port = free_port();
        let (cert_file, key_file) = (cert.cert.to_str().unwrap(), cert.key.to_str().unwrap());
        let server = RealRedis::start_with(&[
            "--tls-port",
            &tls_port.to_string(),
            "--tls-cert-file",
            cert_file,
            "--tls-key-file",
            key_file,
            "--tls-ca-cert-file",
            cert_file,
            "--tls-auth-clients",
            "no",
        ]);
        Self {
            server,
            tls_addr: SocketAddr::from(([127, 0, 0, 1], tls_port)),
        }
    }

    /// The proxy's target: redis's plain port or its TLS port.
    fn target(&self, tls: bool, cert: &TestCert) -> Connect {
        if tls {
            tls_upstream(self.tls_addr, cert)
        } else {
            Connect::plain(self.server.addr)
        }
    }

    /// Clients redis has connected now, asked on a connection of its own
    /// (which it counts too).
    fn connected_clients(&self) -> u64 {
        let mut direct = connect(&ClientMode::Plain, self.server.addr);
        direct.get_mut().write_all(b"INFO clients\r\n").unwrap();
        let mut reply = Vec::new();
        read_value(&mut direct, &mut reply);
        let text = String::from_utf8(reply).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("connected_clients:"))
            .expect("connected_clients in INFO")
            .trim()
            .parse()
            .unwrap()
    }

    /// Waits until redis counts only the asking connection: every upstream
    /// connection the proxy opened is gone from redis's side too.
    fn wait_no_clients(&self, what: &str) {
        let start = Instant::now();
        loop {
            let n = self.connected_clients();
            if n == 1 {
                return;
            }
            assert!(
                start.elapsed() < crate::harness::SETTLE,
                "{what}: redis still has {} proxy connections",
                n - 1
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

type Conn = BufReader<Stream>;

fn connect(mode: &ClientMode, addr: SocketAddr) -> Conn {
    let mut stream = Stream::connect(mode, addr, Duration::from_secs(10)).expect("connect");
    stream.handshake().expect("TLS handshake with the proxy");
    BufReader::with_capacity(64 << 10, stream)
}

/// One complete RESP2 value, appended to `out` as received.
fn read_value(r: &mut Conn, out: &mut Vec<u8>) {
    let start = out.len();
    r.read_until(b'\n', out).expect("a reply line");
    assert!(out.len() > start, "connection closed before a reply");
    let line = out[start..].to_vec();
    // Only lengths are parsed: a simple string or error may carry any bytes.
    let n = || -> i64 {
        std::str::from_utf8(&line[1..line.len() - 2])
            .expect("a length")
            .parse()
            .expect("a length")
    };
    match line[0] {
        b'$' if n() >= 0 => {
            let mut body = vec![0u8; n() as usize + 2];
            r.read_exact(&mut body).unwrap();
            out.extend_from_slice(&body);
        }
        b'*' => {
            for _ in 0..n().max(0) {
                read_value(r, out);
            }
        }
        _ => {}
    }
}

fn multibulk(args: &[Vec<u8>]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A random command over a few keys of each type: values up to 1 MiB,
/// errors (unknown commands, wrong types, bad arguments) included.
fn random_command(rng: &mut SmallRng) -> Vec<u8> {
    let key = |rng: &mut SmallRng, kind: &str| format!("{kind}:{}", rng.random_range(0..4));
    let value = |rng: &mut SmallRng| {
        let len = if rng.random_bool(0.05) {
            1 << 20
        } else {
            crate::util::log_uniform(rng, 64 << 10)
        };
        crate::util::random_bytes(rng, len)
    };
    let b = |s: &str| s.as_bytes().to_vec();
    let args: Vec<Vec<u8>> = match rng.random_range(0..16) {
        0 => vec![b("SET"), b(&key(rng, "s")), value(rng)],
        1 => vec![b("GET"), b(&key(rng, "s"))],
        2 => vec![b("APPEND"), b(&key(rng, "s")), value(rng)],
        3 => vec![b("STRLEN"), b(&key(rng, "s"))],
        4 => vec![
            b("INCRBY"),
            b(&key(rng, "n")),
            b(&rng.random_range(-9..9).to_string()),
        ],
        5 => vec![b("RPUSH"), b(&key(rng, "l")), value(rng), value(rng)],
        6 => vec![b("LRANGE"), b(&key(rng, "l")), b("0"), b("-1")],
        7 => vec![b("HSET"), b(&key(rng, "h")), b(&key(rng, "f")), value(rng)],
        8 => vec![b("HGETALL"), b(&key(rng, "h"))],
        9 => vec![
            b("MGET"),
            b(&key(rng, "s")),
            b(&key(rng, "n")),
            b(&key(rng, "s")),
        ],
        10 => vec![b("DEL"), b(&key(rng, "s")), b(&key(rng, "l"))],
        // Wrong type, half the time.
        11 => {
            let kind = if rng.random_bool(0.5) { "l" } else { "n" };
            vec![b("INCR"), b(&key(rng, kind))]
        }
        12 => vec![b("NOSUCHCOMMAND"), value(rng)],
        13 => vec![b("GETRANGE"), b(&key(rng, "s")), b("0"), b("abc")],
        14 => vec![b("ECHO"), value(rng)],
        _ => vec![b("PING")],
    };
    multibulk(&args)
}

/// Sends the same random pipelined batches to redis directly and through
/// the proxy and compares every reply byte for byte.
fn differential(direct: &mut Conn, proxied: &mut Conn, rng: &mut SmallRng, batches: usize) {
    // One redis-server, a database each.
    for (db, conn) in [(b'1', &mut *direct), (b'2', &mut *proxied)] {
        let mut setup = b"SELECT _\r\nFLUSHDB\r\n".to_vec();
        setup[7] = db;
        conn.get_mut().write_all(&setup).unwrap();
        let mut ok = Vec::new();
        read_value(conn, &mut ok);
        read_value(conn, &mut ok);
        assert_eq!(ok, b"+OK\r\n+OK\r\n");
    }
    for batch in 0..batches {
        let depth = rng.random_range(1..=16);
        let request: Vec<u8> = (0..depth).flat_map(|_| random_command(rng)).collect();
        let mut replies = [Vec::new(), Vec::new()];
        for (conn, reply) in [&mut *direct, &mut *proxied].into_iter().zip(&mut replies) {
            conn.get_mut().write_all(&request).unwrap();
            for _ in 0..depth {
                read_value(conn, reply);
            }
        }
        assert!(
            replies[0] == replies[1],
            "batch {batch}: the proxy's replies differ from redis's ({} against {} bytes)",
            replies[1].len(),
            replies[0].len()
        );
    }
}

#[test]
fn redis_behind_the_proxy_answers_exactly_as_directly() {
    let _serial = serial();
    let cert = TestCert::new("proxy-redis-diff");
    let redis = Redis::start(&cert);
    let mut rng = rng(0x9e37);
    for upstream_tls in [false, true] {
        for threads in Threads::BOTH {
            let what = format!("differential, {threads:?}, upstream TLS {upstream_tls}");
            let proxy = ProxyServer::start(
                threads.config(),
                Some(cert.server_config()),
                redis.target(upstream_tls, &cert),
            );
            let baseline = open_fds();
            let mut direct = connect(&ClientMode::Plain, redis.server.addr);
            let mut proxied = connect(&cert.client(None), proxy.addr);
            differential(&mut direct, &mut proxied, &mut rng, 100);
            drop((direct, proxied));
            let report = settle(proxy, baseline, &what);
            assert_eq!(report.service.counters.upstreams, 1, "{what}");
            assert!(report.service.counters.bytes_to_client > 1 << 20, "{what}");
            redis.wait_no_clients(&what);
        }
    }
}

/// How a client ends its connection through the proxy.
#[derive(Debug, Clone, Copy)]
enum Ending {
    /// `PING`, then FIN (TLS: close_notify, then FIN): must get `+PONG`
    /// and then an orderly end.
    RequestThenFin,
    /// `PING`, then RST.
    RequestThenReset,
    /// FIN without a request: an orderly end, nothing else.
    BareFin,
}

/// Reads to the end of the stream: `Ok` with everything on an orderly end
/// (TLS: close_notify; a plain FIN there is an error), `Err` on a reset
/// or timeout.
fn read_to_orderly_end(stream: &mut Stream) -> io::Result<Vec<u8>> {
    let mut all = Vec::new();
    let mut buf = [0u8; 16 << 10];
    loop {
        match stream.read(&mut buf)? {
            0 => return Ok(all),
            n => all.extend_from_slice(&buf[..n]),
        }
    }
}

fn end_once(mode: &ClientMode, addr: SocketAddr, ending: Ending) {
    let mut stream = Stream::connect(mode, addr, Duration::from_secs(10)).expect("connect");
    match ending {
        Ending::RequestThenFin => {
            stream.write_all(b"PING\r\n").unwrap();
            stream.shutdown_write().unwrap();
            let got = read_to_orderly_end(&mut stream).expect("an orderly end after the reply");
            assert_eq!(got, b"+PONG\r\n", "request+FIN: the reply, then the end");
        }
        Ending::RequestThenReset => {
            stream.write_all(b"PING\r\n").unwrap();
            stream.flush().unwrap();
            stream.reset();
        }
        Ending::BareFin => {
            stream.handshake().unwrap();
            stream.shutdown_write().unwrap();
            let got = read_to_orderly_end(&mut stream).expect("an orderly end");
            assert!(got.is_empty(), "bare FIN: nothing but the end");
        }
    }
}

#[test]
fn request_fin_reset_and_bare_fin_through_the_proxy_to_redis() {
    let _serial = serial();
    let cert = TestCert::new("proxy-redis-endings");
    let redis = Redis::start(&cert);
    for upstream_tls in [false, true] {
        for threads in Threads::BOTH {
            for side in ClientSide::BOTH {
                for ending in [
                    Ending::RequestThenFin,
                    Ending::RequestThenReset,
                    Ending::BareFin,
                ] {
                    let what = format!(
                        "{ending:?}, {threads:?}, client {side:?}, upstream TLS {upstream_tls}"
                    );
                    let (listen, mode) = side.listen(&cert);
                    let proxy = ProxyServer::start(
                        threads.config(),
                        listen,
                        redis.target(upstream_tls, &cert),
                    );
                    let baseline = open_fds();
                    // Several at once, so some meet the proxy mid-step.
                    let clients: Vec<_> = (0..8)
                        .map(|_| {
                            let (mode, addr) = (mode.clone(), proxy.addr);
                            std::thread::spawn(move || end_once(&mode, addr, ending))
                        })
                        .collect();
                    for c in clients {
                        if let Err(e) = c.join() {
                            std::panic::resume_unwind(e);
                        }
                    }
                    proxy.wait_accepted(8, &what);
                    let report = settle(proxy, baseline, &what);
                    if !matches!(ending, Ending::RequestThenReset) {
                        assert_eq!(report.service.counters.clients, 8, "{what}");
                    }
                    redis.wait_no_clients(&what);
                }
            }
        }
    }
}
