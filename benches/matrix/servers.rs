//! The contenders: how to start each server, wait for it, read its CPU time
//! and memory from /proc, and stop it.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::procfs;

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

/// The scratch directory goes with the run (certificate, peers' configs,
/// redis's working files), whether it ends well or not.
impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const PLAIN_PORT: u16 = 16500;
const TLS_PORT: u16 = 16501;

/// A started server; killed when dropped.
#[derive(Debug)]
pub struct Running {
    child: Child,
    /// Whether [`Running::cpu_seconds`] reads the process totals (which
    /// keep exited threads' time) instead of the live threads' schedstat.
    process_cpu: bool,
    /// Its plain TCP address.
    pub plain: SocketAddr,
    /// Its TLS address, if it has one.
    pub tls: Option<SocketAddr>,
}

impl Env {
    /// Checks the binaries exist and makes a certificate.
    pub fn new(root: &Path) -> Result<Env, String> {
        let examples = examples_dir(root);
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
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        let plain: SocketAddr = ([127, 0, 0, 1], PLAIN_PORT).into();
        let tls = who
            .has_tls()
            .then(|| SocketAddr::from(([127, 0, 0, 1], TLS_PORT)));
        Running::spawn(&mut cmd, &who.name(), plain, tls)
    }
}

/// Where `cargo build --release --examples` put the examples: beside this
/// benchmark's own binary (`<target>/release/deps/matrix-*`), so that a
/// `CARGO_TARGET_DIR` is honoured; `target/release/examples` otherwise.
fn examples_dir(root: &Path) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.join("examples")))
        .filter(|dir| dir.is_dir())
        .unwrap_or_else(|| root.join("target/release/examples"))
}

fn wait_for_port(addr: SocketAddr, child: &mut Child) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("exited ({status}) before listening on {addr}"));
        }
        if TcpStream::connect(addr).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(format!("nothing listening on {addr} after 10 s"))
}

impl Running {
    /// Spawns `cmd` (stdin closed; stdout and stderr as the caller set
    /// them) and waits until `plain` and `tls` accept connections.
    pub fn spawn(
        cmd: &mut Command,
        name: &str,
        plain: SocketAddr,
        tls: Option<SocketAddr>,
    ) -> Result<Running, String> {
        let child = cmd
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("start {name}: {e}"))?;
        let mut running = Running {
            child,
            plain,
            tls,
            process_cpu: false,
        };
        for addr in std::iter::once(plain).chain(tls) {
            wait_for_port(addr, &mut running.child).map_err(|e| format!("{name}: {e}"))?;
        }
        Ok(running)
    }

    /// Makes [`Running::cpu_seconds`] count threads that have exited too,
    /// from /proc/PID/stat's utime and stime: clock ticks (10 ms), coarser
    /// than schedstat, but a server with a thread per connection (stunnel)
    /// would otherwise lose the time of every connection that closed.
    pub fn count_exited_threads(&mut self) {
        self.process_cpu = true;
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU time used so far, in seconds, by all of the server's threads and
    /// those of its child processes (hitch's workers): from
    /// /proc/PID/task/*/schedstat (nanoseconds), or after
    /// [`Running::count_exited_threads`] from /proc/PID/stat.
    pub fn cpu_seconds(&self) -> f64 {
        let per_process = if self.process_cpu {
            procfs::process_cpu_seconds
        } else {
            procfs::threads_cpu_seconds
        };
        procfs::tree(self.pid()).into_iter().map(per_process).sum()
    }

    /// Resident memory now, in bytes, of the server and its child processes.
    pub fn rss_bytes(&self) -> u64 {
        procfs::tree(self.pid())
            .into_iter()
            .map(procfs::rss_bytes)
            .sum()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // SIGKILL: a benchmark server has nothing to save, and the next one
        // needs the ports at once. Its children too (hitch's workers hold
        // the listening socket), after it so that it cannot replace them,
        // and wait until they are gone.
        let children: Vec<u32> = procfs::tree(self.pid()).into_iter().skip(1).collect();
        let _ = self.child.kill();
        for &pid in &children {
            procfs::kill(pid);
        }
        let _ = self.child.wait();
        let deadline = Instant::now() + Duration::from_secs(2);
        while !children.iter().all(|&pid| procfs::exited(pid)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
