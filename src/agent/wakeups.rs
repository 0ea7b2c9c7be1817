//! Wake-ups between ticks, so that a tenant that starts to stall is
//! answered within a fraction of a second whatever the tick. After each
//! tick, a PSI trigger (`cgroup::trigger`) is armed on each resource where
//! a ready tenant is a victim (`wanted`); its event schedules a tick
//! [`JUDGE`] later. A tick or a probe schedules one too when the host went
//! idle while `cpu.max` held someone (`release`). Where triggers are not
//! supported, this is said once, and only the tick and the probe wake the
//! loop.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tracing::{debug, info, warn};

use super::{Agent, Samples};
use crate::cgroup::Group;
use crate::cgroup::io::DeviceNumber;
use crate::cgroup::pressure::PressureResource;
use crate::cgroup::trigger::{self, Trigger, TriggerError};
use crate::config::{IoDimension, Tenant};
use crate::control::Managed;
use crate::control::disk::io_max_field;
use crate::enforce::Enforcer;
use crate::metrics::{WAKEUP_PRESSURE, WAKEUP_PRESSURE_IGNORED, WAKEUP_RELEASE};
use crate::policy;
use crate::sample::{self, Rates, Sample};

/// How long after a wake-up its tick runs. The wake-up reads the tenants at
/// once (a probe), and the tick judges who is active on what they did
/// since: a window that does not depend on the tick, where the usage of a
/// tenant that just woke is not diluted by the time it slept. 100 ms is
/// long enough for CPU usage to tell (each running thread's usage is up to
/// one 4 ms scheduler tick behind). It is also the storm guard: wake-ups
/// while a tick is pending join it, so wake-ups add at most one tick per
/// 100 ms, for all tenants together.
pub(super) const JUDGE: Duration = Duration::from_millis(100);

/// A release tick needs the host's idle CPUs to have grown by this many
/// cores: someone went quiet.
const SPARE_CORES: f64 = 0.1;

/// The stall share at which a trigger fires: a tenant below its baseline
/// that stalls this much breaks its contract (`policy::contract_broken`).
const TRIGGER_STALL_SHARE: f64 = trigger::STALL.as_secs_f64() / trigger::WINDOW.as_secs_f64();

/// At most this many triggers are armed. The kernel runs a poller thread
/// for each cgroup with a trigger: with a trigger on every resource of
/// 1,000 idle tenants (idle is below the baseline: a victim) the VM's
/// scale scenario did not get through its 1,000-tenant step within its
/// 150 s, where it had passed before wake-ups. Each trigger is also a
/// descriptor, and the agent keeps a few open per tenant: at 1,000 tenants
/// 128 triggers (and a kept-open cpu.max.burst) ran it out of descriptors in the guest. Tenants that used a CPU at
/// the last tick come first; the others wait for the tick.
const MAX_TRIGGERS: usize = 32;

/// Events waiting for the loop; a full queue means the loop is behind, and
/// one more event would not make it sooner.
const QUEUE: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Not serving (a one-shot run, tests, benchmarks), or a dry run.
    Off,
    On,
    /// Said once; no triggers until a restart (the probe still releases).
    Unsupported,
}

/// The triggers and the wake-up tick they scheduled.
pub(super) struct Wakeups {
    mode: Mode,
    /// By the id their events carry.
    armed: HashMap<u64, Armed>,
    next_id: u64,
    /// Tenants and resources whose failure to arm was said.
    said_failed: HashSet<(String, PressureResource)>,
    /// Whether the loop said that some victims go without a trigger.
    said_capped: bool,
    sender: mpsc::Sender<u64>,
    receiver: mpsc::Receiver<u64>,
    pending: Option<Pending>,
}

/// One trigger, watched by its own task until dropped.
struct Armed {
    tenant: String,
    group: PathBuf,
    resource: PressureResource,
    task: AbortHandle,
}

