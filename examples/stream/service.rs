//! The stream service: `GET <n>\n` streams `n` bytes of a fixed pattern,
//! paced by the connection's output so a slow reader costs bounded memory.
//! Shared by the `stream` example and `tests/service_api.rs`.
//!
//! Pacing: the service sends [`CHUNK`]-byte frames while
//! [`Ctx::output_len`] is under [`HIGH_MARK`], then asks for
//! [`Service::on_drained`] at [`LOW_MARK`] and sends more from there. So at
//! most `HIGH_MARK + CHUNK` bytes are ever queued for one connection, however
//! large the response, and the output limits never apply.
//!
//! Codec by ALPN: plain TCP and TLS connections that agreed on
//! [`ALPN_STREAM`] speak the line protocol; TLS connections that agreed on
//! [`ALPN_ECHO`], or on no protocol at all, get an echo codec instead (every
//! byte comes back, so `GET 10\n` returns `GET 10\n`, not ten bytes).

use baton::{Codec, ConnId, ConnInfo, Ctx, ProtocolError, RecvBuf, Service};

/// Bytes per frame of a stream.
pub const CHUNK: usize = 64 << 10;
/// Output held for a connection at which the service stops sending.
pub const HIGH_MARK: usize = 256 << 10;
/// Output held at which a paused stream resumes.
pub const LOW_MARK: usize = 64 << 10;
/// ALPN protocol for the line protocol.
pub const ALPN_STREAM: &[u8] = b"stream/1";
/// ALPN protocol for echo.
pub const ALPN_ECHO: &[u8] = b"echo/1";
/// Longest request line accepted (a stream request is a few bytes).
pub const MAX_LINE: usize = 1024;

/// The pattern repeats every `PERIOD` bytes; a prime, so a chunk that came
/// twice, went missing or changed places breaks it.
const PERIOD: usize = 251;

/// The pattern from offset 0 for `PERIOD + CHUNK` bytes: any chunk of a
/// stream is a slice of it, so sending one copies and never computes.
static PATTERN: [u8; PERIOD + CHUNK] = {
    let mut table = [0u8; PERIOD + CHUNK];
    let mut i = 0;
    while i < table.len() {
        table[i] = (i % PERIOD) as u8;
        i += 1;
    }
    table
};

/// The `len` bytes of the stream at `offset` (`len` at most [`CHUNK`]).
pub fn pattern(offset: u64, len: usize) -> &'static [u8] {
    let start = (offset % PERIOD as u64) as usize;
    &PATTERN[start..start + len]
}

/// What a client asked for.
#[derive(Debug)]
pub enum Request {
    /// `GET <n>`: stream `n` bytes.
    Get(u64),
    /// A line that is not a request, with the reason.
    Bad(String),
    /// Bytes to echo (the echo codec).
    Data(Vec<u8>),
}

/// What the service sends.
#[derive(Debug)]
pub enum Reply {
    /// `len` bytes of the pattern from `offset`.
    Pattern {
        /// Offset in the stream.
        offset: u64,
        /// At most [`CHUNK`].
        len: usize,
    },
    /// A line (a `\n` is added).
    Line(String),
    /// Raw bytes (echo).
    Data(Vec<u8>),
}

/// Which protocol a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `GET <n>\n` requests.
    Lines,
    /// Every byte comes back.
    Echo,
}

impl Protocol {
    /// The protocol for a connection: by ALPN on TLS, the line protocol on
    /// plain TCP.
    pub fn for_conn(info: &ConnInfo) -> Self {
        match &info.tls {
            None => Protocol::Lines,
            Some(tls) if tls.alpn.as_deref() == Some(ALPN_STREAM) => Protocol::Lines,
            Some(_) => Protocol::Echo,
        }
    }
}

/// The codec of one connection, chosen when it opens.
#[derive(Debug)]
pub struct StreamCodec(pub Protocol);

impl Codec for StreamCodec {
    type In = Request;
    type Out = Reply;

    fn decode(&mut self, src: &mut RecvBuf) -> Result<Option<Request>, ProtocolError> {
        if self.0 == Protocol::Echo {
            return Ok((!src.is_empty()).then(|| Request::Data(src.take_all())));
        }
        let Some(end) = src.as_slice().iter().position(|&b| b == b'\n') else {
            if src.len() > MAX_LINE {
                return Err(ProtocolError::too_large("request line too long"));
            }
            return Ok(None);
        };
        let line = String::from_utf8_lossy(&src.as_slice()[..end]).into_owned();
        src.consume(end + 1);
        let line = line.trim_end_matches('\r');
        let request = match line.split_once(' ') {
            Some(("GET", n)) => match n.trim().parse() {
                Ok(n) => Request::Get(n),
                Err(_) => Request::Bad(format!("not a byte count: {n:?}")),
            },
            _ => Request::Bad(format!("unknown request: {line:?}")),
        };
        Ok(Some(request))
    }

