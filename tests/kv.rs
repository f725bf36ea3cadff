//! The KV example through the Rust `redis` crate (a client nobody here
//! wrote): replies and Redis's error texts, pipelining, exact results under
//! concurrency, pub/sub ordering, expiry. The other clients and tools, and
//! the crate's application session, are in tests/kv_client_matrix.rs.

mod util;

include!("util/kv_example.rs");

use std::time::Duration;

use baton::{Config, IoActivation};
use redis::{Connection, Value};
use util::{spawn_server, spawn_tls_server, TestCert, TestServer};

fn kv_config(io_threads: usize, requirepass: Option<&str>) -> service::KvConfig {
    service::KvConfig {
        requirepass: requirepass.map(str::to_owned),
        proto_max_bulk_len: 512 << 20,
        port: 0,
        tls_port: 0,
        io_threads,
        maxclients: 10_000,
        timeout_secs: 0,
    }
}

fn kv_server(io_threads: usize, requirepass: Option<&str>) -> TestServer<()> {
    let kv = kv_config(io_threads, requirepass);
    spawn_server(
        Config::default()
            .io_threads(io_threads)
            .io_activation(IoActivation::Always),
        move || service::Kv::new(kv),
    )
}

fn connect(server: &TestServer<()>) -> Connection {
    let client = redis::Client::open(format!("redis://{}/", server.addr)).unwrap();
    client.get_connection().unwrap()
}

/// Runs a raw command; `Err` carries the full error text as Redis sent it.
fn run(con: &mut Connection, args: &[&str]) -> Result<Value, String> {
    let mut cmd = redis::cmd(args[0]);
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    cmd.query::<Value>(con)
        .map_err(|e| match (e.code(), e.detail()) {
            (Some(code), Some(detail)) => format!("{code} {detail}"),
            _ => e.to_string(),
        })
}

fn ok(con: &mut Connection, args: &[&str]) -> Value {
    run(con, args).unwrap_or_else(|e| panic!("{args:?} failed: {e}"))
}

fn bulk(s: &str) -> Value {
    Value::BulkString(s.as_bytes().to_vec())
}

fn bulks(items: &[&str]) -> Value {
    Value::Array(items.iter().map(|s| bulk(s)).collect())
}

