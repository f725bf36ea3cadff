//! Time bounds for tests that wait on another process or on a server's
//! shutdown: past the bound the test fails (and a child is killed) instead
//! of hanging.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
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

/// Runs `command` to its end, writing `input` to its stdin, and returns
/// its stdout. Panics with everything it printed if it fails or outlives
/// `limit` (then it is killed first); `what` names it in the message.
pub fn run_within(command: &mut Command, input: &[u8], limit: Duration, what: &str) -> String {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input = input.to_vec();
    // On a thread: a child that does not read its input must not block us.
    std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = drain(child.stdout.take().expect("piped stdout"));
    let err = drain(child.stderr.take().expect("piped stderr"));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break Some(status);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    match status {
        Some(status) if status.success() => out,
        Some(status) => panic!("{what} failed ({status}):\n{out}\n{err}"),
        None => panic!("{what} did not finish within {limit:?}; killed. It printed:\n{out}\n{err}"),
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
) -> RunReport<()> {
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
