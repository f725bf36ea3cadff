//! The KV service: the keyspace, on the main loop, and each connection's
//! `Client`, its state in the loop's table. No `Mutex`, `RwLock` or atomic
//! guards any of it: one thread owns it.
//!
//! A callback about a connection is handed that connection's `Client`; it
//! is out of the table meanwhile, so code that reaches other clients
//! through `Ctx::state`/`Ctx::states` (PUBLISH, CLIENT LIST, WATCH, waking
//! a blocked client) is given the current one as well and includes it
//! itself.

use std::collections::BTreeSet;
use std::time::Duration;

use baton::{CloseReason, ConnId, ConnInfo, Ctx, Service, TimerId};

use crate::clock::WallClock;
use crate::commands;
use crate::keyspace::Db;
use crate::protocol::{Limits, Request, Resp};
use crate::pubsub::{self, Channels};

/// How often the active expiry cycle runs, and how many keys it may remove
/// per run before yielding to clients (it runs again at once if more are due).
const EXPIRY_PERIOD: Duration = Duration::from_millis(100);
const EXPIRY_BUDGET: usize = 1000;

/// Token of the connection timer that runs the requests a client queued
/// while it was blocked (`blocking::resume`); a blocked client's timeout
/// timer has its wait's sequence number, from 1 up.
pub const RESUME: u64 = 0;

/// Unsent reply bytes a client that must still AUTH may have: Redis's
/// static reply buffer (`PROTO_REPLY_CHUNK_BYTES`), past which it closes
/// such a client.
const UNAUTHENTICATED_OUTPUT: usize = 16 * 1024;

/// Per-connection state: the loop owns it (`Service::ConnState`, boxed so
/// that handing it to a callback moves a pointer). It exists from
/// `on_open` to `on_close`, so every request runs with its connection's
/// `authenticated` flag: there is no request without one to admit.
#[derive(Debug)]
pub struct Client {
    pub name: Option<String>,
    pub authenticated: bool,
    pub channels: BTreeSet<Vec<u8>>,
    /// PSUBSCRIBE patterns, in subscription order.
    pub patterns: crate::pubsub::Patterns,
    /// The last command run, as CLIENT LIST shows it.
    pub last_command: &'static str,
    /// Protocol, database and CLIENT settings.
    pub session: crate::session::Session,
    /// MULTI queue and WATCHed keys.
    pub tx: crate::multi::Tx,
    /// The wait of a blocked client (BLPOP...), and the requests it sent
    /// meanwhile (see `blocking.rs`).
    pub blocked: Option<Box<crate::blocking::Blocked>>,
    pub pending: crate::blocking::Pending,
    /// kv closed the connection (QUIT, CLIENT KILL, a blocked client
    /// over its queue): nothing it sent after runs, as Redis stops reading
    /// it, and CLIENT LIST, INFO and CLIENT KILL no longer see it (Redis
    /// frees a killed client at once; here its state lives until the
    /// connection's close).
    pub closing: bool,
    /// The limits this connection's codec was last given (its own copy
    /// travels with the connection, maybe on an IO thread).
    pub codec_limits: Limits,
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
    /// The database of the running command (see `db.rs`).
    pub db: Db,
    /// The other databases.
    pub dbs: crate::db::Dbs,
    pub watches: crate::multi::Watches,
    /// Blocked clients by key, their timers, the clients to resume.
    pub blocking: crate::blocking::Blocking,
    /// EXEC is running its queue (blocking commands do not block then).
    pub executing: bool,
    /// The largest bulk a new connection may send (CONFIG SET may lower it).
    pub proto_max_bulk_len: usize,
    /// The output limit the runtime enforces (reported by CONFIG GET).
    pub client_output_buffer_limit: usize,
    /// The listening addresses, as CONFIG GET bind reports them.
    pub bind: String,
    /// Unix seconds at start (LASTSAVE: nothing is ever saved).
    pub started_unix_secs: i64,
    /// Clients open and not closing: what CLIENT LIST lists (INFO
    /// `connected_clients`).
    pub connected: usize,
    pub channels: Channels,
    pub requirepass: Option<String>,
    pub config: KvConfig,
    pub commands_processed: u64,
    pub started: std::time::Instant,
    /// Unix milliseconds from the loop's clock (see `clock.rs`).
    pub clock: WallClock,
    /// The memory limit, its policy and eviction's state.
    pub maxmemory: crate::eviction::MaxMemory,
}

