//! Command dispatch: name -> handler, with Redis's arity checks and errors.

mod aggregate;
pub mod config;
mod element_scan;
mod hashes;
mod keys;
mod lists;
mod long_double;
pub mod pops;
mod sampling;
mod server;
mod sets;
mod strings;
mod zset_args;
mod zset_ops;
mod zset_random;
mod zset_range;
pub mod zsets;

use baton::{ConnId, Ctx};

pub use server::{auth, gate};

use crate::protocol::Reply;
use crate::service::Kv;

pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
pub const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
pub const SYNTAX: &str = "ERR syntax error";

/// One call: the command (lowercase), its arguments, and the time.
pub struct Call<'a> {
    pub name: &'a str,
    pub args: &'a [Vec<u8>],
    /// Unix time in milliseconds, read once per request.
    pub now: i64,
}

impl Call<'_> {
    pub fn wrong_arity(&self) -> Reply {
        Reply::error(format!(
            "ERR wrong number of arguments for '{}' command",
            self.name
        ))
    }
}

/// Parses a Redis integer argument as redis-server does (`string2ll`: no
/// `+`, no spaces, no leading zeros, no `-0`, at most 20 bytes).
pub fn int(arg: &[u8]) -> Result<i64, Reply> {
    crate::protocol::string2ll(arg).ok_or_else(|| Reply::error(NOT_INTEGER))
}

/// Parses a Redis float argument (`inf`, `-inf` allowed; NaN is not).
pub fn float(arg: &[u8]) -> Result<f64, Reply> {
    let s = std::str::from_utf8(arg).map_err(|_| Reply::error("ERR value is not a valid float"))?;
    let v: f64 = match s.to_ascii_lowercase().as_str() {
        "inf" | "+inf" => f64::INFINITY,
        "-inf" => f64::NEG_INFINITY,
        other => other
            .parse()
            .map_err(|_| Reply::error("ERR value is not a valid float"))?,
    };
    if v.is_nan() {
        return Err(Reply::error("ERR value is not a valid float"));
    }
    Ok(v)
}

/// Formats a float as Redis does for replies (shortest round-trip form).
pub fn fmt_float(v: f64) -> Vec<u8> {
    if v == f64::INFINITY {
        b"inf".to_vec()
    } else if v == f64::NEG_INFINITY {
        b"-inf".to_vec()
    } else {
        format!("{v}").into_bytes()
    }
}

/// Normalises Redis's inclusive `start..stop` indices (negative from the
/// end) against `len`; `None` if the range is empty.
pub fn range(start: i64, stop: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if start < 0 {
        (len + start).max(0)
    } else {
        start
    };
    let stop = if stop < 0 {
        len + stop
    } else {
        stop.min(len - 1)
    };
    (start <= stop && start < len).then_some((start as usize, stop as usize))
}

/// Runs one request. `None` means the reply was already sent (pub/sub).
pub fn dispatch(
    kv: &mut Kv,
    ctx: &mut Ctx<'_, Kv>,
    conn: ConnId,
    request: &[Vec<u8>],
) -> Option<Reply> {
    let mut lower = [0u8; 32];
    let owned;
    let name = match lowercase_ascii(&request[0], &mut lower) {
        Some(name) => name,
        None => {
            owned = String::from_utf8_lossy(&request[0]).to_ascii_lowercase();
            owned.as_str()
        }
    };
    let call = Call {
        name,
        args: &request[1..],
        now: kv.clock.now_ms(ctx.now()),
    };
    if let Some(reply) = server::gate(kv, conn, &call) {
        return Some(reply);
    }
    let reply = match call.name {
        "ping" | "echo" | "quit" | "auth" | "info" => return server::run(kv, ctx, conn, &call),
        "subscribe" | "unsubscribe" | "publish" => return crate::pubsub::run(kv, ctx, conn, &call),
        "get" | "set" | "setnx" | "setex" | "psetex" | "getset" | "getdel" | "append"
        | "strlen" | "incr" | "incrby" | "decr" | "decrby" | "incrbyfloat" | "mget" | "mset"
        | "msetnx" => strings::run(kv, &call),
        "del" | "unlink" | "exists" | "type" | "expire" | "pexpire" | "expireat" | "pexpireat"
        | "ttl" | "pttl" | "persist" | "keys" | "scan" | "rename" => keys::run(kv, &call),
        "lpush" | "rpush" | "lpushx" | "rpushx" | "lpop" | "rpop" | "lrange" | "llen"
        | "lindex" | "lset" | "linsert" | "lrem" | "ltrim" | "lpos" => lists::run(kv, &call),
        "hset" | "hmset" | "hsetnx" | "hget" | "hmget" | "hdel" | "hgetall" | "hkeys" | "hvals"
        | "hlen" | "hexists" | "hstrlen" | "hincrby" | "hincrbyfloat" | "hrandfield" | "hscan" => {
            hashes::run(kv, &call)
        }
        "sadd" | "srem" | "spop" | "scard" | "sismember" | "smismember" | "smembers"
        | "srandmember" | "smove" | "sinter" | "sunion" | "sdiff" | "sinterstore"
        | "sunionstore" | "sdiffstore" | "sintercard" | "sscan" => sets::run(kv, &call),
        "lmove" | "rpoplpush" | "lmpop" | "zmpop" => pops::run(kv, client_db(kv, conn), &call),
        "blpop" | "brpop" | "blmove" | "brpoplpush" | "blmpop" | "bzpopmin" | "bzpopmax"
        | "bzmpop" => return crate::blocking::run(kv, ctx, conn, client_db(kv, conn), &call),
        name if zsets::handles(name) => zsets::run(kv, &call),
        _ => unknown(&call),
    };
    Some(reply)
}

/// The database `conn` runs its commands in (mounted as `kv.db`).
fn client_db(kv: &Kv, conn: ConnId) -> usize {
    kv.clients.get(&conn).map_or(0, |c| c.session.db)
}

/// `name` lowercased into `buf` when it is short ASCII (every command
/// name): no allocation on the hot path.
pub fn lowercase_ascii<'b>(name: &[u8], buf: &'b mut [u8; 32]) -> Option<&'b str> {
    let out = buf.get_mut(..name.len())?;
    if !name.is_ascii() {
        return None;
    }
    for (o, b) in out.iter_mut().zip(name) {
        *o = b.to_ascii_lowercase();
    }
    std::str::from_utf8(out).ok()
}

/// Redis's reply to a command it does not know.
pub fn unknown(call: &Call<'_>) -> Reply {
    let mut args = String::new();
    for arg in call.args.iter().take(10) {
        args.push('\'');
        args.push_str(&String::from_utf8_lossy(arg));
        args.push_str("' ");
    }
    Reply::error(format!(
        "ERR unknown command '{}', with args beginning with: {args}",
        call.name
    ))
}
