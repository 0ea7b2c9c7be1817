//! The Kubernetes manifests in deploy/kubernetes/ are checked offline:
//!
//! - every file but the ServiceMonitor passes `kubernetes-validate --strict`
//!   (the Kubernetes API's schemas, bundled with it) for the oldest and the
//!   newest Kubernetes of `KUBERNETES_VERSIONS`, without a warning: an
//!   unknown kind or apiVersion is only a warning there;
//! - the ServiceMonitor, a custom resource that those schemas lack, passes
//!   `check-jsonschema` against deploy/kubernetes/schemas/;
//! - both validators refuse manifests broken on purpose, so that a validator
//!   that lets everything through is noticed;
//! - the qosd.toml of every ConfigMap passes the built qosd's `check` on
//!   this host;
//! - every DaemonSet carries the hash of its ConfigMap's file (the rollout
//!   of a configuration change depends on it) and serves the port that its
//!   qosd.toml listens on.
//!
//! The manifests are read with plain string handling (the crate has no YAML
//! parser), which relies on their layout: documents separated by `---`,
//! two-space indentation, and qosd.toml as a `|` block.

use std::ffi::OsStr;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The oldest and the newest Kubernetes the manifests are validated for.
const KUBERNETES_VERSIONS: [&str; 2] = ["1.28.0", "1.37.0"];
const SERVICE_MONITOR_SCHEMA: &str = "schemas/servicemonitor-monitoring-v1.json";
const HASH_ANNOTATION: &str = "qosd.example.com/config-sha256";
const INSTALL: &str = "run scripts/install-deps.sh, which installs kubernetes-validate and \
    check-jsonschema (pinned, from PyPI) into /opt/qosd-manifest-validators and links them \
    into /usr/local/bin";

fn manifest_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes")
}

/// One YAML document of a manifest file.
#[derive(Debug)]
struct Document {
    file: PathBuf,
    kind: String,
    name: String,
    text: String,
}

/// Every document of every `*.yaml` in deploy/kubernetes/, in file order.
fn documents() -> Vec<Document> {
    let mut files: Vec<PathBuf> = fs::read_dir(manifest_dir())
        .expect("deploy/kubernetes/ exists")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension() == Some(OsStr::new("yaml")))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no *.yaml in deploy/kubernetes/");
    let mut documents = Vec::new();
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        let before = documents.len();
        for part in split_documents(&text) {
            let Some(kind) = part
                .lines()
                .find_map(|line| line.strip_prefix("kind: "))
                .map(|kind| kind.trim().to_owned())
            else {
                continue; // comments only
            };
            let name = metadata_name(&part)
                .unwrap_or_else(|| panic!("{}: a {kind} without metadata.name", file.display()));
            documents.push(Document {
                file: file.clone(),
                kind,
                name,
                text: part,
            });
        }
        assert!(
            documents.len() > before,
            "{}: no Kubernetes object (no top-level `kind:`)",
            file.display()
        );
    }
    documents
}

fn split_documents(text: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    for line in text.lines() {
        if line.trim_end() == "---" {
            parts.push(String::new());
        } else {
            let part = parts.last_mut().unwrap();
            part.push_str(line);
            part.push('\n');
        }
    }
    parts
}

/// `metadata.name`: the first `  name:` after a top-level `metadata:`.
fn metadata_name(document: &str) -> Option<String> {
    let mut lines = document.lines().skip_while(|line| *line != "metadata:");
    lines.next()?;
    lines
        .take_while(|line| line.starts_with(' ') || line.is_empty())
        .find_map(|line| line.strip_prefix("  name: "))
        .map(|name| unquote(name).to_owned())
}

