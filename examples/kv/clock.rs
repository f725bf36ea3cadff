//! Unix milliseconds for expiry, without a clock read per request.
//!
//! Every command needs "now" in Unix milliseconds (TTLs are absolute). One
//! `SystemTime::now()` per request was 2.6% of the server at `-P 16` in
//! `perf`. The loop already reads its monotonic clock once per iteration
//! (`Ctx::now`); this converts that reading, re-anchoring on the wall clock
//! every 100 ms so that a wall-clock step is followed within that time.
//! Commands run in one iteration share one millisecond, as Redis's
//! per-command time snapshot does for the keys one command touches.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const REANCHOR: Duration = Duration::from_millis(100);

#[derive(Debug)]
pub struct WallClock {
    anchor: Instant,
    anchor_ms: i64,
    /// The last conversion: every request of one loop iteration asks with
    /// the same reading, and converting costs more than comparing.
    last_at: Instant,
    last_ms: i64,
}

impl Default for WallClock {
    fn default() -> Self {
        let (anchor, anchor_ms) = (Instant::now(), unix_ms());
        Self {
            anchor,
            anchor_ms,
            last_at: anchor,
            last_ms: anchor_ms,
        }
    }
}

impl WallClock {
    /// Unix milliseconds at `loop_now` (the loop's clock reading).
    pub fn now_ms(&mut self, loop_now: Instant) -> i64 {
        if loop_now == self.last_at {
            return self.last_ms;
        }
        let since = loop_now.saturating_duration_since(self.anchor);
        if since >= REANCHOR {
            *self = Self::default();
            return self.anchor_ms;
        }
        let ms = self.anchor_ms + since.as_millis() as i64;
        (self.last_at, self.last_ms) = (loop_now, ms);
        ms
    }
}

/// Milliseconds since the Unix epoch, read from the wall clock.
pub fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_wall_clock_within_the_reanchor_period() {
        let mut clock = WallClock::default();
        let start = Instant::now();
        let first = clock.now_ms(start);
        assert!((first - unix_ms()).abs() <= 100);
        // Later loop readings advance it; a stale one never moves it back.
        let later = clock.now_ms(start + Duration::from_millis(50));
        assert!(
            later >= first + 49 && later <= first + 51,
            "{first} {later}"
        );
        assert!(clock.now_ms(start) >= first);
        // Past the period it reads the wall clock again.
        std::thread::sleep(REANCHOR + Duration::from_millis(10));
        let reanchored = clock.now_ms(Instant::now());
        assert!((reanchored - unix_ms()).abs() <= 100);
    }
}
