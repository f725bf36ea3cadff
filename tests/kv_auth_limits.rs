//! Redis's limits on requests before AUTH, against a real redis-server:
//! with a password set, a client that has not authenticated may send at
//! most 10 arguments of at most 16 KB each, so it cannot make the server
//! hold up to `proto-max-bulk-len` per argument. Each request is read with
//! the limits that hold once the one before it has run (a login pipelined
//! with a large request), and CONFIG SET of `requirepass` or
//! `proto-max-bulk-len` reaches connections already open. Every transcript
//! is the bytes a connection receives until the server closes it, and must
//! be kv's and redis's alike.

mod util;

include!("util/kv_example.rs");

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use util::real_redis::RealRedis;
use util::workloads::resp as request;
use util::TestServer;

const PASSWORD: &str = "s3cret";
const IO_TIMEOUT: Duration = Duration::from_secs(20);

fn big() -> Vec<u8> {
    vec![b'v'; 20_000]
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream
}

/// Sends `bytes` in one write, then reads until the server closes.
fn transcript(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut stream = connect(addr);
    stream.write_all(bytes).unwrap();
    read_to_close(&mut stream)
}

fn read_to_close(stream: &mut TcpStream) -> String {
    let mut got = Vec::new();
    match stream.read_to_end(&mut got) {
        Ok(_) => {}
        // A close with unread input of ours in its buffer is a reset.
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!(
            "no close in time: {e}; got {:?}",
            String::from_utf8_lossy(&got)
        ),
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// Sends one request and reads its one-line reply.
fn command(stream: &mut TcpStream, args: &[&[u8]]) -> String {
    stream.write_all(&request(args)).unwrap();
    let mut got = Vec::new();
    let mut byte = [0u8];
    while !got.ends_with(b"\r\n") {
        assert_eq!(stream.read(&mut byte).unwrap(), 1, "closed; got {got:?}");
        got.push(byte[0]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// kv and redis, both with `PASSWORD` set (redis through CONFIG SET, as
/// its readiness check needs no password).
fn servers() -> (TestServer<()>, RealRedis) {
    with_kv(kv_test_server(Some(PASSWORD)))
}

/// [`servers`] with kv's IO on its loop: a CONFIG SET from one connection
/// reaches another's codec before its next read only when that one is not
/// in the middle of an IO step on an IO thread (the KV README says so), so
/// the test of it runs where no step ever is.
fn servers_inline() -> (TestServer<()>, RealRedis) {
    let kv = kv_test_config(Some(PASSWORD));
    with_kv(util::spawn_server(
        baton::Config::default().io_threads(0),
        move || service::Kv::new(kv),
    ))
}

fn with_kv(kv: TestServer<()>) -> (TestServer<()>, RealRedis) {
    let redis = RealRedis::start();
    let mut admin = connect(redis.addr);
    assert_eq!(
        command(
            &mut admin,
            &[b"CONFIG", b"SET", b"requirepass", PASSWORD.as_bytes()]
        ),
        "+OK\r\n"
    );
    (kv, redis)
}

fn same(kv: SocketAddr, redis: SocketAddr, bytes: &[u8], what: &str) -> String {
    let ours = transcript(kv, bytes);
    let theirs = transcript(redis, bytes);
    assert_eq!(ours, theirs, "{what}");
    ours
}

#[test]
fn before_auth_requests_are_limited_as_redis_limits_them() {
    let (kv, redis) = servers();
    let (kv, redis) = (kv.addr, redis.addr);
    let big = big();
    let quit = request(&[b"QUIT"]);
    let eleven: Vec<&[u8]> = vec![b"x"; 11];
    let chunk = vec![b'k'; 16 * 1024];
    let mut ten_of_16_kb: Vec<&[u8]> = vec![b"DEL"];
    ten_of_16_kb.extend(std::iter::repeat_n(chunk.as_slice(), 9));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("a count over 10", b"*11\r\n".to_vec()),
        ("11 arguments", request(&eleven)),
        (
            "a bulk over 16 KB",
            b"*2\r\n$4\r\nECHO\r\n$16385\r\n".to_vec(),
        ),
        ("a large SET", request(&[b"SET", b"k", &big])),
        (
            "10 arguments of 16 KB each are fine (NOAUTH)",
            [request(&ten_of_16_kb), quit.clone()].concat(),
        ),
        (
            "a login pipelined with a large request",
            [
                request(&[b"AUTH", PASSWORD.as_bytes()]),
                request(&[b"SET", b"k", &big]),
                request(&[b"STRLEN", b"k"]),
                quit.clone(),
            ]
            .concat(),
        ),
        (
            "an inline login pipelined with a large request",
            [
                format!("AUTH {PASSWORD}\r\n").into_bytes(),
                request(&[b"ECHO", &big]),
                quit.clone(),
            ]
            .concat(),
        ),
        (
            "a failed login keeps the limits",
            [request(&[b"AUTH", b"wrong"]), request(&[b"ECHO", &big])].concat(),
        ),
        (
            "RESET logs out: the limits are back for the next request",
            [
                request(&[b"AUTH", PASSWORD.as_bytes()]),
                request(&[b"RESET"]),
                request(&[b"ECHO", &big]),
            ]
            .concat(),
        ),
        (
            "pipelined failed logins, then a command",
            [
                request(&[b"AUTH", b"wrong"]).repeat(20),
                request(&[b"PING"]),
                quit.clone(),
            ]
            .concat(),
        ),
        (
            "AUTH with too many arguments",
            [request(&[b"AUTH", b"a", b"b", b"c"]), quit.clone()].concat(),
        ),
        (
            "RESET needs no AUTH",
            [request(&[b"RESET"]), request(&[b"PING"]), quit.clone()].concat(),
        ),
        (
            "replies a client that has not authenticated does not read pass 16 KB",
            request(&[b"PING"]).repeat(520),
        ),
        (
            "just under 16 KB of them is fine",
            [request(&[b"PING"]).repeat(480), quit.clone()].concat(),
        ),
    ];
    for (what, bytes) in &cases {
        same(kv, redis, bytes, what);
    }
    // The server is unharmed, and the limits are the connection's own.
    let mut authed = connect(kv);
    assert_eq!(
        command(&mut authed, &[b"AUTH", PASSWORD.as_bytes()]),
        "+OK\r\n"
    );
    assert_eq!(
        command(&mut authed, &[b"STRLEN", b"k"]),
        format!(":{}\r\n", big.len())
    );
}

/// HELLO's reply names the server and its version, so it is checked on kv
/// alone: a login through HELLO lifts the limits for the very next request.
#[test]
fn a_hello_login_lifts_the_limits_for_the_next_request() {
    let kv = kv_test_server(Some(PASSWORD));
    let big = big();
    let got = transcript(
        kv.addr,
        &[
            request(&[b"HELLO", b"2", b"AUTH", b"default", PASSWORD.as_bytes()]),
            request(&[b"ECHO", &big]),
            request(&[b"QUIT"]),
        ]
        .concat(),
    );
    let echo = format!(
        "${}\r\n{}\r\n+OK\r\n",
        big.len(),
        String::from_utf8_lossy(&big)
    );
    assert!(got.starts_with('*') && got.ends_with(&echo), "{got:?}");
}

/// CONFIG SET reaches connections already open, as Redis reads its
/// settings at every request: clearing the password lifts the limits of a
/// client that never authenticated; a lower proto-max-bulk-len refuses the
/// next large argument of a connection opened before.
#[test]
fn config_set_reaches_open_connections() {
    let (kv, redis) = servers_inline();
    let big = big();
    let mut transcripts = Vec::new();
    for addr in [kv.addr, redis.addr] {
        let mut admin = connect(addr);
        assert_eq!(
            command(&mut admin, &[b"AUTH", PASSWORD.as_bytes()]),
            "+OK\r\n"
        );
        let mut stranger = connect(addr);
        let mut known = connect(addr);
        assert_eq!(
            command(&mut known, &[b"AUTH", PASSWORD.as_bytes()]),
            "+OK\r\n"
        );
        assert_eq!(
            command(&mut admin, &[b"CONFIG", b"SET", b"requirepass", b""]),
            "+OK\r\n"
        );
        stranger
            .write_all(&[request(&[b"ECHO", &big]), request(&[b"QUIT"])].concat())
            .unwrap();
        // Redis's smallest proto-max-bulk-len: 1 MB.
        assert_eq!(
            command(
                &mut admin,
                &[b"CONFIG", b"SET", b"proto-max-bulk-len", b"1048576"]
            ),
            "+OK\r\n"
        );
        known
            .write_all(
                &[
                    request(&[b"ECHO", b"hello"]),
                    b"*2\r\n$4\r\nECHO\r\n$1048577\r\n".to_vec(),
                ]
                .concat(),
            )
            .unwrap();
        transcripts.push((read_to_close(&mut stranger), read_to_close(&mut known)));
    }
    assert_eq!(transcripts[0], transcripts[1]);
    let (stranger, known) = &transcripts[0];
    assert_eq!(
        stranger,
        &format!(
            "${}\r\n{}\r\n+OK\r\n",
            big.len(),
            String::from_utf8_lossy(&big)
        )
    );
    assert_eq!(
        known,
        "$5\r\nhello\r\n-ERR Protocol error: invalid bulk length\r\n"
    );
}

/// A CONFIG SET is run before the request after it is read, as in Redis:
/// a lower proto-max-bulk-len refuses the next argument of the same
/// pipeline, a higher one admits it.
#[test]
fn config_set_applies_to_the_next_request_of_its_own_pipeline() {
    let (kv, redis) = servers();
    let login = request(&[b"AUTH", PASSWORD.as_bytes()]);
    let header = b"*2\r\n$4\r\nECHO\r\n$1048577\r\n".to_vec();
    let lower = [
        login.clone(),
        request(&[b"CONFIG", b"SET", b"proto-max-bulk-len", b"1048576"]),
        header.clone(),
    ]
    .concat();
    let got = same(
        kv.addr,
        redis.addr,
        &lower,
        "lowered, then a larger argument",
    );
    assert!(
        got.ends_with("-ERR Protocol error: invalid bulk length\r\n"),
        "{got:?}"
    );
    let value = vec![b'v'; 1_048_577];
    let raise = [
        login,
        request(&[b"CONFIG", b"SET", b"proto-max-bulk-len", b"536870912"]),
        request(&[b"STRLEN", &value]),
        request(&[b"QUIT"]),
    ]
    .concat();
    let got = same(
        kv.addr,
        redis.addr,
        &raise,
        "raised back, then the larger argument",
    );
    assert!(got.ends_with(":0\r\n+OK\r\n"), "{got:?}");
}
