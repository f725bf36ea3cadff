//! Server commands that tools and test harnesses call: CONFIG, FUNCTION and
//! SCRIPT (on a server without scripting), EVAL/FCALL (a clear error),
//! CLIENT, COMMAND, TIME, LASTSAVE.

use baton::{ConnId, Ctx};

use super::Call;
use crate::command_table::COMMANDS;
use crate::glob;
use crate::protocol::Reply;
use crate::service::{Client, Kv};
use crate::session::ReplyMode;

/// The server commands of this file, for `conn` (state `client`).
pub fn run(
    kv: &mut Kv,
    ctx: &mut Ctx<'_, Kv>,
    conn: ConnId,
    client: &mut Client,
    call: &Call<'_>,
) -> Option<Reply> {
    let a = call.args;
    let reply = match call.name {
        "config" => {
            let before = kv.codec_limits(false);
            let reply = config(kv, call);
            if kv.codec_limits(false) != before {
                // requirepass set or cleared, or proto-max-bulk-len: every
                // open connection's codec follows at once, as Redis reads
                // the settings at each request.
                kv.update_codecs(ctx);
            }
            reply
        }
        "function" => function(call),
        "script" => script(call),
        "eval" | "evalsha" | "eval_ro" | "evalsha_ro" if a.len() < 2 => call.wrong_arity(),
        "evalsha" | "evalsha_ro" => Reply::error("NOSCRIPT No matching script. Please use EVAL."),
        "eval" | "eval_ro" => Reply::error(
            "ERR this server (baton kv) has no scripting engine: EVAL is not supported",
        ),
        "fcall" | "fcall_ro" if a.len() < 2 => call.wrong_arity(),
        // No library can be loaded, so no function exists.
        "fcall" | "fcall_ro" => Reply::error("ERR Function not found"),
        "client" => return client_command(kv, ctx, conn, client, call),
        "command" => command(client.session.proto, call),
        "time" if a.is_empty() => {
            // The loop's clock has milliseconds; TIME promises microseconds.
            let us = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_micros() as i64);
            Reply::array_of_bulks([
                (us / 1_000_000).to_string().into_bytes(),
                (us % 1_000_000).to_string().into_bytes(),
            ])
        }
        // Nothing is ever saved: the last save is "when the server started".
        "lastsave" if a.is_empty() => Reply::Int(kv.started_unix_secs),
        _ => call.wrong_arity(),
    };
    Some(reply)
}

/// The subcommands kv knows, per container command.
fn subcommands(name: &str) -> &'static [&'static str] {
    match name {
        "config" => &["get", "set", "resetstat", "rewrite"],
        "function" => &[
            "flush", "list", "stats", "kill", "delete", "dump", "load", "restore",
        ],
        "script" => &["flush", "exists", "kill", "load"],
        "client" => &[
            "id", "setname", "getname", "setinfo", "no-evict", "no-touch", "reply", "info", "list",
            "kill", "unblock",
        ],
        "command" => &["count", "list", "info", "docs"],
        _ => &[],
    }
}

/// Redis's error for a known subcommand with the wrong arguments, or an
/// unknown one.
fn subcommand_error(call: &Call<'_>) -> Reply {
    let sub = String::from_utf8_lossy(call.args.first().map_or(&b""[..], |s| s)).into_owned();
    let lower = sub.to_ascii_lowercase();
    if subcommands(call.name).contains(&lower.as_str()) {
        Reply::error(format!(
            "ERR wrong number of arguments for '{}|{lower}' command",
            call.name
        ))
    } else {
        Reply::error(format!(
            "ERR unknown subcommand '{sub}'. Try {} HELP.",
            call.name.to_ascii_uppercase()
        ))
    }
}

fn sub(call: &Call<'_>) -> Vec<u8> {
    call.args
        .first()
        .map(|s| s.to_ascii_lowercase())
        .unwrap_or_default()
}

/// How CONFIG SET may change a parameter.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Change {
    /// Applied at once.
    Live,
    /// Only its current value is accepted (kv has no other behaviour, or
    /// the runtime fixes it at start).
    Fixed,
    /// Redis refuses to change it at runtime too.
    Immutable,
}

