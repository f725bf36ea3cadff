//! The KV example against a real Redis, with the raw commands today's
//! clients send: the same commands sent to kv and to a `redis-server`
//! (Debian's package, started here on a free loopback port) must get the
//! same bytes back, on RESP3 and on RESP2. Needs `redis-server` (apt);
//! `.ci/run` installs it. The clients themselves (redis-py, node-redis,
//! redis-cli, ...) are in tests/kv_client_matrix.rs.

mod util;

include!("util/kv_example.rs");

use util::differential::{differential, Raw};
use util::TestServer;

fn kv_server() -> TestServer<()> {
    kv_test_server(None)
}

/// Reply shapes: data types, nulls, doubles, maps, sets, errors, databases,
/// server commands, pub/sub and transactions (connection 0 unless noted).
const SHAPES: &[(usize, &str)] = &[
    (0, "FLUSHALL"),
    // Only the user `default` exists; without requirepass it takes any
    // password when named.
    (1, "AUTH x"),
    (1, "AUTH default x"),
    (1, "AUTH DEFAULT x"),
    (1, "AUTH foo x"),
    (1, "HELLO 3 AUTH foo x"),
    (0, "SELECT 9"),
    (0, "SET k v"),
    (0, "GET k"),
    (0, "GET nope"),
    (0, "MGET k nope"),
    (0, "HSET h f v"),
    (0, "HGETALL h"),
    (0, "HGETALL nope"),
    (0, "HGET h nope"),
    (0, "SADD s a"),
    (0, "SMEMBERS s"),
    (0, "SMEMBERS nope"),
    (0, "SPOP s 1"),
    (0, "SPOP nope"),
    (0, "ZADD z 1.5 a 2 b 3 c"),
    (0, "ZSCORE z a"),
    (0, "ZSCORE z nope"),
    (0, "ZRANGE z 0 -1 WITHSCORES"),
    (0, "ZRANGE z 0 -1"),
    (0, "ZPOPMIN z"),
    (0, "ZPOPMIN z 1"),
    (0, "ZPOPMIN nope"),
    (0, "LPOP nope"),
    (0, "LPOP nope 2"),
    (0, "LPUSH l a b"),
    (0, "LRANGE l 0 -1"),
    (0, "INCRBYFLOAT f 1.5"),
    (0, "TYPE k"),
    (0, "TTL k"),
    (0, "EXISTS k nope"),
    (0, "CONFIG GET databases"),
    (0, "CONFIG GET maxclients"),
    (0, "CONFIG GET appendonly"),
    (0, "CONFIG GET save"),
    (0, "CONFIG SET save ''"),
    (0, "CONFIG SET save '' appendonly no"),
    (0, "CONFIG SET databases 4"),
    (0, "CONFIG SET nosuchparameter 1"),
    (0, "DBSIZE"),
    (1, "DBSIZE"),
    (0, "SWAPDB 9 0"),
    (0, "DBSIZE"),
    (1, "DBSIZE"),
    (1, "GET k"),
    (0, "SWAPDB 0 9"),
    (0, "SELECT 16"),
    (0, "SELECT -1"),
    (0, "SELECT x"),
    (0, "SWAPDB 0 x"),
    // Both indices are read as C ints before either range is checked.
    (0, "SWAPDB 4294967296 0"),
    (0, "SWAPDB 0 4294967296"),
    (0, "SWAPDB 99 4294967296"),
    (0, "SWAPDB 99 x"),
    (0, "SWAPDB 99 0"),
    (0, "SWAPDB 0 -1"),
    (0, "SWAPDB x 0"),
    (0, "SWAPDB 0 99"),
    (0, "MOVE k 0"),
    (0, "MOVE k 0"),
    (0, "MOVE nope 0"),
    (0, "MOVE k 9"),
    (1, "GET k"),
    (1, "MOVE k 9"),
    (0, "FLUSHDB ASYNC"),
    (0, "DBSIZE"),
    (1, "DBSIZE"),
    (0, "FLUSHALL SYNC"),
    (1, "DBSIZE"),
    (0, "FUNCTION FLUSH"),
    (0, "FUNCTION FLUSH SYNC"),
    (0, "FUNCTION LIST"),
    (0, "SCRIPT FLUSH"),
    (0, "SCRIPT EXISTS abc"),
    (0, "CLIENT SETNAME diff"),
    (0, "CLIENT GETNAME"),
    (0, "CLIENT SETNAME a b"),
    (0, "CLIENT NOSUCH"),
    (0, "CONFIG GET"),
    (0, "CONFIG NOSUCH x"),
    (0, "FUNCTION NOSUCH"),
    (0, "CLIENT NO-EVICT on"),
    (0, "CLIENT REPLY ON"),
    (0, "COMMAND INFO get set hgetall zadd nosuchcommand"),
    (0, "COMMAND DOCS get"),
    // Transactions.
    (0, "MULTI"),
    (0, "SET a 1"),
    (0, "INCR a"),
    (0, "HGETALL h"),
    (0, "ZSCORE z b"),
    (0, "GET nope"),
    (0, "EXEC"),
    (0, "MULTI"),
    (0, "MULTI"),
    (0, "SET a"),
    (0, "NOSUCHCOMMAND x"),
    (0, "EXEC"),
    (0, "EXEC"),
    (0, "DISCARD"),
    (0, "MULTI"),
    (0, "SET a 2"),
    (0, "DISCARD"),
    (0, "GET a"),
    (0, "MULTI"),
    (0, "SET s x"),
    (0, "LPUSH s y"),
    (0, "EXEC"),
    // MULTI, EXEC, DISCARD, WATCH and UNWATCH with the wrong number of
    // arguments inside MULTI: rejected, and EXEC then aborts, as for a
    // queued command; WATCH with a key there is refused but aborts nothing.
    (0, "MULTI"),
    (0, "SET a 3"),
    (0, "WATCH a"),
    (0, "EXEC"),
    (0, "GET a"),
    (0, "MULTI"),
    (0, "SET a 4"),
    (0, "WATCH"),
    (0, "EXEC"),
    (0, "MULTI"),
    (0, "MULTI x"),
    (0, "EXEC"),
    (0, "MULTI"),
    (0, "DISCARD x"),
    (0, "UNWATCH x"),
    (0, "EXEC"),
    (0, "GET a"),
    // EXEC with arguments, in MULTI or not, discards the transaction and
    // the watches.
    (0, "EXEC x"),
    (0, "MULTI"),
    (0, "SET a 5"),
    (0, "EXEC x"),
    (0, "EXEC"),
    (0, "GET a"),
    (0, "WATCH a"),
    (0, "EXEC x y"),
    (0, "SET a 6"),
    (0, "MULTI"),
    (0, "GET a"),
    (0, "EXEC"),
    // Pub/sub: on RESP3 the subscriber keeps running commands.
    (2, "SUBSCRIBE c1 c2"),
    (2, "PING"),
    (2, "UNSUBSCRIBE c1"),
    (2, "UNSUBSCRIBE"),
    (2, "PING"),
];

