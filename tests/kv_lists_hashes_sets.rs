//! Lists, hashes and sets of the KV example against a real redis-server
//! (Debian's 7.0, the oracle): every command and its error cases, on RESP2
//! and RESP3, WATCH touched by the writes, and hostile counts and indices
//! answered without a panic, an overflow or an allocation by count.
//!
//! Replies whose order Redis leaves to its hash tables (SMEMBERS, HKEYS,
//! HGETALL, the scans...) are compared after sorting; random ones
//! (SRANDMEMBER, HRANDFIELD, SPOP of part of a set) by their shape, and by
//! invariants in their own tests. Without redis-server the comparisons are
//! skipped with a note, except under CI.

mod util;

include!("util/kv_example.rs");

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use util::differential::{assert_same, words, Raw};
use util::real_redis::RealRedis;

/// How a step's replies are compared. A step's command starts with its
/// marker: none (byte for byte), `~` (elements sorted), `~2` (pairs
/// sorted: HGETALL, HRANDFIELD WITHVALUES), `~s` / `~s2` (the element list
/// of a scan reply sorted, by one or by pairs), `?` (only the type and the
/// length: random replies).
#[derive(Clone, Copy, PartialEq, Debug)]
enum Compare {
    Bytes,
    Sorted,
    Pairs,
    Scan,
    ScanPairs,
    Shape,
}

fn marker(step: &str) -> (Compare, &str) {
    for (prefix, how) in [
        ("~s2 ", Compare::ScanPairs),
        ("~s ", Compare::Scan),
        ("~2 ", Compare::Pairs),
        ("~ ", Compare::Sorted),
        ("? ", Compare::Shape),
    ] {
        if let Some(rest) = step.strip_prefix(prefix) {
            return (how, rest);
        }
    }
    (Compare::Bytes, step)
}

/// A parsed reply: its type byte and either its line or its elements.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Resp {
    Line(u8, Vec<u8>),
    Many(u8, Vec<Resp>),
}

fn parse(bytes: &[u8], pos: &mut usize) -> Resp {
    let end = *pos + bytes[*pos..].windows(2).position(|w| w == b"\r\n").unwrap();
    let (kind, head) = (bytes[*pos], bytes[*pos + 1..end].to_vec());
    *pos = end + 2;
    let n = || -> i64 { std::str::from_utf8(&head).unwrap().parse().unwrap() };
    match kind {
        b'$' | b'=' | b'!' if n() >= 0 => {
            let body = bytes[*pos..*pos + n() as usize].to_vec();
            *pos += n() as usize + 2;
            Resp::Line(kind, body)
        }
        b'*' | b'~' | b'>' if n() >= 0 => {
            Resp::Many(kind, (0..n()).map(|_| parse(bytes, pos)).collect())
        }
        b'%' => Resp::Many(kind, (0..2 * n()).map(|_| parse(bytes, pos)).collect()),
        _ => Resp::Line(kind, head),
    }
}

fn sort_by(items: &mut Vec<Resp>, pairs: bool) {
    if !pairs || items.iter().all(|i| matches!(i, Resp::Many(..))) {
        items.sort();
        return;
    }
    let mut chunks: Vec<Vec<Resp>> = items.chunks(2).map(<[Resp]>::to_vec).collect();
    chunks.sort();
    *items = chunks.concat();
}

fn normalise(how: Compare, reply: &[u8]) -> Resp {
    let mut value = parse(reply, &mut 0);
    match (how, &mut value) {
        (Compare::Sorted, Resp::Many(_, items)) => sort_by(items, false),
        (Compare::Pairs, Resp::Many(_, items)) => sort_by(items, true),
        (Compare::Scan | Compare::ScanPairs, Resp::Many(_, items)) if items.len() == 2 => {
            if let Resp::Many(_, inner) = &mut items[1] {
                sort_by(inner, how == Compare::ScanPairs);
            }
        }
        (Compare::Shape, Resp::Many(kind, items)) => {
            return Resp::Line(*kind, items.len().to_string().into_bytes())
        }
        (Compare::Shape, Resp::Line(kind, _)) => return Resp::Line(*kind, Vec::new()),
        _ => {}
    }
    value
}

/// Runs `steps` on a server (three connections, all on `proto`).
fn run(port: u16, proto: &str, steps: &[(usize, &str)]) -> Vec<(String, Resp)> {
    let mut conns: Vec<Raw> = (0..3).map(|_| Raw::connect(port)).collect();
    for c in &mut conns {
        c.call(&["HELLO", proto]);
    }
    let mut out = Vec::new();
    for &(conn, step) in steps {
        let (how, command) = marker(step);
        let reply = conns[conn].call(&words(command));
        out.push((format!("[{conn}] {step}"), normalise(how, &reply)));
    }
    out
}

/// The same steps on kv and on redis-server: every reply must match (after
/// its step's normalisation).
fn compare(kv: SocketAddr, proto: &str, steps: &[(usize, &str)]) {
    let real = RealRedis::start();
    let ours = run(kv.port(), proto, steps);
    let theirs = run(real.addr.port(), proto, steps);
    assert_same(proto, &ours, &theirs, |r| format!("{r:?}"));
}

