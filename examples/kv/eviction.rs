//! `maxmemory`: the limit, the policy, and evicting keys to stay under it.
//!
//! Before each data command (`before_command`, called once from
//! `commands::dispatch`), if a limit is set and the data (`memory.rs`'s
//! estimate, summed over the databases) is over it, keys are evicted by
//! the policy until it is under, at most `EVICTION_BUDGET` keys per
//! command, and as many more every 100 ms from the expiry timer (`tick`).
//! If it is still over (`noeviction`, nothing evictable, or the budget
//! spent), a command Redis flags `denyoom` is refused with Redis's OOM
//! error; the others (GET, DEL, ...) run. (Redis lets a command run while
//! an eviction is "still running" after its time limit; kv refuses it, so
//! writes cannot outgrow the evictions.) With no limit (the default) the
//! check is one branch after setting the command's LRU clock.
//!
//! Policies, as Redis's:
//! * `allkeys-lru` / `volatile-lru`: of `maxmemory-samples` keys sampled
//!   per database (from a random table slot; for `volatile-*`, keys with a
//!   TTL, picked at random deadlines), the longest idle go into a pool of
//!   16 candidates kept across evictions (Redis's eviction pool), and the
//!   idlest is evicted;
//! * `allkeys-random` / `volatile-random`: a sampled key;
//! * `volatile-ttl`: the key with the nearest deadline, exactly (kv keeps
//!   deadlines ordered, where Redis samples).
//!
//! The LFU policies (`allkeys-lfu`, `volatile-lfu`) are refused: kv keeps
//! no access frequencies.

use std::cell::Cell;

use rand::Rng;

use crate::commands::Call;
use crate::keyspace::{idle_secs, lru_clock};
use crate::protocol::Reply;
use crate::service::Kv;

/// Redis's OOM reply, byte for byte.
pub const OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";
/// Most keys evicted before one command: bounds its extra latency.
pub const EVICTION_BUDGET: usize = 512;
/// Redis's eviction pool size.
const POOL_SIZE: usize = 16;
/// Slots a sample may walk per key wanted (the table is at least 1/8 full,
/// see `key_table.rs`, so this finds the keys but in freak layouts).
const SLOTS_PER_SAMPLE: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    NoEviction,
    AllKeysLru,
    AllKeysRandom,
    VolatileLru,
    VolatileRandom,
    VolatileTtl,
}

impl Policy {
    const ALL: [(Policy, &'static str); 6] = [
        (Policy::NoEviction, "noeviction"),
        (Policy::AllKeysLru, "allkeys-lru"),
        (Policy::AllKeysRandom, "allkeys-random"),
        (Policy::VolatileLru, "volatile-lru"),
        (Policy::VolatileRandom, "volatile-random"),
        (Policy::VolatileTtl, "volatile-ttl"),
    ];

    /// A policy by its Redis name (any case), or why not.
    pub fn parse(name: &str) -> Result<Policy, String> {
        let lower = name.to_ascii_lowercase();
        if let Some((p, _)) = Self::ALL.iter().find(|(_, n)| *n == lower) {
            return Ok(*p);
        }
        if lower == "allkeys-lfu" || lower == "volatile-lfu" {
            return Err(
                "baton kv does not implement the LFU policies (allkeys-lfu, volatile-lfu): it keeps no access frequencies"
                    .into(),
            );
        }
        Err("argument(s) must be one of the following: volatile-lru, volatile-lfu, volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, noeviction".into())
    }

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(p, _)| *p == self)
            .map_or("noeviction", |(_, n)| n)
    }

    fn volatile(self) -> bool {
        matches!(
            self,
            Policy::VolatileLru | Policy::VolatileRandom | Policy::VolatileTtl
        )
    }
}

/// A key that may be evicted, by how long it has been idle.
#[derive(Debug)]
struct Candidate {
    idle: u64,
    db: usize,
    key: Vec<u8>,
}

