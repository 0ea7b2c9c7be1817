//! Cost of a full rescan of /proc (issue 5: at most 50 ms with 5,000
//! processes on the host). Starts `QOSD_BENCH_PROCESSES` (default 5,000)
//! extra `sleep`s, then rescans the real /proc once per kind of matcher key.
//! None of the keys matches a process here, so each process costs what most
//! cost on a real host: the file its tenant's first key needs.
//!
//!   cargo bench --bench rescan

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use qosd::cgroup::Hierarchy;
use qosd::classify::Classifier;
use qosd::config::{ProcessMatcher, Tenant, TextPattern};
use qosd::procfs::ProcFs;

const DEFAULT_PROCESSES: usize = 5_000;

/// The extra processes; killed when dropped, even when the bench panics.
struct Sleepers(Vec<Child>);

impl Sleepers {
    fn start(count: usize) -> Self {
        let mut sleepers = Sleepers(Vec::with_capacity(count));
        for _ in 0..count {
            let child = Command::new("sleep")
                .arg("3600")
                .stdin(Stdio::null())
                .spawn()
                .expect("start sleep");
            sleepers.0.push(child);
        }
        sleepers
    }
}

impl Drop for Sleepers {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn tenant(name: &str, matcher: ProcessMatcher) -> Tenant {
    Tenant {
        name: name.into(),
        cgroup: PathBuf::from("qosd.slice").join(name),
        adopted: false,
        cpu: None,
        disk: Vec::new(),
        net: Vec::new(),
        memory: None,
        matchers: vec![matcher],
    }
}

/// One tenant per kind of key, each matching no process of this host.
fn configurations() -> Vec<(&'static str, Tenant)> {
    let key = ProcessMatcher::default;
    vec![
        (
            "uid",
            tenant(
                "alice",
                ProcessMatcher {
                    uid: Some(4_000_000),
                    ..key()
                },
            ),
        ),
        (
            "comm",
            tenant(
                "batch",
                ProcessMatcher {
                    comm: Some(TextPattern::exact_or_glob("qosd-bench-*").unwrap()),
                    ..key()
                },
            ),
        ),
        (
            "unit",
            tenant(
                "web",
                ProcessMatcher {
                    unit: Some("qosd-bench.service".into()),
                    ..key()
                },
            ),
        ),
        (
            "cmdline",
            tenant(
                "java",
                ProcessMatcher {
                    cmdline: Some(TextPattern::regex("^java .*-jar qosd-bench").unwrap()),
                    ..key()
                },
            ),
        ),
    ]
}

fn rescan(c: &mut Criterion) {
    let extra = std::env::var("QOSD_BENCH_PROCESSES")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(DEFAULT_PROCESSES);
    qosd::agent::raise_open_files_limit();
    let _sleepers = Sleepers::start(extra);
    let proc = ProcFs::default();
    let processes = proc.pids().expect("list /proc").len();
    let mut group = c.benchmark_group(format!("rescan/{processes}_processes"));
    group.measurement_time(Duration::from_secs(5));
    for (key, tenant) in configurations() {
        // Moves would go to this empty tree; nothing matches, so none happen.
        let cgroups = tempfile::tempdir().expect("tempdir");
        let classifier = Classifier::new(
            Hierarchy::at(cgroups.path()),
            std::slice::from_ref(&tenant),
            Arc::default(),
        );
        group.bench_function(key, |b| {
            b.iter(|| {
                let report = classifier.rescan(&proc).expect("rescan /proc");
                assert_eq!(report.moved + report.errors, 0, "{report:?}");
                report
            })
        });
    }
    group.finish();
}

criterion_group!(benches, rescan);
criterion_main!(benches);
