//! A one-line progress bar on standard error, redrawn in place.

use std::io::{IsTerminal, Write};
use std::sync::atomic::Ordering;
use std::time::Instant;

use clap::ValueEnum;

use crate::engine::{Live, Plan};

/// When to draw the bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum When {
    /// When standard error is a terminal.
    Auto,
    /// Always (also into a pipe or file).
    Always,
    /// Never.
    Never,
}

/// The bar's state between redraws.
pub struct Bar {
    on: bool,
    total_secs: f64,
    measuring_since: std::cell::Cell<Option<Instant>>,
    last: std::cell::Cell<(Instant, u64)>,
}

impl Bar {
    /// A bar for `plan`; draws nothing unless `when` allows.
    pub fn new(when: When, plan: &Plan) -> Self {
        let on = match when {
            When::Auto => std::io::stderr().is_terminal(),
            When::Always => true,
            When::Never => false,
        };
        Bar {
            on,
            total_secs: plan.duration.as_secs_f64(),
            measuring_since: std::cell::Cell::new(None),
            last: std::cell::Cell::new((Instant::now(), 0)),
        }
    }

    /// Redraws the bar from the live counters.
    pub fn draw(&self, live: &Live) {
        if !self.on {
            return;
        }
        let now = Instant::now();
        let done = live.done.load(Ordering::Relaxed);
        let errors = live.errors.load(Ordering::Relaxed);
        if !live.measuring.load(Ordering::Relaxed) {
            eprint!("\r\x1b[2Kwarming up ...");
            let _ = std::io::stderr().flush();
            return;
        }
        let since = match self.measuring_since.get() {
            Some(since) => since,
            None => {
                self.measuring_since.set(Some(now));
                now
            }
        };
        let elapsed = now.duration_since(since).as_secs_f64();
        let (then, done_then) = self.last.replace((now, done));
        let rate = (done - done_then) as f64 / now.duration_since(then).as_secs_f64().max(1e-3);
        let fraction = (elapsed / self.total_secs).clamp(0.0, 1.0);
        const WIDTH: usize = 30;
        let filled = (fraction * WIDTH as f64) as usize;
        eprint!(
            "\r\x1b[2K[{}{}] {:>5.1}/{:.1} s {:>12.0} req/s {:>12} done {} errors",
            "#".repeat(filled),
            " ".repeat(WIDTH - filled),
            elapsed,
            self.total_secs,
            rate,
            done,
            errors
        );
        let _ = std::io::stderr().flush();
    }

    /// Erases the bar before the report is printed.
    pub fn clear(&self) {
        if self.on {
            eprint!("\r\x1b[2K");
            let _ = std::io::stderr().flush();
        }
    }
}
