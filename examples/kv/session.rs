//! One request's path on the main loop: MULTI queuing, the client's
//! database, the commands that manage the connection and the server, then
//! the data commands (`commands::dispatch`), and the reply shaped for the
//! connection's protocol.

use std::borrow::Cow;

use baton::{ConnId, Ctx};

use crate::command_table::Spec;
use crate::commands::{self, Call};
use crate::protocol::{Reply, Request};
use crate::service::{Client, Kv};

/// `CLIENT REPLY` mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReplyMode {
    #[default]
    On,
    Off,
    /// Drop the reply of the next command only.
    Skip,
}

/// Per-connection protocol and client settings.
#[derive(Debug)]
pub struct Session {
    /// 2 or 3, as chosen by HELLO.
    pub proto: u8,
    /// The selected database.
    pub db: usize,
    pub reply_mode: ReplyMode,
    /// Unix milliseconds when the connection opened, and of its last command.
    pub created_ms: i64,
    pub last_ms: i64,
    pub lib_name: Option<String>,
    pub lib_ver: Option<String>,
    /// `CLIENT NO-EVICT` (recorded and reported: eviction counts data,
    /// not clients) / `NO-TOUCH` (its reads leave keys' access times).
    pub no_evict: bool,
    pub no_touch: bool,
}

impl Session {
    pub fn new(now_ms: i64) -> Self {
        Self {
            proto: 2,
            db: 0,
            reply_mode: ReplyMode::On,
            created_ms: now_ms,
            last_ms: now_ms,
            lib_name: None,
            lib_ver: None,
            no_evict: false,
            no_touch: false,
        }
    }
}

/// Handles one request of `conn` (state `client`; naming the command
/// `spec`, `None` if unknown; `now` in Unix milliseconds) and sends its
/// reply (if any).
pub fn handle(
    kv: &mut Kv,
    ctx: &mut Ctx<'_, Kv>,
    conn: ConnId,
    client: &mut Client,
    spec: Option<&'static Spec>,
    now: i64,
    request: Request,
) {
    let queuing = client.tx.queue.is_some();
    let name = command_name(spec, &request[0]);
    if queuing
        && !matches!(
            &*name,
            "exec" | "discard" | "multi" | "watch" | "quit" | "reset"
        )
    {
        let reply = crate::multi::queue(kv, client, spec, &name, now, request);
        // Queuing may evict, touching watched keys.
        crate::multi::mark_touched(kv, ctx, Some((conn, client)));
        deliver(ctx, conn, client, reply, None);
    } else if let Some(reply) = execute(kv, ctx, conn, client, &name, now, &request) {
        deliver(ctx, conn, client, reply, Some((&name, &request[1..])));
    }
}

