use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fs::{self, File};
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use nix::errno::Errno;
use nix::sys::statfs::{self, FsType};

use super::error::{FS_CGROUP1, FS_TMPFS};
use super::{CgroupError, Result, ValueError, file};

const CGROUP_CONTROLLERS: &str = "cgroup.controllers";
const CGROUP_SUBTREE_CONTROL: &str = "cgroup.subtree_control";
const CGROUP_PROCS: &str = "cgroup.procs";

/// File systems worth naming when the root is not cgroup2; others show their magic.
const KNOWN_FS: &[(FsType, &str)] = &[
    (statfs::TMPFS_MAGIC, FS_TMPFS),
    (statfs::CGROUP_SUPER_MAGIC, FS_CGROUP1),
    (statfs::SYSFS_MAGIC, "sysfs"),
    (statfs::PROC_SUPER_MAGIC, "proc"),
    (statfs::EXT4_SUPER_MAGIC, "ext2/ext3/ext4"),
    (statfs::XFS_SUPER_MAGIC, "xfs"),
    (statfs::BTRFS_SUPER_MAGIC, "btrfs"),
    (statfs::OVERLAYFS_SUPER_MAGIC, "overlayfs"),
];

/// The cgroup v2 controllers qosd uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Controller {
    Cpu,
    Io,
    Memory,
}

impl Controller {
    pub fn name(self) -> &'static str {
        match self {
            Controller::Cpu => "cpu",
            Controller::Io => "io",
            Controller::Memory => "memory",
        }
    }
}

/// A cgroup v2 hierarchy rooted at a path.
#[derive(Debug, Clone)]
pub struct Hierarchy {
    root: PathBuf,
}

impl Hierarchy {
    /// No checks: for tests on a fake tree.
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Hierarchy { root: root.into() }
    }

    /// Checks that `root` is a cgroup2 mount and that `controllers` are available
    /// there; otherwise says exactly what is wrong and how to fix it.
    /// Only reads: it never mounts or writes anything.
    pub fn open(root: impl Into<PathBuf>, controllers: &[Controller]) -> Result<Self> {
        let hierarchy = Hierarchy::at(root);
        hierarchy.check_cgroup2()?;
        hierarchy.check_controllers(controllers)?;
        Ok(hierarchy)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A handle on `relative` (which need not exist). No checks: an absolute
    /// `relative` replaces the root. Use [`Hierarchy::checked_group`] for paths
    /// from configuration.
    pub fn group(&self, relative: &Path) -> Group {
        Group::new(self.root.join(relative))
    }

    /// A handle on `relative`, refusing paths that would leave the hierarchy
    /// (absolute, or with `..`).
    pub fn checked_group(&self, relative: &Path) -> Result<Group> {
        Ok(self.group(&confine(relative)?))
    }

    /// Creates `relative` and its ancestors as needed, and enables `controllers`
    /// top-down in every ancestor's `cgroup.subtree_control` (root included).
    pub fn ensure_group(&self, relative: &Path, controllers: &[Controller]) -> Result<Group> {
        self.enable_for_group(relative, controllers, |path| {
            fs::create_dir_all(path).map_err(|source| CgroupError::Create {
                path: path.to_owned(),
                source,
            })
        })
    }

    /// Like [`Hierarchy::ensure_group`] for a group that must already exist (an
    /// adopted cgroup, e.g. a systemd slice): enables `controllers` in the root
    /// and every ancestor, but never creates it. A missing group is an error for
    /// which `is_vanished()` is true.
    pub fn enable_for(&self, relative: &Path, controllers: &[Controller]) -> Result<Group> {
        self.enable_for_group(relative, controllers, |path| {
            fs::metadata(path)
                .map(drop)
                .map_err(|source| file::read_error(path, source))
        })
    }

    /// Confines `relative`, has `be_there` make sure the group's directory
    /// exists, then enables `controllers` above it.
    fn enable_for_group(
        &self,
        relative: &Path,
        controllers: &[Controller],
        be_there: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<Group> {
        let relative = confine(relative)?;
        let group = self.group(&relative);
        be_there(&group.path)?;
        self.enable_above(&relative, controllers)?;
        Ok(group)
    }

    fn check_cgroup2(&self) -> Result<()> {
        let found = fs_type(&self.root)?;
        if found == statfs::CGROUP2_SUPER_MAGIC {
            return Ok(());
        }
        Err(CgroupError::NotCgroup2 {
            path: self.root.clone(),
            found: fs_type_name(found),
        })
    }

    fn check_controllers(&self, controllers: &[Controller]) -> Result<()> {
        let available = self.group(Path::new("")).controllers()?;
        let Some(missing) = controllers
            .iter()
            .find(|c| !available.iter().any(|a| a == c.name()))
        else {
            return Ok(());
        };
        let (controller, path) = (missing.name(), self.root.clone());
        if self.is_nested() {
            Err(CgroupError::ControllerNotDelegated {
                controller,
                path,
                available,
            })
        } else {
            Err(CgroupError::MissingController {
                controller,
                path,
                available,
            })
        }
    }

    /// True when the root is a group inside a cgroup2 mount rather than the top
    /// of the mount: then a missing controller is a delegation problem, not v1.
    fn is_nested(&self) -> bool {
        let Some(parent) = self.root.parent() else {
            return false;
        };
        statfs::statfs(parent).is_ok_and(|s| s.filesystem_type() == statfs::CGROUP2_SUPER_MAGIC)
    }

    /// Enables `controllers` in the root and every ancestor of `relative`, top
    /// down (a parent must enable a controller before its child can). The group
    /// itself is left alone: qosd sets limits on it, it has no children to feed.
    fn enable_above(&self, relative: &Path, controllers: &[Controller]) -> Result<()> {
        let mut ancestor = self.root.clone();
        for component in relative.components() {
            enable_in(&ancestor, controllers)?;
            ancestor.push(component);
        }
        Ok(())
    }
}

/// Returns `relative` without `.` components, or an error if it is absolute or
/// has `..`: a tenant's group must stay under the root qosd was given.
fn confine(relative: &Path) -> Result<PathBuf> {
    let mut confined = PathBuf::new();
    for component in relative.components() {
        match component {
            Component::Normal(name) => confined.push(name),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(invalid_path(relative, "\"..\" would leave the cgroup root"));
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(invalid_path(
                    relative,
                    "it is absolute; give it relative to agent.cgroup_root",
                ));
            }
        }
    }
    Ok(confined)
}

