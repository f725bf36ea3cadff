//! Review scratch: a peer that sends a bad record after our half-close's
//! close_notify.
mod util;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use baton::tls::rustls::pki_types::ServerName;
use baton::tls::rustls::{ClientConnection, StreamOwned};
use baton::{ByteStream, CloseReason, Config, ConnId, ConnInfo, Ctx, Service};
use util::{ClientMode, TestCert};

struct HalfCloser;
impl Service for HalfCloser {
    type Codec = ByteStream;
    type ConnState = ();
    type Command = ();
    fn codec(&mut self, _: &ConnInfo) -> ByteStream {
        ByteStream::default()
    }
    fn on_open(&mut self, ctx: &mut Ctx<'_, Self>, conn: ConnId) {
        let _ = ctx.send(conn, b"hello".to_vec());
        let _ = ctx.shutdown_write(conn);
    }
    fn on_frame(&mut self, _: &mut Ctx<'_, Self>, _: ConnId, _: &mut (), _: Vec<u8>) {}
}

#[test]
fn review_a_bad_record_after_our_close_notify_is_a_tls_failure_not_a_panic() {
    let cert = TestCert::new("review-half");
    let server = util::spawn_tls_server(Config::default(), cert.server_config(), || HalfCloser);
    let ClientMode::Tls(config) = cert.client(None) else {
        panic!()
    };
    let tcp = TcpStream::connect(server.addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let conn = ClientConnection::new(config, ServerName::try_from("localhost").unwrap()).unwrap();
    let mut tls = StreamOwned::new(conn, tcp);
    let mut got = Vec::new();
    tls.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"hello");
    let mut raw = tls.sock;
    raw.write_all(&[0x17, 0x03, 0x03, 0x00, 0x20]).unwrap();
    raw.write_all(&[0xAB; 0x20]).unwrap();
    let mut buf = [0u8; 256];
    let mut total = 0;
    loop {
        match raw.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n,
        }
    }
    eprintln!("client read {total} bytes after its bad record");
    std::thread::sleep(Duration::from_millis(200));
    let report = server.stop(Duration::from_secs(1));
    let closed: Vec<(&str, u64)> = CloseReason::NAMES
        .iter()
        .copied()
        .zip(report.stats.closed.iter().copied())
        .filter(|(_, n)| *n > 0)
        .collect();
    eprintln!("closed: {closed:?}");
    let panics = report.stats.closed.iter().nth(CloseReason::CodecPanic.index()).copied();
    assert_eq!(panics, Some(0), "closed: {closed:?}");
}
