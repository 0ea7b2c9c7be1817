//! io.weight (iocost) and io.bfq.weight: a group's default weight, and which
//! of the two files a device's weight-based controller reads.

use std::fmt;
use std::ops::RangeInclusive;

use super::IoValueError;
use crate::cgroup::{Group, Result, ValueError, file};

const IO_WEIGHT: &str = "io.weight";
const IO_BFQ_WEIGHT: &str = "io.bfq.weight";

/// The key of the default weight line in io.weight and io.bfq.weight.
pub(super) const DEFAULT: &str = "default";

/// io.weight (iocost) bounds, as for cpu.weight.
pub const WEIGHT_MIN: u32 = 1;
pub const WEIGHT_MAX: u32 = 10_000;
/// io.bfq.weight bounds (BFQ_MIN_WEIGHT, BFQ_MAX_WEIGHT).
pub const BFQ_WEIGHT_MAX: u32 = 1_000;

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
    pub fn weight_range(self) -> Option<RangeInclusive<u32>> {
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

/// The default weight in `io.weight` (iocost); `Ok(None)` when the file does
/// not exist (the kernel has no iocost, or the parent has not enabled the io
/// controller for the group). A vanished group is an error, not `None`.
pub fn read_weight(group: &Group) -> Result<Option<u32>> {
    read_default_weight(group, IO_WEIGHT)
}

/// Writes `default N` to `io.weight`; rejects weights outside 1..=10000.
pub fn write_weight(group: &Group, weight: u32) -> Result<()> {
    write_default_weight(group, IO_WEIGHT, WEIGHT_MIN..=WEIGHT_MAX, weight)
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
        (Some(file_name), Some(range)) => write_default_weight(group, file_name, range, weight),
        _ => Ok(()),
    }
}

fn read_default_weight(group: &Group, file_name: &'static str) -> Result<Option<u32>> {
    group.read_parsed_if_present(file_name, parse_default_weight)
}

/// `default 100` (per-device `MAJ:MIN N` lines follow; qosd sets none).
fn parse_default_weight(content: &str) -> std::result::Result<u32, IoValueError> {
    content
        .lines()
        .find_map(|line| {
            let (key, value) = line.trim().split_once(' ')?;
            if key != DEFAULT {
                return None;
            }
            value.trim().parse().ok()
        })
        .ok_or(IoValueError::NoDefaultWeight)
}

fn write_default_weight(
    group: &Group,
    file_name: &'static str,
    range: RangeInclusive<u32>,
    weight: u32,
) -> Result<()> {
    let refusal = ValueError::unless_within(file_name, range, weight);
    let path = group.path().join(file_name);
    file::write_unless(&path, &format!("{DEFAULT} {weight}"), refusal)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::cgroup::fake::{FakeTree, assert_each_fails_to_parse, assert_refused};

    #[test]
    fn weight_reads_the_default_line() {
        let (tree, group) = FakeTree::with_group("web", &[]);
        assert_eq!(read_weight(&group).unwrap(), Some(100));
        tree.write("web/io.weight", "default 250\n8:0 500\n");
        assert_eq!(read_weight(&group).unwrap(), Some(250));
    }

    #[test]
    fn weight_file_absent_is_none() {
        let (_tree, group) = FakeTree::with_group("web", &[]);
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
        let cases = ["", "100\n", "default\n", "default lots\n", "8:0 100\n"];
        assert_each_fails_to_parse(IO_WEIGHT, &cases, read_weight);
    }

    #[test]
    fn write_weight_bounds() {
        let (tree, group) = FakeTree::with_group("web", &[]);
        for good in [WEIGHT_MIN, 100, WEIGHT_MAX] {
            write_weight(&group, good).unwrap();
            assert_eq!(tree.read("web/io.weight"), format!("default {good}"));
            assert_eq!(read_weight(&group).unwrap(), Some(good));
        }
        for bad in [0, WEIGHT_MAX + 1] {
            let error = write_weight(&group, bad).unwrap_err();
            assert_refused(&error, &format!("default {bad}"));
        }
    }

    #[test]
    fn mode_weight_goes_to_the_modes_file_within_its_range() {
        let (tree, group) = FakeTree::with_group("web", &[]);
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

    #[test]
    fn weight_mode_names() {
        assert_eq!(IoWeightMode::IoCost.to_string(), "iocost");
        assert_eq!(IoWeightMode::Bfq.to_string(), "bfq");
        assert_eq!(IoWeightMode::None.to_string(), "io.max only");
    }
}
