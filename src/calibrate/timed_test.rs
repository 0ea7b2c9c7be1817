//! One timed test: threads issuing direct reads or writes over a region of
//! a file until a deadline, counting bytes and requests.

use std::fs::File;
use std::io::{self, ErrorKind};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Result, anyhow, bail};

use super::RANDOM_WORKERS;
use super::direct_io::AlignedBuf;
use super::in_use::fs_type_of;
use super::progress::Progress;
use super::report::describe_bps;

/// Request size of the sequential tests.
pub(super) const SEQUENTIAL_BLOCK: usize = 1 << 20;
/// Request size of the random tests (raised to the device's logical block size if larger).
const RANDOM_BLOCK: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Direction {
    Read,
    Write,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Pattern {
    Sequential,
    Random,
}

/// The file a test reads or writes, and how much of it.
#[derive(Clone, Copy)]
pub(super) struct Target<'a> {
    pub(super) file: &'a File,
    pub(super) path: &'a Path,
    /// Bytes of the file used, from offset 0; a multiple of `align`.
    pub(super) region: u64,
    pub(super) align: usize,
}

/// One timed test. Sequential tests issue [`SEQUENTIAL_BLOCK`] requests from
/// one thread; random ones issue [`RANDOM_BLOCK`] (or aligned-block) requests
/// from [`RANDOM_WORKERS`] threads.
pub(super) struct Test<'a> {
    pub(super) label: &'a str,
    pub(super) target: Target<'a>,
    pub(super) direction: Direction,
    pub(super) pattern: Pattern,
    /// Sequential: start over at the end of the region, or stop there.
    pub(super) wrap: bool,
    pub(super) duration: Duration,
}

