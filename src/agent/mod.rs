//! The daemon: the tick loop (sample, decide, enforce, export) over the
//! resource controllers of `control`, woken between ticks by the tenants'
//! PSI triggers (`wakeups`), SIGHUP reload (validate, then swap: a
//! bad file keeps the old contracts), SIGTERM shutdown that leaves limits in
//! place, and systemd readiness and watchdog.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use tracing::{error, warn};

use crate::cgroup::Hierarchy;
use crate::config::{self, Config, HostFacts};
use crate::control::{self, Managed, Outcome, ResourceControl, Tick};
use crate::enforce::Enforcer;
use crate::metrics::Metrics;
use crate::net::Shaper;
use crate::procfs::{ProcError, ProcFs};
use crate::sample::{self, HostWanted, Rates, Sample, Unreadable, Wanted};

mod classify;
mod error;
mod groups;
mod reload;
mod serve;
mod status;
#[cfg(test)]
mod tests;
mod wakeups;

pub use error::AgentError;

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
pub async fn run(options: Options, status_socket: &Path) -> Result<(), AgentError> {
    raise_open_files_limit();
    let proc = ProcFs::default();
    let facts = crate::host::facts(&proc)?;
    let loaded = config::load(&options.config_path, &facts)?;
    for warning in &loaded.warnings {
        warn!("{}: {warning}", options.config_path.display());
    }
    let config = loaded.config;
    let hierarchy = Hierarchy::open(&config.agent.cgroup_root, control::ROOT_CONTROLLERS)?;
    // Installed before the first tick: an early SIGHUP must not kill us.
    let signals = serve::Signals::install()?;
    let metrics = Arc::new(Metrics::new().map_err(AgentError::Metrics)?);
    // A one-shot or dry run is a look beside the running service: it must
    // not fight it for the metrics port.
    let _server = if options.once || options.dry_run {
        None
    } else {
        let listen = config.agent.metrics_listen;
        let served = crate::metrics::serve(listen, metrics.clone()).await;
        Some(served.map_err(AgentError::Metrics)?)
    };
    let mut agent = Agent::new(options, proc, hierarchy, config, metrics)?;
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
    agent.serve_until_stopped(signals, status).await;
    Ok(())
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

/// The samples the tick decides on, and the rates between them.
#[derive(Default)]
struct Samples {
    /// The sample before `latest`.
    previous: Option<Sample>,
    latest: Option<Sample>,
    /// Taken by `probe` halfway between two ticks.
    midpoint: Option<Sample>,
    /// From `previous` to `latest`.
    rates: Option<Rates>,
    /// From the midpoint to `latest`: who is active now.
    recent: Option<Rates>,
    /// The host's idle cores from `previous` to the midpoint, the first part
    /// of the last tick: what the release rule compares `recent` with.
    first_part_idle: Option<f64>,
}

/// The control loop's state. `run` drives it; tests and benchmarks may
/// build one over a fake tree and call `tick` directly.
pub struct Agent {
    options: Options,
    proc: ProcFs,
    hierarchy: Hierarchy,
    config: Config,
    tenants: Vec<Managed>,
    controllers: Vec<Box<dyn ResourceControl>>,
    metrics: Arc<Metrics>,
    enforcer: Enforcer,
    samples: Samples,
    /// How devices and interfaces are looked up on reload; fake ones in
    /// tests. Its `online_cpus` is not used: each reload reads the host's.
    host_lookups: HostFacts,
    groups: groups::GroupWatch,
    classification: classify::Classification,
    /// PSI triggers, when the loop serves them.
    wakeups: wakeups::Wakeups,
    /// Ticks done, and when the last one ended (for `qosd status`).
    ticks: u64,
    last_tick: Option<Instant>,
}

/// The tick's view for the controllers, from the agent's fields (a
/// function, not a method, so the controllers can be borrowed beside it).
fn view<'a>(
    (config, tenants, hierarchy): (&'a Config, &'a [Managed], &'a Hierarchy),
    samples: &'a Samples,
) -> Option<Tick<'a>> {
    Some(Tick {
        config,
        tenants,
        hierarchy,
        sample: samples.latest.as_ref()?,
        previous: samples.previous.as_ref(),
        rates: samples.rates.as_ref(),
        recent: samples.recent.as_ref(),
    })
}

impl Agent {
    pub fn new(
        options: Options,
        proc: ProcFs,
        hierarchy: Hierarchy,
        config: Config,
        metrics: Arc<Metrics>,
    ) -> Result<Self, AgentError> {
        let shaper = Box::new(crate::net::SystemShaper::default());
        let lookups = crate::host::lookups();
        Self::with_host(options, (proc, hierarchy, lookups), config, metrics, shaper)
    }

