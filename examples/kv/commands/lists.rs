//! Lists: LPUSH, RPUSH, LPUSHX, RPUSHX, LPOP, RPOP, LRANGE, LLEN, LINDEX,
//! LINSERT, LSET, LREM, LTRIM, LPOS, at Redis 7.0's semantics: the order
//! in which Redis parses arguments and looks the key up decides which
//! error (or empty answer) a request gets, so each command keeps it.
//!
//! Indices are clamped with `i64` arithmetic that cannot overflow
//! (`len + index` with `len >= 0`), and a reply is never sized by a
//! client's count, only by the elements it returns.

use super::aggregate::{get, get_or_create, pop_count, List};
use super::{int, range, Call, SYNTAX};
use crate::protocol::Reply;
use crate::service::Kv;

pub fn run(kv: &mut Kv, call: &Call<'_>) -> Reply {
    match list_command(kv, call) {
        Ok(reply) | Err(reply) => reply,
    }
}

fn list_command(kv: &mut Kv, call: &Call<'_>) -> Result<Reply, Reply> {
    let (a, now) = (call.args, call.now);
    let arity = |ok: bool| if ok { Ok(()) } else { Err(call.wrong_arity()) };
    let db = &mut kv.db;
    match call.name {
        "lpush" | "rpush" | "lpushx" | "rpushx" => {
            arity(a.len() >= 2)?;
            let list = if call.name.ends_with('x') {
                match get::<List>(db, &a[0], now)? {
                    Some(list) => list,
                    None => return Ok(Reply::Int(0)),
                }
            } else {
                get_or_create::<List>(db, &a[0], now)?
            };
            for item in &a[1..] {
                if call.name.starts_with('l') {
                    list.push_front(item.clone());
                } else {
                    list.push_back(item.clone());
                }
            }
            Ok(Reply::Int(list.len() as i64))
        }
        "lpop" | "rpop" => {
            arity(a.len() == 1 || a.len() == 2)?;
            let count = pop_count(a)?;
            let Some(list) = get::<List>(db, &a[0], now)? else {
                return Ok(if count.is_some() {
                    Reply::NilArray
                } else {
                    Reply::Nil
                });
            };
            let take = count.unwrap_or(1).min(list.len());
            let popped: Vec<Vec<u8>> = if call.name == "lpop" {
                list.drain(..take)
            } else {
                list.drain(list.len() - take..).into_iter().rev().collect()
            };
            db.drop_if_empty(&a[0]);
            Ok(match count {
                None => Reply::bulk_or_nil(popped.into_iter().next()),
                Some(_) => Reply::array_of_bulks(popped),
            })
        }
        "lrange" => {
            arity(a.len() == 3)?;
            let (start, stop) = (int(&a[1])?, int(&a[2])?);
            let Some(list) = get::<List>(db, &a[0], now)? else {
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
                get::<List>(db, &a[0], now)?.map_or(0, |l| l.len() as i64),
            ))
        }
        "lindex" => {
            arity(a.len() == 2)?;
            // Redis looks the key up before it parses the index.
            let Some(list) = get::<List>(db, &a[0], now)? else {
                return Ok(Reply::Nil);
            };
            let index = position(int(&a[1])?, list.len());
            Ok(Reply::bulk_or_nil(index.and_then(|i| list.get(i)).cloned()))
        }
        "lset" => {
            arity(a.len() == 3)?;
            let Some(list) = get::<List>(db, &a[0], now)? else {
                return Err(Reply::error("ERR no such key"));
            };
            let index = position(int(&a[1])?, list.len());
            if !index.is_some_and(|i| list.replace(i, a[2].clone())) {
                return Err(Reply::error("ERR index out of range"));
            }
            Ok(Reply::Ok)
        }
        "linsert" => {
            arity(a.len() == 4)?;
            let after = match a[1].to_ascii_lowercase().as_slice() {
                b"after" => true,
                b"before" => false,
                _ => return Err(Reply::error(SYNTAX)),
            };
            let Some(list) = get::<List>(db, &a[0], now)? else {
                return Ok(Reply::Int(0));
            };
            let Some(at) = list.iter().position(|item| *item == a[2]) else {
                return Ok(Reply::Int(-1));
            };
            list.insert(at + usize::from(after), a[3].clone());
            Ok(Reply::Int(list.len() as i64))
        }
        "lrem" => {
            arity(a.len() == 3)?;
            let count = int(&a[1])?;
            let Some(list) = get::<List>(db, &a[0], now)? else {
                return Ok(Reply::Int(0));
            };
            let removed = remove_matching(list, &a[2], count);
            db.drop_if_empty(&a[0]);
            Ok(Reply::Int(removed as i64))
        }
        "ltrim" => {
            arity(a.len() == 3)?;
            let (start, stop) = (int(&a[1])?, int(&a[2])?);
            let Some(list) = get::<List>(db, &a[0], now)? else {
                return Ok(Reply::Ok);
            };
            match range(start, stop, list.len()) {
                None => list.clear(),
                Some((from, to)) => {
                    list.truncate(to + 1);
                    list.drain(..from);
                }
            }
            db.drop_if_empty(&a[0]);
            Ok(Reply::Ok)
        }
        "lpos" => {
            arity(a.len() >= 2)?;
            let options = LposOptions::parse(&a[2..])?;
            let Some(list) = get::<List>(db, &a[0], now)? else {
                return Ok(if options.count.is_some() {
                    Reply::Array(Vec::new())
                } else {
                    Reply::Nil
                });
            };
            Ok(lpos(list, &a[1], &options))
        }
        _ => unreachable!("dispatched here"),
    }
}

