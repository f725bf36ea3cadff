//! Strings, keys, OBJECT and pub/sub patterns of the KV example against a
//! real redis-server 7.0 (the oracle): the same raw commands must get the
//! same bytes back on RESP2 and RESP3, error texts and edge cases
//! included. Replies that are unordered in Redis (SCAN, RANDOMKEY, PUBSUB
//! CHANNELS) are checked as invariants instead.

mod util;

include!("util/kv_example.rs");

use util::differential::{differential, Raw};
use util::real_redis::RealRedis;

const STRINGS: &[(usize, &str)] = &[
    (0, "FLUSHALL"),
    // SET's options, their conflicts and their order of checks.
    (0, "SET k v NX"),
    (0, "SET k v2 NX"),
    (0, "SET k v3 XX GET"),
    (0, "SET nokey v XX"),
    (0, "SET k v NX XX"),
    (0, "SET k v XX NX"),
    (0, "SET k v EX 10 PX 100"),
    (0, "SET k v EX 10 EX 20"),
    (0, "TTL k"),
    (0, "SET k v EX 10 KEEPTTL"),
    (0, "SET k v KEEPTTL EX 10"),
    (0, "SET k v2 KEEPTTL"),
    (0, "TTL k"),
    (0, "SET k v EX"),
    (0, "SET k v EX x NX XX"),
    (0, "SET k v EX x"),
    (0, "SET k v EX 0"),
    (0, "SET k v EX -5"),
    (0, "SET k v PX 0"),
    (0, "SET k v EX 9223372036854775807"),
    (0, "SET k v PX 9223372036854775807"),
    (0, "SET k v EXAT 0"),
    (0, "SET k v PXAT 9223372036854775807"),
    (0, "PEXPIRETIME k"),
    (0, "SET k v EXAT 4000000000 GET"),
    (0, "EXPIRETIME k"),
    (0, "SET k v PERSIST"),
    (0, "SET k v GET GET"),
    (0, "SET k v NX GET"),
    (0, "SET newk v NX GET"),
    (0, "SET k v FOO"),
    (0, "LPUSH list a"),
    (0, "SET list v GET"),
    (0, "SET list v NX GET"),
    (0, "SETEX k 0 v"),
    (0, "SETEX k x v"),
    (0, "PSETEX k -1 v"),
    (0, "SETEX k 100 v"),
    (0, "TTL k"),
    // GETEX.
    (0, "GETEX k"),
    (0, "GETEX nokey EX 10"),
    (0, "GETEX nokey EX -1"),
    (0, "GETEX k PERSIST"),
    (0, "TTL k"),
    (0, "GETEX k EX 50"),
    (0, "TTL k"),
    (0, "GETEX k PX 70000"),
    (0, "TTL k"),
    (0, "GETEX k EXAT 4000000000"),
    (0, "EXPIRETIME k"),
    (0, "GETEX k PXAT 4000000000500"),
    (0, "PEXPIRETIME k"),
    (0, "GETEX k EX 10 PERSIST"),
    (0, "GETEX k PERSIST EX 10"),
    (0, "GETEX k KEEPTTL"),
    (0, "GETEX k NX"),
    (0, "GETEX k GET"),
    (0, "GETEX k EX"),
    (0, "GETEX k EX 0"),
    (0, "GETEX k EX x"),
    (0, "GETEX k EX 9223372036854775807"),
    (0, "GETEX list"),
    (0, "GETEX list EX 0"),
    (0, "GETEX k EXAT 1"),
    (0, "EXISTS k"),
    (0, "GETEX"),
    // GETRANGE / SUBSTR with Redis 7.0's index rules.
    (0, "SET s hello"),
    (0, "GETRANGE s 0 -1"),
    (0, "GETRANGE s 1 3"),
    (0, "GETRANGE s -3 -1"),
    (0, "GETRANGE s 0 -100"),
    (0, "GETRANGE s -100 -200"),
    (0, "GETRANGE s -1 -5"),
    (0, "GETRANGE s 4 2"),
    (0, "GETRANGE s 10 20"),
    (0, "GETRANGE s -9223372036854775808 9223372036854775807"),
    (0, "GETRANGE s x 1"),
    (0, "GETRANGE s 0 x"),
    (0, "GETRANGE nokey 0 -1"),
    (0, "GETRANGE list 0 -1"),
    (0, "SUBSTR s 1 2"),
    (0, "SUBSTR s 1"),
    (0, "SET n 12345"),
    (0, "GETRANGE n 1 2"),
    (0, "SET e ''"),
    (0, "GETRANGE e 0 -1"),
    // SETRANGE.
    (0, "SETRANGE s 1 EY"),
    (0, "GET s"),
    (0, "SETRANGE s 7 !"),
    (0, "GET s"),
    (0, "SETRANGE s 0 ''"),
    (0, "SETRANGE nokey 5 ''"),
    (0, "EXISTS nokey"),
    (0, "SETRANGE fresh 3 x"),
    (0, "GET fresh"),
    (0, "SETRANGE s -1 x"),
    (0, "SETRANGE list -1 x"),
    (0, "SETRANGE list 0 x"),
    (0, "SETRANGE list 0 ''"),
    (0, "SETRANGE s x y"),
    (0, "SETRANGE s 536870912 x"),
    (0, "SETRANGE s 536870911 xx"),
    (0, "SETRANGE s 9223372036854775807 x"),
    (0, "SETRANGE nokey 9223372036854775807 ''"),
    (0, "SETRANGE s 0"),
    (0, "SET t 10"),
    (0, "EXPIRE t 100"),
    (0, "SETRANGE t 1 1"),
    (0, "TTL t"),
    (0, "INCR t"),
    // APPEND and the length limit.
    (0, "APPEND ap abc"),
    (0, "APPEND ap def"),
    (0, "GET ap"),
    (0, "APPEND list x"),
    // INCRBYFLOAT results that f64 and long double print alike.
    (0, "SET f 10.5"),
    (0, "INCRBYFLOAT f 0.1"),
    (0, "INCRBYFLOAT f -5"),
    (0, "INCRBYFLOAT f 1e2"),
    (0, "INCRBYFLOAT f abc"),
    (0, "INCRBYFLOAT f inf"),
    (0, "INCRBYFLOAT list 1"),
    (0, "INCRBYFLOAT f3 3"),
    // SETRANGE pads with NULs: a value with a NUL is not a float, even
    // where the bytes before or after it are (string2ld reads all bytes).
    (0, "SETRANGE nul 3 1.5"),
    (0, "INCRBYFLOAT nul 1"),
    (0, "SET nul2 1.5"),
    (0, "SETRANGE nul2 5 7"),
    (0, "INCRBYFLOAT nul2 1"),
    (0, "GET nul2"),
    // ... and the ones only long double arithmetic prints as Redis does.
    (0, "SET g 0.1"),
    (0, "INCRBYFLOAT g 0.2"),
    (0, "INCRBYFLOAT g 1000"),
    (0, "INCRBYFLOAT g 1e20"),
    (0, "INCRBYFLOAT g -1e20"),
    (0, "INCRBYFLOAT g2 1e43"),
    (0, "INCRBYFLOAT g2 -1e43"),
    (0, "INCRBYFLOAT g3 5.0e3"),
    (0, "INCRBYFLOAT g3 2.0e2"),
    (0, "INCRBYFLOAT g4 -0.000000000000000001"),
    (0, "INCRBYFLOAT g4 -0.000000000000000009"),
    (0, "INCRBYFLOAT g5 0x1p-2"),
    (0, "INCRBYFLOAT g5 0X1.8P1"),
    (0, "INCRBYFLOAT g6 1.1e4932"),
    (0, "INCRBYFLOAT g6 1.1e4932"),
    (0, "INCRBYFLOAT g7 1e4933"),
    (0, "INCRBYFLOAT g7 1e-4951"),
    (0, "INCRBYFLOAT g7 1e-5000"),
    (0, "INCRBYFLOAT g7 -inf"),
    (0, "INCRBYFLOAT g7 nan"),
    (0, "INCRBYFLOAT g7 .5"),
    (0, "INCRBYFLOAT g7 5."),
    (0, "INCRBYFLOAT g7 +1.25"),
    (0, "INCRBYFLOAT g7 1e"),
    (0, "INCRBYFLOAT g7 ''"),
    (0, "INCRBYFLOAT g8 3.0000000000000000001"),
    (0, "INCRBYFLOAT g8 123456789.123456789"),
    (0, "INCRBYFLOAT g8 -987654321987654321.5"),
    (0, "INCRBYFLOAT g9 0.333333333333333333333333"),
    (0, "INCRBYFLOAT g9 0.666666666666666666666667"),
    (0, "INCRBYFLOAT g10 1.7976931348623157e308"),
    (0, "INCRBYFLOAT g10 1.7976931348623157e308"),
    (0, "SET g11 abc"),
    (0, "INCRBYFLOAT g11 1"),
    (0, "INCRBYFLOAT list x"),
    // LCS.
    (0, "SET a ohmytext"),
    (0, "SET b mynewtext"),
    (0, "LCS a b"),
    (0, "LCS a b LEN"),
    (0, "LCS a b IDX"),
    (0, "LCS a b IDX MINMATCHLEN 4"),
    (0, "LCS a b IDX MINMATCHLEN 4 WITHMATCHLEN"),
    (0, "LCS a b IDX WITHMATCHLEN MINMATCHLEN -3"),
    (0, "LCS a b idx withmatchlen"),
    (0, "LCS a b LEN IDX"),
    (0, "LCS a b MINMATCHLEN"),
    (0, "LCS a b MINMATCHLEN x"),
    (0, "LCS a b FOO"),
    (0, "LCS a nokey"),
    (0, "LCS nokey nokey2 IDX"),
    (0, "LCS a list"),
    (0, "LCS list a LEN IDX"),
    (0, "LCS a"),
    (0, "SET c aaaaaaaaaa"),
    (0, "SET d aaabaaaaba"),
    (0, "LCS c d IDX WITHMATCHLEN"),
    (0, "LCS d c IDX WITHMATCHLEN"),
    // The proto-max-bulk-len limit of SETRANGE, APPEND and LCS's table.
    (0, "CONFIG SET proto-max-bulk-len 1048576"),
    (0, "SETRANGE big 1048575 x"),
    (0, "STRLEN big"),
    (0, "SETRANGE big 1048576 x"),
    (0, "SETRANGE big2 1048576 x"),
    (0, "APPEND big y"),
    (0, "SETRANGE big 1048575 y"),
    (0, "LCS big a LEN"),
    (0, "LCS a a LEN"),
    (0, "DEL big"),
    (0, "CONFIG SET proto-max-bulk-len 536870912"),
    // WATCH sees the new writes.
    (1, "WATCH s"),
    (0, "SETRANGE s 0 z"),
    (1, "MULTI"),
    (1, "GET s"),
    (1, "EXEC"),
    (1, "WATCH s"),
    (0, "GETEX s EX 100"),
    (1, "MULTI"),
    (1, "GET s"),
    (1, "EXEC"),
    (1, "WATCH s"),
    (0, "GETRANGE s 0 1"),
    (1, "MULTI"),
    (1, "GET s"),
    (1, "EXEC"),
];

