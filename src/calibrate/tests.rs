use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::device::{Device, Member, device_family, device_number, logical_block_size};
use super::direct_io::{Access, open_direct};
use super::in_use::{
    MountEntry, check_scratch_location, parse_mountinfo, parse_swaps, refusal, stacked_on,
    write_blocker,
};
use super::report::{config_bps, config_iops, host_disks_block_on, round_down_2_digits};
use super::timed_test::XorShift;
use super::workload::{Plan, WriteTarget, run};
use super::*;
use crate::cgroup::io::DeviceNumber;

fn number(text: &str) -> DeviceNumber {
    text.parse().unwrap()
}

fn member(id: &str, name: &str) -> Member {
    Member {
        id: number(id),
        name: name.to_owned(),
        holders: Vec::new(),
    }
}

fn sda() -> Vec<Member> {
    vec![
        member("8:0", "/dev/sda"),
        member("8:1", "/dev/sda1"),
        member("8:2", "/dev/sda2"),
    ]
}

const MOUNTINFO_TEXT: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
25 24 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=24684084k
27 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
40 27 8:17 / /mnt/my\\040data rw,relatime shared:5 master:2 - xfs /dev/sdb1 rw
41 27 0:45 / /srv rw,relatime - btrfs /dev/sdc2 rw,space_cache=v2
";

fn no_resolve(_: &str) -> Option<DeviceNumber> {
    None
}

/// A directory where O_DIRECT works (ext4 here; tmpfs may refuse it).
fn direct_io_dir() -> tempfile::TempDir {
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    let candidates = [PathBuf::from("/var/tmp"), target, std::env::temp_dir()];
    for base in candidates {
        let Ok(dir) = tempfile::tempdir_in(&base) else {
            continue;
        };
        let probe = dir.path().join("probe");
        if fs::write(&probe, [0u8; 4096]).is_ok() && open_direct(&probe, Access::Read).is_ok() {
            fs::remove_file(&probe).unwrap();
            return dir;
        }
    }
    panic!("no directory supporting O_DIRECT among /var/tmp, target/, $TMPDIR");
}

/// A filled file of `mib` MiB to stand in for a device in read tests.
fn filled_file(dir: &Path, mib: usize) -> PathBuf {
    let path = dir.join("fake-device");
    fs::write(&path, vec![0x5au8; mib << 20]).unwrap();
    path
}

fn assert_measured(capacity: &Capacity) {
    assert!(capacity.read_bps > 0.0, "{capacity:?}");
    assert!(capacity.read_iops > 0.0, "{capacity:?}");
    assert!(capacity.write_bps.is_some_and(|v| v > 0.0), "{capacity:?}");
    assert!(capacity.write_iops.is_some_and(|v| v > 0.0), "{capacity:?}");
}

/// [`run`] with tests of `millis` each, no progress bar and 4 KiB alignment.
fn run_quietly(read: PathBuf, write: Option<WriteTarget>, millis: u64) -> Result<Capacity> {
    run(&Plan {
        read,
        write,
        per_test: Duration::from_millis(millis),
        progress: false,
        align: MIN_ALIGN,
    })
}

#[test]
fn measures_reads_and_scratch_file_writes_then_removes_the_scratch_file() {
    let dir = direct_io_dir();
    let read = filled_file(dir.path(), 8);
    let scratch = dir.path().join("scratch");
    let started = Instant::now();
    let capacity = run_quietly(read, Some(WriteTarget::Scratch(scratch.clone())), 200).unwrap();
    assert_measured(&capacity);
    assert!(!scratch.exists(), "scratch file left behind");
    // 4 tests of 0.2 s plus a fill bounded at 1 s.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn measures_writes_in_place_on_an_existing_target() {
    let dir = direct_io_dir();
    let target = filled_file(dir.path(), 4);
    let capacity = run_quietly(
        target.clone(),
        Some(WriteTarget::Device(target.clone())),
        200,
    )
    .unwrap();
    assert_measured(&capacity);
    assert_eq!(
        fs::metadata(&target).unwrap().len(),
        4 << 20,
        "size unchanged"
    );
}

#[test]
fn read_only_leaves_writes_unmeasured() {
    let dir = direct_io_dir();
    let read = filled_file(dir.path(), 2);
    let capacity = run_quietly(read, None, 100).unwrap();
    assert!(capacity.read_bps > 0.0 && capacity.read_iops > 0.0);
    assert_eq!((capacity.write_bps, capacity.write_iops), (None, None));
}

