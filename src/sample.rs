//! One sample of every resource's counters per tick, and rates from two
//! samples and the time between them (`Rates::between`).
//!
//! Per-tenant totals come from the tenant's own cgroup files (exact, and
//! O(tenants) per tick); procfs gives the host totals. Each part is read
//! only when some contract needs it. HTB's class counters are the one
//! exception: the network controller gets them from the netlink dump it
//! compares with its plan, so reading them here would cost a second dump.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::cgroup::cpu::{self, CpuStat};
use crate::cgroup::io::{self, DeviceNumber, IoStat};
use crate::cgroup::memory::{self, MemoryEvents, MemoryStat};
use crate::cgroup::pressure::{self, Pressure, PressureLine, PressureResource};
use crate::cgroup::{CgroupError, Group};
use crate::config::{Config, IoDimensions, Tenant};
use crate::procfs::{DiskStats, HostCpuStat, HostMemory, ProcError, ProcFs};
use tracing::debug;

/// What one tenant's cgroup said at one instant.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TenantSample {
    pub cpu: CpuStat,
    /// `None` where the kernel keeps no PSI (booted with psi=0, or
    /// `cgroup.pressure` off): usage is still controlled without it.
    pub cpu_pressure: Option<Pressure>,
    /// Per device; empty for tenants without disk contracts (not read).
    pub io: BTreeMap<DeviceNumber, IoStat>,
    pub io_pressure: Option<Pressure>,
    /// Only for tenants with a memory contract, and not in the probe.
    pub memory: Option<MemorySample>,
    /// Bytes sent by the interfaces of the tenant's own network namespace;
    /// only for tenants with a veth, and not in the probe.
    pub netns_sent_bytes: Option<u64>,
}

/// A tenant's memory files at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct MemorySample {
    pub current: u64,
    pub stat: MemoryStat,
    pub events: MemoryEvents,
    pub pressure: Pressure,
}

/// Everything read in one tick.
#[derive(Debug, Clone)]
pub struct Sample {
    pub taken: Instant,
    pub host_cpu: HostCpuStat,
    pub host_cpu_pressure: Option<Pressure>,
    /// /proc/diskstats; empty when no disk is declared (not read).
    pub disks: BTreeMap<DeviceNumber, DiskStats>,
    /// /proc/meminfo, when some tenant has a memory contract.
    pub host_memory: Option<HostMemory>,
    /// Bytes each interface sent (/proc/net/dev), when links are declared.
    pub links: BTreeMap<String, u64>,
    /// Tenants whose group could be read, by name.
    pub tenants: BTreeMap<String, TenantSample>,
}

/// A tenant to read, and which of its files are wanted besides CPU.
#[derive(Debug, Clone)]
pub struct Wanted {
    pub name: String,
    pub group: Group,
    pub io: bool,
    pub memory: bool,
    pub netns: bool,
}

impl Wanted {
    /// What `tenant`'s contracts need read from `group`; the probe reads
    /// only what shows usage (CPU and I/O).
    pub fn for_tenant(tenant: &Tenant, group: &Group, probe: bool) -> Self {
        Wanted {
            name: tenant.name.clone(),
            group: group.clone(),
            io: !tenant.disk.is_empty(),
            memory: !probe && tenant.memory.is_some(),
            netns: !probe && tenant.net.iter().any(|c| c.veth.is_some()),
        }
    }
}

/// Which host-wide files are wanted besides /proc/stat.
#[derive(Debug, Clone, Copy, Default)]
pub struct HostWanted {
    pub disks: bool,
    pub memory: bool,
    pub links: bool,
}

impl HostWanted {
    /// What the contracts of `config` need read of the host; the probe
    /// reads only what shows usage.
    pub fn for_config(config: &Config, probe: bool) -> Self {
        HostWanted {
            disks: !config.host.disks.is_empty(),
            memory: !probe && config.tenants.iter().any(|t| t.memory.is_some()),
            links: !probe && !config.host.links.is_empty(),
        }
    }
}

