use std::io;
use std::ops::RangeInclusive;
use std::path::PathBuf;

use nix::errno::Errno;

use super::cpu::CpuValueError;
use super::flat_keyed::FlatKeyedError;
use super::io::IoValueError;
use super::memory::MemoryValueError;
use super::pressure::PressureValueError;

pub type Result<T> = std::result::Result<T, CgroupError>;

/// Names `statfs` gives for the file systems found where cgroup v2 was expected
/// on a legacy or hybrid host (see `tree::fs_type_name`).
pub(crate) const FS_TMPFS: &str = "tmpfs";
pub(crate) const FS_CGROUP1: &str = "cgroup (v1)";

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {value:?} to {path}: {source}")]
    Write {
        path: PathBuf,
        value: String,
        source: std::io::Error,
    },
    #[error("cannot parse {path}: {reason} (content: {content:?})")]
    Parse {
        path: PathBuf,
        content: String,
        reason: ValueError,
    },
    /// A value qosd refuses to write because the kernel would reject it.
    #[error("refusing to write {value:?} to {path}: {reason}")]
    InvalidValue {
        path: PathBuf,
        value: String,
        reason: ValueError,
    },
    /// mkdir of a cgroup failed.
    #[error("cannot create cgroup {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A group path that is absolute or climbs out of the hierarchy with `..`.
    #[error("invalid cgroup path {path:?}: {reason}")]
    InvalidPath { path: PathBuf, reason: String },
    #[error(
        "cgroup root {path} does not exist: set agent.cgroup_root to a cgroup2 mount \
         (usually /sys/fs/cgroup; `findmnt -t cgroup2` lists them)"
    )]
    RootMissing { path: PathBuf },
    #[error(
        "{path} is not a cgroup v2 mount (found {found}): {}",
        not_cgroup2_fix(found)
    )]
    NotCgroup2 { path: PathBuf, found: String },
    /// The root is the top of a cgroup2 mount and lacks a controller: on such a
    /// mount, a controller is missing only when a v1 hierarchy holds it.
    #[error(
        "the {controller} controller is not available in {path} (cgroup.controllers: {}): \
         it is probably bound to cgroup v1; boot with \
         systemd.unified_cgroup_hierarchy=1 cgroup_no_v1=all",
        list_or_none(available)
    )]
    MissingController {
        controller: &'static str,
        path: PathBuf,
        available: Vec<String>,
    },
    /// The root is a group inside a cgroup2 mount: its parent has not enabled
    /// (delegated) the controller to it.
    #[error(
        "the {controller} controller is not enabled for {path} (cgroup.controllers: {}): \
         enable it in the parent's cgroup.subtree_control (with systemd: Delegate=yes \
         in the qosd unit), or set agent.cgroup_root to the cgroup2 mount",
        list_or_none(available)
    )]
    ControllerNotDelegated {
        controller: &'static str,
        path: PathBuf,
        available: Vec<String>,
    },
}

