//! "Who in this tenant is noisy?": the processes of a tenant's group ranked
//! by CPU, disk and resident memory, from two readings of
//! `/proc/<pid>/{stat,io,status}` an interval apart (`qosd status --tenant`).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::fs;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;

use crate::cgroup::{Group, Hierarchy};
use crate::config::{Config, format_bytes};
use crate::procfs::{STIME, UTIME, parse_pid_stat};

/// USER_HZ: /proc/<pid>/stat counts CPU time in these ticks on every Linux
/// architecture qosd runs on.
const TICKS_PER_SECOND: f64 = 100.0;

/// One reading of one process.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProcessUsage {
    pub comm: String,
    pub cpu_ticks: u64,
    /// Bytes read from and written to storage (/proc/<pid>/io; 0 when the
    /// file is not readable, e.g. without CAP_SYS_PTRACE).
    pub disk_bytes: u64,
    pub rss_bytes: u64,
}

/// One process's rates between two readings.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessRates {
    pub pid: u32,
    pub comm: String,
    pub cpu_cores: f64,
    pub disk_bytes_per_second: f64,
    pub rss_bytes: u64,
}

/// Reads one process; `None` when it has gone (normal: processes exit).
pub fn read_process(proc_root: &Path, pid: u32) -> Option<ProcessUsage> {
    let dir = proc_root.join(pid.to_string());
    let stat = fs::read_to_string(dir.join("stat")).ok()?;
    let (comm, cpu_ticks) = parse_stat(&stat)?;
    let io = fs::read_to_string(dir.join("io")).unwrap_or_default();
    let status = fs::read_to_string(dir.join("status")).ok()?;
    Some(ProcessUsage {
        comm,
        cpu_ticks,
        disk_bytes: field(&io, "read_bytes:") + field(&io, "write_bytes:"),
        rss_bytes: field(&status, "VmRSS:") * 1024,
    })
}

/// comm and the CPU ticks (user + system) of /proc/<pid>/stat.
fn parse_stat(stat: &str) -> Option<(String, u64)> {
    let (comm, [utime, stime]) = parse_pid_stat(stat, [UTIME, STIME]).ok()?;
    Some((comm.to_owned(), utime + stime))
}

