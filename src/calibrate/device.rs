//! The device to calibrate: its number, its partitions and what is stacked
//! on them, from sysfs.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow, bail};

use super::MIN_ALIGN;
use crate::cgroup::io::DeviceNumber;

/// Block devices by number: `MAJ:MIN/` with `dev`, `uevent`, `holders/`, `slaves/`.
pub(super) const SYS_DEV_BLOCK: &str = "/sys/dev/block";

/// The number in a `st_dev` or `st_rdev`. Both halves are 32-bit in glibc's
/// `dev_t` encoding, so nothing is cut.
pub(super) fn device_number(dev: u64) -> DeviceNumber {
    DeviceNumber {
        major: nix::sys::stat::major(dev) as u32,
        minor: nix::sys::stat::minor(dev) as u32,
    }
}

/// The `MAJ:MIN` in a sysfs `dev` file (it ends in a newline).
pub(super) fn read_device_number(dev_file: &Path) -> Option<DeviceNumber> {
    fs::read_to_string(dev_file).ok()?.trim().parse().ok()
}

/// The device or one of its partitions.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Member {
    pub(super) id: DeviceNumber,
    /// `/dev/NAME`, for messages.
    pub(super) name: String,
    /// Devices stacked on it (`dm-0`, `md127`), from sysfs `holders/`.
    pub(super) holders: Vec<String>,
}

#[derive(Debug)]
pub(super) struct Device {
    pub(super) path: PathBuf,
    /// The device first, then its partitions.
    pub(super) members: Vec<Member>,
    pub(super) align: usize,
}

pub(super) fn probe_device(path: &Path) -> Result<Device> {
    let meta =
        fs::metadata(path).map_err(|err| anyhow!("cannot calibrate {}: {err}", path.display()))?;
    let file_type = meta.file_type();
    if !file_type.is_block_device() {
        let kind = crate::host::file_kind(file_type);
        bail!(
            "cannot calibrate {}: it is {kind}, not a block device (give a disk such as /dev/sdb or /dev/nvme0n1)",
            path.display()
        );
    }
    let id = device_number(meta.rdev());
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
pub(super) fn device_family(sys_dev_block: &Path, id: DeviceNumber, path: &Path) -> Vec<Member> {
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
            let id = read_device_number(&sub.join("dev"))?;
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
pub(super) fn logical_block_size(sys_dir: &Path) -> Option<usize> {
    let own = sys_dir.join("queue/logical_block_size");
    let parent = fs::canonicalize(sys_dir)
        .ok()?
        .parent()?
        .join("queue/logical_block_size");
    [own, parent]
        .iter()
        .find_map(|p| fs::read_to_string(p).ok()?.trim().parse().ok())
}