const LISTS: &[(usize, &str)] = &[
    (0, "FLUSHALL"),
    (0, "SET str v"),
    (0, "LPUSH l a b c"),
    (0, "RPUSH l d e"),
    (0, "LRANGE l 0 -1"),
    (0, "LPUSH str a"),
    (0, "RPUSH str a"),
    (0, "LPUSH l"),
    (0, "LPUSHX nokey a"),
    (0, "RPUSHX nokey a"),
    (0, "EXISTS nokey"),
    (0, "LPUSHX l x y"),
    (0, "RPUSHX l z"),
    (0, "LPUSHX str a"),
    (0, "RPUSHX"),
    (0, "LRANGE l 0 -1"),
    (0, "LLEN l"),
    (0, "LLEN nokey"),
    (0, "LLEN str"),
    (0, "LRANGE l 2 4"),
    (0, "LRANGE l -3 -1"),
    (0, "LRANGE l 5 2"),
    (0, "LRANGE l 100 200"),
    (0, "LRANGE l 0 9223372036854775807"),
    (0, "LRANGE l -9223372036854775808 9223372036854775807"),
    (0, "LRANGE l -9223372036854775808 -9223372036854775808"),
    (0, "LRANGE l x 1"),
    (0, "LRANGE nokey x 1"),
    (0, "LRANGE str 0 1"),
    (0, "LINDEX l 0"),
    (0, "LINDEX l -1"),
    (0, "LINDEX l 100"),
    (0, "LINDEX l -100"),
    (0, "LINDEX l -9223372036854775808"),
    (0, "LINDEX l 9223372036854775807"),
    (0, "LINDEX l x"),
    (0, "LINDEX nokey x"),
    (0, "LINDEX str 0"),
    (0, "LSET l 0 A"),
    (0, "LSET l -1 Z"),
    (0, "LSET l 100 q"),
    (0, "LSET l -9223372036854775808 q"),
    (0, "LSET l x q"),
    (0, "LSET nokey 0 q"),
    (0, "LSET nokey x q"),
    (0, "LSET str 0 q"),
    (0, "LRANGE l 0 -1"),
    (0, "LINSERT l BEFORE c C1"),
    (0, "LINSERT l after c C2"),
    (0, "LINSERT l before missing v"),
    (0, "LINSERT l middle c v"),
    (0, "LINSERT nokey before a b"),
    (0, "LINSERT nokey middle a b"),
    (0, "LINSERT str before a b"),
    (0, "LINSERT l before c"),
    (0, "LRANGE l 0 -1"),
    (0, "RPUSH r a b a c a d a"),
    (0, "LREM r 2 a"),
    (0, "LRANGE r 0 -1"),
    (0, "LREM r -1 a"),
    (0, "LRANGE r 0 -1"),
    (0, "LREM r 0 a"),
    (0, "LRANGE r 0 -1"),
    (0, "LREM r -9223372036854775808 b"),
    (0, "LREM r 9223372036854775807 c"),
    (0, "LREM r x d"),
    (0, "LREM nokey 1 a"),
    (0, "LREM str 1 a"),
    (0, "LREM r 0 d"),
    (0, "EXISTS r"),
    (0, "RPUSH t 1 2 3 4 5 6 7"),
    (0, "LTRIM t 1 -2"),
    (0, "LRANGE t 0 -1"),
    (0, "LTRIM t -9223372036854775808 9223372036854775807"),
    (0, "LRANGE t 0 -1"),
    (0, "LTRIM t 2 1"),
    (0, "EXISTS t"),
    (0, "LTRIM t x 1"),
    (0, "LTRIM nokey 0 1"),
    (0, "LTRIM str 0 1"),
    (0, "RPUSH p a b c a b a"),
    (0, "LPOS p a"),
    (0, "LPOS p a RANK 2"),
    (0, "LPOS p a RANK -1"),
    (0, "LPOS p a RANK -2 COUNT 0"),
    (0, "LPOS p a COUNT 0"),
    (0, "LPOS p a COUNT 2"),
    (0, "LPOS p a COUNT 0 MAXLEN 4"),
    (0, "LPOS p a MAXLEN 0"),
    (0, "LPOS p a MAXLEN 1 RANK 2"),
    (0, "LPOS p z"),
    (0, "LPOS p z COUNT 3"),
    (0, "LPOS p a RANK 0"),
    (0, "LPOS p a RANK x"),
    (0, "LPOS p a RANK -9223372036854775808"),
    (0, "LPOS p a RANK -9223372036854775808 COUNT 1"),
    (0, "LPOS p a RANK -9223372036854775807 COUNT 2"),
    (0, "LPOS p a RANK 9223372036854775807"),
    (0, "LPOS p a COUNT -1"),
    (0, "LPOS p a COUNT x"),
    (0, "LPOS p a MAXLEN -1"),
    (0, "LPOS p a MAXLEN x"),
    (0, "LPOS p a COUNT"),
    (0, "LPOS p a FOO 1"),
    (0, "LPOS nokey a"),
    (0, "LPOS nokey a COUNT 1"),
    (0, "LPOS nokey a RANK 0"),
    (0, "LPOS str a"),
    (0, "LPOS p"),
    (0, "LPOP p"),
    (0, "RPOP p"),
    (0, "LPOP p 2"),
    (0, "RPOP p 0"),
    (0, "RPOP p 9223372036854775807"),
    (0, "EXISTS p"),
    (0, "LPOP p"),
    (0, "LPOP p 1"),
    (0, "LPOP p -1"),
    (0, "LPOP p x"),
    (0, "LPOP l 1 2"),
    (0, "LPOP str"),
    (0, "RPOP str 1"),
    (0, "LPOP"),
    (0, "LINSERT"),
    (0, "LSET l 0"),
    (0, "LREM l 0"),
    (0, "LTRIM l 0"),
    (0, "LINDEX l"),
];

