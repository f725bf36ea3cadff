//! What a server built on baton supplies: a codec (runs on IO threads) and a
//! service (runs on the main loop).

use std::fmt;
use std::net::SocketAddr;

use baton_tls::{RecvBuf, TlsInfo};

use crate::{CloseReason, ConnId, Ctx, OutBuf, TimerId};

/// Turns bytes into frames and frames into bytes for one connection.
///
/// Runs on an IO thread when the server has IO threads, otherwise on the
/// loop; either way on one thread at a time (it moves with its connection).
/// It has no access to application state: that is the point. Parsing cost is
/// spread across cores.
///
/// A panic in any method, wherever it runs (an IO step, or the loop
/// sizing a frame with [`encoded_len`](Self::encoded_len) or asking for an
/// [`error_frame`](Self::error_frame)), closes this connection
/// (`CodecPanic`), is logged and counted; other connections are unaffected.
/// A frame's `encoded_len` is counted against the connection the frame is
/// sent to, not the callback that sent it.
pub trait Codec: Send + 'static {
    /// A decoded request.
    type In: Send + 'static;
    /// A reply or pushed message.
    type Out: Send + 'static;

    /// Decodes one frame from the front of `src`, consuming its bytes.
    /// `Ok(None)`: more bytes are needed. `Err`: the stream is unusable; the
    /// frames decoded before it are still delivered, then
    /// [`error_frame`](Self::error_frame) is sent and the connection closes.
    fn decode(&mut self, src: &mut RecvBuf) -> Result<Option<Self::In>, ProtocolError>;

    /// Appends the encoding of `frame` to `dst`.
    fn encode(&mut self, frame: Self::Out, dst: &mut Vec<u8>);

    /// Appends the encoding of `frame` to the connection's output; what the
    /// runtime calls. The default appends [`encode`](Self::encode)'s bytes
    /// to [`OutBuf::bytes_mut`], so a codec that only implements `encode`
    /// works as it always did.
    ///
    /// Override it to send large buffers the application already holds
    /// behind an `Arc` without copying them into the write buffer: append
    /// the bytes before such a buffer, [`OutBuf::push_shared`] it, and go
    /// on appending. Bytes leave in exactly that order; a shared buffer is
    /// then copied once, by the kernel from `sendmsg` (plain TCP) or by
    /// rustls into its records (TLS). It runs where `encode` would (an IO
    /// thread or the loop, one thread at a time), once per frame, in the
    /// order frames were sent; `dst` holds only earlier frames' bytes not
    /// yet written, which must be left as they are. The bytes should be
    /// those `encode` writes: [`encoded_len`](Self::encoded_len) is the
    /// size of both, and a shared buffer counts in the connection's output
    /// (limits, `Ctx::output_len`) by its length until its last byte is
    /// written.
    fn encode_into(&mut self, frame: Self::Out, dst: &mut OutBuf) {
        self.encode(frame, dst.bytes_mut());
    }

    /// Bytes `frame` will take once encoded (an upper bound is fine). Used for
    /// output-buffer limits on the loop, where the codec itself may be away.
    fn encoded_len(frame: &Self::Out) -> usize;

    /// The frame to send before closing for a protocol error (Redis:
    /// `-ERR Protocol error: ...`). Default: none, just close.
    fn error_frame(&mut self, error: &ProtocolError) -> Option<Self::Out> {
        let _ = error;
        None
    }
}

/// Why a byte stream could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError {
    /// Which kind of failure.
    pub kind: ProtocolErrorKind,
    /// A message for logs and for the client.
    pub message: String,
}

/// See [`ProtocolError`]. More kinds may be added in minor versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolErrorKind {
    /// A frame is larger than the configured limit.
    FrameTooLarge,
    /// The bytes do not follow the protocol.
    Malformed,
}

impl ProtocolError {
    /// A malformed-input error.
    pub fn malformed(message: impl Into<String>) -> Self {
        Self {
            kind: ProtocolErrorKind::Malformed,
            message: message.into(),
        }
    }

