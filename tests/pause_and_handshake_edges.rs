//! Edges of the service API an independent review found broken: frames held
//! by `pause_reading` must be delivered after `resume_reading` with no new
//! input and must survive the peer's FIN read in the same step; application
//! data that arrives with the last TLS handshake flight is decoded once the
//! codec exists, and is not mistaken for one oversized frame.

mod util;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use baton::tls::rustls;
use baton::tls::rustls::pki_types::ServerName;
use baton::{CloseReason, Config, ConnId, Ctx, IoActivation, Server, Service};
use util::lines::Lines;
use util::TestCert;

const IO_TIMEOUT: Duration = Duration::from_secs(3);

fn start<S: Service>(
    config: Config,
    tls: Option<Arc<rustls::ServerConfig>>,
    make: impl FnOnce() -> S + Send + 'static,
) -> (SocketAddr, baton::LoopHandle<S::Command>) {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let addr = "127.0.0.1:0".parse().unwrap();
        let b = Server::builder().config(config);
        let b = match tls {
            Some(t) => b.listen_tls(addr, t),
            None => b.listen(addr),
        };
        let server = b.build(make()).unwrap();
        tx.send((server.local_addrs()[0], server.handle())).unwrap();
        let _ = server.run();
    });
    rx.recv().unwrap()
}

fn read_all_lines(stream: &mut TcpStream, want: usize) -> Vec<String> {
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if buf.iter().filter(|&&b| b == b'\n').count() >= want {
            break;
        }
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => break, // timeout
        }
    }
    String::from_utf8_lossy(&buf)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// `pause` pauses reading and arms a 50 ms conn timer that resumes it;
/// other lines are echoed as `ok <line>`.
#[derive(Default)]
struct PauseThenResume;

