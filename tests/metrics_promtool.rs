//! What `/metrics` serves must pass `promtool check metrics` (the Prometheus
//! project's own linter). The agent runs real ticks over a fake cgroup tree
//! so that every family has series, then the exposition is checked, first
//! as rendered and then as served over HTTP.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;

use qosd::metrics::{self, Metrics};
use qosd::testing::{FakeHost, agent_with_fake_link};

fn exposition_after_ticks(dir: &std::path::Path) -> Arc<Metrics> {
    let mut host = FakeHost::create(dir, 4).unwrap();
    let (mut agent, metrics) = agent_with_fake_link(&host, &host.config_toml_with_link());
    for _ in 0..3 {
        agent.tick();
        host.advance().unwrap();
    }
    metrics
}

fn promtool_check(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed (Debian package prometheus; scripts/install-deps.sh)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && said.trim().is_empty(),
        "promtool: {said}\n---\n{text}"
    );
}

#[test]
fn rendered_metrics_pass_promtool() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = exposition_after_ticks(dir.path());
    let text = metrics.render();
    for family in [
        "qosd_tenant_cpu_usage_seconds_total{tenant=\"t1\"}",
        "qosd_tenant_cpu_limit_cores{tenant=\"t1\"}",
        "qosd_tenant_pressure_stall_seconds_total{kind=\"some\",resource=\"cpu\",tenant=\"t1\"}",
        "qosd_resource_contended{device=\"\",resource=\"cpu\"}",
        "qosd_tick_duration_seconds_count 3",
    ] {
        assert!(text.contains(family), "missing {family}:\n{text}");
    }
    promtool_check(&text);
}

#[tokio::test]
async fn served_metrics_pass_promtool() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = exposition_after_ticks(dir.path());
    // Port 0: the kernel picks a free port, with no window for another
    // process to take it first.
    let server = metrics::serve("127.0.0.1:0".parse().unwrap(), metrics)
        .await
        .unwrap();
    let address = server.address;
    let body = tokio::task::spawn_blocking(move || {
        let output = Command::new("curl")
            .args(["-sS", "-i", &format!("http://{address}/metrics")])
            .output()
            .expect("curl is installed");
        String::from_utf8_lossy(&output.stdout).into_owned()
    })
    .await
    .unwrap();
    let (head, text) = body.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    promtool_check(text);
}
