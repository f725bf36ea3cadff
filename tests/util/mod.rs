//! Helpers shared by the integration tests.
#![allow(dead_code, missing_docs)] // each test binary uses a different subset

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use baton::{Config, LoopHandle, RunReport, Server, Service};
use polling::{Event, Events, PollMode, Poller};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// A server running on its own thread (a `Server` is `!Send`, so it is
/// built on the thread that runs it).
pub struct TestServer<C: Send + 'static> {
    pub addr: SocketAddr,
    pub handle: LoopHandle<C>,
    thread: Option<JoinHandle<RunReport>>,
}

impl<C: Send + 'static> TestServer<C> {
    /// Shuts down with `grace` and waits for `run` to return.
    pub fn stop(mut self, grace: Duration) -> RunReport {
        self.handle.shutdown(grace);
        self.thread
            .take()
            .unwrap()
            .join()
            .expect("server thread panicked")
    }

    /// Waits until `pred` holds for the server's counters, or panics after
    /// `limit` (a generous bound against hangs, not a timing claim).
    pub fn wait_for(
        &self,
        what: &str,
        limit: Duration,
        pred: impl Fn(&baton::StatsSnapshot) -> bool,
    ) {
        let start = Instant::now();
        loop {
            let stats = self.handle.stats();
            if pred(&stats) {
                return;
            }
            assert!(
                start.elapsed() < limit,
                "timed out waiting for {what}: {stats:#?}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl<C: Send + 'static> Drop for TestServer<C> {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            // Abandoned by a failing test: still stop it, to not leak the thread.
            self.handle.shutdown(Duration::ZERO);
            let _ = thread.join();
        }
    }
}

/// Starts `make()`'s service with `config` on 127.0.0.1 (a free port).
pub fn spawn_server<S, F>(config: Config, make: F) -> TestServer<S::Command>
where
    S: Service,
    F: FnOnce() -> S + Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("baton-loop".into())
        .spawn(move || {
            let server = Server::builder()
                .config(config)
                .listen("127.0.0.1:0".parse().unwrap())
                .build(make())
                .expect("build server");
            tx.send((server.local_addrs()[0], server.handle())).unwrap();
            server.run().expect("server run")
        })
        .unwrap();
    let (addr, handle) = rx.recv().expect("server started");
    TestServer {
        addr,
        handle,
        thread: Some(thread),
    }
}

/// Open file descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Waits until the open descriptor count is back to `baseline`, or panics
/// after `limit` showing the difference.
pub fn wait_for_fds(baseline: usize, limit: Duration) {
    let start = Instant::now();
    while open_fds() > baseline {
        assert!(
            start.elapsed() < limit,
            "descriptors leaked: {} open, baseline {baseline}",
            open_fds()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Closes `stream` abortively: SO_LINGER 0 makes close send RST.
pub fn reset(stream: TcpStream) {
    let socket = socket2::Socket::from(stream);
    socket.set_linger(Some(Duration::ZERO)).unwrap();
    drop(socket);
}

/// Names of this process's threads.
pub fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|s| s.trim().to_string())
        .collect()
}

pub mod lines;

pub fn rng(seed: u64) -> SmallRng {
    SmallRng::seed_from_u64(seed)
}

/// A size from 1 to `max`, log-uniform: as many tiny as huge payloads.
pub fn log_uniform(rng: &mut SmallRng, max: usize) -> usize {
    let bits = rng.random_range(0.0..(max as f64).log2());
    (2f64.powf(bits) as usize).clamp(1, max)
}

pub fn random_bytes(rng: &mut SmallRng, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    rng.fill(&mut v[..]);
    v
}

/// One echo client: sends `payload` in `chunks`, expects it back.
pub struct EchoPlan {
    pub payload: Vec<u8>,
    pub chunks: Vec<usize>,
}

impl EchoPlan {
    pub fn random(rng: &mut SmallRng, max_payload: usize) -> Self {
        let len = log_uniform(rng, max_payload);
        let payload = random_bytes(rng, len);
        let mut chunks = Vec::new();
        let mut left = len;
        while left > 0 {
            let c = log_uniform(rng, 64 * 1024).min(left);
            chunks.push(c);
            left -= c;
        }
        Self { payload, chunks }
    }
}

struct ClientState {
    stream: TcpStream,
    plan: EchoPlan,
    chunk: usize,
    chunk_pos: usize,
    sent: usize,
    received: Vec<u8>,
    done: bool,
}

/// Runs every plan against `addr` at once from this thread (non-blocking
/// sockets, one poller), checking every byte comes back in order. Panics
/// on a mismatch, an error, or if not finished within `limit`.
pub fn run_echo_clients(addr: SocketAddr, plans: Vec<EchoPlan>, limit: Duration) {
    let poller = Poller::new().unwrap();
    let mut clients: Vec<ClientState> = plans
        .into_iter()
        .map(|plan| {
            let stream = TcpStream::connect(addr).expect("connect");
            stream.set_nonblocking(true).unwrap();
            stream.set_nodelay(true).unwrap();
            ClientState {
                stream,
                plan,
                chunk: 0,
                chunk_pos: 0,
                sent: 0,
                received: Vec::new(),
                done: false,
            }
        })
        .collect();
    for (key, c) in clients.iter().enumerate() {
        // SAFETY: every source is deleted from the poller before it is dropped
        // (on completion below; on a panic the poller is dropped first).
        unsafe {
            poller
                .add_with_mode(&c.stream, Event::all(key), PollMode::Level)
                .unwrap()
        };
    }
    let start = Instant::now();
    let mut left = clients.len();
    let mut events = Events::new();
    let mut buf = vec![0u8; 256 * 1024];
    while left > 0 {
        assert!(
            start.elapsed() < limit,
            "echo clients did not finish: {left} left"
        );
        events.clear();
        poller
            .wait(&mut events, Some(Duration::from_millis(100)))
            .unwrap();
        for ev in events.iter() {
            let c = &mut clients[ev.key];
            if c.done {
                continue;
            }
            if ev.writable {
                while c.chunk < c.plan.chunks.len() {
                    let start_at: usize = c.sent;
                    let end = start_at + (c.plan.chunks[c.chunk] - c.chunk_pos);
                    match c.stream.write(&c.plan.payload[start_at..end]) {
                        Ok(n) => {
                            c.sent += n;
                            c.chunk_pos += n;
                            if c.chunk_pos == c.plan.chunks[c.chunk] {
                                c.chunk += 1;
                                c.chunk_pos = 0;
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => panic!("client write failed: {e}"),
                    }
                }
            }
            if ev.readable {
                loop {
                    match c.stream.read(&mut buf) {
                        Ok(0) => panic!(
                            "server closed after {} of {} bytes",
                            c.received.len(),
                            c.plan.payload.len()
                        ),
                        Ok(n) => c.received.extend_from_slice(&buf[..n]),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => panic!("client read failed: {e}"),
                    }
                }
            }
            let interest = if c.chunk < c.plan.chunks.len() {
                Event::all(ev.key)
            } else {
                Event::readable(ev.key)
            };
            poller
                .modify_with_mode(&c.stream, interest, PollMode::Level)
                .unwrap();
            let got = c.received.len();
            assert!(got <= c.plan.payload.len(), "received more than was sent");
            assert!(
                c.received[..] == c.plan.payload[..got],
                "bytes came back changed or out of order"
            );
            if got == c.plan.payload.len() {
                c.done = true;
                left -= 1;
                poller.delete(&c.stream).unwrap();
            }
        }
    }
}
