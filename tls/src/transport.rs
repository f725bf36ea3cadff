//! The transport over one socket: plain TCP or rustls.

use std::fmt;
use std::io::{self, IoSlice};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::{
    ClientConfig, ClientConnection, Connection, HandshakeKind, ServerConfig, ServerConnection,
};

use crate::socket_io::{recv_into_spare, send, send_vectored, MAX_SLICES};
use crate::tls_stream::TlsStream;
use crate::RecvBuf;

/// Smallest free space offered to one `read` call.
const READ_CHUNK: usize = 16 * 1024;
/// Plaintext rustls may hold for sending before `write` takes no more: the
/// peer cannot make a session buffer without bound.
const TLS_SEND_BUFFER: usize = 256 * 1024;

/// Where a stream stands after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoState {
    /// The step stopped at its budget (or its input ran out); the socket may
    /// have more to give or take. Call again before waiting for readiness.
    Ready,
    /// The socket said `WouldBlock` (or a short read/write proved it empty or
    /// full): wait for the matching readiness edge.
    Drained,
    /// The peer closed its sending side (TCP EOF, or TLS close_notify).
    Eof,
}

/// When a plain read may stop before the socket says `WouldBlock`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadMode {
    /// Read until `WouldBlock`, EOF, an error or the budget. Always sound.
    UntilWouldBlock,
    /// A short read (fewer bytes than offered) ends the step as
    /// [`IoState::Drained`], saving the final call that would only say
    /// `WouldBlock`. Sound only when **both** hold:
    /// * readiness is edge-triggered, so bytes that arrive after the read
    ///   raise a new edge;
    /// * no edge so far reported the peer's end (FIN, hang-up or error) or
    ///   urgent data (`EPOLLPRI`). A FIN or reset that arrived with the data
    ///   sits behind it in the socket: the short read returns the data, and
    ///   no later edge reports the end again. Urgent data (`MSG_OOB`) makes
    ///   Linux end a read at its mark with more data queued behind it, and
    ///   no new edge comes for that data. Use `UntilWouldBlock` once an edge
    ///   reported either.
    ///
    /// For TLS the same holds of the socket reads rustls makes: a short one
    /// ends the step once the plaintext it completed is drained (a record
    /// cut short waits in rustls for the bytes a later edge brings).
    ShortReadDrains,
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

pub(crate) fn progress(bytes: usize, state: IoState) -> Progress {
    Progress { bytes, state }
}

/// Why a step failed. Either way the stream is finished.
#[derive(Debug)]
pub enum TransportError {
    /// The socket failed (reset, broken pipe, ...).
    Io(io::Error),
    /// TLS failed; the alert (if any) was already sent.
    Tls(rustls::Error),
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportError::Io(e) => write!(f, "socket error: {e}"),
            TransportError::Tls(e) => write!(f, "TLS error: {e}"),
        }
    }
}

impl std::error::Error for TransportError {}

/// What a completed TLS handshake negotiated.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsInfo {
    /// `TLSv1_2` or `TLSv1_3`.
    pub version: rustls::ProtocolVersion,
    /// The cipher suite.
    pub suite: rustls::CipherSuite,
    /// Whether the session was resumed (ticket or session id).
    pub resumed: bool,
    /// The ALPN protocol agreed, if any.
    pub alpn: Option<Vec<u8>>,
    /// The server name the client asked for (server side), if any.
    pub server_name: Option<String>,
    /// Whether the client presented a verified certificate (server side).
    pub client_certificate: bool,
}

/// A non-blocking byte stream over a socket it owns: plain TCP or TLS.
///
/// Owned by one thread at a time (it is `Send`; every method takes
/// `&mut self`). Dropping it closes the socket; the runtime removes the
/// socket from its poller before that.
#[derive(Debug)]
pub enum Transport {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS (server or client side) over TCP.
    Tls(Box<TlsStream>),
}