    /// A too-large-frame error.
    pub fn too_large(message: impl Into<String>) -> Self {
        Self {
            kind: ProtocolErrorKind::FrameTooLarge,
            message: message.into(),
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ProtocolError {}

/// What the service learns about a connection when it opens. Kept by the
/// loop for the connection's whole life:
/// [`Ctx::conn_info`](crate::Ctx::conn_info) answers for any open
/// connection, wherever it is at that moment.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnInfo {
    /// The other end's address: the client of an accepted connection, the
    /// server of one the service opened.
    pub peer: SocketAddr,
    /// This end's address.
    pub local: SocketAddr,
    /// Whether a listener accepted it or the service opened it.
    pub origin: Origin,
    /// For a TLS connection, what its handshake negotiated: the ALPN
    /// protocol and (for an accepted connection) the server name (SNI) the
    /// client asked for among it. A TLS connection opens only once its
    /// handshake is complete, so this is `Some` for every TLS connection the
    /// service sees.
    pub tls: Option<TlsInfo>,
}

/// How a connection came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// Accepted by the listener at this index (in the order they were
    /// added).
    Listener(usize),
    /// Opened by the service with [`Ctx::connect`](crate::Ctx::connect).
    Connect,
}

/// What happens to a connection once its peer has finished sending (see
/// [`Service::on_peer_eof`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AfterEof {
    /// Close once the output queued so far is flushed (the default; what a
    /// request/response server wants).
    #[default]
    Close,
    /// Keep the connection open for writing (a half-closed TCP connection):
    /// it closes when the service calls [`Ctx::close`](crate::Ctx::close)
    /// or [`Ctx::shutdown_write`](crate::Ctx::shutdown_write) and the
    /// output is flushed, or on an error, timeout or shutdown.
    KeepWriting,
}

