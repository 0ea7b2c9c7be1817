//! Wake-up latency probe: the latency-sensitive part of the "web" tenant in
//! the VM scenarios (tests/vm/scenarios/cpu-noisy-neighbour.sh).
//!
//! It sleeps for a short interval over and over and measures by how much each
//! wake-up overshoots the requested time. On an idle CPU the overshoot is the
//! timer slack; when the tenant is starved of CPU it grows to the time the
//! thread waits to be scheduled.
//!
//! Usage: `wakeup_probe [--seconds N] [--sleep-us U]` (defaults: 10 s, 1000 µs).
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
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        seconds: 10.0,
        sleep_us: 1000,
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
            "--sleep-us" => {
                let v = value("--sleep-us")?;
                args.sleep_us = v
                    .parse()
                    .map_err(|_| format!("--sleep-us: not an integer: {v}"))?;
            }
            "-h" | "--help" => {
                return Err("usage: wakeup_probe [--seconds N] [--sleep-us U]".into());
            }
            other => return Err(format!("unknown argument: {other}")),
        }
    }
    if !(args.seconds > 0.0 && args.seconds.is_finite()) {
        return Err("--seconds must be positive".into());
    }
    Ok(args)
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
    let run_for = Duration::from_secs_f64(args.seconds);
    let start = Instant::now();
    let mut overshoot_us: Vec<u64> = Vec::with_capacity(16_384);
    while start.elapsed() < run_for {
        let before = Instant::now();
        sleep(requested);
        let slept = before.elapsed();
        overshoot_us.push(slept.saturating_sub(requested).as_micros() as u64);
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
