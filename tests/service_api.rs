//! The service API of issue 12, end to end over loopback: per-connection
//! state, the drain signal pacing a large response with bounded memory, the
//! codec picked by ALPN, pausing reads, connection timers, `conn_info` for a
//! connection on an IO thread, a panicking `on_timer`, `run()` giving the
//! service back, `Builder::io_threads` against `.config`, and a failed TLS
//! handshake that never opens.
//!
//! Every wait is bounded (socket timeouts, deadlines); a hang is a failure.

mod util;

#[path = "../examples/stream/service.rs"]
mod stream;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use baton::tls::rustls;
use baton::tls::rustls::pki_types::ServerName;
use baton::tls::rustls::ServerConfig;
use baton::{
    Builder, CloseReason, Config, ConnId, Ctx, IoActivation, LoopHandle, RunReport, Server,
    Service, StatsSnapshot,
};
use util::lines::Lines;
use util::TestCert;

/// How long any single read or write may block before the test fails.
const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// A server on its own thread whose service comes back from `stop`.
struct Running<S: Service> {
    addr: SocketAddr,
    handle: LoopHandle<S::Command>,
    thread: Option<JoinHandle<RunReport<S>>>,
}

impl<S: Service + Send> Running<S> {
    /// Builds `builder` with one listener on 127.0.0.1 (TLS with `tls`) on a
    /// new thread (a `Server` is `!Send`) and runs it there.
    fn start(
        builder: Builder,
        tls: Option<Arc<ServerConfig>>,
        make: impl FnOnce() -> S + Send + 'static,
    ) -> Self {
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("baton-loop".into())
            .spawn(move || {
                let addr = "127.0.0.1:0".parse().unwrap();
                let builder = match tls {
                    Some(tls) => builder.listen_tls(addr, tls),
                    None => builder.listen(addr),
                };
                let server = builder.build(make()).expect("build server");
                tx.send((server.local_addrs()[0], server.handle())).unwrap();
                server.run().expect("server run")
            })
            .unwrap();
        let (addr, handle) = rx.recv().expect("server started");
        Self {
            addr,
            handle,
            thread: Some(thread),
        }
    }

    fn plain(config: Config, make: impl FnOnce() -> S + Send + 'static) -> Self {
        Self::start(Server::builder().config(config), None, make)
    }

    fn stats(&self) -> StatsSnapshot {
        self.handle.stats()
    }

    /// Waits until `pred` holds for the counters, or fails after `limit`.
    fn wait_for(&self, what: &str, limit: Duration, pred: impl Fn(&StatsSnapshot) -> bool) {
        let start = Instant::now();
        loop {
            let stats = self.stats();
            if pred(&stats) {
                return;
            }
            assert!(
                start.elapsed() < limit,
                "timed out waiting for {what}: {stats:#?}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Shuts down and returns what `run` returned, service included.
    fn stop(mut self) -> RunReport<S> {
        self.handle.shutdown(Duration::from_secs(5));
        self.thread
            .take()
            .unwrap()
            .join()
            .expect("server thread panicked")
    }
}

impl<S: Service> Drop for Running<S> {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            // Abandoned by a failing test: stop it anyway.
            self.handle.shutdown(Duration::ZERO);
            let _ = thread.join();
        }
    }
}

/// A blocking loopback client whose every read and write is bounded.
fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// Reads one `\n`-terminated line (without it), a byte at a time so
/// nothing after it is consumed.
fn read_line(stream: &mut impl Read) -> String {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match stream.read(&mut byte) {
            Ok(0) => panic!(
                "connection closed after {:?}",
                String::from_utf8_lossy(&line)
            ),
            Ok(_) if byte[0] == b'\n' => return String::from_utf8(line).unwrap(),
            Ok(_) => line.push(byte[0]),
            Err(e) => panic!(
                "read failed after {:?}: {e}",
                String::from_utf8_lossy(&line)
            ),
        }
    }
}

fn request(stream: &mut TcpStream, line: &str) -> String {
    stream.write_all(format!("{line}\n").as_bytes()).unwrap();
    read_line(stream)
}

