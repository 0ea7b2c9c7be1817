//! The io controller: io.stat, io.max, io.weight (and io.pressure through
//! `pressure`), and which weight-based controller a device has.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::Path;
use std::str::FromStr;

use nix::errno::Errno;

use super::{CgroupError, Group, Result, file};

const IO_STAT: &str = "io.stat";
const IO_MAX: &str = "io.max";
const IO_WEIGHT: &str = "io.weight";
const IO_BFQ_WEIGHT: &str = "io.bfq.weight";
/// Root only: iocost's per-device switch.
const IO_COST_QOS: &str = "io.cost.qos";

/// `<sys>/dev/block/MAJ:MIN/queue/scheduler`, e.g. `mq-deadline kyber [bfq] none`.
const SYS_DEV_BLOCK: &str = "dev/block";
const QUEUE_SCHEDULER: &str = "queue/scheduler";
const BFQ_SELECTED: &str = "[bfq]";
const IOCOST_ENABLED: &str = "enable=1";

/// The unlimited value of an io.max key.
const MAX: &str = "max";
/// The key of the default weight line in io.weight and io.bfq.weight.
const DEFAULT: &str = "default";

/// io.stat keys; the kernel prints the four together or none of them.
const RBYTES: &str = "rbytes";
const WBYTES: &str = "wbytes";
const RIOS: &str = "rios";
const WIOS: &str = "wios";
const STAT_KEYS: [&str; 4] = [RBYTES, WBYTES, RIOS, WIOS];

/// io.max keys, in the kernel's order; it always prints all four.
const RBPS: &str = "rbps";
const WBPS: &str = "wbps";
const RIOPS: &str = "riops";
const WIOPS: &str = "wiops";
const MAX_KEYS: [&str; 4] = [RBPS, WBPS, RIOPS, WIOPS];

/// The smallest io.max value every kernel accepts: 0 is ERANGE on all of
/// them, and 1 is EINVAL from a late-2020 change until its 2024 revert
/// (Debian 12's 6.1 among them). See block/blk-throttle.c, tg_set_limit.
pub const MAX_LIMIT_MIN: u64 = 2;
/// The kernel keeps iops limits in 32 bits: a bigger value is silently
/// clamped, and `u32::MAX` itself reads back as `max`.
pub const IOPS_LIMIT_MAX: u64 = u32::MAX as u64 - 1;
/// A bps of `u64::MAX` reads back as `max`.
pub const BPS_LIMIT_MAX: u64 = u64::MAX - 1;

/// io.weight (iocost) bounds, as for cpu.weight.
pub const WEIGHT_MIN: u32 = 1;
pub const WEIGHT_MAX: u32 = 10_000;
/// io.bfq.weight bounds (BFQ_MIN_WEIGHT, BFQ_MAX_WEIGHT).
pub const BFQ_WEIGHT_MAX: u32 = 1_000;

/// A block device's number (`MAJ:MIN`), as cgroup files name devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceNumber {
    pub major: u32,
    pub minor: u32,
}

impl fmt::Display for DeviceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.major, self.minor)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid device number {input:?}: expected MAJ:MIN, e.g. 8:0")]
pub struct ParseDeviceNumberError {
    input: String,
}

/// Parses `MAJ:MIN` exactly (no spaces, both decimal).
impl FromStr for DeviceNumber {
    type Err = ParseDeviceNumberError;

    fn from_str(text: &str) -> std::result::Result<Self, Self::Err> {
        let error = || ParseDeviceNumberError {
            input: text.to_owned(),
        };
        let (major, minor) = text.split_once(':').ok_or_else(error)?;
        Ok(DeviceNumber {
            major: parse_decimal(major).ok_or_else(error)?,
            minor: parse_decimal(minor).ok_or_else(error)?,
        })
    }
}

