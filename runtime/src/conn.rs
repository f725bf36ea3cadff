//! One connection, and the IO step that runs on an IO thread (or inline).
//!
//! A `Conn` is owned by exactly one place at a time: the loop's table or a
//! job. Everything an IO step touches is inside it, so the step needs no
//! lock and cannot reach the loop.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use baton_tls::{IoState, RecvBuf, TlsInfo, Transport, TransportError};

use crate::plan::{ConnFacts, Step};
use crate::{CloseReason, Codec, ConnId, ConnInfo, ProtocolError, ProtocolErrorKind, TlsFailure};

/// Encode queued frames into the write buffer in batches of about this many
/// bytes, so a deep queue is not copied all at once.
const ENCODE_BATCH: usize = 64 * 1024;
/// A write buffer larger than this is released once empty, so an idle
/// connection does not keep the memory of its largest reply.
const KEEP_WRITE_BUF: usize = 64 * 1024;
/// Same for the receive buffers.
const KEEP_RECV_BUF: usize = 64 * 1024;

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

pub(crate) struct Conn<C: Codec> {
    pub(crate) id: ConnId,
    pub(crate) info: ConnInfo,
    pub(crate) transport: Transport,
    pub(crate) codec: C,
    recv: RecvBuf,
    /// Decoded frames waiting for the loop to deliver them, in order. The
    /// loop stops delivering while output is over the soft limit, so a
    /// pipelining client that does not read waits here, undelivered.
    pub(crate) frames: VecDeque<C::In>,
    /// A decode error to act on after `frames` are delivered.
    pub(crate) decode_error: Option<ProtocolError>,
    /// Frames queued for sending, not yet encoded.
    out: VecDeque<C::Out>,
    /// Sum of `encoded_len` over `out`.
    out_queued: usize,
    /// Encoded bytes; `wbuf[wpos..]` is not yet written.
    wbuf: Vec<u8>,
    wpos: usize,
    /// Readiness edges seen and not consumed (see `plan::ConnFacts`).
    pub(crate) readable: bool,
    pub(crate) writable: bool,
    pub(crate) peer_eof: bool,
    /// A graceful close was requested, with this reason.
    pub(crate) closing: Option<CloseReason>,
    /// A fatal error: close with this reason, now.
    pub(crate) failed: Option<CloseReason>,
    /// When bytes last arrived (for the idle timeout).
    pub(crate) last_active: Instant,
    /// Already in the loop's list of connections to look at.
    pub(crate) scheduled: bool,
    /// Reading is paused because output is over the soft limit.
    pub(crate) paused: bool,
    /// What the TLS handshake negotiated, once it completed.
    pub(crate) tls: Option<TlsInfo>,
    /// close_notify has been queued (graceful TLS close).
    pub(crate) close_notify_sent: bool,
    /// The idle timeout does not apply (a subscriber waiting for pushes).
    pub(crate) idle_exempt: bool,
    pub(crate) span: tracing::Span,
}

