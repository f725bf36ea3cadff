//! Hashes: HSET, HMSET, HSETNX, HGET, HMGET, HDEL, HGETALL, HLEN, HEXISTS,
//! HKEYS, HVALS, HSTRLEN, HINCRBY, HINCRBYFLOAT, HRANDFIELD, HSCAN, at
//! Redis 7.0's semantics (argument checks in Redis's order, its error
//! texts, HINCRBYFLOAT in its long double arithmetic).

use super::aggregate::{get, get_or_create, signed_count, Hash};
use super::{element_scan, int, long_double, sampling, Call, SYNTAX};
use crate::protocol::Reply;
use crate::service::Kv;

/// Redis 7.0 keeps a hash this small as a listpack (`hash-max-listpack-
/// entries` and `-value`): HSCAN answers it in one reply, and its fields
/// stay in the order they were added.
const LISTPACK_ENTRIES: usize = 512;
const LISTPACK_VALUE: usize = 64;

pub fn run(kv: &mut Kv, call: &Call<'_>) -> Reply {
    match hash_command(kv, call) {
        Ok(reply) | Err(reply) => reply,
    }
}

fn hash_command(kv: &mut Kv, call: &Call<'_>) -> Result<Reply, Reply> {
    let (a, now) = (call.args, call.now);
    let arity = |ok: bool| if ok { Ok(()) } else { Err(call.wrong_arity()) };
    let output_limit = kv.client_output_buffer_limit;
    let db = &mut kv.db;
    match call.name {
        "hset" | "hmset" => {
            arity(a.len() >= 3 && !a.len().is_multiple_of(2))?;
            let hash = get_or_create::<Hash>(db, &a[0], now)?;
            let added = a[1..]
                .chunks(2)
                .filter(|p| hash.insert(p[0].clone(), p[1].clone()).is_none())
                .count();
            Ok(if call.name == "hset" {
                Reply::Int(added as i64)
            } else {
                Reply::Ok
            })
        }
        "hsetnx" => {
            arity(a.len() == 3)?;
            let hash = get_or_create::<Hash>(db, &a[0], now)?;
            if hash.contains_key(&a[1]) {
                return Ok(Reply::Int(0));
            }
            hash.insert(a[1].clone(), a[2].clone());
            Ok(Reply::Int(1))
        }
        "hget" => {
            arity(a.len() == 2)?;
            Ok(Reply::bulk_or_nil(
                get::<Hash>(db, &a[0], now)?.and_then(|h| h.get(&a[1]).cloned()),
            ))
        }
        "hmget" => {
            arity(a.len() >= 2)?;
            let hash = get::<Hash>(db, &a[0], now)?;
            let values = a[1..]
                .iter()
                .map(|f| Reply::bulk_or_nil(hash.as_ref().and_then(|h| h.get(f).cloned())));
            Ok(Reply::Array(values.collect()))
        }
        "hdel" => {
            arity(a.len() >= 2)?;
            let Some(hash) = get::<Hash>(db, &a[0], now)? else {
                return Ok(Reply::Int(0));
            };
            // A hash Redis keeps as a listpack lists its fields in the order
            // they were added, also after a deletion: so does a small one
            // here (an O(len) shift, len <= 512); a larger one swaps.
            let keep_order = hash.len() <= LISTPACK_ENTRIES;
            let n = a[1..]
                .iter()
                .filter(|f| {
                    if keep_order {
                        hash.shift_remove(f.as_slice()).is_some()
                    } else {
                        hash.swap_remove(f.as_slice()).is_some()
                    }
                })
                .count();
            db.drop_if_empty(&a[0]);
            Ok(Reply::Int(n as i64))
        }
        "hgetall" | "hkeys" | "hvals" => {
            arity(a.len() == 1)?;
            let Some(hash) = get::<Hash>(db, &a[0], now)? else {
                return Ok(Reply::Array(Vec::new()));
            };
            let items: Vec<Vec<u8>> = match call.name {
                "hkeys" => hash.keys().cloned().collect(),
                "hvals" => hash.values().cloned().collect(),
                _ => hash
                    .iter()
                    .flat_map(|(k, v)| [k.clone(), v.clone()])
                    .collect(),
            };
            Ok(Reply::array_of_bulks(items))
        }
        "hlen" => {
            arity(a.len() == 1)?;
            Ok(Reply::Int(
                get::<Hash>(db, &a[0], now)?.map_or(0, |h| h.len() as i64),
            ))
        }
        "hexists" => {
            arity(a.len() == 2)?;
            Ok(Reply::Int(i64::from(
                get::<Hash>(db, &a[0], now)?.is_some_and(|h| h.contains_key(&a[1])),
            )))
        }
        "hstrlen" => {
            arity(a.len() == 2)?;
            Ok(Reply::Int(
                get::<Hash>(db, &a[0], now)?
                    .and_then(|h| h.get(&a[1]))
                    .map_or(0, |v| v.len() as i64),
            ))
        }
        "hincrby" => {
            arity(a.len() == 3)?;
            let by = int(&a[2])?;
            let hash = get_or_create::<Hash>(db, &a[0], now)?;
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
        "hincrbyfloat" => {
            arity(a.len() == 3)?;
            let by = long_double::parse(&a[2])
                .ok_or_else(|| Reply::error("ERR value is not a valid float"))?;
            if matches!(by, long_double::Ld::Inf { .. }) {
                return Err(Reply::error("ERR value is NaN or Infinity"));
            }
            let hash = get_or_create::<Hash>(db, &a[0], now)?;
            let not_float = || Reply::error("ERR hash value is not a float");
            let current = match hash.get(&a[1]) {
                None => long_double::parse(b"0"),
                Some(v) => long_double::parse(v),
            }
            .ok_or_else(not_float)?;
            let sum = long_double::add(current, by)
                .ok_or_else(|| Reply::error("ERR increment would produce NaN or Infinity"))?;
            let text = long_double::format(sum);
            hash.insert(a[1].clone(), text.clone());
            Ok(Reply::Bulk(text))
        }
        "hrandfield" => {
            arity(!a.is_empty())?;
            if a.len() == 1 {
                let Some(hash) = get::<Hash>(db, &a[0], now)? else {
                    return Ok(Reply::Nil);
                };
                let field = hash
                    .get_index(sampling::one(hash.len()))
                    .map(|(f, _)| f.clone());
                return Ok(Reply::bulk_or_nil(field));
            }
            let count = signed_count(&a[1])?;
            let with_values = match &a[2..] {
                [] => false,
                [opt] if opt.eq_ignore_ascii_case(b"withvalues") => true,
                _ => return Err(Reply::error(SYNTAX)),
            };
            if with_values && count.unsigned_abs() > (i64::MAX / 2) as u64 {
                return Err(Reply::error("ERR value is out of range"));
            }
            let Some(hash) = get::<Hash>(db, &a[0], now)? else {
                return Ok(Reply::Array(Vec::new()));
            };
            let picked: Vec<usize> = if count < 0 {
                let per_item = if with_values { 2 } else { 1 };
                let n = sampling::check_fits(
                    count.unsigned_abs().saturating_mul(per_item),
                    0,
                    output_limit,
                )?;
                sampling::with_repeats(hash.len(), n / per_item as usize)
            } else if count as u64 >= hash.len() as u64 {
                (0..hash.len()).collect()
            } else {
                sampling::distinct(hash.len(), count as usize)
            };
            let empty = Vec::new();
            let pair = |i: usize| hash.get_index(i).unwrap_or((&empty, &empty));
            let per_item = if with_values { 2 } else { 1 };
            let payload = picked
                .iter()
                .map(|i| {
                    let (field, value) = pair(*i);
                    (field.len() + if with_values { value.len() } else { 0 }) as u64
                })
                .sum();
            sampling::check_fits(picked.len() as u64 * per_item, payload, output_limit)?;
            let mut out = Vec::with_capacity(picked.len() * per_item as usize);
            for i in picked {
                let (field, value) = pair(i);
                out.push(Reply::Bulk(field.clone()));
                if with_values {
                    out.push(Reply::Bulk(value.clone()));
                }
            }
            Ok(Reply::Array(out))
        }
        "hscan" => {
            arity(a.len() >= 2)?;
            let cursor = element_scan::cursor(&a[1])?;
            let Some(hash) = get::<Hash>(db, &a[0], now)? else {
                return Ok(element_scan::empty());
            };
            let scan = element_scan::options(cursor, &a[2..])?;
            let small = hash.len() <= LISTPACK_ENTRIES
                && hash
                    .iter()
                    .all(|(k, v)| k.len() <= LISTPACK_VALUE && v.len() <= LISTPACK_VALUE);
            let (next, page) = if small {
                scan.all(hash.iter().collect(), |(k, _)| k.as_slice())
            } else {
                scan.walk(
                    hash.scan_tag(),
                    hash.len(),
                    |i| hash.get_index(i),
                    |(k, _)| k.as_slice(),
                )
            };
            let items = page
                .into_iter()
                .flat_map(|(k, v)| [k.clone(), v.clone()])
                .collect();
            Ok(element_scan::reply(next, items))
        }
        _ => unreachable!("dispatched here"),
    }
}
