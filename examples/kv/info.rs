//! INFO: server, clients, memory, stats (the runtime's counters), keyspace.

use std::fmt::Write;

use baton::{CloseReason, Ctx};

use crate::service::{Client, Kv};

/// The Redis version this server reports (its command set follows 7.x).
pub const VERSION: &str = "7.0.0";

/// The INFO text of `section` (all by default), asked by the connection
/// whose state is `me` (counted among the clients: it is out of the loop's
/// table while it runs).
pub fn render(kv: &Kv, ctx: &mut Ctx<'_, Kv>, me: &Client, section: Option<&Vec<u8>>) -> String {
    let want = |name: &str| {
        section.is_none_or(|s| {
            let s = s.to_ascii_lowercase();
            s == b"all" || s == b"default" || s == b"everything" || s == name.as_bytes()
        })
    };
    let stats = ctx.stats();
    let mut out = String::new();
    if want("server") {
        let _ = write!(
            out,
            "# Server\r\nredis_version:{VERSION}\r\nserver_name:baton-kv\r\nredis_mode:standalone\r\n\
             process_id:{}\r\ntcp_port:{}\r\nuptime_in_seconds:{}\r\nio_threads_active:{}\r\n\r\n",
            std::process::id(),
            kv.config.port,
            kv.started.elapsed().as_secs(),
            u8::from(stats.io_offloading)
        );
    }
    if want("clients") {
        let subscribed = |c: &Client| !c.closing && c.subscriptions() > 0;
        let pubsub_clients =
            usize::from(subscribed(me)) + ctx.states().filter(|(_, c)| subscribed(c)).count();
        let _ = write!(
            out,
            "# Clients\r\nconnected_clients:{}\r\nmaxclients:{}\r\nblocked_clients:{}\r\npubsub_clients:{}\r\npaused_clients:{}\r\n\r\n",
            kv.connected,
            kv.config.maxclients,
            kv.blocking.blocked_clients(),
            pubsub_clients,
            stats.connections_paused
        );
    }
    if want("memory") {
        let used = crate::eviction::used_memory(kv);
        let m = &kv.maxmemory;
        let peak = m.peak.get();
        let _ = write!(
            out,
            "# Memory\r\nused_memory:{used}\r\nused_memory_human:{}\r\n",
            crate::memory::human(used)
        );
        // The process's resident size next to the data's estimate; no
        // fragmentation ratio: the two do not measure the same things
        // (see memory.rs).
        if let Some(rss) = crate::memory::rss() {
            let _ = write!(
                out,
                "used_memory_rss:{rss}\r\nused_memory_rss_human:{}\r\n",
                crate::memory::human(rss)
            );
        }
        let _ = write!(
            out,
            "used_memory_peak:{peak}\r\nused_memory_peak_human:{}\r\nmaxmemory:{}\r\nmaxmemory_human:{}\r\nmaxmemory_policy:{}\r\n\r\n",
            crate::memory::human(peak),
            m.limit,
            crate::memory::human(m.limit),
            m.policy.name()
        );
    }
    if want("stats") {
        let _ = write!(
            out,
            "# Stats\r\ntotal_connections_received:{}\r\nrejected_connections:{}\r\ntotal_commands_processed:{}\r\n\
             total_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\nexpired_keys:{}\r\nevicted_keys:{}\r\npubsub_channels:{}\r\npubsub_patterns:{}\r\n\
             io_threaded_reads_processed:{}\r\ninline_fallbacks:{}\r\nio_activation_trials:{}\r\nwakeups_sent:{}\r\nwakeups_coalesced:{}\r\n\
             tls_handshakes_ok:{}\r\ntls_handshakes_failed:{}\r\ntls_handshakes_resumed:{}\r\n",
            stats.connections_accepted,
            stats.connections_rejected,
            kv.commands_processed,
            stats.bytes_in,
            stats.bytes_out,
            (0..kv.db_count()).map(|i| kv.db_ref(i).expired()).sum::<u64>(),
            kv.maxmemory.evicted,
            kv.channels.len(),
            kv.channels.patterns(),
            stats.jobs_dispatched,
            stats.inline_fallbacks,
            stats.io_trials,
            stats.wakeups_sent,
            stats.wakeups_coalesced,
            stats.handshakes_ok,
            stats.handshakes_failed,
            stats.handshakes_resumed
        );
        for (i, name) in CloseReason::NAMES.iter().enumerate() {
            let _ = write!(out, "closed_{name}:{}\r\n", stats.closed[i]);
        }
        out.push_str("\r\n");
    }
    if want("keyspace") {
        out.push_str("# Keyspace\r\n");
        for i in 0..kv.db_count() {
            let db = kv.db_ref(i);
            if db.len() > 0 {
                let _ = write!(
                    out,
                    "db{i}:keys={},expires={},avg_ttl=0\r\n",
                    db.len(),
                    db.keys_with_ttl()
                );
            }
        }
    }
    out
}
