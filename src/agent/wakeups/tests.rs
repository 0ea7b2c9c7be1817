use std::path::Path;
use std::time::Duration;

use super::*;
use crate::cgroup::io::DeviceNumber;
use crate::config::{IoDimension, IoDimensions};
use crate::net::fake::FakeShaper;
use crate::procfs::{HostCpuStat, HostCpuTimes};
use crate::sample::{IoRates, MemorySample, TenantRates, TenantSample};
use crate::testing::{FakeHost, fake_agent, options};

const CPU: PressureResource = PressureResource::Cpu;
const IO: PressureResource = PressureResource::Io;
const MEMORY: PressureResource = PressureResource::Memory;
const VDA: DeviceNumber = DeviceNumber {
    major: 254,
    minor: 0,
};

#[test]
fn the_probe_releases_when_the_host_went_idle_while_someone_is_held() {
    assert!(release(true, false, 0.5));
    assert!(release(true, false, SPARE_CORES));
    assert!(
        !release(true, false, 0.05),
        "idle as before: nobody went quiet"
    );
}

#[test]
fn nobody_held_or_limits_just_changed_means_no_release() {
    assert!(!release(false, false, 1.0), "nobody to release");
    assert!(
        !release(true, true, 1.0),
        "the tick's own clamps made the idle time"
    );
}

/// One tenant "web" with a CPU baseline of 1 core, 10 MiB/s of reads on
/// the fake vda and 100 MiB of memory.
fn web() -> Tenant {
    let dir = tempfile::tempdir().unwrap();
    let host = FakeHost::create(dir.path(), 0).unwrap();
    let text = host.config_toml()
        + "\n[tenants.web]\ncgroup = \"web\"\ncpu = { baseline = 1.0, burst = 2.0 }\n\
           disk = [{ device = \"254:0\", read_bps = { baseline = \"10MiB/s\", burst = \"50MiB/s\" }, \
           write_bps = { baseline = 0, burst = \"50MiB/s\" } }]\n\
           memory = { baseline = \"100MiB\", burst = \"200MiB\" }\n";
    let loaded = crate::config::parse(&text, Path::new("t.toml"), &FakeHost::facts()).unwrap();
    loaded.config.tenants.into_iter().next().unwrap()
}

/// Rates where web used `cores` and read `read_bps` from vda.
fn rates(cores: f64, read_bps: f64) -> Rates {
    let per_second = IoDimensions {
        read_bps,
        ..IoDimensions::default()
    };
    let io = [(
        VDA,
        IoRates {
            per_second,
            ..IoRates::default()
        },
    )]
    .into();
    let web = TenantRates {
        cpu_cores: cores,
        io,
        ..TenantRates::default()
    };
    Rates {
        tenants: [("web".to_owned(), web)].into(),
        ..Rates::default()
    }
}

fn sample_with_memory(current: u64) -> Sample {
    let memory = MemorySample {
        current,
        ..MemorySample::default()
    };
    let web = TenantSample {
        memory: Some(memory),
        ..TenantSample::default()
    };
    Sample {
        taken: Instant::now(),
        host_cpu: HostCpuStat::default(),
        host_cpu_pressure: None,
        disks: Default::default(),
        host_memory: None,
        links: Default::default(),
        tenants: [("web".to_owned(), web)].into(),
    }
}

#[test]
fn below_its_baseline_a_tenant_is_a_victim_at_or_near_it_held() {
    let web = web();
    let of = |resource, rates: &Rates| standing(&web, resource, (Some(rates), None), unlimited);
    assert_eq!(of(CPU, &rates(0.3, 0.0)), Standing::Victim);
    assert_eq!(of(CPU, &rates(0.97, 0.0)), Standing::Held);
    // Zero-baseline dimensions (writes here) say nothing either way.
    assert_eq!(of(IO, &rates(0.0, 1_048_576.0)), Standing::Victim);
    assert_eq!(of(IO, &rates(0.0, 20.0 * 1_048_576.0)), Standing::Held);
    let mib = 1_048_576;
    let memory = |current| {
        let sample = sample_with_memory(current);
        standing(&web, MEMORY, (None, Some(&sample)), unlimited)
    };
    assert_eq!(memory(10 * mib), Standing::Victim);
    assert_eq!(memory(150 * mib), Standing::Held);
}

fn unlimited(_: Dimension) -> Option<f64> {
    None
}