const HASHES: &[(usize, &str)] = &[
    (0, "FLUSHALL"),
    (0, "SET str v"),
    (0, "HSET h a 1 b 2"),
    (0, "HSET h a 10 c 3"),
    (0, "HSET h a"),
    (0, "HSET str a 1"),
    (0, "HMSET h d 4 e 5"),
    (0, "HMSET h d"),
    (0, "HMSET h d 4 e"),
    (0, "HMSET str a 1"),
    (0, "HSETNX h a 100"),
    (0, "HSETNX h f 6"),
    (0, "HSETNX nh a 1"),
    (0, "HSETNX str a 1"),
    (0, "HSETNX h a"),
    (0, "HGET h a"),
    (0, "HGET h nope"),
    (0, "HGET nokey a"),
    (0, "HGET str a"),
    (0, "HMGET h a nope b"),
    (0, "HMGET nokey a b"),
    (0, "HMGET str a"),
    (0, "HGETALL h"),
    (0, "HGETALL nokey"),
    (0, "HGETALL str"),
    (0, "HKEYS h"),
    (0, "HKEYS nokey"),
    (0, "HKEYS str"),
    (0, "HVALS h"),
    (0, "HVALS nokey"),
    (0, "HVALS str"),
    (0, "HLEN h"),
    (0, "HLEN nokey"),
    (0, "HLEN str"),
    (0, "HEXISTS h a"),
    (0, "HEXISTS h nope"),
    (0, "HEXISTS nokey a"),
    (0, "HEXISTS str a"),
    (0, "HSTRLEN h a"),
    (0, "HSTRLEN h nope"),
    (0, "HSTRLEN nokey a"),
    (0, "HSTRLEN str a"),
    (0, "HDEL h a nope"),
    (0, "HDEL nokey a"),
    (0, "HDEL str a"),
    // A small hash keeps its fields in insertion order after a deletion.
    (0, "HGETALL h"),
    (0, "HSET h a 1"),
    (0, "HKEYS h"),
    (0, "HINCRBY h b 5"),
    (0, "HINCRBY h new -3"),
    (0, "HINCRBY h b x"),
    (0, "HINCRBY h b 9223372036854775807"),
    (0, "HSET h s text m 9223372036854775807"),
    (0, "HINCRBY h s 1"),
    (0, "HINCRBY h m 1"),
    (0, "HINCRBY h m -1"),
    (0, "HINCRBY str a 1"),
    (0, "HINCRBY nokey2 a 1"),
    (0, "HINCRBYFLOAT f x 0.1"),
    (0, "HINCRBYFLOAT f x 0.2"),
    (0, "HINCRBYFLOAT f x -0.3"),
    (0, "HINCRBYFLOAT f y 10.5"),
    (0, "HINCRBYFLOAT f y 0.1"),
    (0, "HINCRBYFLOAT f y 5.0e3"),
    (0, "HINCRBYFLOAT f y -5.0e3"),
    (0, "HINCRBYFLOAT f z 0.000003814697265625"),
    (0, "HINCRBYFLOAT f z 0.000000000000000005"),
    (0, "HINCRBYFLOAT f z 1e-20"),
    (0, "HINCRBYFLOAT f big 1e4000"),
    (0, "HINCRBYFLOAT f big 1e4000"),
    (0, "HINCRBYFLOAT f big -1e4000"),
    (0, "HINCRBYFLOAT f big 1e4932"),
    (0, "HINCRBYFLOAT f big 1e4933"),
    (0, "HINCRBYFLOAT f tiny 1e-4940"),
    (0, "HINCRBYFLOAT f tiny 1e-4960"),
    (0, "HINCRBYFLOAT f i 9007199254740993"),
    (0, "HINCRBYFLOAT f i 1"),
    (0, "HINCRBYFLOAT f i 18446744073709551617"),
    (0, "HINCRBYFLOAT f hex 0x1p-3"),
    (0, "HINCRBYFLOAT f hex 0x1.8P1"),
    (0, "HINCRBYFLOAT f hex 0x"),
    (0, "HINCRBYFLOAT f neg -0.0"),
    (0, "HINCRBYFLOAT f neg -1e-30"),
    (0, "HINCRBYFLOAT f neg -3.25"),
    (0, "HINCRBYFLOAT f w 1."),
    (0, "HINCRBYFLOAT f w .5"),
    (0, "HINCRBYFLOAT f w +2"),
    (0, "HINCRBYFLOAT f w inf"),
    (0, "HINCRBYFLOAT f w -infinity"),
    (0, "HINCRBYFLOAT f w nan"),
    (0, "HINCRBYFLOAT f w abc"),
    (0, "HINCRBYFLOAT f w 1e"),
    (0, "HINCRBYFLOAT f w ''"),
    (0, "HINCRBYFLOAT f w 1_0"),
    (0, "HSET f bad text inf inf"),
    (0, "HINCRBYFLOAT f bad 1"),
    (0, "HINCRBYFLOAT f inf 1"),
    (0, "HINCRBYFLOAT str a 1"),
    (0, "HINCRBYFLOAT str a x"),
    (0, "~2 HGETALL f"),
    (0, "HRANDFIELD nokey"),
    (0, "HRANDFIELD nokey 3"),
    (0, "HRANDFIELD nokey 3 WITHVALUES"),
    (0, "HRANDFIELD nokey x"),
    (0, "HRANDFIELD str"),
    (0, "HRANDFIELD str 1"),
    (0, "HSET r a 1 b 2 c 3"),
    (0, "? HRANDFIELD r"),
    (0, "HRANDFIELD r 0"),
    (0, "HRANDFIELD r 0 WITHVALUES"),
    (0, "~ HRANDFIELD r 3"),
    (0, "~ HRANDFIELD r 100"),
    (0, "~2 HRANDFIELD r 3 WITHVALUES"),
    (0, "~ HRANDFIELD r 9223372036854775807"),
    (0, "? HRANDFIELD r 2"),
    (0, "? HRANDFIELD r 2 WITHVALUES"),
    (0, "? HRANDFIELD r -5"),
    (0, "? HRANDFIELD r -5 WITHVALUES"),
    (0, "HRANDFIELD r -9223372036854775808"),
    (0, "HRANDFIELD r -9223372036854775807 WITHVALUES"),
    (0, "HRANDFIELD r 4611686018427387904 WITHVALUES"),
    (0, "HRANDFIELD r 1 WITHVALUE"),
    (0, "HRANDFIELD r 1 WITHVALUES x"),
    (0, "HRANDFIELD r x WITHVALUES"),
    (0, "HSCAN r 0"),
    (0, "~s2 HSCAN r 0 COUNT 1"),
    (0, "HSCAN r 0 MATCH a*"),
    (0, "~s2 HSCAN r 0 MATCH *"),
    (
        0,
        "~s2 HSCAN r 18446744073709551615 COUNT 9223372036854775807",
    ),
    (0, "HSCAN r 0 COUNT 0"),
    (0, "HSCAN r 0 COUNT x"),
    (0, "HSCAN r 0 NOVALUES"),
    (0, "HSCAN r 0 MATCH"),
    (0, "HSCAN r x"),
    (0, "HSCAN r 18446744073709551616"),
    (0, "HSCAN nokey 0 BAD"),
    (0, "HSCAN nokey x"),
    (0, "HSCAN str 0"),
    (0, "HSCAN r"),
];

