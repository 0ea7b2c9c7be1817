//! The host's TSC frequency in kHz, for the VM harness (tests/vm/run.sh).
//!
//! Under QEMU TCG the guest's TSC is the host's, but the guest kernel
//! calibrates its rate at boot against the emulated PIT or HPET. When the
//! host preempts a vCPU during that short window the guest gets a wrong rate,
//! and every clock in the guest runs fast or slow for the whole run. The
//! harness passes this number as `tsc_early_khz=`, so the guest never
//! calibrates.
//!
//! It reads the TSC and the monotonic clock together at both ends of a 200 ms
//! window, keeping the closest pair of five at each end, so a preemption
//! between the two reads does not enter the result. Prints one integer.
//! Exits 1 where there is no TSC to read (not x86_64).

use std::process::ExitCode;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_millis(200);
const TRIES: usize = 5;

#[cfg(target_arch = "x86_64")]
fn tsc() -> u64 {
    // SAFETY: RDTSC has no preconditions on x86_64.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// A TSC reading and the monotonic time taken with it, from the try whose two
/// clock reads around the TSC were closest together.
#[cfg(target_arch = "x86_64")]
fn paired_reading() -> (u64, Instant) {
    (0..TRIES)
        .map(|_| {
            let before = Instant::now();
            let cycles = tsc();
            let after = Instant::now();
            (after - before, cycles, before + (after - before) / 2)
        })
        .min_by_key(|(gap, _, _)| *gap)
        .map(|(_, cycles, at)| (cycles, at))
        .expect("TRIES > 0")
}

#[cfg(target_arch = "x86_64")]
fn main() -> ExitCode {
    let (start_cycles, start) = paired_reading();
    std::thread::sleep(WINDOW);
    let (end_cycles, end) = paired_reading();
    let seconds = (end - start).as_secs_f64();
    println!(
        "{:.0}",
        (end_cycles - start_cycles) as f64 / seconds / 1000.0
    );
    ExitCode::SUCCESS
}

#[cfg(not(target_arch = "x86_64"))]
fn main() -> ExitCode {
    eprintln!("tsc_khz: no TSC on this architecture");
    ExitCode::FAILURE
}
