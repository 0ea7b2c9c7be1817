//! Walking all of /proc: every process classified, spread over a few
//! threads on a large host.

use std::collections::{HashMap, HashSet};
use std::sync::PoisonError;
use std::time::{Duration, Instant};

use super::{Classifier, Outcome};
use crate::procfs::{ProcError, ProcFs};

/// A rescan uses at most this many threads, one per this many processes.
const MAX_SCAN_THREADS: usize = 4;
const PIDS_PER_SCAN_THREAD: usize = 1000;

/// One walk over /proc.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScanReport {
    /// PIDs listed.
    pub processes: u64,
    pub moved: u64,
    pub already: u64,
    pub excluded: u64,
    pub unmatched: u64,
    pub vanished: u64,
    /// Processes that could not be read or moved (logged at warn).
    pub errors: u64,
    pub elapsed: Duration,
}

impl Classifier {
    fn scan(&self, proc: &ProcFs, pids: &[u32]) -> ScanReport {
        let mut report = ScanReport::default();
        let mut delegated = HashMap::new();
        for &pid in pids {
            match self.classify_with(proc, pid, &mut delegated) {
                Ok(Outcome::Moved { .. }) => report.moved += 1,
                Ok(Outcome::AlreadyThere { .. }) => report.already += 1,
                Ok(Outcome::Excluded { .. }) => report.excluded += 1,
                Ok(Outcome::NoMatch) => report.unmatched += 1,
                Ok(Outcome::Vanished) => report.vanished += 1,
                Err(error) => {
                    report.errors += 1;
                    tracing::warn!(pid, "cannot classify process: {error}");
                }
            }
        }
        report
    }

    /// Walks all of /proc once and classifies every process. Only listing
    /// /proc can fail; a process that cannot be read or moved is logged at
    /// warn and counted in `errors`.
    pub fn rescan(&self, proc: &ProcFs) -> Result<ScanReport, ProcError> {
        let start = Instant::now();
        let pids = proc.pids()?;
        let mut report = ScanReport {
            processes: pids.len() as u64,
            ..ScanReport::default()
        };
        // Each /proc file costs ~10 µs of system time on a VM: spread a
        // large host over a few threads (the CPU time is the same).
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, MAX_SCAN_THREADS)
            .min(pids.len().div_ceil(PIDS_PER_SCAN_THREAD).max(1));
        let chunk = pids.len().div_ceil(threads).max(1);
        let parts: Vec<ScanReport> = std::thread::scope(|scope| {
            let workers: Vec<_> = pids
                .chunks(chunk)
                .skip(1)
                .map(|pids| scope.spawn(move || self.scan(proc, pids)))
                .collect();
            let mut parts = vec![self.scan(proc, pids.chunks(chunk).next().unwrap_or(&[]))];
            parts.extend(workers.into_iter().filter_map(|worker| worker.join().ok()));
            parts
        });
        for part in parts {
            report.moved += part.moved;
            report.already += part.already;
            report.excluded += part.excluded;
            report.unmatched += part.unmatched;
            report.vanished += part.vanished;
            report.errors += part.errors;
        }
        // Forget exclusions of processes that are gone: their PIDs may be reused.
        let live: HashSet<u32> = pids.into_iter().collect();
        self.logged
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|(pid, _)| live.contains(pid));
        report.elapsed = start.elapsed();
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::cgroup::fake::FakeTree;
    use crate::classify::tests::{classifier, fake_proc, tenants};
    use crate::procfs::process::tests::FakeProcess;

    #[test]
    fn rescan_counts_every_outcome() {
        let session = FakeProcess::default().cgroup;
        let processes = [
            // pid, uid, comm, cgroup: what becomes of it.
            (100, 1001, "app", session),             // moved into alice
            (101, 1001, "app", "/qosd.slice/alice"), // already there
            (102, 0, "sshd", session),               // unmatched
            (1, 1001, "systemd", "/init.scope"),     // excluded: PID 1
            (103, 1001, "app", "/legacy.slice"),     // excluded: adopted
            (105, 1001, "app", session),             // an error (below)
        ]
        .map(|(pid, uid, comm, cgroup)| FakeProcess {
            pid,
            uid,
            comm,
            cgroup,
            ..FakeProcess::default()
        });
        let (dir, proc) = fake_proc(&processes);
        let root = dir.path();
        // Listed, then gone before its files were read.
        fs::create_dir(root.join("104")).unwrap();
        // A file qosd cannot parse: an error, counted, not fatal.
        fs::write(root.join("105/status"), "Uid: nobody\n").unwrap();
        for name in ["self", "stat", "sys"] {
            fs::write(root.join(name), "").unwrap();
        }
        let tree = FakeTree::new();
        let c = classifier(&tree, &tenants());
        let report = c.rescan(&proc).unwrap();
        assert_eq!(
            (
                report.processes,
                report.moved,
                report.already,
                report.excluded,
                report.unmatched,
                report.vanished,
                report.errors
            ),
            (7, 1, 1, 2, 1, 1, 1),
            "{report:?}"
        );
        assert_eq!(c.counters().moves(), 1);
        assert_eq!(c.logged.lock().unwrap().len(), 2);
        // PID 1 exits (say): its logged exclusion is forgotten.
        fs::remove_dir_all(root.join("1")).unwrap();
        c.rescan(&proc).unwrap();
        assert_eq!(c.logged.lock().unwrap().len(), 1);
    }

    #[test]
    fn a_missing_proc_root_is_an_error() {
        let tree = FakeTree::new();
        let c = classifier(&tree, &tenants());
        assert!(c.rescan(&ProcFs::at("/nonexistent/proc")).is_err());
    }
}