/// Every command, its replies and its errors, on one connection.
fn command_suite(c: &mut Connection) {
    assert_eq!(ok(c, &["PING"]), Value::SimpleString("PONG".into()));
    assert_eq!(ok(c, &["ECHO", "hi"]), bulk("hi"));
    assert_eq!(ok(c, &["SELECT", "0"]), Value::Okay);
    assert_eq!(
        run(c, &["SELECT", "16"]).unwrap_err(),
        "ERR DB index is out of range"
    );
    // Strings.
    assert_eq!(ok(c, &["SET", "s", "v"]), Value::Okay);
    assert_eq!(ok(c, &["GET", "s"]), bulk("v"));
    assert_eq!(ok(c, &["GET", "missing"]), Value::Nil);
    assert_eq!(ok(c, &["SET", "s", "w", "NX"]), Value::Nil);
    assert_eq!(ok(c, &["SET", "s", "w", "XX", "GET"]), bulk("v"));
    assert_eq!(ok(c, &["SET", "new", "x", "XX"]), Value::Nil);
    assert_eq!(ok(c, &["SETNX", "s", "z"]), Value::Int(0));
    assert_eq!(ok(c, &["GETSET", "s", "g"]), bulk("w"));
    assert_eq!(ok(c, &["APPEND", "s", "12"]), Value::Int(3));
    assert_eq!(ok(c, &["STRLEN", "s"]), Value::Int(3));
    assert_eq!(ok(c, &["GETDEL", "s"]), bulk("g12"));
    assert_eq!(ok(c, &["INCR", "n"]), Value::Int(1));
    assert_eq!(ok(c, &["INCRBY", "n", "10"]), Value::Int(11));
    assert_eq!(ok(c, &["DECR", "n"]), Value::Int(10));
    assert_eq!(ok(c, &["DECRBY", "n", "3"]), Value::Int(7));
    assert_eq!(ok(c, &["INCRBYFLOAT", "f", "10.5"]), bulk("10.5"));
    assert_eq!(ok(c, &["INCRBYFLOAT", "f", "-0.5"]), bulk("10"));
    ok(c, &["SET", "text", "abc"]);
    assert_eq!(
        run(c, &["INCR", "text"]).unwrap_err(),
        "ERR value is not an integer or out of range"
    );
    ok(c, &["SET", "max", &i64::MAX.to_string()]);
    assert_eq!(
        run(c, &["INCR", "max"]).unwrap_err(),
        "ERR increment or decrement would overflow"
    );
    assert_eq!(ok(c, &["MSET", "a", "1", "b", "2"]), Value::Okay);
    assert_eq!(
        ok(c, &["MGET", "a", "nope", "b"]),
        Value::Array(vec![bulk("1"), Value::Nil, bulk("2")])
    );
    assert_eq!(ok(c, &["MSETNX", "a", "9", "c", "3"]), Value::Int(0));
    assert_eq!(ok(c, &["MSETNX", "c", "3", "d", "4"]), Value::Int(1));
    assert_eq!(
        run(c, &["GET"]).unwrap_err(),
        "ERR wrong number of arguments for 'get' command"
    );
    assert_eq!(
        run(c, &["SET", "k", "v", "BOGUS"]).unwrap_err(),
        "ERR syntax error"
    );
    assert_eq!(
        run(c, &["SET", "k", "v", "EX", "0"]).unwrap_err(),
        "ERR invalid expire time in 'set' command"
    );
    assert_eq!(
        run(c, &["NOSUCH", "x"]).unwrap_err(),
        "ERR unknown command 'NOSUCH', with args beginning with: 'x' "
    );
    // Keys.
    assert_eq!(ok(c, &["EXISTS", "a", "b", "zz"]), Value::Int(2));
    assert_eq!(ok(c, &["TYPE", "a"]), Value::SimpleString("string".into()));
    assert_eq!(ok(c, &["TYPE", "zz"]), Value::SimpleString("none".into()));
    assert_eq!(ok(c, &["RENAME", "a", "a2"]), Value::Okay);
    assert_eq!(
        run(c, &["RENAME", "zz", "y"]).unwrap_err(),
        "ERR no such key"
    );
    assert_eq!(ok(c, &["DEL", "a2", "zz"]), Value::Int(1));
    assert_eq!(ok(c, &["UNLINK", "b"]), Value::Int(1));
    let Value::Array(mut keys) = ok(c, &["KEYS", "[cd]"]) else {
        panic!()
    };
    keys.sort_by_key(|v| format!("{v:?}"));
    assert_eq!(keys, vec![bulk("c"), bulk("d")]);
    // Lists.
    assert_eq!(ok(c, &["RPUSH", "l", "a", "b", "c"]), Value::Int(3));
    assert_eq!(ok(c, &["LPUSH", "l", "z"]), Value::Int(4));
    assert_eq!(
        ok(c, &["LRANGE", "l", "0", "-1"]),
        bulks(&["z", "a", "b", "c"])
    );
    assert_eq!(ok(c, &["LRANGE", "l", "-2", "100"]), bulks(&["b", "c"]));
    assert_eq!(ok(c, &["LINDEX", "l", "-1"]), bulk("c"));
    assert_eq!(ok(c, &["LLEN", "l"]), Value::Int(4));
    assert_eq!(ok(c, &["LPOP", "l"]), bulk("z"));
    assert_eq!(ok(c, &["RPOP", "l", "2"]), bulks(&["c", "b"]));
    assert_eq!(ok(c, &["LPOP", "l", "5"]), bulks(&["a"]));
    assert_eq!(
        ok(c, &["EXISTS", "l"]),
        Value::Int(0),
        "an emptied list is deleted"
    );
    assert_eq!(ok(c, &["LPOP", "l", "1"]), Value::Nil);
    assert_eq!(
        run(c, &["LPUSH", "c", "x"]).unwrap_err(),
        "WRONGTYPE Operation against a key holding the wrong kind of value"
    );
    // Sets.
    assert_eq!(ok(c, &["SADD", "set", "a", "b", "a"]), Value::Int(2));
    assert_eq!(ok(c, &["SISMEMBER", "set", "a"]), Value::Int(1));
    assert_eq!(ok(c, &["SCARD", "set"]), Value::Int(2));
    assert_eq!(ok(c, &["SREM", "set", "a", "x"]), Value::Int(1));
    assert_eq!(ok(c, &["SMEMBERS", "set"]), bulks(&["b"]));
    assert_eq!(ok(c, &["SPOP", "set"]), bulk("b"));
    assert_eq!(ok(c, &["SPOP", "set"]), Value::Nil);
    // Hashes.
    assert_eq!(ok(c, &["HSET", "h", "f1", "v1", "f2", "v2"]), Value::Int(2));
    assert_eq!(ok(c, &["HSET", "h", "f1", "v9"]), Value::Int(0));
    assert_eq!(ok(c, &["HGET", "h", "f1"]), bulk("v9"));
    assert_eq!(
        ok(c, &["HMGET", "h", "f2", "nope"]),
        Value::Array(vec![bulk("v2"), Value::Nil])
    );
    assert_eq!(ok(c, &["HLEN", "h"]), Value::Int(2));
    assert_eq!(ok(c, &["HINCRBY", "h", "n", "5"]), Value::Int(5));
    assert_eq!(
        run(c, &["HINCRBY", "h", "f1", "1"]).unwrap_err(),
        "ERR hash value is not an integer"
    );
    assert_eq!(ok(c, &["HDEL", "h", "f1", "n"]), Value::Int(2));
    assert_eq!(ok(c, &["HGETALL", "h"]), bulks(&["f2", "v2"]));
    // Sorted sets.
    assert_eq!(
        ok(c, &["ZADD", "z", "2", "b", "1", "a", "3", "c"]),
        Value::Int(3)
    );
    assert_eq!(ok(c, &["ZADD", "z", "CH", "5", "a"]), Value::Int(1));
    assert_eq!(ok(c, &["ZSCORE", "z", "a"]), bulk("5"));
    assert_eq!(ok(c, &["ZCARD", "z"]), Value::Int(3));
    assert_eq!(ok(c, &["ZRANGE", "z", "0", "-1"]), bulks(&["b", "c", "a"]));
    assert_eq!(
        ok(c, &["ZRANGE", "z", "0", "0", "WITHSCORES"]),
        bulks(&["b", "2"])
    );
    assert_eq!(ok(c, &["ZREM", "z", "c"]), Value::Int(1));
    assert_eq!(ok(c, &["ZPOPMIN", "z"]), bulks(&["b", "2"]));
    assert_eq!(
        run(c, &["ZADD", "z", "x", "m"]).unwrap_err(),
        "ERR value is not a valid float"
    );
    // Server and connection.
    assert_eq!(ok(c, &["DBSIZE"]), Value::Int(8));
    let Value::BulkString(info) = ok(c, &["INFO", "keyspace"]) else {
        panic!()
    };
    assert_eq!(
        String::from_utf8(info).unwrap(),
        "# Keyspace\r\ndb0:keys=8,expires=0,avg_ttl=0\r\n"
    );
    assert_eq!(ok(c, &["CONFIG", "GET", "save"]), bulks(&["save", ""]));
    assert_eq!(ok(c, &["CLIENT", "SETNAME", "me"]), Value::Okay);
    assert_eq!(ok(c, &["CLIENT", "GETNAME"]), bulk("me"));
    let Value::Int(id) = ok(c, &["CLIENT", "ID"]) else {
        panic!()
    };
    let Value::BulkString(list) = ok(c, &["CLIENT", "LIST"]) else {
        panic!()
    };
    assert!(String::from_utf8(list)
        .unwrap()
        .contains(&format!("id={id} ")));
    assert_eq!(
        ok(c, &["COMMAND", "COUNT"]),
        Value::Int(command_table::COMMANDS.len() as i64)
    );
    assert_eq!(
        run(c, &["HELLO", "4"]).unwrap_err(),
        "NOPROTO unsupported protocol version"
    );
    let Value::Array(docs) = ok(c, &["COMMAND", "DOCS", "get"]) else {
        panic!()
    };
    assert_eq!(docs[0], bulk("get"));
    let Value::Array(hello) = ok(c, &["HELLO", "2"]) else {
        panic!()
    };
    assert_eq!(
        &hello[..6],
        &[
            bulk("server"),
            bulk("redis"),
            bulk("version"),
            bulk(info::VERSION),
            bulk("proto"),
            Value::Int(2)
        ]
    );
    let Value::BulkString(stats) = ok(c, &["INFO", "stats"]) else {
        panic!()
    };
    assert!(String::from_utf8(stats)
        .unwrap()
        .contains("total_commands_processed:"));
    assert_eq!(ok(c, &["FLUSHALL"]), Value::Okay);
    assert_eq!(ok(c, &["DBSIZE"]), Value::Int(0));
    // Expiry commands.
    assert_eq!(ok(c, &["SETEX", "e1", "100", "v"]), Value::Okay);
    assert_eq!(ok(c, &["PSETEX", "e2", "100000", "v"]), Value::Okay);
    let Value::Int(pttl) = ok(c, &["PTTL", "e2"]) else {
        panic!()
    };
    assert!((99_000..=100_000).contains(&pttl));
    assert_eq!(
        run(c, &["SETEX", "e3", "0", "v"]).unwrap_err(),
        "ERR invalid expire time in 'setex' command"
    );
    assert_eq!(ok(c, &["PEXPIRE", "e1", "5000"]), Value::Int(1));
    let Value::Int(ttl) = ok(c, &["TTL", "e1"]) else {
        panic!()
    };
    assert_eq!(ttl, 5);
    let far = (clock::unix_ms() / 1000 + 1000).to_string();
    assert_eq!(ok(c, &["EXPIREAT", "e1", &far]), Value::Int(1));
    let Value::Int(ttl) = ok(c, &["TTL", "e1"]) else {
        panic!()
    };
    assert!((999..=1000).contains(&ttl));
    let far_ms = (clock::unix_ms() + 7_000).to_string();
    assert_eq!(ok(c, &["PEXPIREAT", "e1", &far_ms]), Value::Int(1));
    assert_eq!(ok(c, &["EXPIRE", "nope", "10"]), Value::Int(0));
    assert_eq!(ok(c, &["FLUSHDB"]), Value::Okay);
    // Counts on pops.
    ok(c, &["RPUSH", "q", "1", "2", "3"]);
    assert_eq!(ok(c, &["LPOP", "q", "0"]), Value::Array(vec![]));
    assert_eq!(
        run(c, &["LPOP", "q", "-1"]).unwrap_err(),
        "ERR value is out of range, must be positive"
    );
    ok(c, &["SADD", "sp", "a", "b", "c"]);
    let Value::Array(popped) = ok(c, &["SPOP", "sp", "2"]) else {
        panic!()
    };
    assert_eq!(popped.len(), 2);
    assert_eq!(ok(c, &["SCARD", "sp"]), Value::Int(1));
    ok(c, &["ZADD", "zz", "1", "a", "2", "b", "3", "c"]);
    assert_eq!(ok(c, &["ZPOPMIN", "zz", "2"]), bulks(&["a", "1", "b", "2"]));
    assert_eq!(ok(c, &["FLUSHDB"]), Value::Okay);
}

