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
    /// Counts the times entries may have moved between slots (a resize, a
    /// rehash in place, a shrink), so a SCAN cursor, which is a
    /// slot number, can tell whether its slots still mean what they did.
    layout: u32,
}

impl<V> Default for KeyTable<V> {
    fn default() -> Self {
        Self {
            table: HashTable::new(),
            hasher: RandomState::new(),
            layout: 0,
        }
    }
}

/// A SCAN cursor: the layout it was made in (high 32 bits) and the slot
/// to go on from (low 32). 0 starts a walk, and a walk that ends answers 0.
/// (A 16-bit layout count wrapped after 65,536 resizes: a cursor kept
/// across them could resume in a different layout and miss keys.)
const SLOT_BITS: u32 = 32;

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

    /// Starts loading `key`'s bucket into the cache, so a lookup of it soon
    /// after finds it there. Reads only the table's control bytes (small,
    /// usually cached): the bucket prefetched is the first whose hash tag
    /// matches, which is `key`'s unless a tag collides (then the prefetch is
    /// wasted, never wrong). A hundred thousand keys' buckets are several
    /// MiB, so a lookup of a random key otherwise waits on memory; a
    /// pipelined batch prefetched first waits once, not once per request.
    pub fn prefetch(&self, key: &[u8]) {
        if let Some(bucket) = self
            .likely_slot(key)
            .and_then(|slot| self.table.get_bucket(slot))
        {
            prefetch_lines(bucket);
        }
    }

    /// The first slot whose hash tag matches `key`'s, found without
    /// reading any bucket: `key`'s own slot unless a tag collides.
    fn likely_slot(&self, key: &[u8]) -> Option<usize> {
        self.table.find_bucket_index(self.hash(key), |_| true)
    }

    /// Adds `key`, which the caller checked is absent.
    pub fn insert_new(&mut self, key: Key, value: V) {
        if self.table.len() == self.table.capacity() {
            // No room left: hashbrown may grow or rehash in place, moving
            // entries (counted even when it reuses a free slot instead).
            self.layout = self.layout.wrapping_add(1);
        }
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
            self.layout = self.layout.wrapping_add(1);
            let hasher = &self.hasher;
            self.table
                .shrink_to(len * 2, |(k, _)| hasher.hash_one(&**k));
        }
        Some(value)
    }

    /// Empties the table and frees its memory (FLUSHDB).
    pub fn clear(&mut self) {
        // (The layout count stays: an empty table has no slot a cursor can
        // name, and it grows back only through inserts that count.)
        self.table = HashTable::new();
    }

    /// One step of a SCAN walk from `cursor`: the entries of the slots
    /// visited, until `count` are found or `10 * count` slots are seen
    /// (the table is at least an eighth full), and the cursor to go on
    /// from (0 at the end). O(count), as Redis's dict walk.
    ///
    /// Entries do not move between slots unless the layout changes, so a
    /// walk in one layout sees every entry present throughout. A cursor
    /// from another layout (or not one of ours) starts the walk again:
    /// entries may repeat, as Redis's SCAN allows, but none present
    /// throughout is missed. Layouts change O(log n) times as a table
    /// grows, so a walk ends.
    pub fn scan(&self, cursor: u64, count: usize) -> (u64, Vec<(&Key, &V)>) {
        let slots = self.slots();
        let start = match (cursor >> SLOT_BITS, cursor & ((1 << SLOT_BITS) - 1)) {
            (layout, slot) if layout == u64::from(self.layout) && (slot as usize) < slots => {
                slot as usize
            }
            _ => 0,
        };
        let count = count.max(1);
        let mut found = Vec::with_capacity(count.min(1024));
        let mut slot = start;
        let limit = start.saturating_add(count.saturating_mul(10)).min(slots);
        while slot < limit && found.len() < count {
            if let Some((k, v)) = self.table.get_bucket(slot) {
                found.push((k, v));
            }
            slot += 1;
        }
        let next = if slot >= slots {
            0
        } else {
            (u64::from(self.layout) << SLOT_BITS) | slot as u64
        };
        (next, found)
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

/// Asks the CPU to load the cache lines `value` spans; returns at once.
fn prefetch_lines<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        const LINE: usize = 64;
        let start = (value as *const T).cast::<i8>();
        let size = size_of::<T>().max(1);
        // One address in each line: every LINE bytes, and the last byte
        // (whose line the steps miss when `value` is not line-aligned).
        let offsets = (0..size).step_by(LINE).chain([size - 1]);
        for offset in offsets {
            // SAFETY: SSE is part of the x86_64 baseline, so the target
            // feature `_mm_prefetch` needs is always there; a prefetch of
            // any address is a hint that never faults and reads nothing
            // into the program (`wrapping_add` makes no claim either).
            unsafe { _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(offset)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
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

    /// Walks the table by SCAN steps of `count`, applying `between` after
    /// each step; returns what was seen and how many steps it took.
    fn walk(
        t: &mut KeyTable<u32>,
        count: usize,
        mut between: impl FnMut(&mut KeyTable<u32>, usize),
    ) -> (Vec<u32>, usize) {
        let (mut cursor, mut seen, mut steps) = (0, Vec::new(), 0);
        loop {
            let (next, found) = t.scan(cursor, count);
            seen.extend(found.into_iter().map(|(_, v)| *v));
            steps += 1;
            assert!(steps < 1_000_000, "the walk ends");
            if next == 0 {
                return (seen, steps);
            }
            between(t, steps);
            cursor = next;
        }
    }

    fn key(i: u32) -> Key {
        Key::from(&i.to_be_bytes()[..])
    }

    #[test]
    fn a_scan_in_one_layout_sees_each_entry_once_in_count_sized_steps() {
        let mut t = KeyTable::default();
        for i in 0..5000 {
            t.insert_new(key(i), i);
        }
        let (mut seen, steps) = walk(&mut t, 10, |_, _| {});
        seen.sort_unstable();
        assert_eq!(seen, (0..5000).collect::<Vec<_>>());
        // O(count) per step: about len / count steps, not one.
        assert!((500..=5000).contains(&steps), "{steps} steps");
    }

    #[test]
    fn a_scan_across_growth_and_removals_misses_nothing_present_throughout() {
        let mut t = KeyTable::default();
        for i in 0..300 {
            t.insert_new(key(i), i);
        }
        let (next_key, removed) = (
            std::cell::Cell::new(1000u32),
            std::cell::RefCell::new(Vec::new()),
        );
        // Between steps: insert a few new keys (the table grows several
        // times), remove one of the originals now and then.
        let (seen, _) = walk(&mut t, 7, |t, step| {
            for _ in 0..5 {
                let k = next_key.get();
                t.insert_new(key(k), k);
                next_key.set(k + 1);
            }
            if step % 3 == 0 {
                let victim = (step as u32 * 7) % 300;
                if t.remove(&victim.to_be_bytes()).is_some() {
                    removed.borrow_mut().push(victim);
                }
            }
        });
        let removed = removed.into_inner();
        for i in (0..300).filter(|i| !removed.contains(i)) {
            assert!(seen.contains(&i), "{i} was present throughout and missed");
        }
        assert!(t.slots() > 512, "the table grew during the walk");
    }

    #[test]
    fn a_foreign_or_stale_cursor_starts_the_walk_again() {
        let mut t = KeyTable::default();
        for i in 0..100 {
            t.insert_new(key(i), i);
        }
        let all = t.scan(0, 1000).1.len();
        assert_eq!(all, 100);
        for bogus in [
            u64::MAX,
            1 << 63,
            (u64::from(t.layout) << SLOT_BITS) | (1 << 31),
        ] {
            assert_eq!(t.scan(bogus, 1000).1.len(), 100, "{bogus:#x}");
        }
    }

    /// Entries move between slots when the table grows, rehashes or
    /// shrinks (a shrink folds the upper half onto the lower one, behind a
    /// walk's position): a cursor from before restarts the walk.
    #[test]
    fn a_cursor_from_before_a_resize_restarts_the_walk() {
        let mut t = KeyTable::default();
        for i in 0..100 {
            t.insert_new(key(i), i);
        }
        let (cursor, _) = t.scan(0, 10);
        assert_ne!(cursor, 0);
        let slots = t.slots();
        let mut i = 100;
        while t.slots() == slots {
            t.insert_new(key(i), i);
            i += 1;
        }
        let from_start: Vec<u32> = t.scan(0, 10).1.into_iter().map(|(_, v)| *v).collect();
        let resumed: Vec<u32> = t.scan(cursor, 10).1.into_iter().map(|(_, v)| *v).collect();
        assert_eq!(resumed, from_start, "after growing");
        let (cursor, _) = t.scan(0, 10);
        while t.slots() >= slots {
            i -= 1;
            assert!(t.remove(&i.to_be_bytes()).is_some());
        }
        let from_start: Vec<u32> = t.scan(0, 10).1.into_iter().map(|(_, v)| *v).collect();
        let resumed: Vec<u32> = t.scan(cursor, 10).1.into_iter().map(|(_, v)| *v).collect();
        assert_eq!(resumed, from_start, "after shrinking");
        let (cursor, _) = t.scan(0, 10);
        t.clear();
        t.insert_new(key(1), 1);
        assert_eq!(t.scan(cursor, 10).1.len(), 1, "after clearing");
    }

    #[test]
    fn the_prefetched_slot_is_the_key_s_own_but_for_rare_tag_collisions() {
        let mut table = KeyTable::default();
        let keys: Vec<Vec<u8>> = (0..10_000)
            .map(|i| format!("key:{i:012}").into_bytes())
            .collect();
        for key in &keys {
            table.insert_new(Key::from(&key[..]), ());
        }
        let hits = keys
            .iter()
            .filter(|key| table.likely_slot(key) == table.slot(key))
            .count();
        // An earlier entry's 7-bit tag matches about one time in two
        // hundred (54 of 10,000 in one run; the hasher is random).
        assert!(
            hits * 50 >= keys.len() * 49,
            "{hits} of {} slots",
            keys.len()
        );
        table.prefetch(b"no such key");
        KeyTable::<()>::default().prefetch(b"empty");
    }
}
