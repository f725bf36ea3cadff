//! What every section shares: the servers, the settings, the report being
//! written, and the one way a case is run (contenders alternating, medians).

use std::fmt::Write as _;
use std::time::Duration;

use crate::engine::{self, Plan, Target};
use crate::measure::{alternate, measure, median, Sample};
use crate::requests::Workload;
use crate::servers::{Contender, Env, Running};
use crate::tls_client::{client_config, server_name, Trust};

/// Settings and accumulated results.
pub struct Ctx {
    /// Binaries and certificate.
    pub env: Env,
    /// Rounds per case (contenders alternate within each round).
    pub rounds: usize,
    /// Measured seconds per run.
    pub seconds: f64,
    /// Warm-up seconds per run.
    pub warmup: f64,
    /// Where the report, the JSON and the plots go.
    pub out: std::path::PathBuf,
    /// The Markdown report so far.
    pub md: String,
    /// One JSON object per contender and case.
    pub json: Vec<String>,
}

/// One case: the load, over which transport.
#[derive(Debug, Clone)]
pub struct Case {
    /// Section name in the JSON (kv, echo, ...).
    pub section: &'static str,
    /// What the case is, for people ("plain SET -P 16").
    pub label: String,
    /// TLS or plain TCP.
    pub tls: bool,
    /// Whether GETs need their keys set first.
    pub prefill: bool,
    /// TLS session resumption on.
    pub resume: bool,
    /// The load.
    pub plan: Plan,
}

impl Ctx {
    /// A plan with this run's duration and warm-up.
    pub fn plan(
        &self,
        workload: Workload,
        connections: usize,
        pipeline: usize,
        size: usize,
    ) -> Plan {
        Plan {
            connections,
            pipeline,
            workload,
            size,
            keyspace: 100_000,
            warmup: Duration::from_secs_f64(self.warmup),
            duration: Duration::from_secs_f64(self.seconds),
            requests: None,
            threads: 1,
            reconnect: false,
            sequential_keys: false,
        }
    }

    /// A file in the output directory.
    pub fn out_file(&self, name: &str) -> std::path::PathBuf {
        self.out.join(name)
    }

    /// Where and how to connect to `server`.
    pub fn target(&self, server: &Running, tls: bool, resume: bool) -> Result<Target, String> {
        Ok(if tls {
            Target {
                addr: server.tls.ok_or("this server has no TLS port")?,
                tls: Some((
                    client_config(Trust::CaFile(&self.env.cert), resume)?,
                    server_name("localhost")?,
                )),
            }
        } else {
            Target {
                addr: server.plain,
                tls: None,
            }
        })
    }

    /// Runs `case` for every contender (those without TLS skip TLS cases;
    /// their entry is `None`), alternating, and returns the medians.
    pub fn run(
        &mut self,
        case: &Case,
        contenders: &[Contender],
    ) -> Result<Vec<Option<Sample>>, String> {
        let taking: Vec<Contender> = contenders
            .iter()
            .copied()
            .filter(|c| !case.tls || c.has_tls())
            .collect();
        let samples = alternate(self.rounds, &taking, |c| {
            let server = self.env.start(*c, case.plan.size)?;
            let target = self.target(&server, case.tls, case.resume)?;
            if case.prefill {
                engine::prefill(&target, &case.plan)?;
            }
            measure(&server, &target, &case.plan)
                .map_err(|e| format!("{} {}: {e}", c.name(), case.label))
        })?;
        let mut line = format!("{:<34}", case.label);
        let mut out = Vec::new();
        for c in contenders {
            let Some(i) = taking.iter().position(|t| t == c) else {
                out.push(None);
                continue;
            };
            let m = median(&samples[i]);
            let _ = write!(line, " | {} {}", c.name(), si(m.throughput));
            self.json.push(json(case, c, &samples[i], &m));
            out.push(Some(m));
        }
        println!("{line}");
        Ok(out)
    }
}

fn json(case: &Case, c: &Contender, samples: &[Sample], m: &Sample) -> String {
    let each: Vec<String> = samples
        .iter()
        .map(|s| format!("{:.1}", s.throughput))
        .collect();
    format!(
        concat!(
            "{{\"section\":\"{}\",\"case\":\"{}\",\"contender\":\"{}\",\"tls\":{},",
            "\"workload\":\"{}\",\"connections\":{},\"pipeline\":{},\"size\":{},",
            "\"throughput\":{:.1},\"p50_us\":{:.1},\"p99_us\":{:.1},",
            "\"cpu_s_per_million\":{:.4},\"errors\":{},\"rounds\":[{}]}}"
        ),
        case.section,
        case.label,
        c.name(),
        case.tls,
        case.plan.workload.name(),
        case.plan.connections,
        case.plan.pipeline,
        case.plan.size,
        m.throughput,
        m.p50_us,
        m.p99_us,
        m.cpu_per_million,
        m.errors,
        each.join(",")
    )
}

/// `1234567.0` as `1.23M`, `12345.0` as `12.3k`.
pub fn si(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

/// Table cells of a median that may be missing (`-`): requests/s, p99 in
/// ms, CPU seconds per million.
pub fn rps_cell(s: &Option<Sample>) -> String {
    s.map_or("-".into(), |s| si(s.throughput))
}

/// See [`rps_cell`].
pub fn p99_cell(s: &Option<Sample>) -> String {
    s.map_or("-".into(), |s| format!("{:.2}", s.p99_us / 1000.0))
}

/// See [`rps_cell`].
pub fn cpu_cell(s: &Option<Sample>) -> String {
    s.map_or("-".into(), |s| format!("{:.3}", s.cpu_per_million))
}

/// A ratio cell: `1.07x`, or `-` when either side is missing.
pub fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
        _ => "-".into(),
    }
}
