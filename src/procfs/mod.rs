//! Host-level readers rooted at a path (default `/proc`): /proc/stat,
//! /proc/diskstats and /proc/pressure/*. Per-process readers come with process classification.
//!
//! Parsed by hand rather than with the `procfs` crate: we need one line of
//! /proc/stat and the PSI format the cgroup module already parses, and a path
//! we can point at a fake tree.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub mod process;

pub(crate) use process::split_stat;
pub use process::{ProcessFields, ProcessInfo};

use crate::cgroup::CgroupError;
use crate::cgroup::io::DeviceNumber;
use crate::cgroup::pressure::{self, Pressure, PressureResource};

const STAT: &str = "stat";
const DISKSTATS: &str = "diskstats";
const PRESSURE_DIR: &str = "pressure";
const NET_DEV: &str = "net/dev";
const MEMINFO: &str = "meminfo";

/// The 16 counters after `name:` in /proc/net/dev: 8 receive (bytes first),
/// then 8 transmit (bytes, packets, errs, drop, ...).
const NET_DEV_COUNTERS: usize = 16;
const NET_RX_BYTES: usize = 0;
const NET_TX_BYTES: usize = 8;
const NET_TX_PACKETS: usize = 9;
const NET_TX_DROP: usize = 11;

/// /proc/diskstats counts sectors of 512 bytes, whatever the device's block size.
pub const SECTOR_BYTES: u64 = 512;

/// The counters after `major minor name` that every kernel since 2.6.25
/// prints: reads reads_merged sectors_read ms_reading writes writes_merged
/// sectors_written ms_writing in_flight io_ticks time_in_queue. Kernel 4.18
/// adds four discard counters and 5.5 two flush counters (6.1: 20 fields).
const DISK_COUNTERS: usize = 11;
const DISK_READS: usize = 0;
const DISK_SECTORS_READ: usize = 2;
const DISK_WRITES: usize = 4;
const DISK_SECTORS_WRITTEN: usize = 6;
const DISK_IO_TICKS: usize = 9;
const DISK_TIME_IN_QUEUE: usize = 10;

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

/// Cumulative transmit counters of one interface in /proc/net/dev.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NetDevStats {
    pub received_bytes: u64,
    pub transmitted_bytes: u64,
    pub transmitted_packets: u64,
    pub transmit_drops: u64,
}

/// The host's memory from /proc/meminfo, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HostMemory {
    pub total: u64,
    /// What the kernel estimates it can give without swapping: free memory
    /// plus the page cache and slab it can reclaim.
    pub available: u64,
}

impl HostMemory {
    /// Memory not available: what processes hold that cannot be reclaimed.
    pub fn used(&self) -> u64 {
        self.total.saturating_sub(self.available)
    }
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

impl DiskStats {
    pub fn bytes_read(&self) -> u64 {
        self.sectors_read.saturating_mul(SECTOR_BYTES)
    }

    pub fn bytes_written(&self) -> u64 {
        self.sectors_written.saturating_mul(SECTOR_BYTES)
    }
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
    /// /proc/diskstats by device number: whole disks and partitions alike
    /// (the caller picks). A malformed line is an error naming the line.
    pub fn read_diskstats(&self) -> Result<BTreeMap<DeviceNumber, DiskStats>, ProcError> {
        let path = self.root.join(DISKSTATS);
        let text = read(&path)?;
        parse_diskstats(&text).map_err(|reason| ProcError::Parse { path, reason })
    }
}

impl ProcFs {
    /// /proc/net/dev: the counters of every interface of qosd's network
    /// namespace, by name.
    pub fn read_net_dev(&self) -> Result<BTreeMap<String, NetDevStats>, ProcError> {
        self.read_net_dev_at(&self.root.join(NET_DEV))
    }

