//! Blocking commands: BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN,
//! BZPOPMAX, BZMPOP, with Redis 7.0's semantics.
//!
//! A blocking command that finds data answers at once, exactly as its
//! non-blocking form (`commands::pops`). Otherwise the client waits: it
//! joins a FIFO of waiters per (database, key), and a timer of its
//! connection (token: the wait's sequence number) answers the null reply
//! when its timeout passes. Inside EXEC nothing blocks: the command answers
//! as if it timed out at once.
//!
//! Waking: a key with waiters that comes into existence, whatever command
//! creates it (LPUSH, ZADD, RENAME, MOVE, a BLMOVE's destination, ...), is
//! recorded by `Db::set` (Redis's `signalKeyAsReady` in `dbAdd`); SWAPDB
//! signals the waited keys that exist after the swap. After each command
//! (`after_command`, so after a whole EXEC) the ready keys are served as
//! Redis's `handleClientsBlockedOnKeys` does: waiters in arrival order,
//! each served from the key while it has data; a waiter whose key was
//! consumed by an earlier one stays blocked, one waiting for another type
//! is skipped, and keys a serve creates (BLMOVE) are served in turn. A
//! waiter is another connection than the one whose command made the key
//! ready (a client runs nothing while it waits), so its state is in the
//! loop's table.
//!
//! While blocked, a client's further requests are not run (Redis stops
//! reading the connection). kv queues them in the client (`Pending`)
//! instead (`Ctx::pause_reading` could now replace that) and runs them in order once
//! it is unblocked, in a callback of its own connection (a `RESUME` timer
//! of zero delay, as Redis runs unblocked clients before it next sleeps),
//! where its state is the one handed over. That queue is bounded (`MAX_PENDING_REQUESTS`,
//! `MAX_PENDING_BYTES`): a client that sends more while blocked is closed,
//! with a logged reason, so it cannot grow memory without bound.

mod timeout;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use std::time::Duration;

use baton::{ConnId, Ctx, TimerId};

use crate::commands::pops::{self, End, Op};
use crate::commands::Call;
use crate::protocol::{Reply, Request};
use crate::service::{Client, Kv, RESUME};

/// Requests a blocked client may queue before it is closed. The bytes
/// bound is the one that matters; this one only keeps the count sane (a
/// pipeline of a BLPOP and thousands of small commands is ordinary).
pub const MAX_PENDING_REQUESTS: usize = 1 << 20;
/// Bytes (arguments plus a small overhead each) it may queue.
pub const MAX_PENDING_BYTES: usize = 64 << 20;
/// What one queued argument, and one queued request, cost beyond the
/// argument bytes (a `Vec` each, and the queue's slot).
const ARG_OVERHEAD: usize = 24;
const REQUEST_OVERHEAD: usize = 48;

/// A blocked client's wait.
#[derive(Debug)]
pub struct Blocked {
    /// Its place in the waiter queues (arrival order).
    seq: u64,
    db: usize,
    /// The keys it waits on, without repeats.
    keys: Vec<Vec<u8>>,
    op: Op,
    /// The timeout timer (a timer of the client's connection, token
    /// `seq`); `None` waits forever.
    timer: Option<TimerId>,
    /// The command (lowercase) and its arguments, to shape the reply.
    name: String,
    args: Vec<Vec<u8>>,
}

/// Requests a blocked client sent, to run after it is unblocked.
#[derive(Debug, Default)]
pub struct Pending {
    requests: VecDeque<Request>,
    bytes: usize,
}

/// The waiters of every key.
#[derive(Debug, Default)]
pub struct Blocking {
    /// Waiters per (db, key) by arrival: O(log n) to join, leave (a
    /// timeout, a close) or find the next, however many wait.
    waiters: HashMap<(usize, Vec<u8>), BTreeMap<u64, ConnId>>,
    last_seq: u64,
    /// Clients blocked now (INFO `blocked_clients`).
    blocked: usize,
}

impl Blocking {
    pub fn blocked_clients(&self) -> usize {
        self.blocked
    }
}

/// The memory a queued request holds, roughly: for the bounds on what a
/// client may queue (here while blocked, and inside MULTI).
pub fn request_cost(request: &Request) -> usize {
    request
        .iter()
        .map(|a| a.len().saturating_add(ARG_OVERHEAD))
        .fold(REQUEST_OVERHEAD, usize::saturating_add)
}

