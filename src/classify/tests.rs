use std::fs;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::cgroup_paths::strip_prefix;
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

pub(super) fn uid(uid: u32) -> ProcessMatcher {
    ProcessMatcher {
        uid: Some(uid),
        ..ProcessMatcher::default()
    }
}

fn comm(pattern: &str) -> ProcessMatcher {
    ProcessMatcher {
        comm: Some(TextPattern::exact_or_glob(pattern).unwrap()),
        ..ProcessMatcher::default()
    }
}

fn unit(unit: &str) -> ProcessMatcher {
    ProcessMatcher {
        unit: Some(unit.into()),
        ..ProcessMatcher::default()
    }
}

fn process() -> ProcessInfo {
    ProcessInfo {
        pid: 4242,
        comm: "python3".into(),
        kernel_thread: false,
        uid: Some(1001),
        gid: Some(100),
        exe: Some("/usr/bin/python3.11".into()),
        cmdline: Some("python3 -m http.server 8080".into()),
        cgroup: Some("/system.slice/web.service".into()),
    }
}

/// alice (uid 1001) is tenant 1, "batch" by comm tenant 2; tenant 0 is
/// adopted (`legacy.slice`).
fn tenants() -> Vec<Tenant> {
    vec![
        tenant("legacy", "legacy.slice", Vec::new()),
        tenant("alice", "qosd.slice/alice", vec![uid(1001)]),
        tenant("batch", "qosd.slice/batch", vec![comm("batch-*")]),
    ]
}

fn classifier(tree: &FakeTree, tenants: &[Tenant]) -> Classifier {
    for tenant in tenants {
        tree.add_group(&tenant.cgroup.to_string_lossy());
    }
    Classifier::new(tree.hierarchy(), tenants, Arc::default())
}

#[test]
fn each_matcher_key() {
    let p = process();
    let check = |matcher: ProcessMatcher| matches(&matcher, &p);
    assert!(check(ProcessMatcher::default()), "no keys: everything");
    assert!(check(uid(1001)) && !check(uid(1002)));
    let gid = |gid| ProcessMatcher {
        gid: Some(gid),
        ..ProcessMatcher::default()
    };
    assert!(check(gid(100)) && !check(gid(0)));
    assert!(check(comm("python3")) && check(comm("py*")) && !check(comm("python")));
    let exe = |pattern: &str| ProcessMatcher {
        exe: Some(TextPattern::exact_or_glob(pattern).unwrap()),
        ..ProcessMatcher::default()
    };
    assert!(check(exe("/usr/bin/python3*")) && !check(exe("/opt/*")));
    let cmdline = |pattern: &str| ProcessMatcher {
        cmdline: Some(TextPattern::regex(pattern).unwrap()),
        ..ProcessMatcher::default()
    };
    assert!(check(cmdline(r"http\.server \d+$")) && !check(cmdline("^java")));
    assert!(check(unit("web.service")) && check(unit("system.slice")));
    assert!(!check(unit("web")), "a unit is a whole path component");
}

#[test]
fn every_key_must_hold_and_unknown_parts_do_not_match() {
    let p = process();
    let both = ProcessMatcher {
        uid: Some(1001),
        comm: Some(TextPattern::exact_or_glob("java").unwrap()),
        ..ProcessMatcher::default()
    };
    assert!(!matches(&both, &p));
    let kernel = ProcessInfo {
        uid: None,
        exe: None,
        cgroup: None,
        ..process()
    };
    assert!(!matches(&uid(1001), &kernel));
    let exe = ProcessMatcher {
        exe: Some(TextPattern::exact_or_glob("*").unwrap()),
        ..ProcessMatcher::default()
    };
    assert!(!matches(&exe, &kernel));
    assert!(!matches(&unit("web.service"), &kernel));
}

