//! The daemon: the tick loop (sample, decide, enforce, export), SIGHUP
//! reload (validate, then swap: a bad file keeps the old contracts), SIGTERM
//! shutdown that leaves limits in place, and systemd readiness and watchdog.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use sd_notify::NotifyState;
use tokio::signal::unix::{SignalKind, signal};
use tracing::{debug, error, info, warn};

use crate::cgroup::cpu::{CpuMax, DEFAULT_PERIOD_US, QUOTA_MIN_US};
use crate::cgroup::io::{DeviceNumber, IoWeightMode};
use crate::cgroup::{CgroupError, Controller, Group, Hierarchy};
use crate::config::{self, Config, Contract, Cores, HostFacts, Tenant};
use crate::config::{IoDimension, IoDimensions};
use crate::enforce::{CpuLimits, Enforcer, Writes};
use crate::metrics::{Metrics, TenantDiskSeries, TenantSeries};
use crate::policy::{self, Allocation, Claim, Resource};
use crate::procfs::{ProcError, ProcFs};
use crate::sample::{self, Rates, Snapshot, TenantRates, Unreadable, Wanted};

/// The controllers every tenant group gets, and the root must have.
const CONTROLLERS: &[Controller] = &[Controller::Cpu];
/// The controllers of a tenant with a memory contract.
const WITH_MEMORY: &[Controller] = &[Controller::Cpu, Controller::Memory];

fn controllers_for(tenant: &Tenant) -> &'static [Controller] {
    if tenant.memory.is_some() {
        WITH_MEMORY
    } else {
        CONTROLLERS
    }
}

mod classify;
mod disk;
mod memory;
mod net;
mod status;

#[derive(Debug, Clone)]
pub struct Options {
    pub config_path: PathBuf,
    pub dry_run: bool,
    pub once: bool,
    /// On shutdown, remove qosd's qdiscs and nftables table (by default
    /// shaping stays in force, like every other limit).
    pub cleanup: bool,
}

/// Runs the agent until SIGTERM/SIGINT (or after one tick with `once`),
/// serving `qosd status` on `status_socket` (not for a one-shot or dry run).
pub async fn run(options: Options, status_socket: &Path) -> anyhow::Result<()> {
    raise_open_files_limit();
    let proc = ProcFs::default();
    let facts = with_memory_total(HostFacts::of_this_host(online_cpus(&proc)?), &proc);
    let loaded = config::load(&options.config_path, &facts)?;
    for warning in &loaded.warnings {
        warn!("{}: {warning}", options.config_path.display());
    }
    let config = loaded.config;
    let hierarchy = Hierarchy::open(&config.agent.cgroup_root, CONTROLLERS)?;
    // Installed before the first tick: an early SIGHUP must not kill us.
    let signals = Signals::install()?;
    let metrics = Arc::new(Metrics::new()?);
    // A one-shot or dry run is a look beside the running service: it must
    // not fight it for the metrics port.
    let _server = if options.once || options.dry_run {
        None
    } else {
        Some(crate::metrics::serve(config.agent.metrics_listen, metrics.clone()).await?)
    };
    let mut agent = Agent::new(options, proc, hierarchy, config, metrics);
    if !agent.options.once && !agent.options.dry_run {
        // The groups first, so the listener has somewhere to move processes
        // to; the listener before the first tick's rescan, so a process
        // started between the two is not missed, and one rescan will do.
        agent.prepare_groups();
        agent.classification.listen(&agent.proc);
    }
    agent.tick();
    if agent.options.once {
        tokio::time::sleep(agent.config.agent.interval).await;
        agent.tick();
        return Ok(());
    }
    let status = match status::StatusSocket::bind(status_socket) {
        Ok(socket) => Some(socket),
        Err(error @ status::SocketError::InUse(_)) => return Err(error.into()),
        Err(error) => {
            warn!("{error}; `qosd status` will not reach this agent");
            None
        }
    };
    agent.serve_until_stopped(signals, status).await
}

