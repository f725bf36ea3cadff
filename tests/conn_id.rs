//! A `ConnId` names one connection only: a write to a closed id is refused
//! with `Gone`, and a reused slot never receives output meant for the
//! connection that had it before. Output queued for a connection while it is
//! on an IO thread joins it, in order, when it returns.

mod util;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::time::{Duration, Instant};

use baton::{
    Codec, Config, ConnId, ConnInfo, Ctx, IoActivation, ProtocolError, RecvBuf, SendError, Service,
};
use util::lines::Lines;
use util::spawn_server;

enum Cmd {
    Send(ConnId, Vec<u8>, Sender<Result<(), SendError>>),
    Close(ConnId, Sender<Result<(), SendError>>),
}

/// Echoes lines; reports each opened `ConnId`; runs commands from the test.
struct Tracker {
    opened: Sender<ConnId>,
}

impl Service for Tracker {
    type Codec = Lines;
    type ConnState = ();
    type Command = Cmd;

    fn codec(&mut self, _: &ConnInfo) -> Lines {
        Lines
    }

    fn on_open(&mut self, _: &mut Ctx<'_, Self>, conn: ConnId) {
        let _ = self.opened.send(conn);
    }

    fn on_frame(&mut self, ctx: &mut Ctx<'_, Self>, conn: ConnId, _: &mut (), line: Vec<u8>) {
        let _ = ctx.send(conn, line);
    }

    fn on_command(&mut self, ctx: &mut Ctx<'_, Self>, cmd: Cmd) {
        match cmd {
            Cmd::Send(conn, bytes, reply) => {
                let _ = reply.send(ctx.send(conn, bytes));
            }
            Cmd::Close(conn, reply) => {
                let _ = reply.send(ctx.close(conn));
            }
        }
    }
}

fn send(server: &util::TestServer<Cmd>, conn: ConnId, bytes: &[u8]) -> Result<(), SendError> {
    let (tx, rx) = channel();
    server
        .handle
        .post(Cmd::Send(conn, bytes.to_vec(), tx))
        .ok()
        .unwrap();
    rx.recv_timeout(Duration::from_secs(10)).unwrap()
}

fn stale_id_is_gone_and_never_reaches_the_slots_next_owner(io_threads: usize) {
    let (opened_tx, opened) = channel();
    let server = spawn_server(
        Config::default()
            .io_threads(io_threads)
            .io_activation(IoActivation::Always),
        move || Tracker { opened: opened_tx },
    );

    let first = TcpStream::connect(server.addr).unwrap();
    let first_id = opened.recv_timeout(Duration::from_secs(10)).unwrap();
    drop(first);
    server.wait_for(
        "the first connection to close",
        Duration::from_secs(10),
        |s| s.closed_total() == 1,
    );
    assert_eq!(
        send(&server, first_id, b"for the first"),
        Err(SendError::Gone)
    );

    let mut second = TcpStream::connect(server.addr).unwrap();
    let second_id = opened.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(
        second_id.slot_index(),
        first_id.slot_index(),
        "the test needs the slot to be reused"
    );
    assert_ne!(second_id, first_id);

    assert_eq!(
        send(&server, first_id, b"for the first"),
        Err(SendError::Gone)
    );
    let (tx, rx) = channel();
    server.handle.post(Cmd::Close(first_id, tx)).ok().unwrap();
    assert_eq!(
        rx.recv().unwrap(),
        Err(SendError::Gone),
        "closing a stale id does not close the new owner"
    );
    assert_eq!(send(&server, second_id, b"for the second"), Ok(()));
    second.write_all(b"end\n").unwrap();
    let mut reader = BufReader::new(second);
    let mut got = String::new();
    reader.read_line(&mut got).unwrap();
    reader.read_line(&mut got).unwrap();
    assert_eq!(
        got, "for the second\nend\n",
        "only its own output, in order"
    );
    server.stop(Duration::from_secs(5));
}

#[test]
fn stale_conn_id_is_gone_inline() {
    stale_id_is_gone_and_never_reaches_the_slots_next_owner(0);
}

#[test]
fn stale_conn_id_is_gone_with_io_threads() {
    stale_id_is_gone_and_never_reaches_the_slots_next_owner(2);
}

