//! Block devices as the file names them (a path, "/dev/vda", or a device
//! number, "254:0"), and network interfaces ("eth0").

use std::io::ErrorKind;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use super::DeviceNumber;

/// Where the kernel lists block devices by number.
const SYS_DEV_BLOCK: &str = "/sys/dev/block";

/// `"254:0"` (surrounding spaces allowed) as a device number; `None` when the
/// text is not two decimal numbers separated by `:`.
pub fn parse_device_number(text: &str) -> Option<DeviceNumber> {
    text.trim().parse().ok()
}

/// Whether `text` has the shape of a device: an absolute path or `MAJ:MIN`.
/// The message says what to write instead.
pub(super) fn check_device_syntax(text: &str) -> Result<(), String> {
    if text.starts_with('/') || parse_device_number(text).is_some() {
        return Ok(());
    }
    Err(format!(
        r#"invalid device {text:?}: write an absolute path such as "/dev/vda" or a device number MAJ:MIN such as "254:0""#
    ))
}

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

/// Longest network interface name the kernel accepts, in bytes (IFNAMSIZ
/// less the terminating NUL).
const MAX_INTERFACE_NAME_BYTES: usize = 15;

/// Whether `name` is a name the kernel accepts for a network interface
/// (`dev_valid_name`): 1 to 15 bytes, not `.` or `..`, without `/`, `:`,
/// whitespace or NUL. The message says what is wrong.
pub fn check_interface_name(name: &str) -> Result<(), String> {
    let forbidden = |c: char| c == '/' || c == ':' || c == '\0' || c.is_ascii_whitespace();
    let valid = !name.is_empty()
        && name.len() <= MAX_INTERFACE_NAME_BYTES
        && !name.contains(forbidden)
        && name != "."
        && name != "..";
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a valid interface name: write 1 to {MAX_INTERFACE_NAME_BYTES} \
             characters without `/`, `:` or spaces, as `ip link` shows it (such as \"eth0\")"
        ))
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
