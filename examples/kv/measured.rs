//! Lists, sets and hashes that keep the total length of their elements.
//!
//! `maxmemory` needs the size of every value at once after each write
//! (`memory.rs`), and a command edits an aggregate in place (LPUSH adds
//! one item to a list of a million). Summing the items again would make
//! each such write O(n); instead each collection counts the bytes of
//! what it holds as they come and go, so its size is O(1) to read.
//!
//! Reading goes through `Deref` to the plain collection; every change goes
//! through the methods here (there is no `DerefMut`), so the count cannot
//! drift from the contents.

use std::collections::VecDeque;
use std::hash::BuildHasher;
use std::ops::{Deref, RangeBounds};

use indexmap::{IndexMap, IndexSet};

/// A collection and the total length of the byte strings it holds.
#[derive(Debug, Clone, Default)]
pub struct Measured<C> {
    items: C,
    payload: usize,
}

/// Names one collection in its SSCAN/HSCAN/ZSCAN cursors, so a cursor
/// handed out by a collection that a command has since replaced under the
/// same key with the same members in another order (`SINTERSTORE s t s`)
/// starts the walk over instead of resuming at positions that now hold
/// other members (`commands::element_scan::walk`). Taken from the
/// collection's own hasher, whose keys every new map or set draws afresh
/// (std's `RandomState`), so it costs no field: a rebuilt collection gets
/// another tag but for one chance in 65,536, and a clone keeps its
/// original's tag along with its order, which is what a cursor needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanTag(pub u16);

impl ScanTag {
    pub fn of(hasher: &impl BuildHasher) -> Self {
        // The low 16 bits of a keyed hash of a constant.
        Self(hasher.hash_one(0u8) as u16)
    }
}

impl<C> Measured<C> {
    /// Bytes of all elements (for hashes, fields and values).
    pub fn payload(&self) -> usize {
        self.payload
    }
}

impl<C> Deref for Measured<C> {
    type Target = C;

    fn deref(&self) -> &C {
        &self.items
    }
}

pub type List = Measured<VecDeque<Vec<u8>>>;
pub type Set = Measured<IndexSet<Vec<u8>>>;
pub type Hash = Measured<IndexMap<Vec<u8>, Vec<u8>>>;

fn total<'a>(items: impl Iterator<Item = &'a Vec<u8>>) -> usize {
    items.map(Vec::len).sum()
}

impl List {
    pub fn with_capacity(n: usize) -> Self {
        Self {
            items: VecDeque::with_capacity(n),
            payload: 0,
        }
    }

    pub fn push_front(&mut self, item: Vec<u8>) {
        self.payload += item.len();
        self.items.push_front(item);
    }

    pub fn push_back(&mut self, item: Vec<u8>) {
        self.payload += item.len();
        self.items.push_back(item);
    }

    pub fn pop_front(&mut self) -> Option<Vec<u8>> {
        let item = self.items.pop_front()?;
        self.payload -= item.len();
        Some(item)
    }

    pub fn pop_back(&mut self) -> Option<Vec<u8>> {
        let item = self.items.pop_back()?;
        self.payload -= item.len();
        Some(item)
    }

    /// Removes the items in `range`, in order.
    pub fn drain(&mut self, range: impl RangeBounds<usize>) -> Vec<Vec<u8>> {
        let out: Vec<Vec<u8>> = self.items.drain(range).collect();
        self.payload -= total(out.iter());
        out
    }

    pub fn insert(&mut self, at: usize, item: Vec<u8>) {
        self.payload += item.len();
        self.items.insert(at, item);
    }

    /// Replaces the item at `at`; `false` if there is none.
    pub fn replace(&mut self, at: usize, item: Vec<u8>) -> bool {
        let Some(slot) = self.items.get_mut(at) else {
            return false;
        };
        self.payload = self.payload - slot.len() + item.len();
        *slot = item;
        true
    }

    pub fn truncate(&mut self, len: usize) {
        if len < self.items.len() {
            self.payload -= total(self.items.range(len..));
            self.items.truncate(len);
        }
    }

    pub fn clear(&mut self) {
        self.items.clear();
        self.payload = 0;
    }

    pub fn retain(&mut self, mut keep: impl FnMut(&Vec<u8>) -> bool) {
        let mut gone = 0;
        self.items.retain(|item| {
            let kept = keep(item);
            if !kept {
                gone += item.len();
            }
            kept
        });
        self.payload -= gone;
    }
}

