//! The shipped unit must pass `systemd-analyze verify`. It checks that the
//! executables exist, so it runs against a throwaway root holding the built
//! binary at /usr/bin/qosd and the host's own systemd units.

use std::fs;
use std::path::Path;
use std::process::Command;

fn copy_tree(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .expect("cp runs");
    assert!(
        status.success(),
        "cp -a {} {}",
        from.display(),
        to.display()
    );
}

#[test]
fn shipped_unit_passes_systemd_analyze_verify() {
    let root = tempfile::tempdir().unwrap();
    let at = |relative: &str| root.path().join(relative);
    for dir in [
        "usr/bin",
        "bin",
        "usr/lib/systemd",
        "etc/systemd/system",
        "etc/qosd",
    ] {
        fs::create_dir_all(at(dir)).unwrap();
    }
    copy_tree(
        Path::new("/usr/lib/systemd/system"),
        &at("usr/lib/systemd/"),
    );
    fs::copy(env!("CARGO_BIN_EXE_qosd"), at("usr/bin/qosd")).unwrap();
    fs::copy("/bin/kill", at("bin/kill")).unwrap();
    fs::copy("config/qosd.toml", at("etc/qosd/qosd.toml")).unwrap();
    fs::copy(
        "systemd/qosd.service",
        at("etc/systemd/system/qosd.service"),
    )
    .unwrap();

    let output = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(format!("--root={}", root.path().display()))
        .arg("qosd.service")
        .output()
        .expect("systemd-analyze is installed (Debian package systemd; scripts/install-deps.sh)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "systemd-analyze verify failed:\n{stderr}"
    );
    assert!(
        stderr.trim().is_empty(),
        "systemd-analyze verify warned:\n{stderr}"
    );
}

#[test]
fn unit_runs_the_agent_as_a_watched_notify_service_with_its_own_subtree() {
    let unit = fs::read_to_string("systemd/qosd.service").unwrap();
    for line in [
        "Type=notify",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Delegate=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=/sys/fs/cgroup",
        "ExecStart=/usr/bin/qosd run --config /etc/qosd/qosd.toml",
    ] {
        assert!(unit.lines().any(|l| l == line), "missing `{line}`");
    }
    assert!(unit.lines().any(|l| l.starts_with("WatchdogSec=")));
}
