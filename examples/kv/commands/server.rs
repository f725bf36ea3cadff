//! Connection and server commands, and the gate every command passes
//! (authentication, pub/sub mode).

use baton::{ConnId, Ctx};

use super::{int, Call, COMMAND_COUNT};
use crate::glob;
use crate::protocol::Reply;
use crate::service::Kv;

/// Refuses a command the connection may not run now: before AUTH when a
/// password is set, or a non-pub/sub command while subscribed.
pub fn gate(kv: &Kv, conn: ConnId, call: &Call<'_>) -> Option<Reply> {
    let client = kv.clients.get(&conn)?;
    if kv.requirepass.is_some()
        && !client.authenticated
        && !matches!(call.name, "auth" | "hello" | "quit")
    {
        return Some(Reply::error("NOAUTH Authentication required."));
    }
    if !client.channels.is_empty()
        && !matches!(
            call.name,
            "subscribe" | "unsubscribe" | "ping" | "quit" | "reset"
        )
    {
        return Some(Reply::error(format!(
            "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
            call.name
        )));
    }
    None
}

pub fn run(kv: &mut Kv, ctx: &mut Ctx<'_, Kv>, conn: ConnId, call: &Call<'_>) -> Option<Reply> {
    let a = call.args;
    let arity = |ok: bool| if ok { None } else { Some(call.wrong_arity()) };
    let reply = match call.name {
        "ping" => arity(a.len() <= 1).unwrap_or_else(|| {
            let subscribed = kv
                .clients
                .get(&conn)
                .is_some_and(|c| !c.channels.is_empty());
            match (a.first(), subscribed) {
                (None, false) => Reply::Status("PONG"),
                (Some(msg), false) => Reply::Bulk(msg.clone()),
                (msg, true) => {
                    Reply::array_of_bulks([b"pong".to_vec(), msg.cloned().unwrap_or_default()])
                }
            }
        }),
        "echo" => arity(a.len() == 1).unwrap_or_else(|| Reply::Bulk(a[0].clone())),
        "quit" => {
            let _ = ctx.send(conn, Reply::Ok);
            let _ = ctx.close(conn);
            return None;
        }
        "reset" => {
            crate::pubsub::unsubscribe_all(kv, conn);
            if let Some(client) = kv.clients.get_mut(&conn) {
                client.name = None;
                client.authenticated = kv.requirepass.is_none();
            }
            Reply::Status("RESET")
        }
        "hello" => hello(kv, conn, call),
        "select" => arity(a.len() == 1).unwrap_or_else(|| match int(&a[0]) {
            Ok(0) => Reply::Ok,
            // Redis reads the index as a C int first.
            Ok(n) if i32::try_from(n).is_err() => Reply::error(
                "ERR value is out of range, value must between -2147483648 and 2147483647",
            ),
            Ok(_) => Reply::error("ERR DB index is out of range"),
            Err(e) => e,
        }),
        "auth" => match a.len() {
            1 => auth(kv, conn, &a[0]),
            2 => auth(kv, conn, &a[1]), // AUTH default <password>
            _ => call.wrong_arity(),
        },
        "command" => match a.first().map(|s| s.to_ascii_lowercase()) {
            None => Reply::Array(Vec::new()),
            Some(sub) if sub == b"count" => Reply::Int(COMMAND_COUNT),
            // redis-cli asks for documentation to show hints; none is given.
            Some(sub) if sub == b"docs" || sub == b"info" => Reply::Array(Vec::new()),
            Some(_) => {
                Reply::error("ERR unknown subcommand or wrong number of arguments for 'command'")
            }
        },
        "config" => config(kv, call),
        "info" => Reply::Bulk(crate::info::render(kv, ctx, a.first()).into_bytes()),
        "client" => client(kv, ctx, conn, call),
        "dbsize" => arity(a.is_empty()).unwrap_or(Reply::Int(kv.db.len() as i64)),
        "flushdb" | "flushall" => {
            kv.db.clear();
            Reply::Ok
        }
        _ => unreachable!("dispatched here"),
    };
    Some(reply)
}

fn auth(kv: &mut Kv, conn: ConnId, password: &[u8]) -> Reply {
    let Some(expected) = &kv.requirepass else {
        return Reply::error(
            "ERR AUTH <password> called without any password configured for the default user. \
             Are you sure your configuration is correct?",
        );
    };
    if password == expected.as_bytes() {
        if let Some(client) = kv.clients.get_mut(&conn) {
            client.authenticated = true;
        }
        Reply::Ok
    } else {
        Reply::error("WRONGPASS invalid username-password pair or user is disabled.")
    }
}

