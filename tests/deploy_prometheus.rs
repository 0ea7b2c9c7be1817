//! The monitoring kit in deploy/ (Prometheus rules, their unit tests, the
//! sample scrape configuration and the Grafana dashboard) is checked with
//! `promtool`, and every metric and label it names must be one qosd really
//! exports: the list comes from the exposition of an agent that ran real
//! ticks over a fake host, as in tests/metrics_promtool.rs. Renaming a
//! metric or a label without updating deploy/ fails here.
//!
//! promtool comes from the Debian package `prometheus`
//! (scripts/install-deps.sh). Without it these tests fail; they never skip.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use regex::Regex;

use qosd::testing::{FakeHost, agent_with_fake_link};

const RULES: &str = "deploy/prometheus/qosd-rules.yml";
const RULE_TESTS: &str = "deploy/prometheus/qosd-rules.test.yml";
const SCRAPE: &str = "deploy/prometheus/scrape.yml";
const DASHBOARD: &str = "deploy/grafana/qosd-dashboard.json";

/// Labels Prometheus adds to every scraped series.
const TARGET_LABELS: [&str; 2] = ["job", "instance"];

const HISTOGRAM_SUFFIXES: [&str; 3] = ["_bucket", "_sum", "_count"];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(relative: &str) -> String {
    let path = repo().join(relative);
    fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

// ---------------------------------------------------------------- promtool

/// promtool on PATH, else where the Debian package puts it.
fn promtool_path() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("promtool"))
        .find(|candidate| candidate.is_file());
    let found = on_path.or_else(|| {
        let debian = PathBuf::from("/usr/bin/promtool");
        debian.is_file().then_some(debian)
    });
    found.unwrap_or_else(|| {
        panic!(
            "promtool not found on PATH nor at /usr/bin/promtool: install the Debian package \
             `prometheus` (scripts/install-deps.sh does). These tests do not skip without it."
        )
    })
}

/// Runs promtool in `dir`; returns what it said, failing the test if it failed.
fn promtool(dir: &Path, args: &[&str]) -> String {
    let output = Command::new(promtool_path())
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|error| panic!("cannot run promtool {args:?}: {error}"));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "promtool {} failed ({}):\n{said}",
        args.join(" "),
        output.status
    );
    said
}

#[test]
fn rules_pass_promtool_check() {
    let said = promtool(&repo(), &["check", "rules", RULES]);
    assert!(said.contains("SUCCESS"), "{said}");
}

#[test]
fn rule_unit_tests_pass() {
    let said = promtool(&repo(), &["test", "rules", RULE_TESTS]);
    assert!(said.contains("SUCCESS"), "{said}");
}

/// Every alert in the rules file has a unit test, a severity and
/// annotations.
#[test]
fn every_alert_is_unit_tested_and_annotated() {
    let rules = read(RULES);
    let tests = read(RULE_TESTS);
    let alerts: Vec<&str> = Regex::new(r"(?m)^\s*- alert: (\S+)")
        .unwrap()
        .captures_iter(&rules)
        .map(|c| c.get(1).unwrap().as_str())
        .collect();
    for required in [
        "QosdTenantBelowBaseline",
        "QosdConfigReloadFailed",
        "QosdAgentDown",
        "QosdAgentAbsent",
        "QosdDriftCorrectionsClimbing",
    ] {
        assert!(alerts.contains(&required), "no alert {required} in {RULES}");
    }
    // Each alert's block runs up to the next rule or group.
    let blocks: Vec<&str> = rules.split("- alert: ").skip(1).collect();
    assert_eq!(blocks.len(), alerts.len());
    for (alert, block) in alerts.iter().zip(&blocks) {
        let block = block.split("\n      - ").next().unwrap();
        for needed in ["for: ", "severity: ", "summary: ", "description: "] {
            assert!(block.contains(needed), "alert {alert} has no {needed:?}");
        }
        let tested = format!("alertname: {alert}\n");
        assert!(
            tests.matches(&tested).count() >= 2,
            "alert {alert} needs a test where it fires and one where it does not in {RULE_TESTS}"
        );
    }
}

#[test]
fn scrape_config_with_the_rules_passes_promtool() {
    let scrape = read(SCRAPE);
    for needed in ["job_name: qosd", "127.0.0.1:9477", "qosd-rules.yml"] {
        assert!(scrape.contains(needed), "{SCRAPE} lacks {needed:?}");
    }
    // `check config` also checks the rule files the configuration loads.
    let said = promtool(&repo(), &["check", "config", SCRAPE]);
    assert!(
        said.contains("qosd-rules.yml") && said.contains("1 rule files found"),
        "promtool did not check the rules through {SCRAPE}:\n{said}"
    );
}

// ---------------------------------------------------------------- dashboard

