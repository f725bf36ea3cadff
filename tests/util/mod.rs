//! Helpers shared by the integration tests.
#![allow(dead_code, missing_docs)] // each test binary uses a different subset

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use baton::tls::rustls::pki_types::ServerName;
use baton::tls::rustls::{ClientConfig, ServerConfig, SupportedProtocolVersion};
use baton::tls::{IoState, TlsSettings, Transport};
use baton::{Config, LoopHandle, RecvBuf, RunReport, Server, Service};
use polling::{Event, Events, PollMode, Poller};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// A server running on its own thread (a `Server` is `!Send`, so it is
/// built on the thread that runs it).
pub struct TestServer<C: Send + 'static> {
    pub addr: SocketAddr,
    pub handle: LoopHandle<C>,
    thread: Option<JoinHandle<RunReport<()>>>,
}

impl<C: Send + 'static> TestServer<C> {
    /// Shuts down with `grace` and waits for `run` to return.
    pub fn stop(mut self, grace: Duration) -> RunReport<()> {
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
    spawn_server_on(config, None, make)
}

fn spawn_server_on<S, F>(
    config: Config,
    tls: Option<Arc<ServerConfig>>,
    make: F,
) -> TestServer<S::Command>
where
    S: Service,
    F: FnOnce() -> S + Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("baton-loop".into())
        .spawn(move || {
            let addr = "127.0.0.1:0".parse().unwrap();
            let builder = Server::builder().config(config);
            let builder = match tls {
                Some(tls) => builder.listen_tls(addr, tls),
                None => builder.listen(addr),
            };
            let server = builder.build(make()).expect("build server");
            tx.send((server.local_addrs()[0], server.handle())).unwrap();
            server.run().expect("server run").map_service(drop)
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

pub mod differential;
pub mod fake_upstream;
pub mod faults;
pub mod heap;
pub mod lines;
pub mod real_redis;
pub mod workloads;

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

/// How test clients connect: plain TCP, or TLS trusting a certificate.
#[derive(Clone)]
pub enum ClientMode {
    Plain,
    Tls(Arc<ClientConfig>),
}

impl ClientMode {
    /// A non-blocking client transport to `addr` (TLS handshake pending).
    pub fn connect(&self, addr: SocketAddr) -> Transport {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nonblocking(true).unwrap();
        stream.set_nodelay(true).unwrap();
        match self {
            ClientMode::Plain => Transport::plain(stream),
            ClientMode::Tls(config) => {
                let name = ServerName::try_from("localhost").unwrap();
                Transport::tls_client(stream, Arc::clone(config), name).unwrap()
            }
        }
    }
}

struct ClientState {
    transport: Transport,
    plan: EchoPlan,
    chunk: usize,
    chunk_pos: usize,
    sent: usize,
    received: RecvBuf,
    checked: usize,
    done: bool,
}

/// Runs every plan against `addr` at once from this thread (non-blocking
/// sockets, one poller), checking every byte comes back in order. Panics
/// on a mismatch, an error, or if not finished within `limit`.
pub fn run_echo_clients(addr: SocketAddr, plans: Vec<EchoPlan>, limit: Duration) {
    run_echo_clients_with(&ClientMode::Plain, addr, plans, limit)
}

/// [`run_echo_clients`], plain or TLS.
pub fn run_echo_clients_with(
    mode: &ClientMode,
    addr: SocketAddr,
    plans: Vec<EchoPlan>,
    limit: Duration,
) {
    let poller = Poller::new().unwrap();
    let mut clients: Vec<ClientState> = plans
        .into_iter()
        .map(|plan| ClientState {
            transport: mode.connect(addr),
            plan,
            chunk: 0,
            chunk_pos: 0,
            sent: 0,
            received: RecvBuf::new(),
            checked: 0,
            done: false,
        })
        .collect();
    for (key, c) in clients.iter().enumerate() {
        // SAFETY: every source is deleted from the poller before it is dropped
        // (on completion below; on a panic the poller is dropped first).
        unsafe {
            poller
                .add_with_mode(c.transport.socket(), Event::all(key), PollMode::Level)
                .unwrap()
        };
    }
    let start = Instant::now();
    let mut left = clients.len();
    let mut events = Events::new();
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
                if c.transport.wants_write() {
                    c.transport.flush().expect("client flush");
                }
                while c.chunk < c.plan.chunks.len() && c.transport.accepts_app_data() {
                    let end = c.sent + (c.plan.chunks[c.chunk] - c.chunk_pos);
                    let progress = c
                        .transport
                        .write(&c.plan.payload[c.sent..end])
                        .expect("client write");
                    c.sent += progress.bytes;
                    c.chunk_pos += progress.bytes;
                    if c.chunk_pos == c.plan.chunks[c.chunk] {
                        c.chunk += 1;
                        c.chunk_pos = 0;
                    }
                    if progress.state == IoState::Drained || progress.bytes == 0 {
                        break;
                    }
                }
            }
            if ev.readable {
                let progress = c
                    .transport
                    .read(&mut c.received, 1 << 20)
                    .expect("client read");
                assert!(
                    progress.state != IoState::Eof
                        || c.checked + c.received.len() == c.plan.payload.len(),
                    "server closed after {} of {} bytes",
                    c.checked + c.received.len(),
                    c.plan.payload.len()
                );
            }
            let got = c.received.len();
            assert!(
                c.checked + got <= c.plan.payload.len(),
                "received more than was sent"
            );
            assert!(
                c.received.as_slice() == &c.plan.payload[c.checked..c.checked + got],
                "bytes came back changed or out of order"
            );
            c.checked += got;
            c.received.consume(got);
            let sending = c.chunk < c.plan.chunks.len() || c.transport.wants_write();
            let interest = if sending {
                Event::all(ev.key)
            } else {
                Event::readable(ev.key)
            };
            poller
                .modify_with_mode(c.transport.socket(), interest, PollMode::Level)
                .unwrap();
            if c.checked == c.plan.payload.len() {
                c.done = true;
                left -= 1;
                poller.delete(c.transport.socket()).unwrap();
            }
        }
    }
}

/// A certificate generated for this test run, and clients that trust it.
pub struct TestCert {
    pub dir: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestCert {
    /// A fresh self-signed certificate for localhost in its own directory.
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("baton-test-{name}-{}", std::process::id()));
        let (cert, key) = baton::tls::generate_self_signed(&dir).unwrap();
        Self { dir, cert, key }
    }

    pub fn settings(&self) -> TlsSettings {
        TlsSettings::from_files(&self.cert, &self.key)
    }

    pub fn server_config(&self) -> Arc<ServerConfig> {
        self.settings().build().unwrap()
    }

    /// A client trusting this certificate, TLS 1.3 and 1.2 or only `version`.
    pub fn client(&self, version: Option<&'static SupportedProtocolVersion>) -> ClientMode {
        let versions: Vec<&'static SupportedProtocolVersion> = version.into_iter().collect();
        ClientMode::Tls(Arc::new(
            baton::tls::client_config_trusting(&self.cert, &versions).unwrap(),
        ))
    }
}

impl Drop for TestCert {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts `make()`'s service with `config` on 127.0.0.1, TLS with `tls`.
pub fn spawn_tls_server<S, F>(
    config: Config,
    tls: Arc<ServerConfig>,
    make: F,
) -> TestServer<S::Command>
where
    S: Service,
    F: FnOnce() -> S + Send + 'static,
{
    spawn_server_on(config, Some(tls), make)
}