/// A malformed request gets Redis's protocol error, then the connection
/// closes; the requests before it were answered.
#[test]
fn a_malformed_request_gets_a_protocol_error_and_a_close() {
    use std::io::{Read, Write};
    let server = kv_server(2, None);
    let mut raw = std::net::TcpStream::connect(server.addr).unwrap();
    raw.write_all(b"PING\r\n*1\r\n+PING\r\n").unwrap();
    let mut got = Vec::new();
    raw.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    raw.read_to_end(&mut got).unwrap();
    assert_eq!(
        String::from_utf8(got).unwrap(),
        "+PONG\r\n-ERR Protocol error: expected '$', got '+'\r\n"
    );
    server.wait_for("the protocol close", Duration::from_secs(10), |s| {
        s.closed_for(&baton::CloseReason::Protocol(
            baton::ProtocolErrorKind::Malformed,
        )) == 1
    });
}

/// QUIT answers +OK and closes; UNSUBSCRIBE leaves pub/sub mode; a
/// subscriber is not closed by the idle timeout, an idle client is.
#[test]
fn quit_unsubscribe_and_the_idle_timeout() {
    let kv = kv_config(0, None);
    let config = Config::default().idle_timeout(Some(Duration::from_millis(300)));
    let server = spawn_server(config, move || service::Kv::new(kv));
    let mut c = connect(&server);
    assert_eq!(ok(&mut c, &["QUIT"]), Value::Okay);
    server.wait_for("the QUIT close", Duration::from_secs(10), |s| {
        s.closed_for(&baton::CloseReason::ByService) == 1
    });

    let mut subscriber = connect(&server);
    let mut idle = connect(&server);
    ok(&mut idle, &["PING"]);
    subscriber
        .send_packed_command(&redis::cmd("SUBSCRIBE").arg("ch").get_packed_command())
        .unwrap();
    assert_eq!(
        subscriber.recv_response().unwrap(),
        Value::Array(vec![bulk("subscribe"), bulk("ch"), Value::Int(1)])
    );
    server.wait_for("the idle client closed", Duration::from_secs(10), |s| {
        s.closed_for(&baton::CloseReason::IdleTimeout) == 1
    });
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(
        server.handle.stats().connections_open,
        1,
        "the subscriber is still open"
    );
    subscriber
        .send_packed_command(&redis::cmd("GET").arg("k").get_packed_command())
        .unwrap();
    // An error reply comes back as a value from recv_response.
    let refused = format!("{:?}", subscriber.recv_response().unwrap());
    assert!(
        refused.contains("Can't execute 'get': only (P|S)SUBSCRIBE"),
        "{refused}"
    );
    subscriber
        .send_packed_command(&redis::cmd("UNSUBSCRIBE").get_packed_command())
        .unwrap();
    assert_eq!(
        subscriber.recv_response().unwrap(),
        Value::Array(vec![bulk("unsubscribe"), bulk("ch"), Value::Int(0)])
    );
    assert_eq!(ok(&mut subscriber, &["SET", "k", "v"]), Value::Okay);
}