/// The parameters CONFIG GET reports, with the values kv actually runs
/// with (a feature kv lacks reports its "off" value).
fn parameters(kv: &Kv) -> Vec<(&'static str, String, Change)> {
    use Change::*;
    let c = &kv.config;
    let hard = kv.client_output_buffer_limit;
    vec![
        (
            "requirepass",
            kv.requirepass.clone().unwrap_or_default(),
            Live,
        ),
        (
            "proto-max-bulk-len",
            kv.proto_max_bulk_len.to_string(),
            Live,
        ),
        ("maxclients", c.maxclients.to_string(), Fixed),
        ("timeout", c.timeout_secs.to_string(), Fixed),
        (
            "client-output-buffer-limit",
            format!("normal {hard} 0 0 slave {hard} 0 0 pubsub {hard} 0 0"),
            Fixed,
        ),
        ("databases", kv.db_count().to_string(), Immutable),
        ("appendonly", "no".into(), Fixed),
        ("save", String::new(), Fixed),
        ("port", c.port.to_string(), Immutable),
        ("tls-port", c.tls_port.to_string(), Immutable),
        ("bind", kv.bind.clone(), Immutable),
        ("io-threads", c.io_threads.max(1).to_string(), Immutable),
        ("maxmemory", kv.maxmemory.limit.to_string(), Live),
        ("maxmemory-policy", kv.maxmemory.policy.name().into(), Live),
        ("maxmemory-samples", kv.maxmemory.samples.to_string(), Live),
        ("notify-keyspace-events", String::new(), Fixed),
        ("daemonize", "no".into(), Immutable),
        ("protected-mode", "no".into(), Fixed),
        ("tcp-keepalive", "0".into(), Fixed),
        ("hz", "10".into(), Fixed),
        ("lazyfree-lazy-user-flush", "no".into(), Fixed),
        ("cluster-enabled", "no".into(), Immutable),
        ("replicaof", String::new(), Fixed),
        ("slowlog-log-slower-than", "-1".into(), Fixed),
        ("latency-tracking", "no".into(), Fixed),
    ]
}

