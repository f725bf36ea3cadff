//! SUBSCRIBE / UNSUBSCRIBE / PUBLISH: server push is a write to another
//! connection's `ConnId`; the runtime queues it even if that connection is
//! on an IO thread at the moment. Messages and confirmations are push
//! frames on RESP3 (so a subscriber can also run commands) and arrays on
//! RESP2 (`session::send` picks per connection).

use std::collections::{BTreeSet, HashMap};

use baton::{ConnId, Ctx};

use crate::commands::Call;
use crate::protocol::Reply;
use crate::service::Kv;

/// Subscribers by channel.
#[derive(Debug, Default)]
pub struct Channels(HashMap<Vec<u8>, BTreeSet<ConnId>>);

pub fn run(kv: &mut Kv, ctx: &mut Ctx<'_, Kv>, conn: ConnId, call: &Call<'_>) -> Option<Reply> {
    let a = call.args;
    match call.name {
        "subscribe" => {
            if a.is_empty() {
                return Some(call.wrong_arity());
            }
            for channel in a {
                kv.channels
                    .0
                    .entry(channel.clone())
                    .or_default()
                    .insert(conn);
                let count = kv.clients.get_mut(&conn).map_or(0, |c| {
                    c.channels.insert(channel.clone());
                    c.channels.len()
                });
                crate::session::send(
                    kv,
                    ctx,
                    conn,
                    confirmation("subscribe", Some(channel), count),
                );
            }
            // Redis's timeout does not close subscribers waiting for messages.
            ctx.set_idle_exempt(conn, true);
            None
        }
        "unsubscribe" => {
            let channels: Vec<Vec<u8>> = if a.is_empty() {
                kv.clients
                    .get(&conn)
                    .map(|c| c.channels.iter().cloned().collect())
                    .unwrap_or_default()
            } else {
                a.to_vec()
            };
            if channels.is_empty() {
                crate::session::send(kv, ctx, conn, confirmation("unsubscribe", None, 0));
            }
            for channel in channels {
                remove(kv, conn, &channel);
                let count = kv.clients.get(&conn).map_or(0, |c| c.channels.len());
                crate::session::send(
                    kv,
                    ctx,
                    conn,
                    confirmation("unsubscribe", Some(&channel), count),
                );
            }
            if kv.clients.get(&conn).is_some_and(|c| c.channels.is_empty()) {
                ctx.set_idle_exempt(conn, false);
            }
            None
        }
        "publish" => {
            if a.len() != 2 {
                return Some(call.wrong_arity());
            }
            let mut delivered = 0;
            if let Some(subscribers) = kv.channels.0.get(&a[0]) {
                for &subscriber in subscribers {
                    let message = Reply::Push(vec![
                        Reply::bulk(b"message".to_vec()),
                        Reply::Bulk(a[0].clone()),
                        Reply::Bulk(a[1].clone()),
                    ]);
                    let proto = crate::session::proto(kv, subscriber);
                    // A subscriber past its output limit is closed by the runtime.
                    if ctx
                        .send(subscriber, crate::resp3::adapt(message, proto))
                        .is_ok()
                    {
                        delivered += 1;
                    }
                }
            }
            Some(Reply::Int(delivered))
        }
        _ => unreachable!("dispatched here"),
    }
}

fn confirmation(kind: &str, channel: Option<&Vec<u8>>, count: usize) -> Reply {
    Reply::Push(vec![
        Reply::bulk(kind.as_bytes().to_vec()),
        channel.map_or(Reply::Nil, |c| Reply::Bulk(c.clone())),
        Reply::Int(count as i64),
    ])
}

fn remove(kv: &mut Kv, conn: ConnId, channel: &[u8]) {
    if let Some(subscribers) = kv.channels.0.get_mut(channel) {
        subscribers.remove(&conn);
        if subscribers.is_empty() {
            kv.channels.0.remove(channel);
        }
    }
    if let Some(client) = kv.clients.get_mut(&conn) {
        client.channels.remove(channel);
    }
}

/// Drops every subscription of `conn` (on close and RESET).
pub fn unsubscribe_all(kv: &mut Kv, conn: ConnId) {
    let channels: Vec<Vec<u8>> = kv
        .clients
        .get(&conn)
        .map(|c| c.channels.iter().cloned().collect())
        .unwrap_or_default();
    for channel in channels {
        remove(kv, conn, &channel);
    }
}

impl Channels {
    pub fn len(&self) -> usize {
        self.0.len()
    }
}