const SETS: &[(usize, &str)] = &[
    (0, "FLUSHALL"),
    (0, "SET str v"),
    (0, "SADD a 1 2 3 4"),
    (0, "SADD b 3 4 5 x"),
    (0, "SADD c 4 x y"),
    (0, "SADD str 1"),
    (0, "SADD a"),
    (0, "SMEMBERS a"),
    (0, "SMEMBERS nokey"),
    (0, "SMEMBERS str"),
    (0, "SISMEMBER a 1"),
    (0, "SISMEMBER a 9"),
    (0, "SISMEMBER nokey 1"),
    (0, "SISMEMBER str 1"),
    (0, "SMISMEMBER a 1 9 2"),
    (0, "SMISMEMBER nokey 1 2"),
    (0, "SMISMEMBER str 1"),
    (0, "SMISMEMBER a"),
    (0, "SCARD a"),
    (0, "SCARD nokey"),
    (0, "SCARD str"),
    (0, "SINTER a b"),
    (0, "~ SINTER a b c"),
    (0, "SINTER a nokey"),
    (0, "SINTER a nokey str"),
    (0, "SINTER nokey str"),
    (0, "SINTER str a"),
    (0, "SINTER a"),
    (0, "~ SUNION a b c"),
    (0, "~ SUNION a nokey"),
    (0, "SUNION nokey"),
    (0, "SUNION a str"),
    (0, "SDIFF a b"),
    (0, "~ SDIFF a b c"),
    (0, "SDIFF a a"),
    (0, "SDIFF nokey a"),
    (0, "SDIFF a nokey"),
    (0, "SDIFF a str"),
    (0, "SDIFF nokey str"),
    (0, "SINTERSTORE d a b"),
    (0, "~ SMEMBERS d"),
    (0, "SET d2 v"),
    (0, "EXPIRE d2 100"),
    (0, "SUNIONSTORE d2 a b"),
    (0, "TYPE d2"),
    (0, "TTL d2"),
    (0, "~ SMEMBERS d2"),
    (0, "SDIFFSTORE d2 a a"),
    (0, "EXISTS d2"),
    (0, "SINTERSTORE d a nokey"),
    (0, "EXISTS d"),
    (0, "SINTERSTORE d a str"),
    (0, "SUNIONSTORE d nokey"),
    (0, "SDIFFSTORE d a b c"),
    (0, "~ SMEMBERS d"),
    (0, "SDIFFSTORE str a"),
    (0, "TYPE str"),
    (0, "SET str v"),
    (0, "SINTERSTORE d"),
    (0, "SINTERCARD 2 a b"),
    (0, "SINTERCARD 3 a b c"),
    (0, "SINTERCARD 2 a b LIMIT 1"),
    (0, "SINTERCARD 2 a b LIMIT 0"),
    (0, "SINTERCARD 2 a b limit 9223372036854775807"),
    (0, "SINTERCARD 2 a nokey"),
    (0, "SINTERCARD 2 a str"),
    (0, "SINTERCARD 0 a"),
    (0, "SINTERCARD -1 a"),
    (0, "SINTERCARD x a"),
    (0, "SINTERCARD 3 a b"),
    (0, "SINTERCARD 9223372036854775807 a"),
    (0, "SINTERCARD 1 a LIMIT"),
    (0, "SINTERCARD 1 a LIMIT -1"),
    (0, "SINTERCARD 1 a LIMIT x"),
    (0, "SINTERCARD 1 a FOO 1"),
    (0, "SINTERCARD 1"),
    (0, "SMOVE a b 1"),
    (0, "SMOVE a b 9"),
    (0, "SMOVE a a 2"),
    (0, "SMOVE a a 9"),
    (0, "SMOVE nokey b 1"),
    (0, "SMOVE nokey str 1"),
    (0, "SMOVE a str 2"),
    (0, "SMOVE str a 2"),
    (0, "SMOVE a new 2"),
    (0, "~ SMEMBERS new"),
    (0, "SADD one only"),
    (0, "SMOVE one new only"),
    (0, "EXISTS one"),
    (0, "SMOVE a b"),
    (0, "SRANDMEMBER nokey"),
    (0, "SRANDMEMBER nokey 3"),
    (0, "SRANDMEMBER nokey x"),
    (0, "SRANDMEMBER str"),
    (0, "SRANDMEMBER str 1"),
    (0, "? SRANDMEMBER a"),
    (0, "SRANDMEMBER a 0"),
    (0, "~ SRANDMEMBER a 2"),
    (0, "SRANDMEMBER a 100"),
    (0, "~ SRANDMEMBER a 9223372036854775807"),
    (0, "? SRANDMEMBER b 2"),
    (0, "? SRANDMEMBER a -7"),
    (0, "SRANDMEMBER a -9223372036854775808"),
    (0, "SRANDMEMBER a x"),
    (0, "SRANDMEMBER a 1 2"),
    (0, "~s SSCAN b 0"),
    (0, "SSCAN a 0 COUNT 1"),
    (0, "SSCAN a 0 MATCH 1*"),
    (0, "~s SSCAN b 0 MATCH x"),
    (0, "~s SSCAN a 99 COUNT 9223372036854775807"),
    (0, "SSCAN a 0 COUNT 0"),
    (0, "SSCAN a 0 NOVALUES"),
    (0, "SSCAN a 0 TYPE set"),
    (0, "SSCAN a -1"),
    (0, "SSCAN a x"),
    (0, "SSCAN nokey 0 BAD"),
    (0, "SSCAN nokey x"),
    (0, "SSCAN str 0"),
    (0, "SADD sp m1 m2 m3"),
    (0, "SPOP nokey"),
    (0, "SPOP nokey 2"),
    (0, "SPOP sp 0"),
    (0, "SPOP sp -1"),
    (0, "SPOP sp x"),
    (0, "SPOP sp 1 2"),
    (0, "SPOP str"),
    (0, "SPOP str 1"),
    (0, "? SPOP sp 1"),
    (0, "SCARD sp"),
    (0, "? SPOP sp 9223372036854775807"),
    (0, "EXISTS sp"),
    (0, "SADD sp only"),
    (0, "SPOP sp"),
    (0, "EXISTS sp"),
    (0, "SREM a 2 9"),
    (0, "SREM nokey 1"),
    (0, "SREM str 1"),
    (0, "SREM a 3 4 x"),
    (0, "EXISTS a"),
];