fn unquote(value: &str) -> &str {
    let value = value.trim();
    value
        .strip_prefix('"')
        .and_then(|inner| inner.strip_suffix('"'))
        .unwrap_or(value)
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// The value of `key: |`, a literal block scalar, as YAML reads it (its
/// indentation removed, one final newline).
fn block_scalar(document: &str, key: &str) -> Option<String> {
    let lines: Vec<&str> = document.lines().collect();
    let start = lines
        .iter()
        .position(|line| line.trim() == format!("{key}: |"))?;
    let key_indent = indent(lines[start]);
    let body: Vec<&str> = lines[start + 1..]
        .iter()
        .copied()
        .take_while(|line| line.trim().is_empty() || indent(line) > key_indent)
        .collect();
    let block_indent = body
        .iter()
        .find(|line| !line.trim().is_empty())
        .map(|line| indent(line))?;
    let mut value = String::new();
    for line in body {
        if !line.trim().is_empty() {
            assert!(
                indent(line) >= block_indent,
                "`{key}`: a line indented less than the first: {line:?}"
            );
            value.push_str(&line[block_indent..]);
        }
        value.push('\n');
    }
    Some(format!("{}\n", value.trim_end_matches('\n')))
}

/// The value of the first `key: value` line, at any depth.
fn scalar<'a>(document: &'a str, key: &str) -> Option<&'a str> {
    let prefix = format!("{key}: ");
    document
        .lines()
        .find_map(|line| line.trim_start().strip_prefix(prefix.as_str()))
        .map(unquote)
}

/// The string value of the first `key = "value"` line of a TOML text.
fn toml_string<'a>(toml: &'a str, key: &str) -> Option<&'a str> {
    toml.lines().find_map(|line| {
        let (name, value) = line.split_once('=')?;
        (name.trim() == key).then(|| unquote(value.split(" #").next().unwrap()))
    })
}

/// Runs a validator; a missing one is a failure that says how to install it.
fn run(program: &str, args: &[&OsStr]) -> (Output, String) {
    let output = match Command::new(program).args(args).output() {
        Ok(output) => output,
        Err(error) if error.kind() == ErrorKind::NotFound => {
            panic!("{program} is not installed (not on PATH): {INSTALL}")
        }
        Err(error) => panic!("cannot run {program}: {error}"),
    };
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output, said)
}

fn kubernetes_validate(files: &[&Path]) -> (Output, String) {
    let mut args: Vec<&OsStr> = vec![OsStr::new("--strict")];
    for version in &KUBERNETES_VERSIONS {
        args.push(OsStr::new("--kubernetes-version"));
        args.push(OsStr::new(version));
    }
    args.extend(files.iter().map(|file| file.as_os_str()));
    run("kubernetes-validate", &args)
}

fn check_jsonschema(file: &Path) -> (Output, String) {
    let schema = manifest_dir().join(SERVICE_MONITOR_SCHEMA);
    run(
        "check-jsonschema",
        &[
            OsStr::new("--schemafile"),
            schema.as_os_str(),
            file.as_os_str(),
        ],
    )
}

fn is_service_monitor(document: &Document) -> bool {
    document.kind == "ServiceMonitor"
}

/// Files holding a ServiceMonitor hold nothing else: they go to
/// check-jsonschema, all others to kubernetes-validate.
fn service_monitor_files(documents: &[Document]) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = documents
        .iter()
        .filter(|document| is_service_monitor(document))
        .map(|document| document.file.clone())
        .collect();
    files.dedup();
    for document in documents {
        assert!(
            is_service_monitor(document) || !files.contains(&document.file),
            "{}: a ServiceMonitor shares its file with a {}; give it a file of its own \
             (it is validated against its own schema)",
            document.file.display(),
            document.kind
        );
    }
    files
}

