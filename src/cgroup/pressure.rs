//! PSI files: `<group>/{cpu,io,memory}.pressure` and `/proc/pressure/*` share one format.

use std::path::Path;

use super::{Group, Result};

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PressureLine {
    pub avg10: f64,
    pub avg60: f64,
    pub avg300: f64,
    /// Cumulative stall time in microseconds.
    pub total_usec: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Pressure {
    pub some: PressureLine,
    /// Absent from /proc/pressure/cpu on older kernels.
    pub full: Option<PressureLine>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PressureResource {
    Cpu,
    Io,
    Memory,
}

/// Parses PSI text; `path` is only used in errors.
pub fn parse(path: &Path, text: &str) -> Result<Pressure> {
    let _ = (path, text);
    todo!()
}

/// Reads `<group>/<resource>.pressure`.
pub fn read(group: &Group, resource: PressureResource) -> Result<Pressure> {
    let _ = (group, resource);
    todo!()
}
