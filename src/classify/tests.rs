//! The fixtures every part of classify tests with, and the tests of
//! classifying one process.

use std::fs;
use std::path::PathBuf;
use std::sync::Arc;

use tempfile::TempDir;

use super::*;
use crate::cgroup::fake::FakeTree;
use crate::config::TextPattern;
use crate::procfs::process::tests::{FakeProcess, add_process};

pub(super) fn tenant(name: &str, cgroup: &str, matchers: Vec<ProcessMatcher>) -> Tenant {
    Tenant {
        name: name.into(),
        cgroup: PathBuf::from(cgroup),
        adopted: matchers.is_empty(),
        cpu: None,
        disk: Vec::new(),
        net: Vec::new(),
        memory: None,
        matchers,
    }
}

/// A matcher with only the keys `set` gives it.
pub(super) fn matcher(set: impl FnOnce(&mut ProcessMatcher)) -> ProcessMatcher {
    let mut matcher = ProcessMatcher::default();
    set(&mut matcher);
    matcher
}

pub(super) fn glob(pattern: &str) -> TextPattern {
    TextPattern::exact_or_glob(pattern).unwrap()
}

pub(super) fn uid(uid: u32) -> ProcessMatcher {
    matcher(|m| m.uid = Some(uid))
}

pub(super) fn comm(pattern: &str) -> ProcessMatcher {
    matcher(|m| m.comm = Some(glob(pattern)))
}

pub(super) fn unit(unit: &str) -> ProcessMatcher {
    matcher(|m| m.unit = Some(unit.into()))
}

/// alice's web server (uid 1001), in its systemd unit.
pub(super) fn process() -> ProcessInfo {
    ProcessInfo {
        pid: 4242,
        comm: "python3".into(),
        uid: Some(1001),
        gid: Some(100),
        exe: Some("/usr/bin/python3.11".into()),
        cmdline: Some("python3 -m http.server 8080".into()),
        cgroup: Some("/system.slice/web.service".into()),
        ..ProcessInfo::default()
    }
}

/// [`process`] in `cgroup` instead.
pub(super) fn in_cgroup(cgroup: &str) -> ProcessInfo {
    ProcessInfo {
        cgroup: Some(cgroup.into()),
        ..process()
    }
}

/// alice (uid 1001) is tenant 1, "batch" by comm tenant 2; tenant 0 is
/// adopted (`legacy.slice`).
pub(super) fn tenants() -> Vec<Tenant> {
    vec![
        tenant("legacy", "legacy.slice", Vec::new()),
        tenant("alice", "qosd.slice/alice", vec![uid(1001)]),
        tenant("batch", "qosd.slice/batch", vec![comm("batch-*")]),
    ]
}

/// A classifier of `tenants`, whose groups are made in `tree`.
pub(super) fn classifier(tree: &FakeTree, tenants: &[Tenant]) -> Classifier {
    for tenant in tenants {
        tree.add_group(&tenant.cgroup.to_string_lossy());
    }
    Classifier::new(tree.hierarchy(), tenants, Arc::default())
}

/// A /proc of `processes` (the directory goes when the first is dropped).
pub(super) fn fake_proc(processes: &[FakeProcess]) -> (TempDir, ProcFs) {
    let dir = tempfile::tempdir().unwrap();
    for process in processes {
        add_process(dir.path(), process);
    }
    let proc = ProcFs::at(dir.path());
    (dir, proc)
}

#[test]
fn classify_pid_reads_decides_moves_and_counts() {
    let tree = FakeTree::new();
    let (_dir, proc) = fake_proc(&[FakeProcess::default()]);
    let c = classifier(&tree, &tenants());
    assert_eq!(
        c.classify_pid(&proc, 100).unwrap(),
        Outcome::Moved { tenant: 1 }
    );
    assert_eq!(tree.read("qosd.slice/alice/cgroup.procs"), "100");
    assert_eq!(c.counters().moves(), 1);
    assert_eq!(c.classify_pid(&proc, 101).unwrap(), Outcome::Vanished);
    assert_eq!(c.counters().vanished(), 1);
}

#[test]
fn parts_are_read_only_when_a_key_needs_them() {
    let tree = FakeTree::new();
    let (dir, proc) = fake_proc(&[FakeProcess::default()]);
    // A status qosd cannot parse: reading it would be an error.
    fs::write(dir.path().join("100/status"), "garbage").unwrap();
    // Neither status nor the cgroup file is read for a comm that does not match.
    fs::remove_file(dir.path().join("100/cgroup")).unwrap();
    let comm_then_unit = ProcessMatcher {
        unit: Some("web.service".into()),
        ..comm("batch-*")
    };
    let c = classifier(&tree, &[tenant("batch", "batch", vec![comm_then_unit])]);
    assert!(c.is_active());
    assert_eq!(c.classify_pid(&proc, 100).unwrap(), Outcome::NoMatch);
    let c = classifier(&tree, &[tenant("alice", "alice", vec![uid(1001)])]);
    assert!(
        c.classify_pid(&proc, 100).is_err(),
        "status is read for uid"
    );
    let adopted_only = classifier(&tree, &tenants()[..1]);
    assert!(!adopted_only.is_active());
}

#[test]
fn exclusions_are_logged_once_per_process_and_reason() {
    let tree = FakeTree::new();
    let c = classifier(&tree, &[tenant("root", "qosd.slice/root", vec![uid(0)])]);
    let init = ProcessInfo {
        pid: 1,
        uid: Some(0),
        ..process()
    };
    c.log_exclusion(&init, 0, Exclusion::Init);
    c.log_exclusion(&init, 0, Exclusion::Init);
    c.log_exclusion(&init, 0, Exclusion::NoCgroupV2);
    assert_eq!(c.logged.lock().unwrap().len(), 2);
}
