use std::time::Duration;

use super::*;
use crate::net::Shaper;
use crate::net::fake::FakeShaper;
use crate::testing::{FakeHost, fake_agent, options};

/// An agent over a fake host of `tenants`, with its config in a real file
/// so that reload can read it.
fn agent_over(dir: &std::path::Path, tenants: usize) -> (FakeHost, Agent) {
    agent_with_extra_config(dir, tenants, "")
}

/// Like [`agent_over`], with `extra` appended to the fake host's config.
fn agent_with_extra_config(
    dir: &std::path::Path,
    tenants: usize,
    extra: &str,
) -> (FakeHost, Agent) {
    agent_shaped_by(dir, tenants, extra, Box::new(FakeShaper::default()))
}

/// Like [`agent_with_extra_config`], its links shaped by `shaper`.
fn agent_shaped_by(
    dir: &std::path::Path,
    tenants: usize,
    extra: &str,
    shaper: Box<dyn Shaper>,
) -> (FakeHost, Agent) {
    let host = FakeHost::create(&dir.join("host"), tenants).unwrap();
    let config_path = dir.join("qosd.toml");
    std::fs::write(&config_path, host.config_toml() + extra).unwrap();
    let config = config::load(&config_path, &FakeHost::facts())
        .unwrap()
        .config;
    let (agent, _) = fake_agent(&host, config, options(config_path), shaper);
    (host, agent)
}

/// The value of the series `name{labels}` in the agent's metrics.
fn metric(agent: &Agent, series: &str) -> Option<f64> {
    let text = agent.metrics.render();
    let line = text.lines().find(|line| line.starts_with(series))?;
    line.rsplit(' ').next()?.parse().ok()
}

fn file(host: &FakeHost, tenant: usize, name: &str) -> String {
    std::fs::read_to_string(host.tenant_dir(tenant).join(name)).unwrap()
}

/// Two ticks with the host's counters moving between them: the first
/// decision is made.
fn decide_once(host: &mut FakeHost, agent: &mut Agent) {
    agent.tick();
    host.advance().unwrap();
    agent.tick();
}

/// An agent over a fake host of `tenants` that has made its first decision.
fn decided(dir: &std::path::Path, tenants: usize) -> (FakeHost, Agent) {
    let (mut host, mut agent) = agent_over(dir, tenants);
    decide_once(&mut host, &mut agent);
    (host, agent)
}

/// Drift is looked for on every `DRIFT_CHECK_TICKS`th tick.
fn tick_until_drift_checked(host: &mut FakeHost, agent: &mut Agent) {
    for _ in 0..crate::enforce::DRIFT_CHECK_TICKS {
        host.advance().unwrap();
        agent.tick();
    }
}

fn quota_us(host: &FakeHost, tenant: usize) -> u64 {
    let max = file(host, tenant, "cpu.max");
    max.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn the_first_tick_only_samples_so_a_restart_releases_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (host, mut agent) = agent_over(dir.path(), 2);
    agent.tick();
    assert_eq!(file(&host, 0, "cpu.max"), "max 100000\n");
    assert_eq!(agent.metrics.enforcement_writes.get(), 0);
    let root_control =
        std::fs::read_to_string(host.cgroup_root().join("cgroup.subtree_control")).unwrap();
    assert!(root_control.contains("+cpu"), "{root_control}");
}

#[test]
fn a_decision_writes_weights_and_clamps_by_weight_under_contention() {
    let dir = tempfile::tempdir().unwrap();
    let (host, _agent) = decided(dir.path(), 2);
    // Baselines 0.02 and 0.01 cores: weights 2 and 1. Both saturate the
    // host, so the spare is split 2:1 and neither may burst to 2 cores.
    assert_eq!(file(&host, 0, "cpu.weight"), "2");
    assert_eq!(file(&host, 1, "cpu.weight"), "1");
    let (first, second) = (quota_us(&host, 0), quota_us(&host, 1));
    assert!(first + second <= 200_000, "{first} + {second}");
    assert!(first > second, "{first} vs {second}");
}

