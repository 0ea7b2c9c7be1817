//! Chart of a VM scenario's timeline: each tenant's usage beside its contract.
//!
//! The noisy-neighbour scenarios (tests/vm/scenarios/*-noisy-neighbour.sh)
//! record `timeline.csv` with lib.sh's `timeline_*` helpers, one line per
//! tenant per sample:
//!
//! `t_s,part,phase,resource,unit,tenant,usage,baseline,burst,limit`
//!
//! (`part` is how the run is made, e.g. "no qosd" or "qosd"; `phase` the step
//! within it, e.g. "both"; `limit` is what the cgroup's own knob caps the
//! tenant at, "max" when unlimited). tests/vm/run.sh renders it after the
//! scenario.
//!
//! Usage: `timeline_chart [--title TEXT] [--note TEXT] [-o OUT.png] TIMELINE.csv...`
//!
//! `--note` adds a line under the title (e.g. where the run was made).
//! One panel per resource (of each file): the parts as shaded spans, the
//! phases within them marked and named, each tenant's usage as a solid line,
//! its baseline dashed, the burst dotted, and its limit as a thin line. The
//! output defaults to the first CSV's path with `.png`.
//!
//! Text is drawn with DejaVu Sans (Debian: fonts-dejavu-core), read from
//! /usr/share/fonts/truetype/dejavu/ or $TIMELINE_FONT_DIR, through plotters'
//! ab_glyph backend: no fontconfig or freetype needed.

use std::collections::HashMap;
use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontStyle, register_font};

const WIDTH: u32 = 1600;
const PANEL_HEIGHT: u32 = 440;
const TITLE_HEIGHT: u32 = 96;
const LEGEND_WIDTH: u32 = 300;
const FONT: &str = "sans-serif";

/// One line of a timeline CSV.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    t: f64,
    part: String,
    phase: String,
    resource: String,
    unit: String,
    tenant: String,
    usage: Option<f64>,
    baseline: Option<f64>,
    burst: Option<f64>,
    /// The cgroup's cap; None when unlimited ("max") or unknown.
    limit: Option<f64>,
}

/// Parse a timeline CSV (columns found by their header names; `unit`,
/// `baseline`, `burst` and `limit` may be missing). Empty numbers and "max"
/// read as none.
fn parse_csv(text: &str) -> Result<Vec<Row>, String> {
    let mut lines = text.lines().enumerate();
    let (_, header) = lines.next().ok_or("empty file")?;
    let cols: Vec<&str> = header.trim().split(',').collect();
    let col = |name: &str| cols.iter().position(|c| *c == name);
    let need = |name: &str| col(name).ok_or(format!("no column '{name}' in the header"));
    let (t, part, phase, resource, tenant, usage) = (
        need("t_s")?,
        need("part")?,
        need("phase")?,
        need("resource")?,
        need("tenant")?,
        need("usage")?,
    );
    let (unit, baseline, burst, limit) = (col("unit"), col("baseline"), col("burst"), col("limit"));
    let mut rows = Vec::new();
    for (i, line) in lines {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split(',').collect();
        if f.len() != cols.len() {
            return Err(format!(
                "line {}: {} fields, the header has {}",
                i + 1,
                f.len(),
                cols.len()
            ));
        }
        let num = |c: Option<usize>| -> Result<Option<f64>, String> {
            match c.map(|c| f[c].trim()) {
                None | Some("") | Some("max") => Ok(None),
                Some(v) => v
                    .parse::<f64>()
                    .map(Some)
                    .map_err(|_| format!("line {}: not a number: '{v}'", i + 1)),
            }
        };
        rows.push(Row {
            t: num(Some(t))?.ok_or(format!("line {}: no time", i + 1))?,
            part: f[part].to_string(),
            phase: f[phase].to_string(),
            resource: f[resource].to_string(),
            unit: unit.map(|c| f[c].to_string()).unwrap_or_default(),
            tenant: f[tenant].to_string(),
            usage: num(Some(usage))?,
            baseline: num(baseline)?,
            burst: num(burst)?,
            limit: num(limit)?,
        });
    }
    Ok(rows)
}

