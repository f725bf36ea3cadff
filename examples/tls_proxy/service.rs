//! The proxy service: every client connection gets its own upstream
//! connection, and bytes pass unchanged both ways (HAProxy's TCP mode).
//!
//! A pair is two connections in the loop's table, each holding the other's
//! `ConnId` in its state. Nothing else links them: a `ConnId` never names a
//! reused slot, so a message for a side that is gone is refused (`Gone`),
//! never delivered to whichever connection took its place.

use std::collections::HashMap;
use std::time::Duration;

use baton::{AfterEof, ByteStream, CloseReason, ConnId, ConnInfo, Connect, Ctx, Origin, Service};

use crate::counters::Counters;

/// Output held for one side above which the other side stops being read
/// (TCP flow control then holds the sender back).
pub const HIGH_WATER: usize = 256 * 1024;
/// The other side is read again once the output is down to this.
pub const LOW_WATER: usize = 64 * 1024;

/// Which end of a pair a connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Client,
    Upstream,
}

/// A connection's state: its side and its partner (`None` once the
/// partner could not be opened).
#[derive(Debug)]
pub struct Peer {
    side: Side,
    other: Option<ConnId>,
}

/// Commands from other threads.
#[derive(Debug)]
pub enum Command {
    /// Print the stats line (SIGUSR1).
    PrintStats,
}

pub struct Proxy {
    upstream: Connect,
    /// How long a pair may stay half-closed (one side ended, the other
    /// not yet): HAProxy's `timeout client-fin` / `server-fin`.
    fin_timeout: Duration,
    /// Upstream connections not open yet, with the client each is for.
    pending: HashMap<ConnId, ConnId>,
    pub counters: Counters,
}

impl Proxy {
    pub fn new(upstream: Connect, fin_timeout: Duration) -> Self {
        Self {
            upstream,
            fin_timeout,
            pending: HashMap::new(),
            counters: Counters::default(),
        }
    }

    fn open_client(&mut self, ctx: &mut Ctx<'_, Self>, client: ConnId) -> Peer {
        self.counters.clients += 1;
        match ctx.connect(self.upstream.clone()) {
            Ok(upstream) => {
                // Nothing is read from the client until its upstream is
                // there to take it.
                ctx.pause_reading(client);
                self.pending.insert(upstream, client);
                Peer {
                    side: Side::Client,
                    other: Some(upstream),
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot connect upstream; closing the client");
                self.counters.connect_failed(&format!("{e}"));
                let _ = ctx.close(client);
                Peer {
                    side: Side::Client,
                    other: None,
                }
            }
        }
    }

    fn open_upstream(&mut self, ctx: &mut Ctx<'_, Self>, upstream: ConnId) -> Peer {
        let client = self.pending.remove(&upstream);
        match client.filter(|&c| ctx.is_open(c) && !ctx.is_closing(c)) {
            Some(client) => {
                self.counters.upstreams += 1;
                ctx.resume_reading(client);
            }
            None => {
                let _ = ctx.close(upstream);
            }
        }
        Peer {
            side: Side::Upstream,
            other: client,
        }
    }
}

impl Service for Proxy {
    type Codec = ByteStream;
    type ConnState = Peer;
    type Command = Command;

    fn codec(&mut self, _: &ConnInfo) -> ByteStream {
        ByteStream::default()
    }

    fn on_open(&mut self, ctx: &mut Ctx<'_, Self>, conn: ConnId) -> Peer {
        match ctx.conn_info(conn).map(|i| i.origin) {
            Some(Origin::Connect) => self.open_upstream(ctx, conn),
            _ => self.open_client(ctx, conn),
        }
    }

    fn on_frame(&mut self, ctx: &mut Ctx<'_, Self>, conn: ConnId, peer: &mut Peer, bytes: Vec<u8>) {
        let Some(other) = peer.other else {
            return;
        };
        let len = bytes.len() as u64;
        if ctx.send(other, bytes).is_err() {
            // The other side is closing or gone: so is this pair.
            let _ = ctx.close(conn);
            return;
        }
        match peer.side {
            Side::Client => self.counters.bytes_to_upstream += len,
            Side::Upstream => self.counters.bytes_to_client += len,
        }
        if ctx.output_len(other).unwrap_or(0) > HIGH_WATER {
            // Backpressure across the pair: stop reading this side until the
            // other has written most of what it holds.
            ctx.pause_reading(conn);
            let _ = ctx.notify_drained(other, LOW_WATER);
        }
    }

    fn on_drained(&mut self, ctx: &mut Ctx<'_, Self>, _: ConnId, peer: &mut Peer) {
        if let Some(other) = peer.other {
            ctx.resume_reading(other);
        }
    }

    fn on_peer_eof(&mut self, ctx: &mut Ctx<'_, Self>, conn: ConnId, peer: &mut Peer) -> AfterEof {
        // Pass the end on once everything before it is forwarded, and keep
        // relaying the other direction until that side ends too.
        match peer.other {
            Some(other) if ctx.shutdown_write(other).is_ok() => {
                // A peer that ended its side and then vanished, with a
                // silent other side, would hold the pair for ever.
                let _ = ctx.set_conn_timer(conn, self.fin_timeout, 0);
                AfterEof::KeepWriting
            }
            _ => AfterEof::Close,
        }
    }

    fn on_conn_timer(&mut self, ctx: &mut Ctx<'_, Self>, conn: ConnId, _: &mut Peer, _: u64) {
        tracing::debug!(?conn, "half-closed for too long; closing the pair");
        let _ = ctx.close(conn);
    }

    fn on_close(&mut self, ctx: &mut Ctx<'_, Self>, _: ConnId, peer: Peer, reason: CloseReason) {
        // Not an upstream error: a clean end, or a close the proxy chose (its
        // client ended first, or a shutdown). When the upstream ended first,
        // the client's end closes the client at once and then this side by
        // service, before its own write shutdown completes.
        let clean = matches!(
            reason,
            CloseReason::PeerClosed | CloseReason::ByService | CloseReason::Shutdown
        );
        if peer.side == Side::Upstream && !clean {
            self.counters.upstream_errors += 1;
        }
        if let Some(other) = peer.other {
            // An upstream still connecting is given up: not a failure.
            self.pending.remove(&other);
            // Whatever ended this side ends the pair: the other side flushes
            // what it holds (bounded by the close flush timeout), then closes.
            // A clean end (both directions finished) finds it closing already.
            let _ = ctx.close(other);
        }
    }

    fn on_connect_failed(
        &mut self,
        ctx: &mut Ctx<'_, Self>,
        upstream: ConnId,
        reason: CloseReason,
    ) {
        // Not pending: its client closed first and gave it up.
        if let Some(client) = self.pending.remove(&upstream) {
            self.counters
                .connect_failed(CloseReason::NAMES[reason.index()]);
            tracing::warn!(?reason, "upstream connect failed; closing the client");
            let _ = ctx.close(client);
        }
    }

    fn on_command(&mut self, ctx: &mut Ctx<'_, Self>, command: Command) {
        match command {
            Command::PrintStats => println!("{}", self.counters.line(&ctx.stats())),
        }
    }
}