impl Drop for Armed {
    fn drop(&mut self) {
        // The task owns the file: ending it closes the file, which removes
        // the trigger from the kernel.
        self.task.abort();
    }
}

/// The tick a wake-up scheduled.
#[derive(Debug, Clone, Copy)]
pub(super) struct Pending {
    pub at: Instant,
    pub cause: Cause,
}

/// What the loop just did, for the release rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sampled {
    /// A tick on the interval (not a wake-up's).
    Tick,
    Probe,
}

/// Why a wake-up tick was scheduled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Cause {
    /// A victim's trigger (the first, when more joined): the reaction is
    /// counted from when the loop received it, for its resource.
    Pressure {
        resource: PressureResource,
        received: Instant,
    },
    /// A tick or a probe saw the host go idle while someone was held.
    Release,
}

/// Where a tenant stands in one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Standing {
    /// Below its baseline (or not measured yet): a tick may hold it free.
    Victim,
    /// At or above its baseline, or pressing against its own limit of at
    /// least its baseline: if it stalls, a limit holds it.
    Held,
}

/// The release rule, after each tick and probe. A tenant that `cpu.max`
/// throttled over the last tick (`throttled`) is held, and stalls because
/// of it: its trigger would fire every window, so it has none (`wanted`).
/// When the host's idle CPUs grew by [`SPARE_CORES`] over the latest part
/// of the interval (`idle_gain`), someone went quiet, and a tick may
/// release the held. Only if the last tick changed no limit: otherwise its
/// own clamps and releases moved the idle time. Disk and memory are not
/// released between ticks: their idleness is not read then.
pub(super) fn release(throttled: bool, wrote_caps: bool, idle_gain: f64) -> bool {
    throttled && !wrote_caps && idle_gain >= SPARE_CORES
}

/// The resources where `tenant` may be a victim: those where it has a
/// baseline above zero.
fn baselines(tenant: &Tenant) -> impl Iterator<Item = PressureResource> {
    let cpu = tenant
        .cpu
        .is_some_and(|contract| contract.baseline.get() > 0.0);
    let memory = tenant.memory.is_some_and(|contract| contract.baseline > 0);
    [
        (PressureResource::Cpu, cpu),
        (PressureResource::Io, io_baselines(tenant).next().is_some()),
        (PressureResource::Memory, memory),
    ]
    .into_iter()
    .filter_map(|(resource, wanted)| wanted.then_some(resource))
}

/// The triggers worth having after a tick, by tenant index: where a ready
/// tenant is a victim (`standing`). A held tenant's events would only say,
/// every window, that a limit holds it (its own, or the baseline it gets),
/// and each wakes the loop, which costs CPU (in the VM, about half a probe):
/// it has no trigger.
pub(super) fn wanted(
    tenants: &[Managed],
    samples: &Samples,
    enforcer: &Enforcer,
) -> Vec<(usize, PressureResource)> {
    let measured = (samples.rates.as_ref(), samples.latest.as_ref());
    let victim = |index: usize, resource| {
        let managed: &Managed = &tenants[index];
        let limit = |dimension| applied_limit(enforcer, &managed.group, dimension);
        standing(&managed.tenant, resource, measured, limit) == Standing::Victim
    };
    let mut wanted: Vec<(usize, PressureResource)> = tenants
        .iter()
        .enumerate()
        .filter(|(_, managed)| managed.ready)
        .flat_map(|(index, managed)| baselines(&managed.tenant).map(move |r| (index, r)))
        .filter(|&(index, resource)| victim(index, resource))
        .collect();
    if wanted.len() > MAX_TRIGGERS {
        let busy = |index: usize| {
            let name = &tenants[index].tenant.name;
            measured
                .0
                .and_then(|rates| rates.tenants.get(name))
                .is_some_and(|m| m.cpu_cores > 0.0)
        };
        wanted.sort_by_key(|&(index, _)| !busy(index));
    }
    wanted
}

