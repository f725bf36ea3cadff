//! Outbound connections: what a service asks for ([`Connect`]), the
//! non-blocking connect that starts it, and the check that finishes it on
//! the socket's first edge.
//!
//! A connect is not an IO step: it is started on the loop (one `socket` and
//! one `connect` call, which returns `EINPROGRESS`) and finished on the loop
//! when the socket reports an edge (`SO_ERROR` says whether it worked). Only
//! then does the connection take steps, on an IO thread or inline, like an
//! accepted one; a TLS connection's handshake is such a step.

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use baton_tls::rustls::pki_types::ServerName;
use baton_tls::rustls::ClientConfig;
use socket2::{Domain, Protocol, Socket, Type};

/// An outbound connection to open with [`Ctx::connect`](crate::Ctx::connect):
/// where to, plain or TLS, and how long it may take.
#[derive(Clone)]
#[non_exhaustive]
pub struct Connect {
    /// The server's address.
    pub addr: SocketAddr,
    /// TLS: the client configuration (roots, client certificate, ALPN) and
    /// the server name to send and verify. `None`: plain TCP.
    pub tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
    /// How long the TCP connect may take (`ConnectTimeout` after it).
    /// `None`: [`Config::connect_timeout`](crate::Config::connect_timeout).
    /// A TLS handshake then has `Config::handshake_timeout`.
    pub timeout: Option<Duration>,
}

impl Connect {
    /// Plain TCP to `addr`.
    pub fn plain(addr: SocketAddr) -> Self {
        Self {
            addr,
            tls: None,
            timeout: None,
        }
    }

    /// TLS to `addr`, verifying the certificate against `config`'s roots for
    /// `server_name` (also sent as SNI when it is a DNS name).
    pub fn tls(
        addr: SocketAddr,
        config: Arc<ClientConfig>,
        server_name: ServerName<'static>,
    ) -> Self {
        Self {
            addr,
            tls: Some((config, server_name)),
            timeout: None,
        }
    }

    /// The same target with its own connect timeout.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

impl fmt::Debug for Connect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connect")
            .field("addr", &self.addr)
            .field("server_name", &self.tls.as_ref().map(|(_, name)| name))
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Why [`Ctx::connect`](crate::Ctx::connect) could not even start. A
/// connect that starts and then fails (refused, timed out, TLS) is reported
/// to [`Service::on_connect_failed`](crate::Service::on_connect_failed)
/// instead, so each failure has one path.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConnectError {
    /// `max_connections` connections (accepted and opened together) are
    /// open.
    Limit,
    /// The server is shutting down.
    ShuttingDown,
    /// No socket: out of descriptors or memory, or the poller refused it.
    Io(io::Error),
    /// The TLS session could not be created from the configuration.
    Tls(baton_tls::rustls::Error),
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::Limit => f.write_str("connection limit reached"),
            ConnectError::ShuttingDown => f.write_str("server shutting down"),
            ConnectError::Io(e) => write!(f, "could not create a socket: {e}"),
            ConnectError::Tls(e) => write!(f, "could not start a TLS session: {e}"),
        }
    }
}

impl std::error::Error for ConnectError {}

/// A socket whose connect has started: connected already (`Ok(true)`, which
/// loopback sometimes does at once), in progress (`Ok(false)`), or refused
/// at once (`Err`, still a socket, so the failure reaches the service the
/// same way as a later one).
pub(crate) struct Started {
    pub(crate) stream: TcpStream,
    pub(crate) result: io::Result<bool>,
}

/// Creates a non-blocking, close-on-exec socket with `TCP_NODELAY` and
/// starts connecting it to `addr`. `Err` only if there is no socket.
pub(crate) fn start(addr: SocketAddr, send_buffer: Option<usize>) -> io::Result<Started> {
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.nonblocking().cloexec(),
        Some(Protocol::TCP),
    )?;
    socket.set_tcp_nodelay(true)?;
    if let Some(size) = send_buffer {
        socket.set_send_buffer_size(size)?;
    }
    let result = match socket.connect(&addr.into()) {
        Ok(()) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok(false),
        Err(e) => Err(e),
    };
    Ok(Started {
        stream: socket.into(),
        result,
    })
}

/// After an edge on a connecting socket: `Ok(true)` if it is connected,
/// `Ok(false)` if the connect is still in progress, else the error it ended
/// with (`SO_ERROR`, which this clears). Asks the kernel rather than
/// trusting which edge came: a refused connect reports readable and
/// writable at once, a pending one nothing.
pub(crate) fn finish(stream: &TcpStream) -> io::Result<bool> {
    if let Some(e) = stream.take_error()? {
        return Err(e);
    }
    match stream.peer_addr() {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
        Err(e) => Err(e),
    }
}
