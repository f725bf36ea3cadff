//! String commands: GET/SET and their variants, counters, ranges
//! (GETRANGE, SETRANGE), GETEX, and LCS (`lcs.rs`).

use super::long_double;
use super::set_args::{self, Expire, For};
use super::{int, Call, NOT_INTEGER, WRONGTYPE};
use crate::blob::Blob;
use crate::keyspace::Value;
use crate::protocol::Reply;
use crate::service::Kv;

pub fn run(kv: &mut Kv, call: &Call<'_>) -> Reply {
    match strings(kv, call) {
        Ok(reply) | Err(reply) => reply,
    }
}

/// The string at `key`: `Ok(None)` if absent, `Err(WRONGTYPE)` if another type.
fn get_str<'a>(kv: &'a mut Kv, key: &[u8], now: i64) -> Result<Option<&'a Blob>, Reply> {
    match kv.db.get(key, now) {
        None => Ok(None),
        Some(Value::Str(s)) => Ok(Some(s)),
        Some(_) => Err(Reply::error(WRONGTYPE)),
    }
}

fn strings(kv: &mut Kv, call: &Call<'_>) -> Result<Reply, Reply> {
    let a = call.args;
    let arity = |ok: bool| if ok { Ok(()) } else { Err(call.wrong_arity()) };
    match call.name {
        "get" => {
            arity(a.len() == 1)?;
            Ok(Reply::stored_or_nil(get_str(kv, &a[0], call.now)?.cloned()))
        }
        "set" => {
            arity(a.len() >= 2)?;
            set(kv, call)
        }
        "setnx" => {
            arity(a.len() == 2)?;
            if kv.db.exists(&a[0], call.now) {
                return Ok(Reply::Int(0));
            }
            kv.db.set(&a[0], Value::Str(Blob::from(&a[1][..])), false);
            Ok(Reply::Int(1))
        }
        "setex" | "psetex" => {
            arity(a.len() == 3)?;
            let kind = if call.name == "setex" {
                Expire::Ex
            } else {
                Expire::Px
            };
            let at = set_args::expire_at(call, kind, &a[1])?;
            kv.db.set(&a[0], Value::Str(Blob::from(&a[2][..])), false);
            kv.db.set_expiry(&a[0], Some(at), call.now);
            Ok(Reply::Ok)
        }
        "getset" => {
            arity(a.len() == 2)?;
            let old = get_str(kv, &a[0], call.now)?.cloned();
            kv.db.set(&a[0], Value::Str(Blob::from(&a[1][..])), false);
            Ok(Reply::stored_or_nil(old))
        }
        "getdel" => {
            arity(a.len() == 1)?;
            let old = get_str(kv, &a[0], call.now)?.cloned();
            if old.is_some() {
                kv.db.remove(&a[0]);
            }
            Ok(Reply::stored_or_nil(old))
        }
        "append" => {
            arity(a.len() == 2)?;
            append(kv, call)
        }
        "getex" => {
            arity(!a.is_empty())?;
            getex(kv, call)
        }
        "getrange" | "substr" => {
            arity(a.len() == 3)?;
            getrange(kv, call)
        }
        "setrange" => {
            arity(a.len() == 3)?;
            setrange(kv, call)
        }
        "lcs" => {
            arity(a.len() >= 2)?;
            super::lcs::run(kv, call)
        }
        "strlen" => {
            arity(a.len() == 1)?;
            Ok(Reply::Int(
                get_str(kv, &a[0], call.now)?.map_or(0, |s| s.len() as i64),
            ))
        }
        "incr" | "decr" => {
            arity(a.len() == 1)?;
            incr_by(
                kv,
                &a[0],
                if call.name == "incr" { 1 } else { -1 },
                call.now,
            )
        }
        "incrby" | "decrby" => {
            arity(a.len() == 2)?;
            let by = int(&a[1])?;
            let by = if call.name == "incrby" {
                by
            } else {
                by.checked_neg()
                    .ok_or_else(|| Reply::error("ERR decrement would overflow"))?
            };
            incr_by(kv, &a[0], by, call.now)
        }
        "incrbyfloat" => {
            arity(a.len() == 2)?;
            // Redis's order: the type, the stored value, the increment.
            let invalid = || Reply::error("ERR value is not a valid float");
            let current = match get_str(kv, &a[0], call.now)? {
                None => long_double::parse(b"0"),
                Some(s) => long_double::parse(s),
            }
            .ok_or_else(invalid)?;
            let by = long_double::parse(&a[1]).ok_or_else(invalid)?;
            let next = long_double::add(current, by)
                .ok_or_else(|| Reply::error("ERR increment would produce NaN or Infinity"))?;
            let text = long_double::format(next);
            // Redis stores the result as text (EMBSTR or RAW by length),
            // never as an integer, even when it is one ("3").
            let stored = Blob::Heap(text.as_slice().into());
            match kv.db.get_mut(&a[0], call.now) {
                Some(Value::Str(s)) => *s = stored,
                _ => kv.db.set(&a[0], Value::Str(stored), false),
            }
            Ok(Reply::Bulk(text))
        }
        "mget" => {
            arity(!a.is_empty())?;
            let values = a
                .iter()
                .map(|key| match kv.db.get(key, call.now) {
                    Some(Value::Str(s)) => Reply::Stored(s.clone()),
                    _ => Reply::Nil,
                })
                .collect();
            Ok(Reply::Array(values))
        }
        "mset" | "msetnx" => {
            arity(!a.is_empty() && a.len().is_multiple_of(2))?;
            if call.name == "msetnx"
                && a.chunks(2)
                    .any(|kv_pair| kv.db.exists(&kv_pair[0], call.now))
            {
                return Ok(Reply::Int(0));
            }
            for pair in a.chunks(2) {
                kv.db
                    .set(&pair[0], Value::Str(Blob::from(&pair[1][..])), false);
            }
            Ok(if call.name == "mset" {
                Reply::Ok
            } else {
                Reply::Int(1)
            })
        }
        _ => unreachable!("dispatched here"),
    }
}