/// The maxmemory settings and eviction's state.
#[derive(Debug)]
pub struct MaxMemory {
    /// Bytes; 0 means no limit.
    pub limit: u64,
    pub policy: Policy,
    /// Keys sampled per database and eviction (Redis's default 5).
    pub samples: usize,
    /// Keys evicted (INFO's `evicted_keys`).
    pub evicted: u64,
    /// The most data seen (INFO's `used_memory_peak`): sampled by the
    /// expiry timer, INFO and eviction, as Redis samples it from its cron.
    pub peak: Cell<u64>,
    /// Some client turned CLIENT NO-TOUCH on (until then, no client's
    /// flag needs looking up per command).
    pub no_touch_seen: bool,
    /// The idlest keys sampled so far, least idle first.
    pool: Vec<Candidate>,
    /// The database the next random eviction starts from.
    next_db: usize,
}

impl Default for MaxMemory {
    fn default() -> Self {
        Self {
            limit: 0,
            policy: Policy::NoEviction,
            samples: 5,
            evicted: 0,
            peak: Cell::new(0),
            no_touch_seen: false,
            pool: Vec::with_capacity(POOL_SIZE),
            next_db: 0,
        }
    }
}

/// Parses a memory amount as redis.conf does (`memtoull`): bytes, or a
/// number with `k`/`m`/`g` (powers of 1000) or `kb`/`mb`/`gb` (of 1024),
/// any case.
pub fn parse_bytes(text: &str) -> Option<u64> {
    let lower = text.to_ascii_lowercase();
    let units: [(&str, u64); 7] = [
        ("kb", 1 << 10),
        ("mb", 1 << 20),
        ("gb", 1 << 30),
        ("k", 1000),
        ("m", 1_000_000),
        ("g", 1_000_000_000),
        ("b", 1),
    ];
    let (digits, unit) = units
        .iter()
        .find_map(|(suffix, mul)| lower.strip_suffix(suffix).map(|d| (d, *mul)))
        .unwrap_or((lower.as_str(), 1));
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(unit)
}

/// Largest `maxmemory-samples`: Redis takes up to 2^31-1, which would make
/// one eviction sample that many keys per database.
pub const MAX_SAMPLES: usize = 64;

/// Why CONFIG SET cannot set `name` (a maxmemory parameter) to `value`,
/// in Redis's words where Redis refuses it too.
pub fn check_setting(name: &str, value: &str) -> Result<(), String> {
    match name {
        "maxmemory" => parse_bytes(value)
            .map(|_| ())
            .ok_or_else(|| "argument must be a memory value".into()),
        "maxmemory-policy" => Policy::parse(value).map(|_| ()),
        "maxmemory-samples" => match value.parse::<i64>() {
            Ok(n) if (1..=MAX_SAMPLES as i64).contains(&n) => Ok(()),
            Ok(n) if (1..=i64::from(i32::MAX)).contains(&n) => Err(format!(
                "baton kv takes at most {MAX_SAMPLES} samples (each eviction samples this many keys per database)"
            )),
            Ok(_) => Err("argument must be between 1 and 2147483647 inclusive".into()),
            Err(_) => Err("argument couldn't be parsed into an integer".into()),
        },
        _ => Ok(()),
    }
}

/// Applies a setting `check_setting` accepted.
pub fn apply_setting(settings: &mut MaxMemory, name: &str, value: &str) {
    match name {
        "maxmemory" => settings.limit = parse_bytes(value).unwrap_or(settings.limit),
        "maxmemory-policy" => {
            settings.policy = Policy::parse(value).unwrap_or(settings.policy);
            // Candidates sampled for another policy do not apply.
            settings.pool.clear();
        }
        "maxmemory-samples" => settings.samples = value.parse().unwrap_or(settings.samples),
        _ => {}
    }
}

/// The data's size, all databases: O(databases).
pub fn used_memory(kv: &Kv) -> u64 {
    let used: usize = (0..kv.db_count()).map(|i| kv.db_ref(i).used_memory()).sum();
    let used = used as u64;
    if used > kv.maxmemory.peak.get() {
        kv.maxmemory.peak.set(used);
    }
    used
}

