//! The limits a user relies on: max connections, max frame size, output
//! backpressure (soft limit) and the hard output limit, idle timeout, and
//! timeouts and timers of any length.

mod util;

#[path = "../examples/echo/service.rs"]
mod echo;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::mpsc::{channel, Sender};
use std::time::Duration;

use baton::{
    CloseReason, Config, ConnId, ConnInfo, Ctx, IoActivation, ProtocolErrorKind, SendError,
    Service, TimerId,
};
use util::lines::Lines;
use util::spawn_server;

/// Reads until the server closes the connection (EOF or reset); panics if it
/// is still open after `limit`.
fn expect_closed(stream: &mut TcpStream, limit: Duration) {
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 65536];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return,
            Err(e) => panic!("connection not closed by the server: {e}"),
        }
    }
}

fn echo_roundtrip(stream: &mut TcpStream, bytes: &[u8]) {
    stream.write_all(bytes).unwrap();
    let mut back = vec![0; bytes.len()];
    stream.read_exact(&mut back).unwrap();
    assert_eq!(back, bytes);
}

#[test]
fn connections_past_max_are_closed_at_once_and_counted() {
    let server = spawn_server(Config::default().max_connections(5), || echo::Echo);
    let mut admitted: Vec<TcpStream> = (0..5)
        .map(|_| TcpStream::connect(server.addr).unwrap())
        .collect();
    server.wait_for("5 admitted", Duration::from_secs(10), |s| {
        s.connections_accepted == 5
    });
    let mut extra = TcpStream::connect(server.addr).unwrap();
    expect_closed(&mut extra, Duration::from_secs(10));
    server.wait_for("1 rejected", Duration::from_secs(10), |s| {
        s.connections_rejected == 1
    });
    for stream in &mut admitted {
        echo_roundtrip(stream, b"still served");
    }
    drop(admitted);
    // Room again once they are gone.
    server.wait_for("all closed", Duration::from_secs(10), |s| {
        s.connections_open == 0
    });
    echo_roundtrip(&mut TcpStream::connect(server.addr).unwrap(), b"room again");
}

struct LineEcho;

impl Service for LineEcho {
    type Codec = Lines;
    type ConnState = ();
    type Command = ();

