//! Writing to a socket whose sending side is gone is an `EPIPE` error, never
//! a `SIGPIPE`, whatever the program's signal disposition: a library cannot
//! rely on its host ignoring the signal (Rust's runtime does; a C host, or a
//! Rust program built with `-Zon-broken-pipe=kill`, does not).
//!
//! This binary restores the signal's default action, which kills the
//! process, so a write without `MSG_NOSIGNAL` (std's `write_vectored` is a
//! plain `writev`) fails the run. It holds one test so that nothing else
//! runs under that disposition.

mod common;

use std::io::IoSlice;
use std::net::{Shutdown, TcpListener, TcpStream};

use baton_tls::{RecvBuf, Transport, TransportError};

fn assert_broken_pipe(result: Result<baton_tls::Progress, TransportError>, what: &str) {
    match result {
        Err(TransportError::Io(e)) => assert_eq!(
            e.raw_os_error(),
            Some(libc::EPIPE),
            "{what}: expected EPIPE, got {e}"
        ),
        other => panic!("{what}: expected EPIPE, got {other:?}"),
    }
}

#[test]
fn writes_after_the_sending_side_closed_are_epipe_not_a_signal() {
    // SAFETY: SIG_DFL is a valid disposition for SIGPIPE, and this binary's
    // only test is the one running: no other thread depends on it.
    let previous = unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    assert_ne!(previous, libc::SIG_ERR);

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    server.set_nonblocking(true).unwrap();
    server.shutdown(Shutdown::Write).unwrap();
    let mut plain = Transport::plain(server);
    assert_broken_pipe(plain.write(b"one"), "plain write");
    let bufs = [IoSlice::new(b"two"), IoSlice::new(b"three")];
    assert_broken_pipe(plain.write_vectored(&bufs), "plain vectored write");

    // TLS: rustls writes its records through the transport's socket writer.
    let dir = std::env::temp_dir().join(format!("baton-tls-sigpipe-{}", std::process::id()));
    let (mut server, mut client) = common::pair(&dir);
    let (mut s_in, mut c_in) = (RecvBuf::new(), RecvBuf::new());
    common::pump(&mut server, &mut s_in, &mut client, &mut c_in);
    assert!(server.accepts_app_data());
    server.socket().shutdown(Shutdown::Write).unwrap();
    assert_broken_pipe(server.write(b"record"), "TLS write");
    let _ = std::fs::remove_dir_all(&dir);
}