/// Whether Redis refuses the command named `name` (as sent, any case) at
/// OOM: its `denyoom` flag.
pub fn denyoom(name: &[u8]) -> bool {
    const FLAG: &[u8] = b"+denyoom\r\n";
    crate::commands::lookup(name).is_some_and(|s| s.info2.windows(FLAG.len()).any(|w| w == FLAG))
}

/// The one check before a data command runs: starts the command's LRU
/// clock, then enforces `maxmemory` (see the module doc). `Some` is the
/// refusal to answer instead of running it.
/// `client` is the state of the connection running it (`CLIENT NO-TOUCH`).
pub fn before_command(
    kv: &mut Kv,
    client: &crate::service::Client,
    call: &Call<'_>,
) -> Option<Reply> {
    let no_touch = kv.maxmemory.no_touch_seen && client.session.no_touch;
    kv.db.begin_command(call.now, no_touch);
    // Inside EXEC the check was made once for the whole transaction
    // (`refuse`, from `multi::exec`), as Redis makes it: no eviction or
    // refusal between a transaction's commands.
    if kv.maxmemory.limit == 0 || kv.executing {
        return None;
    }
    refuse(kv, call.now, || denyoom(call.name.as_bytes()))
}

/// Redis's check before a command (or a whole EXEC, or the queuing of a
/// command in MULTI): with data over `maxmemory`, evict within the budget;
/// if still over, refuse with OOM what is `denyoom` (asked only then: it
/// looks the command's flags up).
pub fn refuse(kv: &mut Kv, now: i64, denyoom: impl FnOnce() -> bool) -> Option<Reply> {
    let limit = kv.maxmemory.limit;
    if limit == 0 || used_memory(kv) <= limit {
        return None;
    }
    let fits = evict(kv, now, EVICTION_BUDGET);
    (!fits && denyoom()).then(|| Reply::error(OOM))
}

/// Evicts up to `budget` keys while the data is over the limit; whether it
/// is now within it.
pub fn evict(kv: &mut Kv, now: i64, budget: usize) -> bool {
    let limit = kv.maxmemory.limit;
    let mut used = used_memory(kv);
    // Attempts, not only evictions, are bounded (a pool candidate may
    // have gone meanwhile).
    for _ in 0..budget {
        if used <= limit {
            break;
        }
        let Some((db, key)) = victim(kv, now) else {
            break;
        };
        let target = kv.db_at(db);
        let before = target.used_memory();
        if target.remove(&key).is_none() {
            continue;
        }
        let freed = (before - target.used_memory()) as u64;
        used -= freed;
        kv.maxmemory.evicted += 1;
        // A WATCHing client sees its key change, as Redis signals it.
        crate::multi::touch_key(kv, db, &key);
    }
    used <= limit
}

/// The next key to evict by the policy, or `None` if there is none.
fn victim(kv: &mut Kv, now: i64) -> Option<(usize, Vec<u8>)> {
    let policy = kv.maxmemory.policy;
    let dbs = kv.db_count();
    let mut rng = rand::rng();
    match policy {
        Policy::NoEviction => None,
        Policy::VolatileTtl => (0..dbs)
            .filter_map(|i| kv.db_ref(i).nearest_deadline().map(|(at, k)| (at, i, k)))
            .min_by_key(|(at, _, _)| *at)
            .map(|(_, i, k)| (i, k.to_vec())),
        Policy::AllKeysRandom | Policy::VolatileRandom => {
            // Databases in turn from where the last eviction stopped, as
            // Redis's `next_db`.
            for step in 0..dbs {
                let i = (kv.maxmemory.next_db + step) % dbs;
                let db = kv.db_ref(i);
                let key = if policy.volatile() {
                    db.deadline_near(rng.random()).map(|(k, _)| k.to_vec())
                } else {
                    // A few walks from random slots: one may meet a run of
                    // empty slots.
                    (0..4).find_map(|_| {
                        let start = rng.random_range(0..usize::MAX);
                        db.sample(start, 1, SLOTS_PER_SAMPLE * 4)
                            .next()
                            .map(|(k, _, _)| k.to_vec())
                    })
                };
                if let Some(key) = key {
                    kv.maxmemory.next_db = (i + 1) % dbs;
                    return Some((i, key));
                }
            }
            None
        }
        Policy::AllKeysLru | Policy::VolatileLru => {
            fill_pool(kv, now, &mut rng);
            // The idlest candidate still there and not used since.
            while let Some(best) = kv.maxmemory.pool.pop() {
                let clock = lru_clock(now);
                // An expired key counts as there (evicting it is fine).
                let still_idle = kv
                    .db_ref(best.db)
                    .access_time(&best.key, i64::MIN)
                    .is_some_and(|access| idle_secs(access, clock) >= best.idle);
                if still_idle {
                    return Some((best.db, best.key));
                }
            }
            None
        }
    }
}

