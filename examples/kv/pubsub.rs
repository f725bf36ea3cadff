//! SUBSCRIBE / UNSUBSCRIBE / PSUBSCRIBE / PUNSUBSCRIBE / PUBLISH / PUBSUB:
//! server push is a write to another connection's `ConnId`; the runtime
//! queues it even if that connection is on an IO thread at the moment.
//! Messages and confirmations are push frames on RESP3 (so a subscriber
//! can also run commands) and arrays on RESP2 (`session::send` picks per
//! connection).
//!
//! Patterns are Redis's globs (`glob.rs`), resolved once at their first
//! PSUBSCRIBE and matched against the channel at each PUBLISH: the cost of
//! a PUBLISH is one match per distinct pattern, as in Redis. A subscriber to a channel and to a pattern matching it
//! gets the message twice (`message`, then `pmessage`), and PUBLISH counts
//! both. Counts in confirmations are channels plus patterns.
//!
//! Inside MULTI, Redis 7.0 queues these commands (7.2 refuses them): the
//! last confirmation of a command is its reply, so it becomes an element
//! of EXEC's array there, as in 7.0 (earlier ones, of a command naming
//! several channels, go out at once; Redis 7.0 puts them in EXEC's array
//! too, beyond the count it announced).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use baton::{ConnId, Ctx};

use crate::commands::Call;
use crate::glob::Glob;
use crate::protocol::Reply;
use crate::service::{Client, Kv};

/// Subscribers by channel and by pattern.
#[derive(Debug, Default)]
pub struct Channels {
    channels: HashMap<Vec<u8>, BTreeSet<ConnId>>,
    patterns: HashMap<Vec<u8>, PatternSubscribers>,
}

/// A pattern's subscribers, and the pattern resolved once when its first
/// subscriber came (not at every PUBLISH); both go with the last one.
#[derive(Debug)]
struct PatternSubscribers {
    glob: Glob,
    conns: BTreeSet<ConnId>,
}

impl Channels {
    /// Channels with at least one subscriber.
    pub fn len(&self) -> usize {
        self.channels.len()
    }

    /// Distinct patterns with at least one subscriber (PUBSUB NUMPAT).
    pub fn patterns(&self) -> usize {
        self.patterns.len()
    }
}

/// One client's patterns, in the order it subscribed to them (Redis keeps
/// a list, and PUNSUBSCRIBE without arguments answers in that order).
#[derive(Debug, Default)]
pub struct Patterns {
    by_order: BTreeMap<u64, Vec<u8>>,
    order_of: HashMap<Vec<u8>, u64>,
    next: u64,
}

impl Patterns {
    pub fn len(&self) -> usize {
        self.order_of.len()
    }

    fn insert(&mut self, pattern: &[u8]) -> bool {
        if self.order_of.contains_key(pattern) {
            return false;
        }
        self.order_of.insert(pattern.to_vec(), self.next);
        self.by_order.insert(self.next, pattern.to_vec());
        self.next += 1;
        true
    }

    fn remove(&mut self, pattern: &[u8]) -> bool {
        match self.order_of.remove(pattern) {
            Some(order) => self.by_order.remove(&order).is_some(),
            None => false,
        }
    }

    fn ordered(&self) -> Vec<Vec<u8>> {
        self.by_order.values().cloned().collect()
    }
}

impl crate::service::Client {
    /// Channels plus patterns: the count Redis puts in confirmations.
    pub fn subscriptions(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }
}

