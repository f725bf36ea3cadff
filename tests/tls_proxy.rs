//! The TLS proxy example (`examples/tls_proxy`), run in-process: every
//! client connection gets its own upstream connection; bytes pass unchanged
//! both ways; one side's end (FIN) is passed on to the other after
//! everything before it; a reset or error on either side closes both; an
//! upstream that cannot be opened closes its client and is counted by
//! reason. After every case: nothing open in the proxy, no descriptor left
//! in this process, no callback panicked.
//!
//! * `redis_upstream`: a real redis-server behind the proxy (plain and TLS
//!   upstream) answers a random command stream byte for byte as it does
//!   directly; request+FIN, request+RST and bare FIN.
//! * `upstream_failures`: refused, slow to accept (connect timeout), an
//!   untrusted certificate, closing (FIN or RST) mid-reply.
//! * `pair_deaths`: client and upstream die in every order, idle and with
//!   data in flight, with slots reused while pairs die.
//! * `slow_readers`: 20 slow readers of large replies, memory bounded.
//!
//! Every case runs inline and with two IO threads handing off every step.
//! The tests run one at a time (`harness::serial`): they count this
//! process's descriptors.

mod util;

// The example's service, as its binary builds it.
#[allow(dead_code)]
#[path = "../examples/tls_proxy/counters.rs"]
mod counters;
#[allow(dead_code)]
#[path = "../examples/tls_proxy/service.rs"]
mod service;

#[path = "tls_proxy/harness.rs"]
mod harness;
#[path = "tls_proxy/pair_deaths.rs"]
mod pair_deaths;
#[path = "tls_proxy/redis_upstream.rs"]
mod redis_upstream;
#[path = "tls_proxy/resets_while_relaying.rs"]
mod resets_while_relaying;
#[path = "tls_proxy/slow_readers.rs"]
mod slow_readers;
#[path = "tls_proxy/upstream_failures.rs"]
mod upstream_failures;

#[global_allocator]
static HEAP: util::heap::Counting = util::heap::Counting;
