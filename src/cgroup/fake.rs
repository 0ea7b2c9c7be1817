//! A fake cgroup2 tree in a temporary directory, for unit tests anywhere in
//! the crate. The kernel fills a new cgroup directory with its files; a plain
//! directory has none, so `add_group` writes them with the kernel's defaults.

use std::fs;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use super::Hierarchy;

/// Files of the root of a cgroup2 mount with cpu, io and memory available.
const ROOT_FILES: &[(&str, &str)] = &[
    ("cgroup.controllers", "cpu io memory\n"),
    ("cgroup.subtree_control", ""),
    ("cgroup.procs", ""),
];

/// Files of a new group whose parent enabled cpu, io and memory, as a
/// kernel shows them right after mkdir.
const GROUP_FILES: &[(&str, &str)] = &[
    ("cgroup.controllers", ""),
    ("cgroup.subtree_control", ""),
    ("cgroup.procs", ""),
    (
        "cpu.stat",
        "usage_usec 0\nuser_usec 0\nsystem_usec 0\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\n",
    ),
    ("cpu.weight", "100\n"),
    ("cpu.max", "max 100000\n"),
    ("cpu.max.burst", "0\n"),
    ("cpu.pressure", PSI_ZERO),
    ("io.max", ""),
    ("io.pressure", PSI_ZERO),
    ("memory.min", "0\n"),
    ("memory.high", "max\n"),
    ("memory.max", "max\n"),
    ("memory.current", "0\n"),
    ("memory.pressure", PSI_ZERO),
];

const PSI_ZERO: &str = "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n\
                        full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n";

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
    for (name, content) in files {
        fs::write(dir.join(name), content).expect("write fake file");
    }
}
