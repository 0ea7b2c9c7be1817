//! The human summary `qosd check` prints after a file validates.

use super::units::{format_bytes, format_cores, format_duration, format_io, format_number};
use super::{
    Config, DiskCapacity, IoDimension, LinkCapacity, MemoryProtection, ProcessMatcher, Tenant,
};

impl Config {
    /// Agent settings, host capacity, one aligned row per tenant, and the
    /// disks and links with their contracts, the memory contracts, and the
    /// process matchers in the order they are tried, when there are any, e.g.:
    ///
    /// ```text
    /// agent:   tick every 1s, cgroups in /sys/fs/cgroup/qosd.slice, metrics on 127.0.0.1:9477
    /// host:    0.0 cores reserved, 256 MiB of memory reserved, contended above 90% of capacity, overcommit allowed
    /// disks:   1 (/dev/vda)
    /// links:   1 (eth0)
    /// tenants: 2, cpu baselines add up to 2.0 cores, memory baselines to 1.5 GiB, 2 disk contracts, 2 net contracts, 2 process matchers
    ///
    ///   TENANT  CGROUP                    CPU BASELINE  CPU BURST  CPU WEIGHT
    ///   web     web.slice (adopted)                1.5        2.0         1.5
    ///   batch   qosd.slice/batch (owned)           0.5        2.0         0.5
    ///
    ///   DISK      NUMBER  READ BPS  WRITE BPS  READ IOPS  WRITE IOPS
    ///   /dev/vda  254:0   50 MiB/s   50 MiB/s  2000 IOPS   1000 IOPS
    ///
    ///   TENANT  DISK      DIMENSION   BASELINE      BURST  WEIGHT
    ///   web     /dev/vda  read_bps    20 MiB/s   50 MiB/s      40
    ///   batch   /dev/vda  read_bps    10 MiB/s   50 MiB/s      20
    ///   batch   /dev/vda  write_iops  200 IOPS  1000 IOPS      20
    ///
    ///   LINK    EGRESS
    ///   eth0  1 Gbit/s
    ///
    ///   TENANT  LINK  VETH        BASELINE       BURST     WEIGHT
    ///   web     eth0  -         100 Mbit/s    1 Gbit/s  100000000
    ///   batch   eth0  veth-ctr   50 Mbit/s  500 Mbit/s   50000000
    ///
    ///   TENANT  MEMORY PROTECTION  BASELINE  BURST  LIMIT
    ///   web     hard (memory.min)     1 GiB  2 GiB  3 GiB
    ///   batch   soft (memory.low)   512 MiB  1 GiB      -
    ///
    ///   TENANT  MATCH     PROCESSES (first match wins, in this order)
    ///   batch   match[0]  { uid = 1001, comm = "python*" }
    ///   batch   match[1]  { unit = "batch.service" }
    /// ```
    pub fn summary(&self) -> String {
        let mut lines = vec![
            self.agent_line(),
            self.host_line(),
            self.disks_line(),
            self.links_line(),
            self.tenants_line(),
        ];
        let tables = [
            tenant_table(&self.tenants),
            disk_table(&self.host.disks),
            tenant_disk_table(&self.tenants),
            link_table(&self.host.links),
            tenant_net_table(&self.tenants),
            tenant_memory_table(&self.tenants),
            tenant_match_table(&self.tenants),
        ];
        // A table without rows is left out, header and all.
        for table in tables.into_iter().filter(|table| !table.is_empty()) {
            lines.push(String::new());
            lines.extend(table);
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
            "host:    {} cores reserved, {} of memory reserved, contended above {}% of \
             capacity, overcommit {overcommit}",
            host.reserved_cpu,
            format_bytes(host.reserved_memory),
            format_number(host.contention_threshold * 100.0)
        )
    }

    fn disks_line(&self) -> String {
        let names = self.host.disks.iter().map(|disk| disk.device.name.as_str());
        declared_line("disks:  ", &names.collect::<Vec<_>>())
    }

    fn links_line(&self) -> String {
        let names = self.host.links.iter().map(|link| link.interface.as_str());
        declared_line("links:  ", &names.collect::<Vec<_>>())
    }

