//! When the loop uses its IO threads.
//!
//! Handing a step to an IO thread costs a queue round trip, a wake-up and a
//! cache miss per connection; it pays only when the loop itself is the
//! bottleneck *and* another core is free to do the work. The first is
//! visible to the loop (it never waits for the poller); the second is not
//! (the clients or another process may hold the other cores), so it is
//! measured: the loop tries the IO threads for a short trial and keeps them
//! only if more frames get served than inline. Valkey's rule ("activate IO
//! threads by the number of events") assumes the cores are there; on a
//! shared or small machine that assumption costs half the throughput.

use std::time::{Duration, Instant};

/// When a server with IO threads ([`Config::io_threads`](crate::Config)
/// above zero) hands IO steps to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum IoActivation {
    /// Run IO steps inline while the loop has headroom. When the loop is
    /// saturated (busy for at least 90% of a 25 ms window), hand steps to
    /// the IO threads for a trial and keep doing so only if frames served
    /// per second rise by 10% or more; otherwise go back inline and try
    /// again later (after 1 s, doubling up to 16 s while trials keep
    /// failing). While handing off, re-check inline now and then the same
    /// way, and go inline at once when no frames arrive. A machine with one
    /// core never hands off. The default.
    #[default]
    Adaptive,
    /// Hand every IO step to an IO thread (inline only when a queue is
    /// full). For tests of the handoff and for machines known to have
    /// cores to spare.
    Always,
}

/// Length of one measuring window.
const WINDOW: Duration = Duration::from_millis(25);
/// A window in which the loop was busy at least this fraction is saturated.
const SATURATED: f64 = 0.9;
/// Hand off only if it serves at least this much more than inline.
const GAIN: f64 = 1.1;
/// Go back inline if it serves at least this fraction of handing off:
/// inline costs less CPU and fewer syscalls per request.
const INLINE_GOOD_ENOUGH: f64 = 0.95;
/// First wait before trying the other mode again, doubled per failed trial.
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(16);

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// In the mode chosen last.
    Steady,
    /// Just switched for a trial: this window mixes both modes, so it is
    /// not counted. `baseline` is the frame rate of the mode left.
    Settling { baseline: f64 },
    /// Measuring the trial mode in this window against `baseline`.
    Measuring { baseline: f64 },
}

/// The loop's decision whether to hand IO steps off. Owned by the loop and
/// fed once per iteration; pure apart from the times it is given.
#[derive(Debug)]
pub(crate) struct Activation {
    policy: IoActivation,
    /// Trials are possible at all (more than one core).
    may_hand_off: bool,
    offloading: bool,
    phase: Phase,
    window_start: Instant,
    /// Time the loop spent blocked in the poller during this window.
    window_idle: Duration,
    /// The work counter when this window began.
    window_work: u64,
    backoff: Duration,
    next_trial: Instant,
    trials: u64,
}

impl Activation {
    /// `cores`: how many CPUs this process may run on.
    pub(crate) fn new(policy: IoActivation, cores: usize, now: Instant, work: u64) -> Self {
        Self {
            policy,
            may_hand_off: cores > 1,
            offloading: policy == IoActivation::Always,
            phase: Phase::Steady,
            window_start: now,
            window_idle: Duration::ZERO,
            window_work: work,
            backoff: BACKOFF_MIN,
            next_trial: now,
            trials: 0,
        }
    }

    /// Whether IO steps go to the IO threads now.
    pub(crate) fn offloading(&self) -> bool {
        self.offloading
    }

    /// Whether the loop must measure its idle time for [`tick`](Self::tick).
    pub(crate) fn adaptive(&self) -> bool {
        self.policy == IoActivation::Adaptive && self.may_hand_off
    }

    /// Trials of the mode not in use, so far.
    pub(crate) fn trials(&self) -> u64 {
        self.trials
    }

    /// One loop iteration ended at `now`, having spent `idle` blocked in the
    /// poller; `work` is the running count of frames served. Returns whether
    /// to hand off from now on.
    pub(crate) fn tick(&mut self, now: Instant, idle: Duration, work: u64) -> bool {
        if !self.adaptive() {
            return self.offloading;
        }
        self.window_idle += idle;
        let elapsed = now.saturating_duration_since(self.window_start);
        if elapsed < WINDOW {
            return self.offloading;
        }
        let busy = 1.0 - self.window_idle.as_secs_f64() / elapsed.as_secs_f64();
        let rate = work.wrapping_sub(self.window_work) as f64 / elapsed.as_secs_f64();
        self.window_start = now;
        self.window_idle = Duration::ZERO;
        self.window_work = work;
        self.decide(now, busy, rate);
        self.offloading
    }

    fn decide(&mut self, now: Instant, busy: f64, rate: f64) {
        match self.phase {
            Phase::Steady if !self.offloading => {
                if busy >= SATURATED && now >= self.next_trial {
                    self.begin_trial(rate);
                }
            }
            Phase::Steady => {
                if rate == 0.0 {
                    // Nothing to do: the IO threads cannot help.
                    self.offloading = false;
                    self.backoff = BACKOFF_MIN;
                    self.next_trial = now;
                } else if now >= self.next_trial {
                    self.begin_trial(rate);
                }
            }
            Phase::Settling { baseline } => self.phase = Phase::Measuring { baseline },
            Phase::Measuring { baseline } => {
                self.phase = Phase::Steady;
                let trial_won = if self.offloading {
                    rate >= baseline * GAIN
                } else {
                    rate >= baseline * INLINE_GOOD_ENOUGH
                };
                if trial_won {
                    self.backoff = BACKOFF_MIN;
                } else {
                    self.offloading = !self.offloading;
                    self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
                }
                self.next_trial = now + self.backoff;
            }
        }
    }

