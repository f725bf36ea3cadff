//! TLS-terminating proxies in front of one redis-server: baton's
//! `tls_proxy` (inline and with an IO thread), HAProxy, hitch and stunnel,
//! with redis-server's own TLS port as the reference. redis-benchmark
//! `--tls` SET/GET through each, full and resumed handshakes per second,
//! server CPU per request and memory per idle proxied pair.

use std::net::TcpStream;
use std::time::Duration;

use baton::tls::rustls::{ClientConnection, HandshakeKind, ProtocolVersion, StreamOwned};

use crate::context::{si, Ctx};
use crate::engine::Target;
use crate::handshakes::IN_FLIGHT;
use crate::measure::{alternate, measure, median, Sample};
use crate::memory::{open_idle, ping};
use crate::proxies::{self, Peer};
use crate::proxy_report;
use crate::redis_bench::{Load, CLIENTS};
use crate::requests::Workload;
use crate::servers::{Contender, Running, Server};
use crate::tls_client::{client_config, server_name, Trust};

/// Idle TLS clients held through each proxy for the memory figure (each
/// proxy also holds one upstream connection per client).
pub const IDLE_PAIRS: usize = 1000;
/// redis-benchmark's `-P`, in the order of the tables.
pub const PIPELINES: [usize; 2] = [16, 1];

/// One redis-benchmark run through one peer.
#[derive(Debug, Clone, Copy)]
pub struct Rps {
    /// SET requests per second.
    pub set: f64,
    /// GET requests per second.
    pub get: f64,
    /// The proxy's CPU per request (all its threads and processes), µs;
    /// `None` for redis's own TLS.
    pub proxy_us: Option<f64>,
    /// redis-server's CPU per request, µs.
    pub redis_us: f64,
}

/// What is measured once per peer.
#[derive(Debug, Clone, Copy)]
pub struct Once {
    /// Whether a second connection resumed the first one's session.
    pub resumes: bool,
    /// The TLS version the probe negotiated (`TLS 1.3`).
    pub version: &'static str,
    /// Proxy (for redis TLS: redis) RSS growth per idle client, bytes.
    pub per_pair: f64,
}

