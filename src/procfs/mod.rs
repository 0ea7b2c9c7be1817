//! Host-level readers rooted at a path (default `/proc`): /proc/stat and
//! /proc/pressure/*. Per-process readers come with process classification.
//!
//! Parsed by hand rather than with the `procfs` crate: we need one line of
//! /proc/stat and the PSI format the cgroup module already parses, and a path
//! we can point at a fake tree.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::cgroup::CgroupError;
use crate::cgroup::pressure::{self, Pressure, PressureResource};

const STAT: &str = "stat";
const PRESSURE_DIR: &str = "pressure";

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

/// Cumulative counters of one block device in /proc/diskstats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DiskStats {
    pub reads: u64,
    pub sectors_read: u64,
    pub writes: u64,
    pub sectors_written: u64,
    /// Milliseconds the device had I/O in flight (utilisation).
    pub io_ticks_ms: u64,
    /// Weighted milliseconds spent in the queue.
    pub time_in_queue_ms: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot parse {path}: {reason}")]
    Parse { path: PathBuf, reason: String },
}

#[derive(Debug, Clone)]
pub struct ProcFs {
    root: PathBuf,
}

impl ProcFs {
    pub fn at(root: impl Into<PathBuf>) -> Self {
        ProcFs { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn read_cpu_stat(&self) -> Result<HostCpuStat, ProcError> {
        let path = self.root.join(STAT);
        let text = read(&path)?;
        parse_stat(&text).map_err(|reason| ProcError::Parse { path, reason })
    }

    /// `/proc/pressure/<resource>`; `Ok(None)` when the kernel has no PSI.
    /// Kernels built without CONFIG_PSI, or booted with psi=0, have no
    /// /proc/pressure directory at all; any other failure is an error.
    pub fn read_pressure(&self, resource: PressureResource) -> Result<Option<Pressure>, ProcError> {
        let dir = self.root.join(PRESSURE_DIR);
        let path = dir.join(resource.name());
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == io::ErrorKind::NotFound && !dir.exists() => {
                return Ok(None);
            }
            Err(source) => return Err(ProcError::Read { path, source }),
        };
        pressure::parse(&path, &text)
            .map(Some)
            .map_err(|error| from_cgroup(path, error))
    }
}

impl ProcFs {
    /// /proc/diskstats by device number. INTERFACE STUB.
    pub fn read_diskstats(
        &self,
    ) -> Result<std::collections::BTreeMap<crate::cgroup::io::DeviceNumber, DiskStats>, ProcError>
    {
        todo!()
    }
}

impl Default for ProcFs {
    fn default() -> Self {
        ProcFs::at("/proc")
    }
}

fn read(path: &Path) -> Result<String, ProcError> {
    fs::read_to_string(path).map_err(|source| ProcError::Read {
        path: path.to_owned(),
        source,
    })
}

/// The PSI parser is shared with the cgroup module; keep its reason and content.
fn from_cgroup(path: PathBuf, error: CgroupError) -> ProcError {
    let reason = match error {
        CgroupError::Parse {
            reason, content, ..
        } => format!("{reason} (content: {content:?})"),
        other => other.to_string(),
    };
    ProcError::Parse { path, reason }
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

    /// /proc/stat of a 2-CPU guest (Linux 6.1), trimmed after `ctxt`.
    const STAT_TEXT: &str = "cpu  6428 10 2906 32215 310 5 60 12 7 0\n\
        cpu0 3005 0 1084 16857 19 0 8 5 0 0\n\
        cpu1 3422 10 1821 15358 290 5 52 7 7 0\n\
        intr 186916 0 0 0\n\
        ctxt 395043\n\
        cpufreq 1\n";

    fn fake_proc(files: &[(&str, &str)]) -> (tempfile::TempDir, ProcFs) {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in files {
            let path = dir.path().join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, content).unwrap();
        }
        let procfs = ProcFs::at(dir.path());
        (dir, procfs)
    }

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

    #[test]
    fn missing_stat_is_a_read_error() {
        let (_dir, procfs) = fake_proc(&[]);
        assert!(matches!(
            procfs.read_cpu_stat(),
            Err(ProcError::Read { .. })
        ));
    }

    #[test]
    fn pressure_is_read_with_the_shared_parser() {
        let psi = "some avg10=2.50 avg60=1.00 avg300=0.50 total=99\n";
        let (_dir, procfs) = fake_proc(&[("pressure/cpu", psi)]);
        let pressure = procfs
            .read_pressure(PressureResource::Cpu)
            .unwrap()
            .unwrap();
        assert_eq!(pressure.some.avg10, 2.5);
        assert_eq!(pressure.some.total_usec, 99);
        assert_eq!(pressure.full, None);
    }

    #[test]
    fn no_pressure_dir_means_no_psi() {
        let (_dir, procfs) = fake_proc(&[("stat", STAT_TEXT)]);
        assert!(
            procfs
                .read_pressure(PressureResource::Io)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_missing_file_in_the_pressure_dir_is_an_error() {
        let (_dir, procfs) = fake_proc(&[("pressure/cpu", "")]);
        let error = procfs.read_pressure(PressureResource::Memory).unwrap_err();
        assert!(matches!(error, ProcError::Read { .. }), "{error}");
    }

    #[test]
    fn bad_pressure_keeps_path_and_content() {
        let (_dir, procfs) = fake_proc(&[("pressure/io", "nonsense\n")]);
        let error = procfs.read_pressure(PressureResource::Io).unwrap_err();
        let text = error.to_string();
        assert!(text.contains("pressure/io"), "{text}");
        assert!(text.contains("nonsense"), "{text}");
    }

    #[test]
    fn this_hosts_proc_parses() {
        let procfs = ProcFs::default();
        if procfs.root().join(STAT).exists() {
            assert!(procfs.read_cpu_stat().unwrap().online_cpus >= 1);
            procfs.read_pressure(PressureResource::Cpu).unwrap();
        }
    }
}