/// The signals the daemon acts on.
struct Signals {
    hangup: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Self> {
        Ok(Signals {
            hangup: signal(SignalKind::hangup())?,
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }
}

/// Each tenant keeps a few cgroup files open (see `Group`); the usual soft
/// limit of 1024 descriptors would run out at a few hundred tenants.
pub fn raise_open_files_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let raised = getrlimit(Resource::RLIMIT_NOFILE)
        .and_then(|(_, hard)| setrlimit(Resource::RLIMIT_NOFILE, hard, hard));
    if let Err(error) = raised {
        warn!("cannot raise the open files limit: {error}");
    }
}

/// `facts` with the host's MemTotal, if /proc/meminfo can tell it (memory
/// baselines are then checked against it).
pub fn with_memory_total(facts: HostFacts, proc: &ProcFs) -> HostFacts {
    match proc.read_memory() {
        Ok(memory) => facts.with_memory_total(memory.total),
        Err(error) => {
            warn!("memory baselines are not checked against the host's memory: {error}");
            facts
        }
    }
}

fn online_cpus(proc: &ProcFs) -> anyhow::Result<f64> {
    let stat = proc
        .read_cpu_stat()
        .context("cannot count the online CPUs")?;
    Ok(f64::from(stat.online_cpus))
}

/// What qosd tracks for one tenant between ticks.
struct TenantState {
    tenant: Tenant,
    group: Group,
    /// Controllers are enabled and the group exists; otherwise retried each tick.
    ready: bool,
    /// The CPU limit (cores) in force, as qosd last set it.
    cpu_limit: Option<f64>,
    /// Disk limits in force, per device and dimension (bytes/s, IOs/s).
    disk_limits: HashMap<(DeviceNumber, IoDimension), f64>,
    series: TenantSeries,
    disk_series: Vec<(DeviceNumber, TenantDiskSeries)>,
    /// The memory counters last read (see `memory::MemorySeen`).
    memory_seen: memory::MemorySeen,
    /// An adopted group's absence was said (once, until it appears).
    said_missing: bool,
}

/// The control loop's state. `run` drives it; tests and benchmarks may
/// build one over a fake tree and call `tick` directly.
pub struct Agent {
    options: Options,
    proc: ProcFs,
    hierarchy: Hierarchy,
    config: Config,
    tenants: Vec<TenantState>,
    metrics: Arc<Metrics>,
    enforcer: Enforcer,
    previous: Option<Snapshot>,
    /// Taken by `probe` halfway between two ticks.
    midpoint: Option<Snapshot>,
    /// From the last two snapshots.
    rates: Option<Rates>,
    /// From the midpoint to the latest snapshot: who is active now.
    recent_rates: Option<Rates>,
    /// From the latest snapshot.
    online_cpus: f64,
    cpu_contended: bool,
    disk_contended: HashMap<(DeviceNumber, IoDimension), bool>,
    /// Declared devices absent from /proc/diskstats (said once).
    missing_devices: HashSet<DeviceNumber>,
    /// How devices and interfaces are looked up (on reload, and when a
    /// device's node is made again); fake ones in tests. Its `online_cpus`
    /// is not used: each reload reads the host's.
    host_lookups: HostFacts,
    /// Per declared device: whether `io.weight` (iocost) or `io.bfq.weight`
    /// also shares it, or `io.max` alone.
    io_weight_modes: HashMap<DeviceNumber, IoWeightMode>,
    net: net::NetControl,
    classification: classify::Classification,
    /// Ticks done, and when the last one ended (for `qosd status`).
    ticks: u64,
    last_tick: Option<Instant>,
}

impl Agent {
    pub fn new(
        options: Options,
        proc: ProcFs,
        hierarchy: Hierarchy,
        config: Config,
        metrics: Arc<Metrics>,
    ) -> Self {
        let enforcer = Enforcer::new(options.dry_run);
        let shaper = Box::new(crate::net::SystemShaper::default());
        let network = crate::net::Network::new(shaper, options.dry_run);
        let classification = classify::Classification::new(&config, &hierarchy);
        let mut agent = Agent {
            options,
            proc,
            hierarchy,
            config: config.clone(),
            tenants: Vec::new(),
            metrics,
            enforcer,
            previous: None,
            midpoint: None,
            rates: None,
            recent_rates: None,
            online_cpus: 0.0,
            cpu_contended: false,
            disk_contended: HashMap::new(),
            missing_devices: HashSet::new(),
            host_lookups: HostFacts::of_this_host(0.0),
            io_weight_modes: HashMap::new(),
            net: net::NetControl::new(network),
            classification,
            ticks: 0,
            last_tick: None,
        };
        agent.swap_config(config);
        agent
    }