#[test]
fn below_its_baseline_but_pressing_on_its_own_limit_a_tenant_is_held() {
    let web = web();
    // 0.93 of its 1-core baseline: a victim, unless held at 1 core by its
    // own cpu.max (throttling shows as pressure).
    let at = |cores| move |dimension| (dimension == Dimension::Cpu).then_some(cores);
    let cpu = rates(0.93, 0.0);
    let of = |limit| standing(&web, CPU, (Some(&cpu), None), limit);
    assert_eq!(of(at(1.0)), Standing::Held);
    assert_eq!(of(at(1.5)), Standing::Victim, "far below its limit");
    let read = |dimension| match dimension {
        Dimension::Disk(VDA, IoDimension::ReadBps) => Some(10.0 * 1_048_576.0),
        _ => None,
    };
    let reads = rates(0.0, 9.2 * 1_048_576.0);
    let measured = (Some(&reads), None);
    assert_eq!(standing(&web, IO, measured, read), Standing::Held);
    assert_eq!(standing(&web, IO, measured, unlimited), Standing::Victim);
}

#[test]
fn a_tenant_not_measured_yet_is_a_victim() {
    let web = web();
    for resource in [CPU, IO, MEMORY] {
        let nothing = (None, None);
        assert_eq!(
            standing(&web, resource, nothing, unlimited),
            Standing::Victim
        );
        let others = Rates::default();
        assert_eq!(
            standing(&web, resource, (Some(&others), None), unlimited),
            Standing::Victim
        );
    }
}

#[test]
fn victims_may_be_where_there_is_a_baseline() {
    let mut web = web();
    assert_eq!(baselines(&web).collect::<Vec<_>>(), [CPU, IO, MEMORY]);
    web.memory.as_mut().unwrap().baseline = 0;
    web.disk.clear();
    assert_eq!(baselines(&web).collect::<Vec<_>>(), [CPU]);
    web.cpu.as_mut().unwrap().baseline = crate::config::Cores::new(0.0).unwrap();
    assert_eq!(baselines(&web).count(), 0);
}

/// web, and a copy of it named "batch", both ready.
fn managed_pair() -> Vec<Managed> {
    let hierarchy = crate::cgroup::Hierarchy::at("/cg");
    let mut batch = web();
    batch.name = "batch".to_owned();
    [web(), batch]
        .into_iter()
        .map(|tenant| Managed {
            group: hierarchy.group(Path::new(&tenant.name)),
            tenant,
            ready: true,
        })
        .collect()
}

/// Samples whose rates have web and batch at these cores.
fn samples_of(web: f64, batch: f64) -> Samples {
    let of = |cores| TenantRates {
        cpu_cores: cores,
        ..TenantRates::default()
    };
    let rates = Rates {
        tenants: [("web".to_owned(), of(web)), ("batch".to_owned(), of(batch))].into(),
        ..Rates::default()
    };
    Samples {
        rates: Some(rates),
        ..Samples::default()
    }
}

#[test]
fn a_tenant_not_measured_yet_gets_every_trigger_it_may_need() {
    let tenants = managed_pair();
    let all = wanted(&tenants, &Samples::default(), &Enforcer::new(false));
    assert_eq!(
        all,
        [
            (0, CPU),
            (0, IO),
            (0, MEMORY),
            (1, CPU),
            (1, IO),
            (1, MEMORY)
        ]
    );
}

#[test]
fn only_victims_have_triggers() {
    let mut tenants = managed_pair();
    let cpu_of = |tenants: &[Managed], samples| -> Vec<_> {
        let wanted = wanted(tenants, &samples, &Enforcer::new(false));
        wanted.into_iter().filter(|w| w.1 == CPU).collect()
    };
    // At or above their baseline of 1 core: held, whatever they stall.
    assert!(cpu_of(&tenants, samples_of(1.2, 1.0)).is_empty());
    assert_eq!(cpu_of(&tenants, samples_of(0.3, 1.0)), [(0, CPU)]);
    // Neither did disk I/O, and no memory was sampled: victims there.
    assert_eq!(
        wanted(&tenants, &samples_of(1.2, 1.0), &Enforcer::new(false)).len(),
        4
    );
    tenants[0].ready = false;
    assert_eq!(
        wanted(&tenants, &Samples::default(), &Enforcer::new(false)).len(),
        3
    );
}

