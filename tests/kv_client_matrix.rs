//! The client matrix: the KV example driven by the clients people use,
//! each through an application's session -- a pipeline, MULTI/EXEC, pub/sub
//! (subscribe on one connection, publish on another, the message
//! received), and a BLPOP woken by another client's LPUSH -- on the plain
//! port and on the TLS port (a generated certificate the client trusts).
//! Every reply is checked for its value.
//!
//! | Client | Protocol | Plain | TLS |
//! |---|---|---|---|
//! | redis-py 8 (pip `redis`) | its defaults: HELLO 3, RESP2-shaped replies | `redis_py_defaults` | `redis_py_defaults_tls` |
//! | redis-py | `protocol=2` | `redis_py_resp2` | `redis_py_resp2_tls` |
//! | redis-py | `protocol=3` (RESP3-shaped replies) | `redis_py_resp3` | `redis_py_resp3_tls` |
//! | node-redis (npm `redis`, tests/clients/node) | RESP2 (its default) | `node_redis_resp2` | `node_redis_resp2_tls` |
//! | node-redis | `RESP: 3` | `node_redis_resp3` | `node_redis_resp3_tls` |
//! | Rust `redis` crate (dev-dependency, rustls) | RESP2 | `redis_crate` | `redis_crate_tls` |
//! | `redis-cli` (redis-tools) | RESP2 | `redis_cli` | `redis_cli_tls` |
//! | `redis-benchmark` default suite | RESP2 | `redis_benchmark` | `redis_benchmark_tls` |
//!
//! The scripts are tests/clients/redis_py_smoke.py (which also runs a test
//! harness's session: databases, CONFIG, CLIENT) and
//! tests/clients/node/session.mjs. tests/kv.rs runs the whole command
//! suite through the `redis` crate, plain and TLS.
//!
//! Every client process runs under a deadline and is killed past it, the
//! test failing with what it printed. A missing tool fails the test with
//! what `.ci/run` installs; nothing is skipped.

mod util;

#[path = "util/deadline.rs"]
mod deadline;

include!("util/kv_example.rs");

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use deadline::{run_within, wait_until, KillOnDrop};
use redis::{Connection, Value};
use util::{TestCert, TestServer};

/// Bound on one client process (the sessions take about a second).
const CLIENT_LIMIT: Duration = Duration::from_secs(60);

/// kv, plain or on TLS; the certificate (if any) is the one clients trust.
struct Kv {
    server: TestServer<()>,
    cert: Option<TestCert>,
}

impl Kv {
    fn plain() -> Self {
        Kv {
            server: kv_test_server(None),
            cert: None,
        }
    }

    fn tls(name: &str) -> Self {
        let cert = TestCert::new(&format!("matrix-{name}"));
        Kv {
            server: kv_tls_test_server(&cert),
            cert: Some(cert),
        }
    }

    fn port(&self) -> String {
        self.server.addr.port().to_string()
    }

    fn ca(&self) -> Option<&Path> {
        self.cert.as_ref().map(|c| c.cert.as_path())
    }
}

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

/// Fails (not skips) when `tool` cannot run, saying what installs it.
fn require(tool: &str, check: &[&str], install: &str) {
    let ran = Command::new(tool).args(check).stdin(Stdio::null()).output();
    match ran {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "`{tool} {}` failed; .ci/run installs it ({install}):\n{}",
            check.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!("`{tool}` cannot run ({e}); .ci/run installs it ({install})"),
    }
}

/// Runs a client script that prints "ok" as its last line on success.
fn run_script(what: &str, command: &mut Command) {
    let out = run_within(command, b"", CLIENT_LIMIT, what);
    assert_eq!(out.lines().last(), Some("ok"), "{what} printed:\n{out}");
}

// The harness itself: a hung client and a missing tool fail the test.

#[test]
#[should_panic(expected = "did not finish within 3s; killed. It printed:\nbefore the hang")]
fn a_client_past_its_deadline_is_killed_and_its_output_shown() {
    // Long enough for a loaded machine to start the shell and let it print
    // (at 200 ms a CI run once killed it before its first line).
    run_within(
        Command::new("sh").args(["-c", "echo before the hang; exec sleep 30"]),
        b"",
        Duration::from_secs(3),
        "a hung client",
    );
}