#[test]
fn first_match_wins_in_file_order() {
    let tree = FakeTree::new();
    let batch_as_alice = ProcessInfo {
        comm: "batch-job".into(),
        ..process()
    };
    let c = classifier(&tree, &tenants());
    assert_eq!(
        c.target(&batch_as_alice),
        Decision::Move {
            tenant: 1,
            name: "alice".into(),
            group: "qosd.slice/alice".into()
        }
    );
    let mut reversed = tenants();
    reversed.swap(1, 2);
    let c = classifier(&tree, &reversed);
    assert_eq!(
        c.target(&batch_as_alice),
        Decision::Move {
            tenant: 1,
            name: "batch".into(),
            group: "qosd.slice/batch".into()
        }
    );
    let nobody = ProcessInfo {
        uid: Some(0),
        ..process()
    };
    assert_eq!(c.target(&nobody), Decision::NoMatch);
}

#[test]
fn in_its_group_or_below_is_already_there_and_keeps_its_unit() {
    let tree = FakeTree::new();
    let tenants = vec![tenant("web", "qosd.slice/web", vec![unit("web.service")])];
    let c = classifier(&tree, &tenants);
    assert!(matches!(
        c.target(&process()),
        Decision::Move { tenant: 0, .. }
    ));
    for cgroup in ["/qosd.slice/web", "/qosd.slice/web/sub"] {
        let moved = ProcessInfo {
            cgroup: Some(cgroup.into()),
            ..process()
        };
        assert_eq!(c.target(&moved), Decision::AlreadyThere { tenant: 0 });
    }
    let sibling = ProcessInfo {
        cgroup: Some("/qosd.slice/webby".into()),
        ..process()
    };
    assert_eq!(c.target(&sibling), Decision::NoMatch);
}

#[test]
fn a_process_in_another_tenants_group_moves() {
    let tree = FakeTree::new();
    let c = classifier(&tree, &tenants());
    let in_batch = ProcessInfo {
        cgroup: Some("/qosd.slice/batch".into()),
        ..process()
    };
    assert!(matches!(
        c.target(&in_batch),
        Decision::Move { tenant: 1, .. }
    ));
}

fn excluded(c: &Classifier, p: &ProcessInfo) -> Exclusion {
    match c.target(p) {
        Decision::Excluded { reason, .. } => reason,
        other => panic!("expected an exclusion, got {other:?}"),
    }
}

#[test]
fn kernel_threads_init_and_qosd_are_never_moved() {
    let tree = FakeTree::new();
    let c = classifier(&tree, &[tenant("root", "qosd.slice/root", vec![uid(0)])]);
    let root = |pid, kernel_thread| ProcessInfo {
        pid,
        uid: Some(0),
        kernel_thread,
        ..process()
    };
    assert_eq!(excluded(&c, &root(2, true)), Exclusion::KernelThread);
    assert_eq!(excluded(&c, &root(1, false)), Exclusion::Init);
    assert_eq!(
        excluded(&c, &root(std::process::id(), false)),
        Exclusion::Qosd
    );
    let no_v2 = ProcessInfo {
        cgroup: None,
        ..root(77, false)
    };
    assert_eq!(excluded(&c, &no_v2), Exclusion::NoCgroupV2);
    assert!(matches!(c.target(&root(77, false)), Decision::Move { .. }));
}

#[test]
fn processes_of_an_adopted_group_stay() {
    let tree = FakeTree::new();
    let c = classifier(&tree, &tenants());
    let legacy = ProcessInfo {
        cgroup: Some("/legacy.slice/app.service".into()),
        ..process()
    };
    assert_eq!(
        excluded(&c, &legacy),
        Exclusion::Adopted {
            tenant: "legacy".into()
        }
    );
}

