//! A connection's encoded output: owned bytes, with shared chunks among them.
//!
//! A large value the application already holds behind an `Arc` (a stored
//! string a GET reads) need not be copied into the write buffer: the codec
//! queues the reference ([`OutBuf::push_shared`]) and the write hands it to
//! the socket as one element of a `sendmsg` (plain TCP) or to rustls, which
//! copies plaintext into its records anyway (TLS). Either way the value's
//! bytes are copied once, into the kernel or into the record.

use std::collections::VecDeque;
use std::fmt;
use std::io::IoSlice;
use std::sync::Arc;

/// Encoded output of one connection not yet written, in order: the bytes a
/// codec appended ([`bytes_mut`](Self::bytes_mut)) and the shared chunks it
/// queued between them ([`push_shared`](Self::push_shared)).
///
/// What a codec may rely on:
/// * **Order.** Bytes go out exactly in the order they were added: a chunk
///   goes after every byte appended before `push_shared` and before every
///   byte appended after it.
/// * **No copy on the way in.** A shared chunk is not copied into the
///   buffer; the runtime holds the reference until the chunk's last byte is
///   written, or until the output is dropped (an abortive close, a failed
///   connection), and then drops it, on whichever thread runs the
///   connection's step (an IO thread or the loop). An `Arc<[u8]>` cannot
///   change while shared, so what is written is what was queued.
/// * **Accounting.** A shared chunk counts in [`len`](Self::len) and in the
///   connection's output (`Ctx::output_len`, the soft and hard limits)
///   exactly as the same bytes copied would: by its length. The memory
///   behind it is the chunk's owner's, not the buffer's.
///
/// A codec only appends: bytes already here belong to earlier frames of the
/// same batch (none is written until the batch is encoded).
#[derive(Default)]
pub struct OutBuf {
    /// Owned bytes; `bytes[pos..]` is not written yet.
    bytes: Vec<u8>,
    /// Shared chunks, each going before `bytes[at..]`; `at` never
    /// decreases along the queue.
    shared: VecDeque<Shared>,
    pos: usize,
    /// Bytes of the front chunk already written (only once `pos` reached
    /// its `at`).
    head: usize,
    /// Unwritten bytes in `shared`.
    shared_len: usize,
}

struct Shared {
    at: usize,
    chunk: Arc<[u8]>,
}

impl OutBuf {
    /// The owned bytes, to append an encoding to (append only; see the
    /// type's documentation).
    pub fn bytes_mut(&mut self) -> &mut Vec<u8> {
        &mut self.bytes
    }

