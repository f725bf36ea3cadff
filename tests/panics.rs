//! A panic in a codec (on an IO thread or inline) or in a service callback
//! closes only that connection; it is counted and the loop goes on.

mod util;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use baton::{CloseReason, Config, ConnId, ConnInfo, Ctx, IoActivation, Service};
use util::lines::Lines;
use util::spawn_server;

/// Echoes lines; panics on the line `BOOM`. (The codec panics on `PANIC`.)
struct Fragile;

impl Service for Fragile {
    type Codec = Lines;
    type Command = ();
    fn codec(&mut self, _: &ConnInfo) -> Lines {
        Lines
    }
    fn on_frame(&mut self, ctx: &mut Ctx<'_, Self>, conn: ConnId, line: Vec<u8>) {
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
        Config {
            io_threads,
            io_activation: IoActivation::Always,
            ..Config::default()
        },
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