/// Digits only: `str::parse` would take a leading `+`.
fn parse_decimal(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Cumulative counters of one device in `io.stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IoStat {
    pub rbytes: u64,
    pub wbytes: u64,
    pub rios: u64,
    pub wios: u64,
}

/// One device's `io.max` line; `None` is "max" (no limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IoMax {
    pub rbps: Option<u64>,
    pub wbps: Option<u64>,
    pub riops: Option<u64>,
    pub wiops: Option<u64>,
}

impl IoMax {
    pub const UNLIMITED: IoMax = IoMax {
        rbps: None,
        wbps: None,
        riops: None,
        wiops: None,
    };

    /// The four values in the kernel's key order.
    fn values(&self) -> [Option<u64>; 4] {
        [self.rbps, self.wbps, self.riops, self.wiops]
    }

    /// Why the kernel would reject (or not read back) this value, if so.
    fn invalid_reason(&self) -> Option<String> {
        let highest = [BPS_LIMIT_MAX, BPS_LIMIT_MAX, IOPS_LIMIT_MAX, IOPS_LIMIT_MAX];
        let keys = MAX_KEYS.iter().zip(highest);
        for ((key, highest), value) in keys.zip(self.values()) {
            match value {
                Some(v) if v < MAX_LIMIT_MIN => {
                    return Some(format!(
                        "{key} must be at least {MAX_LIMIT_MIN} (use max for no limit)"
                    ));
                }
                Some(v) if v > highest => {
                    return Some(format!("{key} must be at most {highest}"));
                }
                _ => {}
            }
        }
        None
    }
}

/// The body of an io.max line: `rbps=N wbps=max riops=max wiops=N`.
impl fmt::Display for IoMax {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, (key, value)) in MAX_KEYS.iter().zip(self.values()).enumerate() {
            let separator = if index == 0 { "" } else { " " };
            match value {
                Some(v) => write!(f, "{separator}{key}={v}")?,
                None => write!(f, "{separator}{key}={MAX}")?,
            }
        }
        Ok(())
    }
}

/// The source of an io.max write error when the kernel has no such whole
/// disk (ENODEV) while the group is still there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "no block device {device} (ENODEV): it was removed, or it is a partition \
     (io.max takes whole disks)"
)]
pub struct NoSuchDevice {
    pub device: DeviceNumber,
}

/// Per device; devices the group never did I/O on are absent.
pub fn read_stat(group: &Group) -> Result<BTreeMap<DeviceNumber, IoStat>> {
    let content = group.read_often(IO_STAT)?;
    parse_stat(&content)
        .map_err(|reason| file::parse_error(&group.path().join(IO_STAT), content, reason))
}

/// Parses `MAJ:MIN rbytes=N wbytes=N rios=N wios=N dbytes=N dios=N` lines.
/// Other keys (dbytes, cost.*, use_delay, ...) are skipped. The kernel omits
/// the counters of a device whose four counters are all 0 (the line is then
/// just `MAJ:MIN`), so that, and only that, reads as zero.
fn parse_stat(content: &str) -> std::result::Result<BTreeMap<DeviceNumber, IoStat>, String> {
    let mut stats = BTreeMap::new();
    for line in content.lines().filter(|l| !l.trim().is_empty()) {
        let (device, values) = parse_keyed_line(line, &STAT_KEYS)?;
        let [rbytes, wbytes, rios, wios] = match values {
            [None, None, None, None] => [0; 4],
            [Some(r), Some(w), Some(ri), Some(wi)] => parse4(device, [r, w, ri, wi], parse_u64)?,
            _ => return Err(missing_keys(device, &STAT_KEYS, &values)),
        };
        let stat = IoStat {
            rbytes,
            wbytes,
            rios,
            wios,
        };
        insert_once(&mut stats, device, stat)?;
    }
    Ok(stats)
}

/// Per device; a device without limits is absent (it is unlimited).
pub fn read_max(group: &Group) -> Result<BTreeMap<DeviceNumber, IoMax>> {
    let content = group.read_often(IO_MAX)?;
    parse_max(&content)
        .map_err(|reason| file::parse_error(&group.path().join(IO_MAX), content, reason))
}

/// Parses `MAJ:MIN rbps=N wbps=max riops=max wiops=N` lines; all four keys
/// are required, others are skipped. A line with no limit at all (the kernel
/// does not print one) is dropped, so absent always means unlimited.
fn parse_max(content: &str) -> std::result::Result<BTreeMap<DeviceNumber, IoMax>, String> {
    let mut limits = BTreeMap::new();
    for line in content.lines().filter(|l| !l.trim().is_empty()) {
        let (device, values) = parse_keyed_line(line, &MAX_KEYS)?;
        let [Some(rbps), Some(wbps), Some(riops), Some(wiops)] = values else {
            return Err(missing_keys(device, &MAX_KEYS, &values));
        };
        let [rbps, wbps, riops, wiops] = parse4(device, [rbps, wbps, riops, wiops], parse_limit)?;
        let max = IoMax {
            rbps,
            wbps,
            riops,
            wiops,
        };
        if max != IoMax::UNLIMITED {
            insert_once(&mut limits, device, max)?;
        }
    }
    Ok(limits)
}

/// Splits `MAJ:MIN key=value ...` into the device and the values of `keys`
/// (in that order); unknown keys are skipped, a repeated key is an error.
fn parse_keyed_line<'a>(
    line: &'a str,
    keys: &[&str; 4],
) -> std::result::Result<(DeviceNumber, [Option<&'a str>; 4]), String> {
    let mut fields = line.split_whitespace();
    let first = fields.next().unwrap_or_default();
    let device: DeviceNumber = first.parse().map_err(|e| format!("{e} in line {line:?}"))?;
    let mut values = [None; 4];
    for field in fields {
        let (key, value) = field
            .split_once('=')
            .ok_or_else(|| format!("{device}: {field:?} is not key=value"))?;
        let Some(index) = keys.iter().position(|k| *k == key) else {
            continue;
        };
        if values[index].replace(value).is_some() {
            return Err(format!("{device}: {key} appears twice"));
        }
    }
    Ok((device, values))
}

fn missing_keys(device: DeviceNumber, keys: &[&str; 4], values: &[Option<&str>; 4]) -> String {
    let missing: Vec<&str> = keys
        .iter()
        .zip(values)
        .filter(|(_, value)| value.is_none())
        .map(|(key, _)| *key)
        .collect();
    format!("{device}: {} missing", missing.join(", "))
}

fn parse_u64(device: DeviceNumber, value: &str) -> std::result::Result<u64, String> {
    value
        .parse()
        .map_err(|_| format!("{device}: {value:?} is not a number"))
}

/// `max` or a number.
fn parse_limit(device: DeviceNumber, value: &str) -> std::result::Result<Option<u64>, String> {
    match value {
        MAX => Ok(None),
        number => parse_u64(device, number).map(Some),
    }
}

fn parse4<T>(
    device: DeviceNumber,
    [a, b, c, d]: [&str; 4],
    parse: fn(DeviceNumber, &str) -> std::result::Result<T, String>,
) -> std::result::Result<[T; 4], String> {
    Ok([
        parse(device, a)?,
        parse(device, b)?,
        parse(device, c)?,
        parse(device, d)?,
    ])
}

fn insert_once<T>(
    map: &mut BTreeMap<DeviceNumber, T>,
    device: DeviceNumber,
    value: T,
) -> std::result::Result<(), String> {
    match map.insert(device, value) {
        Some(_) => Err(format!("{device} appears twice")),
        None => Ok(()),
    }
}

/// Writes one device's line, `MAJ:MIN rbps=... wbps=... riops=... wiops=...`,
/// with `max` for `None`, in one write(2). Values the kernel would refuse (or
/// read back differently) are refused first. A device the kernel does not
/// know as a whole disk is a Write error whose source is [`NoSuchDevice`]
/// (see [`CgroupError::is_no_device`]), so it is not taken for a vanished group.
pub fn write_max(group: &Group, device: DeviceNumber, max: IoMax) -> Result<()> {
    let path = group.path().join(IO_MAX);
    let value = format!("{device} {max}");
    if let Some(reason) = max.invalid_reason() {
        return Err(invalid(&path, value, reason));
    }
    file::write(&path, &value).map_err(|error| name_missing_device(group, device, error))
}

/// ENODEV from the write itself, with the group still there, is the device.
fn name_missing_device(group: &Group, device: DeviceNumber, error: CgroupError) -> CgroupError {
    match error {
        CgroupError::Write {
            path,
            value,
            source,
        } if source.raw_os_error() == Some(Errno::ENODEV as i32) && group.exists() => {
            CgroupError::Write {
                path,
                value,
                source: io::Error::new(io::ErrorKind::NotFound, NoSuchDevice { device }),
            }
        }
        other => other,
    }
}

/// The default weight in `io.weight` (iocost); `Ok(None)` when the file does
/// not exist (the kernel has no iocost, or the parent has not enabled the io
/// controller for the group). A vanished group is an error, not `None`.
pub fn read_weight(group: &Group) -> Result<Option<u32>> {
    read_default_weight(group, IO_WEIGHT)
}

/// Writes `default N` to `io.weight`; rejects weights outside 1..=10000.
pub fn write_weight(group: &Group, weight: u32) -> Result<()> {
    write_default_weight(group, IO_WEIGHT, WEIGHT_MAX, weight)
}

/// The default weight in the file of `mode` (`io.weight` or
/// `io.bfq.weight`); `Ok(None)` for [`IoWeightMode::None`] or a missing file.
pub fn read_mode_weight(group: &Group, mode: IoWeightMode) -> Result<Option<u32>> {
    match mode.weight_file() {
        Some(file_name) => read_default_weight(group, file_name),
        None => Ok(None),
    }
}

/// Writes `default N` to the file of `mode`, within [`IoWeightMode::weight_range`];
/// does nothing for [`IoWeightMode::None`].
pub fn write_mode_weight(group: &Group, mode: IoWeightMode, weight: u32) -> Result<()> {
    match (mode.weight_file(), mode.weight_range()) {
        (Some(file_name), Some(range)) => {
            write_default_weight(group, file_name, *range.end(), weight)
        }
        _ => Ok(()),
    }
}

fn read_default_weight(group: &Group, file_name: &'static str) -> Result<Option<u32>> {
    let path = group.path().join(file_name);
    let content = match group.read_often(file_name) {
        Ok(content) => content,
        // The file is missing but the group is not: no such controller.
        Err(CgroupError::Read { source, .. })
            if source.kind() == io::ErrorKind::NotFound && group.exists() =>
        {
            return Ok(None);
        }
        Err(error) => return Err(error),
    };
    match parse_default_weight(&content) {
        Some(weight) => Ok(Some(weight)),
        None => Err(file::parse_error(
            &path,
            content,
            format!("expected a \"{DEFAULT} N\" line"),
        )),
    }
}

/// `default 100` (per-device `MAJ:MIN N` lines follow; qosd sets none).
fn parse_default_weight(content: &str) -> Option<u32> {
    content.lines().find_map(|line| {
        let (key, value) = line.trim().split_once(' ')?;
        if key != DEFAULT {
            return None;
        }
        value.trim().parse().ok()
    })
}

fn write_default_weight(group: &Group, file_name: &str, highest: u32, weight: u32) -> Result<()> {
    let path = group.path().join(file_name);
    let value = format!("{DEFAULT} {weight}");
    if !(WEIGHT_MIN..=highest).contains(&weight) {
        let reason = format!("{file_name} must be in {WEIGHT_MIN}..={highest}");
        return Err(invalid(&path, value, reason));
    }
    file::write(&path, &value)
}

/// Which weight-based io controller serves a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IoWeightMode {
    /// blk-iocost is enabled for the device (`io.cost.qos` `enable=1`).
    IoCost,
    /// The device's scheduler is BFQ.
    Bfq,
    /// Neither: only io.max holds the device.
    None,
}

impl IoWeightMode {
    /// The weight file this mode reads in a group.
    pub fn weight_file(self) -> Option<&'static str> {
        match self {
            IoWeightMode::IoCost => Some(IO_WEIGHT),
            IoWeightMode::Bfq => Some(IO_BFQ_WEIGHT),
            IoWeightMode::None => None,
        }
    }

    /// The weights the kernel accepts in that file.
    pub fn weight_range(self) -> Option<std::ops::RangeInclusive<u32>> {
        match self {
            IoWeightMode::IoCost => Some(WEIGHT_MIN..=WEIGHT_MAX),
            IoWeightMode::Bfq => Some(WEIGHT_MIN..=BFQ_WEIGHT_MAX),
            IoWeightMode::None => None,
        }
    }
}

impl fmt::Display for IoWeightMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IoWeightMode::IoCost => "iocost",
            IoWeightMode::Bfq => "bfq",
            IoWeightMode::None => "io.max only",
        })
    }
}

/// iocost when `<hierarchy_root>/io.cost.qos` has `enable=1` for `device`;
/// else BFQ when `<sys_root>/dev/block/MAJ:MIN/queue/scheduler` selects
/// `[bfq]`; else none. A file that is missing or unreadable counts as "not
/// that mode": qosd then holds the device with io.max alone, which is safe.
pub fn weight_mode(hierarchy_root: &Path, device: DeviceNumber, sys_root: &Path) -> IoWeightMode {
    if iocost_enabled(hierarchy_root, device) {
        IoWeightMode::IoCost
    } else if bfq_selected(sys_root, device) {
        IoWeightMode::Bfq
    } else {
        IoWeightMode::None
    }
}

/// `8:16 enable=1 ctrl=auto rpct=0.00 ...`
fn iocost_enabled(hierarchy_root: &Path, device: DeviceNumber) -> bool {
    let Ok(content) = file::read(&hierarchy_root.join(IO_COST_QOS)) else {
        return false;
    };
    let name = device.to_string();
    content.lines().any(|line| {
        let mut fields = line.split_whitespace();
        fields.next() == Some(name.as_str()) && fields.any(|f| f == IOCOST_ENABLED)
    })
}

fn bfq_selected(sys_root: &Path, device: DeviceNumber) -> bool {
    let path = sys_root
        .join(SYS_DEV_BLOCK)
        .join(device.to_string())
        .join(QUEUE_SCHEDULER);
    file::read(&path).is_ok_and(|content| content.split_whitespace().any(|s| s == BFQ_SELECTED))
}

fn invalid(path: &Path, value: String, reason: String) -> CgroupError {
    CgroupError::InvalidValue {
        path: path.to_owned(),
        value,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::fake::FakeTree;

    /// io.stat of a group on kernel 6.1: a disk with discards, an NVMe disk,
    /// a device whose counters are all 0 (the kernel prints only its number),
    /// and iocost's debug keys.
    const STAT_TEXT: &str = "8:16 rbytes=1459200 wbytes=314773504 rios=192 wios=353 dbytes=0 dios=0\n\
        8:0 rbytes=90430464 wbytes=299008000 rios=8950 wios=1252 dbytes=50331648 dios=3021\n\
        259:0 rbytes=4096 wbytes=0 rios=1 wios=0 dbytes=0 dios=0 cost.vrate=100.00 cost.usage=7\n\
        254:0 \n";

    /// io.stat of an older kernel (before 5.2): no discard keys.
    const STAT_OLD: &str = "8:0 rbytes=512 wbytes=1024 rios=1 wios=2\n";

    const SDA: DeviceNumber = DeviceNumber { major: 8, minor: 0 };
    const VDA: DeviceNumber = DeviceNumber {
        major: 254,
        minor: 0,
    };

    fn web(tree: &FakeTree) -> Group {
        tree.add_group("web");
        tree.hierarchy().group(Path::new("web"))
    }

    fn assert_parse_error(error: &CgroupError, file: &str, text: &str) {
        assert!(
            matches!(error, CgroupError::Parse { path, content, .. }
                if path.ends_with(file) && content == text),
            "{text:?}: {error}"
        );
    }

    #[test]
    fn device_numbers_parse_and_print() {
        let device: DeviceNumber = "259:3".parse().unwrap();
        assert_eq!(
            device,
            DeviceNumber {
                major: 259,
                minor: 3
            }
        );
        assert_eq!(device.to_string(), "259:3");
        for bad in [
            "",
            "8",
            "8:",
            ":0",
            "8:0:1",
            " 8:0",
            "+8:0",
            "a:b",
            "8:-1",
            "4294967296:0",
        ] {
            let error = bad.parse::<DeviceNumber>().unwrap_err();
            assert!(error.to_string().contains(&format!("{bad:?}")), "{error}");
        }
    }

    #[test]
    fn stat_of_several_devices() {
        let stats = parse_stat(STAT_TEXT).unwrap();
        assert_eq!(stats.len(), 4);
        assert_eq!(
            stats[&SDA],
            IoStat {
                rbytes: 90_430_464,
                wbytes: 299_008_000,
                rios: 8950,
                wios: 1252,
            }
        );
        let nvme = DeviceNumber {
            major: 259,
            minor: 0,
        };
        assert_eq!(stats[&nvme].rbytes, 4096);
        assert_eq!(stats[&VDA], IoStat::default());
    }

    #[test]
    fn stat_without_discard_keys() {
        let stats = parse_stat(STAT_OLD).unwrap();
        assert_eq!(
            stats[&SDA],
            IoStat {
                rbytes: 512,
                wbytes: 1024,
                rios: 1,
                wios: 2
            }
        );
    }

    #[test]
    fn empty_stat_is_no_devices() {
        assert!(parse_stat("").unwrap().is_empty());
        assert!(parse_stat("\n").unwrap().is_empty());
    }

    #[test]
    fn stat_garbage_is_an_error_with_path_and_content() {
        let tree = FakeTree::new();
        let group = web(&tree);
        let cases = [
            "sda rbytes=1 wbytes=1 rios=1 wios=1\n",
            "8:0 rbytes=1 wbytes=1 rios=1\n",
            "8:0 rbytes=x wbytes=1 rios=1 wios=1\n",
            "8:0 rbytes=-1 wbytes=1 rios=1 wios=1\n",
            "8:0 rbytes wbytes=1 rios=1 wios=1\n",
            "8:0 rbytes=1 rbytes=2 wbytes=1 rios=1 wios=1\n",
            "8:0 rbytes=1 wbytes=1 rios=1 wios=1\n8:0 rbytes=1 wbytes=1 rios=1 wios=1\n",
        ];
        for text in cases {
            tree.write("web/io.stat", text);
            assert_parse_error(&read_stat(&group).unwrap_err(), "web/io.stat", text);
        }
    }

    #[test]
    fn stat_error_names_the_missing_keys() {
        let error = parse_stat("8:0 rbytes=1 rios=1\n").unwrap_err();
        assert_eq!(error, "8:0: wbytes, wios missing");
    }

    #[test]
    fn read_stat_from_a_group_is_reread_each_time() {
        let tree = FakeTree::new();
        let group = web(&tree);
        assert!(read_stat(&group).unwrap().is_empty());
        tree.write("web/io.stat", STAT_TEXT);
        assert_eq!(read_stat(&group).unwrap()[&SDA].rios, 8950);
        tree.write("web/io.stat", STAT_OLD);
        assert_eq!(read_stat(&group).unwrap()[&SDA].rios, 1);
    }

    #[test]
    fn max_with_numbers_and_max() {
        let text = "8:16 rbps=2097152 wbps=max riops=max wiops=120\n\
                    254:0 rbps=max wbps=max riops=1000 wiops=max\n";
        let limits = parse_max(text).unwrap();
        assert_eq!(
            limits[&DeviceNumber {
                major: 8,
                minor: 16
            }],
            IoMax {
                rbps: Some(2_097_152),
                wbps: None,
                riops: None,
                wiops: Some(120),
            }
        );
        assert_eq!(
            limits[&VDA],
            IoMax {
                riops: Some(1000),
                ..IoMax::UNLIMITED
            }
        );
    }

    #[test]
    fn max_lines_without_a_limit_are_dropped() {
        let limits = parse_max("8:0 rbps=max wbps=max riops=max wiops=max\n").unwrap();
        assert!(limits.is_empty());
        assert!(parse_max("").unwrap().is_empty());
    }

    #[test]
    fn max_garbage_is_an_error_with_path_and_content() {
        let tree = FakeTree::new();
        let group = web(&tree);
        let cases = [
            "8:0 rbps=1000\n",
            "8:0 rbps=lots wbps=max riops=max wiops=max\n",
            "8:0 rbps=-5 wbps=max riops=max wiops=max\n",
            "8:0 rbps=MAX wbps=max riops=max wiops=max\n",
            "nope rbps=max wbps=max riops=max wiops=max\n",
            "8:0 rbps=2 wbps=max riops=max wiops=max\n8:0 rbps=3 wbps=max riops=max wiops=max\n",
        ];
        for text in cases {
            tree.write("web/io.max", text);
            assert_parse_error(&read_max(&group).unwrap_err(), "web/io.max", text);
        }
    }

    #[test]
    fn io_max_formats_in_the_kernels_order() {
        let max = IoMax {
            rbps: Some(20_971_520),
            wbps: None,
            riops: None,
            wiops: Some(500),
        };
        assert_eq!(
            max.to_string(),
            "rbps=20971520 wbps=max riops=max wiops=500"
        );
        assert_eq!(
            IoMax::UNLIMITED.to_string(),
            "rbps=max wbps=max riops=max wiops=max"
        );
    }

    #[test]
    fn write_max_writes_one_line_and_reads_back() {
        let tree = FakeTree::new();
        let group = web(&tree);
        let max = IoMax {
            rbps: Some(10_485_760),
            wiops: Some(IOPS_LIMIT_MAX),
            ..IoMax::UNLIMITED
        };
        write_max(&group, SDA, max).unwrap();
        assert_eq!(
            tree.read("web/io.max"),
            "8:0 rbps=10485760 wbps=max riops=max wiops=4294967294"
        );
        assert_eq!(read_max(&group).unwrap()[&SDA], max);

        write_max(&group, SDA, IoMax::UNLIMITED).unwrap();
        assert_eq!(
            tree.read("web/io.max"),
            "8:0 rbps=max wbps=max riops=max wiops=max"
        );
        assert!(read_max(&group).unwrap().is_empty());
    }

    #[test]
    fn write_max_refuses_what_the_kernel_would_not_hold() {
        let tree = FakeTree::new();
        let group = web(&tree);
        let cases = [
            (
                IoMax {
                    rbps: Some(0),
                    ..IoMax::UNLIMITED
                },
                "rbps must be at least 2",
            ),
            (
                IoMax {
                    wbps: Some(1),
                    ..IoMax::UNLIMITED
                },
                "wbps must be at least 2",
            ),
            (
                IoMax {
                    riops: Some(0),
                    ..IoMax::UNLIMITED
                },
                "riops must be at least 2",
            ),
            (
                IoMax {
                    wiops: Some(u64::from(u32::MAX)),
                    ..IoMax::UNLIMITED
                },
                "wiops must be at most 4294967294",
            ),
            (
                IoMax {
                    rbps: Some(u64::MAX),
                    ..IoMax::UNLIMITED
                },
                "rbps must be at most",
            ),
        ];
        for (max, reason) in cases {
            let error = write_max(&group, SDA, max).unwrap_err();
            let value = format!("8:0 {max}");
            assert!(
                matches!(error, CgroupError::InvalidValue { value: ref v, .. } if *v == value),
                "{error}"
            );
            assert!(error.to_string().contains(reason), "{error}");
        }
        assert_eq!(tree.read("web/io.max"), "");
    }

    #[test]
    fn write_max_to_a_removed_group_is_vanished_and_carries_the_value() {
        let tree = FakeTree::new();
        let group = tree.hierarchy().group(Path::new("gone"));
        let error = write_max(&group, SDA, IoMax::UNLIMITED).unwrap_err();
        assert!(error.is_vanished());
        assert!(!error.is_no_device());
        let text = error.to_string();
        assert!(text.contains("gone/io.max"), "{text}");
        assert!(
            text.contains("\"8:0 rbps=max wbps=max riops=max wiops=max\""),
            "{text}"
        );
    }

    fn write_error(path: &Path, errno: Errno) -> CgroupError {
        CgroupError::Write {
            path: path.join(IO_MAX),
            value: "8:0 rbps=2 wbps=max riops=max wiops=max".into(),
            source: io::Error::from(errno),
        }
    }

    #[test]
    fn enodev_with_the_group_present_is_a_missing_device() {
        let tree = FakeTree::new();
        let group = web(&tree);
        let error = name_missing_device(&group, SDA, write_error(group.path(), Errno::ENODEV));
        assert!(error.is_no_device(), "{error}");
        assert!(!error.is_vanished(), "{error}");
        let text = error.to_string();
        assert!(text.contains("web/io.max"), "{text}");
        assert!(
            text.contains("\"8:0 rbps=2 wbps=max riops=max wiops=max\""),
            "{text}"
        );
        assert!(text.contains("no block device 8:0 (ENODEV)"), "{text}");
    }

    #[test]
    fn other_write_errors_are_kept_as_they_are() {
        let tree = FakeTree::new();
        let group = web(&tree);
        let einval = name_missing_device(&group, SDA, write_error(group.path(), Errno::EINVAL));
        assert!(!einval.is_no_device() && !einval.is_vanished(), "{einval}");
        assert!(einval.to_string().contains("Invalid argument"), "{einval}");

        let gone = tree.hierarchy().group(Path::new("gone"));
        let enodev = name_missing_device(&gone, SDA, write_error(gone.path(), Errno::ENODEV));
        assert!(enodev.is_vanished() && !enodev.is_no_device(), "{enodev}");
    }

    #[test]
    fn weight_reads_the_default_line() {
        let tree = FakeTree::new();
        let group = web(&tree);
        assert_eq!(read_weight(&group).unwrap(), Some(100));
        tree.write("web/io.weight", "default 250\n8:0 500\n");
        assert_eq!(read_weight(&group).unwrap(), Some(250));
    }

    #[test]
    fn weight_file_absent_is_none() {
        let tree = FakeTree::new();
        let group = web(&tree);
        std::fs::remove_file(group.path().join(IO_WEIGHT)).unwrap();
        assert_eq!(read_weight(&group).unwrap(), None);
        assert_eq!(read_mode_weight(&group, IoWeightMode::Bfq).unwrap(), None);
    }

    #[test]
    fn weight_of_a_removed_group_is_an_error_not_none() {
        let tree = FakeTree::new();
        let group = tree.hierarchy().group(Path::new("gone"));
        assert!(read_weight(&group).unwrap_err().is_vanished());
    }

    #[test]
    fn weight_garbage_is_an_error_with_path_and_content() {
        let tree = FakeTree::new();
        let group = web(&tree);
        for text in ["", "100\n", "default\n", "default lots\n", "8:0 100\n"] {
            tree.write("web/io.weight", text);
            assert_parse_error(&read_weight(&group).unwrap_err(), "web/io.weight", text);
        }
    }

    #[test]
    fn write_weight_bounds() {
        let tree = FakeTree::new();
        let group = web(&tree);
        for good in [WEIGHT_MIN, 100, WEIGHT_MAX] {
            write_weight(&group, good).unwrap();
            assert_eq!(tree.read("web/io.weight"), format!("default {good}"));
            assert_eq!(read_weight(&group).unwrap(), Some(good));
        }
        for bad in [0, WEIGHT_MAX + 1] {
            let error = write_weight(&group, bad).unwrap_err();
            assert!(
                matches!(error, CgroupError::InvalidValue { ref value, .. }
                    if *value == format!("default {bad}")),
                "{error}"
            );
        }
    }

    #[test]
    fn mode_weight_goes_to_the_modes_file_within_its_range() {
        let tree = FakeTree::new();
        let group = web(&tree);
        tree.write("web/io.bfq.weight", "default 100\n");

        write_mode_weight(&group, IoWeightMode::Bfq, 400).unwrap();
        assert_eq!(tree.read("web/io.bfq.weight"), "default 400");
        assert_eq!(
            read_mode_weight(&group, IoWeightMode::Bfq).unwrap(),
            Some(400)
        );
        let error = write_mode_weight(&group, IoWeightMode::Bfq, 1001).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("io.bfq.weight must be in 1..=1000"),
            "{error}"
        );

        write_mode_weight(&group, IoWeightMode::IoCost, 5000).unwrap();
        assert_eq!(tree.read("web/io.weight"), "default 5000");

        write_mode_weight(&group, IoWeightMode::None, 5000).unwrap();
        assert_eq!(read_mode_weight(&group, IoWeightMode::None).unwrap(), None);
        assert_eq!(tree.read("web/io.bfq.weight"), "default 400");
    }

    /// A fake `/sys` with `dev/block/<device>/queue/scheduler`.
    fn fake_sys(device: &str, scheduler: &str) -> tempfile::TempDir {
        let sys = tempfile::tempdir().unwrap();
        let queue = sys.path().join("dev/block").join(device).join("queue");
        std::fs::create_dir_all(&queue).unwrap();
        std::fs::write(queue.join("scheduler"), scheduler).unwrap();
        sys
    }

    #[test]
    fn weight_mode_iocost_when_enabled_for_the_device() {
        let tree = FakeTree::new();
        tree.write(
            "io.cost.qos",
            "8:16 enable=0 ctrl=auto rpct=0.00 rlat=250000 wpct=0.00 wlat=250000 min=1.00 max=10000.00\n\
             8:0 enable=1 ctrl=user rpct=95.00 rlat=10000 wpct=95.00 wlat=20000 min=50.00 max=150.00\n",
        );
        let sys = fake_sys("8:0", "mq-deadline kyber [bfq] none\n");
        assert_eq!(
            weight_mode(tree.path(), SDA, sys.path()),
            IoWeightMode::IoCost
        );
        let sdb = DeviceNumber {
            major: 8,
            minor: 16,
        };
        assert_eq!(
            weight_mode(tree.path(), sdb, sys.path()),
            IoWeightMode::None
        );
    }

    #[test]
    fn weight_mode_bfq_when_the_scheduler_is_bfq() {
        let tree = FakeTree::new();
        let sys = fake_sys("254:0", "mq-deadline kyber [bfq] none\n");
        assert_eq!(weight_mode(tree.path(), VDA, sys.path()), IoWeightMode::Bfq);
    }

    #[test]
    fn weight_mode_none_otherwise() {
        let tree = FakeTree::new();
        let available_only = fake_sys("254:0", "[mq-deadline] kyber bfq none\n");
        assert_eq!(
            weight_mode(tree.path(), VDA, available_only.path()),
            IoWeightMode::None
        );
        let nothing = tempfile::tempdir().unwrap();
        assert_eq!(
            weight_mode(nothing.path(), VDA, nothing.path()),
            IoWeightMode::None
        );
    }

    #[test]
    fn weight_mode_names() {
        assert_eq!(IoWeightMode::IoCost.to_string(), "iocost");
        assert_eq!(IoWeightMode::Bfq.to_string(), "bfq");
        assert_eq!(IoWeightMode::None.to_string(), "io.max only");
    }

    #[test]
    fn io_pressure_reads_through_the_pressure_module() {
        use crate::cgroup::pressure::{self, PressureResource};
        let tree = FakeTree::new();
        let group = web(&tree);
        tree.write(
            "web/io.pressure",
            "some avg10=12.50 avg60=3.00 avg300=0.75 total=812345\n\
             full avg10=10.00 avg60=2.50 avg300=0.50 total=700000\n",
        );
        let io = pressure::read(&group, PressureResource::Io).unwrap();
        assert_eq!(io.some.total_usec, 812_345);
        assert_eq!(io.full.unwrap().avg10, 10.0);
    }
}
