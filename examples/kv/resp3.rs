//! Replies per protocol: RESP3's types (maps, sets, doubles, null,
//! booleans, big numbers, verbatim strings, push) and their RESP2 forms.
//!
//! The codec on the IO threads is stateless about the protocol: a
//! connection's HELLO runs on the main loop, so the main loop shapes each
//! reply for its connection's protocol before sending (`for_client`), and
//! the codec encodes whatever variant it gets. A RESP2 connection gets
//! exactly the replies it always got: commands build RESP2-shaped replies,
//! and only RESP3 connections have them reshaped (`shape`) the way Redis 7
//! types them.

use crate::protocol::Reply;

/// Encodes the RESP3-only variants; `encode` is the codec's encoder, for
/// the elements.
pub fn encode(reply: &Reply, dst: &mut Vec<u8>, encode: fn(&Reply, &mut Vec<u8>)) {
    let mut itoa = itoa::Buffer::new();
    let mut header = |dst: &mut Vec<u8>, prefix: u8, n: usize| {
        dst.push(prefix);
        dst.extend_from_slice(itoa.format(n).as_bytes());
        dst.extend_from_slice(b"\r\n");
    };
    match reply {
        Reply::Map(pairs) => {
            header(dst, b'%', pairs.len());
            for (k, v) in pairs {
                encode(k, dst);
                encode(v, dst);
            }
        }
        Reply::Set(items) | Reply::Push(items) => {
            let prefix = if matches!(reply, Reply::Set(_)) {
                b'~'
            } else {
                b'>'
            };
            header(dst, prefix, items.len());
            for item in items {
                encode(item, dst);
            }
        }
        Reply::Double(text) => line(dst, b',', text),
        Reply::Null => dst.extend_from_slice(b"_\r\n"),
        Reply::Bool(b) => dst.extend_from_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
        Reply::BigNumber(digits) => line(dst, b'(', digits.as_bytes()),
        Reply::Verbatim(text) => {
            header(dst, b'=', text.len() + 4);
            dst.extend_from_slice(b"txt:");
            dst.extend_from_slice(text);
            dst.extend_from_slice(b"\r\n");
        }
        Reply::Raw(bytes) => dst.extend_from_slice(bytes),
        // The RESP2 variants are the codec's.
        other => encode(other, dst),
    }
}

fn line(dst: &mut Vec<u8>, prefix: u8, text: &[u8]) {
    dst.push(prefix);
    dst.extend_from_slice(text);
    dst.extend_from_slice(b"\r\n");
}

fn header_len(n: usize) -> usize {
    1 + n.checked_ilog10().map_or(1, |d| d as usize + 1) + 2
}

/// The encoded size of the RESP3-only variants (`len` measures elements).
pub fn encoded_len(reply: &Reply, len: fn(&Reply) -> usize) -> usize {
    match reply {
        Reply::Map(pairs) => {
            header_len(pairs.len()) + pairs.iter().map(|(k, v)| len(k) + len(v)).sum::<usize>()
        }
        Reply::Set(items) | Reply::Push(items) => {
            header_len(items.len()) + items.iter().map(len).sum::<usize>()
        }
        Reply::Double(text) => text.len() + 3,
        Reply::Null => 3,
        Reply::Bool(_) => 4,
        Reply::BigNumber(digits) => digits.len() + 3,
        Reply::Verbatim(text) => header_len(text.len() + 4) + 4 + text.len() + 2,
        Reply::Raw(bytes) => bytes.len(),
        other => len(other),
    }
}

