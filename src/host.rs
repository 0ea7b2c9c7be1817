//! Facts about this host, read in one place: the CPUs online, its memory,
//! and how devices, interfaces, users and groups are looked up.

use tracing::warn;

use crate::classify::protected::captures_protected;
use crate::config::HostFacts;
use crate::procfs::{ProcError, ProcFs};

/// This host's look-ups, without the CPUs and memory (read with `facts`).
pub fn lookups() -> HostFacts {
    HostFacts::of_this_host(0.0, captures_protected)
}

/// This host's facts for validating a configuration.
pub fn facts(proc: &ProcFs) -> Result<HostFacts, ProcError> {
    let facts = HostFacts::of_this_host(online_cpus(proc)?, captures_protected);
    Ok(with_memory_total(facts, proc))
}

/// The CPUs online (/proc/stat).
pub fn online_cpus(proc: &ProcFs) -> Result<f64, ProcError> {
    Ok(f64::from(proc.read_cpu_stat()?.online_cpus))
}

/// `facts` with the host's MemTotal, if /proc/meminfo can tell it (memory
/// baselines are then checked against it).
pub fn with_memory_total(facts: HostFacts, proc: &ProcFs) -> HostFacts {
    match proc.read_memory() {
        Ok(memory) => facts.with_memory_total(memory.total),
        Err(error) => {
            warn!("memory baselines are not checked against the host's memory: {error}");
            facts
        }
    }
}
