//! Sorted-set commands at Redis 7.0 semantics: adding and scoring, ranks,
//! ranges by rank, score and lex (and their removals and counts), popping,
//! random members and ZSCAN. The union/intersection/difference family is
//! in `zset_ops.rs`, argument parsing and score text in `zset_args.rs`.
//!
//! Replies are built in RESP2's shapes with scores as `Reply::Double`
//! (a bulk on RESP2); on RESP3 `resp3::shape` nests WITHSCORES replies
//! into [member, score] pairs where Redis does (`resp3::zset_pairs`).
//!
//! Every reply is bounded by the data it touches: ranges start with one
//! O(log n) descent and walk only what they return, whatever LIMIT or
//! index a client sends.

use super::zset_args::{
    fmt_score, lex_range, parse_score, score_range, NOT_FLOAT_RANGE, NOT_LEX_RANGE,
};
use super::{int, Call, SYNTAX, WRONGTYPE};
use crate::keyspace::Value;
use crate::protocol::Reply;
use crate::service::Kv;
use crate::zset::ZSet;

/// Every command this module answers (the dispatch table's list).
pub fn handles(name: &str) -> bool {
    matches!(
        name,
        "zadd"
            | "zincrby"
            | "zscore"
            | "zmscore"
            | "zcard"
            | "zrem"
            | "zrange"
            | "zrangestore"
            | "zrangebyscore"
            | "zrevrangebyscore"
            | "zrevrange"
            | "zrangebylex"
            | "zrevrangebylex"
            | "zrank"
            | "zrevrank"
            | "zcount"
            | "zlexcount"
            | "zremrangebyrank"
            | "zremrangebyscore"
            | "zremrangebylex"
            | "zpopmin"
            | "zpopmax"
            | "zrandmember"
            | "zscan"
    ) || super::zset_ops::handles(name)
}

pub fn run(kv: &mut Kv, call: &Call<'_>) -> Reply {
    let result = if super::zset_ops::handles(call.name) {
        super::zset_ops::run(kv, call)
    } else {
        zsets(kv, call)
    };
    match result {
        Ok(reply) | Err(reply) => reply,
    }
}

/// The sorted set at `key`: `Ok(None)` if there is none, WRONGTYPE if the
/// key holds something else.
pub fn zset_at<'a>(kv: &'a mut Kv, key: &[u8], now: i64) -> Result<Option<&'a mut ZSet>, Reply> {
    match kv.db.get_mut(key, now) {
        None => Ok(None),
        Some(Value::ZSet(z)) => Ok(Some(z)),
        Some(_) => Err(Reply::error(WRONGTYPE)),
    }
}

/// The sorted set at `key`, created empty if there is no key.
fn zset_or_new<'a>(kv: &'a mut Kv, key: &[u8], now: i64) -> Result<&'a mut ZSet, Reply> {
    if !kv.db.exists(key, now) {
        kv.db.set(key, Value::ZSet(Box::default()), false);
    }
    zset_at(kv, key, now)?.ok_or_else(|| Reply::error(WRONGTYPE))
}

/// Stores `zset` at `dst` (replacing any value and TTL), or deletes `dst`
/// if it is empty, as the *STORE commands do; replies its size.
pub fn store(kv: &mut Kv, dst: &[u8], zset: ZSet) -> Reply {
    let len = zset.len();
    if len == 0 {
        kv.db.remove(dst);
    } else {
        kv.db.set(dst, Value::ZSet(Box::new(zset)), false);
    }
    Reply::Int(len as i64)
}

pub fn score_reply(score: f64) -> Reply {
    Reply::Double(fmt_score(score))
}

/// Flat member[, score] replies.
pub fn members_reply<'a>(
    items: impl IntoIterator<Item = (&'a [u8], f64)>,
    with_scores: bool,
) -> Reply {
    let mut out = Vec::new();
    for (member, score) in items {
        out.push(Reply::Bulk(member.to_vec()));
        if with_scores {
            out.push(score_reply(score));
        }
    }
    Reply::Array(out)
}