/// The limit qosd last applied to `group` in `dimension` (the policy's
/// unit), or `None` when it applied none or no limit.
pub(super) fn applied_limit(
    enforcer: &Enforcer,
    group: &Group,
    dimension: Dimension,
) -> Option<f64> {
    match dimension {
        Dimension::Cpu => {
            let max = enforcer.applied_cpu(group)?.max;
            Some(max.quota_us? as f64 / max.period_us as f64)
        }
        Dimension::Disk(device, io) => {
            let mut max = enforcer.applied_io(group, device)?;
            io_max_field(&mut max, io).map(|limit| limit as f64)
        }
    }
}

/// Every disk dimension with a baseline above zero: (device, dimension,
/// baseline).
fn io_baselines(tenant: &Tenant) -> impl Iterator<Item = (DeviceNumber, IoDimension, f64)> {
    tenant.disk.iter().flat_map(|entry| {
        IoDimension::ALL.into_iter().filter_map(|dimension| {
            let contract = (*entry.limits.get(dimension))?;
            (contract.baseline > 0.0).then_some((entry.device.number, dimension, contract.baseline))
        })
    })
}

/// A dimension of a tenant's contract, for the limit qosd holds it at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dimension {
    Cpu,
    Disk(DeviceNumber, IoDimension),
}

/// Gets its baseline, give or take what a tick's measurement misses, or
/// presses against a `limit` of at least its baseline (its stall is its own
/// limit's): even stalling as much as a trigger reports, its contract would
/// not be broken, as the policy counts it.
fn gets(usage: f64, baseline: f64, limit: Option<f64>) -> bool {
    !policy::contract_broken_under(usage, baseline, TRIGGER_STALL_SHARE, limit)
}

/// `tenant`'s standing in `resource`, from the latest rates (CPU, disk) or
/// sample (memory), and the limits qosd holds it at (`limit`: in cores, or
/// in bytes/s or IOs/s; `None` when unlimited). A tenant not measured yet
/// is taken for a victim.
pub(super) fn standing(
    tenant: &Tenant,
    resource: PressureResource,
    (rates, latest): (Option<&Rates>, Option<&Sample>),
    limit: impl Fn(Dimension) -> Option<f64>,
) -> Standing {
    let measured = rates.and_then(|rates| rates.tenants.get(&tenant.name));
    let held = match resource {
        PressureResource::Cpu => measured.zip(tenant.cpu).is_some_and(|(m, contract)| {
            gets(m.cpu_cores, contract.baseline.get(), limit(Dimension::Cpu))
        }),
        PressureResource::Io => measured.is_some_and(|m| {
            io_baselines(tenant).any(|(device, dimension, baseline)| {
                let io = m.io.get(&device);
                let rate = io.map_or(0.0, |io| *io.per_second.get(dimension));
                gets(rate, baseline, limit(Dimension::Disk(device, dimension)))
            })
        }),
        PressureResource::Memory => latest
            .and_then(|sample| sample.tenants.get(&tenant.name)?.memory)
            .zip(tenant.memory)
            .is_some_and(|(m, contract)| gets(m.current as f64, contract.baseline as f64, None)),
    };
    if held {
        Standing::Held
    } else {
        Standing::Victim
    }
}

