//! The receive buffer a transport reads into and a decoder parses from.

use std::cell::RefCell;

/// Bytes received but not yet consumed by a decoder.
///
/// The transport reads straight into the vector's spare capacity (plain TCP
/// without zeroing it first, see `socket_io.rs`); consumed bytes are
/// reclaimed by moving the unconsumed tail to the front only when the spare
/// capacity runs out. [`take_all`](Self::take_all) hands the storage itself
/// to a decoder whose frame is the bytes as received (no copy), and the
/// buffer continues with storage from this thread's pool ([`recycle`]).
#[derive(Debug, Default)]
pub struct RecvBuf {
    /// Storage; `buf[start..]` is unconsumed. Invariant: `start <= buf.len()`.
    buf: Vec<u8>,
    /// Start of unconsumed data.
    start: usize,
}

/// Bytes of buffers this thread keeps for reuse, at most. A loop iteration
/// reads every ready connection before it writes their replies, so under
/// load as many buffers are out at once as connections ready at once; the
/// pool keeps enough of them to serve the next round without going back to
/// the allocator (which, given dozens of large chunks back at once, returns
/// memory to the system and faults it in again), and no more: an idle thread
/// holds at most this much.
const POOL_BYTES: usize = 8 << 20;
/// Smaller buffers are not worth keeping: a fresh allocation of a few KiB is
/// cheap, and the pool is for the large ones a read budget fills.
const POOL_MIN: usize = 16 * 1024;
/// Larger buffers are released: one very large frame must not pin its
/// memory in every thread that wrote it.
const POOL_MAX: usize = 1 << 20;
/// Capacity of fresh storage for a read when the pool has none: a batch of
/// 64 KiB fits with room to spare, so the read that returns it is short
/// (proving the socket empty) and needs no second read or reallocation;
/// below the allocator's 128 KiB threshold for mapping fresh pages.
const FRESH_READ: usize = 96 * 1024;

thread_local! {
    /// Empty buffers waiting for reuse by this thread's receive buffers.
    static POOL: RefCell<Pool> = const { RefCell::new(Pool { buffers: Vec::new(), bytes: 0 }) };
}

/// See [`POOL`].
struct Pool {
    buffers: Vec<Vec<u8>>,
    /// Sum of the buffers' capacities.
    bytes: usize,
}

/// Gives a byte buffer back for reuse by the [`RecvBuf`]s of the calling
/// thread (its contents are discarded). Buffers between 16 KiB and 1 MiB of
/// capacity are kept, up to 8 MiB per thread; others are freed. Used by
/// codecs that hand received buffers on as frames (`baton::ByteStream`) and
/// by the runtime once such a buffer has been written out, so a stream of
/// large frames moves between socket reads and writes without allocating.
pub fn recycle(mut buf: Vec<u8>) {
    if !(POOL_MIN..=POOL_MAX).contains(&buf.capacity()) {
        return;
    }
    buf.clear();
    // `try_with`: during thread teardown the pool may be gone already.
    let _ = POOL.try_with(|pool| {
        let mut pool = pool.borrow_mut();
        if pool.bytes + buf.capacity() <= POOL_BYTES {
            pool.bytes += buf.capacity();
            pool.buffers.push(buf);
        }
    });
}

/// Frees every buffer this thread's pool holds. For a thread going idle:
/// baton's runtime calls it when an IO thread parks and when its loop has
/// had no IO for a second.
pub fn release_pooled() {
    let _ = POOL.try_with(|pool| {
        let mut pool = pool.borrow_mut();
        pool.buffers = Vec::new();
        pool.bytes = 0;
    });
}

/// Bytes of buffers this thread's pool holds (capacity).
pub fn pooled_bytes() -> usize {
    POOL.try_with(|pool| pool.borrow().bytes).unwrap_or(0)
}

