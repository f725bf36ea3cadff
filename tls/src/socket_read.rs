//! A socket read into a vector's spare capacity, without zeroing it first.
//!
//! The one `unsafe` in this crate. Safe Rust can only read into initialised
//! memory, so a receive buffer handed on as a frame (see
//! `RecvBuf::take_all`) would have to be replaced by zeroed storage before
//! the next read: a memset of the read budget per read, the cost of the copy
//! it saves. `recv(2)` writes the bytes itself, so the spare capacity need
//! not be initialised.
#![allow(unsafe_code)]

use std::io;
use std::net::TcpStream;
use std::os::fd::AsRawFd;

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
    let spare = &mut spare[..offered];
    if spare.is_empty() {
        return Err(io::ErrorKind::InvalidInput.into());
    }
    // SAFETY: `spare` is the vector's allocated, unused capacity, valid for
    // writes of `spare.len()` bytes and borrowed from `buf` for this call;
    // recv(2) writes at most that many bytes there and reads nothing from
    // it, so its being uninitialised is fine. The descriptor is owned by
    // `sock`, alive for the call.
    let n = unsafe {
        libc::recv(
            sock.as_raw_fd(),
            spare.as_mut_ptr().cast::<libc::c_void>(),
            spare.len(),
            0,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    // SAFETY: recv(2) initialised the first `n` bytes of the spare capacity
    // (n <= spare.len(), as the kernel never returns more than asked).
    unsafe { buf.set_len(len + n) };
    Ok(n)
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
        drop(client);
        server.set_nonblocking(false).unwrap();
        assert_eq!(recv_into_spare(&server, &mut buf, usize::MAX).unwrap(), 0);
        assert_eq!(buf, b"hello world");
    }
}