impl Pending {
    pub fn has_requests(&self) -> bool {
        !self.requests.is_empty()
    }
}

/// Queues a request of blocked `conn` to run once it is unblocked, or
/// closes the connection if that would exceed the bounds.
pub fn defer(
    kv: &mut Kv,
    ctx: &mut Ctx<'_, Kv>,
    conn: ConnId,
    client: &mut Client,
    request: Request,
) {
    let cost = request_cost(&request);
    let pending = &mut client.pending;
    if pending.requests.len() >= MAX_PENDING_REQUESTS
        || pending.bytes.saturating_add(cost) > MAX_PENDING_BYTES
    {
        tracing::warn!(
            conn = conn.serial(),
            queued = pending.requests.len(),
            bytes = pending.bytes,
            "kv: closing a client that sent more than its blocked-request queue holds"
        );
        kv.forget_client(ctx, conn, client);
        let _ = ctx.close(conn);
        return;
    }
    pending.bytes += cost;
    pending.requests.push_back(request);
}

/// BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN, BZPOPMAX, BZMPOP
/// for `conn` (state `client`) on database `db`: the reply, or `None` if
/// it blocked.
pub fn run(
    kv: &mut Kv,
    ctx: &mut Ctx<'_, Kv>,
    conn: ConnId,
    client: &mut Client,
    db: usize,
    call: &Call<'_>,
) -> Option<Reply> {
    let a = call.args;
    // The keys, the op, the timeout, and the reply inside EXEC.
    let parsed: Result<(&[Vec<u8>], Op, _, Reply), Reply> = match call.name {
        "blpop" | "brpop" | "bzpopmin" | "bzpopmax" if a.len() >= 2 => {
            let (keys, last) = a.split_at(a.len() - 1);
            let op = match call.name {
                "blpop" => Op::List {
                    end: End::Left,
                    count: None,
                },
                "brpop" => Op::List {
                    end: End::Right,
                    count: None,
                },
                "bzpopmin" => Op::ZSet {
                    max: false,
                    count: None,
                },
                _ => Op::ZSet {
                    max: true,
                    count: None,
                },
            };
            timeout::parse(&last[0]).map(|t| (keys, op, t, Reply::NilArray))
        }
        "blmove" if a.len() == 5 => match (End::parse(&a[2]), End::parse(&a[3])) {
            (Some(from), Some(to)) => {
                let op = Op::Move {
                    from,
                    to,
                    dst: a[1].clone(),
                };
                timeout::parse(&a[4]).map(|t| (&a[..1], op, t, Reply::Nil))
            }
            _ => Err(Reply::error(crate::commands::SYNTAX)),
        },
        "brpoplpush" if a.len() == 3 => {
            let op = Op::Move {
                from: End::Right,
                to: End::Left,
                dst: a[1].clone(),
            };
            timeout::parse(&a[2]).map(|t| (&a[..1], op, t, Reply::Nil))
        }
        // Redis 7.0 reads numkeys, the keys, the end and COUNT before the
        // timeout (a bad count is reported over a bad timeout).
        "blmpop" | "bzmpop" if a.len() >= 4 => pops::parse_mpop(&a[1..], call.name == "bzmpop")
            .and_then(|m| timeout::parse(&a[0]).map(|t| (m.keys, m.op, t, Reply::NilArray))),
        _ => Err(call.wrong_arity()),
    };
    let (keys, op, timeout, in_exec) = match parsed {
        Ok(parsed) => parsed,
        Err(e) => return Some(e),
    };
    match pops::first_ready(kv, db, keys, &op, call.now) {
        Err(e) => return Some(e),
        Ok(Some(reply)) => return Some(reply),
        Ok(None) if kv.executing => return Some(in_exec),
        Ok(None) => {}
    }
    kv.blocking.last_seq += 1;
    let seq = kv.blocking.last_seq;
    // `conn` is running this command, so it is open.
    let timer = timeout.and_then(|after| ctx.set_conn_timer(conn, after, seq).ok());
    let mut seen = HashSet::with_capacity(keys.len());
    let keys: Vec<Vec<u8>> = keys
        .iter()
        .filter(|k| seen.insert(k.as_slice()))
        .cloned()
        .collect();
    for key in &keys {
        kv.blocking
            .waiters
            .entry((db, key.clone()))
            .or_default()
            .insert(seq, conn);
        kv.db_at(db).blocked.insert(key.clone());
    }
    client.blocked = Some(Box::new(Blocked {
        seq,
        db,
        keys,
        op,
        timer,
        name: call.name.to_owned(),
        args: a.to_vec(),
    }));
    kv.blocking.blocked += 1;
    // Redis never closes a blocked client for idleness.
    ctx.set_idle_exempt(conn, true);
    None
}