impl Test<'_> {
    fn block(&self) -> usize {
        match self.pattern {
            Pattern::Sequential => SEQUENTIAL_BLOCK,
            Pattern::Random => RANDOM_BLOCK.max(self.target.align),
        }
    }

    fn workers(&self) -> usize {
        match self.pattern {
            Pattern::Sequential => 1,
            Pattern::Random => RANDOM_WORKERS,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Measured {
    pub(super) bytes: u64,
    pub(super) ios: u64,
    pub(super) elapsed: Duration,
}

impl Measured {
    pub(super) fn bps(&self) -> f64 {
        self.bytes as f64 / self.elapsed.as_secs_f64()
    }

    pub(super) fn iops(&self) -> f64 {
        self.ios as f64 / self.elapsed.as_secs_f64()
    }
}

pub(super) fn run_test(test: &Test<'_>, progress: &mut Progress) -> Result<Measured> {
    if test.target.region < test.block() as u64 && test.pattern == Pattern::Random {
        bail!(
            "cannot calibrate {}: it holds {} bytes, less than one {}-byte request",
            test.target.path.display(),
            test.target.region,
            test.block()
        );
    }
    progress.begin(test.label, test.duration);
    let counters = Counters::default();
    let start = Instant::now();
    run_workers(test, &counters, start, progress)?;
    if test.direction == Direction::Write {
        // Writes that only reached the device's cache are paid for here.
        test.target.file.sync_data().map_err(|err| {
            anyhow!(
                "cannot flush writes to {}: {err}",
                test.target.path.display()
            )
        })?;
    }
    let measured = Measured {
        bytes: counters.bytes.load(Ordering::Relaxed),
        ios: counters.ios.load(Ordering::Relaxed),
        elapsed: start.elapsed(),
    };
    let summary = match test.pattern {
        Pattern::Sequential => describe_bps(measured.bps()),
        Pattern::Random => format!("{:.0} IOPS", measured.iops()),
    };
    progress.end(&format!("{:<20} {summary}", test.label));
    Ok(measured)
}

/// What the workers of one test share.
#[derive(Default)]
struct Counters {
    /// Set by a worker that failed, so that the others stop too.
    stop: AtomicBool,
    bytes: AtomicU64,
    ios: AtomicU64,
}

/// Runs the test's workers until `start + test.duration`, ticking the
/// progress bar; the first worker error is returned.
fn run_workers(
    test: &Test<'_>,
    counters: &Counters,
    start: Instant,
    progress: &Progress,
) -> Result<()> {
    let seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0x9e37_79b9, |d| d.as_nanos() as u64);
    let deadline = start + test.duration;
    thread::scope(|scope| -> Result<()> {
        let handles: Vec<_> = (0..test.workers())
            .map(|worker| {
                let seed = seed ^ (worker as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                scope.spawn(move || {
                    let result = worker_loop(test, seed, deadline, counters);
                    if result.is_err() {
                        counters.stop.store(true, Ordering::Relaxed);
                    }
                    result
                })
            })
            .collect();
        while !handles.iter().all(|h| h.is_finished()) {
            progress.tick(start.elapsed());
            thread::sleep(Duration::from_millis(50));
        }
        let mut first_error = None;
        for handle in handles {
            match handle.join() {
                Ok(Ok(())) => {}
                Ok(Err(err)) => {
                    first_error.get_or_insert(err);
                }
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        first_error.map_or(Ok(()), Err)
    })
}

fn worker_loop(test: &Test<'_>, seed: u64, deadline: Instant, counters: &Counters) -> Result<()> {
    let mut buffer = AlignedBuf::new(test.block(), test.target.align);
    let mut rng = XorShift::new(seed);
    if test.direction == Direction::Write {
        // Random contents, so that compressing or deduplicating storage does not flatter it.
        for chunk in buffer.as_mut_slice().chunks_mut(8) {
            let word = rng.next().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }
    let block = test.block() as u64;
    let slots = test.target.region / block;
    let mut offset = 0u64;
    while !counters.stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        let (at, len) = match test.pattern {
            Pattern::Sequential => {
                if offset >= test.target.region {
                    if !test.wrap {
                        break;
                    }
                    offset = 0;
                }
                (offset, block.min(test.target.region - offset) as usize)
            }
            Pattern::Random => (rng.below(slots) * block, test.block()),
        };
        let buf = &mut buffer.as_mut_slice()[..len];
        let done = loop {
            let result = match test.direction {
                Direction::Read => test.target.file.read_at(buf, at),
                Direction::Write => test.target.file.write_at(buf, at),
            };
            match result {
                Err(err) if err.kind() == ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        let done = done.map_err(|err| io_error(test, at, len, &err))?;
        if done == 0 {
            bail!(
                "{} of {len} bytes at offset {at} in {} returned nothing (end of device?)",
                verb(test.direction),
                test.target.path.display()
            );
        }
        counters.bytes.fetch_add(done as u64, Ordering::Relaxed);
        counters.ios.fetch_add(1, Ordering::Relaxed);
        offset = at + len as u64;
    }
    Ok(())
}

fn verb(direction: Direction) -> &'static str {
    match direction {
        Direction::Read => "direct read",
        Direction::Write => "direct write",
    }
}

fn io_error(test: &Test<'_>, at: u64, len: usize, err: &io::Error) -> anyhow::Error {
    let hint = if err.raw_os_error() == Some(nix::errno::Errno::EINVAL as i32) {
        format!(
            " (direct I/O needs {}-byte aligned offsets and sizes; {} may not support O_DIRECT)",
            test.target.align,
            fs_type_of(test.target.path)
        )
    } else {
        String::new()
    };
    anyhow!(
        "{} of {len} bytes at offset {at} in {} failed: {err}{hint}",
        verb(test.direction),
        test.target.path.display()
    )
}

/// xorshift64*: enough to scatter offsets.
pub(super) struct XorShift(u64);

impl XorShift {
    pub(super) fn new(seed: u64) -> Self {
        // splitmix64 step, so that nearby seeds diverge and the state is never 0.
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        XorShift((z ^ (z >> 31)) | 1)
    }

    pub(super) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (n > 0).
    pub(super) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }
}
