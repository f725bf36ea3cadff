//! The keyspace: values by key, and when each key expires.
//!
//! Lives in the service on the main loop: one thread, no locks, and
//! check-then-act (SET NX, INCR) is one uninterrupted step.
//!
//! Expiry: lazily on access, as Redis does, and actively from a timer. Where
//! Redis samples random keys with a TTL, this keeps them ordered by deadline
//! (a `BTreeSet`), so each active cycle removes exactly the keys that are due,
//! oldest first, up to a budget per tick; no expired key lingers because
//! sampling missed it.

use std::collections::{BTreeSet, HashSet};

use crate::blob::Blob;
use crate::key::Key;
use crate::key_table::KeyTable;
use crate::measured::{Hash, List, Set};
use crate::memory;
use crate::zset::ZSet;

/// A stored value.
#[derive(Debug)]
pub enum Value {
    Str(Blob),
    List(List),
    /// Sets and hashes are indexed (members in a vector, found by hash) so
    /// SPOP, SRANDMEMBER and HRANDFIELD pick a random member in O(1), as
    /// Redis does; removal swaps the last member into the hole.
    Set(Set),
    Hash(Hash),
    /// Boxed: a sorted set is the largest value by far (its skiplist head
    /// and index inline), and every table slot is as large as the largest
    /// variant; boxed, a string key's slot is ~80 bytes smaller.
    ZSet(Box<ZSet>),
}

impl Value {
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::List(_) => "list",
            Value::Set(_) => "set",
            Value::Hash(_) => "hash",
            Value::ZSet(_) => "zset",
        }
    }

    /// Whether an aggregate has become empty (Redis deletes such keys).
    fn is_empty_aggregate(&self) -> bool {
        match self {
            Value::Str(_) => false,
            Value::List(l) => l.is_empty(),
            Value::Set(s) => s.is_empty(),
            Value::Hash(h) => h.is_empty(),
            Value::ZSet(z) => z.is_empty(),
        }
    }
}

#[derive(Debug)]
pub struct Entry {
    pub value: Value,
    /// Unix time in milliseconds at which the key expires.
    pub expires_at: Option<i64>,
    /// The LRU clock (`lru_clock`) when the key was last read or written.
    pub access: u32,
}

/// Redis's LRU clock: seconds, in 24 bits (it wraps after 194 days; idle
/// times are computed modulo that, as Redis does).
pub const LRU_BITS: u32 = 24;
const LRU_MAX: u32 = (1 << LRU_BITS) - 1;

/// The LRU clock at Unix time `now_ms`.
pub fn lru_clock(now_ms: i64) -> u32 {
    (now_ms.max(0) / 1000) as u32 & LRU_MAX
}

/// Seconds between an entry's `access` and the clock `now` (wrapping).
pub fn idle_secs(access: u32, now: u32) -> u64 {
    u64::from(now.wrapping_sub(access) & LRU_MAX)
}

/// Keys, values and deadlines. `now` is Unix milliseconds, passed in so the
/// caller decides the clock (one reading per request).
#[derive(Debug, Default)]
pub struct Db {
    map: KeyTable<Entry>,
    /// The bytes of all entries by `memory::entry_bytes`, kept as they
    /// change (see `used_memory`).
    used: usize,
    /// The entry `get_mut` lent out (its slot) and its bytes then: the
    /// caller may have changed it, so it is measured again before the
    /// next change to the table (`settle`), or on reading `used_memory`.
    lent: Option<(usize, usize)>,
    /// The LRU clock of the running command, for keys it writes.
    clock: u32,
    /// CLIENT NO-TOUCH of the running command's client: reads do not
    /// update access times.
    pub no_touch: bool,
    deadlines: BTreeSet<(i64, Vec<u8>)>,
    expired: u64,
    /// Keys some client WATCHes (kept by `multi.rs`): their expiry is
    /// recorded in `touched` for it to collect.
    pub watched: HashSet<Vec<u8>>,
    touched: Vec<Vec<u8>>,
    /// Keys some client blocks on (kept by `blocking.rs`): their creation
    /// is recorded in `ready` for it to serve the waiters.
    pub blocked: HashSet<Vec<u8>>,
    ready: Vec<Vec<u8>>,
}

