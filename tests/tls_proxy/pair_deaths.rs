//! The pair-death matrix: a client and its upstream connection die in every
//! order (FIN, RST, half-close then reset, close with data unread), idle or
//! with data in flight both ways, a dozen pairs at once and in succession
//! (so `ConnId` slots are reused while their old pairs are still dying),
//! inline and with every step on an IO thread, plain and TLS clients.
//!
//! A paired connection is the shape in which NanoMQ freed a pipe still in
//! use. What must hold: every byte either side reads is its own pair's (a
//! message for a dead partner delivered to the connection that reused its
//! slot would carry another pair's bytes), orderly ends pass exactly what
//! was sent, every death ends the other side within a bound, and after each
//! round the proxy has nothing open, this process no descriptor more than
//! before, and no callback panicked.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use baton::Connect;

use crate::harness::{serial, settle, wait_fds, ClientSide, ProxyServer, Threads, SETTLE};
use crate::util::fake_upstream::{FakeUpstream, Tagged};
use crate::util::faults::Stream;
use crate::util::{open_fds, reset, ClientMode, TestCert};

/// Pairs alive at once in a round.
const PAIRS: usize = 12;
/// Lives each pair thread runs one after the other in a round.
const LIVES: usize = 2;
/// At most this much is pushed each way before a death "in flight".
const IN_FLIGHT_MAX: usize = 1 << 20;

#[derive(Debug, Clone, Copy)]
enum Death {
    /// The client ends its sending side; the upstream reads everything,
    /// answers and ends too.
    ClientFinFirst,
    /// The same, the upstream first.
    UpstreamFinFirst,
    ClientReset,
    UpstreamReset,
    /// Both reset at once.
    BothReset,
    /// The client half-closes; the upstream reads to the end, then resets.
    ClientFinThenUpstreamReset,
    /// The upstream half-closes; the client reads to the end, then resets.
    UpstreamFinThenClientReset,
    /// The client closes with bytes unread (the kernel sends a reset).
    ClientClosesUnread,
}

impl Death {
    const ALL: [Death; 8] = [
        Death::ClientFinFirst,
        Death::UpstreamFinFirst,
        Death::ClientReset,
        Death::UpstreamReset,
        Death::BothReset,
        Death::ClientFinThenUpstreamReset,
        Death::UpstreamFinThenClientReset,
        Death::ClientClosesUnread,
    ];
}

/// Unique per pair in this process; consecutive pairs get different fill
/// bytes.
fn next_tag() -> u64 {
    static TAG: AtomicU64 = AtomicU64::new(1);
    TAG.fetch_add(1, Ordering::Relaxed)
}

fn fill(tag: u64) -> u8 {
    (tag % 251) as u8 + 1
}

/// How a side's reading ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    Orderly,
    Abrupt,
}

/// Reads until the stream ends, checking every byte is `fill`. A stream
/// still open after its timeout fails the test: the proxy forgot the pair.
fn drain(r: &mut impl Read, fill: u8, what: &str) -> (usize, End) {
    let mut n = 0;
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return (n, End::Orderly),
            Ok(k) => {
                assert!(
                    buf[..k].iter().all(|&b| b == fill),
                    "{what}: read bytes of another pair (a message reached a reused ConnId?)"
                );
                n += k;
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("{what}: still open {SETTLE:?} after its partner died")
            }
            Err(_) => return (n, End::Abrupt),
        }
    }
}

/// Writes `fill` bytes until the peer stops taking them (a short write
/// timeout) or `IN_FLIGHT_MAX`; returns how many were accepted.
fn push(w: &mut impl Write, tcp: &TcpStream, fill: u8) -> usize {
    tcp.set_write_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let chunk = vec![fill; 64 << 10];
    let mut sent = 0;
    while sent < IN_FLIGHT_MAX {
        match w.write(&chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => sent += n,
        }
    }
    tcp.set_write_timeout(Some(SETTLE)).unwrap();
    sent
}

struct Round<'a> {
    mode: &'a ClientMode,
    addr: SocketAddr,
    tagged: &'a Tagged,
    what: &'a str,
}