impl Transport {
    /// A plain TCP transport. The socket must already be non-blocking.
    pub fn plain(stream: TcpStream) -> Self {
        Transport::Plain(stream)
    }

    /// The server side of TLS over a non-blocking socket; the handshake
    /// happens in the first reads and writes.
    pub fn tls_server(
        stream: TcpStream,
        config: Arc<ServerConfig>,
    ) -> Result<Self, TransportError> {
        let mut conn = ServerConnection::new(config).map_err(TransportError::Tls)?;
        conn.set_buffer_limit(Some(TLS_SEND_BUFFER));
        Ok(Transport::Tls(Box::new(TlsStream::new(
            stream,
            Connection::Server(conn),
        ))))
    }

    /// The client side of TLS over a non-blocking socket (for clients and
    /// tests built on this crate).
    pub fn tls_client(
        stream: TcpStream,
        config: Arc<ClientConfig>,
        server_name: ServerName<'static>,
    ) -> Result<Self, TransportError> {
        let mut conn = ClientConnection::new(config, server_name).map_err(TransportError::Tls)?;
        conn.set_buffer_limit(Some(TLS_SEND_BUFFER));
        Ok(Transport::Tls(Box::new(TlsStream::new(
            stream,
            Connection::Client(conn),
        ))))
    }

    /// The socket, for registration with a poller and for socket options.
    pub fn socket(&self) -> &TcpStream {
        match self {
            Transport::Plain(stream) => stream,
            Transport::Tls(tls) => &tls.sock,
        }
    }

    /// Reads application bytes into `dst` until the socket says
    /// `WouldBlock`, the peer closed, or about `budget` bytes were read. For
    /// TLS this also runs the handshake: afterwards
    /// [`wants_write`](Self::wants_write) may be true (a handshake flight, a
    /// key update, an alert).
    pub fn read(&mut self, dst: &mut RecvBuf, budget: usize) -> Result<Progress, TransportError> {
        self.read_with(dst, budget, ReadMode::UntilWouldBlock)
    }

    /// [`read`](Self::read), where `mode` says whether a short read may end
    /// the step (see [`ReadMode`] for when that is sound).
    pub fn read_with(
        &mut self,
        dst: &mut RecvBuf,
        budget: usize,
        mode: ReadMode,
    ) -> Result<Progress, TransportError> {
        match self {
            Transport::Plain(stream) => {
                read_socket(stream, dst, budget, mode).map_err(TransportError::Io)
            }
            Transport::Tls(tls) => tls.read(dst, budget, mode),
        }
    }

    /// Writes as much of `src` as the transport takes. `bytes` is how much of
    /// `src` was consumed; `Drained` means the socket is full. Call only when
    /// [`accepts_app_data`](Self::accepts_app_data) is true.
    pub fn write(&mut self, src: &[u8]) -> Result<Progress, TransportError> {
        match self {
            Transport::Plain(stream) => write_socket(stream, src).map_err(TransportError::Io),
            Transport::Tls(tls) => tls.write(src),
        }
    }

    /// Writes as much of `bufs`, in order, as the transport takes, without
    /// first joining them: one `sendmsg(2)` for plain TCP; for TLS, rustls
    /// copies them into its records as it does any plaintext. `bytes` and
    /// `Drained` as for [`write`](Self::write) (a short `sendmsg` on a stream
    /// socket means its send buffer is full, as a short `write` does). A
    /// plain socket is offered at most 1,024 slices per call (the kernel's
    /// limit): `Ready` with fewer bytes than `bufs` hold means call again.
    /// Call only when [`accepts_app_data`](Self::accepts_app_data) is true.
    pub fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> Result<Progress, TransportError> {
        match self {
            Transport::Plain(stream) => {
                send_vectored_socket(stream, bufs).map_err(TransportError::Io)
            }
            Transport::Tls(tls) => tls.write_vectored(bufs),
        }
    }

