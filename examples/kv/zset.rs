//! Sorted sets: members ordered by (score, member), with the score of a
//! member by hash lookup and every rank operation in O(log n).
//!
//! The order is Redis's own structure, a skiplist whose links carry spans
//! (how many members a link jumps over), so the rank of a member, the
//! member at a rank, and the first or last rank inside a score or lex
//! range are each one descent from the top level: O(log n) expected.
//! A range of k members is one descent and then k steps along the bottom
//! level (forward) or the back links (reverse).
//!
//! Lex ranges assume that all members have the same score, as Redis
//! documents. Over members of different scores Redis's answer is whatever
//! its walk finds (a linear scan of a small set, a random-level descent
//! of a large one); here both bounds come from descents, so such answers
//! may differ from Redis's.
//!
//! The nodes live in a `Vec` arena and link by index (no `unsafe`, no
//! `Rc`); freed slots are reused. Every operation is a loop over at most
//! [`MAX_LEVEL`] levels: nothing recurses. Levels are drawn from a
//! per-set generator seeded from the process's random hasher keys, so a
//! client cannot predict which members get tall towers.
//!
//! Scores are never NaN (the commands refuse it). They compare with `<`
//! and `==` as Redis's C does, so `-0` and `0` tie and order by member.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;

use crate::measured::ScanTag;

/// Redis's `ZSKIPLIST_MAXLEVEL`: enough for 2^64 members at p = 1/4.
const MAX_LEVEL: usize = 32;
/// Redis's `zset-max-listpack-entries` and `zset-max-listpack-value`:
/// the largest set, and the longest member, Redis keeps in its compact
/// encoding (see [`ZSet::is_listpack`]).
pub const LISTPACK_ENTRIES: usize = 128;
pub const LISTPACK_VALUE: usize = 64;
/// No node (the end of a level, or no back link from the first node).
const NIL: usize = usize::MAX;
/// The head node: a sentinel with a link per level and no member.
const HEAD: usize = 0;

#[derive(Debug, Clone, Copy)]
struct Link {
    next: usize,
    /// Members passed by following `next` (to NIL: members after this one).
    span: usize,
}

#[derive(Debug)]
struct Node {
    member: Vec<u8>,
    score: f64,
    back: usize,
    links: Vec<Link>,
}

/// A score range with Redis's `(` exclusive bounds.
#[derive(Debug, Clone, Copy)]
pub struct ScoreRange {
    pub min: f64,
    pub max: f64,
    pub min_exclusive: bool,
    pub max_exclusive: bool,
}

impl ScoreRange {
    fn above_min(&self, score: f64) -> bool {
        if self.min_exclusive {
            score > self.min
        } else {
            score >= self.min
        }
    }

    fn below_max(&self, score: f64) -> bool {
        if self.max_exclusive {
            score < self.max
        } else {
            score <= self.max
        }
    }

    fn is_empty(&self) -> bool {
        self.min > self.max || (self.min == self.max && (self.min_exclusive || self.max_exclusive))
    }
}

/// One end of a lex range: `-`, `+`, or a member with `[` or `(`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum LexItem {
    /// `-`: below every member.
    Min,
    /// `[value` or `(value`.
    Value(Vec<u8>),
    /// `+`: above every member.
    Max,
}

#[derive(Debug, Clone)]
pub struct LexRange {
    pub min: LexItem,
    pub max: LexItem,
    pub min_exclusive: bool,
    pub max_exclusive: bool,
}

impl LexRange {
    fn above_min(&self, member: &[u8]) -> bool {
        let cmp = lex_cmp(member, &self.min);
        cmp.is_gt() || (cmp.is_eq() && !self.min_exclusive)
    }

    fn below_max(&self, member: &[u8]) -> bool {
        let cmp = lex_cmp(member, &self.max);
        cmp.is_lt() || (cmp.is_eq() && !self.max_exclusive)
    }

    fn is_empty(&self) -> bool {
        let cmp = self.min.cmp(&self.max);
        cmp.is_gt() || (cmp.is_eq() && (self.min_exclusive || self.max_exclusive))
    }
}