/// The lowercase name a command is known by: the table's own for a known
/// command (no copy); for an unknown one (an error path) a lowercased copy.
pub fn command_name(spec: Option<&'static Spec>, sent: &[u8]) -> Cow<'static, str> {
    match spec {
        Some(spec) => Cow::Borrowed(spec.name),
        None => Cow::Owned(String::from_utf8_lossy(sent).to_ascii_lowercase()),
    }
}

/// Sends the reply to `conn`'s request (of command `shape_as`, if it may
/// need RESP3 types), honouring `CLIENT REPLY`; `client` is its state.
pub fn deliver(
    ctx: &mut Ctx<'_, Kv>,
    conn: ConnId,
    client: &mut Client,
    reply: Reply,
    shape_as: Option<(&str, &[Vec<u8>])>,
) {
    if let Some(reply) = prepare(&mut client.session, reply, shape_as) {
        // Refused only if the connection is closing or gone; the runtime
        // logs and counts why.
        let _ = ctx.send(conn, reply);
    }
}

/// [`deliver`]'s reply as it goes out on a connection with `session`, or
/// `None` if `CLIENT REPLY` silences it (a `SKIP` is used up). Read after
/// the command: HELLO may have changed the protocol.
pub fn prepare(
    session: &mut Session,
    reply: Reply,
    shape_as: Option<(&str, &[Vec<u8>])>,
) -> Option<Reply> {
    match session.reply_mode {
        ReplyMode::On => {}
        ReplyMode::Off => return None,
        ReplyMode::Skip => {
            session.reply_mode = ReplyMode::On;
            return None;
        }
    }
    let proto = session.proto;
    Some(if let (3.., Some((name, args))) = (proto, shape_as) {
        crate::resp3::adapt(crate::resp3::shape(name, args, reply), proto)
    } else {
        crate::resp3::adapt(reply, proto)
    })
}

/// Shapes a reply of `name` for protocol `proto` (RESP3 types on RESP3).
pub fn shape(proto: u8, name: &str, args: &[Vec<u8>], reply: Reply) -> Reply {
    if proto >= 3 {
        crate::resp3::shape(name, args, reply)
    } else {
        reply
    }
}

/// Sends `reply` to `conn` in the wire types of its protocol `proto`
/// (also for pushes to other connections).
pub fn send(ctx: &mut Ctx<'_, Kv>, conn: ConnId, proto: u8, reply: Reply) {
    let reply = crate::resp3::adapt(reply, proto);
    // Refused only if the connection is closing or gone; the runtime logs
    // and counts why.
    let _ = ctx.send(conn, reply);
}

/// Runs one command for `conn` (state `client`) in its database at `now`
/// (Unix milliseconds); `None` if the command sent its own replies
/// (pub/sub, QUIT). Used directly and by EXEC.
pub fn execute(
    kv: &mut Kv,
    ctx: &mut Ctx<'_, Kv>,
    conn: ConnId,
    client: &mut Client,
    name: &str,
    now: i64,
    request: &[Vec<u8>],
) -> Option<Reply> {
    let db = client.session.db;
    kv.mount(db);
    let call = Call {
        name,
        args: &request[1..],
        now,
    };
    if let Some(refusal) = commands::gate(kv, client, &call) {
        // Redis looks the command up first: an unknown command, a wrong
        // number of arguments or an unknown subcommand is answered as such
        // even before AUTH or in a RESP2 subscriber.
        return Some(commands::lookup_error(&call, request).unwrap_or(refusal));
    }
    let reply = match name {
        "hello" => Some(hello(kv, conn, client, &call)),
        "select" | "swapdb" | "move" | "flushdb" | "flushall" | "dbsize" => {
            let (reply, now_db) = crate::db::run(kv, &call, db);
            client.session.db = now_db;
            Some(reply)
        }
        "reset" => {
            crate::multi::reset(kv, conn, client);
            crate::pubsub::unsubscribe_all(kv, conn, client);
            ctx.set_idle_exempt(conn, false);
            client.name = None;
            client.authenticated = kv.requirepass.is_none();
            client.session = Session {
                created_ms: client.session.created_ms,
                ..Session::new(now)
            };
            Some(Reply::Status("RESET"))
        }
        "multi" | "exec" | "discard" | "watch" | "unwatch" => {
            crate::multi::run(kv, ctx, conn, client, &call)
        }
        "config" | "function" | "script" | "eval" | "evalsha" | "eval_ro" | "evalsha_ro"
        | "fcall" | "fcall_ro" | "client" | "command" | "time" | "lastsave" => {
            commands::config::run(kv, ctx, conn, client, &call)
        }
        _ => commands::dispatch(kv, ctx, conn, client, &call, &request[0]),
    };
    if kv.watching() {
        if reply
            .as_ref()
            .is_some_and(|r| !matches!(r, Reply::Error(_)))
        {
            // The keys were in the database the command ran in, even if it
            // was a SELECT that moved the client.
            crate::multi::touch_written(kv, db, name, call.args);
        }
        crate::multi::touch_expired(kv);
    }
    crate::multi::mark_touched(kv, ctx, Some((conn, client)));
    reply
}

/// HELLO [protover [AUTH username password] [SETNAME name]]: switches the
/// connection's protocol and answers with the server map.
fn hello(kv: &mut Kv, conn: ConnId, client: &mut Client, call: &Call<'_>) -> Reply {
    let a = call.args;
    let mut proto = None;
    if let Some(version) = a.first() {
        match commands::int(version) {
            Ok(v @ (2 | 3)) => proto = Some(v as u8),
            Ok(_) => return Reply::error("NOPROTO unsupported protocol version"),
            Err(_) => {
                return Reply::error("ERR Protocol version is not an integer or out of range")
            }
        }
    }
    let mut name = None;
    let mut i = 1;
    while i < a.len() {
        match a[i].to_ascii_lowercase().as_slice() {
            b"auth" if i + 2 < a.len() => {
                if let Reply::Error(e) = commands::auth(kv, client, Some(&a[i + 1]), &a[i + 2]) {
                    return Reply::Error(e);
                }
                i += 3;
            }
            b"setname" if i + 1 < a.len() => {
                if let Err(e) = commands::config::check_name(&a[i + 1]) {
                    return e;
                }
                name = Some(&a[i + 1]);
                i += 2;
            }
            _ => {
                return Reply::error(format!(
                    "ERR Syntax error in HELLO option '{}'",
                    String::from_utf8_lossy(&a[i])
                ))
            }
        }
    }
    if kv.requirepass.is_some() && !client.authenticated {
        return Reply::error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
    }
    if let Some(name) = name {
        client.name = (!name.is_empty()).then(|| String::from_utf8_lossy(name).into_owned());
    }
    if let Some(proto) = proto {
        client.session.proto = proto;
    }
    let field = |k: &str| Reply::bulk(k.as_bytes().to_vec());
    Reply::Map(vec![
        (field("server"), field("redis")),
        (field("version"), field(crate::info::VERSION)),
        (field("proto"), Reply::Int(i64::from(client.session.proto))),
        (field("id"), Reply::Int(conn.serial() as i64)),
        (field("mode"), field("standalone")),
        (field("role"), field("master")),
        (field("modules"), Reply::Array(Vec::new())),
    ])
}