    fn encode(&mut self, frame: Reply, dst: &mut Vec<u8>) {
        match frame {
            Reply::Pattern { offset, len } => dst.extend_from_slice(pattern(offset, len)),
            Reply::Line(line) => {
                dst.extend_from_slice(line.as_bytes());
                dst.push(b'\n');
            }
            Reply::Data(bytes) => dst.extend_from_slice(&bytes),
        }
    }

    fn encoded_len(frame: &Reply) -> usize {
        match frame {
            Reply::Pattern { len, .. } => *len,
            Reply::Line(line) => line.len() + 1,
            Reply::Data(bytes) => bytes.len(),
        }
    }
}

/// A response being streamed: the next offset to send and where it ends.
#[derive(Debug, Clone, Copy)]
struct Transfer {
    next: u64,
    end: u64,
}

/// One connection's state.
#[derive(Debug)]
pub struct ConnStream {
    /// Requests it made.
    pub requests: u64,
    /// The response being streamed, if any.
    transfer: Option<Transfer>,
}

/// The service, with what it measured (read back from `RunReport::service`).
#[derive(Debug, Default)]
pub struct Stream {
    /// The most output held for any connection, right after a send.
    pub max_output_len: usize,
    /// Pattern bytes queued, over all streams.
    pub bytes_streamed: u64,
    /// Streams queued to their last byte.
    pub streams_completed: u64,
    /// Connections opened, by protocol: line protocol, echo.
    pub opened: [u64; 2],
    /// `on_drained` calls: how often a stream waited for its reader.
    pub drains: u64,
    /// The most output held when `on_drained` was called (at most the
    /// mark asked for, if the runtime keeps its word).
    pub max_output_at_drain: usize,
}

impl Stream {
    /// Sends the rest of `state`'s transfer until the output reaches
    /// [`HIGH_MARK`], then waits for `on_drained`. Reading stays paused while
    /// a transfer runs, so the next request waits for this one to finish.
    fn pump(&mut self, ctx: &mut Ctx<'_, Self>, conn: ConnId, state: &mut ConnStream) {
        let Some(transfer) = &mut state.transfer else {
            return;
        };
        while transfer.next < transfer.end {
            let Some(held) = ctx.output_len(conn) else {
                return;
            };
            if held >= HIGH_MARK {
                // Gone only if the connection closed, and then nothing is owed.
                let _ = ctx.notify_drained(conn, LOW_MARK);
                return;
            }
            let len = (transfer.end - transfer.next).min(CHUNK as u64) as usize;
            let frame = Reply::Pattern {
                offset: transfer.next,
                len,
            };
            if ctx.send(conn, frame).is_err() {
                // Closing or gone: the runtime counted why.
                return;
            }
            transfer.next += len as u64;
            self.bytes_streamed += len as u64;
            let held = ctx.output_len(conn).unwrap_or(0);
            self.max_output_len = self.max_output_len.max(held);
        }
        state.transfer = None;
        self.streams_completed += 1;
        ctx.resume_reading(conn);
    }
}

impl Service for Stream {
    type Codec = StreamCodec;
    type ConnState = ConnStream;
    type Command = ();

    fn codec(&mut self, info: &ConnInfo) -> StreamCodec {
        StreamCodec(Protocol::for_conn(info))
    }

    fn on_open(&mut self, ctx: &mut Ctx<'_, Self>, conn: ConnId) -> ConnStream {
        let protocol = ctx
            .conn_info(conn)
            .map_or(Protocol::Lines, Protocol::for_conn);
        self.opened[usize::from(protocol == Protocol::Echo)] += 1;
        ConnStream {
            requests: 0,
            transfer: None,
        }
    }

    fn on_frame(
        &mut self,
        ctx: &mut Ctx<'_, Self>,
        conn: ConnId,
        state: &mut ConnStream,
        request: Request,
    ) {
        state.requests += 1;
        match request {
            Request::Get(0) => self.streams_completed += 1,
            Request::Get(n) => {
                state.transfer = Some(Transfer { next: 0, end: n });
                ctx.pause_reading(conn);
                self.pump(ctx, conn, state);
            }
            Request::Bad(reason) => {
                let _ = ctx.send(conn, Reply::Line(format!("ERR {reason}")));
            }
            Request::Data(bytes) => {
                let _ = ctx.send(conn, Reply::Data(bytes));
            }
        }
    }

    fn on_drained(&mut self, ctx: &mut Ctx<'_, Self>, conn: ConnId, state: &mut ConnStream) {
        self.drains += 1;
        let held = ctx.output_len(conn).unwrap_or(0);
        self.max_output_at_drain = self.max_output_at_drain.max(held);
        self.pump(ctx, conn, state);
    }
}
