//! io.max: a group's per-device limits (bytes and I/Os per second).

use std::collections::BTreeMap;
use std::fmt;
use std::io;

use nix::errno::Errno;

use super::nested_keyed::{self, Values};
use super::{DeviceNumber, IoValueError};
use crate::cgroup::{CgroupError, Group, Result, file};

const IO_MAX: &str = "io.max";

/// The unlimited value of an io.max key.
const MAX: &str = "max";

/// io.max keys, in the kernel's order; it always prints all four.
const MAX_KEYS: [&str; 4] = ["rbps", "wbps", "riops", "wiops"];

/// The smallest io.max value every kernel accepts: 0 is ERANGE on all of
/// them, and 1 is EINVAL from a late-2020 change until its 2024 revert
/// (Debian 12's 6.1 among them). See block/blk-throttle.c, tg_set_limit.
pub const MAX_LIMIT_MIN: u64 = 2;
/// The kernel keeps iops limits in 32 bits: a bigger value is silently
/// clamped, and `u32::MAX` itself reads back as `max`.
pub const IOPS_LIMIT_MAX: u64 = u32::MAX as u64 - 1;
/// A bps of `u64::MAX` reads back as `max`.
pub const BPS_LIMIT_MAX: u64 = u64::MAX - 1;

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
    fn refusal(&self) -> Option<IoValueError> {
        let highest = [BPS_LIMIT_MAX, BPS_LIMIT_MAX, IOPS_LIMIT_MAX, IOPS_LIMIT_MAX];
        let keys = MAX_KEYS.iter().zip(highest);
        for ((&key, highest), value) in keys.zip(self.values()) {
            match value {
                Some(v) if v < MAX_LIMIT_MIN => return Some(IoValueError::LimitTooLow { key }),
                Some(v) if v > highest => {
                    return Some(IoValueError::LimitTooHigh { key, highest });
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

/// Per device; a device without limits is absent (it is unlimited).
pub fn read_max(group: &Group) -> Result<BTreeMap<DeviceNumber, IoMax>> {
    group.read_parsed(IO_MAX, parse_max)
}

/// Parses `MAJ:MIN rbps=N wbps=max riops=max wiops=N` lines; all four keys
/// are required, others are skipped. A line with no limit at all (the kernel
/// does not print one) is dropped, so absent always means unlimited.
fn parse_max(content: &str) -> std::result::Result<BTreeMap<DeviceNumber, IoMax>, IoValueError> {
    nested_keyed::parse_devices(content, &MAX_KEYS, |device, values| {
        let max = max_of(device, values)?;
        Ok((max != IoMax::UNLIMITED).then_some(max))
    })
}

fn max_of(device: DeviceNumber, values: Values<4>) -> std::result::Result<IoMax, IoValueError> {
    let [rbps, wbps, riops, wiops] =
        nested_keyed::required(device, &MAX_KEYS, values, parse_limit)?;
    Ok(IoMax {
        rbps,
        wbps,
        riops,
        wiops,
    })
}

/// `max` or a number.
fn parse_limit(
    device: DeviceNumber,
    value: &str,
) -> std::result::Result<Option<u64>, IoValueError> {
    match value {
        MAX => Ok(None),
        number => nested_keyed::number(device, number).map(Some),
    }
}

/// Writes one device's line, `MAJ:MIN rbps=... wbps=... riops=... wiops=...`,
/// with `max` for `None`, in one write(2). Values the kernel would refuse (or
/// read back differently) are refused first. A device the kernel does not
/// know as a whole disk is a Write error whose source is [`NoSuchDevice`]
/// (see [`CgroupError::is_no_device`]), so it is not taken for a vanished group.
pub fn write_max(group: &Group, device: DeviceNumber, max: IoMax) -> Result<()> {
    let path = group.path().join(IO_MAX);
    let refusal = max.refusal().map(Into::into);
    file::write_unless(&path, &format!("{device} {max}"), refusal)
        .map_err(|error| name_missing_device(group, device, error))
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::cgroup::fake::{
        FakeTree, assert_each_fails_to_parse, assert_mentions, assert_refused,
    };
    use crate::cgroup::io::fixtures::{SDA, VDA};

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
    }

    #[test]
    fn max_garbage_is_an_error_with_path_and_content() {
        let cases = [
            "8:0 rbps=1000\n",
            "8:0 rbps=lots wbps=max riops=max wiops=max\n",
            "8:0 rbps=-5 wbps=max riops=max wiops=max\n",
            "8:0 rbps=MAX wbps=max riops=max wiops=max\n",
            "nope rbps=max wbps=max riops=max wiops=max\n",
            "8:0 rbps=2 wbps=max riops=max wiops=max\n8:0 rbps=3 wbps=max riops=max wiops=max\n",
        ];
        assert_each_fails_to_parse(IO_MAX, &cases, read_max);
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
        let (tree, group) = FakeTree::with_group("web", &[]);
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
        let (tree, group) = FakeTree::with_group("web", &[]);
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
            assert_refused(&error, &format!("8:0 {max}"));
            assert_mentions(&error, &[reason]);
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
        assert_mentions(
            &error,
            &[
                "gone/io.max",
                "\"8:0 rbps=max wbps=max riops=max wiops=max\"",
            ],
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
        let (_tree, group) = FakeTree::with_group("web", &[]);
        let error = name_missing_device(&group, SDA, write_error(group.path(), Errno::ENODEV));
        assert!(error.is_no_device(), "{error}");
        assert!(!error.is_vanished(), "{error}");
        assert_mentions(
            &error,
            &[
                "web/io.max",
                "\"8:0 rbps=2 wbps=max riops=max wiops=max\"",
                "no block device 8:0 (ENODEV)",
            ],
        );
    }

    #[test]
    fn other_write_errors_are_kept_as_they_are() {
        let (tree, group) = FakeTree::with_group("web", &[]);
        let einval = name_missing_device(&group, SDA, write_error(group.path(), Errno::EINVAL));
        assert!(!einval.is_no_device() && !einval.is_vanished(), "{einval}");
        assert!(einval.to_string().contains("Invalid argument"), "{einval}");

        let gone = tree.hierarchy().group(Path::new("gone"));
        let enodev = name_missing_device(&gone, SDA, write_error(gone.path(), Errno::ENODEV));
        assert!(enodev.is_vanished() && !enodev.is_no_device(), "{enodev}");
    }
}
