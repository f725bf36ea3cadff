//! Review scratch: an upstream that answers an error and resets (a server
//! closing with unread input) while its client is still uploading.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use baton::{CloseReason, Connect};

use crate::harness::{serial, ProxyServer, Threads};
use crate::util::fake_upstream::FakeUpstream;
use crate::util::reset;

const REPLY: &[u8] = b"-ERR too much\r\n";

#[test]
fn an_upstream_error_reply_then_reset_reaches_a_client_still_uploading() {
    let _serial = serial();
    let upstream = FakeUpstream::spawn(|mut stream| {
        let mut request = [0u8; 5];
        if stream.read_exact(&mut request).is_err() {
            return;
        }
        // Stop reading: the proxy's output for this side backs up.
        std::thread::sleep(Duration::from_millis(300));
        let _ = stream.write_all(REPLY);
        reset(stream);
    });
    let mut lost = 0;
    let mut total = 0;
    for threads in Threads::BOTH {
        let proxy = ProxyServer::start(threads.config(), None, Connect::plain(upstream.addr));
        for _ in 0..10 {
            let mut client = TcpStream::connect(proxy.addr).unwrap();
            client
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let writer = client.try_clone().unwrap();
            writer
                .set_write_timeout(Some(Duration::from_secs(2)))
                .unwrap();
            let t = std::thread::spawn(move || {
                let mut w = writer;
                let chunk = vec![b'x'; 64 * 1024];
                let _ = w.write_all(b"hello");
                for _ in 0..256 {
                    if w.write_all(&chunk).is_err() {
                        break;
                    }
                }
            });
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                match client.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            t.join().unwrap();
            total += 1;
            if got != REPLY {
                lost += 1;
                eprintln!("{threads:?}: got {:?}", String::from_utf8_lossy(&got));
            }
        }
        proxy.wait_idle("resets while relaying");
        let report = proxy.stop();
        eprintln!(
            "{threads:?}: proxy forwarded {} bytes to clients; closed {:?}",
            report.service.counters.bytes_to_client,
            crate::harness::closed_by_name(&report.stats)
        );
    }
    assert_eq!(
        lost, 0,
        "{lost} of {total} clients lost the upstream's reply sent before its reset"
    );
}

/// A client that half-closes, then resets, while its upstream (having read
/// the end) stays silent and open: the reset is an error on one side, which
/// should close both.
#[test]
fn a_reset_after_a_clients_fin_closes_the_pair() {
    let _serial = serial();
    let upstream = FakeUpstream::spawn(|mut stream| {
        let mut all = Vec::new();
        let _ = stream.read_to_end(&mut all);
        // Silent and open for a while after the client's end.
        std::thread::sleep(Duration::from_secs(4));
    });
    for threads in Threads::BOTH {
        let proxy = ProxyServer::start(threads.config(), None, Connect::plain(upstream.addr));
        let mut client = TcpStream::connect(proxy.addr).unwrap();
        client.write_all(b"hello").unwrap();
        client.shutdown(std::net::Shutdown::Write).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let open_before = proxy.stats().connections_open;
        reset(client);
        let start = std::time::Instant::now();
        while proxy.stats().connections_open > 0 && start.elapsed() < Duration::from_secs(2) {
            std::thread::sleep(Duration::from_millis(10));
        }
        let open_after = proxy.stats().connections_open;
        eprintln!("{threads:?}: open before the reset {open_before}, 2 s after it {open_after}");
        assert_eq!(
            open_after, 0,
            "{threads:?}: the client's reset did not close the pair"
        );
    }
}

/// A client that half-closes and then goes silent for good, in front of an
/// upstream that never ends its side either: the pair is closed once it has
/// been half-closed for the fin timeout (HAProxy's `timeout client-fin`),
/// instead of living for ever.
#[test]
fn a_pair_left_half_closed_is_closed_after_the_fin_timeout() {
    let _serial = serial();
    let upstream = FakeUpstream::spawn(|mut stream| {
        let mut all = Vec::new();
        let _ = stream.read_to_end(&mut all);
        // Silent and open long after the fin timeout (it ends by itself,
        // so a test without the timer ends too, and fails below).
        std::thread::sleep(Duration::from_secs(2));
    });
    for threads in Threads::BOTH {
        let proxy = ProxyServer::start_with_fin_timeout(
            threads.config(),
            None,
            Connect::plain(upstream.addr),
            Duration::from_millis(300),
        );
        let mut client = TcpStream::connect(proxy.addr).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        client.write_all(b"hello").unwrap();
        client.shutdown(std::net::Shutdown::Write).unwrap();
        // The proxy closes the pair: the client reads the end.
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty(), "{threads:?}: {rest:?}");
        proxy.wait_idle("a pair left half-closed");
        // Closed by the proxy's timer (the client side, then its partner),
        // not by the upstream finally ending its side.
        assert_eq!(
            proxy.stats().closed_for(&CloseReason::ByService),
            2,
            "{threads:?}: {:?}",
            proxy.stats().closed
        );
    }
}
