//! The map from connection to client state, hashed cheaply.
//!
//! Every request looks its client up several times (the gate, the session,
//! the reply's protocol), and std's SipHash made that about 5% of a
//! pipelined GET's CPU. A `ConnId` is made by the runtime (a slot index
//! and a generation), never chosen by a client, so the keys cannot be
//! aimed at one bucket and a multiplicative hash (FxHash's) is safe here.
//! The keyspace keeps its DoS-resistant hasher: keys come from clients.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use baton::ConnId;

/// Client state by connection.
pub type ClientMap<V> = HashMap<ConnId, V, BuildHasherDefault<ConnIdHasher>>;

/// FxHash's word mixing: one rotate, xor and multiply per word hashed.
#[derive(Default)]
pub struct ConnIdHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl ConnIdHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for ConnIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    /// Distinct connections (slot, generation) get distinct hashes, and
    /// the low bits a table indexes by spread over its buckets.
    #[test]
    fn connection_ids_spread() {
        let build = BuildHasherDefault::<ConnIdHasher>::default();
        let mut seen = std::collections::HashSet::new();
        let (mut high, mut low) = ([0usize; 64], [0usize; 64]);
        for slot in 0..1000u32 {
            for generation in 0..4u64 {
                let h = build.hash_one((slot, generation));
                assert!(seen.insert(h));
                high[(h >> 58) as usize] += 1;
                low[(h & 63) as usize] += 1;
            }
        }
        assert!(high.iter().all(|&n| n > 20), "{high:?}");
        assert!(low.iter().all(|&n| n > 20), "{low:?}");
    }
}