#[test]
fn commands_reply_as_redis_does_inline() {
    command_suite(&mut connect(&kv_server(0, None)));
}

#[test]
fn commands_reply_as_redis_does_with_io_threads() {
    command_suite(&mut connect(&kv_server(2, None)));
}

/// The same suite through the redis crate's rustls client, and a pipeline.
#[test]
fn commands_reply_as_redis_does_over_tls() {
    for io_threads in [0, 2] {
        let cert = TestCert::new(&format!("kv-crate-tls-{io_threads}"));
        let kv = kv_config(io_threads, None);
        let config = Config::default()
            .io_threads(io_threads)
            .io_activation(IoActivation::Always);
        let server = spawn_tls_server(config, cert.server_config(), move || service::Kv::new(kv));
        let client = redis::Client::open(format!("rediss://{}/#insecure", server.addr)).unwrap();
        let mut c = client.get_connection().unwrap();
        command_suite(&mut c);
        let mut pipe = redis::pipe();
        for _ in 0..500 {
            pipe.cmd("INCR").arg("tls-counter");
        }
        let replies: Vec<i64> = pipe.query(&mut c).unwrap();
        assert_eq!(replies, (1..=500).collect::<Vec<i64>>());
        assert_eq!(server.handle.stats().handshakes_ok, 1);
    }
}

