//! `qosd calibrate --device DEV`: measures a block device's capacity with
//! direct I/O and prints the `[[host.disks]]` block to paste into the config.
//!
//! Four tests, each bounded in time (never the whole device):
//! - sequential read: 1 MiB blocks, one at a time, from the start of the device;
//! - random read: 4 KiB at random aligned offsets, from [`RANDOM_WORKERS`] threads;
//! - sequential write and random write: the same, against the device or a scratch file.
//!
//! Reads go to the device itself (they are harmless). Writes destroy data, so
//! a write test on a device is refused when the device or one of its
//! partitions is mounted, used as swap or held by device mapper / md; with a
//! scratch file the writes go to that file instead (created, filled, measured,
//! removed). The scratch file must sit on a filesystem backed by the device,
//! or its writes would measure some other disk.

use std::alloc::{self, Layout};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind, IsTerminal, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Result, anyhow, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use nix::fcntl::OFlag;

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
/// Request size of the sequential tests.
const SEQUENTIAL_BLOCK: usize = 1 << 20;
/// Request size of the random tests (raised to the device's logical block size if larger).
const RANDOM_BLOCK: usize = 4096;
/// Alignment of buffers, offsets and sizes for O_DIRECT.
const MIN_ALIGN: usize = 4096;
/// Threads issuing random I/O at once: a small queue depth, closer to what a
/// device sustains under several tenants than one request at a time.
pub const RANDOM_WORKERS: usize = 4;
/// Largest scratch file; it is smaller for short tests.
const SCRATCH_MAX: u64 = 256 * MIB;
const SCRATCH_MIN: u64 = 8 * MIB;
/// Longest accepted `seconds_per_test`.
const MAX_SECONDS_PER_TEST: f64 = 3600.0;
const SYS_DEV_BLOCK: &str = "/sys/dev/block";
const MOUNTINFO: &str = "/proc/self/mountinfo";
const SWAPS: &str = "/proc/swaps";

/// What to measure and how.
#[derive(Debug, Clone, PartialEq)]
pub struct CalibrateOptions {
    /// The block device, e.g. `/dev/vdb`.
    pub device: PathBuf,
    /// Write tests go to this file instead of the device. It must not exist;
    /// it is created on a filesystem of the device, filled, and removed after.
    pub scratch_file: Option<PathBuf>,
    /// Length of each of the four tests.
    pub seconds_per_test: f64,
    /// Skip the write tests.
    pub read_only: bool,
    /// Show a progress bar on stderr (only when stderr is a terminal).
    pub progress: bool,
}

impl CalibrateOptions {
    /// Options with the defaults: 5 s per test, writes to the device, progress bar on.
    pub fn new(device: impl Into<PathBuf>) -> Self {
        CalibrateOptions {
            device: device.into(),
            scratch_file: None,
            seconds_per_test: 5.0,
            read_only: false,
            progress: true,
        }
    }
}

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

/// Measures `options.device`. Every error names the path it is about.
pub fn calibrate(options: &CalibrateOptions) -> Result<Capacity> {
    let seconds = options.seconds_per_test;
    if !(seconds.is_finite() && seconds > 0.0 && seconds <= MAX_SECONDS_PER_TEST) {
        bail!("seconds per test must be above 0 and at most {MAX_SECONDS_PER_TEST}, not {seconds}");
    }
    let device = probe_device(&options.device)?;
    let write = if options.read_only {
        None
    } else if let Some(scratch) = &options.scratch_file {
        check_scratch_location(scratch, &device, &read_mountinfo()?)?;
        Some(WriteTarget::Scratch(scratch.clone()))
    } else {
        check_device_writable(&device)?;
        Some(WriteTarget::Device(device.path.clone()))
    };
    run(&Plan {
        read: device.path.clone(),
        write,
        per_test: Duration::from_secs_f64(seconds),
        progress: options.progress,
        align: device.align,
    })
}

/// The `[[host.disks]]` TOML block for `device_name`, with the values rounded
/// down to two significant digits and a comment carrying the measured numbers.
pub fn host_disks_block(device_name: &str, capacity: &Capacity) -> String {
    let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    host_disks_block_on(&now[..10], device_name, capacity)
}

