//! OBJECT ENCODING | REFCOUNT | IDLETIME | FREQ | HELP, answering what
//! redis-server 7.0 would for the same value.
//!
//! kv does not store values in Redis's encodings, so ENCODING is derived
//! from the value with Redis 7.0's rules and default thresholds:
//! * strings: `int` for a decimal 64-bit integer of at most 20 bytes as SET
//!   stores it, `embstr` up to 44 bytes, `raw` beyond, and `raw` for any
//!   value edited in place (APPEND, SETRANGE), as Redis does; INCRBYFLOAT's
//!   results are text (`embstr`/`raw`) even when whole (`blob.rs` keeps
//!   that distinction);
//! * lists: `quicklist` (7.0 has no `listpack` lists; 7.2 does);
//! * sets: `intset` while every member is an integer and there are at most
//!   512 (`set-max-intset-entries`), else `hashtable` (7.0 has no
//!   `listpack` sets);
//! * hashes: `listpack` up to 512 fields with fields and values of at most
//!   64 bytes, else `hashtable`;
//! * sorted sets: `listpack` up to 128 members of at most 64 bytes, else
//!   `skiplist`.
//!
//! Not followed: Redis never converts a collection back when it shrinks
//! (a hash that once had 129 fields stays `hashtable` after HDEL), while
//! kv answers from the value's current contents; tracking that would need
//! a flag on every collection, set by every write. The derivation costs at
//! most 512 member checks (larger values are decided by their size).
//!
//! REFCOUNT is 2147483647 for Redis's shared integers (0..9999, stored as
//! `int`) and 1 otherwise. IDLETIME is the seconds since the key was last
//! read or written (the keyspace's LRU clock, as Redis's). FREQ answers
//! Redis's error for a non-LFU policy (kv has no LFU policy).

use super::Call;
use crate::blob::Blob;
use crate::keyspace::Value;
use crate::protocol::{string2ll, Reply};
use crate::service::Kv;

const HELP: &[&str] = &[
    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
    "HELP",
    "    Prints this help.",
];

/// Redis's thresholds (7.0 defaults).
const SET_MAX_INTSET_ENTRIES: usize = 512;
const HASH_MAX_LISTPACK_ENTRIES: usize = 512;
const MAX_LISTPACK_VALUE: usize = 64;
const EMBSTR_LIMIT: usize = 44;
/// Redis's shared integers, 0..OBJ_SHARED_INTEGERS, have this refcount.
const SHARED_INTEGERS: i64 = 10_000;
const SHARED_REFCOUNT: i64 = i32::MAX as i64;

pub fn run(kv: &mut Kv, call: &Call<'_>) -> Reply {
    let a = call.args;
    let Some(sub) = a.first() else {
        return call.wrong_arity();
    };
    let lower = sub.to_ascii_lowercase();
    let name = match lower.as_slice() {
        b"help" => "help",
        b"encoding" => "encoding",
        b"refcount" => "refcount",
        b"idletime" => "idletime",
        b"freq" => "freq",
        _ => {
            return Reply::error(format!(
                "ERR unknown subcommand '{}'. Try OBJECT HELP.",
                super::c_string(&sub[..sub.len().min(128)])
            ))
        }
    };
    let want = if name == "help" { 1 } else { 2 };
    if a.len() != want {
        return Reply::error(format!(
            "ERR wrong number of arguments for 'object|{name}' command"
        ));
    }
    if name == "help" {
        return Reply::Array(HELP.iter().map(|line| Reply::Status(line)).collect());
    }
    // OBJECT does not count as an access (Redis looks up with NOTOUCH).
    if !kv.db.exists(&a[1], call.now) {
        return Reply::Null;
    }
    let Some(value) = kv.db.peek(&a[1], call.now) else {
        return Reply::Null;
    };
    match name {
        "encoding" => Reply::bulk(encoding(value).as_bytes().to_vec()),
        "refcount" => Reply::Int(match value {
            Value::Str(Blob::Inline(s)) if shared_integer(s.as_slice()) => SHARED_REFCOUNT,
            _ => 1,
        }),
        "idletime" => {
            let clock = crate::keyspace::lru_clock(call.now);
            let access = kv.db.access_time(&a[1], call.now).unwrap_or(clock);
            Reply::Int(crate::keyspace::idle_secs(access, clock) as i64)
        }
        _ => Reply::error(
            "ERR An LFU maxmemory policy is not selected, access frequency not tracked. \
             Please note that when switching between policies at runtime LRU and LFU data \
             will take some time to adjust.",
        ),
    }
}

/// The encoding Redis 7.0 would report for `value` (see the module doc).
pub fn encoding(value: &Value) -> &'static str {
    match value {
        Value::Str(Blob::Inline(s)) if integer(s.as_slice()).is_some() => "int",
        Value::Str(Blob::Inline(_)) => "embstr",
        Value::Str(Blob::Heap(s)) if s.len() <= EMBSTR_LIMIT => "embstr",
        Value::Str(_) => "raw",
        Value::List(_) => "quicklist",
        Value::Set(s)
            if s.len() <= SET_MAX_INTSET_ENTRIES && s.iter().all(|m| integer(m).is_some()) =>
        {
            "intset"
        }
        Value::Set(_) => "hashtable",
        Value::Hash(h)
            if h.len() <= HASH_MAX_LISTPACK_ENTRIES
                && h.iter().all(|(f, v)| {
                    f.len() <= MAX_LISTPACK_VALUE && v.len() <= MAX_LISTPACK_VALUE
                }) =>
        {
            "listpack"
        }
        Value::Hash(_) => "hashtable",
        // The set tracks this itself: Redis never converts a skiplist back.
        Value::ZSet(z) if z.is_listpack() => "listpack",
        Value::ZSet(_) => "skiplist",
    }
}

/// The value as Redis's `string2l` reads it for the `int` encoding.
fn integer(bytes: &[u8]) -> Option<i64> {
    if bytes.len() > 20 {
        return None;
    }
    string2ll(bytes)
}

fn shared_integer(bytes: &[u8]) -> bool {
    integer(bytes).is_some_and(|n| (0..SHARED_INTEGERS).contains(&n))
}