#[test]
fn manifests_pass_kubernetes_validate() {
    let documents = documents();
    let service_monitors = service_monitor_files(&documents);
    let mut files: Vec<&Path> = documents
        .iter()
        .map(|document| document.file.as_path())
        .filter(|file| !service_monitors.iter().any(|other| other == file))
        .collect();
    files.dedup();

    let (output, said) = kubernetes_validate(&files);
    assert!(
        output.status.success(),
        "kubernetes-validate refused the manifests:\n{said}"
    );
    let complaints: Vec<&str> = said
        .lines()
        .filter(|line| !line.starts_with("INFO "))
        .collect();
    assert!(
        complaints.is_empty(),
        "kubernetes-validate did not validate everything (an unknown kind or apiVersion \
         is only a warning there):\n{said}"
    );
    for document in documents.iter().filter(|d| !is_service_monitor(d)) {
        let resource = format!("{}/{}", document.kind.to_lowercase(), document.name);
        for version in &KUBERNETES_VERSIONS {
            let minor = version.rsplit_once('.').unwrap().0;
            let passed = format!(
                "INFO {} passed for resource {resource} against version {minor}",
                document.file.display()
            );
            assert!(
                said.lines().any(|line| line == passed),
                "no `{passed}` in:\n{said}"
            );
        }
    }
    for kind in [
        "Namespace",
        "ServiceAccount",
        "ConfigMap",
        "DaemonSet",
        "Service",
    ] {
        assert!(
            documents.iter().any(|document| document.kind == kind),
            "deploy/kubernetes/ has no {kind}"
        );
    }
}

#[test]
fn service_monitor_passes_its_schema() {
    let documents = documents();
    let files = service_monitor_files(&documents);
    assert!(
        !files.is_empty(),
        "deploy/kubernetes/ has no ServiceMonitor"
    );
    for file in files {
        let (output, said) = check_jsonschema(&file);
        assert!(
            output.status.success(),
            "{} does not pass {SERVICE_MONITOR_SCHEMA}:\n{said}",
            file.display()
        );
    }
}

/// A copy of `document`'s file with `from` replaced by `to`, in `dir`.
fn broken_copy(dir: &Path, document: &Document, from: &str, to: &str, name: &str) -> PathBuf {
    let text = fs::read_to_string(&document.file).unwrap();
    assert!(
        text.contains(from),
        "{} no longer holds {from:?}: adapt this test",
        document.file.display()
    );
    let path = dir.join(name);
    fs::write(&path, text.replacen(from, to, 1)).unwrap();
    path
}

#[test]
fn validators_refuse_broken_manifests() {
    let documents = documents();
    let dir = tempfile::tempdir().unwrap();
    let daemonset = documents
        .iter()
        .find(|document| document.kind == "DaemonSet")
        .expect("a DaemonSet");
    let service_monitor = documents
        .iter()
        .find(|document| is_service_monitor(document))
        .expect("a ServiceMonitor");

    let broken = [
        // A wrong type: a string where the API wants a boolean.
        (
            broken_copy(
                dir.path(),
                daemonset,
                "hostPID: true",
                "hostPID: \"yes\"",
                "type.yaml",
            ),
            "hostPID",
        ),
        // A misspelt field, which the API server would drop without a word.
        (
            broken_copy(
                dir.path(),
                daemonset,
                "readOnlyRootFilesystem: true",
                "readOnlyRootFileSystem: true",
                "unknown.yaml",
            ),
            "readOnlyRootFileSystem",
        ),
    ];
    for (file, field) in &broken {
        let (output, said) = kubernetes_validate(&[file.as_path()]);
        assert!(
            !output.status.success() && said.contains("ERROR") && said.contains(field),
            "kubernetes-validate accepted a DaemonSet with a broken {field}:\n{said}"
        );
    }

    let broken = [
        (
            broken_copy(
                dir.path(),
                service_monitor,
                "interval: 30s",
                "interval: 30",
                "monitor-type.yaml",
            ),
            "interval",
        ),
        (
            broken_copy(
                dir.path(),
                service_monitor,
                "  podTargetLabels:",
                "  podTargetLabel:",
                "monitor-unknown.yaml",
            ),
            "podTargetLabel",
        ),
    ];
    for (file, field) in &broken {
        let (output, said) = check_jsonschema(file);
        assert!(
            !output.status.success() && said.contains(field),
            "check-jsonschema accepted a ServiceMonitor with a broken {field}:\n{said}"
        );
    }
}

