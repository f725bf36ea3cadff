//! Keys as the keyspace stores them: short keys inline.
//!
//! A hash table lookup ends in a comparison of the probed key with the one
//! asked for. With `Vec<u8>` keys that comparison first follows a pointer to
//! the key's heap block, a cache miss per lookup in a large keyspace (it
//! showed as a third of the server's time in `perf` at `-P 16`). Keys of up
//! to 22 bytes (nearly all real ones) live in the table's own slot instead.

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

/// Up to 22 bytes held in place: with a one-byte tag, a 24-byte value, the
/// size of the `Box<[u8]>` or `Vec<u8>` it stands in for. Keys and short
/// string values (`blob.rs`) both use it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Short {
    len: u8,
    bytes: [u8; Short::MAX],
}

impl Short {
    pub const MAX: usize = 22;

    /// `bytes` in place, if they fit.
    pub fn new(bytes: &[u8]) -> Option<Short> {
        let mut short = Short {
            len: u8::try_from(bytes.len()).ok()?,
            bytes: [0; Short::MAX],
        };
        short.bytes.get_mut(..bytes.len())?.copy_from_slice(bytes);
        Some(short)
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// A key: its bytes, inline when short.
#[derive(Clone)]
pub enum Key {
    /// Up to 22 bytes, in place.
    Inline(Short),
    /// Longer keys.
    Heap(Box<[u8]>),
}

impl From<&[u8]> for Key {
    fn from(key: &[u8]) -> Self {
        Short::new(key).map_or_else(|| Key::Heap(key.into()), Key::Inline)
    }
}

impl Deref for Key {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Key::Inline(short) => short.as_slice(),
            Key::Heap(bytes) => bytes,
        }
    }
}

// `Borrow<[u8]>` lets the map be searched with a `&[u8]`; it requires that
// Hash and Eq agree with the slice's, so both delegate to it.
impl Borrow<[u8]> for Key {
    fn borrow(&self) -> &[u8] {
        self
    }
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (**self).hash(state);
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for Key {}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn short_and_long_keys_are_found_by_slice() {
        let mut map: HashMap<Key, u32> = HashMap::new();
        let long = vec![b'k'; 100];
        for (i, key) in [&b""[..], b"a", &[b'x'; 22], &[b'y'; 23], &long]
            .iter()
            .enumerate()
        {
            map.insert(Key::from(*key), i as u32);
        }
        assert_eq!(map.get(&b""[..]), Some(&0));
        assert_eq!(map.get(&b"a"[..]), Some(&1));
        assert_eq!(map.get(&[b'x'; 22][..]), Some(&2));
        assert_eq!(map.get(&[b'y'; 23][..]), Some(&3));
        assert_eq!(map.get(&long[..]), Some(&4));
        assert_eq!(map.get(&[b'x'; 21][..]), None);
        assert!(matches!(Key::from(&[b'x'; 22][..]), Key::Inline(_)));
        assert!(matches!(Key::from(&[b'y'; 23][..]), Key::Heap(_)));
    }
}