fn zsets(kv: &mut Kv, call: &Call<'_>) -> Result<Reply, Reply> {
    let (a, now) = (call.args, call.now);
    let arity = |ok: bool| if ok { Ok(()) } else { Err(call.wrong_arity()) };
    match call.name {
        "zadd" => {
            arity(a.len() >= 3)?;
            zadd(kv, call, false)
        }
        "zincrby" => {
            arity(a.len() == 3)?;
            zadd(kv, call, true)
        }
        "zscore" => {
            arity(a.len() == 2)?;
            Ok(zset_at(kv, &a[0], now)?
                .and_then(|z| z.score(&a[1]))
                .map_or(Reply::Nil, score_reply))
        }
        "zmscore" => {
            arity(a.len() >= 2)?;
            let zset = zset_at(kv, &a[0], now)?;
            let zset = zset.as_deref();
            Ok(Reply::Array(
                a[1..]
                    .iter()
                    .map(|m| {
                        zset.and_then(|z| z.score(m))
                            .map_or(Reply::Nil, score_reply)
                    })
                    .collect(),
            ))
        }
        "zcard" => {
            arity(a.len() == 1)?;
            Ok(Reply::Int(
                zset_at(kv, &a[0], now)?.map_or(0, |z| z.len() as i64),
            ))
        }
        "zrem" => {
            arity(a.len() >= 2)?;
            let Some(zset) = zset_at(kv, &a[0], now)? else {
                return Ok(Reply::Int(0));
            };
            let n = a[1..].iter().filter(|m| zset.remove(m)).count();
            kv.db.drop_if_empty(&a[0]);
            Ok(Reply::Int(n as i64))
        }
        "zrank" | "zrevrank" => {
            arity(a.len() == 2)?;
            let Some(zset) = zset_at(kv, &a[0], now)? else {
                return Ok(Reply::Nil);
            };
            let len = zset.len();
            Ok(match zset.rank(&a[1]) {
                None => Reply::Nil,
                Some(r) if call.name == "zrank" => Reply::Int(r as i64),
                Some(r) => Reply::Int((len - 1 - r) as i64),
            })
        }
        "zcount" | "zlexcount" => {
            arity(a.len() == 3)?;
            // The range is checked before the key.
            let span = if call.name == "zcount" {
                Span::score(&a[1], &a[2])?
            } else {
                Span::lex(&a[1], &a[2])?
            };
            let Some(zset) = zset_at(kv, &a[0], now)? else {
                return Ok(Reply::Int(0));
            };
            Ok(Reply::Int(
                span.ranks(zset)
                    .map_or(0, |(first, last)| (last - first + 1) as i64),
            ))
        }
        "zremrangebyrank" | "zremrangebyscore" | "zremrangebylex" => {
            arity(a.len() == 3)?;
            zremrange(kv, call)
        }
        "zrange" | "zrangestore" | "zrangebyscore" | "zrevrangebyscore" | "zrevrange"
        | "zrangebylex" | "zrevrangebylex" => {
            let store = call.name == "zrangestore";
            arity(a.len() >= if store { 4 } else { 3 })?;
            super::zset_range::zrange(kv, call)
        }
        "zpopmin" | "zpopmax" => {
            arity(!a.is_empty())?;
            if a.len() > 2 {
                return Err(Reply::error(SYNTAX));
            }
            let count = match a.get(1) {
                None => None,
                Some(n) => {
                    let positive = || Reply::error("ERR value is out of range, must be positive");
                    let n = int(n).map_err(|_| positive())?;
                    Some(usize::try_from(n).map_err(|_| positive())?)
                }
            };
            let Some(zset) = zset_at(kv, &a[0], now)? else {
                return Ok(Reply::Array(Vec::new()));
            };
            let mut out = Vec::new();
            for _ in 0..count.unwrap_or(1) {
                let popped = if call.name == "zpopmin" {
                    zset.pop_min()
                } else {
                    zset.pop_max()
                };
                let Some((member, score)) = popped else {
                    break;
                };
                out.push(Reply::Bulk(member));
                out.push(score_reply(score));
            }
            kv.db.drop_if_empty(&a[0]);
            Ok(Reply::Array(out))
        }
        "zrandmember" => {
            arity(!a.is_empty())?;
            super::zset_random::zrandmember(kv, call)
        }
        "zscan" => {
            arity(a.len() >= 2)?;
            super::zset_random::zscan(kv, call)
        }
        _ => unreachable!("dispatched here"),
    }
}

