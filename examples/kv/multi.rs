//! Transactions: MULTI / EXEC / DISCARD / WATCH / UNWATCH, with Redis's
//! semantics. Commands after MULTI are checked (known command, arity) and
//! queued; a queuing error makes EXEC answer EXECABORT. EXEC runs the queue
//! as one uninterrupted step of the main loop, so nothing interleaves.
//!
//! WATCH: a watched key is "touched" by any successful write command that
//! names it (Redis's key positions, from `command_table`), by its expiry,
//! by FLUSHDB/FLUSHALL (keys that existed) and by SWAPDB. A touched key
//! makes every client watching it fail its next EXEC (a null reply). A
//! write that turns out to change nothing (SET NX on an existing key)
//! still counts as a touch: EXEC may then fail where Redis would not, never
//! the other way round.
//!
//! A touch happens deep inside a command (a write, an expiry, an
//! eviction) where the watchers' states are out of reach: it records the
//! watchers, and `mark_touched` marks them dirty (through the loop's table,
//! and the running connection's own state) once the command is done,
//! before anything can read the mark.

use std::collections::{BTreeSet, HashMap, HashSet};

use baton::{ConnId, Ctx};

use crate::command_table::Spec;
use crate::commands::Call;
use crate::protocol::{Reply, Request};
use crate::service::{Client, Kv};

/// One client's transaction state.
#[derive(Debug, Default)]
pub struct Tx {
    /// `Some` between MULTI and EXEC/DISCARD: the queued requests.
    pub queue: Option<Vec<Request>>,
    /// What the queue holds (`blocking::request_cost`), for its bound.
    pub queued_bytes: usize,
    /// A command failed to queue: EXEC answers EXECABORT.
    pub aborted: bool,
    /// The (database, key) pairs this client watches (a set: WATCH of n
    /// keys is O(n), not a scan of the list per key).
    pub watched: HashSet<(usize, Vec<u8>)>,
    /// A watched key was touched: the next EXEC fails.
    pub dirty: bool,
    /// EXEC is running the queue: commands were checked when queued, and
    /// a (P)SUBSCRIBE among them does not stop the ones after it.
    pub executing: bool,
}

/// Commands, and bytes (`blocking::request_cost`), one MULTI may queue.
/// Redis has no bound (its queue grows until memory runs out); past
/// these, queuing fails like a wrong command does (EXEC then answers
/// EXECABORT), so one client cannot hold unbounded memory.
pub const MAX_QUEUED: usize = 1 << 20;
pub const MAX_QUEUED_BYTES: usize = 256 << 20;
const QUEUE_FULL: &str = "ERR MULTI queue full: a transaction may queue at most \
    1048576 commands and 256 MiB (kv's bound; EXEC will abort)";

/// Who watches which key, and the watchers touched since the last
/// `mark_touched`.
#[derive(Debug, Default)]
pub struct Watches {
    /// (database, key) -> clients.
    by_key: HashMap<(usize, Vec<u8>), BTreeSet<ConnId>>,
    touched: Vec<ConnId>,
}

impl Kv {
    /// Whether any client watches any key (every write checks, so this is
    /// the fast path when nobody does).
    pub fn watching(&self) -> bool {
        !self.watches.by_key.is_empty()
    }
}

/// Queues a request (of command `spec`, named `name`) inside MULTI, or
/// answers the queuing error.
pub fn queue(
    kv: &mut Kv,
    client: &mut Client,
    spec: Option<&'static Spec>,
    name: &str,
    now: i64,
    request: Request,
) -> Reply {
    // Redis 7.0 queues (P)SUBSCRIBE and (P)UNSUBSCRIBE too: their
    // confirmations become elements of EXEC's reply (7.2 refuses them).
    let error = match spec {
        None => Some(crate::commands::unknown(&request[0], &request[1..])),
        Some(spec) => {
            let n = request.len() as i64;
            if (spec.arity > 0 && n != spec.arity) || (spec.arity < 0 && n < -spec.arity) {
                Some(Reply::error(format!(
                    "ERR wrong number of arguments for '{name}' command"
                )))
            } else {
                crate::commands::subcommand_error(name, &request[1..])
            }
        }
    };
    // Redis checks memory before queuing too: over `maxmemory` (after
    // evicting), no command is queued, `denyoom` or not, since a queue can
    // grow without bound (and EXEC will abort).
    let error = error.or_else(|| crate::eviction::refuse(kv, now, || true));
    let cost = crate::blocking::request_cost(&request);
    let queued = client.tx.queue.as_ref().map_or(0, Vec::len);
    let error = error.or_else(|| {
        (queued >= MAX_QUEUED || client.tx.queued_bytes.saturating_add(cost) > MAX_QUEUED_BYTES)
            .then(|| Reply::error(QUEUE_FULL))
    });
    match error {
        Some(e) => {
            client.tx.aborted = true;
            e
        }
        None => {
            client.tx.queued_bytes += cost;
            client.tx.queue.get_or_insert_with(Vec::new).push(request);
            Reply::Status("QUEUED")
        }
    }
}