    fn begin_trial(&mut self, baseline: f64) {
        self.trials += 1;
        self.offloading = !self.offloading;
        self.phase = Phase::Settling { baseline };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drives an `Activation` one window at a time against a machine where
    /// inline serves `inline` frames per second and handing off `offload`.
    struct Machine {
        activation: Activation,
        now: Instant,
        work: u64,
        inline: f64,
        offload: f64,
        /// How busy the loop is inline (handing off it is half as busy).
        busy: f64,
    }

    impl Machine {
        fn new(policy: IoActivation, cores: usize, busy: f64, inline: f64, offload: f64) -> Self {
            let now = Instant::now();
            Self {
                activation: Activation::new(policy, cores, now, 0),
                now,
                work: 0,
                inline,
                offload,
                busy,
            }
        }

        /// One window in the mode in effect; whether it hands off after.
        fn window(&mut self) -> bool {
            let (rate, busy) = if self.activation.offloading() {
                (self.offload, self.busy / 2.0)
            } else {
                (self.inline, self.busy)
            };
            self.now += WINDOW;
            self.work += (rate * WINDOW.as_secs_f64()) as u64;
            let idle = WINDOW.mul_f64(1.0 - busy);
            self.activation.tick(self.now, idle, self.work)
        }

        /// Windows for `duration`; whether it hands off at the end.
        fn run(&mut self, duration: Duration) -> bool {
            let mut offloading = self.activation.offloading();
            for _ in 0..duration.as_millis() / WINDOW.as_millis() {
                offloading = self.window();
            }
            offloading
        }

        /// Seconds since the start at which each trial began, over `duration`.
        fn trial_times(&mut self, duration: Duration) -> Vec<f64> {
            let start = self.now;
            let mut times = Vec::new();
            for _ in 0..duration.as_millis() / WINDOW.as_millis() {
                let before = self.activation.trials();
                self.window();
                if self.activation.trials() > before {
                    times.push((self.now - start).as_secs_f64());
                }
            }
            times
        }
    }

    #[test]
    fn a_loop_with_headroom_never_hands_off() {
        let mut m = Machine::new(IoActivation::Adaptive, 2, 0.6, 100e3, 300e3);
        assert!(!m.run(Duration::from_secs(10)));
        assert_eq!(m.activation.trials(), 0);
    }

    #[test]
    fn a_saturated_loop_keeps_the_io_threads_when_they_serve_more() {
        let mut m = Machine::new(IoActivation::Adaptive, 2, 1.0, 100e3, 150e3);
        assert!(m.window(), "saturated: a trial begins");
        assert!(m.window(), "settling");
        assert!(m.window(), "measured 1.5x: kept");
        assert!(m.run(Duration::from_secs(30)), "re-checks keep it");
        assert!(m.activation.trials() > 1, "inline was re-checked");
    }

    #[test]
    fn a_trial_that_serves_less_goes_back_inline_with_growing_back_off() {
        let mut m = Machine::new(IoActivation::Adaptive, 2, 1.0, 100e3, 60e3);
        let trials = m.trial_times(Duration::from_secs(60));
        assert!(!m.activation.offloading());
        // The first at once, then after 2 s, 4 s, 8 s, 16 s, 16 s...
        let gaps: Vec<f64> = trials.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(trials.len() >= 4 && trials.len() <= 7, "{trials:?}");
        assert!(gaps.windows(2).all(|g| g[1] >= g[0] - 0.01), "{gaps:?}");
        assert!(gaps.iter().all(|&g| g < BACKOFF_MAX.as_secs_f64() + 0.1));
        // Each trial lasts two windows: under 1% of the time at the cap.
        assert!(gaps.last().copied().unwrap_or(0.0) >= BACKOFF_MAX.as_secs_f64());
    }

    #[test]
    fn a_marginal_gain_is_not_enough_to_hand_off() {
        let mut m = Machine::new(IoActivation::Adaptive, 2, 1.0, 100e3, 105e3);
        m.window();
        m.window();
        assert!(!m.window(), "5% is within noise");
    }

    #[test]
    fn while_handing_off_it_rechecks_inline_and_stays_there_if_as_good() {
        let mut m = Machine::new(IoActivation::Adaptive, 2, 1.0, 100e3, 150e3);
        m.run(Duration::from_millis(100));
        assert!(m.activation.offloading());
        // The load falls: inline serves as much.
        m.inline = 40e3;
        m.offload = 40e3;
        m.busy = 0.5;
        assert!(!m.run(Duration::from_millis(1200)));
        assert!(!m.run(Duration::from_secs(10)), "no saturation, no trial");
    }

    #[test]
    fn no_frames_while_handing_off_goes_inline_at_once() {
        let mut m = Machine::new(IoActivation::Adaptive, 2, 1.0, 100e3, 150e3);
        m.run(Duration::from_millis(100));
        assert!(m.activation.offloading());
        m.offload = 0.0;
        assert!(!m.window());
    }

    #[test]
    fn one_core_never_hands_off_and_always_always_does() {
        let mut one_core = Machine::new(IoActivation::Adaptive, 1, 1.0, 100e3, 300e3);
        assert!(!one_core.run(Duration::from_secs(5)));
        assert_eq!(one_core.activation.trials(), 0);
        let mut always = Machine::new(IoActivation::Always, 2, 0.1, 0.0, 0.0);
        assert!(always.run(Duration::from_secs(5)));
    }
}