fn invalid_path(path: &Path, reason: &str) -> CgroupError {
    CgroupError::InvalidPath {
        path: path.to_owned(),
        reason: reason.to_owned(),
    }
}

/// Writes only the controllers missing from `dir`'s subtree_control: rewriting
/// an enabled one is harmless on a real kernel, but a needless write is a
/// needless chance to fail (EBUSY, EPERM in a delegated tree).
fn enable_in(dir: &Path, controllers: &[Controller]) -> Result<()> {
    let path = dir.join(CGROUP_SUBTREE_CONTROL);
    let enabled = file::read(&path)?;
    let value = enable_value(&enabled, controllers);
    if value.is_empty() {
        return Ok(());
    }
    // One write for all of them: the kernel applies a subtree_control write as
    // a whole, so either every controller is enabled or none is.
    file::write(&path, &value)
}

/// `"+cpu +memory"` for the controllers not listed in `enabled`.
fn enable_value(enabled: &str, controllers: &[Controller]) -> String {
    let mut missing: Vec<String> = Vec::new();
    for controller in controllers {
        let token = format!("+{}", controller.name());
        let listed = enabled.split_whitespace().any(|e| e == controller.name());
        if !listed && !missing.contains(&token) {
            missing.push(token);
        }
    }
    missing.join(" ")
}

fn fs_type(path: &Path) -> Result<FsType> {
    match statfs::statfs(path) {
        Ok(stat) => Ok(stat.filesystem_type()),
        Err(Errno::ENOENT) => Err(CgroupError::RootMissing {
            path: path.to_owned(),
        }),
        Err(errno) => Err(CgroupError::Read {
            path: path.to_owned(),
            source: io::Error::from(errno),
        }),
    }
}

