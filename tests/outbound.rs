//! Outbound connections (`Ctx::connect`) and half-close (`on_peer_eof`,
//! `Ctx::shutdown_write`), end to end over loopback: a connect that opens
//! and carries bytes both ways (inline and on IO threads), refused, timed
//! out, given up while connecting, TLS verified and TLS refused; a peer's
//! FIN answered after it, and our own FIN sent after the queued output,
//! plain and TLS. Each failure is reported once, and descriptors come back.
//!
//! Every wait is bounded; a hang is a failure.

mod util;

#[path = "../examples/echo/service.rs"]
mod echo;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Mutex;
use std::time::Duration;

use baton::tls::rustls::pki_types::ServerName;
use baton::tls::ClientTlsSettings;
use baton::{
    AfterEof, ByteStream, CloseReason, Config, ConnId, ConnInfo, Connect, ConnectError, Ctx,
    IoActivation, Origin, SendError, Service,
};
use util::TestCert;

const LIMIT: Duration = Duration::from_secs(20);

/// Tests that count this process's descriptors run one at a time.
static FDS: Mutex<()> = Mutex::new(());

/// What the service saw, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    Opened(ConnId, Origin, bool),
    Failed(ConnId, CloseReason),
    Frame(ConnId, Vec<u8>),
    PeerEof(ConnId),
    Closed(ConnId, CloseReason),
    ConnectRefused(String),
    Started(ConnId),
    SendResult(Result<(), SendError>),
}

enum Command {
    Connect(Connect),
    Send(ConnId, Vec<u8>),
    TrySend(ConnId, Vec<u8>),
    ShutdownWrite(ConnId),
    Close(ConnId),
}

/// Opens what it is told to, and reports everything to the test.
struct Dialer {
    events: Sender<Event>,
    after_eof: AfterEof,
}

impl Service for Dialer {
    type Codec = ByteStream;
    type ConnState = ();
    type Command = Command;

    fn codec(&mut self, _: &ConnInfo) -> ByteStream {
        ByteStream::default()
    }

    fn on_open(&mut self, ctx: &mut Ctx<'_, Self>, conn: ConnId) {
        let info = ctx.conn_info(conn).expect("open");
        let _ = self
            .events
            .send(Event::Opened(conn, info.origin, info.tls.is_some()));
    }

    fn on_frame(&mut self, _: &mut Ctx<'_, Self>, conn: ConnId, _: &mut (), frame: Vec<u8>) {
        let _ = self.events.send(Event::Frame(conn, frame));
    }

    fn on_peer_eof(&mut self, _: &mut Ctx<'_, Self>, conn: ConnId, _: &mut ()) -> AfterEof {
        let _ = self.events.send(Event::PeerEof(conn));
        self.after_eof
    }

    fn on_close(&mut self, _: &mut Ctx<'_, Self>, conn: ConnId, _: (), reason: CloseReason) {
        let _ = self.events.send(Event::Closed(conn, reason));
    }

    fn on_connect_failed(&mut self, _: &mut Ctx<'_, Self>, conn: ConnId, reason: CloseReason) {
        let _ = self.events.send(Event::Failed(conn, reason));
    }

    fn on_command(&mut self, ctx: &mut Ctx<'_, Self>, command: Command) {
        match command {
            Command::Connect(target) => {
                let event = match ctx.connect(target) {
                    Ok(id) => Event::Started(id),
                    Err(e) => Event::ConnectRefused(e.to_string()),
                };
                let _ = self.events.send(event);
            }
            Command::Send(conn, bytes) => ctx.send(conn, bytes).expect("send"),
            Command::TrySend(conn, bytes) => {
                let _ = self.events.send(Event::SendResult(ctx.send(conn, bytes)));
            }
            Command::ShutdownWrite(conn) => ctx.shutdown_write(conn).expect("shutdown_write"),
            Command::Close(conn) => ctx.close(conn).expect("close"),
        }
    }
}

struct Running {
    server: util::TestServer<Command>,
    events: Receiver<Event>,
}