/// SCAN with MATCH and COUNT returns every key present for the whole
/// iteration exactly as KEYS does, while keys are added and deleted between
/// calls; a bad cursor is an error.
#[test]
fn scan_visits_every_key_present_throughout() {
    let server = kv_server(0, None);
    let mut c = connect(&server);
    for i in 0..500 {
        ok(&mut c, &["SET", &format!("stable:{i}"), "v"]);
        ok(&mut c, &["SET", &format!("churn:{i}"), "v"]);
    }
    let mut seen = std::collections::HashSet::new();
    let mut cursor = "0".to_string();
    let mut calls = 0;
    loop {
        let (next, keys): (String, Vec<String>) = redis::cmd("SCAN")
            .arg(&cursor)
            .arg("MATCH")
            .arg("stable:*")
            .arg("COUNT")
            .arg(25)
            .query(&mut c)
            .unwrap();
        assert!(keys.iter().all(|k| k.starts_with("stable:")));
        seen.extend(keys);
        // Churn between calls: delete some keys, add others.
        ok(&mut c, &["DEL", &format!("churn:{calls}")]);
        ok(&mut c, &["SET", &format!("added:{calls}"), "v"]);
        calls += 1;
        if next == "0" {
            break;
        }
        cursor = next;
        assert!(calls < 1000, "SCAN never finished");
    }
    assert_eq!(seen.len(), 500, "every stable key was returned");
    assert!(calls > 10, "COUNT bounded each call");
    assert_eq!(
        run(&mut c, &["SCAN", "x"]).unwrap_err(),
        "ERR invalid cursor"
    );
    let (_, strings): (String, Vec<String>) = redis::cmd("SCAN")
        .arg(0)
        .arg("COUNT")
        .arg(10_000)
        .arg("TYPE")
        .arg("list")
        .query(&mut c)
        .unwrap();
    assert!(strings.is_empty());
}