impl Kv {
    /// A server with Redis's default 16 databases (replace `dbs` before
    /// serving for another count).
    pub fn new(config: KvConfig) -> Self {
        let started_unix_secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        Self {
            db: Db::default(),
            dbs: crate::db::Dbs::new(16),
            watches: crate::multi::Watches::default(),
            blocking: crate::blocking::Blocking::default(),
            executing: false,
            proto_max_bulk_len: config.proto_max_bulk_len,
            client_output_buffer_limit: baton::Config::default().output_hard_limit,
            bind: "127.0.0.1".into(),
            started_unix_secs,
            connected: 0,
            channels: Channels::default(),
            requirepass: config.requirepass.clone(),
            config,
            commands_processed: 0,
            started: std::time::Instant::now(),
            clock: WallClock::default(),
            maxmemory: Default::default(),
        }
    }
}

impl Kv {
    /// Runs one request of `conn`, whose state is `client` (from the
    /// network, or queued while it was blocked).
    /// A blocked client's requests are queued instead (see `blocking`),
    /// unless `resumed`: one it queued, now run in order.
    pub fn run_request(
        &mut self,
        ctx: &mut Ctx<'_, Self>,
        conn: ConnId,
        client: &mut Client,
        request: Request,
        resumed: bool,
    ) {
        if client.closing {
            return;
        }
        if !resumed && (client.blocked.is_some() || client.pending.has_requests()) {
            crate::blocking::defer(self, ctx, conn, client, request);
            return;
        }
        // The one lookup of the command and the one clock reading of the
        // request: everything after takes them from here.
        let spec = commands::lookup(&request[0]);
        let now = self.clock.now_ms(ctx.now());
        // Redis's `lastcmd`: NULL after an unknown command.
        client.last_command = spec.map_or("NULL", |s| s.name);
        client.session.last_ms = now;
        self.commands_processed += 1;
        crate::session::handle(self, ctx, conn, client, spec, now, request);
        // The codec may wait for the limits after a login before AUTH and
        // after CONFIG SET (`Resp::held`): it is told them whatever those
        // did. Otherwise only a change reaches it.
        let waits = match spec.map(|s| s.name) {
            Some("auth" | "hello") => client.codec_limits.before_auth(),
            Some("config") => true,
            _ => false,
        };
        let limits = self.codec_limits(client.authenticated);
        if waits || limits != client.codec_limits {
            client.codec_limits = limits;
            let _ = ctx.update_codec(conn, move |codec| codec.set_limits(limits));
        }
        // Redis closes a client that must still AUTH once its unsent
        // replies pass its 16 KB reply buffer (CVE-2025-21605), dropping
        // them: it cannot make the server hold replies it never reads.
        if limits.before_auth() && ctx.output_len(conn).unwrap_or(0) > UNAUTHENTICATED_OUTPUT {
            tracing::info!(
                ?conn,
                "closing a client that has not authenticated: its replies pass 16 KB"
            );
            self.mark_closing(client);
            let _ = ctx.abort(conn, CloseReason::OutputLimit);
        }
    }

    /// What a connection's codec must enforce now.
    pub fn codec_limits(&self, authenticated: bool) -> Limits {
        Limits {
            max_bulk_len: self.proto_max_bulk_len,
            password_set: self.requirepass.is_some(),
            authenticated,
        }
    }

    /// Brings every other connection's codec in step with the settings
    /// (after CONFIG SET); the running one's follows its request.
    pub fn update_codecs(&mut self, ctx: &mut Ctx<'_, Self>) {
        let changed: Vec<(ConnId, Limits)> = ctx
            .states()
            .filter_map(|(id, client)| {
                let limits = self.codec_limits(client.authenticated);
                (limits != client.codec_limits).then(|| {
                    client.codec_limits = limits;
                    (id, limits)
                })
            })
            .collect();
        for (id, limits) in changed {
            let _ = ctx.update_codec(id, move |codec| codec.set_limits(limits));
        }
    }
}

impl Kv {
    /// Everything kv keeps for `conn` besides its state `client`, gone: its
    /// wait, subscriptions, transaction and watches. At the close, or
    /// earlier at CLIENT KILL or when a blocked client is closed (which
    /// must not be served or listed meanwhile); idempotent.
    pub fn forget_client(&mut self, ctx: &mut Ctx<'_, Self>, conn: ConnId, client: &mut Client) {
        self.mark_closing(client);
        let wait = self.forget_state(conn, client);
        crate::blocking::leave(ctx, wait);
    }

    /// [`forget_client`](Self::forget_client) for another open connection
    /// (CLIENT KILL), then its close.
    pub fn kill_other(&mut self, ctx: &mut Ctx<'_, Self>, conn: ConnId) {
        if let Some(client) = ctx.state(conn) {
            self.mark_closing(client);
            let wait = self.forget_state(conn, client);
            crate::blocking::leave(ctx, wait);
        }
        let _ = ctx.close(conn);
    }