fn host_disks_block_on(date: &str, device_name: &str, capacity: &Capacity) -> String {
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
fn describe_bps(bps: f64) -> String {
    format!("{:.1} MiB/s", bps / MIB as f64)
}

/// `x` rounded down to 2 significant digits (0 below 1).
fn round_down_2_digits(x: f64) -> u64 {
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
fn config_bps(bps: f64) -> String {
    let mib = bps / MIB as f64;
    if mib >= 10.0 {
        format!("{}MiB/s", round_down_2_digits(mib))
    } else {
        format!("{}KiB/s", round_down_2_digits(bps / KIB as f64).max(1))
    }
}

fn config_iops(iops: f64) -> u64 {
    round_down_2_digits(iops).max(1)
}

// ---------------------------------------------------------------------------
// Devices, partitions, mounts and swaps.

/// A device number, `MAJ:MIN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct DevId {
    major: u64,
    minor: u64,
}

impl DevId {
    fn from_dev_t(dev: u64) -> Self {
        DevId {
            major: nix::sys::stat::major(dev),
            minor: nix::sys::stat::minor(dev),
        }
    }

    fn parse(text: &str) -> Option<Self> {
        let (major, minor) = text.trim().split_once(':')?;
        Some(DevId {
            major: major.parse().ok()?,
            minor: minor.parse().ok()?,
        })
    }
}

impl fmt::Display for DevId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.major, self.minor)
    }
}

/// The device or one of its partitions.
#[derive(Debug, Clone, PartialEq)]
struct Member {
    id: DevId,
    /// `/dev/NAME`, for messages.
    name: String,
    /// Devices stacked on it (`dm-0`, `md127`), from sysfs `holders/`.
    holders: Vec<String>,
}

#[derive(Debug)]
struct Device {
    path: PathBuf,
    /// The device first, then its partitions.
    members: Vec<Member>,
    align: usize,
}

fn probe_device(path: &Path) -> Result<Device> {
    let meta =
        fs::metadata(path).map_err(|err| anyhow!("cannot calibrate {}: {err}", path.display()))?;
    let file_type = meta.file_type();
    if !file_type.is_block_device() {
        let kind = crate::config::file_kind(file_type);
        bail!(
            "cannot calibrate {}: it is {kind}, not a block device (give a disk such as /dev/sdb or /dev/nvme0n1)",
            path.display()
        );
    }
    let id = DevId::from_dev_t(meta.rdev());
    let sys = Path::new(SYS_DEV_BLOCK);
    let members = device_family(sys, id, path);
    let align = logical_block_size(&sys.join(id.to_string()))
        .unwrap_or(MIN_ALIGN)
        .max(MIN_ALIGN);
    Ok(Device {
        path: path.to_owned(),
        members,
        align,
    })
}

/// The device `id` and its partitions, from `sys_dev_block` (`/sys/dev/block`).
/// Unreadable sysfs gives just the device itself, named by `path`.
fn device_family(sys_dev_block: &Path, id: DevId, path: &Path) -> Vec<Member> {
    let dir = sys_dev_block.join(id.to_string());
    let whole = Member {
        id,
        name: dev_name(&dir).unwrap_or_else(|| path.display().to_string()),
        holders: holders(&dir),
    };
    let mut partitions: Vec<Member> = fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|sub| sub.join("partition").exists())
        .filter_map(|sub| {
            let id = DevId::parse(&fs::read_to_string(sub.join("dev")).ok()?)?;
            Some(Member {
                id,
                name: dev_name(&sub)?,
                holders: holders(&sub),
            })
        })
        .collect();
    partitions.sort_by(|a, b| a.name.cmp(&b.name));
    let mut members = vec![whole];
    members.extend(partitions);
    members
}

/// `/dev/NAME` of a sysfs block directory, from its `uevent` (`DEVNAME=`), else its own name.
fn dev_name(sys_dir: &Path) -> Option<String> {
    if let Ok(uevent) = fs::read_to_string(sys_dir.join("uevent"))
        && let Some(name) = uevent.lines().find_map(|l| l.strip_prefix("DEVNAME="))
    {
        return Some(format!("/dev/{}", name.trim()));
    }
    let canonical = fs::canonicalize(sys_dir).ok()?;
    Some(format!("/dev/{}", canonical.file_name()?.to_string_lossy()))
}