/// The section.
pub fn run(ctx: &mut Ctx) -> Result<(), String> {
    let mut redis = ctx.env.start(Contender::single(Server::Redis), 16)?;
    // As the proxies count theirs (see `count_exited_threads`).
    redis.count_exited_threads();
    let mut notes = Vec::new();
    let baton_built = proxies::baton_binary(&ctx.env).is_some();
    if !baton_built {
        notes.push(
            "tls_proxy example not built (`cargo build --release --examples`): baton rows skipped"
                .to_string(),
        );
    }
    let peers: Vec<Peer> = Peer::ALL
        .into_iter()
        .filter(|p| baton_built || !p.is_baton())
        .collect();

    let mut rps: Vec<Vec<Option<Rps>>> = Vec::new();
    for pipeline in PIPELINES {
        let runs = alternate(ctx.rounds, &peers, |&peer| {
            Ok(noted(
                &mut notes,
                peer,
                throughput(ctx, &redis, peer, pipeline),
            ))
        })?;
        let medians: Vec<Option<Rps>> = runs.iter().map(|r| median_rps(r)).collect();
        for (peer, m) in peers.iter().zip(&medians) {
            println!(
                "proxy -P {pipeline} {:<20} SET {} GET {}",
                peer.name(),
                m.map_or("-".into(), |m| si(m.set)),
                m.map_or("-".into(), |m| si(m.get))
            );
            if let Some(m) = m {
                ctx.json.push(format!(
                    "{{\"section\":\"proxy\",\"case\":\"redis-benchmark --tls -P {pipeline}\",\"contender\":\"{}\",\"pipeline\":{pipeline},\"clients\":{CLIENTS},\"set_rps\":{:.1},\"get_rps\":{:.1},\"proxy_cpu_us_per_request\":{},\"redis_cpu_us_per_request\":{:.3}}}",
                    peer.name(),
                    m.set,
                    m.get,
                    m.proxy_us.map_or("null".into(), |v| format!("{v:.3}")),
                    m.redis_us
                ));
            }
        }
        rps.push(medians);
    }

    let mut handshakes: Vec<Vec<Option<Sample>>> = Vec::new();
    for resume in [false, true] {
        let runs = alternate(ctx.rounds, &peers, |&peer| {
            Ok(noted(
                &mut notes,
                peer,
                handshake_rate(ctx, &redis, peer, resume),
            ))
        })?;
        let medians: Vec<Option<Sample>> = runs
            .iter()
            .map(|r| {
                let ok: Vec<Sample> = r.iter().flatten().copied().collect();
                (!ok.is_empty()).then(|| median(&ok))
            })
            .collect();
        let kind = if resume { "resumed" } else { "full" };
        for (peer, m) in peers.iter().zip(&medians) {
            println!(
                "proxy {kind} handshakes {:<20} {}/s",
                peer.name(),
                m.map_or("-".into(), |m| si(m.throughput))
            );
            if let Some(m) = m {
                ctx.json.push(format!(
                    "{{\"section\":\"proxy\",\"case\":\"{kind} handshakes\",\"contender\":\"{}\",\"in_flight\":{IN_FLIGHT},\"handshakes_per_s\":{:.1},\"cpu_us_per_handshake\":{:.1},\"errors\":{}}}",
                    peer.name(),
                    m.throughput,
                    m.cpu_per_million,
                    m.errors
                ));
            }
        }
        handshakes.push(medians);
    }

    let mut once = Vec::new();
    for &peer in &peers {
        let o = noted(&mut notes, peer, measure_once(ctx, &redis, peer));
        if let Some(o) = o {
            println!(
                "proxy {:<20} {}, resumes: {}; {:.1} KiB per idle client",
                peer.name(),
                o.version,
                o.resumes,
                o.per_pair / 1024.0
            );
            ctx.json.push(format!(
                "{{\"section\":\"proxy\",\"case\":\"idle\",\"contender\":\"{}\",\"idle_clients\":{IDLE_PAIRS},\"tls_version\":\"{}\",\"resumes\":{},\"bytes_per_pair\":{:.0}}}",
                peer.name(),
                o.version,
                o.resumes,
                o.per_pair,
            ));
        }
        once.push(o);
    }
    drop(redis);

    proxy_report::report(ctx, &peers, &rps, &handshakes, &once, &notes);
    proxy_report::plot(ctx, &peers, &rps, &handshakes)
}

/// A failed run becomes a note and a missing value, so that one broken peer
/// does not cost the others' figures.
fn noted<T>(notes: &mut Vec<String>, peer: Peer, result: Result<T, String>) -> Option<T> {
    result
        .map_err(|e| {
            eprintln!("proxy {}: {e}", peer.name());
            let note = format!("{}: {e}", peer.name());
            if !notes.contains(&note) {
                notes.push(note);
            }
        })
        .ok()
}

/// Starts `peer` in front of `redis`; `None` for redis's own TLS.
fn start(ctx: &Ctx, redis: &Running, peer: Peer) -> Result<Option<Running>, String> {
    if peer == Peer::RedisTls {
        return Ok(None);
    }
    proxies::start(&ctx.env, peer, redis.plain).map(Some)
}

fn tls_addr(redis: &Running, proxy: &Option<Running>) -> Result<std::net::SocketAddr, String> {
    proxy
        .as_ref()
        .unwrap_or(redis)
        .tls
        .ok_or_else(|| "no TLS port".to_string())
}

/// A warm-up run (its rate sets `-n`), then SET and GET for about
/// `ctx.seconds` together, with the CPU of the proxy and of redis over it.
fn throughput(ctx: &Ctx, redis: &Running, peer: Peer, pipeline: usize) -> Result<Rps, String> {
    let proxy = start(ctx, redis, peer)?;
    let addr = tls_addr(redis, &proxy)?;
    // Below the slowest peer's rate, so the warm-up stays short.
    let floor = if pipeline > 1 { 300_000.0 } else { 30_000.0 };
    let warm_up = Load {
        addr,
        cacert: &ctx.env.cert,
        tests: "set",
        pipeline,
        requests: ((floor * ctx.warmup) as u64).max(2_000),
    };
    let warm = warm_up.run(Duration::from_secs(30))?;
    let requests = ((warm[0].1 * ctx.seconds / 2.0) as u64).clamp(2_000, 50_000_000);
    let load = Load {
        tests: "set,get",
        requests,
        ..warm_up
    };
    let cpu_proxy = || proxy.as_ref().map(Running::cpu_seconds);
    let (proxy0, redis0) = (cpu_proxy(), redis.cpu_seconds());
    let rates = load.run(Duration::from_secs_f64(ctx.seconds * 10.0 + 10.0))?;
    let (proxy1, redis1) = (cpu_proxy(), redis.cpu_seconds());
    let per_request = |cpu: f64| cpu / (2 * requests) as f64 * 1e6;
    let rate = |test: &str| {
        rates
            .iter()
            .find(|(t, _)| t == test)
            .map(|r| r.1)
            .ok_or_else(|| format!("redis-benchmark reported no {test}"))
    };
    Ok(Rps {
        set: rate("SET")?,
        get: rate("GET")?,
        proxy_us: proxy0.zip(proxy1).map(|(a, b)| per_request(b - a)),
        redis_us: per_request(redis1 - redis0),
    })
}