impl Service for PauseThenResume {
    type Codec = Lines;
    type ConnState = ();
    type Command = ();
    fn codec(&mut self, _: &baton::ConnInfo) -> Lines {
        Lines
    }
    fn on_open(&mut self, _: &mut Ctx<'_, Self>, _: ConnId) {}
    fn on_frame(&mut self, ctx: &mut Ctx<'_, Self>, conn: ConnId, _: &mut (), line: Vec<u8>) {
        if line == b"pause" {
            ctx.pause_reading(conn);
            ctx.set_conn_timer(conn, Duration::from_millis(50), 0)
                .unwrap();
            let _ = ctx.send(conn, b"paused".to_vec());
            return;
        }
        let mut reply = b"ok ".to_vec();
        reply.extend_from_slice(&line);
        let _ = ctx.send(conn, reply);
    }
    fn on_conn_timer(&mut self, ctx: &mut Ctx<'_, Self>, conn: ConnId, _: &mut (), _: u64) {
        ctx.resume_reading(conn);
    }
}

/// Frames decoded with `pause` must be delivered once reading resumes, even
/// when the client sends nothing more (it waits for the replies).
#[test]
fn frames_held_by_pause_are_delivered_after_resume_without_new_input() {
    let (addr, _h) = start(Config::default(), None, || PauseThenResume);
    let mut c = TcpStream::connect(addr).unwrap();
    c.write_all(b"pause\nA\nB\n").unwrap();
    let got = read_all_lines(&mut c, 3);
    assert_eq!(got, ["paused", "ok A", "ok B"]);
}

/// Same, but the client half-closes right after: requests before the FIN
/// are still to be served.
#[test]
fn frames_held_by_pause_survive_a_half_close() {
    let (addr, _h) = start(Config::default(), None, || PauseThenResume);
    let mut c = TcpStream::connect(addr).unwrap();
    c.write_all(b"pause\nA\nB\n").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let got = read_all_lines(&mut c, 3);
    assert_eq!(got, ["paused", "ok A", "ok B"]);
}

/// Echoes lines; counts opens and closes.
struct Echo;

impl Service for Echo {
    type Codec = Lines;
    type ConnState = ();
    type Command = ();
    fn codec(&mut self, _: &baton::ConnInfo) -> Lines {
        Lines
    }
    fn on_open(&mut self, _: &mut Ctx<'_, Self>, _: ConnId) {}
    fn on_frame(&mut self, ctx: &mut Ctx<'_, Self>, conn: ConnId, _: &mut (), line: Vec<u8>) {
        let _ = ctx.send(conn, line);
    }
    fn on_close(&mut self, _: &mut Ctx<'_, Self>, _: ConnId, _: (), _: CloseReason) {}
}

/// Drives a TLS 1.3 handshake by hand so the client's Finished and `data`
/// (and, with `fin`, the TCP FIN) reach the server in one write; returns
/// the plaintext lines that came back.
fn tls_with_data_in_last_flight(
    addr: SocketAddr,
    cert: &TestCert,
    data: &[u8],
    fin: bool,
    want: usize,
) -> Vec<String> {
    let config = baton::tls::client_config_trusting(&cert.cert, &[]).unwrap();
    let mut conn =
        rustls::ClientConnection::new(Arc::new(config), ServerName::try_from("localhost").unwrap())
            .unwrap();
    let mut sock = TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut out = Vec::new();
    conn.write_tls(&mut out).unwrap();
    sock.write_all(&out).unwrap();
    while conn.is_handshaking() {
        conn.read_tls(&mut sock).unwrap();
        conn.process_new_packets().unwrap();
    }
    conn.writer().write_all(data).unwrap();
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out).unwrap();
    }
    sock.write_all(&out).unwrap();
    if fin {
        sock.shutdown(Shutdown::Write).unwrap();
    }
    let mut plain = Vec::new();
    let started = Instant::now();
    while plain.iter().filter(|&&b| b == b'\n').count() < want && started.elapsed() < IO_TIMEOUT {
        match conn.read_tls(&mut sock) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if conn.process_new_packets().is_err() {
            break;
        }
        let mut buf = [0u8; 4096];
        while let Ok(n) = conn.reader().read(&mut buf) {
            if n == 0 {
                break;
            }
            plain.extend_from_slice(&buf[..n]);
        }
    }
    String::from_utf8_lossy(&plain)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn tls_case(config: Config, data: &[u8], fin: bool, want: &[&str]) {
    let cert = TestCert::new("review-probe");
    let (addr, h) = start(config, Some(cert.server_config()), || Echo);
    let got = tls_with_data_in_last_flight(addr, &cert, data, fin, want.len());
    std::thread::sleep(Duration::from_millis(200));
    let s = h.stats();
    let closed: Vec<_> = CloseReason::NAMES
        .iter()
        .zip(s.closed)
        .filter(|(_, n)| *n > 0)
        .collect();
    assert_eq!(got, want, "closed: {closed:?} open {}", s.connections_open);
}

#[test]
fn tls_data_with_the_finished_flight_is_served_inline() {
    tls_case(Config::default(), b"A\nB\n", false, &["A", "B"]);
}

#[test]
fn tls_data_with_the_finished_flight_then_fin_is_served_inline() {
    tls_case(Config::default(), b"A\nB\n", true, &["A", "B"]);
}

#[test]
fn tls_data_with_the_finished_flight_then_fin_is_served_on_io_threads() {
    let config = Config::default()
        .io_threads(1)
        .io_activation(IoActivation::Always);
    tls_case(config, b"A\nB\n", true, &["A", "B"]);
}

/// Many small frames in the last flight are not one frame too large.
#[test]
fn tls_small_frames_with_the_finished_flight_are_not_too_large() {
    let config = Config::default().max_frame_size(16);
    let data = "abcd\n".repeat(10);
    let want = vec!["abcd"; 10];
    tls_case(config, data.as_bytes(), false, &want);
}

/// The FIN read in the same step as the frames behind `pause` (the client
/// writes to an idle connection, data and FIN back to back, so the loop's
/// wake-up usually reports both): those frames must still be served.
#[test]
fn frames_held_by_pause_survive_a_fin_read_in_the_same_step() {
    let (addr, h) = start(Config::default(), None, || PauseThenResume);
    let mut lost = 0;
    for _ in 0..20 {
        let mut c = TcpStream::connect(addr).unwrap();
        std::thread::sleep(Duration::from_millis(30));
        c.write_all(b"pause\nA\nB\n").unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        let got = read_all_lines(&mut c, 3);
        if got != ["paused", "ok A", "ok B"] {
            lost += 1;
            eprintln!("got {got:?}");
        }
    }
    let s = h.stats();
    let closed: Vec<_> = CloseReason::NAMES
        .iter()
        .zip(s.closed)
        .filter(|(_, n)| *n > 0)
        .collect();
    assert_eq!(lost, 0, "{lost} of 20 lost frames; closed {closed:?}");
}
