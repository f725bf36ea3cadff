//! The receive buffer a transport reads into and a decoder parses from.

/// Bytes received but not yet consumed by a decoder.
///
/// The backing vector stays initialised up to its length, so reading into the
/// free space never zeroes memory twice; consumed bytes are reclaimed by
/// moving the unconsumed tail to the front only when the free space runs out.
#[derive(Debug, Default)]
pub struct RecvBuf {
    /// Initialised storage; `len()` is the initialised size.
    buf: Vec<u8>,
    /// Start of unconsumed data.
    start: usize,
    /// End of unconsumed data. Invariant: `start <= end <= buf.len()`.
    end: usize,
}

impl RecvBuf {
    /// An empty buffer; storage is allocated on first use.
    pub fn new() -> Self {
        Self::default()
    }

    /// Unconsumed bytes, oldest first.
    pub fn as_slice(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Number of unconsumed bytes.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// Whether there are no unconsumed bytes.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Marks the first `n` unconsumed bytes as consumed.
    ///
    /// # Panics
    /// If `n > self.len()`: a decoder consuming bytes it was never given is a
    /// bug in the decoder.
    pub fn consume(&mut self, n: usize) {
        assert!(n <= self.len(), "consumed {n} bytes of {}", self.len());
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Takes every unconsumed byte as an owned vector, leaving the buffer empty.
    pub fn take_all(&mut self) -> Vec<u8> {
        let out = self.as_slice().to_vec();
        self.consume(self.len());
        out
    }

    /// Bytes of storage held (for memory accounting).
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Releases storage when the buffer is empty and larger than `keep`, so an
    /// idle connection that once received a large frame does not hold it.
    pub fn shrink_if_idle(&mut self, keep: usize) {
        if self.is_empty() && self.buf.len() > keep {
            self.buf = Vec::new();
        }
    }

    /// Free space of at least `min` bytes (and at most what exists) to read into.
    /// Grows by doubling so large frames cost O(log n) reallocations.
    pub(crate) fn spare(&mut self, min: usize) -> &mut [u8] {
        if self.buf.len() - self.end < min {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.buf.len() - self.end < min {
                let want = (self.end + min).max(self.buf.len() * 2);
                self.buf.resize(want, 0);
            }
        }
        &mut self.buf[self.end..]
    }

    /// Records that `n` bytes were written into the slice `spare` returned.
    pub(crate) fn filled(&mut self, n: usize) {
        debug_assert!(self.end + n <= self.buf.len());
        self.end += n;
    }

    /// Appends bytes (for tests and for transports that decrypt elsewhere).
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        let spare = self.spare(bytes.len());
        spare[..bytes.len()].copy_from_slice(bytes);
        self.filled(bytes.len());
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
        buf.shrink_if_idle(16 * 1024);
        assert_eq!(buf.capacity(), 0);
    }

    #[test]
    #[should_panic(expected = "consumed 5 bytes of 4")]
    fn consuming_more_than_received_is_a_decoder_bug() {
        let mut buf = RecvBuf::new();
        buf.extend_from_slice(b"abcd");
        buf.consume(5);
    }
}
