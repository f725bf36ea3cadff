//! `maxmemory` in the KV example: each policy filled past its limit,
//! Redis's error texts (checked against a real redis-server), INFO's
//! memory fields and counters, and OBJECT IDLETIME.

mod util;

include!("util/kv_example.rs");

use util::differential::{differential, Raw};

const OOM: &[u8] = b"-OOM command not allowed when used memory > 'maxmemory'.\r\n";

fn text(reply: &[u8]) -> String {
    String::from_utf8_lossy(reply).into_owned()
}

/// A numeric field of INFO's reply.
fn info_field(c: &mut Raw, section: &str, field: &str) -> u64 {
    let reply = text(&c.call(&["INFO", section]));
    let prefix = format!("{field}:");
    reply
        .lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("no {field} in {reply}"))
        .parse()
        .unwrap()
}

fn used(c: &mut Raw) -> u64 {
    info_field(c, "memory", "used_memory")
}

fn evicted(c: &mut Raw) -> u64 {
    info_field(c, "stats", "evicted_keys")
}

fn dbsize(c: &mut Raw) -> u64 {
    let reply = text(&c.call(&["DBSIZE"]));
    reply.trim_start_matches(':').trim().parse().unwrap()
}

fn value(i: usize) -> String {
    format!("{i:0100}")
}

/// Sets `config` pairs, asserting OK.
fn config(c: &mut Raw, pairs: &[(&str, &str)]) {
    for (name, v) in pairs {
        assert_eq!(
            c.call(&["CONFIG", "SET", name, v]),
            b"+OK\r\n",
            "{name} {v}"
        );
    }
}

#[test]
fn error_texts_and_settings_match_redis() {
    let server = kv_test_server(None);
    differential(
        server.addr,
        "2",
        &[
            (0, "FLUSHALL"),
            (0, "CONFIG SET maxmemory abc"),
            (0, "CONFIG SET maxmemory -1"),
            (0, "CONFIG SET maxmemory 1.5mb"),
            (0, "CONFIG SET maxmemory 100MB"),
            (0, "CONFIG GET maxmemory"),
            (0, "CONFIG SET maxmemory 3k"),
            (0, "CONFIG GET maxmemory"),
            (0, "CONFIG SET maxmemory-policy foo"),
            (0, "CONFIG SET maxmemory-policy ALLKEYS-LRU"),
            (0, "CONFIG GET maxmemory-policy"),
            (0, "CONFIG SET maxmemory-policy noeviction"),
            (0, "CONFIG SET maxmemory-samples 0"),
            (0, "CONFIG SET maxmemory-samples x"),
            (0, "CONFIG SET maxmemory-samples 7"),
            (0, "CONFIG GET maxmemory-samples"),
            (0, "CONFIG SET maxmemory 0"),
            (0, "SET a b"),
            (0, "RPUSH l x"),
            // Over the limit with noeviction: denyoom commands are
            // refused, reads and deletes run.
            (0, "CONFIG SET maxmemory 1"),
            (0, "SET c d"),
            (0, "INCR n"),
            (0, "RPUSH l y"),
            (0, "GET a"),
            (0, "LRANGE l 0 -1"),
            (0, "EXPIRE a 100"),
            (0, "DEL nokey"),
            (0, "DEL l"),
            (0, "CONFIG SET maxmemory 0"),
            (0, "SET c d"),
            (0, "CONFIG SET maxmemory-samples 5"),
        ],
    );
}

#[test]
fn noeviction_refuses_writes_but_allows_reads_and_deletes() {
    let server = kv_test_server(None);
    let mut c = Raw::connect(server.addr.port());
    for i in 0..200 {
        c.call(&["SET", &format!("k{i}"), &value(i)]);
    }
    let full = used(&mut c);
    // The data's size moves with it between databases.
    assert_eq!(c.call(&["MOVE", "k5", "1"]), b":1\r\n");
    assert_eq!(c.call(&["SWAPDB", "0", "1"]), b"+OK\r\n");
    assert_eq!(used(&mut c), full, "after MOVE and SWAPDB");
    assert_eq!(c.call(&["SWAPDB", "0", "1"]), b"+OK\r\n");
    config(
        &mut c,
        &[
            ("maxmemory-policy", "noeviction"),
            ("maxmemory", &(full / 2).to_string()),
        ],
    );
    assert_eq!(c.call(&["SET", "new", "v"]), OOM);
    assert_eq!(c.call(&["APPEND", "k1", "x"]), OOM);
    assert_eq!(
        c.call(&["GET", "k3"]),
        format!("$100\r\n{}\r\n", value(3)).as_bytes()
    );
    assert_eq!(evicted(&mut c), 0);
    assert_eq!(dbsize(&mut c), 199, "nothing evicted (one key moved)");
    // Deleting brings it under the limit; writes work again.
    for i in 6..126 {
        assert_eq!(c.call(&["DEL", &format!("k{i}")]), b":1\r\n");
    }
    assert!(used(&mut c) <= full / 2);
    assert_eq!(c.call(&["SET", "new", "v"]), b"+OK\r\n");
}