#[test]
fn an_existing_scratch_file_is_refused_and_kept() {
    let dir = direct_io_dir();
    let read = filled_file(dir.path(), 2);
    let scratch = dir.path().join("precious");
    fs::write(&scratch, b"keep me").unwrap();
    let err = run_quietly(read, Some(WriteTarget::Scratch(scratch.clone())), 100)
        .unwrap_err()
        .to_string();
    assert!(err.contains(&scratch.display().to_string()), "{err}");
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(fs::read(&scratch).unwrap(), b"keep me");
}

#[test]
fn a_too_small_target_is_refused_with_its_path() {
    let dir = direct_io_dir();
    let path = dir.path().join("tiny");
    fs::write(&path, [0u8; 8192]).unwrap();
    let err = run_quietly(path.clone(), None, 100)
        .unwrap_err()
        .to_string();
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("less than 1 MiB"), "{err}");
}

#[test]
fn o_direct_refusal_names_the_filesystem() {
    // procfs has no direct I/O: opening with O_DIRECT fails with EINVAL.
    let path = Path::new("/proc/self/mountinfo");
    let err = open_direct(path, Access::Read).unwrap_err().to_string();
    assert_eq!(
        err,
        "cannot open /proc/self/mountinfo with O_DIRECT: direct I/O is not supported on proc"
    );
    // tmpfs refuses O_DIRECT before Linux 6.6; when it does, it is named too.
    let Ok(dir) = tempfile::tempdir_in("/dev/shm") else {
        return;
    };
    let path = dir.path().join("file");
    fs::write(&path, [0u8; 4096]).unwrap();
    if let Err(err) = open_direct(&path, Access::Read) {
        let err = err.to_string();
        assert!(err.contains("O_DIRECT") && err.contains("tmpfs"), "{err}");
        assert!(err.contains(&path.display().to_string()), "{err}");
    }
}

