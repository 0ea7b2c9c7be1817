//! The cpu controller: cpu.stat, cpu.weight, cpu.max, cpu.max.burst.

use super::{Group, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuStat {
    pub usage_usec: u64,
    pub user_usec: u64,
    pub system_usec: u64,
    /// The next three are absent until the cpu controller is enabled; then 0.
    pub nr_periods: u64,
    pub nr_throttled: u64,
    pub throttled_usec: u64,
}

/// cpu.max: quota per period, `None` quota = "max" (unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuMax {
    pub quota_us: Option<u64>,
    pub period_us: u64,
}

pub const DEFAULT_PERIOD_US: u64 = 100_000;

pub fn read_stat(group: &Group) -> Result<CpuStat> {
    let _ = group;
    todo!()
}
pub fn read_weight(group: &Group) -> Result<u32> {
    let _ = group;
    todo!()
}
pub fn write_weight(group: &Group, weight: u32) -> Result<()> {
    let _ = (group, weight);
    todo!()
}
pub fn read_max(group: &Group) -> Result<CpuMax> {
    let _ = group;
    todo!()
}
pub fn write_max(group: &Group, max: CpuMax) -> Result<()> {
    let _ = (group, max);
    todo!()
}
pub fn read_max_burst(group: &Group) -> Result<u64> {
    let _ = group;
    todo!()
}
pub fn write_max_burst(group: &Group, burst_us: u64) -> Result<()> {
    let _ = (group, burst_us);
    todo!()
}