    /// Whether application data can be written now: always for plain TCP;
    /// for TLS once the handshake is complete (until then only handshake
    /// records move, and application output waits outside the transport).
    pub fn accepts_app_data(&self) -> bool {
        match self {
            Transport::Plain(_) => true,
            Transport::Tls(tls) => !tls.conn.is_handshaking(),
        }
    }

    /// Whether the transport itself holds bytes that must reach the socket
    /// (always `false` for plain TCP; TLS records for TLS).
    pub fn wants_write(&self) -> bool {
        match self {
            Transport::Plain(_) => false,
            Transport::Tls(tls) => tls.conn.wants_write(),
        }
    }

    /// Writes bytes the transport itself holds (see
    /// [`wants_write`](Self::wants_write)).
    pub fn flush(&mut self) -> Result<IoState, TransportError> {
        match self {
            Transport::Plain(_) => Ok(IoState::Ready),
            Transport::Tls(tls) => tls.flush(),
        }
    }

    /// Whether a TLS handshake is still in progress (`false` for plain TCP).
    pub fn is_handshaking(&self) -> bool {
        match self {
            Transport::Plain(_) => false,
            Transport::Tls(tls) => tls.conn.is_handshaking(),
        }
    }

    /// What the TLS handshake negotiated, once it is complete.
    pub fn tls_info(&self) -> Option<TlsInfo> {
        let Transport::Tls(tls) = self else {
            return None;
        };
        let conn = &tls.conn;
        if conn.is_handshaking() {
            return None;
        }
        let (server_name, client_certificate) = match conn {
            Connection::Server(s) => (
                s.server_name().map(str::to_owned),
                s.peer_certificates().is_some(),
            ),
            Connection::Client(_) => (None, false),
        };
        Some(TlsInfo {
            version: conn.protocol_version()?,
            suite: conn.negotiated_cipher_suite()?.suite(),
            resumed: matches!(conn.handshake_kind(), Some(HandshakeKind::Resumed)),
            alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
            server_name,
            client_certificate,
        })
    }

    /// Starts a TLS key update (TLS 1.3): the next write carries it. Used by
    /// clients and tests; a server answers a peer's key update by itself.
    pub fn refresh_traffic_keys(&mut self) -> Result<(), TransportError> {
        match self {
            Transport::Plain(_) => Ok(()),
            Transport::Tls(tls) => tls.conn.refresh_traffic_keys().map_err(TransportError::Tls),
        }
    }

    /// Begins a graceful close: TLS queues `close_notify` (then
    /// [`flush`](Self::flush) before dropping); plain TCP needs nothing, the
    /// close itself sends FIN. Returns whether there is now something to flush.
    pub fn begin_close(&mut self) -> bool {
        match self {
            Transport::Plain(_) => false,
            Transport::Tls(tls) => {
                tls.conn.send_close_notify();
                tls.conn.wants_write()
            }
        }
    }

    /// Half-closes a plain TCP socket (sends FIN, keeps reading). For tests
    /// and clients; TLS uses [`begin_close`](Self::begin_close).
    pub fn shutdown_write(&mut self) -> io::Result<()> {
        match self.socket().shutdown(Shutdown::Write) {
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
            other => other,
        }
    }
}

// A short write ends the step as `Drained` without a further call that would
// only return `WouldBlock`: for a stream socket it proves the send buffer was
// full at that moment, and with edge-triggered readiness space freed later
// raises a new edge. Reads may do the same only in `ReadMode::ShortReadDrains`:
// a short read proves the receive queue held no more *data*, unless urgent
// data ended it at its mark, and not that the peer's FIN or reset was not
// already queued behind it (see `ReadMode`).
// Each saves one system call per request (measured with `strace -c`; see
// ARCHITECTURE.md).

