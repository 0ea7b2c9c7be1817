//! Makes the kernel hold the desired limits, writing only the differences.
//!
//! Each knob is compared with what the kernel holds now. A knob that differs
//! from what qosd itself applied last was changed behind its back (drift): it
//! is put back and counted.

use std::collections::HashMap;
use std::fmt::Display;
use std::path::PathBuf;

use tracing::{info, warn};

use crate::cgroup::cpu::{self, CpuMax};
use crate::cgroup::io::{self, DeviceNumber, IoMax, IoWeightMode};
use crate::cgroup::memory::{self, MemoryKnob, MemoryLimit};
use crate::cgroup::{Group, Result};

/// The CPU knobs qosd sets on one tenant's group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuLimits {
    pub weight: u32,
    pub max: CpuMax,
    /// `cpu.max.burst`: unused quota a group may save for a later period,
    /// in microseconds. Left alone on kernels without the file.
    pub burst_us: u64,
}

/// What one call wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Writes {
    pub writes: u64,
    pub drift_corrections: u64,
}

impl std::ops::AddAssign for Writes {
    fn add_assign(&mut self, other: Writes) {
        self.writes += other.writes;
        self.drift_corrections += other.drift_corrections;
    }
}

/// The kernel's values are read back (to catch drift) on every this many
/// ticks; between them, a value equal to what was applied last is taken as
/// still in force. Reading back every tick was a third of a tick's cost, and
/// drift is rare: it is put back within this many ticks.
pub const DRIFT_CHECK_TICKS: u64 = 3;

/// Remembers what it applied to each group, to tell drift from first writes.
#[derive(Debug, Default)]
pub struct Enforcer {
    dry_run: bool,
    /// Counts `begin_tick` calls, for the drift checks.
    ticks: u64,
    /// Writes to `cpu.max` and `io.max` since `begin_tick`: the knobs that
    /// leave a CPU or a device idle (weights never do).
    caps_written: u64,
    applied_cpu: HashMap<PathBuf, CpuLimits>,
    applied_io: HashMap<PathBuf, HashMap<DeviceNumber, IoMax>>,
    applied_io_weight: HashMap<PathBuf, u32>,
    applied_memory: HashMap<PathBuf, MemoryLimits>,
}

/// The memory knobs qosd sets on one tenant's group, by knob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryLimits {
    pub min: MemoryLimit,
    pub low: MemoryLimit,
    pub high: MemoryLimit,
    pub max: MemoryLimit,
}

impl MemoryLimits {
    pub fn get(&self, knob: MemoryKnob) -> MemoryLimit {
        match knob {
            MemoryKnob::Min => self.min,
            MemoryKnob::Low => self.low,
            MemoryKnob::High => self.high,
            MemoryKnob::Max => self.max,
        }
    }
}

impl Enforcer {
    /// With `dry_run`, reads the kernel and logs what it would write, but writes nothing.
    pub fn new(dry_run: bool) -> Self {
        Enforcer {
            dry_run,
            ..Enforcer::default()
        }
    }

    /// Starts a tick: on every `DRIFT_CHECK_TICKS`th, values are read back.
    pub fn begin_tick(&mut self) {
        self.ticks += 1;
        self.caps_written = 0;
    }

    /// Whether this tick wrote a cap (`cpu.max`, `io.max`): then the host's
    /// idle time before it says nothing of the caps in force.
    pub fn wrote_caps(&self) -> bool {
        self.caps_written > 0
    }

    /// Whether `desired` may be taken as in force without reading the kernel.
    fn trusted<T: PartialEq>(&self, last: Option<T>, desired: T) -> bool {
        !self.ticks.is_multiple_of(DRIFT_CHECK_TICKS) && last == Some(desired)
    }

