//! One module per controlled resource, each behind [`ResourceControl`].
//!
//! The agent owns the tenants' groups and the tick; a controller owns what
//! one resource needs between ticks (the limits it set, its contention
//! state, its metric series) and turns one [`Tick`] (the latest sample, the
//! rates from the one before, the contracts) into kernel writes through the
//! shared [`Enforcer`], then into metrics. The agent iterates the
//! controllers and never names a resource.
//!
//! Adding a resource: a file here implementing the trait, its reader under
//! `cgroup/` (and what it reads added to `sample`), and one line in
//! [`controllers`]. docs/design.md lists the rest.

use tracing::info;

use crate::cgroup::{CgroupError, Controller, Group, Hierarchy};
use crate::config::{Config, Contract, HostFacts, Tenant};
use crate::enforce::{Enforcer, Writes};
use crate::metrics::Metrics;
use crate::net::Shaper;
use crate::sample::{Rates, Sample};
use crate::status::{ResourceRow, TenantRow};

pub mod cpu;
pub mod disk;
pub mod memory;
pub mod net;
pub mod report;

/// The cgroup controllers every tenant group gets, and the root must have.
pub const ROOT_CONTROLLERS: &[Controller] = &[Controller::Cpu];
/// The controllers of a tenant with a memory contract.
const WITH_MEMORY: &[Controller] = &[Controller::Cpu, Controller::Memory];

/// The cgroup controllers `tenant`'s contracts need enabled on its group.
pub fn cgroup_controllers(tenant: &Tenant) -> &'static [Controller] {
    if tenant.memory.is_some() {
        WITH_MEMORY
    } else {
        ROOT_CONTROLLERS
    }
}

/// One tenant as the agent manages it: its contracts, its group, and
/// whether the group is ready for control (exists, controllers enabled).
#[derive(Debug)]
pub struct Managed {
    pub tenant: Tenant,
    pub group: Group,
    pub ready: bool,
}

/// What a controller sees of one tick. Tenants are addressed by their
/// index in `tenants`, which stays stable until the next [`Reconfigure`].
pub struct Tick<'a> {
    pub config: &'a Config,
    pub tenants: &'a [Managed],
    pub hierarchy: &'a Hierarchy,
    /// The latest sample.
    pub sample: &'a Sample,
    /// The one before it; `None` on the first tick.
    pub previous: Option<&'a Sample>,
    /// From `previous` to `sample`.
    pub rates: Option<&'a Rates>,
    /// From the probe halfway through the tick to `sample`: who is active
    /// now (see `Claim::recent_usage`).
    pub recent: Option<&'a Rates>,
}

impl Tick<'_> {
    /// The ready tenants, with their indices.
    pub fn ready(&self) -> impl Iterator<Item = (usize, &Managed)> {
        self.tenants.iter().enumerate().filter(|(_, t)| t.ready)
    }
}

/// A new configuration, as the agent took it.
pub struct Reconfigure<'a> {
    pub config: &'a Config,
    pub tenants: &'a [Managed],
    /// Per tenant, its index in the previous list when it stayed (same name
    /// and group): its state is carried over so its limits do not jump.
    pub kept: &'a [Option<usize>],
    /// Tenants that left the configuration (or changed group): their series
    /// are dropped.
    pub gone: &'a [Tenant],
    pub hierarchy: &'a Hierarchy,
}

/// What one controller did in one pass.
#[derive(Debug, Default)]
pub struct Outcome {
    pub writes: Writes,
    /// Failures that are not a tenant's group's (an ancestor, a link).
    pub errors: u64,
    /// Tenants whose group failed, by index: the agent decides whether it
    /// vanished or is an error, and tells every controller to forget it.
    pub failed: Vec<(usize, CgroupError)>,
}

impl Outcome {
    /// Counts a write's result, or records the tenant's failure.
    pub fn record(&mut self, index: usize, result: Result<Writes, CgroupError>) {
        match result {
            Ok(done) => self.writes += done,
            Err(error) => self.failed.push((index, error)),
        }
    }
}