/// `reply` in the wire types of protocol `proto` (2 or 3): RESP3-only
/// types become their RESP2 forms on RESP2 (as Redis's `addReply*` do),
/// and RESP2's two nulls become `_` on RESP3.
pub fn adapt(reply: Reply, proto: u8) -> Reply {
    let v3 = proto >= 3;
    match reply {
        // The common replies: nothing to do in either protocol.
        Reply::Ok
        | Reply::Status(_)
        | Reply::Error(_)
        | Reply::Int(_)
        | Reply::Bulk(_)
        | Reply::Stored(_)
        | Reply::Raw(_) => reply,
        Reply::Nil | Reply::NilArray if v3 => Reply::Null,
        Reply::Nil | Reply::NilArray => reply,
        Reply::Null if v3 => Reply::Null,
        Reply::Null => Reply::Nil,
        Reply::Array(items) => Reply::Array(adapt_all(items, proto)),
        Reply::Map(pairs) if v3 => Reply::Map(
            pairs
                .into_iter()
                .map(|(k, v)| (adapt(k, proto), adapt(v, proto)))
                .collect(),
        ),
        Reply::Map(pairs) => Reply::Array(
            pairs
                .into_iter()
                .flat_map(|(k, v)| [adapt(k, proto), adapt(v, proto)])
                .collect(),
        ),
        Reply::Set(items) if v3 => Reply::Set(adapt_all(items, proto)),
        Reply::Set(items) => Reply::Array(adapt_all(items, proto)),
        Reply::Push(items) if v3 => Reply::Push(adapt_all(items, proto)),
        Reply::Push(items) => Reply::Array(adapt_all(items, proto)),
        Reply::Double(text) if !v3 => Reply::Bulk(text),
        Reply::Bool(b) if !v3 => Reply::Int(i64::from(b)),
        Reply::BigNumber(digits) if !v3 => Reply::Bulk(digits.into_bytes()),
        Reply::Verbatim(text) if !v3 => Reply::Bulk(text),
        other => other,
    }
}

fn adapt_all(items: Vec<Reply>, proto: u8) -> Vec<Reply> {
    items.into_iter().map(|r| adapt(r, proto)).collect()
}

/// A RESP2-shaped reply of command `name` (lowercase) with `args`, in the
/// types Redis 7 uses for it on RESP3: HGETALL and CONFIG GET are maps,
/// SMEMBERS and SPOP with a count are sets, scores are doubles (and
/// WITHSCORES lists become [member, score] pairs), INFO and CLIENT
/// INFO/LIST are verbatim text. Errors and nulls pass through.
pub fn shape(name: &str, args: &[Vec<u8>], reply: Reply) -> Reply {
    let sub = |i: usize, want: &str| {
        args.get(i)
            .is_some_and(|a| a.eq_ignore_ascii_case(want.as_bytes()))
    };
    match (name, reply) {
        ("hgetall", Reply::Array(items)) => Reply::Map(pairs(items)),
        ("config", Reply::Array(items)) if sub(0, "get") => Reply::Map(pairs(items)),
        ("smembers" | "sinter" | "sunion" | "sdiff", Reply::Array(items)) => Reply::Set(items),
        ("spop", Reply::Array(items)) if args.len() > 1 => Reply::Set(items),
        ("hrandfield", Reply::Array(items)) if args.len() > 2 => Reply::Array(
            pairs(items)
                .into_iter()
                .map(|(field, value)| Reply::Array(vec![field, value]))
                .collect(),
        ),
        ("zscore" | "zincrby", Reply::Bulk(score)) => Reply::Double(score),
        ("zadd", Reply::Bulk(score)) => Reply::Double(score),
        (name, Reply::Array(items)) if zset_pairs(name, args) => Reply::Array(scored_pairs(items)),
        ("zpopmin" | "zpopmax", Reply::Array(mut items)) if items.len() == 2 => {
            match items.pop() {
                Some(Reply::Bulk(score)) => items.push(Reply::Double(score)),
                Some(other) => items.push(other),
                None => {}
            }
            Reply::Array(items)
        }
        ("info", Reply::Bulk(text)) => Reply::Verbatim(text),
        ("client", Reply::Bulk(text)) if sub(0, "info") || sub(0, "list") => Reply::Verbatim(text),
        (_, reply) => reply,
    }
}

/// Whether the RESP2 reply of `name` with `args` is a flat
/// member, score, member, score... list that RESP3 nests into pairs.
fn zset_pairs(name: &str, args: &[Vec<u8>]) -> bool {
    let is = |a: &Vec<u8>| a.eq_ignore_ascii_case(b"withscores");
    match name {
        // Options start after key, min, max; LIMIT's values are integers.
        "zrange" | "zrangebyscore" | "zrevrangebyscore" | "zrevrange" => {
            args.iter().skip(3).any(is)
        }
        "zunion" | "zinter" | "zdiff" => {
            let keys = args
                .first()
                .and_then(|n| crate::protocol::string2ll(n))
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(0);
            args.iter().skip(keys.saturating_add(1)).any(is)
        }
        "zrandmember" => args.len() == 3 && is(&args[2]),
        "zpopmin" | "zpopmax" => args.len() > 1,
        _ => false,
    }
}

