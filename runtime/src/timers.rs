//! Timers on the loop: a min-heap of deadlines with lazy cancellation.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use slab::Slab;

/// Delays at least this long mean "never" in practice: a century.
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// `now + after`, with any delay of a century or more (up to
/// `Duration::MAX`, from the configuration or the API) taken as a century,
/// where `Instant + Duration` would panic on overflow. A monotonic clock
/// (seconds since boot in an `i64`) is nowhere near overflowing a century
/// from now.
pub(crate) fn deadline_after(now: Instant, after: Duration) -> Instant {
    now + after.min(FOREVER)
}

/// Cancelled heap nodes tolerated beyond the live ones before compacting.
const COMPACT_SLACK: usize = 1024;

/// Names a timer set with [`Ctx::set_timer`](crate::Ctx::set_timer).
/// A fired or cancelled id is stale: cancelling it again does nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimerId {
    key: usize,
    generation: u64,
}

/// Deadlines and what fires at each.
///
/// Cancelling removes the entry from the slab and leaves the heap node,
/// which is skipped when it surfaces: O(log n) set, O(1) cancel.
#[derive(Debug)]
pub(crate) struct Timers<K> {
    heap: BinaryHeap<Reverse<(Instant, usize, u64)>>,
    entries: Slab<(u64, K)>,
    next_generation: u64,
}

impl<K> Timers<K> {
    pub(crate) fn new() -> Self {
        Self {
            heap: BinaryHeap::new(),
            entries: Slab::new(),
            next_generation: 0,
        }
    }

    pub(crate) fn set(&mut self, at: Instant, what: K) -> TimerId {
        self.next_generation += 1;
        let generation = self.next_generation;
        let key = self.entries.insert((generation, what));
        self.heap.push(Reverse((at, key, generation)));
        TimerId { key, generation }
    }

    pub(crate) fn cancel(&mut self, id: TimerId) -> bool {
        if !self.is_pending(id) {
            return false;
        }
        self.entries.remove(id.key);
        self.compact_if_mostly_cancelled();
        true
    }

    /// Timers neither fired nor cancelled.
    pub(crate) fn pending(&self) -> usize {
        self.entries.len()
    }

    /// Whether `id` has neither fired nor been cancelled.
    pub(crate) fn is_pending(&self, id: TimerId) -> bool {
        self.is_live(id.key, id.generation)
    }

    /// Cancelled nodes stay in the heap until they surface; once they
    /// outnumber the live ones, drop them all at once (O(n) after at least
    /// n/2 cancels: O(1) amortized), so the heap's size follows the live
    /// timers, not how many were ever cancelled.
    fn compact_if_mostly_cancelled(&mut self) {
        let live = self.entries.len();
        if self.heap.len() <= 2 * live + COMPACT_SLACK {
            return;
        }
        let entries = &self.entries;
        self.heap
            .retain(|Reverse((_, key, generation))| matches!(entries.get(*key), Some((g, _)) if g == generation));
        if self.heap.capacity() > 4 * self.heap.len() + COMPACT_SLACK {
            self.heap.shrink_to(2 * self.heap.len() + COMPACT_SLACK);
        }
    }

