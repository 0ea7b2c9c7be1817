//! The human summary `qosd check` prints after a file validates.

use super::units::{format_cores, format_duration, format_number};
use super::{Config, Tenant};

impl Config {
    /// Agent settings, host capacity and one aligned row per tenant, e.g.:
    ///
    /// ```text
    /// agent:   tick every 1s, cgroups in /sys/fs/cgroup/qosd.slice, metrics on 127.0.0.1:9477
    /// host:    0.5 cores reserved, contended above 90% of capacity, overcommit allowed
    /// tenants: 2, cpu baselines add up to 2.0 cores
    ///
    ///   TENANT  CGROUP                    CPU BASELINE  CPU BURST  CPU WEIGHT
    ///   web     web.slice (adopted)                1.5        2.0         1.5
    ///   batch   qosd.slice/batch (owned)           0.5        2.0         0.5
    /// ```
    pub fn summary(&self) -> String {
        let mut lines = vec![self.agent_line(), self.host_line(), self.tenants_line()];
        if !self.tenants.is_empty() {
            lines.push(String::new());
            lines.extend(tenant_table(&self.tenants));
        }
        let mut summary = lines.join("\n");
        summary.push('\n');
        summary
    }

    fn agent_line(&self) -> String {
        let agent = &self.agent;
        format!(
            "agent:   tick every {}, cgroups in {}, metrics on {}",
            format_duration(agent.interval),
            agent.cgroup_root.join(&agent.parent).display(),
            agent.metrics_listen
        )
    }

    fn host_line(&self) -> String {
        let host = &self.host;
        let overcommit = if host.allow_overcommit {
            "allowed"
        } else {
            "refused"
        };
        format!(
            "host:    {} cores reserved, contended above {}% of capacity, overcommit {overcommit}",
            host.reserved_cpu,
            format_number(host.contention_threshold * 100.0)
        )
    }

    fn tenants_line(&self) -> String {
        let total: f64 = self
            .tenants
            .iter()
            .filter_map(|tenant| tenant.cpu)
            .map(|cpu| cpu.baseline.get())
            .sum();
        match self.tenants.len() {
            0 => "tenants: none".to_owned(),
            count => format!(
                "tenants: {count}, cpu baselines add up to {} cores",
                format_cores(total)
            ),
        }
    }
}

const HEADER: [&str; 5] = [
    "TENANT",
    "CGROUP",
    "CPU BASELINE",
    "CPU BURST",
    "CPU WEIGHT",
];
/// Names and paths read best left-aligned, numbers right-aligned.
const LEFT_ALIGNED_COLUMNS: usize = 2;

fn tenant_table(tenants: &[Tenant]) -> Vec<String> {
    let mut rows = vec![HEADER.map(str::to_owned)];
    rows.extend(tenants.iter().map(tenant_row));
    let widths: Vec<usize> = (0..HEADER.len())
        .map(|column| rows.iter().map(|row| row[column].chars().count()).max())
        .map(|width| width.unwrap_or(0))
        .collect();
    rows.iter().map(|row| format_row(row, &widths)).collect()
}

fn tenant_row(tenant: &Tenant) -> [String; 5] {
    let ownership = if tenant.adopted { "adopted" } else { "owned" };
    let cgroup = format!("{} ({ownership})", tenant.cgroup.display());
    let (baseline, burst, weight) = match tenant.cpu {
        Some(cpu) => (
            cpu.baseline.to_string(),
            cpu.burst.to_string(),
            format_number(cpu.weight),
        ),
        None => ("-".to_owned(), "-".to_owned(), "-".to_owned()),
    };
    [tenant.name.clone(), cgroup, baseline, burst, weight]
}

fn format_row(row: &[String; 5], widths: &[usize]) -> String {
    let cells: Vec<String> = row
        .iter()
        .zip(widths)
        .enumerate()
        .map(|(column, (cell, width))| {
            if column < LEFT_ALIGNED_COLUMNS {
                format!("{cell:<width$}")
            } else {
                format!("{cell:>width$}")
            }
        })
        .collect();
    format!("  {}", cells.join("  ")).trim_end().to_owned()
}