/// The application, run on the main loop with `&mut self`.
///
/// Every callback runs on the loop's thread, one at a time, so state here
/// needs no lock, and check-then-act is one uninterrupted step. Other
/// threads reach it only through [`LoopHandle::post`](crate::LoopHandle::post).
///
/// # A connection's life
/// A plain connection opens when it is accepted; a TLS connection when its
/// handshake completes (one that fails its handshake never opens, and is
/// only counted). Opening calls [`codec`](Self::codec), then
/// [`on_open`](Self::on_open), whose return value is the connection's state:
/// owned by the loop, handed by `&mut` to every callback about that
/// connection, dropped after [`on_close`](Self::on_close), which is called
/// exactly once for every connection whose `on_open` returned.
///
/// A connection the service opens with [`Ctx::connect`] gets its `ConnId`
/// at once and opens the same way once its TCP connect (and TLS
/// handshake) completes; if it never does, [`on_connect_failed`](Self::on_connect_failed)
/// is called instead of `on_open`, exactly once.
///
/// When the peer finishes sending, [`on_peer_eof`](Self::on_peer_eof) is
/// called once, after every frame before the end was delivered; by default
/// the connection then closes once its output is flushed.
///
/// # Panics
/// A panic in a callback about a connection (`codec`, `on_open`,
/// `frames_ahead`, `on_frame`, `on_drained`, `on_conn_timer`,
/// `on_peer_eof`) closes that connection (`ServicePanic`); its state is
/// dropped without `on_close` if `on_open` never returned. A panic in
/// `on_start`, `on_timer`, `on_command`, `on_close` or `on_connect_failed`
/// is about no open connection: the callback is abandoned there.
/// Every panic is logged and counted (`service_panics`), and the loop goes
/// on: state the callback was changing may be half-changed, as after any
/// caught panic.
pub trait Service: Sized + 'static {
    /// The codec of each connection.
    type Codec: Codec;
    /// The service's state for each connection (use `()` for none).
    type ConnState: 'static;
    /// Messages other threads post to the loop (use `()` for none).
    type Command: Send + 'static;

    /// Makes the codec for a connection that is opening: at accept for
    /// plain TCP, after the handshake for TLS, so `info.tls` (ALPN, server
    /// name) can choose it.
    fn codec(&mut self, info: &ConnInfo) -> Self::Codec;

    /// The loop is starting (called once, before any connection): a place
    /// to set the first timers.
    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        let _ = ctx;
    }

    /// A connection opened; returns its state. It may already send (a
    /// greeting). [`Ctx::conn_info`] says who it is.
    fn on_open(&mut self, ctx: &mut Ctx<'_, Self>, conn: ConnId) -> Self::ConnState;

    /// A frame arrived. Frames of one connection arrive in order; none
    /// arrives while its reading is paused or its output is over the soft
    /// limit.
    fn on_frame(
        &mut self,
        ctx: &mut Ctx<'_, Self>,
        conn: ConnId,
        state: &mut Self::ConnState,
        frame: <Self::Codec as Codec>::In,
    );

    /// The next frames of a connection, in order, seen before the first of them
    /// reaches [`on_frame`](Self::on_frame) whenever more than one is waiting:
    /// up to 16 at a time (a long pipeline is shown window by window, as its
    /// frames are delivered). A frame is shown once while delivery runs on;
    /// when it keeps stopping (the output limit), up to 16 times, so keep the
    /// work per frame small and bounded. A hint, for starting what the batch
    /// will need: the KV example prefetches the keys' hash buckets, so sixteen
    /// pipelined lookups wait on memory together, not one after another. A
    /// frame seen here may be held back (a close, a pause, the output limit);
    /// it is seen again before it is delivered. It runs on the loop, with no
    /// `Ctx`: it cannot send, close or change what is delivered. A panic here
    /// closes the connection, as in `on_frame`.
    fn frames_ahead(
        &mut self,
        state: &Self::ConnState,
        frames: &mut dyn Iterator<Item = &<Self::Codec as Codec>::In>,
    ) {
        let _ = (state, frames);
    }

    /// The connection's output fell to the mark given to
    /// [`Ctx::notify_drained`] (once per call to it): room to send more of a
    /// large response.
    fn on_drained(&mut self, ctx: &mut Ctx<'_, Self>, conn: ConnId, state: &mut Self::ConnState) {
        let _ = (ctx, conn, state);
    }

    /// A connection closed; its `ConnId` is already stale and its state is
    /// handed back to be dropped (or kept).
    fn on_close(
        &mut self,
        ctx: &mut Ctx<'_, Self>,
        conn: ConnId,
        state: Self::ConnState,
        reason: CloseReason,
    ) {
        let _ = (ctx, conn, state, reason);
    }

    /// A timer set with [`Ctx::set_timer`] fired.
    fn on_timer(&mut self, ctx: &mut Ctx<'_, Self>, timer: TimerId, token: u64) {
        let _ = (ctx, timer, token);
    }

    /// A timer set with [`Ctx::set_conn_timer`] fired (never after the
    /// connection closed).
    fn on_conn_timer(
        &mut self,
        ctx: &mut Ctx<'_, Self>,
        conn: ConnId,
        state: &mut Self::ConnState,
        token: u64,
    ) {
        let _ = (ctx, conn, state, token);
    }

    /// The peer finished sending (TCP FIN, or TLS close_notify) and every
    /// frame it sent before that was delivered. Called once per connection,
    /// and not for one already closing. [`AfterEof::Close`] (the default)
    /// closes it once the output queued so far is flushed;
    /// [`AfterEof::KeepWriting`] keeps it open for writing: a proxy passes
    /// the end on to the other side ([`Ctx::shutdown_write`]) and goes on
    /// relaying that side's answer.
    fn on_peer_eof(
        &mut self,
        ctx: &mut Ctx<'_, Self>,
        conn: ConnId,
        state: &mut Self::ConnState,
    ) -> AfterEof {
        let _ = (ctx, conn, state);
        AfterEof::Close
    }

    /// A connection opened with [`Ctx::connect`] did not open: `reason`
    /// says why (`Io(ConnectionRefused)` and other socket errors,
    /// `ConnectTimeout`, `Tls(..)` with the failure's class,
    /// `HandshakeTimeout`, `Shutdown`, or a close the service asked for
    /// before it opened). Called once, instead of `on_open`; `conn` is
    /// already stale.
    fn on_connect_failed(&mut self, ctx: &mut Ctx<'_, Self>, conn: ConnId, reason: CloseReason) {
        let _ = (ctx, conn, reason);
    }

    /// A command posted through a [`LoopHandle`](crate::LoopHandle).
    fn on_command(&mut self, ctx: &mut Ctx<'_, Self>, command: Self::Command) {
        let _ = (ctx, command);
    }
}

/// Why a write to a connection was refused. Nothing is silently dropped: the
/// caller learns the frame was not queued. More cases may be added in
/// minor versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// The connection is closed (or the id is stale): it never reaches
    /// another connection.
    Gone,
    /// The connection is closing; it takes no new output.
    Closing,
    /// The frame would take the connection past its hard output limit; the
    /// connection is being closed (`OutputLimit`).
    LimitExceeded,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendError::Gone => "connection gone",
            SendError::Closing => "connection closing",
            SendError::LimitExceeded => "output limit exceeded",
        })
    }
}

impl std::error::Error for SendError {}
