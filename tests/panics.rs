//! A panic in a codec (on an IO thread, inline, or in a method the loop
//! calls) or in service code closes only that connection; it is counted and
//! the loop goes on.

mod util;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use baton::{
    CloseReason, Codec, Config, ConnId, ConnInfo, Ctx, IoActivation, ProtocolError, RecvBuf,
    Service,
};
use util::lines::Lines;
use util::{spawn_server, TestServer};

/// Echoes lines; panics on the line `BOOM`. (The codec panics on `PANIC`.)
struct Fragile;

impl Service for Fragile {
    type Codec = Lines;
    type ConnState = ();
    type Command = ();

    fn on_open(&mut self, _: &mut Ctx<'_, Self>, _: ConnId) {}
    fn codec(&mut self, _: &ConnInfo) -> Lines {
        Lines
    }
    fn on_frame(&mut self, ctx: &mut Ctx<'_, Self>, conn: ConnId, _: &mut (), line: Vec<u8>) {
        assert!(line != b"BOOM", "service told to panic");
        let _ = ctx.send(conn, line);
    }
}

fn roundtrip(stream: &mut BufReader<TcpStream>, line: &str) {
    stream
        .get_mut()
        .write_all(format!("{line}\n").as_bytes())
        .unwrap();
    let mut back = String::new();
    stream.read_line(&mut back).unwrap();
    assert_eq!(back, format!("{line}\n"));
}

fn expect_closed(stream: &mut TcpStream) {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 64];
    match stream.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        other => panic!("expected the server to close the connection, got {other:?}"),
    }
}

fn a_panic_closes_only_its_connection(io_threads: usize, trigger: &str, reason: CloseReason) {
    let server = spawn_server(
        Config::default()
            .io_threads(io_threads)
            .io_activation(IoActivation::Always),
        || Fragile,
    );
    let mut bystanders: Vec<_> = (0..10)
        .map(|_| BufReader::new(TcpStream::connect(server.addr).unwrap()))
        .collect();
    for b in &mut bystanders {
        roundtrip(b, "before");
    }
    let mut victim = TcpStream::connect(server.addr).unwrap();
    victim.write_all(format!("{trigger}\n").as_bytes()).unwrap();
    expect_closed(&mut victim);
    server.wait_for("the close to be counted", Duration::from_secs(10), |s| {
        s.closed_for(&reason) == 1
    });
    for b in &mut bystanders {
        roundtrip(b, "after");
    }
    let report = server.stop(Duration::from_secs(5));
    assert_eq!(report.stats.closed_for(&reason), 1);
    assert_eq!(
        report.stats.service_panics,
        u64::from(reason == CloseReason::ServicePanic)
    );
}

#[test]
fn codec_panic_inline_closes_only_that_connection() {
    a_panic_closes_only_its_connection(0, "PANIC", CloseReason::CodecPanic);
}

#[test]
fn codec_panic_on_an_io_thread_closes_only_that_connection() {
    a_panic_closes_only_its_connection(2, "PANIC", CloseReason::CodecPanic);
}

#[test]
fn service_panic_closes_only_that_connection() {
    a_panic_closes_only_its_connection(0, "BOOM", CloseReason::ServicePanic);
    a_panic_closes_only_its_connection(2, "BOOM", CloseReason::ServicePanic);
}

// Every other codec or service method the loop itself calls (not an IO
// step): each panic closes the connection it was about, with the reason
// that names whose code panicked, and the loop goes on.

/// Lines, with a panic on request in every method the loop calls:
/// * `error_frame` always panics (the line `BAD` is a protocol error);
/// * `encoded_len` panics for the frame `LENPANIC`, and for `TWICE` from its
///   second call on;
/// * the line `SLOW` holds the IO step 300 ms (so the connection is away);
/// * after the line `DROP`, dropping the codec panics.
struct Touchy {
    drop_panics: bool,
}

/// `encoded_len` calls for the frame `TWICE` (one test uses it).
static TWICE_CALLS: AtomicUsize = AtomicUsize::new(0);
/// A `SLOW` line is being decoded.
static SLOW_STARTED: AtomicBool = AtomicBool::new(false);