fn lex_cmp(member: &[u8], item: &LexItem) -> std::cmp::Ordering {
    match item {
        LexItem::Min => std::cmp::Ordering::Greater,
        LexItem::Max => std::cmp::Ordering::Less,
        LexItem::Value(v) => member.cmp(v.as_slice()),
    }
}

#[derive(Debug)]
pub struct ZSet {
    scores: HashMap<Vec<u8>, f64>,
    nodes: Vec<Node>,
    free: Vec<usize>,
    tail: usize,
    level: usize,
    rng: u64,
    /// Whether Redis would still hold this set as a listpack.
    listpack: bool,
    /// Bytes of all members (for `memory.rs`).
    payload: usize,
}

impl Default for ZSet {
    fn default() -> Self {
        let head = Node {
            member: Vec::new(),
            score: 0.0,
            back: NIL,
            // Grown with the list's level: a small set's head stays small.
            links: vec![Link { next: NIL, span: 0 }; 1],
        };
        Self {
            scores: HashMap::new(),
            nodes: vec![head],
            free: Vec::new(),
            tail: NIL,
            level: 1,
            rng: RandomState::new().hash_one(0u8) | 1,
            listpack: true,
            payload: 0,
        }
    }
}

impl ZSet {
    /// An empty set held as a skiplist from the start, as Redis builds the
    /// result of ZUNION, ZINTER and ZDIFF: a score of -0 stays -0.
    pub fn skiplist() -> Self {
        Self {
            listpack: false,
            ..Self::default()
        }
    }

    /// An empty set as Redis's `zsetTypeCreate(size, 0)` makes one for a
    /// result of `size` members (ZRANGESTORE): a skiplist from the start,
    /// keeping -0, when they could not fit a listpack. (Redis 7.0's ZADD
    /// gives no such hint: it converts when the 129th member arrives.)
    pub fn with_size_hint(size: usize) -> Self {
        if size > LISTPACK_ENTRIES {
            Self::skiplist()
        } else {
            Self::default()
        }
    }

    /// The set as Redis stores a computed result
    /// (`zsetConvertToListpackIfNeeded`): converted to a listpack, where
    /// -0 becomes 0, if it is small enough for one; as it is otherwise.
    pub fn into_stored(self) -> Self {
        if !self.listpack
            && self.len() <= LISTPACK_ENTRIES
            && self.iter().all(|(m, _)| m.len() <= LISTPACK_VALUE)
        {
            let mut compact = ZSet::default();
            for (member, score) in self.iter() {
                compact.insert(member.to_vec(), score);
            }
            return compact;
        }
        self
    }