/// Tenant 0's `knob`, changed behind qosd's back to `tampered`, is put
/// back within the drift checks and counted once.
fn assert_drift_put_back(tenants: usize, knob: &str, tampered: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (mut host, mut agent) = agent_over(dir.path(), tenants);
    decide_once(&mut host, &mut agent);
    let decided = file(&host, 0, knob);
    std::fs::write(host.tenant_dir(0).join(knob), tampered).unwrap();
    tick_until_drift_checked(&mut host, &mut agent);
    assert_eq!(file(&host, 0, knob), decided);
    assert_eq!(agent.metrics.drift_corrections.get(), 1);
}

#[test]
fn drift_is_put_back_and_counted() {
    assert_drift_put_back(2, "cpu.weight", "100\n");
}

fn reloads(agent: &Agent, outcome: &str) -> u64 {
    let counter = agent.metrics.config_reloads.with_label_values(&[outcome]);
    counter.get()
}

#[test]
fn a_broken_reload_keeps_the_contracts_in_force_and_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (host, mut agent) = decided(dir.path(), 2);
    std::fs::write(
        &agent.options.config_path,
        "[tenants.t0]\ncpu = { baselin = 1 }\n",
    )
    .unwrap();
    agent.reload();
    agent.tick();
    assert_eq!(agent.tenants.len(), 2, "old tenants dropped");
    assert_eq!(file(&host, 0, "cpu.weight"), "2");
    assert_eq!(reloads(&agent, "failure"), 1);
}

#[test]
fn a_good_reload_applies_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (host, mut agent) = decided(dir.path(), 2);
    let text = host.config_toml().replace("burst = 2.0", "burst = 0.5");
    std::fs::write(&agent.options.config_path, text).unwrap();
    agent.reload();
    assert_eq!(file(&host, 0, "cpu.max"), "50000 100000");
    assert_eq!(reloads(&agent, "success"), 1);
}

fn io_max_rbps(host: &FakeHost, tenant: usize) -> Option<u64> {
    let line = file(host, tenant, "io.max");
    let value = line
        .split_whitespace()
        .find_map(|field| field.strip_prefix("rbps="))?;
    value.parse().ok()
}

#[test]
fn disks_under_contention_get_io_max_below_capacity() {
    let dir = tempfile::tempdir().unwrap();
    let (host, agent) = decided(dir.path(), 4);
    let capacity = 50 * 1_048_576;
    for tenant in 0..4 {
        let rbps = io_max_rbps(&host, tenant).expect("an io.max line");
        assert!(rbps < capacity, "t{tenant}: {rbps}");
        assert!(rbps >= 10 * 1024, "t{tenant} below its baseline: {rbps}");
    }
    let text = agent.metrics.render();
    assert!(
        text.contains("qosd_resource_contended{device=\"254:0\",resource=\"disk\"} 1"),
        "{text}"
    );
}

#[test]
fn io_max_drift_is_put_back_and_counted() {
    // Four tenants, two per disk, so that both are clamped.
    let dir = tempfile::tempdir().unwrap();
    let (host, _agent) = decided(dir.path(), 4);
    let decided = file(&host, 0, "io.max");
    assert!(decided.contains("rbps="), "{decided}");
    assert_drift_put_back(4, "io.max", "");
}