// ---------------------------------------------------------------------------
// The drain signal: a large response to a slow reader, with bounded memory.

/// Bytes streamed to the slow reader: `BATON_STREAM_BYTES` or 1 GiB.
fn stream_bytes() -> u64 {
    std::env::var("BATON_STREAM_BYTES")
        .ok()
        .map(|v| v.parse().expect("BATON_STREAM_BYTES is a byte count"))
        .unwrap_or(1 << 30)
}

/// The slow reader sleeps a millisecond after every this many bytes: one
/// high mark, so the server outruns it and waits for the drain signal.
const PAUSE_EVERY: u64 = stream::HIGH_MARK as u64;

/// Streams `total` bytes to a reader with a small receive buffer that
/// pauses every 256 KiB, checking every byte against the pattern; returns the
/// service and counters.
fn stream_to_slow_reader(config: Config, total: u64) -> RunReport<stream::Stream> {
    let server = Running::plain(config, stream::Stream::default);
    // A small receive buffer, set before connecting so the window is small
    // from the start: the server's output backs up soon and often.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(128 << 10).unwrap();
    socket.connect(&server.addr.into()).unwrap();
    let mut client: TcpStream = socket.into();
    client.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    client
        .write_all(format!("GET {total}\nGET 3\n").as_bytes())
        .unwrap();
    // Let the server run into the high mark before anything is read.
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let mut buf = vec![0u8; stream::CHUNK];
    let mut offset = 0u64;
    let mut next_pause = PAUSE_EVERY;
    let want = total + 3;
    while offset < want {
        let n = match client.read(&mut buf) {
            Ok(0) => panic!("server closed after {offset} of {want} bytes"),
            Ok(n) => n,
            Err(e) => panic!("read failed after {offset} of {want} bytes: {e}"),
        };
        let (first, second) = if offset + n as u64 <= total {
            (n, 0)
        } else {
            // The second request's 3 bytes start the pattern again.
            let first = total.saturating_sub(offset) as usize;
            (first, n - first)
        };
        assert!(
            buf[..first] == *stream::pattern(offset, first),
            "bytes at offset {offset} are not the pattern"
        );
        if second > 0 {
            let at = offset + first as u64 - total;
            assert!(
                buf[first..n] == *stream::pattern(at, second),
                "second response wrong at {at}"
            );
        }
        offset += n as u64;
        if offset >= next_pause {
            next_pause += PAUSE_EVERY;
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let elapsed = started.elapsed();
    eprintln!(
        "streamed {total} bytes in {elapsed:?} ({:.0} MiB/s)",
        total as f64 / (1 << 20) as f64 / elapsed.as_secs_f64()
    );
    drop(client);
    server.wait_for("the client's close", IO_TIMEOUT, |s| {
        s.connections_open == 0
    });
    server.stop()
}

fn assert_bounded(report: &RunReport<stream::Stream>, total: u64, hard_limit: usize) {
    let s = &report.service;
    let bound = stream::HIGH_MARK + stream::CHUNK;
    assert!(
        s.max_output_len < bound,
        "output held reached {} (bound {bound})",
        s.max_output_len
    );
    assert!(
        s.max_output_len >= stream::HIGH_MARK,
        "the reader never held the stream back (max output {}): the drain path was not exercised",
        s.max_output_len
    );
    assert!(
        hard_limit as u64 * 8 <= total,
        "the hard limit must be well below the total"
    );
    assert!(s.drains > 0, "on_drained never called");
    assert!(
        s.max_output_at_drain <= stream::LOW_MARK,
        "on_drained came with {} bytes held, over the mark",
        s.max_output_at_drain
    );
    // Each on_drained but the last sends from at most the low mark up to
    // the high mark: fewer calls than that would be a drain signal that
    // fires early and spins.
    let most = total / (stream::HIGH_MARK - stream::LOW_MARK) as u64 + 1;
    assert!(
        s.drains <= most,
        "{} drains, at most {most} expected",
        s.drains
    );
    assert_eq!(report.stats.closed_for(&CloseReason::OutputLimit), 0);
    assert_eq!(report.stats.bytes_out, total + 3);
    assert_eq!(s.bytes_streamed, total + 3);
    assert_eq!(s.streams_completed, 2);
    eprintln!(
        "max output held {} bytes, {} drains",
        s.max_output_len, s.drains
    );
}

fn stream_config(io_threads: usize) -> Config {
    Config::default()
        .io_threads(io_threads)
        .io_activation(IoActivation::Always)
        .output_hard_limit(8 << 20)
}

#[test]
fn a_large_response_to_a_slow_reader_is_paced_by_the_drain_signal() {
    let total = stream_bytes();
    let config = stream_config(0);
    let hard = config.output_hard_limit;
    let report = stream_to_slow_reader(config, total);
    assert_bounded(&report, total, hard);
}

#[test]
fn the_drain_signal_paces_a_connection_that_lives_on_an_io_thread() {
    // While a connection is away `output_len` is an upper bound; pacing must
    // still hold and still finish.
    let total = (stream_bytes() / 4).max(64 << 20);
    let config = stream_config(1);
    let hard = config.output_hard_limit;
    let report = stream_to_slow_reader(config, total);
    assert_bounded(&report, total, hard);
    assert!(report.stats.jobs_dispatched > 0);
}

// ---------------------------------------------------------------------------
// Per-connection state, other connections' state, state back in on_close,
// and the service back from run().

/// Counts frames per connection; each reply is this connection's count and
/// the other open connections' counts as seen through `Ctx::state`.
#[derive(Debug, Default)]
struct Counting {
    open: Vec<ConnId>,
    /// Counts handed back to `on_close`.
    closed: Vec<(ConnId, u64)>,
    /// Times `Ctx::state` answered for the connection being called about
    /// (its state is the one the callback holds), or `states()` disagreed
    /// with `state()`.
    violations: u64,
}

impl Service for Counting {
    type Codec = Lines;
    type ConnState = u64;
    type Command = ();

    fn codec(&mut self, _: &baton::ConnInfo) -> Lines {
        Lines
    }

    fn on_open(&mut self, _: &mut Ctx<'_, Self>, conn: ConnId) -> u64 {
        self.open.push(conn);
        0
    }

    fn on_frame(&mut self, ctx: &mut Ctx<'_, Self>, conn: ConnId, count: &mut u64, _: Vec<u8>) {
        *count += 1;
        if ctx.state(conn).is_some() {
            self.violations += 1;
        }
        let mut others = Vec::new();
        for &other in self.open.iter().filter(|&&c| c != conn) {
            others.push(*ctx.state(other).expect("open connection has state"));
        }
        let mut listed: Vec<(ConnId, u64)> = ctx.states().map(|(id, s)| (id, *s)).collect();
        listed.sort();
        let mut expected: Vec<(ConnId, u64)> = self
            .open
            .iter()
            .filter(|&&c| c != conn)
            .zip(&others)
            .map(|(&c, &n)| (c, n))
            .collect();
        expected.sort();
        if listed != expected {
            self.violations += 1;
        }
        let reply = format!("{count} {others:?}");
        let _ = ctx.send(conn, reply.into_bytes());
    }

    fn on_close(&mut self, _: &mut Ctx<'_, Self>, conn: ConnId, count: u64, _: CloseReason) {
        self.open.retain(|&c| c != conn);
        self.closed.push((conn, count));
    }
}

#[test]
fn per_connection_state_is_kept_apart_seen_by_others_and_given_back_on_close() {
    let server = Running::plain(Config::default(), Counting::default);
    let mut a = connect(server.addr);
    let mut b = connect(server.addr);
    server.wait_for("both open", IO_TIMEOUT, |s| s.connections_open == 2);
    assert_eq!(request(&mut a, "x"), "1 [0]");
    assert_eq!(request(&mut b, "x"), "1 [1]");
    assert_eq!(request(&mut a, "x"), "2 [1]");
    assert_eq!(request(&mut a, "x"), "3 [1]");
    assert_eq!(request(&mut b, "x"), "2 [3]");
    drop(a);
    server.wait_for("a closed", IO_TIMEOUT, |s| s.connections_open == 1);
    assert_eq!(request(&mut b, "x"), "3 []");
    drop(b);
    server.wait_for("b closed", IO_TIMEOUT, |s| s.connections_open == 0);
    let report = server.stop();
    let service = report.service;
    assert_eq!(service.violations, 0);
    let counts: Vec<u64> = service.closed.iter().map(|&(_, n)| n).collect();
    assert_eq!(counts, [3, 3], "{:?}", service.closed);
    assert_ne!(service.closed[0].0, service.closed[1].0);
    assert!(service.open.is_empty());
}

// ---------------------------------------------------------------------------
// The codec picked by ALPN.

/// Connects over TLS offering `alpn`, sends `GET 300`, and returns the
/// protocol agreed and the first `want` bytes that came back.
fn alpn_exchange(
    addr: SocketAddr,
    cert: &TestCert,
    alpn: Option<&[u8]>,
    want: usize,
) -> (Option<Vec<u8>>, Vec<u8>) {
    let mut config = baton::tls::client_config_trusting(&cert.cert, &[]).unwrap();
    config.alpn_protocols = alpn.into_iter().map(<[u8]>::to_vec).collect();
    let conn =
        rustls::ClientConnection::new(Arc::new(config), ServerName::try_from("localhost").unwrap())
            .unwrap();
    let mut tls = rustls::StreamOwned::new(conn, connect(addr));
    tls.write_all(b"GET 300\n").unwrap();
    let mut got = vec![0u8; want];
    tls.read_exact(&mut got).unwrap();
    (tls.conn.alpn_protocol().map(<[u8]>::to_vec), got)
}

#[test]
fn alpn_picks_the_codec_after_the_handshake() {
    let cert = TestCert::new("service-api-alpn");
    let mut settings = cert.settings();
    settings.alpn = vec![stream::ALPN_STREAM.to_vec(), stream::ALPN_ECHO.to_vec()];
    let server = Running::start(
        Server::builder().config(Config::default()),
        Some(settings.build().unwrap()),
        stream::Stream::default,
    );
    let (agreed, got) = alpn_exchange(server.addr, &cert, Some(stream::ALPN_STREAM), 300);
    assert_eq!(agreed.as_deref(), Some(stream::ALPN_STREAM));
    assert_eq!(
        got,
        stream::pattern(0, 300),
        "stream/1 speaks the line protocol"
    );
    let (agreed, got) = alpn_exchange(server.addr, &cert, Some(stream::ALPN_ECHO), 8);
    assert_eq!(agreed.as_deref(), Some(stream::ALPN_ECHO));
    assert_eq!(got, b"GET 300\n", "echo/1 echoes");
    let (agreed, got) = alpn_exchange(server.addr, &cert, None, 8);
    assert_eq!(agreed, None);
    assert_eq!(got, b"GET 300\n", "no ALPN echoes");
    let report = server.stop();
    assert_eq!(report.service.opened, [1, 2], "by protocol: lines, echo");
    assert_eq!(report.stats.handshakes_ok, 3);
}

// ---------------------------------------------------------------------------
// pause_reading / resume_reading.

/// `pause` pauses the connection's reading; a posted `Resume` resumes every
/// paused one. Other lines are `<seq> <padding>`, answered `ok <seq>`.
#[derive(Debug, Default)]
struct Pausing {
    paused: Vec<ConnId>,
    /// Frames delivered to a connection while its reading was paused.
    delivered_while_paused: u64,
    frames: u64,
}

struct Resume;

impl Service for Pausing {
    type Codec = Lines;
    type ConnState = bool;
    type Command = Resume;

    fn codec(&mut self, _: &baton::ConnInfo) -> Lines {
        Lines
    }

    fn on_open(&mut self, _: &mut Ctx<'_, Self>, _: ConnId) -> bool {
        false
    }

    fn on_frame(
        &mut self,
        ctx: &mut Ctx<'_, Self>,
        conn: ConnId,
        paused: &mut bool,
        line: Vec<u8>,
    ) {
        if *paused {
            self.delivered_while_paused += 1;
        }
        if line == b"pause" {
            assert!(ctx.pause_reading(conn));
            *paused = true;
            self.paused.push(conn);
            let _ = ctx.send(conn, b"paused".to_vec());
            return;
        }
        self.frames += 1;
        let seq = line.split(|&b| b == b' ').next().unwrap_or_default();
        let mut reply = b"ok ".to_vec();
        reply.extend_from_slice(seq);
        let _ = ctx.send(conn, reply);
    }

    fn on_command(&mut self, ctx: &mut Ctx<'_, Self>, _: Resume) {
        for conn in std::mem::take(&mut self.paused) {
            if let Some(paused) = ctx.state(conn) {
                *paused = false;
                assert!(ctx.resume_reading(conn));
            }
        }
    }
}

#[test]
fn paused_reading_holds_the_client_back_and_resumes_in_order() {
    let server = Running::plain(Config::default(), Pausing::default);
    let mut client = connect(server.addr);
    let padding = "p".repeat(1000);
    // Lines right behind `pause`, read and decoded with it: they must wait.
    let first = format!("pause\n0 {padding}\n1 {padding}\n2 {padding}\n");
    client.write_all(first.as_bytes()).unwrap();
    assert_eq!(read_line(&mut client), "paused");
    // Write until TCP flow control stops the client: the server reads
    // nothing while paused, so its buffers and then ours fill up.
    client.set_nonblocking(true).unwrap();
    let started = Instant::now();
    let mut lines = 3u64;
    let mut unsent: Vec<u8> = Vec::new();
    loop {
        assert!(
            started.elapsed() < IO_TIMEOUT,
            "the client's writes never blocked: {lines} lines written while paused"
        );
        assert!(lines < 1_000_000, "1 GB written and never blocked");
        if unsent.is_empty() {
            unsent = format!("{lines} {padding}\n").into_bytes();
            lines += 1;
        }
        match client.write(&unsent) {
            Ok(n) => drop(unsent.drain(..n)),
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => panic!("write failed: {e}"),
        }
    }
    // Still blocked a while later, and nothing was delivered meanwhile.
    std::thread::sleep(Duration::from_millis(200));
    let stats = server.stats();
    assert_eq!(stats.frames_in, 1, "only `pause` was delivered");
    assert!(
        stats.bytes_in <= first.len() as u64,
        "{} bytes read while paused",
        stats.bytes_in - first.len() as u64
    );
    server.handle.post(Resume).ok().unwrap();
    client.set_nonblocking(false).unwrap();
    client.write_all(&unsent).unwrap();
    for seq in 0..lines {
        assert_eq!(read_line(&mut client), format!("ok {seq}"));
    }
    drop(client);
    server.wait_for("closed", IO_TIMEOUT, |s| s.connections_open == 0);
    let report = server.stop();
    assert_eq!(report.service.delivered_while_paused, 0);
    assert_eq!(report.service.frames, lines);
    assert!(lines > 100, "only {lines} lines fit before blocking");
    eprintln!("{lines} lines of 1 KB were written before the paused connection blocked");
}

// ---------------------------------------------------------------------------
// Connection timers.

/// `arm <ms> <token>` sets a connection timer; when it fires the service
/// sends `fired <token> <frames so far>` (the state it was handed).
#[derive(Debug, Default)]
struct Timers {
    fired: Vec<u64>,
}

impl Service for Timers {
    type Codec = Lines;
    type ConnState = u64;
    type Command = ();

    fn codec(&mut self, _: &baton::ConnInfo) -> Lines {
        Lines
    }

    fn on_open(&mut self, _: &mut Ctx<'_, Self>, _: ConnId) -> u64 {
        0
    }

    fn on_frame(&mut self, ctx: &mut Ctx<'_, Self>, conn: ConnId, frames: &mut u64, line: Vec<u8>) {
        *frames += 1;
        let line = String::from_utf8(line).unwrap();
        let mut words = line.split(' ');
        assert_eq!(words.next(), Some("arm"));
        let ms: u64 = words.next().unwrap().parse().unwrap();
        let token: u64 = words.next().unwrap().parse().unwrap();
        ctx.set_conn_timer(conn, Duration::from_millis(ms), token)
            .unwrap();
        let _ = ctx.send(conn, b"armed".to_vec());
    }

    fn on_conn_timer(
        &mut self,
        ctx: &mut Ctx<'_, Self>,
        conn: ConnId,
        frames: &mut u64,
        token: u64,
    ) {
        self.fired.push(token);
        let _ = ctx.send(conn, format!("fired {token} {frames}").into_bytes());
    }
}

#[test]
fn a_conn_timer_fires_with_the_state_and_never_after_its_connection_closed() {
    let server = Running::plain(Config::default(), Timers::default);
    let mut a = connect(server.addr);
    assert_eq!(request(&mut a, "arm 20 7"), "armed");
    assert_eq!(read_line(&mut a), "fired 7 1");
    let mut b = connect(server.addr);
    assert_eq!(request(&mut b, "arm 300 9"), "armed");
    drop(b);
    server.wait_for("b closed", IO_TIMEOUT, |s| s.connections_open == 1);
    // A new connection may take b's slot; b's timer must not reach it.
    let mut c = connect(server.addr);
    assert_eq!(request(&mut c, "arm 1000 11"), "armed");
    // Past b's deadline, and a's next timer set after it fires after it.
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(request(&mut a, "arm 10 8"), "armed");
    assert_eq!(read_line(&mut a), "fired 8 2");
    assert_eq!(read_line(&mut c), "fired 11 1");
    let report = server.stop();
    assert_eq!(report.service.fired, [7, 8, 11], "b's timer (9) fired");
}

// ---------------------------------------------------------------------------
// conn_info for a connection that is on an IO thread.

/// The first connection to send `sink` becomes the sink (its later lines are
/// ignored); `probe` from any other connection asks `conn_info` about the
/// sink and learns whether it was away by sending it an empty line (counted
/// in `sends_while_away` only if it is).
#[derive(Debug, Default)]
struct Probe {
    sink: Option<(ConnId, SocketAddr)>,
    probes: u64,
    away: u64,
    /// Probes where `conn_info` was missing or named another peer.
    wrong: u64,
}

impl Service for Probe {
    type Codec = Lines;
    type ConnState = ();
    type Command = ();

    fn codec(&mut self, _: &baton::ConnInfo) -> Lines {
        Lines
    }

    fn on_open(&mut self, _: &mut Ctx<'_, Self>, _: ConnId) {}

    fn on_frame(&mut self, ctx: &mut Ctx<'_, Self>, conn: ConnId, _: &mut (), line: Vec<u8>) {
        if line.starts_with(b"sink") {
            if self.sink.is_none() {
                let peer = ctx.conn_info(conn).unwrap().peer;
                self.sink = Some((conn, peer));
            }
            return;
        }
        let (sink, peer) = self.sink.expect("a sink before probes");
        self.probes += 1;
        let before = ctx.stats().sends_while_away;
        let info_ok = ctx.conn_info(sink).is_some_and(|i| i.peer == peer);
        ctx.send(sink, Vec::new()).unwrap();
        let away = ctx.stats().sends_while_away > before;
        self.away += u64::from(away);
        self.wrong += u64::from(!info_ok);
        let reply = format!("{} {}", u8::from(away), u8::from(info_ok));
        let _ = ctx.send(conn, reply.into_bytes());
    }
}

#[test]
fn conn_info_answers_for_a_connection_on_an_io_thread() {
    let config = Config::default().io_activation(IoActivation::Always);
    let server = Running::start(
        Server::builder().io_threads(1).config(config),
        None,
        Probe::default,
    );
    let mut sink = connect(server.addr);
    sink.write_all(b"sink\n").unwrap();
    server.wait_for("the sink", IO_TIMEOUT, |s| s.frames_in == 1);
    // Keep the sink busy on the IO thread: a writer that never stops, and a
    // reader taking the empty lines the probes send it.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let mut sink = sink.try_clone().unwrap();
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let line = format!("sink {}\n", "s".repeat(16 << 10));
            while !stop.load(Ordering::Relaxed) {
                if sink.write_all(line.as_bytes()).is_err() {
                    break;
                }
            }
        })
    };
    let reader = {
        let mut sink = sink.try_clone().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while matches!(sink.read(&mut buf), Ok(n) if n > 0) {}
        })
    };
    let mut prober = connect(server.addr);
    let started = Instant::now();
    let (mut probes, mut away) = (0u64, 0u64);
    while away < 50 {
        assert!(
            started.elapsed() < Duration::from_secs(60) && probes < 100_000,
            "the sink was seen away only {away} times in {probes} probes"
        );
        let reply = request(&mut prober, "probe");
        probes += 1;
        let (was_away, info_ok) = reply.split_once(' ').unwrap();
        assert_eq!(
            info_ok, "1",
            "conn_info missing or wrong (away: {was_away})"
        );
        away += u64::from(was_away == "1");
    }
    stop.store(true, Ordering::Relaxed);
    sink.shutdown(std::net::Shutdown::Both).unwrap();
    writer.join().unwrap();
    reader.join().unwrap();
    drop(prober);
    let report = server.stop();
    assert_eq!(report.service.wrong, 0);
    assert_eq!(report.service.probes, probes);
    assert!(report.service.away >= 50);
    eprintln!("{away} of {probes} probes found the sink on the IO thread");
}