impl Running {
    fn start(config: Config, after_eof: AfterEof) -> Self {
        let (tx, events) = mpsc::channel();
        let server = util::spawn_server(config, move || Dialer {
            events: tx,
            after_eof,
        });
        Self { server, events }
    }

    fn post(&self, command: Command) {
        assert!(self.server.handle.post(command).is_ok(), "loop stopped");
    }

    fn next(&self) -> Event {
        self.events
            .recv_timeout(LIMIT)
            .expect("an event within the limit")
    }

    /// Starts a connect and returns its id.
    fn connect(&self, target: Connect) -> ConnId {
        self.post(Command::Connect(target));
        match self.next() {
            Event::Started(id) => id,
            other => panic!("connect did not start: {other:?}"),
        }
    }

    /// Reads frames for `conn` until `want` bytes came, checking no other
    /// event comes in between.
    fn frames(&self, conn: ConnId, want: usize) -> Vec<u8> {
        let mut got = Vec::new();
        while got.len() < want {
            match self.next() {
                Event::Frame(id, bytes) if id == conn => got.extend(bytes),
                other => panic!("expected frames of {conn:?}, got {other:?}"),
            }
        }
        got
    }

    fn no_more_events(&self) {
        if let Ok(event) = self.events.recv_timeout(Duration::from_millis(100)) {
            panic!("unexpected event {event:?}");
        }
    }
}

