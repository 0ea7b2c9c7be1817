//! /proc/stat: the host's CPU time and its online CPUs.

use super::{ProcError, ProcFs};

const STAT: &str = "stat";

/// The aggregate line of /proc/stat, and the prefix of the per-CPU lines.
const CPU: &str = "cpu";

/// user nice system idle iowait irq softirq steal: the fields we use. Kernels
/// since 2.6.33 print two more (guest, guest_nice), which are already counted
/// in user and nice, so adding them would count guest time twice.
const CPU_FIELDS: usize = 8;

/// Aggregate CPU time from the `cpu` line of /proc/stat, in USER_HZ ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HostCpuTimes {
    pub busy_ticks: u64,
    pub total_ticks: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct HostCpuStat {
    pub times: HostCpuTimes,
    /// Number of `cpuN` lines: the online CPUs.
    pub online_cpus: u32,
}

impl ProcFs {
    pub fn read_cpu_stat(&self) -> Result<HostCpuStat, ProcError> {
        self.read_parsed(STAT, parse_stat)
    }
}

fn parse_stat(text: &str) -> Result<HostCpuStat, String> {
    let mut times = None;
    let mut online_cpus: u32 = 0;
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        match fields.next() {
            Some(CPU) => times = Some(parse_cpu_times(fields)?),
            Some(name) if is_cpu_n(name) => online_cpus = online_cpus.saturating_add(1),
            _ => {}
        }
    }
    let times = times.ok_or("no aggregate \"cpu\" line")?;
    if online_cpus == 0 {
        return Err("no \"cpuN\" lines".to_owned());
    }
    Ok(HostCpuStat { times, online_cpus })
}

/// `cpu0`, `cpu12`, …: /proc/stat lists only online CPUs.
fn is_cpu_n(name: &str) -> bool {
    name.strip_prefix(CPU)
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

fn parse_cpu_times<'a>(fields: impl Iterator<Item = &'a str>) -> Result<HostCpuTimes, String> {
    let values = fields
        .take(CPU_FIELDS)
        .map(|field| field.parse::<u64>())
        .collect::<Result<Vec<u64>, _>>()
        .map_err(|_| "the \"cpu\" line has a field that is not a number".to_owned())?;
    let &[user, nice, system, idle, iowait, irq, softirq, steal] = values.as_slice() else {
        return Err(format!(
            "the \"cpu\" line has fewer than {CPU_FIELDS} fields"
        ));
    };
    let overflow = || "the \"cpu\" line overflows u64".to_owned();
    let busy_ticks =
        checked_sum(&[user, nice, system, irq, softirq, steal]).ok_or_else(overflow)?;
    let total_ticks = checked_sum(&[busy_ticks, idle, iowait]).ok_or_else(overflow)?;
    Ok(HostCpuTimes {
        busy_ticks,
        total_ticks,
    })
}

fn checked_sum(values: &[u64]) -> Option<u64> {
    values.iter().try_fold(0u64, |sum, v| sum.checked_add(*v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::fixtures::{STAT_TEXT, fake_proc};

    #[test]
    fn cpu_stat_busy_total_and_online_cpus() {
        let (_dir, procfs) = fake_proc(&[("stat", STAT_TEXT)]);
        let stat = procfs.read_cpu_stat().unwrap();
        let busy = 6428 + 10 + 2906 + 5 + 60 + 12;
        assert_eq!(
            stat,
            HostCpuStat {
                times: HostCpuTimes {
                    busy_ticks: busy,
                    total_ticks: busy + 32215 + 310,
                },
                online_cpus: 2,
            }
        );
    }

    #[test]
    fn cpu_stat_garbage_is_an_error_naming_the_file() {
        let cases = [
            "",
            "cpu  1 2 3\ncpu0 1 2 3 4 5 6 7 8\n",
            "cpu  1 2 x 4 5 6 7 8\ncpu0 1 2 3 4 5 6 7 8\n",
            "cpu  1 2 3 4 5 6 7 8\n",
            "cpu  18446744073709551615 1 0 0 0 0 0 0\ncpu0 0\n",
        ];
        for text in cases {
            let (_dir, procfs) = fake_proc(&[("stat", text)]);
            let error = procfs.read_cpu_stat().unwrap_err();
            assert!(
                matches!(error, ProcError::Parse { .. }),
                "{text:?}: {error}"
            );
            assert!(error.to_string().contains("stat"), "{error}");
        }
    }
}