/// Replaces a string's bytes, keeping its TTL (INCR and friends do).
fn store_keep_ttl(kv: &mut Kv, key: &[u8], bytes: Vec<u8>, now: i64) {
    match kv.db.get_mut(key, now) {
        Some(Value::Str(s)) => *s = bytes.into(),
        _ => kv.db.set(key, Value::Str(bytes.into()), false),
    }
}

fn incr_by(kv: &mut Kv, key: &[u8], by: i64, now: i64) -> Result<Reply, Reply> {
    let current = match get_str(kv, key, now)? {
        None => 0,
        Some(s) => int(s).map_err(|_| Reply::error(NOT_INTEGER))?,
    };
    let next = current
        .checked_add(by)
        .ok_or_else(|| Reply::error("ERR increment or decrement would overflow"))?;
    store_keep_ttl(
        kv,
        key,
        itoa::Buffer::new().format(next).as_bytes().to_vec(),
        now,
    );
    Ok(Reply::Int(next))
}

/// SET key value [NX|XX] [GET] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL], in
/// Redis's order: options, expire time, GET's read (WRONGTYPE), NX/XX.
fn set(kv: &mut Kv, call: &Call<'_>) -> Result<Reply, Reply> {
    let a = call.args;
    let o = set_args::parse(&a[2..], For::Set)?;
    let expires_at = match o.expire {
        Some((kind, arg)) => Some(set_args::expire_at(call, kind, arg)?),
        None => None,
    };
    let old = if o.get {
        get_str(kv, &a[0], call.now)?.cloned()
    } else {
        None
    };
    // A plain SET needs no lookup before the write.
    let exists = (o.nx || o.xx) && kv.db.exists(&a[0], call.now);
    if (o.nx && exists) || (o.xx && !exists) {
        return Ok(if o.get {
            Reply::stored_or_nil(old)
        } else {
            Reply::Nil
        });
    }
    kv.db
        .set(&a[0], Value::Str(Blob::from(&a[1][..])), o.keep_ttl);
    if expires_at.is_some() {
        kv.db.set_expiry(&a[0], expires_at, call.now);
    }
    Ok(if o.get {
        Reply::stored_or_nil(old)
    } else {
        Reply::Ok
    })
}

