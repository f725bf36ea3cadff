//! Time bounds for tests that wait on another process or on a server's
//! shutdown: past the bound the test fails (and a child is killed) instead
//! of hanging.
#![allow(dead_code)]

use std::io::Read;
use std::process::{Child, ExitStatus};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use baton::RunReport;

use crate::util::TestServer;

/// Waits for `child` to exit; past `limit` kills it and panics naming `what`.
pub fn wait_or_kill(child: &mut Child, limit: Duration, what: &str) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not exit within {limit:?}; killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reads `pipe` to its end on another thread (a full pipe would block the
/// child), for the caller to join once the child exited.
pub fn drain(mut pipe: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    })
}

/// [`TestServer::stop`], failing the test if `run` has not returned within
/// `limit` (a shutdown that hangs is a bug of its own).
pub fn stop_within<C: Send + 'static>(
    server: TestServer<C>,
    grace: Duration,
    limit: Duration,
) -> RunReport {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(server.stop(grace));
    });
    match rx.recv_timeout(limit) {
        Ok(report) => report,
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("shutdown did not finish within {limit:?}")
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("the server's run panicked"),
    }
}

/// Polls `done` every few milliseconds; panics naming `what` after `limit`.
pub fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A child process killed when dropped, so a failing test does not leave
/// it running.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