fn config(kv: &mut Kv, call: &Call<'_>) -> Reply {
    let a = call.args;
    match (sub(call).as_slice(), a.len()) {
        (b"get", 2..) => {
            let mut out = Vec::new();
            for (name, value, _) in parameters(kv) {
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
        (b"set", n) if n >= 3 && n % 2 == 1 => config_set(kv, &a[1..]),
        (b"resetstat", 1) => {
            kv.commands_processed = 0;
            kv.maxmemory.evicted = 0;
            kv.maxmemory.peak.set(0);
            for db in 0..kv.db_count() {
                kv.db_at(db).reset_stats();
            }
            Reply::Ok
        }
        (b"rewrite", 1) => Reply::error("ERR The server is running without a config file"),
        _ => subcommand_error(call),
    }
}

/// CONFIG SET name value [name value ...]: all or nothing, as in Redis.
fn config_set(kv: &mut Kv, pairs: &[Vec<u8>]) -> Reply {
    let params = parameters(kv);
    let failed = |name: &str, why: &str| {
        Reply::error(format!(
            "ERR CONFIG SET failed (possibly related to argument '{name}') - {why}"
        ))
    };
    let mut seen: Vec<&str> = Vec::new();
    let mut apply: Vec<(&'static str, String)> = Vec::new();
    for pair in pairs.chunks(2) {
        let name = String::from_utf8_lossy(&pair[0]).to_ascii_lowercase();
        let value = String::from_utf8_lossy(&pair[1]).into_owned();
        let Some((pname, current, change)) = params.iter().find(|(n, _, _)| *n == name) else {
            return Reply::error(format!(
                "ERR Unknown option or number of arguments for CONFIG SET - '{name}'"
            ));
        };
        if seen.contains(pname) {
            return failed(pname, "duplicate parameter");
        }
        seen.push(pname);
        match change {
            Change::Immutable => return failed(pname, "can't set immutable config"),
            Change::Fixed if value.trim() != current.as_str() => {
                return failed(
                    pname,
                    &format!("baton kv supports only '{current}' here (a runtime setting or a feature it does not have)"),
                )
            }
            Change::Fixed => {}
            Change::Live => {
                if *pname == "proto-max-bulk-len" {
                    match value.parse::<usize>() {
                        Ok(n) if n >= 1024 && n <= kv.config.proto_max_bulk_len => {}
                        Ok(_) => {
                            return failed(
                                pname,
                                "must be between 1024 and the value kv started with (its frame limit is fixed at start)",
                            )
                        }
                        Err(_) => return failed(pname, "argument couldn't be parsed into an integer"),
                    }
                }
                if let Err(why) = crate::eviction::check_setting(pname, &value) {
                    return failed(pname, &why);
                }
                apply.push((pname, value));
            }
        }
    }
    for (name, value) in apply {
        match name {
            "requirepass" => kv.requirepass = (!value.is_empty()).then_some(value),
            "proto-max-bulk-len" => {
                kv.proto_max_bulk_len = value.parse().expect("validated above");
            }
            "maxmemory" | "maxmemory-policy" | "maxmemory-samples" => {
                crate::eviction::apply_setting(&mut kv.maxmemory, name, &value);
            }
            _ => unreachable!("only live parameters are applied"),
        }
    }
    Reply::Ok
}

fn function(call: &Call<'_>) -> Reply {
    let a = call.args;
    let mode_ok = |rest: &[Vec<u8>]| match rest {
        [] => true,
        [m] => m.eq_ignore_ascii_case(b"async") || m.eq_ignore_ascii_case(b"sync"),
        _ => false,
    };
    match sub(call).as_slice() {
        // No functions can exist: flushing succeeds and leaves nothing.
        b"flush" if mode_ok(&a[1..]) => Reply::Ok,
        b"flush" => Reply::error("ERR FUNCTION FLUSH only supports SYNC|ASYNC option"),
        b"list" => Reply::Array(Vec::new()),
        b"stats" if a.len() == 1 => {
            let b = |s: &str| Reply::bulk(s.as_bytes().to_vec());
            Reply::Map(vec![
                (b("running_script"), Reply::Null),
                (b("engines"), Reply::Map(Vec::new())),
            ])
        }
        b"kill" if a.len() == 1 => Reply::error("NOTBUSY No scripts in execution right now."),
        b"delete" if a.len() == 2 => Reply::error("ERR Library not found"),
        b"dump" if a.len() == 1 => Reply::Nil,
        b"load" | b"restore" if a.len() >= 2 => Reply::error(
            "ERR this server (baton kv) has no scripting engine: functions cannot be loaded",
        ),
        _ => subcommand_error(call),
    }
}

fn script(call: &Call<'_>) -> Reply {
    let a = call.args;
    match sub(call).as_slice() {
        b"flush" if a.len() <= 2 => Reply::Ok,
        b"exists" if a.len() >= 2 => Reply::Array(a[1..].iter().map(|_| Reply::Int(0)).collect()),
        b"kill" if a.len() == 1 => Reply::error("NOTBUSY No scripts in execution right now."),
        b"load" if a.len() == 2 => Reply::error(
            "ERR this server (baton kv) has no scripting engine: scripts cannot be loaded",
        ),
        _ => subcommand_error(call),
    }
}

/// Client names: no spaces, newlines or other special characters.
pub fn check_name(name: &[u8]) -> Result<(), Reply> {
    if name.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
        return Err(Reply::error(
            "ERR Client names cannot contain spaces, newlines or special characters.",
        ));
    }
    Ok(())
}

/// Closes the clients `ids` and answers `reply`; `me` (state `client`), if
/// it kills itself, gets the reply first (a close after the send flushes
/// it).
///
/// The others are gone at once, as Redis frees them: their connections
/// may take a while to close (queued output still flushing, a TLS
/// close_notify), but CLIENT LIST, PUBSUB and WATCH must not see them
/// meanwhile -- test harnesses check CLIENT LIST right after a kill. This
/// is `Kv::forget_client`, early; at the close it finds nothing left.
fn kill(
    kv: &mut Kv,
    ctx: &mut Ctx<'_, Kv>,
    me: ConnId,
    client: &mut Client,
    ids: Vec<ConnId>,
    reply: Reply,
) -> Option<Reply> {
    for &id in ids.iter().filter(|id| **id != me) {
        // A push meanwhile must not serve it.
        kv.kill_other(ctx, id);
    }
    if ids.contains(&me) {
        crate::session::send(ctx, me, client.session.proto, reply);
        kv.close_after_reply(ctx, me, client);
        return None;
    }
    Some(reply)
}

fn on_off(arg: &[u8]) -> Option<bool> {
    if arg.eq_ignore_ascii_case(b"on") {
        Some(true)
    } else if arg.eq_ignore_ascii_case(b"off") {
        Some(false)
    } else {
        None
    }
}

/// Every client CLIENT LIST shows, in id order: `me` (running, so out of
/// the loop's table) and the others open and not closing.
fn client_ids(ctx: &mut Ctx<'_, Kv>, me: ConnId) -> Vec<ConnId> {
    let mut ids: Vec<ConnId> = ctx
        .states()
        .filter(|(_, c)| !c.closing)
        .map(|(id, _)| id)
        .chain([me])
        .collect();
    ids.sort();
    ids
}

/// The state of client `id`: `client` if it is `me`, else from the table.
fn client_of<'a>(
    ctx: &'a mut Ctx<'_, Kv>,
    me: ConnId,
    client: &'a mut Client,
    id: ConnId,
) -> Option<&'a mut Client> {
    if id == me {
        Some(client)
    } else {
        ctx.state(id).map(|c| &mut **c)
    }
}