fn configs() -> [(&'static str, Config); 2] {
    [
        ("inline", Config::default()),
        (
            "io threads",
            Config::default()
                .io_threads(2)
                .io_activation(IoActivation::Always),
        ),
    ]
}

fn accept(listener: &TcpListener) -> TcpStream {
    let (stream, _) = listener.accept().expect("accept");
    stream.set_read_timeout(Some(LIMIT)).unwrap();
    stream
}

#[test]
fn a_connect_opens_like_an_accepted_connection_and_carries_bytes_both_ways() {
    let _fds = FDS.lock().unwrap_or_else(|e| e.into_inner());
    for (mode, config) in configs() {
        let baseline = util::open_fds();
        let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
        let running = Running::start(config, AfterEof::Close);
        let id = running.connect(Connect::plain(upstream.local_addr().unwrap()));
        let mut peer = accept(&upstream);
        assert_eq!(
            running.next(),
            Event::Opened(id, Origin::Connect, false),
            "{mode}"
        );
        running.post(Command::Send(id, b"ping".to_vec()));
        let mut buf = [0u8; 4];
        peer.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ping", "{mode}");
        peer.write_all(b"pong").unwrap();
        assert_eq!(running.frames(id, 4), b"pong", "{mode}");
        // The server's FIN: the default closes once output is flushed.
        peer.shutdown(Shutdown::Write).unwrap();
        assert_eq!(running.next(), Event::PeerEof(id), "{mode}");
        assert_eq!(
            running.next(),
            Event::Closed(id, CloseReason::PeerClosed),
            "{mode}"
        );
        assert_eq!(peer.read(&mut buf).unwrap(), 0, "{mode}: our side closed");
        let stats = running.server.handle.stats();
        assert_eq!(
            (stats.connects_started, stats.connects_failed),
            (1, 0),
            "{mode}"
        );
        assert_eq!(
            stats.connections_accepted, 0,
            "{mode}: nothing was accepted"
        );
        running.server.stop(Duration::from_secs(1));
        drop((peer, upstream));
        util::wait_for_fds(baseline, LIMIT);
    }
}

#[test]
fn a_refused_connect_is_reported_once_with_its_reason() {
    let _fds = FDS.lock().unwrap_or_else(|e| e.into_inner());
    let baseline = util::open_fds();
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let running = Running::start(Config::default(), AfterEof::Close);
    let id = running.connect(Connect::plain(addr));
    assert_eq!(
        running.next(),
        Event::Failed(id, CloseReason::Io(ErrorKind::ConnectionRefused))
    );
    running.no_more_events();
    let stats = running.server.handle.stats();
    assert_eq!((stats.connects_started, stats.connects_failed), (1, 1));
    let refused = CloseReason::Io(ErrorKind::ConnectionRefused);
    assert_eq!(stats.connect_failures.iter().sum::<u64>(), 1);
    assert_eq!(stats.connect_failures.iter().nth(refused.index()), Some(&1));
    assert_eq!(stats.connections_open, 0);
    running.server.stop(Duration::from_secs(1));
    util::wait_for_fds(baseline, LIMIT);
}

/// A listener whose accept queue is full: Linux drops further SYNs, so a
/// connect to it neither completes nor fails until it gives up.
fn full_listener() -> (socket2::Socket, TcpStream) {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    socket.bind(&addr.into()).unwrap();
    socket.listen(0).unwrap();
    let addr = socket.local_addr().unwrap().as_socket().unwrap();
    // Backlog 0 still queues one; a second may be needed on some kernels.
    let first = TcpStream::connect(addr).unwrap();
    let _ = TcpStream::connect_timeout(&addr, Duration::from_millis(200));
    (socket, first)
}

#[test]
fn a_connect_that_is_never_accepted_times_out_and_one_given_up_says_so() {
    let _fds = FDS.lock().unwrap_or_else(|e| e.into_inner());
    let baseline = util::open_fds();
    let (listener, filler) = full_listener();
    let addr = listener.local_addr().unwrap().as_socket().unwrap();
    let running = Running::start(Config::default(), AfterEof::Close);
    let id = running.connect(Connect::plain(addr).timeout(Duration::from_millis(300)));
    assert_eq!(
        running.next(),
        Event::Failed(id, CloseReason::ConnectTimeout)
    );
    // Given up by the service while connecting: reported as its close.
    let id = running.connect(Connect::plain(addr).timeout(LIMIT));
    running.post(Command::Close(id));
    assert_eq!(running.next(), Event::Failed(id, CloseReason::ByService));
    // And by a shutdown.
    let id = running.connect(Connect::plain(addr).timeout(LIMIT));
    let report = running.server.stop(Duration::from_secs(1));
    assert_eq!(
        running.events.recv_timeout(LIMIT).unwrap(),
        Event::Failed(id, CloseReason::Shutdown)
    );
    assert_eq!(report.stats.connects_failed, 3);
    assert_eq!(
        report
            .stats
            .connect_failures
            .iter()
            .nth(CloseReason::ConnectTimeout.index()),
        Some(&1)
    );
    drop((listener, filler));
    util::wait_for_fds(baseline, LIMIT);
}

#[test]
fn connect_refuses_at_once_over_the_connection_limit() {
    let running = Running::start(Config::default().max_connections(1), AfterEof::Close);
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = upstream.local_addr().unwrap();
    let id = running.connect(Connect::plain(addr));
    let _peer = accept(&upstream);
    assert_eq!(running.next(), Event::Opened(id, Origin::Connect, false));
    running.post(Command::Connect(Connect::plain(addr)));
    assert_eq!(
        running.next(),
        Event::ConnectRefused(ConnectError::Limit.to_string())
    );
}

/// A TLS echo server of baton's own, for the outbound TLS tests.
fn tls_echo(cert: &TestCert) -> util::TestServer<()> {
    util::spawn_tls_server(Config::default(), cert.server_config(), || echo::Echo)
}

fn tls_target(addr: SocketAddr, trusted: &TestCert) -> Connect {
    let config = ClientTlsSettings::trusting(&trusted.cert).build().unwrap();
    Connect::tls(addr, config, ServerName::try_from("localhost").unwrap())
}

#[test]
fn a_tls_connect_opens_after_its_handshake_and_half_closes_with_close_notify() {
    let cert = TestCert::new("outbound-tls");
    let echo = tls_echo(&cert);
    for (mode, config) in configs() {
        let running = Running::start(config, AfterEof::KeepWriting);
        let id = running.connect(tls_target(echo.addr, &cert));
        assert_eq!(
            running.next(),
            Event::Opened(id, Origin::Connect, true),
            "{mode}"
        );
        let sent = vec![7u8; 100_000];
        running.post(Command::Send(id, sent.clone()));
        // Our end goes after the data: the echo server reads it all, sees
        // close_notify and the FIN, sends everything back and closes.
        running.post(Command::ShutdownWrite(id));
        assert_eq!(running.frames(id, sent.len()), sent, "{mode}");
        assert_eq!(running.next(), Event::PeerEof(id), "{mode}");
        assert_eq!(
            running.next(),
            Event::Closed(id, CloseReason::PeerClosed),
            "{mode}"
        );
        let stats = running.server.handle.stats();
        assert_eq!(stats.handshakes_ok, 1, "{mode}");
        running.server.stop(Duration::from_secs(1));
    }
    echo.stop(Duration::from_secs(1));
}

#[test]
fn a_tls_connect_to_an_untrusted_server_fails_with_a_tls_reason() {
    let cert = TestCert::new("outbound-tls-server");
    let other = TestCert::new("outbound-tls-other");
    let echo = tls_echo(&cert);
    let running = Running::start(Config::default(), AfterEof::Close);
    let id = running.connect(tls_target(echo.addr, &other));
    match running.next() {
        Event::Failed(failed, CloseReason::Tls(_)) => assert_eq!(failed, id),
        other => panic!("expected a TLS failure, got {other:?}"),
    }
    running.no_more_events();
    assert_eq!(running.server.handle.stats().handshakes_failed, 1);
    running.server.stop(Duration::from_secs(1));
    echo.stop(Duration::from_secs(1));
}

#[test]
fn after_the_peers_fin_a_kept_connection_answers_and_then_sends_its_own_fin() {
    let _fds = FDS.lock().unwrap_or_else(|e| e.into_inner());
    for (mode, config) in configs() {
        let baseline = util::open_fds();
        let running = Running::start(config, AfterEof::KeepWriting);
        let mut client = TcpStream::connect(running.server.addr).unwrap();
        client.set_read_timeout(Some(LIMIT)).unwrap();
        let id = match running.next() {
            Event::Opened(id, Origin::Listener(0), false) => id,
            other => panic!("{mode}: {other:?}"),
        };
        client.write_all(b"request").unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        assert_eq!(running.frames(id, 7), b"request", "{mode}");
        assert_eq!(running.next(), Event::PeerEof(id), "{mode}");
        // Still open for writing: the answer comes after the FIN.
        running.no_more_events();
        running.post(Command::Send(id, b"answer".to_vec()));
        running.post(Command::ShutdownWrite(id));
        let mut got = Vec::new();
        client.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"answer", "{mode}: the answer, then our FIN");
        assert_eq!(
            running.next(),
            Event::Closed(id, CloseReason::PeerClosed),
            "{mode}"
        );
        running.server.stop(Duration::from_secs(1));
        drop(client);
        util::wait_for_fds(baseline, LIMIT);
    }
}

