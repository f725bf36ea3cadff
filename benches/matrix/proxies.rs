//! The TLS-terminating proxies of the `proxy` section: how each is
//! configured and started in front of one redis-server, all with the
//! matrix's certificate.

use std::fs::File;
use std::io::Write as _;
use std::net::SocketAddr;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::PathBuf;
use std::process::Command;

use crate::servers::{Env, Running};

/// Where every proxy listens for TLS (the servers of the other sections use
/// 16500 and 16501; redis keeps those here).
const PROXY_PORT: u16 = 16502;

/// A way to reach redis over TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// redis-server's own TLS port: the reference, no proxy.
    RedisTls,
    /// baton's `tls_proxy` example, everything on the loop.
    Baton,
    /// baton's `tls_proxy --io-threads 1` (adaptive hand-off).
    BatonIo1,
    /// HAProxy 2.6, `mode tcp`, `nbthread 1`.
    Haproxy,
    /// hitch 1.7, one worker.
    Hitch,
    /// stunnel 5 (a thread per connection).
    Stunnel,
}

impl Peer {
    /// Every peer, in the order of the tables.
    pub const ALL: [Peer; 6] = [
        Peer::RedisTls,
        Peer::Baton,
        Peer::BatonIo1,
        Peer::Haproxy,
        Peer::Hitch,
        Peer::Stunnel,
    ];

    /// Its name in tables and plots.
    pub fn name(self) -> &'static str {
        match self {
            Peer::RedisTls => "redis TLS",
            Peer::Baton => "baton tls_proxy",
            Peer::BatonIo1 => "baton tls_proxy io1",
            Peer::Haproxy => "haproxy",
            Peer::Hitch => "hitch",
            Peer::Stunnel => "stunnel",
        }
    }

    /// Whether it is baton's example (which may not be built yet).
    pub fn is_baton(self) -> bool {
        matches!(self, Peer::Baton | Peer::BatonIo1)
    }

    /// How it runs, for the report.
    pub fn setup(self) -> &'static str {
        match self {
            Peer::RedisTls => "redis-server's own `--tls-port`, no proxy",
            Peer::Baton => "`tls_proxy` (inline: no IO threads)",
            Peer::BatonIo1 => "`tls_proxy --io-threads 1` (adaptive)",
            Peer::Haproxy => "`haproxy -db`, `nbthread 1`, `mode tcp`, `bind ... ssl crt`",
            Peer::Hitch => "`hitch --workers=1 --tls-protos=\"TLSv1.2 TLSv1.3\"`",
            Peer::Stunnel => "`stunnel`, `foreground = yes`, defaults otherwise",
        }
    }
}

/// The peers' versions, for the report (`haproxy 2.6.12-1+deb12u4, ...`).
pub fn versions() -> String {
    let first_line = |cmd: &str, arg: &str, prefix: &str| {
        Command::new(cmd)
            .arg(arg)
            .output()
            .ok()
            .and_then(|o| {
                // stunnel prints its version to stderr.
                let text = [o.stdout, o.stderr].concat();
                String::from_utf8_lossy(&text)
                    .lines()
                    .find(|l| l.to_lowercase().starts_with(prefix))
                    // Not HAProxy's " - https://haproxy.org/".
                    .map(|l| l.split(" - ").next().unwrap_or(l).to_string())
            })
            .unwrap_or_else(|| format!("{cmd}: not found"))
    };
    [
        first_line("haproxy", "-v", "haproxy version"),
        first_line("hitch", "--version", "hitch"),
        first_line("stunnel", "-version", "stunnel"),
        first_line("redis-benchmark", "--version", "redis-benchmark"),
    ]
    .join("; ")
}

/// The `tls_proxy` example, if built.
pub fn baton_binary(env: &Env) -> Option<PathBuf> {
    Some(env.examples.join("tls_proxy")).filter(|p| p.exists())
}