fn pairs(items: Vec<Reply>) -> Vec<(Reply, Reply)> {
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    out
}

/// `[m1, s1, m2, s2, ...]` (scores as bulks) into `[[m1, s1], ...]` with
/// double scores.
fn scored_pairs(items: Vec<Reply>) -> Vec<Reply> {
    pairs(items)
        .into_iter()
        .map(|(member, score)| {
            let score = match score {
                Reply::Bulk(text) => Reply::Double(text),
                other => other,
            };
            Reply::Array(vec![member, score])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(reply: Reply, proto: u8) -> Vec<u8> {
        use baton::Codec;
        let reply = adapt(reply, proto);
        let mut out = Vec::new();
        let mut codec = crate::protocol::Resp::new(1 << 20);
        codec.encode(reply.clone(), &mut out);
        assert_eq!(
            out.len(),
            <crate::protocol::Resp as Codec>::encoded_len(&reply),
            "{reply:?}"
        );
        out
    }

    #[test]
    fn resp3_types_encode_as_the_spec_says_and_fall_back_on_resp2() {
        let map = || {
            Reply::Map(vec![(
                Reply::bulk(b"a".to_vec()),
                Reply::Set(vec![Reply::Double(b"1.5".to_vec()), Reply::Nil]),
            )])
        };
        assert_eq!(wire(map(), 3), b"%1\r\n$1\r\na\r\n~2\r\n,1.5\r\n_\r\n");
        assert_eq!(
            wire(map(), 2),
            b"*2\r\n$1\r\na\r\n*2\r\n$3\r\n1.5\r\n$-1\r\n"
        );
        assert_eq!(wire(Reply::Bool(true), 3), b"#t\r\n");
        assert_eq!(wire(Reply::Bool(false), 2), b":0\r\n");
        assert_eq!(wire(Reply::BigNumber("123".into()), 3), b"(123\r\n");
        assert_eq!(wire(Reply::BigNumber("123".into()), 2), b"$3\r\n123\r\n");
        assert_eq!(
            wire(Reply::Verbatim(b"hi".to_vec()), 3),
            b"=6\r\ntxt:hi\r\n"
        );
        assert_eq!(wire(Reply::Verbatim(b"hi".to_vec()), 2), b"$2\r\nhi\r\n");
        let push = || Reply::Push(vec![Reply::Int(1), Reply::NilArray]);
        assert_eq!(wire(push(), 3), b">2\r\n:1\r\n_\r\n");
        assert_eq!(wire(push(), 2), b"*2\r\n:1\r\n*-1\r\n");
        assert_eq!(wire(Reply::Null, 2), b"$-1\r\n");
        assert_eq!(wire(Reply::Raw(b"+X\r\n"), 3), b"+X\r\n");
    }

    #[test]
    fn shaping_follows_redis_7_on_resp3() {
        let b = |s: &str| Reply::bulk(s.as_bytes().to_vec());
        let args = |a: &[&str]| a.iter().map(|s| s.as_bytes().to_vec()).collect::<Vec<_>>();
        assert_eq!(
            shape(
                "zrange",
                &args(&["z", "0", "-1", "WITHSCORES"]),
                Reply::Array(vec![b("a"), b("1.5")])
            ),
            Reply::Array(vec![Reply::Array(vec![
                b("a"),
                Reply::Double(b"1.5".to_vec())
            ])])
        );
        assert_eq!(
            shape("zpopmin", &args(&["z"]), Reply::Array(vec![b("a"), b("2")])),
            Reply::Array(vec![b("a"), Reply::Double(b"2".to_vec())])
        );
        assert_eq!(
            shape("hgetall", &args(&["h"]), Reply::Array(vec![b("f"), b("v")])),
            Reply::Map(vec![(b("f"), b("v"))])
        );
        let error = Reply::error("WRONGTYPE x");
        assert_eq!(shape("hgetall", &args(&["h"]), error.clone()), error);
        assert_eq!(shape("zscore", &args(&["z", "m"]), Reply::Nil), Reply::Nil);
    }
}