/// WATCH is touched by every write of these types, including an empty
/// *STORE result deleting the destination, and not by reads.
const WATCHES: &[(usize, &str)] = &[
    (0, "FLUSHALL"),
    (0, "RPUSH l a b c"),
    (0, "HSET h f 1"),
    (0, "SADD s a b"),
    (0, "SADD d x"),
    (0, "WATCH l h s"),
    (1, "LRANGE l 0 -1"),
    (1, "LPOS l a"),
    (1, "HGET h f"),
    (1, "~ HKEYS h"),
    (1, "SISMEMBER s a"),
    (1, "~ SINTER s s"),
    (1, "SINTERCARD 1 s"),
    (0, "MULTI"),
    (0, "LLEN l"),
    (0, "EXEC"),
    (0, "WATCH l"),
    (1, "LSET l 0 z"),
    (0, "MULTI"),
    (0, "LLEN l"),
    (0, "EXEC"),
    (0, "WATCH l"),
    (1, "LTRIM l 0 0"),
    (0, "MULTI"),
    (0, "LLEN l"),
    (0, "EXEC"),
    (0, "WATCH l"),
    (1, "LINSERT l before z y"),
    (0, "MULTI"),
    (0, "LLEN l"),
    (0, "EXEC"),
    (0, "WATCH l"),
    (1, "LREM l 1 y"),
    (0, "MULTI"),
    (0, "LLEN l"),
    (0, "EXEC"),
    (0, "WATCH l"),
    (1, "RPUSHX l q"),
    (0, "MULTI"),
    (0, "LLEN l"),
    (0, "EXEC"),
    (0, "WATCH h"),
    (1, "HINCRBYFLOAT h f 1.5"),
    (0, "MULTI"),
    (0, "HGET h f"),
    (0, "EXEC"),
    (0, "WATCH h"),
    (1, "HSETNX h g 1"),
    (0, "MULTI"),
    (0, "HLEN h"),
    (0, "EXEC"),
    (0, "WATCH h"),
    (1, "HMSET h f 2"),
    (0, "MULTI"),
    (0, "HGET h f"),
    (0, "EXEC"),
    (0, "WATCH s d"),
    (1, "SMOVE s d a"),
    (0, "MULTI"),
    (0, "SCARD s"),
    (0, "EXEC"),
    (0, "WATCH d"),
    (1, "SINTERSTORE d s nokey"),
    (0, "MULTI"),
    (0, "EXISTS d"),
    (0, "EXEC"),
    (0, "SADD d x"),
    (0, "WATCH d"),
    (1, "SUNIONSTORE d s"),
    (0, "MULTI"),
    (0, "SCARD d"),
    (0, "EXEC"),
    (0, "WATCH d"),
    (1, "SDIFFSTORE d d s"),
    (0, "MULTI"),
    (0, "SCARD d"),
    (0, "EXEC"),
    (0, "WATCH s"),
    (1, "SPOP s"),
    (0, "MULTI"),
    (0, "EXISTS s"),
    (0, "EXEC"),
];

fn kv() -> util::TestServer<()> {
    kv_test_server(None)
}

#[test]
fn lists_match_redis_on_resp2() {
    compare(kv().addr, "2", LISTS);
}

#[test]
fn lists_match_redis_on_resp3() {
    compare(kv().addr, "3", LISTS);
}

#[test]
fn hashes_match_redis_on_resp2() {
    compare(kv().addr, "2", HASHES);
}

