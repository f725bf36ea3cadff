//! A panic on an IO thread *outside* `Conn::run_step`'s own `catch_unwind`
//! (here: a user's tracing layer that panics when the connection's span is
//! entered) must not lose the connection: it comes home, is closed with a
//! counted reason, its slot is freed (it no longer counts against
//! `max_connections`), the other connections go on, and `run()` returns on
//! shutdown.
//!
//! Its own test binary: the panicking layer is the process's global
//! subscriber.

mod util;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::mem::ManuallyDrop;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use baton::{CloseReason, Config, ConnId, ConnInfo, Ctx, IoActivation, Service};
use tracing::span::{Attributes, Id};
use tracing::{field, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;
use util::lines::Lines;
use util::spawn_server;

/// The peer address (as the `conn` span records it) whose span must panic
/// when entered on an IO thread.
static VICTIM: Mutex<Option<String>> = Mutex::new(None);
/// Set by the one panic the layer throws on an IO thread.
static FIRED: AtomicBool = AtomicBool::new(false);
/// The same for a step the loop runs itself (no IO threads).
static INLINE_VICTIM: Mutex<Option<String>> = Mutex::new(None);
static INLINE_FIRED: AtomicBool = AtomicBool::new(false);

/// The `peer` field of a `conn` span.
struct Peer(String);

struct PeerVisitor(Option<String>);

impl field::Visit for PeerVisitor {
    fn record_debug(&mut self, field: &field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "peer" {
            self.0 = Some(format!("{value:?}"));
        }
    }
}

/// Panics once, when the victim's `conn` span is entered on an IO thread:
/// outside the codec, before the step's own `catch_unwind` begins.
struct PanicOnEnter;

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for PanicOnEnter {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != "conn" {
            return;
        }
        let mut visitor = PeerVisitor(None);
        attrs.record(&mut visitor);
        if let (Some(peer), Some(span)) = (visitor.0, ctx.span(id)) {
            span.extensions_mut().insert(Peer(peer));
        }
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        let thread = std::thread::current();
        let (victim, fired) = match thread.name() {
            Some(n) if n.starts_with("baton-io") => (&VICTIM, &FIRED),
            Some("baton-loop") => (&INLINE_VICTIM, &INLINE_FIRED),
            _ => return,
        };
        let Some(span) = ctx.span(id) else { return };
        let is_victim = span
            .extensions()
            .get::<Peer>()
            .is_some_and(|p| victim.lock().unwrap().as_deref() == Some(p.0.as_str()));
        if is_victim && !fired.swap(true, Ordering::SeqCst) {
            panic!("test tracing layer panics on entering the victim's span");
        }
    }
}

struct Echo;

impl Service for Echo {
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

fn connect(addr: std::net::SocketAddr) -> BufReader<TcpStream> {
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    BufReader::new(stream)
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
    let mut buf = [0u8; 64];
    match stream.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        other => panic!("expected the server to close the connection, got {other:?}"),
    }
}

#[test]
fn a_panic_outside_the_step_on_an_io_thread_closes_only_that_connection_and_frees_its_slot() {
    let subscriber = tracing_subscriber::registry().with(PanicOnEnter);
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");

    const BYSTANDERS: usize = 2;
    // Not dropped on a failure: `TestServer`'s drop joins the loop, which
    // never returns if the bug this test looks for is back.
    let server = ManuallyDrop::new(spawn_server(
        Config::default()
            .io_threads(2)
            .io_activation(IoActivation::Always)
            // Every slot is needed: a leaked slot refuses the last client.
            .max_connections(BYSTANDERS + 1),
        || Echo,
    ));
    let mut bystanders: Vec<_> = (0..BYSTANDERS).map(|_| connect(server.addr)).collect();
    for b in &mut bystanders {
        roundtrip(b, "before");
    }

    let mut victim = connect(server.addr);
    *VICTIM.lock().unwrap() = Some(victim.get_ref().local_addr().unwrap().to_string());
    victim.get_mut().write_all(b"hello\n").unwrap();
    expect_closed(victim.get_mut());
    assert!(FIRED.load(Ordering::SeqCst), "the layer panicked");
    server.wait_for("the close to be counted", Duration::from_secs(10), |s| {
        s.closed_for(&CloseReason::CodecPanic) == 1 && s.connections_open == BYSTANDERS as u64
    });

    // The victim's slot is free: one more client fits under max_connections.
    let mut newcomer = connect(server.addr);
    roundtrip(&mut newcomer, "fits");
    for b in &mut bystanders {
        roundtrip(b, "after");
    }

    // `run()` returns: shut down, with a generous "did not hang" bound
    // before joining the loop's thread.
    server.handle.shutdown(Duration::from_secs(1));
    let start = Instant::now();
    while server.handle.is_running() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "run() did not return after shutdown: {:#?}",
            server.handle.stats()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let report = ManuallyDrop::into_inner(server).stop(Duration::ZERO);
    let stats = report.stats;
    assert_eq!(stats.closed_for(&CloseReason::CodecPanic), 1);
    assert_eq!(stats.connections_rejected, 0, "no client was refused");
    assert_eq!(stats.connections_open, 0);
    assert_eq!(
        stats.io_threads.iter().map(|w| w.panics).sum::<u64>(),
        1,
        "the IO thread counted the panic"
    );
    assert_eq!(stats.service_panics, 0);

    inline_step_panic_closes_only_that_connection();
}

/// The same panic in a step the loop runs itself (no IO threads): it used
/// to unwind the loop and end `run()`; now it closes that connection only.
/// (In the same test: the panicking layer is the process's one global
/// subscriber.)
fn inline_step_panic_closes_only_that_connection() {
    let server = ManuallyDrop::new(spawn_server(Config::default().io_threads(0), || Echo));
    let mut bystander = connect(server.addr);
    roundtrip(&mut bystander, "before");
    let mut victim = connect(server.addr);
    *INLINE_VICTIM.lock().unwrap() = Some(victim.get_ref().local_addr().unwrap().to_string());
    victim.get_mut().write_all(b"hello\n").unwrap();
    expect_closed(victim.get_mut());
    assert!(INLINE_FIRED.load(Ordering::SeqCst), "the layer panicked");
    roundtrip(&mut bystander, "after");
    assert!(server.handle.is_running(), "the loop survived");
    let stats = ManuallyDrop::into_inner(server)
        .stop(Duration::from_secs(1))
        .stats;
    assert_eq!(stats.closed_for(&CloseReason::CodecPanic), 1);
    assert_eq!(stats.connections_open, 0);
}