    fn on_open(&mut self, _: &mut Ctx<'_, Self>, _: ConnId) {}
    fn codec(&mut self, _: &ConnInfo) -> Lines {
        Lines
    }
    fn on_frame(&mut self, ctx: &mut Ctx<'_, Self>, conn: ConnId, _: &mut (), line: Vec<u8>) {
        let _ = ctx.send(conn, line);
    }
}

#[test]
fn a_frame_over_the_limit_closes_only_that_connection() {
    for io_threads in [0, 2] {
        let config = Config::default()
            .io_threads(io_threads)
            .io_activation(IoActivation::Always)
            .max_frame_size(1024);
        let server = spawn_server(config, || LineEcho);
        let mut good = TcpStream::connect(server.addr).unwrap();
        let mut bad = TcpStream::connect(server.addr).unwrap();
        // A complete line first: it is answered before the close.
        bad.write_all(b"fine\n").unwrap();
        bad.write_all(&[b'x'; 4096]).unwrap();
        let mut reply = [0u8; 5];
        bad.read_exact(&mut reply).unwrap();
        assert_eq!(&reply, b"fine\n");
        expect_closed(&mut bad, Duration::from_secs(10));
        server.wait_for("a frame-too-large close", Duration::from_secs(10), |s| {
            s.closed_for(&CloseReason::Protocol(ProtocolErrorKind::FrameTooLarge)) == 1
        });
        echo_roundtrip(&mut good, b"unaffected\n");
    }
}

#[test]
fn a_client_that_never_reads_is_paused_not_buffered() {
    let config = Config::default().output_soft_limit(64 * 1024);
    let server = spawn_server(config, || echo::Echo);
    let mut hog = TcpStream::connect(server.addr).unwrap();
    hog.set_nonblocking(true).unwrap();
    let chunk = vec![7u8; 1 << 20];
    let mut written = 0usize;
    // Write until the socket refuses: the server must have stopped reading.
    let mut refused = 0;
    while refused < 50 && written < 512 << 20 {
        match hog.write(&chunk) {
            Ok(n) => {
                written += n;
                refused = 0;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                refused += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("write failed: {e}"),
        }
    }
    assert!(
        written < 512 << 20,
        "the server kept reading from a client that never reads"
    );
    let stats = server.handle.stats();
    // What the server took is bounded by the soft limit plus socket buffers
    // and one read budget, not by what the client sent.
    assert!(
        stats.bytes_in < 32 << 20,
        "server read {} bytes",
        stats.bytes_in
    );
    assert_eq!(stats.connections_open, 1, "backpressure is not a close");
    // Reading resumes the flow.
    hog.set_nonblocking(false).unwrap();
    let mut buf = vec![0; 1 << 20];
    let mut read = 0;
    while read < written {
        read += hog.read(&mut buf).unwrap();
    }
    assert_eq!(read, written);
}

/// Answers each line with a 64 KiB reply naming the line.
struct BigReplies;

const BIG_REPLY: usize = 64 << 10;

impl Service for BigReplies {
    type Codec = Lines;
    type ConnState = ();
    type Command = ();

    fn on_open(&mut self, _: &mut Ctx<'_, Self>, _: ConnId) {}
    fn codec(&mut self, _: &ConnInfo) -> Lines {
        Lines
    }
    fn on_frame(&mut self, ctx: &mut Ctx<'_, Self>, conn: ConnId, _: &mut (), line: Vec<u8>) {
        let mut reply = line;
        reply.resize(BIG_REPLY - 1, b'.');
        let _ = ctx.send(conn, reply);
    }
}

/// 1,000 pipelined requests arrive in one read and ask for 64 MiB of
/// replies; the hard limit is 4 MiB. Backpressure works per frame, not per
/// read: the loop stops handing frames to the service once output passes
/// the soft limit, so the server never holds more than about the soft limit
/// plus one reply (it would otherwise pass the hard limit and close the
/// connection). When the client reads, every reply comes, in order.
#[test]
fn pipelined_requests_wait_undelivered_while_output_is_over_the_soft_limit() {
    for io_threads in [0, 2] {
        let config = Config::default()
            .io_threads(io_threads)
            .io_activation(IoActivation::Always)
            .output_soft_limit(256 << 10)
            .output_hard_limit(4 << 20);
        let server = spawn_server(config, || BigReplies);
        let mut client = TcpStream::connect(server.addr).unwrap();
        let requests: String = (0..1000).map(|i| format!("{i:04}\n")).collect();
        client.write_all(requests.as_bytes()).unwrap();
        server.wait_for("a pause", Duration::from_secs(10), |s| {
            s.backpressure_pauses >= 1 && s.connections_paused == 1
        });
        let mut reply = vec![0u8; BIG_REPLY];
        for i in 0..1000 {
            client.read_exact(&mut reply).unwrap();
            assert_eq!(
                &reply[..4],
                format!("{i:04}").as_bytes(),
                "reply {i} in order"
            );
        }
        let stats = server.handle.stats();
        assert_eq!(stats.closed_for(&CloseReason::OutputLimit), 0);
        assert_eq!(stats.frames_in, 1000);
    }
}

enum Flood {
    Push(ConnId, usize, Sender<Result<(), SendError>>),
}

/// Pushes server-generated output (not driven by the client's input).
struct Pusher {
    opened: Sender<ConnId>,
}

impl Service for Pusher {
    type Codec = Lines;
    type ConnState = ();
    type Command = Flood;
    fn codec(&mut self, _: &ConnInfo) -> Lines {
        Lines
    }
    fn on_open(&mut self, _: &mut Ctx<'_, Self>, conn: ConnId) {
        let _ = self.opened.send(conn);
    }
    fn on_frame(&mut self, _: &mut Ctx<'_, Self>, _: ConnId, _: &mut (), _: Vec<u8>) {}
    fn on_command(&mut self, ctx: &mut Ctx<'_, Self>, Flood::Push(conn, len, reply): Flood) {
        let _ = reply.send(ctx.send(conn, vec![b'p'; len]));
    }
}

#[test]
fn output_past_the_hard_limit_closes_the_connection() {
    for io_threads in [0, 2] {
        let (tx, opened) = channel();
        let config = Config::default()
            .io_threads(io_threads)
            .io_activation(IoActivation::Always)
            .output_hard_limit(4 << 20);
        let server = spawn_server(config, move || Pusher { opened: tx });
        let mut sink = TcpStream::connect(server.addr).unwrap();
        let id = opened.recv_timeout(Duration::from_secs(10)).unwrap();
        let (reply_tx, replies) = channel();
        let mut results = Vec::new();
        for _ in 0..64 {
            server
                .handle
                .post(Flood::Push(id, 256 << 10, reply_tx.clone()))
                .ok()
                .unwrap();
            let result = replies.recv_timeout(Duration::from_secs(10)).unwrap();
            results.push(result);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(
            results.last(),
            Some(&Err(SendError::LimitExceeded)),
            "{results:?}"
        );
        expect_closed(&mut sink, Duration::from_secs(10));
        server.wait_for("an output-limit close", Duration::from_secs(10), |s| {
            s.closed_for(&CloseReason::OutputLimit) == 1
        });
        let (reply_tx, replies) = channel();
        server
            .handle
            .post(Flood::Push(id, 1, reply_tx))
            .ok()
            .unwrap();
        assert_eq!(replies.recv().unwrap(), Err(SendError::Gone));
    }
}

#[test]
fn idle_connections_are_closed_and_active_ones_are_not() {
    let config = Config::default().idle_timeout(Some(Duration::from_millis(300)));
    let server = spawn_server(config, || echo::Echo);
    let mut idle = TcpStream::connect(server.addr).unwrap();
    let mut active = TcpStream::connect(server.addr).unwrap();
    let keep_alive = std::thread::spawn(move || {
        for _ in 0..20 {
            echo_roundtrip(&mut active, b"ping");
            std::thread::sleep(Duration::from_millis(50));
        }
        active
    });
    expect_closed(&mut idle, Duration::from_secs(10));
    let mut active = keep_alive.join().unwrap();
    echo_roundtrip(&mut active, b"still open");
    assert_eq!(
        server.handle.stats().closed_for(&CloseReason::IdleTimeout),
        1
    );
}

/// Echoes lines; the line `TIMERS` sets a timer of `Duration::MAX` (which
/// must never fire) and one of 1 ms, which answers `FIRED`.
#[derive(Default)]
struct Patient {
    waiting: Option<ConnId>,
}

const NEVER: u64 = 1;
const SOON: u64 = 2;

impl Service for Patient {
    type Codec = Lines;
    type ConnState = ();
    type Command = ();

    fn on_open(&mut self, _: &mut Ctx<'_, Self>, _: ConnId) {}
    fn codec(&mut self, _: &ConnInfo) -> Lines {
        Lines
    }
    fn on_frame(&mut self, ctx: &mut Ctx<'_, Self>, conn: ConnId, _: &mut (), line: Vec<u8>) {
        if line == b"TIMERS" {
            self.waiting = Some(conn);
            ctx.set_timer(Duration::MAX, NEVER);
            ctx.set_timer(Duration::from_millis(1), SOON);
        } else {
            let _ = ctx.send(conn, line);
        }
    }
    fn on_timer(&mut self, ctx: &mut Ctx<'_, Self>, _: TimerId, token: u64) {
        assert_eq!(token, SOON, "a timer of Duration::MAX fired");
        if let Some(conn) = self.waiting {
            let _ = ctx.send(conn, b"FIRED".to_vec());
        }
    }
}

fn line_roundtrip(stream: &mut TcpStream, send: &[u8], expect: &[u8]) {
    stream.write_all(send).unwrap();
    let mut back = vec![0; expect.len()];
    stream.read_exact(&mut back).unwrap();
    assert_eq!(back, expect);
}

/// Every timeout and timer of `Duration::MAX` means "never": no overflow
/// panic computing its deadline (there were: `Instant + Duration::MAX`).
#[test]
fn durations_of_duration_max_mean_never() {
    let never = Config::default()
        .idle_timeout(Some(Duration::MAX))
        .close_flush_timeout(Duration::MAX)
        .handshake_timeout(Duration::MAX);
    // Idle timeout (armed on accept), user timers, and the close flush
    // timeout (armed by the shutdown).
    let server = spawn_server(never.clone(), Patient::default);
    let mut client = TcpStream::connect(server.addr).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    line_roundtrip(&mut client, b"hello\n", b"hello\n");
    line_roundtrip(&mut client, b"TIMERS\n", b"FIRED\n");
    line_roundtrip(&mut client, b"still open\n", b"still open\n");
    let report = server.stop(Duration::from_secs(10));
    assert_eq!(report.stats.closed_for(&CloseReason::Shutdown), 1);
    assert_eq!(report.stats.service_panics, 0);
    expect_closed(&mut client, Duration::from_secs(10));

    // The handshake timeout (armed on accept by a TLS listener).
    let cert = util::TestCert::new("duration-max");
    let server = util::spawn_tls_server(never, cert.server_config(), Patient::default);
    let client = TcpStream::connect(server.addr).unwrap();
    server.wait_for("the TLS connection", Duration::from_secs(10), |s| {
        s.connections_open == 1
    });
    drop(client);
    server.wait_for("its close", Duration::from_secs(10), |s| {
        s.connections_open == 0 && s.closed_total() == 1
    });
    let report = server.stop(Duration::from_secs(10));
    assert_eq!(report.stats.connections_accepted, 1);
}