#[test]
fn after_our_fin_reading_goes_on_until_the_peers_end() {
    for (mode, config) in configs() {
        let running = Running::start(config, AfterEof::Close);
        let mut client = TcpStream::connect(running.server.addr).unwrap();
        client.set_read_timeout(Some(LIMIT)).unwrap();
        let id = match running.next() {
            Event::Opened(id, ..) => id,
            other => panic!("{mode}: {other:?}"),
        };
        running.post(Command::Send(id, b"bye".to_vec()));
        running.post(Command::ShutdownWrite(id));
        // Nothing may follow our FIN.
        running.post(Command::TrySend(id, b"after".to_vec()));
        assert_eq!(
            running.next(),
            Event::SendResult(Err(SendError::Closing)),
            "{mode}"
        );
        let mut got = Vec::new();
        client.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"bye", "{mode}");
        // Half-closed by the server: the client may still send.
        client.write_all(b"late").unwrap();
        assert_eq!(running.frames(id, 4), b"late", "{mode}");
        client.shutdown(Shutdown::Write).unwrap();
        assert_eq!(running.next(), Event::PeerEof(id), "{mode}");
        assert_eq!(
            running.next(),
            Event::Closed(id, CloseReason::PeerClosed),
            "{mode}"
        );
        running.server.stop(Duration::from_secs(1));
    }
}
