//! The report, as text for people and as one JSON object for scripts.

use std::fmt::Write;

use crate::engine::{Plan, Report, Target};

/// A report with what produced it.
pub struct Described<'a> {
    /// Where the load went.
    pub target: &'a Target,
    /// What load it was.
    pub plan: &'a Plan,
    /// What it measured.
    pub report: &'a Report,
}

const QUANTILES: [(&str, f64); 4] = [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999)];

impl Described<'_> {
    fn transport(&self) -> &'static str {
        if self.target.tls.is_some() {
            "tls"
        } else {
            "plain"
        }
    }

    /// A few lines for a terminal.
    pub fn text(&self) -> String {
        let (p, r) = (self.plan, self.report);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{}, {} connections, pipeline {}, {} B, {} to {}{}, measured {:.2} s",
            p.workload.name(),
            p.connections,
            p.pipeline,
            p.size,
            self.transport(),
            self.target.addr,
            if p.reconnect {
                ", new connection per batch"
            } else {
                ""
            },
            r.elapsed.as_secs_f64(),
        );
        let _ = writeln!(
            out,
            "throughput  {:.0} requests/s ({} requests)",
            r.throughput(),
            r.requests
        );
        let mut latency = String::new();
        for (name, q) in QUANTILES {
            let _ = write!(latency, "{name} {:.3}  ", r.latency_us(q) / 1000.0);
        }
        let _ = writeln!(
            out,
            "latency ms  {latency}max {:.3}",
            r.latency.max() as f64 / 1e6
        );
        let _ = writeln!(
            out,
            "errors      {} error replies, {} failed connections, {} GET misses",
            r.errors, r.failed_connections, r.misses
        );
        if let Some(e) = &r.first_error {
            let _ = writeln!(out, "first error {e}");
        }
        out
    }

    /// One JSON object on one line.
    pub fn json(&self) -> String {
        let (p, r) = (self.plan, self.report);
        let mut latency = String::new();
        for (name, q) in QUANTILES {
            let _ = write!(latency, "\"{name}\":{:.1},", r.latency_us(q));
        }
        format!(
            concat!(
                "{{\"target\":\"{}\",\"transport\":\"{}\",\"workload\":\"{}\",",
                "\"connections\":{},\"pipeline\":{},\"size\":{},\"keyspace\":{},",
                "\"reconnect\":{},\"seconds\":{:.3},\"requests\":{},\"throughput\":{:.1},",
                "\"errors\":{},\"misses\":{},\"failed_connections\":{},",
                "\"latency_us\":{{{}\"max\":{:.1},\"mean\":{:.1}}},\"first_error\":{}}}"
            ),
            self.target.addr,
            self.transport(),
            p.workload.name(),
            p.connections,
            p.pipeline,
            p.size,
            p.keyspace,
            p.reconnect,
            r.elapsed.as_secs_f64(),
            r.requests,
            r.throughput(),
            r.errors,
            r.misses,
            r.failed_connections,
            latency,
            r.latency.max() as f64 / 1000.0,
            r.latency.mean() / 1000.0,
            match &r.first_error {
                Some(e) => json_string(e),
                None => "null".into(),
            }
        )
    }
}

/// `s` as a JSON string literal.
pub fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