#[test]
fn resp3_replies_are_byte_for_byte_redis_servers() {
    differential(kv_server().addr, "3", SHAPES);
}

#[test]
fn resp2_replies_are_byte_for_byte_redis_servers() {
    differential(kv_server().addr, "2", SHAPES);
}

/// WATCH: touched by another client's write, by expiry, by FLUSHALL, by
/// SWAPDB and by MOVE; not by a write to another key or database, nor by
/// reads. Each EXEC's reply (a result or a null) must match Redis's.
const WATCHES: &[(usize, &str)] = &[
    (0, "FLUSHALL"),
    (0, "SET w 1"),
    // Untouched: EXEC runs.
    (0, "WATCH w"),
    (1, "GET w"),
    (1, "SET other 1"),
    (1, "SELECT 3"),
    (1, "SET w 99"),
    (1, "SELECT 0"),
    (0, "MULTI"),
    (0, "INCR w"),
    (0, "EXEC"),
    // Another client's write: EXEC fails.
    (0, "WATCH w"),
    (1, "INCR w"),
    (0, "MULTI"),
    (0, "INCR w"),
    (0, "EXEC"),
    // A failed EXEC unwatched everything: the next one runs.
    (0, "MULTI"),
    (0, "INCR w"),
    (0, "EXEC"),
    // Its own write before MULTI counts too.
    (0, "WATCH w"),
    (0, "SET w 5"),
    (0, "MULTI"),
    (0, "GET w"),
    (0, "EXEC"),
    // Expiry.
    (0, "SET e 1 PX 50"),
    (0, "WATCH e"),
    (0, "SLEEP 200"),
    (0, "MULTI"),
    (0, "GET e"),
    (0, "EXEC"),
    // FLUSHALL by another client.
    (0, "SET w 1"),
    (0, "WATCH w"),
    (1, "FLUSHALL"),
    (0, "MULTI"),
    (0, "GET w"),
    (0, "EXEC"),
    // FLUSHDB of another database does not touch it.
    (0, "SET w 1"),
    (0, "WATCH w"),
    (1, "SELECT 5"),
    (1, "FLUSHDB"),
    (1, "SELECT 0"),
    (0, "MULTI"),
    (0, "GET w"),
    (0, "EXEC"),
    // SWAPDB with the watched key's database.
    (0, "WATCH w"),
    (1, "SWAPDB 0 1"),
    (0, "MULTI"),
    (0, "GET w"),
    (0, "EXEC"),
    (1, "SWAPDB 0 1"),
    // MOVE out of the database.
    (0, "WATCH w"),
    (1, "MOVE w 2"),
    (0, "MULTI"),
    (0, "EXISTS w"),
    (0, "EXEC"),
    // UNWATCH forgets.
    (0, "SET w 1"),
    (0, "WATCH w"),
    (0, "UNWATCH"),
    (1, "SET w 2"),
    (0, "MULTI"),
    (0, "GET w"),
    (0, "EXEC"),
    (0, "WATCH w"),
    (0, "MULTI"),
    (0, "WATCH w"),
    (0, "DISCARD"),
];