/// A pooled buffer with room for `min` bytes: the last one given back (its
/// memory is the likeliest to be in cache), else none.
fn pooled(min: usize) -> Option<Vec<u8>> {
    POOL.try_with(|pool| {
        let mut pool = pool.borrow_mut();
        let last = pool.buffers.last()?;
        if last.capacity() < min {
            return None;
        }
        pool.bytes -= last.capacity();
        pool.buffers.pop()
    })
    .ok()
    .flatten()
}

impl RecvBuf {
    /// An empty buffer; storage is allocated on first use.
    pub fn new() -> Self {
        Self::default()
    }

    /// Unconsumed bytes, oldest first.
    pub fn as_slice(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// Number of unconsumed bytes.
    pub fn len(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Whether there are no unconsumed bytes.
    pub fn is_empty(&self) -> bool {
        self.buf.len() == self.start
    }

    /// Marks the first `n` unconsumed bytes as consumed.
    ///
    /// # Panics
    /// If `n > self.len()`: a decoder consuming bytes it was never given is a
    /// bug in the decoder.
    pub fn consume(&mut self, n: usize) {
        assert!(n <= self.len(), "consumed {n} bytes of {}", self.len());
        self.start += n;
        if self.start == self.buf.len() {
            self.start = 0;
            self.buf.clear();
        }
    }

    /// Takes every unconsumed byte as an owned vector, leaving the buffer
    /// empty. When nothing before them was consumed and they fill at least
    /// half the storage, the storage itself is handed over, without a copy
    /// (the buffer continues with pooled or new storage); otherwise they are
    /// copied into a vector of their own size, so a frame never holds more
    /// than twice its bytes.
    pub fn take_all(&mut self) -> Vec<u8> {
        let out = if self.start == 0 && self.buf.len() >= self.buf.capacity() / 2 {
            std::mem::take(&mut self.buf)
        } else {
            self.as_slice().to_vec()
        };
        self.start = 0;
        self.buf.clear();
        out
    }

    /// Bytes of storage held (for memory accounting).
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Releases storage (to this thread's pool) when the buffer is empty and
    /// larger than `keep`, so an idle connection that once received a large
    /// frame does not hold it.
    pub fn shrink_if_idle(&mut self, keep: usize) {
        if self.is_empty() && self.buf.capacity() > keep {
            recycle(std::mem::take(&mut self.buf));
        }
    }

    /// The storage, with spare capacity of at least `min` bytes after its
    /// unconsumed bytes, for a read to append to. Storage comes from this
    /// thread's pool, or fresh with room for a 64 KiB batch; it grows by
    /// doubling so large frames cost O(log n) reallocations. Whatever the
    /// caller appends becomes unconsumed input; it must not remove or change
    /// what is there.
    pub(crate) fn spare(&mut self, min: usize) -> &mut Vec<u8> {
        if self.buf.capacity() == 0 {
            self.buf = pooled(min).unwrap_or_else(|| Vec::with_capacity(min.max(FRESH_READ)));
        }
        self.reserve(min);
        &mut self.buf
    }

    /// Makes room for `min` more bytes: reclaims consumed space first, then
    /// grows by doubling.
    fn reserve(&mut self, min: usize) {
        if self.buf.capacity() - self.buf.len() < min {
            if self.start > 0 {
                self.buf.drain(..self.start);
                self.start = 0;
            }
            let free = self.buf.capacity() - self.buf.len();
            if free < min {
                let want = (self.buf.len() + min).max(self.buf.capacity() * 2);
                self.buf.reserve_exact(want - self.buf.len());
            }
        }
    }

    /// Appends bytes (for tests and for transports that decrypt elsewhere).
    /// Exact-size storage when it has none, so a connection keeping a
    /// partial frame holds only that.
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        self.reserve(bytes.len());
        self.buf.extend_from_slice(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consume_and_append_keep_order_across_compaction() {
        let mut buf = RecvBuf::new();
        let mut expected = Vec::new();
        for round in 0..200u32 {
            let chunk: Vec<u8> = (0..(round % 37) as u8).collect();
            buf.extend_from_slice(&chunk);
            expected.extend_from_slice(&chunk);
            let n = (round as usize * 7) % (buf.len() + 1);
            assert_eq!(&buf.as_slice()[..n], &expected[..n]);
            buf.consume(n);
            expected.drain(..n);
            assert_eq!(buf.as_slice(), &expected[..]);
        }
    }

    #[test]
    fn take_all_empties_and_shrink_releases_idle_storage() {
        let mut buf = RecvBuf::new();
        buf.extend_from_slice(&[1; 100_000]);
        assert_eq!(buf.take_all().len(), 100_000);
        assert!(buf.is_empty());
        buf.extend_from_slice(&[2; 100_000]);
        buf.consume(100_000);
        buf.shrink_if_idle(16 * 1024);
        assert_eq!(buf.capacity(), 0);
    }

    #[test]
    fn take_all_hands_over_storage_it_mostly_fills_and_copies_what_it_does_not() {
        let mut buf = RecvBuf::new();
        let full: Vec<u8> = (0..40_000u32).map(|i| i as u8).collect();
        buf.extend_from_slice(&full);
        let storage = buf.as_slice().as_ptr();
        let taken = buf.take_all();
        assert_eq!(taken, full);
        assert_eq!(
            taken.as_ptr(),
            storage,
            "the storage itself was handed over"
        );
        assert_eq!(buf.capacity(), 0);

        // A few bytes in large storage are copied out; the storage stays.
        let mut buf = RecvBuf::new();
        buf.spare(64 * 1024).extend_from_slice(b"small");
        let taken = buf.take_all();
        assert_eq!(taken, b"small");
        assert!(taken.capacity() < 64);
        assert!(buf.capacity() >= 64 * 1024);
        assert!(buf.is_empty());

        // Bytes after a consumed prefix are copied too, never the prefix.
        buf.extend_from_slice(&full);
        buf.consume(10);
        assert_eq!(buf.take_all(), &full[10..]);
    }

    #[test]
    fn recycled_storage_comes_back_empty_to_the_next_read_that_needs_some() {
        // Each test runs on its own thread: the pool starts empty.
        let mut old = Vec::with_capacity(128 * 1024);
        old.extend_from_slice(&[9; 1000]);
        let old_ptr = old.as_ptr();
        recycle(old);
        let mut buf = RecvBuf::new();
        let storage = buf.spare(16 * 1024);
        assert!(storage.is_empty(), "stale pooled bytes never show");
        assert_eq!(storage.as_ptr(), old_ptr, "pooled storage was reused");
        storage.extend_from_slice(b"abc");
        assert_eq!(buf.as_slice(), b"abc");
        // With the pool empty, a read gets fresh storage with room for a
        // 64 KiB batch.
        let mut fresh = RecvBuf::new();
        assert!(fresh.spare(1).capacity() > 64 * 1024);
        // Too small or too large to keep: freed, not pooled.
        recycle(Vec::with_capacity(1024));
        recycle(Vec::with_capacity(POOL_MAX + 1));
        assert!(pooled(1).is_none());
        // At most POOL_BYTES kept.
        for _ in 0..POOL_BYTES / POOL_MAX + 2 {
            recycle(Vec::with_capacity(POOL_MAX));
        }
        assert_eq!(pooled_bytes(), POOL_BYTES);
        let kept = std::iter::from_fn(|| pooled(1)).count();
        assert_eq!(kept, POOL_BYTES / POOL_MAX);
        assert_eq!(pooled_bytes(), 0);
        recycle(Vec::with_capacity(POOL_MIN));
        release_pooled();
        assert_eq!(pooled_bytes(), 0);
        assert!(pooled(1).is_none());
    }

    #[test]
    fn a_partial_frame_kept_takes_only_its_size() {
        let mut buf = RecvBuf::new();
        buf.extend_from_slice(b"*3\r\n$3\r\nSET");
        assert!(buf.capacity() < 64);
    }

    #[test]
    #[should_panic(expected = "consumed 5 bytes of 4")]
    fn consuming_more_than_received_is_a_decoder_bug() {
        let mut buf = RecvBuf::new();
        buf.extend_from_slice(b"abcd");
        buf.consume(5);
    }
}
