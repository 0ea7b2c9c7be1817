//! `qosd status`: what the running agent saw and decided at its last tick,
//! one row per tenant and resource. The agent serves it as JSON on a Unix
//! socket (root only); this module holds the report, the rule that names a
//! row's state, the client, and the table a human reads.

use std::fmt::Write as _;
use std::io::{self, IsTerminal, Read};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{format_bits_per_second, format_bytes, format_bytes_per_second};
use crate::policy::{BASELINE_TOLERANCE, PRESSING_FRACTION};

/// Where the agent serves its status, and where `qosd status` asks.
pub const DEFAULT_SOCKET: &str = "/run/qosd/qosd.sock";

/// How long the client waits for the agent's answer: the agent answers
/// between ticks, so a tick that hangs must not hang the terminal.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Usage under this share of the burst is no use at all.
const IDLE_FRACTION: f64 = 0.01;

/// The agent's view at its last tick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Ticks since the agent started.
    pub tick: u64,
    pub interval_seconds: f64,
    /// Time since that tick ended, when the report was sent.
    pub age_seconds: f64,
    pub resources: Vec<ResourceRow>,
    pub tenants: Vec<TenantRow>,
}

/// What a row is about: the resource, and where it has several, the device
/// or link and the dimension; in the resource's unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subject {
    /// "cpu", "disk", "memory" or "network".
    pub resource: String,
    /// The disk or interface; empty for CPU and memory.
    pub device: String,
    /// A disk's "read_bps", "write_bps", "read_iops" or "write_iops".
    pub dimension: String,
    pub unit: Unit,
}

impl Subject {
    pub fn new(resource: &str, device: &str, dimension: &str, unit: Unit) -> Self {
        Subject {
            resource: resource.into(),
            device: device.into(),
            dimension: dimension.into(),
            unit,
        }
    }

    /// "cpu", "disk vda read_bps", "network eth0": the parts there are.
    fn name(&self) -> String {
        [&self.resource, &self.device, &self.dimension]
            .iter()
            .filter(|part| !part.is_empty())
            .map(|part| part.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// One shared resource of the host: the CPUs, a disk's dimension, a link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceRow {
    #[serde(flatten)]
    pub subject: Subject,
    pub capacity: f64,
    /// What is used now: busy cores, bytes or IOs per second, bits per second.
    pub used: Option<f64>,
    pub contended: bool,
}

/// One contract of one tenant, and how it fares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantRow {
    pub tenant: String,
    #[serde(flatten)]
    pub subject: Subject,
    pub baseline: f64,
    pub burst: f64,
    /// `None` until two samples were taken, or when it cannot be read.
    pub usage: Option<f64>,
    /// The limit in force (cpu.max, io.max, memory.high, the HTB ceiling).
    pub limit: Option<f64>,
    pub state: State,
    /// Share of the last tick in which some task of the tenant waited for
    /// the resource (PSI "some"); `None` where the kernel gives none.
    pub pressure: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    Cores,
    BytesPerSecond,
    IosPerSecond,
    Bytes,
    BitsPerSecond,
}

/// How a tenant fares against one contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Uses next to nothing.
    Idle,
    /// Uses no more than its baseline.
    WithinBaseline,
    /// Uses more than its baseline, up to its burst, unhindered.
    Bursting,
    /// qosd lowered its limit below its burst (the resource is contended),
    /// and it presses against that limit.
    Clamped,
    /// Wants at least its baseline but gets less: a broken contract.
    BelowBaseline,
}

impl State {
    pub fn label(self) -> &'static str {
        match self {
            State::Idle => "idle",
            State::WithinBaseline => "within baseline",
            State::Bursting => "bursting",
            State::Clamped => "clamped",
            State::BelowBaseline => "below baseline",
        }
    }

    /// ANSI colour: trouble stands out, calm does not.
    fn colour(self) -> &'static str {
        match self {
            State::Idle => "\x1b[2m",
            State::WithinBaseline => "\x1b[32m",
            State::Bursting => "\x1b[36m",
            State::Clamped => "\x1b[33m",
            State::BelowBaseline => "\x1b[1;31m",
        }
    }
}

