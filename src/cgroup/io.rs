//! The io controller: io.stat, io.max, io.weight (and io.pressure through
//! `pressure`). INTERFACE STUB — to be implemented; keep these names.

use std::collections::BTreeMap;

use super::{Group, Result};

/// A block device's number (`MAJ:MIN`), as cgroup files name devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceNumber {
    pub major: u32,
    pub minor: u32,
}

impl std::fmt::Display for DeviceNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.major, self.minor)
    }
}

/// Cumulative counters of one device in `io.stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IoStat {
    pub rbytes: u64,
    pub wbytes: u64,
    pub rios: u64,
    pub wios: u64,
}

/// One device's `io.max` line; `None` is "max" (no limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IoMax {
    pub rbps: Option<u64>,
    pub wbps: Option<u64>,
    pub riops: Option<u64>,
    pub wiops: Option<u64>,
}

impl IoMax {
    pub const UNLIMITED: IoMax = IoMax {
        rbps: None,
        wbps: None,
        riops: None,
        wiops: None,
    };
}

/// Per device; devices the group never did I/O on are absent.
pub fn read_stat(group: &Group) -> Result<BTreeMap<DeviceNumber, IoStat>> {
    let _ = group;
    todo!()
}

/// Per device; a device without limits is absent (it is unlimited).
pub fn read_max(group: &Group) -> Result<BTreeMap<DeviceNumber, IoMax>> {
    let _ = group;
    todo!()
}

/// Writes one device's line, `MAJ:MIN rbps=... wbps=... riops=... wiops=...`,
/// with `max` for `None`.
pub fn write_max(group: &Group, device: DeviceNumber, max: IoMax) -> Result<()> {
    let _ = (group, device, max);
    todo!()
}
