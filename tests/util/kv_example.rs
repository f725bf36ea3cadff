// The KV example's modules, for test binaries that run it in-process:
// `include!("util/kv_example.rs");` at the binary's root (its modules use
// `crate::` paths, so they must sit at the crate root).
#[path = "../../examples/kv/blob.rs"]
mod blob;
#[path = "../../examples/kv/blocking/mod.rs"]
mod blocking;
#[path = "../../examples/kv/clock.rs"]
mod clock;
#[path = "../../examples/kv/command_table.rs"]
mod command_table;
#[path = "../../examples/kv/commands/mod.rs"]
mod commands;
#[path = "../../examples/kv/db.rs"]
mod db;
#[path = "../../examples/kv/eviction.rs"]
mod eviction;
#[path = "../../examples/kv/glob.rs"]
mod glob;
#[path = "../../examples/kv/info.rs"]
mod info;
#[path = "../../examples/kv/key.rs"]
mod key;
#[path = "../../examples/kv/key_table.rs"]
mod key_table;
#[path = "../../examples/kv/keyspace.rs"]
mod keyspace;
#[path = "../../examples/kv/measured.rs"]
mod measured;
#[path = "../../examples/kv/memory.rs"]
mod memory;
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

/// The KV example on a free loopback port with two IO threads always on
/// (so replies cross threads), as the differential tests run it.
#[allow(dead_code)] // not every binary that includes the modules runs one
fn kv_test_server(requirepass: Option<&str>) -> util::TestServer<()> {
    let kv = kv_test_config(requirepass);
    util::spawn_server(kv_test_runtime(), move || service::Kv::new(kv))
}

/// [`kv_test_server`] on a TLS port serving `cert`.
#[allow(dead_code)]
fn kv_tls_test_server(cert: &util::TestCert) -> util::TestServer<()> {
    let kv = kv_test_config(None);
    util::spawn_tls_server(kv_test_runtime(), cert.server_config(), move || {
        service::Kv::new(kv)
    })
}

#[allow(dead_code)]
fn kv_test_config(requirepass: Option<&str>) -> service::KvConfig {
    service::KvConfig {
        requirepass: requirepass.map(str::to_owned),
        proto_max_bulk_len: 512 << 20,
        port: 0,
        tls_port: 0,
        io_threads: 2,
        maxclients: 10_000,
        timeout_secs: 0,
    }
}

#[allow(dead_code)]
fn kv_test_runtime() -> baton::Config {
    baton::Config::default()
.io_threads(2)
.io_activation(baton::IoActivation::Always)
}