fn holders(sys_dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(sys_dir.join("holders"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Logical block size of a device, or of the disk a partition is on.
fn logical_block_size(sys_dir: &Path) -> Option<usize> {
    let own = sys_dir.join("queue/logical_block_size");
    let parent = fs::canonicalize(sys_dir)
        .ok()?
        .parent()?
        .join("queue/logical_block_size");
    [own, parent]
        .iter()
        .find_map(|p| fs::read_to_string(p).ok()?.trim().parse().ok())
}

/// One line of `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq)]
struct MountEntry {
    dev: DevId,
    mount_point: String,
    fs_type: String,
    source: String,
}

/// Parses mountinfo text: field 3 is `MAJ:MIN`, field 5 the mount point, and
/// after the `-` separator come the filesystem type and the source. Malformed
/// lines are skipped.
fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let dev = DevId::parse(fields.get(2)?)?;
            let mount_point = unescape_octal(fields.get(4)?);
            let separator = fields.iter().skip(6).position(|f| *f == "-")? + 6;
            Some(MountEntry {
                dev,
                mount_point,
                fs_type: unescape_octal(fields.get(separator + 1)?),
                source: unescape_octal(fields.get(separator + 2)?),
            })
        })
        .collect()
}

/// The file names in `/proc/swaps` (the first column, after the header).
fn parse_swaps(text: &str) -> Vec<String> {
    text.lines()
        .skip(1)
        .filter_map(|line| line.split_whitespace().next())
        .map(unescape_octal)
        .collect()
}

