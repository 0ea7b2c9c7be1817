//! How block devices (a path, "/dev/vda", or a device number, "254:0") and
//! network interfaces ("eth0") may be written. Whether this host has them
//! is for `crate::host` to say.

use super::DeviceNumber;

/// `"254:0"` (surrounding spaces allowed) as a device number; `None` when the
/// text is not two decimal numbers separated by `:`.
pub fn parse_device_number(text: &str) -> Option<DeviceNumber> {
    text.trim().parse().ok()
}

/// Whether `text` has the shape of a device: an absolute path or `MAJ:MIN`.
/// The message says what to write instead.
pub fn check_device_syntax(text: &str) -> Result<(), String> {
    if text.starts_with('/') || parse_device_number(text).is_some() {
        return Ok(());
    }
    Err(format!(
        r#"invalid device {text:?}: write an absolute path such as "/dev/vda" or a device number MAJ:MIN such as "254:0""#
    ))
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