#[test]
fn hashes_match_redis_on_resp3() {
    compare(kv().addr, "3", HASHES);
}

#[test]
fn sets_match_redis_on_resp2() {
    compare(kv().addr, "2", SETS);
}

#[test]
fn sets_match_redis_on_resp3() {
    compare(kv().addr, "3", SETS);
}

#[test]
fn writes_touch_watched_keys_as_redis_does_on_resp2() {
    compare(kv().addr, "2", WATCHES);
}

#[test]
fn writes_touch_watched_keys_as_redis_does_on_resp3() {
    compare(kv().addr, "3", WATCHES);
}

/// Floats near the limits of Redis's 5 KiB argument and of long double's
/// range: long digit strings that overflow, underflow or just fit.
#[test]
fn long_float_arguments_match_redis() {
    let ones = "1".repeat(5119);
    let too_long = "1".repeat(5120);
    let tiny = format!("0.{}1", "0".repeat(4940));
    let too_tiny = format!("0.{}1", "0".repeat(5000));
    let precise = format!("1.{}", "3".repeat(5000));
    let huge = format!("{}.5", "9".repeat(4000));
    let commands: Vec<String> = [&ones, &too_long, &tiny, &too_tiny, &precise, &huge]
        .iter()
        .flat_map(|arg| {
            [
                format!("HINCRBYFLOAT f x {arg}"),
                format!("HSET f v {arg}"),
                "HINCRBYFLOAT f v 0".to_string(),
            ]
        })
        .collect();
    let mut steps: Vec<(usize, &str)> = vec![(0, "FLUSHALL")];
    steps.extend(commands.iter().map(|c| (0, c.as_str())));
    for proto in ["2", "3"] {
        compare(kv().addr, proto, &steps);
    }
}

/// HINCRBYFLOAT on random decimals (random digits, points and exponents,
/// fixed seed): long double arithmetic and printing as Redis's, sum by sum.
#[test]
fn random_float_increments_match_redis() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::SmallRng::seed_from_u64(14);
    let mut commands = Vec::new();
    for i in 0..1000 {
        let digits: String = (0..rng.random_range(1..25))
            .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
            .collect();
        let point = rng.random_range(0..=digits.len());
        let sign = if rng.random_bool(0.3) { "-" } else { "" };
        let mut number = format!("{sign}{}.{}", &digits[..point], &digits[point..]);
        if rng.random_bool(0.1) {
            // Near the ends of long double's range: denormals, overflow.
            number.push_str(&format!("e{}", rng.random_range(-4975..4950)));
        } else if rng.random_bool(0.4) {
            number.push_str(&format!("e{}", rng.random_range(-40..40)));
        }
        commands.push(format!("HINCRBYFLOAT f k{} {number}", i % 7));
    }
    let mut steps: Vec<(usize, &str)> = vec![(0, "FLUSHALL")];
    steps.extend(commands.iter().map(|c| (0, c.as_str())));
    compare(kv().addr, "2", &steps);
}

fn call(conn: &mut Raw, args: &[&str]) -> Resp {
    parse(&conn.call(args), &mut 0)
}

fn bulks(reply: &Resp) -> Vec<Vec<u8>> {
    match reply {
        Resp::Many(_, items) => items
            .iter()
            .map(|i| match i {
                Resp::Line(b'$', bytes) => bytes.clone(),
                other => panic!("not a bulk: {other:?}"),
            })
            .collect(),
        other => panic!("not an aggregate: {other:?}"),
    }
}

/// The servers to check invariants on: kv, and redis-server (so the
/// invariants are Redis's, not only kv's).
fn servers(kv: SocketAddr) -> (RealRedis, Vec<u16>) {
    let real = RealRedis::start();
    let ports = vec![kv.port(), real.addr.port()];
    (real, ports)
}

/// Random replies: the right number of members, all from the collection,
/// distinct for a positive count, and SPOP removes what it returns.
#[test]
fn random_members_keep_redis_s_invariants() {
    let server = kv();
    let (_real, ports) = servers(server.addr);
    let members: Vec<String> = (0..10).map(|i| format!("m{i}")).collect();
    let all: BTreeSet<Vec<u8>> = members.iter().map(|m| m.as_bytes().to_vec()).collect();
    for port in ports {
        for proto in ["2", "3"] {
            let mut c = Raw::connect(port);
            c.call(&["HELLO", proto]);
            c.call(&["FLUSHALL"]);
            let mut sadd = vec!["SADD", "s"];
            sadd.extend(members.iter().map(String::as_str));
            c.call(&sadd);
            let mut hset = vec!["HSET", "h"];
            for m in &members {
                hset.extend([m.as_str(), m.as_str()]);
            }
            c.call(&hset);

            let picked = bulks(&call(&mut c, &["SRANDMEMBER", "s", "5"]));
            let distinct: BTreeSet<Vec<u8>> = picked.iter().cloned().collect();
            assert_eq!((picked.len(), distinct.len()), (5, 5), "port {port}");
            assert!(distinct.is_subset(&all));
            let repeated = bulks(&call(&mut c, &["SRANDMEMBER", "s", "-25"]));
            assert_eq!(repeated.len(), 25);
            assert!(repeated.iter().all(|m| all.contains(m)));

            let popped = bulks(&call(&mut c, &["SPOP", "s", "3"]));
            let popped_set: BTreeSet<Vec<u8>> = popped.iter().cloned().collect();
            assert_eq!(popped_set.len(), 3);
            assert!(popped_set.is_subset(&all));
            let left: BTreeSet<Vec<u8>> = bulks(&call(&mut c, &["SMEMBERS", "s"]))
                .into_iter()
                .collect();
            assert_eq!(left.len(), 7);
            assert!(left.is_disjoint(&popped_set));

            let fields = bulks(&call(&mut c, &["HRANDFIELD", "h", "4"]));
            assert_eq!(fields.iter().collect::<BTreeSet<_>>().len(), 4);
            for (count, want) in [("3", 3), ("-12", 12)] {
                let reply = call(&mut c, &["HRANDFIELD", "h", count, "WITHVALUES"]);
                let pairs: Vec<(Vec<u8>, Vec<u8>)> = match (&reply, proto) {
                    (Resp::Many(b'*', items), "3") => items
                        .iter()
                        .map(|pair| {
                            let b = bulks(pair);
                            (b[0].clone(), b[1].clone())
                        })
                        .collect(),
                    _ => bulks(&reply)
                        .chunks(2)
                        .map(|p| (p[0].clone(), p[1].clone()))
                        .collect(),
                };
                assert_eq!(pairs.len(), want, "{reply:?}");
                // Each field came with its own value.
                assert!(pairs.iter().all(|(f, v)| f == v && all.contains(f)));
            }
        }
    }
}