/// A stretch of time under one name.
#[derive(Debug, Clone, PartialEq)]
struct Span {
    name: String,
    from: f64,
    to: f64,
}

/// The usual time between samples: the median step between distinct times.
fn interval(times: &[f64]) -> f64 {
    let mut steps: Vec<f64> = times
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|d| *d > 0.0)
        .collect();
    if steps.is_empty() {
        return 1.0;
    }
    steps.sort_by(f64::total_cmp);
    steps[steps.len() / 2]
}

/// The parts and the phases of a panel's rows, in time order. A span runs
/// to the next one's first sample when they follow each other, and ends at
/// its own last sample before a gap (the scenario's set-up between parts).
fn spans(rows: &[&Row]) -> (Vec<Span>, Vec<Span>) {
    let mut samples: Vec<(f64, &str, &str)> = Vec::new();
    for r in rows {
        if samples.last().is_none_or(|s| r.t > s.0) {
            samples.push((r.t, &r.part, &r.phase));
        }
    }
    let times: Vec<f64> = samples.iter().map(|s| s.0).collect();
    let gap = 3.0 * interval(&times);
    let build = |key: &dyn Fn(&(f64, &str, &str)) -> String| {
        let mut out: Vec<Span> = Vec::new();
        let mut prev: Option<(f64, String)> = None;
        for s in &samples {
            let k = key(s);
            match (&prev, out.last_mut()) {
                (Some((pt, pk)), Some(last)) if *pk == k && s.0 - pt <= gap => last.to = s.0,
                (Some((pt, _)), Some(last)) if s.0 - pt <= gap => {
                    last.to = s.0;
                    out.push(Span {
                        name: k.clone(),
                        from: s.0,
                        to: s.0,
                    });
                }
                _ => out.push(Span {
                    name: k.clone(),
                    from: s.0,
                    to: s.0,
                }),
            }
            prev = Some((s.0, k));
        }
        out
    };
    let parts = build(&|s| s.1.to_string());
    let phases = build(&|s| format!("{}\u{1f}{}", s.1, s.2));
    let phases = phases
        .into_iter()
        .map(|mut s| {
            s.name = s.name.split('\u{1f}').nth(1).unwrap_or("").to_string();
            s
        })
        .collect();
    (parts, phases)
}

/// The rows of one tenant as runs of (t, value) without gaps or part changes.
fn segments(rows: &[&Row], value: impl Fn(&Row) -> Option<f64>, gap: f64) -> Vec<Vec<(f64, f64)>> {
    let mut out: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut prev: Option<&Row> = None;
    for r in rows {
        let v = value(r);
        let cont = prev.is_some_and(|p| p.part == r.part && r.t - p.t <= gap);
        match v {
            Some(v) if cont && out.last().is_some_and(|s| !s.is_empty()) => {
                out.last_mut().unwrap().push((r.t, v))
            }
            Some(v) => out.push(vec![(r.t, v)]),
            None => out.push(Vec::new()),
        }
        prev = Some(r);
    }
    out.retain(|s| !s.is_empty());
    out
}

/// A series as steps: each value holds until the next sample.
fn steps(seg: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(seg.len() * 2);
    for (i, p) in seg.iter().enumerate() {
        if i > 0 {
            out.push((p.0, seg[i - 1].1));
        }
        out.push(*p);
    }
    out
}

/// What a panel shows, from the resource name.
fn panel_title(resource: &str, unit: &str) -> String {
    let what = match resource {
        "cpu" => "CPU (cpu.stat usage; limit: cpu.max)",
        "disk" => "Disk I/O (io.stat; limit: io.max)",
        "memory" => "Memory in use (memory.current; limit: memory.high)",
        "read" => "Read throughput of each tenant's reader (rchar, page-cache hits included)",
        "net" => "Network egress (TCP payload received by each tenant's server)",
        other => other,
    };
    if unit.is_empty() {
        what.to_string()
    } else {
        format!("{what}, {unit}")
    }
}