#[test]
fn past_the_cap_busy_tenants_come_first() {
    // 60 idle copies of web, then web and batch (which used a CPU): 186
    // victims' resources, more than MAX_TRIGGERS.
    let hierarchy = crate::cgroup::Hierarchy::at("/cg");
    let mut tenants: Vec<Managed> = (0..60)
        .map(|i| {
            let mut tenant = web();
            tenant.name = format!("idle{i}");
            Managed {
                group: hierarchy.group(Path::new(&tenant.name)),
                tenant,
                ready: true,
            }
        })
        .collect();
    tenants.extend(managed_pair());
    let all = wanted(&tenants, &samples_of(0.3, 0.2), &Enforcer::new(false));
    assert!(all.len() > MAX_TRIGGERS, "{}", all.len());
    let first: Vec<usize> = all.iter().take(6).map(|&(index, _)| index).collect();
    assert_eq!(first, [60, 60, 60, 61, 61, 61], "web and batch first");
}

fn fake_host_agent(dir: &Path) -> (FakeHost, Agent) {
    let host = FakeHost::create(&dir.join("host"), 2).unwrap();
    let config_path = dir.join("qosd.toml");
    std::fs::write(&config_path, host.config_toml()).unwrap();
    let config = crate::config::load(&config_path, &FakeHost::facts())
        .unwrap()
        .config;
    let shaper = Box::new(FakeShaper::default());
    let (agent, _) = fake_agent(&host, config, options(config_path), shaper);
    (host, agent)
}

#[tokio::test]
async fn where_triggers_are_not_supported_the_loop_keeps_to_its_tick() {
    let dir = tempfile::tempdir().unwrap();
    let (host, mut agent) = fake_host_agent(dir.path());
    agent.tick();
    let pressure = std::fs::read_to_string(host.tenant_dir(0).join("cpu.pressure")).unwrap();
    // The fake tree is tmpfs: not a kernel pressure file.
    agent.start_wakeups();
    assert_eq!(agent.wakeups.mode, Mode::Unsupported);
    assert!(agent.wakeups.armed.is_empty());
    let after = std::fs::read_to_string(host.tenant_dir(0).join("cpu.pressure")).unwrap();
    assert_eq!(after, pressure, "a fake pressure file was written to");
    agent.tick();
    assert_eq!(agent.wakeups.mode, Mode::Unsupported);
    assert!(agent.wakeups.armed.is_empty());
}

#[tokio::test]
async fn a_dry_run_arms_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (_host, mut agent) = fake_host_agent(dir.path());
    agent.options.dry_run = true;
    agent.start_wakeups();
    assert_eq!(agent.wakeups.mode, Mode::Off);
}

/// A trigger for tenant t0's `resource` as `arm` would keep it, with a
/// task that never fires: its events are the test's calls to `woken`.
fn fake_trigger(agent: &mut Agent, resource: PressureResource) -> u64 {
    let wakeups = &mut agent.wakeups;
    let id = wakeups.next_id;
    wakeups.next_id += 1;
    let task = tokio::spawn(std::future::pending::<()>()).abort_handle();
    let armed = Armed {
        tenant: "t0".to_owned(),
        group: agent.tenants[0].group.path().to_owned(),
        resource,
        task,
    };
    wakeups.armed.insert(id, armed);
    id
}

fn wakeups(agent: &Agent, cause: &str) -> u64 {
    agent.metrics.wakeups.with_label_values(&[cause]).get()
}

#[tokio::test]
async fn a_wake_up_probes_then_ticks_once_and_later_events_join_it() {
    let dir = tempfile::tempdir().unwrap();
    let (_host, mut agent) = fake_host_agent(dir.path());
    agent.tick();
    let id = fake_trigger(&mut agent, CPU);
    let before = Instant::now();
    // No rates yet: t0 is taken for a victim.
    let at = agent.woken(id).expect("a victim's event schedules a tick");
    assert!(at >= before + JUDGE && at <= Instant::now() + JUDGE);
    assert!(
        agent.samples.midpoint.is_some(),
        "the wake-up probes at once"
    );
    assert_eq!(
        agent.woken(id),
        None,
        "an event while a tick is pending joins it"
    );
    assert_eq!(wakeups(&agent, WAKEUP_PRESSURE_IGNORED), 1);
    let ticks = agent.ticks;
    agent.wakeup_tick();
    assert_eq!(agent.ticks, ticks + 1);
    assert_eq!(agent.wakeups.pending_at(), None);
    assert_eq!(wakeups(&agent, WAKEUP_PRESSURE), 1);
    let reactions = agent.metrics.reaction_seconds.with_label_values(&["cpu"]);
    assert_eq!(reactions.get_sample_count(), 1);
    // Nothing pending: a second pressure tick does nothing.
    agent.wakeup_tick();
    assert_eq!(agent.ticks, ticks + 1);
}