/// Another thread pushes numbered lines to a connection while it streams
/// echo requests through 2 IO threads (some pushes find it home, some away,
/// by chance). Every push and every echo arrives, each in its own order.
#[test]
fn output_queued_while_away_arrives_in_order() {
    const PUSHES: usize = 5_000;
    const ECHOES: usize = 20_000;
    let (opened_tx, opened) = channel();
    let server = spawn_server(
        Config::default()
            .io_threads(2)
            .io_activation(IoActivation::Always),
        move || Tracker { opened: opened_tx },
    );
    let stream = TcpStream::connect(server.addr).unwrap();
    let id = opened.recv_timeout(Duration::from_secs(10)).unwrap();

    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        for i in 0..ECHOES {
            writer.write_all(format!("echo {i}\n").as_bytes()).unwrap();
        }
    });
    let handle = server.handle.clone();
    let pusher = std::thread::spawn(move || {
        let (tx, rx) = channel();
        for i in 0..PUSHES {
            handle
                .post(Cmd::Send(id, format!("push {i}").into_bytes(), tx.clone()))
                .ok()
                .unwrap();
        }
        (0..PUSHES).map(|_| rx.recv().unwrap()).collect::<Vec<_>>()
    });

    let mut reader = BufReader::new(stream);
    let (mut echoes, mut pushes) = (0, 0);
    let mut line = String::new();
    while echoes < ECHOES || pushes < PUSHES {
        line.clear();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "server closed early"
        );
        if let Some(n) = line.strip_prefix("echo ") {
            assert_eq!(
                n.trim().parse::<usize>().unwrap(),
                echoes,
                "echoes in order"
            );
            echoes += 1;
        } else if let Some(n) = line.strip_prefix("push ") {
            assert_eq!(
                n.trim().parse::<usize>().unwrap(),
                pushes,
                "pushes in order"
            );
            pushes += 1;
        } else {
            panic!("unexpected line {line:?}");
        }
    }
    sender.join().unwrap();
    assert!(pusher.join().unwrap().iter().all(Result::is_ok));
    let mut rest = Vec::new();
    let mut stream = reader.into_inner();
    stream
        .set_read_timeout(Some(Duration::from_millis(1)))
        .unwrap();
    let _ = stream.read_to_end(&mut rest);
    assert!(rest.is_empty(), "nothing extra: {rest:?}");
    server.stop(Duration::from_secs(5));
}

static HOLDING: AtomicBool = AtomicBool::new(false);
static RELEASED: AtomicBool = AtomicBool::new(false);

/// Lines, except that decoding the line `hold` blocks (on the IO thread)
/// until the test sets `RELEASED`: the connection is certainly away.
struct HoldingLines(Lines);

impl Codec for HoldingLines {
    type In = Vec<u8>;
    type Out = Vec<u8>;
    fn decode(&mut self, src: &mut RecvBuf) -> Result<Option<Vec<u8>>, ProtocolError> {
        let frame = self.0.decode(src)?;
        if frame.as_deref() == Some(b"hold") {
            HOLDING.store(true, Ordering::Release);
            let start = Instant::now();
            while !RELEASED.load(Ordering::Acquire) && start.elapsed() < Duration::from_secs(30) {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        Ok(frame)
    }
    fn encode(&mut self, frame: Vec<u8>, dst: &mut Vec<u8>) {
        self.0.encode(frame, dst)
    }
    fn encoded_len(frame: &Vec<u8>) -> usize {
        Lines::encoded_len(frame)
    }
}

struct Holder {
    opened: Sender<ConnId>,
}

impl Service for Holder {
    type Codec = HoldingLines;
    type ConnState = ();
    type Command = Cmd;
    fn codec(&mut self, _: &ConnInfo) -> HoldingLines {
        HoldingLines(Lines)
    }
    fn on_open(&mut self, _: &mut Ctx<'_, Self>, conn: ConnId) {
        let _ = self.opened.send(conn);
    }
    fn on_frame(&mut self, ctx: &mut Ctx<'_, Self>, conn: ConnId, _: &mut (), line: Vec<u8>) {
        let _ = ctx.send(conn, line);
    }
    fn on_command(&mut self, ctx: &mut Ctx<'_, Self>, cmd: Cmd) {
        if let Cmd::Send(conn, bytes, reply) = cmd {
            let _ = reply.send(ctx.send(conn, bytes));
        }
    }
}

/// While a connection is held away on an IO thread, pushes to it are
/// accepted, queued on its away record, and delivered in order when it
/// comes home, ahead of the reply to the frame it was decoding.
#[test]
fn output_queued_while_away_joins_the_connection_when_it_returns() {
    const HELD_PUSHES: usize = 100;
    let (opened_tx, opened) = channel();
    let server = spawn_server(
        Config::default()
            .io_threads(2)
            .io_activation(IoActivation::Always),
        move || Holder { opened: opened_tx },
    );
    let mut stream = TcpStream::connect(server.addr).unwrap();
    let id = opened.recv_timeout(Duration::from_secs(10)).unwrap();
    stream.write_all(b"hold\n").unwrap();
    // The IO step decoding `hold` is holding the connection: it is away.
    let start = Instant::now();
    while !HOLDING.load(Ordering::Acquire) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the codec never saw `hold`"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    for i in 0..HELD_PUSHES {
        assert_eq!(send(&server, id, format!("push {i}").as_bytes()), Ok(()));
    }
    let stats = server.handle.stats();
    assert_eq!(
        stats.sends_while_away, HELD_PUSHES as u64,
        "every push found it away: {stats:?}"
    );
    RELEASED.store(true, Ordering::Release);
    let mut reader = BufReader::new(stream);
    for i in 0..HELD_PUSHES {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert_eq!(line, format!("push {i}\n"));
    }
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line, "hold\n");
    server.stop(Duration::from_secs(5));
}
