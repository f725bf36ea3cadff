//! Command dispatch: name -> handler, with Redis's arity checks and errors.

mod aggregate;
pub mod config;
pub(crate) mod element_scan;
mod hashes;
mod keys;
mod lcs;
mod lists;
mod long_double;
mod lookup;
mod object;
pub mod pops;
mod sampling;
mod server;
mod set_args;
mod sets;
mod strings;
mod zset_args;
mod zset_ops;
mod zset_random;
mod zset_range;
pub mod zsets;

use baton::{ConnId, Ctx};

pub use lookup::lookup;
pub use server::{auth, gate};

use crate::protocol::Reply;
use crate::service::{Client, Kv};

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

/// Runs one data command of `conn` (state `client`; `sent`: the command's
/// name as the client sent it, for the unknown-command error), once
/// `session::execute` has let it through the gate. `None` means the reply
/// was already sent (pub/sub).
pub fn dispatch(
    kv: &mut Kv,
    ctx: &mut Ctx<'_, Kv>,
    conn: ConnId,
    client: &mut Client,
    call: &Call<'_>,
    sent: &[u8],
) -> Option<Reply> {
    if let Some(refused) = crate::eviction::before_command(kv, client, call) {
        return Some(refused);
    }
    let reply = match call.name {
        "ping" | "echo" | "quit" | "auth" | "info" => {
            return server::run(kv, ctx, conn, client, call)
        }
        "subscribe" | "unsubscribe" | "psubscribe" | "punsubscribe" | "publish" | "pubsub" => {
            return crate::pubsub::run(kv, ctx, conn, client, call)
        }
        "get" | "set" | "setnx" | "setex" | "psetex" | "getset" | "getdel" | "append"
        | "strlen" | "incr" | "incrby" | "decr" | "decrby" | "incrbyfloat" | "mget" | "mset"
        | "msetnx" | "getex" | "getrange" | "substr" | "setrange" | "lcs" => strings::run(kv, call),
        "del" | "unlink" | "exists" | "type" | "expire" | "pexpire" | "expireat" | "pexpireat"
        | "ttl" | "pttl" | "expiretime" | "pexpiretime" | "persist" | "keys" | "scan"
        | "rename" | "renamenx" | "touch" | "randomkey" => keys::run(kv, call),
        "copy" => keys::copy(kv, call, client.session.db),
        "object" => object::run(kv, call),
        "lpush" | "rpush" | "lpushx" | "rpushx" | "lpop" | "rpop" | "lrange" | "llen"
        | "lindex" | "lset" | "linsert" | "lrem" | "ltrim" | "lpos" => lists::run(kv, call),
        "hset" | "hmset" | "hsetnx" | "hget" | "hmget" | "hdel" | "hgetall" | "hkeys" | "hvals"
        | "hlen" | "hexists" | "hstrlen" | "hincrby" | "hincrbyfloat" | "hrandfield" | "hscan" => {
            hashes::run(kv, call)
        }
        "sadd" | "srem" | "spop" | "scard" | "sismember" | "smismember" | "smembers"
        | "srandmember" | "smove" | "sinter" | "sunion" | "sdiff" | "sinterstore"
        | "sunionstore" | "sdiffstore" | "sintercard" | "sscan" => sets::run(kv, call),
        "lmove" | "rpoplpush" | "lmpop" | "zmpop" => pops::run(kv, client.session.db, call),
        "blpop" | "brpop" | "blmove" | "brpoplpush" | "blmpop" | "bzpopmin" | "bzpopmax"
        | "bzmpop" => {
            let db = client.session.db;
            return crate::blocking::run(kv, ctx, conn, client, db, call);
        }
        name if zsets::handles(name) => zsets::run(kv, call),
        _ => unknown(sent, call.args),
    };
    Some(reply)
}