/// The pub/sub commands, for `conn` (state `client`).
pub fn run(
    kv: &mut Kv,
    ctx: &mut Ctx<'_, Kv>,
    conn: ConnId,
    client: &mut Client,
    call: &Call<'_>,
) -> Option<Reply> {
    let a = call.args;
    let confirmations = match call.name {
        "subscribe" | "psubscribe" if a.is_empty() => return Some(call.wrong_arity()),
        "subscribe" | "psubscribe" => {
            let pattern = call.name == "psubscribe";
            let confirmations = a
                .iter()
                .map(|name| {
                    subscribe(kv, conn, client, name, pattern);
                    confirmation(client, call.name, Some(name))
                })
                .collect();
            // Redis's timeout does not close subscribers waiting for messages.
            ctx.set_idle_exempt(conn, true);
            confirmations
        }
        "unsubscribe" | "punsubscribe" => {
            let pattern = call.name == "punsubscribe";
            let names: Vec<Vec<u8>> = if a.is_empty() {
                if pattern {
                    client.patterns.ordered()
                } else {
                    client.channels.iter().cloned().collect()
                }
            } else {
                a.to_vec()
            };
            let mut confirmations: Vec<Reply> = names
                .iter()
                .map(|name| {
                    unsubscribe(kv, conn, client, name, pattern);
                    confirmation(client, call.name, Some(name))
                })
                .collect();
            if confirmations.is_empty() {
                confirmations.push(confirmation(client, call.name, None));
            }
            if client.subscriptions() == 0 {
                ctx.set_idle_exempt(conn, false);
            }
            confirmations
        }
        "publish" if a.len() != 2 => return Some(call.wrong_arity()),
        "publish" => return Some(Reply::Int(publish(kv, ctx, conn, client, &a[0], &a[1]))),
        "pubsub" => return Some(pubsub(kv, call)),
        _ => unreachable!("dispatched here"),
    };
    let mut confirmations = confirmations;
    let last = confirmations.pop();
    for reply in confirmations {
        crate::session::send(ctx, conn, client.session.proto, reply);
    }
    last
}

fn confirmation(client: &Client, kind: &str, name: Option<&Vec<u8>>) -> Reply {
    let count = client.subscriptions();
    Reply::Push(vec![
        Reply::bulk(kind.as_bytes().to_vec()),
        name.map_or(Reply::Nil, |c| Reply::Bulk(c.clone())),
        Reply::Int(count as i64),
    ])
}

fn subscribe(kv: &mut Kv, conn: ConnId, client: &mut Client, name: &[u8], pattern: bool) {
    let new = if pattern {
        client.patterns.insert(name)
    } else {
        client.channels.insert(name.to_vec())
    };
    if !new {
        return;
    }
    if pattern {
        kv.channels
            .patterns
            .entry(name.to_vec())
            .or_insert_with(|| PatternSubscribers {
                glob: Glob::new(name),
                conns: BTreeSet::new(),
            })
            .conns
            .insert(conn);
    } else {
        let index = &mut kv.channels.channels;
        index.entry(name.to_vec()).or_default().insert(conn);
    }
}

fn unsubscribe(kv: &mut Kv, conn: ConnId, client: &mut Client, name: &[u8], pattern: bool) {
    if pattern {
        let index = &mut kv.channels.patterns;
        if let Some(subscribers) = index.get_mut(name) {
            subscribers.conns.remove(&conn);
            if subscribers.conns.is_empty() {
                index.remove(name);
            }
        }
    } else {
        let index = &mut kv.channels.channels;
        if let Some(subscribers) = index.get_mut(name) {
            subscribers.remove(&conn);
            if subscribers.is_empty() {
                index.remove(name);
            }
        }
    }
    if pattern {
        client.patterns.remove(name);
    } else {
        client.channels.remove(name);
    }
}

