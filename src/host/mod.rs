//! Facts about this host, read in one place: the CPUs online, its memory,
//! its block devices and network interfaces, and its users and groups.
//! Validation sees them as a [`HostFacts`]; tests give it a fake one.

mod devices;
mod users;

use tracing::warn;

use crate::classify::protected::captures_protected;
use crate::config::{HostFacts, ProcessMatcher};
use crate::procfs::{ProcError, ProcFs};
pub use devices::{file_kind, find_network_interface, resolve_block_device};
pub use users::{resolve_group_name, resolve_user_name};

/// This host's look-ups with `online_cpus`: devices resolved with `stat`
/// and `/sys/dev/block`, interfaces with `/sys/class/net`, user and group
/// names with the user database; `captures_protected` tells which matchers
/// would move the processes that never move.
pub const fn this_host(
    online_cpus: f64,
    captures_protected: fn(&ProcessMatcher) -> Option<String>,
) -> HostFacts {
    HostFacts {
        online_cpus,
        resolve_device: resolve_block_device,
        find_interface: find_network_interface,
        memory_total: None,
        resolve_user: resolve_user_name,
        resolve_group: resolve_group_name,
        captures_protected,
    }
}

/// This host's look-ups, without the CPUs and memory (read with `facts`).
pub fn lookups() -> HostFacts {
    this_host(0.0, captures_protected)
}

/// This host's facts for validating a configuration.
pub fn facts(proc: &ProcFs) -> Result<HostFacts, ProcError> {
    let facts = this_host(online_cpus(proc)?, captures_protected);
    Ok(with_memory_total(facts, proc))
}

/// This host's facts for a command that only reads a configuration
/// (`qosd check`, `qosd status --tenant`): without /proc/stat, the CPUs
/// the process may run on stand in for the CPUs online.
pub fn facts_for_commands() -> HostFacts {
    let proc = ProcFs::default();
    let cpus = online_cpus(&proc)
        .unwrap_or_else(|_| std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64));
    with_memory_total(this_host(cpus, captures_protected), &proc)
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
