//! Whether writing is safe: the device and its partitions must not be
//! mounted, used as swap or held by device mapper / md, and a scratch file
//! must sit on a filesystem the device backs.

use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use anyhow::{Result, anyhow, bail};

use super::device::{Device, Member, SYS_DEV_BLOCK, device_number, read_device_number};
use crate::cgroup::io::DeviceNumber;

const MOUNTINFO: &str = "/proc/self/mountinfo";
const SWAPS: &str = "/proc/swaps";

/// One line of `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct MountEntry {
    pub(super) dev: DeviceNumber,
    pub(super) mount_point: String,
    pub(super) fs_type: String,
    pub(super) source: String,
}

/// Parses mountinfo text: field 3 is `MAJ:MIN`, field 5 the mount point, and
/// after the `-` separator come the filesystem type and the source. Malformed
/// lines are skipped.
pub(super) fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let dev = fields.get(2)?.parse().ok()?;
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
pub(super) fn parse_swaps(text: &str) -> Vec<String> {
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
pub(super) fn write_blocker(
    members: &[Member],
    mounts: &[MountEntry],
    swaps: &[String],
    resolve: &dyn Fn(&str) -> Option<DeviceNumber>,
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

pub(super) fn refusal(device: &Path, reason: &str) -> anyhow::Error {
    anyhow!(
        "refusing to write to {}: {reason}; pass --scratch-file PATH on that filesystem to measure writes, or --read-only",
        device.display()
    )
}

/// The device number of `path` if it is a block device node.
fn block_device_id(path: &str) -> Option<DeviceNumber> {
    let meta = fs::metadata(path).ok()?;
    meta.file_type()
        .is_block_device()
        .then(|| device_number(meta.rdev()))
}

pub(super) fn read_mountinfo() -> Result<Vec<MountEntry>> {
    let text =
        fs::read_to_string(MOUNTINFO).map_err(|err| anyhow!("cannot read {MOUNTINFO}: {err}"))?;
    Ok(parse_mountinfo(&text))
}

pub(super) fn check_device_writable(device: &Device) -> Result<()> {
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
pub(super) fn stacked_on(
    sys_dev_block: &Path,
    id: DeviceNumber,
    targets: &[DeviceNumber],
    depth: u32,
) -> bool {
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
        .filter_map(|entry| read_device_number(&entry.path().join("dev")))
        .any(|slave| stacked_on(sys_dev_block, slave, targets, depth - 1))
}

/// The scratch file's writes must land on `device`, or they measure another disk.
pub(super) fn check_scratch_location(
    scratch: &Path,
    device: &Device,
    mounts: &[MountEntry],
) -> Result<()> {
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
    let fs_id = device_number(meta.dev());
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
    let targets: Vec<DeviceNumber> = device.members.iter().map(|m| m.id).collect();
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
pub(super) fn fs_type_of(path: &Path) -> String {
    let meta = fs::metadata(path).or_else(|_| fs::metadata(path.parent().unwrap_or(path)));
    let (Ok(meta), Ok(mounts)) = (meta, read_mountinfo()) else {
        return "this filesystem".to_owned();
    };
    let id = device_number(meta.dev());
    mounts
        .iter()
        .rev()
        .find(|m| m.dev == id)
        .map_or("this filesystem".to_owned(), |m| m.fs_type.clone())
}
