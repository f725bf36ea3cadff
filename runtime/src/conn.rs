//! One connection, and the IO step that runs on an IO thread (or inline).
//!
//! A `Conn` is owned by exactly one place at a time: the loop's table or a
//! job. Everything an IO step touches is inside it, so the step needs no
//! lock and cannot reach the loop.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::IoSlice;
use std::panic::{catch_unwind, AssertUnwindSafe};

use baton_tls::{IoState, ReadMode, RecvBuf, Transport, TransportError};

pub(crate) use crate::output::{Edges, Output};
use crate::plan::{ConnFacts, Step};
use crate::{CloseReason, Codec, ConnId, ProtocolError, ProtocolErrorKind, TlsFailure};

/// Encode queued frames into the write buffer in batches of about this many
/// bytes (copied ones: shared chunks are not counted), so a deep queue is
/// not copied all at once.
const ENCODE_BATCH: usize = 64 * 1024;
/// Shared chunks one batch queues at most (each is an `iovec` or two).
const SHARED_PER_BATCH: usize = 32;
/// `iovec`s one vectored write offers: a batch's chunks and the bytes
/// between them, at most.
const WRITE_IOVECS: usize = 2 * SHARED_PER_BATCH + 1;
/// A write buffer larger than this is released once empty, so an idle
/// connection does not keep the memory of its largest reply.
const KEEP_WRITE_BUF: usize = 64 * 1024;
/// Same for a connection's receive buffer.
const KEEP_RECV_BUF: usize = 64 * 1024;
/// The thread's read buffer (one per thread, not per connection) keeps what
/// a step's reads grow it to (at most about twice the read budget): released
/// at 64 KiB, a step reading 64 KiB (4 KiB x 16 echoed) grew it to 128 KiB,
/// released it, and allocated and zeroed it again on the next step.
const KEEP_SCRATCH: usize = 1 << 20;
/// Frames one step decodes at most. Bytes are bounded by the read budget,
/// but a budget of tiny frames (`PING\r\n` is 6 bytes) would be tens of
/// thousands of decoded frames held at once; past this the rest of the
/// input waits, undecoded, for the next step, which decodes before it reads.
pub(crate) const MAX_FRAMES_PER_STEP: usize = 1024;

thread_local! {
    /// This thread's read buffer (the loop's, or an IO thread's). A
    /// connection holding no partial frame reads into it and keeps only the
    /// bytes of a frame not complete yet, so an idle connection holds no
    /// receive buffer at all (it held 16 KiB each: BENCHMARKS.md, memory).
    static SCRATCH: RefCell<RecvBuf> = RefCell::new(RecvBuf::new());
}

/// IO limits an IO step needs; copied into each IO thread.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IoLimits {
    pub(crate) read_budget: usize,
    pub(crate) max_frame_size: usize,
}

/// The half of a connection that travels: everything an IO step touches.
/// What only the loop needs (its info, service state, timers, close
/// decisions) stays in the table entry (`table::Entry`) and never leaves
/// the loop's thread.
pub(crate) struct Conn<C: Codec> {
    pub(crate) id: ConnId,
    pub(crate) transport: Transport,
    /// `None` until the service made one: a TLS connection gets its codec
    /// once the handshake is done (so ALPN can choose it); input read before
    /// then waits in `recv`, undecoded.
    pub(crate) codec: Option<C>,
    recv: RecvBuf,
    /// Decoded frames waiting for the loop to deliver them, in order. The
    /// loop stops delivering while output is over the soft limit, so a
    /// pipelining client that does not read waits here, undelivered.
    pub(crate) frames: VecDeque<C::In>,
    /// A decode error to act on after `frames` are delivered.
    pub(crate) decode_error: Option<ProtocolError>,
    pub(crate) output: Output<C::Out>,
    pub(crate) edges: Edges,
    /// The peer's EOF was read.
    pub(crate) peer_eof: bool,
    /// `recv` holds input not decoded yet: the last step stopped at
    /// `MAX_FRAMES_PER_STEP`, or the codec was installed after it arrived.
    undecoded: bool,
    /// A fatal error: close with this reason, now.
    pub(crate) failed: Option<CloseReason>,
    /// A socket error a read ended with (a request, then a reset): what
    /// was read before it is the peer's and is decoded and delivered; then
    /// the connection closes with this reason ([`failure`](Self::failure)).
    read_error: Option<CloseReason>,
    pub(crate) span: tracing::Span,
}

