//! Writing to a socket whose peer is gone is an error, never a `SIGPIPE`,
//! whatever the program's signal disposition: a library cannot rely on its
//! host ignoring the signal (Rust's runtime does; a C host, or a Rust
//! program built with `-Zon-broken-pipe=kill`, does not).
//!
//! Each test blocks `SIGPIPE` in its own thread, writes, then asks whether
//! one is pending. The kernel directs the signal at the writing thread, and
//! a blocked signal stays pending even when its action is "ignore", so this
//! sees a `SIGPIPE` whatever the action or the inherited mask, and a
//! failure is a message rather than a dead process.

mod common;

use std::io::{ErrorKind, IoSlice, Write};
use std::net::{Shutdown, TcpListener, TcpStream};

use baton_tls::{Progress, RecvBuf, Transport, TransportError};

/// Runs `f` with `SIGPIPE` blocked in this thread; true if `f` raised one
/// (which is then taken off the pending set).
fn raises_sigpipe(f: impl FnOnce()) -> bool {
    // SAFETY: plain libc calls on a local, initialised signal set; the mask
    // changed is this thread's own, and the test thread ends after it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        assert_eq!(
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()),
            0
        );
        f();
        let mut pending: libc::sigset_t = std::mem::zeroed();
        assert_eq!(libc::sigpending(&mut pending), 0);
        let raised = libc::sigismember(&pending, libc::SIGPIPE) == 1;
        if raised {
            let now = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            libc::sigtimedwait(&set, std::ptr::null_mut(), &now);
        }
        raised
    }
}

fn io_error(result: Result<Progress, TransportError>, what: &str) -> ErrorKind {
    match result {
        Err(TransportError::Io(e)) => e.kind(),
        other => panic!("{what}: expected an IO error, got {other:?}"),
    }
}

/// A connected pair, the server's end non-blocking.
fn plain_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    server.set_nonblocking(true).unwrap();
    (server, client)
}

/// A handshaken TLS pair.
fn tls_pair(tag: &str) -> (Transport, Transport, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("baton-tls-{tag}-{}", std::process::id()));
    let (mut server, mut client) = common::pair(&dir);
    let (mut s_in, mut c_in) = (RecvBuf::new(), RecvBuf::new());
    common::pump(&mut server, &mut s_in, &mut client, &mut c_in);
    assert!(server.accepts_app_data());
    (server, client, dir)
}

#[test]
fn plain_writes_after_our_sending_side_closed_are_epipe() {
    let (server, _client) = plain_pair();
    server.shutdown(Shutdown::Write).unwrap();
    let mut plain = Transport::plain(server);
    let raised = raises_sigpipe(|| {
        assert_eq!(
            io_error(plain.write(b"one"), "write"),
            ErrorKind::BrokenPipe
        );
        let bufs = [IoSlice::new(b"two"), IoSlice::new(b"three")];
        assert_eq!(
            io_error(plain.write_vectored(&bufs), "vectored write"),
            ErrorKind::BrokenPipe
        );
    });
    assert!(!raised, "a plain write raised SIGPIPE");
}

#[test]
fn writes_to_a_peer_that_reset_are_errors_without_a_signal() {
    for vectored in [false, true] {
        let (server, client) = plain_pair();
        socket2::SockRef::from(&client)
            .set_linger(Some(std::time::Duration::ZERO))
            .unwrap();
        // On loopback the reset is processed before close returns.
        drop(client);
        let mut plain = Transport::plain(server);
        let mut write = |bytes: &[u8]| {
            if vectored {
                io_error(plain.write_vectored(&[IoSlice::new(bytes)]), "vectored")
            } else {
                io_error(plain.write(bytes), "write")
            }
        };
        let raised = raises_sigpipe(|| {
            let first = write(b"after the reset");
            assert!(
                matches!(first, ErrorKind::ConnectionReset | ErrorKind::BrokenPipe),
                "{first:?}"
            );
            assert_eq!(write(b"and again"), ErrorKind::BrokenPipe);
        });
        assert!(
            !raised,
            "a write to a reset peer raised SIGPIPE (vectored: {vectored})"
        );
    }
}

#[test]
fn tls_record_writes_after_our_sending_side_closed_are_epipe() {
    let (mut server, _client, dir) = tls_pair("sigpipe-write");
    server.socket().shutdown(Shutdown::Write).unwrap();
    let raised = raises_sigpipe(|| {
        assert_eq!(
            io_error(server.write(b"record"), "TLS write"),
            ErrorKind::BrokenPipe
        );
    });
    assert!(!raised, "a TLS record write raised SIGPIPE");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_alert_for_a_peers_garbage_is_written_without_a_signal() {
    let (mut server, client, dir) = tls_pair("sigpipe-alert");
    server.socket().shutdown(Shutdown::Write).unwrap();
    // Not a TLS record: the server's read fails and it tries to send the
    // alert rustls queued, into a socket that can no longer send.
    client.socket().write_all(&[0xff; 64]).unwrap();
    let raised = raises_sigpipe(|| {
        let mut input = RecvBuf::new();
        for _ in 0..1000 {
            match server.read(&mut input, 1 << 16) {
                Err(TransportError::Tls(_)) => return,
                Ok(p) if p.bytes == 0 => std::thread::sleep(std::time::Duration::from_millis(1)),
                other => panic!("expected a TLS error, got {other:?}"),
            }
        }
        panic!("the garbage never arrived");
    });
    assert!(!raised, "the alert write raised SIGPIPE");
    let _ = std::fs::remove_dir_all(&dir);
}
