//! Delegated cgroups: systemd marks the group of a unit with `Delegate=yes`
//! (a container runtime's scope, a user manager) with the extended
//! attribute `trusted.delegate` and, since v251, `user.delegate` too (a
//! process without CAP_SYS_ADMIN, such as qosd under its shipped unit,
//! cannot see `trusted.*`). The kernel's own model of delegation is
//! ownership: a group handed to a less privileged user is chowned to it
//! (systemd does so for `user@UID.service`, whatever its version). A group
//! that is marked, or owned by someone other than the owner of the cgroup
//! root, belongs to whoever it was delegated to: qosd never moves processes
//! out of it.

use std::ffi::{CStr, CString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::errno::Errno;
use nix::libc;

const XATTRS: [&CStr; 2] = [c"trusted.delegate", c"user.delegate"];

/// True when the cgroup directory carries a delegation mark or belongs to
/// someone other than `root_owner` (the owner of the cgroup root). A
/// directory that is gone, or a file system without extended attributes,
/// is not delegated.
pub fn is_delegated(dir: &Path, root_owner: u32) -> bool {
    let chowned = dir
        .metadata()
        .is_ok_and(|metadata| metadata.uid() != root_owner);
    chowned
        || XATTRS
            .iter()
            .any(|name| has_xattr(dir, name).unwrap_or(false))
}

/// The owner of the cgroup root (root on a real host; whoever made a fake
/// tree in tests); 0 if it cannot be read.
pub fn owner(root: &Path) -> u32 {
    root.metadata().map_or(0, |metadata| metadata.uid())
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
        let owner = owner(dir.path());
        assert!(!is_delegated(dir.path(), owner));
        assert!(!is_delegated(&dir.path().join("gone"), owner));
        assert!(has_xattr(&dir.path().join("gone"), c"user.delegate").is_err());
    }

    /// A group chowned away from the root's owner, as the kernel's
    /// delegation model has it, is delegated without any mark.
    #[test]
    fn a_group_owned_by_another_user_is_delegated() {
        let dir = tempfile::tempdir().unwrap();
        let owner = owner(dir.path());
        assert!(is_delegated(dir.path(), owner + 1));
        assert!(!is_delegated(dir.path(), owner));
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
        assert!(is_delegated(dir.path(), owner(dir.path())));
    }
}
