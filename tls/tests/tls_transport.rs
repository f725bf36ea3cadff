//! The TLS transport over real non-blocking sockets, both sides baton's:
//! handshake, data both ways, a key update that makes the server want to
//! write after a read, close_notify, and configuration errors.

mod common;

use std::net::{TcpListener, TcpStream};

use baton_tls::{generate_self_signed, IoState, RecvBuf, TlsSettings, Transport};
use common::{pair, pump};

#[test]
fn handshake_data_key_update_and_close_notify() {
    let dir = std::env::temp_dir().join(format!("baton-tls-unit-{}", std::process::id()));
    let (mut server, mut client) = pair(&dir);
    let (mut s_in, mut c_in) = (RecvBuf::new(), RecvBuf::new());
    assert!(server.is_handshaking() && !server.accepts_app_data());
    // Reading the ClientHello makes the server want to write (its flight),
    // with no application data involved.
    client.flush().unwrap();
    let mut reads = 0;
    while !server.wants_write() {
        server.read(&mut s_in, 1 << 20).unwrap();
        reads += 1;
        assert!(reads < 1000, "the ClientHello never arrived");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert!(s_in.is_empty());
    pump(&mut client, &mut c_in, &mut server, &mut s_in);
    let info = server.tls_info().expect("handshake complete");
    assert_eq!(info.version, baton_tls::rustls::ProtocolVersion::TLSv1_3);
    assert!(server.accepts_app_data());

    assert_eq!(client.write(b"hello").unwrap().bytes, 5);
    pump(&mut client, &mut c_in, &mut server, &mut s_in);
    assert_eq!(s_in.take_all(), b"hello");

    // A key update from the client (rustls queues the server's answering
    // update with its next record): data flows both ways under new keys.
    client.refresh_traffic_keys().unwrap();
    client.write(b"after update").unwrap();
    client.flush().unwrap();
    let mut waited = 0;
    while s_in.len() < 12 {
        server.read(&mut s_in, 1 << 20).unwrap();
        waited += 1;
        assert!(waited < 1000, "the update never arrived");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert_eq!(s_in.take_all(), b"after update");
    server.write(b"reply under new keys").unwrap();
    pump(&mut client, &mut c_in, &mut server, &mut s_in);
    assert_eq!(c_in.take_all(), b"reply under new keys");

    // Graceful close: close_notify reaches the peer as end of stream.
    assert!(server.begin_close());
    server.flush().unwrap();
    let mut state = IoState::Ready;
    for _ in 0..1000 {
        state = client.read(&mut c_in, 1 << 20).unwrap().state;
        if state == IoState::Eof {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert_eq!(state, IoState::Eof);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn garbage_is_a_tls_error_not_a_panic() {
    let dir = std::env::temp_dir().join(format!("baton-tls-garbage-{}", std::process::id()));
    let (cert, key) = generate_self_signed(&dir).unwrap();
    let config = TlsSettings::from_files(&cert, &key).build().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    server.set_nonblocking(true).unwrap();
    let mut server = Transport::tls_server(server, config).unwrap();
    std::io::Write::write_all(&mut client, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut buf = RecvBuf::new();
    let err = loop {
        match server.read(&mut buf, 1 << 20) {
            Err(e) => break e,
            Ok(p) => {
                assert_ne!(p.state, IoState::Eof);
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
    };
    assert!(matches!(err, baton_tls::TransportError::Tls(_)), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bad_files_are_refused_with_the_file_named() {
    let dir = std::env::temp_dir().join(format!("baton-tls-bad-{}", std::process::id()));
    let (cert, key) = generate_self_signed(&dir).unwrap();
    let missing = TlsSettings::from_files(dir.join("nope.pem"), &key)
        .build()
        .unwrap_err();
    assert!(missing.to_string().contains("nope.pem"), "{missing}");
    std::fs::write(dir.join("junk.pem"), "not a certificate").unwrap();
    let junk = TlsSettings::from_files(dir.join("junk.pem"), &key)
        .build()
        .unwrap_err();
    assert!(junk.to_string().contains("junk.pem"), "{junk}");
    // A certificate with someone else's key.
    let other = dir.join("other");
    let (_, other_key) = generate_self_signed(&other).unwrap();
    let mismatch = TlsSettings::from_files(&cert, &other_key)
        .build()
        .unwrap_err();
    assert!(
        mismatch.to_string().contains("certificate and key"),
        "{mismatch}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}
