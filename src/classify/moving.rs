//! Moving a process, all its threads at once, into a group.

use nix::errno::Errno;

use crate::cgroup::{CgroupError, Group};

const CGROUP_PROCS: &str = "cgroup.procs";

/// Result of writing a PID to a group's `cgroup.procs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoveOutcome {
    Moved,
    /// The process exited meanwhile (ESRCH).
    Vanished,
}

/// Moves process `pid` with all its threads into `group` (one write of the
/// PID to its `cgroup.procs`). A process that exited meanwhile is
/// [`MoveOutcome::Vanished`], not an error; a group that is gone is an
/// error for which `is_vanished()` holds.
pub fn move_process(group: &Group, pid: u32) -> Result<MoveOutcome, CgroupError> {
    match group.write(CGROUP_PROCS, &pid.to_string()) {
        Ok(()) => Ok(MoveOutcome::Moved),
        Err(error) if process_vanished(&error, group) => Ok(MoveOutcome::Vanished),
        Err(error) => Err(error),
    }
}

/// ESRCH: no such process. ENOENT while the group still exists: the
/// process went away during the write.
fn process_vanished(error: &CgroupError, group: &Group) -> bool {
    let CgroupError::Write { source, .. } = error else {
        return false;
    };
    match source.raw_os_error() {
        Some(errno) if errno == Errno::ESRCH as i32 => true,
        Some(errno) if errno == Errno::ENOENT as i32 => group.exists(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::path::Path;

    use nix::sys::statfs;

    use super::*;
    use crate::cgroup::Hierarchy;
    use crate::cgroup::fake::FakeTree;

    #[test]
    fn move_writes_the_pid_to_cgroup_procs() {
        let tree = FakeTree::new();
        tree.add_group("qosd.slice/alice");
        let group = tree.hierarchy().group(Path::new("qosd.slice/alice"));
        assert_eq!(move_process(&group, 4242).unwrap(), MoveOutcome::Moved);
        assert_eq!(tree.read("qosd.slice/alice/cgroup.procs"), "4242");
        let gone = tree.hierarchy().group(Path::new("qosd.slice/gone"));
        let error = move_process(&gone, 4242).unwrap_err();
        assert!(error.is_vanished(), "a missing group is an error: {error}");
    }

    #[test]
    fn a_process_that_exits_during_the_move_is_vanished_not_an_error() {
        let tree = FakeTree::new();
        tree.add_group("web");
        let group = tree.hierarchy().group(Path::new("web"));
        let write_error = |errno: Errno| CgroupError::Write {
            path: group.path().join(CGROUP_PROCS),
            value: "4242".into(),
            source: io::Error::from(errno),
        };
        assert!(process_vanished(&write_error(Errno::ESRCH), &group));
        assert!(process_vanished(&write_error(Errno::ENOENT), &group));
        assert!(!process_vanished(&write_error(Errno::EBUSY), &group));
        let gone = tree.hierarchy().group(Path::new("gone"));
        assert!(!process_vanished(&write_error(Errno::ENOENT), &gone));
    }

    /// On a host with a writable cgroup2 mount, writing a PID that does not
    /// exist to cgroup.procs is ESRCH, which is a vanished process.
    #[test]
    fn a_vanished_pid_on_a_real_cgroup2_is_vanished() {
        let found = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
            .into_iter()
            .map(Path::new)
            .find(|path| {
                statfs::statfs(*path)
                    .is_ok_and(|s| s.filesystem_type() == statfs::CGROUP2_SUPER_MAGIC)
            });
        let Some(root) = found else {
            eprintln!("skipped: no cgroup2 mount");
            return;
        };
        let group = Hierarchy::at(root).group(Path::new(""));
        match move_process(&group, 999_999_999) {
            Ok(outcome) => assert_eq!(outcome, MoveOutcome::Vanished),
            // Only a mount qosd may not write to is a reason to skip: any
            // other error (ESRCH not taken as vanished) is the bug.
            Err(CgroupError::Write { source, .. })
                if matches!(
                    source.raw_os_error().map(Errno::from_raw),
                    Some(Errno::EACCES | Errno::EPERM | Errno::EROFS)
                ) =>
            {
                eprintln!("skipped: cannot write {}: {source}", root.display())
            }
            Err(error) => panic!("{error}"),
        }
    }
}