impl<C: Codec> std::fmt::Debug for Conn<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("id", &self.id)
            .field("peer", &self.info.peer)
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
    pub(crate) fn new(
        id: ConnId,
        info: ConnInfo,
        transport: Transport,
        codec: C,
        now: Instant,
    ) -> Self {
        let span = tracing::debug_span!("conn", id = id.serial(), peer = %info.peer);
        Self {
            id,
            info,
            transport,
            codec,
            recv: RecvBuf::new(),
            frames: VecDeque::new(),
            decode_error: None,
            out: VecDeque::new(),
            out_queued: 0,
            wbuf: Vec::new(),
            wpos: 0,
            // A new socket may already hold data, and can take output.
            readable: true,
            writable: true,
            peer_eof: false,
            closing: None,
            failed: None,
            last_active: now,
            scheduled: false,
            paused: false,
            tls: None,
            close_notify_sent: false,
            idle_exempt: false,
            span,
        }
    }

    /// Output bytes held for this connection (queued frames and encoded
    /// bytes not yet written).
    pub(crate) fn output_bytes(&self) -> usize {
        self.out_queued + (self.wbuf.len() - self.wpos)
    }

    /// Queues a frame; `len` is its `encoded_len`.
    pub(crate) fn queue(&mut self, frame: C::Out, len: usize) {
        self.out.push_back(frame);
        self.out_queued += len;
    }

    /// Drops all queued output (on an abortive close).
    pub(crate) fn discard_output(&mut self) {
        self.out.clear();
        self.out_queued = 0;
        self.wbuf = Vec::new();
        self.wpos = 0;
    }

    /// Whether application output is queued and the transport can take it
    /// now (a TLS transport takes none until its handshake is done).
    pub(crate) fn app_output_ready(&self) -> bool {
        self.output_bytes() > 0 && self.transport.accepts_app_data()
    }

    pub(crate) fn facts(&self, soft_limit: usize) -> ConnFacts {
        let output = self.output_bytes();
        ConnFacts {
            readable: self.readable,
            writable: self.writable,
            has_output: self.app_output_ready() || self.transport.wants_write(),
            output_over_soft_limit: output >= soft_limit,
            peer_eof: self.peer_eof,
            closing: self.closing.is_some(),
            failed: self.failed.is_some(),
        }
    }

    /// The IO step: write what is queued, read and decode what arrived, and
    /// write again if the transport produced bytes of its own while reading.
    /// Runs on an IO thread or inline; never touches the loop. A codec panic
    /// is caught and turned into a close.
    pub(crate) fn run_step(&mut self, step: Step, limits: IoLimits) -> StepReport {
        let _enter = self.span.clone().entered();
        let mut report = StepReport::default();
        let result = catch_unwind(AssertUnwindSafe(|| {
            if step.write {
                self.flush(&mut report);
            }
            if step.read && self.failed.is_none() {
                self.read_and_decode(limits, &mut report);
            }
            // Reading may have made the transport want to write (a TLS
            // handshake flight) or finished the handshake that held back
            // application output.
            if self.failed.is_none()
                && self.writable
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
            if self.wpos == self.wbuf.len() {
                self.wbuf.clear();
                self.wpos = 0;
                self.encode_batch();
                if self.wbuf.is_empty() {
                    break;
                }
            }
            match self.transport.write(&self.wbuf[self.wpos..]) {
                Ok(progress) => {
                    self.wpos += progress.bytes;
                    report.bytes_out += progress.bytes as u64;
                    if progress.state == IoState::Drained {
                        self.writable = false;
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
            Ok(IoState::Drained) => self.writable = false,
            Ok(_) => {}
            Err(e) => self.failed = Some(failure(e)),
        }
        if self.wbuf.capacity() > KEEP_WRITE_BUF {
            self.wbuf = Vec::new();
        }
    }

    fn encode_batch(&mut self) {
        while self.wbuf.len() < ENCODE_BATCH {
            let Some(frame) = self.out.pop_front() else {
                break;
            };
            self.out_queued -= C::encoded_len(&frame);
            self.codec.encode(frame, &mut self.wbuf);
        }
    }

    fn read_and_decode(&mut self, limits: IoLimits, report: &mut StepReport) {
        if self.recv.is_empty() {
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
                scratch.shrink_if_idle(KEEP_RECV_BUF);
            });
        } else {
            let mut recv = std::mem::take(&mut self.recv);
            self.read_into(&mut recv, limits, report);
            self.recv = recv;
            self.recv.shrink_if_idle(KEEP_RECV_BUF);
        }
        if self.decode_error.is_none() && self.recv.len() > limits.max_frame_size {
            self.decode_error = Some(ProtocolError {
                kind: ProtocolErrorKind::FrameTooLarge,
                message: format!("frame larger than {} bytes", limits.max_frame_size),
            });
        }
    }

    /// Reads into `recv` and decodes every complete frame from it.
    fn read_into(&mut self, recv: &mut RecvBuf, limits: IoLimits, report: &mut StepReport) {
        match self.transport.read(recv, limits.read_budget) {
            Ok(progress) => {
                report.bytes_in += progress.bytes as u64;
                match progress.state {
                    IoState::Ready => {}
                    IoState::Drained => self.readable = false,
                    IoState::Eof => {
                        self.readable = false;
                        self.peer_eof = true;
                    }
                }
            }
            Err(e) => {
                self.failed = Some(failure(e));
                return;
            }
        }
        while self.decode_error.is_none() {
            match self.codec.decode(recv) {
                Ok(Some(frame)) => self.frames.push_back(frame),
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
