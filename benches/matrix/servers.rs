//! The contenders: how to start each server, wait for it, read its CPU time
//! and memory from /proc, and stop it.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A server under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// baton's KV example.
    BatonKv,
    /// redis-server 7 (Debian package).
    Redis,
    /// valkey-server 8 (Debian bookworm-backports).
    Valkey,
    /// The canned-reply epoll server: the ceiling (plain only).
    Limit,
    /// baton's echo example.
    BatonEcho,
    /// The tokio + tokio-rustls echo.
    TokioEcho,
}

/// A server and its thread setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Contender {
    /// Which server.
    pub server: Server,
    /// baton: IO threads besides the loop; redis/valkey: `--io-threads`
    /// (threads including the main one); tokio: worker threads (0: the
    /// current-thread runtime).
    pub threads: usize,
    /// baton only: `--io-threads-always` (every IO step handed off) instead
    /// of adaptive activation.
    pub always: bool,
}

impl Contender {
    /// A single-threaded contender.
    pub const fn single(server: Server) -> Self {
        Contender::threaded(server, 0)
    }

    /// With `threads` (see the field); baton's IO threads adaptive.
    pub const fn threaded(server: Server, threads: usize) -> Self {
        Contender {
            server,
            threads,
            always: false,
        }
    }

    /// baton with `threads` IO threads used for every IO step.
    pub const fn always(server: Server, threads: usize) -> Self {
        Contender {
            server,
            threads,
            always: true,
        }
    }

    /// Its name in tables and plots.
    pub fn name(&self) -> String {
        let base = match self.server {
            Server::BatonKv => "baton kv",
            Server::Redis => "redis",
            Server::Valkey => "valkey",
            Server::Limit => "limit",
            Server::BatonEcho => "baton echo",
            Server::TokioEcho => "tokio echo",
        };
        match (self.server, self.threads) {
            (_, 0) => base.to_string(),
            (Server::BatonKv | Server::BatonEcho, n) if self.always => {
                format!("{base} io{n} always")
            }
            (Server::BatonKv | Server::BatonEcho, n) => format!("{base} io{n}"),
            (Server::TokioEcho, n) => format!("{base} mt{n}"),
            (_, n) => format!("{base} io{n}"),
        }
    }

    /// Whether it serves TLS.
    pub fn has_tls(&self) -> bool {
        self.server != Server::Limit
    }
}

/// What every server needs: binaries, a certificate, ports, a scratch dir.
#[derive(Debug)]
pub struct Env {
    /// `target/release/examples`.
    pub examples: PathBuf,
    /// PEM certificate (self-signed for localhost, ECDSA P-256).
    pub cert: PathBuf,
    /// Its key.
    pub key: PathBuf,
    /// Scratch directory (redis and valkey run in it).
    pub dir: PathBuf,
}

const PLAIN_PORT: u16 = 16500;
const TLS_PORT: u16 = 16501;

/// A started server; killed when dropped.
#[derive(Debug)]
pub struct Running {
    child: Child,
    /// Its plain TCP address.
    pub plain: SocketAddr,
    /// Its TLS address, if it has one.
    pub tls: Option<SocketAddr>,
}

impl Env {
    /// Checks the binaries exist and makes a certificate.
    pub fn new(root: &Path) -> Result<Env, String> {
        let examples = root.join("target/release/examples");
        for bin in ["kv", "echo", "tokio_echo", "limit"] {
            if !examples.join(bin).exists() {
                return Err(format!(
                    "{} is missing: cargo build --release --examples",
                    examples.join(bin).display()
                ));
            }
        }
        for bin in ["redis-server", "valkey-server"] {
            let found = Command::new(bin).arg("--version").output().is_ok();
            if !found {
                return Err(format!("{bin} is missing: see BENCHMARKS.md for apt-get"));
            }
        }
        let dir = std::env::temp_dir().join(format!("baton-matrix-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let (cert, key) = baton::tls::generate_self_signed(&dir).map_err(|e| e.to_string())?;
        Ok(Env {
            examples,
            cert,
            key,
            dir,
        })
    }

    /// Starts `who` and waits until it accepts connections. `value_size` is
    /// the limit server's GET reply size.
    pub fn start(&self, who: Contender, value_size: usize) -> Result<Running, String> {
        let (cert, key) = (self.cert.to_str().unwrap(), self.key.to_str().unwrap());
        let ports = [PLAIN_PORT.to_string(), TLS_PORT.to_string()];
        let threads = who.threads.to_string();
        let mut cmd = match who.server {
            Server::BatonKv | Server::BatonEcho => {
                let bin = if who.server == Server::BatonKv {
                    "kv"
                } else {
                    "echo"
                };
                let mut c = Command::new(self.examples.join(bin));
                c.args(["--port", &ports[0], "--tls-port", &ports[1]]);
                c.args(["--tls-cert-file", cert, "--tls-key-file", key]);
                c.args(["--io-threads", &threads, "--maxclients", "20000"]);
                if who.always {
                    c.arg("--io-threads-always");
                }
                c
            }
            Server::Redis | Server::Valkey => {
                let bin = if who.server == Server::Redis {
                    "redis-server"
                } else {
                    "valkey-server"
                };
                let mut c = Command::new(bin);
                c.args(["--port", &ports[0], "--tls-port", &ports[1]]);
                c.args(["--tls-cert-file", cert, "--tls-key-file", key]);
                c.args([
                    "--tls-auth-clients",
                    "no",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ]);
                c.args(["--maxclients", "20000", "--daemonize", "no"]);
                c.args(["--dir", self.dir.to_str().unwrap()]);
                if who.threads > 1 {
                    c.args(["--io-threads", &threads]);
                    if who.server == Server::Redis {
                        c.args(["--io-threads-do-reads", "yes"]);
                    }
                }
                c
            }
            Server::Limit => {
                let mut c = Command::new(self.examples.join("limit"));
                c.args(["--port", &ports[0], "--value-size", &value_size.to_string()]);
                c
            }
            Server::TokioEcho => {
                let mut c = Command::new(self.examples.join("tokio_echo"));
                c.args(["--port", &ports[0], "--tls-port", &ports[1]]);
                c.args(["--tls-cert-file", cert, "--tls-key-file", key]);
                c.args(["--threads", &threads]);
                c
            }
        };
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("start {}: {e}", who.name()))?;
        let plain: SocketAddr = ([127, 0, 0, 1], PLAIN_PORT).into();
        let tls = who
            .has_tls()
            .then(|| SocketAddr::from(([127, 0, 0, 1], TLS_PORT)));
        let running = Running { child, plain, tls };
        for addr in std::iter::once(plain).chain(tls) {
            wait_for_port(addr).map_err(|e| format!("{}: {e}", who.name()))?;
        }
        Ok(running)
    }
}

fn wait_for_port(addr: SocketAddr) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if TcpStream::connect(addr).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(format!("nothing listening on {addr} after 10 s"))
}

impl Running {
    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU time used so far by all of the server's threads, in seconds
    /// (from /proc/PID/task/*/schedstat: nanosecond resolution).
    pub fn cpu_seconds(&self) -> f64 {
        let mut ns = 0u64;
        let tasks = format!("/proc/{}/task", self.pid());
        for task in std::fs::read_dir(tasks).into_iter().flatten().flatten() {
            let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
            ns += stat
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
        ns as f64 / 1e9
    }

    /// Resident memory now, in bytes.
    pub fn rss_bytes(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // SIGKILL: a benchmark server has nothing to save, and the next one
        // needs the ports at once.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