#[test]
#[should_panic(expected = ".ci/run installs it (apt-get install nothing)")]
fn a_missing_tool_fails_naming_what_installs_it() {
    require(
        "baton-no-such-client",
        &["--version"],
        "apt-get install nothing",
    );
}

// redis-py.

fn redis_py_session(kv: Kv, protocol: Option<&str>) {
    require(
        "python3",
        &["-c", "import redis"],
        "python3 and `pip install redis`",
    );
    let mut command = Command::new("python3");
    command
        .arg(clients_dir().join("redis_py_smoke.py"))
        .arg(kv.port());
    if let Some(protocol) = protocol {
        command.args(["--protocol", protocol]);
    }
    if let Some(ca) = kv.ca() {
        command.arg("--tls").arg(ca);
    }
    run_script("redis-py", &mut command);
}

#[test]
fn redis_py_defaults() {
    redis_py_session(Kv::plain(), None);
}

#[test]
fn redis_py_defaults_tls() {
    redis_py_session(Kv::tls("py-defaults"), None);
}

#[test]
fn redis_py_resp2() {
    redis_py_session(Kv::plain(), Some("2"));
}

#[test]
fn redis_py_resp2_tls() {
    redis_py_session(Kv::tls("py-resp2"), Some("2"));
}

#[test]
fn redis_py_resp3() {
    redis_py_session(Kv::plain(), Some("3"));
}

#[test]
fn redis_py_resp3_tls() {
    redis_py_session(Kv::tls("py-resp3"), Some("3"));
}

// node-redis.

fn node_redis_session(kv: Kv, resp: &str) {
    require("node", &["--version"], "apt-get install nodejs npm");
    let dir = clients_dir().join("node");
    assert!(
        dir.join("node_modules/redis/package.json").exists(),
        "node-redis is not installed in {}; .ci/run installs it (`npm ci` there)",
        dir.display()
    );
    let mut command = Command::new("node");
    command
        .current_dir(&dir)
        .arg("session.mjs")
        .arg(kv.port())
        .args(["--resp", resp]);
    if let Some(ca) = kv.ca() {
        command.arg("--tls").arg(ca);
    }
    run_script("node-redis", &mut command);
}

#[test]
fn node_redis_resp2() {
    node_redis_session(Kv::plain(), "2");
}

#[test]
fn node_redis_resp2_tls() {
    node_redis_session(Kv::tls("node-resp2"), "2");
}

#[test]
fn node_redis_resp3() {
    node_redis_session(Kv::plain(), "3");
}

#[test]
fn node_redis_resp3_tls() {
    node_redis_session(Kv::tls("node-resp3"), "3");
}

// The Rust `redis` crate, in this process: every connection has read and
// write timeouts, so no call outlives them.

const IO_LIMIT: Duration = Duration::from_secs(15);

fn crate_client(kv: &Kv) -> redis::Client {
    let addr = kv.server.addr;
    match kv.ca() {
        None => redis::Client::open(format!("redis://{addr}/")).unwrap(),
        // The certificate is verified: its names include 127.0.0.1.
        Some(ca) => redis::Client::build_with_tls(
            format!("rediss://{addr}/"),
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(std::fs::read(ca).unwrap()),
            },
        )
        .unwrap(),
    }
}

fn crate_connect(client: &redis::Client) -> Connection {
    let con = client.get_connection_with_timeout(IO_LIMIT).unwrap();
    con.set_read_timeout(Some(IO_LIMIT)).unwrap();
    con.set_write_timeout(Some(IO_LIMIT)).unwrap();
    con
}

fn blocked_clients(con: &mut Connection) -> usize {
    let info: String = redis::cmd("INFO").arg("clients").query(con).unwrap();
    let line = info
        .lines()
        .find_map(|l| l.strip_prefix("blocked_clients:"))
        .expect("INFO clients has blocked_clients");
    line.trim().parse().unwrap()
}