    async fn serve_until_stopped(
        &mut self,
        mut signals: Signals,
        status: Option<status::StatusSocket>,
    ) -> anyhow::Result<()> {
        let (mut ticker, mut prober) = new_tickers(self.config.agent.interval);
        notify(&[NotifyState::Ready]);
        info!(
            "qosd running: {} tenants, tick {:?}, metrics on http://{}/metrics",
            self.tenants.len(),
            self.config.agent.interval,
            self.config.agent.metrics_listen
        );
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    self.tick();
                    // Pinged from the loop itself: a hung tick means no ping,
                    // and systemd restarts us.
                    notify(&[NotifyState::Watchdog]);
                }
                _ = prober.tick() => self.probe(),
                _ = signals.hangup.recv() => {
                    let interval = self.config.agent.interval;
                    self.reload();
                    if self.config.agent.interval != interval {
                        (ticker, prober) = new_tickers(self.config.agent.interval);
                    }
                }
                client = async {
                    match &status {
                        Some(socket) => socket.accept().await,
                        None => std::future::pending().await,
                    }
                } => status::answer(client, &self.status_report()),
                _ = signals.terminate.recv() => break,
                _ = signals.interrupt.recv() => break,
            }
        }
        notify(&[NotifyState::Stopping]);
        if self.options.cleanup {
            self.net.network.clean_up();
        }
        info!("qosd stopping; limits stay in place");
        Ok(())
    }

    fn reload(&mut self) {
        let path = self.options.config_path.clone();
        info!("reloading {}", path.display());
        let facts = |online_cpus| {
            let facts = HostFacts {
                online_cpus,
                ..self.host_lookups
            };
            match self.host_lookups.memory_total {
                Some(_) => facts,
                None => with_memory_total(facts, &self.proc),
            }
        };
        let loaded =
            online_cpus(&self.proc).and_then(|cpus| Ok(config::load(&path, &facts(cpus))?));
        match loaded {
            Ok(loaded) => {
                for warning in &loaded.warnings {
                    warn!("{}: {warning}", path.display());
                }
                self.swap_config(loaded.config);
                self.classification
                    .reloaded(&self.config, &self.hierarchy, &self.proc);
                // Applied now, on the latest rates, not a tick later.
                self.prepare_groups();
                self.control();
                self.control_network();
                self.control_memory();
                self.metrics
                    .config_reloads
                    .with_label_values(&["success"])
                    .inc();
                info!(
                    "reloaded {}: {} tenants",
                    path.display(),
                    self.tenants.len()
                );
            }
            Err(error) => {
                self.metrics
                    .config_reloads
                    .with_label_values(&["failure"])
                    .inc();
                error!("reload failed; the contracts in force stay: {error:#}");
            }
        }
    }

    /// Takes a validated configuration, keeping what is known of tenants
    /// that stay (same name and group) so their limits do not jump.
    fn swap_config(&mut self, mut new: Config) {
        keep_restart_only_settings(&self.config, &mut new);
        let mut old: HashMap<String, TenantState> = self
            .tenants
            .drain(..)
            .map(|t| (t.tenant.name.clone(), t))
            .collect();
        self.tenants = new
            .tenants
            .iter()
            .map(|tenant| {
                let group = self.hierarchy.group(&tenant.cgroup);
                match old.remove(&tenant.name) {
                    Some(kept) if kept.group == group => {
                        self.forget_dropped_disks(&kept.tenant, tenant);
                        // A new kind of contract may need a controller
                        // enabled: prepare the group again.
                        let ready =
                            kept.ready && controllers_for(&kept.tenant) == controllers_for(tenant);
                        TenantState {
                            tenant: tenant.clone(),
                            disk_series: self.disk_series(tenant),
                            ready,
                            ..kept
                        }
                    }
                    _ => TenantState {
                        tenant: tenant.clone(),
                        group,
                        ready: false,
                        cpu_limit: None,
                        disk_limits: HashMap::new(),
                        series: self.metrics.tenant(&tenant.name),
                        disk_series: self.disk_series(tenant),
                        memory_seen: memory::MemorySeen::default(),
                        said_missing: false,
                    },
                }
            })
            .collect();
        for (gone, state) in &old {
            info!("tenant {gone} left the configuration; its cgroup limits stay as they are");
            self.metrics.forget_tenant(gone);
            for contract in &state.tenant.disk {
                self.metrics.forget_tenant_disk(gone, &contract.device.name);
            }
        }
        let groups: Vec<&Group> = self.tenants.iter().map(|t| &t.group).collect();
        self.enforcer.retain(&groups);
        self.tenants.iter().for_each(publish_contract);
        for state in &self.tenants {
            memory::publish_memory_contract(state, &self.metrics);
        }
        self.net.reloaded(&new, &self.metrics);
        self.config = new;
        self.detect_io_weight_modes();
    }

    /// One pass of the control loop. Never fails: every problem is logged
    /// and counted, and the next tick tries again.
    /// Shapes the network with `shaper` (a fake one in tests).
    pub fn with_shaper(mut self, shaper: Box<dyn crate::net::Shaper>) -> Self {
        let network = crate::net::Network::new(shaper, self.options.dry_run);
        self.net = net::NetControl::new(network);
        self
    }

    /// Looks devices and interfaces up with `lookups` (a fake host's)
    /// instead of this host's.
    pub fn with_host_lookups(mut self, lookups: HostFacts) -> Self {
        self.host_lookups = lookups;
        self
    }

    pub fn tick(&mut self) {
        let started = Instant::now();
        self.prepare_groups();
        let Some(snapshot) = self.sample() else {
            return;
        };
        self.online_cpus = f64::from(snapshot.host_cpu.online_cpus);
        // A probe too close to the tick measures too short a time to tell.
        self.recent_rates = self
            .midpoint
            .take()
            .map(|midpoint| sample::rates(&midpoint, &snapshot))
            .filter(|recent| recent.elapsed >= self.config.agent.interval / 4);
        // The first snapshot gives no rates. Deciding on zero usage would
        // release every clamp for a tick after each restart, so wait.
        if let Some(earlier) = self.previous.replace(snapshot) {
            let later = self.previous.as_ref().unwrap_or(&earlier);
            self.rates = Some(sample::rates(&earlier, later));
            self.control();
            self.export();
        }
        // Not held back by the first tick: HTB holds the contracts without
        // rates, so the tree is built at start-up.
        self.control_network();
        self.control_memory();
        self.control_classification();
        self.metrics
            .tick_duration
            .observe(started.elapsed().as_secs_f64());
        self.ticks += 1;
        self.last_tick = Some(Instant::now());
    }

    /// Reads the tenants' usage halfway between two ticks, so that the next
    /// tick can tell who is active now from who was active early in the
    /// tick: a tenant that stopped is then released within a tick and a
    /// half, not two. Decides and writes nothing; a group that cannot be
    /// read is reported by the tick.
    pub fn probe(&mut self) {
        let started = Instant::now();
        self.midpoint = self.read_snapshot().ok().map(|(snapshot, _)| snapshot);
        self.metrics
            .probe_duration
            .observe(started.elapsed().as_secs_f64());
    }

    /// The host, and the ready tenants (with their io files where they
    /// have disk contracts); the groups that could not be read beside it.
    fn read_snapshot(&self) -> Result<(Snapshot, Vec<Unreadable>), ProcError> {
        let readable: Vec<Wanted> = self
            .tenants
            .iter()
            .filter(|t| t.ready)
            .map(|t| Wanted {
                name: t.tenant.name.clone(),
                group: t.group.clone(),
                io: !t.tenant.disk.is_empty(),
            })
            .collect();
        let disks = !self.config.host.disks.is_empty();
        sample::take(&self.proc, &readable, disks)
    }

    /// Reads the host and the ready tenants; `None` when the host itself
    /// cannot be read (the tick is skipped).
    fn sample(&mut self) -> Option<Snapshot> {
        match self.read_snapshot() {
            Ok((snapshot, unreadable)) => {
                for failure in unreadable {
                    self.group_failed(&failure.tenant, &failure.error);
                }
                Some(snapshot)
            }
            Err(error) => {
                error!("cannot sample the host, skipping this tick: {error}");
                None
            }
        }
    }

    /// Decides and enforces from the latest rates, if there are any yet.
    fn control(&mut self) {
        self.enforcer.begin_tick();
        if let Some(rates) = self.rates.take() {
            self.control_cpu(&rates);
            self.control_disks(&rates);
            self.rates = Some(rates);
        }
    }

    /// Drops the series of devices a kept tenant no longer has contracts on.
    fn forget_dropped_disks(&self, before: &Tenant, after: &Tenant) {
        for contract in &before.disk {
            if !after
                .disk
                .iter()
                .any(|c| c.device.name == contract.device.name)
            {
                self.metrics
                    .forget_tenant_disk(&before.name, &contract.device.name);
            }
        }
    }

    fn disk_series(&self, tenant: &Tenant) -> Vec<(DeviceNumber, TenantDiskSeries)> {
        tenant
            .disk
            .iter()
            .map(|c| {
                let contracted = IoDimensions {
                    read_bps: c.limits.read_bps.is_some(),
                    write_bps: c.limits.write_bps.is_some(),
                    read_iops: c.limits.read_iops.is_some(),
                    write_iops: c.limits.write_iops.is_some(),
                };
                let series = self
                    .metrics
                    .tenant_disk(&tenant.name, &c.device.name, contracted);
                (c.device.number, series)
            })
            .collect()
    }

    fn prepare_groups(&mut self) {
        for index in 0..self.tenants.len() {
            if self.tenants[index].ready {
                continue;
            }
            let state = &self.tenants[index];
            match self.prepare_group(state) {
                Ok(true) => {
                    info!(
                        "tenant {}: managing cgroup {}",
                        state.tenant.name,
                        state.group.path().display()
                    );
                    self.tenants[index].ready = true;
                    self.tenants[index].said_missing = false;
                }
                Ok(false) if !state.said_missing => {
                    let hint = config::slice_path_hint(&state.tenant.cgroup)
                        .map_or_else(String::new, |hint| format!(" ({hint})"));
                    warn!(
                        "tenant {}: cgroup {} does not exist (yet); retrying every tick{hint}",
                        state.tenant.name,
                        state.group.path().display()
                    );
                    self.tenants[index].said_missing = true;
                }
                Ok(false) => {}
                Err(error) => warn!("tenant {}: {error}", state.tenant.name),
            }
        }
    }

    /// Makes the group ready for control; `Ok(false)` while an adopted group
    /// does not exist.
    fn prepare_group(&self, state: &TenantState) -> Result<bool, CgroupError> {
        if self.options.dry_run {
            // Nothing is created or enabled; only an existing group can be read.
            return Ok(state.group.exists());
        }
        let prepared = if state.tenant.adopted {
            self.hierarchy
                .enable_for(&state.tenant.cgroup, controllers_for(&state.tenant))
        } else {
            self.hierarchy
                .ensure_group(&state.tenant.cgroup, controllers_for(&state.tenant))
        };
        match prepared {
            Ok(_) => Ok(true),
            Err(error) if error.is_vanished() => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// A group that vanished is normal (its service stopped): wait for it
    /// to come back. Anything else is counted as an error.
    fn group_failed(&mut self, tenant: &str, error: &CgroupError) {
        let Some(state) = self.tenants.iter_mut().find(|t| t.tenant.name == tenant) else {
            return;
        };
        if error.is_vanished() {
            // A file gone from a group that still exists: its controller was
            // turned off above it (systemd does so on daemon-reload when no
            // unit of a slice asks for it). Preparing the group again turns
            // it back on.
            let why = if state.group.exists() {
                "lost its controller files (a parent turned the controller off); enabling it again"
            } else {
                "vanished; waiting for it"
            };
            info!(
                "tenant {tenant}: cgroup {} {why}",
                state.group.path().display()
            );
            state.ready = false;
            state.cpu_limit = None;
            state.disk_limits.clear();
            state.memory_seen = memory::MemorySeen::default();
            // A group created again under the same name is a new group: its
            // files must be opened afresh and its defaults are not drift.
            state.group.close_files();
            self.enforcer.forget(&state.group);
        } else {
            self.metrics.enforcement_errors.inc();
            warn!("tenant {tenant}: {error}");
        }
    }

    /// Cores the tenants share: online CPUs minus `host.reserved_cpu`.
    fn cpu_capacity(&self) -> f64 {
        (self.online_cpus - self.config.host.reserved_cpu.get()).max(0.0)
    }

    fn control_cpu(&mut self, rates: &Rates) {
        let capacity = self.cpu_capacity();
        let controlled: Vec<(usize, Contract<Cores>)> = (0..self.tenants.len())
            .filter(|&i| self.tenants[i].ready)
            .filter_map(|i| Some((i, self.tenants[i].tenant.cpu?)))
            .collect();
        let claims: Vec<Claim> = controlled
            .iter()
            .map(|&(i, contract)| {
                let recent = self.recent_rates.as_ref();
                cpu_claim(&self.tenants[i], contract, rates, recent)
            })
            .collect();
        let resource = Resource {
            capacity,
            threshold: self.config.host.contention_threshold,
            measured: rates.host_cpu_busy_cores,
        };
        let allocation = policy::allocate(resource, &claims, self.cpu_contended);
        self.report_contention(&allocation, capacity, rates);
        self.cpu_contended = allocation.contended;
        let why = self.reason(&allocation, &controlled, capacity);
        let mut done = Writes::default();
        for (slot, &(index, contract)) in controlled.iter().enumerate() {
            done += self.apply_cpu_limit(index, contract, allocation.limits[slot], &why);
        }
        self.metrics.enforcement_writes.inc_by(done.writes);
        self.metrics
            .drift_corrections
            .inc_by(done.drift_corrections);
    }

    fn report_contention(&self, allocation: &Allocation, capacity: f64, rates: &Rates) {
        if allocation.contended != self.cpu_contended {
            let state = if allocation.contended {
                "contended"
            } else {
                "no longer contended"
            };
            info!(
                "cpu {state}: demand {:.2} of {capacity:.2} cores (host busy {:.2})",
                allocation.demand, rates.host_cpu_busy_cores
            );
        }
        let labels = ["cpu", ""];
        let gauge = |family: &prometheus::GaugeVec, value: f64| {
            family.with_label_values(&labels).set(value)
        };
        gauge(
            &self.metrics.resource_contended,
            f64::from(u8::from(allocation.contended)),
        );
        gauge(&self.metrics.resource_capacity, capacity);
        gauge(&self.metrics.resource_demand, allocation.demand);
    }

    /// Why limits are what they are, for the clamp and release log lines.
    fn reason(
        &self,
        allocation: &Allocation,
        controlled: &[(usize, Contract<Cores>)],
        capacity: f64,
    ) -> String {
        let load = format!("{:.2}/{capacity:.2} cores", allocation.demand);
        let below: Vec<&str> = allocation
            .below_baseline
            .iter()
            .map(|&slot| self.tenants[controlled[slot].0].tenant.name.as_str())
            .collect();
        explain("cpu", allocation.contended, &load, &below)
    }

    fn apply_cpu_limit(
        &mut self,
        index: usize,
        contract: Contract<Cores>,
        limit: f64,
        why: &str,
    ) -> Writes {
        let state = &self.tenants[index];
        let desired = CpuLimits {
            weight: policy::cpu_weight(contract.weight),
            max: cpu_max(limit, self.online_cpus),
        };
        match self.enforcer.apply_cpu(&state.group, desired) {
            Ok(done) => {
                let what = || format!("{} cpu.max", state.tenant.name);
                let cores = |v: f64| format!("{v:.2} cores");
                log_limit_change(what, state.cpu_limit, limit, in_cores(contract), why, cores);
                self.tenants[index].cpu_limit = Some(limit);
                done
            }
            Err(error) => {
                let name = state.tenant.name.clone();
                self.group_failed(&name, &error);
                Writes::default()
            }
        }
    }

    fn export(&self) {
        let Some(rates) = &self.rates else {
            return;
        };
        let metrics = &self.metrics;
        metrics.host_cpu_busy_cores.set(rates.host_cpu_busy_cores);
        let stall = |kind: &str, seconds: f64| {
            let labels = ["cpu", kind];
            metrics
                .host_pressure_stall_seconds
                .with_label_values(&labels)
                .inc_by(seconds);
        };
        stall("some", rates.host_cpu_stall_some_seconds);
        stall("full", rates.host_cpu_stall_full_seconds);
        for state in &self.tenants {
            export_tenant(state, rates);
        }
    }
}

/// The contract's series change only on reload, so they are set then, not
/// every tick.
fn publish_contract(state: &TenantState) {
    if let Some(contract) = state.tenant.cpu {
        let series = &state.series;
        series.cpu_baseline_cores.set(contract.baseline.get());
        series.cpu_burst_cores.set(contract.burst.get());
        series
            .cpu_weight
            .set(f64::from(policy::cpu_weight(contract.weight)));
    }
    for (contract, (_, series)) in state.tenant.disk.iter().zip(&state.disk_series) {
        for dimension in IoDimension::ALL {
            let Some(terms) = contract.limits.get(dimension) else {
                continue;
            };
            let gauges = [
                (&series.baseline, terms.baseline),
                (&series.burst, terms.burst),
            ];
            for (gauge, value) in gauges {
                if let Some(gauge) = gauge.get(dimension) {
                    gauge.set(value);
                }
            }
        }
    }
}

fn export_tenant(state: &TenantState, rates: &Rates) {
    let series = &state.series;
    if let Some(limit) = state.cpu_limit {
        series.cpu_limit_cores.set(limit);
    }
    let Some(tenant) = rates.tenants.get(&state.tenant.name) else {
        return;
    };
    export_disks(state, tenant, rates.elapsed);
    series.cpu_usage_seconds.inc_by(tenant.cpu_seconds);
    series
        .cpu_throttled_seconds
        .inc_by(tenant.cpu_throttled_seconds);
    series
        .cpu_stall_some_seconds
        .inc_by(tenant.cpu_stall_some_seconds);
    series
        .cpu_stall_full_seconds
        .inc_by(tenant.cpu_stall_full_seconds);
    let broken = state.tenant.cpu.is_some_and(|contract| {
        policy::contract_broken_under(
            tenant.cpu_cores,
            contract.baseline.get(),
            tenant.cpu_stall_fraction(rates.elapsed),
            state.cpu_limit,
        )
    });
    if broken {
        series
            .cpu_below_baseline_seconds
            .inc_by(rates.elapsed.as_secs_f64());
    }
}

fn export_disks(state: &TenantState, tenant: &TenantRates, elapsed: Duration) {
    let mut broken = false;
    for (contract, (device, series)) in state.tenant.disk.iter().zip(&state.disk_series) {
        let io = tenant.io.get(device).copied().unwrap_or_default();
        series.read_bytes.inc_by(io.done.read_bps);
        series.written_bytes.inc_by(io.done.write_bps);
        series.read_ios.inc_by(io.done.read_iops);
        series.write_ios.inc_by(io.done.write_iops);
        for dimension in IoDimension::ALL {
            let Some(terms) = contract.limits.get(dimension) else {
                continue;
            };
            let limit = state.disk_limits.get(&(*device, dimension)).copied();
            if let Some(gauge) = series.limit.get(dimension) {
                gauge.set(limit.unwrap_or(terms.burst));
            }
            let usage = *io.per_second.get(dimension);
            let stall = tenant.io_stall_fraction(elapsed);
            broken |= policy::contract_broken_under(usage, terms.baseline, stall, limit);
        }
    }
    if broken {
        state
            .series
            .disk_below_baseline_seconds
            .inc_by(elapsed.as_secs_f64());
    }
}

fn cpu_claim(
    state: &TenantState,
    contract: Contract<Cores>,
    rates: &Rates,
    recent: Option<&Rates>,
) -> Claim {
    let usage = |rates: &Rates| rates.tenants.get(&state.tenant.name).map(|r| r.cpu_cores);
    let measured = rates.tenants.get(&state.tenant.name);
    Claim {
        baseline: contract.baseline.get(),
        burst: contract.burst.get(),
        weight: contract.weight,
        usage: usage(rates).unwrap_or(0.0),
        recent_usage: recent.and_then(usage),
        limit: state.cpu_limit,
        stall: measured.map_or(0.0, |r| r.cpu_stall_fraction(rates.elapsed)),
    }
}

/// A limit of all the host's CPUs or more is no limit: "max".
fn cpu_max(limit_cores: f64, online_cpus: f64) -> CpuMax {
    if limit_cores >= online_cpus {
        return CpuMax::UNLIMITED;
    }
    let quota = (limit_cores * DEFAULT_PERIOD_US as f64).round() as u64;
    CpuMax {
        quota_us: Some(quota.max(QUOTA_MIN_US)),
        period_us: DEFAULT_PERIOD_US,
    }
}

/// Why limits are what they are, for the clamp and release log lines:
/// "cpu contended (1.96/2.00 cores), tenant web below baseline".
fn explain(resource: &str, contended: bool, load: &str, below: &[&str]) -> String {
    if !contended {
        return format!("{resource} not contended ({load})");
    }
    match below {
        [] => format!("{resource} contended ({load})"),
        [one] => format!("{resource} contended ({load}), tenant {one} below baseline"),
        many => format!(
            "{resource} contended ({load}), tenants {} below baseline",
            many.join(", ")
        ),
    }
}

/// Changes smaller than this share of the burst are not worth a log line.
const LOG_CHANGE_FRACTION: f64 = 0.005;

/// Logs a limit set for the first time, clamped or released. `what` names
/// the tenant and the knob ("batch cpu.max"); `show` formats a value.
fn log_limit_change(
    what: impl Fn() -> String,
    before: Option<f64>,
    after: f64,
    contract: Contract<f64>,
    why: &str,
    show: impl Fn(f64) -> String,
) {
    let epsilon = LOG_CHANGE_FRACTION * contract.burst;
    match before {
        None => info!(
            "set tenant {} to {} (baseline {}, burst {}): {why}",
            what(),
            show(after),
            show(contract.baseline),
            show(contract.burst)
        ),
        Some(before) if after < before - epsilon => {
            info!(
                "clamped tenant {} to {} (was {}): {why}",
                what(),
                show(after),
                show(before)
            )
        }
        Some(before) if after > before + epsilon => {
            info!(
                "released tenant {} to {} (was {}): {why}",
                what(),
                show(after),
                show(before)
            )
        }
        Some(_) => {}
    }
}

fn in_cores(contract: Contract<Cores>) -> Contract<f64> {
    Contract {
        baseline: contract.baseline.get(),
        burst: contract.burst.get(),
        weight: contract.weight,
    }
}

/// Settings bound at start-up (the cgroup mount, the metrics socket) cannot
/// change on reload; say so and keep the running ones.
fn keep_restart_only_settings(running: &Config, new: &mut Config) {
    let (old, next) = (&running.agent, &mut new.agent);
    if old.cgroup_root != next.cgroup_root {
        warn!(
            "agent.cgroup_root changed to {}: takes effect on restart; keeping {}",
            next.cgroup_root.display(),
            old.cgroup_root.display()
        );
        next.cgroup_root = old.cgroup_root.clone();
    }
    if old.metrics_listen != next.metrics_listen {
        warn!(
            "agent.metrics_listen changed to {}: takes effect on restart; keeping {}",
            next.metrics_listen, old.metrics_listen
        );
        next.metrics_listen = old.metrics_listen;
    }
}

/// The first tick comes one interval from now: the caller has just ticked.
/// The tick, and the probe halfway between two ticks (`Agent::probe`).
fn new_tickers(interval: Duration) -> (tokio::time::Interval, tokio::time::Interval) {
    let every = |first: Duration| {
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + first, interval);
        // After a slow tick, carry on at the normal pace rather than catching
        // up with a burst of ticks whose rates would be meaningless.
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker
    };
    (every(interval), every(interval / 2))
}

