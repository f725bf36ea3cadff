//! Line charts as plain SVG, stacked in panels that share the x axis: no
//! plotting dependency for the soak's three series.

use std::fmt::Write as _;
use std::path::Path;

const WIDTH: f64 = 900.0;
const PANEL: f64 = 180.0;
const MARGIN_LEFT: f64 = 80.0;
const MARGIN_RIGHT: f64 = 20.0;
const TITLE: f64 = 40.0;
const GAP: f64 = 40.0;

/// Writes one panel per series (name, points), stacked, to `path`.
pub fn write_panels(
    path: &Path,
    title: &str,
    panels: &[(&str, Vec<(f64, f64)>)],
) -> std::io::Result<()> {
    let height = TITLE + panels.len() as f64 * (PANEL + GAP);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="24" font-size="16" text-anchor="middle">{}</text>
"#,
        WIDTH / 2.0,
        escape(title)
    );
    for (i, (name, points)) in panels.iter().enumerate() {
        let top = TITLE + i as f64 * (PANEL + GAP) + 16.0;
        panel(&mut svg, name, points, top);
    }
    svg.push_str("</svg>\n");
    std::fs::write(path, svg)
}

fn panel(svg: &mut String, name: &str, points: &[(f64, f64)], top: f64) {
    let (x0, x1) = bounds(points.iter().map(|p| p.0));
    let (_, y1) = bounds(points.iter().map(|p| p.1));
    // Counts and sizes start at zero, so a creep is seen at its true scale.
    let (y0, y1) = (0.0, if y1 > 0.0 { y1 * 1.1 } else { 1.0 });
    let plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT;
    let x = |v: f64| MARGIN_LEFT + (v - x0) / (x1 - x0).max(f64::EPSILON) * plot_w;
    let y = |v: f64| top + PANEL - (v - y0) / (y1 - y0) * PANEL;
    let _ = writeln!(
        svg,
        r##"<text x="{MARGIN_LEFT}" y="{}" font-weight="bold">{}</text>
<rect x="{MARGIN_LEFT}" y="{top}" width="{plot_w}" height="{PANEL}" fill="none" stroke="#999"/>
<text x="{}" y="{}" text-anchor="end">{}</text>
<text x="{}" y="{}" text-anchor="end">0</text>
<text x="{MARGIN_LEFT}" y="{}">{}</text>
<text x="{}" y="{}" text-anchor="end">{} s</text>"##,
        top - 4.0,
        escape(name),
        MARGIN_LEFT - 6.0,
        top + 10.0,
        short(y1),
        MARGIN_LEFT - 6.0,
        top + PANEL,
        top + PANEL + 14.0,
        short(x0),
        WIDTH - MARGIN_RIGHT,
        top + PANEL + 14.0,
        short(x1),
    );
    let mut path = String::new();
    for (i, (px, py)) in points.iter().enumerate() {
        let _ = write!(
            path,
            "{}{:.1},{:.1} ",
            if i == 0 { "M" } else { "L" },
            x(*px),
            y(*py)
        );
    }
    let _ = writeln!(
        svg,
        r##"<path d="{path}" fill="none" stroke="#1f6fb4" stroke-width="1.5"/>"##
    );
}

fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    })
}

fn short(v: f64) -> String {
    if v.abs() >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v.abs() >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
