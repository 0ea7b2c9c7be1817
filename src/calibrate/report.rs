//! The result of a calibration and the `[[host.disks]]` block it prints.

use std::time::SystemTime;

use super::MIB;

const KIB: u64 = 1 << 10;

/// Measured capacity of a device. `write_*` are `None` when writes were not measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Capacity {
    /// Sequential read throughput, bytes per second (1 MiB requests).
    pub read_bps: f64,
    /// Sequential write throughput, bytes per second (1 MiB requests).
    pub write_bps: Option<f64>,
    /// Random read operations per second (4 KiB requests).
    pub read_iops: f64,
    /// Random write operations per second (4 KiB requests).
    pub write_iops: Option<f64>,
}

/// The `[[host.disks]]` TOML block for `device_name`, with the values rounded
/// down to two significant digits and a comment carrying the measured numbers.
pub fn host_disks_block(device_name: &str, capacity: &Capacity) -> String {
    let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    host_disks_block_on(&now[..10], device_name, capacity)
}

pub(super) fn host_disks_block_on(date: &str, device_name: &str, capacity: &Capacity) -> String {
    let mut out = format!("# Measured by qosd calibrate on {date} with direct I/O:\n");
    out += &format!(
        "#   sequential read  {} (1 MiB requests), random read  {:.0} IOPS (4 KiB requests)\n",
        describe_bps(capacity.read_bps),
        capacity.read_iops
    );
    match (capacity.write_bps, capacity.write_iops) {
        (Some(bps), Some(iops)) => {
            out += &format!(
                "#   sequential write {} (1 MiB requests), random write {iops:.0} IOPS (4 KiB requests)\n",
                describe_bps(bps)
            );
        }
        _ => {
            out +=
                "#   writes were not measured (--read-only): set write_bps and write_iops by hand\n"
        }
    }
    out += "# Values are rounded down to 2 significant digits.\n";
    out += "[[host.disks]]\n";
    out += &format!("device = {}\n", toml::Value::String(device_name.to_owned()));
    out += &format!("read_bps = \"{}\"\n", config_bps(capacity.read_bps));
    match capacity.write_bps {
        Some(bps) => out += &format!("write_bps = \"{}\"\n", config_bps(bps)),
        None => out += "# write_bps = \"?MiB/s\"\n",
    }
    out += &format!("read_iops = {}\n", config_iops(capacity.read_iops));
    match capacity.write_iops {
        Some(iops) => out += &format!("write_iops = {}\n", config_iops(iops)),
        None => out += "# write_iops = ?\n",
    }
    out
}

/// Human form of a measured rate, for comments and progress lines.
pub(super) fn describe_bps(bps: f64) -> String {
    format!("{:.1} MiB/s", bps / MIB as f64)
}

/// `x` rounded down to 2 significant digits (0 below 1).
pub(super) fn round_down_2_digits(x: f64) -> u64 {
    if !(x.is_finite() && x >= 1.0) {
        return 0;
    }
    let value = x.floor() as u64;
    let digits = value.ilog10() + 1;
    if digits <= 2 {
        return value;
    }
    let scale = 10u64.pow(digits - 2);
    value / scale * scale
}

/// A rate in the config's unit syntax: MiB/s from 10 MiB/s up, KiB/s below.
pub(super) fn config_bps(bps: f64) -> String {
    let mib = bps / MIB as f64;
    if mib >= 10.0 {
        format!("{}MiB/s", round_down_2_digits(mib))
    } else {
        format!("{}KiB/s", round_down_2_digits(bps / KIB as f64).max(1))
    }
}

pub(super) fn config_iops(iops: f64) -> u64 {
    round_down_2_digits(iops).max(1)
}