/// A tenant whose group could not be read this tick.
#[derive(Debug)]
pub struct Unreadable {
    pub tenant: String,
    pub error: CgroupError,
}

/// Reads the host and tenant counters. A tenant whose group fails to read is
/// reported in the second value and left out of the snapshot, so one bad
/// group never stops the others.
pub fn take(
    proc: &ProcFs,
    tenants: &[Wanted],
    host: HostWanted,
) -> Result<(Sample, Vec<Unreadable>), ProcError> {
    let host_cpu = proc.read_cpu_stat()?;
    let host_cpu_pressure = optional_pressure(
        proc.read_pressure(PressureResource::Cpu)
            .map_err(|e| e.to_string()),
    )
    .flatten();
    let mut unreadable = Vec::new();
    let mut samples = BTreeMap::new();
    for wanted in tenants {
        match read_tenant(proc, wanted) {
            Ok(sample) => {
                samples.insert(wanted.name.clone(), sample);
            }
            Err(error) => unreadable.push(Unreadable {
                tenant: wanted.name.clone(),
                error,
            }),
        }
    }
    let disks = if host.disks {
        proc.read_diskstats()?
    } else {
        BTreeMap::new()
    };
    let sample = Sample {
        taken: Instant::now(),
        host_cpu,
        host_cpu_pressure,
        disks,
        host_memory: host.memory.then(|| read_host_memory(proc)).flatten(),
        links: if host.links {
            read_links(proc)
        } else {
            BTreeMap::new()
        },
        tenants: samples,
    };
    Ok((sample, unreadable))
}

/// Memory is reported on, not shared by the tick: a host without
/// /proc/meminfo still has its contracts held.
fn read_host_memory(proc: &ProcFs) -> Option<HostMemory> {
    proc.read_memory()
        .map_err(|error| debug!("no host memory reading: {error}"))
        .ok()
}

/// Links' counters are reported on; HTB holds the contracts without them.
fn read_links(proc: &ProcFs) -> BTreeMap<String, u64> {
    match proc.read_net_dev() {
        Ok(stats) => stats
            .into_iter()
            .map(|(name, stats)| (name, stats.transmitted_bytes))
            .collect(),
        Err(error) => {
            tracing::warn!("cannot read the links' counters: {error}");
            BTreeMap::new()
        }
    }
}

fn read_tenant(proc: &ProcFs, wanted: &Wanted) -> Result<TenantSample, CgroupError> {
    let group = &wanted.group;
    let read_pressure =
        |resource| optional_pressure(pressure::read(group, resource).map_err(|e| e.to_string()));
    let mut sample = TenantSample {
        cpu: cpu::read_stat(group)?,
        cpu_pressure: read_pressure(PressureResource::Cpu),
        ..TenantSample::default()
    };
    if wanted.io {
        sample.io = io::read_stat(group)?;
        sample.io_pressure = read_pressure(PressureResource::Io);
    }
    if wanted.memory {
        sample.memory = Some(read_memory(group)?);
    }
    if wanted.netns {
        sample.netns_sent_bytes = namespace_sent_bytes(proc, group);
    }
    Ok(sample)
}

fn read_memory(group: &Group) -> Result<MemorySample, CgroupError> {
    Ok(MemorySample {
        current: memory::read_current(group)?,
        stat: memory::read_stat(group)?,
        events: memory::read_events(group)?,
        pressure: pressure::read(group, PressureResource::Memory)?,
    })
}