/// One pair's life: open, a round trip checked both ways, optionally data
/// pushed each way and left unread, then `death`.
fn life(round: &Round<'_>, death: Death, in_flight: bool) {
    let tag = next_tag();
    let fill = fill(tag);
    let what = &format!(
        "{}, {death:?}, in flight {in_flight}, pair {tag}",
        round.what
    );
    let arrived = round.tagged.expect(tag);
    let mut client = Stream::connect(round.mode, round.addr, SETTLE).expect("connect");
    client.write_all(&tag.to_le_bytes()).unwrap();
    client.flush().unwrap();
    let mut up = arrived
        .recv_timeout(SETTLE)
        .unwrap_or_else(|_| panic!("{what}: no upstream connection"));
    up.set_read_timeout(Some(SETTLE)).unwrap();
    up.set_write_timeout(Some(SETTLE)).unwrap();

    let mut got = [0u8; 100];
    client.write_all(&[fill; 100]).unwrap();
    client.flush().unwrap();
    up.read_exact(&mut got).unwrap();
    assert!(got.iter().all(|&b| b == fill), "{what}: to upstream");
    up.write_all(&[fill; 100]).unwrap();
    client.read_exact(&mut got).unwrap();
    assert!(got.iter().all(|&b| b == fill), "{what}: to client");

    let (to_up, to_client) = if in_flight {
        let tcp = client.tcp().try_clone().unwrap();
        let a = push(&mut client, &tcp, fill);
        let tcp = up.try_clone().unwrap();
        let b = push(&mut up, &tcp, fill);
        (a, b)
    } else {
        (0, 0)
    };

    match death {
        Death::ClientFinFirst => std::thread::scope(|s| {
            let reader = s.spawn(|| {
                let got = drain(&mut up, fill, what);
                assert_eq!(got, (to_up, End::Orderly), "{what}: upstream's part");
                up.write_all(&[fill; 100]).unwrap();
                up.shutdown(Shutdown::Write).unwrap();
            });
            client.shutdown_write().unwrap();
            let got = drain(&mut client, fill, what);
            assert_eq!(
                got,
                (to_client + 100, End::Orderly),
                "{what}: client's part"
            );
            join(reader);
        }),
        Death::UpstreamFinFirst => std::thread::scope(|s| {
            up.shutdown(Shutdown::Write).unwrap();
            let reader = s.spawn(|| drain(&mut up, fill, what));
            let got = drain(&mut client, fill, what);
            assert_eq!(got, (to_client, End::Orderly), "{what}: client's part");
            client.write_all(&[fill; 100]).unwrap();
            client.shutdown_write().unwrap();
            let got = join(reader);
            assert_eq!(got, (to_up + 100, End::Orderly), "{what}: upstream's part");
        }),
        Death::ClientReset => {
            client.reset();
            let (n, _) = drain(&mut up, fill, what);
            assert!(n <= to_up, "{what}");
        }
        Death::UpstreamReset => {
            reset(up);
            let (n, _) = drain(&mut client, fill, what);
            assert!(n <= to_client, "{what}");
        }
        Death::BothReset => {
            reset(up);
            client.reset();
        }
        Death::ClientFinThenUpstreamReset => {
            std::thread::scope(|s| {
                let reader = s.spawn(|| drain(&mut up, fill, what));
                client.shutdown_write().unwrap();
                let got = join(reader);
                assert_eq!(got, (to_up, End::Orderly), "{what}: upstream's part");
            });
            reset(up);
            let (n, _) = drain(&mut client, fill, what);
            assert!(n <= to_client, "{what}");
        }
        Death::UpstreamFinThenClientReset => std::thread::scope(|s| {
            up.shutdown(Shutdown::Write).unwrap();
            let reader = s.spawn(|| drain(&mut up, fill, what));
            let got = drain(&mut client, fill, what);
            assert_eq!(got, (to_client, End::Orderly), "{what}: client's part");
            client.reset();
            let (n, _) = join(reader);
            assert!(n <= to_up, "{what}");
        }),
        Death::ClientClosesUnread => {
            // One more reply the client never reads: its close then resets.
            up.write_all(&[fill; 100]).unwrap();
            std::thread::sleep(Duration::from_millis(1));
            drop(client);
            let (n, _) = drain(&mut up, fill, what);
            assert!(n <= to_up, "{what}");
        }
    }
}

fn join<T>(h: std::thread::ScopedJoinHandle<'_, T>) -> T {
    h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// `PAIRS` threads, each living `LIVES` lives with `pick(pair, life)`'s
/// death, all at once.
fn run_round(round: &Round<'_>, pick: impl Fn(usize, usize) -> (Death, bool) + Sync) {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..PAIRS)
            .map(|p| {
                let pick = &pick;
                s.spawn(move || {
                    for l in 0..LIVES {
                        let (death, in_flight) = pick(p, l);
                        life(round, death, in_flight);
                    }
                })
            })
            .collect();
        for h in handles {
            join(h);
        }
    });
}

#[test]
fn pairs_die_in_every_order_without_leaks_or_crossed_bytes() {
    let _serial = serial();
    let cert = TestCert::new("proxy-pair-deaths");
    let tagged = Tagged::default();
    let upstream = FakeUpstream::spawn(tagged.handler());
    for threads in Threads::BOTH {
        for side in ClientSide::BOTH {
            let (listen, mode) = side.listen(&cert);
            let proxy = ProxyServer::start(threads.config(), listen, Connect::plain(upstream.addr));
            let baseline = open_fds();
            let setup = format!("{threads:?}, client {side:?}");
            let mut lives = 0;
            for death in Death::ALL {
                for in_flight in [false, true] {
                    let round = Round {
                        mode: &mode,
                        addr: proxy.addr,
                        tagged: &tagged,
                        what: &setup,
                    };
                    let what = format!("{setup}, {death:?}, in flight {in_flight}");
                    run_round(&round, |_, _| (death, in_flight));
                    lives += PAIRS * LIVES;
                    proxy.wait_idle(&what);
                    wait_fds(baseline, &what);
                }
            }
            // Every kind of death at once, so slots freed by one kind are
            // reused by pairs dying another way.
            let what = format!("{setup}, mixed");
            let round = Round {
                mode: &mode,
                addr: proxy.addr,
                tagged: &tagged,
                what: &what,
            };
            run_round(&round, |p, l| {
                (Death::ALL[(p + l) % Death::ALL.len()], (p / 2 + l) % 2 == 0)
            });
            lives += PAIRS * LIVES;
            let report = settle(proxy, baseline, &what);
            let counters = &report.service.counters;
            assert_eq!(counters.clients, lives as u64, "{setup}");
            assert_eq!(counters.upstreams, lives as u64, "{setup}");
            assert_eq!(report.stats.connects_failed, 0, "{setup}");
        }
    }
}
