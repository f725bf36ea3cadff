//! Sets: SADD, SREM, SPOP, SCARD, SISMEMBER, SMISMEMBER, SMEMBERS,
//! SRANDMEMBER, SMOVE, SINTER, SUNION, SDIFF, their *STORE forms,
//! SINTERCARD and SSCAN, at Redis 7.0's semantics.
//!
//! The algebra reads all its keys first: a key of another type is
//! WRONGTYPE even after a missing one. A *STORE destination of any type is
//! overwritten (its TTL cleared), and an empty result deletes it.

use std::collections::HashSet;

use super::aggregate::{get, get_many, get_or_create, pop_count, signed_count, Set};
use super::{element_scan, int, sampling, Call, SYNTAX};
use crate::keyspace::{Db, Value};
use crate::protocol::Reply;
use crate::service::Kv;

/// Redis 7.0 keeps a set of at most this many integers as an intset,
/// which SSCAN answers in one reply (`set-max-intset-entries`).
const INTSET_ENTRIES: usize = 512;

pub fn run(kv: &mut Kv, call: &Call<'_>) -> Reply {
    match set_command(kv, call) {
        Ok(reply) | Err(reply) => reply,
    }
}

fn set_command(kv: &mut Kv, call: &Call<'_>) -> Result<Reply, Reply> {
    let (a, now) = (call.args, call.now);
    let arity = |ok: bool| if ok { Ok(()) } else { Err(call.wrong_arity()) };
    let output_limit = kv.client_output_buffer_limit;
    let db = &mut kv.db;
    match call.name {
        "sadd" => {
            arity(a.len() >= 2)?;
            let set = get_or_create::<Set>(db, &a[0], now)?;
            Ok(Reply::Int(
                a[1..].iter().filter(|m| set.insert(m.to_vec())).count() as i64,
            ))
        }
        "srem" => {
            arity(a.len() >= 2)?;
            let Some(set) = get::<Set>(db, &a[0], now)? else {
                return Ok(Reply::Int(0));
            };
            let n = a[1..]
                .iter()
                .filter(|m| set.swap_remove(m.as_slice()))
                .count();
            db.drop_if_empty(&a[0]);
            Ok(Reply::Int(n as i64))
        }
        "spop" => {
            arity(!a.is_empty())?;
            if a.len() > 2 {
                return Err(Reply::error(SYNTAX));
            }
            let count = pop_count(a)?;
            let Some(set) = get::<Set>(db, &a[0], now)? else {
                return Ok(if count.is_some() {
                    Reply::Array(Vec::new())
                } else {
                    Reply::Nil
                });
            };
            let take = count.unwrap_or(1).min(set.len());
            let picked: Vec<Vec<u8>> = if take == set.len() {
                redis_order(set.take_all())
            } else {
                // O(take): each pick is a random position, removed by
                // swapping the last member into it.
                (0..take)
                    .filter_map(|_| set.swap_remove_index(sampling::one(set.len())))
                    .collect()
            };
            db.drop_if_empty(&a[0]);
            Ok(match count {
                None => Reply::bulk_or_nil(picked.into_iter().next()),
                Some(_) => Reply::array_of_bulks(picked),
            })
        }
        "scard" => {
            arity(a.len() == 1)?;
            Ok(Reply::Int(
                get::<Set>(db, &a[0], now)?.map_or(0, |s| s.len() as i64),
            ))
        }
        "sismember" => {
            arity(a.len() == 2)?;
            Ok(Reply::Int(i64::from(
                get::<Set>(db, &a[0], now)?.is_some_and(|s| s.contains(&a[1])),
            )))
        }
        "smismember" => {
            arity(a.len() >= 2)?;
            let set = get::<Set>(db, &a[0], now)?;
            let found = a[1..]
                .iter()
                .map(|m| Reply::Int(i64::from(set.as_ref().is_some_and(|s| s.contains(m)))));
            Ok(Reply::Array(found.collect()))
        }
        "smembers" => {
            arity(a.len() == 1)?;
            let members = get::<Set>(db, &a[0], now)?
                .map(|s| redis_order(s.iter().collect()))
                .unwrap_or_default();
            Ok(Reply::array_of_bulks(members.into_iter().cloned()))
        }
        "srandmember" => {
            arity(!a.is_empty())?;
            if a.len() > 2 {
                return Err(Reply::error(SYNTAX));
            }
            if a.len() == 1 {
                let Some(set) = get::<Set>(db, &a[0], now)? else {
                    return Ok(Reply::Nil);
                };
                return Ok(Reply::bulk_or_nil(
                    set.get_index(sampling::one(set.len())).cloned(),
                ));
            }
            let count = signed_count(&a[1])?;
            let Some(set) = get::<Set>(db, &a[0], now)? else {
                return Ok(Reply::Array(Vec::new()));
            };
            let at = |positions: Vec<usize>| -> Vec<&Vec<u8>> {
                positions
                    .into_iter()
                    .filter_map(|i| set.get_index(i))
                    .collect()
            };
            let picked = if count < 0 {
                let n = sampling::check_fits(count.unsigned_abs(), 0, output_limit)?;
                at(sampling::with_repeats(set.len(), n))
            } else if count as u64 >= set.len() as u64 {
                redis_order(set.iter().collect())
            } else {
                at(sampling::distinct(set.len(), count as usize))
            };
            let payload = picked.iter().map(|m| m.len() as u64).sum();
            sampling::check_fits(picked.len() as u64, payload, output_limit)?;
            Ok(Reply::array_of_bulks(picked.into_iter().cloned()))
        }
        "smove" => {
            arity(a.len() == 3)?;
            let (src, dst, member) = (&a[0], &a[1], &a[2]);
            // A missing source answers 0 before the destination's type is
            // checked.
            if get::<Set>(db, src, now)?.is_none() {
                return Ok(Reply::Int(0));
            }
            get::<Set>(db, dst, now)?;
            if src == dst {
                let present = get::<Set>(db, src, now)?.is_some_and(|s| s.contains(member));
                return Ok(Reply::Int(i64::from(present)));
            }
            let removed = get::<Set>(db, src, now)?.is_some_and(|s| s.swap_remove(member));
            if !removed {
                return Ok(Reply::Int(0));
            }
            db.drop_if_empty(src);
            get_or_create::<Set>(db, dst, now)?.insert(member.clone());
            Ok(Reply::Int(1))
        }
        "sinter" | "sunion" | "sdiff" => {
            arity(!a.is_empty())?;
            let result = algebra(db, call.name, a, now, 0)?;
            Ok(Reply::array_of_bulks(
                redis_order(result).into_iter().cloned(),
            ))
        }
        "sinterstore" | "sunionstore" | "sdiffstore" => {
            arity(a.len() >= 2)?;
            let op = call.name.trim_end_matches("store");
            let result: Set = algebra(db, op, &a[1..], now, 0)?
                .into_iter()
                .cloned()
                .collect();
            let len = result.len();
            if result.is_empty() {
                db.remove(&a[0]);
            } else {
                db.set(&a[0], Value::Set(result), false);
            }
            Ok(Reply::Int(len as i64))
        }
        "sintercard" => {
            arity(a.len() >= 2)?;
            let numkeys = int(&a[0])
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| Reply::error("ERR numkeys should be greater than 0"))?;
            let keys_end = usize::try_from(numkeys)
                .ok()
                .and_then(|n| n.checked_add(1))
                .filter(|end| *end <= a.len())
                .ok_or_else(|| {
                    Reply::error("ERR Number of keys can't be greater than number of args")
                })?;
            let mut limit = 0;
            let mut options = a[keys_end..].iter();
            while let Some(option) = options.next() {
                match options.next() {
                    Some(value) if option.eq_ignore_ascii_case(b"limit") => {
                        limit = int(value)
                            .ok()
                            .and_then(|n| usize::try_from(n).ok())
                            .ok_or_else(|| Reply::error("ERR LIMIT can't be negative"))?;
                    }
                    _ => return Err(Reply::error(SYNTAX)),
                }
            }
            let found = algebra(db, "sinter", &a[1..keys_end], now, limit)?;
            Ok(Reply::Int(found.len() as i64))
        }
        "sscan" => {
            arity(a.len() >= 2)?;
            let cursor = element_scan::cursor(&a[1])?;
            let Some(set) = get::<Set>(db, &a[0], now)? else {
                return Ok(element_scan::empty());
            };
            let scan = element_scan::options(cursor, &a[2..])?;
            let small = set.len() <= INTSET_ENTRIES && set.iter().all(|m| int(m).is_ok());
            let (next, page) = if small {
                scan.all(redis_order(set.iter().collect()), |m| m.as_slice())
            } else {
                scan.walk(
                    set.scan_tag(),
                    set.len(),
                    |i| set.get_index(i),
                    |m| m.as_slice(),
                )
            };
            Ok(element_scan::reply(
                next,
                page.into_iter().cloned().collect(),
            ))
        }
        _ => unreachable!("dispatched here"),
    }
}

