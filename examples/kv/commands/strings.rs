//! String commands.

use super::{float, fmt_float, int, Call, NOT_INTEGER, SYNTAX, WRONGTYPE};
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
            let at = expire_at(call, &a[1], call.name == "setex", true)?;
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
            get_str(kv, &a[0], call.now)?;
            match kv.db.get_mut(&a[0], call.now) {
                Some(Value::Str(s)) => {
                    let s = s.make_mut();
                    s.extend_from_slice(&a[1]);
                    Ok(Reply::Int(s.len() as i64))
                }
                _ => {
                    kv.db.set(&a[0], Value::Str(Blob::from(&a[1][..])), false);
                    Ok(Reply::Int(a[1].len() as i64))
                }
            }
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
            let by = float(&a[1])?;
            let current = match get_str(kv, &a[0], call.now)? {
                None => 0.0,
                Some(s) => float(s)?,
            };
            let next = current + by;
            if !next.is_finite() {
                return Err(Reply::error("ERR increment would produce NaN or Infinity"));
            }
            let text = fmt_float(next);
            store_keep_ttl(kv, &a[0], text.clone(), call.now);
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

/// An expire time argument of SET or SETEX as Unix milliseconds, refused
/// as Redis refuses it: not positive, or overflowing in milliseconds.
fn expire_at(call: &Call<'_>, arg: &[u8], seconds: bool, relative: bool) -> Result<i64, Reply> {
    let n = int(arg)?;
    let invalid = || {
        Reply::error(format!(
            "ERR invalid expire time in '{}' command",
            call.name
        ))
    };
    if n <= 0 {
        return Err(invalid());
    }
    let ms = if seconds {
        n.checked_mul(1000).ok_or_else(invalid)?
    } else {
        n
    };
    if relative {
        ms.checked_add(call.now).ok_or_else(invalid)
    } else {
        Ok(ms)
    }
}

/// SET key value [NX|XX] [GET] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL]
fn set(kv: &mut Kv, call: &Call<'_>) -> Result<Reply, Reply> {
    let a = call.args;
    let (mut nx, mut xx, mut get, mut keep_ttl) = (false, false, false, false);
    let mut expires_at: Option<i64> = None;
    let mut i = 2;
    while i < a.len() {
        let opt = a[i].to_ascii_lowercase();
        match opt.as_slice() {
            b"nx" if !xx => nx = true,
            b"xx" if !nx => xx = true,
            b"get" => get = true,
            b"keepttl" if expires_at.is_none() => keep_ttl = true,
            b"ex" | b"px" | b"exat" | b"pxat" if expires_at.is_none() && !keep_ttl => {
                let Some(value) = a.get(i + 1) else {
                    return Err(Reply::error(SYNTAX));
                };
                let seconds = matches!(opt.as_slice(), b"ex" | b"exat");
                let relative = matches!(opt.as_slice(), b"ex" | b"px");
                expires_at = Some(expire_at(call, value, seconds, relative)?);
                i += 1;
            }
            _ => return Err(Reply::error(SYNTAX)),
        }
        i += 1;
    }
    let old = if get {
        get_str(kv, &a[0], call.now)?.cloned()
    } else {
        None
    };
    // A plain SET needs no lookup before the write.
    let exists = (nx || xx) && kv.db.exists(&a[0], call.now);
    if (nx && exists) || (xx && !exists) {
        return Ok(if get {
            Reply::stored_or_nil(old)
        } else {
            Reply::Nil
        });
    }
    kv.db
        .set(&a[0], Value::Str(Blob::from(&a[1][..])), keep_ttl);
    if expires_at.is_some() {
        kv.db.set_expiry(&a[0], expires_at, call.now);
    }
    Ok(if get {
        Reply::stored_or_nil(old)
    } else {
        Reply::Ok
    })
}
