//! Hostile input to the KV example, through a real socket: glob patterns
//! that used to spin or overflow the loop's stack, a large request sent
//! slowly, and integer arguments Redis refuses. Each case must be answered
//! (generous did-not-hang deadlines, no timing claims: those are in
//! `benches/hostile_input.rs`) and the server must answer afterwards.
//!
//! The last tests compare answers with a real redis-server (Debian's
//! `redis-server`, which `.ci/run` installs): random glob patterns, integer
//! arguments and malformed requests. Without the binary they are skipped
//! with a note, except under CI (`CI` set), where that is a failure.

mod util;

include!("util/kv_example.rs");

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use baton::{Config, IoActivation};
use rand::{Rng, SeedableRng};
use redis::Value;
use util::real_redis::RealRedis;
use util::{spawn_server, TestServer};

/// Long enough for a loaded 2-core CI machine; the old matcher never
/// returned at all.
const DEADLINE: Duration = Duration::from_secs(60);

fn kv_server(io_threads: usize) -> TestServer<()> {
    let kv = service::KvConfig {
        requirepass: None,
        proto_max_bulk_len: 512 << 20,
        port: 0,
        tls_port: 0,
        io_threads,
        maxclients: 100,
        timeout_secs: 0,
    };
    spawn_server(
        Config::default()
            .io_threads(io_threads)
            .io_activation(if io_threads == 0 {
                IoActivation::default()
            } else {
                IoActivation::Always
            })
            .max_frame_size((512 << 20) + (64 << 10)),
        move || service::Kv::new(kv),
    )
}

fn connect(addr: SocketAddr) -> redis::Connection {
    let client = redis::Client::open(format!("redis://{addr}/")).unwrap();
    let con = client.get_connection().unwrap();
    con.set_read_timeout(Some(DEADLINE)).unwrap();
    con
}

/// Runs a command; `Err` is the error text as the server sent it.
fn query(con: &mut redis::Connection, args: &[&[u8]]) -> Result<Value, String> {
    let mut cmd = redis::cmd(std::str::from_utf8(args[0]).unwrap());
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    cmd.query::<Value>(con)
        .map_err(|e| match (e.code(), e.detail()) {
            (Some(code), Some(detail)) => format!("{code} {detail}"),
            (Some(code), None) => code.to_string(),
            _ => e.to_string(),
        })
}

fn ok(con: &mut redis::Connection, args: &[&[u8]]) -> Value {
    query(con, args).unwrap_or_else(|e| panic!("{:?}: {e}", args[0]))
}

fn assert_alive(con: &mut redis::Connection) {
    assert_eq!(ok(con, &[b"PING"]), Value::SimpleString("PONG".into()));
}

/// `*a` x 30 then `*b` against one 40-byte key of `a`s: exponential for a
/// matcher that retries every `*` (it spun the loop for good).
#[test]
fn keys_with_many_star_groups_is_answered() {
    for io_threads in [0, 2] {
        let server = kv_server(io_threads);
        let mut con = connect(server.addr);
        ok(&mut con, &[b"SET", &[b'a'; 40], b"v"]);
        let mut pattern = b"*a".repeat(30);
        pattern.extend_from_slice(b"*b");
        let started = Instant::now();
        assert_eq!(ok(&mut con, &[b"KEYS", &pattern]), Value::Array(vec![]));
        let cursor = ok(
            &mut con,
            &[b"SCAN", b"0", b"MATCH", &pattern, b"COUNT", b"100"],
        );
        assert_eq!(
            cursor,
            Value::Array(vec![Value::BulkString(b"0".to_vec()), Value::Array(vec![])])
        );
        assert!(started.elapsed() < DEADLINE);
        // The same shape that does match is still found.
        let mut pattern = b"*a".repeat(30);
        pattern.push(b'*');
        assert_eq!(
            ok(&mut con, &[b"KEYS", &pattern]),
            Value::Array(vec![Value::BulkString(vec![b'a'; 40])])
        );
        assert_alive(&mut con);
        // A second client is served too: the loop is free.
        assert_alive(&mut connect(server.addr));
    }
}

