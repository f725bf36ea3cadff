//! Hostile input: the KV example (release build) against redis-server on
//! loopback, in one run. Server CPU per case from /proc/PID/stat
//! (utime + stime, all threads; clock ticks) and /proc/PID/task/*/schedstat
//! (nanoseconds), read before and after each case; medians of the rounds.
//!
//! ```text
//! cargo build --release --example kv && cargo bench --bench hostile_input
//! cargo bench --bench hostile_input -- --rounds 7 --kv path/to/other/kv
//! ```
//!
//! Cases:
//! * `keys-star-groups`: `KEYS` with `*a` x 30 + `*b`, one 40-byte key of
//!   `a`s (exponential for a matcher that retries every `*`);
//! * `keys-star-run`: `KEYS` with 300,000 `*` then `x` (one recursion per
//!   `*` overflowed the loop's stack);
//! * `slow-32MiB`: an MSET whose first value is 32 MiB, sent at once, then
//!   the remaining 21 pairs (315 bytes) one byte per write, 1 ms apart, so
//!   the server reads them one at a time (a decoder that restarts from byte
//!   0 re-copies the 32 MiB on each read).
//!
//! A case not answered within 30 s is reported as such and the server is
//! restarted.

#![allow(missing_docs)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const NO_ANSWER: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, PartialEq)]
enum Who {
    Kv,
    Redis,
}

struct Running {
    child: Child,
    addr: SocketAddr,
}

impl Running {
    fn start(who: Who, kv: &Path, dir: &Path) -> Running {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cmd = match who {
            Who::Kv => {
                let mut c = Command::new(kv);
                c.args(["--port", &port.to_string(), "--tls-port", "0"]);
                c
            }
            Who::Redis => {
                let mut c = Command::new("redis-server");
                c.args(["--port", &port.to_string(), "--bind", "127.0.0.1"]);
                c.args(["--save", "", "--appendonly", "no", "--daemonize", "no"]);
                c.args(["--dir", dir.to_str().unwrap()]);
                c
            }
        };
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", name(who)));
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let started = Instant::now();
        while TcpStream::connect(addr).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{} did not start",
                name(who)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Running { child, addr }
    }