    /// /proc/<pid>/net/dev: the interfaces of `pid`'s network namespace (a
    /// container's own). `Ok(None)` when the process is gone, which is normal.
    pub fn read_process_net_dev(
        &self,
        pid: u32,
    ) -> Result<Option<BTreeMap<String, NetDevStats>>, ProcError> {
        match self.read_net_dev_at(&self.root.join(pid.to_string()).join(NET_DEV)) {
            Ok(stats) => Ok(Some(stats)),
            Err(ProcError::Read { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }

    /// Whether `pid` lives in another network namespace than qosd; `None`
    /// when the process is gone.
    pub fn in_other_network_namespace(&self, pid: u32) -> Option<bool> {
        let namespace = |dir: &Path| fs::read_link(dir.join("ns/net")).ok();
        let theirs = namespace(&self.root.join(pid.to_string()))?;
        Some(namespace(&self.root.join("self")).is_none_or(|ours| ours != theirs))
    }

    fn read_net_dev_at(&self, path: &Path) -> Result<BTreeMap<String, NetDevStats>, ProcError> {
        let text = read(path)?;
        parse_net_dev(&text).map_err(|reason| ProcError::Parse {
            path: path.to_owned(),
            reason,
        })
    }
}

impl ProcFs {
    /// MemTotal and MemAvailable from /proc/meminfo.
    pub fn read_memory(&self) -> Result<HostMemory, ProcError> {
        let path = self.root.join(MEMINFO);
        let text = read(&path)?;
        parse_meminfo(&text).map_err(|reason| ProcError::Parse { path, reason })
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

fn parse_meminfo(text: &str) -> Result<HostMemory, String> {
    Ok(HostMemory {
        total: meminfo_bytes(text, "MemTotal")?,
        available: meminfo_bytes(text, "MemAvailable")?,
    })
}

/// A `MemTotal:    16318012 kB` line's value (the kernel's "kB" is KiB).
fn meminfo_bytes(text: &str, key: &str) -> Result<u64, String> {
    let value = text
        .lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
        .ok_or_else(|| format!("no {key} line"))?;
    let kibibytes = value
        .trim()
        .strip_suffix("kB")
        .and_then(|number| number.trim().parse::<u64>().ok())
        .ok_or_else(|| format!("{key} is not a number of kB: {value:?}"))?;
    Ok(kibibytes * 1024)
}

/// Two header lines, then `name: counters...` (older kernels print no
/// space after the colon, so split there, not on whitespace).
fn parse_net_dev(text: &str) -> Result<BTreeMap<String, NetDevStats>, String> {
    text.lines()
        .skip(2)
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let (name, counters) = line
                .split_once(':')
                .ok_or_else(|| format!("no `name:` in line {line:?}"))?;
            let counters: Vec<u64> = counters
                .split_whitespace()
                .map(str::parse)
                .collect::<Result<_, _>>()
                .map_err(|error| format!("{error} in line {line:?}"))?;
            if counters.len() < NET_DEV_COUNTERS {
                return Err(format!(
                    "{} counters, expected {NET_DEV_COUNTERS}, in line {line:?}",
                    counters.len()
                ));
            }
            let stats = NetDevStats {
                received_bytes: counters[NET_RX_BYTES],
                transmitted_bytes: counters[NET_TX_BYTES],
                transmitted_packets: counters[NET_TX_PACKETS],
                transmit_drops: counters[NET_TX_DROP],
            };
            Ok((name.trim().to_owned(), stats))
        })
        .collect()
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

fn parse_diskstats(text: &str) -> Result<BTreeMap<DeviceNumber, DiskStats>, String> {
    let mut disks = BTreeMap::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let place = || format!("line {} ({line:?})", index + 1);
        let (device, stats) =
            parse_disk_line(line).map_err(|reason| format!("{}: {reason}", place()))?;
        if disks.insert(device, stats).is_some() {
            return Err(format!("{}: device {device} appears twice", place()));
        }
    }
    Ok(disks)
}

/// `major minor name` and at least [`DISK_COUNTERS`] numbers; later fields
/// (discard, flush, and whatever a newer kernel adds) must be numbers too.
fn parse_disk_line(line: &str) -> Result<(DeviceNumber, DiskStats), String> {
    let mut fields = line.split_whitespace();
    let device = DeviceNumber {
        major: parse_field(fields.next(), "major")?,
        minor: parse_field(fields.next(), "minor")?,
    };
    fields.next().ok_or("no device name")?;
    let mut counters = [0u64; DISK_COUNTERS];
    let mut count = 0;
    for field in fields {
        let value = parse_field(Some(field), "counter")?;
        if let Some(slot) = counters.get_mut(count) {
            *slot = value;
        }
        count += 1;
    }
    if count < DISK_COUNTERS {
        return Err(format!(
            "{count} counters after the name, expected at least {DISK_COUNTERS}"
        ));
    }
    Ok((device, disk_stats(&counters)))
}

fn parse_field<T: std::str::FromStr>(field: Option<&str>, what: &str) -> Result<T, String> {
    let field = field.ok_or_else(|| format!("no {what}"))?;
    field
        .parse()
        .map_err(|_| format!("{what} {field:?} is not a number"))
}

fn disk_stats(counters: &[u64; DISK_COUNTERS]) -> DiskStats {
    DiskStats {
        reads: counters[DISK_READS],
        sectors_read: counters[DISK_SECTORS_READ],
        writes: counters[DISK_WRITES],
        sectors_written: counters[DISK_SECTORS_WRITTEN],
        io_ticks_ms: counters[DISK_IO_TICKS],
        time_in_queue_ms: counters[DISK_TIME_IN_QUEUE],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NET_DEV_TEXT: &str = "\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:    4200      42    0    0    0     0          0         0     4200      42    0    0    0     0       0          0
  up0: 1000 10 0 0 0 0 0 0 987654321 65432 0 7 0 0 0 0
";

    #[test]
    fn memory_comes_from_meminfo_in_bytes() {
        let meminfo = "MemTotal:        1004128 kB\nMemFree:          700000 kB\nMemAvailable:     800000 kB\n";
        let memory = parse_meminfo(meminfo).unwrap();
        assert_eq!(memory.total, 1004128 * 1024);
        assert_eq!(memory.available, 800000 * 1024);
        assert_eq!(memory.used(), 204128 * 1024);
        assert_eq!(
            parse_meminfo("MemTotal: 1 kB\nMemFree: 1 kB\n").unwrap_err(),
            "no MemAvailable line"
        );
        assert!(
            parse_meminfo("MemTotal: lots\nMemAvailable: 1 kB\n")
                .unwrap_err()
                .contains("lots")
        );
    }

    #[test]
    fn net_dev_gives_transmit_counters_by_interface() {
        let stats = parse_net_dev(NET_DEV_TEXT).unwrap();
        let up0 = stats["up0"];
        assert_eq!(
            (
                up0.transmitted_bytes,
                up0.transmitted_packets,
                up0.transmit_drops
            ),
            (987654321, 65432, 7)
        );
        assert_eq!(
            (up0.received_bytes, stats["lo"].transmitted_bytes),
            (1000, 4200)
        );
    }

    #[test]
    fn a_short_or_garbled_net_dev_line_is_an_error_naming_it() {
        let short = NET_DEV_TEXT.replace(" 0 0 0 0\n", "\n");
        assert!(parse_net_dev(&short).unwrap_err().contains("12 counters"));
        let garbled = NET_DEV_TEXT.replace("65432", "x");
        assert!(parse_net_dev(&garbled).unwrap_err().contains("up0"));
    }

    #[test]
    fn a_vanished_process_has_no_net_dev_rather_than_an_error() {
        let proc = ProcFs::at(tempfile::tempdir().unwrap().path());
        assert_eq!(proc.read_process_net_dev(4_000_000).unwrap(), None);
        assert_eq!(proc.in_other_network_namespace(4_000_000), None);
    }

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

    /// /proc/diskstats of a Debian 12 guest (Linux 6.1: 20 fields a line):
    /// loop devices, a virtio disk with partitions, a second disk, a CD-ROM.
    const DISKSTATS_6_1: &str = "   7       0 loop0 55 0 2194 17 0 0 0 0 0 48 17 0 0 0 0 0 0\n\
         7       1 loop1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n\
       254       0 vda 14932 4120 1198218 6231 52875 31245 1738520 48313 0 42120 61740 0 0 0 0 13981 7195\n\
       254       1 vda1 14731 4120 1186554 6174 52863 31245 1738520 48311 0 42064 54486 0 0 0 0 0 0\n\
       254      14 vda14 88 0 704 9 0 0 0 0 0 24 9 0 0 0 0 0 0\n\
       254      15 vda15 62 0 4876 13 1 0 1 0 0 36 13 0 0 0 0 0 0\n\
       254      16 vdb 409871 0 209853952 8211345 1203 0 9624 912 2 5120442 8212257 0 0 0 0 0 0\n\
        11       0 sr0 5 0 1 0 0 0 0 0 0 4 0 0 0 0 0 0 0\n";

    /// The same disk on a 4.9 kernel: 14 fields, no discard or flush counters.
    const DISKSTATS_4_9: &str = " 254       0 vda 100 1 800 20 50 2 400 30 1 45 55\n";

    const VDA: DeviceNumber = DeviceNumber {
        major: 254,
        minor: 0,
    };

    #[test]
    fn diskstats_of_a_6_1_kernel() {
        let (_dir, procfs) = fake_proc(&[("diskstats", DISKSTATS_6_1)]);
        let disks = procfs.read_diskstats().unwrap();
        assert_eq!(disks.len(), 8);
        assert_eq!(
            disks[&VDA],
            DiskStats {
                reads: 14932,
                sectors_read: 1_198_218,
                writes: 52875,
                sectors_written: 1_738_520,
                io_ticks_ms: 42120,
                time_in_queue_ms: 61740,
            }
        );
        let vdb = DeviceNumber {
            major: 254,
            minor: 16,
        };
        assert_eq!(disks[&vdb].bytes_read(), 209_853_952 * 512);
        assert_eq!(disks[&vdb].io_ticks_ms, 5_120_442);
        // Partitions are kept; the caller picks.
        let vda1 = DeviceNumber {
            major: 254,
            minor: 1,
        };
        assert_eq!(disks[&vda1].bytes_written(), 1_738_520 * 512);
        assert_eq!(
            disks[&DeviceNumber { major: 7, minor: 1 }],
            DiskStats::default()
        );
    }

    #[test]
    fn diskstats_of_an_old_kernel_without_discard_fields() {
        let (_dir, procfs) = fake_proc(&[("diskstats", DISKSTATS_4_9)]);
        let disks = procfs.read_diskstats().unwrap();
        assert_eq!(
            disks[&VDA],
            DiskStats {
                reads: 100,
                sectors_read: 800,
                writes: 50,
                sectors_written: 400,
                io_ticks_ms: 45,
                time_in_queue_ms: 55,
            }
        );
    }

    #[test]
    fn diskstats_garbage_names_the_file_and_line() {
        let good = "   7       0 loop0 55 0 2194 17 0 0 0 0 0 48 17\n";
        let cases = [
            ("254 0 vda 1 2 3 4 5 6 7 8 9 10\n", "10 counters"),
            (
                "254 0 vda 1 2 3 4 5 6 7 8 9 10 x\n",
                "counter \"x\" is not a number",
            ),
            ("254 0 vda 1 2 3 4 5 6 7 8 9 10 11 0 0 0 -1 0 0\n", "\"-1\""),
            ("vda 0 254 1 2 3 4 5 6 7 8 9 10 11\n", "major \"vda\""),
            ("254\n", "no minor"),
            ("254 0\n", "no device name"),
            (good, "device 7:0 appears twice"),
        ];
        for (bad, reason) in cases {
            let text = format!("{good}{bad}");
            let (_dir, procfs) = fake_proc(&[("diskstats", &text)]);
            let error = procfs.read_diskstats().unwrap_err();
            let message = error.to_string();
            assert!(matches!(error, ProcError::Parse { .. }), "{message}");
            assert!(message.contains("diskstats"), "{message}");
            assert!(message.contains("line 2 ("), "{message}");
            assert!(message.contains(reason), "{reason}: {message}");
        }
    }

    #[test]
    fn empty_diskstats_is_no_devices_and_missing_is_an_error() {
        let (_dir, procfs) = fake_proc(&[("diskstats", "")]);
        assert!(procfs.read_diskstats().unwrap().is_empty());
        let (_dir, procfs) = fake_proc(&[]);
        assert!(matches!(
            procfs.read_diskstats(),
            Err(ProcError::Read { .. })
        ));
    }

    #[test]
    fn io_pressure_has_some_and_full() {
        let psi = "some avg10=30.12 avg60=12.40 avg300=3.02 total=94123456\n\
                   full avg10=28.90 avg60=11.85 avg300=2.88 total=90011223\n";
        let (_dir, procfs) = fake_proc(&[("pressure/io", psi)]);
        let io = procfs.read_pressure(PressureResource::Io).unwrap().unwrap();
        assert_eq!(io.some.total_usec, 94_123_456);
        assert_eq!(io.full.unwrap().avg10, 28.9);
    }

    #[test]
    fn this_hosts_proc_parses() {
        let procfs = ProcFs::default();
        if procfs.root().join(STAT).exists() {
            assert!(procfs.read_cpu_stat().unwrap().online_cpus >= 1);
            procfs.read_pressure(PressureResource::Cpu).unwrap();
        }
        if procfs.root().join(DISKSTATS).exists() {
            procfs.read_diskstats().unwrap();
        }
    }
}
