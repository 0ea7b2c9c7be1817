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