/// HELLO [protover [AUTH username password] [SETNAME name]]: RESP2 only.
fn hello(kv: &mut Kv, conn: ConnId, call: &Call<'_>) -> Reply {
    let a = call.args;
    if let Some(version) = a.first() {
        match int(version) {
            Ok(2) => {}
            Ok(_) => return Reply::error("NOPROTO unsupported protocol version"),
            Err(_) => {
                return Reply::error("ERR Protocol version is not an integer or out of range")
            }
        }
    }
    let mut i = 1;
    while i < a.len() {
        match a[i].to_ascii_lowercase().as_slice() {
            b"auth" if i + 2 < a.len() => {
                if let Reply::Error(e) = auth(kv, conn, &a[i + 2]) {
                    return Reply::Error(e);
                }
                i += 3;
            }
            b"setname" if i + 1 < a.len() => {
                if let Some(client) = kv.clients.get_mut(&conn) {
                    client.name = Some(String::from_utf8_lossy(&a[i + 1]).into_owned());
                }
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
    if kv.requirepass.is_some() && !kv.clients.get(&conn).is_some_and(|c| c.authenticated) {
        return Reply::error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
    }
    let field = |k: &str| Reply::bulk(k.as_bytes().to_vec());
    Reply::Array(vec![
        field("server"),
        field("redis"),
        field("version"),
        field(crate::info::VERSION),
        field("proto"),
        Reply::Int(2),
        field("id"),
        Reply::Int(conn.serial() as i64),
        field("mode"),
        field("standalone"),
        field("role"),
        field("master"),
        field("modules"),
        Reply::Array(Vec::new()),
    ])
}

fn config(kv: &Kv, call: &Call<'_>) -> Reply {
    let a = call.args;
    match a.first().map(|s| s.to_ascii_lowercase()) {
        Some(sub) if sub == b"get" && a.len() >= 2 => {
            let mut out = Vec::new();
            for (name, value) in kv.config_values() {
                if a[1..]
                    .iter()
                    .any(|pattern| glob::matches(&pattern.to_ascii_lowercase(), name.as_bytes()))
                {
                    out.push(name.as_bytes().to_vec());
                    out.push(value.into_bytes());
                }
            }
            Reply::array_of_bulks(out)
        }
        Some(sub) if sub == b"set" || sub == b"resetstat" || sub == b"rewrite" => Reply::error(
            "ERR CONFIG SET, RESETSTAT and REWRITE are not supported; restart with new flags",
        ),
        _ => Reply::error("ERR unknown subcommand or wrong number of arguments for 'config'"),
    }
}

fn client(kv: &mut Kv, ctx: &mut Ctx<'_, Kv>, conn: ConnId, call: &Call<'_>) -> Reply {
    let a = call.args;
    let Some(sub) = a.first().map(|s| s.to_ascii_lowercase()) else {
        return call.wrong_arity();
    };
    match (sub.as_slice(), a.len()) {
        (b"id", 1) => Reply::Int(conn.serial() as i64),
        (b"setname", 2) => {
            if a[1].iter().any(|b| *b == b' ' || *b == b'\n') {
                return Reply::error(
                    "ERR Client names cannot contain spaces, newlines or special characters.",
                );
            }
            if let Some(client) = kv.clients.get_mut(&conn) {
                client.name =
                    (!a[1].is_empty()).then(|| String::from_utf8_lossy(&a[1]).into_owned());
            }
            Reply::Ok
        }
        (b"getname", 1) => Reply::bulk_or_nil(
            kv.clients
                .get(&conn)
                .and_then(|c| c.name.clone())
                .map(String::into_bytes),
        ),
        (b"setinfo", 3) => Reply::Ok,
        (b"list", 1) => {
            let mut ids: Vec<&ConnId> = kv.clients.keys().collect();
            ids.sort();
            let mut out = String::new();
            for id in ids {
                let client = &kv.clients[id];
                let addr = ctx
                    .conn_info(*id)
                    .map(|i| i.peer.to_string())
                    .unwrap_or_else(|| "?".into());
                out.push_str(&format!(
                    "id={} addr={} name={} db=0 sub={} cmd={}\n",
                    id.serial(),
                    addr,
                    client.name.as_deref().unwrap_or(""),
                    client.channels.len(),
                    client.last_command
                ));
            }
            Reply::Bulk(out.into_bytes())
        }
        (b"kill", _) => Reply::error("ERR CLIENT KILL is not supported"),
        _ => Reply::error(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try CLIENT HELP.",
            String::from_utf8_lossy(&a[0])
        )),
    }
}
