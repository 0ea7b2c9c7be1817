//! /proc/stat: the host's CPU time and its online CPUs.

use procfs_core::{CpuTime, ExplicitSystemInfo, FromReadSI, KernelStats};

use super::{ProcError, ProcFs, crate_reason};

const STAT: &str = "stat";

/// procfs-core wants the tick rate to offer times in milliseconds; qosd
/// keeps the ticks, so none of these values is ever used.
const UNUSED_SYSTEM_INFO: ExplicitSystemInfo = ExplicitSystemInfo {
    boot_time_secs: 0,
    ticks_per_second: 100,
    page_size: 4096,
    is_little_endian: cfg!(target_endian = "little"),
};

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

/// The aggregate `cpu` line and the number of `cpuN` lines (procfs-core
/// also requires the `ctxt`, `btime` and `processes` lines).
fn parse_stat(text: &str) -> Result<HostCpuStat, String> {
    let stats =
        KernelStats::from_read(text.as_bytes(), &UNUSED_SYSTEM_INFO).map_err(crate_reason)?;
    let times = cpu_times(&stats.total)?;
    // /proc/stat lists only online CPUs.
    let online_cpus = u32::try_from(stats.cpu_time.len()).unwrap_or(u32::MAX);
    if online_cpus == 0 {
        return Err("no \"cpuN\" lines".to_owned());
    }
    Ok(HostCpuStat { times, online_cpus })
}

/// user nice system idle iowait irq softirq steal: the fields we use, all
/// required. Kernels since 2.6.33 print two more (guest, guest_nice), which
/// are already counted in user and nice, so adding them would count guest
/// time twice.
fn cpu_times(total: &CpuTime) -> Result<HostCpuTimes, String> {
    let (Some(iowait), Some(irq), Some(softirq), Some(steal)) =
        (total.iowait, total.irq, total.softirq, total.steal)
    else {
        return Err("the \"cpu\" line has fewer than 8 fields".to_owned());
    };
    let overflow = || "the \"cpu\" line overflows u64".to_owned();
    let busy_ticks = checked_sum(&[total.user, total.nice, total.system, irq, softirq, steal])
        .ok_or_else(overflow)?;
    let total_ticks = checked_sum(&[busy_ticks, total.idle, iowait]).ok_or_else(overflow)?;
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
        // Each case followed by the lines procfs-core requires, so that it
        // fails for its own reason.
        let required = "ctxt 1\nbtime 1\nprocesses 1\n";
        let missing = "a field is missing";
        let cases = [
            ("", missing),
            ("cpu  1 2 3\ncpu0 1 2 3 4 5 6 7 8\n", missing),
            (
                "cpu  1 2 3 4 5 6 7\ncpu0 1 2 3 4 5 6 7 8\n",
                "the \"cpu\" line has fewer than 8 fields",
            ),
            (
                "cpu  1 2 x 4 5 6 7 8\ncpu0 1 2 3 4 5 6 7 8\n",
                "(\"x\") as a u64",
            ),
            ("cpu  1 2 3 4 5 6 7 8\n", "no \"cpuN\" lines"),
            (
                "cpu  18446744073709551615 1 0 0 0 0 0 0\ncpu0 0 0 0 0\n",
                "the \"cpu\" line overflows u64",
            ),
        ];
        for (case, reason) in cases {
            let text = format!("{case}{required}");
            let (_dir, procfs) = fake_proc(&[("stat", &text)]);
            let error = procfs.read_cpu_stat().unwrap_err();
            assert!(
                matches!(error, ProcError::Parse { .. }),
                "{text:?}: {error}"
            );
            let message = error.to_string();
            assert!(message.contains("/stat: "), "{message}");
            assert!(message.contains(reason), "{case:?}: {message}");
        }
    }
}