fn read_socket(
    stream: &mut TcpStream,
    dst: &mut RecvBuf,
    budget: usize,
    mode: ReadMode,
) -> io::Result<Progress> {
    let mut total = 0;
    while total < budget {
        let buf = dst.spare(READ_CHUNK);
        let offered = buf.capacity() - buf.len();
        match recv_into_spare(stream, buf, usize::MAX) {
            Ok(0) => return Ok(progress(total, IoState::Eof)),
            Ok(n) => {
                total += n;
                if n < offered && mode == ReadMode::ShortReadDrains {
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

fn write_socket(stream: &TcpStream, src: &[u8]) -> io::Result<Progress> {
    let mut total = 0;
    while total < src.len() {
        let offered = src.len() - total;
        match send(stream, &src[total..]) {
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

/// One `sendmsg`: `Ready` if it took everything offered, `Drained` if it
/// took less or nothing (the send buffer is full; see above).
fn send_vectored_socket(stream: &TcpStream, bufs: &[IoSlice<'_>]) -> io::Result<Progress> {
    // Slices past the kernel's limit wait for the next call: `Ready` with
    // fewer bytes than the caller has says "call again", not "drained".
    let bufs = &bufs[..bufs.len().min(MAX_SLICES)];
    let offered: usize = bufs.iter().map(|b| b.len()).sum();
    if offered == 0 {
        return Ok(progress(0, IoState::Ready));
    }
    loop {
        return match send_vectored(stream, bufs) {
            Ok(0) => Err(io::ErrorKind::WriteZero.into()),
            Ok(n) if n < offered => Ok(progress(n, IoState::Drained)),
            Ok(n) => Ok(progress(n, IoState::Ready)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(progress(0, IoState::Drained)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => Err(e),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn pair() -> (Transport, TcpStream) {
        let listener = crate::test_sockets::roomy_listener();
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

    /// Sends `bytes`, then the FIN, and waits until the server's socket
    /// holds both (a peek returns the data and the EOF is not yet read).
    fn data_then_fin(client: &mut TcpStream, transport: &Transport, bytes: &[u8]) {
        client.write_all(bytes).unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        let mut peek = vec![0; bytes.len() + 1];
        while transport.socket().peek(&mut peek).map_or(0, |n| n) < bytes.len() {
            std::thread::yield_now();
        }
        // Loopback queues the FIN during `shutdown`; give a busy machine time.
        std::thread::sleep(std::time::Duration::from_millis(20));
    }

    #[test]
    fn a_short_read_returns_the_data_and_leaves_a_queued_fin_unread() {
        // The kernel behaviour that makes `ShortReadDrains` unsound once the
        // peer's end is known: data and FIN queued together, one short read
        // returns only the data.
        let (mut transport, mut client) = pair();
        data_then_fin(&mut client, &transport, b"PING\r\n");
        let mut buf = RecvBuf::new();
        let first = transport
            .read_with(&mut buf, 1 << 20, ReadMode::ShortReadDrains)
            .unwrap();
        assert_eq!(first, progress(6, IoState::Drained));
        let second = transport
            .read_with(&mut buf, 1 << 20, ReadMode::ShortReadDrains)
            .unwrap();
        assert_eq!(second, progress(0, IoState::Eof), "the FIN was still there");
    }

    #[test]
    fn reading_until_would_block_sees_the_data_and_the_fin_in_one_step() {
        let (mut transport, mut client) = pair();
        data_then_fin(&mut client, &transport, b"PING\r\n");
        let mut buf = RecvBuf::new();
        assert_eq!(
            transport.read(&mut buf, 1 << 20).unwrap(),
            progress(6, IoState::Eof)
        );
        assert_eq!(buf.as_slice(), b"PING\r\n");
    }

    #[test]
    fn a_read_that_fills_the_space_offered_is_not_short_and_the_step_reads_on() {
        // Only a read shorter than the space offered proves the queue empty.
        // After a full one more may wait, and with edge-triggered readiness
        // no new edge would announce it: the connection would stall.
        // More than fresh read storage holds (96 KiB), so the first read
        // fills what it is offered.
        let (mut transport, mut client) = pair();
        let sent = vec![b'x'; 300_000];
        client.write_all(&sent).unwrap();
        let mut peek = vec![0; sent.len()];
        while transport.socket().peek(&mut peek).map_or(0, |n| n) < sent.len() {
            std::thread::yield_now();
        }
        let mut buf = RecvBuf::new();
        let read = transport
            .read_with(&mut buf, 1 << 20, ReadMode::ShortReadDrains)
            .unwrap();
        assert_eq!(read, progress(sent.len(), IoState::Drained));
        assert_eq!(buf.as_slice(), &sent[..]);
    }

    #[test]
    fn data_then_reset_reads_the_data_then_fails() {
        let (mut transport, client) = pair();
        let mut client = client;
        client.write_all(b"PING\r\n").unwrap();
        let mut peek = [0u8; 8];
        while transport.socket().peek(&mut peek).map_or(0, |n| n) < 6 {
            std::thread::yield_now();
        }
        socket_linger_zero(&client);
        drop(client);
        std::thread::sleep(std::time::Duration::from_millis(20));
        let mut buf = RecvBuf::new();
        let err = transport
            .read(&mut buf, 1 << 20)
            .expect_err("the reset follows the data");
        assert!(
            matches!(err, TransportError::Io(ref e) if e.kind() == io::ErrorKind::ConnectionReset),
            "{err}"
        );
        assert_eq!(buf.as_slice(), b"PING\r\n", "the data came first");
    }

    /// `SO_LINGER` 0: closing sends a reset instead of a FIN.
    fn socket_linger_zero(stream: &TcpStream) {
        socket2::SockRef::from(stream)
            .set_linger(Some(std::time::Duration::ZERO))
            .unwrap();
    }

    #[test]
    fn a_vectored_write_stops_at_a_full_socket_inside_a_slice_and_then_sends_the_rest_in_order() {
        let (mut transport, mut client) = pair();
        let large: Vec<u8> = (0..=255).cycle().take(16 << 20).collect();
        let bufs = [vec![1; 100], large, vec![3; 10]];
        let want = bufs.concat();
        let mut slices: Vec<IoSlice<'_>> = bufs.iter().map(|b| IoSlice::new(b)).collect();
        // Nobody reads yet: the socket fills inside the large slice.
        let first = transport.write_vectored(&slices).unwrap();
        assert_eq!(first.state, IoState::Drained);
        assert!(
            first.bytes > 100 && first.bytes < 100 + (16 << 20),
            "{first:?}"
        );
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            client.read_to_end(&mut got).unwrap();
            got
        });
        let mut rest = &mut slices[..];
        IoSlice::advance_slices(&mut rest, first.bytes);
        let mut sent = first.bytes;
        while sent < want.len() {
            let p = transport.write_vectored(rest).unwrap();
            assert_eq!(p.state == IoState::Ready, sent + p.bytes == want.len());
            IoSlice::advance_slices(&mut rest, p.bytes);
            sent += p.bytes;
            if p.state == IoState::Drained {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
        drop(transport);
        assert!(reader.join().unwrap() == want, "every byte, in order");
    }

    #[test]
    fn more_slices_than_the_kernel_takes_are_sent_over_two_calls_in_order() {
        let (mut transport, mut client) = pair();
        let bytes: Vec<u8> = (0..1500u32).map(|i| (i % 251) as u8).collect();
        let mut slices: Vec<IoSlice<'_>> = bytes.chunks(1).map(IoSlice::new).collect();
        let first = transport.write_vectored(&slices).unwrap();
        assert_eq!((first.bytes, first.state), (1024, IoState::Ready));
        let mut rest = &mut slices[..];
        IoSlice::advance_slices(&mut rest, first.bytes);
        let second = transport.write_vectored(rest).unwrap();
        assert_eq!((second.bytes, second.state), (476, IoState::Ready));
        let mut got = vec![0; bytes.len()];
        client.read_exact(&mut got).unwrap();
        assert_eq!(got, bytes);
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
