//! /proc/diskstats: the host's cumulative I/O, per block device.

use std::collections::BTreeMap;

use procfs_core::DiskStat;

use super::{ProcError, ProcFs, crate_reason};
use crate::cgroup::io::DeviceNumber;

const DISKSTATS: &str = "diskstats";

/// /proc/diskstats counts sectors of 512 bytes, whatever the device's block size.
pub const SECTOR_BYTES: u64 = 512;

/// Cumulative counters of one block device in /proc/diskstats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DiskStats {
    pub reads: u64,
    pub sectors_read: u64,
    pub writes: u64,
    pub sectors_written: u64,
    /// Milliseconds the device had I/O in flight (utilisation).
    pub io_ticks_ms: u64,
    /// Weighted milliseconds spent in the queue.
    pub time_in_queue_ms: u64,
}

impl ProcFs {
    /// /proc/diskstats by device number: whole disks and partitions alike
    /// (the caller picks). A malformed line is an error naming the line.
    pub fn read_diskstats(&self) -> Result<BTreeMap<DeviceNumber, DiskStats>, ProcError> {
        self.read_parsed(DISKSTATS, parse_diskstats)
    }
}

/// Line by line, so that an error names its line, and a device listed twice
/// is an error rather than one line hiding the other.
fn parse_diskstats(text: &str) -> Result<BTreeMap<DeviceNumber, DiskStats>, String> {
    let mut disks = BTreeMap::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let place = || format!("line {} ({line:?})", index + 1);
        let (device, stats) =
            parse_disk_line(line).map_err(|reason| format!("{}: {reason}", place()))?;
        if disks.insert(device, stats).is_some() {
            return Err(format!("{}: device {device} appears twice", place()));
        }
    }
    Ok(disks)
}