/// Undoes the kernel's `\ooo` escaping of spaces, tabs, newlines and backslashes.
fn unescape_octal(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let digits = bytes.get(i + 1..i + 4);
        if bytes[i] == b'\\'
            && let Some(digits) = digits
            && digits.iter().all(|d| (b'0'..=b'7').contains(d))
        {
            let code = digits
                .iter()
                .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
            out.push(code as u8);
            i += 4;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Why writing to the device would destroy data in use, if it would.
/// `resolve` gives the device number of a path that is a block device node
/// (mount sources such as `/dev/sda2` for btrfs, whose mountinfo number is
/// anonymous, and swap partitions).
fn write_blocker(
    members: &[Member],
    mounts: &[MountEntry],
    swaps: &[String],
    resolve: &dyn Fn(&str) -> Option<DevId>,
) -> Option<String> {
    for member in members {
        let mounted: Vec<&MountEntry> = mounts
            .iter()
            .filter(|m| {
                m.dev == member.id
                    || (m.source.starts_with('/') && resolve(&m.source) == Some(member.id))
            })
            .collect();
        if let Some(first) = mounted.first() {
            let more = match mounted.len() - 1 {
                0 => String::new(),
                n => format!(" (and {n} more)"),
            };
            return Some(format!(
                "{} is mounted on {}{more}",
                member.name, first.mount_point
            ));
        }
    }
    for member in members {
        if swaps.iter().any(|s| resolve(s) == Some(member.id)) {
            return Some(format!("{} is in use as swap", member.name));
        }
    }
    for member in members {
        if !member.holders.is_empty() {
            return Some(format!(
                "{} is held by {} (device mapper, LVM, RAID or similar)",
                member.name,
                member.holders.join(", ")
            ));
        }
    }
    None
}

fn refusal(device: &Path, reason: &str) -> anyhow::Error {
    anyhow!(
        "refusing to write to {}: {reason}; pass --scratch-file PATH on that filesystem to measure writes, or --read-only",
        device.display()
    )
}

/// The device number of `path` if it is a block device node.
fn block_device_id(path: &str) -> Option<DevId> {
    let meta = fs::metadata(path).ok()?;
    meta.file_type()
        .is_block_device()
        .then(|| DevId::from_dev_t(meta.rdev()))
}

fn read_mountinfo() -> Result<Vec<MountEntry>> {
    let text =
        fs::read_to_string(MOUNTINFO).map_err(|err| anyhow!("cannot read {MOUNTINFO}: {err}"))?;
    Ok(parse_mountinfo(&text))
}

fn check_device_writable(device: &Device) -> Result<()> {
    let mounts = read_mountinfo()?;
    let swaps = match fs::read_to_string(SWAPS) {
        Ok(text) => parse_swaps(&text),
        Err(err) if err.kind() == ErrorKind::NotFound => Vec::new(),
        Err(err) => bail!("cannot read {SWAPS}: {err}"),
    };
    match write_blocker(&device.members, &mounts, &swaps, &block_device_id) {
        Some(reason) => Err(refusal(&device.path, &reason)),
        None => Ok(()),
    }
}

/// Whether block device `id` is one of `targets` or is stacked on one of them
/// (device mapper, md), following sysfs `slaves/`.
fn stacked_on(sys_dev_block: &Path, id: DevId, targets: &[DevId], depth: u32) -> bool {
    if targets.contains(&id) {
        return true;
    }
    if depth == 0 {
        return false;
    }
    fs::read_dir(sys_dev_block.join(id.to_string()).join("slaves"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| DevId::parse(&fs::read_to_string(entry.path().join("dev")).ok()?))
        .any(|slave| stacked_on(sys_dev_block, slave, targets, depth - 1))
}

/// The scratch file's writes must land on `device`, or they measure another disk.
fn check_scratch_location(scratch: &Path, device: &Device, mounts: &[MountEntry]) -> Result<()> {
    let dir = match scratch.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let meta = fs::metadata(dir).map_err(|err| {
        anyhow!(
            "cannot use scratch file {}: its directory {}: {err}",
            scratch.display(),
            dir.display()
        )
    })?;
    let fs_id = DevId::from_dev_t(meta.dev());
    let entry = mounts.iter().rev().find(|m| m.dev == fs_id);
    let fs_type = entry.map_or("unknown", |m| m.fs_type.as_str());
    // Filesystems such as btrfs report an anonymous number (major 0); their
    // mount source names the block device.
    let backing = if fs_id.major != 0 {
        Some(fs_id)
    } else {
        entry.and_then(|m| block_device_id(&m.source))
    };
    let Some(backing) = backing else {
        bail!(
            "cannot use scratch file {}: it is on a {fs_type} filesystem with no block device, so its writes would not measure {}; put it on a filesystem on {}",
            scratch.display(),
            device.path.display(),
            device.path.display()
        );
    };
    let targets: Vec<DevId> = device.members.iter().map(|m| m.id).collect();
    if stacked_on(Path::new(SYS_DEV_BLOCK), backing, &targets, 8) {
        return Ok(());
    }
    bail!(
        "cannot use scratch file {}: it is on device {backing} ({fs_type}{}), not on {}, so its writes would measure another disk; put it on a filesystem on {}",
        scratch.display(),
        entry.map_or(String::new(), |m| format!(" mounted on {}", m.mount_point)),
        device.path.display(),
        device.path.display()
    )
}

/// Filesystem type holding `path` (or its directory), for messages.
fn fs_type_of(path: &Path) -> String {
    let meta = fs::metadata(path).or_else(|_| fs::metadata(path.parent().unwrap_or(path)));
    let (Ok(meta), Ok(mounts)) = (meta, read_mountinfo()) else {
        return "this filesystem".to_owned();
    };
    let id = DevId::from_dev_t(meta.dev());
    mounts
        .iter()
        .rev()
        .find(|m| m.dev == id)
        .map_or("this filesystem".to_owned(), |m| m.fs_type.clone())
}

// ---------------------------------------------------------------------------
// Measuring.

#[derive(Debug, Clone, PartialEq)]
enum WriteTarget {
    /// Write to the device itself (checked unused beforehand).
    Device(PathBuf),
    /// Create, fill, measure and remove this file.
    Scratch(PathBuf),
}

#[derive(Debug)]
struct Plan {
    /// Read tests run here: the device (any readable file in tests).
    read: PathBuf,
    write: Option<WriteTarget>,
    per_test: Duration,
    progress: bool,
    align: usize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Direction {
    Read,
    Write,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Pattern {
    Sequential,
    Random,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Access {
    Read,
    /// Write to an existing device or file, O_EXCL so the kernel refuses a busy block device.
    WriteExisting,
    /// Read and write a scratch file that was just created.
    Scratch,
}

fn open_direct(path: &Path, access: Access) -> Result<File> {
    let mut options = OpenOptions::new();
    let mut flags = OFlag::O_DIRECT;
    match access {
        Access::Read => {
            options.read(true);
        }
        Access::WriteExisting => {
            options.write(true);
            flags |= OFlag::O_EXCL;
        }
        Access::Scratch => {
            options.read(true).write(true);
        }
    }
    options.custom_flags(flags.bits());
    options.open(path).map_err(|err| match err.raw_os_error() {
        Some(libc_einval) if libc_einval == nix::errno::Errno::EINVAL as i32 => anyhow!(
            "cannot open {} with O_DIRECT: direct I/O is not supported on {}",
            path.display(),
            fs_type_of(path)
        ),
        Some(ebusy) if ebusy == nix::errno::Errno::EBUSY as i32 => refusal(
            path,
            "the kernel reports it busy (mounted, or held by device mapper, md or another program)",
        ),
        _ if err.kind() == ErrorKind::PermissionDenied => anyhow!(
            "cannot open {}: {err} (calibrating a device needs root)",
            path.display()
        ),
        _ => anyhow!("cannot open {}: {err}", path.display()),
    })
}

fn size_of(file: &File, path: &Path) -> Result<u64> {
    let mut handle = file;
    handle
        .seek(SeekFrom::End(0))
        .map_err(|err| anyhow!("cannot find the size of {}: {err}", path.display()))
}

fn align_down(value: u64, align: usize) -> u64 {
    value / align as u64 * align as u64
}

/// Removes the scratch file when dropped, on every path out.
struct ScratchGuard {
    path: PathBuf,
    armed: bool,
}

impl ScratchGuard {
    fn create(path: &Path) -> Result<Self> {
        // Created without O_DIRECT first: a filesystem that refuses O_DIRECT
        // would otherwise leave the new file behind.
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|err| {
                if err.kind() == ErrorKind::AlreadyExists {
                    anyhow!(
                        "scratch file {} already exists; qosd creates the scratch file and removes it afterwards, so give a path that does not exist",
                        path.display()
                    )
                } else {
                    anyhow!("cannot create scratch file {}: {err}", path.display())
                }
            })?;
        Ok(ScratchGuard {
            path: path.to_owned(),
            armed: true,
        })
    }

    fn remove(mut self) -> Result<()> {
        self.armed = false;
        fs::remove_file(&self.path)
            .map_err(|err| anyhow!("cannot remove scratch file {}: {err}", self.path.display()))
    }
}

impl Drop for ScratchGuard {
    fn drop(&mut self) {
        if self.armed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Size of the scratch file: about 64 MiB per second of test, 8..=256 MiB.
fn scratch_size(per_test: Duration) -> u64 {
    let wanted = (per_test.as_secs_f64() * 64.0 * MIB as f64) as u64;
    align_down(wanted.clamp(SCRATCH_MIN, SCRATCH_MAX), MIB as usize)
}

/// Longest time spent filling the scratch file.
fn fill_bound(per_test: Duration) -> Duration {
    (per_test * 2).max(Duration::from_secs(1))
}

fn run(plan: &Plan) -> Result<Capacity> {
    let read_file = open_direct(&plan.read, Access::Read)?;
    let read_region = align_down(size_of(&read_file, &plan.read)?, plan.align);
    if read_region < SEQUENTIAL_BLOCK as u64 {
        bail!(
            "cannot calibrate {}: it holds {read_region} bytes, less than 1 MiB",
            plan.read.display()
        );
    }
    // Open the write target before spending time on reads, so that a refusal
    // or an unusable scratch file shows at once.
    let write = match &plan.write {
        None => None,
        Some(WriteTarget::Device(path)) => {
            let file = open_direct(path, Access::WriteExisting)?;
            let region = align_down(size_of(&file, path)?, plan.align);
            Some((path.clone(), file, region, None))
        }
        Some(WriteTarget::Scratch(path)) => {
            let guard = ScratchGuard::create(path)?;
            let file = open_direct(path, Access::Scratch)?;
            Some((path.clone(), file, 0, Some(guard)))
        }
    };

    let per_test = plan.per_test;
    let mut total = per_test * 2;
    if let Some((_, _, _, guard)) = &write {
        total += per_test * 2;
        if guard.is_some() {
            total += fill_bound(per_test);
        }
    }
    let mut progress = Progress::new(plan.progress, total);
    let random_block = RANDOM_BLOCK.max(plan.align);

    let seq_read = run_test(
        &Test {
            label: "sequential read",
            file: &read_file,
            path: &plan.read,
            direction: Direction::Read,
            pattern: Pattern::Sequential,
            block: SEQUENTIAL_BLOCK,
            align: plan.align,
            region: read_region,
            wrap: true,
            workers: 1,
            duration: per_test,
        },
        &mut progress,
    )?;
    let rand_read = run_test(
        &Test {
            label: "random read",
            file: &read_file,
            path: &plan.read,
            direction: Direction::Read,
            pattern: Pattern::Random,
            block: random_block,
            align: plan.align,
            region: read_region,
            wrap: true,
            workers: RANDOM_WORKERS,
            duration: per_test,
        },
        &mut progress,
    )?;
    drop(read_file);

    let mut capacity = Capacity {
        read_bps: seq_read.bps(),
        write_bps: None,
        read_iops: rand_read.iops(),
        write_iops: None,
    };

    if let Some((path, file, mut region, guard)) = write {
        if guard.is_some() {
            let bound = fill_bound(per_test);
            let filled = run_test(
                &Test {
                    label: "filling scratch file",
                    file: &file,
                    path: &path,
                    direction: Direction::Write,
                    pattern: Pattern::Sequential,
                    block: SEQUENTIAL_BLOCK,
                    align: plan.align,
                    region: scratch_size(per_test),
                    wrap: false,
                    workers: 1,
                    duration: bound,
                },
                &mut progress,
            )?;
            region = align_down(filled.bytes, MIB as usize);
            if region == 0 {
                bail!(
                    "cannot fill scratch file {}: less than 1 MiB written in {:.1} s",
                    path.display(),
                    bound.as_secs_f64()
                );
            }
        }
        let seq_write = run_test(
            &Test {
                label: "sequential write",
                file: &file,
                path: &path,
                direction: Direction::Write,
                pattern: Pattern::Sequential,
                block: SEQUENTIAL_BLOCK,
                align: plan.align,
                region,
                wrap: true,
                workers: 1,
                duration: per_test,
            },
            &mut progress,
        )?;
        let rand_write = run_test(
            &Test {
                label: "random write",
                file: &file,
                path: &path,
                direction: Direction::Write,
                pattern: Pattern::Random,
                block: random_block,
                align: plan.align,
                region,
                wrap: true,
                workers: RANDOM_WORKERS,
                duration: per_test,
            },
            &mut progress,
        )?;
        drop(file);
        if let Some(guard) = guard {
            guard.remove()?;
        }
        capacity.write_bps = Some(seq_write.bps());
        capacity.write_iops = Some(rand_write.iops());
    }
    progress.finish();
    Ok(capacity)
}

struct Test<'a> {
    label: &'a str,
    file: &'a File,
    path: &'a Path,
    direction: Direction,
    pattern: Pattern,
    block: usize,
    align: usize,
    /// Bytes of the file used, from offset 0; a multiple of `align`.
    region: u64,
    /// Sequential: start over at the end of the region, or stop there.
    wrap: bool,
    workers: usize,
    duration: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Measured {
    bytes: u64,
    ios: u64,
    elapsed: Duration,
}

impl Measured {
    fn bps(&self) -> f64 {
        self.bytes as f64 / self.elapsed.as_secs_f64()
    }

    fn iops(&self) -> f64 {
        self.ios as f64 / self.elapsed.as_secs_f64()
    }
}

fn run_test(test: &Test<'_>, progress: &mut Progress) -> Result<Measured> {
    if test.region < test.block as u64 && test.pattern == Pattern::Random {
        bail!(
            "cannot calibrate {}: it holds {} bytes, less than one {}-byte request",
            test.path.display(),
            test.region,
            test.block
        );
    }
    progress.begin(test.label, test.duration);
    let stop = AtomicBool::new(false);
    let bytes = AtomicU64::new(0);
    let ios = AtomicU64::new(0);
    let seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0x9e37_79b9, |d| d.as_nanos() as u64);
    let start = Instant::now();
    let deadline = start + test.duration;
    thread::scope(|scope| -> Result<()> {
        let handles: Vec<_> = (0..test.workers)
            .map(|worker| {
                let (stop, bytes, ios) = (&stop, &bytes, &ios);
                let seed = seed ^ (worker as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                scope.spawn(move || {
                    let result = worker_loop(test, seed, deadline, stop, bytes, ios);
                    if result.is_err() {
                        stop.store(true, Ordering::Relaxed);
                    }
                    result
                })
            })
            .collect();
        while !handles.iter().all(|h| h.is_finished()) {
            progress.tick(start.elapsed());
            thread::sleep(Duration::from_millis(50));
        }
        let mut first_error = None;
        for handle in handles {
            match handle.join() {
                Ok(Ok(())) => {}
                Ok(Err(err)) => {
                    first_error.get_or_insert(err);
                }
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        first_error.map_or(Ok(()), Err)
    })?;
    if test.direction == Direction::Write {
        // Writes that only reached the device's cache are paid for here.
        test.file
            .sync_data()
            .map_err(|err| anyhow!("cannot flush writes to {}: {err}", test.path.display()))?;
    }
    let measured = Measured {
        bytes: bytes.load(Ordering::Relaxed),
        ios: ios.load(Ordering::Relaxed),
        elapsed: start.elapsed(),
    };
    let summary = match test.pattern {
        Pattern::Sequential => describe_bps(measured.bps()),
        Pattern::Random => format!("{:.0} IOPS", measured.iops()),
    };
    progress.end(&format!("{:<20} {summary}", test.label));
    Ok(measured)
}

fn worker_loop(
    test: &Test<'_>,
    seed: u64,
    deadline: Instant,
    stop: &AtomicBool,
    bytes: &AtomicU64,
    ios: &AtomicU64,
) -> Result<()> {
    let mut buffer = AlignedBuf::new(test.block, test.align);
    let mut rng = XorShift::new(seed);
    if test.direction == Direction::Write {
        // Random contents, so that compressing or deduplicating storage does not flatter it.
        for chunk in buffer.as_mut_slice().chunks_mut(8) {
            let word = rng.next().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }
    let block = test.block as u64;
    let slots = test.region / block;
    let mut offset = 0u64;
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        let (at, len) = match test.pattern {
            Pattern::Sequential => {
                if offset >= test.region {
                    if !test.wrap {
                        break;
                    }
                    offset = 0;
                }
                (offset, block.min(test.region - offset) as usize)
            }
            Pattern::Random => (rng.below(slots) * block, test.block),
        };
        let buf = &mut buffer.as_mut_slice()[..len];
        let done = loop {
            let result = match test.direction {
                Direction::Read => test.file.read_at(buf, at),
                Direction::Write => test.file.write_at(buf, at),
            };
            match result {
                Err(err) if err.kind() == ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        let done = done.map_err(|err| io_error(test, at, len, &err))?;
        if done == 0 {
            bail!(
                "{} of {len} bytes at offset {at} in {} returned nothing (end of device?)",
                verb(test.direction),
                test.path.display()
            );
        }
        bytes.fetch_add(done as u64, Ordering::Relaxed);
        ios.fetch_add(1, Ordering::Relaxed);
        offset = at + len as u64;
    }
    Ok(())
}

fn verb(direction: Direction) -> &'static str {
    match direction {
        Direction::Read => "direct read",
        Direction::Write => "direct write",
    }
}

fn io_error(test: &Test<'_>, at: u64, len: usize, err: &io::Error) -> anyhow::Error {
    let hint = if err.raw_os_error() == Some(nix::errno::Errno::EINVAL as i32) {
        format!(
            " (direct I/O needs {}-byte aligned offsets and sizes; {} may not support O_DIRECT)",
            test.align,
            fs_type_of(test.path)
        )
    } else {
        String::new()
    };
    anyhow!(
        "{} of {len} bytes at offset {at} in {} failed: {err}{hint}",
        verb(test.direction),
        test.path.display()
    )
}

/// A zeroed heap buffer aligned for O_DIRECT.
struct AlignedBuf {
    ptr: NonNull<u8>,
    layout: Layout,
}

impl AlignedBuf {
    fn new(len: usize, align: usize) -> Self {
        let layout = Layout::from_size_align(len.max(1), align).expect("valid buffer layout");
        // SAFETY: the layout has a non-zero size.
        let raw = unsafe { alloc::alloc_zeroed(layout) };
        let ptr = NonNull::new(raw).unwrap_or_else(|| alloc::handle_alloc_error(layout));
        AlignedBuf { ptr, layout }
    }

    fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: `ptr` points to `layout.size()` initialised (zeroed) bytes
        // owned by `self`, borrowed mutably for the slice's lifetime.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.layout.size()) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this very layout.
        unsafe { alloc::dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

/// xorshift64*: enough to scatter offsets.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        // splitmix64 step, so that nearby seeds diverge and the state is never 0.
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        XorShift((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }
}

/// The progress bar: one bar over all tests, in milliseconds of planned time.
struct Progress {
    bar: Option<ProgressBar>,
    done: Duration,
    step: Duration,
}

impl Progress {
    fn new(enabled: bool, total: Duration) -> Self {
        let bar = (enabled && io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(
                Some(total.as_millis() as u64),
                ProgressDrawTarget::stderr(),
            );
            if let Ok(style) =
                ProgressStyle::with_template("{msg:<22} [{bar:40}] {percent:>3}%  {eta} left")
            {
                bar.set_style(style.progress_chars("=> "));
            }
            bar
        });
        Progress {
            bar,
            done: Duration::ZERO,
            step: Duration::ZERO,
        }
    }

    fn begin(&mut self, label: &str, planned: Duration) {
        self.step = planned;
        if let Some(bar) = &self.bar {
            bar.set_message(label.to_owned());
        }
    }

    fn tick(&self, elapsed: Duration) {
        if let Some(bar) = &self.bar {
            bar.set_position((self.done + elapsed.min(self.step)).as_millis() as u64);
        }
    }

    fn end(&mut self, line: &str) {
        self.done += self.step;
        if let Some(bar) = &self.bar {
            bar.set_position(self.done.as_millis() as u64);
            bar.println(line);
        }
    }

    fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, name: &str) -> Member {
        Member {
            id: DevId::parse(id).unwrap(),
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

    fn no_resolve(_: &str) -> Option<DevId> {
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

    #[test]
    fn measures_reads_and_scratch_file_writes_then_removes_the_scratch_file() {
        let dir = direct_io_dir();
        let read = filled_file(dir.path(), 8);
        let scratch = dir.path().join("scratch");
        let started = Instant::now();
        let capacity = run(&Plan {
            read,
            write: Some(WriteTarget::Scratch(scratch.clone())),
            per_test: Duration::from_millis(200),
            progress: false,
            align: MIN_ALIGN,
        })
        .unwrap();
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
        let capacity = run(&Plan {
            read: target.clone(),
            write: Some(WriteTarget::Device(target.clone())),
            per_test: Duration::from_millis(200),
            progress: false,
            align: MIN_ALIGN,
        })
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
        let capacity = run(&Plan {
            read,
            write: None,
            per_test: Duration::from_millis(100),
            progress: false,
            align: MIN_ALIGN,
        })
        .unwrap();
        assert!(capacity.read_bps > 0.0 && capacity.read_iops > 0.0);
        assert_eq!((capacity.write_bps, capacity.write_iops), (None, None));
    }

    #[test]
    fn an_existing_scratch_file_is_refused_and_kept() {
        let dir = direct_io_dir();
        let read = filled_file(dir.path(), 2);
        let scratch = dir.path().join("precious");
        fs::write(&scratch, b"keep me").unwrap();
        let err = run(&Plan {
            read,
            write: Some(WriteTarget::Scratch(scratch.clone())),
            per_test: Duration::from_millis(100),
            progress: false,
            align: MIN_ALIGN,
        })
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
        let err = run(&Plan {
            read: path.clone(),
            write: None,
            per_test: Duration::from_millis(100),
            progress: false,
            align: MIN_ALIGN,
        })
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
                dev: DevId {
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
        let resolve = |path: &str| (path == "/dev/sdc2").then(|| DevId::parse("8:34").unwrap());
        assert_eq!(
            write_blocker(&members, &mounts, &[], &resolve).as_deref(),
            Some("/dev/sdc2 is mounted on /srv")
        );
    }

    #[test]
    fn swap_and_holders_block_writes() {
        let members = vec![member("8:48", "/dev/sdd"), member("8:50", "/dev/sdd2")];
        let resolve = |path: &str| (path == "/dev/sdd2").then(|| DevId::parse("8:50").unwrap());
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
        let members = device_family(sys.path(), DevId::parse("8:0").unwrap(), Path::new("/x"));
        let names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["/dev/sda", "/dev/sda1", "/dev/sda2"]);
        assert_eq!(members[2].id, DevId::parse("8:2").unwrap());
        assert_eq!(members[2].holders, ["dm-0"]);
        assert_eq!(logical_block_size(&sys.path().join("8:0")), Some(512));
        // A device sysfs does not know is just itself, named by its path.
        let alone = device_family(
            sys.path(),
            DevId::parse("9:9").unwrap(),
            Path::new("/dev/md9"),
        );
        assert_eq!(alone, vec![member("9:9", "/dev/md9")]);
    }

    #[test]
    fn scratch_location_follows_device_mapper_to_the_disk() {
        let sys = fake_sysfs();
        let sda: Vec<DevId> = ["8:0", "8:1", "8:2"]
            .iter()
            .map(|s| DevId::parse(s).unwrap())
            .collect();
        let id = |s: &str| DevId::parse(s).unwrap();
        assert!(stacked_on(sys.path(), id("8:1"), &sda, 8));
        assert!(stacked_on(sys.path(), id("253:0"), &sda, 8));
        assert!(!stacked_on(sys.path(), id("8:16"), &sda, 8));
        assert!(!stacked_on(sys.path(), id("253:0"), &sda, 0));
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
        let fs_id = DevId::from_dev_t(fs::metadata(dir.path()).unwrap().dev());
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
}