/// Fills past `limit` with `policy`: every write succeeds, the data stays
/// near the limit, keys are evicted and counted.
fn fill_with(policy: &str) {
    let server = kv_test_server(None);
    let mut c = Raw::connect(server.addr.port());
    let limit = 64 << 10;
    config(
        &mut c,
        &[
            ("maxmemory-policy", policy),
            ("maxmemory", &limit.to_string()),
        ],
    );
    // Keys in two databases: eviction looks at all of them.
    for i in 0..2000 {
        if i % 500 == 0 {
            let db = (i / 500 % 2).to_string();
            assert_eq!(c.call(&["SELECT", &db]), b"+OK\r\n");
        }
        let reply = c.call(&["SET", &format!("key:{i}"), &value(i)]);
        assert_eq!(reply, b"+OK\r\n", "{policy}: write {i}: {}", text(&reply));
        let now = used(&mut c);
        // At most one write over the limit (it is checked before each).
        assert!(now <= limit + 1024, "{policy}: {now} bytes after write {i}");
    }
    let keys = {
        let mut n = 0;
        for db in ["0", "1"] {
            c.call(&["SELECT", db]);
            n += dbsize(&mut c);
        }
        n
    };
    assert!(keys < 2000 && keys > 100, "{policy}: {keys} keys left");
    assert_eq!(evicted(&mut c), 2000 - keys, "{policy}: evicted_keys");
    assert!(info_field(&mut c, "memory", "used_memory_peak") <= limit + 1024);
    let info = text(&c.call(&["INFO", "memory"]));
    assert!(
        info.contains(&format!("maxmemory_policy:{policy}\r\n")),
        "{info}"
    );
    assert!(info.contains("maxmemory_human:64.00K\r\n"), "{info}");
}

#[test]
fn allkeys_lru_evicts_and_writes_go_on() {
    fill_with("allkeys-lru");
}

#[test]
fn allkeys_random_evicts_and_writes_go_on() {
    fill_with("allkeys-random");
}

#[test]
fn allkeys_lru_prefers_the_idle_keys_and_idletime_is_real() {
    let server = kv_test_server(None);
    let mut c = Raw::connect(server.addr.port());
    for i in 0..300 {
        c.call(&["SET", &format!("cold:{i}"), &value(i)]);
    }
    for i in 0..50 {
        c.call(&["SET", &format!("hot:{i}"), &value(i)]);
    }
    let full = used(&mut c);
    // The LRU clock counts seconds, as Redis's.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let idle = text(&c.call(&["OBJECT", "IDLETIME", "hot:0"]));
    assert!(idle == ":2\r\n" || idle == ":3\r\n", "{idle}");
    assert_eq!(
        c.call(&["OBJECT", "IDLETIME", "hot:0"]),
        idle.as_bytes(),
        "OBJECT does not touch the key"
    );
    for i in 0..50 {
        c.call(&["GET", &format!("hot:{i}")]);
    }
    assert_eq!(c.call(&["OBJECT", "IDLETIME", "hot:0"]), b":0\r\n");
    assert_eq!(c.call(&["TOUCH", "cold:1", "nokey"]), b":1\r\n");
    assert_eq!(c.call(&["OBJECT", "IDLETIME", "cold:1"]), b":0\r\n");
    // CLIENT NO-TOUCH reads leave the access time alone.
    c.call(&["CLIENT", "NO-TOUCH", "on"]);
    c.call(&["GET", "cold:0"]);
    c.call(&["CLIENT", "NO-TOUCH", "off"]);
    assert_ne!(c.call(&["OBJECT", "IDLETIME", "cold:0"]), b":0\r\n");

    config(
        &mut c,
        &[
            ("maxmemory-policy", "allkeys-lru"),
            ("maxmemory", &full.to_string()),
        ],
    );
    for i in 0..150 {
        assert_eq!(c.call(&["SET", &format!("new:{i}"), &value(i)]), b"+OK\r\n");
    }
    let alive = |c: &mut Raw, prefix: &str, n: usize| {
        (0..n)
            .filter(|i| c.call(&["EXISTS", &format!("{prefix}:{i}")]) == b":1\r\n")
            .count()
    };
    let (hot, cold) = (alive(&mut c, "hot", 50), alive(&mut c, "cold", 300));
    assert!(hot >= 45, "{hot} of 50 recently read keys survived");
    assert!(cold <= 180, "{cold} of 300 idle keys survived");
}

