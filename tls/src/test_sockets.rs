//! Sockets for this crate's unit tests.

use std::net::TcpListener;

/// A loopback listener whose accepted sockets have a 4 MiB receive buffer,
/// so a test can queue several of the transport's reads' worth of bytes
/// (96 KiB each) before the server reads.
pub(crate) fn roomy_listener() -> TcpListener {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4 << 20).unwrap();
    let addr: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    socket.bind(&addr.into()).unwrap();
    socket.listen(8).unwrap();
    socket.into()
}
