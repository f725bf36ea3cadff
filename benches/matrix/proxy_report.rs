//! The `proxy` section's tables and plots.

use std::fmt::Write as _;

use crate::context::{ratio, si, Ctx};
use crate::handshakes::IN_FLIGHT;
use crate::measure::Sample;
use crate::plots::{bars, Series};
use crate::proxies::{self, Peer};
use crate::proxy::{Once, Rps, IDLE_PAIRS, PIPELINES};
use crate::redis_bench::CLIENTS;

/// Three tables (requests per second with ratios to HAProxy and hitch;
/// handshakes; CPU per request and memory), then the notes.
pub fn report(
    ctx: &mut Ctx,
    peers: &[Peer],
    rps: &[Vec<Option<Rps>>],
    handshakes: &[Vec<Option<Sample>>],
    once: &[Option<Once>],
    notes: &[String],
) {
    let find = |who: Peer| peers.iter().position(|&p| p == who);
    let (haproxy, hitch) = (find(Peer::Haproxy), find(Peer::Hitch));
    let rate = |p: usize, i: Option<usize>, get: bool| {
        i.and_then(|i| rps[p][i])
            .map(|r| if get { r.get } else { r.set })
    };
    let md = &mut ctx.md;
    let _ = writeln!(
        md,
        "### TLS proxies in front of redis-server\n\n\
         One redis-server 7 (plain port upstream; its own TLS port is the reference), started once; \
         each proxy started fresh for every run with the same certificate (ECDSA P-256). \
         Peers: {}. Versions: {}. \
         baton's IO-thread row is `--io-threads 1`, adaptive: on 2 cores that already run redis-benchmark and redis, \
         one thread beside the loop is all that can run at once, and adaptive hand-off stays inline unless the loop is saturated \
         (`--io-threads 2 --io-threads-always` would put three proxy threads, redis and the client on two cores).\n\n\
         Load: `redis-benchmark --tls --cacert cert.pem -h 127.0.0.1 -p PORT -t set,get -P {{16,1}} -c {CLIENTS} -n N --csv` \
         (one thread, on the same machine as the proxy and redis), after a warm-up `-t set` run whose rate sets N so that SET and GET take about {:.1} s together \
         (redis-benchmark's defaults otherwise: 3-byte values, one key); \
         medians over {} rounds, peers alternating.\n\n\
         Requests per second, and each peer's ratio to HAProxy and to hitch (SET / GET).\n\n\
         | peer | SET -P 16 | GET -P 16 | SET -P 1 | GET -P 1 | / haproxy -P 16 | / hitch -P 16 | / haproxy -P 1 | / hitch -P 1 |\n|---|---|---|---|---|---|---|---|---|",
        peers
            .iter()
            .map(|p| format!("{} ({})", p.name(), p.setup()))
            .collect::<Vec<_>>()
            .join("; "),
        proxies::versions(),
        ctx.seconds,
        ctx.rounds
    );
    let rps_cell = |p: usize, i: usize, get: bool| rate(p, Some(i), get).map_or("-".into(), si);
    let pair = |p: usize, i: usize, other: Option<usize>| {
        format!(
            "{} / {}",
            ratio(rate(p, Some(i), false), rate(p, other, false)),
            ratio(rate(p, Some(i), true), rate(p, other, true))
        )
    };
    for (i, peer) in peers.iter().enumerate() {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            peer.name(),
            rps_cell(0, i, false),
            rps_cell(0, i, true),
            rps_cell(1, i, false),
            rps_cell(1, i, true),
            pair(0, i, haproxy),
            pair(0, i, hitch),
            pair(1, i, haproxy),
            pair(1, i, hitch),
        );
    }
    let hs = |k: usize, i: Option<usize>| i.and_then(|i| handshakes[k][i]).map(|s| s.throughput);
    let _ = writeln!(
        md,
        "\nTLS handshakes per second through each ({IN_FLIGHT} in flight; each: connect, handshake, PING through to redis, close), \
         the proxy's CPU per handshake (for redis TLS: redis's), and whether a second connection resumes the first one's session (with the version negotiated; in TLS 1.3 by a ticket, whether the server keeps state for it or not). \
         The client is one thread on the same machine: where rates are close, the CPU per handshake tells the peers apart.\n\n\
         | peer | full/s | resumed/s | resumes | full / haproxy | full / hitch | resumed / haproxy | resumed / hitch | CPU µs per full | CPU µs per resumed |\n|---|---|---|---|---|---|---|---|---|---|"
    );
    for (i, peer) in peers.iter().enumerate() {
        let cpu =
            |k: usize| handshakes[k][i].map_or("-".into(), |s| format!("{:.0}", s.cpu_per_million));
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            peer.name(),
            hs(0, Some(i)).map_or("-".into(), si),
            hs(1, Some(i)).map_or("-".into(), si),
            once[i].map_or("-".into(), |o| format!(
                "{} ({})",
                if o.resumes { "yes" } else { "no" },
                o.version
            )),
            ratio(hs(0, Some(i)), hs(0, haproxy)),
            ratio(hs(0, Some(i)), hs(0, hitch)),
            ratio(hs(1, Some(i)), hs(1, haproxy)),
            ratio(hs(1, Some(i)), hs(1, hitch)),
            cpu(0),
            cpu(1),
        );
    }
    let _ = writeln!(
        md,
        "\nServer CPU per request (µs; SET and GET together, from /proc/PID/stat utime + stime: all threads, exited ones included, and for hitch its worker processes) \
         and memory: RSS growth with {IDLE_PAIRS} idle TLS clients (each answered one PING), divided by {IDLE_PAIRS}: \
         of the proxy, for one client connection plus one upstream connection (redis's memory for its plain connection comes on top); \
         of redis itself for its own TLS.\n\n\
         | peer | proxy CPU -P 16 | redis CPU -P 16 | proxy CPU -P 1 | redis CPU -P 1 | memory per idle client |\n|---|---|---|---|---|---|"
    );
    let us = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.2}"));
    for (i, peer) in peers.iter().enumerate() {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            peer.name(),
            us(rps[0][i].and_then(|r| r.proxy_us)),
            us(rps[0][i].map(|r| r.redis_us)),
            us(rps[1][i].and_then(|r| r.proxy_us)),
            us(rps[1][i].map(|r| r.redis_us)),
            once[i].map_or("-".into(), |o| format!("{:.1} KiB", o.per_pair / 1024.0)),
        );
    }
    let _ = writeln!(md);
    for note in notes {
        let _ = writeln!(md, "- {note}");
    }
    if !notes.is_empty() {
        let _ = writeln!(md);
    }
}