#[test]
fn volatile_ttl_evicts_the_nearest_deadlines_then_refuses() {
    let server = kv_test_server(None);
    let mut c = Raw::connect(server.addr.port());
    for i in 0..100 {
        c.call(&["SET", &format!("keep:{i}"), &value(i)]);
    }
    for i in 0..100 {
        let ttl = (10_000 + i).to_string();
        c.call(&["SET", &format!("ttl:{i}"), &value(i), "EX", &ttl]);
    }
    let full = used(&mut c);
    config(
        &mut c,
        &[
            ("maxmemory-policy", "volatile-ttl"),
            ("maxmemory", &full.to_string()),
        ],
    );
    for i in 0..30 {
        assert_eq!(c.call(&["SET", &format!("new:{i}"), &value(i)]), b"+OK\r\n");
    }
    let gone: Vec<usize> = (0..100)
        .filter(|i| c.call(&["EXISTS", &format!("ttl:{i}")]) == b":0\r\n")
        .collect();
    assert!(!gone.is_empty());
    assert_eq!(
        gone,
        (0..gone.len()).collect::<Vec<_>>(),
        "the nearest deadlines go first"
    );
    assert_eq!(evicted(&mut c), gone.len() as u64);
    // Once no key has a TTL, nothing is evictable: OOM.
    for i in 0..200 {
        let reply = c.call(&["SET", &format!("more:{i}"), &value(i)]);
        if reply == OOM {
            assert!(
                c.call(&["INFO", "keyspace"])
                    .windows(9)
                    .any(|w| w == b"expires=0"),
                "OOM only once no key has a TTL"
            );
            assert_eq!(
                dbsize(&mut c),
                100 + 30 + i as u64,
                "no persistent key evicted"
            );
            return;
        }
        assert_eq!(reply, b"+OK\r\n");
    }
    panic!("never refused");
}

#[test]
fn lowering_maxmemory_at_run_time_evicts_on_the_next_write() {
    let server = kv_test_server(None);
    let mut c = Raw::connect(server.addr.port());
    config(&mut c, &[("maxmemory-policy", "allkeys-random")]);
    for i in 0..400 {
        c.call(&["RPUSH", &format!("list:{}", i % 40), &value(i)]);
    }
    let full = used(&mut c);
    config(&mut c, &[("maxmemory", &(full / 4).to_string())]);
    assert!(evicted(&mut c) > 0, "INFO itself runs the check");
    assert!(used(&mut c) <= full / 4);
    assert_eq!(c.call(&["SET", "x", "y"]), b"+OK\r\n");
    assert!(used(&mut c) <= full / 4 + 1024);
    assert!(dbsize(&mut c) < 40);
    // RESETSTAT clears the counter; FLUSHALL the data.
    config(&mut c, &[("maxmemory", "0")]);
    c.call(&["CONFIG", "RESETSTAT"]);
    assert_eq!(evicted(&mut c), 0);
    c.call(&["FLUSHALL"]);
    assert_eq!(used(&mut c), 0);
}

