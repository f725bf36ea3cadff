//! Large values through the KV example: a GET of a value of 16 KiB or more
//! is sent from the keyspace's own copy (`Codec::encode_into`,
//! `OutBuf::push_shared`), in one vectored `sendmsg` with the bytes around it (plain)
//! or handed to rustls in order (TLS). What a client relies on is the
//! bytes: the same as redis-server sends for the same pipelined requests,
//! plain and TLS, inline and on IO threads, and when the client reads so
//! slowly that the socket fills in the middle of a value.

mod util;

include!("util/kv_example.rs");

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use baton::tls::rustls::{pki_types::ServerName, ClientConnection, StreamOwned};
use baton::{Config, IoActivation};
use util::real_redis::RealRedis;
use util::{spawn_server, spawn_tls_server, TestCert, TestServer};

/// Blocking plain or TLS client stream.
trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

fn kv(io_threads: usize, cert: Option<&TestCert>) -> TestServer<()> {
    let kv = kv_test_config(None);
    let config = Config::default()
        .io_threads(io_threads)
        .io_activation(IoActivation::Always);
    match cert {
        None => spawn_server(config, move || service::Kv::new(kv)),
        Some(cert) => spawn_tls_server(config, cert.server_config(), move || service::Kv::new(kv)),
    }
}

fn connect(addr: SocketAddr, cert: Option<&TestCert>) -> Box<dyn Stream> {
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    match cert {
        None => Box::new(tcp),
        Some(cert) => {
            let config = baton::tls::client_config_trusting(&cert.cert, &[]).unwrap();
            let name = ServerName::try_from("localhost").unwrap();
            let conn = ClientConnection::new(Arc::new(config), name).unwrap();
            Box::new(StreamOwned::new(conn, tcp))
        }
    }
}

fn command(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

/// A value of `len` bytes holding every byte value (CR and LF included),
/// different for each `seed`.
fn value(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// The requests of one pipeline: large values (below, at and above the
/// size kv shares, 64 KiB, and some MiB) read back by GET, MGET and GETDEL
/// between small replies, a value edited in place (APPEND), then QUIT.
/// Returns the requests and the total size of the values read back.
fn pipeline(big_reads: usize) -> (Vec<u8>, usize) {
    let sizes = [16 * 1024 - 1, 16 * 1024, 64 * 1024, 64 * 1024 + 1, 3 << 20];
    let mut out = Vec::new();
    let mut read_back = 0;
    command(&mut out, &[b"FLUSHALL"]);
    for (i, &len) in sizes.iter().enumerate() {
        let key = format!("big{i}");
        let v = value(len, i as u8);
        command(&mut out, &[b"SET", key.as_bytes(), &v]);
    }
    for round in 0..big_reads {
        for i in 0..sizes.len() {
            let key = format!("big{i}");
            command(&mut out, &[b"PING"]);
            command(&mut out, &[b"GET", key.as_bytes()]);
            command(&mut out, &[b"INCR", b"n"]);
            command(&mut out, &[b"GET", b"n"]);
            read_back += sizes[i];
            if round == 0 {
                command(&mut out, &[b"MGET", key.as_bytes(), b"nope", b"big2"]);
                read_back += sizes[i] + sizes[2];
            }
        }
    }
    command(&mut out, &[b"APPEND", b"big2", b"tail"]);
    command(&mut out, &[b"GET", b"big2"]);
    command(&mut out, &[b"GETDEL", b"big3"]);
    command(&mut out, &[b"GET", b"big3"]);
    command(&mut out, &[b"QUIT"]);
    (out, read_back + (sizes[2] + 4) + sizes[3])
}

/// Sends `requests` at once, waits `pause` (the replies pile up in the
/// server), then reads until the server closes after QUIT, in pieces of
/// `piece` bytes.
fn run(mut stream: Box<dyn Stream>, requests: &[u8], pause: Duration, piece: usize) -> Vec<u8> {
    stream.write_all(requests).unwrap();
    stream.flush().unwrap();
    std::thread::sleep(pause);
    let mut got = Vec::new();
    let mut buf = vec![0; piece];
    loop {
        let n = stream.read(&mut buf).expect("read until the server closes");
        if n == 0 {
            return got;
        }
        got.extend_from_slice(&buf[..n]);
        if !pause.is_zero() {
            // A slow reader: the server's socket stays full.
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

/// The replies redis-server sends for `requests` (the oracle).
fn redis_replies(requests: &[u8]) -> Vec<u8> {
    let redis = RealRedis::start();
    let tcp = TcpStream::connect(redis.addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    run(Box::new(tcp), requests, Duration::ZERO, 1 << 20)
}

fn same_bytes(what: &str, ours: &[u8], theirs: &[u8]) {
    if ours != theirs {
        let at = ours.iter().zip(theirs).take_while(|(a, b)| a == b).count();
        let show = |b: &[u8]| String::from_utf8_lossy(&b[at..(at + 40).min(b.len())]).into_owned();
        panic!(
            "{what}: {} bytes, redis-server sent {}; first difference at byte {at}: {:?} vs {:?}",
            ours.len(),
            theirs.len(),
            show(ours),
            show(theirs)
        );
    }
}

#[test]
fn pipelined_large_gets_among_small_replies_are_byte_for_byte_redis_servers() {
    let (requests, read_back) = pipeline(2);
    let want = redis_replies(&requests);
    assert!(want.len() > read_back, "the oracle sent the values");
    assert!(want.ends_with(b"$-1\r\n+OK\r\n"), "and got to QUIT");
    let cert = TestCert::new("kv-large-values");
    for tls in [false, true] {
        for io_threads in [0, 2] {
            let cert = tls.then_some(&cert);
            let server = kv(io_threads, cert);
            let got = run(
                connect(server.addr, cert),
                &requests,
                Duration::ZERO,
                1 << 20,
            );
            same_bytes(&format!("tls {tls}, {io_threads} IO threads"), &got, &want);
        }
    }
}

/// The client sends everything and reads nothing for a while: the
/// replies (tens of MiB) fill the socket in the middle of a value and wait
/// in the server, past the soft output limit; then the client reads
/// slowly, and gets every byte in order.
#[test]
fn a_slow_reader_gets_every_large_value_in_order() {
    let (requests, read_back) = pipeline(3);
    assert!(read_back > 8 << 20, "well past the socket's buffers");
    let want = redis_replies(&requests);
    let cert = TestCert::new("kv-large-slow");
    for tls in [false, true] {
        let cert = tls.then_some(&cert);
        let server = kv(2, cert);
        let got = run(
            connect(server.addr, cert),
            &requests,
            Duration::from_millis(200),
            16 * 1024,
        );
        same_bytes(&format!("slow reader, tls {tls}"), &got, &want);
    }
}