/// ZADD and ZINCRBY (ZADD's INCR with one pair), as `zaddGenericCommand`.
fn zadd(kv: &mut Kv, call: &Call<'_>, incr_command: bool) -> Result<Reply, Reply> {
    let (a, now) = (call.args, call.now);
    let (mut nx, mut xx, mut gt, mut lt, mut ch, mut incr) =
        (false, false, false, false, false, incr_command);
    let mut i = 1;
    while let Some(flag) = a.get(i) {
        match flag.to_ascii_lowercase().as_slice() {
            b"nx" => nx = true,
            b"xx" => xx = true,
            b"gt" => gt = true,
            b"lt" => lt = true,
            b"ch" => ch = true,
            b"incr" => incr = true,
            _ => break,
        }
        i += 1;
    }
    let pairs = &a[i..];
    if pairs.is_empty() || !pairs.len().is_multiple_of(2) {
        return Err(Reply::error(SYNTAX));
    }
    if nx && xx {
        return Err(Reply::error(
            "ERR XX and NX options at the same time are not compatible",
        ));
    }
    if (nx && (gt || lt)) || (gt && lt) {
        return Err(Reply::error(
            "ERR GT, LT, and/or NX options at the same time are not compatible",
        ));
    }
    if incr && pairs.len() > 2 {
        return Err(Reply::error(
            "ERR INCR option supports a single increment-element pair",
        ));
    }
    let scored: Vec<(f64, &Vec<u8>)> = pairs
        .chunks(2)
        .map(|p| {
            parse_score(&p[0])
                .map(|s| (s, &p[1]))
                .ok_or_else(|| Reply::error("ERR value is not a valid float"))
        })
        .collect::<Result<_, _>>()?;
    let no_reply = || {
        if incr {
            Reply::Nil
        } else {
            Reply::Int(0)
        }
    };
    if zset_at(kv, &a[0], now)?.is_none() && xx {
        return Ok(no_reply());
    }
    let zset = zset_or_new(kv, &a[0], now)?;
    let (mut added, mut updated, mut last) = (0, 0, None);
    for (mut score, member) in scored {
        match zset.score(member) {
            Some(_) if nx => continue,
            Some(current) => {
                if incr {
                    score += current;
                    if score.is_nan() {
                        kv.db.drop_if_empty(&a[0]);
                        return Err(Reply::error("ERR resulting score is not a number (NaN)"));
                    }
                }
                if (lt && score >= current) || (gt && score <= current) {
                    continue;
                }
                if score != current {
                    zset.insert(member.clone(), score);
                    updated += 1;
                }
            }
            None if xx => continue,
            None => {
                zset.insert(member.clone(), score);
                added += 1;
            }
        }
        last = Some(score);
    }
    kv.db.drop_if_empty(&a[0]);
    Ok(if incr {
        last.map_or(Reply::Nil, score_reply)
    } else {
        Reply::Int(if ch { added + updated } else { added })
    })
}

/// Which members a range command names.
pub enum Span {
    Rank(i64, i64),
    Score(crate::zset::ScoreRange),
    Lex(crate::zset::LexRange),
}

impl Span {
    pub fn score(min: &[u8], max: &[u8]) -> Result<Self, Reply> {
        score_range(min, max)
            .map(Span::Score)
            .ok_or_else(|| Reply::error(NOT_FLOAT_RANGE))
    }

    pub fn lex(min: &[u8], max: &[u8]) -> Result<Self, Reply> {
        lex_range(min, max)
            .map(Span::Lex)
            .ok_or_else(|| Reply::error(NOT_LEX_RANGE))
    }

    /// The first and last 0-based ranks in the span, if any.
    pub fn ranks(&self, zset: &ZSet) -> Option<(usize, usize)> {
        match self {
            Span::Rank(start, stop) => rank_span(*start, *stop, zset.len()),
            Span::Score(range) => zset.score_ranks(range),
            Span::Lex(range) => zset.lex_ranks(range),
        }
    }
}

/// ZREMRANGEBYRANK, ZREMRANGEBYSCORE, ZREMRANGEBYLEX.
fn zremrange(kv: &mut Kv, call: &Call<'_>) -> Result<Reply, Reply> {
    let (a, now) = (call.args, call.now);
    let span = match call.name {
        "zremrangebyrank" => Span::Rank(int(&a[1])?, int(&a[2])?),
        "zremrangebyscore" => Span::score(&a[1], &a[2])?,
        _ => Span::lex(&a[1], &a[2])?,
    };
    let Some(zset) = zset_at(kv, &a[0], now)? else {
        return Ok(Reply::Int(0));
    };
    let removed = span
        .ranks(zset)
        .map_or(0, |(first, last)| zset.remove_ranks(first, last));
    kv.db.drop_if_empty(&a[0]);
    Ok(Reply::Int(removed as i64))
}

/// Redis's inclusive rank indices (negative from the end) over `len`
/// members, as 0-based ranks; `None` if the span is empty.
pub fn rank_span(start: i64, stop: i64, len: usize) -> Option<(usize, usize)> {
    let len = i64::try_from(len).unwrap_or(i64::MAX);
    let start = if start < 0 {
        start.saturating_add(len).max(0)
    } else {
        start
    };
    let stop = if stop < 0 {
        stop.saturating_add(len)
    } else {
        stop
    };
    if start > stop || start >= len {
        return None;
    }
    let stop = stop.min(len - 1);
    Some((usize::try_from(start).ok()?, usize::try_from(stop).ok()?))
}