#[test]
fn pipelined_requests_get_every_reply_in_order() {
    let server = kv_server(2, None);
    let mut c = connect(&server);
    let mut pipe = redis::pipe();
    for i in 0..1000 {
        pipe.cmd("SET").arg(format!("k{i}")).arg(i).ignore();
        pipe.cmd("INCR").arg("counter");
    }
    let replies: Vec<i64> = pipe.query(&mut c).unwrap();
    assert_eq!(replies, (1..=1000).collect::<Vec<i64>>());
    let values: Vec<String> = redis::cmd("MGET")
        .arg("k0")
        .arg("k999")
        .query(&mut c)
        .unwrap();
    assert_eq!(values, vec!["0", "999"]);
}

#[test]
fn auth_is_required_when_a_password_is_set() {
    let server = kv_server(0, Some("s3cret"));
    let mut c = connect(&server);
    assert_eq!(
        run(&mut c, &["GET", "k"]).unwrap_err(),
        "NOAUTH Authentication required."
    );
    assert_eq!(
        run(&mut c, &["AUTH", "nope"]).unwrap_err(),
        "WRONGPASS invalid username-password pair or user is disabled."
    );
    assert_eq!(ok(&mut c, &["AUTH", "s3cret"]), Value::Okay);
    assert_eq!(ok(&mut c, &["GET", "k"]), Value::Nil);
}

