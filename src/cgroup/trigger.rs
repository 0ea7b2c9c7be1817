//! PSI triggers: the kernel wakes whoever polls a `{cpu,io,memory}.pressure`
//! file when the stall written to it is crossed within its window
//! (Documentation/accounting/psi.rst, "Monitoring for pressure
//! thresholds"). The agent wakes on them between ticks (`agent/wakeups.rs`).
//!
//! A trigger lives as long as its open file: one file, one trigger. The
//! kernel sends at most one event per window per trigger, whatever the load,
//! so a trigger cannot flood its poller.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::statfs::{self, FsType};
use tokio::io::unix::AsyncFd;
use tokio::io::{Interest, Ready};

/// The stall ("some": at least one task waiting) within [`WINDOW`] that
/// fires a trigger: 10% of the window.
pub const STALL: Duration = Duration::from_millis(50);
/// The window the stall is measured over: the smallest the kernel accepts
/// (500 ms; at most 10 s). Unprivileged users may only use multiples of 2 s.
pub const WINDOW: Duration = Duration::from_millis(500);
const KIND: &str = "some";

/// The file systems whose pressure files take triggers. Anything else (a
/// test's tmpfs tree) has plain files: writing a trigger would overwrite
/// them, and epoll refuses regular files.
const KERNEL_FS: [FsType; 2] = [statfs::CGROUP2_SUPER_MAGIC, statfs::PROC_SUPER_MAGIC];

/// The line written to arm a trigger: `some 50000 500000`.
pub fn value() -> String {
    format!("{KIND} {} {}", STALL.as_micros(), WINDOW.as_micros())
}

/// Why a trigger could not be armed, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    /// Not on this kernel, or not for this agent: waiting for the tick is
    /// the only way here, and trying again will not change that.
    #[error(
        "PSI triggers are not supported here: cannot write {value:?} to {path}: {source} ({})",
        hint(source)
    )]
    Unsupported {
        path: PathBuf,
        value: String,
        source: io::Error,
    },
    /// The group was removed (or is being removed).
    #[error("cannot write {value:?} to {path}: the group is gone")]
    Vanished { path: PathBuf, value: String },
    #[error("cannot arm the PSI trigger {value:?} on {path}: {source}")]
    Failed {
        path: PathBuf,
        value: String,
        source: io::Error,
    },
    /// An armed trigger's file reports an error: its group was removed.
    #[error("the PSI trigger on {path} stopped: {source}")]
    Stopped { path: PathBuf, source: io::Error },
}

impl TriggerError {
    pub fn is_unsupported(&self) -> bool {
        matches!(self, TriggerError::Unsupported { .. })
    }
}

/// What an errno that means "not here" usually comes from.
fn hint(source: &io::Error) -> &'static str {
    match source.raw_os_error().map(Errno::from_raw) {
        Some(Errno::EINVAL) => "the kernel refuses triggers on this file",
        Some(Errno::EOPNOTSUPP) => "PSI is turned off for this group (cgroup.pressure)",
        Some(Errno::ENOENT) => "no pressure file: PSI is off (booted with psi=0?)",
        Some(Errno::EACCES | Errno::EPERM) => "the agent may not set triggers: run it as root",
        _ => "not a kernel pressure file",
    }
}

/// One armed trigger. Dropping it closes the file, which removes the trigger.
#[derive(Debug)]
pub struct Trigger {
    file: AsyncFd<File>,
    path: PathBuf,
}

impl Trigger {
    /// Arms [`value`] on the pressure file at `path` (a group's
    /// `cpu.pressure`, or `/proc/pressure/cpu`). Needs a tokio runtime with
    /// IO enabled.
    pub fn arm(path: &Path) -> Result<Trigger, TriggerError> {
        let value = value();
        let error = |source: io::Error| classify(path, &value, source);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(OFlag::O_NONBLOCK.bits())
            .open(path)
            .map_err(error)?;
        check_kernel_file(&file).map_err(error)?;
        // The kernel takes the last byte written for the string's end and
        // overwrites it (psi_write), so the NUL goes with it, as in the
        // kernel's example.
        let line = format!("{value}\0");
        match (&file).write(line.as_bytes()) {
            Ok(written) if written == line.len() => {}
            Ok(_) => return Err(error(io::Error::from(io::ErrorKind::WriteZero))),
            Err(source) => return Err(error(source)),
        }
        // SAFETY: a `File` owns its descriptor, keeps it open until dropped,
        // and `Trigger` never replaces it.
        let file =
            unsafe { AsyncFd::register_with_interest(file, Interest::PRIORITY | Interest::ERROR) }
                .map_err(|failed| error(failed.into()))?;
        Ok(Trigger {
            file,
            path: path.to_owned(),
        })
    }