/// Tells systemd; a no-op when not run by systemd (NOTIFY_SOCKET unset).
fn notify(states: &[NotifyState]) {
    if let Err(error) = sd_notify::notify(states) {
        debug!("sd_notify failed: {error}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeHost;

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
        let host = FakeHost::create(&dir.join("host"), tenants).unwrap();
        let config_path = dir.join("qosd.toml");
        std::fs::write(&config_path, host.config_toml() + extra).unwrap();
        let facts = FakeHost::facts();
        let config = config::load(&config_path, &facts).unwrap().config;
        let options = Options {
            config_path,
            dry_run: false,
            once: false,
            cleanup: false,
        };
        let metrics = Arc::new(Metrics::new().unwrap());
        let agent = Agent::new(
            options,
            ProcFs::at(host.proc_root()),
            Hierarchy::at(host.cgroup_root()),
            config,
            metrics,
        )
        .with_host_lookups(FakeHost::facts());
        (host, agent)
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
        let (mut host, mut agent) = agent_over(dir.path(), 2);
        decide_once(&mut host, &mut agent);
        // Baselines 0.02 and 0.01 cores: weights 2 and 1. Both saturate the
        // host, so the spare is split 2:1 and neither may burst to 2 cores.
        assert_eq!(file(&host, 0, "cpu.weight"), "2");
        assert_eq!(file(&host, 1, "cpu.weight"), "1");
        let (first, second) = (quota_us(&host, 0), quota_us(&host, 1));
        assert!(first + second <= 200_000, "{first} + {second}");
        assert!(first > second, "{first} vs {second}");
    }

    #[test]
    fn drift_is_put_back_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let (mut host, mut agent) = agent_over(dir.path(), 2);
        decide_once(&mut host, &mut agent);
        std::fs::write(host.tenant_dir(0).join("cpu.weight"), "100\n").unwrap();
        tick_until_drift_checked(&mut host, &mut agent);
        assert_eq!(file(&host, 0, "cpu.weight"), "2");
        assert_eq!(agent.metrics.drift_corrections.get(), 1);
    }

    #[test]
    fn a_broken_reload_keeps_the_contracts_in_force_and_is_counted() {
        let dir = tempfile::tempdir().unwrap();
        let (mut host, mut agent) = agent_over(dir.path(), 2);
        decide_once(&mut host, &mut agent);
        std::fs::write(
            &agent.options.config_path,
            "[tenants.t0]\ncpu = { baselin = 1 }\n",
        )
        .unwrap();
        agent.reload();
        agent.tick();
        assert_eq!(agent.tenants.len(), 2, "old tenants dropped");
        assert_eq!(file(&host, 0, "cpu.weight"), "2");
        let failures = agent
            .metrics
            .config_reloads
            .with_label_values(&["failure"])
            .get();
        assert_eq!(failures, 1);
    }

    #[test]
    fn a_good_reload_applies_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let (mut host, mut agent) = agent_over(dir.path(), 2);
        decide_once(&mut host, &mut agent);
        let text = host.config_toml().replace("burst = 2.0", "burst = 0.5");
        std::fs::write(&agent.options.config_path, text).unwrap();
        agent.reload();
        assert_eq!(file(&host, 0, "cpu.max"), "50000 100000");
        let successes = agent
            .metrics
            .config_reloads
            .with_label_values(&["success"])
            .get();
        assert_eq!(successes, 1);
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
        let (mut host, mut agent) = agent_over(dir.path(), 4);
        decide_once(&mut host, &mut agent);
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
        let dir = tempfile::tempdir().unwrap();
        // Two tenants per disk, so that both are clamped.
        let (mut host, mut agent) = agent_over(dir.path(), 4);
        decide_once(&mut host, &mut agent);
        let before = file(&host, 0, "io.max");
        assert!(before.contains("rbps="), "{before}");
        std::fs::write(host.tenant_dir(0).join("io.max"), "").unwrap();
        tick_until_drift_checked(&mut host, &mut agent);
        assert_eq!(file(&host, 0, "io.max"), before);
        assert_eq!(agent.metrics.drift_corrections.get(), 1);
    }

    #[test]
    fn a_vanished_disk_drops_its_limits_and_the_rest_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let (mut host, mut agent) = agent_over(dir.path(), 4);
        decide_once(&mut host, &mut agent);
        let vdb = "254:16".parse().unwrap();
        assert!(
            agent.tenants[1]
                .disk_limits
                .keys()
                .any(|(device, _)| *device == vdb)
        );
        host.remove_disk("254:16");
        for _ in 0..3 {
            host.advance().unwrap();
            agent.tick();
        }
        assert!(agent.missing_devices.contains(&vdb));
        assert!(
            agent.tenants[1].disk_limits.is_empty(),
            "limits on the gone disk kept"
        );
        assert!(
            !agent.tenants[0].disk_limits.is_empty(),
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
    fn agent_with_link(dir: &std::path::Path) -> (FakeHost, Agent, crate::net::fake::FakeShaper) {
        let (host, agent) = agent_over(dir, 2);
        let shaper = crate::net::fake::FakeShaper::default();
        shaper.kernel.lock().unwrap().add_link("eth0");
        let mut agent = agent.with_shaper(Box::new(shaper.clone()));
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
        let (mut host, mut agent) = agent_over(dir.path(), 2);
        decide_once(&mut host, &mut agent);
        let report = agent.status_report();
        assert_eq!(report.tick, 2);
        let cpu = &report.resources[0];
        assert_eq!((cpu.resource.as_str(), cpu.capacity), ("cpu", 2.0));
        assert!(cpu.contended, "both fake tenants saturate the host");
        let t0_cpu = report
            .tenants
            .iter()
            .find(|row| row.tenant == "t0" && row.resource == "cpu")
            .unwrap();
        assert_eq!((t0_cpu.baseline, t0_cpu.burst), (0.02, 2.0));
        assert!(t0_cpu.usage.is_some_and(|usage| usage > 0.0), "{t0_cpu:?}");
        let disk_rows = report.tenants.iter().filter(|row| row.resource == "disk");
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
            agent.rates.as_ref().unwrap(),
            agent.recent_rates.as_ref().unwrap(),
        );
        assert!(cores(whole, "t1") > 0.0 && cores(recent, "t0") > 0.0);
        assert_eq!(cores(recent, "t1"), 0.0, "t1 stopped after the probe");

        host.advance().unwrap();
        agent.probe();
        agent.tick();
        assert!(agent.recent_rates.is_none(), "a probe just before the tick");
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
        let sent = agent
            .metrics
            .network_transmit_bytes
            .with_label_values(&["t0", "eth0"]);
        assert_eq!(sent.get(), 30_000.0);
        let baseline = agent
            .metrics
            .network_baseline_bytes
            .with_label_values(&["t0", "eth0"]);
        assert_eq!(baseline.get(), 25e6 / 8.0);
        let tc_runs = || {
            agent
                .metrics
                .shaper_invocations
                .with_label_values(&["tc"])
                .get()
        };
        assert_eq!(tc_runs(), 1, "a quiet tick runs no tc");
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
        assert_eq!(
            agent
                .metrics
                .shaper_invocations
                .with_label_values(&["tc"])
                .get(),
            2
        );
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
        let baseline = agent
            .metrics
            .memory_baseline_bytes
            .with_label_values(&["t0"]);
        assert_eq!(baseline.get(), 314_572_800.0);
        std::fs::write(host.tenant_dir(0).join("memory.current"), "5000\n").unwrap();
        std::fs::write(host.tenant_dir(0).join("memory.min"), "0\n").unwrap();
        tick_until_drift_checked(&mut host, &mut agent);
        assert_eq!(file(&host, 0, "memory.min"), "314572800");
        assert!(agent.metrics.drift_corrections.get() >= 1);
        let usage = agent.metrics.memory_usage_bytes.with_label_values(&["t0"]);
        assert_eq!(usage.get(), 5000.0);
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
            std::fs::write(host.proc_root().join("meminfo"), text).unwrap();
        };
        let stalled = |total_usec: u64| {
            let line =
                |kind| format!("{kind} avg10=0.00 avg60=0.00 avg300=0.00 total={total_usec}\n");
            let text = line("some") + &line("full");
            std::fs::write(host.tenant_dir(0).join("memory.pressure"), text).unwrap();
        };
        let memory_rows = |agent: &Agent| {
            let report = agent.status_report();
            let host_row = report
                .resources
                .into_iter()
                .find(|row| row.resource == "memory");
            let tenant_row = report
                .tenants
                .into_iter()
                .find(|row| row.resource == "memory");
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
}
