//! Sorted sets (lists, sets and hashes are in their own files).

use super::aggregate::pop_count;
use super::{float, fmt_float, int, range, Call, SYNTAX, WRONGTYPE};
use crate::keyspace::Value;
use crate::protocol::Reply;
use crate::service::Kv;
use crate::zset::ZSet;

pub fn run(kv: &mut Kv, call: &Call<'_>) -> Reply {
    match zsets(kv, call) {
        Ok(reply) | Err(reply) => reply,
    }
}

/// Typed access to an aggregate at `key`, creating it if `create`.
macro_rules! typed {
    ($kv:expr, $key:expr, $now:expr, $variant:ident, $make:expr, create) => {{
        if !$kv.db.exists($key, $now) {
            $kv.db.set($key, Value::$variant($make), false);
        }
        match $kv.db.get_mut($key, $now) {
            Some(Value::$variant(v)) => v,
            _ => return Err(Reply::error(WRONGTYPE)),
        }
    }};
    ($kv:expr, $key:expr, $now:expr, $variant:ident) => {{
        match $kv.db.get_mut($key, $now) {
            None => None,
            Some(Value::$variant(v)) => Some(v),
            Some(_) => return Err(Reply::error(WRONGTYPE)),
        }
    }};
}

fn zsets(kv: &mut Kv, call: &Call<'_>) -> Result<Reply, Reply> {
    let (a, now) = (call.args, call.now);
    let arity = |ok: bool| if ok { Ok(()) } else { Err(call.wrong_arity()) };
    match call.name {
        "zadd" => {
            arity(a.len() >= 3)?;
            let (mut nx, mut xx, mut ch, mut i) = (false, false, false, 1);
            while let Some(flag) = a.get(i).map(|f| f.to_ascii_lowercase()) {
                match flag.as_slice() {
                    b"nx" => nx = true,
                    b"xx" => xx = true,
                    b"ch" => ch = true,
                    _ => break,
                }
                i += 1;
            }
            if nx && xx {
                return Err(Reply::error(
                    "ERR XX and NX options at the same time are not compatible",
                ));
            }
            let pairs = &a[i..];
            if pairs.is_empty() || !pairs.len().is_multiple_of(2) {
                return Err(Reply::error(SYNTAX));
            }
            let scored: Vec<(f64, &Vec<u8>)> = pairs
                .chunks(2)
                .map(|p| float(&p[0]).map(|s| (s, &p[1])))
                .collect::<Result<_, _>>()?;
            let zset = typed!(kv, &a[0], now, ZSet, ZSet::default(), create);
            let (mut added, mut changed) = (0, 0);
            for (score, member) in scored {
                match zset.score(member) {
                    Some(_) if nx => {}
                    None if xx => {}
                    Some(old) => {
                        if old != score {
                            zset.insert(member.clone(), score);
                            changed += 1;
                        }
                    }
                    None => {
                        zset.insert(member.clone(), score);
                        added += 1;
                    }
                }
            }
            kv.db.drop_if_empty(&a[0]);
            Ok(Reply::Int(if ch { added + changed } else { added }))
        }
        "zscore" => {
            arity(a.len() == 2)?;
            Ok(Reply::bulk_or_nil(
                typed!(kv, &a[0], now, ZSet)
                    .and_then(|z| z.score(&a[1]))
                    .map(fmt_float),
            ))
        }
        "zcard" => {
            arity(a.len() == 1)?;
            Ok(Reply::Int(
                typed!(kv, &a[0], now, ZSet).map_or(0, |z| z.len() as i64),
            ))
        }
        "zrem" => {
            arity(a.len() >= 2)?;
            let Some(zset) = typed!(kv, &a[0], now, ZSet) else {
                return Ok(Reply::Int(0));
            };
            let n = a[1..].iter().filter(|m| zset.remove(m)).count();
            kv.db.drop_if_empty(&a[0]);
            Ok(Reply::Int(n as i64))
        }
        "zrange" => {
            arity(a.len() == 3 || a.len() == 4)?;
            let with_scores = match a.get(3) {
                None => false,
                Some(opt) if opt.eq_ignore_ascii_case(b"withscores") => true,
                Some(_) => return Err(Reply::error(SYNTAX)),
            };
            let (start, stop) = (int(&a[1])?, int(&a[2])?);
            let Some(zset) = typed!(kv, &a[0], now, ZSet) else {
                return Ok(Reply::Array(Vec::new()));
            };
            let Some((from, to)) = range(start, stop, zset.len()) else {
                return Ok(Reply::Array(Vec::new()));
            };
            let mut out = Vec::new();
            for (member, score) in zset.range(from, to) {
                out.push(Reply::Bulk(member.clone()));
                if with_scores {
                    out.push(Reply::Bulk(fmt_float(score)));
                }
            }
            Ok(Reply::Array(out))
        }
        "zpopmin" => {
            arity(a.len() == 1 || a.len() == 2)?;
            let count = pop_count(call.args)?.unwrap_or(1);
            let Some(zset) = typed!(kv, &a[0], now, ZSet) else {
                return Ok(Reply::Array(Vec::new()));
            };
            let mut out = Vec::new();
            for _ in 0..count {
                let Some((member, score)) = zset.pop_min() else {
                    break;
                };
                out.push(Reply::Bulk(member));
                out.push(Reply::Bulk(fmt_float(score)));
            }
            kv.db.drop_if_empty(&a[0]);
            Ok(Reply::Array(out))
        }
        _ => unreachable!("dispatched here"),
    }
}
