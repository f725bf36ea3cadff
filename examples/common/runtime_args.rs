//! The runtime flags every example server takes, with Redis's names, and
//! the `Config` they ask for.

use std::time::Duration;

use baton::{Config, IoActivation};
use clap::Args;

#[derive(Debug, Args)]
pub struct RuntimeArgs {
    /// IO threads besides the main loop; 0 runs all socket IO inline on the loop.
    #[arg(long, default_value_t = 0)]
    pub io_threads: usize,
    /// Hand every IO step to the IO threads. Without it they are used only
    /// while the loop is saturated and they measurably serve more.
    #[arg(long)]
    pub io_threads_always: bool,
    /// Maximum connections open at once; more are closed at once and counted.
    #[arg(long, default_value_t = 10_000)]
    pub maxclients: usize,
    /// Close connections idle for this many seconds; 0 means never.
    #[arg(long, default_value_t = 0)]
    pub timeout: u64,
}

impl RuntimeArgs {
    /// The configuration these flags ask for; every other field is the default.
    pub fn config(&self) -> Config {
        Config::default()
            .io_threads(self.io_threads)
            .io_activation(if self.io_threads_always {
                IoActivation::Always
            } else {
                IoActivation::Adaptive
            })
            .max_connections(self.maxclients)
            .idle_timeout((self.timeout > 0).then(|| Duration::from_secs(self.timeout)))
    }
}