#[test]
fn non_block_devices_are_refused_with_their_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("disk.img");
    fs::write(&file, b"x").unwrap();
    let missing = dir.path().join("missing");
    for (path, words) in [
        (file.as_path(), "a regular file"),
        (dir.path(), "a directory"),
        (Path::new("/dev/null"), "a character device"),
        (missing.as_path(), "No such file"),
    ] {
        let err = calibrate(&CalibrateOptions {
            progress: false,
            ..CalibrateOptions::new(path)
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(err.contains(words), "{err}");
    }
}

#[test]
fn bad_durations_are_refused_before_touching_the_device() {
    for seconds in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e9] {
        let err = calibrate(&CalibrateOptions {
            seconds_per_test: seconds,
            ..CalibrateOptions::new("/dev/null")
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("seconds per test"), "{err}");
    }
}

#[test]
fn mountinfo_is_parsed_with_optional_fields_and_escapes() {
    let mounts = parse_mountinfo(MOUNTINFO_TEXT);
    assert_eq!(mounts.len(), 5);
    assert_eq!(
        mounts[3],
        MountEntry {
            dev: DeviceNumber {
                major: 8,
                minor: 17
            },
            mount_point: "/mnt/my data".to_owned(),
            fs_type: "xfs".to_owned(),
            source: "/dev/sdb1".to_owned(),
        }
    );
    assert_eq!(mounts[2].mount_point, "/");
    assert!(parse_mountinfo("garbage\n1 2 x:y / / rw - ext4 a b\n").is_empty());
}

#[test]
fn swaps_are_parsed() {
    let text = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n\
                /dev/sda2                               partition\t8388604\t\t0\t\t-2\n\
                /swap\\040file                           file\t\t1048572\t\t0\t\t-3\n";
    assert_eq!(parse_swaps(text), vec!["/dev/sda2", "/swap file"]);
    assert!(parse_swaps("Filename Type Size Used Priority\n").is_empty());
}

#[test]
fn a_mounted_partition_blocks_writes_to_the_disk() {
    let mounts = parse_mountinfo(MOUNTINFO_TEXT);
    let reason = write_blocker(&sda(), &mounts, &[], &no_resolve).unwrap();
    assert_eq!(reason, "/dev/sda1 is mounted on /");
    let err = refusal(Path::new("/dev/sda"), &reason).to_string();
    assert_eq!(
        err,
        "refusing to write to /dev/sda: /dev/sda1 is mounted on /; pass --scratch-file PATH on that filesystem to measure writes, or --read-only"
    );
}

#[test]
fn a_mounted_whole_device_blocks_writes() {
    let text =
        "30 1 8:16 / /mnt/a rw - ext4 /dev/sdb rw\n31 1 8:16 / /mnt/b rw - ext4 /dev/sdb rw\n";
    let members = vec![member("8:16", "/dev/sdb")];
    let reason = write_blocker(&members, &parse_mountinfo(text), &[], &no_resolve).unwrap();
    assert_eq!(reason, "/dev/sdb is mounted on /mnt/a (and 1 more)");
}

#[test]
fn an_unused_disk_may_be_written() {
    let members = vec![member("8:48", "/dev/sdd"), member("8:49", "/dev/sdd1")];
    let mounts = parse_mountinfo(MOUNTINFO_TEXT);
    assert_eq!(write_blocker(&members, &mounts, &[], &no_resolve), None);
}

#[test]
fn btrfs_mounts_are_matched_by_their_source_device() {
    // btrfs shows an anonymous 0:45 in mountinfo; its source is /dev/sdc2.
    let members = vec![member("8:32", "/dev/sdc"), member("8:34", "/dev/sdc2")];
    let mounts = parse_mountinfo(MOUNTINFO_TEXT);
    assert_eq!(write_blocker(&members, &mounts, &[], &no_resolve), None);
    let resolve = |path: &str| (path == "/dev/sdc2").then(|| number("8:34"));
    assert_eq!(
        write_blocker(&members, &mounts, &[], &resolve).as_deref(),
        Some("/dev/sdc2 is mounted on /srv")
    );
}

#[test]
fn swap_and_holders_block_writes() {
    let members = vec![member("8:48", "/dev/sdd"), member("8:50", "/dev/sdd2")];
    let resolve = |path: &str| (path == "/dev/sdd2").then(|| number("8:50"));
    let swaps = vec!["/dev/sdd2".to_owned(), "/swapfile".to_owned()];
    assert_eq!(
        write_blocker(&members, &[], &swaps, &resolve).as_deref(),
        Some("/dev/sdd2 is in use as swap")
    );
    let mut held = members.clone();
    held[1].holders = vec!["dm-0".to_owned(), "dm-1".to_owned()];
    assert_eq!(
        write_blocker(&held, &[], &[], &no_resolve).as_deref(),
        Some("/dev/sdd2 is held by dm-0, dm-1 (device mapper, LVM, RAID or similar)")
    );
}

/// A fake `/sys/dev/block` with disk 8:0 (sda), partitions sda1 and sda2
/// (sda2 under LVM as dm-0 = 253:0), and an unrelated disk 8:16.
fn fake_sysfs() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let put = |rel: &str, text: &str| {
        let path = root.path().join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    };
    put(
        "8:0/uevent",
        "MAJOR=8\nMINOR=0\nDEVNAME=sda\nDEVTYPE=disk\n",
    );
    put("8:0/dev", "8:0\n");
    put("8:0/queue/logical_block_size", "512\n");
    put("8:0/sda1/partition", "1\n");
    put("8:0/sda1/dev", "8:1\n");
    put("8:0/sda1/uevent", "DEVNAME=sda1\n");
    put("8:0/sda2/partition", "2\n");
    put("8:0/sda2/dev", "8:2\n");
    put("8:0/sda2/uevent", "DEVNAME=sda2\n");
    fs::create_dir_all(root.path().join("8:0/sda2/holders/dm-0")).unwrap();
    fs::create_dir_all(root.path().join("8:0/power")).unwrap();
    put("253:0/dev", "253:0\n");
    put("253:0/slaves/sda2/dev", "8:2\n");
    put("8:16/dev", "8:16\n");
    put("8:16/uevent", "DEVNAME=sdb\n");
    root
}

#[test]
fn device_family_lists_partitions_and_holders_from_sysfs() {
    let sys = fake_sysfs();
    let members = device_family(sys.path(), number("8:0"), Path::new("/x"));
    let names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["/dev/sda", "/dev/sda1", "/dev/sda2"]);
    assert_eq!(members[2].id, number("8:2"));
    assert_eq!(members[2].holders, ["dm-0"]);
    assert_eq!(logical_block_size(&sys.path().join("8:0")), Some(512));
    // A device sysfs does not know is just itself, named by its path.
    let alone = device_family(sys.path(), number("9:9"), Path::new("/dev/md9"));
    assert_eq!(alone, vec![member("9:9", "/dev/md9")]);
}

#[test]
fn scratch_location_follows_device_mapper_to_the_disk() {
    let sys = fake_sysfs();
    let sda: Vec<DeviceNumber> = ["8:0", "8:1", "8:2"].iter().map(|s| number(s)).collect();
    assert!(stacked_on(sys.path(), number("8:1"), &sda, 8));
    assert!(stacked_on(sys.path(), number("253:0"), &sda, 8));
    assert!(!stacked_on(sys.path(), number("8:16"), &sda, 8));
    assert!(!stacked_on(sys.path(), number("253:0"), &sda, 0));
}