/// A 300,000-byte run of `*` used to recurse once per `*` on the loop's
/// stack and abort the process.
#[test]
fn keys_with_a_huge_star_run_is_answered() {
    let server = kv_server(0);
    let mut con = connect(server.addr);
    ok(&mut con, &[b"SET", b"key:x", b"1"]);
    ok(&mut con, &[b"SET", b"key:y", b"1"]);
    let mut pattern = vec![b'*'; 300_000];
    pattern.push(b'x');
    assert_eq!(
        ok(&mut con, &[b"KEYS", &pattern]),
        Value::Array(vec![Value::BulkString(b"key:x".to_vec())])
    );
    // 100,000 separate groups: Redis gives up past 1000 levels.
    let pattern = b"*a".repeat(100_000);
    assert_eq!(ok(&mut con, &[b"KEYS", &pattern]), Value::Array(vec![]));
    assert_alive(&mut con);
}

/// `KEYS *` is every key, the empty one too, as in Redis (the matcher
/// alone does not match an empty key).
#[test]
fn keys_star_includes_the_empty_key() {
    let server = kv_server(0);
    let mut con = connect(server.addr);
    ok(&mut con, &[b"SET", b"", b"1"]);
    assert_eq!(
        ok(&mut con, &[b"KEYS", b"*"]),
        Value::Array(vec![Value::BulkString(vec![])])
    );
    assert_eq!(ok(&mut con, &[b"KEYS", b"**"]), Value::Array(vec![]));
    assert_eq!(
        ok(&mut con, &[b"SCAN", b"0", b"MATCH", b"*"]),
        Value::Array(vec![
            Value::BulkString(b"0".to_vec()),
            Value::Array(vec![Value::BulkString(vec![])])
        ])
    );
}

/// The raw bytes of an MSET of `big` (32 MiB) under one key, then `pairs`
/// small pairs: the prefix to send at once and the tail to trickle.
fn big_then_trickle(big: usize, pairs: usize) -> (Vec<u8>, Vec<u8>) {
    let mut head = format!(
        "*{}\r\n$4\r\nMSET\r\n$3\r\nbig\r\n${big}\r\n",
        3 + 2 * pairs
    )
    .into_bytes();
    head.resize(head.len() + big, b'v');
    head.extend_from_slice(b"\r\n");
    let mut tail = Vec::new();
    for i in 0..pairs {
        let key = format!("k{i:02}");
        tail.extend_from_slice(format!("${}\r\n{key}\r\n$1\r\nv\r\n", key.len()).as_bytes());
    }
    (head, tail)
}

/// A 32 MiB argument, then the rest of the request one byte at a time
/// (~320 separate reads): answered, and the data is all there.
#[test]
fn a_large_request_sent_slowly_is_answered() {
    for io_threads in [0, 2] {
        let server = kv_server(io_threads);
        let (head, tail) = big_then_trickle(32 << 20, 21);
        let mut raw = TcpStream::connect(server.addr).unwrap();
        raw.set_nodelay(true).unwrap();
        raw.set_read_timeout(Some(DEADLINE)).unwrap();
        raw.write_all(&head).unwrap();
        for &byte in &tail {
            raw.write_all(&[byte]).unwrap();
            // Separate segments, so the server reads them one at a time.
            std::thread::sleep(Duration::from_micros(500));
        }
        let mut reply = [0u8; 5];
        raw.read_exact(&mut reply).unwrap();
        assert_eq!(&reply, b"+OK\r\n");
        let mut con = connect(server.addr);
        assert_eq!(ok(&mut con, &[b"STRLEN", b"big"]), Value::Int(32 << 20));
        assert_eq!(
            ok(&mut con, &[b"GET", b"k20"]),
            Value::BulkString(b"v".to_vec())
        );
        assert_alive(&mut con);
    }
}

/// Integer arguments are read as Redis's `string2ll` reads them.
#[test]
fn integer_arguments_are_redis_s() {
    let server = kv_server(0);
    let mut con = connect(server.addr);
    let not_integer = Err("ERR value is not an integer or out of range".to_string());
    ok(&mut con, &[b"SET", b"z", b"00"]);
    assert_eq!(query(&mut con, &[b"DECR", b"z"]), not_integer);
    assert_eq!(query(&mut con, &[b"INCR", b"z"]), not_integer);
    for bad in [
        &b"00"[..],
        b"-0",
        b"+1",
        b" 1",
        b"1 ",
        b"01",
        b"",
        b"-",
        b"9223372036854775808",
        b"000000000000000000001",
    ] {
        assert_eq!(
            query(&mut con, &[b"INCRBY", b"n", bad]),
            not_integer,
            "{bad:?}"
        );
        assert_eq!(query(&mut con, &[b"LRANGE", b"l", bad, b"1"]), not_integer);
    }
    assert_eq!(
        ok(&mut con, &[b"INCRBY", b"m", b"-9223372036854775808"]),
        Value::Int(i64::MIN)
    );
    assert_eq!(
        query(&mut con, &[b"SELECT", b"2147483648"]),
        Err("ERR value is out of range, value must between -2147483648 and 2147483647".into())
    );
    assert_eq!(
        query(&mut con, &[b"SELECT", b"16"]),
        Err("ERR DB index is out of range".into())
    );
    // SCAN's cursor is C's strtoul: "" and "-1" are cursors, " 1" is not.
    assert!(query(&mut con, &[b"SCAN", b""]).is_ok());
    assert!(query(&mut con, &[b"SCAN", b"-1"]).is_ok());
    assert_eq!(
        query(&mut con, &[b"SCAN", b" 1"]),
        Err("ERR invalid cursor".into())
    );
    assert_alive(&mut con);
}