impl Codec for Touchy {
    type In = Vec<u8>;
    type Out = Vec<u8>;

    fn decode(&mut self, src: &mut RecvBuf) -> Result<Option<Vec<u8>>, ProtocolError> {
        let Some(end) = src.as_slice().iter().position(|&b| b == b'\n') else {
            return Ok(None);
        };
        let line = src.as_slice()[..end].to_vec();
        src.consume(end + 1);
        match &line[..] {
            b"BAD" => return Err(ProtocolError::malformed("told to fail")),
            b"SLOW" => {
                SLOW_STARTED.store(true, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(300));
            }
            b"DROP" => self.drop_panics = true,
            _ => {}
        }
        Ok(Some(line))
    }

    fn encode(&mut self, mut line: Vec<u8>, dst: &mut Vec<u8>) {
        line.push(b'\n');
        dst.extend_from_slice(&line);
    }

    fn encoded_len(line: &Vec<u8>) -> usize {
        assert!(line != b"LENPANIC", "encoded_len told to panic");
        if line == b"TWICE" {
            assert!(
                TWICE_CALLS.fetch_add(1, Ordering::SeqCst) == 0,
                "encoded_len told to panic the second time"
            );
        }
        line.len() + 1
    }

    fn error_frame(&mut self, _: &ProtocolError) -> Option<Vec<u8>> {
        panic!("error_frame told to panic");
    }
}

impl Drop for Touchy {
    fn drop(&mut self) {
        if self.drop_panics && !std::thread::panicking() {
            panic!("codec drop told to panic");
        }
    }
}

/// What the test posts to the loop: a frame for the registered connection.
#[derive(Debug)]
enum Push {
    Len,
    Twice,
}

/// Echoes lines; `ME` registers the connection as the target of pushes;
/// `Service::codec` panics while `codec_panics` is set.
struct Picky {
    codec_panics: Arc<AtomicBool>,
    target: Option<ConnId>,
}

impl Service for Picky {
    type Codec = Touchy;
    type ConnState = ();
    type Command = Push;

    fn on_open(&mut self, _: &mut Ctx<'_, Self>, _: ConnId) {}
    fn codec(&mut self, _: &ConnInfo) -> Touchy {
        assert!(
            !self.codec_panics.load(Ordering::SeqCst),
            "Service::codec told to panic"
        );
        Touchy { drop_panics: false }
    }
    fn on_frame(&mut self, ctx: &mut Ctx<'_, Self>, conn: ConnId, _: &mut (), line: Vec<u8>) {
        if line == b"ME" {
            self.target = Some(conn);
        }
        let _ = ctx.send(conn, line);
    }
    fn on_command(&mut self, ctx: &mut Ctx<'_, Self>, push: Push) {
        let target = self.target.expect("a connection registered");
        let frame = match push {
            Push::Len => b"LENPANIC".to_vec(),
            Push::Twice => b"TWICE".to_vec(),
        };
        let _ = ctx.send(target, frame);
    }
}

/// Starts a `Picky` server with ten bystanders, lets `offend` make one
/// connection's codec or service code panic and return that connection,
/// then checks: it is closed and counted for `reason`, `service_panics` is
/// as expected, the bystanders are still served, and at the end every
/// connection is closed and counted once.
fn user_code_panic_on_the_loop(
    io_threads: usize,
    reason: CloseReason,
    service_panics: u64,
    offend: impl FnOnce(&TestServer<Push>, &AtomicBool) -> TcpStream,
) {
    let codec_panics = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&codec_panics);
    let server = spawn_server(
        Config::default()
            .io_threads(io_threads)
            .io_activation(IoActivation::Always),
        move || Picky {
            codec_panics: flag,
            target: None,
        },
    );
    let mut bystanders: Vec<_> = (0..10)
        .map(|_| BufReader::new(TcpStream::connect(server.addr).unwrap()))
        .collect();
    for b in &mut bystanders {
        roundtrip(b, "before");
    }
    let mut victim = offend(&server, &codec_panics);
    expect_closed(&mut victim);
    server.wait_for("the close to be counted", Duration::from_secs(10), |s| {
        s.closed_for(&reason) == 1
    });
    for b in &mut bystanders {
        roundtrip(b, "after");
    }
    // Stopped before the bystanders hang up: their FINs must not race the
    // count (they close as `Shutdown`, never as the reason under test).
    let report = server.stop(Duration::from_secs(5));
    drop(bystanders);
    assert_eq!(report.stats.closed_for(&reason), 1);
    assert_eq!(report.stats.service_panics, service_panics);
    assert_eq!(report.stats.connections_open, 0);
    assert_eq!(
        report.stats.closed_total(),
        report.stats.connections_accepted,
        "every connection closed and counted once"
    );
}