/// The string values of `"key": "..."` in the dashboard, JSON-unescaped.
fn json_strings(text: &str, key: &str) -> Vec<String> {
    let pattern = format!(r#""{key}":\s*"((?:[^"\\]|\\.)*)""#);
    Regex::new(&pattern)
        .unwrap()
        .captures_iter(text)
        .map(|c| unescape_json(c.get(1).unwrap().as_str()))
        .collect()
}

fn unescape_json(escaped: &str) -> String {
    let mut out = String::new();
    let mut chars = escaped.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some(other @ ('"' | '\\' | '/')) => out.push(other),
            other => panic!("unexpected escape \\{other:?} in {escaped:?}"),
        }
    }
    out
}

/// Grafana's variables, replaced by what Prometheus would receive.
fn substitute_grafana_variables(expr: &str) -> String {
    expr.replace("$__rate_interval", "1m")
        .replace("$__interval", "1m")
        .replace("$__range", "1h")
        .replace("$instance", ".*")
        .replace("$tenant", ".*")
}

fn dashboard_queries(dashboard: &str) -> Vec<String> {
    let queries = json_strings(dashboard, "expr");
    assert!(queries.len() > 20, "few queries found in {DASHBOARD}");
    queries
}

#[test]
fn dashboard_is_parameterised_and_covers_every_resource() {
    let dashboard = read(DASHBOARD);
    for needed in [
        r#""schemaVersion": 39"#,
        r#""uid": "${DS_PROMETHEUS}""#,
        r#""name": "DS_PROMETHEUS""#,
        r#""name": "tenant""#,
        r#""repeat": "tenant""#,
    ] {
        assert!(dashboard.contains(needed), "{DASHBOARD} lacks {needed}");
    }
    let definitions = json_strings(&dashboard, "definition");
    assert!(
        definitions
            .iter()
            .any(|d| d.starts_with("label_values(") && d.ends_with(", tenant)")),
        "no tenant variable from label_values in {definitions:?}"
    );
    // Every datasource is the variable, never a particular instance's uid.
    let uids =
        Regex::new(r#""datasource":\s*\{\s*"type":\s*"prometheus",\s*"uid":\s*"([^"]*)""#).unwrap();
    let used: BTreeSet<&str> = uids
        .captures_iter(&dashboard)
        .map(|c| c.get(1).unwrap().as_str())
        .collect();
    assert_eq!(used, BTreeSet::from(["${DS_PROMETHEUS}"]));
    let queries = dashboard_queries(&dashboard).join("\n");
    for metric in [
        "qosd_tenant_cpu_baseline_cores",
        "qosd_tenant_cpu_burst_cores",
        "qosd_tenant_disk_baseline",
        "qosd_tenant_disk_burst",
        "qosd_tenant_network_baseline_bytes_per_second",
        "qosd_tenant_network_burst_bytes_per_second",
        "qosd_tenant_memory_baseline_bytes",
        "qosd_tenant_memory_burst_bytes",
        "qosd_resource_contended",
        "qosd_tick_duration_seconds",
        "qosd_drift_corrections",
        "qosd_network_shaper_invocations",
        "below_baseline",
    ] {
        assert!(queries.contains(metric), "no panel queries {metric}");
    }
}

/// promtool has no expression checker, so each dashboard query becomes a
/// recording rule in a scratch file that `promtool check rules` parses.
#[test]
fn dashboard_queries_are_valid_promql() {
    let dashboard = read(DASHBOARD);
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (index, expr) in dashboard_queries(&dashboard).iter().enumerate() {
        let expr = substitute_grafana_variables(expr);
        assert!(!expr.contains('$'), "unknown variable in {expr}");
        rules.push_str(&format!(
            "      - record: dashboard:query_{index}\n        expr: {}\n",
            yaml_quote(&expr)
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("dashboard-rules.yml"), &rules).unwrap();
    promtool(dir.path(), &["check", "rules", "dashboard-rules.yml"]);
}

fn yaml_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

// ------------------------------------------------ names qosd really exports

/// A real agent's exposition after a few ticks over a fake host, set up as
/// in tests/metrics_promtool.rs, plus a memory contract and a link in
/// /proc/net/dev so those families have series too.
fn exposition_of_a_real_agent(dir: &Path) -> String {
    let mut host = FakeHost::create(dir, 4).unwrap();
    let net = host.proc_root().join("net");
    fs::create_dir_all(&net).unwrap();
    let text = host.config_toml_with_link().replace(
        "cgroup = \"t0\"\n",
        "cgroup = \"t0\"\nmemory = { baseline = \"64MiB\", burst = \"128MiB\", limit = \"256MiB\" }\n",
    );
    let (mut agent, metrics) = agent_with_fake_link(&host, &text);
    for tick in 0..3u64 {
        let sent = tick * 1_000_000;
        fs::write(
            net.join("dev"),
            format!(
                "Inter-|   Receive                                                |  Transmit\n \
                 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n  \
                 eth0: 0 0 0 0 0 0 0 0 {sent} {} 0 0 0 0 0 0\n",
                sent / 1000
            ),
        )
        .unwrap();
        agent.tick();
        host.advance().unwrap();
    }
    metrics.render()
}

/// Metric families and the label names each carries.
struct Exported {
    labels: BTreeMap<String, BTreeSet<String>>,
    histograms: BTreeSet<String>,
}

impl Exported {
    fn parse(exposition: &str) -> Self {
        let label = Regex::new(r#"([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*""#).unwrap();
        let mut labels: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut histograms = BTreeSet::new();
        for line in exposition.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut words = rest.split_whitespace();
                let (name, kind) = (words.next().unwrap(), words.next().unwrap());
                labels.entry(name.to_owned()).or_default();
                if kind == "histogram" {
                    histograms.insert(name.to_owned());
                }
                continue;
            }
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let end = line.find(['{', ' ']).unwrap();
            let sample = &line[..end];
            let family = HISTOGRAM_SUFFIXES
                .iter()
                .filter_map(|suffix| sample.strip_suffix(suffix))
                .find(|base| histograms.contains(*base))
                .unwrap_or(sample);
            let names = labels.entry(family.to_owned()).or_default();
            if let Some(open) = line[end..].strip_prefix('{') {
                let close = open.rfind('}').unwrap();
                for c in label.captures_iter(&open[..close]) {
                    names.insert(c.get(1).unwrap().as_str().to_owned());
                }
            }
        }
        Exported { labels, histograms }
    }

    /// The family a name in a query refers to: itself, or a histogram whose
    /// `_bucket`, `_sum` or `_count` series it is.
    fn family<'a>(&self, name: &'a str) -> Option<&'a str> {
        if self.labels.contains_key(name) {
            return Some(name);
        }
        HISTOGRAM_SUFFIXES
            .iter()
            .filter_map(|suffix| name.strip_suffix(suffix))
            .find(|base| self.histograms.contains(*base))
    }
}

