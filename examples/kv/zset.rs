//! Sorted sets: members by score (ties by member), with score lookup.

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};

/// A score that orders totally (`f64::total_cmp`); NaN is never stored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score(pub f64);

impl Eq for Score {}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

#[derive(Debug, Default)]
pub struct ZSet {
    scores: HashMap<Vec<u8>, f64>,
    ordered: BTreeSet<(Score, Vec<u8>)>,
}

impl ZSet {
    pub fn len(&self) -> usize {
        self.scores.len()
    }

    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }

    /// Sets `member`'s score; `true` if the member is new.
    pub fn insert(&mut self, member: Vec<u8>, score: f64) -> bool {
        match self.scores.insert(member.clone(), score) {
            Some(old) => {
                self.ordered.remove(&(Score(old), member.clone()));
                self.ordered.insert((Score(score), member));
                false
            }
            None => {
                self.ordered.insert((Score(score), member));
                true
            }
        }
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.scores.get(member).copied()
    }

    pub fn remove(&mut self, member: &[u8]) -> bool {
        match self.scores.remove(member) {
            Some(score) => self.ordered.remove(&(Score(score), member.to_vec())),
            None => false,
        }
    }

    /// Members in rank order from `start` to `stop` inclusive (already
    /// normalised to `0..len`).
    pub fn range(&self, start: usize, stop: usize) -> impl Iterator<Item = (&Vec<u8>, f64)> {
        self.ordered
            .iter()
            .skip(start)
            .take(stop + 1 - start)
            .map(|(s, m)| (m, s.0))
    }

    pub fn pop_min(&mut self) -> Option<(Vec<u8>, f64)> {
        let (score, member) = self.ordered.pop_first()?;
        self.scores.remove(&member);
        Some((member, score.0))
    }

    pub fn pop_max(&mut self) -> Option<(Vec<u8>, f64)> {
        let (score, member) = self.ordered.pop_last()?;
        self.scores.remove(&member);
        Some((member, score.0))
    }
}
