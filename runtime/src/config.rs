//! Limits and tuning, with defaults a user can change.

use std::time::Duration;

use crate::IoActivation;

/// Declares [`Config`] from one list of fields, each with its doc, type
/// and default, so the struct, its `Default` and its setters cannot drift
/// apart.
macro_rules! config {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $($(#[doc = $doc:literal])* $field:ident: $ty:ty = $default:expr,)*
        }
    ) => {
        $(#[$meta])*
        #[non_exhaustive]
        pub struct $name {
            $($(#[doc = $doc])* pub $field: $ty,)*
        }

        impl Default for $name {
            fn default() -> Self {
                Self {
                    $($field: $default,)*
                }
            }
        }

        impl $name {
            $(
                #[doc = concat!("Sets `", stringify!($field), "` and returns the config:")]
                #[doc = ""]
                $(#[doc = $doc])*
                #[must_use]
                pub fn $field(mut self, value: $ty) -> Self {
                    self.$field = value;
                    self
                }
            )*
        }
    };
}

config! {
    /// How a server behaves. Every field has a default chosen for a server
    /// exposed to clients it does not trust; see each field. A timeout of a
    /// century or more (up to `Duration::MAX`) means "never".
    ///
    /// Build one from [`Config::default`] with the setters, one per field
    /// and named like it; fields stay readable (and assignable). New fields
    /// may be added in minor versions, so a struct literal is not allowed
    /// outside this crate.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use baton_runtime::Config;
    /// let config = Config::default()
    ///     .io_threads(2)
    ///     .idle_timeout(Some(Duration::from_secs(300)));
    /// assert_eq!(config.io_threads, 2);
    /// assert_eq!(config.max_connections, Config::default().max_connections);
    /// ```
    #[derive(Debug, Clone)]
    pub struct Config {
        /// IO threads besides the main loop. `0`: all socket IO runs inline on
        /// the loop (like Redis without `io-threads`). Default `0`.
        io_threads: usize = 0,
        /// When the IO threads are used: [`IoActivation::Adaptive`] (default)
        /// runs IO inline until the loop is saturated and handing off measurably
        /// serves more; [`IoActivation::Always`] hands off every step.
        io_activation: IoActivation = IoActivation::Adaptive,
        /// Capacity of each IO thread's job queue; when full the loop does the
        /// work inline. Default 1024.
        io_queue_capacity: usize = 1024,
        /// Spin iterations of an idle IO thread before it parks. Default 2000
        /// (a few microseconds): an idle IO thread must not burn a core.
        io_spin: u32 = 2000,
        /// Connections open at once; more are accepted and closed at once, and
        /// counted as rejected. Default 10,000 (Redis's `maxclients`).
        max_connections: usize = 10_000,
        /// Largest frame a client may send, in bytes: undecoded input beyond
        /// this closes the connection (`FrameTooLarge`). Codecs may check
        /// earlier. Default 64 MiB.
        max_frame_size: usize = 64 << 20,
        /// Output queued for one connection above which the loop stops reading
        /// from it until it drains (backpressure). Default 1 MiB.
        output_soft_limit: usize = 1 << 20,
        /// Output queued for one connection above which it is closed
        /// (`OutputLimit`): a client that never reads cannot exhaust memory.
        /// Default 256 MiB.
        output_hard_limit: usize = 256 << 20,
        /// Close a connection that has sent nothing for this long. `None`: never
        /// (Redis's `timeout 0`). Default `None`.
        idle_timeout: Option<Duration> = None,
        /// Listen backlog. Default 511 (Redis's `tcp-backlog`).
        backlog: i32 = 511,
        /// Bytes one IO step reads from a connection before yielding to others.
        /// Default 256 KiB.
        read_budget: usize = 256 << 10,
        /// A closing connection whose peer does not take its last output within
        /// this time is closed anyway. Default 5 s.
        close_flush_timeout: Duration = Duration::from_secs(5),
        /// A TLS handshake not finished within this time closes the connection
        /// (`HandshakeTimeout`): slowloris handshakes cannot hold slots. Default
        /// 10 s (Redis's `tls-handshake-timeout`).
        handshake_timeout: Duration = Duration::from_secs(10),
        /// A connection the service opens ([`Ctx::connect`](crate::Ctx::connect))
        /// whose TCP connect has not completed within this time is given up
        /// (`ConnectTimeout`), unless its `Connect` names its own. Default 10 s.
        connect_timeout: Duration = Duration::from_secs(10),
        /// `SO_SNDBUF` for accepted sockets and those the service opens. `None` (default): the kernel's
        /// autotuning. A small value bounds kernel memory per connection.
        socket_send_buffer: Option<usize> = None,
    }
}