fn fs_type_name(fs: FsType) -> String {
    match KNOWN_FS.iter().find(|(magic, _)| *magic == fs) {
        Some((_, name)) => (*name).to_owned(),
        None => format!("file system type {:#x}", fs.0),
    }
}

/// One cgroup directory (absolute path).
#[derive(Debug, Clone)]
pub struct Group {
    path: PathBuf,
    /// Files read every tick, kept open: one pread at offset 0 costs a third
    /// of open + read + close, which dominated a tick. Shared by clones.
    open_files: Arc<Mutex<HashMap<&'static str, File>>>,
}

impl PartialEq for Group {
    fn eq(&self, other: &Self) -> bool {
        self.path == other.path
    }
}

impl Eq for Group {}

impl Group {
    fn new(path: PathBuf) -> Self {
        Group {
            path,
            open_files: Arc::default(),
        }
    }

    /// Closes the kept-open files: the group was removed, and a group made
    /// again under the same path must be opened afresh.
    pub fn close_files(&self) {
        self.open_files
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Reads a file that is read every tick (`cpu.stat`, ...) through a kept
    /// open descriptor. A failed read closes it, so a group that was removed
    /// and created again is opened afresh next time.
    pub(crate) fn read_often(&self, file_name: &'static str) -> Result<String> {
        let path = || self.path.join(file_name);
        let mut open_files = self
            .open_files
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let file = match open_files.entry(file_name) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => match File::open(path()) {
                Ok(opened) => entry.insert(opened),
                // Out of descriptors: still read, just without keeping it open.
                Err(e) if e.raw_os_error() == Some(Errno::EMFILE as i32) => {
                    return file::read(&path());
                }
                Err(e) => return Err(file::read_error(&path(), e)),
            },
        };
        file::read_from_start(file).map_err(|source| {
            open_files.remove(file_name);
            file::read_error(&path(), source)
        })
    }

    /// [`Group::read_often`], then `parse`: an error names the file and keeps
    /// the content that did not parse.
    pub(crate) fn read_parsed<T, E: Into<ValueError>>(
        &self,
        file_name: &'static str,
        parse: impl FnOnce(&str) -> std::result::Result<T, E>,
    ) -> Result<T> {
        let content = self.read_often(file_name)?;
        parse(&content)
            .map_err(|reason| file::parse_error(&self.path.join(file_name), content, reason))
    }