impl Set {
    /// This set's name in scan cursors.
    pub fn scan_tag(&self) -> ScanTag {
        ScanTag::of(self.items.hasher())
    }

    /// `true` if `member` is new.
    pub fn insert(&mut self, member: Vec<u8>) -> bool {
        let len = member.len();
        let new = self.items.insert(member);
        if new {
            self.payload += len;
        }
        new
    }

    /// `true` if `member` was there (the last member takes its place).
    pub fn swap_remove(&mut self, member: &[u8]) -> bool {
        let removed = self.items.swap_remove(member);
        if removed {
            self.payload -= member.len();
        }
        removed
    }

    pub fn swap_remove_index(&mut self, at: usize) -> Option<Vec<u8>> {
        let member = self.items.swap_remove_index(at)?;
        self.payload -= member.len();
        Some(member)
    }

    /// Removes and returns every member.
    pub fn take_all(&mut self) -> Vec<Vec<u8>> {
        self.payload = 0;
        self.items.drain(..).collect()
    }
}

impl From<IndexSet<Vec<u8>>> for Set {
    fn from(items: IndexSet<Vec<u8>>) -> Self {
        let payload = total(items.iter());
        Self { items, payload }
    }
}

impl FromIterator<Vec<u8>> for Set {
    fn from_iter<I: IntoIterator<Item = Vec<u8>>>(members: I) -> Self {
        Self::from(members.into_iter().collect::<IndexSet<Vec<u8>>>())
    }
}

impl Hash {
    /// This hash's name in scan cursors.
    pub fn scan_tag(&self) -> ScanTag {
        ScanTag::of(self.items.hasher())
    }

    /// Sets `field`; the previous value, if any.
    pub fn insert(&mut self, field: Vec<u8>, value: Vec<u8>) -> Option<Vec<u8>> {
        let (flen, vlen) = (field.len(), value.len());
        let old = self.items.insert(field, value);
        match &old {
            // The field's bytes were counted already (the map keeps its
            // first copy of the key).
            Some(old) => self.payload = self.payload - old.len() + vlen,
            None => self.payload += flen + vlen,
        }
        old
    }

    /// Removes `field` keeping the order of the others.
    pub fn shift_remove(&mut self, field: &[u8]) -> Option<Vec<u8>> {
        let value = self.items.shift_remove(field)?;
        self.payload -= field.len() + value.len();
        Some(value)
    }

    /// Removes `field`; the last field takes its place.
    pub fn swap_remove(&mut self, field: &[u8]) -> Option<Vec<u8>> {
        let value = self.items.swap_remove(field)?;
        self.payload -= field.len() + value.len();
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Vec<u8> {
        s.as_bytes().to_vec()
    }

    #[test]
    fn every_list_edit_keeps_the_count() {
        let mut l = List::default();
        for s in ["a", "bb", "ccc", "dddd", "bb"] {
            l.push_back(v(s));
        }
        l.push_front(v("eeeee"));
        let check = |l: &List| assert_eq!(l.payload(), total(l.iter()), "{l:?}");
        check(&l);
        l.pop_front();
        l.pop_back();
        check(&l);
        assert!(l.replace(0, v("zzzzzzz")));
        assert!(!l.replace(99, v("x")));
        check(&l);
        l.insert(1, v("yy"));
        l.retain(|x| x != b"yy");
        check(&l);
        assert_eq!(l.drain(..1), vec![v("zzzzzzz")]);
        check(&l);
        l.truncate(1);
        check(&l);
        l.clear();
        assert_eq!(l.payload(), 0);
    }

    #[test]
    fn sets_and_hashes_count_members_once() {
        let mut s = Set::default();
        assert!(s.insert(v("abc")));
        assert!(!s.insert(v("abc")));
        assert!(s.insert(v("de")));
        assert_eq!(s.payload(), 5);
        assert!(s.swap_remove(b"abc"));
        assert!(!s.swap_remove(b"abc"));
        assert_eq!(s.payload(), 2);
        assert_eq!(s.take_all(), vec![v("de")]);
        assert_eq!(s.payload(), 0);

        let mut h = Hash::default();
        h.insert(v("f"), v("1234"));
        h.insert(v("f"), v("12"));
        h.insert(v("gg"), v("x"));
        assert_eq!(h.payload(), 1 + 2 + 2 + 1);
        assert_eq!(h.swap_remove(b"f"), Some(v("12")));
        assert_eq!(h.shift_remove(b"gg"), Some(v("x")));
        assert_eq!(h.payload(), 0);
    }
}
