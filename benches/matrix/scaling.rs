//! How cost grows with the work: throughput and p99 against connections,
//! value size and pipeline depth; baton kv vs redis, plain.

use std::fmt::Write as _;

use crate::context::{ratio, si, Case, Ctx};
use crate::measure::Sample;
use crate::plots::{curves, Series};
use crate::requests::Workload;
use crate::servers::{Contender, Server};

struct Curve {
    name: &'static str,
    x_label: &'static str,
    xs: Vec<usize>,
    /// The case for one x.
    case: fn(&Ctx, usize) -> Case,
}

fn case(
    ctx: &Ctx,
    label: String,
    workload: Workload,
    conns: usize,
    pipeline: usize,
    size: usize,
) -> Case {
    let mut plan = ctx.plan(workload, conns, pipeline, size);
    // Large values: fewer keys, so a GET prefill stays small.
    plan.keyspace = if size > 1024 { 1_000 } else { 100_000 };
    Case {
        section: "scaling",
        label,
        tls: false,
        prefill: workload == Workload::Get,
        resume: true,
        plan,
    }
}

/// The three curves.
pub fn run(ctx: &mut Ctx) -> Result<(), String> {
    let curves_to_run = [
        Curve {
            name: "connections",
            x_label: "connections (SET, -P 1, 16 B)",
            xs: vec![1, 10, 100, 1_000, 10_000],
            case: |ctx, n| {
                case(
                    ctx,
                    format!("SET -P 1, {n} connections"),
                    Workload::Set,
                    n,
                    1,
                    16,
                )
            },
        },
        Curve {
            name: "value_size",
            x_label: "value size, bytes (GET, 50 connections, -P 1)",
            xs: vec![16, 256, 1024, 4096, 16_384, 65_536],
            case: |ctx, n| {
                case(
                    ctx,
                    format!("GET -P 1, {n} B values"),
                    Workload::Get,
                    50,
                    1,
                    n,
                )
            },
        },
        Curve {
            name: "pipeline",
            x_label: "pipeline depth (SET, 50 connections, 16 B)",
            xs: vec![1, 2, 4, 8, 16, 32, 64],
            case: |ctx, n| case(ctx, format!("SET -P {n}"), Workload::Set, 50, n, 16),
        },
    ];
    let who = [
        Contender::single(Server::BatonKv),
        Contender::single(Server::Redis),
    ];
    for curve in curves_to_run {
        let mut points: Vec<Vec<Option<Sample>>> = Vec::new();
        for &x in &curve.xs {
            points.push(ctx.run(&(curve.case)(ctx, x), &who)?);
        }
        let series = |f: fn(&Sample) -> f64| -> Vec<Series> {
            who.iter()
                .enumerate()
                .map(|(i, c)| Series {
                    name: c.name(),
                    values: points.iter().map(|p| p[i].as_ref().map(f)).collect(),
                })
                .collect()
        };
        let xs: Vec<f64> = curve.xs.iter().map(|&x| x as f64).collect();
        curves(
            &ctx.out_file(&format!("scaling_{}.svg", curve.name)),
            &format!(
                "baton kv vs redis: against {}",
                curve.name.replace('_', " ")
            ),
            curve.x_label,
            &xs,
            &series(|s| s.throughput),
            &series(|s| s.p99_us / 1000.0),
        )?;
        let md = &mut ctx.md;
        let _ = writeln!(
            md,
            "#### Against {} ({})\n\n| x | baton kv | redis | kv/redis | p99 ms kv | p99 ms redis | CPU/M kv | CPU/M redis |\n|---|---|---|---|---|---|---|---|",
            curve.name.replace('_', " "),
            curve.x_label
        );
        for (x, p) in curve.xs.iter().zip(&points) {
            let (k, r) = (p[0].expect("ran"), p[1].expect("ran"));
            let _ = writeln!(
                md,
                "| {x} | {} | {} | {} | {:.2} | {:.2} | {:.3} | {:.3} |",
                si(k.throughput),
                si(r.throughput),
                ratio(Some(k.throughput), Some(r.throughput)),
                k.p99_us / 1000.0,
                r.p99_us / 1000.0,
                k.cpu_per_million,
                r.cpu_per_million
            );
        }
        let _ = writeln!(md, "\n![{}](scaling_{}.svg)\n", curve.name, curve.name);
    }
    Ok(())
}