/// Samples every database with keys and keeps the idlest in the pool.
fn fill_pool(kv: &mut Kv, now: i64, rng: &mut impl Rng) {
    let clock = lru_clock(now);
    let samples = kv.maxmemory.samples.max(1);
    let volatile = kv.maxmemory.policy.volatile();
    let mut found: Vec<Candidate> = Vec::with_capacity(samples);
    for i in 0..kv.db_count() {
        let db = kv.db_ref(i);
        if db.len() == 0 || (volatile && db.keys_with_ttl() == 0) {
            continue;
        }
        if volatile {
            for _ in 0..samples {
                if let Some((key, access)) = db.deadline_near(rng.random()) {
                    found.push(Candidate {
                        idle: idle_secs(access, clock),
                        db: i,
                        key: key.to_vec(),
                    });
                }
            }
        } else {
            let start = rng.random_range(0..usize::MAX);
            for (key, access, _) in db.sample(start, samples, samples * SLOTS_PER_SAMPLE) {
                found.push(Candidate {
                    idle: idle_secs(access, clock),
                    db: i,
                    key: key.to_vec(),
                });
            }
        }
    }
    let pool = &mut kv.maxmemory.pool;
    for c in found.drain(..) {
        if pool.iter().any(|p| p.db == c.db && p.key == c.key) {
            continue;
        }
        if pool.len() == POOL_SIZE {
            if c.idle <= pool[0].idle {
                continue;
            }
            pool.remove(0);
        }
        let at = pool.partition_point(|p| p.idle <= c.idle);
        pool.insert(at, c);
    }
}

/// The expiry timer's tick (every 100 ms): samples the peak and, over the
/// limit, evicts a budget's worth, so memory comes down even when no
/// command arrives (Redis's eviction time proc does the same).
pub fn tick(kv: &mut Kv, now: i64) {
    let used = used_memory(kv);
    if kv.maxmemory.limit != 0 && used > kv.maxmemory.limit {
        evict(kv, now, EVICTION_BUDGET);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_values_parse_as_redis_conf_reads_them() {
        assert_eq!(parse_bytes("0"), Some(0));
        assert_eq!(parse_bytes("1234"), Some(1234));
        assert_eq!(parse_bytes("100mb"), Some(100 << 20));
        assert_eq!(parse_bytes("1GB"), Some(1 << 30));
        assert_eq!(parse_bytes("2k"), Some(2000));
        assert_eq!(parse_bytes("3m"), Some(3_000_000));
        assert_eq!(parse_bytes("5b"), Some(5));
        for bad in [
            "",
            "mb",
            "-1",
            "1.5mb",
            "12x",
            " 1",
            "99999999999999999999gb",
        ] {
            assert_eq!(parse_bytes(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn policies_parse_and_lfu_is_refused_clearly() {
        for (p, name) in Policy::ALL {
            assert_eq!(Policy::parse(name), Ok(p));
            assert_eq!(Policy::parse(&name.to_ascii_uppercase()), Ok(p));
            assert_eq!(p.name(), name);
        }
        assert!(Policy::parse("allkeys-lfu").unwrap_err().contains("LFU"));
        assert!(Policy::parse("lru")
            .unwrap_err()
            .starts_with("argument(s) must be one of"));
    }
}