/// Shade of a part: red for "no ..."/"without ...", green for qosd, amber
/// for anything else (limits set by hand).
fn part_color(name: &str) -> RGBColor {
    let n = name.to_ascii_lowercase();
    if n.starts_with("no ") || n.starts_with("without") {
        RGBColor(214, 39, 40)
    } else if n == "qosd" || n.starts_with("with qosd") {
        RGBColor(44, 160, 44)
    } else {
        RGBColor(230, 160, 0)
    }
}

const TENANT_COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(23, 190, 207),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
];

fn fmt_num(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn load_fonts() -> Result<(), String> {
    let dir = std::env::var_os("TIMELINE_FONT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/share/fonts/truetype/dejavu"));
    for (file, style, required) in [
        ("DejaVuSans.ttf", FontStyle::Normal, true),
        ("DejaVuSans-Bold.ttf", FontStyle::Bold, false),
    ] {
        let path = dir.join(file);
        match std::fs::read(&path) {
            Ok(bytes) => register_font(FONT, style, Box::leak(bytes.into_boxed_slice()))
                .map_err(|_| format!("{}: not a usable font", path.display()))?,
            Err(e) if required => {
                return Err(format!(
                    "{}: {e} (install fonts-dejavu-core, or set TIMELINE_FONT_DIR)",
                    path.display()
                ));
            }
            Err(_) => {}
        }
    }
    Ok(())
}

/// One panel: the rows of one resource of one file.
struct Panel<'a> {
    title: String,
    rows: Vec<&'a Row>,
}