    pub fn len(&self) -> usize {
        self.scores.len()
    }

    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }

    /// Bytes of all members, kept as they come and go.
    pub fn payload(&self) -> usize {
        self.payload
    }

    /// Whether Redis would hold this set in its compact encoding: it was
    /// built (by ZADD or a *STORE command) without ever passing
    /// [`LISTPACK_ENTRIES`] members or holding a member longer than
    /// [`LISTPACK_VALUE`] bytes. Redis 7.0 never converts back when a set
    /// shrinks. The encoding shows in ZSCAN (all at once or by cursor)
    /// and in how -0 is kept.
    pub fn is_listpack(&self) -> bool {
        self.listpack
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.scores.get(member).copied()
    }

    /// Sets `member`'s score; `true` if the member is new.
    /// While the set is a listpack a score of -0 is stored as 0, as Redis
    /// stores it there (as the text of an integer).
    pub fn insert(&mut self, member: Vec<u8>, score: f64) -> bool {
        debug_assert!(!score.is_nan());
        if self.listpack
            && (member.len() > LISTPACK_VALUE
                || (self.len() >= LISTPACK_ENTRIES && !self.scores.contains_key(&member)))
        {
            self.listpack = false;
        }
        let score = if score == 0.0 && self.listpack {
            0.0
        } else {
            score
        };
        match self.scores.get_mut(member.as_slice()) {
            Some(old) => {
                let old_score = std::mem::replace(old, score);
                self.unlink(old_score, &member);
                self.link(score, member);
                false
            }
            None => {
                self.payload += member.len();
                self.scores.insert(member.clone(), score);
                self.link(score, member);
                true
            }
        }
    }

    /// Removes `member`; `true` if it was there.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        match self.scores.remove(member) {
            Some(score) => {
                self.payload -= member.len();
                self.unlink(score, member);
                true
            }
            None => false,
        }
    }

    pub fn pop_min(&mut self) -> Option<(Vec<u8>, f64)> {
        let first = self.nodes[HEAD].links[0].next;
        self.pop_node(first)
    }

    pub fn pop_max(&mut self) -> Option<(Vec<u8>, f64)> {
        self.pop_node(self.tail)
    }

    fn pop_node(&mut self, node: usize) -> Option<(Vec<u8>, f64)> {
        if node == NIL {
            return None;
        }
        let member = self.nodes[node].member.clone();
        let score = self.nodes[node].score;
        self.remove(&member);
        Some((member, score))
    }

    /// The 0-based rank of `member` in ascending order.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        let score = self.score(member)?;
        let mut x = HEAD;
        let mut rank = 0;
        for i in (0..self.level).rev() {
            loop {
                let link = self.nodes[x].links[i];
                if link.next != NIL && !self.after(link.next, score, member) {
                    rank += link.span;
                    x = link.next;
                } else {
                    break;
                }
            }
            if x != HEAD && self.nodes[x].member == member {
                return Some(rank - 1);
            }
        }
        None
    }

    /// The member and score at 0-based `rank`.
    pub fn at_rank(&self, rank: usize) -> Option<(&[u8], f64)> {
        let node = self.node_at(rank)?;
        Some((&self.nodes[node].member, self.nodes[node].score))
    }

    fn node_at(&self, rank: usize) -> Option<usize> {
        let target = rank.checked_add(1)?;
        if target > self.len() {
            return None;
        }
        let mut x = HEAD;
        let mut traversed = 0;
        for i in (0..self.level).rev() {
            loop {
                let link = self.nodes[x].links[i];
                if link.next != NIL && traversed + link.span <= target {
                    traversed += link.span;
                    x = link.next;
                } else {
                    break;
                }
            }
            if traversed == target {
                return Some(x);
            }
        }
        None
    }

    /// Members from 0-based `rank` on: ascending, or descending (towards
    /// rank 0) if `reverse`. O(log n) to start, O(1) a step.
    pub fn iter_from(&self, rank: usize, reverse: bool) -> Iter<'_> {
        Iter {
            set: self,
            node: self.node_at(rank).unwrap_or(NIL),
            reverse,
        }
    }

    /// All members in ascending order.
    pub fn iter(&self) -> Iter<'_> {
        self.iter_from(0, false)
    }

    /// The first and last 0-based ranks whose scores are in `range`.
    pub fn score_ranks(&self, range: &ScoreRange) -> Option<(usize, usize)> {
        if range.is_empty() || self.is_empty() {
            return None;
        }
        let first = self.first_rank_where(|n| range.above_min(n.score))?;
        let last = self.last_rank_where(|n| range.below_max(n.score))?;
        (first <= last).then_some((first, last))
    }

    /// The first and last 0-based ranks whose members are in `range`
    /// (meaningful when all scores are equal, as in Redis).
    pub fn lex_ranks(&self, range: &LexRange) -> Option<(usize, usize)> {
        if range.is_empty() || self.is_empty() {
            return None;
        }
        let first = self.first_rank_where(|n| range.above_min(&n.member))?;
        let last = self.last_rank_where(|n| range.below_max(&n.member))?;
        (first <= last).then_some((first, last))
    }

    /// The rank of the first node for which `ok` holds, given that it
    /// holds for every node after it (a lower bound).
    fn first_rank_where(&self, ok: impl Fn(&Node) -> bool) -> Option<usize> {
        let mut x = HEAD;
        let mut rank = 0;
        for i in (0..self.level).rev() {
            loop {
                let link = self.nodes[x].links[i];
                if link.next != NIL && !ok(&self.nodes[link.next]) {
                    rank += link.span;
                    x = link.next;
                } else {
                    break;
                }
            }
        }
        // `rank` nodes fail `ok`; the next one, at 0-based `rank`, passes.
        (rank < self.len()).then_some(rank)
    }

    /// The rank of the last node for which `ok` holds, given that it holds
    /// for every node before it (an upper bound).
    fn last_rank_where(&self, ok: impl Fn(&Node) -> bool) -> Option<usize> {
        let mut x = HEAD;
        let mut rank = 0;
        for i in (0..self.level).rev() {
            loop {
                let link = self.nodes[x].links[i];
                if link.next != NIL && ok(&self.nodes[link.next]) {
                    rank += link.span;
                    x = link.next;
                } else {
                    break;
                }
            }
        }
        rank.checked_sub(1)
    }

    /// Removes the members at 0-based ranks `first..=last`; how many.
    pub fn remove_ranks(&mut self, first: usize, last: usize) -> usize {
        let doomed: Vec<Vec<u8>> = self
            .iter_from(first, false)
            .take(last.saturating_sub(first).saturating_add(1))
            .map(|(m, _)| m.to_vec())
            .collect();
        for member in &doomed {
            self.remove(member);
        }
        doomed.len()
    }

    /// Positions a ZSCAN walks over a large set: the node arena's slots,
    /// all but the head's (see `commands::element_scan::walk`). A linked
    /// node never moves to another slot: removing one frees its slot, a
    /// new member takes a free slot or a new one at the end, and a score
    /// change unlinks the member and links it again at once, into the slot
    /// it just freed (the free list is last in, first out), or slot 1 if it
    /// was the only member (the emptied arena is reset). So a member only
    /// ever stays put or moves toward the front, as the walk needs.
    pub fn scan_slots(&self) -> usize {
        self.nodes.len() - 1
    }

    /// This set's name in ZSCAN cursors (see `ScanTag`): from its member
    /// map's hasher, drawn afresh for every new set.
    pub fn scan_tag(&self) -> ScanTag {
        ScanTag::of(self.scores.hasher())
    }

    /// The member and score in scan slot `i`, or `None` for a free slot.
    pub fn at_scan_slot(&self, i: usize) -> Option<(&[u8], f64)> {
        let node = self.nodes.get(i.checked_add(1)?)?;
        // A free slot has no links; a linked node has at least one.
        (!node.links.is_empty()).then_some((node.member.as_slice(), node.score))
    }

    /// Whether node `x` orders after (score, member).
    fn after(&self, x: usize, score: f64, member: &[u8]) -> bool {
        let node = &self.nodes[x];
        node.score > score || (node.score == score && node.member.as_slice() > member)
    }

    /// Whether node `x` orders before (score, member).
    fn before(&self, x: usize, score: f64, member: &[u8]) -> bool {
        let node = &self.nodes[x];
        node.score < score || (node.score == score && node.member.as_slice() < member)
    }

    /// Redis's `zslRandomLevel`: each further level with probability 1/4.
    fn random_level(&mut self) -> usize {
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let mut bits = self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D);
        let mut level = 1;
        while bits & 3 == 0 && level < MAX_LEVEL {
            level += 1;
            bits >>= 2;
        }
        level
    }

    /// For each level, the last node before (score, member), and its rank.
    fn predecessors(&self, score: f64, member: &[u8]) -> ([usize; MAX_LEVEL], [usize; MAX_LEVEL]) {
        let mut update = [HEAD; MAX_LEVEL];
        let mut rank = [0usize; MAX_LEVEL];
        let mut x = HEAD;
        for i in (0..self.level).rev() {
            rank[i] = if i + 1 == self.level { 0 } else { rank[i + 1] };
            loop {
                let link = self.nodes[x].links[i];
                if link.next != NIL && self.before(link.next, score, member) {
                    rank[i] += link.span;
                    x = link.next;
                } else {
                    break;
                }
            }
            update[i] = x;
        }
        (update, rank)
    }

    /// Adds a node (the member is not in the list).
    fn link(&mut self, score: f64, member: Vec<u8>) {
        let (mut update, mut rank) = self.predecessors(score, &member);
        // The list's length before this node (the map already counts it).
        let len = self.len() - 1;
        let level = self.random_level();
        if level > self.level {
            let head = &mut self.nodes[HEAD].links;
            if head.len() < level {
                head.resize(level, Link { next: NIL, span: 0 });
            }
            for i in self.level..level {
                rank[i] = 0;
                update[i] = HEAD;
                self.nodes[HEAD].links[i].span = len;
            }
            self.level = level;
        }
        let node = Node {
            member,
            score,
            back: NIL,
            links: vec![Link { next: NIL, span: 0 }; level],
        };
        let x = match self.free.pop() {
            Some(slot) => {
                self.nodes[slot] = node;
                slot
            }
            None => {
                self.nodes.push(node);
                self.nodes.len() - 1
            }
        };
        for i in 0..level {
            let prev = self.nodes[update[i]].links[i];
            let passed = rank[0] - rank[i];
            self.nodes[x].links[i] = Link {
                next: prev.next,
                span: prev.span - passed,
            };
            self.nodes[update[i]].links[i] = Link {
                next: x,
                span: passed + 1,
            };
        }
        for (i, &prev) in update.iter().enumerate().take(self.level).skip(level) {
            self.nodes[prev].links[i].span += 1;
        }
        self.nodes[x].back = if update[0] == HEAD { NIL } else { update[0] };
        match self.nodes[x].links[0].next {
            NIL => self.tail = x,
            next => self.nodes[next].back = x,
        }
    }

    /// Removes the node of (score, member), which is in the list.
    fn unlink(&mut self, score: f64, member: &[u8]) {
        let (update, _) = self.predecessors(score, member);
        let x = self.nodes[update[0]].links[0].next;
        debug_assert!(x != NIL && self.nodes[x].member == member);
        if x == NIL {
            return;
        }
        for (i, &prev) in update.iter().enumerate().take(self.level) {
            if self.nodes[prev].links[i].next == x {
                let gone = self.nodes[x].links[i];
                let link = &mut self.nodes[prev].links[i];
                link.span = link.span + gone.span - 1;
                link.next = gone.next;
            } else {
                self.nodes[prev].links[i].span -= 1;
            }
        }
        let back = self.nodes[x].back;
        match self.nodes[x].links[0].next {
            NIL => self.tail = back,
            next => self.nodes[next].back = back,
        }
        while self.level > 1 && self.nodes[HEAD].links[self.level - 1].next == NIL {
            self.level -= 1;
        }
        self.nodes[x].member = Vec::new();
        self.nodes[x].links = Vec::new();
        self.free.push(x);
        if self.free.len() + 1 == self.nodes.len() {
            // Empty: give the arena back.
            self.nodes.truncate(1);
            self.nodes.shrink_to(1);
            self.nodes[HEAD].links = vec![Link { next: NIL, span: 0 }; 1];
            self.free = Vec::new();
        }
    }
}