// ---- against a real redis-server ----

/// Random patterns over a byte alphabet that means something to the
/// matcher, against the same keys in both servers: the same keys match.
#[test]
fn glob_matches_as_redis_server_does() {
    let redis = RealRedis::start();
    let server = kv_server(0);
    let (mut theirs, mut ours) = (connect(redis.addr), connect(server.addr));
    let mut rng = rand::rngs::SmallRng::seed_from_u64(36021);
    let alphabet = b"ab*?[]^-\\\x80\xff";
    let mut keys: Vec<Vec<u8>> = (0..40)
        .map(|_| {
            let len = rng.random_range(0..7);
            (0..len)
                .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                .collect()
        })
        .collect();
    keys.push(b"".to_vec());
    for con in [&mut theirs, &mut ours] {
        ok(con, &[b"FLUSHALL"]);
        for key in &keys {
            ok(con, &[b"SET", key, b"1"]);
        }
    }
    let sorted = |v: Value| match v {
        Value::Array(mut items) => {
            items.sort_by_key(|i| format!("{i:?}"));
            items
        }
        other => panic!("{other:?}"),
    };
    for _ in 0..1500 {
        let len = rng.random_range(0..9);
        let pattern: Vec<u8> = (0..len)
            .map(|_| alphabet[rng.random_range(0..alphabet.len())])
            .collect();
        let want = sorted(ok(&mut theirs, &[b"KEYS", &pattern]));
        let got = sorted(ok(&mut ours, &[b"KEYS", &pattern]));
        assert_eq!(got, want, "KEYS {:?}", String::from_utf8_lossy(&pattern));
    }
    // Past the nesting limit.
    for pattern in [b"a*".repeat(1000), b"a*".repeat(1001), {
        let mut p = b"a*".repeat(1001);
        p.push(b'b');
        p
    }] {
        let key = b"ab".repeat(1100);
        for con in [&mut theirs, &mut ours] {
            ok(con, &[b"SET", &key, b"1"]);
        }
        assert_eq!(
            sorted(ok(&mut ours, &[b"KEYS", &pattern])),
            sorted(ok(&mut theirs, &[b"KEYS", &pattern]))
        );
    }
}

/// Integer arguments, well-formed or not: the same replies.
#[test]
fn integer_arguments_answer_as_redis_server_does() {
    let redis = RealRedis::start();
    let server = kv_server(0);
    let (mut theirs, mut ours) = (connect(redis.addr), connect(server.addr));
    let numbers: &[&[u8]] = &[
        b"0",
        b"1",
        b"-1",
        b"00",
        b"-0",
        b"+1",
        b" 1",
        b"1 ",
        b"01",
        b"",
        b"-",
        b"1a",
        b"0x1",
        b"1.0",
        b"9223372036854775807",
        b"9223372036854775808",
        b"-9223372036854775808",
        b"-9223372036854775809",
        b"18446744073709551615",
        b"18446744073709551616",
        b"00000000000000000001",
        b"2147483647",
        b"2147483648",
        b"-2147483649",
    ];
    for n in numbers {
        let commands: Vec<Vec<&[u8]>> = vec![
            vec![b"INCRBY", b"n", n],
            vec![b"DECRBY", b"n", n],
            vec![b"SET", b"s", n],
            vec![b"INCR", b"s"],
            vec![b"DECR", b"s"],
            vec![b"SELECT", n],
            vec![b"LRANGE", b"l", n, b"-1"],
            vec![b"LINDEX", b"l", n],
            vec![b"EXPIRE", b"nokey", n],
            vec![b"PEXPIRE", b"nokey", n],
            vec![b"EXPIREAT", b"nokey", n],
            vec![b"SETEX", b"e", n, b"v"],
            vec![b"PSETEX", b"e", n, b"v"],
            vec![b"SET", b"e", b"v", b"EX", n],
            vec![b"SET", b"e", b"v", b"PXAT", n],
            vec![b"LPOP", b"l", n],
            vec![b"SCAN", n, b"COUNT", b"1000"],
            vec![b"SCAN", b"0", b"COUNT", n],
            vec![b"HINCRBY", b"h", b"f", n],
        ];
        for con in [&mut theirs, &mut ours] {
            ok(con, &[b"FLUSHALL"]);
            ok(con, &[b"RPUSH", b"l", b"x", b"y"]);
        }
        for args in &commands {
            // SCAN cursors and key order are each server's own: compare
            // whether the arguments were accepted, and the error text.
            let outcome = |r: Result<Value, String>| match r {
                Ok(_) if args[0] == b"SCAN" => Ok(Value::Okay),
                other => other,
            };
            let want = outcome(query(&mut theirs, args));
            let got = outcome(query(&mut ours, args));
            assert_eq!(
                got,
                want,
                "{:?}",
                args.iter()
                    .map(|a| String::from_utf8_lossy(a))
                    .collect::<Vec<_>>()
            );
        }
    }
}