/// Before AUTH nothing runs, whatever the command: a refused write leaves
/// no key, a refused BLPOP does not block, MULTI opens nothing. The flag
/// is the connection's own: another connection's AUTH does not lend it,
/// and RESET takes it back.
#[test]
fn auth_is_per_connection_and_a_refused_request_never_runs() {
    let server = kv_server(2, Some("s3cret"));
    let mut authed = connect(&server);
    assert_eq!(ok(&mut authed, &["AUTH", "s3cret"]), Value::Okay);
    let mut c = connect(&server);
    let noauth = Err("NOAUTH Authentication required.".to_string());
    for args in [
        &["SET", "k", "v"][..],
        &["LPUSH", "q", "x"],
        &["BLPOP", "empty", "0"],
        &["MULTI"],
        &["SUBSCRIBE", "ch"],
        &["CLIENT", "LIST"],
        &["FLUSHALL"],
    ] {
        assert_eq!(run(&mut c, args), noauth, "{args:?}");
    }
    // Still answered at once (the BLPOP did not block), and not in MULTI.
    assert_eq!(run(&mut c, &["EXEC"]), noauth);
    assert_eq!(ok(&mut authed, &["EXISTS", "k", "q"]), Value::Int(0));
    assert_eq!(ok(&mut c, &["AUTH", "s3cret"]), Value::Okay);
    assert_eq!(ok(&mut c, &["GET", "k"]), Value::Nil);
    assert_eq!(ok(&mut c, &["RESET"]), Value::SimpleString("RESET".into()));
    assert_eq!(run(&mut c, &["GET", "k"]), noauth);
    assert_eq!(ok(&mut authed, &["GET", "k"]), Value::Nil);
}

