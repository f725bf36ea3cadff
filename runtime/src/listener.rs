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
    listener
        .local_addr()
        .ok()
        .filter(|addr| !addr.ip().is_unspecified())
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

    /// The kernel behaviour `fixed_local_addr` relies on: a connection
    /// accepted on a listener bound to one address has exactly that
    /// address (port included) as its own; on a wildcard listener, the
    /// address the client reached.
    #[test]
    fn an_accepted_socket_has_its_listener_s_address_unless_the_listener_is_a_wildcard() {
        for (bind_to, expect_fixed) in [("127.0.0.1:0", true), ("0.0.0.0:0", false)] {
            let listener = bind(bind_to.parse().unwrap(), 16).unwrap();
            let port = listener.local_addr().unwrap().port();
            let fixed = fixed_local_addr(&listener);
            assert_eq!(fixed.is_some(), expect_fixed, "{bind_to}");
            let _client = TcpStream::connect(("127.0.0.1", port)).unwrap();
            let (accepted, _) = loop {
                match accept(&listener, None) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                    other => break other.unwrap(),
                }
            };
            let own = accepted.local_addr().unwrap();
            assert_eq!(own, SocketAddr::from(([127, 0, 0, 1], port)), "{bind_to}");
            if let Some(fixed) = fixed {
                assert_eq!(fixed, own);
            }
        }
    }
}