#[test]
fn a_vanished_disk_drops_its_limits_and_the_rest_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let (mut host, mut agent) = decided(dir.path(), 4);
    // Unlimited shows as the burst: 50 MiB/s on the fake host.
    let limit = |agent: &Agent, tenant: &str, device: &str| {
        let series = format!(
            "qosd_tenant_disk_limit{{device=\"{device}\",dimension=\"read_bps\",tenant=\"{tenant}\"}}"
        );
        metric(agent, &series).unwrap()
    };
    let burst = 50.0 * 1_048_576.0;
    assert!(
        limit(&agent, "t1", "254:16") < burst,
        "t1 is clamped on vdb"
    );
    host.remove_disk("254:16");
    for _ in 0..3 {
        host.advance().unwrap();
        agent.tick();
    }
    let report = agent.status_report();
    let vdb = report
        .resources
        .iter()
        .find(|row| row.subject.device == "254:16");
    assert_eq!(vdb.unwrap().used, None, "the gone disk is not measured");
    assert_eq!(
        limit(&agent, "t1", "254:16"),
        burst,
        "limits on the gone disk kept"
    );
    assert!(
        limit(&agent, "t0", "254:0") < burst,
        "the other disk lost its limits"
    );
    assert!(agent.tenants.iter().all(|t| t.ready));
    assert_eq!(agent.metrics.enforcement_errors.get(), 0);
}

/// (A group removed while open only fails reads on a real cgroupfs, with
/// ENODEV; a fake tree on tmpfs can only show a group that is absent.)
#[test]
fn a_missing_group_is_waited_for_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let (host, mut agent) = agent_over(dir.path(), 2);
    std::fs::remove_dir_all(host.tenant_dir(1)).unwrap();
    agent.tick();
    agent.tick();
    assert!(!agent.tenants[1].ready);
    assert!(agent.tenants[0].ready);
    assert_eq!(
        agent.metrics.enforcement_errors.get(),
        0,
        "vanishing is not an error"
    );
}

#[test]
fn dry_run_reads_and_decides_but_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (host, mut agent) = agent_over(dir.path(), 2);
    agent.options.dry_run = true;
    agent.enforcer = Enforcer::new(true);
    agent.tick();
    assert_eq!(file(&host, 0, "cpu.max"), "max 100000\n");
    assert_eq!(file(&host, 0, "cpu.weight"), "100\n");
    assert_eq!(agent.metrics.enforcement_writes.get(), 0);
}

/// The fake host's config with a 40 Mbit/s link `eth0` and egress
/// contracts for tenants 0 and 1, shaped by a fake kernel.
fn agent_with_link(dir: &std::path::Path) -> (FakeHost, Agent, FakeShaper) {
    let shaper = FakeShaper::default();
    shaper.kernel.lock().unwrap().add_link("eth0");
    let (host, mut agent) = agent_shaped_by(dir, 2, "", Box::new(shaper.clone()));
    reconfigure(&mut agent, &host.config_toml_with_link());
    (host, agent, shaper)
}

/// Writes `text` as the agent's configuration and takes it, as a reload
/// that passed validation does.
fn reconfigure(agent: &mut Agent, text: &str) {
    std::fs::write(&agent.options.config_path, text).unwrap();
    let config = config::load(&agent.options.config_path, &FakeHost::facts())
        .unwrap()
        .config;
    agent.swap_config(config);
}

/// The status report names each tenant's contracts with what the tick
/// measured, and the host's CPU with its contention; it is served over
/// the socket as JSON that `qosd status` reads back whole, and a second
/// agent cannot take the socket while the first answers.
#[tokio::test]
async fn the_status_report_is_served_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let (_host, agent) = decided(dir.path(), 2);
    let report = agent.status_report();
    assert_eq!(report.tick, 2);
    let cpu = &report.resources[0];
    assert_eq!((cpu.subject.resource.as_str(), cpu.capacity), ("cpu", 2.0));
    assert!(cpu.contended, "both fake tenants saturate the host");
    let t0_cpu = report
        .tenants
        .iter()
        .find(|row| row.tenant == "t0" && row.subject.resource == "cpu")
        .unwrap();
    assert_eq!((t0_cpu.baseline, t0_cpu.burst), (0.02, 2.0));
    assert!(t0_cpu.usage.is_some_and(|usage| usage > 0.0), "{t0_cpu:?}");
    let disk_rows = report
        .tenants
        .iter()
        .filter(|row| row.subject.resource == "disk");
    assert_eq!(disk_rows.count(), 4, "two tenants, read and write bps");

    let path = dir.path().join("run/qosd.sock");
    let socket = status::StatusSocket::bind(&path).unwrap();
    let client = tokio::task::spawn_blocking({
        let path = path.clone();
        move || crate::status::fetch(&path)
    });
    status::answer(socket.accept().await, &report);
    assert_eq!(client.await.unwrap().unwrap(), report);
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    use std::os::unix::fs::PermissionsExt;
    assert_eq!((mode(&path), mode(path.parent().unwrap())), (0o600, 0o700));
    assert!(matches!(
        status::StatusSocket::bind(&path),
        Err(status::SocketError::InUse(_))
    ));
    drop(socket);
    assert!(!path.exists(), "removed when the agent stops");
}

