use std::path::{Path, PathBuf};

use super::Result;

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
    pub fn open(root: impl Into<PathBuf>, controllers: &[Controller]) -> Result<Self> {
        let _ = (root.into(), controllers);
        todo!()
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A handle on `relative` (which need not exist).
    pub fn group(&self, relative: &Path) -> Group {
        Group {
            path: self.root.join(relative),
        }
    }

    /// Creates `relative` and its ancestors as needed, and enables `controllers`
    /// top-down in every ancestor's `cgroup.subtree_control` (root included).
    pub fn ensure_group(&self, relative: &Path, controllers: &[Controller]) -> Result<Group> {
        let _ = (relative, controllers);
        todo!()
    }
}

/// One cgroup directory (absolute path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    path: PathBuf,
}

impl Group {
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn exists(&self) -> bool {
        todo!()
    }

    /// PIDs in `cgroup.procs`.
    pub fn procs(&self) -> Result<Vec<u32>> {
        todo!()
    }
}
