//! `qosd calibrate --device DEV`: measures a block device's capacity with
//! direct I/O and prints the `[[host.disks]]` block to paste into the config.
//!
//! Four tests, each bounded in time (never the whole device):
//! - sequential read: 1 MiB blocks, one at a time, from the start of the device;
//! - random read: 4 KiB at random aligned offsets, from [`RANDOM_WORKERS`] threads;
//! - sequential write and random write: the same, against the device or a scratch file.
//!
//! Reads go to the device itself (they are harmless). Writes destroy data, so
//! a write test on a device is refused when the device or one of its
//! partitions is mounted, used as swap or held by device mapper / md; with a
//! scratch file the writes go to that file instead (created, filled, measured,
//! removed). The scratch file must sit on a filesystem backed by the device,
//! or its writes would measure some other disk.
//!
//! Parts: `device` finds the device and its partitions, `in_use` decides
//! whether writing is safe, `workload` runs the tests (`timed_test` each, on
//! files opened by `direct_io`, shown by `progress`) and `report` prints the
//! TOML block.

mod device;
mod direct_io;
mod in_use;
mod progress;
mod report;
#[cfg(test)]
mod tests;
mod timed_test;
mod workload;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};

pub use report::{Capacity, host_disks_block};

use device::probe_device;
use in_use::{check_device_writable, check_scratch_location, read_mountinfo};
use workload::{Plan, WriteTarget, run};

const MIB: u64 = 1 << 20;
/// Alignment of buffers, offsets and sizes for O_DIRECT.
const MIN_ALIGN: usize = 4096;
/// Threads issuing random I/O at once: a small queue depth, closer to what a
/// device sustains under several tenants than one request at a time.
pub const RANDOM_WORKERS: usize = 4;
/// Longest accepted `seconds_per_test`.
const MAX_SECONDS_PER_TEST: f64 = 3600.0;

/// What to measure and how.
#[derive(Debug, Clone, PartialEq)]
pub struct CalibrateOptions {
    /// The block device, e.g. `/dev/vdb`.
    pub device: PathBuf,
    /// Write tests go to this file instead of the device. It must not exist;
    /// it is created on a filesystem of the device, filled, and removed after.
    pub scratch_file: Option<PathBuf>,
    /// Length of each of the four tests.
    pub seconds_per_test: f64,
    /// Skip the write tests.
    pub read_only: bool,
    /// Show a progress bar on stderr (only when stderr is a terminal).
    pub progress: bool,
}

impl CalibrateOptions {
    /// Options with the defaults: 5 s per test, writes to the device, progress bar on.
    pub fn new(device: impl Into<PathBuf>) -> Self {
        CalibrateOptions {
            device: device.into(),
            scratch_file: None,
            seconds_per_test: 5.0,
            read_only: false,
            progress: true,
        }
    }
}

/// Measures `options.device`. Every error names the path it is about.
pub fn calibrate(options: &CalibrateOptions) -> Result<Capacity> {
    let seconds = options.seconds_per_test;
    if !(seconds.is_finite() && seconds > 0.0 && seconds <= MAX_SECONDS_PER_TEST) {
        bail!("seconds per test must be above 0 and at most {MAX_SECONDS_PER_TEST}, not {seconds}");
    }
    let device = probe_device(&options.device)?;
    let write = if options.read_only {
        None
    } else if let Some(scratch) = &options.scratch_file {
        check_scratch_location(scratch, &device, &read_mountinfo()?)?;
        Some(WriteTarget::Scratch(scratch.clone()))
    } else {
        check_device_writable(&device)?;
        Some(WriteTarget::Device(device.path.clone()))
    };
    run(&Plan {
        read: device.path.clone(),
        write,
        per_test: Duration::from_secs_f64(seconds),
        progress: options.progress,
        align: device.align,
    })
}