/// One controlled resource.
pub trait ResourceControl {
    /// Takes a new configuration (at start-up and on every good reload).
    fn configure(&mut self, change: &Reconfigure);
    /// Decides and writes. Also called on reload, with the same tick, so
    /// new contracts apply at once.
    fn control(&mut self, tick: &Tick, enforcer: &mut Enforcer, outcome: &mut Outcome);
    /// Exports the tick's series (once per tick, after `control`).
    fn export(&mut self, tick: &Tick);
    /// A tenant's group vanished or lost its files: what is known of it
    /// (limits in force, counters) is no longer true.
    fn forget(&mut self, index: usize, enforcer: &mut Enforcer);
    /// The host's rows of `qosd status`.
    fn resource_rows(&self, tick: &Tick) -> Vec<ResourceRow>;
    /// The rows of one ready tenant's contracts.
    fn tenant_rows(&self, tick: &Tick, index: usize) -> Vec<TenantRow>;
    /// The agent stops; `cleanup` asks to remove what would stay in force.
    fn stop(&mut self, _cleanup: bool) {}
}

/// Every controller, in the order the tick runs them and `qosd status`
/// lists them. Their metric families are registered in `metrics`.
pub fn controllers(
    metrics: &std::sync::Arc<Metrics>,
    shaper: Box<dyn Shaper>,
    dry_run: bool,
    host: &HostFacts,
) -> anyhow::Result<Vec<Box<dyn ResourceControl>>> {
    let mut disk = disk::DiskControl::new(metrics)?;
    disk.resolving_with(host.resolve_device);
    Ok(vec![
        Box::new(cpu::CpuControl::new(metrics)?),
        Box::new(disk),
        Box::new(memory::MemoryControl::new(metrics)?),
        Box::new(net::NetControl::new(metrics, shaper, dry_run)?),
    ])
}

/// Rebuilds per-tenant state for a new configuration: what was known of
/// kept tenants, the default for new ones.
pub fn carry_over<T: Default>(state: &mut Vec<T>, kept: &[Option<usize>]) {
    let mut old: Vec<Option<T>> = std::mem::take(state).into_iter().map(Some).collect();
    *state = kept
        .iter()
        .map(|was| {
            was.and_then(|i| old.get_mut(i).and_then(Option::take))
                .unwrap_or_default()
        })
        .collect();
}

/// Sets the contention gauges of one resource (`device` empty for CPU).
pub fn publish_contention(
    metrics: &Metrics,
    (resource, device): (&str, &str),
    contended: bool,
    capacity_and_demand: Option<(f64, f64)>,
) {
    let labels = [resource, device];
    metrics
        .resource_contended
        .with_label_values(&labels)
        .set(f64::from(u8::from(contended)));
    if let Some((capacity, demand)) = capacity_and_demand {
        metrics
            .resource_capacity
            .with_label_values(&labels)
            .set(capacity);
        metrics
            .resource_demand
            .with_label_values(&labels)
            .set(demand);
    }
}

/// Why limits are what they are, for the clamp and release log lines:
/// "cpu contended (1.96/2.00 cores), tenant web below baseline".
pub fn explain(resource: &str, contended: bool, load: &str, below: &[&str]) -> String {
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
pub fn log_limit_change(
    what: impl Fn() -> String,
    (before, after): (Option<f64>, f64),
    contract: Contract<f64>,
    why: &str,
    show: impl Fn(f64) -> String,
) {
    let epsilon = LOG_CHANGE_FRACTION * contract.burst;
    let change = match before {
        None => {
            info!(
                "set tenant {} to {} (baseline {}, burst {}): {why}",
                what(),
                show(after),
                show(contract.baseline),
                show(contract.burst)
            );
            return;
        }
        Some(before) if after < before - epsilon => ("clamped", before),
        Some(before) if after > before + epsilon => ("released", before),
        Some(_) => return,
    };
    let (verb, before) = change;
    info!(
        "{verb} tenant {} to {} (was {}): {why}",
        what(),
        show(after),
        show(before)
    );
}

/// Logs a resource entering or leaving contention.
pub fn log_contention_change(was: bool, now: bool, what: impl Fn(&str) -> String) {
    if was != now {
        let state = if now {
            "contended"
        } else {
            "no longer contended"
        };
        info!("{}", what(state));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_tenants_carry_their_state_and_new_ones_start_fresh() {
        let mut state = vec![1, 2, 3];
        carry_over(&mut state, &[Some(2), None, Some(0)]);
        assert_eq!(state, vec![3, 0, 1]);
    }

    #[test]
    fn the_reason_names_the_tenants_below_baseline() {
        assert_eq!(explain("cpu", false, "1/2", &[]), "cpu not contended (1/2)");
        assert_eq!(
            explain("cpu", true, "2/2", &["web", "db"]),
            "cpu contended (2/2), tenants web, db below baseline"
        );
    }
}