/// Members in the order Redis 7.0 lists them when it keeps them as an
/// intset (at most 512 integers): ascending. Any other set is a hash table
/// there, in no particular order, so these are left as they are.
fn redis_order<T: AsRef<[u8]>>(mut members: Vec<T>) -> Vec<T> {
    if members.len() <= INTSET_ENTRIES && members.iter().all(|m| int(m.as_ref()).is_ok()) {
        members.sort_by_cached_key(|m| int(m.as_ref()).unwrap_or(0));
    }
    members
}

/// SINTER, SUNION or SDIFF of the sets at `keys` (a missing key is an
/// empty set), borrowed from the database: callers copy only what they
/// reply with or store. An intersection stops after `limit` members
/// (SINTERCARD's LIMIT; 0 is no limit).
fn algebra<'a>(
    db: &'a mut Db,
    op: &str,
    keys: &[Vec<u8>],
    now: i64,
    limit: usize,
) -> Result<Vec<&'a Vec<u8>>, Reply> {
    let sets = get_many::<Set>(db, keys, now)?;
    let present: Vec<&'a Set> = sets.iter().flatten().copied().collect();
    Ok(match op {
        "sinter" => {
            // An intersection with a missing key is empty.
            let smallest = present.iter().copied().min_by_key(|s| s.len());
            match smallest {
                Some(smallest) if present.len() == sets.len() => smallest
                    .iter()
                    .filter(|m| present.iter().all(|s| s.contains(*m)))
                    .take(if limit == 0 { usize::MAX } else { limit })
                    .collect(),
                _ => Vec::new(),
            }
        }
        "sunion" => {
            let mut seen = HashSet::new();
            present
                .iter()
                .flat_map(|s| s.iter())
                .filter(|m| seen.insert(*m))
                .collect()
        }
        _ => match sets.split_first() {
            Some((Some(first), rest)) => first
                .iter()
                .filter(|m| !rest.iter().flatten().any(|s| s.contains(*m)))
                .collect(),
            _ => Vec::new(),
        },
    })
}
