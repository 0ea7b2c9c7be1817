//! Delegated cgroups: systemd marks the group of a unit with `Delegate=yes`
//! (a container runtime's scope, a user manager) with the extended
//! attribute `trusted.delegate` and, since v251, `user.delegate` too (a
//! process without CAP_SYS_ADMIN cannot see `trusted.*`). The subtree
//! belongs to whoever it was delegated to: qosd never moves processes out
//! of it.

use std::ffi::{CStr, CString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::libc;

const XATTRS: [&CStr; 2] = [c"trusted.delegate", c"user.delegate"];

/// True when the cgroup directory carries a delegation mark. A directory
/// that is gone, or a file system without extended attributes, is not
/// delegated.
pub fn is_delegated(dir: &Path) -> bool {
    XATTRS
        .iter()
        .any(|name| has_xattr(dir, name).unwrap_or(false))
}

/// Whether `path` has the extended attribute `name` (whatever its value).
pub fn has_xattr(path: &Path, name: &CStr) -> io::Result<bool> {
    let path = CString::new(path.as_os_str().as_bytes())
        .map_err(|error| io::Error::new(io::ErrorKind::InvalidInput, error))?;
    // SAFETY: both pointers are valid NUL-terminated strings for the whole
    // call; a null buffer of size 0 asks only for the value's length.
    let length = unsafe { libc::getxattr(path.as_ptr(), name.as_ptr(), std::ptr::null_mut(), 0) };
    if length >= 0 {
        return Ok(true);
    }
    match Errno::last() {
        Errno::ENODATA | Errno::EOPNOTSUPP => Ok(false),
        errno => Err(io::Error::from(errno)),
    }
}

/// Sets `name` to `value` on `path`: test support, to mark a fake group
/// delegated as systemd does.
#[cfg(test)]
pub fn set_xattr(path: &Path, name: &CStr, value: &[u8]) -> io::Result<()> {
    let path = CString::new(path.as_os_str().as_bytes())
        .map_err(|error| io::Error::new(io::ErrorKind::InvalidInput, error))?;
    // SAFETY: valid NUL-terminated strings and a buffer of `value.len()` bytes.
    let result = unsafe {
        libc::setxattr(
            path.as_ptr(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_directory_is_not_delegated_and_a_missing_one_neither() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!is_delegated(dir.path()));
        assert!(!is_delegated(&dir.path().join("gone")));
        assert!(has_xattr(&dir.path().join("gone"), c"user.delegate").is_err());
    }

    #[test]
    fn a_delegate_xattr_marks_it() {
        let dir = tempfile::tempdir().unwrap();
        let marked = XATTRS
            .iter()
            .any(|name| set_xattr(dir.path(), name, b"1").is_ok());
        if !marked {
            eprintln!("skipped: the temporary directory's file system takes no delegate xattr");
            return;
        }
        assert!(is_delegated(dir.path()));
    }
}