    /// (utime + stime in seconds, schedstat run time in seconds).
    fn cpu(&self) -> (f64, f64) {
        let pid = self.child.id();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Fields after the command name, which is in parentheses.
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after.split_whitespace().collect();
        // SAFETY: sysconf has no preconditions.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        let field = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        // utime and stime are fields 14 and 15 of the line, 12 and 13 here.
        let stat_s = (field(11) + field(12)) / ticks;
        let mut ns = 0u64;
        for task in std::fs::read_dir(format!("/proc/{pid}/task"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let s = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
            ns += s
                .split_whitespace()
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
        }
        (stat_s, ns as f64 / 1e9)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn name(who: Who) -> &'static str {
    match who {
        Who::Kv => "kv",
        Who::Redis => "redis-server",
    }
}

fn command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The length of the complete RESP reply at the front of `buf`, if any.
fn reply_len(buf: &[u8]) -> Option<usize> {
    let line = buf.windows(2).position(|w| w == b"\r\n")?;
    let n = || std::str::from_utf8(&buf[1..line]).ok()?.parse::<i64>().ok();
    match buf.first()? {
        b'+' | b'-' | b':' => Some(line + 2),
        b'$' => {
            let n = n()?;
            if n < 0 {
                return Some(line + 2);
            }
            let end = line + 2 + n as usize + 2;
            (buf.len() >= end).then_some(end)
        }
        b'*' => {
            let mut at = line + 2;
            for _ in 0..n()?.max(0) {
                at += reply_len(&buf[at..])?;
            }
            Some(at)
        }
        _ => None,
    }
}

/// Writes `head` at once, then `tail` one byte per write `gap` apart, and
/// reads one reply. `None` if no reply came within [`NO_ANSWER`].
fn exchange(addr: SocketAddr, head: &[u8], tail: &[u8], gap: Duration) -> Option<Vec<u8>> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_nodelay(true).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    s.write_all(head).ok()?;
    for &b in tail {
        s.write_all(&[b]).ok()?;
        std::thread::sleep(gap);
    }
    let started = Instant::now();
    let mut got = Vec::new();
    let mut chunk = vec![0u8; 64 << 10];
    while started.elapsed() < NO_ANSWER {
        if let Some(len) = reply_len(&got) {
            got.truncate(len);
            return Some(got);
        }
        match s.read(&mut chunk) {
            Ok(0) => return None,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return None,
        }
    }
    None
}

struct Case {
    name: &'static str,
    /// Run once on a fresh connection before measuring.
    setup: Vec<u8>,
    head: Vec<u8>,
    tail: Vec<u8>,
    gap: Duration,
    /// The reply both servers must give.
    want: Vec<u8>,
}

fn cases() -> Vec<Case> {
    let key = vec![b'a'; 40];
    let mut groups = b"*a".repeat(30);
    groups.extend_from_slice(b"*b");
    let mut run = vec![b'*'; 300_000];
    run.push(b'x');
    let big = vec![b'v'; 32 << 20];
    let pairs = 21;
    let mut head = format!("*{}\r\n", 3 + 2 * pairs).into_bytes();
    head.extend_from_slice(&command(&[b"MSET", b"big", &big])[4..]);
    let mut tail = Vec::new();
    for i in 0..pairs {
        let k = format!("k{i:02}");
        tail.extend_from_slice(&command(&[k.as_bytes(), b"v"])[4..]);
    }
    let mut setup = command(&[b"FLUSHALL"]);
    setup.extend_from_slice(&command(&[b"SET", &key, b"1"]));
    vec![
        Case {
            name: "keys-star-groups",
            setup: setup.clone(),
            head: command(&[b"KEYS", &groups]),
            tail: Vec::new(),
            gap: Duration::ZERO,
            want: b"*0\r\n".to_vec(),
        },
        Case {
            name: "keys-star-run",
            setup,
            head: command(&[b"KEYS", &run]),
            tail: Vec::new(),
            gap: Duration::ZERO,
            want: b"*0\r\n".to_vec(),
        },
        Case {
            name: "slow-32MiB",
            setup: command(&[b"FLUSHALL"]),
            head,
            tail,
            gap: Duration::from_millis(1),
            want: b"+OK\r\n".to_vec(),
        },
    ]
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let mut rounds = 5;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or(root.join("target"), PathBuf::from);
    let mut kv = target.join("release/examples/kv");
    let mut only: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--rounds" => {
                rounds = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--rounds N")
            }
            "--kv" => kv = PathBuf::from(args.next().expect("--kv PATH")),
            "--only" => only = args.next(),
            _ => {} // cargo bench passes --bench
        }
    }
    assert!(
        kv.exists(),
        "{} is missing: cargo build --release --example kv",
        kv.display()
    );
    assert!(
        Command::new("redis-server")
            .arg("--version")
            .output()
            .is_ok(),
        "redis-server is missing: apt-get install -y redis-server"
    );
    let dir = std::env::temp_dir().join(format!("baton-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    println!(
        "kv: {}\nredis: {}\n{rounds} rounds per case, servers alternating; CPU = server's utime+stime (/proc/PID/stat) and schedstat run time\n",
        kv.display(),
        String::from_utf8_lossy(&Command::new("redis-server").arg("--version").output().unwrap().stdout).trim()
    );
    println!(
        "| case | kv CPU s (stat) | redis CPU s (stat) | kv CPU s (schedstat) | redis CPU s (schedstat) | kv/redis (schedstat) | kv wall s | redis wall s |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for case in cases() {
        if only
            .as_deref()
            .is_some_and(|o| !o.split(',').any(|n| n == case.name))
        {
            continue;
        }
        // [who][stat, sched, wall] per round; NaN for no answer.
        let mut samples: [[Vec<f64>; 3]; 2] = Default::default();
        let mut servers = [
            Running::start(Who::Kv, &kv, &dir),
            Running::start(Who::Redis, &kv, &dir),
        ];
        for _ in 0..rounds {
            for (i, who) in [Who::Kv, Who::Redis].into_iter().enumerate() {
                let server = &mut servers[i];
                exchange(server.addr, &case.setup, &[], Duration::ZERO);
                // Let the setup's replies and any deferred work settle.
                std::thread::sleep(Duration::from_millis(100));
                let (stat0, sched0) = server.cpu();
                let started = Instant::now();
                let reply = exchange(server.addr, &case.head, &case.tail, case.gap);
                let wall = started.elapsed().as_secs_f64();
                std::thread::sleep(Duration::from_millis(50));
                let (stat1, sched1) = server.cpu();
                match reply {
                    Some(r) => {
                        assert_eq!(r, case.want, "{} {}", name(who), case.name);
                        samples[i][0].push(stat1 - stat0);
                        samples[i][1].push(sched1 - sched0);
                        samples[i][2].push(wall);
                    }
                    None => {
                        eprintln!(
                            "{}: {} gave no answer in {NO_ANSWER:?}; restarting it",
                            case.name,
                            name(who)
                        );
                        for s in &mut samples[i] {
                            s.push(f64::NAN);
                        }
                        *server = Running::start(who, &kv, &dir);
                    }
                }
            }
        }
        let m = |v: &mut Vec<f64>| {
            if v.iter().any(|x| x.is_nan()) {
                f64::NAN
            } else {
                median(v)
            }
        };
        let [[ks, kc, kw], [rs, rc, rw]] = &mut samples;
        let (ks, kc, kw, rs, rc, rw) = (m(ks), m(kc), m(kw), m(rs), m(rc), m(rw));
        let fmt = |x: f64| {
            if x.is_nan() {
                "no answer".to_string()
            } else {
                format!("{x:.3}")
            }
        };
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            case.name,
            fmt(ks),
            fmt(rs),
            fmt(kc),
            fmt(rc),
            if kc.is_nan() {
                "-".into()
            } else {
                format!("{:.1}x", kc / rc.max(1e-6))
            },
            fmt(kw),
            fmt(rw),
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