/// Bytes sent by every interface but loopback in the network namespace of
/// the group's first process; `None` without a process in another namespace.
fn namespace_sent_bytes(proc: &ProcFs, group: &Group) -> Option<u64> {
    let pid = group.procs().ok()?.into_iter().next()?;
    if !proc.in_other_network_namespace(pid)? {
        return None;
    }
    match proc.read_process_net_dev(pid) {
        Ok(Some(stats)) => Some(
            stats
                .iter()
                .filter(|(name, _)| *name != "lo")
                .map(|(_, s)| s.transmitted_bytes)
                .sum(),
        ),
        Ok(None) => None,
        Err(error) => {
            debug!("cannot read the network counters of process {pid}: {error}");
            None
        }
    }
}

/// Pressure is for reporting; a kernel without it must not stop control.
fn optional_pressure<T>(read: Result<T, String>) -> Option<T> {
    read.map_err(|error| debug!("no pressure reading: {error}"))
        .ok()
}

/// Per-tenant rates over one tick.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TenantRates {
    /// CPU used, in cores.
    pub cpu_cores: f64,
    /// CPU time consumed during the tick.
    pub cpu_seconds: f64,
    /// Time throttled by cpu.max during the tick.
    pub cpu_throttled_seconds: f64,
    /// Time some task waited for a CPU during the tick.
    pub cpu_stall: Stall,
    /// Per device the tenant did I/O on, in both snapshots.
    pub io: BTreeMap<DeviceNumber, IoRates>,
    pub io_stall: Stall,
}

/// Stall time during a tick, from PSI: "some" (at least one task waited)
/// and "full" (all did). Zero where the kernel keeps no pressure.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Stall {
    pub some_seconds: f64,
    pub full_seconds: f64,
}

impl Stall {
    fn between(before: Option<Pressure>, now: Option<Pressure>) -> Stall {
        Stall {
            some_seconds: stall_delta(some(before), some(now)),
            full_seconds: stall_delta(full(before), full(now)),
        }
    }

    /// Share of `elapsed` in which some task waited.
    pub fn fraction(&self, elapsed: Duration) -> f64 {
        ratio(self.some_seconds, elapsed.as_secs_f64())
    }
}

/// One device's I/O over the tick: what moved, and per second.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct IoRates {
    /// Bytes and IOs done during the tick, per dimension.
    pub done: IoDimensions<f64>,
    /// The same per second: bytes/s and IOs/s.
    pub per_second: IoDimensions<f64>,
}

/// Rates between two snapshots.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rates {
    pub elapsed: Duration,
    /// Host CPUs busy, in cores (all processes, tenants or not).
    pub host_cpu_busy_cores: f64,
    /// Host-wide CPU stall time during the tick (/proc/pressure/cpu).
    pub host_cpu_stall: Stall,
    /// Per device in both snapshots, from /proc/diskstats: bytes/s and IOs/s.
    pub devices: BTreeMap<DeviceNumber, IoDimensions<f64>>,
    /// Only tenants present in both snapshots.
    pub tenants: BTreeMap<String, TenantRates>,
}

impl Rates {
    /// Rates from `earlier` to `later`. A counter that went backwards (the
    /// group was recreated) counts as zero for that tick rather than as a
    /// huge number.
    pub fn between(earlier: &Sample, later: &Sample) -> Rates {
        let elapsed = later.taken.saturating_duration_since(earlier.taken);
        let seconds = elapsed.as_secs_f64();
        let tenants = later
            .tenants
            .iter()
            .filter_map(|(name, now)| {
                let before = earlier.tenants.get(name)?;
                Some((name.clone(), tenant_rates(before, now, seconds)))
            })
            .collect();
        Rates {
            elapsed,
            host_cpu_busy_cores: host_busy_cores(&earlier.host_cpu, &later.host_cpu),
            host_cpu_stall: Stall::between(earlier.host_cpu_pressure, later.host_cpu_pressure),
            devices: device_rates(&earlier.disks, &later.disks, seconds),
            tenants,
        }
    }
}

/// diskstats' sectors, in bytes.
const SECTOR_BYTES: f64 = crate::procfs::SECTOR_BYTES as f64;