/// MULTI, EXEC, DISCARD, WATCH, UNWATCH, for `conn` (state `client`).
pub fn run(
    kv: &mut Kv,
    ctx: &mut Ctx<'_, Kv>,
    conn: ConnId,
    client: &mut Client,
    call: &Call<'_>,
) -> Option<Reply> {
    let a = call.args;
    let in_multi = client.tx.queue.is_some();
    let wrong_arity = match call.name {
        "watch" => a.is_empty(),
        _ => !a.is_empty(),
    };
    if wrong_arity {
        // Redis checks the arity before it runs these (they are never
        // queued), and an arity error inside MULTI makes EXEC abort, as
        // for a queued command. A rejected EXEC itself discards the
        // transaction and the watches (`execCommandAbort`), in MULTI or
        // not.
        if call.name == "exec" {
            reset(kv, conn, client);
            return Some(Reply::error(
                "EXECABORT Transaction discarded because of: wrong number of arguments for 'exec' command",
            ));
        }
        if in_multi {
            client.tx.aborted = true;
        }
        return Some(call.wrong_arity());
    }
    let reply = match call.name {
        "multi" if in_multi => Reply::error("ERR MULTI calls can not be nested"),
        "multi" => {
            client.tx.queue = Some(Vec::new());
            client.tx.aborted = false;
            Reply::Ok
        }
        "discard" if !in_multi => Reply::error("ERR DISCARD without MULTI"),
        "discard" => {
            reset(kv, conn, client);
            Reply::Ok
        }
        "exec" if !in_multi => Reply::error("ERR EXEC without MULTI"),
        "exec" => return Some(exec(kv, ctx, conn, client, call.now)),
        "watch" if in_multi => Reply::error("ERR WATCH inside MULTI is not allowed"),
        "watch" => {
            let db = client.session.db;
            for key in a {
                watch(kv, conn, client, db, key, call.now);
            }
            Reply::Ok
        }
        "unwatch" => {
            unwatch_all(kv, conn, client);
            Reply::Ok
        }
        _ => unreachable!("dispatched here"),
    };
    Some(reply)
}

fn exec(kv: &mut Kv, ctx: &mut Ctx<'_, Kv>, conn: ConnId, client: &mut Client, now: i64) -> Reply {
    let queue = client.tx.queue.take().unwrap_or_default();
    let (aborted, dirty) = (client.tx.aborted, client.tx.dirty);
    reset(kv, conn, client);
    // Memory is checked once for the whole transaction, before it runs
    // (Redis's `processCommand` for an EXEC queuing a `denyoom` command):
    // none of it runs, rather than some of it.
    let denyoom = || queue.iter().any(|r| crate::eviction::denyoom(&r[0]));
    if let Some(Reply::Error(oom)) = crate::eviction::refuse(kv, now, denyoom) {
        return Reply::error(format!("EXECABORT Transaction discarded because of: {oom}"));
    }
    if aborted {
        return Reply::error("EXECABORT Transaction discarded because of previous errors.");
    }
    if dirty {
        return Reply::NilArray;
    }
    let mut replies = Vec::with_capacity(queue.len());
    kv.executing = true;
    client.tx.executing = true;
    for request in queue {
        let name = crate::session::command_name(crate::commands::lookup(&request[0]), &request[0]);
        kv.commands_processed += 1;
        let reply = crate::session::execute(kv, ctx, conn, client, &name, now, &request)
            .map(|r| crate::session::shape(client.session.proto, &name, &request[1..], r))
            // QUIT inside MULTI: Redis answers OK there too.
            .unwrap_or(Reply::Ok);
        replies.push(reply);
    }
    kv.executing = false;
    client.tx.executing = false;
    Reply::Array(replies)
}