/// A connection that has exchanged `line` with the server.
fn talked(server: &TestServer<Push>, line: &str) -> TcpStream {
    let mut stream = BufReader::new(TcpStream::connect(server.addr).unwrap());
    roundtrip(&mut stream, line);
    stream.into_inner()
}

fn error_frame_panic(io_threads: usize) {
    user_code_panic_on_the_loop(io_threads, CloseReason::CodecPanic, 0, |server, _| {
        let mut victim = talked(server, "hello");
        victim.write_all(b"BAD\n").unwrap();
        victim
    });
}

#[test]
fn error_frame_panic_closes_only_that_connection() {
    error_frame_panic(0);
    error_frame_panic(2);
}

fn encoded_len_panic_in_a_reply(io_threads: usize) {
    user_code_panic_on_the_loop(io_threads, CloseReason::CodecPanic, 0, |server, _| {
        let mut victim = talked(server, "hello");
        victim.write_all(b"LENPANIC\n").unwrap();
        victim
    });
}

#[test]
fn encoded_len_panic_in_a_reply_is_the_codecs_not_the_services() {
    encoded_len_panic_in_a_reply(0);
    encoded_len_panic_in_a_reply(2);
}

fn encoded_len_panic_in_a_push(io_threads: usize) {
    user_code_panic_on_the_loop(io_threads, CloseReason::CodecPanic, 0, |server, _| {
        let victim = talked(server, "ME");
        server.handle.post(Push::Len).unwrap();
        victim
    });
}

#[test]
fn encoded_len_panic_in_a_push_closes_the_connection_it_was_for() {
    encoded_len_panic_in_a_push(0);
    encoded_len_panic_in_a_push(2);
}

#[test]
fn encoded_len_panic_joining_output_sent_while_away_closes_that_connection() {
    // Only with IO threads is a connection ever away.
    user_code_panic_on_the_loop(2, CloseReason::CodecPanic, 0, |server, _| {
        let mut victim = talked(server, "ME");
        victim.write_all(b"SLOW\n").unwrap();
        while !SLOW_STARTED.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(1));
        }
        // Its IO step holds it for 300 ms: the frame waits beside it.
        server.handle.post(Push::Twice).unwrap();
        server.wait_for("a send while away", Duration::from_secs(10), |s| {
            s.sends_while_away == 1
        });
        victim
    });
}

fn service_codec_panic(io_threads: usize) {
    user_code_panic_on_the_loop(
        io_threads,
        CloseReason::ServicePanic,
        1,
        |server, codec_panics| {
            codec_panics.store(true, Ordering::SeqCst);
            let victim = TcpStream::connect(server.addr).unwrap();
            server.wait_for("the rejection", Duration::from_secs(10), |s| {
                s.closed_for(&CloseReason::ServicePanic) == 1
            });
            codec_panics.store(false, Ordering::SeqCst);
            victim
        },
    );
}

#[test]
fn service_codec_panic_closes_only_that_connection() {
    service_codec_panic(0);
    service_codec_panic(2);
}

fn codec_drop_panic(io_threads: usize) {
    user_code_panic_on_the_loop(io_threads, CloseReason::PeerClosed, 0, |server, _| {
        let victim = talked(server, "DROP");
        victim.shutdown(std::net::Shutdown::Write).unwrap();
        victim
    });
}

#[test]
fn codec_drop_panic_does_not_take_the_loop_down() {
    codec_drop_panic(0);
    codec_drop_panic(2);
}