fn recording_rules(rules: &str) -> BTreeSet<String> {
    Regex::new(r"(?m)^\s*- record: (\S+)\s*$")
        .unwrap()
        .captures_iter(rules)
        .map(|c| c.get(1).unwrap().as_str().to_owned())
        .collect()
}

/// Checks every qosd metric name in `text`; returns the names found.
/// Identifiers with a colon are recording rules and must be defined.
fn check_names(
    what: &str,
    text: &str,
    exported: &Exported,
    recorded: &BTreeSet<String>,
) -> BTreeSet<String> {
    let identifier = Regex::new(r"[a-zA-Z_:][a-zA-Z0-9_:]*").unwrap();
    let metric = Regex::new(r"^qosd_[a-z_]+$").unwrap();
    let mut unknown = Vec::new();
    let mut used = BTreeSet::new();
    // A trailing colon is prose ("qosd_x_total: what it means").
    for token in identifier
        .find_iter(text)
        .map(|m| m.as_str().trim_end_matches(':'))
    {
        if !token.contains("qosd_") {
            continue;
        }
        if token.contains(':') {
            if !recorded.contains(token) {
                unknown.push(format!("{token} (no such recording rule in {RULES})"));
            }
            continue;
        }
        if !metric.is_match(token) {
            unknown.push(format!("{token} (not a metric name qosd could export)"));
            continue;
        }
        match exported.family(token) {
            Some(family) => {
                used.insert(family.to_owned());
            }
            None => unknown.push(token.to_owned()),
        }
    }
    assert!(
        unknown.is_empty(),
        "{what} names metrics qosd does not export: {unknown:?}\nexported: {:?}",
        exported.labels.keys().collect::<Vec<_>>()
    );
    used
}

