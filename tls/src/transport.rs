//! The transport over one socket.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};

use crate::RecvBuf;

/// Smallest free space offered to one `read` call.
const READ_CHUNK: usize = 16 * 1024;

/// Where a stream stands after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoState {
    /// The step stopped at its budget (or its input ran out); the socket may
    /// have more to give or take. Call again before waiting for readiness.
    Ready,
    /// The socket said `WouldBlock`: wait for the matching readiness.
    Drained,
    /// The peer closed its sending side (read returned 0).
    Eof,
}

/// What one step moved and where the stream stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Application bytes moved (received into the buffer, or taken from the
    /// caller's slice).
    pub bytes: usize,
    /// See [`IoState`].
    pub state: IoState,
}

/// A non-blocking byte stream over a socket it owns.
///
/// Owned by one thread at a time (it is `Send`, not `Sync` in use: every
/// method takes `&mut self`). Dropping it closes the socket; the runtime
/// removes the socket from its poller before that.
#[derive(Debug)]
pub enum Transport {
    /// Plain TCP.
    Plain(TcpStream),
}

impl Transport {
    /// A plain TCP transport. The socket must already be non-blocking.
    pub fn plain(stream: TcpStream) -> Self {
        Transport::Plain(stream)
    }

    /// The socket, for registration with a poller and for socket options.
    pub fn socket(&self) -> &TcpStream {
        match self {
            Transport::Plain(stream) => stream,
        }
    }

    /// Reads application bytes into `dst` until the socket is drained, the
    /// peer closed, or about `budget` bytes were read.
    pub fn read(&mut self, dst: &mut RecvBuf, budget: usize) -> io::Result<Progress> {
        match self {
            Transport::Plain(stream) => read_socket(stream, dst, budget),
        }
    }

    /// Writes as much of `src` as the socket takes. `bytes` is how much of
    /// `src` was consumed; `Drained` means the socket is full.
    pub fn write(&mut self, src: &[u8]) -> io::Result<Progress> {
        match self {
            Transport::Plain(stream) => write_socket(stream, src),
        }
    }

    /// Whether the transport itself holds bytes that must reach the socket
    /// (always `false` for plain TCP; TLS records for TLS).
    pub fn wants_write(&self) -> bool {
        match self {
            Transport::Plain(_) => false,
        }
    }

    /// Writes bytes the transport itself holds (see
    /// [`wants_write`](Self::wants_write)).
    pub fn flush(&mut self) -> io::Result<IoState> {
        match self {
            Transport::Plain(_) => Ok(IoState::Ready),
        }
    }

    /// Begins a graceful close: no more application data will be written
    /// (TLS: queue `close_notify`). Flush, then drop.
    pub fn close_write(&mut self) -> io::Result<()> {
        match self {
            Transport::Plain(stream) => match stream.shutdown(Shutdown::Write) {
                // The peer may already be gone; the close goes on regardless.
                Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
                other => other,
            },
        }
    }
}

// A short read or write ends the step as `Drained` without a further call
// that would only return `WouldBlock`: for a stream socket it proves the
// kernel buffer was empty (or full) at that moment, and with edge-triggered
// readiness any later change raises a new edge. This saves one system call
// per request (measured with `strace -c`; see ARCHITECTURE.md).

fn read_socket(stream: &mut TcpStream, dst: &mut RecvBuf, budget: usize) -> io::Result<Progress> {
    let mut total = 0;
    while total < budget {
        let spare = dst.spare(READ_CHUNK);
        let offered = spare.len();
        match stream.read(spare) {
            Ok(0) => return Ok(progress(total, IoState::Eof)),
            Ok(n) => {
                dst.filled(n);
                total += n;
                if n < offered {
                    return Ok(progress(total, IoState::Drained));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Ok(progress(total, IoState::Drained));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(progress(total, IoState::Ready))
}

fn write_socket(stream: &mut TcpStream, src: &[u8]) -> io::Result<Progress> {
    let mut total = 0;
    while total < src.len() {
        let offered = src.len() - total;
        match stream.write(&src[total..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) if n < offered => return Ok(progress(total + n, IoState::Drained)),
            Ok(n) => total += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Ok(progress(total, IoState::Drained));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(progress(total, IoState::Ready))
}

fn progress(bytes: usize, state: IoState) -> Progress {
    Progress { bytes, state }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn pair() -> (Transport, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        (Transport::plain(server), client)
    }

    #[test]
    fn read_reports_drained_then_eof() {
        let (mut transport, mut client) = pair();
        let mut buf = RecvBuf::new();
        assert_eq!(
            transport.read(&mut buf, 1 << 20).unwrap().state,
            IoState::Drained
        );
        client.write_all(b"hello").unwrap();
        // Loopback delivery is immediate but not synchronous with write_all.
        let mut got = 0;
        while got < 5 {
            got += transport.read(&mut buf, 1 << 20).unwrap().bytes;
        }
        assert_eq!(buf.as_slice(), b"hello");
        drop(client);
        loop {
            match transport.read(&mut buf, 1 << 20).unwrap().state {
                IoState::Eof => break,
                _ => std::thread::yield_now(),
            }
        }
    }

    #[test]
    fn write_stops_at_a_full_socket_and_reports_drained() {
        let (mut transport, _client) = pair();
        let big = vec![7u8; 64 << 20];
        let progress = transport.write(&big).unwrap();
        assert_eq!(
            progress.state,
            IoState::Drained,
            "a client that never reads fills the socket"
        );
        assert!(progress.bytes > 0 && progress.bytes < big.len());
        assert!(!transport.wants_write());
    }
}