fn device_rates(
    before: &BTreeMap<DeviceNumber, DiskStats>,
    now: &BTreeMap<DeviceNumber, DiskStats>,
    seconds: f64,
) -> BTreeMap<DeviceNumber, IoDimensions<f64>> {
    let per_second = |before: u64, now: u64| ratio(now.saturating_sub(before) as f64, seconds);
    now.iter()
        .filter_map(|(device, now)| {
            let before = before.get(device)?;
            let rates = IoDimensions {
                read_bps: per_second(before.sectors_read, now.sectors_read) * SECTOR_BYTES,
                write_bps: per_second(before.sectors_written, now.sectors_written) * SECTOR_BYTES,
                read_iops: per_second(before.reads, now.reads),
                write_iops: per_second(before.writes, now.writes),
            };
            Some((*device, rates))
        })
        .collect()
}

fn io_rates(
    before: &BTreeMap<DeviceNumber, IoStat>,
    now: &BTreeMap<DeviceNumber, IoStat>,
    seconds: f64,
) -> BTreeMap<DeviceNumber, IoRates> {
    now.iter()
        .map(|(device, now)| {
            // A device first seen this tick started from zero.
            let before = before.get(device).copied().unwrap_or_default();
            let delta = |before: u64, now: u64| now.saturating_sub(before) as f64;
            let done = IoDimensions {
                read_bps: delta(before.rbytes, now.rbytes),
                write_bps: delta(before.wbytes, now.wbytes),
                read_iops: delta(before.rios, now.rios),
                write_iops: delta(before.wios, now.wios),
            };
            let per_second = IoDimensions {
                read_bps: ratio(done.read_bps, seconds),
                write_bps: ratio(done.write_bps, seconds),
                read_iops: ratio(done.read_iops, seconds),
                write_iops: ratio(done.write_iops, seconds),
            };
            (*device, IoRates { done, per_second })
        })
        .collect()
}

fn tenant_rates(before: &TenantSample, now: &TenantSample, seconds: f64) -> TenantRates {
    let cpu_seconds = usec_delta(before.cpu.usage_usec, now.cpu.usage_usec);
    TenantRates {
        cpu_cores: ratio(cpu_seconds, seconds),
        cpu_seconds,
        cpu_throttled_seconds: usec_delta(before.cpu.throttled_usec, now.cpu.throttled_usec),
        cpu_stall: Stall::between(before.cpu_pressure, now.cpu_pressure),
        io: io_rates(&before.io, &now.io, seconds),
        io_stall: Stall::between(before.io_pressure, now.io_pressure),
    }
}

/// Idle CPUs, in cores, between two readings of /proc/stat (the wake-ups'
/// "did someone go quiet" between a tick and now).
pub fn host_idle_cores(before: &HostCpuStat, now: &HostCpuStat) -> f64 {
    f64::from(now.online_cpus) - host_busy_cores(before, now)
}

/// Busy share of all CPU ticks, times the CPUs online: independent of USER_HZ.
fn host_busy_cores(before: &HostCpuStat, now: &HostCpuStat) -> f64 {
    let busy = now.times.busy_ticks.saturating_sub(before.times.busy_ticks) as f64;
    let total = now
        .times
        .total_ticks
        .saturating_sub(before.times.total_ticks) as f64;
    ratio(busy, total) * f64::from(now.online_cpus)
}

fn some(pressure: Option<Pressure>) -> Option<PressureLine> {
    pressure.map(|p| p.some)
}

fn full(pressure: Option<Pressure>) -> Option<PressureLine> {
    pressure.and_then(|p| p.full)
}

fn stall_delta(before: Option<PressureLine>, now: Option<PressureLine>) -> f64 {
    match (before, now) {
        (Some(before), Some(now)) => usec_delta(before.total_usec, now.total_usec),
        _ => 0.0,
    }
}

fn usec_delta(before: u64, now: u64) -> f64 {
    now.saturating_sub(before) as f64 / 1e6
}