/// Requests per second (a plot per pipeline depth) and handshakes per
/// second, per peer.
pub fn plot(
    ctx: &Ctx,
    peers: &[Peer],
    rps: &[Vec<Option<Rps>>],
    handshakes: &[Vec<Option<Sample>>],
) -> Result<(), String> {
    // One plot per pipeline depth: -P 1 is a twentieth of -P 16.
    for (k, pipeline) in PIPELINES.iter().enumerate() {
        let series: Vec<Series> = peers
            .iter()
            .enumerate()
            .map(|(i, peer)| Series {
                name: peer.name().to_string(),
                values: vec![rps[k][i].map(|r| r.set), rps[k][i].map(|r| r.get)],
            })
            .collect();
        bars(
            &ctx.out_file(&format!("proxy_throughput_p{pipeline}.svg")),
            &format!("proxy: redis-benchmark --tls -P {pipeline} through each, requests per second (median)"),
            &["SET".to_string(), "GET".to_string()],
            &series,
            "requests/s",
        )?;
    }
    let series: Vec<Series> = peers
        .iter()
        .enumerate()
        .map(|(i, peer)| Series {
            name: peer.name().to_string(),
            values: handshakes
                .iter()
                .map(|by_peer| by_peer[i].map(|s| s.throughput))
                .collect(),
        })
        .collect();
    bars(
        &ctx.out_file("proxy_handshakes.svg"),
        "proxy: TLS handshakes per second through each (median)",
        &["full".to_string(), "resumed".to_string()],
        &series,
        "handshakes/s",
    )
}