#[test]
fn a_scratch_file_on_a_filesystem_without_a_block_device_is_refused() {
    let device = Device {
        path: PathBuf::from("/dev/sdz"),
        members: vec![member("8:240", "/dev/sdz")],
        align: MIN_ALIGN,
    };
    let dir = tempfile::tempdir().unwrap();
    let scratch = dir.path().join("scratch");
    let fs_id = device_number(fs::metadata(dir.path()).unwrap().dev());
    let mounts = vec![MountEntry {
        dev: fs_id,
        mount_point: "/tmp".to_owned(),
        fs_type: "tmpfs".to_owned(),
        source: "tmpfs".to_owned(),
    }];
    let err = check_scratch_location(&scratch, &device, &mounts)
        .unwrap_err()
        .to_string();
    assert!(err.contains(&scratch.display().to_string()), "{err}");
    assert!(err.contains("/dev/sdz"), "{err}");
    assert!(
        err.contains("no block device") || err.contains("another disk"),
        "{err}"
    );
}

#[test]
fn rounding_keeps_two_significant_digits_and_never_rounds_up() {
    let cases = [
        (0.5, 0),
        (7.9, 7),
        (52.9, 52),
        (812.0, 810),
        (15_234.0, 15_000),
        (99_999.0, 99_000),
    ];
    for (x, want) in cases {
        assert_eq!(round_down_2_digits(x), want, "{x}");
    }
    assert_eq!(config_bps(52.9 * MIB as f64), "52MiB/s");
    assert_eq!(config_bps(1843.0 * MIB as f64), "1800MiB/s");
    assert_eq!(config_bps(5.3 * MIB as f64), "5400KiB/s");
    assert_eq!(config_bps(10.0), "1KiB/s");
    assert_eq!(config_iops(0.2), 1);
}

#[test]
fn host_disks_block_parses_as_toml_and_carries_the_numbers() {
    let capacity = Capacity {
        read_bps: 52.9 * MIB as f64,
        write_bps: Some(48.3 * MIB as f64),
        read_iops: 812.4,
        write_iops: Some(15_234.0),
    };
    let block = host_disks_block_on("2026-05-01", "/dev/vdb", &capacity);
    assert!(block.contains("qosd calibrate on 2026-05-01"), "{block}");
    assert!(
        block.contains("52.9 MiB/s") && block.contains("48.3 MiB/s"),
        "{block}"
    );
    assert!(
        block.contains("812 IOPS") && block.contains("15234 IOPS"),
        "{block}"
    );
    let doc: toml::Table = toml::from_str(&block).unwrap();
    let disk = &doc["host"]["disks"][0];
    assert_eq!(disk["device"].as_str(), Some("/dev/vdb"));
    assert_eq!(disk["read_bps"].as_str(), Some("52MiB/s"));
    assert_eq!(disk["write_bps"].as_str(), Some("48MiB/s"));
    assert_eq!(disk["read_iops"].as_integer(), Some(810));
    assert_eq!(disk["write_iops"].as_integer(), Some(15_000));
    // The real date is a date.
    let today = host_disks_block("/dev/vdb", &capacity);
    let date = today.split("on ").nth(1).unwrap();
    assert_eq!(&date[4..5], "-", "{today}");
}

#[test]
fn read_only_block_leaves_write_keys_commented_and_quotes_odd_names() {
    let capacity = Capacity {
        read_bps: 200.0 * MIB as f64,
        write_bps: None,
        read_iops: 3000.0,
        write_iops: None,
    };
    let block = host_disks_block_on("2026-05-01", "/dev/disk/by-id/a\"b", &capacity);
    assert!(block.contains("--read-only"), "{block}");
    let doc: toml::Table = toml::from_str(&block).unwrap();
    let disk = doc["host"]["disks"][0].as_table().unwrap();
    assert_eq!(disk["device"].as_str(), Some("/dev/disk/by-id/a\"b"));
    assert_eq!(disk["read_bps"].as_str(), Some("200MiB/s"));
    assert!(!disk.contains_key("write_bps") && !disk.contains_key("write_iops"));
}

#[test]
fn xorshift_stays_in_range_and_spreads() {
    let mut rng = XorShift::new(0);
    let mut seen = [false; 16];
    for _ in 0..10_000 {
        let v = rng.below(16);
        assert!(v < 16);
        seen[v as usize] = true;
    }
    assert!(seen.iter().all(|s| *s));
}
