//! Limits and tuning, with defaults a user can change.

use std::time::Duration;

use crate::IoActivation;

/// How a server behaves. Every field has a default chosen for a server
/// exposed to clients it does not trust; see each field. A timeout of a
/// century or more (up to `Duration::MAX`) means "never".
#[derive(Debug, Clone)]
pub struct Config {
    /// IO threads besides the main loop. `0`: all socket IO runs inline on
    /// the loop (like Redis without `io-threads`). Default `0`.
    pub io_threads: usize,
    /// When the IO threads are used: [`IoActivation::Adaptive`] (default)
    /// runs IO inline until the loop is saturated and handing off measurably
    /// serves more; [`IoActivation::Always`] hands off every step.
    pub io_activation: IoActivation,
    /// Capacity of each IO thread's job queue; when full the loop does the
    /// work inline. Default 1024.
    pub io_queue_capacity: usize,
    /// Spin iterations of an idle IO thread before it parks. Default 2000
    /// (a few microseconds): an idle IO thread must not burn a core.
    pub io_spin: u32,
    /// Connections open at once; more are accepted and closed at once, and
    /// counted as rejected. Default 10,000 (Redis's `maxclients`).
    pub max_connections: usize,
    /// Largest frame a client may send, in bytes: undecoded input beyond
    /// this closes the connection (`FrameTooLarge`). Codecs may check
    /// earlier. Default 64 MiB.
    pub max_frame_size: usize,
    /// Output queued for one connection above which the loop stops reading
    /// from it until it drains (backpressure). Default 1 MiB.
    pub output_soft_limit: usize,
    /// Output queued for one connection above which it is closed
    /// (`OutputLimit`): a client that never reads cannot exhaust memory.
    /// Default 256 MiB.
    pub output_hard_limit: usize,
    /// Close a connection that has sent nothing for this long. `None`: never
    /// (Redis's `timeout 0`). Default `None`.
    pub idle_timeout: Option<Duration>,
    /// Listen backlog. Default 511 (Redis's `tcp-backlog`).
    pub backlog: i32,
    /// Bytes one IO step reads from a connection before yielding to others.
    /// Default 256 KiB.
    pub read_budget: usize,
    /// A closing connection whose peer does not take its last output within
    /// this time is closed anyway. Default 5 s.
    pub close_flush_timeout: Duration,
    /// A TLS handshake not finished within this time closes the connection
    /// (`HandshakeTimeout`): slowloris handshakes cannot hold slots. Default
    /// 10 s (Redis's `tls-handshake-timeout`).
    pub handshake_timeout: Duration,
    /// `SO_SNDBUF` for accepted sockets. `None` (default): the kernel's
    /// autotuning. A small value bounds kernel memory per connection.
    pub socket_send_buffer: Option<usize>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            io_threads: 0,
            io_activation: IoActivation::Adaptive,
            io_queue_capacity: 1024,
            io_spin: 2000,
            max_connections: 10_000,
            max_frame_size: 64 << 20,
            output_soft_limit: 1 << 20,
            output_hard_limit: 256 << 20,
            idle_timeout: None,
            backlog: 511,
            read_budget: 256 << 10,
            close_flush_timeout: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(10),
            socket_send_buffer: None,
        }
    }
}