/// A Redis list index (negative from the end) as a position, if in range.
fn position(index: i64, len: usize) -> Option<usize> {
    let index = if index < 0 {
        (len as i64).checked_add(index)?
    } else {
        index
    };
    usize::try_from(index).ok().filter(|i| *i < len)
}

/// LREM: removes up to |count| items equal to `item` (all if 0), from the
/// head if count > 0, from the tail if < 0.
fn remove_matching(list: &mut List, item: &[u8], count: i64) -> usize {
    let limit = if count == 0 {
        usize::MAX
    } else {
        usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX)
    };
    let mut removed = 0;
    if count >= 0 {
        list.retain(|x| {
            let drop = removed < limit && x == item;
            removed += usize::from(drop);
            !drop
        });
    } else {
        let mut kept: List = List::with_capacity(list.len());
        while let Some(x) = list.pop_back() {
            if removed < limit && x == item {
                removed += 1;
            } else {
                kept.push_front(x);
            }
        }
        *list = kept;
    }
    removed
}

/// LPOS's RANK, COUNT and MAXLEN.
struct LposOptions {
    /// Redis's `rank` after parsing: negative searches from the tail.
    rank: i64,
    /// `None`: no COUNT (the reply is one index or nil).
    count: Option<i64>,
    /// 0: no limit.
    maxlen: i64,
}

impl LposOptions {
    fn parse(args: &[Vec<u8>]) -> Result<Self, Reply> {
        let mut options = LposOptions {
            rank: 1,
            count: None,
            maxlen: 0,
        };
        let mut i = 0;
        while i < args.len() {
            let value = args.get(i + 1).ok_or_else(|| Reply::error(SYNTAX))?;
            let non_negative = |message: &str| {
                int(value)
                    .ok()
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| Reply::error(message))
            };
            match args[i].to_ascii_lowercase().as_slice() {
                b"rank" => {
                    // Redis 7.0 takes any long here (7.2 refuses LONG_MIN).
                    options.rank = int(value)?;
                    if options.rank == 0 {
                        return Err(Reply::error(
                            "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list",
                        ));
                    }
                }
                b"count" => options.count = Some(non_negative("ERR COUNT can't be negative")?),
                b"maxlen" => options.maxlen = non_negative("ERR MAXLEN can't be negative")?,
                _ => return Err(Reply::error(SYNTAX)),
            }
            i += 2;
        }
        Ok(options)
    }
}

/// LPOS on an existing list: as Redis 7.0 computes it, including a RANK of
/// LONG_MIN, whose negation stays negative in C (every match then counts,
/// and COUNT never stops the scan): wrapping arithmetic reproduces that.
fn lpos(list: &List, item: &[u8], options: &LposOptions) -> Reply {
    let from_tail = options.rank < 0;
    let rank = if from_tail {
        options.rank.wrapping_neg()
    } else {
        options.rank
    };
    let len = list.len();
    let maxlen = usize::try_from(options.maxlen).unwrap_or(usize::MAX);
    let scan_len = if maxlen == 0 { len } else { len.min(maxlen) };
    let at = |i: usize| if from_tail { len - 1 - i } else { i };
    let mut matches: i64 = 0;
    let mut found = Vec::new();
    for i in 0..scan_len {
        if list[at(i)] != item {
            continue;
        }
        matches += 1;
        if matches < rank {
            continue;
        }
        match options.count {
            None => return Reply::Int(at(i) as i64),
            Some(count) => {
                found.push(Reply::Int(at(i) as i64));
                if count != 0 && matches.wrapping_sub(rank).wrapping_add(1) >= count {
                    break;
                }
            }
        }
    }
    match options.count {
        None => Reply::Nil,
        Some(_) => Reply::Array(found),
    }
}