/// One line of CLIENT LIST / CLIENT INFO about `id`, with the fields kv
/// knows; `me` (state `me_client`) runs the command.
fn client_line(
    ctx: &mut Ctx<'_, Kv>,
    me: ConnId,
    me_client: &mut Client,
    id: ConnId,
    now: i64,
) -> String {
    let (addr, laddr) = ctx
        .conn_info(id)
        .map(|i| (i.peer.to_string(), i.local.to_string()))
        .unwrap_or_else(|| ("?".into(), "?".into()));
    let Some(client) = client_of(ctx, me, me_client, id) else {
        return String::new();
    };
    let s = &client.session;
    let mut flags = String::new();
    if client.subscriptions() > 0 {
        flags.push('P');
    }
    if client.tx.queue.is_some() {
        flags.push('x');
    }
    if client.blocked.is_some() {
        flags.push('b');
    }
    if client.tx.dirty {
        flags.push('d');
    }
    if s.no_evict {
        flags.push('e');
    }
    if s.no_touch {
        flags.push('T');
    }
    if flags.is_empty() {
        flags.push('N');
    }
    format!(
        "id={} addr={} laddr={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub=0 multi={} watch={} cmd={} user=default lib-name={} lib-ver={} resp={}\n",
        id.serial(),
        addr,
        laddr,
        client.name.as_deref().unwrap_or(""),
        (now - s.created_ms).max(0) / 1000,
        (now - s.last_ms).max(0) / 1000,
        flags,
        s.db,
        client.channels.len(),
        client.patterns.len(),
        client.tx.queue.as_ref().map_or(-1, |q| q.len() as i64),
        client.tx.watched.len(),
        client.last_command,
        s.lib_name.as_deref().unwrap_or(""),
        s.lib_ver.as_deref().unwrap_or(""),
        s.proto,
    )
}

