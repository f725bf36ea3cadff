//! The KV example and a real redis-server 7 get the same random command
//! streams, through redis-py at its defaults (RESP3) and on RESP2, and
//! must agree on every reply: strings, keys and expiry, lists, hashes,
//! sets, sorted sets, the non-blocking forms of the blocking pops,
//! transactions with WATCH, and databases, over a small key space so types
//! collide, with edge-case arguments and wrong arities.
//!
//! The generator and the comparison rules (unordered replies, TTL
//! tolerance, invariants for random replies, full SCAN iterations) are in
//! tests/clients/random_differential.py. Fixed seeds run here;
//! `KV_FUZZ_SEED=N` runs that seed instead, `KV_FUZZ_OPS=N` changes the
//! number of commands per seed. Needs `python3` with `redis` (pip) and
//! `redis-server` (apt); `.ci/run` installs both.

mod util;

include!("util/kv_example.rs");

use std::process::Command;
use std::time::Instant;

use util::real_redis::RealRedis;

/// Seeds every run checks.
const SEEDS: &[u64] = &[1, 2, 3];
/// Commands per seed: with both protocols' tests running at once, the
/// file stays well under a minute in a debug build on two cores.
const OPS: u64 = 5000;

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value:?} is not a number")),
    )
}

fn run(proto: u8) {
    let real = RealRedis::start();
    let kv = kv_test_server(None);
    let seeds = env_u64("KV_FUZZ_SEED").map_or_else(|| SEEDS.to_vec(), |s| vec![s]);
    let ops = env_u64("KV_FUZZ_OPS").unwrap_or(OPS);
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/clients/random_differential.py"
    );
    for seed in seeds {
        let started = Instant::now();
        // The driver flushes both servers first, so each seed starts from
        // empty databases; `timeout` bounds a hung server.
        let out = Command::new("timeout")
            .args(["300", "python3", script])
            .args([
                seed.to_string(),
                proto.to_string(),
                kv.addr.port().to_string(),
                real.addr.port().to_string(),
                ops.to_string(),
            ])
            .output()
            .expect("python3 is installed");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stdout.lines().any(|l| l.starts_with("ok seed=")),
            "RESP{proto} seed {seed}: kv and redis-server differ (rerun with \
             KV_FUZZ_SEED={seed}; needs `pip install redis`):\n{stdout}\n{stderr}"
        );
        eprintln!(
            "RESP{proto} seed {seed}: {} ({:.1?})",
            stdout.trim_end().lines().last().unwrap_or_default(),
            started.elapsed()
        );
    }
}

#[test]
fn random_streams_agree_with_redis_on_resp3() {
    run(3);
}

#[test]
fn random_streams_agree_with_redis_on_resp2() {
    run(2);
}