/// The probe halfway through a tick gives the tick each tenant's usage
/// over its latest part: t1's counters stopped after the probe, so it
/// used CPU over the tick but none since the probe. A probe too close
/// to the tick (under a quarter of the interval) is not used.
#[test]
fn the_probe_gives_the_tick_the_usage_since_the_middle_of_the_tick() {
    let dir = tempfile::tempdir().unwrap();
    let (mut host, mut agent) = agent_over(dir.path(), 2);
    let text = host
        .config_toml()
        .replace("interval = \"1s\"", "interval = \"250ms\"");
    reconfigure(&mut agent, &text);
    agent.tick();
    host.advance().unwrap();
    agent.probe();
    let t1_usage = std::fs::read_to_string(host.tenant_dir(1).join("cpu.stat")).unwrap();
    host.advance().unwrap();
    std::fs::write(host.tenant_dir(1).join("cpu.stat"), t1_usage).unwrap();
    std::thread::sleep(Duration::from_millis(70));
    agent.tick();
    let cores = |rates: &Rates, tenant: &str| rates.tenants[tenant].cpu_cores;
    let (whole, recent) = (
        agent.samples.rates.as_ref().unwrap(),
        agent.samples.recent.as_ref().unwrap(),
    );
    assert!(cores(whole, "t1") > 0.0 && cores(recent, "t0") > 0.0);
    assert_eq!(cores(recent, "t1"), 0.0, "t1 stopped after the probe");

    host.advance().unwrap();
    agent.probe();
    agent.tick();
    assert!(
        agent.samples.recent.is_none(),
        "a probe just before the tick"
    );
    assert_eq!(agent.metrics.probe_duration.get_sample_count(), 2);
}

/// Without the proc connector (a test calls `tick` and never starts the
/// listener), /proc is rescanned every second tick, and a matching
/// process is moved at the first.
#[test]
fn without_the_connector_a_rescan_every_second_tick_moves_processes() {
    use crate::procfs::process::tests::{FakeProcess, add_process};
    let dir = tempfile::tempdir().unwrap();
    let batch = "\n[tenants.batch]\nmatch = [{ comm = \"batch-*\" }]\n\
                 cpu = { baseline = 0.1, burst = 1 }\n";
    let (host, mut agent) = agent_with_extra_config(dir.path(), 1, batch);
    add_process(
        &host.proc_root(),
        &FakeProcess {
            pid: 4321,
            comm: "batch-7",
            cgroup: "/system.slice/cron.service",
            ..FakeProcess::default()
        },
    );
    // The kernel gives a new group its files; a plain directory has none.
    for group in ["qosd.slice", "qosd.slice/batch"] {
        let dir = host.cgroup_root().join(group);
        std::fs::create_dir_all(&dir).unwrap();
        crate::testing::write_files(&dir, crate::testing::GROUP_FILES).unwrap();
    }
    let procs = host.cgroup_root().join("qosd.slice/batch/cgroup.procs");
    let rescans = |agent: &Agent| agent.metrics.classification_rescans.get();
    agent.tick();
    assert_eq!(std::fs::read_to_string(&procs).unwrap(), "4321");
    assert_eq!(
        (rescans(&agent), agent.metrics.classification_moves.get()),
        (1, 1)
    );
    agent.tick();
    assert_eq!(rescans(&agent), 1);
    agent.tick();
    agent.tick();
    assert_eq!(rescans(&agent), 2);
}