/// The number after `key` on its line (`VmRSS:   1234 kB` gives 1234), or 0.
fn field(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Reads every process of `group`.
pub fn read_group(
    proc_root: &Path,
    group: &Group,
) -> crate::cgroup::Result<BTreeMap<u32, ProcessUsage>> {
    Ok(group
        .procs()?
        .into_iter()
        .filter_map(|pid| Some((pid, read_process(proc_root, pid)?)))
        .collect())
}

/// Rates of the processes present in both readings, busiest CPU first.
pub fn rates(
    before: &BTreeMap<u32, ProcessUsage>,
    after: &BTreeMap<u32, ProcessUsage>,
    elapsed: Duration,
) -> Vec<ProcessRates> {
    let seconds = elapsed.as_secs_f64().max(1e-3);
    let mut rates: Vec<ProcessRates> = after
        .iter()
        .filter_map(|(pid, now)| {
            let then = before.get(pid)?;
            Some(ProcessRates {
                pid: *pid,
                comm: now.comm.clone(),
                cpu_cores: now.cpu_ticks.saturating_sub(then.cpu_ticks) as f64
                    / TICKS_PER_SECOND
                    / seconds,
                disk_bytes_per_second: now.disk_bytes.saturating_sub(then.disk_bytes) as f64
                    / seconds,
                rss_bytes: now.rss_bytes,
            })
        })
        .collect();
    rates.sort_by(|a, b| {
        b.cpu_cores
            .total_cmp(&a.cpu_cores)
            .then(b.disk_bytes_per_second.total_cmp(&a.disk_bytes_per_second))
            .then(b.rss_bytes.cmp(&a.rss_bytes))
    });
    rates
}

/// The table `qosd status --tenant` prints: at most `limit` rows.
pub fn render(tenant: &str, rates: &[ProcessRates], processes: usize, limit: usize) -> String {
    let mut text = format!("tenant {tenant}: {processes} processes\n\n");
    let _ = writeln!(
        text,
        "{:>8}  {:<16} {:>6} {:>12} {:>11}",
        "PID", "COMMAND", "CPU", "DISK/s", "RSS"
    );
    for row in rates.iter().take(limit) {
        let _ = writeln!(
            text,
            "{:>8}  {:<16} {:>6.2} {:>12} {:>11}",
            row.pid,
            row.comm,
            row.cpu_cores,
            format_bytes(row.disk_bytes_per_second as u64),
            format_bytes(row.rss_bytes)
        );
    }
    text
}

/// `qosd status --tenant NAME`: the tenant's processes from `config`,
/// measured over `interval`, at most `limit` rows.
pub fn report(
    config: &Config,
    tenant: &str,
    interval: Duration,
    limit: usize,
) -> anyhow::Result<String> {
    let Some(found) = config.tenants.iter().find(|t| t.name == tenant) else {
        let names: Vec<&str> = config.tenants.iter().map(|t| t.name.as_str()).collect();
        anyhow::bail!(
            "no tenant named {tenant} (the tenants are: {})",
            names.join(", ")
        );
    };
    let group = Hierarchy::at(&config.agent.cgroup_root).group(&found.cgroup);
    let proc_root = Path::new("/proc");
    let read = || {
        read_group(proc_root, &group)
            .with_context(|| format!("cannot list the processes of tenant {tenant}"))
    };
    let before = read()?;
    std::thread::sleep(interval);
    let after = read()?;
    let ranked = rates(&before, &after, interval);
    Ok(render(tenant, &ranked, after.len(), limit))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "4242 (web (worker) 1) S 1 4242 4242 0 -1 4194560 500 0 0 0 250 50 0 0 20 0 4 0 100 1000000 300 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";

    fn fake_process(root: &Path, pid: u32, stat: &str, rss_kib: u64, io_bytes: u64) {
        let dir = root.join(pid.to_string());
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("stat"), stat).unwrap();
        fs::write(
            dir.join("status"),
            format!("Name:\tweb\nVmRSS:\t{rss_kib} kB\n"),
        )
        .unwrap();
        fs::write(
            dir.join("io"),
            format!("rchar: 1\nread_bytes: {io_bytes}\nwrite_bytes: 0\n"),
        )
        .unwrap();
    }

    #[test]
    fn a_process_reads_with_spaces_and_parentheses_in_its_name() {
        let dir = tempfile::tempdir().unwrap();
        fake_process(dir.path(), 4242, STAT, 2048, 4096);
        let read = read_process(dir.path(), 4242).unwrap();
        assert_eq!(read.comm, "web (worker) 1");
        assert_eq!(
            (read.cpu_ticks, read.rss_bytes, read.disk_bytes),
            (300, 2 << 20, 4096)
        );
        assert_eq!(
            read_process(dir.path(), 4243),
            None,
            "a gone process is no error"
        );
    }

    #[test]
    fn rates_rank_the_busiest_first_and_skip_processes_that_came_or_went() {
        let usage = |ticks, disk| ProcessUsage {
            comm: "x".into(),
            cpu_ticks: ticks,
            disk_bytes: disk,
            rss_bytes: 1,
        };
        let before = BTreeMap::from([(1, usage(0, 0)), (2, usage(0, 0)), (3, usage(0, 0))]);
        let after = BTreeMap::from([
            (1, usage(50, 0)),
            (2, usage(150, 1 << 20)),
            (4, usage(9, 0)),
        ]);
        let ranked = rates(&before, &after, Duration::from_secs(1));
        let order: Vec<u32> = ranked.iter().map(|r| r.pid).collect();
        assert_eq!(order, [2, 1]);
        assert_eq!(ranked[0].cpu_cores, 1.5);
        assert_eq!(ranked[0].disk_bytes_per_second, (1 << 20) as f64);
        let table = render("web", &ranked, 3, 1);
        assert!(table.starts_with("tenant web: 3 processes"), "{table}");
        assert_eq!(
            table.lines().count(),
            4,
            "header, blank, columns, one row:\n{table}"
        );
    }
}