    pub fn apply_cpu(&mut self, group: &Group, desired: CpuLimits) -> Result<Writes> {
        let last = self.applied_cpu.get(group.path()).copied();
        if self.trusted(last, desired) {
            return Ok(Writes::default());
        }
        let mut done = Writes::default();
        done += self.reconcile(
            (group, "cpu.weight"),
            cpu::read_weight(group)?,
            desired.weight,
            last.map(|l| l.weight),
            |weight| cpu::write_weight(group, weight),
        )?;
        let burst = cpu::read_max_burst(group)?;
        // The kernel refuses a quota below the burst in force, and a burst
        // above the quota: a smaller burst goes first, a larger one last.
        let burst_first = burst.is_some_and(|now| desired.burst_us < now);
        if burst_first {
            done += self.reconcile_burst(group, burst, desired, last)?;
        }
        let max = self.reconcile(
            (group, "cpu.max"),
            cpu::read_max(group)?,
            desired.max,
            last.map(|l| l.max),
            |max| cpu::write_max(group, max),
        )?;
        self.caps_written += max.writes;
        done += max;
        if !burst_first {
            done += self.reconcile_burst(group, burst, desired, last)?;
        }
        self.applied_cpu.insert(group.path().to_path_buf(), desired);
        Ok(done)
    }

    /// `cpu.max.burst`, where the kernel has it (`current`).
    fn reconcile_burst(
        &self,
        group: &Group,
        current: Option<u64>,
        desired: CpuLimits,
        last: Option<CpuLimits>,
    ) -> Result<Writes> {
        let Some(current) = current else {
            return Ok(Writes::default());
        };
        self.reconcile(
            (group, "cpu.max.burst"),
            current,
            desired.burst_us,
            last.map(|l| l.burst_us),
            |burst| cpu::write_max_burst(group, burst),
        )
    }

    /// One device's `io.max` line. A device absent from `io.max` is unlimited.
    pub fn apply_io(
        &mut self,
        group: &Group,
        device: DeviceNumber,
        desired: IoMax,
    ) -> Result<Writes> {
        let last = self
            .applied_io
            .get(group.path())
            .and_then(|devices| devices.get(&device))
            .copied();
        if self.trusted(last, desired) {
            return Ok(Writes::default());
        }
        let current = io::read_max(group)?
            .get(&device)
            .copied()
            .unwrap_or(IoMax::UNLIMITED);
        let line = |max| IoMaxLine { device, max };
        let done = self.reconcile(
            (group, "io.max"),
            line(current),
            line(desired),
            last.map(line),
            |line| io::write_max(group, line.device, line.max),
        )?;
        self.caps_written += done.writes;
        if last != Some(desired) {
            self.applied_io
                .entry(group.path().to_path_buf())
                .or_default()
                .insert(device, desired);
        }
        Ok(done)
    }

    /// The group's default io weight, where the device's scheduler or
    /// iocost takes weights (`mode`); nothing to do otherwise.
    pub fn apply_io_weight(
        &mut self,
        group: &Group,
        mode: IoWeightMode,
        desired: u32,
    ) -> Result<Writes> {
        let last = self.applied_io_weight.get(group.path()).copied();
        if self.trusted(last, desired) {
            return Ok(Writes::default());
        }
        let (Some(file), Some(current)) = (mode.weight_file(), io::read_mode_weight(group, mode)?)
        else {
            return Ok(Writes::default());
        };
        let done = self.reconcile((group, file), current, desired, last, |weight| {
            io::write_mode_weight(group, mode, weight)
        })?;
        self.applied_io_weight
            .insert(group.path().to_path_buf(), desired);
        Ok(done)
    }

    /// memory.min, memory.low, memory.high and memory.max.
    pub fn apply_memory(&mut self, group: &Group, desired: MemoryLimits) -> Result<Writes> {
        let last = self.applied_memory.get(group.path()).copied();
        if self.trusted(last, desired) {
            return Ok(Writes::default());
        }
        let mut done = Writes::default();
        for knob in MemoryKnob::ALL {
            done += self.reconcile(
                (group, knob.file()),
                memory::read_limit(group, knob)?,
                desired.get(knob),
                last.map(|l| l.get(knob)),
                |limit| memory::write_limit(group, knob, limit),
            )?;
        }
        self.applied_memory
            .insert(group.path().to_path_buf(), desired);
        Ok(done)
    }