/// A full SSCAN/HSCAN iteration of collections too big to answer at once
/// returns every member, whatever COUNT, ends at cursor 0, and still
/// returns the members that stay while others are added and removed
/// (removals move members inside kv's sets and hashes: the walk must not
/// lose them).
#[test]
fn scans_of_large_collections_return_every_member() {
    let server = kv();
    let (_real, ports) = servers(server.addr);
    for port in ports {
        let mut c = Raw::connect(port);
        c.call(&["FLUSHALL"]);
        let words: Vec<String> = (0..1000).map(|i| format!("member:{i}")).collect();
        let numbers: Vec<String> = (0..600).map(|i| i.to_string()).collect();
        let mut sadd = vec!["SADD", "words"];
        sadd.extend(words.iter().map(String::as_str));
        c.call(&sadd);
        let mut sadd = vec!["SADD", "numbers"];
        sadd.extend(numbers.iter().map(String::as_str));
        c.call(&sadd);
        let mut hset = vec!["HSET", "hash"];
        for w in &words[..600] {
            hset.extend([w.as_str(), "v"]);
        }
        c.call(&hset);

        for (command, key, expected, count) in [
            ("SSCAN", "words", &words[..], "7"),
            ("SSCAN", "numbers", &numbers[..], "50"),
            ("HSCAN", "hash", &words[..600], "10"),
        ] {
            let mut seen = BTreeSet::new();
            let mut removed = BTreeSet::new();
            let mut cursor = "0".to_string();
            let mut calls = 0;
            loop {
                calls += 1;
                assert!(calls < 10_000, "{command} {key} never ended");
                // Churn between calls: a member added, the one added
                // before removed, and one of the original members removed
                // (members move inside the collection as others go).
                let (add, remove) = if command == "SSCAN" {
                    ("SADD", "SREM")
                } else {
                    ("HSET", "HDEL")
                };
                let extra = format!("extra:{calls}");
                let mut adding = vec![add, key, &extra];
                if command == "HSCAN" {
                    adding.push("v");
                }
                c.call(&adding);
                c.call(&[remove, key, &format!("extra:{}", calls - 1)]);
                if calls % 3 == 0 {
                    let victim = &expected[(calls * 37) % expected.len()];
                    c.call(&[remove, key, victim]);
                    removed.insert(victim.as_bytes().to_vec());
                }
                let (next, names) = scan_page(&mut c, command, key, &cursor, count);
                seen.extend(names);
                cursor = next;
                if cursor == "0" {
                    break;
                }
            }
            for member in expected {
                assert!(
                    seen.contains(member.as_bytes()) || removed.contains(member.as_bytes()),
                    "port {port}: {command} {key} missed {member}"
                );
            }
            assert!(!removed.is_empty());
            assert!(calls > 1, "port {port}: {command} {key} came in one reply");
        }
    }
}

/// One SSCAN/HSCAN/ZSCAN call: the next cursor, and the members (or
/// fields) of the page, without HSCAN's values or ZSCAN's scores.
fn scan_page(
    c: &mut Raw,
    command: &str,
    key: &str,
    cursor: &str,
    count: &str,
) -> (String, Vec<Vec<u8>>) {
    let reply = call(c, &[command, key, cursor, "COUNT", count]);
    let Resp::Many(_, parts) = &reply else {
        panic!("{reply:?}")
    };
    let Resp::Line(b'$', next) = &parts[0] else {
        panic!("{reply:?}")
    };
    let step = if command == "SSCAN" { 1 } else { 2 };
    let names = bulks(&parts[1]).into_iter().step_by(step).collect();
    (String::from_utf8(next.clone()).unwrap(), names)
}

