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