    /// Appends `bytes` to the owned bytes.
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
    }

    /// Queues `chunk` after everything added so far, without copying it. An
    /// empty chunk is ignored. Each chunk is one more `iovec` for the
    /// socket: worth it for large values (kv shares values of 16 KiB and
    /// more), not for a few bytes, which cost less to copy.
    pub fn push_shared(&mut self, chunk: Arc<[u8]>) {
        if chunk.is_empty() {
            return;
        }
        self.shared_len += chunk.len();
        self.shared.push_back(Shared {
            at: self.bytes.len(),
            chunk,
        });
    }

    /// Bytes not yet written, shared chunks included.
    pub fn len(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos) + self.shared_len
    }

    /// Whether everything was written.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes not yet written, in order, as the slices that hold them.
    pub fn slices(&self) -> impl Iterator<Item = &[u8]> {
        self.segments()
    }

    /// Owned bytes held (written or not: encoding happens only once all
    /// are written and cleared).
    pub(crate) fn owned_len(&self) -> usize {
        self.bytes.len()
    }

    /// Shared chunks queued and not fully written.
    pub(crate) fn shared_chunks(&self) -> usize {
        self.shared.len()
    }

    /// The unwritten bytes when no shared chunk is queued: then one plain
    /// `write` takes them, as before shared chunks existed.
    pub(crate) fn contiguous(&self) -> Option<&[u8]> {
        self.shared
            .is_empty()
            .then(|| &self.bytes[self.pos.min(self.bytes.len())..])
    }

    /// Fills `iov` with the first unwritten segments, in order; returns how
    /// many. Fewer than all when `iov` is too short: write them, then
    /// gather again.
    pub(crate) fn gather<'a>(&'a self, iov: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        for (slot, segment) in iov.iter_mut().zip(self.segments()) {
            *slot = IoSlice::new(segment);
            n += 1;
        }
        n
    }

    /// Marks the first `n` unwritten bytes written, dropping each shared
    /// chunk once its last byte is. Once everything is written the owned
    /// bytes are cleared for the next batch.
    pub(crate) fn consume(&mut self, mut n: usize) {
        debug_assert!(n <= self.len(), "consumed {n} of {} held", self.len());
        while n > 0 {
            let end = self.owned_end();
            if self.pos < end {
                let k = n.min(end - self.pos);
                self.pos += k;
                n -= k;
                continue;
            }
            let Some(front) = self.shared.front() else {
                break;
            };
            let k = n.min(front.chunk.len() - self.head);
            self.head += k;
            self.shared_len -= k;
            n -= k;
            if self.head == front.chunk.len() {
                self.shared.pop_front();
                self.head = 0;
            }
        }
        if self.is_empty() {
            self.bytes.clear();
            self.pos = 0;
        }
    }

    /// Drops everything held (an abortive close), the owned bytes' memory
    /// included.
    pub(crate) fn discard(&mut self) {
        *self = Self::default();
    }

    /// Releases the owned bytes' memory once everything is written, if it
    /// grew past `keep`: to this thread's pool, since a buffer this large is
    /// often a frame that was a receive buffer (`ByteStream`), and the next
    /// read takes its storage from there instead of allocating.
    pub(crate) fn release_if_larger(&mut self, keep: usize) {
        if self.is_empty() && self.bytes.capacity() > keep {
            crate::recycle_buffer(std::mem::take(&mut self.bytes));
        }
    }

    /// Where the owned bytes before the front chunk end (all of them when
    /// no chunk is queued). Clamped, so a codec that broke the append-only
    /// rule garbles its own output instead of panicking here.
    fn owned_end(&self) -> usize {
        self.shared
            .front()
            .map_or(self.bytes.len(), |s| s.at)
            .min(self.bytes.len())
    }

    fn segments(&self) -> impl Iterator<Item = &[u8]> {
        let len = self.bytes.len();
        let mut from = self.pos.min(len);
        let mut head = self.head;
        let chunks = self.shared.iter().flat_map(move |s| {
            let at = s.at.min(len).max(from);
            let owned = &self.bytes[from..at];
            from = at;
            let chunk = &s.chunk[std::mem::take(&mut head)..];
            [owned, chunk]
        });
        // The owned bytes after the last chunk (from where the chunks
        // ended).
        let last = self.shared.back().map_or(from, |s| s.at.min(len).max(from));
        chunks
            .chain(std::iter::once(&self.bytes[last..]))
            .filter(|s| !s.is_empty())
    }
}