/// A scan across a command that replaces the scanned key with the same
/// members in another order (SINTERSTORE and ZUNIONSTORE into one of their
/// sources, COPY ... REPLACE onto it) still returns every member: kv's
/// cursor names the collection, and one from the replaced collection
/// starts the walk over rather than resuming at a position that now holds
/// other members. Checked on redis-server too.
#[test]
fn a_scan_across_a_rebuild_of_its_key_returns_every_member() {
    let server = kv();
    let (_real, ports) = servers(server.addr);
    let members: Vec<String> = (0..1000).map(|i| format!("member:{i}")).collect();
    for port in ports {
        let mut c = Raw::connect(port);
        c.call(&["FLUSHALL"]);
        let (mut sadd_s, mut sadd_t) = (vec!["SADD", "s"], vec!["SADD", "t"]);
        let (mut zadd, mut hset_h, mut hset_g) =
            (vec!["ZADD", "z"], vec!["HSET", "h"], vec!["HSET", "g"]);
        for (i, m) in members.iter().enumerate() {
            sadd_s.push(m);
            sadd_t.push(&members[members.len() - 1 - i]);
            zadd.extend(["1", m.as_str()]);
            hset_h.extend([m.as_str(), "v"]);
            hset_g.extend([members[members.len() - 1 - i].as_str(), "v"]);
        }
        for add in [&sadd_s, &sadd_t, &zadd, &hset_h, &hset_g] {
            c.call(add);
        }
        for (command, key, rebuild, rebuilt) in [
            ("SSCAN", "s", vec!["SINTERSTORE", "s", "t", "s"], ":1000"),
            ("ZSCAN", "z", vec!["ZUNIONSTORE", "z", "1", "z"], ":1000"),
            ("HSCAN", "h", vec!["COPY", "g", "h", "REPLACE"], ":1"),
        ] {
            let mut seen = BTreeSet::new();
            let mut cursor = "0".to_string();
            let mut calls = 0;
            loop {
                calls += 1;
                assert!(calls < 10_000, "{command} never ended");
                if calls == 10 {
                    let reply = c.call(&rebuild);
                    assert_eq!(reply, format!("{rebuilt}\r\n").into_bytes(), "{rebuild:?}");
                }
                let (next, names) = scan_page(&mut c, command, key, &cursor, "20");
                seen.extend(names);
                cursor = next;
                if cursor == "0" {
                    break;
                }
            }
            assert!(
                calls > 10,
                "port {port}: {command} ended before the rebuild"
            );
            let missed = members
                .iter()
                .filter(|m| !seen.contains(m.as_bytes()))
                .count();
            assert_eq!(missed, 0, "port {port}: {command} across {rebuild:?}");
        }
    }
}

/// Counts and indices at the ends of i64 on large collections: answered
/// at once, nothing allocated by the count, and the server still answers.
/// (Redis itself tries to build a reply of |count| members for the
/// negative counts below and never answers: kv refuses them.)
#[test]
fn hostile_counts_are_answered_without_allocating_by_count() {
    let server = kv();
    let mut c = Raw::connect(server.addr.port());
    let started = Instant::now();
    let items: Vec<String> = (0..2000).map(|i| i.to_string()).collect();
    for key in ["l", "s"] {
        let mut add = vec![if key == "l" { "RPUSH" } else { "SADD" }, key];
        add.extend(items.iter().map(String::as_str));
        c.call(&add);
    }
    let mut hset = vec!["HSET", "h"];
    for i in &items {
        hset.extend([i.as_str(), i.as_str()]);
    }
    c.call(&hset);
    let min = "-9223372036854775808";
    let max = "9223372036854775807";
    let near_min = "-9223372036854775807";
    let refused = b"-ERR reply would exceed the client output buffer limit\r\n".to_vec();
    for (args, want) in [
        (vec!["SRANDMEMBER", "s", near_min], Some(refused.clone())),
        (vec!["HRANDFIELD", "h", near_min], Some(refused.clone())),
        (
            vec!["HRANDFIELD", "h", "-4611686018427387903", "WITHVALUES"],
            Some(refused.clone()),
        ),
        (
            vec!["SRANDMEMBER", "s", "-100000000"],
            Some(refused.clone()),
        ),
        (vec!["SRANDMEMBER", "s", min], None),
        (vec!["HRANDFIELD", "h", min, "WITHVALUES"], None),
        (vec!["SRANDMEMBER", "s", max], None),
        (vec!["HRANDFIELD", "h", max], None),
        (vec!["LRANGE", "l", min, max], None),
        (vec!["LPOS", "l", "1999", "RANK", min, "COUNT", max], None),
        (vec!["LPOS", "l", "7", "MAXLEN", max, "COUNT", "0"], None),
        (vec!["LTRIM", "l", min, max], None),
        (vec!["LREM", "l", min, "nothing"], None),
        (vec!["LINSERT", "l", "BEFORE", "missing", "x"], None),
        (vec!["SINTERCARD", max, "s"], None),
        (vec!["SINTERCARD", "1", "s", "LIMIT", max], None),
        (
            vec!["SSCAN", "s", "18446744073709551615", "COUNT", max],
            None,
        ),
        (vec!["HSCAN", "h", "0", "COUNT", max], None),
        (vec!["HINCRBY", "h", "1", max], None),
        (vec!["HINCRBYFLOAT", "h", "1", "1e4932"], None),
        (vec!["SPOP", "s", max], None),
        (vec!["LPOP", "l", max], None),
    ] {
        let reply = c.call(&args);
        if let Some(want) = want {
            assert_eq!(
                String::from_utf8_lossy(&reply),
                String::from_utf8_lossy(&want),
                "{args:?}"
            );
        }
    }
    // Few picks of a large member: refused by the members' size, before
    // any is copied.
    let large = "x".repeat(1 << 20);
    c.call(&["SADD", "large", &large]);
    c.call(&["HSET", "large-hash", "f", &large]);
    for args in [
        vec!["SRANDMEMBER", "large", "-1000"],
        vec!["HRANDFIELD", "large-hash", "-1000", "WITHVALUES"],
    ] {
        assert_eq!(c.call(&args), refused, "{args:?}");
    }
    // A negative count whose reply fits is served in full.
    c.call(&["SADD", "one", "x"]);
    let reply = call(&mut c, &["SRANDMEMBER", "one", "-100000"]);
    assert_eq!(bulks(&reply).len(), 100_000);
    assert_eq!(c.call(&["PING"]), b"+PONG\r\n");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
}
