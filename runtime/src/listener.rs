//! TCP listeners: binding with a chosen backlog, accepting non-blocking
//! sockets in one system call.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};

use socket2::{Domain, Protocol, Socket, Type};

/// Binds a non-blocking listener. IPv6 listeners are IPv6-only, so one
/// server can listen on `0.0.0.0` and `[::]` at the same port.
pub(crate) fn bind(addr: SocketAddr, backlog: i32) -> io::Result<TcpListener> {
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.nonblocking().cloexec(),
        Some(Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    Ok(socket.into())
}

/// The address every connection a listener accepts has as its own, when
/// the listener was bound to one address (not `0.0.0.0` or `::`): the
/// kernel gives an accepted socket the listener's address, so asking it
/// (`getsockname(2)`) would cost a system call per connection to learn
/// what is known. `None` for a wildcard listener, whose connections each
/// have the address the client reached, which only the socket knows.
pub(crate) fn fixed_local_addr(listener: &TcpListener) -> Option<SocketAddr> {
    listener.local_addr().ok().and_then(fixed_if_specific)
}

/// `bound` if it names one address, `None` for a wildcard.
fn fixed_if_specific(bound: SocketAddr) -> Option<SocketAddr> {
    (!bound.ip().is_unspecified()).then_some(bound)
}

/// Accepts one connection, already non-blocking, close-on-exec and with
/// `TCP_NODELAY` (replies go out as soon as they are written).
pub(crate) fn accept(
    listener: &TcpListener,
    send_buffer: Option<usize>,
) -> io::Result<(TcpStream, SocketAddr)> {
    let listener = socket2::SockRef::from(listener);
    let (socket, addr) = listener.accept4(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)?;
    socket.set_tcp_nodelay(true)?;
    if let Some(size) = send_buffer {
        socket.set_send_buffer_size(size)?;
    }
    let addr = addr
        .as_socket()
        .ok_or_else(|| io::Error::other("accepted a non-IP socket"))?;
    Ok((socket.into(), addr))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// The kernel behaviour `fixed_local_addr` relies on: a connection
    /// accepted on a listener bound to one address has exactly that
    /// address, port included, as its own (IPv4 and IPv6 loopback). The
    /// wildcard case, where each connection has the address its client
    /// reached, is not exercised here: tests listen on loopback only.
    #[test]
    fn an_accepted_socket_has_the_address_its_listener_is_bound_to() {
        for bind_to in ["127.0.0.1:0", "127.0.0.2:0", "[::1]:0"] {
            let Ok(listener) = bind(bind_to.parse().unwrap(), 16) else {
                continue; // no IPv6 loopback on this machine
            };
            let fixed = fixed_local_addr(&listener).expect("a specific address");
            let _client = TcpStream::connect(fixed).unwrap();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            let (accepted, _) = loop {
                match accept(&listener, None) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        assert!(std::time::Instant::now() < deadline, "nothing to accept");
                        std::thread::yield_now();
                    }
                    other => break other.unwrap(),
                }
            };
            assert_eq!(accepted.local_addr().unwrap(), fixed, "{bind_to}");
        }
    }

    /// The loop never blocks on a socket and no child process inherits
    /// one: an accepted socket is non-blocking and close-on-exec from the
    /// `accept4` that made it, with `TCP_NODELAY` and the send buffer the
    /// configuration asks for.
    #[test]
    fn an_accepted_socket_is_non_blocking_close_on_exec_and_unbuffered() {
        use std::os::fd::AsRawFd;
        let listener = bind("127.0.0.1:0".parse().unwrap(), 16).unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let (accepted, _) = loop {
            match accept(&listener, Some(64 * 1024)) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    assert!(std::time::Instant::now() < deadline, "nothing to accept");
                    std::thread::yield_now();
                }
                other => break other.unwrap(),
            }
        };
        let fd = accepted.as_raw_fd();
        // SAFETY: `fd` is an open descriptor owned by `accepted`, alive for
        // both calls; F_GETFL and F_GETFD only read its flags.
        let (status, descriptor) = unsafe {
            (
                libc::fcntl(fd, libc::F_GETFL),
                libc::fcntl(fd, libc::F_GETFD),
            )
        };
        assert!(
            status >= 0 && descriptor >= 0,
            "{}",
            io::Error::last_os_error()
        );
        assert_ne!(status & libc::O_NONBLOCK, 0, "non-blocking");
        assert_ne!(descriptor & libc::FD_CLOEXEC, 0, "close-on-exec");
        let socket = socket2::SockRef::from(&accepted);
        assert!(socket.tcp_nodelay().unwrap());
        // Linux doubles the size asked for (its bookkeeping overhead).
        assert!(socket.send_buffer_size().unwrap() >= 64 * 1024);
        // Non-blocking for real: a read of an empty socket returns at once.
        let mut byte = [0u8];
        let read = (&accepted).read(&mut byte);
        assert_eq!(read.unwrap_err().kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn only_a_wildcard_listener_leaves_the_address_to_each_socket() {
        for wildcard in ["0.0.0.0:0", "0.0.0.0:6379", "[::]:6379"] {
            assert_eq!(fixed_if_specific(wildcard.parse().unwrap()), None);
        }
        for specific in [
            "127.0.0.1:6379",
            "10.1.2.3:80",
            "[::1]:6379",
            "[fe80::1%2]:80",
        ] {
            let addr: SocketAddr = specific.parse().unwrap();
            assert_eq!(fixed_if_specific(addr), Some(addr));
        }
    }
}