    /// The earliest live deadline.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(Reverse((at, key, generation))) = self.heap.peek().copied() {
            if self.is_live(key, generation) {
                return Some(at);
            }
            self.heap.pop();
        }
        None
    }

    /// Removes and returns one timer due at `now`, if any.
    /// The newest timer set so far, for [`pop_due`](Self::pop_due)'s fence.
    pub(crate) fn last_set(&self) -> u64 {
        self.next_generation
    }

    /// The next timer due at `now` among those set up to `fence` (a
    /// [`last_set`](Self::last_set) taken when the firing pass began). A
    /// timer set while the pass fires, even with a zero delay, waits for the
    /// next pass: re-arming at zero ("more work, come back soon") would
    /// otherwise fire again in the same pass, forever, without the loop
    /// polling its sockets in between.
    pub(crate) fn pop_due(&mut self, now: Instant, fence: u64) -> Option<(TimerId, K)> {
        while let Some(Reverse((at, key, generation))) = self.heap.peek().copied() {
            if !self.is_live(key, generation) {
                self.heap.pop();
                continue;
            }
            if at > now || generation > fence {
                return None;
            }
            self.heap.pop();
            let (_, what) = self.entries.remove(key);
            return Some((TimerId { key, generation }, what));
        }
        None
    }

    fn is_live(&self, key: usize, generation: u64) -> bool {
        matches!(self.entries.get(key), Some((g, _)) if *g == generation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_in_deadline_order_and_skips_cancelled() {
        let now = Instant::now();
        let mut timers = Timers::new();
        let late = timers.set(now + Duration::from_millis(30), "late");
        let _early = timers.set(now + Duration::from_millis(10), "early");
        let cancelled = timers.set(now + Duration::from_millis(20), "cancelled");
        assert!(timers.cancel(cancelled));
        assert!(!timers.cancel(cancelled), "a second cancel finds nothing");
        assert_eq!(
            timers.next_deadline(),
            Some(now + Duration::from_millis(10))
        );
        let later = now + Duration::from_millis(40);
        let fired: Vec<_> = std::iter::from_fn(|| timers.pop_due(later, timers.last_set()))
            .map(|(_, w)| w)
            .collect();
        assert_eq!(fired, vec!["early", "late"]);
        assert!(!timers.cancel(late), "a fired timer is stale");
        assert_eq!(timers.next_deadline(), None);
    }

    #[test]
    fn cancelled_timers_do_not_accumulate() {
        let now = Instant::now();
        let mut timers = Timers::new();
        let keep = timers.set(now + Duration::from_secs(5), "keep");
        for _ in 0..100_000 {
            let t = timers.set(now + Duration::from_secs(60), "cancelled");
            assert!(timers.cancel(t));
        }
        assert!(
            timers.heap.len() <= 2 + COMPACT_SLACK,
            "{}",
            timers.heap.len()
        );
        assert!(timers.heap.capacity() <= 4 * (2 + COMPACT_SLACK));
        assert!(timers.is_pending(keep));
        let fired: Vec<_> =
            std::iter::from_fn(|| timers.pop_due(now + Duration::from_secs(61), timers.last_set()))
                .map(|(_, w)| w)
                .collect();
        assert_eq!(fired, vec!["keep"]);
    }

    #[test]
    fn nothing_fires_before_its_deadline() {
        let now = Instant::now();
        let mut timers = Timers::new();
        timers.set(now + Duration::from_secs(1), ());
        assert!(timers.pop_due(now, timers.last_set()).is_none());
    }

    #[test]
    fn the_longest_delays_mean_a_century_not_a_panic() {
        let now = Instant::now();
        let far = deadline_after(now, Duration::MAX);
        assert!(far >= now + FOREVER);
        assert_eq!(
            deadline_after(now, Duration::from_secs(5)),
            now + Duration::from_secs(5)
        );
        let mut timers = Timers::new();
        timers.set(far, "never");
        assert_eq!(timers.next_deadline(), Some(far));
        assert!(timers
            .pop_due(now + Duration::from_secs(365 * 24 * 3600), u64::MAX)
            .is_none());
    }

    #[test]
    fn a_timer_set_during_a_pass_waits_for_the_next_pass() {
        let mut timers = Timers::new();
        let now = Instant::now();
        timers.set(now, 'a');
        let fence = timers.last_set();
        assert_eq!(timers.pop_due(now, fence).map(|(_, k)| k), Some('a'));
        // Re-armed with a zero delay while the pass fires.
        timers.set(now, 'b');
        assert!(timers.pop_due(now, fence).is_none(), "not in the same pass");
        assert_eq!(
            timers.pop_due(now, timers.last_set()).map(|(_, k)| k),
            Some('b'),
            "but in the next"
        );
    }
}