    /// Forgets what was applied to a group that vanished: if it comes back,
    /// its kernel defaults are a first write, not drift.
    /// The CPU knobs last applied to `group` (what the kernel holds, unless
    /// changed behind qosd's back since).
    pub fn applied_cpu(&self, group: &Group) -> Option<CpuLimits> {
        self.applied_cpu.get(group.path()).copied()
    }

    /// The `io.max` line last applied to `group` for `device`.
    pub fn applied_io(&self, group: &Group, device: DeviceNumber) -> Option<IoMax> {
        self.applied_io.get(group.path())?.get(&device).copied()
    }

    pub fn forget(&mut self, group: &Group) {
        self.applied_cpu.remove(group.path());
        self.applied_io.remove(group.path());
        self.applied_io_weight.remove(group.path());
        self.applied_memory.remove(group.path());
    }

    /// Forgets a device that vanished: the kernel dropped its io.max lines.
    pub fn forget_device(&mut self, device: DeviceNumber) {
        for devices in self.applied_io.values_mut() {
            devices.remove(&device);
        }
    }

    /// Drops what we know of groups that are no longer tenants.
    pub fn retain(&mut self, groups: &[&Group]) {
        let kept = |path: &PathBuf| groups.iter().any(|g| g.path() == path.as_path());
        self.applied_cpu.retain(|path, _| kept(path));
        self.applied_io.retain(|path, _| kept(path));
        self.applied_io_weight.retain(|path, _| kept(path));
        self.applied_memory.retain(|path, _| kept(path));
    }

    /// Writes `desired` if the kernel holds something else; a value that
    /// differs from what we applied last was changed behind our back.
    fn reconcile<T: Copy + PartialEq + Display>(
        &self,
        (group, file): (&Group, &str),
        current: T,
        desired: T,
        last_applied: Option<T>,
        write: impl FnOnce(T) -> Result<()>,
    ) -> Result<Writes> {
        if current == desired {
            return Ok(Writes::default());
        }
        // Built only when something is to be written: most ticks write nothing.
        let path = group.path().join(file);
        if self.dry_run {
            if last_applied != Some(desired) {
                info!(
                    "dry run: would write {desired} to {} (now {current})",
                    path.display()
                );
            }
            return Ok(Writes::default());
        }
        let drifted = last_applied.is_some_and(|last| last == desired);
        if drifted {
            warn!(
                "drift: {} was changed behind qosd's back to {current}; restoring {desired}",
                path.display()
            );
        }
        write(desired)?;
        Ok(Writes {
            writes: 1,
            drift_corrections: u64::from(drifted),
        })
    }
}

/// One device's line of `io.max`, as the kernel prints it (for logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct IoMaxLine {
    device: DeviceNumber,
    max: IoMax,
}

