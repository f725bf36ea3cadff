//! The proxy in-process (the example's service on a loop thread of its
//! own), the setups every test runs it in, and the checks after a test:
//! nothing open, no descriptor left, no panic.

use std::net::{SocketAddr, TcpListener};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use baton::tls::rustls::pki_types::ServerName;
use baton::tls::rustls::ServerConfig;
use baton::tls::ClientTlsSettings;
use baton::{Config, Connect, IoActivation, LoopHandle, RunReport, Server, StatsSnapshot};

use crate::service::{Command, Proxy};
use crate::util::{open_fds, ClientMode, TestCert};

/// How long anything the proxy must do by itself may take before the test
/// fails: generous, a bound against hangs, not a timing claim.
pub const SETTLE: Duration = Duration::from_secs(10);

/// The tests here run one at a time: they count this process's
/// descriptors, which tests running beside them would change.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// The proxy running on its own loop thread.
pub struct ProxyServer {
    pub addr: SocketAddr,
    pub handle: LoopHandle<Command>,
    thread: Option<JoinHandle<RunReport<Proxy>>>,
}

impl ProxyServer {
    /// Listens on 127.0.0.1 (TLS with `tls`, else plain) and forwards to
    /// `upstream`.
    pub fn start(config: Config, tls: Option<Arc<ServerConfig>>, upstream: Connect) -> Self {
        Self::start_with_fin_timeout(config, tls, upstream, Duration::from_secs(60))
    }

    /// [`start`](Self::start), closing a pair that stays half-closed for
    /// `fin_timeout`.
    pub fn start_with_fin_timeout(
        config: Config,
        tls: Option<Arc<ServerConfig>>,
        upstream: Connect,
        fin_timeout: Duration,
    ) -> Self {
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("proxy-loop".into())
            .spawn(move || {
                let addr = "127.0.0.1:0".parse().unwrap();
                let builder = Server::builder().config(config);
                let builder = match tls {
                    Some(tls) => builder.listen_tls(addr, tls),
                    None => builder.listen(addr),
                };
                let server = builder
                    .build(Proxy::new(upstream, fin_timeout))
                    .expect("build proxy");
                tx.send((server.local_addrs()[0], server.handle())).unwrap();
                server.run().expect("proxy run")
            })
            .unwrap();
        let (addr, handle) = rx.recv().expect("proxy started");
        Self {
            addr,
            handle,
            thread: Some(thread),
        }
    }

    pub fn stats(&self) -> StatsSnapshot {
        self.handle.stats()
    }

    /// Waits until the proxy has accepted `n` connections: a client that
    /// resets at once may be done before the proxy even accepted it, and
    /// "nothing open" means nothing then.
    pub fn wait_accepted(&self, n: u64, what: &str) {
        let start = Instant::now();
        while self.stats().connections_accepted < n {
            assert!(
                start.elapsed() < SETTLE,
                "{what}: the proxy accepted {} of {n} connections",
                self.stats().connections_accepted
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Waits until the proxy has no connection open (client or upstream).
    pub fn wait_idle(&self, what: &str) {
        let start = Instant::now();
        loop {
            let stats = self.stats();
            if stats.connections_open == 0 {
                return;
            }
            assert!(
                start.elapsed() < SETTLE,
                "{what}: the proxy still has {} connections open (closed by reason: {:?})",
                stats.connections_open,
                closed_by_name(&stats)
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Shuts down (nothing should be open any more) and returns the report,
    /// failing the test if `run` does not return within [`SETTLE`].
    pub fn stop(mut self) -> RunReport<Proxy> {
        self.handle.shutdown(Duration::ZERO);
        let thread = self.thread.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(thread.join());
        });
        match rx.recv_timeout(SETTLE) {
            Ok(Ok(report)) => report,
            Ok(Err(_)) => panic!("the proxy's loop thread panicked"),
            Err(_) => panic!("the proxy did not stop within {SETTLE:?}"),
        }
    }
}

impl Drop for ProxyServer {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            // Abandoned by a failing test: still stop it.
            self.handle.shutdown(Duration::ZERO);
            let _ = thread.join();
        }
    }
}

/// Nonzero close counters by name, for failure messages.
pub fn closed_by_name(stats: &StatsSnapshot) -> Vec<(&'static str, u64)> {
    baton::CloseReason::NAMES
        .iter()
        .zip(stats.closed.iter())
        .filter(|(_, n)| **n > 0)
        .map(|(name, n)| (*name, *n))
        .collect()
}

/// The index of a close reason by its public name.
pub fn reason_index(name: &str) -> usize {
    baton::CloseReason::NAMES
        .iter()
        .position(|n| *n == name)
        .unwrap_or_else(|| panic!("no close reason {name}"))
}

/// Inline or with IO threads handing off every step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threads {
    Inline,
    Io,
}

impl Threads {
    pub const BOTH: [Threads; 2] = [Threads::Inline, Threads::Io];

    pub fn config(self) -> Config {
        match self {
            Threads::Inline => Config::default(),
            Threads::Io => Config::default()
                .io_threads(2)
                .io_activation(IoActivation::Always),
        }
    }
}

/// Where the proxy's clients connect: its TLS port (what it is for) or a
/// plain one (the example's `--port`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientSide {
    Plain,
    Tls,
}

impl ClientSide {
    pub const BOTH: [ClientSide; 2] = [ClientSide::Plain, ClientSide::Tls];

    /// The proxy's listener configuration and the clients' mode.
    pub fn listen(self, cert: &TestCert) -> (Option<Arc<ServerConfig>>, ClientMode) {
        match self {
            ClientSide::Plain => (None, ClientMode::Plain),
            ClientSide::Tls => (Some(cert.server_config()), cert.client(None)),
        }
    }
}

/// A TLS upstream target trusting `ca` for "localhost".
pub fn tls_upstream(addr: SocketAddr, ca: &TestCert) -> Connect {
    let config = ClientTlsSettings::trusting(&ca.cert)
        .build()
        .expect("client TLS config");
    Connect::tls(addr, config, ServerName::try_from("localhost").unwrap())
}

/// A loopback port free now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// What every test checks once its clients are done: the proxy closed
/// every connection, this process's descriptors are back to `baseline`,
/// no callback panicked. Returns the stopped proxy's report.
pub fn settle(proxy: ProxyServer, baseline: usize, what: &str) -> RunReport<Proxy> {
    proxy.wait_idle(what);
    wait_fds(baseline, what);
    let report = proxy.stop();
    assert_eq!(
        report.stats.service_panics, 0,
        "{what}: a callback panicked"
    );
    assert_eq!(
        report.closed_at_deadline, 0,
        "{what}: connections were still open at shutdown"
    );
    report
}

/// Waits until this process has no more descriptors open than `baseline`.
pub fn wait_fds(baseline: usize, what: &str) {
    let start = Instant::now();
    while open_fds() > baseline {
        assert!(
            start.elapsed() < SETTLE,
            "{what}: descriptors leaked: {} open, baseline {baseline}",
            open_fds()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
