//! The socket system calls of the data path, made directly rather than
//! through glibc's wrappers.
//!
//! glibc's `recv`, `send` and `writev` are cancellation points: in a process
//! with more than one thread (any baton server with IO threads, or with a
//! thread that waits for signals) glibc 2.36 brackets each call with pthread
//! cancellation bookkeeping, two atomic read-modify-writes on the thread's
//! state (libc was 3.4% of the echo server's samples, 1.1% after; see
//! BENCHMARKS.md). baton never cancels a thread, so `rustix` makes the
//! system calls itself (with its default raw-syscall backend). Sends carry
//! `MSG_NOSIGNAL`, vectored ones too (`sendmsg`, where `writev` has no
//! flags): a peer that is gone is an error (`ECONNRESET`, then `EPIPE`),
//! never a `SIGPIPE`, whatever the program's signal disposition.
//!
//! The one `unsafe` in this crate: a read into a vector's spare capacity,
//! without zeroing it first. Safe Rust can only read into initialised
//! memory, so a receive buffer handed on as a frame (see
//! `RecvBuf::take_all`) would have to be replaced by zeroed storage before
//! the next read: a memset of the read budget per read, the cost of the copy
//! it saves. `recv(2)` writes the bytes itself, so the spare capacity need
//! not be initialised.
#![allow(unsafe_code)]

use std::io::{self, IoSlice, Write};
use std::net::TcpStream;

use rustix::net::{RecvFlags, SendAncillaryBuffer, SendFlags};

/// Reads what the socket holds into `buf`'s spare capacity (at most `max`
/// bytes of it) and appends it; returns the bytes read, 0 at EOF. Errors
/// (`WouldBlock` included) leave `buf` unchanged. The caller offers space
/// (spare capacity and `max` above 0): with none, 0 would be
/// indistinguishable from EOF.
pub(crate) fn recv_into_spare(
    sock: &TcpStream,
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<usize> {
    let len = buf.len();
    let spare = buf.spare_capacity_mut();
    let offered = max.min(spare.len());
    if offered == 0 {
        return Err(io::ErrorKind::InvalidInput.into());
    }
    let ((filled, _), _) = rustix::net::recv(sock, &mut spare[..offered], RecvFlags::empty())?;
    let n = filled.len();
    // SAFETY: `filled` is the prefix of the spare capacity that recv(2)
    // wrote (rustix returns exactly the initialised part, at most the
    // `offered` elements passed, even for a truncated datagram), so
    // `len + n <= capacity` and the first `len + n` elements are
    // initialised.
    unsafe { buf.set_len(len + n) };
    Ok(n)
}

/// One `send(2)` of `src`, with `MSG_NOSIGNAL`.
pub(crate) fn send(sock: &TcpStream, src: &[u8]) -> io::Result<usize> {
    Ok(rustix::net::send(sock, src, SendFlags::NOSIGNAL)?)
}

/// The most slices one `sendmsg` takes (Linux's `UIO_MAXIOV`); more fail
/// with `EMSGSIZE`, so callers offer at most this many.
pub(crate) const MAX_SLICES: usize = 1024;

/// One `sendmsg(2)` of `bufs` in order, with `MSG_NOSIGNAL`.
pub(crate) fn send_vectored(sock: &TcpStream, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    Ok(rustix::net::sendmsg(
        sock,
        bufs,
        &mut SendAncillaryBuffer::default(),
        SendFlags::NOSIGNAL,
    )?)
}

/// The socket as rustls's `write_tls` target, writing through [`send`]
/// and [`send_vectored`].
pub(crate) struct SocketWriter<'a>(pub(crate) &'a TcpStream);

impl Write for SocketWriter<'_> {
    fn write(&mut self, src: &[u8]) -> io::Result<usize> {
        send(self.0, src)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        send_vectored(self.0, bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::net::TcpListener;

    use super::*;

    #[test]
    fn bytes_read_are_appended_after_what_was_there() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        client.write_all(b"world").unwrap();
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(b"hello ");
        let n = recv_into_spare(&server, &mut buf, usize::MAX).unwrap();
        assert_eq!(n, 5);
        assert_eq!(buf, b"hello world");
        // Nothing more sent: WouldBlock, and the vector is as it was.
        server.set_nonblocking(true).unwrap();
        let e = recv_into_spare(&server, &mut buf, usize::MAX).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        assert_eq!(buf, b"hello world");
        // A vector with no spare capacity is refused, never read as EOF.
        let mut full = Vec::new();
        assert_eq!(
            recv_into_spare(&server, &mut full, usize::MAX)
                .unwrap_err()
                .kind(),
            io::ErrorKind::InvalidInput
        );
        // A cap below the spare capacity is honoured: the rest waits.
        client.write_all(b"12345").unwrap();
        server.set_nonblocking(false).unwrap();
        let mut capped = Vec::with_capacity(64);
        assert_eq!(recv_into_spare(&server, &mut capped, 3).unwrap(), 3);
        assert_eq!(capped, b"123");
        assert_eq!(recv_into_spare(&server, &mut capped, 3).unwrap(), 2);
        assert_eq!(capped, b"12345");
        drop(client);
        assert_eq!(recv_into_spare(&server, &mut buf, usize::MAX).unwrap(), 0);
        assert_eq!(buf, b"hello world");
    }
}
