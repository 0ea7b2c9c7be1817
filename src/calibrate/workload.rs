//! The fio-like workload: the sequential and random tests with direct I/O,
//! reads first, then writes to the device or to a scratch file filled first.

use std::fs::File;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};

use super::MIB;
use super::direct_io::{Access, ScratchGuard, align_down, open_direct, size_of};
use super::progress::Progress;
use super::report::Capacity;
use super::timed_test::{Direction, Pattern, SEQUENTIAL_BLOCK, Target, Test, run_test};

/// Largest scratch file; it is smaller for short tests.
const SCRATCH_MAX: u64 = 256 * MIB;
const SCRATCH_MIN: u64 = 8 * MIB;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum WriteTarget {
    /// Write to the device itself (checked unused beforehand).
    Device(PathBuf),
    /// Create, fill, measure and remove this file.
    Scratch(PathBuf),
}

#[derive(Debug)]
pub(super) struct Plan {
    /// Read tests run here: the device (any readable file in tests).
    pub(super) read: PathBuf,
    pub(super) write: Option<WriteTarget>,
    pub(super) per_test: Duration,
    pub(super) progress: bool,
    pub(super) align: usize,
}

/// Size of the scratch file: about 64 MiB per second of test, 8..=256 MiB.
fn scratch_size(per_test: Duration) -> u64 {
    let wanted = (per_test.as_secs_f64() * 64.0 * MIB as f64) as u64;
    align_down(wanted.clamp(SCRATCH_MIN, SCRATCH_MAX), MIB as usize)
}

/// Longest time spent filling the scratch file.
fn fill_bound(per_test: Duration) -> Duration {
    (per_test * 2).max(Duration::from_secs(1))
}

/// The write target, opened for the write tests.
struct OpenWrite {
    path: PathBuf,
    // Declared before `scratch`, so that on an error the file is closed
    // before the guard removes it.
    file: File,
    /// Bytes of the device used; a scratch file's is known once it is filled.
    region: u64,
    scratch: Option<ScratchGuard>,
}

fn open_write(target: &WriteTarget, align: usize) -> Result<OpenWrite> {
    match target {
        WriteTarget::Device(path) => {
            let file = open_direct(path, Access::WriteExisting)?;
            let region = align_down(size_of(&file, path)?, align);
            Ok(OpenWrite {
                path: path.clone(),
                file,
                region,
                scratch: None,
            })
        }
        WriteTarget::Scratch(path) => {
            let guard = ScratchGuard::create(path)?;
            let file = open_direct(path, Access::Scratch)?;
            Ok(OpenWrite {
                path: path.clone(),
                file,
                region: 0,
                scratch: Some(guard),
            })
        }
    }
}

/// Time all the tests of a plan should take, for the progress bar.
fn planned_time(per_test: Duration, write: Option<&OpenWrite>) -> Duration {
    let mut total = per_test * 2;
    if let Some(write) = write {
        total += per_test * 2;
        if write.scratch.is_some() {
            total += fill_bound(per_test);
        }
    }
    total
}

pub(super) fn run(plan: &Plan) -> Result<Capacity> {
    let read_file = open_direct(&plan.read, Access::Read)?;
    let read_region = align_down(size_of(&read_file, &plan.read)?, plan.align);
    if read_region < SEQUENTIAL_BLOCK as u64 {
        bail!(
            "cannot calibrate {}: it holds {read_region} bytes, less than 1 MiB",
            plan.read.display()
        );
    }
    // Open the write target before spending time on reads, so that a refusal
    // or an unusable scratch file shows at once.
    let write = plan
        .write
        .as_ref()
        .map(|target| open_write(target, plan.align))
        .transpose()?;
    let mut progress = Progress::new(plan.progress, planned_time(plan.per_test, write.as_ref()));
    let read = Target {
        file: &read_file,
        path: &plan.read,
        region: read_region,
        align: plan.align,
    };
    let (read_bps, read_iops) = measure(read, Direction::Read, plan.per_test, &mut progress)?;
    drop(read_file);
    let (write_bps, write_iops) = write
        .map(|write| measure_writes(write, plan, &mut progress))
        .transpose()?
        .unzip();
    progress.finish();
    Ok(Capacity {
        read_bps,
        write_bps,
        read_iops,
        write_iops,
    })
}

/// The sequential test then the random one: bytes per second and IOPS.
fn measure(
    target: Target<'_>,
    direction: Direction,
    duration: Duration,
    progress: &mut Progress,
) -> Result<(f64, f64)> {
    let (sequential, random) = match direction {
        Direction::Read => ("sequential read", "random read"),
        Direction::Write => ("sequential write", "random write"),
    };
    let test = |label, pattern| Test {
        label,
        target,
        direction,
        pattern,
        wrap: true,
        duration,
    };
    let bps = run_test(&test(sequential, Pattern::Sequential), progress)?.bps();
    let iops = run_test(&test(random, Pattern::Random), progress)?.iops();
    Ok((bps, iops))
}

/// Fills a scratch file first, measures, then removes the scratch file.
fn measure_writes(write: OpenWrite, plan: &Plan, progress: &mut Progress) -> Result<(f64, f64)> {
    let region = if write.scratch.is_some() {
        fill_scratch(&write, plan, progress)?
    } else {
        write.region
    };
    let target = Target {
        file: &write.file,
        path: &write.path,
        region,
        align: plan.align,
    };
    let measured = measure(target, Direction::Write, plan.per_test, progress)?;
    let OpenWrite { file, scratch, .. } = write;
    drop(file);
    if let Some(guard) = scratch {
        guard.remove()?;
    }
    Ok(measured)
}

/// Writes the scratch file from its start for at most [`fill_bound`]; the
/// whole MiB written are the region of the write tests.
fn fill_scratch(write: &OpenWrite, plan: &Plan, progress: &mut Progress) -> Result<u64> {
    let bound = fill_bound(plan.per_test);
    let filled = run_test(
        &Test {
            label: "filling scratch file",
            target: Target {
                file: &write.file,
                path: &write.path,
                region: scratch_size(plan.per_test),
                align: plan.align,
            },
            direction: Direction::Write,
            pattern: Pattern::Sequential,
            wrap: false,
            duration: bound,
        },
        progress,
    )?;
    let region = align_down(filled.bytes, MIB as usize);
    if region == 0 {
        bail!(
            "cannot fill scratch file {}: less than 1 MiB written in {:.1} s",
            write.path.display(),
            bound.as_secs_f64()
        );
    }
    Ok(region)
}