#[test]
fn a_delegated_subtree_is_left_alone_but_not_our_own_groups() {
    let tree = FakeTree::new();
    let mut c = classifier(&tree, &tenants());
    c.is_delegated = |dir, _| dir.ends_with("docker-1.scope") || dir.ends_with("qosd.slice");
    let container = ProcessInfo {
        cgroup: Some("/system.slice/docker-1.scope/init".into()),
        ..process()
    };
    assert_eq!(
        excluded(&c, &container),
        Exclusion::Delegated {
            cgroup: "system.slice/docker-1.scope".into()
        }
    );
    // qosd.slice is marked (qosd's own delegation), yet its tenant groups are ours.
    let in_batch = ProcessInfo {
        cgroup: Some("/qosd.slice/batch".into()),
        ..process()
    };
    assert!(matches!(
        c.target(&in_batch),
        Decision::Move { tenant: 1, .. }
    ));
}

#[test]
fn the_delegate_xattr_of_a_real_directory_is_read() {
    let tree = FakeTree::new();
    let scope = tree.add_group("user.slice/user@1001.service");
    let c = classifier(&tree, &tenants());
    let p = ProcessInfo {
        cgroup: Some("/user.slice/user@1001.service/app.slice/x.service".into()),
        ..process()
    };
    assert!(matches!(c.target(&p), Decision::Move { .. }));
    if delegate::set_xattr(&scope, c"user.delegate", b"1").is_err()
        && delegate::set_xattr(&scope, c"trusted.delegate", b"1").is_err()
    {
        eprintln!("skipped: no delegate xattr on this file system");
        return;
    }
    assert_eq!(
        excluded(&c, &p),
        Exclusion::Delegated {
            cgroup: "user.slice/user@1001.service".into()
        }
    );
}

/// systemd chowns `user@UID.service` to the user on every version; the
/// kernel's delegation model is that ownership, xattr or not.
#[test]
fn a_group_chowned_to_a_user_is_left_alone() {
    let tree = FakeTree::new();
    let manager = tree.add_group("user.slice/user@1001.service");
    let c = classifier(&tree, &tenants());
    let p = ProcessInfo {
        cgroup: Some("/user.slice/user@1001.service/app.slice/x.service".into()),
        ..process()
    };
    let owner = nix::unistd::Uid::from_raw(delegate::owner(tree.path()) + 1);
    if let Err(error) = nix::unistd::chown(&manager, Some(owner), None) {
        eprintln!("skipped: cannot chown a directory here ({error})");
        return;
    }
    assert_eq!(
        excluded(&c, &p),
        Exclusion::Delegated {
            cgroup: "user.slice/user@1001.service".into()
        }
    );
}