    /// Reads and parses a file that is read only now and then, without
    /// keeping it open (a kept-open `cpu.max.burst` per tenant ran the VM's
    /// 1,000-tenant agent out of descriptors); `Ok(None)` when the file is
    /// missing but the group is not: the kernel lacks the knob, or the
    /// parent has not enabled its controller. A vanished group is an error,
    /// not `None`.
    pub(crate) fn read_parsed_if_present<T, E: Into<ValueError>>(
        &self,
        file_name: &'static str,
        parse: impl FnOnce(&str) -> std::result::Result<T, E>,
    ) -> Result<Option<T>> {
        let path = self.path.join(file_name);
        let content = match file::read(&path) {
            Err(CgroupError::Read { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound && self.exists() =>
            {
                return Ok(None);
            }
            read => read?,
        };
        parse(&content)
            .map(Some)
            .map_err(|reason| file::parse_error(&path, content, reason))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn exists(&self) -> bool {
        self.path.is_dir()
    }

    /// PIDs in `cgroup.procs`.
    pub fn procs(&self) -> Result<Vec<u32>> {
        let path = self.path.join(CGROUP_PROCS);
        let content = file::read(&path)?;
        let pids: std::result::Result<Vec<u32>, _> =
            content.split_whitespace().map(str::parse).collect();
        pids.map_err(|_| file::parse_error(&path, content, ValueError::NotPids))
    }

    /// Controllers listed in `cgroup.controllers` (those the parent enabled).
    pub fn controllers(&self) -> Result<Vec<String>> {
        let content = file::read(&self.path.join(CGROUP_CONTROLLERS))?;
        Ok(content.split_whitespace().map(str::to_owned).collect())
    }

    /// Raw read of one of the group's files, e.g. `"memory.current"`. Prefer
    /// the typed functions of the controller modules.
    pub fn read(&self, file_name: &str) -> Result<String> {
        file::read(&self.path.join(file_name))
    }

    /// Raw write of one of the group's files in a single write(2). Prefer the
    /// typed functions of the controller modules.
    pub fn write(&self, file_name: &str, value: &str) -> Result<()> {
        file::write(&self.path.join(file_name), value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::fake::{FakeTree, assert_mentions};

    const CPU_MEMORY: &[Controller] = &[Controller::Cpu, Controller::Memory];

    fn ensure_group(tree: &FakeTree, relative: &str, controllers: &[Controller]) -> Result<Group> {
        tree.hierarchy()
            .ensure_group(Path::new(relative), controllers)
    }

    fn enable_for(tree: &FakeTree, relative: &str, controllers: &[Controller]) -> Result<Group> {
        tree.hierarchy()
            .enable_for(Path::new(relative), controllers)
    }

    #[test]
    fn ensure_group_creates_dirs_and_enables_top_down_where_missing() {
        let tree = FakeTree::new();
        tree.write("cgroup.subtree_control", "cpu\n");
        tree.add_group("a");
        tree.add_group("a/b");
        tree.write("a/b/cgroup.subtree_control", "memory cpu\n");

        let group = ensure_group(&tree, "a/b/c", CPU_MEMORY).unwrap();

        assert_eq!(group.path(), tree.path().join("a/b/c"));
        assert!(group.exists());
        assert_eq!(tree.read("cgroup.subtree_control"), "+memory");
        assert_eq!(tree.read("a/cgroup.subtree_control"), "+cpu +memory");
        // Already complete: left untouched, not rewritten.
        assert_eq!(tree.read("a/b/cgroup.subtree_control"), "memory cpu\n");
        // The target is not a parent of anything qosd manages.
        assert!(!tree.path().join("a/b/c/cgroup.subtree_control").exists());
    }

    #[test]
    fn ensure_group_on_an_existing_group_only_enables() {
        let tree = FakeTree::new();
        tree.add_group("web");
        ensure_group(&tree, "web", &[Controller::Io]).unwrap();
        assert_eq!(tree.read("cgroup.subtree_control"), "+io");
    }

    #[test]
    fn ensure_group_reports_the_file_it_could_not_write() {
        let tree = FakeTree::new();
        // A new intermediate dir in a fake tree has no kernel-made files.
        let error = ensure_group(&tree, "x/y", CPU_MEMORY).unwrap_err();
        assert_mentions(&error, &["x/cgroup.subtree_control"]);
    }

    #[test]
    fn enable_for_enables_ancestors_of_an_existing_group() {
        let tree = FakeTree::new();
        tree.add_group("system.slice/web.service");
        let group = enable_for(&tree, "system.slice/web.service", &[Controller::Cpu]).unwrap();
        assert!(group.exists());
        assert_eq!(tree.read("cgroup.subtree_control"), "+cpu");
        assert_eq!(tree.read("system.slice/cgroup.subtree_control"), "+cpu");
    }

    #[test]
    fn enable_for_a_missing_group_is_vanished_and_creates_nothing() {
        let tree = FakeTree::new();
        let error = enable_for(&tree, "gone.slice", CPU_MEMORY).unwrap_err();
        assert!(error.is_vanished(), "{error}");
        assert!(!tree.path().join("gone.slice").exists());
        assert_eq!(tree.read("cgroup.subtree_control"), "");
    }

    #[test]
    fn paths_escaping_the_root_are_rejected() {
        let tree = FakeTree::new();
        for bad in ["../etc", "a/../../etc", "/etc", "a/.."] {
            let error = ensure_group(&tree, bad, CPU_MEMORY).unwrap_err();
            assert!(
                matches!(error, CgroupError::InvalidPath { .. }),
                "{bad}: {error}"
            );
            assert!(enable_for(&tree, bad, CPU_MEMORY).is_err());
            assert!(tree.hierarchy().checked_group(Path::new(bad)).is_err());
        }
        assert!(!tree.path().join("a").exists());
    }

    #[test]
    fn dot_components_are_dropped() {
        let hierarchy = Hierarchy::at("/cg");
        let group = hierarchy.checked_group(Path::new("./a/./b")).unwrap();
        assert_eq!(group.path(), Path::new("/cg/a/b"));
    }

    #[test]
    fn open_on_a_plain_directory_says_it_is_not_cgroup2_and_how_to_fix() {
        let dir = tempfile::tempdir().unwrap();
        let error = Hierarchy::open(dir.path(), CPU_MEMORY).unwrap_err();
        assert!(matches!(error, CgroupError::NotCgroup2 { .. }), "{error}");
        let text = error.to_string();
        assert!(text.contains("is not a cgroup v2 mount (found "), "{text}");
        assert!(
            text.contains("set agent.cgroup_root to a cgroup2 mount"),
            "{text}"
        );
    }

    #[test]
    fn not_cgroup2_on_tmpfs_points_at_the_hybrid_hierarchy() {
        let error = CgroupError::NotCgroup2 {
            path: "/sys/fs/cgroup".into(),
            found: FS_TMPFS.into(),
        };
        assert_eq!(
            error.to_string(),
            "/sys/fs/cgroup is not a cgroup v2 mount (found tmpfs): this host uses the \
             legacy or hybrid hierarchy; boot with systemd.unified_cgroup_hierarchy=1, \
             or set agent.cgroup_root to a cgroup2 mount"
        );
    }

    #[test]
    fn open_on_a_missing_root_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let error = Hierarchy::open(&missing, CPU_MEMORY).unwrap_err();
        assert!(matches!(error, CgroupError::RootMissing { .. }), "{error}");
        assert!(error.to_string().contains("does not exist"));
    }

    #[test]
    fn missing_controller_lists_what_is_available() {
        let tree = FakeTree::new();
        tree.write("cgroup.controllers", "hugetlb\n");
        let error = tree.hierarchy().check_controllers(CPU_MEMORY).unwrap_err();
        assert_mentions(
            &error,
            &[
                "(cgroup.controllers: hugetlb): it is probably bound to cgroup v1",
                "cgroup_no_v1=all",
            ],
        );
        match error {
            CgroupError::MissingController {
                controller,
                available,
                ..
            } => {
                assert_eq!(controller, "cpu");
                assert_eq!(available, ["hugetlb"]);
            }
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn available_controllers_pass() {
        let tree = FakeTree::new();
        tree.hierarchy().check_controllers(CPU_MEMORY).unwrap();
    }

    /// Read-only check against this build host's hybrid hierarchy, whose
    /// cgroup2 mount has only hugetlb. Never writes there.
    #[test]
    fn open_on_this_hosts_unified_mount_reports_the_missing_cpu_controller() {
        let unified = Path::new("/sys/fs/cgroup/unified");
        if !unified.exists() {
            return;
        }
        let available = fs::read_to_string(unified.join(CGROUP_CONTROLLERS)).unwrap();
        if available.split_whitespace().any(|c| c == "cpu") {
            return; // not the hybrid host this test is about
        }
        let error = Hierarchy::open(unified, &[Controller::Cpu]).unwrap_err();
        let text = error.to_string();
        assert!(
            matches!(error, CgroupError::MissingController { ref available, .. }
                if available.iter().any(|c| c == "hugetlb")),
            "{text}"
        );
        assert!(text.contains("hugetlb"), "{text}");
    }

    #[test]
    fn procs_parses_pids_and_rejects_garbage() {
        let tree = FakeTree::new();
        tree.add_group("web");
        tree.write("web/cgroup.procs", "12\n345\n");
        let group = tree.hierarchy().group(Path::new("web"));
        assert_eq!(group.procs().unwrap(), [12, 345]);

        tree.write("web/cgroup.procs", "12\nnope\n");
        let error = group.procs().unwrap_err();
        assert!(matches!(error, CgroupError::Parse { .. }), "{error}");
    }

    #[test]
    fn exists_and_procs_of_a_missing_group() {
        let tree = FakeTree::new();
        let group = tree.hierarchy().group(Path::new("gone"));
        assert!(!group.exists());
        assert!(group.procs().unwrap_err().is_vanished());
    }
}
