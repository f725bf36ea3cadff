//! LMOVE, RPOPLPUSH, LMPOP and ZMPOP, and the one-key pops and moves under
//! them that the blocking commands (`crate::blocking`) also use, both when
//! they find data at once and when they serve a waiter later: one code
//! path, so a served waiter gets exactly the reply the command would have
//! given had the data been there.

use super::{int, Call, SYNTAX, WRONGTYPE};
use crate::keyspace::Value;
use crate::protocol::Reply;
use crate::service::Kv;

/// A list end (`LEFT|RIGHT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Left,
    Right,
}

impl End {
    pub fn parse(arg: &[u8]) -> Option<End> {
        if arg.eq_ignore_ascii_case(b"left") {
            Some(End::Left)
        } else if arg.eq_ignore_ascii_case(b"right") {
            Some(End::Right)
        } else {
            None
        }
    }
}

/// What one key gives a (blocking) pop.
#[derive(Debug, Clone)]
pub enum Op {
    /// BLPOP/BRPOP (`count: None`, reply `[key, value]`) and LMPOP/BLMPOP
    /// (reply `[key, [values]]`).
    List { end: End, count: Option<usize> },
    /// LMOVE/BLMOVE/RPOPLPUSH/BRPOPLPUSH into `dst` (reply: the value).
    Move { from: End, to: End, dst: Vec<u8> },
    /// BZPOPMIN/BZPOPMAX (`count: None`, reply `[key, member, score]`) and
    /// ZMPOP/BZMPOP (reply `[key, [[member, score], ...]]`).
    ZSet { max: bool, count: Option<usize> },
}

impl Op {
    /// Whether a value of this type can serve the op (a waiter on a key
    /// that became another type stays blocked, as in Redis 7.0).
    pub fn accepts(&self, value: &Value) -> bool {
        match self {
            Op::List { .. } | Op::Move { .. } => matches!(value, Value::List(_)),
            Op::ZSet { .. } => matches!(value, Value::ZSet(_)),
        }
    }
}

/// Runs `op` on `key` of the mounted database (number `db`, for WATCH):
/// `Ok(None)` if there is no key, `Err` with WRONGTYPE if `key` (or a move's
/// destination) holds another type.
pub fn apply(
    kv: &mut Kv,
    db: usize,
    key: &[u8],
    op: &Op,
    now: i64,
) -> Result<Option<Reply>, Reply> {
    let reply = match op {
        Op::List { end, count } => {
            let list = match kv.db.get_mut(key, now) {
                None => return Ok(None),
                Some(Value::List(list)) => list,
                Some(_) => return Err(Reply::error(WRONGTYPE)),
            };
            let n = count.unwrap_or(1).min(list.len());
            if n == 0 {
                return Ok(None);
            }
            let mut popped = Vec::with_capacity(n);
            for _ in 0..n {
                let item = match end {
                    End::Left => list.pop_front(),
                    End::Right => list.pop_back(),
                };
                popped.extend(item);
            }
            kv.db.drop_if_empty(key);
            let key = Reply::Bulk(key.to_vec());
            match count {
                None => Reply::Array(vec![key, Reply::bulk_or_nil(popped.pop())]),
                Some(_) => Reply::Array(vec![key, Reply::array_of_bulks(popped)]),
            }
        }
        Op::Move { from, to, dst } => match lmove(kv, db, key, dst, *from, *to, now)? {
            None => return Ok(None),
            Some(value) => Reply::Bulk(value),
        },
        Op::ZSet { max, count } => {
            let zset = match kv.db.get_mut(key, now) {
                None => return Ok(None),
                Some(Value::ZSet(zset)) => zset,
                Some(_) => return Err(Reply::error(WRONGTYPE)),
            };
            let n = count.unwrap_or(1).min(zset.len());
            if n == 0 {
                return Ok(None);
            }
            let mut popped = Vec::with_capacity(n);
            for _ in 0..n {
                let item = if *max { zset.pop_max() } else { zset.pop_min() };
                popped.extend(item);
            }
            kv.db.drop_if_empty(key);
            let key = Reply::Bulk(key.to_vec());
            match count {
                None => {
                    let mut out = vec![key];
                    for (member, score) in popped {
                        out.push(Reply::Bulk(member));
                        out.push(super::zsets::score_reply(score));
                    }
                    Reply::Array(out)
                }
                Some(_) => {
                    let pairs = popped.into_iter().map(|(m, s)| {
                        Reply::Array(vec![Reply::Bulk(m), super::zsets::score_reply(s)])
                    });
                    Reply::Array(vec![key, Reply::Array(pairs.collect())])
                }
            }
        }
    };
    crate::multi::touch_key(kv, db, key);
    Ok(Some(reply))
}