fn median_rps(runs: &[Option<Rps>]) -> Option<Rps> {
    let ok: Vec<Rps> = runs.iter().flatten().copied().collect();
    if ok.is_empty() {
        return None;
    }
    let pick = |f: &dyn Fn(&Rps) -> f64| {
        let mut v: Vec<f64> = ok.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    Some(Rps {
        set: pick(&|r| r.set),
        get: pick(&|r| r.get),
        proxy_us: ok[0].proxy_us.map(|_| pick(&|r| r.proxy_us.unwrap_or(0.0))),
        redis_us: pick(&|r| r.redis_us),
    })
}

fn tls_target(ctx: &Ctx, addr: std::net::SocketAddr, resume: bool) -> Result<Target, String> {
    Ok(Target {
        addr,
        tls: Some((
            client_config(Trust::CaFile(&ctx.env.cert), resume)?,
            server_name("localhost")?,
        )),
    })
}

/// Handshakes per second through `peer`, as the handshakes section counts
/// them (connect, handshake, PING, close; {IN_FLIGHT} in flight), with the
/// proxy's CPU (for redis TLS: redis's).
fn handshake_rate(ctx: &Ctx, redis: &Running, peer: Peer, resume: bool) -> Result<Sample, String> {
    let proxy = start(ctx, redis, peer)?;
    let target = tls_target(ctx, tls_addr(redis, &proxy)?, resume)?;
    let mut plan = ctx.plan(Workload::Ping, IN_FLIGHT, 1, 0);
    plan.reconnect = true;
    measure(proxy.as_ref().unwrap_or(redis), &target, &plan)
}

/// Whether a second connection resumes the first one's session (closed as
/// the load generator closes: without close_notify), and the memory of
/// {IDLE_PAIRS} idle clients.
fn measure_once(ctx: &Ctx, redis: &Running, peer: Peer) -> Result<Once, String> {
    let proxy = start(ctx, redis, peer)?;
    let target = tls_target(ctx, tls_addr(redis, &proxy)?, true)?;
    let (resumes, version) = resumes(&target)?;
    let server = proxy.as_ref().unwrap_or(redis);
    drop(open_idle(&target, 1)?);
    std::thread::sleep(Duration::from_millis(300));
    let before = server.rss_bytes();
    let idle = open_idle(&target, IDLE_PAIRS)?;
    std::thread::sleep(Duration::from_millis(500));
    let after = server.rss_bytes();
    drop(idle);
    Ok(Once {
        resumes,
        version,
        per_pair: after.saturating_sub(before) as f64 / IDLE_PAIRS as f64,
    })
}

fn resumes(target: &Target) -> Result<(bool, &'static str), String> {
    let (config, name) = target.tls.clone().ok_or("not TLS")?;
    let (mut kind, mut version) = (None, None);
    for _ in 0..2 {
        let stream = TcpStream::connect(target.addr).map_err(|e| format!("connect: {e}"))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        let conn =
            ClientConnection::new(config.clone(), name.clone()).map_err(|e| e.to_string())?;
        let mut s = StreamOwned::new(conn, stream);
        ping(&mut s)?;
        kind = s.conn.handshake_kind();
        version = s.conn.protocol_version();
    }
    let version = match version {
        Some(ProtocolVersion::TLSv1_3) => "TLS 1.3",
        Some(ProtocolVersion::TLSv1_2) => "TLS 1.2",
        _ => "?",
    };
    Ok((kind == Some(HandshakeKind::Resumed), version))
}