#[test]
fn watch_fails_exec_exactly_when_redis_does_on_resp3() {
    differential(kv_server().addr, "3", WATCHES);
}

#[test]
fn watch_fails_exec_exactly_when_redis_does_on_resp2() {
    differential(kv_server().addr, "2", WATCHES);
}

/// HELLO 3 AUTH ... SETNAME ... authenticates, names and switches in one
/// step; a failed HELLO changes nothing.
#[test]
fn hello_authenticates_and_switches_protocol_in_one_step() {
    let kv = kv_test_server(Some("pw"));
    let mut c = Raw::connect(kv.addr.port());
    assert!(c.call(&["GET", "k"]).starts_with(b"-NOAUTH"));
    assert!(c
        .call(&["HELLO", "3"])
        .starts_with(b"-NOAUTH HELLO must be called"));
    assert!(c
        .call(&["HELLO", "3", "AUTH", "default", "wrong"])
        .starts_with(b"-WRONGPASS"));
    assert!(c.call(&["HELLO", "4"]).starts_with(b"-NOPROTO"));
    assert_eq!(c.call(&["GET", "k"])[..7], b"-NOAUTH"[..]);
    let hello = c.call(&["HELLO", "3", "AUTH", "default", "pw", "SETNAME", "me"]);
    const PROTO_3: &[u8] = b"$5\r\nproto\r\n:3\r\n";
    assert!(
        hello.starts_with(b"%7\r\n") && hello.windows(PROTO_3.len()).any(|w| w == PROTO_3),
        "{}",
        String::from_utf8_lossy(&hello)
    );
    assert_eq!(c.call(&["GET", "k"]), b"_\r\n");
    assert_eq!(c.call(&["CLIENT", "GETNAME"]), b"$2\r\nme\r\n");
    // HELLO without a version keeps the protocol; RESET goes back to RESP2.
    assert!(c.call(&["HELLO"]).starts_with(b"%7\r\n"));
    assert_eq!(c.call(&["RESET"]), b"+RESET\r\n");
    assert!(c.call(&["GET", "k"]).starts_with(b"-NOAUTH"));
    c.call(&["AUTH", "pw"]);
    assert_eq!(c.call(&["GET", "k"]), b"$-1\r\n");
}