impl Display for IoMaxLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let value = |v: Option<u64>| v.map_or("max".to_string(), |v| v.to_string());
        write!(
            f,
            "\"{} rbps={} wbps={} riops={} wiops={}\"",
            self.device,
            value(self.max.rbps),
            value(self.max.wbps),
            value(self.max.riops),
            value(self.max.wiops)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::Hierarchy;
    use std::path::Path;

    fn writes(writes: u64, drift_corrections: u64) -> Writes {
        Writes {
            writes,
            drift_corrections,
        }
    }

    fn fake_group() -> (tempfile::TempDir, Group) {
        let root = tempfile::tempdir().unwrap();
        let group = Hierarchy::at(root.path()).group(Path::new("web"));
        std::fs::create_dir(group.path()).unwrap();
        std::fs::write(group.path().join("cpu.weight"), "100\n").unwrap();
        std::fs::write(group.path().join("cpu.max"), "max 100000\n").unwrap();
        (root, group)
    }

    fn limits(weight: u32, quota: Option<u64>) -> CpuLimits {
        CpuLimits {
            weight,
            max: CpuMax {
                quota_us: quota,
                period_us: 100_000,
            },
            burst_us: 0,
        }
    }

    /// Applies weight and quota to `group` as the agent would; panics on
    /// an error, which no test here but the last expects.
    fn apply(enforcer: &mut Enforcer, group: &Group, weight: u32, quota: Option<u64>) -> Writes {
        enforcer.apply_cpu(group, limits(weight, quota)).unwrap()
    }

    /// One write of a 50 ms quota made `done` count `expected` and left it
    /// in cpu.max.
    fn assert_half_a_core(group: &Group, done: Writes, expected: Writes) {
        assert_eq!(done, expected);
        assert_eq!(read(group, "cpu.max"), "50000 100000");
    }

    /// An enforcer (`dry_run` or not) and the fake group it writes.
    fn enforcer_over_fake_group(dry_run: bool) -> (tempfile::TempDir, Group, Enforcer) {
        let (root, group) = fake_group();
        (root, group, Enforcer::new(dry_run))
    }

    fn read(group: &Group, file: &str) -> String {
        std::fs::read_to_string(group.path().join(file))
            .unwrap()
            .trim()
            .to_string()
    }

    #[test]
    fn a_weight_is_not_a_cap() {
        let (_root, group, mut enforcer) = enforcer_over_fake_group(false);
        enforcer.begin_tick();
        apply(&mut enforcer, &group, 300, None);
        assert!(!enforcer.wrote_caps(), "only cpu.weight was written");
        apply(&mut enforcer, &group, 300, Some(50_000));
        assert!(enforcer.wrote_caps());
        enforcer.begin_tick();
        assert!(!enforcer.wrote_caps(), "counted per tick");
    }

    #[test]
    fn writes_the_burst_where_the_kernel_has_it() {
        let (_root, group, mut enforcer) = enforcer_over_fake_group(false);
        std::fs::write(group.path().join("cpu.max.burst"), "0\n").unwrap();
        let desired = CpuLimits {
            burst_us: 50_000,
            ..limits(100, Some(50_000))
        };
        assert_eq!(enforcer.apply_cpu(&group, desired).unwrap(), writes(2, 0));
        assert_eq!(read(&group, "cpu.max.burst"), "50000");
        let lifted = limits(100, None);
        assert_eq!(enforcer.apply_cpu(&group, lifted).unwrap(), writes(2, 0));
        assert_eq!(read(&group, "cpu.max.burst"), "0");
    }

    #[test]
    fn writes_only_what_changed() {
        let (_root, group, mut enforcer) = enforcer_over_fake_group(false);
        let first = apply(&mut enforcer, &group, 150, Some(150_000));
        assert_eq!(first, writes(2, 0));
        assert_eq!(read(&group, "cpu.weight"), "150");
        assert_eq!(read(&group, "cpu.max"), "150000 100000");

        let again = apply(&mut enforcer, &group, 150, Some(150_000));
        assert_eq!(again, Writes::default());

        let tighter = apply(&mut enforcer, &group, 150, Some(50_000));
        assert_half_a_core(&group, tighter, writes(1, 0));
    }

    #[test]
    fn a_value_changed_behind_our_back_is_restored_and_counted() {
        let (_root, group, mut enforcer) = enforcer_over_fake_group(false);
        apply(&mut enforcer, &group, 50, Some(50_000));
        std::fs::write(group.path().join("cpu.max"), "max 100000\n").unwrap();
        let fixed = apply(&mut enforcer, &group, 50, Some(50_000));
        assert_half_a_core(&group, fixed, writes(1, 1));
    }

    #[test]
    fn dry_run_writes_nothing() {
        let (_root, group, mut enforcer) = enforcer_over_fake_group(true);
        let done = apply(&mut enforcer, &group, 150, Some(50_000));
        assert_eq!(done, Writes::default());
        assert_eq!(read(&group, "cpu.weight"), "100");
        assert_eq!(read(&group, "cpu.max"), "max 100000");
    }

    #[test]
    fn a_vanished_group_is_an_error_the_caller_can_recognise() {
        let (_root, group) = fake_group();
        std::fs::remove_dir_all(group.path()).unwrap();
        let error = Enforcer::new(false)
            .apply_cpu(&group, limits(1, None))
            .unwrap_err();
        assert!(error.is_vanished(), "{error}");
    }
}