/// Checks the label names in `name{...}` selectors of qosd metrics, and in
/// the `by (...)` of aggregations over them, against the exported ones.
fn check_selector_labels(what: &str, queries: &str, exported: &Exported) {
    let selector = Regex::new(r"(qosd_[a-z_]+)\{([^}]*)\}").unwrap();
    let quoted = Regex::new(r#""(?:[^"\\]|\\.)*""#).unwrap();
    let matcher = Regex::new(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)").unwrap();
    let mut wrong = Vec::new();
    for c in selector.captures_iter(queries) {
        let name = c.get(1).unwrap().as_str();
        let Some(family) = exported.family(name) else {
            continue; // reported by check_names
        };
        let allowed = &exported.labels[family];
        let matchers = quoted.replace_all(c.get(2).unwrap().as_str(), "\"\"");
        for m in matcher.captures_iter(&matchers) {
            let label = m.get(1).unwrap().as_str();
            let bucket = label == "le" && exported.histograms.contains(family);
            if !allowed.contains(label) && !TARGET_LABELS.contains(&label) && !bucket {
                wrong.push(format!("{name}{{{label}}}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{what} selects labels qosd does not export: {wrong:?}"
    );
}

/// Label names in `by (...)`, `on (...)` and `ignoring (...)` clauses must
/// exist on some exported family (or be a target label or `le`).
fn check_grouping_labels(what: &str, queries: &str, exported: &Exported) {
    let clause = Regex::new(r"\b(?:by|on|ignoring|without)\s*\(([^)]*)\)").unwrap();
    let known: BTreeSet<&str> = exported
        .labels
        .values()
        .flatten()
        .map(String::as_str)
        .chain(TARGET_LABELS)
        .chain(["le"])
        .collect();
    let mut wrong = Vec::new();
    for c in clause.captures_iter(queries) {
        for label in c.get(1).unwrap().as_str().split(',').map(str::trim) {
            if !label.is_empty() && !known.contains(label) {
                wrong.push(label.to_owned());
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{what} groups by labels qosd does not export: {wrong:?}"
    );
}

#[test]
fn every_metric_and_label_used_is_exported_by_qosd() {
    let dir = tempfile::tempdir().unwrap();
    let exported = Exported::parse(&exposition_of_a_real_agent(dir.path()));
    // The fake host must keep the families deploy/ relies on alive.
    assert!(
        exported.labels.len() >= 40,
        "only {} families exported",
        exported.labels.len()
    );

    let rules = read(RULES);
    let recorded = recording_rules(&rules);
    assert!(recorded.len() >= 10, "few recording rules: {recorded:?}");

    let mut used = check_names(RULES, &rules, &exported, &recorded);
    check_selector_labels(RULES, &rules, &exported);
    check_grouping_labels(RULES, &rules, &exported);

    // The unit tests' synthetic series must be real ones, or they prove
    // nothing about a real agent.
    let tests = read(RULE_TESTS);
    used.extend(check_names(RULE_TESTS, &tests, &exported, &recorded));
    check_selector_labels(RULE_TESTS, &tests, &exported);

    let dashboard = read(DASHBOARD);
    used.extend(check_names(DASHBOARD, &dashboard, &exported, &recorded));
    let mut queries = dashboard_queries(&dashboard);
    queries.extend(json_strings(&dashboard, "definition"));
    let queries = queries.join("\n");
    check_selector_labels(DASHBOARD, &queries, &exported);
    check_grouping_labels(DASHBOARD, &queries, &exported);

    for needed in [
        "qosd_tenant_below_baseline_seconds_total",
        "qosd_config_reloads_total",
        "qosd_drift_corrections_total",
        "qosd_resource_contended",
        "qosd_tick_duration_seconds",
        "qosd_tenant_cpu_usage_seconds_total",
    ] {
        assert!(used.contains(needed), "deploy/ never uses {needed}");
    }
}

/// The checker itself: a renamed metric, an unknown recording rule and an
/// unknown label are caught.
#[test]
fn the_name_checks_catch_a_rename() {
    let exposition = "# TYPE qosd_a_total counter\nqosd_a_total{tenant=\"x\"} 1\n\
                      # TYPE qosd_t_seconds histogram\nqosd_t_seconds_bucket{le=\"+Inf\"} 1\n\
                      qosd_t_seconds_sum 1\nqosd_t_seconds_count 1\n";
    let exported = Exported::parse(exposition);
    let recorded = BTreeSet::from(["tenant:qosd_a:rate1m".to_owned()]);
    let ok = "rate(qosd_a_total{tenant=\"x\",job=\"qosd\"}[1m]) tenant:qosd_a:rate1m \
              qosd_t_seconds_bucket{le=\"1\"} qosd_t_seconds_count";
    let used = check_names("ok", ok, &exported, &recorded);
    assert_eq!(
        used,
        BTreeSet::from(["qosd_a_total".to_owned(), "qosd_t_seconds".to_owned()])
    );
    check_selector_labels("ok", ok, &exported);
    for bad in [
        "rate(qosd_b_total[1m])",
        "tenant:qosd_b:rate1m",
        "qosd_a_total_bucket",
    ] {
        let caught = std::panic::catch_unwind(|| check_names("bad", bad, &exported, &recorded));
        assert!(caught.is_err(), "{bad} passed");
    }
    let caught = std::panic::catch_unwind(|| {
        check_selector_labels("bad", "qosd_a_total{tennant=\"x\"}", &exported)
    });
    assert!(caught.is_err(), "a misspelt label passed");
}