/// A RESP3 subscriber gets messages as push frames between the replies to
/// its own commands, in order.
#[test]
fn a_resp3_subscriber_runs_commands_between_pushes() {
    let kv = kv_server();
    let mut sub = Raw::connect(kv.addr.port());
    let mut publisher = Raw::connect(kv.addr.port());
    sub.call(&["HELLO", "3"]);
    assert_eq!(
        sub.call(&["SUBSCRIBE", "news"]),
        b">3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n"
    );
    assert_eq!(sub.call(&["SET", "k", "v"]), b"+OK\r\n");
    assert_eq!(publisher.call(&["PUBLISH", "news", "one"]), b":1\r\n");
    assert_eq!(
        sub.read(),
        b">3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$3\r\none\r\n"
    );
    assert_eq!(sub.call(&["GET", "k"]), b"$1\r\nv\r\n");
    // A RESP2 subscriber in the same channel still gets arrays and may
    // not run other commands.
    let mut old = Raw::connect(kv.addr.port());
    assert_eq!(
        old.call(&["SUBSCRIBE", "news"]),
        b"*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n"
    );
    assert!(old
        .call(&["GET", "k"])
        .starts_with(b"-ERR Can't execute 'get'"));
    assert_eq!(publisher.call(&["PUBLISH", "news", "two"]), b":2\r\n");
    assert_eq!(
        sub.read(),
        b">3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$3\r\ntwo\r\n"
    );
    assert_eq!(
        old.read(),
        b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$3\r\ntwo\r\n"
    );
}

/// What an admin sees right after CLIENT KILL of a subscriber that stopped
/// reading (megabytes of messages still queued for it): its KILL reply,
/// whether CLIENT LIST still shows the victim, PUBSUB NUMSUB, PUBLISH.
fn kill_a_stuck_subscriber(port: u16) -> Vec<String> {
    let mut admin = Raw::connect(port);
    let mut victim = Raw::connect(port);
    let id = String::from_utf8(victim.call(&["CLIENT", "ID"])).unwrap();
    let id = id.trim_start_matches(':').trim_end().to_string();
    victim.call(&["SUBSCRIBE", "ch"]);
    let payload = "x".repeat(1 << 20);
    for _ in 0..24 {
        assert_eq!(admin.call(&["PUBLISH", "ch", &payload]), b":1\r\n");
    }
    let kill = admin.call(&["CLIENT", "KILL", "ID", &id]);
    let list = String::from_utf8(admin.call(&["CLIENT", "LIST"])).unwrap();
    let listed = list.contains(&format!("id={id} "));
    let numsub = admin.call(&["PUBSUB", "NUMSUB", "ch"]);
    let publish = admin.call(&["PUBLISH", "ch", "after"]);
    [kill, numsub, publish]
        .iter()
        .map(|r| String::from_utf8_lossy(r).into_owned())
        .chain([format!("victim listed: {listed}")])
        .collect()
}

/// A killed client is gone at once, as in Redis, even while its
/// connection is still flushing (or, on TLS, closing): harnesses check
/// CLIENT LIST right after CLIENT KILL (redis-py's does).
#[test]
fn a_killed_client_is_gone_at_once() {
    let kv = kv_server();
    let ours = kill_a_stuck_subscriber(kv.addr.port());
    assert_eq!(
        ours,
        [
            ":1\r\n",
            "*2\r\n$2\r\nch\r\n:0\r\n",
            ":0\r\n",
            "victim listed: false"
        ]
    );
    let real = util::real_redis::RealRedis::start();
    assert_eq!(ours, kill_a_stuck_subscriber(real.addr.port()));
}