    /// What of `forget_client` needs the client but no `Ctx`; returns its
    /// wait, for the caller to `leave` (its timer is the loop's).
    fn forget_state(
        &mut self,
        conn: ConnId,
        client: &mut Client,
    ) -> Option<Box<crate::blocking::Blocked>> {
        client.pending = Default::default();
        pubsub::unsubscribe_all(self, conn, client);
        crate::multi::reset(self, conn, client);
        crate::blocking::take_wait(self, client)
    }
}

impl Kv {
    /// Closes `conn` once its replies so far are out, at its own request
    /// (QUIT, CLIENT KILL of itself): what it sent after, queued while it
    /// was blocked or still arriving, is dropped unrun.
    pub fn close_after_reply(
        &mut self,
        ctx: &mut Ctx<'_, Self>,
        conn: ConnId,
        client: &mut Client,
    ) {
        self.mark_closing(client);
        client.pending = Default::default();
        let _ = ctx.close(conn);
    }

    /// From here on `client` is closing: nothing it sends runs, and it
    /// leaves the count of clients.
    fn mark_closing(&mut self, client: &mut Client) {
        if !client.closing {
            client.closing = true;
            self.connected -= 1;
        }
    }
}

impl Service for Kv {
    type Codec = Resp;
    type ConnState = Box<Client>;
    type Command = ();

    fn codec(&mut self, _: &ConnInfo) -> Resp {
        // `on_open` follows at once, with the same settings.
        Resp::with_limits(self.codec_limits(self.requirepass.is_none()))
    }

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        ctx.set_timer(EXPIRY_PERIOD, 0);
    }

    fn on_open(&mut self, ctx: &mut Ctx<'_, Self>, _: ConnId) -> Box<Client> {
        let now = self.clock.now_ms(ctx.now());
        self.connected += 1;
        Box::new(Client {
            name: None,
            authenticated: self.requirepass.is_none(),
            channels: BTreeSet::new(),
            patterns: Default::default(),
            last_command: "NULL",
            session: crate::session::Session::new(now),
            tx: crate::multi::Tx::default(),
            blocked: None,
            pending: crate::blocking::Pending::default(),
            closing: false,
            codec_limits: self.codec_limits(self.requirepass.is_none()),
        })
    }

    /// A pipelined batch: start loading each request's first key before
    /// the first runs, so the lookups overlap their waits on memory. Only
    /// keys stored in place (22 bytes or less): a request may be shown
    /// here up to 16 times, so hashing stays O(1) per showing, and a longer
    /// key's lookup waits on its heap bytes anyway.
    fn frames_ahead(&mut self, client: &Box<Client>, requests: &mut dyn Iterator<Item = &Request>) {
        let db = self.db_ref(client.session.db);
        for request in requests {
            let Some(spec) = request.first().and_then(|name| commands::lookup(name)) else {
                continue;
            };
            // Position 0 is the name: a first key at 0 or below means none.
            let key = usize::try_from(spec.keys.0).ok().filter(|&p| p > 0);
            if let Some(key) = key.and_then(|p| request.get(p)) {
                if key.len() <= crate::key::Short::MAX {
                    db.prefetch(key);
                }
            }
        }
    }

    fn on_frame(
        &mut self,
        ctx: &mut Ctx<'_, Self>,
        conn: ConnId,
        client: &mut Box<Client>,
        request: Request,
    ) {
        self.run_request(ctx, conn, client, request, false);
        crate::blocking::after_command(self, ctx, conn, client);
    }

    fn on_conn_timer(
        &mut self,
        ctx: &mut Ctx<'_, Self>,
        conn: ConnId,
        client: &mut Box<Client>,
        token: u64,
    ) {
        if token != RESUME {
            crate::blocking::timed_out(self, ctx, conn, client, token);
        }
        crate::blocking::resume(self, ctx, conn, client);
    }

    fn on_close(
        &mut self,
        ctx: &mut Ctx<'_, Self>,
        conn: ConnId,
        mut client: Box<Client>,
        _: CloseReason,
    ) {
        self.forget_client(ctx, conn, &mut client);
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Self>, _: TimerId, _: u64) {
        let now = self.clock.now_ms(ctx.now());
        let mut budget = EXPIRY_BUDGET;
        let mut more_due = false;
        for db in 0..self.db_count() {
            let (removed, more) = self.db_at(db).expire_due(now, budget);
            budget -= removed;
            more_due |= more;
        }
        if self.watching() {
            crate::multi::touch_expired(self);
        }
        crate::eviction::tick(self, now);
        // No connection's callback runs: every client is in the table.
        crate::multi::mark_touched(self, ctx, None);
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
