//! Echo: baton's echo example against the tokio + tokio-rustls echo, plain
//! and TLS, 64 B and 4 KiB messages, one and 16 in flight, 64 connections.

use std::fmt::Write as _;

use crate::context::{ratio, si, Case, Ctx};
use crate::kv::plot;
use crate::requests::Workload;
use crate::servers::{Contender, Server};

const CONNECTIONS: usize = 64;

/// Both single-threaded (baton inline, tokio current-thread).
pub fn run(ctx: &mut Ctx) -> Result<(), String> {
    let who = [
        Contender::single(Server::BatonEcho),
        Contender::single(Server::TokioEcho),
    ];
    let mut rows = Vec::new();
    for tls in [false, true] {
        for size in [64, 4096] {
            for pipeline in [1, 16] {
                let case = Case {
                    section: "echo",
                    label: format!(
                        "{} {size} B x {pipeline}",
                        if tls { "TLS" } else { "plain" }
                    ),
                    tls,
                    prefill: false,
                    resume: true,
                    plan: ctx.plan(Workload::Echo, CONNECTIONS, pipeline, size),
                };
                let medians = ctx.run(&case, &who)?;
                rows.push((case.label, medians));
            }
        }
    }
    let md = &mut ctx.md;
    let _ = writeln!(
        md,
        "### Echo ({CONNECTIONS} connections; baton inline vs tokio current-thread)\n\n\
         Messages per second (median); a batch of 1 or 16 messages in flight per connection.\n\n\
         | case | baton echo | tokio echo | baton/tokio | p99 ms baton | p99 ms tokio | CPU/M baton | CPU/M tokio | baton CPU / tokio CPU |\n|---|---|---|---|---|---|---|---|---|"
    );
    for (label, m) in &rows {
        let (b, t) = (m[0].expect("ran"), m[1].expect("ran"));
        let _ = writeln!(
            md,
            "| {label} | {} | {} | {} | {:.2} | {:.2} | {:.3} | {:.3} | {} |",
            si(b.throughput),
            si(t.throughput),
            ratio(Some(b.throughput), Some(t.throughput)),
            b.p99_us / 1000.0,
            t.p99_us / 1000.0,
            b.cpu_per_million,
            t.cpu_per_million,
            ratio(Some(b.cpu_per_million), Some(t.cpu_per_million)),
        );
    }
    let _ = writeln!(md);
    plot(ctx, "echo", &who, &rows)
}