/// `major minor name` and the 11 counters that every kernel since 2.6.25
/// prints; procfs-core takes the discard (4.18) and flush (5.5) counters
/// after them when they are numbers, and ignores them otherwise.
fn parse_disk_line(line: &str) -> Result<(DeviceNumber, DiskStats), String> {
    let disk = DiskStat::from_line(line).map_err(crate_reason)?;
    let device_part = |value: i32, what: &str| {
        u32::try_from(value).map_err(|_| format!("{what} {value} is negative"))
    };
    let device = DeviceNumber {
        major: device_part(disk.major, "major")?,
        minor: device_part(disk.minor, "minor")?,
    };
    let stats = DiskStats {
        reads: disk.reads,
        sectors_read: disk.sectors_read,
        writes: disk.writes,
        sectors_written: disk.sectors_written,
        io_ticks_ms: disk.time_in_progress,
        time_in_queue_ms: disk.weighted_time_in_progress,
    };
    Ok((device, stats))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::fixtures::fake_proc;

    /// /proc/diskstats of a Debian 12 guest (Linux 6.1: 20 fields a line):
    /// loop devices, a virtio disk with partitions, a second disk, a CD-ROM.
    const DISKSTATS_6_1: &str = "   7       0 loop0 55 0 2194 17 0 0 0 0 0 48 17 0 0 0 0 0 0\n\
         7       1 loop1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n\
       254       0 vda 14932 4120 1198218 6231 52875 31245 1738520 48313 0 42120 61740 0 0 0 0 13981 7195\n\
       254       1 vda1 14731 4120 1186554 6174 52863 31245 1738520 48311 0 42064 54486 0 0 0 0 0 0\n\
       254      14 vda14 88 0 704 9 0 0 0 0 0 24 9 0 0 0 0 0 0\n\
       254      15 vda15 62 0 4876 13 1 0 1 0 0 36 13 0 0 0 0 0 0\n\
       254      16 vdb 409871 0 209853952 8211345 1203 0 9624 912 2 5120442 8212257 0 0 0 0 0 0\n\
        11       0 sr0 5 0 1 0 0 0 0 0 0 4 0 0 0 0 0 0 0\n";

    /// The same disk on a 4.9 kernel: 14 fields, no discard or flush counters.
    const DISKSTATS_4_9: &str = " 254       0 vda 100 1 800 20 50 2 400 30 1 45 55\n";

    const VDA: DeviceNumber = DeviceNumber {
        major: 254,
        minor: 0,
    };

    #[test]
    fn diskstats_of_a_6_1_kernel() {
        let (_dir, procfs) = fake_proc(&[("diskstats", DISKSTATS_6_1)]);
        let disks = procfs.read_diskstats().unwrap();
        assert_eq!(disks.len(), 8);
        assert_eq!(
            disks[&VDA],
            DiskStats {
                reads: 14932,
                sectors_read: 1_198_218,
                writes: 52875,
                sectors_written: 1_738_520,
                io_ticks_ms: 42120,
                time_in_queue_ms: 61740,
            }
        );
        let vdb = DeviceNumber {
            major: 254,
            minor: 16,
        };
        assert_eq!(disks[&vdb].sectors_read, 209_853_952);
        assert_eq!(disks[&vdb].io_ticks_ms, 5_120_442);
        // Partitions are kept; the caller picks.
        let vda1 = DeviceNumber {
            major: 254,
            minor: 1,
        };
        assert_eq!(disks[&vda1].sectors_written, 1_738_520);
        assert_eq!(
            disks[&DeviceNumber { major: 7, minor: 1 }],
            DiskStats::default()
        );
    }

    #[test]
    fn diskstats_of_an_old_kernel_without_discard_fields() {
        let (_dir, procfs) = fake_proc(&[("diskstats", DISKSTATS_4_9)]);
        let disks = procfs.read_diskstats().unwrap();
        assert_eq!(
            disks[&VDA],
            DiskStats {
                reads: 100,
                sectors_read: 800,
                writes: 50,
                sectors_written: 400,
                io_ticks_ms: 45,
                time_in_queue_ms: 55,
            }
        );
    }

    #[test]
    fn diskstats_garbage_names_the_file_and_line() {
        let good = "   7       0 loop0 55 0 2194 17 0 0 0 0 0 48 17\n";
        // procfs-core names the value it could not parse, not the field;
        // of a missing field it says only that one is missing.
        let missing = "a field is missing";
        let cases = [
            ("254 0 vda 1 2 3 4 5 6 7 8 9 10\n", missing),
            ("254 0 vda 1 2 3 4 5 6 7 8 9 10 x\n", "(\"x\") as a u64"),
            ("vda 0 254 1 2 3 4 5 6 7 8 9 10 11\n", "(\"vda\") as a i32"),
            ("-1 0 vda 1 2 3 4 5 6 7 8 9 10 11\n", "major -1 is negative"),
            ("254\n", missing),
            ("254 0\n", missing),
            (good, "device 7:0 appears twice"),
        ];
        for (bad, reason) in cases {
            let text = format!("{good}{bad}");
            let (_dir, procfs) = fake_proc(&[("diskstats", &text)]);
            let error = procfs.read_diskstats().unwrap_err();
            let message = error.to_string();
            assert!(matches!(error, ProcError::Parse { .. }), "{message}");
            assert!(message.contains("diskstats"), "{message}");
            assert!(message.contains("line 2 ("), "{message}");
            assert!(message.contains(reason), "{reason}: {message}");
        }
    }

    /// procfs-core reads a discard or flush counter that is not a number as
    /// absent; qosd uses none of them, so the line still counts.
    #[test]
    fn a_garbled_counter_after_the_eleventh_is_ignored() {
        let text = "254 0 vda 1 2 3 4 5 6 7 8 9 10 11 0 0 0 -1 0 0\n";
        let (_dir, procfs) = fake_proc(&[("diskstats", text)]);
        assert_eq!(procfs.read_diskstats().unwrap()[&VDA].time_in_queue_ms, 11);
    }

    #[test]
    fn empty_diskstats_is_no_devices() {
        let (_dir, procfs) = fake_proc(&[("diskstats", "")]);
        assert!(procfs.read_diskstats().unwrap().is_empty());
    }
}