#[test]
fn links_are_shaped_from_the_first_tick_counted_and_repaired() {
    use crate::net::Handle;
    let dir = tempfile::tempdir().unwrap();
    let (mut host, mut agent, shaper) = agent_with_link(dir.path());
    agent.tick();
    {
        let kernel = shaper.kernel.lock().unwrap();
        let api = kernel.links["eth0"].class(Handle::new(1, 0x10)).unwrap();
        assert_eq!((api.rate, api.ceil), (3_125_000, 5_000_000));
        // The fake tree is not at /sys/fs/cgroup, where nftables looks
        // groups up: the table is loaded, without group rules.
        let table = kernel.table.as_deref().unwrap();
        assert!(!table.contains("socket cgroupv2"), "{table}");
    }
    shaper
        .kernel
        .lock()
        .unwrap()
        .send("eth0", Handle::new(1, 0x10), 30_000);
    host.advance().unwrap();
    agent.tick();
    let t0_on_eth0 = "{interface=\"eth0\",tenant=\"t0\"}";
    let sent = format!("qosd_tenant_network_transmit_bytes_total{t0_on_eth0}");
    assert_eq!(metric(&agent, &sent), Some(30_000.0));
    let baseline = format!("qosd_tenant_network_baseline_bytes_per_second{t0_on_eth0}");
    assert_eq!(metric(&agent, &baseline), Some(25e6 / 8.0));
    let tc_runs =
        |agent: &Agent| metric(agent, "qosd_network_shaper_invocations_total{tool=\"tc\"}");
    assert_eq!(tc_runs(&agent), Some(1.0), "a quiet tick runs no tc");
    shaper
        .kernel
        .lock()
        .unwrap()
        .links
        .get_mut("eth0")
        .unwrap()
        .qdiscs
        .clear();
    let drift_before = agent.metrics.drift_corrections.get();
    agent.tick();
    assert_eq!(agent.metrics.drift_corrections.get(), drift_before + 1);
    assert_eq!(tc_runs(&agent), Some(2.0));
    assert!(
        !shaper.kernel.lock().unwrap().links["eth0"]
            .qdiscs
            .is_empty()
    );
}

#[test]
fn memory_contracts_are_written_from_the_first_tick_and_put_back() {
    let dir = tempfile::tempdir().unwrap();
    let (mut host, agent) = agent_over(dir.path(), 2);
    let contract = "cgroup = \"t0\"\nmemory = { baseline = \"300MiB\", burst = \"900MiB\", limit = \"1GiB\" }\n";
    let text = host.config_toml().replace("cgroup = \"t0\"\n", contract);
    let mut agent = agent;
    reconfigure(&mut agent, &text);
    agent.tick();
    assert_eq!(file(&host, 0, "memory.min"), "314572800");
    assert_eq!(file(&host, 0, "memory.high"), "943718400");
    assert_eq!(file(&host, 0, "memory.max"), "1073741824");
    assert_eq!(file(&host, 1, "memory.min"), "0\n", "no contract, no write");
    let baseline = metric(&agent, "qosd_tenant_memory_baseline_bytes{tenant=\"t0\"}");
    assert_eq!(baseline, Some(314_572_800.0));
    std::fs::write(host.tenant_dir(0).join("memory.current"), "5000\n").unwrap();
    std::fs::write(host.tenant_dir(0).join("memory.min"), "0\n").unwrap();
    tick_until_drift_checked(&mut host, &mut agent);
    assert_eq!(file(&host, 0, "memory.min"), "314572800");
    assert!(agent.metrics.drift_corrections.get() >= 1);
    let usage = metric(&agent, "qosd_tenant_memory_usage_bytes{tenant=\"t0\"}");
    assert_eq!(usage, Some(5000.0));
}