/// Members and scores along the list (see [`ZSet::iter_from`]).
pub struct Iter<'a> {
    set: &'a ZSet,
    node: usize,
    reverse: bool,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], f64);

    fn next(&mut self) -> Option<Self::Item> {
        if self.node == NIL {
            return None;
        }
        let node = &self.set.nodes[self.node];
        self.node = if self.reverse {
            node.back
        } else {
            node.links[0].next
        };
        Some((&node.member, node.score))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    /// The naive model: a sorted Vec of (score, member).
    fn model_sorted(model: &HashMap<Vec<u8>, f64>) -> Vec<(Vec<u8>, f64)> {
        let mut v: Vec<(Vec<u8>, f64)> = model.iter().map(|(m, s)| (m.clone(), *s)).collect();
        v.sort_by(|a, b| a.1.partial_cmp(&b.1).unwrap().then_with(|| a.0.cmp(&b.0)));
        v
    }

    fn check(z: &ZSet, model: &HashMap<Vec<u8>, f64>, rng: &mut SmallRng) {
        let sorted = model_sorted(model);
        assert_eq!(z.len(), sorted.len());
        let all: Vec<(Vec<u8>, f64)> = z.iter().map(|(m, s)| (m.to_vec(), s)).collect();
        assert_eq!(all, sorted);
        let back: Vec<(Vec<u8>, f64)> = z
            .iter_from(sorted.len().saturating_sub(1), true)
            .map(|(m, s)| (m.to_vec(), s))
            .collect();
        assert_eq!(back, sorted.iter().rev().cloned().collect::<Vec<_>>());
        for _ in 0..5 {
            if sorted.is_empty() {
                break;
            }
            let r = rng.random_range(0..sorted.len());
            assert_eq!(z.rank(&sorted[r].0), Some(r));
            assert_eq!(
                z.at_rank(r).map(|(m, _)| m.to_vec()),
                Some(sorted[r].0.clone())
            );
        }
        assert_eq!(z.at_rank(sorted.len()), None);
        // A random score range, each bound inclusive or not.
        let (a, b) = (
            rng.random_range(-3..12) as f64,
            rng.random_range(-3..12) as f64,
        );
        let range = ScoreRange {
            min: a,
            max: b,
            min_exclusive: rng.random(),
            max_exclusive: rng.random(),
        };
        let inside: Vec<usize> = (0..sorted.len())
            .filter(|&i| range.above_min(sorted[i].1) && range.below_max(sorted[i].1))
            .collect();
        let want = inside.first().map(|&f| (f, *inside.last().unwrap()));
        assert_eq!(z.score_ranks(&range), want, "{range:?}");
        // Lex ranges are checked on members alone (the model's scores are
        // few, so test it on the member order of equal scores below).
    }

    #[test]
    fn matches_a_naive_model_under_random_operations() {
        let mut rng = SmallRng::seed_from_u64(7);
        let mut z = ZSet::default();
        let mut model: HashMap<Vec<u8>, f64> = HashMap::new();
        for step in 0..20_000 {
            let member = format!("m{}", rng.random_range(0..300)).into_bytes();
            match rng.random_range(0..10) {
                0..=4 => {
                    let score = rng.random_range(0..10) as f64;
                    let new = z.insert(member.clone(), score);
                    assert_eq!(new, model.insert(member, score).is_none());
                }
                5 | 6 => assert_eq!(z.remove(&member), model.remove(&member).is_some()),
                7 => {
                    let want = model_sorted(&model).into_iter().next();
                    if let Some((m, _)) = &want {
                        model.remove(m);
                    }
                    assert_eq!(z.pop_min(), want);
                }
                8 => {
                    let want = model_sorted(&model).into_iter().next_back();
                    if let Some((m, _)) = &want {
                        model.remove(m);
                    }
                    assert_eq!(z.pop_max(), want);
                }
                _ => {
                    let sorted = model_sorted(&model);
                    if !sorted.is_empty() {
                        let a = rng.random_range(0..sorted.len());
                        let b = rng.random_range(a..sorted.len());
                        for (m, _) in &sorted[a..=b] {
                            model.remove(m);
                        }
                        assert_eq!(z.remove_ranks(a, b), b - a + 1);
                    }
                }
            }
            assert_eq!(z.rank(b"absent"), None);
            if step % 50 == 0 {
                check(&z, &model, &mut rng);
            }
        }
        check(&z, &model, &mut rng);
    }

    #[test]
    fn lex_ranges_follow_redis_bounds() {
        let mut z = ZSet::default();
        for m in ["a", "b", "c", "d", "e"] {
            z.insert(m.as_bytes().to_vec(), 0.0);
        }
        let v = |s: &str| LexItem::Value(s.as_bytes().to_vec());
        let lex = |min, minx, max, maxx| LexRange {
            min,
            max,
            min_exclusive: minx,
            max_exclusive: maxx,
        };
        assert_eq!(
            z.lex_ranks(&lex(LexItem::Min, false, LexItem::Max, false)),
            Some((0, 4))
        );
        assert_eq!(z.lex_ranks(&lex(v("b"), false, v("d"), true)), Some((1, 2)));
        assert_eq!(z.lex_ranks(&lex(v("b"), true, v("bb"), false)), None);
        assert_eq!(
            z.lex_ranks(&lex(v("0"), false, v("a"), false)),
            Some((0, 0))
        );
        assert_eq!(
            z.lex_ranks(&lex(LexItem::Max, false, LexItem::Min, false)),
            None
        );
        assert_eq!(z.lex_ranks(&lex(v("c"), false, v("c"), true)), None);
        assert_eq!(z.lex_ranks(&lex(v("f"), false, LexItem::Max, false)), None);
    }

    #[test]
    fn minus_zero_ties_with_zero_and_the_arena_is_reused() {
        let mut z = ZSet::default();
        z.insert(b"b".to_vec(), -0.0);
        z.insert(b"a".to_vec(), 0.0);
        assert_eq!(z.rank(b"a"), Some(0));
        assert_eq!(z.rank(b"b"), Some(1));
        assert!(z.score(b"b").unwrap().is_sign_positive());
        for i in 0..1000u32 {
            z.insert(i.to_be_bytes().to_vec(), f64::from(i));
        }
        assert!(!z.is_listpack(), "more than 128 members");
        z.insert(b"c".to_vec(), -0.0);
        assert!(
            z.score(b"c").unwrap().is_sign_negative(),
            "kept in a skiplist"
        );
        assert!(z.remove(b"c"));
        for i in 0..1000u32 {
            assert!(z.remove(&i.to_be_bytes()));
        }
        assert_eq!(z.len(), 2);
        while z.pop_min().is_some() {}
        assert_eq!(z.nodes.len(), 1, "an empty set keeps only its head");
    }

    /// ZSCAN's walk over the node arena (`scan_slots`, `at_scan_slot`)
    /// with members added, removed and re-scored between calls: every
    /// member present throughout is returned, with its score at the time.
    #[test]
    fn a_scan_walk_returns_every_member_present_throughout_as_members_change() {
        use crate::commands::element_scan::walk;
        use std::collections::HashSet;
        let mut rng = SmallRng::seed_from_u64(16);
        for round in 0..10 {
            let mut z = ZSet::default();
            for i in 0..1500u32 {
                z.insert(format!("m{i}").into_bytes(), f64::from(i));
            }
            let mut removed = HashSet::new();
            let (mut cursor, mut seen) = (0, HashMap::new());
            let mut next_new = 1500u32;
            loop {
                let (next, page) = walk(cursor, z.scan_tag(), 11, z.scan_slots(), |i| {
                    z.at_scan_slot(i)
                });
                for (member, score) in page {
                    assert_eq!(z.score(member), Some(score));
                    seen.insert(member.to_vec(), score);
                }
                cursor = next;
                if cursor == 0 {
                    break;
                }
                for _ in 0..rng.random_range(0..4) {
                    let victim = format!("m{}", rng.random_range(0..1500u32)).into_bytes();
                    if z.remove(&victim) {
                        removed.insert(victim);
                    }
                }
                for _ in 0..rng.random_range(0..4) {
                    // A new score for a member: unlinked and linked again.
                    let member = format!("m{}", rng.random_range(0..1500u32)).into_bytes();
                    if !removed.contains(&member) {
                        z.insert(member, rng.random_range(-1e6..1e6));
                    }
                }
                for _ in 0..rng.random_range(0..4) {
                    z.insert(format!("n{next_new}").into_bytes(), 0.5);
                    next_new += 1;
                }
            }
            for i in 0..1500u32 {
                let member = format!("m{i}").into_bytes();
                assert!(
                    removed.contains(&member) || seen.contains_key(&member),
                    "round {round}: m{i} was present throughout and never returned"
                );
            }
        }
    }

    #[test]
    fn a_computed_result_keeps_minus_zero_unless_stored_as_a_listpack() {
        let mut small = ZSet::skiplist();
        small.insert(b"a".to_vec(), -0.0);
        assert!(small.score(b"a").unwrap().is_sign_negative());
        let stored = small.into_stored();
        assert!(stored.is_listpack());
        assert!(stored.score(b"a").unwrap().is_sign_positive());
        let mut large = ZSet::skiplist();
        for i in 0..=LISTPACK_ENTRIES as u32 {
            large.insert(i.to_be_bytes().to_vec(), -0.0);
        }
        let stored = large.into_stored();
        assert!(!stored.is_listpack(), "too large for a listpack");
        assert!(stored.iter().all(|(_, s)| s.is_sign_negative()));
    }
}