fn ratio(part: f64, whole: f64) -> f64 {
    if whole > 0.0 { part / whole } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::HostCpuTimes;

    fn snapshot(at: Instant, busy: u64, total: u64, tenants: &[(&str, u64, u64)]) -> Sample {
        Sample {
            taken: at,
            host_cpu: HostCpuStat {
                times: HostCpuTimes {
                    busy_ticks: busy,
                    total_ticks: total,
                },
                online_cpus: 2,
            },
            host_cpu_pressure: None,
            disks: BTreeMap::new(),
            host_memory: None,
            links: BTreeMap::new(),
            tenants: tenants
                .iter()
                .map(|&(name, usage_usec, stall_usec)| {
                    let mut sample = TenantSample::default();
                    sample.cpu.usage_usec = usage_usec;
                    let mut pressure = Pressure::default();
                    pressure.some.total_usec = stall_usec;
                    sample.cpu_pressure = Some(pressure);
                    (name.to_string(), sample)
                })
                .collect(),
        }
    }

    #[test]
    fn rates_come_from_two_snapshots_and_the_elapsed_time() {
        let start = Instant::now();
        let earlier = snapshot(start, 100, 400, &[("web", 1_000_000, 0), ("gone", 5, 0)]);
        let later = snapshot(
            start + Duration::from_millis(500),
            175,
            500,
            &[("web", 1_750_000, 250_000), ("new", 9, 0)],
        );
        let rates = Rates::between(&earlier, &later);
        let web = &rates.tenants["web"];
        assert!((web.cpu_cores - 1.5).abs() < 1e-9);
        assert!((web.cpu_stall.fraction(rates.elapsed) - 0.5).abs() < 1e-9);
        assert!((rates.host_cpu_busy_cores - 1.5).abs() < 1e-9);
        assert_eq!(rates.tenants.len(), 1, "only tenants seen twice have rates");
    }

    #[test]
    fn io_rates_per_device_and_dimension() {
        let start = Instant::now();
        let mut earlier = snapshot(start, 0, 0, &[("db", 0, 0)]);
        let mut later = snapshot(start + Duration::from_millis(500), 0, 0, &[("db", 0, 0)]);
        let vda = DeviceNumber {
            major: 254,
            minor: 0,
        };
        let stat = |rbytes, rios| IoStat {
            rbytes,
            wbytes: 0,
            rios,
            wios: 0,
        };
        let db_before = earlier.tenants.get_mut("db").unwrap();
        db_before.io.insert(vda, stat(1_000_000, 10));
        let db_after = later.tenants.get_mut("db").unwrap();
        db_after.io.insert(vda, stat(11_000_000, 170));
        let disk = |sectors_read, reads| DiskStats {
            reads,
            sectors_read,
            ..DiskStats::default()
        };
        earlier.disks.insert(vda, disk(0, 0));
        later.disks.insert(vda, disk(40_000, 300));
        let rates = Rates::between(&earlier, &later);
        let io = rates.tenants["db"].io[&vda];
        assert_eq!(io.done.read_bps, 10_000_000.0);
        assert!((io.per_second.read_bps - 20_000_000.0).abs() < 1.0);
        assert!((io.per_second.read_iops - 320.0).abs() < 1e-6);
        let device = rates.devices[&vda];
        assert!((device.read_bps - 40_000.0 * 512.0 * 2.0).abs() < 1.0);
        assert!((device.read_iops - 600.0).abs() < 1e-6);
    }

    #[test]
    fn a_recreated_group_counts_zero_not_a_wrapped_counter() {
        let start = Instant::now();
        let earlier = snapshot(start, 0, 0, &[("web", 9_000_000, 0)]);
        let later = snapshot(start + Duration::from_secs(1), 0, 0, &[("web", 10, 0)]);
        assert_eq!(
            Rates::between(&earlier, &later).tenants["web"].cpu_cores,
            0.0
        );
    }
}
