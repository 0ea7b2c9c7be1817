//! This host's block devices and network interfaces, looked up as the
//! configuration names them.

use std::io::ErrorKind;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use crate::config::{DeviceNumber, check_device_syntax, check_interface_name, parse_device_number};

/// Where the kernel lists block devices by number.
const SYS_DEV_BLOCK: &str = "/sys/dev/block";

/// A path's `st_rdev` (it must be a block device; symbolic links such as
/// `/dev/disk/by-id/...` are followed), or `MAJ:MIN` that
/// `/sys/dev/block/MAJ:MIN` knows. The error says why not, without repeating
/// `spec`: "no such file", "not a block device (it is a regular file)".
pub fn resolve_block_device(spec: &str) -> Result<DeviceNumber, String> {
    if let Some(number) = parse_device_number(spec) {
        let listed = Path::new(SYS_DEV_BLOCK).join(number.to_string());
        return match listed.try_exists() {
            Ok(true) => Ok(number),
            Ok(false) => Err(format!(
                "no block device has the number {number} ({} does not exist)",
                listed.display()
            )),
            Err(error) => Err(format!("cannot check {}: {error}", listed.display())),
        };
    }
    check_device_syntax(spec)?;
    let metadata = std::fs::metadata(spec).map_err(|error| match error.kind() {
        ErrorKind::NotFound => "no such file".to_owned(),
        _ => format!("cannot read its metadata: {error}"),
    })?;
    let file_type = metadata.file_type();
    if !file_type.is_block_device() {
        return Err(format!(
            "not a block device (it is {})",
            file_kind(file_type)
        ));
    }
    let rdev = metadata.rdev();
    let major = nix::sys::stat::major(rdev);
    let minor = nix::sys::stat::minor(rdev);
    match (u32::try_from(major), u32::try_from(minor)) {
        (Ok(major), Ok(minor)) => Ok(DeviceNumber { major, minor }),
        _ => Err(format!("its device number {major}:{minor} is out of range")),
    }
}

/// What a file that is not a block device is, for error messages.
pub fn file_kind(file_type: std::fs::FileType) -> &'static str {
    if file_type.is_file() {
        "a regular file"
    } else if file_type.is_dir() {
        "a directory"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_socket() {
        "a socket"
    } else {
        "another kind of file"
    }
}

/// Whether `name` is a network interface of this host (its network
/// namespace), from `/sys/class/net`. The error names it: "no network
/// interface named eth9", or why the name is not valid.
pub fn find_network_interface(name: &str) -> Result<(), String> {
    check_interface_name(name)?;
    if Path::new("/sys/class/net").join(name).exists() {
        Ok(())
    } else {
        Err(format!("no network interface named {name}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_real_resolver_explains_what_is_not_a_block_device() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let file = dir.path().join("disk.img");
        std::fs::write(&file, b"").expect("write");
        let path = |p: &Path| p.to_str().expect("UTF-8 path").to_owned();
        assert_eq!(
            resolve_block_device(&path(&file)),
            Err("not a block device (it is a regular file)".to_owned())
        );
        assert_eq!(
            resolve_block_device(&path(dir.path())),
            Err("not a block device (it is a directory)".to_owned())
        );
        assert_eq!(
            resolve_block_device(&path(&dir.path().join("missing"))),
            Err("no such file".to_owned())
        );
        if Path::new("/dev/null").exists() {
            assert_eq!(
                resolve_block_device("/dev/null"),
                Err("not a block device (it is a character device)".to_owned())
            );
        }
        let unknown = resolve_block_device("4094:1048575").expect_err("no such number");
        assert!(
            unknown.contains("/sys/dev/block/4094:1048575 does not exist"),
            "{unknown}"
        );
        let relative = resolve_block_device("vda").expect_err("relative");
        assert!(relative.contains("absolute path"), "{relative}");
    }

    /// Every block device the kernel lists resolves, by number and by its /dev
    /// node (when this host has both).
    #[test]
    fn the_real_resolver_finds_this_hosts_block_devices() {
        let Ok(listed) = std::fs::read_dir("/sys/dev/block") else {
            return;
        };
        for entry in listed.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(number) = parse_device_number(&name) else {
                continue;
            };
            assert_eq!(resolve_block_device(&name), Ok(number));
            let uevent = std::fs::read_to_string(entry.path().join("uevent")).unwrap_or_default();
            let node = uevent
                .lines()
                .find_map(|line| line.strip_prefix("DEVNAME="))
                .map(|devname| format!("/dev/{devname}"));
            if let Some(node) = node.filter(|node| Path::new(node).exists()) {
                assert_eq!(resolve_block_device(&node), Ok(number), "{node}");
            }
        }
    }

    #[test]
    fn the_real_lookup_checks_names_and_finds_this_hosts_interfaces() {
        for bad in ["", ".", "..", "eth/0", "eth:0", "eth 0", "a-name-of-16-chr"] {
            let error = find_network_interface(bad).expect_err(bad);
            assert!(error.contains("is not a valid interface name"), "{error}");
            assert_eq!(check_interface_name(bad), Err(error));
        }
        assert_eq!(check_interface_name("a-name-of-15-ch"), Ok(()));
        assert_eq!(
            find_network_interface("qosd-no-such0"),
            Err("no network interface named qosd-no-such0".to_owned())
        );
        let Ok(listed) = std::fs::read_dir("/sys/class/net") else {
            return;
        };
        for entry in listed.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            assert_eq!(find_network_interface(&name), Ok(()), "{name}");
        }
    }
}
