//! Generic key commands: existence, types, TTLs, renaming, COPY, SCAN.

use super::{int, Call};
use crate::glob;
use crate::keyspace::Value;
use crate::protocol::Reply;
use crate::service::Kv;

pub fn run(kv: &mut Kv, call: &Call<'_>) -> Reply {
    match keys(kv, call) {
        Ok(reply) | Err(reply) => reply,
    }
}

fn keys(kv: &mut Kv, call: &Call<'_>) -> Result<Reply, Reply> {
    let a = call.args;
    let now = call.now;
    let arity = |ok: bool| if ok { Ok(()) } else { Err(call.wrong_arity()) };
    match call.name {
        "del" | "unlink" => {
            arity(!a.is_empty())?;
            let mut n = 0;
            for key in a {
                if kv.db.exists(key, now) {
                    kv.db.remove(key);
                    n += 1;
                }
            }
            Ok(Reply::Int(n))
        }
        "exists" => {
            arity(!a.is_empty())?;
            Ok(Reply::Int(
                a.iter().filter(|key| kv.db.exists(key, now)).count() as i64,
            ))
        }
        "type" => {
            arity(a.len() == 1)?;
            Ok(Reply::Status(
                kv.db.get(&a[0], now).map_or("none", |v| v.type_name()),
            ))
        }
        "expire" | "pexpire" | "expireat" | "pexpireat" => {
            arity(a.len() >= 2)?;
            expire(kv, call)
        }
        "ttl" | "pttl" | "expiretime" | "pexpiretime" => {
            arity(a.len() == 1)?;
            let absolute = call.name.ends_with("time");
            let ms = call.name.starts_with('p');
            Ok(Reply::Int(match kv.db.expiry(&a[0], now) {
                None => -2,
                Some(None) => -1,
                Some(Some(at)) => {
                    let t = if absolute { at } else { (at - now).max(0) };
                    // Redis rounds to the nearest second in both forms.
                    if ms {
                        t
                    } else {
                        t.saturating_add(500) / 1000
                    }
                }
            }))
        }
        "touch" => {
            arity(!a.is_empty())?;
            // A read: updates each key's access time (unless NO-TOUCH).
            Ok(Reply::Int(
                a.iter().filter(|key| kv.db.get(key, now).is_some()).count() as i64,
            ))
        }
        "randomkey" => {
            arity(a.is_empty())?;
            Ok(Reply::bulk_or_nil(kv.db.random_key(now)))
        }
        "persist" => {
            arity(a.len() == 1)?;
            Ok(Reply::Int(match kv.db.expiry(&a[0], now) {
                Some(Some(_)) => i64::from(kv.db.set_expiry(&a[0], None, now)),
                _ => 0,
            }))
        }
        "keys" => {
            arity(a.len() == 1)?;
            let glob = glob::Glob::new(&a[0]);
            let found: Vec<Vec<u8>> = kv
                .db
                .live_keys(now)
                .filter(|k| matches_all(&a[0]) || glob.matches(k))
                .map(<[u8]>::to_vec)
                .collect();
            Ok(Reply::array_of_bulks(found))
        }
        "scan" => {
            arity(!a.is_empty())?;
            let cursor = scan_cursor(&a[0]).ok_or_else(|| Reply::error("ERR invalid cursor"))?;
            let (mut pattern, mut count, mut kind) = (None, 10usize, None);
            for opt in a[1..].chunks(2) {
                let [name, value] = opt else {
                    return Err(Reply::error(super::SYNTAX));
                };
                match name.to_ascii_lowercase().as_slice() {
                    b"match" => pattern = Some(value),
                    b"count" => {
                        count = usize::try_from(int(value)?)
                            .ok()
                            .filter(|c| *c > 0)
                            .ok_or_else(|| Reply::error(super::SYNTAX))?
                    }
                    b"type" => kind = Some(String::from_utf8_lossy(value).to_ascii_lowercase()),
                    _ => return Err(Reply::error(super::SYNTAX)),
                }
            }
            let (next, keys) = kv.db.scan(cursor, count, now);
            let glob = pattern
                .filter(|p| !matches_all(p))
                .map(|p| glob::Glob::new(p));
            let keys: Vec<Vec<u8>> = keys
                .into_iter()
                .filter(|k| glob.as_ref().is_none_or(|g| g.matches(k)))
                .map(<[u8]>::to_vec)
                .collect();
            let keys: Vec<Vec<u8>> = match kind {
                None => keys,
                Some(kind) => keys
                    .into_iter()
                    .filter(|k| kv.db.get(k, now).is_some_and(|v| v.type_name() == kind))
                    .collect(),
            };
            Ok(Reply::Array(vec![
                Reply::bulk(next.to_string().into_bytes()),
                Reply::array_of_bulks(keys),
            ]))
        }
        "rename" | "renamenx" => {
            arity(a.len() == 2)?;
            let nx = call.name == "renamenx";
            if !kv.db.exists(&a[0], now) {
                return Err(Reply::error("ERR no such key"));
            }
            // RENAMENX of a key to itself answers 0 (the name is taken).
            if nx && (a[0] == a[1] || kv.db.exists(&a[1], now)) {
                return Ok(Reply::Int(0));
            }
            if a[0] != a[1] {
                kv.db.rename(&a[0], a[1].clone(), now);
            }
            Ok(if nx { Reply::Int(1) } else { Reply::Ok })
        }
        _ => unreachable!("dispatched here"),
    }
}

