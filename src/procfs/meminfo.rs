//! /proc/meminfo: the host's memory.

use super::{ProcError, ProcFs};

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

fn parse_meminfo(text: &str) -> Result<HostMemory, String> {
    Ok(HostMemory {
        total: meminfo_bytes(text, "MemTotal")?,
        available: meminfo_bytes(text, "MemAvailable")?,
    })
}

/// A `MemTotal:    16318012 kB` line's value (the kernel's "kB" is KiB).
fn meminfo_bytes(text: &str, key: &str) -> Result<u64, String> {
    let value = text
        .lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
        .ok_or_else(|| format!("no {key} line"))?;
    let kibibytes = value
        .trim()
        .strip_suffix("kB")
        .and_then(|number| number.trim().parse::<u64>().ok())
        .ok_or_else(|| format!("{key} is not a number of kB: {value:?}"))?;
    Ok(kibibytes * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_comes_from_meminfo_in_bytes() {
        let meminfo = "MemTotal:        1004128 kB\nMemFree:          700000 kB\nMemAvailable:     800000 kB\n";
        let memory = parse_meminfo(meminfo).unwrap();
        assert_eq!(memory.total, 1004128 * 1024);
        assert_eq!(memory.available, 800000 * 1024);
        assert_eq!(memory.used(), 204128 * 1024);
        assert_eq!(
            parse_meminfo("MemTotal: 1 kB\nMemFree: 1 kB\n").unwrap_err(),
            "no MemAvailable line"
        );
        assert!(
            parse_meminfo("MemTotal: lots\nMemAvailable: 1 kB\n")
                .unwrap_err()
                .contains("lots")
        );
    }
}