#[tokio::test]
async fn a_trigger_dropped_since_its_event_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let (_host, mut agent) = fake_host_agent(dir.path());
    agent.tick();
    let io = fake_trigger(&mut agent, IO);
    agent.wakeups.armed.remove(&io);
    assert_eq!(agent.woken(io), None);
    assert_eq!(wakeups(&agent, WAKEUP_PRESSURE_IGNORED), 1);
    assert_eq!(agent.wakeups.pending_at(), None);
}

fn host_at(taken: Instant, busy_ticks: u64, total_ticks: u64) -> Sample {
    Sample {
        taken,
        host_cpu: HostCpuStat {
            times: HostCpuTimes {
                busy_ticks,
                total_ticks,
            },
            online_cpus: 2,
        },
        ..sample_with_memory(0)
    }
}

/// An agent after a tick that found 1.9 cores busy and web throttled, and
/// a probe 500 ms later that found 1.0 core idle since.
fn probed_after_a_quiet(dir: &Path) -> Agent {
    let (_host, mut agent) = fake_host_agent(dir);
    agent.wakeups.mode = Mode::On;
    let start = Instant::now();
    let throttled = TenantRates {
        cpu_throttled_seconds: 0.2,
        ..TenantRates::default()
    };
    agent.samples = Samples {
        latest: Some(host_at(start, 1000, 2000)),
        midpoint: Some(host_at(start + Duration::from_millis(500), 1050, 2100)),
        rates: Some(Rates {
            host_cpu_busy_cores: 1.9,
            tenants: [("web".to_owned(), throttled)].into(),
            ..Rates::default()
        }),
        ..Samples::default()
    };
    agent
}

#[tokio::test]
async fn a_probe_that_finds_the_host_gone_quiet_schedules_a_release_tick() {
    let dir = tempfile::tempdir().unwrap();
    let mut agent = probed_after_a_quiet(dir.path());
    let at = agent.released(Sampled::Probe).expect("a release tick");
    assert_eq!(at, agent.samples.midpoint.as_ref().unwrap().taken + JUDGE);
    assert_eq!(agent.released(Sampled::Probe), None, "one at a time");
    agent.wakeup_tick();
    assert_eq!(wakeups(&agent, WAKEUP_RELEASE), 1);
    assert_eq!(wakeups(&agent, WAKEUP_PRESSURE), 0);
    let reactions = agent.metrics.reaction_seconds.with_label_values(&["cpu"]);
    assert_eq!(reactions.get_sample_count(), 0, "a release is no reaction");
}

#[tokio::test]
async fn a_tick_whose_second_part_was_idler_than_its_first_schedules_a_release_tick() {
    let dir = tempfile::tempdir().unwrap();
    let mut agent = probed_after_a_quiet(dir.path());
    // The first part 0.1 core idle, the part since the probe 1.0; the tick
    // took the probe's sample.
    agent.samples.midpoint = None;
    agent.samples.first_part_idle = Some(0.1);
    agent.samples.recent = Some(Rates {
        host_cpu_busy_cores: 1.0,
        ..Rates::default()
    });
    let before = Instant::now();
    let at = agent.released(Sampled::Tick).expect("a release tick");
    assert!(at >= before + JUDGE && at <= Instant::now() + JUDGE);
    agent.wakeups.pending = None;
    agent.samples.first_part_idle = Some(0.95);
    assert_eq!(agent.released(Sampled::Tick), None, "as idle as before");
}

#[tokio::test]
async fn no_release_after_a_tick_that_changed_limits_or_when_not_serving() {
    let dir = tempfile::tempdir().unwrap();
    let mut agent = probed_after_a_quiet(dir.path());
    let group = agent.tenants[0].group.clone();
    let capped = crate::enforce::CpuLimits {
        weight: 100,
        max: crate::cgroup::cpu::CpuMax {
            quota_us: Some(12_345),
            period_us: 100_000,
        },
        burst_us: 0,
    };
    agent.enforcer.apply_cpu(&group, capped).unwrap();
    assert_eq!(agent.released(Sampled::Probe), None);
    agent.enforcer.begin_tick();
    agent.wakeups.mode = Mode::Off;
    assert_eq!(agent.released(Sampled::Probe), None);
    // Releasing needs no trigger.
    agent.wakeups.mode = Mode::Unsupported;
    assert!(agent.released(Sampled::Probe).is_some());
}
