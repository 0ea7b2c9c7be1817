//! Memory contracts. The kernel holds them by itself (memory.min or
//! memory.low protects the baseline from reclaim, memory.high throttles and
//! reclaims above the burst, memory.max caps), so nothing here moves with
//! the load: qosd writes the knobs, puts them back when changed, and
//! reports usage, boundary events and pressure from the tick's sample.

use std::sync::Arc;

use prometheus::{CounterVec, GaugeVec};

use super::report::{resource_row, row};
use super::{Managed, Outcome, Reconfigure, ResourceControl, Tick};
use crate::cgroup::memory::{MemoryLimit, page_aligned};
use crate::config::{MemoryContract, MemoryProtection};
use crate::enforce::{Enforcer, MemoryLimits};
use crate::metrics::{KIND, Metrics, Registrar, TENANT, remove_series};
use crate::sample::MemorySample;
use crate::status::{ResourceRow, Subject, TenantRow, Unit};

pub struct MemoryControl {
    families: MemoryFamilies,
    metrics: Arc<Metrics>,
    /// Per tenant, in the agent's order: the share of the last tick in
    /// which some of its tasks stalled on memory (`qosd status`).
    stall_fractions: Vec<Option<f64>>,
}

/// The knobs that hold `contract`. Whole pages, as the kernel keeps them,
/// so reading back gives what was written.
pub fn limits_for(contract: &MemoryContract) -> MemoryLimits {
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

impl MemoryControl {
    pub fn new(metrics: &Arc<Metrics>) -> anyhow::Result<Self> {
        Ok(MemoryControl {
            families: MemoryFamilies::register(&metrics.registrar())?,
            metrics: metrics.clone(),
            stall_fractions: Vec::new(),
        })
    }

    /// Sets the contract's gauges (on load and reload).
    fn publish_contract(&self, name: &str, contract: &MemoryContract) {
        let tenant = [name];
        let families = &self.families;
        let gauge = |family: &GaugeVec, bytes: u64| {
            family.with_label_values(&tenant).set(bytes as f64);
        };
        gauge(&families.baseline_bytes, contract.baseline);
        gauge(&families.burst_bytes, contract.burst);
        match contract.limit {
            Some(limit) => gauge(&families.limit_bytes, limit),
            None => remove_series(&[&families.limit_bytes], &tenant),
        }
    }

    fn forget_series(&self, name: &str) {
        let families = &self.families;
        let gauges = [
            &families.usage_bytes,
            &families.baseline_bytes,
            &families.burst_bytes,
            &families.limit_bytes,
        ];
        for family in gauges {
            remove_series(&[family], &[name]);
        }
        for kind in ["anon", "file"] {
            remove_series(&[&families.stat_bytes], &[name, kind]);
        }
        for event in ["low", "high", "max", "oom_kill"] {
            remove_series(&[&families.events], &[name, event]);
        }
    }

    /// The kernel caps a group's memory protection at its parent's: a
    /// tenant's memory.min under a parent whose memory.min is 0 protects
    /// nothing (the VM showed it: cache's pages went as if unprotected). So
    /// qosd's parent group (`agent.parent`) and its ancestors below the
    /// root, which qosd owns, hold the sum of the baselines of the tenants
    /// below them. Adopted groups elsewhere depend on their own parents
    /// (README).
    fn protect_parents(tick: &Tick, enforcer: &mut Enforcer, outcome: &mut Outcome) {
        let parent = &tick.config.agent.parent;
        let below = |(_, managed): &(usize, &Managed)| managed.tenant.cgroup.starts_with(parent);
        let (mut hard, mut soft) = (0, 0);
        for (_, managed) in tick.ready().filter(below) {
            match managed.tenant.memory {
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
            let group = tick.hierarchy.group(ancestor);
            match enforcer.apply_memory(&group, limits) {
                Ok(done) => outcome.writes += done,
                Err(error) if error.is_vanished() => {}
                Err(error) => {
                    outcome.errors += 1;
                    tracing::warn!(
                        "cannot protect the memory of {}: {error}",
                        ancestor.display()
                    );
                }
            }
        }
    }

    /// Exports one tenant's usage, events and pressure; the counters grow
    /// by the difference from the previous sample (from zero on the first).
    /// Returns the share of the time between the two in which it stalled.
    fn export_tenant(
        &self,
        tenant: &str,
        now: &MemorySample,
        before: Option<&MemorySample>,
        elapsed_usec: Option<f64>,
    ) -> Option<f64> {
        let families = &self.families;
        families
            .usage_bytes
            .with_label_values(&[tenant])
            .set(now.current as f64);
        for (kind, bytes) in [("anon", now.stat.anon), ("file", now.stat.file)] {
            let gauge = families.stat_bytes.with_label_values(&[tenant, kind]);
            gauge.set(bytes as f64);
        }
        let then = before.copied().unwrap_or_default();
        for ((event, count), (_, was)) in now.events.named().into_iter().zip(then.events.named()) {
            let counter = families.events.with_label_values(&[tenant, event]);
            counter.inc_by(count.saturating_sub(was) as f64);
        }
        let full = |sample: &MemorySample| sample.pressure.full.map_or(0, |line| line.total_usec);
        let some = |sample: &MemorySample| sample.pressure.some.total_usec;
        let stalls = [
            ("some", some(now), some(&then)),
            ("full", full(now), full(&then)),
        ];
        for (kind, now, then) in stalls {
            let labels = [tenant, "memory", kind];
            let counter = self
                .metrics
                .pressure_stall_seconds
                .with_label_values(&labels);
            counter.inc_by(now.saturating_sub(then) as f64 / 1e6);
        }
        let stalled_usec = some(now).saturating_sub(some(&then)) as f64;
        before
            .and(elapsed_usec)
            .map(|elapsed| (stalled_usec / elapsed.max(1.0)).min(1.0))
    }
}

impl ResourceControl for MemoryControl {
    fn configure(&mut self, change: &Reconfigure) {
        for gone in change.gone {
            self.forget_series(&gone.name);
        }
        super::carry_over(&mut self.stall_fractions, change.kept);
        for managed in change.tenants {
            if let Some(contract) = &managed.tenant.memory {
                self.publish_contract(&managed.tenant.name, contract);
            }
        }
    }

    fn control(&mut self, tick: &Tick, enforcer: &mut Enforcer, outcome: &mut Outcome) {
        Self::protect_parents(tick, enforcer, outcome);
        for (index, managed) in tick.ready() {
            if let Some(contract) = &managed.tenant.memory {
                outcome.record(
                    index,
                    enforcer.apply_memory(&managed.group, limits_for(contract)),
                );
            }
        }
    }

    fn export(&mut self, tick: &Tick) {
        let elapsed_usec = tick.previous.map(|previous| {
            let elapsed = tick.sample.taken.saturating_duration_since(previous.taken);
            elapsed.as_micros() as f64
        });
        for (index, managed) in tick.ready() {
            let name = &managed.tenant.name;
            let Some(now) = tick
                .sample
                .tenants
                .get(name)
                .and_then(|t| t.memory.as_ref())
            else {
                continue;
            };
            let before = tick
                .previous
                .and_then(|p| p.tenants.get(name)?.memory.as_ref());
            let stall = self.export_tenant(name, now, before, elapsed_usec);
            self.stall_fractions[index] = stall;
        }
    }

    fn forget(&mut self, index: usize, _enforcer: &mut Enforcer) {
        if let Some(stall) = self.stall_fractions.get_mut(index) {
            *stall = None;
        }
    }

    /// The memory left for tenants (MemTotal less `host.reserved_memory`)
    /// and what is not available (MemTotal less MemAvailable); only when
    /// some tenant has a memory contract.
    fn resource_rows(&self, tick: &Tick) -> Vec<ResourceRow> {
        let Some(host) = tick.sample.host_memory else {
            return Vec::new();
        };
        let capacity = host.total.saturating_sub(tick.config.host.reserved_memory) as f64;
        let used = host.used() as f64;
        let contended = used >= tick.config.host.contention_threshold * capacity;
        let subject = Subject::new("memory", "", "", Unit::Bytes);
        vec![resource_row(subject, capacity, Some(used), contended)]
    }

    fn tenant_rows(&self, tick: &Tick, index: usize) -> Vec<TenantRow> {
        let tenant = &tick.tenants[index].tenant;
        let Some(contract) = tenant.memory else {
            return Vec::new();
        };
        let sample = tick.sample.tenants.get(&tenant.name);
        let usage = sample.and_then(|t| t.memory).map(|m| m.current as f64);
        let terms = (contract.baseline as f64, contract.burst as f64);
        let pressure = self.stall_fractions[index];
        let burst = Some(terms.1);
        let subject = Subject::new("memory", "", "", Unit::Bytes);
        vec![row(tenant, subject, terms, usage, burst, (false, pressure))]
    }
}

/// The memory metric families.
pub struct MemoryFamilies {
    pub usage_bytes: GaugeVec,
    pub stat_bytes: GaugeVec,
    pub events: CounterVec,
    pub baseline_bytes: GaugeVec,
    pub burst_bytes: GaugeVec,
    pub limit_bytes: GaugeVec,
}

impl MemoryFamilies {
    pub fn register(reg: &Registrar) -> anyhow::Result<Self> {
        Ok(MemoryFamilies {
            usage_bytes: reg.gauges(
                "qosd_tenant_memory_usage_bytes",
                "Memory charged to the tenant's cgroup (memory.current).",
                &[TENANT],
            )?,
            stat_bytes: reg.gauges(
                "qosd_tenant_memory_stat_bytes",
                "The tenant's anonymous memory and page cache (memory.stat anon, file).",
                &[TENANT, KIND],
            )?,
            events: reg.counters(
                "qosd_tenant_memory_events_total",
                "Times the tenant hit a memory boundary (memory.events: low, high, max, oom_kill).",
                &[TENANT, "event"],
            )?,
            baseline_bytes: reg.gauges(
                "qosd_tenant_memory_baseline_bytes",
                "Contracted memory baseline (memory.min, or memory.low when soft).",
                &[TENANT],
            )?,
            burst_bytes: reg.gauges(
                "qosd_tenant_memory_burst_bytes",
                "Contracted memory burst (memory.high).",
                &[TENANT],
            )?,
            limit_bytes: reg.gauges(
                "qosd_tenant_memory_limit_bytes",
                "Contracted hard memory limit (memory.max); absent when unlimited.",
                &[TENANT],
            )?,
        })
    }
}
