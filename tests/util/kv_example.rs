// The KV example's modules, for test binaries that run it in-process:
// `include!("util/kv_example.rs");` at the binary's root (its modules use
// `crate::` paths, so they must sit at the crate root).
#[path = "../../examples/kv/blob.rs"]
mod blob;
#[path = "../../examples/kv/clock.rs"]
mod clock;
#[path = "../../examples/kv/command_table.rs"]
mod command_table;
#[path = "../../examples/kv/commands/mod.rs"]
mod commands;
#[path = "../../examples/kv/db.rs"]
mod db;
#[path = "../../examples/kv/glob.rs"]
mod glob;
#[path = "../../examples/kv/info.rs"]
mod info;
#[path = "../../examples/kv/key.rs"]
mod key;
#[path = "../../examples/kv/keyspace.rs"]
mod keyspace;
#[path = "../../examples/kv/multi.rs"]
mod multi;
#[path = "../../examples/kv/protocol.rs"]
mod protocol;
#[path = "../../examples/kv/pubsub.rs"]
mod pubsub;
#[path = "../../examples/kv/resp3.rs"]
mod resp3;
#[path = "../../examples/kv/service.rs"]
mod service;
#[path = "../../examples/kv/session.rs"]
mod session;
#[path = "../../examples/kv/zset.rs"]
mod zset;