const KEYS: &[(usize, &str)] = &[
    (0, "FLUSHALL"),
    (0, "SET k v"),
    (0, "LPUSH l a b"),
    // COPY.
    (0, "COPY k k2"),
    (0, "GET k2"),
    (0, "COPY k k2"),
    (0, "COPY k k2 REPLACE"),
    (0, "COPY k k"),
    (0, "COPY k k DB 0"),
    (0, "COPY k k DB 1"),
    (0, "SELECT 1"),
    (0, "GET k"),
    (0, "SELECT 0"),
    (0, "COPY nokey k3"),
    (0, "COPY k k3 DB 16"),
    (0, "COPY k k3 DB -1"),
    (0, "COPY k k3 DB x"),
    (0, "COPY k k3 DB 2147483648"),
    (0, "COPY k k3 DB"),
    (0, "COPY k k3 FOO"),
    (0, "COPY k"),
    (0, "COPY l l2"),
    (0, "LRANGE l2 0 -1"),
    (0, "LPUSH l c"),
    (0, "LRANGE l2 0 -1"),
    (0, "HSET h f v"),
    (0, "COPY h h2"),
    (0, "HGETALL h2"),
    (0, "SADD st 1 2"),
    (0, "COPY st st2"),
    (0, "SISMEMBER st2 2"),
    (0, "ZADD z 1 a 2 b"),
    (0, "COPY z z2"),
    (0, "ZRANGE z2 0 -1 WITHSCORES"),
    (0, "EXPIRE k 100"),
    (0, "COPY k kt"),
    (0, "TTL kt"),
    (0, "COPY l k2 REPLACE"),
    (0, "TYPE k2"),
    // RENAME / RENAMENX.
    (0, "RENAMENX k k2"),
    (0, "RENAMENX k k"),
    (0, "RENAMENX nokey x"),
    (0, "RENAMENX nokey nokey"),
    (0, "RENAME nokey nokey"),
    (0, "RENAME k k"),
    (0, "RENAMENX k fresh"),
    (0, "TTL fresh"),
    (0, "EXISTS k"),
    (0, "RENAMENX fresh"),
    // TOUCH, RANDOMKEY on an empty database.
    (0, "TOUCH fresh l nokey fresh"),
    (0, "TOUCH"),
    (0, "SELECT 5"),
    (0, "RANDOMKEY"),
    (0, "SET only one"),
    (0, "RANDOMKEY"),
    (0, "RANDOMKEY x"),
    (0, "SELECT 0"),
    // EXPIRETIME / PEXPIRETIME.
    (0, "EXPIRETIME nokey"),
    (0, "EXPIRETIME l"),
    (0, "PEXPIREAT l 4000000000700"),
    (0, "EXPIRETIME l"),
    (0, "PEXPIRETIME l"),
    (0, "PEXPIREAT l 4000000000200"),
    (0, "EXPIRETIME l"),
    (0, "EXPIREAT l 4000000000"),
    (0, "PEXPIRETIME l"),
    (0, "EXPIRETIME"),
    (0, "PEXPIRETIME a b"),
    // EXPIRE's options, conflicts and overflow.
    (0, "SET e v"),
    (0, "EXPIRE e 100 XX"),
    (0, "TTL e"),
    (0, "EXPIRE e 100 NX"),
    (0, "EXPIRE e 200 NX"),
    (0, "TTL e"),
    (0, "EXPIRE e 50 GT"),
    (0, "EXPIRE e 300 GT"),
    (0, "TTL e"),
    (0, "EXPIRE e 400 LT"),
    (0, "EXPIRE e 150 LT"),
    (0, "TTL e"),
    (0, "EXPIRE e 149 XX GT"),
    (0, "EXPIRE e 160 XX GT"),
    (0, "TTL e"),
    (0, "PERSIST e"),
    (0, "EXPIRE e 100 GT"),
    (0, "EXPIRE e 100 LT"),
    (0, "TTL e"),
    (0, "EXPIRE e 100 NX XX"),
    (0, "EXPIRE e 100 NX GT"),
    (0, "EXPIRE e 100 LT NX"),
    (0, "EXPIRE e 100 GT LT"),
    (0, "EXPIRE e 100 gt xx lt"),
    (0, "EXPIRE e 100 FOO"),
    (0, "EXPIRE e x FOO"),
    (0, "EXPIRE e x NX XX"),
    (0, "EXPIRE e x"),
    (0, "EXPIRE nokey 100 XX"),
    (0, "EXPIRE e 9223372036854775807"),
    (0, "EXPIRE e -9223372036854775808"),
    (0, "EXPIRE e 9223372036854775"),
    (0, "EXPIRE e 9223372036854774"),
    (0, "PEXPIRE e 9223372036854775807"),
    (0, "EXPIREAT e 9223372036854775807"),
    (0, "PEXPIREAT e 9223372036854775807 GT"),
    (0, "TTL e"),
    (0, "SET e v"),
    (0, "PEXPIREAT e 4000000000000 NX"),
    (0, "PEXPIRETIME e"),
    (0, "EXPIREAT e 1 GT"),
    (0, "EXISTS e"),
    (0, "EXPIREAT e 1 LT"),
    (0, "EXISTS e"),
    (0, "SET e v"),
    (0, "EXPIRE e -1"),
    (0, "EXISTS e"),
    (0, "EXPIRE e"),
    // WATCH and the new writes, in this database and another.
    (0, "SET w 1"),
    (1, "WATCH w"),
    (0, "EXPIRE w 100 NX"),
    (1, "MULTI"),
    (1, "GET w"),
    (1, "EXEC"),
    (1, "WATCH w2"),
    (0, "COPY w w2"),
    (1, "MULTI"),
    (1, "GET w2"),
    (1, "EXEC"),
    (1, "SELECT 3"),
    (1, "WATCH w"),
    (0, "COPY w w DB 3"),
    (1, "MULTI"),
    (1, "GET w"),
    (1, "EXEC"),
    (1, "SELECT 0"),
    (1, "WATCH renamed"),
    (0, "RENAMENX w renamed"),
    (1, "MULTI"),
    (1, "GET renamed"),
    (1, "EXEC"),
    // SCAN's errors (its keys are unordered: see scan_* below).
    (0, "SCAN x"),
    (0, "SCAN 0 COUNT 0"),
    (0, "SCAN 0 COUNT x"),
    (0, "SCAN 0 MATCH"),
    (0, "SCAN 0 FOO bar"),
    (0, "SELECT 7"),
    (0, "SET only v"),
    (0, "SCAN 0"),
    (0, "SCAN 0 TYPE string"),
    (0, "SCAN 0 TYPE list"),
    (0, "SCAN 0 TYPE STRING MATCH o*"),
    (0, "SCAN 0 MATCH x*"),
];