// ---------------------------------------------------------------------------
// A panic in on_timer.

/// Timer 1 panics; timer 2, due later, records that it ran. Lines echo.
#[derive(Debug, Default)]
struct PanickyTimer {
    fired: Vec<u64>,
}

impl Service for PanickyTimer {
    type Codec = Lines;
    type ConnState = ();
    type Command = ();

    fn codec(&mut self, _: &baton::ConnInfo) -> Lines {
        Lines
    }

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        ctx.set_timer(Duration::from_millis(10), 1);
        ctx.set_timer(Duration::from_millis(40), 2);
    }

    fn on_open(&mut self, _: &mut Ctx<'_, Self>, _: ConnId) {}

    fn on_frame(&mut self, ctx: &mut Ctx<'_, Self>, conn: ConnId, _: &mut (), line: Vec<u8>) {
        let _ = ctx.send(conn, line);
    }

    fn on_timer(&mut self, _: &mut Ctx<'_, Self>, _: baton::TimerId, token: u64) {
        if token == 1 {
            panic!("on_timer told to panic (expected by the test)");
        }
        self.fired.push(token);
    }
}

#[test]
fn a_panic_in_on_timer_is_counted_and_the_loop_goes_on() {
    let server = Running::plain(Config::default(), PanickyTimer::default);
    server.wait_for("the panic", IO_TIMEOUT, |s| s.service_panics == 1);
    let mut client = connect(server.addr);
    assert_eq!(request(&mut client, "still here"), "still here");
    std::thread::sleep(Duration::from_millis(60));
    drop(client);
    let report = server.stop();
    assert_eq!(report.stats.service_panics, 1);
    assert_eq!(report.service.fired, [2], "the later timer ran");
}

