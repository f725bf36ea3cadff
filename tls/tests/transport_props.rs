//! Property tests of the server transport over real sockets: any split of
//! a TLS byte stream gives the same plaintext, and random bytes (instead of
//! a ClientHello, or in the middle of a session) never panic; they end in
//! an error the runtime turns into a counted close.
//!
//! The client is a bare rustls `ClientConnection` writing into memory, so
//! the test decides exactly where the stream is cut.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use baton_tls::rustls::pki_types::ServerName;
use baton_tls::rustls::{ClientConfig, ClientConnection, ServerConfig};
use baton_tls::{client_config_trusting, generate_self_signed, RecvBuf, TlsSettings, Transport};
use proptest::prelude::*;

fn configs() -> &'static (Arc<ServerConfig>, Arc<ClientConfig>) {
    static CONFIGS: OnceLock<(Arc<ServerConfig>, Arc<ClientConfig>)> = OnceLock::new();
    CONFIGS.get_or_init(|| {
        let dir: PathBuf =
            std::env::temp_dir().join(format!("baton-tls-props-{}", std::process::id()));
        let (cert, key) = generate_self_signed(&dir).unwrap();
        let server = TlsSettings::from_files(&cert, &key).build().unwrap();
        let client = Arc::new(client_config_trusting(&cert, &[]).unwrap());
        let _ = std::fs::remove_dir_all(&dir);
        (server, client)
    })
}

/// A server transport and the raw client end of its socket.
fn connected() -> (Transport, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let raw = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    server.set_nonblocking(true).unwrap();
    raw.set_nodelay(true).unwrap();
    raw.set_nonblocking(true).unwrap();
    let transport = Transport::tls_server(server, Arc::clone(&configs().0)).unwrap();
    (transport, raw)
}

/// Runs the handshake between `server` and an in-memory client on `raw`.
fn handshake(server: &mut Transport, raw: &mut TcpStream) -> ClientConnection {
    let name = ServerName::try_from("localhost").unwrap();
    let mut client = ClientConnection::new(Arc::clone(&configs().1), name).unwrap();
    let mut sink = RecvBuf::new();
    for _ in 0..1000 {
        while client.wants_write() {
            client.write_tls(raw).unwrap();
        }
        server.read(&mut sink, 1 << 20).expect("server read");
        if server.wants_write() {
            server.flush().expect("server flush");
        }
        match client.read_tls(raw) {
            Ok(_) => {
                client.process_new_packets().expect("client");
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => panic!("{e}"),
        }
        if !client.is_handshaking() && !server.is_handshaking() && !client.wants_write() {
            return client;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    panic!("handshake never finished");
}

/// Writes `bytes` to the socket, in pieces of the given sizes (cycled),
/// letting the server read after each piece; returns what it decrypted.
/// The server's errors are returned, not unwrapped.
fn feed(
    server: &mut Transport,
    raw: &mut TcpStream,
    bytes: &[u8],
    pieces: &[usize],
    expect: usize,
) -> Result<Vec<u8>, String> {
    raw.set_nonblocking(false).unwrap();
    let mut out = RecvBuf::new();
    let mut at = 0;
    for &size in pieces.iter().cycle() {
        if at == bytes.len() {
            break;
        }
        let end = (at + size.max(1)).min(bytes.len());
        raw.write_all(&bytes[at..end]).unwrap();
        at = end;
        server.read(&mut out, 1 << 20).map_err(|e| e.to_string())?;
    }
    // Loopback delivers in order but not instantly: read the rest.
    for _ in 0..2000 {
        if out.len() >= expect {
            break;
        }
        server.read(&mut out, 1 << 20).map_err(|e| e.to_string())?;
        std::thread::sleep(Duration::from_micros(100));
    }
    Ok(out.take_all())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Records cut anywhere (even one byte at a time) decrypt to exactly
    /// the plaintext sent.
    #[test]
    fn any_split_of_the_record_stream_gives_the_same_plaintext(
        message in proptest::collection::vec(any::<u8>(), 1..40_000),
        pieces in proptest::collection::vec(1usize..3000, 1..20),
    ) {
        let (mut server, mut raw) = connected();
        let mut client = handshake(&mut server, &mut raw);
        client.writer().write_all(&message).unwrap();
        let mut records = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut records).unwrap();
        }
        let got = feed(&mut server, &mut raw, &records, &pieces, message.len()).unwrap();
        prop_assert_eq!(got, message);
    }

    /// Random bytes where a ClientHello should be: an error or a wait for
    /// more, never a panic, and the transport stays usable for the close.
    #[test]
    fn random_bytes_instead_of_a_handshake_never_panic(
        junk in proptest::collection::vec(any::<u8>(), 1..5000),
        pieces in proptest::collection::vec(1usize..600, 1..10),
    ) {
        let (mut server, mut raw) = connected();
        let result = feed(&mut server, &mut raw, &junk, &pieces, 1);
        prop_assert!(server.is_handshaking());
        if result.is_err() {
            // A failed session still flushes its alert and closes.
            let _ = server.flush();
            prop_assert!(server.read(&mut RecvBuf::new(), 1 << 20).is_err(), "errors are sticky");
        }
    }

    /// Random bytes in the middle of an established session: a record that
    /// does not authenticate is an error, never a panic or plaintext.
    #[test]
    fn random_bytes_in_a_session_are_an_error_not_plaintext(
        junk in proptest::collection::vec(any::<u8>(), 1..5000),
    ) {
        let (mut server, mut raw) = connected();
        let _client = handshake(&mut server, &mut raw);
        // A well-formed application-data record header around the junk, so
        // it reaches decryption (bare junk fails even earlier).
        let mut record = vec![0x17, 0x03, 0x03];
        record.extend_from_slice(&(junk.len() as u16).to_be_bytes());
        record.extend_from_slice(&junk);
        let result = feed(&mut server, &mut raw, &record, &[record.len()], 1);
        prop_assert!(result.is_err(), "junk decrypted to {:?}", result);
        let mut rest = Vec::new();
        raw.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
        let _ = raw.read_to_end(&mut rest);
    }
}