/// CLIENT subcommands, for `conn` (state `client`).
fn client_command(
    kv: &mut Kv,
    ctx: &mut Ctx<'_, Kv>,
    conn: ConnId,
    client: &mut Client,
    call: &Call<'_>,
) -> Option<Reply> {
    let a = call.args;
    if a.is_empty() {
        return Some(call.wrong_arity());
    }
    let reply = match (sub(call).as_slice(), a.len()) {
        (b"id", 1) => Reply::Int(conn.serial() as i64),
        (b"setname", 2) => match check_name(&a[1]) {
            Ok(()) => {
                client.name =
                    (!a[1].is_empty()).then(|| String::from_utf8_lossy(&a[1]).into_owned());
                Reply::Ok
            }
            Err(e) => e,
        },
        (b"getname", 1) => Reply::bulk_or_nil(client.name.clone().map(String::into_bytes)),
        (b"setinfo", 3) => {
            let value = String::from_utf8_lossy(&a[2]).into_owned();
            if a[2].iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
                Reply::error(format!(
                    "ERR {} cannot contain spaces, newlines or special characters.",
                    String::from_utf8_lossy(&a[1])
                ))
            } else if a[1].eq_ignore_ascii_case(b"lib-name") {
                client.session.lib_name = Some(value);
                Reply::Ok
            } else if a[1].eq_ignore_ascii_case(b"lib-ver") {
                client.session.lib_ver = Some(value);
                Reply::Ok
            } else {
                Reply::error(format!(
                    "ERR Unrecognized option '{}'",
                    String::from_utf8_lossy(&a[1])
                ))
            }
        }
        (b"no-evict" | b"no-touch", 2) => match on_off(&a[1]) {
            Some(on) => {
                let evict = a[0].eq_ignore_ascii_case(b"no-evict");
                if evict {
                    client.session.no_evict = on;
                } else {
                    client.session.no_touch = on;
                }
                kv.maxmemory.no_touch_seen |= on && !evict;
                Reply::Ok
            }
            None => Reply::error(super::SYNTAX),
        },
        (b"reply", 2) => {
            let mode = match a[1].to_ascii_lowercase().as_slice() {
                b"on" => ReplyMode::On,
                b"off" => ReplyMode::Off,
                b"skip" => ReplyMode::Skip,
                _ => return Some(Reply::error(super::SYNTAX)),
            };
            client.session.reply_mode = mode;
            // Only ON is acknowledged; OFF and SKIP silence their own reply.
            if mode == ReplyMode::On {
                Reply::Ok
            } else {
                return None;
            }
        }
        (b"info", 1) => Reply::Bulk(client_line(ctx, conn, client, conn, call.now).into_bytes()),
        (b"list", _) => match client_filter(ctx, &a[1..], conn, client, true) {
            Ok(ids) => {
                let mut out = String::new();
                for id in ids {
                    out.push_str(&client_line(ctx, conn, client, id, call.now));
                }
                Reply::Bulk(out.into_bytes())
            }
            Err(e) => e,
        },
        (b"kill", 2) => {
            // Old form: CLIENT KILL addr:port.
            let target = String::from_utf8_lossy(&a[1]).into_owned();
            let found = client_ids(ctx, conn).into_iter().find(|id| {
                ctx.conn_info(*id)
                    .is_some_and(|i| i.peer.to_string() == target)
            });
            match found {
                Some(id) => return kill(kv, ctx, conn, client, vec![id], Reply::Ok),
                None => Reply::error("ERR No such client"),
            }
        }
        (b"unblock", 2 | 3) => {
            let error = match a.get(2).map(|r| r.to_ascii_lowercase()) {
                None => false,
                Some(r) if r == b"timeout" => false,
                Some(r) if r == b"error" => true,
                Some(_) => {
                    return Some(Reply::error(
                        "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR",
                    ))
                }
            };
            match super::int(&a[1]) {
                Ok(id) => {
                    // Not `conn`: it runs this command, so it does not wait.
                    let target = ctx
                        .states()
                        .find(|(c, state)| !state.closing && c.serial() as i64 == id)
                        .map(|(c, _)| c);
                    let unblocked = target
                        .is_some_and(|t| crate::blocking::unblock_by_request(kv, ctx, t, error));
                    Reply::Int(i64::from(unblocked))
                }
                Err(e) => e,
            }
        }
        (b"kill", n) if n % 2 == 1 => match client_filter(ctx, &a[1..], conn, client, false) {
            Ok(ids) => {
                let killed = Reply::Int(ids.len() as i64);
                return kill(kv, ctx, conn, client, ids, killed);
            }
            Err(e) => e,
        },
        _ => subcommand_error(call),
    };
    Some(reply)
}

