//! A fake cgroup2 tree in a temporary directory, for unit tests anywhere in
//! the crate. The kernel fills a new cgroup directory with its files; a plain
//! directory has none, so `add_group` writes them with the kernel's defaults.

use std::fs;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use super::Hierarchy;
use crate::testing::{self, GROUP_FILES, ROOT_FILES};

pub struct FakeTree {
    dir: TempDir,
}

impl FakeTree {
    /// Panics on I/O errors: test support only.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("create temp dir");
        write_files(dir.path(), ROOT_FILES);
        FakeTree { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn hierarchy(&self) -> Hierarchy {
        Hierarchy::at(self.dir.path())
    }

    /// Creates `relative` and any missing ancestors, each with the kernel's
    /// default files. Existing directories keep their files.
    pub fn add_group(&self, relative: &str) -> PathBuf {
        let mut dir = self.dir.path().to_owned();
        for name in Path::new(relative).iter() {
            dir.push(name);
            if !dir.is_dir() {
                fs::create_dir(&dir).expect("create fake group");
                write_files(&dir, GROUP_FILES);
            }
        }
        dir
    }

    /// Overwrites a file, relative to the root.
    pub fn write(&self, relative: &str, content: &str) {
        fs::write(self.dir.path().join(relative), content).expect("write fake file");
    }

    /// Reads a file, relative to the root.
    pub fn read(&self, relative: &str) -> String {
        fs::read_to_string(self.dir.path().join(relative)).expect("read fake file")
    }
}

impl Default for FakeTree {
    fn default() -> Self {
        FakeTree::new()
    }
}

fn write_files(dir: &Path, files: &[(&str, &str)]) {
    testing::write_files(dir, files).expect("write fake files");
}