/// Sends `message` to the channel's subscribers, then to the subscribers
/// of each matching pattern; returns how many messages went out. `conn`
/// (state `client`) publishes, and may be a subscriber itself (on RESP3).
fn publish(
    kv: &Kv,
    ctx: &mut Ctx<'_, Kv>,
    conn: ConnId,
    client: &Client,
    channel: &[u8],
    message: &[u8],
) -> i64 {
    let mut delivered = 0;
    let mut deliver = |subscriber: ConnId, push: Reply| {
        let proto = if subscriber == conn {
            client.session.proto
        } else {
            ctx.state(subscriber).map_or(2, |c| c.session.proto)
        };
        // A subscriber past its output limit is closed by the runtime.
        if ctx
            .send(subscriber, crate::resp3::adapt(push, proto))
            .is_ok()
        {
            delivered += 1;
        }
    };
    if let Some(subscribers) = kv.channels.channels.get(channel) {
        for &subscriber in subscribers {
            let push = Reply::Push(vec![
                Reply::bulk(b"message".to_vec()),
                Reply::Bulk(channel.to_vec()),
                Reply::Bulk(message.to_vec()),
            ]);
            deliver(subscriber, push);
        }
    }
    for (pattern, subscribers) in &kv.channels.patterns {
        if !subscribers.glob.matches(channel) {
            continue;
        }
        for &subscriber in &subscribers.conns {
            let push = Reply::Push(vec![
                Reply::bulk(b"pmessage".to_vec()),
                Reply::Bulk(pattern.clone()),
                Reply::Bulk(channel.to_vec()),
                Reply::Bulk(message.to_vec()),
            ]);
            deliver(subscriber, push);
        }
    }
    delivered
}

const PUBSUB_HELP: &[&str] = &[
    "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
    "HELP",
    "    Prints this help.",
];

/// PUBSUB CHANNELS [pattern] | NUMSUB [channel ...] | NUMPAT | HELP, and
/// the shard forms (kv has no shard channels: always empty).
fn pubsub(kv: &Kv, call: &Call<'_>) -> Reply {
    let a = call.args;
    let Some(sub) = a.first() else {
        return call.wrong_arity();
    };
    let lower = sub.to_ascii_lowercase();
    let arity_error = |name: &str| {
        Reply::error(format!(
            "ERR wrong number of arguments for 'pubsub|{name}' command"
        ))
    };
    let rest = &a[1..];
    match lower.as_slice() {
        b"help" if !rest.is_empty() => arity_error("help"),
        b"help" => Reply::Array(PUBSUB_HELP.iter().map(|line| Reply::Status(line)).collect()),
        b"numpat" if !rest.is_empty() => arity_error("numpat"),
        b"numpat" => Reply::Int(kv.channels.patterns() as i64),
        b"channels" | b"shardchannels" if rest.len() > 1 => Reply::error(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try PUBSUB HELP.",
            crate::commands::c_string(sub)
        )),
        b"channels" => {
            // Resolved once, not per channel (as KEYS does).
            let glob = rest.first().map(|p| crate::glob::Glob::new(p));
            let names = kv
                .channels
                .channels
                .keys()
                .filter(|c| glob.as_ref().is_none_or(|g| g.matches(c)))
                .cloned();
            Reply::array_of_bulks(names)
        }
        b"shardchannels" => Reply::Array(Vec::new()),
        b"numsub" | b"shardnumsub" => {
            let shard = lower.as_slice() == b"shardnumsub";
            let mut out = Vec::with_capacity(rest.len() * 2);
            for channel in rest {
                let n = if shard {
                    0
                } else {
                    kv.channels.channels.get(channel).map_or(0, |s| s.len())
                };
                out.push(Reply::Bulk(channel.clone()));
                out.push(Reply::Int(n as i64));
            }
            Reply::Array(out)
        }
        _ => Reply::error(format!(
            "ERR unknown subcommand '{}'. Try PUBSUB HELP.",
            crate::commands::c_string(&sub[..sub.len().min(128)])
        )),
    }
}

/// Drops every subscription of `conn` (state `client`), channels and
/// patterns (on close, CLIENT KILL and RESET).
pub fn unsubscribe_all(kv: &mut Kv, conn: ConnId, client: &mut Client) {
    let channels: Vec<Vec<u8>> = client.channels.iter().cloned().collect();
    for channel in channels {
        unsubscribe(kv, conn, client, &channel, false);
    }
    for pattern in client.patterns.ordered() {
        unsubscribe(kv, conn, client, &pattern, true);
    }
}