/// volatile-lru and volatile-random evict only keys with a TTL.
fn volatile_only(policy: &str) {
    let server = kv_test_server(None);
    let mut c = Raw::connect(server.addr.port());
    for i in 0..100 {
        c.call(&["SET", &format!("keep:{i}"), &value(i)]);
        c.call(&["SET", &format!("ttl:{i}"), &value(i), "EX", "10000"]);
    }
    let full = used(&mut c);
    config(
        &mut c,
        &[
            ("maxmemory-policy", policy),
            ("maxmemory", &full.to_string()),
        ],
    );
    for i in 0..50 {
        let reply = c.call(&["SET", &format!("new:{i}"), &value(i)]);
        assert_eq!(reply, b"+OK\r\n", "{policy}: {}", text(&reply));
        assert!(used(&mut c) <= full + 1024);
    }
    let alive = |c: &mut Raw, prefix: &str| {
        (0..100)
            .filter(|i| c.call(&["EXISTS", &format!("{prefix}:{i}")]) == b":1\r\n")
            .count()
    };
    assert_eq!(
        alive(&mut c, "keep"),
        100,
        "{policy}: no persistent key evicted"
    );
    // A key with a TTL costs a little more than a new one (its deadline
    // entry): 50 writes evict a few less than 50 of them.
    let ttl_left = alive(&mut c, "ttl");
    assert!(
        (50..=60).contains(&ttl_left),
        "{policy}: {ttl_left} keys with a TTL left"
    );
    assert_eq!(evicted(&mut c), 100 - ttl_left as u64);
}

#[test]
fn volatile_lru_evicts_only_keys_with_a_ttl() {
    volatile_only("volatile-lru");
}

#[test]
fn volatile_random_evicts_only_keys_with_a_ttl() {
    volatile_only("volatile-random");
}

/// Transactions and memory, as Redis 7.0: over the limit, MULTI queues
/// nothing (every command is refused with OOM, and EXEC aborts); under
/// it, a transaction runs whole even if its own writes go past the limit:
/// no eviction and no refusal between its commands; and an EXEC holding a
/// `denyoom` command is refused whole when memory is over the limit then.
#[test]
fn a_transaction_is_checked_for_memory_once_and_runs_whole() {
    let server = kv_test_server(None);
    let mut c = Raw::connect(server.addr.port());
    for i in 0..100 {
        c.call(&["SET", &format!("k{i}"), &value(i)]);
    }
    let base = used(&mut c);
    // An EXEC with a write, refused whole when memory is over the limit at
    // EXEC (the limit lowered while it was queued).
    config(&mut c, &[("maxmemory-policy", "noeviction")]);
    assert_eq!(c.call(&["MULTI"]), b"+OK\r\n");
    assert_eq!(c.call(&["SET", "t", "1"]), b"+QUEUED\r\n");
    let mut other = Raw::connect(server.addr.port());
    config(&mut other, &[("maxmemory", &(base / 2).to_string())]);
    assert_eq!(
        c.call(&["EXEC"]),
        b"-EXECABORT Transaction discarded because of: OOM command not allowed when used memory > 'maxmemory'.\r\n"
    );
    assert_eq!(c.call(&["EXISTS", "t"]), b":0\r\n");
    config(&mut c, &[("maxmemory", "0")]);
    for policy in ["noeviction", "allkeys-lru", "allkeys-random"] {
        config(
            &mut c,
            &[
                ("maxmemory-policy", policy),
                ("maxmemory", &(base + 50_000).to_string()),
            ],
        );
        // Under the limit at EXEC: all four writes (200 kB) and reads run.
        assert_eq!(c.call(&["MULTI"]), b"+OK\r\n");
        for i in 0..4 {
            assert_eq!(
                c.call(&["SET", &format!("b{i}"), &"x".repeat(50_000)]),
                b"+QUEUED\r\n"
            );
            assert_eq!(c.call(&["EXISTS", &format!("b{i}")]), b"+QUEUED\r\n");
        }
        assert_eq!(
            c.call(&["EXEC"]),
            b"*8\r\n+OK\r\n:1\r\n+OK\r\n:1\r\n+OK\r\n:1\r\n+OK\r\n:1\r\n",
            "{policy}"
        );
        // Now over it (noeviction cannot get under): nothing is queued.
        if policy == "noeviction" {
            assert_eq!(c.call(&["MULTI"]), b"+OK\r\n");
            assert_eq!(c.call(&["GET", "k1"]), OOM);
            assert_eq!(
                c.call(&["EXEC"]),
                b"-EXECABORT Transaction discarded because of previous errors.\r\n"
            );
        }
        for i in 0..4 {
            c.call(&["DEL", &format!("b{i}")]);
        }
    }
}