    fn tenants_line(&self) -> String {
        let total: f64 = self
            .tenants
            .iter()
            .filter_map(|tenant| tenant.cpu)
            .map(|cpu| cpu.baseline.get())
            .sum();
        let count = |what: &str, per_tenant: fn(&Tenant) -> usize| {
            let count: usize = self.tenants.iter().map(per_tenant).sum();
            match count {
                0 => String::new(),
                1 => format!(", 1 {what}"),
                count => format!(", {count} {what}s"),
            }
        };
        let disks = count("disk contract", |tenant| tenant.disk.len());
        let nets = count("net contract", |tenant| tenant.net.len());
        let matchers = count("process matcher", |tenant| tenant.matchers.len());
        let memory_baselines = self
            .tenants
            .iter()
            .filter_map(|tenant| tenant.memory)
            .map(|memory| u128::from(memory.baseline));
        let memory = if self.tenants.iter().any(|tenant| tenant.memory.is_some()) {
            let sum: u128 = memory_baselines.sum();
            let sum = u64::try_from(sum).map_or_else(|_| format!("{sum} B"), format_bytes);
            format!(", memory baselines to {sum}")
        } else {
            String::new()
        };
        match self.tenants.len() {
            0 => "tenants: none".to_owned(),
            count => format!(
                "tenants: {count}, cpu baselines add up to {} cores{memory}{disks}{nets}{matchers}",
                format_cores(total)
            ),
        }
    }
}

/// "disks:   2 (/dev/vda, /dev/vdb)", or "disks:   none declared"; `label`
/// is written with the space after it.
fn declared_line(label: &str, names: &[&str]) -> String {
    match names.len() {
        0 => format!("{label} none declared"),
        count => format!("{label} {count} ({})", names.join(", ")),
    }
}

fn tenant_table(tenants: &[Tenant]) -> Vec<String> {
    let header = [
        "TENANT",
        "CGROUP",
        "CPU BASELINE",
        "CPU BURST",
        "CPU WEIGHT",
    ];
    // Names and paths read best left-aligned, numbers right-aligned.
    table(&header, 2, tenants.iter().map(tenant_row).collect())
}

fn tenant_row(tenant: &Tenant) -> Vec<String> {
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
    vec![tenant.name.clone(), cgroup, baseline, burst, weight]
}

/// One row per `[[host.disks]]` entry; `-` for an uncontrolled dimension.
fn disk_table(disks: &[DiskCapacity]) -> Vec<String> {
    // A column per dimension, as in each row: READ BPS, ..., WRITE IOPS.
    let mut header = vec!["DISK".to_owned(), "NUMBER".to_owned()];
    header
        .extend(IoDimension::ALL.map(|dimension| dimension.key().replace('_', " ").to_uppercase()));
    let rows = disks
        .iter()
        .map(|disk| {
            let mut row = vec![disk.device.name.clone(), disk.device.number.to_string()];
            row.extend(IoDimension::ALL.map(|dimension| {
                disk.capacity
                    .get(dimension)
                    .map_or_else(|| "-".to_owned(), |value| format_io(dimension, value))
            }));
            row
        })
        .collect();
    table(&header, 2, rows)
}

/// One row per tenant, device and dimension with a contract.
fn tenant_disk_table(tenants: &[Tenant]) -> Vec<String> {
    let header = ["TENANT", "DISK", "DIMENSION", "BASELINE", "BURST", "WEIGHT"];
    let mut rows = Vec::new();
    for tenant in tenants {
        for contract in &tenant.disk {
            for dimension in IoDimension::ALL {
                if let Some(limit) = contract.limits.get(dimension) {
                    rows.push(vec![
                        tenant.name.clone(),
                        contract.device.name.clone(),
                        dimension.key().to_owned(),
                        format_io(dimension, limit.baseline),
                        format_io(dimension, limit.burst),
                        format_number(limit.weight),
                    ]);
                }
            }
        }
    }
    table(&header, 3, rows)
}

/// One row per `[[host.links]]` entry.
fn link_table(links: &[LinkCapacity]) -> Vec<String> {
    let rows = links
        .iter()
        .map(|link| vec![link.interface.clone(), link.egress.to_string()])
        .collect();
    table(&["LINK", "EGRESS"], 1, rows)
}