    /// Waits for the next event (POLLPRI). An error means the trigger is
    /// dead (its group was removed); drop it.
    pub async fn fired(&self) -> Result<(), TriggerError> {
        let stopped = |source| TriggerError::Stopped {
            path: self.path.clone(),
            source,
        };
        let mut guard = self
            .file
            .ready(Interest::PRIORITY | Interest::ERROR)
            .await
            .map_err(stopped)?;
        let ready = guard.ready();
        if ready.is_error() || ready.is_read_closed() {
            return Err(stopped(io::Error::other("the file reports an error")));
        }
        // The kernel clears the event when it reports it; the next one comes
        // with a new wake-up.
        guard.clear_ready_matching(Ready::PRIORITY);
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn check_kernel_file(file: &File) -> io::Result<()> {
    let found = statfs::fstatfs(file)?.filesystem_type();
    if KERNEL_FS.contains(&found) {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        format!("file system type {:#x}, not cgroup2 or proc", found.0),
    ))
}

/// Tells "not here" (the kernel or the agent's rights), "gone" (the group
/// was removed) and other failures apart.
fn classify(path: &Path, value: &str, source: io::Error) -> TriggerError {
    let errno = source.raw_os_error().map(Errno::from_raw);
    let group_exists = || path.parent().is_some_and(Path::is_dir);
    let gone = matches!(errno, Some(Errno::ENODEV))
        || (matches!(errno, Some(Errno::ENOENT)) && !group_exists());
    let (path, value) = (path.to_owned(), value.to_owned());
    if gone {
        return TriggerError::Vanished { path, value };
    }
    let unsupported = source.kind() == io::ErrorKind::Unsupported
        || matches!(
            errno,
            Some(Errno::EINVAL | Errno::EOPNOTSUPP | Errno::ENOENT | Errno::EACCES | Errno::EPERM)
        );
    if unsupported {
        TriggerError::Unsupported {
            path,
            value,
            source,
        }
    } else {
        TriggerError::Failed {
            path,
            value,
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROC_CPU: &str = "/proc/pressure/cpu";

    #[test]
    fn the_value_is_stall_and_window_in_microseconds() {
        assert_eq!(value(), "some 50000 500000");
    }

    #[tokio::test]
    async fn proc_pressure_is_armed_or_unsupported_never_a_failure() {
        // On the build host this returns EINVAL: the fallback's path.
        match Trigger::arm(Path::new(PROC_CPU)) {
            Ok(trigger) => assert_eq!(trigger.path(), Path::new(PROC_CPU)),
            Err(error) => {
                assert!(error.is_unsupported(), "{error}");
                let text = error.to_string();
                assert!(text.contains(PROC_CPU) && text.contains("some 50000 500000"));
            }
        }
    }

    #[tokio::test]
    async fn a_plain_file_is_unsupported_and_left_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cpu.pressure");
        let content = "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n";
        std::fs::write(&path, content).unwrap();
        let error = Trigger::arm(&path).unwrap_err();
        assert!(error.is_unsupported(), "{error}");
        assert!(error.to_string().contains("not cgroup2 or proc"), "{error}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), content);
    }

    #[test]
    fn a_missing_group_is_gone_and_a_missing_file_in_a_group_unsupported() {
        let dir = tempfile::tempdir().unwrap();
        let gone = Trigger::arm(&dir.path().join("gone/cpu.pressure")).unwrap_err();
        assert!(matches!(gone, TriggerError::Vanished { .. }), "{gone}");
        let no_psi = Trigger::arm(&dir.path().join("cpu.pressure")).unwrap_err();
        assert!(no_psi.is_unsupported(), "{no_psi}");
        assert!(no_psi.to_string().contains("PSI is off"), "{no_psi}");
    }

    #[test]
    fn errnos_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cpu.pressure");
        let of = |errno: Errno| classify(&path, "some 1 2", io::Error::from(errno));
        for errno in [
            Errno::EINVAL,
            Errno::EOPNOTSUPP,
            Errno::EACCES,
            Errno::EPERM,
        ] {
            let error = of(errno);
            assert!(error.is_unsupported(), "{errno}: {error}");
            let text = error.to_string();
            assert!(text.contains(path.to_str().unwrap()) && text.contains("\"some 1 2\""));
        }
        assert!(matches!(of(Errno::ENODEV), TriggerError::Vanished { .. }));
        for errno in [Errno::EBUSY, Errno::EMFILE, Errno::ENOMEM] {
            assert!(matches!(of(errno), TriggerError::Failed { .. }), "{errno}");
        }
    }
}
