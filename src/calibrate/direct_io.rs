//! Files opened for direct I/O: the device, or a scratch file that removes
//! itself, and buffers aligned as O_DIRECT wants them.

use std::alloc::{self, Layout};
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;

use anyhow::{Result, anyhow};
use nix::fcntl::OFlag;

use super::in_use::{fs_type_of, refusal};

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Access {
    Read,
    /// Write to an existing device or file, O_EXCL so the kernel refuses a busy block device.
    WriteExisting,
    /// Read and write a scratch file that was just created.
    Scratch,
}

pub(super) fn open_direct(path: &Path, access: Access) -> Result<File> {
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

pub(super) fn size_of(file: &File, path: &Path) -> Result<u64> {
    let mut handle = file;
    handle
        .seek(SeekFrom::End(0))
        .map_err(|err| anyhow!("cannot find the size of {}: {err}", path.display()))
}

pub(super) fn align_down(value: u64, align: usize) -> u64 {
    value / align as u64 * align as u64
}

/// Removes the scratch file when dropped, on every path out.
pub(super) struct ScratchGuard {
    path: PathBuf,
    armed: bool,
}

impl ScratchGuard {
    pub(super) fn create(path: &Path) -> Result<Self> {
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

    pub(super) fn remove(mut self) -> Result<()> {
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

/// A zeroed heap buffer aligned for O_DIRECT.
pub(super) struct AlignedBuf {
    ptr: NonNull<u8>,
    layout: Layout,
}

impl AlignedBuf {
    pub(super) fn new(len: usize, align: usize) -> Self {
        let layout = Layout::from_size_align(len.max(1), align).expect("valid buffer layout");
        // SAFETY: the layout has a non-zero size.
        let raw = unsafe { alloc::alloc_zeroed(layout) };
        let ptr = NonNull::new(raw).unwrap_or_else(|| alloc::handle_alloc_error(layout));
        AlignedBuf { ptr, layout }
    }

    pub(super) fn as_mut_slice(&mut self) -> &mut [u8] {
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