impl Wakeups {
    pub(super) fn new() -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE);
        Wakeups {
            mode: Mode::Off,
            armed: HashMap::new(),
            next_id: 0,
            said_failed: HashSet::new(),
            said_capped: false,
            sender,
            receiver,
            pending: None,
        }
    }

    /// The next event's trigger id. Never ends: the sender is ours.
    pub(super) async fn next(&mut self) -> u64 {
        match self.receiver.recv().await {
            Some(id) => id,
            None => std::future::pending().await,
        }
    }

    pub(super) fn pending_at(&self) -> Option<Instant> {
        self.pending.map(|pending| pending.at)
    }

    /// Arms the triggers `wanted` names and drops the others: those of a
    /// tenant that left, changed group, is not ready or is held now, and
    /// those whose task ended (their file stopped).
    pub(super) fn sync(&mut self, tenants: &[Managed], samples: &Samples, enforcer: &Enforcer) {
        if self.mode != Mode::On {
            return;
        }
        let mut wanted = wanted(tenants, samples, enforcer);
        if wanted.len() > MAX_TRIGGERS {
            if !std::mem::replace(&mut self.said_capped, true) {
                info!(
                    "{} tenant resources could use a pressure trigger; the first {MAX_TRIGGERS} \
                     (busy tenants first) have one, the others wait for the tick",
                    wanted.len()
                );
            }
            wanted.truncate(MAX_TRIGGERS);
        }
        let groups: HashMap<(&str, PressureResource), &Path> = wanted
            .iter()
            .map(|&(index, resource)| {
                let managed = &tenants[index];
                (
                    (managed.tenant.name.as_str(), resource),
                    managed.group.path(),
                )
            })
            .collect();
        self.armed.retain(|_, armed| {
            let key = (armed.tenant.as_str(), armed.resource);
            !armed.task.is_finished() && groups.get(&key).is_some_and(|g| *g == armed.group)
        });
        let have: HashSet<(&str, PressureResource)> = self
            .armed
            .values()
            .map(|armed| (armed.tenant.as_str(), armed.resource))
            .collect();
        let missing: Vec<(usize, PressureResource)> = wanted
            .into_iter()
            .filter(|&(index, r)| !have.contains(&(tenants[index].tenant.name.as_str(), r)))
            .collect();
        drop(have);
        for (index, resource) in missing {
            if !self.arm(&tenants[index], resource) {
                return;
            }
        }
    }

    /// Arms one trigger and starts its task; false once triggers are known
    /// not to work here (then every trigger is dropped).
    fn arm(&mut self, managed: &Managed, resource: PressureResource) -> bool {
        let name = &managed.tenant.name;
        let path = managed.group.path().join(resource.file_name());
        match Trigger::arm(&path) {
            Ok(armed) => {
                let id = self.next_id;
                self.next_id += 1;
                let task = tokio::spawn(watch(armed, id, self.sender.clone()));
                self.said_failed.remove(&(name.clone(), resource));
                let armed = Armed {
                    tenant: name.clone(),
                    group: managed.group.path().to_owned(),
                    resource,
                    task: task.abort_handle(),
                };
                self.armed.insert(id, armed);
                true
            }
            Err(error) if error.is_unsupported() => {
                warn!("{error}; the loop wakes on its tick only");
                self.mode = Mode::Unsupported;
                self.armed.clear();
                false
            }
            Err(error @ TriggerError::Vanished { .. }) => {
                debug!("tenant {name}: {error}");
                true
            }
            Err(error) => {
                if self.said_failed.insert((name.clone(), resource)) {
                    warn!("tenant {name}: {error}; trying again after each tick");
                }
                true
            }
        }
    }
}

/// Sends `id` to the loop at each event of `trigger`, until it stops.
async fn watch(trigger: Trigger, id: u64, events: mpsc::Sender<u64>) {
    loop {
        if let Err(error) = trigger.fired().await {
            debug!("{error}");
            return;
        }
        if let Err(mpsc::error::TrySendError::Closed(_)) = events.try_send(id) {
            return;
        }
    }
}

impl Agent {
    /// Triggers from now on: the loop serves their events. Not for a dry
    /// run, which writes nothing (a trigger is a write).
    pub(super) fn start_wakeups(&mut self) {
        if !self.options.dry_run {
            self.wakeups.mode = Mode::On;
            self.wakeups
                .sync(&self.tenants, &self.samples, &self.enforcer);
        }
    }