/// Takes `client`'s wait out of it, if it waits, and out of the waiter
/// queues; the caller then [`leave`]s it (its timer and idle flag).
pub fn take_wait(kv: &mut Kv, client: &mut Client) -> Option<Box<Blocked>> {
    let blocked = client.blocked.take()?;
    kv.blocking.blocked -= 1;
    for key in &blocked.keys {
        let entry = (blocked.db, key.clone());
        let Some(queue) = kv.blocking.waiters.get_mut(&entry) else {
            continue;
        };
        queue.remove(&blocked.seq);
        if queue.is_empty() {
            kv.blocking.waiters.remove(&entry);
            kv.db_at(blocked.db).blocked.remove(key);
        }
    }
    if kv.blocking.blocked == 0 {
        // Signals left over from this command have no one to serve.
        for db in 0..kv.db_count() {
            kv.db_at(db).take_ready();
        }
    }
    Some(blocked)
}

/// The rest of ending a wait (`take_wait`'s): cancels its timeout.
/// Nothing if `wait` is `None`.
pub fn leave(ctx: &mut Ctx<'_, Kv>, wait: Option<Box<Blocked>>) {
    if let Some(timer) = wait.and_then(|w| w.timer) {
        ctx.cancel_timer(timer);
    }
}

/// Ends the wait of `conn`, the connection whose callback runs (state
/// `client`), and answers it `reply`.
fn unblock_mine(
    kv: &mut Kv,
    ctx: &mut Ctx<'_, Kv>,
    conn: ConnId,
    client: &mut Client,
    reply: Reply,
) {
    let Some(blocked) = take_wait(kv, client) else {
        return;
    };
    // Channels or patterns: a subscriber stays exempt from the idle timeout.
    ctx.set_idle_exempt(conn, client.subscriptions() > 0);
    let shape = Some((blocked.name.as_str(), blocked.args.as_slice()));
    crate::session::deliver(ctx, conn, client, reply, shape);
    leave(ctx, Some(blocked));
}

/// Ends the wait of another connection `conn` and answers it: `reply`, or
/// the reply `serve` makes from its wait (`None`: it keeps waiting). Its
/// queued requests run in its own callback, soon (`resume`). `false` if it
/// was not waiting (or is gone).
fn unblock_other(
    kv: &mut Kv,
    ctx: &mut Ctx<'_, Kv>,
    conn: ConnId,
    serve: impl FnOnce(&mut Kv, &Blocked) -> Option<Reply>,
) -> bool {
    let Some(client) = ctx.state(conn) else {
        return false;
    };
    let Some(blocked) = client.blocked.as_deref() else {
        return false;
    };
    let Some(reply) = serve(kv, blocked) else {
        return false;
    };
    let Some(blocked) = take_wait(kv, client) else {
        return false;
    };
    let subscribed = client.subscriptions() > 0;
    let shape = Some((blocked.name.as_str(), blocked.args.as_slice()));
    let reply = crate::session::prepare(&mut client.session, reply, shape);
    let resume = client.pending.has_requests();
    if let Some(reply) = reply {
        // Refused only if the connection is closing or gone; the runtime
        // logs and counts why.
        let _ = ctx.send(conn, reply);
    }
    ctx.set_idle_exempt(conn, subscribed);
    if resume {
        let _ = ctx.set_conn_timer(conn, Duration::ZERO, RESUME);
    }
    leave(ctx, Some(blocked));
    true
}

/// The timer with `token` of `conn` (state `client`) fired: if it is its
/// wait's timeout, the wait ends with the null reply.
pub fn timed_out(
    kv: &mut Kv,
    ctx: &mut Ctx<'_, Kv>,
    conn: ConnId,
    client: &mut Client,
    token: u64,
) {
    if client.blocked.as_ref().is_some_and(|b| b.seq == token) {
        unblock_mine(kv, ctx, conn, client, Reply::NilArray);
    }
}