fn redis_crate_session(kv: Kv) {
    let client = crate_client(&kv);
    let mut c = crate_connect(&client);
    let mut other = crate_connect(&client);
    let () = redis::cmd("FLUSHALL").query(&mut c).unwrap();

    // A pipeline: every reply, in order.
    let mut pipe = redis::pipe();
    for _ in 0..300 {
        pipe.cmd("INCR").arg("counter");
    }
    let incrs: Vec<i64> = pipe.query(&mut c).unwrap();
    assert_eq!(incrs, (1..=300).collect::<Vec<_>>());
    let (pushed, range, count): (i64, Vec<String>, String) = redis::pipe()
        .rpush("plist", &["a", "b", "c"])
        .lrange("plist", 0, -1)
        .get("counter")
        .query(&mut c)
        .unwrap();
    assert_eq!(
        (pushed, range, count.as_str()),
        (3, vec!["a".into(), "b".into(), "c".into()], "300")
    );

    // MULTI/EXEC, and a command error inside EXEC.
    let (set, a, b, got): (String, i64, i64, String) = redis::pipe()
        .atomic()
        .set("tx", 1)
        .incr("tx", 1)
        .incr("tx", 10)
        .get("tx")
        .query(&mut c)
        .unwrap();
    assert_eq!((set.as_str(), a, b, got.as_str()), ("OK", 2, 12, "12"));
    let err = redis::pipe()
        .atomic()
        .set("tx2", "v")
        .lpush("tx2", "x")
        .query::<Value>(&mut c)
        .unwrap_err();
    let failed: Vec<(usize, String)> = err
        .into_server_errors()
        .expect("EXEC's reply carried the error")
        .iter()
        .map(|(at, e)| (*at, e.code().to_owned()))
        .collect();
    assert_eq!(failed, [(1, "WRONGTYPE".to_owned())]);
    let tx2: String = redis::cmd("GET").arg("tx2").query(&mut c).unwrap();
    assert_eq!(tx2, "v", "the rest of the transaction ran");

    // WATCH: another client's write aborts EXEC (a nil reply).
    let () = redis::cmd("WATCH").arg("balance").query(&mut c).unwrap();
    let () = redis::cmd("SET")
        .arg("balance")
        .arg(100)
        .query(&mut other)
        .unwrap();
    let aborted: Option<(i64,)> = redis::pipe()
        .atomic()
        .incr("balance", 1)
        .query(&mut c)
        .unwrap();
    assert_eq!(aborted, None);
    let () = redis::cmd("WATCH").arg("balance").query(&mut c).unwrap();
    let ran: Option<(i64,)> = redis::pipe()
        .atomic()
        .incr("balance", 5)
        .query(&mut c)
        .unwrap();
    assert_eq!(ran, Some((105,)));

    // Pub/sub: a channel and a pattern on one connection, two publishers.
    let mut sub_con = crate_connect(&client);
    let mut sub = sub_con.as_pubsub();
    sub.subscribe("news").unwrap();
    sub.psubscribe("ne*").unwrap();
    for (publisher, payload) in [(&mut c, "first"), (&mut other, "second")] {
        let receivers: i64 = redis::cmd("PUBLISH")
            .arg("news")
            .arg(payload)
            .query(publisher)
            .unwrap();
        assert_eq!(receivers, 2, "the channel and the pattern");
    }
    let mut got = Vec::new();
    for _ in 0..4 {
        let msg = sub.get_message().unwrap();
        let pattern: Option<String> = msg.get_pattern().ok();
        let payload: String = msg.get_payload().unwrap();
        got.push((pattern, msg.get_channel_name().to_owned(), payload));
    }
    let channel_only: Vec<_> = got
        .iter()
        .filter(|g| g.0.is_none())
        .map(|g| g.2.as_str())
        .collect();
    let by_pattern: Vec<_> = got
        .iter()
        .filter(|g| g.0.as_deref() == Some("ne*"))
        .map(|g| g.2.as_str())
        .collect();
    assert_eq!(channel_only, ["first", "second"], "{got:?}");
    assert_eq!(by_pattern, ["first", "second"], "{got:?}");
    assert!(got.iter().all(|g| g.1 == "news"), "{got:?}");
    sub.unsubscribe("news").unwrap();
    sub.punsubscribe("ne*").unwrap();
    drop(sub);
    let receivers: i64 = redis::cmd("PUBLISH")
        .arg("news")
        .arg("nobody")
        .query(&mut c)
        .unwrap();
    assert_eq!(receivers, 0);

    // BLPOP on one connection, woken by another client's LPUSH.
    let mut blocker = crate_connect(&client);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let popped: Option<(String, String)> = redis::cmd("BLPOP")
            .arg("jobs")
            .arg(10)
            .query(&mut blocker)
            .unwrap();
        let _ = tx.send(popped);
    });
    wait_until("BLPOP to block", Duration::from_secs(5), || {
        blocked_clients(&mut c) == 1
    });
    let pushed: i64 = redis::cmd("LPUSH")
        .arg("jobs")
        .arg("job-1")
        .query(&mut other)
        .unwrap();
    assert_eq!(pushed, 1);
    let popped = rx.recv_timeout(IO_LIMIT).expect("BLPOP was woken");
    assert_eq!(popped, Some(("jobs".into(), "job-1".into())));
    let left: i64 = redis::cmd("EXISTS").arg("jobs").query(&mut c).unwrap();
    assert_eq!(left, 0);
}