/// Starts proxy `peer` (not [`Peer::RedisTls`]) in front of `upstream` and
/// waits until its TLS port accepts connections. Its output goes to
/// `<peer>.log` in the scratch directory. In the returned [`Running`],
/// `plain` is the upstream and `tls` the proxy's port.
pub fn start(env: &Env, peer: Peer, upstream: SocketAddr) -> Result<Running, String> {
    let listen = SocketAddr::from(([127, 0, 0, 1], PROXY_PORT));
    let (cert, key) = (path(&env.cert)?, path(&env.key)?);
    let mut cmd = match peer {
        Peer::RedisTls => return Err("redis TLS is not a proxy".into()),
        Peer::Baton | Peer::BatonIo1 => {
            let bin = baton_binary(env).ok_or("tls_proxy example not built")?;
            let mut c = Command::new(bin);
            c.args(["--upstream", &upstream.to_string(), "--bind", "127.0.0.1"]);
            c.args(["--tls-port", &PROXY_PORT.to_string()]);
            c.args(["--tls-cert-file", cert, "--tls-key-file", key]);
            c.args(["--maxclients", "20000"]);
            // Inline is the default.
            if peer == Peer::BatonIo1 {
                c.args(["--io-threads", "1"]);
            }
            c
        }
        Peer::Haproxy => {
            let config = env.dir.join("haproxy.cfg");
            write(
                &config,
                &format!(
                    "global\n    nbthread 1\n    maxconn 4096\n\
                     defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 1h\n    timeout server 1h\n\
                     frontend tls\n    bind {listen} ssl crt {}\n    default_backend redis\n\
                     backend redis\n    server redis {upstream}\n",
                    path(&combined_pem(env)?)?
                ),
            )?;
            let mut c = Command::new("haproxy");
            c.args(["-db", "-f", path(&config)?]);
            c
        }
        Peer::Hitch => {
            let mut c = Command::new("hitch");
            c.arg(format!("--frontend=[{}]:{}", listen.ip(), listen.port()));
            c.arg(format!("--backend=[{}]:{}", upstream.ip(), upstream.port()));
            c.args([
                "--workers=1",
                "--daemon=off",
                "--tls-protos=TLSv1.2 TLSv1.3",
            ]);
            c.arg(format!("--ocsp-dir={}", path(&env.dir)?));
            // hitch refuses to run its workers as root.
            if running_as_root() {
                c.arg("--user=nobody");
            }
            c.arg(path(&combined_pem(env)?)?);
            c
        }
        Peer::Stunnel => {
            let config = env.dir.join("stunnel.conf");
            write(
                &config,
                &format!(
                    "foreground = yes\npid =\ndebug = 3\n\
                     [redis]\naccept = {listen}\nconnect = {upstream}\ncert = {cert}\nkey = {key}\n"
                ),
            )?;
            let mut c = Command::new("stunnel");
            c.arg(path(&config)?);
            c
        }
    };
    let log_path = env
        .dir
        .join(format!("{}.log", peer.name().replace(' ', "_")));
    let log = File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    cmd.stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log);
    let mut running = Running::spawn(&mut cmd, peer.name(), upstream, Some(listen))
        .map_err(|e| format!("{e} (see {})", log_path.display()))?;
    running.count_exited_threads();
    Ok(running)
}

/// Certificate and key in one PEM (HAProxy's `crt` and hitch want that).
fn combined_pem(env: &Env) -> Result<PathBuf, String> {
    let combined = env.dir.join("combined.pem");
    if !combined.exists() {
        let read = |p: &PathBuf| std::fs::read_to_string(p).map_err(|e| e.to_string());
        let text = format!("{}{}", read(&env.cert)?, read(&env.key)?);
        // It holds the key: as private as key.pem.
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&combined)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(|e| format!("{}: {e}", combined.display()))?;
    }
    Ok(combined)
}

fn write(file: &PathBuf, text: &str) -> Result<(), String> {
    std::fs::write(file, text).map_err(|e| format!("{}: {e}", file.display()))
}

fn path(p: &std::path::Path) -> Result<&str, String> {
    p.to_str()
        .ok_or_else(|| format!("{} is not UTF-8", p.display()))
}

/// /proc/self belongs to the effective user.
fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}