impl Db {
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn keys_with_ttl(&self) -> usize {
        self.deadlines.len()
    }

    /// Keys removed because they expired (lazily or actively).
    pub fn expired(&self) -> u64 {
        self.expired
    }

    /// Whether `key` is stored, even if past its deadline.
    pub fn contains(&self, key: &[u8]) -> bool {
        self.map.contains(key)
    }

    /// CONFIG RESETSTAT: the expired-keys counter restarts from 0.
    pub fn reset_stats(&mut self) {
        self.expired = 0;
    }

    fn note_expired(&mut self, key: &[u8]) {
        if !self.watched.is_empty() && self.watched.contains(key) {
            self.touched.push(key.to_vec());
        }
    }

    /// Keys with waiters that were created since the last call (Redis's
    /// `signalKeyAsReady` from `dbAdd`).
    pub fn take_ready(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.ready)
    }

    /// Records `key` as ready if a client blocks on it (SWAPDB's scan).
    pub fn signal_if_blocked(&mut self, key: &[u8]) {
        if !self.blocked.is_empty() && self.blocked.contains(key) {
            self.ready.push(key.to_vec());
        }
    }

    /// Whether watched keys expired since the last `take_touched`.
    pub fn has_touched(&self) -> bool {
        !self.touched.is_empty()
    }

    /// The watched keys that expired since the last call.
    pub fn take_touched(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.touched)
    }

    /// Removes `key` if its deadline passed; `true` if it is (still) live.
    fn check(&mut self, key: &[u8], now: i64) -> bool {
        self.live_slot(key, now).is_some()
    }

    /// The slot of `key` if it is live (valid until the next insert or
    /// removal), after removing it if its deadline passed. One hash of the
    /// key: reading the entry through the slot hashes no more.
    fn live_slot(&mut self, key: &[u8], now: i64) -> Option<usize> {
        let slot = self.map.slot(key)?;
        let (_, entry) = self.map.at_slot(slot)?;
        if entry.expires_at.is_some_and(|at| at <= now) {
            self.remove(key);
            self.expired += 1;
            self.note_expired(key);
            return None;
        }
        Some(slot)
    }

    /// Sets the LRU clock for what the running command writes (and reads,
    /// unless `no_touch`); also folds in the entry `get_mut` lent last.
    pub fn begin_command(&mut self, now: i64, no_touch: bool) {
        self.clock = lru_clock(now);
        self.no_touch = no_touch;
        self.settle();
    }

    /// Takes `other`'s LRU clock: the mounted database's is the running
    /// command's; one not mounted then has an older one.
    pub fn share_clock(&mut self, other: &Db) {
        self.clock = other.clock;
    }

    /// Measures the entry `get_mut` lent out again (the caller may have
    /// grown or shrunk it) and corrects `used`. O(1): a slot lookup and
    /// the formula (collections keep their byte totals).
    fn settle(&mut self) {
        if let Some((slot, before)) = self.lent.take() {
            if let Some((key, entry)) = self.map.at_slot(slot) {
                let after = memory::entry_bytes(key, entry);
                self.account(before, after);
            }
        }
    }

    /// The bytes of this database's data by `memory::entry_bytes`, O(1).
    pub fn used_memory(&self) -> usize {
        match self.lent {
            Some((slot, before)) => match self.map.at_slot(slot) {
                Some((key, entry)) => {
                    (self.used + memory::entry_bytes(key, entry)).saturating_sub(before)
                }
                None => self.used,
            },
            None => self.used,
        }
    }

    /// Replaces `before` bytes by `after` in `used`. The count is exact
    /// (the tests check it against the formula); if it were ever short, it
    /// stops at 0 in a release build rather than wrap to "full".
    fn account(&mut self, before: usize, after: usize) {
        debug_assert!(self.used >= before, "{} < {before}", self.used);
        self.used = (self.used + after).saturating_sub(before);
    }

    /// Starts loading `key`'s entry into the cache (see
    /// `KeyTable::prefetch`); changes nothing.
    pub fn prefetch(&self, key: &[u8]) {
        self.map.prefetch(key);
    }

    pub fn get(&mut self, key: &[u8], now: i64) -> Option<&Value> {
        let slot = self.live_slot(key, now)?;
        let (clock, touch) = (self.clock, !self.no_touch);
        let entry = self.map.at_slot_mut(slot)?;
        if touch {
            entry.access = clock;
        }
        Some(&entry.value)
    }

    /// A live key's value without expiring anything (a deadline already
    /// passed reads as no key): for commands that hold several values at
    /// once after `get` has expired them one by one.
    pub fn peek(&self, key: &[u8], now: i64) -> Option<&Value> {
        self.map
            .get(key)
            .filter(|e| e.expires_at.is_none_or(|at| at > now))
            .map(|e| &e.value)
    }

    /// The access time of a live key without touching it (OBJECT IDLETIME).
    pub fn access_time(&self, key: &[u8], now: i64) -> Option<u32> {
        self.map
            .get(key)
            .filter(|e| e.expires_at.is_none_or(|at| at > now))
            .map(|e| e.access)
    }

    /// The value to edit in place. Its size is measured again before the
    /// next change to the keyspace (`settle`), so every edit is counted.
    pub fn get_mut(&mut self, key: &[u8], now: i64) -> Option<&mut Value> {
        let slot = self.live_slot(key, now)?;
        // (Settling changes counts, not the table: the slot stays valid.)
        self.settle();
        let (k, entry) = self.map.at_slot(slot)?;
        self.lent = Some((slot, memory::entry_bytes(k, entry)));
        let clock = self.clock;
        let entry = self.map.at_slot_mut(slot)?;
        entry.access = clock;
        Some(&mut entry.value)
    }

    pub fn exists(&mut self, key: &[u8], now: i64) -> bool {
        self.check(key, now)
    }

    /// Stores `value`, clearing any TTL unless `keep_ttl`. An existing key
    /// is updated in place: one lookup, and its key bytes are not copied.
    pub fn set(&mut self, key: &[u8], value: Value, keep_ttl: bool) {
        self.settle();
        let clock = self.clock;
        if let Some(entry) = self.map.get_mut(key) {
            let before = memory::entry_bytes(key, entry);
            entry.value = value;
            entry.access = clock;
            if !keep_ttl {
                if let Some(at) = entry.expires_at.take() {
                    self.deadlines.remove(&(at, key.to_vec()));
                }
            }
            let after = memory::entry_bytes(key, entry);
            self.account(before, after);
            return;
        }
        let entry = Entry {
            value,
            expires_at: None,
            access: clock,
        };
        self.used += memory::entry_bytes(key, &entry);
        self.map.insert_new(Key::from(key), entry);
        // Every new key passes here (commands, RENAME, MOVE): the one hook
        // that wakes blocked clients whatever command created the key.
        self.signal_if_blocked(key);
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<Value> {
        self.settle();
        let entry = self.map.remove(key)?;
        self.account(memory::entry_bytes(key, &entry), 0);
        if let Some(at) = entry.expires_at {
            self.deadlines.remove(&(at, key.to_vec()));
        }
        Some(entry.value)
    }

    /// Sets or clears the deadline of a live key; `false` if there is no key.
    pub fn set_expiry(&mut self, key: &[u8], at: Option<i64>, now: i64) -> bool {
        if !self.check(key, now) {
            return false;
        }
        self.settle();
        let entry = self.map.get_mut(key).expect("checked live");
        let before = memory::entry_bytes(key, entry);
        if let Some(old) = entry.expires_at.take() {
            self.deadlines.remove(&(old, key.to_vec()));
        }
        if let Some(at) = at {
            entry.expires_at = Some(at);
            self.deadlines.insert((at, key.to_vec()));
        }
        let after = memory::entry_bytes(key, entry);
        self.account(before, after);
        true
    }

    /// The deadline of a live key: `None` if no key, `Some(None)` if no TTL.
    pub fn expiry(&mut self, key: &[u8], now: i64) -> Option<Option<i64>> {
        if !self.check(key, now) {
            return None;
        }
        Some(self.map.get(key).and_then(|e| e.expires_at))
    }

    /// Deletes an aggregate that became empty after a removal.
    pub fn drop_if_empty(&mut self, key: &[u8]) {
        if self
            .map
            .get(key)
            .is_some_and(|e| e.value.is_empty_aggregate())
        {
            self.remove(key);
        }
    }

    pub fn clear(&mut self) {
        self.map.clear();
        self.deadlines.clear();
        self.used = 0;
        self.lent = None;
    }

    /// Up to `count` keys from a random place in the table, with their
    /// access time and deadline, looking at no more than `max_slots`
    /// slots (eviction's sample; expired keys included, as Redis's).
    pub fn sample(
        &self,
        start: usize,
        count: usize,
        max_slots: usize,
    ) -> impl Iterator<Item = (&[u8], u32, Option<i64>)> {
        let start = start % self.map.slots().max(1);
        self.map
            .sample(start, count, max_slots)
            .map(|(k, e)| (&**k, e.access, e.expires_at))
    }

    /// The key with the nearest deadline (volatile-ttl's victim).
    pub fn nearest_deadline(&self) -> Option<(i64, &[u8])> {
        self.deadlines.first().map(|(at, k)| (*at, k.as_slice()))
    }

    /// A key with a TTL, picked by a random deadline between the nearest
    /// and the farthest (volatile-random's and volatile-lru's sample:
    /// O(log n), biased towards keys whose deadlines are far apart).
    pub fn deadline_near(&self, fraction: f64) -> Option<(&[u8], u32)> {
        let (first, _) = self.deadlines.first()?;
        let (last, _) = self.deadlines.last()?;
        let at = first + ((last - first) as f64 * fraction.clamp(0.0, 1.0)) as i64;
        let (_, key) = self.deadlines.range((at, Vec::new())..).next()?;
        let access = self.map.get(key)?.access;
        Some((key.as_slice(), access))
    }

    /// Live keys (expired ones are skipped, not removed).
    pub fn live_keys(&self, now: i64) -> impl Iterator<Item = &[u8]> {
        self.map
            .iter()
            .filter(move |(_, e)| e.expires_at.is_none_or(|at| at > now))
            .map(|(k, _)| &**k)
    }

    /// A live key picked at random (RANDOMKEY), or `None` if there is none:
    /// the first live key from a random slot on, as Redis walks from a
    /// random bucket (O(1) expected: the table is at least 1/8 full).
    pub fn random_key(&self, now: i64) -> Option<Vec<u8>> {
        use std::hash::BuildHasher;
        let slots = self.map.slots();
        if self.map.len() == 0 {
            return None;
        }
        let start =
            (std::collections::hash_map::RandomState::new().hash_one(now) % slots as u64) as usize;
        self.map
            .sample(start, usize::MAX, slots)
            .find(|(_, e)| e.expires_at.is_none_or(|at| at > now))
            .map(|(k, _)| k.to_vec())
    }

    /// Renames a live key, keeping its TTL; `false` if `from` does not exist.
    pub fn rename(&mut self, from: &[u8], to: Vec<u8>, now: i64) -> bool {
        if !self.check(from, now) {
            return false;
        }
        let at = self.map.get(from).and_then(|e| e.expires_at);
        let value = self.remove(from).expect("checked live");
        self.remove(&to);
        self.set(&to, value, false);
        if at.is_some() {
            self.set_expiry(&to, at, now);
        }
        true
    }

    /// One SCAN step from `cursor`: live keys and the next cursor (0 at
    /// the end). O(count): see `KeyTable::scan` for the guarantee.
    pub fn scan(&self, cursor: u64, count: usize, now: i64) -> (u64, Vec<&[u8]>) {
        let (next, entries) = self.map.scan(cursor, count);
        let live = entries
            .into_iter()
            .filter(|(_, e)| e.expires_at.is_none_or(|at| at > now))
            .map(|(k, _)| &**k)
            .collect();
        (next, live)
    }

    /// Active expiry: removes up to `budget` keys whose deadline passed.
    /// Returns how many were removed, and whether more are already due.
    pub fn expire_due(&mut self, now: i64, budget: usize) -> (usize, bool) {
        let mut removed = 0;
        while removed < budget {
            let Some((at, _)) = self.deadlines.first() else {
                return (removed, false);
            };
            if *at > now {
                return (removed, false);
            }
            let (_, key) = self.deadlines.pop_first().expect("peeked");
            self.settle();
            if let Some(entry) = self.map.remove(&key[..]) {
                self.account(memory::entry_bytes(&key, &entry), 0);
            }
            self.expired += 1;
            self.note_expired(&key);
            removed += 1;
        }
        (
            removed,
            self.deadlines.first().is_some_and(|(at, _)| *at <= now),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_expire_lazily_and_actively_and_ttls_follow_set_and_rename() {
        let mut db = Db::default();
        db.set(b"a", Value::Str(b"1".to_vec().into()), false);
        db.set(b"b", Value::Str(b"2".to_vec().into()), false);
        assert!(db.set_expiry(b"a", Some(100), 0));
        assert!(db.set_expiry(b"b", Some(200), 0));
        assert!(db.get(b"a", 99).is_some());
        assert!(db.get(b"a", 100).is_none(), "lazy: gone at its deadline");
        assert_eq!(db.expire_due(150, 10), (0, false));
        assert_eq!(
            db.expire_due(200, 10),
            (1, false),
            "active: b removed in the background"
        );
        assert_eq!((db.len(), db.keys_with_ttl(), db.expired()), (0, 0, 2));

        db.set(b"c", Value::Str(b"3".to_vec().into()), false);
        db.set_expiry(b"c", Some(500), 0);
        db.set(b"c", Value::Str(b"4".to_vec().into()), true);
        assert_eq!(db.expiry(b"c", 0), Some(Some(500)), "KEEPTTL");
        db.set(b"c", Value::Str(b"5".to_vec().into()), false);
        assert_eq!(db.expiry(b"c", 0), Some(None), "a plain SET clears the TTL");
        assert_eq!(db.keys_with_ttl(), 0);
        db.set_expiry(b"c", Some(700), 0);
        assert!(db.rename(b"c", b"d".to_vec(), 0));
        assert_eq!(db.expiry(b"d", 0), Some(Some(700)));
        assert_eq!(db.keys_with_ttl(), 1);
    }

    /// The formula over every entry: what `used_memory` must equal.
    fn recount(db: &Db) -> usize {
        db.map.iter().map(|(k, e)| memory::entry_bytes(k, e)).sum()
    }

    #[test]
    fn the_byte_count_follows_every_change_exactly() {
        use crate::measured::{Hash, List, Set};
        let mut db = Db::default();
        let check = |db: &Db, what: &str| assert_eq!(db.used_memory(), recount(db), "{what}");
        db.set(b"s", Value::Str(Blob::from(&b"short"[..])), false);
        db.set(&[b'k'; 40], Value::Str(Blob::from(vec![7u8; 100])), false);
        check(&db, "inserts (inline and heap key and value)");
        assert_eq!(
            db.used_memory(),
            2 * memory::SLOT + 40 + 100 + 2 * std::mem::size_of::<usize>(),
            "the formula: slots, the long key's and long value's bytes, the value's reference counts"
        );
        db.set(b"s", Value::Str(Blob::from(vec![1u8; 50])), false);
        check(&db, "overwrite");
        db.set_expiry(b"s", Some(1000), 0);
        check(&db, "a TTL");
        db.set(b"s", Value::Str(Blob::from(&b"x"[..])), true);
        check(&db, "KEEPTTL overwrite");
        db.set(b"l", Value::List(List::default()), false);
        db.set(b"h", Value::Hash(Hash::default()), false);
        db.set(b"t", Value::Set(Set::default()), false);
        db.set(b"z", Value::ZSet(Box::default()), false);
        for i in 0..50u8 {
            // Edits in place through `get_mut`, each measured at the next
            // change; reading `used_memory` in between sees them too.
            if let Some(Value::List(l)) = db.get_mut(b"l", 0) {
                l.push_back(vec![i; usize::from(i)]);
            }
            check(&db, "a list push, still lent");
            if let Some(Value::Hash(h)) = db.get_mut(b"h", 0) {
                h.insert(vec![i % 7], vec![i; usize::from(i)]);
            }
            if let Some(Value::Set(s)) = db.get_mut(b"t", 0) {
                s.insert(vec![i % 9; 3]);
            }
            if let Some(Value::ZSet(z)) = db.get_mut(b"z", 0) {
                z.insert(vec![i % 11; 5], f64::from(i));
            }
            if let Some(Value::Str(s)) = db.get_mut(b"s", 0) {
                s.make_mut().extend_from_slice(&[i; 3]);
            }
            check(&db, "edits");
        }
        if let Some(Value::List(l)) = db.get_mut(b"l", 0) {
            l.drain(..25);
        }
        db.remove(b"t");
        check(&db, "a removal after a shrinking edit");
        db.set_expiry(b"l", Some(10), 0);
        assert!(db.get(b"l", 10).is_none());
        check(&db, "lazy expiry");
        db.set_expiry(b"h", Some(10), 0);
        assert_eq!(db.expire_due(10, 10), (1, false));
        check(&db, "active expiry");
        assert!(db.rename(b"z", b"zz".to_vec(), 0));
        check(&db, "rename");
        db.clear();
        assert_eq!(db.used_memory(), 0, "flush");
        db.set(b"again", Value::Str(Blob::from(&b"1"[..])), false);
        check(&db, "after a flush");
    }

    #[test]
    fn reads_and_writes_set_the_access_clock_unless_no_touch() {
        let mut db = Db::default();
        db.begin_command(5_000, false);
        db.set(b"k", Value::Str(Blob::from(&b"v"[..])), false);
        assert_eq!(db.access_time(b"k", 0), Some(5));
        db.begin_command(9_000, true);
        db.get(b"k", 9_000);
        assert_eq!(db.access_time(b"k", 0), Some(5), "NO-TOUCH read");
        db.begin_command(12_000, false);
        db.exists(b"k", 12_000);
        assert_eq!(db.access_time(b"k", 0), Some(5), "EXISTS does not touch");
        db.get(b"k", 12_000);
        assert_eq!(db.access_time(b"k", 0), Some(12));
        assert_eq!(idle_secs(12, lru_clock(20_000)), 8);
        assert_eq!(idle_secs(LRU_MAX, 1), 2, "the 24-bit clock wraps");
    }

    #[test]
    fn the_active_cycle_respects_its_budget() {
        let mut db = Db::default();
        for i in 0..10u8 {
            db.set(&[i], Value::Str(vec![i].into()), false);
            db.set_expiry(&[i], Some(i as i64), 0);
        }
        assert_eq!(db.expire_due(100, 4), (4, true));
        assert_eq!(db.expire_due(100, 10), (6, false));
        assert_eq!(db.len(), 0);
    }
}