/// EXPIRE/PEXPIRE/EXPIREAT/PEXPIREAT key time [NX|XX|GT|LT], in Redis
/// 7.0's order: options, then the time (overflow is an error; a time
/// already past deletes the key), then the key and its current TTL (no
/// TTL counts as infinite for GT and LT).
fn expire(kv: &mut Kv, call: &Call<'_>) -> Result<Reply, Reply> {
    let a = call.args;
    let now = call.now;
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for opt in &a[2..] {
        match opt.to_ascii_lowercase().as_slice() {
            b"nx" => nx = true,
            b"xx" => xx = true,
            b"gt" => gt = true,
            b"lt" => lt = true,
            _ => {
                return Err(Reply::error(format!(
                    "ERR Unsupported option {}",
                    super::c_string(opt)
                )))
            }
        }
    }
    if nx && (xx || gt || lt) {
        return Err(Reply::error(
            "ERR NX and XX, GT or LT options at the same time are not compatible",
        ));
    }
    if gt && lt {
        return Err(Reply::error(
            "ERR GT and LT options at the same time are not compatible",
        ));
    }
    let n = int(&a[1])?;
    let invalid = || {
        Reply::error(format!(
            "ERR invalid expire time in '{}' command",
            call.name
        ))
    };
    let ms = match call.name {
        "expire" | "expireat" => n.checked_mul(1000).ok_or_else(invalid)?,
        _ => n,
    };
    let base = match call.name {
        "expire" | "pexpire" => now,
        _ => 0,
    };
    let at = ms.checked_add(base).ok_or_else(invalid)?;
    let Some(current) = kv.db.expiry(&a[0], now) else {
        return Ok(Reply::Int(0));
    };
    let refused = (nx && current.is_some())
        || (xx && current.is_none())
        || (gt && current.is_none_or(|c| at <= c))
        || (lt && current.is_some_and(|c| at >= c));
    if refused {
        return Ok(Reply::Int(0));
    }
    if at <= now {
        kv.db.remove(&a[0]);
    } else {
        kv.db.set_expiry(&a[0], Some(at), now);
    }
    Ok(Reply::Int(1))
}

/// COPY source destination [DB index] [REPLACE]: `db` is the client's
/// database. The copy keeps the TTL; a destination in another database
/// is touched for WATCH here (the command table names only keys of the
/// client's database).
pub fn copy(kv: &mut Kv, call: &Call<'_>, db: usize) -> Reply {
    match copy_inner(kv, call, db) {
        Ok(reply) | Err(reply) => reply,
    }
}