    /// An agent over the given host: its /proc, cgroup tree and look-ups
    /// (fake ones in tests), shaping links with `shaper`.
    pub fn with_host(
        options: Options,
        (proc, hierarchy, host_lookups): (ProcFs, Hierarchy, HostFacts),
        config: Config,
        metrics: Arc<Metrics>,
        shaper: Box<dyn Shaper>,
    ) -> Result<Self, AgentError> {
        let controllers = control::controllers(&metrics, shaper, options.dry_run, &host_lookups)
            .map_err(AgentError::Metrics)?;
        let classification = classify::Classification::new(&config, &hierarchy);
        let mut agent = Agent {
            enforcer: Enforcer::new(options.dry_run),
            options,
            proc,
            hierarchy,
            config: config.clone(),
            tenants: Vec::new(),
            controllers,
            metrics,
            samples: Samples::default(),
            host_lookups,
            groups: groups::GroupWatch::default(),
            classification,
            wakeups: wakeups::Wakeups::new(),
            ticks: 0,
            last_tick: None,
        };
        agent.swap_config(config);
        Ok(agent)
    }

    /// One pass of the control loop. Never fails: every problem is logged
    /// and counted, and the next tick tries again.
    pub fn tick(&mut self) {
        let started = Instant::now();
        self.prepare_groups();
        let Some(sample) = self.sample() else {
            return;
        };
        let samples = &mut self.samples;
        // A probe too close to the tick measures too short a time to tell.
        // A wake-up's probe is `wakeups::JUDGE` before its tick, which is
        // long enough.
        let shortest = (self.config.agent.interval / 4).min(wakeups::JUDGE);
        samples.first_part_idle = (samples.latest.as_ref())
            .zip(samples.midpoint.as_ref())
            .map(|(tick, probe)| sample::host_idle_cores(&tick.host_cpu, &probe.host_cpu));
        samples.recent = samples
            .midpoint
            .take()
            .map(|midpoint| Rates::between(&midpoint, &sample))
            .filter(|recent| recent.elapsed >= shortest);
        samples.previous = samples.latest.replace(sample);
        // The first sample gives no rates. Deciding on zero usage would
        // release every clamp for a tick after each restart, so the
        // controllers that share by usage wait for the second.
        samples.rates = samples
            .previous
            .as_ref()
            .zip(samples.latest.as_ref())
            .map(|(earlier, later)| Rates::between(earlier, later));
        self.control();
        self.export();
        self.control_classification();
        // The triggers follow the groups made ready or lost, and who is a
        // victim now.
        self.wakeups
            .sync(&self.tenants, &self.samples, &self.enforcer);
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
        self.samples.midpoint = self.read_sample(true).ok().map(|(sample, _)| sample);
        self.metrics
            .probe_duration
            .observe(started.elapsed().as_secs_f64());
    }

    /// The host, and the ready tenants with the files their contracts need
    /// (only what shows usage for the probe); the groups that could not be
    /// read beside it.
    fn read_sample(&self, probe: bool) -> Result<(Sample, Vec<Unreadable>), ProcError> {
        let readable: Vec<Wanted> = self
            .tenants
            .iter()
            .filter(|t| t.ready)
            .map(|t| Wanted::for_tenant(&t.tenant, &t.group, probe))
            .collect();
        let host = HostWanted::for_config(&self.config, probe);
        sample::take(&self.proc, &readable, host)
    }

    /// Reads the host and the ready tenants; `None` when the host itself
    /// cannot be read (the tick is skipped).
    fn sample(&mut self) -> Option<Sample> {
        match self.read_sample(false) {
            Ok((sample, unreadable)) => {
                for failure in unreadable {
                    if let Some(index) = self.index_of(&failure.tenant) {
                        self.group_failed(index, &failure.error);
                    }
                }
                Some(sample)
            }
            Err(error) => {
                error!("cannot sample the host, skipping this tick: {error}");
                None
            }
        }
    }

    fn index_of(&self, tenant: &str) -> Option<usize> {
        self.tenants.iter().position(|t| t.tenant.name == tenant)
    }

    /// Every controller decides and enforces on the latest sample. A group
    /// that fails is settled before the next controller runs, so none of
    /// them writes to a group known to be gone.
    fn control(&mut self) {
        self.enforcer.begin_tick();
        for index in 0..self.controllers.len() {
            let parts = (&self.config, self.tenants.as_slice(), &self.hierarchy);
            let Some(tick) = view(parts, &self.samples) else {
                break;
            };
            let mut outcome = Outcome::default();
            self.controllers[index].control(&tick, &mut self.enforcer, &mut outcome);
            self.settle(outcome);
        }
    }

    /// Counts what a controller did, and handles its failed groups.
    fn settle(&mut self, outcome: Outcome) {
        let metrics = &self.metrics;
        metrics.enforcement_writes.inc_by(outcome.writes.writes);
        metrics
            .drift_corrections
            .inc_by(outcome.writes.drift_corrections);
        metrics.enforcement_errors.inc_by(outcome.errors);
        for (index, error) in outcome.failed {
            self.group_failed(index, &error);
        }
    }

    fn export(&mut self) {
        let parts = (&self.config, self.tenants.as_slice(), &self.hierarchy);
        let Some(tick) = view(parts, &self.samples) else {
            return;
        };
        for controller in &mut self.controllers {
            controller.export(&tick);
        }
    }
}
