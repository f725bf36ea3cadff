//! A real `redis-server` of the test's own, as the oracle for differential
//! tests of the KV example.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` on a free loopback port with a scratch directory, both
/// gone on drop.
pub struct RealRedis {
    child: Child,
    pub addr: SocketAddr,
    dir: PathBuf,
}

impl RealRedis {
    /// Starts one and waits until it answers `PING`. A missing
    /// redis-server fails the test (the README lists it; `.ci/run` installs
    /// it): a differential test that skipped its oracle would pass while
    /// asserting nothing.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// [`start`](Self::start) with more arguments for redis-server (a TLS
    /// port, for example); the plain port stays, for the readiness check.
    pub fn start_with(extra: &[&str]) -> Self {
        assert!(
            Command::new("redis-server")
                .arg("--version")
                .stdout(Stdio::null())
                .status()
                .is_ok(),
            "redis-server is missing: `apt-get install redis-server` (.ci/run installs it)"
        );
        // The port is free now; redis-server takes it a moment later.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!("kv-real-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .args(extra)
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let redis = RealRedis {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !answers_ping(redis.addr) {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        redis
    }
}

fn answers_ping(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return false;
    };
    let mut buf = [0u8; 7];
    s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

impl Drop for RealRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
