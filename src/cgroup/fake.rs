//! A fake cgroup2 tree in a temporary directory, for unit tests anywhere in
//! the crate. The kernel fills a new cgroup directory with its files; a plain
//! directory has none, so `add_group` writes them with the kernel's defaults.
//! Also the assertions the cgroup tests make on errors.

use std::fmt::{Debug, Display};
use std::fs;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use super::{CgroupError, Group, Hierarchy, Result};
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

    /// A new tree with the group `relative`, whose `files` (relative to the
    /// group) hold the given content; the others the kernel's defaults.
    pub fn with_group(relative: &str, files: &[(&str, &str)]) -> (Self, Group) {
        let tree = FakeTree::new();
        let dir = tree.add_group(relative);
        for (name, content) in files {
            fs::write(dir.join(name), content).expect("write fake file");
        }
        let group = tree.hierarchy().group(Path::new(relative));
        (tree, group)
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

/// `error` is a parse error of the file ending in `file`, keeping `content`.
pub fn assert_parse_error(error: &CgroupError, file: &str, content: &str) {
    assert!(
        matches!(error, CgroupError::Parse { path, content: kept, .. }
            if path.ends_with(file) && kept == content),
        "{content:?}: {error}"
    );
}

/// Each of `contents`, in the file `file_name` of a group, makes `read` fail
/// with a parse error that names the file and keeps the content.
pub fn assert_each_fails_to_parse<T: Debug>(
    file_name: &str,
    contents: &[&str],
    read: impl Fn(&Group) -> Result<T>,
) {
    let (tree, group) = FakeTree::with_group("web", &[]);
    let file = format!("web/{file_name}");
    for content in contents {
        tree.write(&file, content);
        assert_parse_error(&read(&group).unwrap_err(), &file, content);
    }
}

/// `error` is qosd refusing to write `value`.
pub fn assert_refused(error: &CgroupError, value: &str) {
    assert!(
        matches!(error, CgroupError::InvalidValue { value: refused, .. } if refused == value),
        "{value:?}: {error}"
    );
}

/// The message of `error` names each of `parts`.
pub fn assert_mentions(error: &impl Display, parts: &[&str]) {
    let text = error.to_string();
    for part in parts {
        assert!(text.contains(part), "{part:?} not in {text}");
    }
}