/// Moves one element from `src`'s `from` end to `dst`'s `to` end (Redis's
/// `lmoveGenericCommand`): `None` if `src` does not exist; WRONGTYPE if
/// either holds another type (checked before anything moves).
fn lmove(
    kv: &mut Kv,
    db: usize,
    src: &[u8],
    dst: &[u8],
    from: End,
    to: End,
    now: i64,
) -> Result<Option<Vec<u8>>, Reply> {
    match kv.db.get(src, now) {
        None => return Ok(None),
        Some(Value::List(_)) => {}
        Some(_) => return Err(Reply::error(WRONGTYPE)),
    }
    match kv.db.get(dst, now) {
        None | Some(Value::List(_)) => {}
        Some(_) => return Err(Reply::error(WRONGTYPE)),
    }
    let Some(Value::List(list)) = kv.db.get_mut(src, now) else {
        return Ok(None);
    };
    let Some(value) = (match from {
        End::Left => list.pop_front(),
        End::Right => list.pop_back(),
    }) else {
        return Ok(None);
    };
    if src != dst {
        kv.db.drop_if_empty(src);
        if !kv.db.exists(dst, now) {
            // A new key: `Db::set` signals it ready for its waiters.
            kv.db.set(dst, Value::List(Default::default()), false);
        }
    }
    if let Some(Value::List(list)) = kv.db.get_mut(dst, now) {
        match to {
            End::Left => list.push_front(value.clone()),
            End::Right => list.push_back(value.clone()),
        }
    }
    crate::multi::touch_key(kv, db, dst);
    Ok(Some(value))
}

/// The parsed arguments of LMPOP/ZMPOP/BLMPOP/BZMPOP from `numkeys` on.
pub struct Mpop<'a> {
    pub keys: &'a [Vec<u8>],
    pub op: Op,
}

/// Parses `numkeys key... LEFT|RIGHT` (or `MIN|MAX` when `zset`)
/// `[COUNT count]` as Redis's `lmpopGenericCommand`/`zmpopGenericCommand`.
pub fn parse_mpop(args: &[Vec<u8>], zset: bool) -> Result<Mpop<'_>, Reply> {
    let numkeys = match args.first().map(|a| int(a)) {
        Some(Ok(n)) if n >= 1 => n as usize,
        _ => return Err(Reply::error("ERR numkeys should be greater than 0")),
    };
    let where_at = numkeys.saturating_add(1);
    let Some(side) = args.get(where_at) else {
        return Err(Reply::error(SYNTAX));
    };
    let (end, max) = if zset {
        if side.eq_ignore_ascii_case(b"min") {
            (End::Left, false)
        } else if side.eq_ignore_ascii_case(b"max") {
            (End::Left, true)
        } else {
            return Err(Reply::error(SYNTAX));
        }
    } else {
        (End::parse(side).ok_or_else(|| Reply::error(SYNTAX))?, false)
    };
    let mut count = None;
    let mut i = where_at + 1;
    while i < args.len() {
        if count.is_none() && args[i].eq_ignore_ascii_case(b"count") && i + 1 < args.len() {
            match int(&args[i + 1]) {
                Ok(n) if n >= 1 => count = Some(n as usize),
                _ => return Err(Reply::error("ERR count should be greater than 0")),
            }
            i += 2;
        } else {
            return Err(Reply::error(SYNTAX));
        }
    }
    let count = Some(count.unwrap_or(1));
    let op = if zset {
        Op::ZSet { max, count }
    } else {
        Op::List { end, count }
    };
    Ok(Mpop {
        keys: &args[1..where_at],
        op,
    })
}

/// Tries `op` on each key in turn: the first key that has data answers; a
/// key of another type answers WRONGTYPE. `None` if every key is empty.
pub fn first_ready(
    kv: &mut Kv,
    db: usize,
    keys: &[Vec<u8>],
    op: &Op,
    now: i64,
) -> Result<Option<Reply>, Reply> {
    for key in keys {
        if let Some(reply) = apply(kv, db, key, op, now)? {
            return Ok(Some(reply));
        }
    }
    Ok(None)
}

/// LMOVE, RPOPLPUSH, LMPOP, ZMPOP for a client on database `db`.
pub fn run(kv: &mut Kv, db: usize, call: &Call<'_>) -> Reply {
    let a = call.args;
    let result = match call.name {
        "lmove" if a.len() == 4 => match (End::parse(&a[2]), End::parse(&a[3])) {
            (Some(from), Some(to)) => {
                let op = Op::Move {
                    from,
                    to,
                    dst: a[1].clone(),
                };
                apply(kv, db, &a[0], &op, call.now).map(|r| r.unwrap_or(Reply::Nil))
            }
            _ => Err(Reply::error(SYNTAX)),
        },
        "rpoplpush" if a.len() == 2 => {
            let op = Op::Move {
                from: End::Right,
                to: End::Left,
                dst: a[1].clone(),
            };
            apply(kv, db, &a[0], &op, call.now).map(|r| r.unwrap_or(Reply::Nil))
        }
        "lmpop" | "zmpop" if a.len() >= 3 => parse_mpop(a, call.name == "zmpop").and_then(|m| {
            first_ready(kv, db, m.keys, &m.op, call.now).map(|r| r.unwrap_or(Reply::NilArray))
        }),
        _ => Err(call.wrong_arity()),
    };
    match result {
        Ok(reply) | Err(reply) => reply,
    }
}