impl<C: Codec> std::fmt::Debug for Conn<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// What one IO step did, for the loop's counters.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct StepReport {
    pub(crate) bytes_in: u64,
    pub(crate) bytes_out: u64,
}

impl<C: Codec> Conn<C> {
    /// A new connection; `codec` is `None` until the service makes one.
    pub(crate) fn new(
        id: ConnId,
        transport: Transport,
        codec: Option<C>,
        span: tracing::Span,
    ) -> Self {
        Self {
            id,
            transport,
            codec,
            recv: RecvBuf::new(),
            frames: VecDeque::new(),
            decode_error: None,
            output: Output::default(),
            // A new socket may already hold data, and can take output.
            edges: Edges {
                readable: true,
                writable: true,
                read_to_would_block: false,
            },
            peer_eof: false,
            undecoded: false,
            failed: None,
            read_error: None,
            span,
        }
    }

    /// Installs the codec the service made once the connection opened; input
    /// that arrived before (with the TLS handshake's last flight) is decoded
    /// by the next step.
    pub(crate) fn install_codec(&mut self, codec: C) {
        self.codec = Some(codec);
        self.undecoded = !self.recv.is_empty();
    }

    /// The service changed the codec: input received but not decoded yet
    /// (held back by the codec until the change, or a partial frame) is
    /// decoded by the next step, before it reads.
    pub(crate) fn codec_changed(&mut self) {
        self.undecoded = !self.recv.is_empty();
    }

    /// The peer's end was read and every frame before it was handed over:
    /// nothing it sent is left to decode or deliver.
    pub(crate) fn input_finished(&self) -> bool {
        self.read_error.is_none() && self.peer_eof && self.input_delivered()
    }

    /// Nothing read is left to decode or deliver.
    fn input_delivered(&self) -> bool {
        !self.undecoded && self.frames.is_empty() && self.decode_error.is_none()
    }

    /// Why the connection must close now: a fatal error, or a socket error
    /// once everything the peer sent before it was read and delivered.
    pub(crate) fn failure(&self) -> Option<CloseReason> {
        self.failed.clone().or_else(|| {
            let done = self.peer_eof && self.input_delivered();
            self.read_error.clone().filter(|_| done)
        })
    }

    /// Whether [`failure`](Self::failure) has a reason, without cloning it
    /// (asked for every step's plan).
    fn has_failed(&self) -> bool {
        self.failed.is_some()
            || (self.read_error.is_some() && self.peer_eof && self.input_delivered())
    }

    /// Whether a socket error ended the connection's IO (what the peer sent
    /// before it may still be delivered): it takes no more output.
    pub(crate) fn is_dead(&self) -> bool {
        self.read_error.is_some()
    }

    /// A socket error ended the connection's IO and what the peer sent
    /// before it is still to be read or delivered.
    pub(crate) fn delivering_before_error(&self) -> bool {
        self.read_error.is_some()
            && self.failed.is_none()
            && !(self.peer_eof && self.input_delivered())
    }

    /// Output bytes held for this connection.
    pub(crate) fn output_bytes(&self) -> usize {
        self.output.bytes()
    }

    /// Whether application output is queued and the transport can take it
    /// now (a TLS transport takes none until its handshake is done).
    pub(crate) fn app_output_ready(&self) -> bool {
        self.output_bytes() > 0 && self.transport.accepts_app_data()
    }

    /// The IO half of the facts that decide the next step; the loop adds
    /// its own (`closing`, held input).
    pub(crate) fn facts(&self) -> ConnFacts {
        ConnFacts {
            readable: self.edges.readable,
            writable: self.edges.writable,
            // After a socket error nothing more is written.
            has_output: self.read_error.is_none()
                && (self.app_output_ready() || self.transport.wants_write()),
            undecoded: self.undecoded,
            pending_frames: !self.frames.is_empty() || self.decode_error.is_some(),
            hold_input: false,
            peer_eof: self.peer_eof,
            keep_open: false,
            closing: false,
            failed: self.has_failed(),
        }
    }

