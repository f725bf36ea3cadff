//! What a connection holds between steps apart from its input: the output
//! not yet written, and the readiness edges not yet consumed. Both travel
//! with the connection and are joined with what the loop recorded while it
//! was away (`table::Away::join`).

use std::collections::VecDeque;

use crate::OutBuf;

/// Output held for a connection: frames not encoded yet, then encoded bytes
/// not written yet.
pub(crate) struct Output<O> {
    pub(crate) frames: VecDeque<O>,
    /// Sum of `encoded_len` over `frames`.
    pub(crate) queued: usize,
    /// Encoded output not yet written (owned bytes and shared chunks).
    pub(crate) buf: OutBuf,
}

impl<O> Default for Output<O> {
    fn default() -> Self {
        Self {
            frames: VecDeque::new(),
            queued: 0,
            buf: OutBuf::default(),
        }
    }
}

impl<O> Output<O> {
    /// Bytes held (queued frames by their `encoded_len`, and encoded bytes
    /// not yet written).
    pub(crate) fn bytes(&self) -> usize {
        self.queued + self.buf.len()
    }

    /// Queues a frame; `len` is its `encoded_len`.
    pub(crate) fn queue(&mut self, frame: O, len: usize) {
        self.frames.push_back(frame);
        self.queued += len;
    }

    /// Drops everything held (an abortive close).
    pub(crate) fn discard(&mut self) {
        self.frames.clear();
        self.queued = 0;
        self.buf.discard();
    }

    /// Frames queued, oldest first (for tests of the join).
    #[cfg(test)]
    pub(crate) fn frames(&self) -> impl Iterator<Item = &O> {
        self.frames.iter()
    }
}

/// Readiness edges seen and not consumed yet (see `plan::ConnFacts`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Edges {
    pub(crate) readable: bool,
    pub(crate) writable: bool,
    /// An edge reported the peer's end (FIN, hang-up, error) or urgent
    /// data (`Readiness::read_to_would_block`). Sticky: neither is announced
    /// again, so from now on reads go to `WouldBlock` or EOF instead of
    /// trusting a short read (`ReadMode`).
    pub(crate) read_to_would_block: bool,
}

impl Edges {
    /// Adds edges seen later; none is ever forgotten by a merge.
    pub(crate) fn merge(&mut self, other: Edges) {
        self.readable |= other.readable;
        self.writable |= other.writable;
        self.read_to_would_block |= other.read_to_would_block;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_held_are_queued_frames_plus_encoded_bytes_not_yet_written() {
        let mut out: Output<&str> = Output::default();
        out.queue("abc", 3);
        out.buf.extend_from_slice(b"0123");
        out.buf.push_shared(std::sync::Arc::from(&b"456"[..]));
        out.buf.extend_from_slice(b"789");
        out.buf.consume(4);
        assert_eq!(out.bytes(), 3 + 6, "a shared chunk counts as its bytes");
        out.discard();
        assert_eq!(out.bytes(), 0);
        assert_eq!(out.frames().count(), 0);
    }

    #[test]
    fn merged_edges_keep_every_edge_either_side_saw() {
        let mut edges = Edges {
            readable: true,
            ..Edges::default()
        };
        edges.merge(Edges {
            writable: true,
            read_to_would_block: true,
            ..Edges::default()
        });
        assert!(edges.readable && edges.writable && edges.read_to_would_block);
    }
}