/// Ends the transaction of `conn` (state `client`; at EXEC, DISCARD,
/// RESET, close): drops the queue and every watch.
pub fn reset(kv: &mut Kv, conn: ConnId, client: &mut Client) {
    client.tx.queue = None;
    client.tx.queued_bytes = 0;
    client.tx.aborted = false;
    unwatch_all(kv, conn, client);
}

fn watch(kv: &mut Kv, conn: ConnId, client: &mut Client, db: usize, key: &[u8], now: i64) {
    // Lazy expiry first: a key already past its deadline is gone before
    // the watch starts, so its removal does not count as a touch.
    kv.db_at(db).exists(key, now);
    if !client.tx.watched.insert((db, key.to_vec())) {
        return;
    }
    kv.watches
        .by_key
        .entry((db, key.to_vec()))
        .or_default()
        .insert(conn);
    kv.db_at(db).watched.insert(key.to_vec());
}

fn unwatch_all(kv: &mut Kv, conn: ConnId, client: &mut Client) {
    client.tx.dirty = false;
    // A touch recorded before the unwatch must not mark the next
    // transaction's watches.
    if !kv.watches.touched.is_empty() {
        kv.watches.touched.retain(|c| *c != conn);
    }
    let watched = std::mem::take(&mut client.tx.watched);
    for (db, key) in watched {
        let entry = (db, key);
        if let Some(conns) = kv.watches.by_key.get_mut(&entry) {
            conns.remove(&conn);
            if conns.is_empty() {
                kv.watches.by_key.remove(&entry);
                kv.db_at(entry.0).watched.remove(&entry.1);
            }
        }
    }
}

/// Records every client watching `key` in `db` as touched (marked dirty
/// by the next [`mark_touched`]).
pub fn touch_key(kv: &mut Kv, db: usize, key: &[u8]) {
    if !kv.watching() {
        return;
    }
    if let Some(conns) = kv.watches.by_key.get(&(db, key.to_vec())) {
        kv.watches.touched.extend(conns.iter().copied());
    }
}

/// Marks the clients touched since the last call dirty: `me` (the
/// connection whose callback runs, and its state, out of the loop's table
/// meanwhile) if it is one of them, the others through `ctx`. Called once
/// a command (or an expiry or eviction cycle) is done, before any EXEC
/// can read the marks.
pub fn mark_touched(kv: &mut Kv, ctx: &mut Ctx<'_, Kv>, mut me: Option<(ConnId, &mut Client)>) {
    if kv.watches.touched.is_empty() {
        return;
    }
    for conn in std::mem::take(&mut kv.watches.touched) {
        let client = match &mut me {
            Some((id, client)) if *id == conn => Some(&mut **client),
            _ => ctx.state(conn).map(|c| &mut **c),
        };
        if let Some(client) = client {
            client.tx.dirty = true;
        }
    }
}

/// FLUSHDB/FLUSHALL/SWAPDB: touches the watched keys of `db` that exist
/// in it now.
pub fn touch_db(kv: &mut Kv, db: usize) {
    if !kv.watching() {
        return;
    }
    let keys: Vec<Vec<u8>> = kv.db_ref(db).watched.iter().cloned().collect();
    for key in keys {
        if kv.db_ref(db).contains(&key) {
            touch_key(kv, db, &key);
        }
    }
}

/// After a successful command: if it writes, touches the keys it names.
pub fn touch_written(kv: &mut Kv, db: usize, name: &str, args: &[Vec<u8>]) {
    let Some(spec) = crate::commands::lookup(name.as_bytes()) else {
        return;
    };
    if !spec.write {
        return;
    }
    let (first, last, step) = spec.keys;
    if first <= 0 || step <= 0 {
        return;
    }
    // Positions count the command name as 0; `last` may count from the end.
    let argc = args.len() as i64 + 1;
    let last = if last < 0 {
        argc + last
    } else {
        last.min(argc - 1)
    };
    let mut pos = first;
    while pos <= last {
        if let Some(key) = args.get(pos as usize - 1) {
            touch_key(kv, db, key);
        }
        pos += step;
    }
}

/// Touches the watched keys that expired (lazily or actively) since the
/// last call, in every database.
pub fn touch_expired(kv: &mut Kv) {
    for db in 0..kv.db_count() {
        if kv.db_ref(db).has_touched() {
            for key in kv.db_at(db).take_touched() {
                touch_key(kv, db, &key);
            }
        }
    }
}
