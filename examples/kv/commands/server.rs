//! Connection and server commands, and the gate every command passes
//! (authentication, pub/sub mode).

use baton::{ConnId, Ctx};

use super::Call;
use crate::protocol::Reply;
use crate::service::{Client, Kv};

/// Refuses a command the connection (state `client`) may not run now:
/// before AUTH when a password is set, or a non-pub/sub command while
/// subscribed. A request always comes with its connection's state, so
/// there is no "unknown client" to let through.
pub fn gate(kv: &Kv, client: &Client, call: &Call<'_>) -> Option<Reply> {
    if kv.requirepass.is_some()
        && !client.authenticated
        // Redis 7.0's `no-auth` commands.
        && !matches!(call.name, "auth" | "hello" | "quit" | "reset")
    {
        return Some(Reply::error("NOAUTH Authentication required."));
    }
    // On RESP3, messages are push frames: a subscriber may run anything.
    if client.subscriptions() > 0
        && client.session.proto < 3
        && !client.tx.executing
        && !matches!(
            call.name,
            "subscribe" | "unsubscribe" | "psubscribe" | "punsubscribe" | "ping" | "quit" | "reset"
        )
    {
        // Redis names a subcommand by its full name (`pubsub|numpat`).
        let sub = match (call.name, call.args.first()) {
            (
                "pubsub" | "object" | "config" | "client" | "command" | "function" | "script",
                Some(sub),
            ) => format!("|{}", String::from_utf8_lossy(sub).to_ascii_lowercase()),
            _ => String::new(),
        };
        return Some(Reply::error(format!(
            "ERR Can't execute '{}{sub}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
            call.name
        )));
    }
    None
}

/// PING, ECHO, QUIT, AUTH, INFO for `conn` (state `client`).
pub fn run(
    kv: &mut Kv,
    ctx: &mut Ctx<'_, Kv>,
    conn: ConnId,
    client: &mut Client,
    call: &Call<'_>,
) -> Option<Reply> {
    let a = call.args;
    let arity = |ok: bool| if ok { None } else { Some(call.wrong_arity()) };
    let reply = match call.name {
        "ping" => arity(a.len() <= 1).unwrap_or_else(|| {
            let subscribed = client.subscriptions() > 0 && client.session.proto < 3;
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
            kv.close_after_reply(ctx, conn, client);
            return None;
        }
        "auth" => match a.len() {
            1 => auth(kv, client, None, &a[0]),
            2 => auth(kv, client, Some(&a[0]), &a[1]),
            0 => call.wrong_arity(),
            // Redis's authCommand: more than two arguments is a syntax error.
            _ => Reply::error("ERR syntax error"),
        },
        "info" => Reply::Bulk(crate::info::render(kv, ctx, client, a.first()).into_bytes()),
        _ => unreachable!("dispatched here"),
    };
    Some(reply)
}

/// AUTH [username] password. Only Redis's `default` user exists (named
/// exactly so); without `requirepass` it takes any password, as Redis's
/// `nopass` default user does when named. Authenticates `client`.
pub fn auth(kv: &Kv, client: &mut Client, user: Option<&[u8]>, password: &[u8]) -> Reply {
    let wrong = || Reply::error("WRONGPASS invalid username-password pair or user is disabled.");
    if user.is_some_and(|u| u != b"default") {
        return wrong();
    }
    let Some(expected) = &kv.requirepass else {
        if user.is_some() {
            return Reply::Ok;
        }
        return Reply::error(
            "ERR AUTH <password> called without any password configured for the default user. \
             Are you sure your configuration is correct?",
        );
    };
    if password == expected.as_bytes() {
        client.authenticated = true;
        Reply::Ok
    } else {
        wrong()
    }
}
