//! `Service::frames_ahead`: a pipelined batch is shown to the service before
//! its frames are delivered, in order and in windows of at most 16, so the
//! hint costs at most a window per frame delivered even when delivery stops
//! and starts again under the output limit; a panic in it closes only that
//! connection.
//!
//! Every wait is bounded (socket timeouts, deadlines); a hang is a failure.

mod util;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::Duration;

use baton::{CloseReason, Config, ConnId, Ctx, Service};
use util::lines::Lines;

const IO_TIMEOUT: Duration = Duration::from_secs(20);
/// The window the runtime documents.
const WINDOW: usize = 16;

#[derive(Debug, PartialEq)]
enum Seen {
    Ahead(Vec<Vec<u8>>),
    Frame(Vec<u8>),
    Closed(CloseReason),
}

/// Reports every hint and every frame, in the order the loop made them;
/// answers each frame with itself plus `padding` bytes.
struct Foresight {
    seen: Sender<Seen>,
    padding: usize,
}

impl Service for Foresight {
    type Codec = Lines;
    type ConnState = ();
    type Command = ();

    fn codec(&mut self, _: &baton::ConnInfo) -> Lines {
        Lines
    }

    fn on_open(&mut self, _: &mut Ctx<'_, Self>, _: ConnId) {}

    fn frames_ahead(&mut self, _: &(), frames: &mut dyn Iterator<Item = &Vec<u8>>) {
        let frames: Vec<Vec<u8>> = frames.cloned().collect();
        let panics = frames.iter().any(|f| f == b"panic-ahead");
        let _ = self.seen.send(Seen::Ahead(frames));
        assert!(!panics, "told to panic in frames_ahead");
    }

    fn on_frame(&mut self, ctx: &mut Ctx<'_, Self>, conn: ConnId, _: &mut (), line: Vec<u8>) {
        let _ = self.seen.send(Seen::Frame(line.clone()));
        let mut reply = line;
        reply.resize(reply.len() + self.padding, b'.');
        let _ = ctx.send(conn, reply);
    }

    fn on_close(&mut self, _: &mut Ctx<'_, Self>, _: ConnId, _: (), reason: CloseReason) {
        let _ = self.seen.send(Seen::Closed(reason));
    }
}

fn start(config: Config, padding: usize) -> (util::TestServer<()>, Receiver<Seen>) {
    let (tx, rx) = mpsc::channel();
    let server = util::spawn_server(config, move || Foresight { seen: tx, padding });
    (server, rx)
}

fn connect(server: &util::TestServer<()>) -> TcpStream {
    let stream = TcpStream::connect(server.addr).expect("connect");
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    stream
}

/// Sends lines `0..count` in one write and reads every reply back.
fn pipeline(stream: &mut TcpStream, count: usize, padding: usize) {
    let batch: String = (0..count).map(|i| format!("{i}\n")).collect();
    stream.write_all(batch.as_bytes()).unwrap();
    let expected: usize = (0..count).map(|i| i.to_string().len() + padding + 1).sum();
    let mut replies = vec![0u8; expected];
    stream.read_exact(&mut replies).unwrap();
    let lines: Vec<&[u8]> = replies.split(|&b| b == b'\n').collect();
    for (i, line) in lines.iter().take(count).enumerate() {
        assert!(
            line.starts_with(i.to_string().as_bytes()),
            "reply {i} out of order"
        );
    }
}

/// Checks the contract against what the service saw of one connection:
/// frames delivered in order, once each; every window in order, at most
/// `WINDOW` long, starting at the next frame to be delivered, and followed
/// by a delivery (a window is shown only when a frame is about to be);
/// one close, orderly. Returns (windows, frames shown in them, frames
/// delivered after being shown).
fn check(seen: &[Seen], count: usize) -> (usize, usize, usize) {
    let mut next = 0usize;
    let mut window: Vec<Vec<u8>> = Vec::new();
    let (mut windows, mut shown, mut foreseen) = (0, 0, 0);
    let mut delivered_since_window = true;
    for event in seen {
        match event {
            Seen::Ahead(frames) => {
                assert!(delivered_since_window, "a window with no delivery after it");
                delivered_since_window = false;
                assert!(frames.len() > 1, "a hint for a lone frame");
                assert!(frames.len() <= WINDOW, "a window of {}", frames.len());
                for (i, frame) in frames.iter().enumerate() {
                    assert_eq!(frame, &(next + i).to_string().into_bytes(), "window order");
                }
                windows += 1;
                shown += frames.len();
                window = frames.clone();
            }
            Seen::Closed(reason) => {
                assert_eq!(*reason, CloseReason::PeerClosed, "the one close");
                assert_eq!(next, count, "closed before every frame was delivered");
            }
            Seen::Frame(frame) => {
                delivered_since_window = true;
                assert_eq!(frame, &next.to_string().into_bytes(), "delivery order");
                if let Some(at) = window.iter().position(|f| f == frame) {
                    foreseen += 1;
                    window.drain(..=at);
                }
                next += 1;
            }
        }
    }
    assert_eq!(next, count, "frames delivered");
    let closes = seen.iter().filter(|s| matches!(s, Seen::Closed(_))).count();
    assert_eq!(closes, 1, "on_close once");
    (windows, shown, foreseen)
}

#[test]
fn a_pipelined_batch_is_shown_ahead_window_by_window_before_delivery() {
    let (server, rx) = start(Config::default(), 0);
    let mut client = connect(&server);
    // 40 short lines in one write: one segment on Linux loopback, taken by
    // one read (a split read would fail the window counts below, never
    // pass them falsely).
    pipeline(&mut client, 40, 0);
    drop(client);
    server.wait_for("closed", IO_TIMEOUT, |s| s.connections_open == 0);
    let report = server.stop(Duration::from_secs(1));
    let seen: Vec<Seen> = rx.try_iter().collect();
    let (windows, shown, foreseen) = check(&seen, 40);
    assert_eq!(
        foreseen, 40,
        "every frame of the batch was shown first: {seen:?}"
    );
    assert_eq!((windows, shown), (3, 40), "windows of 16, 16 and 8");
    assert_eq!(report.stats.service_panics, 0);
}

#[test]
fn a_long_pipeline_held_by_the_output_limit_costs_one_window_per_restart() {
    // Replies of ~1 KiB against a 4 KiB soft limit: delivery stops every
    // few frames and starts again after a write, showing one window again
    // each time. So at most a window is shown per frame delivered; showing
    // every waiting frame at each restart would be quadratic (about
    // count^2 / 10 here).
    let config = Config::default().output_soft_limit(4096);
    let (server, rx) = start(config, 1000);
    let mut client = connect(&server);
    let count = 2000;
    pipeline(&mut client, count, 1000);
    drop(client);
    server.wait_for("closed", IO_TIMEOUT, |s| s.connections_open == 0);
    server.stop(Duration::from_secs(1));
    let seen: Vec<Seen> = rx.try_iter().collect();
    let (windows, shown, foreseen) = check(&seen, count);
    assert!(windows > 100, "delivery never stopped: {windows} windows");
    assert!(
        foreseen > count / 2,
        "only {foreseen} of {count} frames were shown first"
    );
    assert!(windows <= count, "{windows} windows for {count} frames");
    assert!(
        shown <= WINDOW * count,
        "{shown} frames shown for {count} delivered"
    );
    eprintln!("{shown} frames shown in {windows} windows for {count} delivered");
}

#[test]
fn a_panic_in_frames_ahead_closes_that_connection_only() {
    let (server, rx) = start(Config::default(), 0);
    let mut bystander = connect(&server);
    let mut victim = connect(&server);
    victim.write_all(b"1\npanic-ahead\n").unwrap();
    // Closed without a reply: the panic came before the first frame.
    let mut rest = Vec::new();
    victim
        .read_to_end(&mut rest)
        .expect("closed, not reset or stuck");
    assert_eq!(rest, b"", "nothing is answered after the panic");
    server.wait_for("the panic counted", IO_TIMEOUT, |s| s.service_panics == 1);
    pipeline(&mut bystander, 3, 0);
    drop(bystander);
    server.wait_for("closed", IO_TIMEOUT, |s| s.connections_open == 0);
    let report = server.stop(Duration::from_secs(1));
    assert_eq!(report.stats.service_panics, 1);
    let seen: Vec<Seen> = rx.try_iter().collect();
    let frames = seen.iter().filter(|s| matches!(s, Seen::Frame(_))).count();
    assert_eq!(frames, 3, "only the bystander's frames: {seen:?}");
    // The victim's state came back to its entry: `on_close` ran for it,
    // with the panic's reason, as it did for the bystander.
    let mut closes: Vec<String> = seen
        .iter()
        .filter_map(|s| match s {
            Seen::Closed(reason) => Some(format!("{reason:?}")),
            _ => None,
        })
        .collect();
    closes.sort();
    assert_eq!(closes, ["PeerClosed", "ServicePanic"], "{seen:?}");
}
