//! Memory under slow readers: 20 TLS clients each ask a fast upstream for
//! many MiB and read slowly. The proxy must hold a bounded amount per pair
//! (it stops reading an upstream whose client has a high-water mark of
//! output queued, and resumes it once that drains), not buffer what the
//! upstream can send faster than the client takes it.
//!
//! Measured as the live heap of this test process (a counting global
//! allocator: `util/heap.rs`), sampled while the clients read; the clients
//! and the fake upstream allocate a fixed few MiB of it, the rest is the
//! proxy's. Without the backpressure the proxy would hold most of the
//! `CLIENTS × MIB` MiB sent.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use baton::Connect;

use crate::harness::{serial, settle, Threads, SETTLE};
use crate::util::fake_upstream::FakeUpstream;
use crate::util::faults::Stream;
use crate::util::heap::live_bytes;
use crate::util::{open_fds, TestCert};

const CLIENTS: usize = 20;
/// Bound on the proxy's heap growth with every client streaming.
const BOUND: isize = 64 << 20;
const MIB: usize = 1 << 20;
/// What a slow client reads at a time, and how long it waits after each.
const READ: usize = 64 << 10;
const PAUSE: Duration = Duration::from_millis(2);

/// MiB each client asks for (`BATON_PROXY_SLOW_MIB`, default 24: 480 MiB
/// through the proxy, 7.5 times the bound; the 200 works too, in
/// about eight times as long).
fn mib_per_client() -> usize {
    std::env::var("BATON_PROXY_SLOW_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24)
}

fn byte_at(offset: usize) -> u8 {
    ((offset % MIB) % 251) as u8
}

/// An upstream that answers an 8-byte count with that many MiB, as fast as
/// the proxy takes them, then ends.
fn streaming_upstream() -> FakeUpstream {
    let block: Arc<Vec<u8>> = Arc::new((0..MIB).map(byte_at).collect());
    FakeUpstream::spawn(move |mut stream| {
        let mut count = [0u8; 8];
        if stream.read_exact(&mut count).is_err() {
            return;
        }
        for _ in 0..u64::from_le_bytes(count) {
            if stream.write_all(&block).is_err() {
                return;
            }
        }
    })
}

fn slow_client(mode: &crate::util::ClientMode, addr: std::net::SocketAddr, mib: usize) {
    let mut stream = Stream::connect(mode, addr, SETTLE).expect("connect");
    stream.write_all(&(mib as u64).to_le_bytes()).unwrap();
    stream.flush().unwrap();
    let mut buf = vec![0u8; READ];
    let mut offset = 0;
    while offset < mib * MIB {
        let n = stream.read(&mut buf).expect("reading the stream");
        assert!(n > 0, "the stream ended after {offset} bytes");
        assert!(
            buf[..n]
                .iter()
                .enumerate()
                .all(|(i, &b)| b == byte_at(offset + i)),
            "bytes changed near offset {offset}"
        );
        offset += n;
        std::thread::sleep(PAUSE);
    }
    let _ = stream.shutdown_write();
}

#[test]
fn slow_readers_of_large_replies_keep_the_proxy_memory_bounded() {
    let _serial = serial();
    let cert = TestCert::new("proxy-slow-readers");
    let upstream = streaming_upstream();
    let mib = mib_per_client();
    for threads in Threads::BOTH {
        let what = format!("{CLIENTS} slow readers of {mib} MiB, {threads:?}");
        let proxy = crate::harness::ProxyServer::start(
            threads.config(),
            Some(cert.server_config()),
            Connect::plain(upstream.addr),
        );
        let baseline_fds = open_fds();
        let baseline = live_bytes();
        let peak = AtomicIsize::new(0);
        let done = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                while !done.load(Ordering::Relaxed) {
                    peak.fetch_max(live_bytes() - baseline, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(2));
                }
            });
            let clients: Vec<_> = (0..CLIENTS)
                .map(|_| {
                    let mode = cert.client(None);
                    let addr = proxy.addr;
                    s.spawn(move || slow_client(&mode, addr, mib))
                })
                .collect();
            for c in clients {
                let result = c.join();
                if let Err(e) = result {
                    done.store(true, Ordering::Relaxed);
                    std::panic::resume_unwind(e);
                }
            }
            done.store(true, Ordering::Relaxed);
        });
        let peak = peak.load(Ordering::Relaxed);
        eprintln!("{what}: heap peak {:+} MiB", peak as f64 / MIB as f64);
        assert!(
            peak < BOUND,
            "{what}: the heap grew by {} MiB (bound {} MiB)",
            peak >> 20,
            BOUND >> 20
        );
        let report = settle(proxy, baseline_fds, &what);
        assert_eq!(
            report.service.counters.bytes_to_client,
            (CLIENTS * mib * MIB) as u64,
            "{what}"
        );
    }
}