/// Every ConfigMap's qosd.toml, with the ConfigMap's name.
fn configs(documents: &[Document]) -> Vec<(&Document, String)> {
    let configs: Vec<(&Document, String)> = documents
        .iter()
        .filter(|document| document.kind == "ConfigMap")
        .filter_map(|document| Some((document, block_scalar(&document.text, "qosd.toml")?)))
        .collect();
    assert!(!configs.is_empty(), "no ConfigMap holds a qosd.toml");
    configs
}

#[test]
fn configmap_configs_pass_qosd_check() {
    let documents = documents();
    let dir = tempfile::tempdir().unwrap();
    for (configmap, toml) in configs(&documents) {
        let path = dir.path().join(format!("{}.toml", configmap.name));
        fs::write(&path, &toml).unwrap();
        let output = Command::new(env!("CARGO_BIN_EXE_qosd"))
            .arg("check")
            .arg("--config")
            .arg(&path)
            .output()
            .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            output.status.success(),
            "`qosd check` refused the qosd.toml of ConfigMap {} ({}):\n{said}\n---\n{toml}",
            configmap.name,
            configmap.file.display()
        );
    }
}

fn sha256(file: &Path) -> String {
    let output = Command::new("sha256sum").arg(file).output().unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

#[test]
fn daemonsets_roll_out_their_configmap() {
    let documents = documents();
    let configs = configs(&documents);
    let daemonsets: Vec<&Document> = documents
        .iter()
        .filter(|document| document.kind == "DaemonSet")
        .collect();
    assert!(!daemonsets.is_empty(), "no DaemonSet");
    for daemonset in daemonsets {
        let lines: Vec<&str> = daemonset.text.lines().collect();
        let volume = lines
            .iter()
            .position(|line| line.trim() == "configMap:")
            .and_then(|at| lines.get(at + 1))
            .and_then(|line| line.trim().strip_prefix("name: "))
            .map(unquote)
            .unwrap_or_else(|| panic!("DaemonSet {} mounts no ConfigMap", daemonset.name));
        let (configmap, toml) = configs
            .iter()
            .find(|(configmap, _)| configmap.name == volume)
            .unwrap_or_else(|| panic!("DaemonSet {}: no ConfigMap {volume}", daemonset.name));

        let alone = documents
            .iter()
            .filter(|document| document.file == configmap.file)
            .count()
            == 1;
        assert!(
            alone,
            "{}: ConfigMap {volume} must be alone in its file, whose hash the DaemonSet carries",
            configmap.file.display()
        );
        let want = sha256(&configmap.file);
        let have = scalar(&daemonset.text, HASH_ANNOTATION)
            .unwrap_or_else(|| panic!("DaemonSet {} has no {HASH_ANNOTATION}", daemonset.name));
        assert_eq!(
            have,
            want,
            "DaemonSet {}: {HASH_ANNOTATION} is not the sha256 of {}, so a change to its \
             qosd.toml would not roll out: set it to {want} (the file's header has a command \
             that does it)",
            daemonset.name,
            configmap.file.display()
        );

        // The probes and the Service reach qosd at the node's IP, on the
        // container port: qosd must listen there.
        let listen = toml_string(toml, "metrics_listen")
            .unwrap_or_else(|| panic!("ConfigMap {volume}: no agent.metrics_listen"));
        let (address, port) = listen.rsplit_once(':').unwrap();
        assert!(
            !address.starts_with("127.") && address != "[::1]" && address != "localhost",
            "ConfigMap {volume}: metrics_listen = {listen:?} is loopback: neither the \
             kubelet's probes nor Prometheus would reach it"
        );
        assert_eq!(
            scalar(&daemonset.text, "containerPort"),
            Some(port),
            "DaemonSet {}: its containerPort is not the port of metrics_listen = {listen:?}",
            daemonset.name
        );
    }
}