fn draw(
    out: &Path,
    title: &str,
    note: &str,
    panels: &[Panel],
    tenant_color: &HashMap<String, RGBColor>,
) -> Result<(), Box<dyn Error>> {
    let height = TITLE_HEIGHT + PANEL_HEIGHT * panels.len() as u32;
    let root = BitMapBackend::new(out, (WIDTH, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, body) = root.split_vertically(TITLE_HEIGHT);
    top.draw(&Text::new(
        title.to_string(),
        (20, 12),
        (FONT, 28).into_font().style(FontStyle::Bold),
    ))?;
    top.draw(&Text::new(
        note.to_string(),
        (20, 47),
        (FONT, 17).into_font().color(&RGBColor(80, 80, 80)),
    ))?;
    top.draw(&Text::new(
        "solid: usage    dashed: baseline (what the tenant is guaranteed)    dotted: burst (its ceiling when the host is idle)    wide pale band: the limit set on the cgroup",
        (20, 71),
        (FONT, 17).into_font().color(&RGBColor(80, 80, 80)),
    ))?;
    for (panel, area) in panels.iter().zip(body.split_evenly((panels.len(), 1))) {
        draw_panel(&area, panel, tenant_color)?;
    }
    root.present()?;
    Ok(())
}

fn draw_panel(
    area: &DrawingArea<BitMapBackend, plotters::coord::Shift>,
    panel: &Panel,
    tenant_color: &HashMap<String, RGBColor>,
) -> Result<(), Box<dyn Error>> {
    let rows = &panel.rows;
    let (parts, phases) = spans(rows);
    let times: Vec<f64> = rows.iter().map(|r| r.t).collect();
    let gap = 3.0
        * interval(&{
            let mut t = times.clone();
            t.dedup();
            t
        });
    let t0 = times.iter().copied().fold(f64::INFINITY, f64::min);
    let t1 = times
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max)
        .max(t0 + 1.0);
    let ymax = rows
        .iter()
        .flat_map(|r| [r.usage, r.baseline, r.burst, r.limit])
        .flatten()
        .fold(0.0_f64, f64::max)
        .max(1e-3);
    // Headroom above the data for the part and phase labels.
    let ytop = ymax * 1.3;
    let unit = rows.first().map(|r| r.unit.clone()).unwrap_or_default();

    let (plot_area, legend_area) = area.split_horizontally(WIDTH - LEGEND_WIDTH);
    let mut chart = ChartBuilder::on(&plot_area)
        .caption(&panel.title, (FONT, 22).into_font().style(FontStyle::Bold))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(t0..t1, 0.0..ytop)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(RGBColor(235, 235, 235))
        .max_light_lines(1)
        .x_desc("seconds")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| fmt_num(*y))
        .y_desc(&unit)
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 16))
        .draw()?;

    // Parts: shaded, named at the top.
    for p in &parts {
        let c = part_color(&p.name);
        chart.draw_series(std::iter::once(Rectangle::new(
            [(p.from, 0.0), (p.to, ytop)],
            c.mix(0.10).filled(),
        )))?;
        chart.draw_series(std::iter::once(
            EmptyElement::at(((p.from + p.to) / 2.0, ytop))
                + Text::new(
                    p.name.clone(),
                    (0, 4),
                    (FONT, 19)
                        .into_font()
                        .style(FontStyle::Bold)
                        .color(&c.mix(0.9))
                        .pos(Pos::new(HPos::Center, VPos::Top)),
                ),
        ))?;
    }
    // Between parts the scenario sets the next one up, unsampled.
    for w in parts.windows(2) {
        let gap = (w[0].to, w[1].from);
        let px = chart.backend_coord(&(gap.1, 0.0)).0 - chart.backend_coord(&(gap.0, 0.0)).0;
        if px > 60 {
            chart.draw_series(std::iter::once(
                EmptyElement::at(((gap.0 + gap.1) / 2.0, ytop))
                    + Text::new(
                        "set-up",
                        (0, 8),
                        (FONT, 14)
                            .into_font()
                            .color(&RGBColor(150, 150, 150))
                            .pos(Pos::new(HPos::Center, VPos::Top)),
                    ),
            ))?;
        }
    }
    // Phases: a thin line where each starts inside a part, the name under
    // the part's, on as many rows as it takes for the names not to overlap.
    let style = (FONT, 14).into_font().color(&RGBColor(60, 60, 60));
    let mut row_ends: Vec<i32> = Vec::new();
    for (i, ph) in phases.iter().enumerate() {
        let starts_part = parts.iter().any(|p| p.from == ph.from);
        if !starts_part && i > 0 {
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(ph.from, 0.0), (ph.from, ymax * 1.12)],
                RGBColor(150, 150, 150).stroke_width(1),
            )))?;
        }
        let (w, _) = plot_area.estimate_text_size(&ph.name, &style)?;
        let mid = chart.backend_coord(&((ph.from + ph.to) / 2.0, 0.0)).0;
        let (l, r) = (mid - w as i32 / 2, mid + w as i32 / 2);
        let row = row_ends
            .iter()
            .position(|end| *end + 8 < l)
            .unwrap_or(row_ends.len());
        if row == row_ends.len() {
            row_ends.push(r);
        } else {
            row_ends[row] = r;
        }
        chart.draw_series(std::iter::once(
            EmptyElement::at(((ph.from + ph.to) / 2.0, ytop))
                + Text::new(
                    ph.name.clone(),
                    (0, 28 + 17 * row as i32),
                    style.pos(Pos::new(HPos::Center, VPos::Top)),
                ),
        ))?;
    }

    // Tenants, in order of appearance.
    let mut tenants: Vec<&str> = Vec::new();
    for r in rows {
        if !tenants.contains(&r.tenant.as_str()) {
            tenants.push(&r.tenant);
        }
    }
    let bursts: Vec<Option<f64>> = tenants
        .iter()
        .map(|t| rows.iter().find(|r| r.tenant == *t).and_then(|r| r.burst))
        .collect();
    let common_burst = bursts.windows(2).all(|w| w[0] == w[1]) && bursts[0].is_some();
    let mut legend: Vec<(String, RGBColor, u8)> = Vec::new(); // (text, color, kind)
    for t in &tenants {
        let c = *tenant_color.get(*t).unwrap_or(&BLACK);
        let own: Vec<&Row> = rows.iter().copied().filter(|r| r.tenant == *t).collect();
        for seg in segments(&own, |r| r.limit, gap) {
            chart.draw_series(LineSeries::new(steps(&seg), c.mix(0.25).stroke_width(8)))?;
        }
        for seg in segments(&own, |r| r.baseline, gap) {
            chart.draw_series(DashedLineSeries::new(seg, 12, 7, c.stroke_width(2)))?;
        }
        if !common_burst {
            for seg in segments(&own, |r| r.burst, gap) {
                chart.draw_series(DashedLineSeries::new(seg, 2, 5, c.stroke_width(2)))?;
            }
        }
        for seg in segments(&own, |r| r.usage, gap) {
            chart.draw_series(LineSeries::new(seg, c.stroke_width(3)))?;
        }
        let first = own[0];
        legend.push((t.to_string(), c, 0));
        if let Some(b) = first.baseline {
            legend.push((format!("{t} baseline {}", fmt_num(b)), c, 1));
        }
        if let (false, Some(b)) = (common_burst, first.burst) {
            legend.push((format!("{t} burst {}", fmt_num(b)), c, 2));
        }
        if own.iter().any(|r| r.limit.is_some()) {
            legend.push((format!("{t} limit"), c, 3));
        }
    }
    if common_burst {
        let grey = RGBColor(90, 90, 90);
        let first: Vec<&Row> = rows
            .iter()
            .copied()
            .filter(|r| r.tenant == tenants[0])
            .collect();
        for seg in segments(&first, |r| r.burst, gap) {
            chart.draw_series(DashedLineSeries::new(seg, 2, 5, grey.stroke_width(2)))?;
        }
        legend.push((
            format!("burst {} (all)", fmt_num(bursts[0].unwrap_or(0.0))),
            grey,
            2,
        ));
    }

    // The legend, beside the plot.
    let font = (FONT, 16).into_font().color(&BLACK);
    let y0 = 60;
    for (i, (text, c, kind)) in legend.iter().enumerate() {
        let y = y0 + 24 * i as i32;
        let line = vec![(10, y), (50, y)];
        match kind {
            0 => legend_area.draw(&PathElement::new(line, c.stroke_width(3)))?,
            1 => legend_area
                .draw(&PathElement::new(vec![(10, y), (24, y)], c.stroke_width(2)))
                .and_then(|_| {
                    legend_area.draw(&PathElement::new(vec![(32, y), (46, y)], c.stroke_width(2)))
                })?,
            2 => {
                for x in (10..50).step_by(7) {
                    legend_area.draw(&PathElement::new(
                        vec![(x, y), (x + 2, y)],
                        c.stroke_width(2),
                    ))?;
                }
            }
            _ => legend_area.draw(&PathElement::new(line, c.mix(0.25).stroke_width(8)))?,
        }
        legend_area.draw(&Text::new(
            text.clone(),
            (60, y),
            font.clone()
                .into_text_style(&legend_area)
                .pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
    }
    Ok(())
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let (mut title, mut note, mut out, mut inputs) = (None, String::new(), None, Vec::new());
    while let Some(a) = args.next() {
        match a.as_str() {
            "--title" => title = Some(args.next().ok_or("--title needs a value")?),
            "--note" => note = args.next().ok_or("--note needs a value")?,
            "-o" | "--output" => out = Some(PathBuf::from(args.next().ok_or("-o needs a path")?)),
            "-h" | "--help" => {
                println!(
                    "usage: timeline_chart [--title TEXT] [--note TEXT] [-o OUT.png] TIMELINE.csv..."
                );
                return Ok(());
            }
            _ if a.starts_with('-') => return Err(format!("unknown option {a}")),
            _ => inputs.push(PathBuf::from(a)),
        }
    }
    if inputs.is_empty() {
        return Err(
            "usage: timeline_chart [--title TEXT] [--note TEXT] [-o OUT.png] TIMELINE.csv..."
                .into(),
        );
    }
    let out = out.unwrap_or_else(|| inputs[0].with_extension("png"));
    let mut files = Vec::new();
    for path in &inputs {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let rows = parse_csv(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        files.push(rows);
    }
    // One colour per tenant name, over all panels.
    let mut tenant_color = HashMap::new();
    let mut panels = Vec::new();
    for rows in &files {
        let mut resources: Vec<&str> = Vec::new();
        for r in rows {
            if !resources.contains(&r.resource.as_str()) {
                resources.push(&r.resource);
            }
            let n = tenant_color.len();
            tenant_color
                .entry(r.tenant.clone())
                .or_insert(TENANT_COLORS[n % TENANT_COLORS.len()]);
        }
        for res in resources {
            let rows: Vec<&Row> = rows.iter().filter(|r| r.resource == res).collect();
            panels.push(Panel {
                title: panel_title(res, &rows[0].unit),
                rows,
            });
        }
    }
    if panels.is_empty() {
        return Err("no samples in the input".into());
    }
    let title = title.unwrap_or_else(|| {
        inputs
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    });
    load_fonts()?;
    draw(&out, &title, &note, &panels, &tenant_color)
        .map_err(|e| format!("{}: {e}", out.display()))?;
    println!("{}", out.display());
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("timeline_chart: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "t_s,part,phase,resource,unit,tenant,usage,baseline,burst,limit
0.000,no qosd,alone,cpu,cores,web,,1.5,2,max
0.000,no qosd,alone,cpu,cores,batch,,0.5,2,max
0.500,no qosd,alone,cpu,cores,web,0.010,1.5,2,max
0.500,no qosd,alone,cpu,cores,batch,1.990,0.5,2,max
1.000,no qosd,both,cpu,cores,web,1.000,1.5,2,max
1.000,no qosd,both,cpu,cores,batch,1.000,0.5,2,max
9.000,qosd,both,cpu,cores,web,,1.5,2,
9.000,qosd,both,cpu,cores,batch,,0.5,2,0.500
9.500,qosd,both,cpu,cores,web,1.500,1.5,2,
9.500,qosd,both,cpu,cores,batch,0.500,0.5,2,0.500
";

    #[test]
    fn parses_rows_empty_fields_and_max() {
        let rows = parse_csv(CSV).unwrap();
        assert_eq!(rows.len(), 10);
        assert_eq!(rows[0].usage, None);
        assert_eq!(rows[0].limit, None, "max is no limit");
        assert_eq!(rows[3].usage, Some(1.99));
        assert_eq!(rows[3].baseline, Some(0.5));
        assert_eq!(rows[3].burst, Some(2.0));
        assert_eq!(rows[7].limit, Some(0.5));
        assert_eq!(rows[9].part, "qosd");
        assert_eq!(rows[9].unit, "cores");
    }

    #[test]
    fn columns_by_name_and_bad_lines() {
        let rows =
            parse_csv("tenant,usage,t_s,part,phase,resource\nweb,1.25,3.5,p,q,cpu\n").unwrap();
        assert_eq!(rows[0].t, 3.5);
        assert_eq!(rows[0].usage, Some(1.25));
        assert_eq!(rows[0].baseline, None);
        assert!(parse_csv("t_s,part\n").unwrap_err().contains("phase"));
        assert!(
            parse_csv(&format!("{}1,a,b\n", CSV))
                .unwrap_err()
                .contains("fields")
        );
        let bad = CSV.replace("1.990", "x");
        assert!(parse_csv(&bad).unwrap_err().contains("line 5"));
    }

    #[test]
    fn spans_follow_phases_and_stop_at_gaps() {
        let rows = parse_csv(CSV).unwrap();
        let refs: Vec<&Row> = rows.iter().collect();
        let (parts, phases) = spans(&refs);
        let names = |s: &[Span]| {
            s.iter()
                .map(|s| (s.name.clone(), s.from, s.to))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(&parts),
            [
                ("no qosd".to_string(), 0.0, 1.0),
                ("qosd".to_string(), 9.0, 9.5)
            ]
        );
        assert_eq!(
            names(&phases),
            [
                ("alone".to_string(), 0.0, 1.0),
                ("both".to_string(), 1.0, 1.0),
                ("both".to_string(), 9.0, 9.5)
            ]
        );
        let web: Vec<&Row> = refs.iter().copied().filter(|r| r.tenant == "web").collect();
        let segs = segments(&web, |r| r.usage, 1.5);
        assert_eq!(segs, [vec![(0.5, 0.01), (1.0, 1.0)], vec![(9.5, 1.5)]]);
    }
}