#[test]
fn a_root_inside_the_mount_sees_paths_below_its_prefix() {
    let tree = FakeTree::new();
    let mut c = classifier(&tree, &tenants());
    c.prefix = "/nested".into();
    let inside = ProcessInfo {
        cgroup: Some("/nested/qosd.slice/alice".into()),
        ..process()
    };
    assert_eq!(c.target(&inside), Decision::AlreadyThere { tenant: 1 });
    assert_eq!(
        excluded(&c, &process()),
        Exclusion::OutsideRoot {
            cgroup: "/system.slice/web.service".into()
        }
    );
    assert_eq!(strip_prefix("/nestedx/a", "/nested"), None);
    assert_eq!(strip_prefix("/", ""), Some(""));
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

#[test]
fn classify_pid_reads_decides_moves_and_counts() {
    let tree = FakeTree::new();
    let proc_dir = tempfile::tempdir().unwrap();
    add_process(proc_dir.path(), &FakeProcess::default());
    let proc = ProcFs::at(proc_dir.path());
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
    let proc_dir = tempfile::tempdir().unwrap();
    add_process(proc_dir.path(), &FakeProcess::default());
    // A status qosd cannot parse: reading it would be an error.
    fs::write(proc_dir.path().join("100/status"), "garbage").unwrap();
    let proc = ProcFs::at(proc_dir.path());
    // Neither status nor the cgroup file is read for a comm that does not match.
    fs::remove_file(proc_dir.path().join("100/cgroup")).unwrap();
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
fn rescan_counts_every_outcome() {
    let tree = FakeTree::new();
    let proc_dir = tempfile::tempdir().unwrap();
    let root = proc_dir.path();
    let alice = FakeProcess::default();
    add_process(root, &alice);
    add_process(
        root,
        &FakeProcess {
            pid: 101,
            cgroup: "/qosd.slice/alice",
            ..FakeProcess::default()
        },
    );
    add_process(
        root,
        &FakeProcess {
            pid: 102,
            uid: 0,
            comm: "sshd",
            ..FakeProcess::default()
        },
    );
    add_process(
        root,
        &FakeProcess {
            pid: 1,
            uid: 1001,
            comm: "systemd",
            cgroup: "/init.scope",
            ..FakeProcess::default()
        },
    );
    add_process(
        root,
        &FakeProcess {
            pid: 103,
            cgroup: "/legacy.slice",
            ..FakeProcess::default()
        },
    );
    // Listed, then gone before its files were read.
    fs::create_dir(root.join("104")).unwrap();
    // A file qosd cannot parse: an error, counted, not fatal.
    add_process(
        root,
        &FakeProcess {
            pid: 105,
            ..FakeProcess::default()
        },
    );
    fs::write(root.join("105/status"), "Uid: nobody\n").unwrap();
    for name in ["self", "stat", "sys"] {
        fs::write(root.join(name), "").unwrap();
    }
    let c = classifier(&tree, &tenants());
    let report = c.rescan(&ProcFs::at(root)).unwrap();
    assert_eq!(
        (
            report.processes,
            report.moved,
            report.already,
            report.excluded,
            report.unmatched,
            report.vanished,
            report.errors
        ),
        (7, 1, 1, 2, 1, 1, 1),
        "{report:?}"
    );
    assert_eq!(c.counters().moves(), 1);
    assert_eq!(c.logged.lock().unwrap().len(), 2);
    // PID 1 exits (say): its logged exclusion is forgotten.
    fs::remove_dir_all(root.join("1")).unwrap();
    c.rescan(&ProcFs::at(root)).unwrap();
    assert_eq!(c.logged.lock().unwrap().len(), 1);
}

#[test]
fn a_missing_proc_root_is_an_error() {
    let tree = FakeTree::new();
    let c = classifier(&tree, &tenants());
    assert!(c.rescan(&ProcFs::at("/nonexistent/proc")).is_err());
}

/// The listener moves a process at its exec: a link to /bin/sleep with a
/// name of its own (its comm) is matched, and its PID lands in the fake
/// tenant group's cgroup.procs. Skipped where the connector is unavailable.
#[test]
fn the_listener_moves_a_new_process_at_its_exec() {
    let tree = FakeTree::new();
    let bin = tempfile::tempdir().unwrap();
    let name = format!("qt{}", std::process::id() % 100_000);
    let program = bin.path().join(&name);
    std::os::unix::fs::symlink("/bin/sleep", &program).unwrap();
    let tenants = [tenant("t", "qosd.slice/t", vec![comm(&name)])];
    let counters = Arc::new(Counters::default());
    tree.add_group("qosd.slice/t");
    let c = Classifier::new(tree.hierarchy(), &tenants, Arc::clone(&counters));
    let shared = Arc::new(std::sync::RwLock::new(c));
    let listener = match events::spawn_listener(Arc::clone(&shared), ProcFs::default()) {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("skipped: {error}");
            return;
        }
    };
    let start = Instant::now();
    let mut child = std::process::Command::new(&program)
        .arg("2")
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    while tree.read("qosd.slice/t/cgroup.procs") != pid && start.elapsed() < Duration::from_secs(2)
    {
        std::thread::sleep(Duration::from_millis(1));
    }
    let latency = start.elapsed();
    child.kill().unwrap();
    child.wait().unwrap();
    listener.stop();
    assert_eq!(tree.read("qosd.slice/t/cgroup.procs"), pid);
    assert!(counters.moves() >= 1 && counters.events() > 0);
    eprintln!("spawn to move: {latency:?}");
}
