//! TLS handshakes per second, full and resumed: a new connection per
//! request (handshake + PING + close), 16 in flight.

use std::fmt::Write as _;

use crate::context::{ratio, si, Case, Ctx};
use crate::requests::Workload;
use crate::servers::{Contender, Server};

/// Connections handshaking at once.
pub const IN_FLIGHT: usize = 16;

/// baton kv vs redis vs valkey, and baton echo vs tokio echo (tokio-rustls).
pub fn run(ctx: &mut Ctx) -> Result<(), String> {
    let who = [
        Contender::single(Server::BatonKv),
        Contender::single(Server::Redis),
        Contender::single(Server::Valkey),
        Contender::single(Server::BatonEcho),
        Contender::single(Server::TokioEcho),
    ];
    let mut rows = Vec::new();
    for resume in [false, true] {
        let mut plan = ctx.plan(Workload::Ping, IN_FLIGHT, 1, 0);
        plan.reconnect = true;
        let case = Case {
            section: "handshakes",
            label: if resume { "resumed" } else { "full" }.to_string(),
            tls: true,
            prefill: false,
            resume,
            plan,
        };
        let medians = ctx.run(&case, &who)?;
        rows.push((case.label, medians));
    }
    let md = &mut ctx.md;
    let _ = writeln!(
        md,
        "### TLS handshakes per second ({IN_FLIGHT} in flight; each: connect, handshake, PING, close)\n\n\
         | handshake | baton kv | redis | valkey | baton echo | tokio echo | kv/redis | kv/valkey | baton echo/tokio | server CPU ms per 1k: kv / redis / valkey / baton echo / tokio |\n|---|---|---|---|---|---|---|---|---|---|"
    );
    for (label, m) in &rows {
        let s: Vec<_> = m.iter().map(|s| s.expect("ran")).collect();
        let cpu: Vec<String> = s
            .iter()
            .map(|s| format!("{:.0}", s.cpu_per_million))
            .collect();
        let _ = writeln!(
            md,
            "| {label} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            si(s[0].throughput),
            si(s[1].throughput),
            si(s[2].throughput),
            si(s[3].throughput),
            si(s[4].throughput),
            ratio(Some(s[0].throughput), Some(s[1].throughput)),
            ratio(Some(s[0].throughput), Some(s[2].throughput)),
            ratio(Some(s[3].throughput), Some(s[4].throughput)),
            cpu.join(" / "),
        );
    }
    let _ = writeln!(md);
    Ok(())
}
