//! The KV matrix: {baton kv, redis, valkey, limit} x {plain, TLS} x {SET,
//! GET} x {-P 1, -P 16} at 50 connections, single-threaded; then IO threads.

use std::fmt::Write as _;

use crate::context::{cpu_cell as cpu, p99_cell as p99, ratio, rps_cell as cell, Case, Ctx};
use crate::measure::Sample;
use crate::plots::{bars, Series};
use crate::requests::Workload;
use crate::servers::{Contender, Server};

const CONNECTIONS: usize = 50;
/// Value size for SET and GET (redis-benchmark's default is 3).
pub const VALUE: usize = 16;

fn cases(ctx: &Ctx) -> Vec<Case> {
    let mut cases = Vec::new();
    for tls in [false, true] {
        for workload in [Workload::Set, Workload::Get] {
            for pipeline in [1, 16] {
                cases.push(Case {
                    section: "kv",
                    label: format!(
                        "{} {} -P {pipeline}",
                        if tls { "TLS" } else { "plain" },
                        workload.name().to_uppercase()
                    ),
                    tls,
                    prefill: workload == Workload::Get,
                    resume: true,
                    plan: ctx.plan(workload, CONNECTIONS, pipeline, VALUE),
                });
            }
        }
    }
    cases
}

/// Single-threaded servers side by side.
pub fn single_threaded(ctx: &mut Ctx) -> Result<(), String> {
    let who = [
        Contender::single(Server::BatonKv),
        Contender::single(Server::Redis),
        Contender::single(Server::Valkey),
        Contender::single(Server::Limit),
    ];
    let mut rows: Vec<(String, Vec<Option<Sample>>)> = Vec::new();
    for case in cases(ctx) {
        let medians = ctx.run(&case, &who)?;
        rows.push((case.label, medians));
    }
    let tp = |s: &Option<Sample>| s.map(|s| s.throughput);
    let md = &mut ctx.md;
    let _ = writeln!(
        md,
        "### KV, single-threaded servers ({CONNECTIONS} connections, {VALUE} B values, 100,000 keys)\n\n\
         Requests per second (median), and baton kv's ratio to each peer.\n\n\
         | case | baton kv | redis | valkey | limit | kv/redis | kv/valkey | kv/limit |\n|---|---|---|---|---|---|---|---|"
    );
    for (label, m) in &rows {
        let _ = writeln!(
            md,
            "| {label} | {} | {} | {} | {} | {} | {} | {} |",
            cell(&m[0]),
            cell(&m[1]),
            cell(&m[2]),
            cell(&m[3]),
            ratio(tp(&m[0]), tp(&m[1])),
            ratio(tp(&m[0]), tp(&m[2])),
            ratio(tp(&m[0]), tp(&m[3])),
        );
    }
    let _ = writeln!(
        md,
        "\np99 latency (ms) and server CPU seconds per million requests (all the server's threads, from /proc).\n\n\
         | case | p99 kv | p99 redis | p99 valkey | p99 limit | CPU/M kv | CPU/M redis | CPU/M valkey | CPU/M limit | kv CPU / redis CPU |\n|---|---|---|---|---|---|---|---|---|---|"
    );
    for (label, m) in &rows {
        let _ = writeln!(
            md,
            "| {label} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            p99(&m[0]),
            p99(&m[1]),
            p99(&m[2]),
            p99(&m[3]),
            cpu(&m[0]),
            cpu(&m[1]),
            cpu(&m[2]),
            cpu(&m[3]),
            ratio(
                m[0].map(|s| s.cpu_per_million),
                m[1].map(|s| s.cpu_per_million)
            ),
        );
    }
    let tls_vs_plain = |who: usize, test: &str| {
        let find = |label: String| {
            rows.iter()
                .find(|r| r.0 == label)
                .and_then(|r| tp(&r.1[who]))
        };
        ratio(
            find(format!("TLS {test} -P 16")),
            find(format!("plain {test} -P 16")),
        )
    };
    let _ = writeln!(
        md,
        "\nTLS / plain at -P 16: baton kv SET {} GET {}; redis SET {} GET {}; valkey SET {} GET {}.\n",
        tls_vs_plain(0, "SET"),
        tls_vs_plain(0, "GET"),
        tls_vs_plain(1, "SET"),
        tls_vs_plain(1, "GET"),
        tls_vs_plain(2, "SET"),
        tls_vs_plain(2, "GET"),
    );
    plot(ctx, "kv", &who, &rows)
}

/// baton inline vs baton with 2 IO threads, and the peers with theirs.
pub fn io_threads(ctx: &mut Ctx) -> Result<(), String> {
    let who = [
        Contender::single(Server::BatonKv),
        Contender::threaded(Server::BatonKv, 2),
        Contender::always(Server::BatonKv, 2),
        Contender::threaded(Server::Redis, 2),
        Contender::threaded(Server::Valkey, 2),
    ];
    let mut rows = Vec::new();
    for case in cases(ctx) {
        let medians = ctx.run(&case, &who)?;
        rows.push((case.label, medians));
    }
    let tp = |s: &Option<Sample>| s.map(|s| s.throughput);
    let md = &mut ctx.md;
    let _ = writeln!(
        md,
        "### KV with IO threads\n\n\
         baton `--io-threads 2` (the loop plus two IO threads, adaptive: inline until the loop is saturated and handing off serves more), \
         baton `--io-threads 2 --io-threads-always` (every IO step handed off) and baton inline, in the same rounds; \
         redis and valkey with `--io-threads 2` (their count includes the main thread).\n\n\
         | case | kv inline | kv io2 | kv io2 always | redis io2 | valkey io2 | io2 / inline | always / inline | io2 / redis io2 | io2 / valkey io2 | p99 inline | p99 io2 | CPU/M io2 |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for (label, m) in &rows {
        let _ = writeln!(
            md,
            "| {label} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            cell(&m[0]),
            cell(&m[1]),
            cell(&m[2]),
            cell(&m[3]),
            cell(&m[4]),
            ratio(tp(&m[1]), tp(&m[0])),
            ratio(tp(&m[2]), tp(&m[0])),
            ratio(tp(&m[1]), tp(&m[3])),
            ratio(tp(&m[1]), tp(&m[4])),
            p99(&m[0]),
            p99(&m[1]),
            cpu(&m[1]),
        );
    }
    let _ = writeln!(md);
    plot(ctx, "kv_io_threads", &who, &rows)
}

/// Throughput and p99 bars per case and contender.
pub fn plot(
    ctx: &Ctx,
    name: &str,
    who: &[Contender],
    rows: &[(String, Vec<Option<Sample>>)],
) -> Result<(), String> {
    let labels: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
    let series = |f: fn(&Sample) -> f64| -> Vec<Series> {
        who.iter()
            .enumerate()
            .map(|(i, c)| Series {
                name: c.name(),
                values: rows.iter().map(|r| r.1[i].as_ref().map(f)).collect(),
            })
            .collect()
    };
    bars(
        &ctx.out_file(&format!("{name}_throughput.svg")),
        &format!("{name}: requests per second (median)"),
        &labels,
        &series(|s| s.throughput),
        "requests/s",
    )?;
    bars(
        &ctx.out_file(&format!("{name}_p99.svg")),
        &format!("{name}: p99 latency, ms (median of rounds)"),
        &labels,
        &series(|s| s.p99_us / 1000.0),
        "p99 ms",
    )
}