    /// The IO step: write what is queued, read and decode what arrived, and
    /// write again if the transport produced bytes of its own while reading.
    /// Runs on an IO thread or inline; never touches the loop. A codec panic
    /// is caught and turned into a close. A panic outside that catch (a
    /// tracing layer's, entering the span) is caught by whoever runs the
    /// step: the IO thread's pool, or the loop (`Server::run_step`).
    pub(crate) fn run_step(&mut self, step: Step, limits: IoLimits) -> StepReport {
        let _enter = self.span.clone().entered();
        let mut report = StepReport::default();
        let result = catch_unwind(AssertUnwindSafe(|| {
            if step.write {
                self.flush(&mut report);
                if let Some(CloseReason::Io(_)) = self.failed {
                    // The peer is gone (reset), but what it sent before
                    // still waits in the socket and is the peer's: read it
                    // (the send consumed the error, so the reads end in
                    // EOF), deliver it, then close with the write's error.
                    // Nothing more is written.
                    self.read_error = self.failed.take();
                    self.output.discard();
                    self.edges.readable = true;
                    self.edges.read_to_would_block = true;
                }
            }
            if step.read && self.failed.is_none() {
                self.read_and_decode(limits, &mut report);
            }
            // Reading may have made the transport want to write (a TLS
            // handshake flight) or finished the handshake that held back
            // application output.
            if self.failed.is_none()
                && self.read_error.is_none()
                && self.edges.writable
                && (self.transport.wants_write() || self.app_output_ready())
            {
                self.flush(&mut report);
            }
        }));
        if result.is_err() {
            tracing::warn!("codec panicked; closing the connection");
            self.failed = Some(CloseReason::CodecPanic);
        }
        report
    }

    fn flush(&mut self, report: &mut StepReport) {
        while self.transport.accepts_app_data() {
            if self.output.buf.is_empty() {
                self.encode_batch();
                if self.output.buf.is_empty() {
                    break;
                }
            }
            let buf = &self.output.buf;
            let written = match buf.contiguous() {
                Some(bytes) => self.transport.write(bytes),
                // Shared chunks among the bytes: one `sendmsg` (or one
                // vectored write into rustls) takes them in order, uncopied.
                None => {
                    let mut iov = [IoSlice::new(&[]); WRITE_IOVECS];
                    let n = buf.gather(&mut iov);
                    self.transport.write_vectored(&iov[..n])
                }
            };
            match written {
                Ok(progress) => {
                    self.output.buf.consume(progress.bytes);
                    report.bytes_out += progress.bytes as u64;
                    if progress.state == IoState::Drained {
                        self.edges.writable = false;
                        return;
                    }
                }
                Err(e) => {
                    self.failed = Some(failure(e));
                    return;
                }
            }
        }
        match self.transport.flush() {
            Ok(IoState::Drained) => self.edges.writable = false,
            Ok(_) => {}
            Err(e) => self.failed = Some(failure(e)),
        }
        self.output.buf.release_if_larger(KEEP_WRITE_BUF);
    }

    /// Encodes queued frames into the (empty) output buffer: until the
    /// owned bytes reach `ENCODE_BATCH`, or `SHARED_PER_BATCH` chunks are
    /// queued. Shared chunks are not counted in the batch's bytes: they
    /// are not copied, so encoding them ahead costs nothing.
    fn encode_batch(&mut self) {
        // Output is only ever queued to an open connection, which has its
        // codec.
        let Some(codec) = self.codec.as_mut() else {
            return;
        };
        let out = &mut self.output;
        while out.buf.owned_len() < ENCODE_BATCH && out.buf.shared_chunks() < SHARED_PER_BATCH {
            let Some(frame) = out.frames.pop_front() else {
                break;
            };
            out.queued -= C::encoded_len(&frame);
            codec.encode_into(frame, &mut out.buf);
        }
    }

