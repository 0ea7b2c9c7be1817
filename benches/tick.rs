//! Cost of one control-loop tick (sample, decide, enforce, export) over a
//! synthetic cgroup tree with 10, 100 and 1000 tenants. The tree lives in a
//! temporary directory, so this measures qosd's own work plus plain file I/O.
//! Beside it: why files are kept open, and why links are read over netlink.

use std::path::PathBuf;

use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use qosd::agent::Agent;
use qosd::cgroup::{Hierarchy, cpu};
use qosd::config;
use qosd::testing::{self, FakeHost};

fn agent_over(host: &FakeHost) -> Agent {
    let facts = FakeHost::facts();
    let loaded = config::parse(&host.config_toml(), &PathBuf::from("bench.toml"), &facts)
        .expect("the fake host's configuration is valid");
    let options = testing::options(PathBuf::from("bench.toml"));
    let shaper = Box::new(qosd::net::SystemShaper::default());
    testing::fake_agent(host, loaded.config, options, shaper).0
}

fn tick(c: &mut Criterion) {
    qosd::agent::raise_open_files_limit();
    let mut group = c.benchmark_group("tick");
    for tenants in [10, 100, 1000] {
        let dir = tempfile::tempdir_in(testing::tmpfs_dir()).expect("tempdir");
        let mut host = FakeHost::create(dir.path(), tenants).expect("fake host");
        let mut agent = agent_over(&host);
        agent.tick();
        host.advance().expect("advance");
        agent.tick();
        // The counters move before every measured tick (outside the timing),
        // so each tick has new rates and contention to decide.
        group.bench_function(BenchmarkId::from_parameter(tenants), |b| {
            b.iter_batched(
                || host.advance().expect("advance"),
                |()| agent.tick(),
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

/// Why `Group` keeps the files it reads every tick open: one cpu.stat read
/// through a fresh handle (open + read + close) against a kept one (pread).
fn read_cpu_stat(c: &mut Criterion) {
    let dir = tempfile::tempdir_in(testing::tmpfs_dir()).expect("tempdir");
    let host = FakeHost::create(dir.path(), 1).expect("fake host");
    let hierarchy = Hierarchy::at(host.cgroup_root());
    let tenant = std::path::Path::new("t0");
    let mut group = c.benchmark_group("read_cpu_stat");
    group.bench_function("reopened", |b| {
        b.iter(|| cpu::read_stat(&hierarchy.group(tenant)).expect("read"))
    });
    let kept = hierarchy.group(tenant);
    group.bench_function("kept_open", |b| {
        b.iter(|| cpu::read_stat(&kept).expect("read"))
    });
    group.finish();
}

/// What a quiet tick costs per link: reading its qdiscs and classes over
/// netlink, against starting `tc -s class show` for the same read. Runs on
/// the loopback link, which every host has.
fn read_link(c: &mut Criterion) {
    use qosd::net::{Shaper, SystemShaper};
    let mut shaper = SystemShaper::default();
    if shaper.observe("lo").is_err() {
        eprintln!("netlink is not available here; skipping read_link");
        return;
    }
    let mut group = c.benchmark_group("read_link");
    group.bench_function("netlink", |b| {
        b.iter(|| shaper.observe("lo").expect("netlink read"))
    });
    let tc = || {
        std::process::Command::new("tc")
            .args(["-s", "class", "show", "dev", "lo"])
            .output()
    };
    if tc().is_ok() {
        group.bench_function("tc_process", |b| b.iter(|| tc().expect("tc runs")));
    }
    group.finish();
}

criterion_group!(benches, tick, read_cpu_stat, read_link);
criterion_main!(benches);