/// GETEX key [EX s|PX ms|EXAT s|PXAT ms|PERSIST]: the value, then the TTL
/// change (an absolute time already past deletes the key, as Redis does).
fn getex(kv: &mut Kv, call: &Call<'_>) -> Result<Reply, Reply> {
    let a = call.args;
    let o = set_args::parse(&a[1..], For::GetEx)?;
    let Some(value) = get_str(kv, &a[0], call.now)?.cloned() else {
        return Ok(Reply::Nil);
    };
    if let Some((kind, arg)) = o.expire {
        let at = set_args::expire_at(call, kind, arg)?;
        let absolute = matches!(kind, Expire::ExAt | Expire::PxAt);
        if absolute && at <= call.now {
            kv.db.remove(&a[0]);
        } else {
            kv.db.set_expiry(&a[0], Some(at), call.now);
        }
    } else if o.persist {
        kv.db.set_expiry(&a[0], None, call.now);
    }
    Ok(Reply::Stored(value))
}

/// GETRANGE/SUBSTR key start end, with Redis 7.0's index rules (a negative
/// end clamps to 0, so `GETRANGE k 0 -100` is the first byte; Redis 8
/// answers the empty string there).
fn getrange(kv: &mut Kv, call: &Call<'_>) -> Result<Reply, Reply> {
    let a = call.args;
    let (start, end) = (int(&a[1])?, int(&a[2])?);
    let Some(s) = get_str(kv, &a[0], call.now)? else {
        return Ok(Reply::Bulk(Vec::new()));
    };
    let len = s.len() as i64;
    if start < 0 && end < 0 && start > end {
        return Ok(Reply::Bulk(Vec::new()));
    }
    let start = if start < 0 { len + start } else { start }.max(0);
    let end = if end < 0 { len + end } else { end }.max(0).min(len - 1);
    if start > end || len == 0 {
        return Ok(Reply::Bulk(Vec::new()));
    }
    Ok(Reply::Bulk(s[start as usize..=end as usize].to_vec()))
}

/// Redis's limit on a string a command would build: `proto-max-bulk-len`.
fn check_length(kv: &Kv, total: Option<i64>) -> Result<(), Reply> {
    match total {
        Some(n) if n <= kv.proto_max_bulk_len as i64 => Ok(()),
        _ => Err(Reply::error(
            "ERR string exceeds maximum allowed size (proto-max-bulk-len)",
        )),
    }
}

/// SETRANGE key offset value: the string grows (zero-filled) to hold the
/// value at the offset, never past `proto-max-bulk-len`; an empty value
/// changes nothing.
fn setrange(kv: &mut Kv, call: &Call<'_>) -> Result<Reply, Reply> {
    let a = call.args;
    let offset = int(&a[1])?;
    if offset < 0 {
        return Err(Reply::error("ERR offset is out of range"));
    }
    let value = &a[2];
    let current_len = get_str(kv, &a[0], call.now)?.map(|s| s.len());
    if value.is_empty() {
        return Ok(Reply::Int(current_len.unwrap_or(0) as i64));
    }
    let end = offset.checked_add(value.len() as i64);
    check_length(kv, end)?;
    // Checked above: at most proto-max-bulk-len.
    let (offset, end) = (offset as usize, end.unwrap_or(0) as usize);
    if current_len.is_none() {
        kv.db.set(&a[0], Value::Str(Blob::Raw(Vec::new())), false);
    }
    let Some(Value::Str(s)) = kv.db.get_mut(&a[0], call.now) else {
        unreachable!("a string was found or stored above");
    };
    let bytes = s.make_mut();
    if bytes.len() < end {
        bytes.resize(end, 0);
    }
    bytes[offset..end].copy_from_slice(value);
    Ok(Reply::Int(bytes.len() as i64))
}

/// APPEND key value: a new key is stored as SET stores it; an existing
/// one grows in place, never past `proto-max-bulk-len`.
fn append(kv: &mut Kv, call: &Call<'_>) -> Result<Reply, Reply> {
    let a = call.args;
    let Some(len) = get_str(kv, &a[0], call.now)?.map(|s| s.len()) else {
        kv.db.set(&a[0], Value::Str(Blob::from(&a[1][..])), false);
        return Ok(Reply::Int(a[1].len() as i64));
    };
    check_length(kv, (len as i64).checked_add(a[1].len() as i64))?;
    let Some(Value::Str(s)) = kv.db.get_mut(&a[0], call.now) else {
        unreachable!("a string was found above");
    };
    let s = s.make_mut();
    s.extend_from_slice(&a[1]);
    Ok(Reply::Int(s.len() as i64))
}