    fn read_and_decode(&mut self, limits: IoLimits, report: &mut StepReport) {
        if self.undecoded {
            // Input from an earlier step waits: decode it before reading more,
            // so what is held stays within one read budget.
            let mut recv = std::mem::take(&mut self.recv);
            self.decode(&mut recv);
            self.recv = recv;
            self.recv.shrink_if_idle(KEEP_RECV_BUF);
        } else if self.recv.is_empty() {
            // No partial frame held: read into this thread's buffer and keep
            // only what is left after decoding (usually nothing).
            SCRATCH.with(|scratch| {
                let mut scratch = scratch.borrow_mut();
                // Whatever a panicking step may have left must never reach
                // another connection.
                let stale = scratch.len();
                scratch.consume(stale);
                self.read_into(&mut scratch, limits, report);
                if !scratch.is_empty() {
                    self.recv.extend_from_slice(scratch.as_slice());
                    let kept = scratch.len();
                    scratch.consume(kept);
                }
                scratch.shrink_if_idle(KEEP_SCRATCH);
            });
        } else {
            let mut recv = std::mem::take(&mut self.recv);
            self.read_into(&mut recv, limits, report);
            self.recv = recv;
            self.recv.shrink_if_idle(KEEP_RECV_BUF);
        }
        // Held complete frames (a decode backlog) are not one large frame.
        // Before the codec exists (the TLS handshake's last flight), input is
        // not one frame either: at most one read budget waits for it.
        if self.codec.is_some()
            && self.decode_error.is_none()
            && !self.undecoded
            && self.recv.len() > limits.max_frame_size
        {
            self.decode_error = Some(ProtocolError {
                kind: ProtocolErrorKind::FrameTooLarge,
                message: format!("frame larger than {} bytes", limits.max_frame_size),
            });
        }
    }

    /// Reads into `recv` and decodes the complete frames in it.
    fn read_into(&mut self, recv: &mut RecvBuf, limits: IoLimits, report: &mut StepReport) {
        let mode = if self.edges.read_to_would_block {
            ReadMode::UntilWouldBlock
        } else {
            ReadMode::ShortReadDrains
        };
        let before = recv.len();
        match self.transport.read_with(recv, limits.read_budget, mode) {
            // A socket error after data (a request, then a reset): the data
            // came first and is the peer's, as a blocking reader would see
            // it; it is decoded and delivered, then the connection closes
            // with the error. (Redis, too, runs a command read before a
            // reset.)
            Err(TransportError::Io(e)) if recv.len() > before => {
                report.bytes_in += (recv.len() - before) as u64;
                self.edges.readable = false;
                self.peer_eof = true;
                self.read_error = Some(CloseReason::Io(e.kind()));
            }
            Ok(progress) => {
                report.bytes_in += progress.bytes as u64;
                match progress.state {
                    IoState::Ready => {}
                    IoState::Drained => self.edges.readable = false,
                    IoState::Eof => {
                        if self.peer_eof {
                            // A read after the end (a half-closed connection
                            // kept open): only a reset or an error raises an
                            // edge now, and Linux reports it in SO_ERROR, not
                            // to the read (EPIPE for a reset in CLOSE_WAIT).
                            if let Ok(Some(e)) = self.transport.socket().take_error() {
                                self.failed = Some(CloseReason::Io(e.kind()));
                            }
                        }
                        self.edges.readable = false;
                        self.peer_eof = true;
                    }
                }
            }
            Err(e) => {
                self.failed = Some(failure(e));
                return;
            }
        }
        self.decode(recv);
    }

    /// Decodes complete frames from `recv`, at most `MAX_FRAMES_PER_STEP`
    /// of them; `undecoded` records whether input was left for later.
    fn decode(&mut self, recv: &mut RecvBuf) {
        let mut decoded = 0;
        self.undecoded = false;
        // No codec yet (a TLS connection not opened): the input waits in
        // `recv` for `install_codec`.
        let Some(codec) = self.codec.as_mut() else {
            return;
        };
        while self.decode_error.is_none() {
            if decoded == MAX_FRAMES_PER_STEP {
                self.undecoded = !recv.is_empty();
                break;
            }
            match codec.decode(recv) {
                Ok(Some(frame)) => {
                    self.frames.push_back(frame);
                    decoded += 1;
                }
                Ok(None) => break,
                Err(error) => self.decode_error = Some(error),
            }
        }
    }
}