impl fmt::Debug for OutBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutBuf")
            .field("len", &self.len())
            .field("shared_chunks", &self.shared.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `a`, shared `BB`, `cc`, shared `DDD`, shared `EE` (adjacent), `f`.
    fn sample() -> (OutBuf, Vec<u8>) {
        let mut out = OutBuf::default();
        out.extend_from_slice(b"a");
        out.push_shared(Arc::from(&b"BB"[..]));
        out.extend_from_slice(b"cc");
        out.push_shared(Arc::from(&b"DDD"[..]));
        out.push_shared(Arc::from(&b"EE"[..]));
        out.push_shared(Arc::from(&b""[..]));
        out.bytes_mut().push(b'f');
        (out, b"aBBccDDDEEf".to_vec())
    }

    fn unwritten(out: &OutBuf) -> Vec<u8> {
        out.slices().flatten().copied().collect()
    }

    fn gathered(out: &OutBuf, slots: usize) -> Vec<u8> {
        let mut iov = vec![IoSlice::new(&[]); slots];
        let n = out.gather(&mut iov);
        iov[..n].iter().flat_map(|s| s.iter()).copied().collect()
    }

    #[test]
    fn bytes_and_shared_chunks_go_out_in_the_order_they_were_added() {
        let (out, want) = sample();
        assert_eq!(unwritten(&out), want);
        assert_eq!(gathered(&out, 64), want);
        assert_eq!(out.len(), want.len());
        assert_eq!(out.slices().count(), 6, "the empty chunk is ignored");
        assert!(out.contiguous().is_none());
    }

    #[test]
    fn a_chunk_is_queued_by_reference_not_copied() {
        let value: Arc<[u8]> = Arc::from(vec![7u8; 65536]);
        let mut out = OutBuf::default();
        out.extend_from_slice(b"$65536\r\n");
        out.push_shared(value.clone());
        out.extend_from_slice(b"\r\n");
        let slices: Vec<&[u8]> = out.slices().collect();
        assert_eq!(slices.len(), 3);
        assert_eq!(slices[1].as_ptr(), value.as_ptr());
        assert!(
            out.bytes.capacity() < 1024,
            "the value is not in the owned bytes"
        );
        assert_eq!(Arc::strong_count(&value), 2);
        out.consume(out.len());
        assert_eq!(Arc::strong_count(&value), 1, "released once written");
    }

    /// Two writes that end anywhere (inside the owned bytes, inside a
    /// chunk, exactly at either's end) leave exactly the rest, in order.
    #[test]
    fn writes_ending_at_every_boundary_leave_exactly_the_rest() {
        let (_, want) = sample();
        for first in 0..=want.len() {
            for second in first..=want.len() {
                let (mut out, _) = sample();
                out.consume(first);
                assert_eq!(unwritten(&out), &want[first..], "after {first}");
                assert_eq!(gathered(&out, 64), &want[first..]);
                assert_eq!(out.len(), want.len() - first);
                out.consume(second - first);
                assert_eq!(unwritten(&out), &want[second..], "{first} then {second}");
                assert_eq!(out.len(), want.len() - second);
                if second == want.len() {
                    assert!(out.is_empty() && out.shared_chunks() == 0);
                    assert!(
                        out.bytes.is_empty() && out.pos == 0,
                        "reset for the next batch"
                    );
                }
            }
        }
    }

    #[test]
    fn a_short_iovec_array_takes_the_first_segments_and_the_next_gather_the_rest() {
        let (mut out, want) = sample();
        let mut sent = Vec::new();
        while !out.is_empty() {
            let part = gathered(&out, 2);
            assert!(!part.is_empty());
            out.consume(part.len());
            sent.extend_from_slice(&part);
        }
        assert_eq!(sent, want);
    }

    #[test]
    fn writes_one_byte_at_a_time_see_every_byte_once() {
        let (mut out, want) = sample();
        let mut sent = Vec::new();
        while !out.is_empty() {
            let byte = out.slices().next().expect("a byte is held")[0];
            sent.push(byte);
            out.consume(1);
        }
        assert_eq!(sent, want);
        assert!(out.is_empty());
    }

    #[test]
    fn a_chunk_first_or_last_and_chunks_alone_keep_their_order() {
        let mut out = OutBuf::default();
        out.push_shared(Arc::from(&b"XY"[..]));
        out.push_shared(Arc::from(&b"Z"[..]));
        assert_eq!(unwritten(&out), b"XYZ");
        out.consume(2);
        assert_eq!(unwritten(&out), b"Z");
        out.extend_from_slice(b"tail");
        assert_eq!(unwritten(&out), b"Ztail");
        out.consume(3);
        assert_eq!(unwritten(&out), b"il");
    }

    #[test]
    fn without_chunks_the_bytes_are_one_slice() {
        let mut out = OutBuf::default();
        out.extend_from_slice(b"hello");
        out.consume(2);
        assert_eq!(out.contiguous(), Some(&b"llo"[..]));
        out.discard();
        assert!(out.is_empty());
    }
}