/// CLIENT UNBLOCK: ends the wait of `conn` (another connection: the one
/// asking runs, so it does not wait) as a timeout or with an error;
/// `false` if it was not blocked.
pub fn unblock_by_request(kv: &mut Kv, ctx: &mut Ctx<'_, Kv>, conn: ConnId, error: bool) -> bool {
    unblock_other(kv, ctx, conn, |_, _| {
        Some(if error {
            Reply::error("UNBLOCKED client unblocked via CLIENT UNBLOCK")
        } else {
            Reply::NilArray
        })
    })
}

/// SWAPDB: the waited keys of `db` that exist now are ready (Redis's
/// `scanDatabaseForReadyKeys`).
pub fn signal_db(kv: &mut Kv, db: usize, now: i64) {
    let target = kv.db_at(db);
    if target.blocked.is_empty() {
        return;
    }
    let keys: Vec<Vec<u8>> = target.blocked.iter().cloned().collect();
    for key in keys {
        if target.exists(&key, now) {
            target.signal_if_blocked(&key);
        }
    }
}

/// After every command of `conn` (state `client`): serves the keys it made
/// ready (a serve may touch watched keys: those touches are applied too).
pub fn after_command(kv: &mut Kv, ctx: &mut Ctx<'_, Kv>, conn: ConnId, client: &mut Client) {
    // Nobody blocked: no key can be ready either (keys are signalled only
    // while they have waiters; see `take_wait`).
    if kv.blocking.blocked != 0 {
        serve_ready(kv, ctx);
        crate::multi::mark_touched(kv, ctx, Some((conn, client)));
    }
}

/// Runs the requests `conn` (state `client`) queued while it was blocked,
/// in order, until it blocks again or has none left, serving ready keys
/// after each (as Redis does after every command). In `conn`'s own
/// callback: its `RESUME` timer, or its timeout's.
pub fn resume(kv: &mut Kv, ctx: &mut Ctx<'_, Kv>, conn: ConnId, client: &mut Client) {
    // The runtime may have decided to close meanwhile (the replies passed
    // the output limit): the rest would run for nobody.
    while client.blocked.is_none() && !client.closing && !ctx.is_closing(conn) {
        let Some(request) = client.pending.requests.pop_front() else {
            return;
        };
        client.pending.bytes = client.pending.bytes.saturating_sub(request_cost(&request));
        kv.run_request(ctx, conn, client, request, true);
        after_command(kv, ctx, conn, client);
    }
}

/// Serves ready keys until none is left (a serve may create more).
fn serve_ready(kv: &mut Kv, ctx: &mut Ctx<'_, Kv>) {
    loop {
        let mut ready = Vec::new();
        let mut seen = HashSet::new();
        for db in 0..kv.db_count() {
            for key in kv.db_at(db).take_ready() {
                let entry = (db, key);
                if kv.blocking.waiters.contains_key(&entry) && seen.insert(entry.clone()) {
                    ready.push(entry);
                }
            }
        }
        if ready.is_empty() {
            return;
        }
        for (db, key) in ready {
            serve_key(kv, ctx, db, &key);
        }
    }
}

/// Serves the waiters of `key` in `db`, first come first served, while it
/// has data. Each step finds the next waiter after the last one looked at
/// (O(log n)): a push costs what it serves, not the length of the queue.
fn serve_key(kv: &mut Kv, ctx: &mut Ctx<'_, Kv>, db: usize, key: &[u8]) {
    let entry = (db, key.to_vec());
    kv.mount(db);
    let mut after = 0;
    loop {
        let Some((seq, conn)) = kv
            .blocking
            .waiters
            .get(&entry)
            .and_then(|queue| queue.range(after + 1..).next())
            .map(|(s, c)| (*s, *c))
        else {
            return;
        };
        after = seq;
        let now = kv.clock.now_ms(ctx.now());
        // The key is gone (or has nothing left to pop): nobody after is
        // served either.
        let mut exhausted = false;
        unblock_other(kv, ctx, conn, |kv, blocked| {
            match kv.db.get(key, now) {
                None => {
                    exhausted = true;
                    return None;
                }
                Some(value) if !blocked.op.accepts(value) => return None,
                Some(_) => {}
            }
            match pops::apply(kv, db, key, &blocked.op, now) {
                Ok(Some(reply)) => Some(reply),
                Ok(None) => {
                    exhausted = true;
                    None
                }
                // BLMOVE into a key of another type: this waiter gets the
                // error and is unblocked; the element stays for the next.
                Err(e) => Some(e),
            }
        });
        if exhausted {
            return;
        }
    }
}