/// Sends `bytes`, half-closes, and reads everything until the server
/// closes.
fn exchange(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut raw = TcpStream::connect(addr).unwrap();
    raw.set_read_timeout(Some(DEADLINE)).unwrap();
    raw.write_all(bytes).unwrap();
    raw.shutdown(std::net::Shutdown::Write).unwrap();
    let mut got = Vec::new();
    let _ = raw.read_to_end(&mut got);
    got
}

/// Malformed and odd requests: the same replies and protocol errors.
#[test]
fn malformed_requests_answer_as_redis_server_does() {
    let redis = RealRedis::start();
    let server = kv_server(0);
    let cases: &[&[u8]] = &[
        b"*1\r\n+PING\r\n",
        b"*1\r\r\n$4\r\nPING\r\n",
        b"*1\rX$4\r\nPING\r\n",
        b"*1\r\n$4\rXPING\r\n",
        b"*1\r\n$4\r\nPINGXY*1\r\n$4\r\nPING\r\n",
        b"*01\r\n$4\r\nPING\r\n",
        b"*+1\r\n$4\r\nPING\r\n",
        b"*-1\r\nPING\r\n",
        b"*0\r\nPING\r\n",
        b"*\r\nPING\r\n",
        b"*2147483648\r\n",
        b"*1\r\n$-1\r\n",
        b"*1\r\n$01\r\nx\r\n",
        b"*1\r\n$ 1\r\nx\r\n",
        b"*1\r\n$\r\n\r\n",
        b"*1\r\n$536870913\r\n",
        b"*2\r\n$4\r\nECHO\r\n$0\r\n\r\n",
        b"\r\nPING\r\n",
        b"\nPING\n",
        b"   \r\nPING\r\n",
        b"PING\rPING\r\n",
        b"ECHO \"a\\x41b\"\r\n",
        b"ECHO \"a\\x4\"\r\n",
        b"ECHO \"a\\qb\\b\\a\\n\"\r\n",
        b"ECHO 'a\\'b'\r\n",
        b"ECHO 'a\\nb'\r\n",
        b"ECHO \"ab\"c\r\n",
        b"ECHO \"ab\r\n",
        b"ECHO a\"b\"\r\n",
        b"ECHO a\"b\"c\r\n",
        b"ECHO \"a\\\"\r\n",
        b"ECHO\ta\x0bb\x0cc\r\n",
        b"ECHO \x0b a\r\n",
        b"ECHO \"\"\r\n",
        b"ECHO a\x00b\r\n",
        b"*1\x00\r\n$4\r\nPING\r\n",
        b"*1\r\n$4\r\nPING\r",
    ];
    for case in cases {
        let want = exchange(redis.addr, case);
        let got = exchange(server.addr, case);
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want),
            "{:?}",
            String::from_utf8_lossy(case)
        );
    }
    let mut long = vec![b'*'];
    long.resize(70_000, b'1');
    let mut inline = b"ECHO ".to_vec();
    inline.resize(70_000, b'x');
    for case in [long, inline] {
        assert_eq!(exchange(server.addr, &case), exchange(redis.addr, &case));
    }
}
