//! redis-benchmark as the load of the `proxy` section: `--tls`, 50 clients,
//! one thread, killed if it outlives its time.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Clients, as in the issue and the kv section.
pub const CLIENTS: usize = 50;

/// One redis-benchmark invocation.
#[derive(Debug, Clone)]
pub struct Load<'a> {
    /// Where to connect (TLS).
    pub addr: SocketAddr,
    /// The CA (here: the self-signed certificate) to verify with.
    pub cacert: &'a Path,
    /// `-t`: `set`, `set,get`.
    pub tests: &'a str,
    /// `-P`.
    pub pipeline: usize,
    /// `-n`: requests per test.
    pub requests: u64,
}

impl Load<'_> {
    /// The arguments after `redis-benchmark`.
    pub fn args(&self) -> Vec<String> {
        let mut args: Vec<String> = ["--tls", "--cacert"].map(String::from).to_vec();
        args.push(self.cacert.display().to_string());
        args.extend([
            "-h".into(),
            self.addr.ip().to_string(),
            "-p".into(),
            self.addr.port().to_string(),
            "-t".into(),
            self.tests.into(),
            "-P".into(),
            self.pipeline.to_string(),
            "-c".into(),
            CLIENTS.to_string(),
            "-n".into(),
            self.requests.to_string(),
            "--csv".into(),
        ]);
        args
    }

    /// Runs it, killing it after `timeout`; returns requests per second per
    /// test, in its order (`[("SET", 1.2e6), ("GET", 1.3e6)]`).
    pub fn run(&self, timeout: Duration) -> Result<Vec<(String, f64)>, String> {
        let out = std::env::temp_dir().join(format!(
            "baton-matrix-redis-benchmark-{}.csv",
            std::process::id()
        ));
        let mut child = Command::new("redis-benchmark")
            .args(self.args())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).map_err(|e| e.to_string())?)
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("redis-benchmark: {e} (benches/setup.sh installs it)"))?;
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                let _ = std::fs::remove_file(&out);
                return Err(format!(
                    "redis-benchmark -t {} -P {} -n {} still running after {:.0} s; killed",
                    self.tests,
                    self.pipeline,
                    self.requests,
                    timeout.as_secs_f64()
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        let _ = std::fs::remove_file(&out);
        let rates = parse_csv(&text);
        let wanted = self.tests.split(',').count();
        if !status.success() || rates.len() != wanted {
            return Err(format!(
                "redis-benchmark -t {} -P {} ({status}): {:?}",
                self.tests,
                self.pipeline,
                text.trim()
            ));
        }
        Ok(rates)
    }
}

/// `"SET","123456.78",...` lines (after the header) as (test, rps).
fn parse_csv(text: &str) -> Vec<(String, f64)> {
    text.split(['\n', '\r'])
        .filter_map(|line| {
            let mut cells = line.split(',').map(|c| c.trim_matches('"'));
            let test = cells.next()?;
            let rps = cells.next()?.parse::<f64>().ok()?;
            Some((test.to_string(), rps))
        })
        .collect()
}
