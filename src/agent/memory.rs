//! Memory contracts in the tick. The kernel holds them by itself
//! (memory.min or memory.low protects the baseline from reclaim,
//! memory.high throttles and reclaims above the burst, memory.max caps), so
//! nothing here moves with the load: qosd writes the knobs, puts them back
//! when changed, and reports usage, boundary events and pressure.

use std::time::Instant;

use super::{Agent, TenantState};
use crate::cgroup::memory::{self, MemoryLimit, page_aligned};
use crate::cgroup::pressure::{self, PressureResource};
use crate::cgroup::{CgroupError, Group};
use crate::config::{MemoryContract, MemoryProtection};
use crate::enforce::MemoryLimits;
use crate::metrics::Metrics;

/// What was last read of each tenant's cumulative memory counters, so the
/// exported counters grow by the difference.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct MemorySeen {
    events: memory::MemoryEvents,
    stall_some_usec: u64,
    stall_full_usec: u64,
    /// When they were read; `None` before the first read.
    read_at: Option<Instant>,
    /// The share of the time between the last two reads in which some of
    /// the group's tasks stalled on memory (`qosd status`'s pressure).
    pub(super) stall_fraction: Option<f64>,
}

/// The knobs that hold `contract`. Whole pages, as the kernel keeps them,
/// so reading back gives what was written.
pub(super) fn limits_for(contract: &MemoryContract) -> MemoryLimits {
    let baseline = MemoryLimit::Bytes(page_aligned(contract.baseline));
    let none = MemoryLimit::Bytes(0);
    let (min, low) = match contract.protection {
        MemoryProtection::Hard => (baseline, none),
        MemoryProtection::Soft => (none, baseline),
    };
    MemoryLimits {
        min,
        low,
        high: MemoryLimit::Bytes(page_aligned(contract.burst)),
        max: contract.limit.map_or(MemoryLimit::Unlimited, |limit| {
            MemoryLimit::Bytes(page_aligned(limit))
        }),
    }
}

impl Agent {
    pub(super) fn control_memory(&mut self) {
        self.protect_parents();
        for index in 0..self.tenants.len() {
            let state = &self.tenants[index];
            let Some(contract) = state.tenant.memory.filter(|_| state.ready) else {
                continue;
            };
            let applied = self
                .enforcer
                .apply_memory(&state.group, limits_for(&contract));
            let observed = observe(
                &state.group,
                &self.metrics,
                &state.tenant.name,
                state.memory_seen,
            );
            let failure = match (applied, observed) {
                (Ok(done), Ok(seen)) => {
                    self.metrics.enforcement_writes.inc_by(done.writes);
                    self.metrics
                        .drift_corrections
                        .inc_by(done.drift_corrections);
                    self.tenants[index].memory_seen = seen;
                    None
                }
                (Err(error), _) | (_, Err(error)) => Some(error),
            };
            if let Some(error) = failure {
                let name = self.tenants[index].tenant.name.clone();
                self.group_failed(&name, &error);
            }
        }
    }
}

impl Agent {
    /// The kernel caps a group's memory protection at its parent's: a
    /// tenant's memory.min under a parent whose memory.min is 0 protects
    /// nothing (the VM showed it: cache's pages went as if unprotected). So
    /// qosd's parent group (`agent.parent`) and its ancestors below the root,
    /// which qosd owns, hold the sum of the baselines of the tenants below
    /// them. Adopted groups elsewhere depend on their own parents (README).
    fn protect_parents(&mut self) {
        let parent = &self.config.agent.parent;
        let below = |state: &&TenantState| state.ready && state.tenant.cgroup.starts_with(parent);
        let (mut hard, mut soft) = (0, 0);
        for state in self.tenants.iter().filter(below) {
            match state.tenant.memory {
                Some(c) if c.protection == MemoryProtection::Hard => {
                    hard += page_aligned(c.baseline)
                }
                Some(c) => soft += page_aligned(c.baseline),
                None => {}
            }
        }
        if hard + soft == 0 {
            return;
        }
        let limits = MemoryLimits {
            min: MemoryLimit::Bytes(hard),
            low: MemoryLimit::Bytes(soft),
            high: MemoryLimit::Unlimited,
            max: MemoryLimit::Unlimited,
        };
        for ancestor in parent
            .ancestors()
            .filter(|path| !path.as_os_str().is_empty())
        {
            let group = self.hierarchy.group(ancestor);
            match self.enforcer.apply_memory(&group, limits) {
                Ok(done) => {
                    self.metrics.enforcement_writes.inc_by(done.writes);
                    self.metrics
                        .drift_corrections
                        .inc_by(done.drift_corrections);
                }
                Err(error) if error.is_vanished() => {}
                Err(error) => {
                    self.metrics.enforcement_errors.inc();
                    tracing::warn!(
                        "cannot protect the memory of {}: {error}",
                        ancestor.display()
                    );
                }
            }
        }
    }
}

/// Reads the group's usage, events and pressure into the metrics; returns
/// the counters now, for the next call's differences.
fn observe(
    group: &Group,
    metrics: &Metrics,
    tenant: &str,
    before: MemorySeen,
) -> Result<MemorySeen, CgroupError> {
    metrics
        .memory_usage_bytes
        .with_label_values(&[tenant])
        .set(memory::read_current(group)? as f64);
    let stat = memory::read_stat(group)?;
    for (kind, bytes) in [("anon", stat.anon), ("file", stat.file)] {
        metrics
            .memory_stat_bytes
            .with_label_values(&[tenant, kind])
            .set(bytes as f64);
    }
    let events = memory::read_events(group)?;
    for ((event, now), (_, then)) in events.named().into_iter().zip(before.events.named()) {
        let counter = metrics.memory_events.with_label_values(&[tenant, event]);
        counter.inc_by(now.saturating_sub(then) as f64);
    }
    let stall = pressure::read(group, PressureResource::Memory)?;
    let read_at = Instant::now();
    let full = stall.full.map_or(0, |line| line.total_usec);
    let stalls = [
        ("some", stall.some.total_usec, before.stall_some_usec),
        ("full", full, before.stall_full_usec),
    ];
    for (kind, now, then) in stalls {
        let counter = metrics
            .pressure_stall_seconds
            .with_label_values(&[tenant, "memory", kind]);
        counter.inc_by(now.saturating_sub(then) as f64 / 1e6);
    }
    let stalled_usec = stall.some.total_usec.saturating_sub(before.stall_some_usec);
    let stall_fraction = before.read_at.map(|then| {
        let elapsed_usec = read_at.duration_since(then).as_micros().max(1) as f64;
        (stalled_usec as f64 / elapsed_usec).min(1.0)
    });
    Ok(MemorySeen {
        events,
        stall_some_usec: stall.some.total_usec,
        stall_full_usec: full,
        read_at: Some(read_at),
        stall_fraction,
    })
}

/// Sets the contract's gauges (on load and reload).
pub(super) fn publish_memory_contract(state: &TenantState, metrics: &Metrics) {
    let Some(contract) = state.tenant.memory else {
        return;
    };
    let tenant = [state.tenant.name.as_str()];
    metrics
        .memory_baseline_bytes
        .with_label_values(&tenant)
        .set(contract.baseline as f64);
    metrics
        .memory_burst_bytes
        .with_label_values(&tenant)
        .set(contract.burst as f64);
    match contract.limit {
        Some(limit) => metrics
            .memory_limit_bytes
            .with_label_values(&tenant)
            .set(limit as f64),
        None => {
            let _ = metrics.memory_limit_bytes.remove_label_values(&tenant);
        }
    }
}
