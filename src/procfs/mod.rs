//! Host-level readers rooted at a path (default `/proc`): /proc/stat,
//! /proc/diskstats, /proc/meminfo, /proc/net/dev and /proc/pressure/*, one
//! file each. Per-process readers come with process classification.
//!
//! qosd reads each file itself (under any root, so tests point it at a fake
//! tree) and hands the text of stat, diskstats, meminfo and net/dev to
//! `procfs-core`'s parsers, then keeps what the callers use. PSI and the
//! per-process files keep their own parsers: procfs-core's PSI parser fails
//! without a `full` line (kernels before 5.13), and its /proc/PID/status
//! parser takes about 15 µs a file against 1–2 µs for ours
//! (`benches/status_parse.rs`) and has no `Kthread:` field (docs/design.md,
//! "Dependencies").

use std::fs;
use std::path::{Path, PathBuf};

mod diskstats;
mod meminfo;
mod net_dev;
mod pid_stat;
mod pressure;
pub mod process;
mod stat;

pub use diskstats::{DiskStats, SECTOR_BYTES};
pub use meminfo::HostMemory;
pub use net_dev::NetDevStats;
pub(crate) use pid_stat::{STIME, UTIME, parse_stat as parse_pid_stat};
pub use process::{ProcessFields, ProcessInfo};
pub use stat::{HostCpuStat, HostCpuTimes};

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

    /// Reads the file `relative` to the root and parses it; a parse error
    /// names the file.
    fn read_parsed<T>(
        &self,
        relative: &str,
        parse: fn(&str) -> Result<T, String>,
    ) -> Result<T, ProcError> {
        read_parsed(&self.root.join(relative), parse)
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

fn read_parsed<T>(path: &Path, parse: fn(&str) -> Result<T, String>) -> Result<T, ProcError> {
    let text = read(path)?;
    parse(&text).map_err(|reason| ProcError::Parse {
        path: path.to_owned(),
        reason,
    })
}

/// What procfs-core said of a file it could not parse. It reports a
/// malformed file as an internal error (a bug to report to it), nested once
/// per layer that passed it on, whose innermost line has the value it choked
/// on, or only `NoneError` when a field is missing.
fn crate_reason(error: procfs_core::ProcError) -> String {
    const FRAMING: &str = "Internal Unwrap Error: ";
    match error {
        procfs_core::ProcError::InternalError(internal) => {
            let innermost = internal.msg.rsplit('\n').next().unwrap_or_default();
            match innermost.trim_start_matches(FRAMING) {
                "NoneError" => "a field is missing (procfs-core)".to_owned(),
                said => format!("procfs-core: {said}"),
            }
        }
        other => format!("procfs-core: {other}"),
    }
}

/// A fake proc root, and /proc/stat's text, for the tests of every file.
#[cfg(test)]
mod fixtures {
    use super::*;

    /// /proc/stat of a 2-CPU guest (Linux 6.1), `intr` trimmed and the
    /// lines after `processes` left out.
    pub const STAT_TEXT: &str = "cpu  6428 10 2906 32215 310 5 60 12 7 0\n\
        cpu0 3005 0 1084 16857 19 0 8 5 0 0\n\
        cpu1 3422 10 1821 15358 290 5 52 7 7 0\n\
        intr 186916 0 0 0\n\
        ctxt 395043\n\
        btime 1764547200\n\
        processes 1391\n";

    pub fn fake_proc(files: &[(&str, &str)]) -> (tempfile::TempDir, ProcFs) {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in files {
            let path = dir.path().join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, content).unwrap();
        }
        let procfs = ProcFs::at(dir.path());
        (dir, procfs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::pressure::PressureResource;

    #[test]
    fn a_missing_file_is_a_read_error_naming_it() {
        let (_dir, procfs) = fixtures::fake_proc(&[]);
        let reads = [
            ("stat", procfs.read_cpu_stat().map(drop)),
            ("diskstats", procfs.read_diskstats().map(drop)),
            ("meminfo", procfs.read_memory().map(drop)),
            ("net/dev", procfs.read_net_dev().map(drop)),
        ];
        for (file, read) in reads {
            let error = read.unwrap_err();
            assert!(
                matches!(error, ProcError::Read { ref path, .. } if path.ends_with(file)),
                "{file}: {error}"
            );
        }
    }

    #[test]
    fn this_hosts_proc_parses() {
        let procfs = ProcFs::default();
        if procfs.root().join("stat").exists() {
            assert!(procfs.read_cpu_stat().unwrap().online_cpus >= 1);
            procfs.read_pressure(PressureResource::Cpu).unwrap();
        }
        if procfs.root().join("diskstats").exists() {
            procfs.read_diskstats().unwrap();
        }
    }
}