/// Memory in `qosd status`: a header row with the memory left for
/// tenants and what is not available, contended above the threshold,
/// and each contract's pressure from the stall between two reads.
#[test]
fn the_status_report_shows_host_memory_and_memory_pressure() {
    let dir = tempfile::tempdir().unwrap();
    let (host, mut agent) = agent_over(dir.path(), 2);
    let contract = "cgroup = \"t0\"\nmemory = { baseline = \"300MiB\", burst = \"900MiB\" }\n";
    reconfigure(
        &mut agent,
        &host.config_toml().replace("cgroup = \"t0\"\n", contract),
    );
    let meminfo = |available_mib: u64| {
        let text = format!(
            "MemTotal: 4194304 kB\nMemAvailable: {} kB\n",
            available_mib * 1024
        );
        std::fs::write(
            host.proc_root().join("meminfo"),
            crate::testing::meminfo(&text),
        )
        .unwrap();
    };
    let stalled = |total_usec: u64| {
        let line = |kind| format!("{kind} avg10=0.00 avg60=0.00 avg300=0.00 total={total_usec}\n");
        let text = line("some") + &line("full");
        std::fs::write(host.tenant_dir(0).join("memory.pressure"), text).unwrap();
    };
    let memory_rows = |agent: &Agent| {
        let report = agent.status_report();
        let host_row = report
            .resources
            .into_iter()
            .find(|row| row.subject.resource == "memory");
        let tenant_row = report
            .tenants
            .into_iter()
            .find(|row| row.subject.resource == "memory");
        (host_row.unwrap(), tenant_row.unwrap())
    };
    meminfo(1024);
    agent.tick();
    let (memory, t0) = memory_rows(&agent);
    assert_eq!(
        memory.capacity,
        (4096.0 - 256.0) * 1048576.0,
        "less the default reserve"
    );
    assert_eq!(memory.used, Some(3072.0 * 1048576.0));
    assert!(!memory.contended, "3 GiB of 3.75 is 80%, under 90%");
    assert_eq!(t0.pressure, None, "one read is no interval");

    agent.tick();
    assert_eq!(memory_rows(&agent).1.pressure, Some(0.0));
    stalled(5_000_000);
    meminfo(256);
    agent.tick();
    let (memory, t0) = memory_rows(&agent);
    assert!(memory.contended, "3.75 GiB of 3.75 used");
    assert_eq!(
        t0.pressure,
        Some(1.0),
        "5 s stalled in a tick of microseconds"
    );
}

#[test]
fn the_parent_of_owned_tenants_holds_the_sum_of_their_memory_baselines() {
    let dir = tempfile::tempdir().unwrap();
    let (host, agent) = agent_over(dir.path(), 1);
    // The kernel makes a new group's files; on the fake tree, we do.
    for group in ["qosd.slice", "qosd.slice/cache", "qosd.slice/soft"] {
        let path = host.cgroup_root().join(group);
        std::fs::create_dir_all(&path).unwrap();
        crate::testing::write_files(&path, crate::testing::GROUP_FILES).unwrap();
    }
    let text = format!(
        "{}\n[tenants.cache]\nmemory = {{ baseline = \"300MiB\", burst = \"900MiB\" }}\n\
         [tenants.soft]\nmemory = {{ baseline = \"100MiB\", burst = \"900MiB\", protection = \"soft\" }}\n",
        host.config_toml()
    );
    let mut agent = agent;
    reconfigure(&mut agent, &text);
    agent.tick();
    let read = |path: &str| std::fs::read_to_string(host.cgroup_root().join(path)).unwrap();
    assert_eq!(read("qosd.slice/cache/memory.min"), "314572800");
    assert_eq!(read("qosd.slice/soft/memory.low"), "104857600");
    assert_eq!(
        read("qosd.slice/memory.min"),
        "314572800",
        "or cache's memory.min protects nothing"
    );
    assert_eq!(read("qosd.slice/memory.low"), "104857600");
    assert_eq!(
        read("qosd.slice/memory.high"),
        "max\n",
        "the parent is not limited"
    );
}
