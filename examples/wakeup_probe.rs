//! Wake-up latency probe: the latency-sensitive part of the "web" tenant in
//! the VM scenarios (tests/vm/scenarios/cpu-noisy-neighbour.sh).
//!
//! It sleeps for a short interval over and over and measures by how much each
//! wake-up overshoots the requested time. On an idle CPU the overshoot is the
//! timer slack; when the tenant is starved of CPU it grows to the time the
//! thread waits to be scheduled.
//!
//! With `--work-us W` it also spins for W µs after each wake-up: a request
//! handler's shape (wake, work, sleep), as in the latency cell of
//! tests/vm/scenarios/cpu-shapes.sh.
//!
//! Usage: `wakeup_probe [--seconds N] [--sleep-us U] [--work-us W]`
//! (defaults: 10 s, 1000 µs, 0 µs).
//! Prints one line at the end:
//! `wakeup_us p50=123 p99=4567 max=8901 samples=1000`
//!
//! Std only, so it needs nothing beyond the toolchain.

use std::process::ExitCode;
use std::thread::sleep;
use std::time::{Duration, Instant};

struct Args {
    seconds: f64,
    sleep_us: u64,
    work_us: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        seconds: 10.0,
        sleep_us: 1000,
        work_us: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match flag.as_str() {
            "--seconds" => {
                let v = value("--seconds")?;
                args.seconds = v
                    .parse()
                    .map_err(|_| format!("--seconds: not a number: {v}"))?;
            }
            "--sleep-us" => args.sleep_us = micros(value("--sleep-us")?, "--sleep-us")?,
            "--work-us" => args.work_us = micros(value("--work-us")?, "--work-us")?,
            "-h" | "--help" => {
                return Err(
                    "usage: wakeup_probe [--seconds N] [--sleep-us U] [--work-us W]".into(),
                );
            }
            other => return Err(format!("unknown argument: {other}")),
        }
    }
    if !(args.seconds > 0.0 && args.seconds.is_finite()) {
        return Err("--seconds must be positive".into());
    }
    Ok(args)
}

fn micros(value: String, flag: &str) -> Result<u64, String> {
    value
        .parse()
        .map_err(|_| format!("{flag}: not an integer: {value}"))
}

/// Keeps the CPU busy for `length`, as a request handler would.
fn spin(length: Duration) {
    let start = Instant::now();
    while start.elapsed() < length {
        std::hint::spin_loop();
    }
}

/// The value at quantile `q` (0..=1) of sorted `v`, by nearest rank.
fn quantile(v: &[u64], q: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    let rank = (q * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("wakeup_probe: {e}");
            return ExitCode::from(2);
        }
    };
    let requested = Duration::from_micros(args.sleep_us);
    let work = Duration::from_micros(args.work_us);
    let run_for = Duration::from_secs_f64(args.seconds);
    let start = Instant::now();
    let mut overshoot_us: Vec<u64> = Vec::with_capacity(16_384);
    while start.elapsed() < run_for {
        let before = Instant::now();
        sleep(requested);
        let slept = before.elapsed();
        overshoot_us.push(slept.saturating_sub(requested).as_micros() as u64);
        spin(work);
    }
    overshoot_us.sort_unstable();
    println!(
        "wakeup_us p50={} p99={} max={} samples={}",
        quantile(&overshoot_us, 0.50),
        quantile(&overshoot_us, 0.99),
        overshoot_us.last().copied().unwrap_or(0),
        overshoot_us.len()
    );
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::quantile;

    #[test]
    fn quantile_by_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(quantile(&v, 0.5), 50);
        assert_eq!(quantile(&v, 0.99), 99);
        assert_eq!(quantile(&v, 1.0), 100);
        assert_eq!(quantile(&[7], 0.99), 7);
        assert_eq!(quantile(&[], 0.5), 0);
    }
}