#[test]
fn redis_crate() {
    redis_crate_session(Kv::plain());
}

#[test]
fn redis_crate_tls() {
    redis_crate_session(Kv::tls("crate"));
}

// redis-cli.

fn redis_cli_args(kv: &Kv) -> Vec<String> {
    let mut args = vec!["-p".to_string(), kv.port()];
    if let Some(ca) = kv.ca() {
        args.extend(["--tls".into(), "--cacert".into(), ca.display().to_string()]);
    }
    args
}

/// One `redis-cli` run: `args` on the command line, `input` on stdin.
fn cli(kv: &Kv, args: &[&str], input: &str) -> String {
    run_within(
        Command::new("redis-cli")
            .args(redis_cli_args(kv))
            .args(args),
        input.as_bytes(),
        Duration::from_secs(20),
        &format!("redis-cli {args:?}"),
    )
}

/// A long-running `redis-cli` (a subscriber, a blocked BLPOP) whose output
/// lines are read as they come; killed when dropped.
struct CliStream {
    lines: mpsc::Receiver<String>,
    _child: KillOnDrop,
}

impl CliStream {
    fn start(kv: &Kv, args: &[&str]) -> Self {
        let mut child = Command::new("redis-cli")
            .args(redis_cli_args(kv))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("redis-cli runs");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        CliStream {
            lines,
            _child: KillOnDrop(child),
        }
    }

    /// The next lines it prints must be `want`, within a few seconds.
    fn expect(&self, want: &[&str]) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut got = Vec::new();
        while got.len() < want.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => got.push(line),
                Err(e) => panic!("redis-cli printed {got:?} then {e:?}; wanted {want:?}"),
            }
        }
        assert_eq!(got, want);
    }
}

/// RESP for `commands`, as `redis-cli --pipe` wants it.
fn resp(commands: &[Vec<String>]) -> String {
    let mut out = String::new();
    for args in commands {
        out += &format!("*{}\r\n", args.len());
        for arg in args {
            out += &format!("${}\r\n{arg}\r\n", arg.len());
        }
    }
    out
}

fn redis_cli_session(kv: Kv) {
    require("redis-cli", &["--version"], "apt-get install redis-tools");
    assert_eq!(cli(&kv, &["PING"], ""), "PONG\n");

    // A pipeline: `--pipe` writes everything, then counts the replies.
    let mut commands: Vec<Vec<String>> = (0..1000)
        .map(|i| vec!["RPUSH".into(), "piped".into(), i.to_string()])
        .collect();
    commands.push(vec!["INCR".into(), "pipe-count".into()]);
    let report = cli(&kv, &["--pipe"], &resp(&commands));
    assert!(
        report.ends_with("errors: 0, replies: 1001\n"),
        "redis-cli --pipe: {report}"
    );
    assert_eq!(cli(&kv, &["LLEN", "piped"], ""), "1000\n");
    assert_eq!(cli(&kv, &["LINDEX", "piped", "-1"], ""), "999\n");

    // MULTI/EXEC: commands from stdin run on one connection.
    let session =
        "MULTI\nSET tx 1\nINCR tx\nINCRBY tx 10\nGET tx\nLRANGE nope 0 -1\nEXEC\nGET tx\n";
    assert_eq!(
        cli(&kv, &[], session),
        "OK\nQUEUED\nQUEUED\nQUEUED\nQUEUED\nQUEUED\nOK\n2\n12\n12\n\n12\n"
    );

    // Pub/sub: a subscriber process, a publisher process.
    let subscriber = CliStream::start(&kv, &["SUBSCRIBE", "news"]);
    subscriber.expect(&["subscribe", "news", "1"]);
    assert_eq!(cli(&kv, &["PUBLISH", "news", "hello"], ""), "1\n");
    subscriber.expect(&["message", "news", "hello"]);
    assert_eq!(cli(&kv, &["PUBLISH", "news", "again"], ""), "1\n");
    subscriber.expect(&["message", "news", "again"]);
    drop(subscriber);

    // BLPOP in one process, woken by LPUSH from another.
    let blocker = CliStream::start(&kv, &["BLPOP", "jobs", "10"]);
    wait_until("BLPOP to block", Duration::from_secs(5), || {
        cli(&kv, &["INFO", "clients"], "").contains("blocked_clients:1\r\n")
    });
    assert_eq!(cli(&kv, &["LPUSH", "jobs", "job-1"], ""), "1\n");
    blocker.expect(&["jobs", "job-1"]);
    assert_eq!(cli(&kv, &["EXISTS", "jobs"], ""), "0\n");
}

