//! String values as the keyspace stores them: short ones inline.
//!
//! A GET of a `Vec<u8>` value follows the pointer to its heap block (a
//! cache miss in a large keyspace: the copy of a 16-byte value showed as 8%
//! of the server's time in `perf` at `-P 16`) and then allocates the
//! reply's copy. Values of up to 22 bytes (counters, flags, short
//! tokens: what Redis keeps as EMBSTR) live in the table's slot instead and
//! are copied into a reply without allocating.
//!
//! Longer values are shared, not copied, with the replies that read them:
//! a GET clones the reference (a count). The reply's encoding copies a
//! value under 16 KiB into the connection's write buffer; a longer one is
//! queued by reference (`protocol.rs`, `OutBuf::push_shared`) and copied
//! once, into the socket (or into rustls's record). A value is never changed
//! while shared: editing one (`make_mut`) takes a copy first, so a reply
//! still queued or on an IO thread keeps the bytes it read.
//!
//! The variant also records what OBJECT ENCODING needs to answer as Redis
//! does (`commands/object.rs`): a value edited in place (APPEND, SETRANGE)
//! is `Raw` whatever its length, as Redis's RAW encoding is.

use std::ops::Deref;
use std::sync::Arc;

use crate::key::Short;

/// A string value: its bytes, inline when short.
#[derive(Clone, PartialEq, Eq)]
pub enum Blob {
    /// Up to 22 bytes, in place.
    Inline(Short),
    /// Longer values, or values Redis stores as text rather than as an
    /// integer (INCRBYFLOAT's results); shared with the replies that read
    /// them. An `Arc` because replies are encoded on IO threads.
    Heap(Arc<[u8]>),
    /// Values edited in place (APPEND, SETRANGE): Redis's RAW encoding.
    Raw(Vec<u8>),
}

impl Blob {
    /// The bytes as a vector to edit in place; the value becomes `Raw`
    /// (a short one moves to the heap: a value being appended to is likely
    /// to keep growing).
    pub fn make_mut(&mut self) -> &mut Vec<u8> {
        match self {
            Blob::Inline(short) => *self = Blob::Raw(short.as_slice().to_vec()),
            Blob::Heap(bytes) => *self = Blob::Raw(bytes.to_vec()),
            Blob::Raw(_) => {}
        }
        match self {
            Blob::Raw(bytes) => bytes,
            _ => unreachable!("made raw above"),
        }
    }
}

impl From<&[u8]> for Blob {
    fn from(value: &[u8]) -> Self {
        Short::new(value).map_or_else(|| Blob::Heap(Arc::from(value)), Blob::Inline)
    }
}

impl From<Vec<u8>> for Blob {
    fn from(value: Vec<u8>) -> Self {
        Short::new(&value).map_or_else(|| Blob::Heap(Arc::from(value)), Blob::Inline)
    }
}

impl Deref for Blob {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Blob::Inline(short) => short.as_slice(),
            Blob::Heap(bytes) => bytes,
            Blob::Raw(bytes) => bytes,
        }
    }
}

impl std::fmt::Debug for Blob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_values_are_inline_and_all_read_back() {
        for len in [0, 1, 21, 22, 23, 100] {
            let value: Vec<u8> = (0..len as u8).collect();
            let from_slice = Blob::from(value.as_slice());
            let from_vec = Blob::from(value.clone());
            assert_eq!(&*from_slice, value.as_slice());
            assert_eq!(from_slice, from_vec);
            assert_eq!(matches!(from_slice, Blob::Inline(_)), len <= Short::MAX);
        }
    }

    #[test]
    fn a_reply_shares_a_long_value_and_keeps_it_when_the_value_is_edited() {
        let mut stored = Blob::from(&[5u8; 65536][..]);
        let reply = stored.clone();
        assert_eq!(reply.as_ptr(), stored.as_ptr(), "shared, not copied");
        stored.make_mut()[0] = 6;
        assert_eq!(reply[0], 5, "the reply keeps what it read");
        assert_eq!(stored[0], 6);
        assert_eq!(&stored[1..], &reply[1..]);
    }

    #[test]
    fn editing_a_short_value_moves_it_to_the_heap_intact() {
        let mut blob = Blob::from(&b"abc"[..]);
        blob.make_mut().extend_from_slice(b"def");
        assert_eq!(&*blob, b"abcdef");
        assert!(matches!(blob, Blob::Raw(_)));
    }
}