/// The state of a contract with `usage` under `limit`; `broken` is the
/// agent's own verdict (wants more than it gets, below its baseline; see
/// `policy::contract_broken_under`, which already spares a tenant held at a
/// limit of at least its baseline). Clamped: qosd lowered the limit below
/// the burst, and the tenant presses against it.
pub fn state(usage: f64, baseline: f64, burst: f64, limit: Option<f64>, broken: bool) -> State {
    if broken {
        return State::BelowBaseline;
    }
    if usage < IDLE_FRACTION * burst.max(baseline) {
        return State::Idle;
    }
    let lowered = limit.filter(|&limit| limit < burst * 0.999);
    if lowered.is_some_and(|limit| usage >= PRESSING_FRACTION * limit) {
        return State::Clamped;
    }
    // A tick's measurement is never exact: just above the baseline is at it.
    if usage > baseline / BASELINE_TOLERANCE {
        State::Bursting
    } else {
        State::WithinBaseline
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error(
        "qosd is not running: nothing listens on {path} ({source}); start it with \
         `systemctl start qosd`, or point --socket at the agent's"
    )]
    NotRunning { path: PathBuf, source: io::Error },
    #[error("cannot read qosd's status from {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("qosd's answer on {path} is not a status report: {source}")]
    Garbled {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// Asks the agent listening on `socket` for its report.
pub fn fetch(socket: &Path) -> Result<Report, StatusError> {
    let mut stream = UnixStream::connect(socket).map_err(|source| StatusError::NotRunning {
        path: socket.to_owned(),
        source,
    })?;
    let read_error = |source| StatusError::Read {
        path: socket.to_owned(),
        source,
    };
    stream
        .set_read_timeout(Some(READ_TIMEOUT))
        .map_err(read_error)?;
    let mut text = String::new();
    stream.read_to_string(&mut text).map_err(read_error)?;
    serde_json::from_str(&text).map_err(|source| StatusError::Garbled {
        path: socket.to_owned(),
        source,
    })
}

/// Whether to colour the table: on a terminal, unless NO_COLOR is set.
pub fn colour_wanted() -> bool {
    io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The report as a table: a header line per resource, then one row per
/// tenant and contract.
pub fn render(report: &Report, colour: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "qosd: tick {} every {:.0?}, {:.1} s ago",
        report.tick,
        Duration::from_secs_f64(report.interval_seconds.max(0.0)),
        report.age_seconds
    );
    for resource in &report.resources {
        let name = resource.subject.name();
        let used = resource
            .used
            .map_or_else(|| "-".to_owned(), |v| amount(v, resource.subject.unit));
        let state = if resource.contended {
            "contended"
        } else {
            "not contended"
        };
        let _ = writeln!(
            out,
            "  {name}: {used} of {}, {state}",
            amount(resource.capacity, resource.subject.unit)
        );
    }
    let header = [
        "TENANT", "RESOURCE", "BASELINE", "BURST", "USAGE", "LIMIT", "STATE", "PRESSURE",
    ];
    let rows: Vec<[String; 8]> = report.tenants.iter().map(row_cells).collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    out.push('\n');
    push_row(&mut out, &header.map(str::to_owned), &widths, None);
    for (row, tenant) in rows.iter().zip(&report.tenants) {
        push_row(&mut out, row, &widths, colour.then_some(tenant.state));
    }
    if report.tenants.is_empty() {
        out.push_str("(no tenant has a contract)\n");
    }
    out
}

fn row_cells(row: &TenantRow) -> [String; 8] {
    let optional =
        |value: Option<f64>| value.map_or_else(|| "-".to_owned(), |v| amount(v, row.subject.unit));
    [
        row.tenant.clone(),
        row.subject.name(),
        amount(row.baseline, row.subject.unit),
        amount(row.burst, row.subject.unit),
        optional(row.usage),
        optional(row.limit),
        row.state.label().to_owned(),
        row.pressure
            .map_or_else(|| "-".to_owned(), |p| format!("{:.0}%", p * 100.0)),
    ]
}

/// Columns padded to `widths`; the state column coloured when `state` is given.
fn push_row(out: &mut String, cells: &[String; 8], widths: &[usize; 8], state: Option<State>) {
    let mut line = String::new();
    for (index, (cell, width)) in cells.iter().zip(widths).enumerate() {
        let padded = format!("{cell:<width$}  ");
        match state {
            Some(state) if index == 6 => {
                let _ = write!(line, "{}{padded}\x1b[0m", state.colour());
            }
            _ => line.push_str(&padded),
        }
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

/// A value in its unit, as a human reads it.
fn amount(value: f64, unit: Unit) -> String {
    match unit {
        Unit::Cores => format!("{value:.2} cores"),
        Unit::Bytes => format_bytes(value.max(0.0) as u64),
        Unit::BytesPerSecond => format_bytes_per_second(value),
        Unit::IosPerSecond => format!("{value:.0} IO/s"),
        Unit::BitsPerSecond => format_bits_per_second(value),
    }
}

/// `--watch`: the table again every `every`, in place, until interrupted.
pub fn watch(socket: &Path, every: Duration, colour: bool) -> Result<(), StatusError> {
    loop {
        let report = fetch(socket)?;
        // Home and clear, like `watch`; only a terminal is redrawn.
        let clear = if colour { "\x1b[H\x1b[2J" } else { "" };
        print!("{clear}{}", render(&report, colour));
        if !colour {
            println!();
        }
        std::thread::sleep(every);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_of_a_contract() {
        // baseline 0.5, burst 2 cores.
        let of = |usage, limit, broken| state(usage, 0.5, 2.0, limit, broken);
        assert_eq!(of(0.001, None, false), State::Idle);
        assert_eq!(of(0.4, Some(2.0), false), State::WithinBaseline);
        assert_eq!(of(0.51, Some(2.0), false), State::WithinBaseline, "at it");
        assert_eq!(of(1.5, Some(2.0), false), State::Bursting);
        assert_eq!(of(1.99, Some(2.0), false), State::Bursting, "its own burst");
        assert_eq!(of(0.5, Some(0.5), false), State::Clamped);
        assert_eq!(of(0.2, Some(0.5), false), State::WithinBaseline, "under it");
        assert_eq!(of(0.2, Some(0.5), true), State::BelowBaseline);
        assert_eq!(
            of(0.46, Some(0.5), false),
            State::Clamped,
            "throttled at it"
        );
        assert_eq!(of(0.0, None, true), State::BelowBaseline);
    }

    fn report() -> Report {
        Report {
            tick: 42,
            interval_seconds: 1.0,
            age_seconds: 0.3,
            resources: vec![ResourceRow {
                subject: Subject::new("cpu", "", "", Unit::Cores),
                capacity: 2.0,
                used: Some(1.98),
                contended: true,
            }],
            tenants: vec![
                TenantRow {
                    tenant: "web".into(),
                    subject: Subject::new("cpu", "", "", Unit::Cores),
                    baseline: 1.5,
                    burst: 2.0,
                    usage: Some(1.48),
                    limit: Some(2.0),
                    state: State::WithinBaseline,
                    pressure: Some(0.12),
                },
                TenantRow {
                    tenant: "batch".into(),
                    subject: Subject::new("disk", "vda", "read_bps", Unit::BytesPerSecond),
                    baseline: 10_485_760.0,
                    burst: 52_428_800.0,
                    usage: None,
                    limit: None,
                    state: State::Idle,
                    pressure: None,
                },
            ],
        }
    }

    #[test]
    fn the_table_has_a_header_per_resource_and_a_row_per_contract() {
        let text = render(&report(), false);
        assert!(
            text.contains("cpu: 1.98 cores of 2.00 cores, contended"),
            "{text}"
        );
        let web = text.lines().find(|l| l.starts_with("web")).unwrap();
        for cell in ["cpu", "1.50 cores", "1.48 cores", "within baseline", "12%"] {
            assert!(web.contains(cell), "{cell} missing from {web:?}");
        }
        let batch = text.lines().find(|l| l.starts_with("batch")).unwrap();
        assert!(
            batch.contains("disk vda read_bps") && batch.contains("10 MiB/s"),
            "{batch}"
        );
        assert!(!text.contains('\x1b'), "no colour when not asked");
        assert!(render(&report(), true).contains("\x1b[32mwithin baseline"));
    }

    #[test]
    fn json_round_trips_with_snake_case_states() {
        let json = serde_json::to_string(&report()).unwrap();
        assert!(json.contains(r#""state":"within_baseline""#), "{json}");
        assert_eq!(serde_json::from_str::<Report>(&json).unwrap(), report());
    }

    #[test]
    fn no_agent_is_said_plainly() {
        let dir = tempfile::tempdir().unwrap();
        let error = fetch(&dir.path().join("qosd.sock"))
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("qosd is not running: nothing listens on"),
            "{error}"
        );
    }
}