/// What is wrong with a file's content, or with a value qosd will not write:
/// the few cases every file shares, then one enum per controller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("expected a single number")]
    NotANumber,
    #[error("expected one PID per line")]
    NotPids,
    /// A weight outside what the kernel accepts in `file`.
    #[error("{file} must be in {low}..={high}")]
    OutOfRange {
        file: &'static str,
        low: u32,
        high: u32,
    },
    #[error(transparent)]
    FlatKeyed(#[from] FlatKeyedError),
    #[error(transparent)]
    Cpu(#[from] CpuValueError),
    #[error(transparent)]
    Io(#[from] IoValueError),
    #[error(transparent)]
    Memory(#[from] MemoryValueError),
    #[error(transparent)]
    Pressure(#[from] PressureValueError),
}

impl ValueError {
    /// [`ValueError::OutOfRange`] when `weight` is outside `range`.
    pub(crate) fn unless_within(
        file: &'static str,
        range: RangeInclusive<u32>,
        weight: u32,
    ) -> Option<ValueError> {
        (!range.contains(&weight)).then(|| ValueError::OutOfRange {
            file,
            low: *range.start(),
            high: *range.end(),
        })
    }
}

/// What a value of some kind looks like, for [`SyntaxError`].
#[derive(Debug, PartialEq, Eq)]
pub struct Syntax {
    /// The kind of value, e.g. "device number".
    pub what: &'static str,
    /// What it must look like, e.g. "MAJ:MIN, e.g. 8:0".
    pub expected: &'static str,
}

/// A value that does not have its syntax (a device number, a cpu.max line):
/// the text, and what was expected instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {} {input:?}: expected {}", syntax.what, syntax.expected)]
pub struct SyntaxError {
    syntax: &'static Syntax,
    input: String,
}

impl SyntaxError {
    pub(crate) fn new(syntax: &'static Syntax, input: &str) -> Self {
        SyntaxError {
            syntax,
            input: input.to_owned(),
        }
    }
}

impl CgroupError {
    /// The cgroup (or the file) is gone: a tenant's group removed behind our back.
    /// That is normal on a live host, not a crash.
    ///
    /// ENOENT is a path that no longer resolves; ENODEV is what kernfs returns for
    /// a file that was open (or being opened) while its group was removed.
    pub fn is_vanished(&self) -> bool {
        match self {
            CgroupError::Read { source, .. } | CgroupError::Write { source, .. } => is_gone(source),
            _ => false,
        }
    }

    /// An io.max write named a block device the kernel does not have as a
    /// whole disk (ENODEV while the group exists): the device was removed, or
    /// it is a partition. The group itself is fine.
    pub fn is_no_device(&self) -> bool {
        match self {
            CgroupError::Write { source, .. } => source
                .get_ref()
                .is_some_and(|inner| inner.is::<super::io::NoSuchDevice>()),
            _ => false,
        }
    }
}

fn is_gone(error: &io::Error) -> bool {
    let errno = error.raw_os_error();
    errno == Some(Errno::ENOENT as i32) || errno == Some(Errno::ENODEV as i32)
}

fn not_cgroup2_fix(found: &str) -> &'static str {
    if found == FS_TMPFS || found == FS_CGROUP1 {
        "this host uses the legacy or hybrid hierarchy; boot with \
         systemd.unified_cgroup_hierarchy=1, or set agent.cgroup_root to a cgroup2 mount"
    } else {
        "set agent.cgroup_root to a cgroup2 mount \
         (usually /sys/fs/cgroup; `findmnt -t cgroup2` lists them)"
    }
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_error(errno: Errno) -> CgroupError {
        CgroupError::Read {
            path: "/x/cpu.stat".into(),
            source: io::Error::from(errno),
        }
    }

    #[test]
    fn vanished_is_enoent_or_enodev_on_read_and_write() {
        assert!(read_error(Errno::ENOENT).is_vanished());
        assert!(read_error(Errno::ENODEV).is_vanished());
        assert!(!read_error(Errno::EACCES).is_vanished());
        let write = CgroupError::Write {
            path: "/x/cpu.max".into(),
            value: "max 100000".into(),
            source: io::Error::from(Errno::ENODEV),
        };
        assert!(write.is_vanished());
    }

    #[test]
    fn other_errors_are_not_vanished() {
        let parse = CgroupError::Parse {
            path: "/x/cpu.weight".into(),
            content: String::new(),
            reason: ValueError::NotANumber,
        };
        assert!(!parse.is_vanished());
        assert!(!CgroupError::RootMissing { path: "/x".into() }.is_vanished());
    }

    #[test]
    fn write_error_names_path_and_value() {
        let write = CgroupError::Write {
            path: "/x/cpu.max".into(),
            value: "50000 100000".into(),
            source: io::Error::from(Errno::EINVAL),
        };
        let text = write.to_string();
        assert!(text.contains("/x/cpu.max"), "{text}");
        assert!(text.contains("\"50000 100000\""), "{text}");
    }
}