/// OBJECT, with each encoding at its thresholds.
fn object_steps() -> Vec<String> {
    let mut steps: Vec<String> = [
        "FLUSHALL",
        "OBJECT",
        "OBJECT HELP",
        "OBJECT help x",
        "OBJECT FOO k",
        "OBJECT ENCODING",
        "OBJECT ENCODING a b",
        "OBJECT ENCODING nokey",
        "OBJECT REFCOUNT nokey",
        "OBJECT FREQ nokey",
        "OBJECT IDLETIME nokey",
        "SET k 1",
        "OBJECT FREQ k",
        "OBJECT REFCOUNT k",
        "SET k 9999",
        "OBJECT REFCOUNT k",
        "SET k 10000",
        "OBJECT REFCOUNT k",
        "SET k -1",
        "OBJECT REFCOUNT k",
        "OBJECT ENCODING k",
        "SET k abc",
        "OBJECT REFCOUNT k",
        "SET k 9223372036854775807",
        "OBJECT ENCODING k",
        "SET k 9223372036854775808",
        "OBJECT ENCODING k",
        "SET k -9223372036854775808",
        "OBJECT ENCODING k",
        "SET k 01",
        "OBJECT ENCODING k",
        "SET k -0",
        "OBJECT ENCODING k",
        "SET k +1",
        "OBJECT ENCODING k",
        "SET k ''",
        "OBJECT ENCODING k",
        "INCR counter",
        "OBJECT ENCODING counter",
        "INCRBYFLOAT fl 3",
        "OBJECT ENCODING fl",
        "OBJECT REFCOUNT fl",
        "INCRBYFLOAT fl 0.5",
        "OBJECT ENCODING fl",
        "INCR fl2",
        "APPEND fl2 5",
        "OBJECT ENCODING fl2",
        "INCR fl2",
        "OBJECT ENCODING fl2",
        "APPEND new 12",
        "OBJECT ENCODING new",
        "APPEND new ''",
        "OBJECT ENCODING new",
        "SETRANGE sr 0 12",
        "OBJECT ENCODING sr",
        "SET sr2 ab",
        "SETRANGE sr2 0 ''",
        "OBJECT ENCODING sr2",
        "SETRANGE sr2 0 x",
        "OBJECT ENCODING sr2",
        "COPY sr2 sr3",
        "OBJECT ENCODING sr3",
        "RENAME k k4",
        "OBJECT ENCODING k4",
        "LPUSH l a",
        "OBJECT ENCODING l",
        "SADD s1 1 2 -3",
        "OBJECT ENCODING s1",
        "SADD s1 a",
        "OBJECT ENCODING s1",
        "SADD s2 01",
        "OBJECT ENCODING s2",
        "HSET h f v",
        "OBJECT ENCODING h",
        "ZADD z 1 a",
        "OBJECT ENCODING z",
        // Subcommand errors are queuing errors inside MULTI.
        "MULTI",
        "OBJECT ENCODING",
        "EXEC",
        "MULTI",
        "OBJECT NOPE k",
        "EXEC",
        "MULTI",
        "PUBSUB NUMPAT x",
        "EXEC",
        "MULTI",
        "OBJECT ENCODING z",
        "PUBSUB NUMSUB a",
        "OBJECT HELP",
        "EXEC",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let long = |n: usize| "x".repeat(n);
    for len in [20, 21, 22, 23, 44, 45, 100] {
        steps.push(format!("SET str{len} {}", long(len)));
        steps.push(format!("OBJECT ENCODING str{len}"));
    }
    // Whole INCRBYFLOAT results are stored as text, never as `int`.
    for len in [20, 21, 22, 23] {
        steps.push(format!("INCRBYFLOAT num{len} 1{}", "0".repeat(len - 1)));
        steps.push(format!("OBJECT ENCODING num{len}"));
    }
    steps.push(format!("SET int20 -{}", "1".repeat(19)));
    steps.push("OBJECT ENCODING int20".into());
    let members = |n: usize| (0..n).map(|i| i.to_string()).collect::<Vec<_>>().join(" ");
    for n in [512, 513] {
        steps.push(format!("SADD iset{n} {}", members(n)));
        steps.push(format!("OBJECT ENCODING iset{n}"));
    }
    let pairs = |n: usize, value: &str| {
        (0..n)
            .map(|i| format!("f{i} {value}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    for (n, len) in [(512, 64), (513, 1), (1, 65)] {
        steps.push(format!("HSET hash{n}_{len} {}", pairs(n, &long(len))));
        steps.push(format!("OBJECT ENCODING hash{n}_{len}"));
        steps.push(format!("HSET hkey{n}_{len} {} v", long(len)));
        steps.push(format!("OBJECT ENCODING hkey{n}_{len}"));
    }
    let scored = |n: usize, len: usize| {
        (0..n)
            .map(|i| format!("{i} {}{i}", long(len)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    for (n, len) in [(128, 60), (129, 1), (1, 64), (1, 65)] {
        steps.push(format!("ZADD zset{n}_{len} {}", scored(n, len)));
        steps.push(format!("OBJECT ENCODING zset{n}_{len}"));
    }
    steps
}

fn on(conn: usize, steps: &[String]) -> Vec<(usize, &str)> {
    steps.iter().map(|s| (conn, s.as_str())).collect()
}

#[test]
fn strings_resp2() {
    differential(kv_test_server(None).addr, "2", STRINGS);
}

#[test]
fn strings_resp3() {
    differential(kv_test_server(None).addr, "3", STRINGS);
}

#[test]
fn keys_resp2() {
    differential(kv_test_server(None).addr, "2", KEYS);
}

#[test]
fn keys_resp3() {
    differential(kv_test_server(None).addr, "3", KEYS);
}

#[test]
fn object_resp2_and_resp3() {
    let steps = object_steps();
    differential(kv_test_server(None).addr, "2", &on(0, &steps));
    differential(kv_test_server(None).addr, "3", &on(0, &steps));
}

/// Runs `script` on a server: each step is (connection, command) sent and
/// its reply read, or (connection, "") to read one pushed frame.
fn run_script(port: u16, proto: &str, script: &[(usize, Vec<&str>)]) -> Vec<Vec<u8>> {
    let mut conns: Vec<Raw> = (0..2).map(|_| Raw::connect(port)).collect();
    for c in &mut conns {
        c.call(&["HELLO", proto]);
    }
    script
        .iter()
        .map(|(conn, command)| {
            if command.as_slice() == [""] {
                conns[*conn].read()
            } else {
                conns[*conn].call(command)
            }
        })
        .collect()
}

fn same_as_redis(proto: &str, script: &[(usize, Vec<&str>)]) {
    let real = RealRedis::start();
    let kv = kv_test_server(None);
    let ours = run_script(kv.addr.port(), proto, script);
    let theirs = run_script(real.addr.port(), proto, script);
    for (i, (((conn, step), a), b)) in script.iter().zip(&ours).zip(&theirs).enumerate() {
        // Bytes, not text: some replies echo bytes that are not UTF-8.
        assert!(
            a == b,
            "RESP{proto}: step {i}: [{conn}] {step:?}\n   kv:    {:?}\n   redis: {:?}",
            String::from_utf8_lossy(a),
            String::from_utf8_lossy(b)
        );
    }
}

/// A pattern subscriber gets `pmessage`s (and, subscribed to the channel
/// too, both messages); counts include patterns; on RESP3 it runs commands
/// between messages; PUBSUB reports channels and patterns.
fn pattern_script(proto: &str) -> Vec<(usize, Vec<&'static str>)> {
    let mut s: Vec<(usize, Vec<&str>)> = vec![
        (0, vec!["FLUSHALL"]),
        (0, vec!["PSUBSCRIBE", "news.*", "h?llo", "news.*"]),
        (0, vec![""]),
        (0, vec![""]),
        (1, vec!["PUBSUB", "NUMPAT"]),
        (1, vec!["PUBLISH", "news.today", "one"]),
        (0, vec![""]),
        (1, vec!["PUBLISH", "hallo", "two"]),
        (0, vec![""]),
        (1, vec!["PUBLISH", "other", "three"]),
        (0, vec!["SUBSCRIBE", "news.x"]),
        (1, vec!["PUBSUB", "NUMSUB", "news.x", "news.*", "none"]),
        (1, vec!["PUBSUB", "CHANNELS"]),
        (1, vec!["PUBSUB", "CHANNELS", "news.*"]),
        (1, vec!["PUBSUB", "CHANNELS", "x*"]),
        (1, vec!["PUBLISH", "news.x", "both"]),
        (0, vec![""]),
        (0, vec![""]),
        (0, vec!["PING"]),
        (0, vec!["PING", "hi"]),
    ];
    if proto == "3" {
        s.extend([
            (0, vec!["SET", "k", "v"]),
            (1, vec!["PUBLISH", "hello", "four"]),
            (0, vec!["GET", "k"]),
            (0, vec![""]),
        ]);
    } else {
        s.extend([
            (0, vec!["GET", "k"]),
            (0, vec!["PUBSUB", "NUMPAT"]),
            (0, vec!["FOO", "bar"]),
            (0, vec!["GET"]),
            (0, vec!["OBJECT", "nope"]),
            (0, vec!["OBJECT", "encoding"]),
            (0, vec!["OBJECT", "encoding", "k"]),
            (0, vec!["PUBSUB"]),
        ]);
    }
    s.extend([
        (0, vec!["PUNSUBSCRIBE", "h?llo", "nope"]),
        (0, vec![""]),
        (1, vec!["PUBSUB", "NUMPAT"]),
        (0, vec!["UNSUBSCRIBE"]),
        (0, vec!["PUNSUBSCRIBE"]),
        (0, vec!["PUNSUBSCRIBE"]),
        (0, vec!["UNSUBSCRIBE"]),
        (1, vec!["PUBSUB", "NUMPAT"]),
        (1, vec!["PUBLISH", "news.today", "nobody"]),
        (0, vec!["PSUBSCRIBE", "a*", "b*"]),
        (0, vec![""]),
        (0, vec!["RESET"]),
        (1, vec!["PUBSUB", "NUMPAT"]),
        (1, vec!["PUBLISH", "abc", "after reset"]),
        (0, vec!["PSUBSCRIBE"]),
        (0, vec!["PUNSUBSCRIBE"]),
        // Redis 7.0 queues (P)SUBSCRIBE inside MULTI.
        (1, vec!["MULTI"]),
        (1, vec!["PSUBSCRIBE", "m*"]),
        (1, vec!["SUBSCRIBE", "mm"]),
        (1, vec!["EXEC"]),
        (0, vec!["PUBLISH", "mm", "x"]),
        (1, vec![""]),
        (1, vec![""]),
        (1, vec!["PUNSUBSCRIBE", "m*"]),
        (1, vec!["UNSUBSCRIBE", "mm"]),
        // Commands after a SUBSCRIBE in the same transaction still run.
        (1, vec!["MULTI"]),
        (1, vec!["SUBSCRIBE", "mm"]),
        (1, vec!["SET", "after", "1"]),
        (1, vec!["GET", "after"]),
        (1, vec!["EXEC"]),
        (1, vec!["GET", "after"]),
        (1, vec!["UNSUBSCRIBE"]),
        (1, vec!["PUBSUB"]),
        (1, vec!["PUBSUB", "FOO"]),
        (1, vec!["PUBSUB", "HELP"]),
        (1, vec!["PUBSUB", "HELP", "x"]),
        (1, vec!["PUBSUB", "NUMPAT", "x"]),
        (1, vec!["PUBSUB", "CHANNELS", "a", "b"]),
        (1, vec!["PUBSUB", "SHARDCHANNELS"]),
        (1, vec!["PUBSUB", "SHARDNUMSUB", "a"]),
    ]);
    s
}

#[test]
fn pattern_subscribers_resp3() {
    same_as_redis("3", &pattern_script("3"));
}

#[test]
fn pattern_subscribers_resp2() {
    same_as_redis("2", &pattern_script("2"));
}

/// The unknown-command error: the name as sent (mixed case), cut at 128
/// bytes, arguments listed up to 128 bytes, CR/LF as spaces, NUL ending
/// an argument; also inside MULTI and before AUTH's refusal.
#[test]
fn unknown_command_errors_match_redis_byte_for_byte() {
    let long_name = "A".repeat(300);
    let long_arg = "b".repeat(200);
    let thirty = "z".repeat(30);
    // 150 bytes of 3-byte characters: cut at 128 bytes, mid-character.
    let euros = "\u{20ac}".repeat(50);
    let script: Vec<(usize, Vec<&str>)> = vec![
        (0, vec![long_name.as_str(), "x\r\ny", long_arg.as_str()]),
        (
            0,
            vec![
                "FooBar",
                thirty.as_str(),
                thirty.as_str(),
                thirty.as_str(),
                thirty.as_str(),
                thirty.as_str(),
            ],
        ),
        (0, vec!["foo\0bar", "a\0b", "c"]),
        (0, vec!["Nope"]),
        (0, vec![euros.as_str(), euros.as_str()]),
        (0, vec!["no\npe", "\r"]),
        (0, vec!["MULTI"]),
        (0, vec!["NoSuch", "a"]),
        (0, vec!["EXEC"]),
        (0, vec!["SUBSCRIBE", "c"]),
        (0, vec!["NoSuch", "a"]),
    ];
    same_as_redis("2", &script);
    same_as_redis("3", &script);
}

/// SCAN with MATCH, COUNT and TYPE returns every matching key exactly as
/// KEYS would, whatever the order.
#[test]
fn scan_with_match_count_and_type_visits_every_key() {
    let kv = kv_test_server(None);
    let mut c = Raw::connect(kv.addr.port());
    for i in 0..50 {
        let key = format!("key:{i}");
        c.call(&["SET", &key, "v"]);
        let list = format!("list:{i}");
        c.call(&["LPUSH", &list, "v"]);
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut cursor = "0".to_string();
    for _ in 0..1000 {
        let reply = c.call(&[
            "SCAN", &cursor, "MATCH", "*:1*", "COUNT", "7", "TYPE", "list",
        ]);
        let text = String::from_utf8(reply).unwrap();
        let lines: Vec<&str> = text.split("\r\n").collect();
        cursor = lines[2].to_string();
        for key in lines[4..].iter().skip(1).step_by(2) {
            seen.insert(key.to_string());
        }
        if cursor == "0" {
            break;
        }
    }
    let want: std::collections::BTreeSet<String> = (0..50)
        .map(|i| format!("list:{i}"))
        .filter(|k| k.starts_with("list:1"))
        .collect();
    assert_eq!(seen, want);
    let one = c.call(&["RANDOMKEY"]);
    assert!(one.starts_with(b"$"), "{}", String::from_utf8_lossy(&one));
    // IDLETIME: kv keeps no access times and answers 0.
    assert_eq!(c.call(&["OBJECT", "IDLETIME", "key:1"]), b":0\r\n");
}

/// Hostile sizes are refused before anything is allocated by them.
#[test]
fn lcs_and_setrange_are_bounded() {
    let kv = kv_test_server(None);
    let mut c = Raw::connect(kv.addr.port());
    let big = "x".repeat(5000);
    c.call(&["SET", "a", &big]);
    c.call(&["SET", "b", &big]);
    let reply = c.call(&["LCS", "a", "b"]);
    assert!(
        reply.starts_with(b"-ERR LCS table too large"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    assert_eq!(
        c.call(&["SETRANGE", "k", "536870912", "x"]),
        b"-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n"
    );
    assert_eq!(c.call(&["EXISTS", "k"]), b":0\r\n");
}

/// A pattern subscriber that disconnects leaves no pattern behind, and
/// INFO counts patterns.
#[test]
fn a_closed_pattern_subscriber_is_forgotten() {
    let kv = kv_test_server(None);
    let mut c = Raw::connect(kv.addr.port());
    {
        let mut subscriber = Raw::connect(kv.addr.port());
        subscriber.call(&["PSUBSCRIBE", "a*"]);
        assert_eq!(c.call(&["PUBSUB", "NUMPAT"]), b":1\r\n");
        let info = c.call(&["INFO", "stats"]);
        assert!(
            String::from_utf8_lossy(&info).contains("pubsub_patterns:1\r\n"),
            "{}",
            String::from_utf8_lossy(&info)
        );
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while c.call(&["PUBSUB", "NUMPAT"]) != b":0\r\n" {
        assert!(std::time::Instant::now() < deadline, "the pattern stayed");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(c.call(&["PUBLISH", "abc", "m"]), b":0\r\n");
}

/// INCRBYFLOAT with long arguments (up to Redis's 5 KB limit) near the
/// long double's range: the same digits as redis-server.
#[test]
fn incrbyfloat_long_arguments_resp2() {
    let digits = "98765432109876543210".repeat(200);
    let steps: Vec<String> = vec![
        "FLUSHALL".into(),
        format!("INCRBYFLOAT a {digits}e-3990"),
        format!("INCRBYFLOAT b 0.{digits}"),
        format!("INCRBYFLOAT b -0.{digits}e-3"),
        format!("INCRBYFLOAT c {digits}e-1"),
        format!("INCRBYFLOAT d 1{}", "0".repeat(5200)),
        format!("INCRBYFLOAT e 0.{}1", "0".repeat(4000)),
        format!("INCRBYFLOAT e {}.5e-4000", "9".repeat(40)),
        "INCRBYFLOAT f 0x1.fffffffffffffffep16383".into(),
        "INCRBYFLOAT f 0x1p16383".into(),
        "INCRBYFLOAT g 1.18973149535723176502e4932".into(),
        "INCRBYFLOAT g -1e4932".into(),
        "INCRBYFLOAT h 3.6e-4951".into(),
        "INCRBYFLOAT h 1.5e-4950".into(),
    ];
    differential(kv_test_server(None).addr, "2", &on(0, &steps));
}