#[test]
fn redis_cli() {
    redis_cli_session(Kv::plain());
}

#[test]
fn redis_cli_tls() {
    redis_cli_session(Kv::tls("cli"));
}

// redis-benchmark.

/// redis-benchmark 7's default suite, in the order it runs it.
const BENCHMARK_SUITE: &[&str] = &[
    "PING_INLINE",
    "PING_MBULK",
    "SET",
    "GET",
    "INCR",
    "LPUSH",
    "RPUSH",
    "LPOP",
    "RPOP",
    "SADD",
    "HSET",
    "SPOP",
    "ZADD",
    "ZPOPMIN",
    "LPUSH (needed to benchmark LRANGE)",
    "LRANGE_100 (first 100 elements)",
    "LRANGE_300 (first 300 elements)",
    "LRANGE_500 (first 500 elements)",
    "LRANGE_600 (first 600 elements)",
    "MSET (10 keys)",
];

/// The default suite, small (`-n 2000`: a check that every test runs, not
/// a measurement): each test reports a rate, none an error.
fn redis_benchmark_suite(kv: &Kv) {
    require(
        "redis-benchmark",
        &["--version"],
        "apt-get install redis-tools",
    );
    let mut command = Command::new("redis-benchmark");
    command.args(["-p", &kv.port(), "-n", "2000", "-q"]);
    if let Some(ca) = kv.ca() {
        command.args(["--tls", "--cacert"]).arg(ca);
    }
    let out = run_within(
        &mut command,
        b"",
        Duration::from_secs(120),
        "redis-benchmark",
    );
    // -q rewrites a progress line ("rps=") with `\r` until the result.
    let text = out.replace('\r', "\n");
    assert!(!text.to_lowercase().contains("error"), "{text}");
    let results: Vec<(&str, f64)> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.contains("rps="))
        .map(|l| {
            let (name, rest) = l
                .split_once(": ")
                .unwrap_or_else(|| panic!("not a result line: {l:?}\n{text}"));
            let rate = rest
                .strip_suffix(" msec")
                .and_then(|r| r.split(" requests per second").next())
                .and_then(|r| r.parse::<f64>().ok())
                .unwrap_or_else(|| panic!("no rate in {l:?}\n{text}"));
            (name, rate)
        })
        .collect();
    let names: Vec<&str> = results.iter().map(|r| r.0).collect();
    assert_eq!(names, BENCHMARK_SUITE, "{text}");
    assert!(results.iter().all(|r| r.1 > 0.0), "{text}");
}

#[test]
fn redis_benchmark() {
    redis_benchmark_suite(&Kv::plain());
}

#[test]
fn redis_benchmark_tls() {
    let kv = Kv::tls("benchmark");
    redis_benchmark_suite(&kv);
    // Each test of the suite connects its 50 clients afresh.
    let handshakes = kv.server.handle.stats().handshakes_ok;
    assert!(
        handshakes >= 50 * BENCHMARK_SUITE.len() as u64,
        "{handshakes} TLS handshakes"
    );
}
