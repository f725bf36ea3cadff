//! Generic key commands.

use super::{int, Call};
use crate::glob;
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
            arity(a.len() == 2)?;
            let n = int(&a[1])?;
            // Redis refuses a time that overflows in milliseconds.
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
            if !kv.db.exists(&a[0], now) {
                return Ok(Reply::Int(0));
            }
            if at <= now {
                kv.db.remove(&a[0]);
            } else {
                kv.db.set_expiry(&a[0], Some(at), now);
            }
            Ok(Reply::Int(1))
        }
        "ttl" | "pttl" => {
            arity(a.len() == 1)?;
            Ok(Reply::Int(match kv.db.expiry(&a[0], now) {
                None => -2,
                Some(None) => -1,
                Some(Some(at)) if call.name == "ttl" => (at - now + 500) / 1000,
                Some(Some(at)) => at - now,
            }))
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
            let found: Vec<Vec<u8>> = kv
                .db
                .live_keys(now)
                .filter(|k| matches_all(&a[0]) || glob::matches(&a[0], k))
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
            let keys: Vec<Vec<u8>> = keys
                .into_iter()
                .filter(|k| pattern.is_none_or(|p| matches_all(p) || glob::matches(p, k)))
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
        "rename" => {
            arity(a.len() == 2)?;
            if kv.db.rename(&a[0], a[1].clone(), now) {
                Ok(Reply::Ok)
            } else {
                Err(Reply::error("ERR no such key"))
            }
        }
        _ => unreachable!("dispatched here"),
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