    /// The event of trigger `id`: a victim's (only victims have triggers),
    /// so the tenants are probed now and a tick scheduled, whose time is
    /// returned; unless one is pending already (the event joins it), or the
    /// trigger was dropped since its event was queued.
    pub(super) fn woken(&mut self, id: u64) -> Option<Instant> {
        let received = Instant::now();
        let resource = self.wakeups.armed.get(&id).map(|armed| armed.resource);
        let pending = self.wakeups.pending.is_some();
        debug!("trigger {id} ({resource:?}) fired; a wake-up tick pending: {pending}");
        let Some(resource) = resource.filter(|_| !pending) else {
            self.count_wakeup(WAKEUP_PRESSURE_IGNORED);
            return None;
        };
        self.probe();
        Some(self.schedule(Cause::Pressure { resource, received }))
    }

    /// After a tick or a probe (`after`): the time of the release tick it
    /// schedules, if the host's idle CPUs over the latest part of the
    /// interval grew over what they were before it, while someone was held
    /// (`release`). After a probe, the part since the tick is compared with
    /// the tick's whole interval; after a tick, the part since the probe
    /// with the part before it.
    pub(super) fn released(&mut self, after: Sampled) -> Option<Instant> {
        // Not while nothing serves wake-up ticks; triggers are not needed.
        if self.wakeups.mode == Mode::Off || self.wakeups.pending.is_some() {
            return None;
        }
        let samples = &self.samples;
        let (latest, rates) = (samples.latest.as_ref()?, samples.rates.as_ref()?);
        let online = f64::from(latest.host_cpu.online_cpus);
        let (idle_now, idle_before) = match after {
            Sampled::Probe => {
                let probed = samples.midpoint.as_ref()?;
                let idle = sample::host_idle_cores(&latest.host_cpu, &probed.host_cpu);
                (idle, online - rates.host_cpu_busy_cores)
            }
            Sampled::Tick => {
                let recent = samples.recent.as_ref()?;
                (
                    online - recent.host_cpu_busy_cores,
                    samples.first_part_idle?,
                )
            }
        };
        let throttled = (rates.tenants.values()).any(|t| t.cpu_throttled_seconds > 0.0);
        let idle_gain = idle_now - idle_before;
        debug!("{after:?}: throttled {throttled}, idle gained {idle_gain:.2} cores");
        // A weight does not count (`Enforcer::wrote_caps`): boosting a tenant
        // that had just stopped kept a release back for a whole tick.
        let wrote_caps = self.enforcer.wrote_caps();
        release(throttled, wrote_caps, idle_gain).then(|| self.schedule(Cause::Release))
    }

    /// A wake-up tick [`JUDGE`] after the probe or the tick just taken: from
    /// the end of the probe's reads, so that the tick's window is never
    /// shorter (the tick accepts no shorter one).
    fn schedule(&mut self, cause: Cause) -> Instant {
        let probed = self.samples.midpoint.as_ref().map(|m| m.taken);
        let at = probed.unwrap_or_else(Instant::now) + JUDGE;
        self.wakeups.pending = Some(Pending { at, cause });
        at
    }

    /// Runs the tick a wake-up scheduled, and counts it (and the reaction
    /// to a trigger).
    pub(super) fn wakeup_tick(&mut self) {
        let Some(pending) = self.wakeups.pending.take() else {
            return;
        };
        self.tick();
        match pending.cause {
            Cause::Pressure { resource, received } => {
                self.count_wakeup(WAKEUP_PRESSURE);
                let reaction = self
                    .metrics
                    .reaction_seconds
                    .with_label_values(&[resource.name()]);
                reaction.observe(received.elapsed().as_secs_f64());
            }
            Cause::Release => self.count_wakeup(WAKEUP_RELEASE),
        }
    }

    pub(super) fn count_wakeup(&self, cause: &str) {
        self.metrics.wakeups.with_label_values(&[cause]).inc();
    }
}

#[cfg(test)]
mod tests;