// ---------------------------------------------------------------------------
// Builder::io_threads against .config, in either order.

fn io_threads_in_use(builder: Builder) -> (usize, StatsSnapshot) {
    let server = Running::start(builder, None, OpenClose::default);
    // Two connections: slots 0 and 1, so with two threads each gets work.
    let mut a = connect(server.addr);
    let mut b = connect(server.addr);
    for i in 0..20 {
        let line = format!("line {i}");
        assert_eq!(request(&mut a, &line), line);
        assert_eq!(request(&mut b, &line), line);
    }
    let stats = server.stats();
    drop((a, b));
    let _ = server.stop();
    (stats.io_threads.len(), stats)
}

#[test]
fn io_threads_given_to_the_builder_wins_over_config_in_either_order() {
    let always = Config::default().io_activation(IoActivation::Always);
    let five = always.clone().io_threads(5);
    for (what, builder) in [
        (
            "io_threads(2).config(default)",
            Server::builder().io_threads(2).config(always.clone()),
        ),
        (
            "config(io_threads: 5).io_threads(2)",
            Server::builder().config(five.clone()).io_threads(2),
        ),
        (
            "io_threads(2).config(io_threads: 5)",
            Server::builder().io_threads(2).config(five.clone()),
        ),
    ] {
        let (threads, stats) = io_threads_in_use(builder);
        assert_eq!(threads, 2, "{what}");
        assert!(stats.jobs_dispatched > 0, "{what}: {stats:?}");
        assert!(
            stats.io_threads.iter().all(|w| w.jobs > 0),
            "{what}: every IO thread ran jobs: {:?}",
            stats.io_threads
        );
    }
    let (threads, _) = io_threads_in_use(Server::builder().config(five));
    assert_eq!(
        threads, 5,
        "without io_threads(n) the config's count applies"
    );
}