/// Sends one request as a RESP array of bulk strings.
fn send_raw(stream: &mut std::net::TcpStream, args: &[&str]) {
    use std::io::Write;
    let mut out = format!("*{}\r\n", args.len());
    for arg in args {
        out.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    stream.write_all(out.as_bytes()).unwrap();
}

/// Reads until what arrived (since the last call) contains `want`.
fn read_until(stream: &mut std::net::TcpStream, want: &str) -> String {
    use std::io::Read;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains(want) {
        let n = stream
            .read(&mut buf)
            .unwrap_or_else(|e| panic!("waiting for {want:?}: {e}; got {got:?}"));
        assert!(n > 0, "closed while waiting for {want:?}; got {got:?}");
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// Client listings and counts include the connection asking (whose state
/// its callback holds) and every other one, and drop a killed client at
/// once; a RESP3 subscriber publishing to itself gets its own message.
#[test]
fn listings_count_the_asker_and_the_others_and_drop_the_killed() {
    let server = kv_server(2, None);
    let mut a = connect(&server);
    let mut b = connect(&server);
    let mut s = std::net::TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    send_raw(&mut s, &["HELLO", "3"]);
    read_until(&mut s, "modules");
    send_raw(&mut s, &["SUBSCRIBE", "ch"]);
    read_until(&mut s, ":1\r\n");
    send_raw(&mut s, &["INFO", "clients"]);
    let info = read_until(&mut s, "paused_clients");
    assert!(info.contains("connected_clients:3\r\n"), "{info}");
    assert!(info.contains("pubsub_clients:1\r\n"), "{info}");
    send_raw(&mut s, &["PUBLISH", "ch", "hi"]);
    let got = read_until(&mut s, "\r\n:1\r\n");
    assert!(
        got.starts_with(">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n"),
        "{got:?}"
    );
    let Value::BulkString(info) = ok(&mut a, &["INFO", "clients"]) else {
        panic!("INFO is a bulk string");
    };
    let info = String::from_utf8(info).unwrap();
    assert!(info.contains("connected_clients:3\r\n"), "{info}");
    assert!(info.contains("pubsub_clients:1\r\n"), "{info}");
    let list = |c: &mut Connection| match ok(c, &["CLIENT", "LIST"]) {
        Value::BulkString(text) => String::from_utf8(text).unwrap(),
        other => panic!("{other:?}"),
    };
    let before = list(&mut a);
    assert_eq!(before.lines().count(), 3, "{before}");
    assert_eq!(before.matches("flags=P").count(), 1, "{before}");
    let Value::Int(b_id) = ok(&mut b, &["CLIENT", "ID"]) else {
        panic!("CLIENT ID is an integer");
    };
    assert!(before.contains(&format!("id={b_id} ")), "{before}");
    let b_id = b_id.to_string();
    assert_eq!(ok(&mut a, &["CLIENT", "KILL", "ID", &b_id]), Value::Int(1));
    let after = list(&mut a);
    assert_eq!(after.lines().count(), 2, "{after}");
    assert!(!after.contains(&format!("id={b_id} ")), "{after}");
    let Value::BulkString(info) = ok(&mut a, &["INFO", "clients"]) else {
        panic!("INFO is a bulk string");
    };
    let info = String::from_utf8(info).unwrap();
    assert!(info.contains("connected_clients:2\r\n"), "{info}");
}

/// A subscriber receives every message from 10 publishers, each
/// publisher's messages in the order it sent them.
#[test]
fn a_subscriber_gets_every_message_in_each_publishers_order() {
    const PUBLISHERS: usize = 10;
    const MESSAGES: usize = 500;
    let server = kv_server(2, None);
    let mut sub_con = connect(&server);
    let mut pubsub = sub_con.as_pubsub();
    pubsub.subscribe("news").unwrap();
    let addr = server.addr;
    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|p| {
            std::thread::spawn(move || {
                let mut c = redis::Client::open(format!("redis://{addr}/"))
                    .unwrap()
                    .get_connection()
                    .unwrap();
                for m in 0..MESSAGES {
                    let receivers: i64 = redis::cmd("PUBLISH")
                        .arg("news")
                        .arg(format!("{p}:{m}"))
                        .query(&mut c)
                        .unwrap();
                    assert_eq!(receivers, 1);
                }
            })
        })
        .collect();
    let mut next = [0usize; PUBLISHERS];
    pubsub
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    for _ in 0..PUBLISHERS * MESSAGES {
        let msg = pubsub.get_message().unwrap();
        assert_eq!(msg.get_channel_name(), "news");
        let payload: String = msg.get_payload().unwrap();
        let (p, m) = payload.split_once(':').unwrap();
        let (p, m): (usize, usize) = (p.parse().unwrap(), m.parse().unwrap());
        assert_eq!(m, next[p], "publisher {p}'s messages in order");
        next[p] += 1;
    }
    for p in publishers {
        p.join().unwrap();
    }
    assert!(next.iter().all(|&n| n == MESSAGES));
}

#[test]
fn keys_expire_on_access_and_in_the_background() {
    let server = kv_server(0, None);
    let mut c = connect(&server);
    let c = &mut c;
    ok(c, &["SET", "ex", "v", "EX", "100"]);
    let Value::Int(ttl) = ok(c, &["TTL", "ex"]) else {
        panic!()
    };
    assert!((99..=100).contains(&ttl), "TTL {ttl}");
    let Value::Int(pttl) = ok(c, &["PTTL", "ex"]) else {
        panic!()
    };
    assert!((99_000..=100_000).contains(&pttl), "PTTL {pttl}");
    assert_eq!(ok(c, &["PERSIST", "ex"]), Value::Int(1));
    assert_eq!(ok(c, &["TTL", "ex"]), Value::Int(-1));
    assert_eq!(ok(c, &["TTL", "nope"]), Value::Int(-2));
    // On access: gone at its deadline even before the background cycle.
    ok(c, &["SET", "px", "v", "PX", "50"]);
    std::thread::sleep(Duration::from_millis(60));
    assert_eq!(ok(c, &["GET", "px"]), Value::Nil);
    // In the background: never touched again, yet removed.
    for i in 0..100 {
        ok(c, &["SET", &format!("bg{i}"), "v", "PX", "30"]);
    }
    assert_eq!(
        ok(c, &["PEXPIREAT", "far", "99999999999999"]),
        Value::Int(0),
        "no such key"
    );
    ok(c, &["SET", "keep", "v"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let Value::BulkString(info) = ok(c, &["INFO", "keyspace"]) else {
            panic!()
        };
        // Left: `ex` (persisted above) and `keep`.
        if String::from_utf8(info)
            .unwrap()
            .contains("db0:keys=2,expires=0")
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "background expiry did not remove the keys"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        ok(c, &["EXPIRE", "keep", "-1"]),
        Value::Int(1),
        "a past deadline deletes at once"
    );
    assert_eq!(ok(c, &["EXISTS", "keep"]), Value::Int(0));
}