/// The clients CLIENT LIST (`list`: TYPE, ID) or CLIENT KILL (ID, ADDR,
/// LADDR, TYPE, USER, SKIPME) selects, in id order; `me` (state
/// `me_client`) asks.
fn client_filter(
    ctx: &mut Ctx<'_, Kv>,
    filters: &[Vec<u8>],
    me: ConnId,
    me_client: &mut Client,
    list: bool,
) -> Result<Vec<ConnId>, Reply> {
    let mut ids = client_ids(ctx, me);
    let mut skip_me = !list;
    let mut i = 0;
    while i < filters.len() {
        let key = filters[i].to_ascii_lowercase();
        if key == b"id" {
            let wanted: Vec<u64> = filters[i + 1..]
                .iter()
                .take(if list { usize::MAX } else { 1 })
                .map(|s| std::str::from_utf8(s).ok().and_then(|s| s.parse().ok()))
                .collect::<Option<_>>()
                .ok_or_else(|| Reply::error("ERR Invalid client ID"))?;
            i += 1 + wanted.len();
            ids.retain(|id| wanted.contains(&id.serial()));
            continue;
        }
        let Some(value) = filters.get(i + 1) else {
            return Err(Reply::error(super::SYNTAX));
        };
        let value_s = String::from_utf8_lossy(value).into_owned();
        match key.as_slice() {
            b"type" => {
                let kind = value.to_ascii_lowercase();
                let pubsub = match kind.as_slice() {
                    b"normal" => false,
                    b"pubsub" => true,
                    b"master" | b"replica" | b"slave" => {
                        ids.clear();
                        false
                    }
                    _ => return Err(Reply::error(format!("ERR Unknown client type '{value_s}'"))),
                };
                ids.retain(|&id| {
                    client_of(ctx, me, me_client, id)
                        .is_some_and(|c| (c.subscriptions() == 0) != pubsub)
                });
            }
            b"addr" if !list => ids.retain(|id| {
                ctx.conn_info(*id)
                    .is_some_and(|i| i.peer.to_string() == value_s)
            }),
            b"laddr" if !list => ids.retain(|id| {
                ctx.conn_info(*id)
                    .is_some_and(|i| i.local.to_string() == value_s)
            }),
            b"user" if !list => {
                if value_s != "default" {
                    return Err(Reply::error(format!("ERR No such user '{value_s}'")));
                }
            }
            b"skipme" if !list => {
                skip_me = if value.eq_ignore_ascii_case(b"yes") {
                    true
                } else if value.eq_ignore_ascii_case(b"no") {
                    false
                } else {
                    return Err(Reply::error(super::SYNTAX));
                }
            }
            _ => return Err(Reply::error(super::SYNTAX)),
        }
        i += 2;
    }
    if skip_me {
        ids.retain(|id| *id != me);
    }
    Ok(ids)
}

/// COMMAND [COUNT | LIST | INFO name... | DOCS name...]: Redis 7.0's own
/// metadata for the commands kv implements (`command_table.rs`).
/// `proto` is the asking connection's protocol.
fn command(proto: u8, call: &Call<'_>) -> Reply {
    let v3 = proto >= 3;
    let info = |s: &crate::command_table::Spec| Reply::Raw(if v3 { s.info3 } else { s.info2 });
    let find = |name: &[u8]| {
        let name = name.to_ascii_lowercase();
        COMMANDS.iter().find(|s| s.name.as_bytes() == name)
    };
    let a = call.args;
    match sub(call).as_slice() {
        b"" => Reply::Array(COMMANDS.iter().map(info).collect()),
        b"count" if a.len() == 1 => Reply::Int(COMMANDS.len() as i64),
        b"list" if a.len() == 1 => {
            Reply::array_of_bulks(COMMANDS.iter().map(|s| s.name.as_bytes().to_vec()))
        }
        b"info" if a.len() == 1 => Reply::Array(COMMANDS.iter().map(info).collect()),
        b"info" => Reply::Array(
            a[1..]
                .iter()
                .map(|n| find(n).map_or(Reply::Nil, info))
                .collect(),
        ),
        b"docs" => {
            let wanted: Vec<&crate::command_table::Spec> = if a.len() == 1 {
                COMMANDS.iter().collect()
            } else {
                a[1..].iter().filter_map(|n| find(n)).collect()
            };
            Reply::Map(
                wanted
                    .into_iter()
                    .map(|s| {
                        (
                            Reply::bulk(s.name.as_bytes().to_vec()),
                            Reply::Raw(if v3 { s.docs3 } else { s.docs2 }),
                        )
                    })
                    .collect(),
            )
        }
        _ => subcommand_error(call),
    }
}
