//! /proc/meminfo: the host's memory.

use procfs_core::{FromRead, Meminfo};

use super::{ProcError, ProcFs, crate_reason};

const MEMINFO: &str = "meminfo";

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

impl ProcFs {
    /// MemTotal and MemAvailable from /proc/meminfo.
    pub fn read_memory(&self) -> Result<HostMemory, ProcError> {
        self.read_parsed(MEMINFO, parse_meminfo)
    }
}

/// procfs-core gives the values in bytes (the kernel's "kB" is KiB), and
/// requires the lines every kernel since 2.6 prints (MemFree, Buffers,
/// Cached, Slab, ...) besides MemTotal; MemAvailable (3.14) is optional to
/// it but not to qosd.
fn parse_meminfo(text: &str) -> Result<HostMemory, String> {
    let meminfo = Meminfo::from_read(text.as_bytes()).map_err(crate_reason)?;
    Ok(HostMemory {
        total: meminfo.mem_total,
        available: meminfo.mem_available.ok_or("no MemAvailable line")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::meminfo;

    #[test]
    fn memory_comes_from_meminfo_in_bytes() {
        let text = meminfo("MemTotal:        1004128 kB\nMemAvailable:     800000 kB\n");
        let memory = parse_meminfo(&text).unwrap();
        assert_eq!(memory.total, 1004128 * 1024);
        assert_eq!(memory.available, 800000 * 1024);
        assert_eq!(memory.used(), 204128 * 1024);
        assert_eq!(
            parse_meminfo(&meminfo("MemTotal: 1 kB\n")).unwrap_err(),
            "no MemAvailable line"
        );
        assert!(
            parse_meminfo(&meminfo("MemTotal: lots\nMemAvailable: 1 kB\n"))
                .unwrap_err()
                .contains("lots")
        );
    }
}
