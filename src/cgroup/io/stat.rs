//! io.stat: cumulative I/O of a group, per device.

use std::collections::BTreeMap;

use super::nested_keyed::{self, Values};
use super::{DeviceNumber, IoValueError};
use crate::cgroup::{Group, Result};

const IO_STAT: &str = "io.stat";

/// The io.stat keys qosd reads; the kernel prints the four together or none
/// of them.
const STAT_KEYS: [&str; 4] = ["rbytes", "wbytes", "rios", "wios"];

/// Cumulative counters of one device in `io.stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IoStat {
    pub rbytes: u64,
    pub wbytes: u64,
    pub rios: u64,
    pub wios: u64,
}

/// Per device; devices the group never did I/O on are absent.
pub fn read_stat(group: &Group) -> Result<BTreeMap<DeviceNumber, IoStat>> {
    group.read_parsed(IO_STAT, parse_stat)
}

/// Parses `MAJ:MIN rbytes=N wbytes=N rios=N wios=N dbytes=N dios=N` lines.
/// Other keys (dbytes, cost.*, use_delay, ...) are skipped. The kernel omits
/// the counters of a device whose four counters are all 0 (the line is then
/// just `MAJ:MIN`), so that, and only that, reads as zero.
fn parse_stat(content: &str) -> std::result::Result<BTreeMap<DeviceNumber, IoStat>, IoValueError> {
    nested_keyed::parse_devices(content, &STAT_KEYS, |device, values| {
        Ok(Some(stat_of(device, values)?))
    })
}

fn stat_of(device: DeviceNumber, values: Values<4>) -> std::result::Result<IoStat, IoValueError> {
    let [rbytes, wbytes, rios, wios] = if values == [None; 4] {
        [0; 4]
    } else {
        nested_keyed::required(device, &STAT_KEYS, values, nested_keyed::number)?
    };
    Ok(IoStat {
        rbytes,
        wbytes,
        rios,
        wios,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::fake::{FakeTree, assert_each_fails_to_parse};
    use crate::cgroup::io::fixtures::{SDA, VDA};

    /// io.stat of a group on kernel 6.1: a disk with discards, an NVMe disk,
    /// a device whose counters are all 0 (the kernel prints only its number),
    /// and iocost's debug keys.
    const STAT_TEXT: &str = "8:16 rbytes=1459200 wbytes=314773504 rios=192 wios=353 dbytes=0 dios=0\n\
        8:0 rbytes=90430464 wbytes=299008000 rios=8950 wios=1252 dbytes=50331648 dios=3021\n\
        259:0 rbytes=4096 wbytes=0 rios=1 wios=0 dbytes=0 dios=0 cost.vrate=100.00 cost.usage=7\n\
        254:0 \n";

    /// io.stat of an older kernel (before 5.2): no discard keys.
    const STAT_OLD: &str = "8:0 rbytes=512 wbytes=1024 rios=1 wios=2\n";

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
    fn stat_garbage_is_an_error_with_path_and_content() {
        let cases = [
            "sda rbytes=1 wbytes=1 rios=1 wios=1\n",
            "8:0 rbytes=1 wbytes=1 rios=1\n",
            "8:0 rbytes=x wbytes=1 rios=1 wios=1\n",
            "8:0 rbytes=-1 wbytes=1 rios=1 wios=1\n",
            "8:0 rbytes wbytes=1 rios=1 wios=1\n",
            "8:0 rbytes=1 rbytes=2 wbytes=1 rios=1 wios=1\n",
            "8:0 rbytes=1 wbytes=1 rios=1 wios=1\n8:0 rbytes=1 wbytes=1 rios=1 wios=1\n",
        ];
        assert_each_fails_to_parse(IO_STAT, &cases, read_stat);
    }

    #[test]
    fn a_device_listed_twice_is_a_typed_error() {
        let text = "8:0 rbytes=1 wbytes=1 rios=1 wios=1\n8:0\n";
        assert_eq!(
            parse_stat(text).unwrap_err(),
            IoValueError::RepeatedDevice { device: SDA }
        );
    }

    #[test]
    fn stat_error_names_the_missing_keys() {
        let error = parse_stat("8:0 rbytes=1 rios=1\n").unwrap_err();
        assert_eq!(error.to_string(), "8:0: wbytes, wios missing");
    }

    #[test]
    fn read_stat_from_a_group_is_reread_each_time() {
        let (tree, group) = FakeTree::with_group("web", &[]);
        assert!(read_stat(&group).unwrap().is_empty());
        tree.write("web/io.stat", STAT_TEXT);
        assert_eq!(read_stat(&group).unwrap()[&SDA].rios, 8950);
        tree.write("web/io.stat", STAT_OLD);
        assert_eq!(read_stat(&group).unwrap()[&SDA].rios, 1);
    }
}
