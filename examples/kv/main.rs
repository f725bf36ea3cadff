//! cargo run --release --example kv
//!
//! A Redis-protocol key-value server on baton: RESP2 and RESP3 (HELLO),
//! 16 databases, transactions; plain on 6380 and TLS
//! on 6381 (a generated certificate unless --tls-cert-file/--tls-key-file
//! are given). Try `redis-cli -p 6380` or
//! `redis-cli -p 6381 --tls --insecure`. The keyspace lives on the main
//! loop; IO threads (--io-threads) read, parse, encrypt and write.

#[path = "../common/runtime_args.rs"]
mod runtime_args;
#[path = "../common/serve.rs"]
mod serve;
#[path = "../common/tls_args.rs"]
mod tls_args;

mod blob;
mod blocking;
mod clock;
mod command_table;
mod commands;
mod db;
mod eviction;
mod glob;
mod info;
mod key;
mod key_table;
mod keyspace;
mod measured;
mod memory;
mod multi;
mod protocol;
mod pubsub;
mod resp3;
mod service;
mod session;
mod zset;

use std::net::IpAddr;
use std::process::ExitCode;

use clap::Parser;
use runtime_args::RuntimeArgs;
use tls_args::TlsArgs;

/// A Redis-protocol key-value server on baton.
#[derive(Debug, Parser)]
#[command(
    version,
    about = "A Redis-protocol key-value server on baton (RESP2/RESP3, plain and TLS)."
)]
struct Args {
    /// Addresses to listen on (IPv4 or IPv6; list several).
    #[arg(long, num_args = 1.., default_value = "127.0.0.1")]
    bind: Vec<IpAddr>,
    /// Plain TCP port (0 picks a free port).
    #[arg(long, default_value_t = 6380)]
    port: u16,
    /// TLS port; 0 turns TLS off.
    #[arg(long, default_value_t = 6381)]
    tls_port: u16,
    /// Number of databases (SELECT 0..N-1).
    #[arg(long, default_value_t = 16)]
    databases: usize,
    /// Require AUTH with this password.
    #[arg(long)]
    requirepass: Option<String>,
    #[command(flatten)]
    runtime: RuntimeArgs,
    /// Largest bulk string a client may send, in bytes.
    #[arg(long, default_value_t = 512 << 20)]
    proto_max_bulk_len: usize,
    /// Close a client whose unsent replies exceed this many bytes.
    #[arg(long, default_value_t = 256 << 20)]
    client_output_buffer_limit: usize,
    #[command(flatten)]
    tls: TlsArgs,
    /// Most bytes of data (keys and values, by kv's estimate) before
    /// writes evict or are refused: bytes, or with a unit as in redis.conf
    /// (`100mb`, `1gb`, `500k`); 0 means no limit.
    #[arg(long, default_value = "0", value_parser = parse_memory)]
    maxmemory: u64,
    /// What to do over `--maxmemory`: noeviction, allkeys-lru,
    /// allkeys-random, volatile-lru, volatile-random or volatile-ttl.
    #[arg(long, default_value = "noeviction", value_parser = parse_policy)]
    maxmemory_policy: eviction::Policy,
    /// Keys sampled per database for each LRU or random eviction (1-64).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u8).range(1..=64))]
    maxmemory_samples: u8,
}

fn parse_memory(text: &str) -> Result<u64, String> {
    eviction::parse_bytes(text).ok_or_else(|| "argument must be a memory value".into())
}

fn parse_policy(text: &str) -> Result<eviction::Policy, String> {
    eviction::Policy::parse(text)
}

fn main() -> ExitCode {
    let args = Args::parse();
    serve::main_with("kv", || {
        let config = args
            .runtime
            .config()
            // A frame is at most one bulk string plus its framing.
            .max_frame_size(args.proto_max_bulk_len.saturating_add(64 << 10))
            .output_hard_limit(args.client_output_buffer_limit);
        let mut kv = service::Kv::new(service::KvConfig {
            requirepass: args.requirepass.clone(),
            proto_max_bulk_len: args.proto_max_bulk_len,
            port: args.port,
            tls_port: args.tls_port,
            io_threads: args.runtime.io_threads,
            maxclients: args.runtime.maxclients,
            timeout_secs: args.runtime.timeout,
        });
        kv.dbs = db::Dbs::new(args.databases);
        kv.client_output_buffer_limit = args.client_output_buffer_limit;
        kv.bind = args
            .bind
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" ");
        kv.maxmemory.limit = args.maxmemory;
        kv.maxmemory.policy = args.maxmemory_policy;
        kv.maxmemory.samples = usize::from(args.maxmemory_samples);
        let listen = serve::Listen {
            binds: &args.bind,
            port: Some(args.port),
            tls_port: args.tls_port,
            tls: &args.tls,
        };
        let report = serve::serve("kv", listen, config, kv)?;
        println!(
            "kv stopped: {} connections served",
            report.stats.connections_accepted
        );
        Ok(())
    })
}
