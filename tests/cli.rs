//! The command line as an operator meets it: `qosd check` verdicts and exit
//! codes, and `qosd run` refusing a host it cannot control, by name.

use std::path::Path;
use std::process::{Command, Output};

fn qosd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_qosd"))
        .args(args)
        .output()
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn write_config(dir: &Path, text: &str) -> String {
    let path = dir.join("qosd.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn shipped_example_config_checks_clean() {
    let output = qosd(&["check", "--config", "config/qosd.toml"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(
        summary.contains("web") && summary.contains("batch"),
        "{summary}"
    );
}

#[test]
fn a_typo_in_a_key_fails_with_file_line_column_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        "[tenants.web]\ncgroup = \"web\"\ncpu = { baselin = 1.5, burst = 2.0 }\n",
    );
    let output = qosd(&["check", "--config", &path]);
    assert_eq!(output.status.code(), Some(1));
    let said = stderr(&output);
    assert!(said.contains(&format!("{path}:3:")), "no file:line: {said}");
    assert!(said.contains("baselin"), "key not named: {said}");
}

#[test]
fn a_baseline_above_its_burst_fails_with_location_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        "[tenants.web]\ncgroup = \"web\"\n\ncpu = { baseline = 3, burst = 2.0 }\n",
    );
    let output = qosd(&["check", "--config", &path]);
    assert_eq!(output.status.code(), Some(1));
    let said = stderr(&output);
    assert!(said.contains(&format!("{path}:4:")), "no file:line: {said}");
    assert!(said.contains("tenants.web.cpu"), "key not named: {said}");
}

#[test]
fn a_missing_config_file_is_named() {
    let output = qosd(&["check", "--config", "/nonexistent/qosd.toml"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("/nonexistent/qosd.toml"));
}

#[test]
fn run_refuses_a_root_that_is_not_cgroup2_and_says_how_to_fix_it() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("[agent]\ncgroup_root = \"{}\"\n", dir.path().display());
    let path = write_config(dir.path(), &text);
    let output = qosd(&["run", "--once", "--config", &path]);
    assert_eq!(output.status.code(), Some(1));
    let said = stderr(&output);
    assert!(said.contains("not a cgroup v2"), "{said}");
}

/// This build host mounts cgroup2 beside v1 with no controllers (hybrid): the
/// agent must name the missing controller rather than run without effect.
#[test]
fn run_names_a_missing_cpu_controller() {
    let hybrid = Path::new("/sys/fs/cgroup/unified");
    if !hybrid.join("cgroup.controllers").exists() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        "[agent]\ncgroup_root = \"/sys/fs/cgroup/unified\"\n",
    );
    let output = qosd(&["run", "--once", "--dry-run", "--config", &path]);
    assert_eq!(output.status.code(), Some(1));
    let said = stderr(&output);
    assert!(said.contains("cpu controller"), "{said}");
}

#[test]
fn an_unknown_disk_fails_check_with_its_name_and_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        "[[host.disks]]\ndevice = \"/dev/qosd-no-such-disk\"\nread_bps = \"50MiB/s\"\n",
    );
    let output = qosd(&["check", "--config", &path]);
    assert_eq!(output.status.code(), Some(1));
    let said = stderr(&output);
    assert!(said.contains(&format!("{path}:2:")), "no file:line: {said}");
    assert!(
        said.contains("/dev/qosd-no-such-disk"),
        "device not named: {said}"
    );
}

#[test]
fn a_contract_on_a_missing_interface_fails_check_with_its_name_and_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        "[[host.links]]\ninterface = \"qosdnosuch0\"\negress = \"40Mbit/s\"\n\n\
         [tenants.api]\nnet = [{ interface = \"qosdnosuch0\", egress = { baseline = \"25Mbit/s\", burst = \"40Mbit/s\" } }]\n",
    );
    let output = qosd(&["check", "--config", &path]);
    assert_eq!(output.status.code(), Some(1));
    let said = stderr(&output);
    assert!(said.contains(&format!("{path}:2:")), "no file:line: {said}");
    assert!(
        said.contains("`host.links[0].interface`") && said.contains("qosdnosuch0"),
        "interface not named: {said}"
    );
}

#[test]
fn status_of_an_unknown_tenant_names_the_tenants_there_are() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        "[tenants.web]\ncpu = { baseline = 1, burst = 2 }\n",
    );
    let output = qosd(&["status", "--config", &path, "--tenant", "db"]);
    assert_eq!(output.status.code(), Some(1));
    let said = stderr(&output);
    assert!(
        said.contains("no tenant named db (the tenants are: web)"),
        "{said}"
    );
}

#[test]
fn calibrate_refuses_to_overwrite_a_device_without_consent() {
    let output = qosd(&["calibrate", "--device", "/dev/null"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("--overwrite-device"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn calibrate_refuses_what_is_not_a_block_device() {
    let output = qosd(&["calibrate", "--device", "/dev/null", "--read-only"]);
    assert_eq!(output.status.code(), Some(1));
    let said = stderr(&output);
    assert!(
        said.contains("/dev/null") && said.contains("not a block device"),
        "{said}"
    );
}

/// A dashed slice written as if it sat at the root is the mistake systemd's
/// nesting invites: `check` passes (the unit may start later) but says where
/// the group really is.
#[test]
fn check_warns_of_a_missing_adopted_group_with_the_nested_slice_path() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("cgroup");
    std::fs::create_dir_all(root.join("web.slice")).unwrap();
    std::fs::write(root.join("cgroup.controllers"), "cpu io memory\n").unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "[agent]\ncgroup_root = \"{}\"\n\n[tenants.a]\ncgroup = \"tenant-a.slice\"\n\
             cpu = {{ baseline = 0.1, burst = 0.5 }}\n\n[tenants.web]\ncgroup = \"web.slice\"\n\
             cpu = {{ baseline = 0.1, burst = 0.5 }}\n",
            root.display()
        ),
    );
    let output = qosd(&["check", "--config", &config]);
    let said = stderr(&output);
    assert!(output.status.success(), "{said}");
    assert!(
        said.contains("tenant a: cgroup ")
            && said.contains("tenant-a.slice does not exist on this host (yet)")
            && said.contains("systemd puts tenant-a.slice at tenant.slice/tenant-a.slice"),
        "{said}"
    );
    assert!(!said.contains("tenant web:"), "web.slice exists: {said}");
}