/// The close reason for a failed transport step.
fn failure(error: TransportError) -> CloseReason {
    match error {
        TransportError::Io(e) => CloseReason::Io(e.kind()),
        TransportError::Tls(e) => {
            tracing::debug!(error = %e, "TLS error");
            CloseReason::Tls(TlsFailure::classify(&e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OutBuf;
    use std::io::{Read, Write};
    use std::net::{Shutdown, TcpListener, TcpStream};
    use std::sync::Arc;

    /// One byte per frame.
    struct Bytes;

    impl Codec for Bytes {
        type In = u8;
        type Out = u8;
        fn decode(&mut self, src: &mut RecvBuf) -> Result<Option<u8>, ProtocolError> {
            let Some(&byte) = src.as_slice().first() else {
                return Ok(None);
            };
            src.consume(1);
            Ok(Some(byte))
        }
        fn encode(&mut self, frame: u8, dst: &mut Vec<u8>) {
            dst.push(frame);
        }
        fn encoded_len(_: &u8) -> usize {
            1
        }
    }

    const LIMITS: IoLimits = IoLimits {
        read_budget: 1 << 20,
        max_frame_size: 1 << 20,
    };
    const READ: Step = Step {
        read: true,
        write: false,
    };

    fn conn_and_client() -> (Conn<Bytes>, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        let id = ConnId::new(0, 1);
        let span = tracing::Span::none();
        let conn = Conn::new(id, Transport::plain(server), Some(Bytes), span);
        (conn, client)
    }

    /// Sends `bytes` then the FIN, and waits until the server socket has them.
    fn send_then_fin(client: &mut TcpStream, conn: &Conn<Bytes>, bytes: &[u8]) {
        client.write_all(bytes).unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        let mut peek = vec![0; bytes.len()];
        while conn.transport.socket().peek(&mut peek).unwrap_or(0) < bytes.len() {
            std::thread::yield_now();
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }

    /// A codec whose frame never completes: everything read is held.
    #[derive(Debug)]
    struct Endless;

    impl Codec for Endless {
        type In = ();
        type Out = u8;
        fn decode(&mut self, _: &mut RecvBuf) -> Result<Option<()>, ProtocolError> {
            Ok(None)
        }
        fn encode(&mut self, frame: u8, dst: &mut Vec<u8>) {
            dst.push(frame);
        }
        fn encoded_len(_: &u8) -> usize {
            1
        }
    }

    /// `max_frame_size` is the largest frame allowed, not the first one
    /// refused: exactly that many held bytes pass, one more fails.
    #[test]
    fn a_frame_of_exactly_the_limit_is_held_and_one_byte_more_is_too_large() {
        const MAX: usize = 64;
        let limits = IoLimits {
            read_budget: 1 << 20,
            max_frame_size: MAX,
        };
        for (sent, too_large) in [(MAX, false), (MAX + 1, true)] {
            let (conn, mut client) = conn_and_client();
            let span = tracing::Span::none();
            let mut conn = Conn::new(conn.id, conn.transport, Some(Endless), span);
            conn.edges.read_to_would_block = true;
            client.write_all(&vec![b'x'; sent]).unwrap();
            let mut peek = vec![0; sent];
            while conn.transport.socket().peek(&mut peek).unwrap_or(0) < sent {
                std::thread::yield_now();
            }
            conn.run_step(READ, limits);
            assert_eq!(conn.recv.len(), sent, "everything read is held");
            let kind = conn.decode_error.as_ref().map(|e| e.kind);
            assert_eq!(
                kind,
                too_large.then_some(ProtocolErrorKind::FrameTooLarge),
                "{sent} bytes held"
            );
        }
    }

    /// Each frame is a shared chunk between `<` and `>`, queued uncopied.
    struct Shares;

    impl Codec for Shares {
        type In = ();
        type Out = Arc<[u8]>;
        fn decode(&mut self, _: &mut RecvBuf) -> Result<Option<()>, ProtocolError> {
            Ok(None)
        }
        fn encode(&mut self, frame: Arc<[u8]>, dst: &mut Vec<u8>) {
            dst.push(b'<');
            dst.extend_from_slice(&frame);
            dst.push(b'>');
        }
        fn encode_into(&mut self, frame: Arc<[u8]>, dst: &mut OutBuf) {
            dst.extend_from_slice(b"<");
            dst.push_shared(frame);
            dst.extend_from_slice(b">");
        }
        fn encoded_len(frame: &Arc<[u8]>) -> usize {
            frame.len() + 2
        }
    }

    const WRITE: Step = Step {
        read: false,
        write: true,
    };

    /// A reader that does not keep up: the socket fills inside a shared
    /// chunk, the rest waits (counted exactly) and leaves, in order, as the
    /// reader drains it.
    #[test]
    fn a_slow_reader_gets_every_shared_chunk_in_order_after_the_socket_fills_mid_chunk() {
        let (conn, mut client) = conn_and_client();
        socket2::SockRef::from(conn.transport.socket())
            .set_send_buffer_size(16 * 1024)
            .unwrap();
        let mut conn = Conn::new(conn.id, conn.transport, Some(Shares), tracing::Span::none());
        // More frames than one batch takes, large chunks among small ones.
        let chunks: Vec<Arc<[u8]>> = (0..70u32)
            .map(|i| {
                let len = if i % 10 == 3 {
                    256 * 1024 + i as usize
                } else {
                    1 + i as usize
                };
                (0..len).map(|j| (i as usize * 7 + j) as u8).collect()
            })
            .collect();
        let mut want = Vec::new();
        for chunk in &chunks {
            Shares.encode(chunk.clone(), &mut want);
            conn.output.queue(chunk.clone(), chunk.len() + 2);
        }
        assert_eq!(conn.output_bytes(), want.len());
        let inside_a_chunk = |conn: &Conn<Shares>| {
            let Some(next) = conn.output.buf.slices().next() else {
                return false;
            };
            let at = next.as_ptr() as usize;
            chunks.iter().any(|c| {
                let start = c.as_ptr() as usize;
                at > start && at < start + c.len()
            })
        };
        // Nobody reads yet: the first step fills the socket.
        let mut sent = conn.run_step(WRITE, LIMITS).bytes_out as usize;
        assert!(!conn.edges.writable, "a full socket ends the step");
        assert!(sent > 0 && sent < want.len());
        assert_eq!(
            conn.output_bytes(),
            want.len() - sent,
            "held, counted exactly"
        );
        let mut mid_chunk = usize::from(inside_a_chunk(&conn));
        let total = want.len();
        let reader = std::thread::spawn(move || {
            let mut got = vec![0; total];
            let mut filled = 0;
            while filled < total {
                let end = (filled + 4096).min(total);
                filled += client.read(&mut got[filled..end]).unwrap();
                std::thread::sleep(std::time::Duration::from_micros(50));
            }
            got
        });
        while conn.output_bytes() > 0 {
            conn.edges.writable = true;
            sent += conn.run_step(WRITE, LIMITS).bytes_out as usize;
            assert!(conn.failed.is_none());
            assert_eq!(conn.output_bytes(), want.len() - sent);
            mid_chunk += usize::from(inside_a_chunk(&conn));
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        assert!(reader.join().unwrap() == want, "every byte, in order");
        assert!(mid_chunk > 0, "some step ended inside a shared chunk");
        assert!(
            chunks.iter().all(|c| Arc::strong_count(c) == 1),
            "each chunk released once written"
        );
    }

    #[test]
    fn a_step_decodes_at_most_the_cap_and_the_rest_waits_for_the_next_step() {
        let (mut conn, mut client) = conn_and_client();
        let total = MAX_FRAMES_PER_STEP * 2 + 10;
        conn.edges.read_to_would_block = true;
        send_then_fin(&mut client, &conn, &vec![b'x'; total]);
        conn.run_step(READ, LIMITS);
        assert_eq!(conn.frames.len(), MAX_FRAMES_PER_STEP);
        assert!(conn.undecoded && conn.facts().undecoded);
        assert!(conn.peer_eof, "the read itself went to the end");
        conn.run_step(READ, LIMITS);
        assert_eq!(conn.frames.len(), 2 * MAX_FRAMES_PER_STEP);
        conn.run_step(READ, LIMITS);
        assert_eq!(conn.frames.len(), total, "every frame before the FIN");
        assert!(!conn.undecoded);
    }

    #[test]
    fn once_an_edge_said_read_to_would_block_a_read_goes_past_a_short_read_to_the_eof() {
        let (mut conn, mut client) = conn_and_client();
        send_then_fin(&mut client, &conn, b"ab");
        conn.edges.read_to_would_block = true;
        conn.run_step(READ, LIMITS);
        assert_eq!(conn.frames.len(), 2);
        assert!(conn.peer_eof, "the FIN behind the data was read");
    }

    /// Sends `bytes`, then resets (SO_LINGER 0), and waits until the
    /// server socket holds both.
    fn data_then_reset(conn: &mut Conn<Bytes>, mut client: TcpStream, bytes: &[u8]) {
        client.write_all(bytes).unwrap();
        let mut peek = vec![0u8; bytes.len() + 1];
        while conn.transport.socket().peek(&mut peek).unwrap_or(0) < bytes.len() {
            std::thread::yield_now();
        }
        socket2::SockRef::from(&client)
            .set_linger(Some(std::time::Duration::ZERO))
            .unwrap();
        drop(client);
        std::thread::sleep(std::time::Duration::from_millis(20));
        conn.edges.read_to_would_block = true;
    }

    #[test]
    fn data_read_before_a_reset_is_decoded_and_the_reset_waits_for_its_delivery() {
        // A request, then a reset: the request is the peer's and must be
        // served, as a blocking reader (and Redis) would.
        let (mut conn, client) = conn_and_client();
        data_then_reset(&mut conn, client, b"abc");
        let report = conn.run_step(READ, LIMITS);
        assert_eq!(report.bytes_in, 3);
        assert_eq!(conn.frames.iter().copied().collect::<Vec<_>>(), b"abc");
        assert_eq!(conn.failure(), None, "not before the frames are delivered");
        assert!(conn.delivering_before_error() && !conn.input_finished());
        conn.frames.clear();
        assert_eq!(
            conn.failure(),
            Some(CloseReason::Io(std::io::ErrorKind::ConnectionReset))
        );
        assert!(conn.facts().failed);
    }

    #[test]
    fn data_before_a_reset_is_delivered_even_when_the_step_writes_first() {
        // Replies are queued (the peer is not reading), the peer sends a
        // request and resets. The reset's edge reports writable too, so the
        // step reads and writes, and writes first: the write meets the
        // reset, and the request must still be read.
        let (mut conn, client) = conn_and_client();
        data_then_reset(&mut conn, client, b"abc");
        conn.output.queue(b'x', 1);
        conn.edges.readable = true;
        conn.edges.writable = true;
        let both = Step {
            read: true,
            write: true,
        };
        conn.run_step(both, LIMITS);
        assert_eq!(conn.frames.iter().copied().collect::<Vec<_>>(), b"abc");
        assert_eq!(conn.output_bytes(), 0, "nothing more goes to a reset peer");
        assert!(!conn.facts().has_output);
        conn.frames.clear();
        assert!(matches!(conn.failure(), Some(CloseReason::Io(_))));
    }

    #[test]
    fn without_a_reported_end_a_short_read_ends_the_step() {
        // The other side of the shortcut: one system call fewer per request
        // while the edge said nothing of an end (the FIN is left for the
        // edge that reported it, which the test above plays).
        let (mut conn, mut client) = conn_and_client();
        send_then_fin(&mut client, &conn, b"ab");
        conn.run_step(READ, LIMITS);
        assert_eq!(conn.frames.len(), 2);
        assert!(!conn.peer_eof && !conn.edges.readable);
    }
}