/// Redis's answer to a request it cannot look up: an unknown command, the
/// wrong number of arguments (by the command table), an unknown subcommand.
pub fn lookup_error(call: &Call<'_>, request: &[Vec<u8>]) -> Option<Reply> {
    let Some(spec) = lookup(call.name.as_bytes()) else {
        return Some(unknown(&request[0], call.args));
    };
    let n = request.len() as i64;
    if (spec.arity > 0 && n != spec.arity) || (spec.arity < 0 && n < -spec.arity) {
        return Some(call.wrong_arity());
    }
    subcommand_error(call.name, call.args)
}

/// Redis's lookup error for a subcommand of OBJECT or PUBSUB (unknown, or
/// the wrong number of arguments), which MULTI answers at queuing time as
/// Redis does; `None` if the subcommand would run.
pub fn subcommand_error(name: &str, args: &[Vec<u8>]) -> Option<Reply> {
    // (subcommand, Redis's arity counting the command and subcommand)
    let table: &[(&str, i64)] = match name {
        "object" => &[
            ("help", 2),
            ("encoding", 3),
            ("refcount", 3),
            ("idletime", 3),
            ("freq", 3),
        ],
        "pubsub" => &[
            ("help", 2),
            ("channels", -2),
            ("numpat", 2),
            ("numsub", -2),
            ("shardchannels", -2),
            ("shardnumsub", -2),
        ],
        _ => return None,
    };
    let sub = args.first()?;
    let lower = String::from_utf8_lossy(sub).to_ascii_lowercase();
    let Some((_, arity)) = table.iter().find(|(s, _)| *s == lower) else {
        return Some(Reply::error(format!(
            "ERR unknown subcommand '{}'. Try {} HELP.",
            c_string(&sub[..sub.len().min(128)]),
            name.to_ascii_uppercase()
        )));
    };
    let n = args.len() as i64 + 1;
    let fits = if *arity > 0 { n == *arity } else { n >= -arity };
    (!fits).then(|| {
        Reply::error(format!(
            "ERR wrong number of arguments for '{name}|{lower}' command"
        ))
    })
}

/// Redis's reply to a command it does not know, byte for byte as 7.0's
/// `processCommand` builds it: the name as sent (not lowercased) cut at
/// 128 bytes, then arguments quoted while the list is under 128 bytes,
/// the last one cut to fit; each is read as a C string (cut at a NUL);
/// CR and LF become spaces (`addReplyErrorFormat`). The bytes are sent as
/// they are, UTF-8 or not (a character may be cut in the middle, as
/// Redis cuts it).
pub fn unknown(name: &[u8], args: &[Vec<u8>]) -> Reply {
    let mut listed: Vec<u8> = Vec::new();
    for arg in args {
        if listed.len() >= 128 {
            break;
        }
        let arg = until_nul(arg);
        let room = 128 - listed.len();
        listed.push(b'\'');
        listed.extend_from_slice(&arg[..arg.len().min(room)]);
        listed.extend_from_slice(b"' ");
    }
    let name = until_nul(name);
    let mut text = b"ERR unknown command '".to_vec();
    text.extend_from_slice(&name[..name.len().min(128)]);
    text.extend_from_slice(b"', with args beginning with: ");
    text.extend_from_slice(&listed);
    for b in &mut text {
        if *b == b'\r' || *b == b'\n' {
            *b = b' ';
        }
    }
    Reply::ErrorBytes(text)
}

/// `bytes` up to its first NUL, as C's `%s` reads it.
fn until_nul(bytes: &[u8]) -> &[u8] {
    bytes.split(|b| *b == 0).next().unwrap_or_default()
}

/// Client bytes for an error text as Redis's `addReplyErrorFormat` sends
/// them: cut at a NUL (`%s`), CR and LF replaced by spaces (a protocol
/// error line cannot hold them), non-UTF-8 bytes as U+FFFD.
pub fn c_string(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    let bytes = until_nul(bytes);
    if bytes.contains(&b'\r') || bytes.contains(&b'\n') {
        let clean: Vec<u8> = bytes
            .iter()
            .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b })
            .collect();
        return std::borrow::Cow::Owned(String::from_utf8_lossy(&clean).into_owned());
    }
    String::from_utf8_lossy(bytes)
}
