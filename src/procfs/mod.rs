//! Host-level readers rooted at a path (default `/proc`): /proc/stat and
//! /proc/pressure/*. Per-process readers come with process classification.
//!
//! INTERFACE STUB — to be implemented (keep these public names and signatures).

use std::path::PathBuf;

use crate::cgroup::pressure::{Pressure, PressureResource};

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

    pub fn read_cpu_stat(&self) -> Result<HostCpuStat, ProcError> {
        let _ = &self.root;
        todo!()
    }

    /// `/proc/pressure/<resource>`; `Ok(None)` when the kernel has no PSI.
    pub fn read_pressure(&self, resource: PressureResource) -> Result<Option<Pressure>, ProcError> {
        let _ = resource;
        todo!()
    }
}

impl Default for ProcFs {
    fn default() -> Self {
        ProcFs::at("/proc")
    }
}
