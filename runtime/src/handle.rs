//! Reaching the loop from other threads: commands through a lock-free
//! queue, followed by a coalesced wake-up.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_io_threads::Inbox;
use baton_tls::rustls::ServerConfig;
use baton_tls::{TlsConfigError, TlsSettings};

use crate::stats::StatsSource;
use crate::timers::deadline_after;
use crate::StatsSnapshot;

/// What other threads can ask of the loop.
pub(crate) enum Control<C> {
    /// Delivered to [`Service::on_command`](crate::Service::on_command).
    User(C),
    /// Begin a graceful shutdown that must finish by `deadline`.
    Shutdown { deadline: Instant },
    /// New TLS handshakes use this configuration from now on.
    ReloadTls(Arc<ServerConfig>),
}

/// The loop's inbox (any thread -> main loop, MPSC, unbounded).
pub(crate) type Mailbox<C> = Inbox<Control<C>>;

/// A handle other threads use to talk to a running server's loop.
///
/// `Send + Sync + Clone`: hand it to signal handlers, admin threads,
/// background jobs. It can post commands, start a graceful shutdown and read
/// counters; it cannot touch connections or the poller directly (all of that
/// happens on the loop, in the order commands arrive).
pub struct LoopHandle<C> {
    pub(crate) mailbox: Arc<Mailbox<C>>,
    pub(crate) stats: StatsSource,
}

impl<C> Clone for LoopHandle<C> {
    fn clone(&self) -> Self {
        Self {
            mailbox: Arc::clone(&self.mailbox),
            stats: self.stats.clone(),
        }
    }
}

impl<C> fmt::Debug for LoopHandle<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopHandle")
            .field("running", &self.is_running())
            .finish()
    }
}

/// The loop has stopped; the command is given back.
#[derive(Debug, PartialEq, Eq)]
pub struct Stopped<C>(pub C);

impl<C> fmt::Display for Stopped<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the event loop has stopped")
    }
}

impl<C: fmt::Debug> std::error::Error for Stopped<C> {}

impl<C: Send + 'static> LoopHandle<C> {
    /// Queues `command` for [`Service::on_command`](crate::Service::on_command)
    /// and wakes the loop if it sleeps. Never blocks. Commands from one
    /// thread arrive in the order posted.
    ///
    /// `Err` gives the command back if the loop had already stopped. A
    /// command posted while the loop is returning may be dropped unseen.
    pub fn post(&self, command: C) -> Result<(), Stopped<C>> {
        self.mailbox
            .push(Control::User(command))
            .map_err(|control| match control {
                Control::User(command) => Stopped(command),
                _ => unreachable!("pushed a user command"),
            })
    }

    /// Starts a graceful shutdown: stop accepting, let queued output flush
    /// for up to `grace`, close every connection, join the IO threads; then
    /// [`Server::run`](crate::Server::run) returns. Returns at once; calling
    /// it again (or after the loop stopped) does nothing. A `grace` of a
    /// century or more (`Duration::MAX`) means no deadline: the shutdown
    /// waits for every connection to flush (each still bounded by the close
    /// flush timeout) or be closed by its client.
    pub fn shutdown(&self, grace: Duration) {
        let _ = self.mailbox.push(Control::Shutdown {
            deadline: deadline_after(Instant::now(), grace),
        });
    }
}

impl<C> LoopHandle<C> {
    /// Replaces the certificate (and every other TLS setting) of the TLS
    /// listeners. The files are read and checked here, on the caller's
    /// thread: a bad file is an `Err` and the server keeps its current
    /// configuration. New handshakes use the new configuration; established
    /// connections keep theirs.
    pub fn reload_tls(&self, settings: &TlsSettings) -> Result<(), TlsConfigError> {
        let config = settings.build()?;
        // A stopped loop has no listeners left to reload.
        let _ = self.mailbox.push(Control::ReloadTls(config));
        Ok(())
    }

    /// Whether the loop is still running.
    pub fn is_running(&self) -> bool {
        self.mailbox.is_open()
    }

    /// The server's counters now.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }
}