/// One row per tenant and link with an egress contract; `-` for no veth.
fn tenant_net_table(tenants: &[Tenant]) -> Vec<String> {
    let header = ["TENANT", "LINK", "VETH", "BASELINE", "BURST", "WEIGHT"];
    let mut rows = Vec::new();
    for tenant in tenants {
        for contract in &tenant.net {
            rows.push(vec![
                tenant.name.clone(),
                contract.interface.clone(),
                contract.veth.clone().unwrap_or_else(|| "-".to_owned()),
                contract.egress.baseline.to_string(),
                contract.egress.burst.to_string(),
                format_number(contract.egress.weight),
            ]);
        }
    }
    table(&header, 3, rows)
}

/// One row per tenant with a memory contract; `-` for no limit.
fn tenant_memory_table(tenants: &[Tenant]) -> Vec<String> {
    let header = ["TENANT", "MEMORY PROTECTION", "BASELINE", "BURST", "LIMIT"];
    let rows = tenants
        .iter()
        .filter_map(|tenant| {
            let memory = tenant.memory?;
            let protection = match memory.protection {
                MemoryProtection::Hard => "hard (memory.min)",
                MemoryProtection::Soft => "soft (memory.low)",
            };
            Some(vec![
                tenant.name.clone(),
                protection.to_owned(),
                format_bytes(memory.baseline),
                format_bytes(memory.burst),
                memory.limit.map_or_else(|| "-".to_owned(), format_bytes),
            ])
        })
        .collect();
    table(&header, 2, rows)
}

/// One row per process matcher, in the order they are tried.
fn tenant_match_table(tenants: &[Tenant]) -> Vec<String> {
    let header = [
        "TENANT",
        "MATCH",
        "PROCESSES (first match wins, in this order)",
    ];
    let mut rows = Vec::new();
    for tenant in tenants {
        for (index, matcher) in tenant.matchers.iter().enumerate() {
            rows.push(vec![
                tenant.name.clone(),
                format!("match[{index}]"),
                describe_matcher(matcher),
            ]);
        }
    }
    table(&header, 3, rows)
}

/// A matcher as a TOML table, user and group by id:
/// `{ uid = 1001, comm = "python*" }`.
fn describe_matcher(matcher: &ProcessMatcher) -> String {
    let mut keys = Vec::new();
    if let Some(uid) = matcher.uid {
        keys.push(format!("uid = {uid}"));
    }
    if let Some(gid) = matcher.gid {
        keys.push(format!("gid = {gid}"));
    }
    let patterns = [
        ("comm", &matcher.comm),
        ("exe", &matcher.exe),
        ("cmdline", &matcher.cmdline),
    ];
    for (key, pattern) in patterns {
        if let Some(pattern) = pattern {
            keys.push(format!("{key} = {:?}", pattern.source()));
        }
    }
    if let Some(unit) = &matcher.unit {
        keys.push(format!("unit = {unit:?}"));
    }
    format!("{{ {} }}", keys.join(", "))
}

/// Rows aligned under `header`: the first `left_aligned` columns to the left,
/// the others (numbers) to the right. Nothing, not even the header, when
/// there are no rows.
fn table<H: AsRef<str>>(header: &[H], left_aligned: usize, body: Vec<Vec<String>>) -> Vec<String> {
    if body.is_empty() {
        return Vec::new();
    }
    let mut rows = vec![header.iter().map(|cell| cell.as_ref().to_owned()).collect()];
    rows.extend(body);
    let widths: Vec<usize> = (0..header.len())
        .map(|column| {
            let cells = rows.iter().filter_map(|row| row.get(column));
            cells.map(|cell| cell.chars().count()).max().unwrap_or(0)
        })
        .collect();
    rows.iter()
        .map(|row| format_row(row, &widths, left_aligned))
        .collect()
}

fn format_row(row: &[String], widths: &[usize], left_aligned: usize) -> String {
    let cells: Vec<String> = row
        .iter()
        .zip(widths)
        .enumerate()
        .map(|(column, (cell, width))| {
            if column < left_aligned {
                format!("{cell:<width$}")
            } else {
                format!("{cell:>width$}")
            }
        })
        .collect();
    format!("  {}", cells.join("  ")).trim_end().to_owned()
}
