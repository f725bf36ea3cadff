//! Lists, sets and hashes (sorted sets are in `zsets.rs`).

use std::collections::{HashMap, HashSet, VecDeque};

use super::{int, range, Call, WRONGTYPE};
use crate::keyspace::Value;
use crate::protocol::Reply;
use crate::service::Kv;

pub fn run(kv: &mut Kv, call: &Call<'_>) -> Reply {
    let result = match call.name.as_bytes()[0] {
        b'l' | b'r' => lists(kv, call),
        b's' => sets(kv, call),
        _ => hashes(kv, call),
    };
    match result {
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

/// The optional COUNT of LPOP/RPOP/SPOP.
fn pop_count(call: &Call<'_>) -> Result<Option<usize>, Reply> {
    match call.args.get(1) {
        None => Ok(None),
        Some(n) => {
            // Redis gives this text for a non-integer too.
            let positive = || Reply::error("ERR value is out of range, must be positive");
            let n = int(n).map_err(|_| positive())?;
            if n < 0 {
                return Err(positive());
            }
            Ok(Some(n as usize))
        }
    }
}

fn lists(kv: &mut Kv, call: &Call<'_>) -> Result<Reply, Reply> {
    let (a, now) = (call.args, call.now);
    let arity = |ok: bool| if ok { Ok(()) } else { Err(call.wrong_arity()) };
    match call.name {
        "lpush" | "rpush" => {
            arity(a.len() >= 2)?;
            let list = typed!(kv, &a[0], now, List, VecDeque::new(), create);
            for item in &a[1..] {
                if call.name == "lpush" {
                    list.push_front(item.clone());
                } else {
                    list.push_back(item.clone());
                }
            }
            Ok(Reply::Int(list.len() as i64))
        }
        "lpop" | "rpop" => {
            arity(a.len() == 1 || a.len() == 2)?;
            let count = pop_count(call)?;
            let Some(list) = typed!(kv, &a[0], now, List) else {
                return Ok(if count.is_some() {
                    Reply::NilArray
                } else {
                    Reply::Nil
                });
            };
            let mut popped = Vec::new();
            for _ in 0..count.unwrap_or(1) {
                let item = if call.name == "lpop" {
                    list.pop_front()
                } else {
                    list.pop_back()
                };
                match item {
                    Some(item) => popped.push(item),
                    None => break,
                }
            }
            kv.db.drop_if_empty(&a[0]);
            Ok(match count {
                None => Reply::bulk_or_nil(popped.pop()),
                Some(_) => Reply::array_of_bulks(popped),
            })
        }
        "lrange" => {
            arity(a.len() == 3)?;
            let (start, stop) = (int(&a[1])?, int(&a[2])?);
            let Some(list) = typed!(kv, &a[0], now, List) else {
                return Ok(Reply::Array(Vec::new()));
            };
            Ok(match range(start, stop, list.len()) {
                None => Reply::Array(Vec::new()),
                Some((from, to)) => Reply::array_of_bulks(list.range(from..=to).cloned()),
            })
        }
        "llen" => {
            arity(a.len() == 1)?;
            Ok(Reply::Int(
                typed!(kv, &a[0], now, List).map_or(0, |l| l.len() as i64),
            ))
        }
        "lindex" => {
            arity(a.len() == 2)?;
            let index = int(&a[1])?;
            let Some(list) = typed!(kv, &a[0], now, List) else {
                return Ok(Reply::Nil);
            };
            let index = if index < 0 {
                list.len() as i64 + index
            } else {
                index
            };
            Ok(Reply::bulk_or_nil(
                usize::try_from(index)
                    .ok()
                    .and_then(|i| list.get(i))
                    .cloned(),
            ))
        }
        _ => unreachable!("dispatched here"),
    }
}

fn sets(kv: &mut Kv, call: &Call<'_>) -> Result<Reply, Reply> {
    let (a, now) = (call.args, call.now);
    let arity = |ok: bool| if ok { Ok(()) } else { Err(call.wrong_arity()) };
    match call.name {
        "sadd" => {
            arity(a.len() >= 2)?;
            let set = typed!(kv, &a[0], now, Set, HashSet::new(), create);
            Ok(Reply::Int(
                a[1..].iter().filter(|m| set.insert(m.to_vec())).count() as i64,
            ))
        }
        "srem" => {
            arity(a.len() >= 2)?;
            let Some(set) = typed!(kv, &a[0], now, Set) else {
                return Ok(Reply::Int(0));
            };
            let n = a[1..].iter().filter(|m| set.remove(m.as_slice())).count();
            kv.db.drop_if_empty(&a[0]);
            Ok(Reply::Int(n as i64))
        }
        "spop" => {
            arity(a.len() == 1 || a.len() == 2)?;
            let count = pop_count(call)?;
            let Some(set) = typed!(kv, &a[0], now, Set) else {
                return Ok(if count.is_some() {
                    Reply::Array(Vec::new())
                } else {
                    Reply::Nil
                });
            };
            // HashSet iteration order is randomised per process: an arbitrary member.
            let picked: Vec<Vec<u8>> = set.iter().take(count.unwrap_or(1)).cloned().collect();
            for member in &picked {
                set.remove(member);
            }
            kv.db.drop_if_empty(&a[0]);
            Ok(match count {
                None => Reply::bulk_or_nil(picked.into_iter().next()),
                Some(_) => Reply::array_of_bulks(picked),
            })
        }
        "scard" => {
            arity(a.len() == 1)?;
            Ok(Reply::Int(
                typed!(kv, &a[0], now, Set).map_or(0, |s| s.len() as i64),
            ))
        }
        "sismember" => {
            arity(a.len() == 2)?;
            Ok(Reply::Int(
                typed!(kv, &a[0], now, Set).is_some_and(|s| s.contains(&a[1])) as i64,
            ))
        }
        "smembers" => {
            arity(a.len() == 1)?;
            Ok(Reply::array_of_bulks(
                typed!(kv, &a[0], now, Set)
                    .map(|s| s.iter().cloned().collect::<Vec<_>>())
                    .unwrap_or_default(),
            ))
        }
        _ => unreachable!("dispatched here"),
    }
}

fn hashes(kv: &mut Kv, call: &Call<'_>) -> Result<Reply, Reply> {
    let (a, now) = (call.args, call.now);
    let arity = |ok: bool| if ok { Ok(()) } else { Err(call.wrong_arity()) };
    match call.name {
        "hset" => {
            arity(a.len() >= 3 && !a.len().is_multiple_of(2))?;
            let hash = typed!(kv, &a[0], now, Hash, HashMap::new(), create);
            let added = a[1..]
                .chunks(2)
                .filter(|p| hash.insert(p[0].clone(), p[1].clone()).is_none())
                .count();
            Ok(Reply::Int(added as i64))
        }
        "hget" => {
            arity(a.len() == 2)?;
            Ok(Reply::bulk_or_nil(
                typed!(kv, &a[0], now, Hash).and_then(|h| h.get(&a[1]).cloned()),
            ))
        }
        "hmget" => {
            arity(a.len() >= 2)?;
            let hash = typed!(kv, &a[0], now, Hash);
            let values = a[1..]
                .iter()
                .map(|f| Reply::bulk_or_nil(hash.as_ref().and_then(|h| h.get(f).cloned())));
            Ok(Reply::Array(values.collect()))
        }
        "hdel" => {
            arity(a.len() >= 2)?;
            let Some(hash) = typed!(kv, &a[0], now, Hash) else {
                return Ok(Reply::Int(0));
            };
            let n = a[1..]
                .iter()
                .filter(|f| hash.remove(f.as_slice()).is_some())
                .count();
            kv.db.drop_if_empty(&a[0]);
            Ok(Reply::Int(n as i64))
        }
        "hgetall" => {
            arity(a.len() == 1)?;
            let pairs: Vec<Vec<u8>> = typed!(kv, &a[0], now, Hash)
                .map(|h| h.iter().flat_map(|(k, v)| [k.clone(), v.clone()]).collect())
                .unwrap_or_default();
            Ok(Reply::array_of_bulks(pairs))
        }
        "hlen" => {
            arity(a.len() == 1)?;
            Ok(Reply::Int(
                typed!(kv, &a[0], now, Hash).map_or(0, |h| h.len() as i64),
            ))
        }
        "hincrby" => {
            arity(a.len() == 3)?;
            let by = int(&a[2])?;
            let hash = typed!(kv, &a[0], now, Hash, HashMap::new(), create);
            let current = match hash.get(&a[1]) {
                None => 0,
                Some(v) => int(v).map_err(|_| Reply::error("ERR hash value is not an integer"))?,
            };
            let next = current
                .checked_add(by)
                .ok_or_else(|| Reply::error("ERR increment or decrement would overflow"))?;
            hash.insert(a[1].clone(), next.to_string().into_bytes());
            Ok(Reply::Int(next))
        }
        _ => unreachable!("dispatched here"),
    }
}