fn copy_inner(kv: &mut Kv, call: &Call<'_>, db: usize) -> Result<Reply, Reply> {
    let a = call.args;
    if a.len() < 2 {
        return Err(call.wrong_arity());
    }
    let (mut dst_db, mut replace) = (db, false);
    let mut i = 2;
    while i < a.len() {
        match a[i].to_ascii_lowercase().as_slice() {
            b"replace" => replace = true,
            b"db" if i + 1 < a.len() => {
                let n = int(&a[i + 1])?;
                // Redis reads the index as a C int.
                let n = i32::try_from(n).map_err(|_| {
                    Reply::error(
                        "ERR value is out of range, value must between -2147483648 and 2147483647",
                    )
                })?;
                dst_db = usize::try_from(n)
                    .ok()
                    .filter(|d| *d < kv.db_count())
                    .ok_or_else(|| Reply::error("ERR DB index is out of range"))?;
                i += 1;
            }
            _ => return Err(Reply::error(super::SYNTAX)),
        }
        i += 1;
    }
    let (src, dst) = (&a[0], &a[1]);
    if dst_db == db && src == dst {
        return Err(Reply::error(
            "ERR source and destination objects are the same",
        ));
    }
    let Some(at) = kv.db.expiry(src, call.now) else {
        return Ok(Reply::Int(0));
    };
    if kv.db_at(dst_db).exists(dst, call.now) {
        if !replace {
            return Ok(Reply::Int(0));
        }
        kv.db_at(dst_db).remove(dst);
    }
    let value = duplicate(kv.db.get(src, call.now).expect("checked live"));
    let target = kv.db_at(dst_db);
    target.set(dst, value, false);
    if at.is_some() {
        target.set_expiry(dst, at, call.now);
    }
    crate::multi::touch_key(kv, dst_db, dst);
    Ok(Reply::Int(1))
}

/// A copy of a value (COPY), keeping what OBJECT ENCODING reports. A long
/// string's bytes are shared, not copied; editing either key copies them
/// first (`Blob::make_mut`), so the keys stay independent.
fn duplicate(value: &Value) -> Value {
    match value {
        Value::Str(s) => Value::Str(s.clone()),
        Value::List(l) => Value::List(l.clone()),
        Value::Set(s) => Value::Set(s.clone()),
        Value::Hash(h) => Value::Hash(h.clone()),
        Value::ZSet(z) => {
            // Rebuilt member by member in the same encoding, as Redis's
            // zsetDup copies a listpack or a skiplist (which keeps -0, and
            // stays one however small the set has become).
            let mut copy = if z.is_listpack() {
                crate::zset::ZSet::default()
            } else {
                crate::zset::ZSet::skiplist()
            };
            for (member, score) in z.iter() {
                copy.insert(member.to_vec(), score);
            }
            Value::ZSet(Box::new(copy))
        }
    }
}

/// Redis answers the pattern `*` alone without the matcher (which does not
/// match the empty key with it).
fn matches_all(pattern: &[u8]) -> bool {
    pattern == b"*"
}

/// A SCAN cursor as Redis reads it: C's `strtoul` (an optional sign, `-`
/// wrapping, leading zeros and the empty string allowed), refused if it
/// starts with a blank, has anything after the digits, or overflows.
pub(super) fn scan_cursor(arg: &[u8]) -> Option<u64> {
    let (negative, digits) = match arg.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, arg),
    };
    if digits.is_empty() {
        // strtoul parsed nothing: fine only if there was nothing at all.
        return arg.is_empty().then_some(0);
    }
    let mut v: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(if negative { v.wrapping_neg() } else { v })
}

#[cfg(test)]
mod tests {
    use super::scan_cursor;

    #[test]
    fn scan_cursors_parse_as_strtoul() {
        for (s, want) in [
            ("0", Some(0)),
            ("", Some(0)),
            ("00", Some(0)),
            ("+1", Some(1)),
            ("-0", Some(0)),
            ("-1", Some(u64::MAX)),
            ("18446744073709551615", Some(u64::MAX)),
            ("18446744073709551616", None),
            ("-", None),
            ("+", None),
            (" 1", None),
            ("1 ", None),
            ("1a", None),
            ("0x1", None),
        ] {
            assert_eq!(scan_cursor(s.as_bytes()), want, "{s:?}");
        }
    }
}