// ---------------------------------------------------------------------------
// A failed TLS handshake never opens.

/// Counts `codec`, `on_open` and `on_close` calls; lines echo.
#[derive(Debug, Default)]
struct OpenClose {
    codecs: u64,
    opens: u64,
    closes: u64,
}

impl Service for OpenClose {
    type Codec = Lines;
    type ConnState = ();
    type Command = ();

    fn codec(&mut self, _: &baton::ConnInfo) -> Lines {
        self.codecs += 1;
        Lines
    }

    fn on_open(&mut self, _: &mut Ctx<'_, Self>, _: ConnId) {
        self.opens += 1;
    }

    fn on_frame(&mut self, ctx: &mut Ctx<'_, Self>, conn: ConnId, _: &mut (), line: Vec<u8>) {
        let _ = ctx.send(conn, line);
    }

    fn on_close(&mut self, _: &mut Ctx<'_, Self>, _: ConnId, _: (), _: CloseReason) {
        self.closes += 1;
    }
}

#[test]
fn a_tls_connection_whose_handshake_fails_never_opens_or_closes_to_the_service() {
    let cert = TestCert::new("service-api-handshake");
    let stranger = TestCert::new("service-api-stranger");
    let server = Running::start(
        Server::builder().config(Config::default()),
        Some(cert.server_config()),
        OpenClose::default,
    );
    // Not TLS at all.
    let mut plain = connect(server.addr);
    plain.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    // A client that does not trust the certificate: it aborts with an alert.
    let untrusting = baton::tls::client_config_trusting(&stranger.cert, &[]).unwrap();
    let conn = rustls::ClientConnection::new(
        Arc::new(untrusting),
        ServerName::try_from("localhost").unwrap(),
    )
    .unwrap();
    let mut refused = rustls::StreamOwned::new(conn, connect(server.addr));
    assert!(refused
        .write_all(b"hi\n")
        .and_then(|_| refused.flush())
        .is_err());
    // Gone in the middle of the handshake.
    drop(connect(server.addr));
    server.wait_for("three failed handshakes", IO_TIMEOUT, |s| {
        s.handshakes_failed == 3 && s.connections_open == 0
    });
    drop((plain, refused));
    // A good one opens and closes once.
    let good = baton::tls::client_config_trusting(&cert.cert, &[]).unwrap();
    let conn =
        rustls::ClientConnection::new(Arc::new(good), ServerName::try_from("localhost").unwrap())
            .unwrap();
    let mut tls = rustls::StreamOwned::new(conn, connect(server.addr));
    tls.write_all(b"hello\n").unwrap();
    assert_eq!(read_line(&mut tls), "hello");
    drop(tls);
    server.wait_for("the good one closed", IO_TIMEOUT, |s| {
        s.connections_open == 0 && s.handshakes_ok == 1
    });
    let report = server.stop();
    let s = &report.service;
    assert_eq!((s.codecs, s.opens, s.closes), (1, 1, 1), "{s:?}");
    assert_eq!(report.stats.handshakes_failed, 3);
}
