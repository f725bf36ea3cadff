//! The KV service: the keyspace and per-client state, on the main loop.
//! No `Mutex`, `RwLock` or atomic guards any of it: one thread owns it.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use baton::{CloseReason, ConnId, ConnInfo, Ctx, Service, TimerId};

use crate::clock::WallClock;
use crate::commands;
use crate::keyspace::Db;
use crate::protocol::{Request, Resp};
use crate::pubsub::{self, Channels};

/// How often the active expiry cycle runs, and how many keys it may remove
/// per run before yielding to clients (it runs again at once if more are due).
const EXPIRY_PERIOD: Duration = Duration::from_millis(100);
const EXPIRY_BUDGET: usize = 1000;

/// Per-connection state.
#[derive(Debug)]
pub struct Client {
    pub name: Option<String>,
    pub authenticated: bool,
    pub channels: BTreeSet<Vec<u8>>,
    pub last_command: String,
}

/// Settings the service needs (and reports through CONFIG GET and INFO).
#[derive(Debug, Clone)]
pub struct KvConfig {
    pub requirepass: Option<String>,
    pub proto_max_bulk_len: usize,
    pub port: u16,
    pub tls_port: u16,
    pub io_threads: usize,
    pub maxclients: usize,
    pub timeout_secs: u64,
}

#[derive(Debug)]
pub struct Kv {
    pub db: Db,
    pub clients: HashMap<ConnId, Client>,
    pub channels: Channels,
    pub requirepass: Option<String>,
    pub config: KvConfig,
    pub commands_processed: u64,
    pub started: std::time::Instant,
    /// Unix milliseconds from the loop's clock (see `clock.rs`).
    pub clock: WallClock,
}

impl Kv {
    pub fn new(config: KvConfig) -> Self {
        Self {
            db: Db::default(),
            clients: HashMap::new(),
            channels: Channels::default(),
            requirepass: config.requirepass.clone(),
            config,
            commands_processed: 0,
            started: std::time::Instant::now(),
            clock: WallClock::default(),
        }
    }

    /// The values CONFIG GET reports (enough for redis-benchmark and tools).
    pub fn config_values(&self) -> Vec<(&'static str, String)> {
        let c = &self.config;
        vec![
            ("save", String::new()),
            ("appendonly", "no".into()),
            ("databases", "1".into()),
            ("port", c.port.to_string()),
            ("tls-port", c.tls_port.to_string()),
            ("io-threads", c.io_threads.max(1).to_string()),
            ("maxclients", c.maxclients.to_string()),
            ("timeout", c.timeout_secs.to_string()),
            ("proto-max-bulk-len", c.proto_max_bulk_len.to_string()),
            ("requirepass", c.requirepass.clone().unwrap_or_default()),
        ]
    }
}

impl Service for Kv {
    type Codec = Resp;
    type Command = ();

    fn codec(&mut self, _: &ConnInfo) -> Resp {
        Resp::new(self.config.proto_max_bulk_len)
    }

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        ctx.set_timer(EXPIRY_PERIOD, 0);
    }

    fn on_open(&mut self, _: &mut Ctx<'_, Self>, conn: ConnId) {
        let client = Client {
            name: None,
            authenticated: self.requirepass.is_none(),
            channels: BTreeSet::new(),
            last_command: "NULL".into(),
        };
        self.clients.insert(conn, client);
    }

    fn on_frame(&mut self, ctx: &mut Ctx<'_, Self>, conn: ConnId, request: Request) {
        self.commands_processed += 1;
        if let Some(client) = self.clients.get_mut(&conn) {
            // Reuses the client's buffer: no allocation per request.
            client.last_command.clear();
            let mut lower = [0u8; 32];
            match commands::lowercase_ascii(&request[0], &mut lower) {
                Some(name) => client.last_command.push_str(name),
                None => client
                    .last_command
                    .push_str(&String::from_utf8_lossy(&request[0]).to_ascii_lowercase()),
            }
        }
        if let Some(reply) = commands::dispatch(self, ctx, conn, request) {
            // Refused only if the connection is closing or gone; the runtime
            // logs and counts why.
            let _ = ctx.send(conn, reply);
        }
    }

    fn on_close(&mut self, _: &mut Ctx<'_, Self>, conn: ConnId, _: CloseReason) {
        pubsub::unsubscribe_all(self, conn);
        self.clients.remove(&conn);
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Self>, _: TimerId, _: u64) {
        let now = self.clock.now_ms(ctx.now());
        let (_, more_due) = self.db.expire_due(now, EXPIRY_BUDGET);
        ctx.set_timer(
            if more_due {
                Duration::ZERO
            } else {
                EXPIRY_PERIOD
            },
            0,
        );
    }
}
