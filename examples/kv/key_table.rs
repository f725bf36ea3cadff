//! The keyspace's hash table: keys to entries, plus what a `HashMap` does
//! not offer: a key's slot (bucket) number, to reach it again in O(1), and
//! sampling from a random slot, which eviction needs (`eviction.rs`, as
//! Redis samples random dict buckets). std's `HashMap` is this same table
//! (hashbrown's) behind an API without buckets; this uses hashbrown's
//! `HashTable` directly with std's hasher, so lookups cost what they did.
//!
//! The table also shrinks when it is seven-eighths empty (Redis resizes
//! its dicts likewise): sampling walks slots, and a mostly empty table
//! would make it walk far, and keep the memory of its peak.

use std::hash::{BuildHasher, RandomState};

use hashbrown::HashTable;

use crate::key::Key;

#[derive(Debug)]
pub struct KeyTable<V> {
    table: HashTable<(Key, V)>,
    hasher: RandomState,
}

impl<V> Default for KeyTable<V> {
    fn default() -> Self {
        Self {
            table: HashTable::new(),
            hasher: RandomState::new(),
        }
    }
}

impl<V> KeyTable<V> {
    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn get(&self, key: &[u8]) -> Option<&V> {
        let hash = self.hash(key);
        self.table.find(hash, |(k, _)| **k == *key).map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut V> {
        let hash = self.hash(key);
        self.table
            .find_mut(hash, |(k, _)| **k == *key)
            .map(|(_, v)| v)
    }

    /// The slot of `key`: valid until the next insert or removal.
    pub fn slot(&self, key: &[u8]) -> Option<usize> {
        let hash = self.hash(key);
        self.table.find_bucket_index(hash, |(k, _)| **k == *key)
    }

    pub fn at_slot(&self, slot: usize) -> Option<(&Key, &V)> {
        self.table.get_bucket(slot).map(|(k, v)| (k, v))
    }

    pub fn at_slot_mut(&mut self, slot: usize) -> Option<&mut V> {
        self.table.get_bucket_mut(slot).map(|(_, v)| v)
    }

    pub fn contains(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    /// Adds `key`, which the caller checked is absent.
    pub fn insert_new(&mut self, key: Key, value: V) {
        let hash = self.hash(&key);
        let hasher = &self.hasher;
        self.table
            .insert_unique(hash, (key, value), |(k, _)| hasher.hash_one(&**k));
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<V> {
        let hash = self.hash(key);
        let entry = self.table.find_entry(hash, |(k, _)| **k == *key).ok()?;
        let ((_, value), _) = entry.remove();
        let (len, capacity) = (self.table.len(), self.table.capacity());
        if capacity > 64 && len * 8 < capacity {
            let hasher = &self.hasher;
            self.table
                .shrink_to(len * 2, |(k, _)| hasher.hash_one(&**k));
        }
        Some(value)
    }

    /// Empties the table and frees its memory (FLUSHDB).
    pub fn clear(&mut self) {
        self.table = HashTable::new();
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Key, &V)> {
        self.table.iter().map(|(k, v)| (k, v))
    }

    /// How many slots the table has (`sample` starts below this).
    pub fn slots(&self) -> usize {
        self.table.num_buckets()
    }

    /// Up to `count` entries from the slots at and after `start` (wrapping),
    /// looking at no more than `max_slots` slots: O(max_slots).
    pub fn sample(
        &self,
        start: usize,
        count: usize,
        max_slots: usize,
    ) -> impl Iterator<Item = (&Key, &V)> {
        let slots = self.slots();
        (0..max_slots.min(slots))
            .filter_map(move |i| self.table.get_bucket((start + i) % slots))
            .take(count)
            .map(|(k, v)| (k, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_removes_samples_and_shrinks() {
        let mut t = KeyTable::default();
        for i in 0..1000u32 {
            t.insert_new(Key::from(&i.to_be_bytes()[..]), i);
        }
        assert_eq!(t.get(&7u32.to_be_bytes()), Some(&7));
        let slot = t.slot(&7u32.to_be_bytes()).expect("present");
        *t.at_slot_mut(slot).expect("full") += 1;
        assert_eq!(t.get(&7u32.to_be_bytes()), Some(&8));
        // A sample from anywhere finds entries in a well filled table.
        for start in [0, 17, t.slots() - 1] {
            assert_eq!(t.sample(start, 5, 64).count(), 5);
        }
        let big = t.slots();
        for i in 0..990u32 {
            assert!(t.remove(&i.to_be_bytes()).is_some());
        }
        assert!(t.slots() * 8 < big, "{} slots of {big}", t.slots());
        assert_eq!(t.len(), 10);
        assert_eq!(t.iter().count(), 10);
        assert!(t.remove(&0u32.to_be_bytes()).is_none());
        t.clear();
        assert_eq!(t.len(), 0);
        assert!(t.slots() <= 1, "the memory is freed");
        assert_eq!(t.sample(0, 5, 64).count(), 0);
    }
}
