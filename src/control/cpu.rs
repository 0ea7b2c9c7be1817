//! CPU contracts: `cpu.weight` from the contract's weight, boosted while a
//! tenant waits below its baseline under contention, and `cpu.max` from the
//! policy's share of the host's cores. `cpu.max` is not work-conserving, so
//! it is lifted while the CPUs are not contended and clamps tenants above
//! baseline when they are.

use prometheus::{Counter, CounterVec, Gauge, GaugeVec};

use super::report::{measured_row, resource_row};
use super::{Managed, Outcome, Reconfigure, ResourceControl, Tick};
use crate::cgroup::cpu::{CpuMax, DEFAULT_PERIOD_US, QUOTA_MIN_US};
use crate::config::{Contract, Cores};
use crate::enforce::{CpuLimits, Enforcer};
use crate::metrics::{KIND, Metrics, RESOURCE, Registrar, TENANT, remove_series};
use crate::policy::{self, Allocation, Claim, Resource};
use crate::sample::Rates;
use crate::status::{ResourceRow, Subject, TenantRow, Unit};

pub struct CpuControl {
    families: CpuFamilies,
    /// Shared families: contention, stalls, broken contracts.
    metrics: std::sync::Arc<Metrics>,
    /// Per tenant, in the agent's order.
    tenants: Vec<CpuTenant>,
    contended: bool,
}

/// What the controller keeps of one tenant.
#[derive(Default)]
struct CpuTenant {
    /// The CPU limit (cores) in force, as qosd last set it.
    limit: Option<f64>,
    /// Whether its weight is boosted (`policy::weight_boosts`).
    boosted: bool,
    /// The `cpu.weight` in force, as qosd last set it.
    weight: Option<u32>,
    /// Looked up once, not on every tick.
    series: Option<CpuSeries>,
}

/// One tenant's series.
struct CpuSeries {
    usage_seconds: Counter,
    throttled_seconds: Counter,
    limit_cores: Gauge,
    weight: Gauge,
    stall_some_seconds: Counter,
    stall_full_seconds: Counter,
    below_baseline_seconds: Counter,
}

impl CpuControl {
    pub fn new(metrics: &std::sync::Arc<Metrics>) -> anyhow::Result<Self> {
        Ok(CpuControl {
            families: CpuFamilies::register(&metrics.registrar())?,
            metrics: metrics.clone(),
            tenants: Vec::new(),
            contended: false,
        })
    }

    /// Cores the tenants share: online CPUs minus `host.reserved_cpu`.
    fn capacity(tick: &Tick) -> f64 {
        let online = f64::from(tick.sample.host_cpu.online_cpus);
        (online - tick.config.host.reserved_cpu.get()).max(0.0)
    }

    /// The contract's series change only on reload, so they are set then.
    fn publish_contract(&self, name: &str, contract: Contract<Cores>) {
        let one = [name];
        let families = &self.families;
        families
            .baseline_cores
            .with_label_values(&one)
            .set(contract.baseline.get());
        families
            .burst_cores
            .with_label_values(&one)
            .set(contract.burst.get());
    }

    fn forget_series(&self, name: &str) {
        let families = &self.families;
        remove_series(
            &[
                &families.usage_seconds,
                &families.throttled_seconds,
                &families.baseline_cores,
                &families.burst_cores,
                &families.limit_cores,
                &families.weight,
            ],
            &[name],
        );
    }

    fn report_contention(&self, allocation: &Allocation, capacity: f64, rates: &Rates) {
        super::log_contention_change(self.contended, allocation.contended, |state| {
            format!(
                "cpu {state}: demand {:.2} of {capacity:.2} cores (host busy {:.2})",
                allocation.demand, rates.host_cpu_busy_cores
            )
        });
        let gauges = Some((capacity, allocation.demand));
        super::publish_contention(&self.metrics, ("cpu", ""), allocation.contended, gauges);
    }

    /// Why limits are what they are, for the clamp and release log lines.
    fn reason(
        tick: &Tick,
        allocation: &Allocation,
        controlled: &[(usize, Contract<Cores>)],
        capacity: f64,
    ) -> String {
        let load = format!("{:.2}/{capacity:.2} cores", allocation.demand);
        let below: Vec<&str> = allocation
            .below_baseline
            .iter()
            .map(|&slot| tick.tenants[controlled[slot].0].tenant.name.as_str())
            .collect();
        super::explain("cpu", allocation.contended, &load, &below)
    }

    fn claim(&self, tick: &Tick, index: usize, contract: Contract<Cores>, rates: &Rates) -> Claim {
        let name = &tick.tenants[index].tenant.name;
        let usage = |rates: &Rates| rates.tenants.get(name).map(|r| r.cpu_cores);
        let measured = rates.tenants.get(name);
        Claim {
            baseline: contract.baseline.get(),
            burst: contract.burst.get(),
            weight: contract.weight,
            usage: usage(rates).unwrap_or(0.0),
            recent_usage: tick.recent.and_then(usage),
            limit: self.tenants[index].limit,
            stall: measured.map_or(0.0, |r| r.cpu_stall.fraction(rates.elapsed)),
        }
    }

    fn apply_limit(
        &mut self,
        (tick, index): (&Tick, usize),
        contract: Contract<Cores>,
        (limit, weight, boosted): (f64, u32, bool),
        why: &str,
        enforcer: &mut Enforcer,
    ) -> Result<crate::enforce::Writes, crate::cgroup::CgroupError> {
        let online = f64::from(tick.sample.host_cpu.online_cpus);
        let max = cpu_max(limit, online);
        let desired = CpuLimits {
            weight,
            max,
            burst_us: max.quota_us.unwrap_or(0),
        };
        let managed = &tick.tenants[index];
        let done = enforcer.apply_cpu(&managed.group, desired)?;
        self.tenants[index].weight = Some(weight);
        let was_boosted = std::mem::replace(&mut self.tenants[index].boosted, boosted);
        log_boost_change(
            &managed.tenant.name,
            (was_boosted, boosted),
            desired.weight,
            why,
        );
        let what = || format!("{} cpu.max", managed.tenant.name);
        let cores = |v: f64| format!("{v:.2} cores");
        let before = self.tenants[index].limit.replace(limit);
        super::log_limit_change(what, (before, limit), in_cores(contract), why, cores);
        Ok(done)
    }
}

impl ResourceControl for CpuControl {
    fn configure(&mut self, change: &Reconfigure) {
        for gone in change.gone {
            self.forget_series(&gone.name);
        }
        super::carry_over(&mut self.tenants, change.kept);
        let (families, shared) = (&self.families, &self.metrics);
        for (state, managed) in self.tenants.iter_mut().zip(change.tenants) {
            let name = &managed.tenant.name;
            state
                .series
                .get_or_insert_with(|| tenant_series(families, shared, name));
        }
        for managed in change.tenants {
            if let Some(contract) = managed.tenant.cpu {
                self.publish_contract(&managed.tenant.name, contract);
            }
        }
    }

    fn control(&mut self, tick: &Tick, enforcer: &mut Enforcer, outcome: &mut Outcome) {
        let Some(rates) = tick.rates else {
            return;
        };
        let capacity = Self::capacity(tick);
        let controlled: Vec<(usize, Contract<Cores>)> = tick
            .ready()
            .filter_map(|(i, managed)| Some((i, managed.tenant.cpu?)))
            .collect();
        let claims: Vec<Claim> = controlled
            .iter()
            .map(|&(i, contract)| self.claim(tick, i, contract, rates))
            .collect();
        let resource = Resource {
            capacity,
            threshold: tick.config.host.contention_threshold,
            measured: rates.host_cpu_busy_cores,
            active_fraction: policy::ACTIVE_BASELINE_FRACTION,
        };
        let allocation = policy::allocate(resource, &claims, self.contended);
        self.report_contention(&allocation, capacity, rates);
        self.contended = allocation.contended;
        let why = Self::reason(tick, &allocation, &controlled, capacity);
        let was_boosted: Vec<bool> = controlled
            .iter()
            .map(|&(index, _)| self.tenants[index].boosted)
            .collect();
        let boosts = policy::weight_boosts(capacity, &claims, allocation.contended, &was_boosted);
        let weights = policy::boosted_cpu_weights(&claims, &boosts);
        for (slot, &(index, contract)) in controlled.iter().enumerate() {
            let decided = (allocation.limits[slot], weights[slot], boosts[slot]);
            let done = self.apply_limit((tick, index), contract, decided, &why, enforcer);
            outcome.record(index, done);
        }
    }

    fn export(&mut self, tick: &Tick) {
        let Some(rates) = tick.rates else {
            return;
        };
        self.families.host_busy_cores.set(rates.host_cpu_busy_cores);
        let stall = |kind: &str, seconds: f64| {
            let labels = ["cpu", kind];
            let family = &self.families.host_pressure_stall_seconds;
            family.with_label_values(&labels).inc_by(seconds);
        };
        stall("some", rates.host_cpu_stall.some_seconds);
        stall("full", rates.host_cpu_stall.full_seconds);
        for (managed, state) in tick.tenants.iter().zip(&self.tenants) {
            export_tenant(managed, state, rates);
        }
    }

    fn forget(&mut self, index: usize, _enforcer: &mut Enforcer) {
        if let Some(state) = self.tenants.get_mut(index) {
            state.limit = None;
            state.boosted = false;
            state.weight = None;
        }
    }

    fn resource_rows(&self, tick: &Tick) -> Vec<ResourceRow> {
        let Some(rates) = tick.rates else {
            return Vec::new();
        };
        let capacity = Self::capacity(tick);
        let used = Some(rates.host_cpu_busy_cores);
        vec![resource_row(
            Subject::new("cpu", "", "", Unit::Cores),
            capacity,
            used,
            self.contended,
        )]
    }

    fn tenant_rows(&self, tick: &Tick, index: usize) -> Vec<TenantRow> {
        let tenant = &tick.tenants[index].tenant;
        let Some(contract) = tenant.cpu else {
            return Vec::new();
        };
        let seen = tick.rates.and_then(|rates| {
            let measured = rates.tenants.get(&tenant.name)?;
            Some((
                measured.cpu_cores,
                measured.cpu_stall.fraction(rates.elapsed),
            ))
        });
        let terms = (contract.baseline.get(), contract.burst.get());
        let limit = self.tenants[index].limit;
        vec![measured_row(
            tenant,
            Subject::new("cpu", "", "", Unit::Cores),
            terms,
            seen,
            limit,
        )]
    }
}

/// A log line when a tenant's weight boost starts or ends; `weight` is the
/// one now in force.
fn log_boost_change(tenant: &str, (was, now): (bool, bool), weight: u32, why: &str) {
    match (was, now) {
        (false, true) => tracing::info!(
            "{tenant} cpu.weight boosted to {weight}: below its baseline under contention ({why})"
        ),
        (true, false) => tracing::info!("{tenant} cpu.weight back to {weight} ({why})"),
        _ => {}
    }
}

fn tenant_series(families: &CpuFamilies, shared: &Metrics, tenant: &str) -> CpuSeries {
    let one = [tenant];
    let stall = |kind| {
        shared
            .pressure_stall_seconds
            .with_label_values(&[tenant, "cpu", kind])
    };
    CpuSeries {
        usage_seconds: families.usage_seconds.with_label_values(&one),
        throttled_seconds: families.throttled_seconds.with_label_values(&one),
        limit_cores: families.limit_cores.with_label_values(&one),
        weight: families.weight.with_label_values(&one),
        stall_some_seconds: stall("some"),
        stall_full_seconds: stall("full"),
        below_baseline_seconds: shared
            .below_baseline_seconds
            .with_label_values(&[tenant, "cpu"]),
    }
}

fn export_tenant(managed: &Managed, state: &CpuTenant, rates: &Rates) {
    let Some(series) = &state.series else {
        return;
    };
    if let Some(limit) = state.limit {
        series.limit_cores.set(limit);
    }
    if let Some(weight) = state.weight {
        series.weight.set(f64::from(weight));
    }
    let Some(tenant) = rates.tenants.get(&managed.tenant.name) else {
        return;
    };
    series.usage_seconds.inc_by(tenant.cpu_seconds);
    series
        .throttled_seconds
        .inc_by(tenant.cpu_throttled_seconds);
    series
        .stall_some_seconds
        .inc_by(tenant.cpu_stall.some_seconds);
    series
        .stall_full_seconds
        .inc_by(tenant.cpu_stall.full_seconds);
    let broken = managed.tenant.cpu.is_some_and(|contract| {
        policy::contract_broken_under(
            tenant.cpu_cores,
            contract.baseline.get(),
            tenant.cpu_stall.fraction(rates.elapsed),
            state.limit,
        )
    });
    if broken {
        series
            .below_baseline_seconds
            .inc_by(rates.elapsed.as_secs_f64());
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

fn in_cores(contract: Contract<Cores>) -> Contract<f64> {
    Contract {
        baseline: contract.baseline.get(),
        burst: contract.burst.get(),
        weight: contract.weight,
    }
}

/// The CPU metric families.
pub struct CpuFamilies {
    pub usage_seconds: CounterVec,
    pub throttled_seconds: CounterVec,
    pub baseline_cores: GaugeVec,
    pub burst_cores: GaugeVec,
    pub limit_cores: GaugeVec,
    pub weight: GaugeVec,
    pub host_busy_cores: Gauge,
    pub host_pressure_stall_seconds: CounterVec,
}

impl CpuFamilies {
    pub fn register(reg: &Registrar) -> anyhow::Result<Self> {
        Ok(CpuFamilies {
            usage_seconds: reg.counters(
                "qosd_tenant_cpu_usage_seconds_total",
                "CPU time used by the tenant's cgroup.",
                &[TENANT],
            )?,
            throttled_seconds: reg.counters(
                "qosd_tenant_cpu_throttled_seconds_total",
                "Time the tenant's cgroup was throttled by cpu.max.",
                &[TENANT],
            )?,
            baseline_cores: reg.gauges(
                "qosd_tenant_cpu_baseline_cores",
                "Contracted CPU baseline.",
                &[TENANT],
            )?,
            burst_cores: reg.gauges(
                "qosd_tenant_cpu_burst_cores",
                "Contracted CPU burst.",
                &[TENANT],
            )?,
            limit_cores: reg.gauges(
                "qosd_tenant_cpu_limit_cores",
                "CPU limit (cpu.max) qosd holds now.",
                &[TENANT],
            )?,
            weight: reg.gauges(
                "qosd_tenant_cpu_weight",
                "cpu.weight qosd holds now, boosted or not.",
                &[TENANT],
            )?,
            host_busy_cores: reg.gauge(
                "qosd_host_cpu_busy_cores",
                "Busy CPUs on the host, all processes.",
            )?,
            host_pressure_stall_seconds: reg.counters(
                "qosd_host_pressure_stall_seconds_total",
                "Host-wide stall time from /proc/pressure (kind: some or full).",
                &[RESOURCE, KIND],
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::*;
    use crate::cgroup::Hierarchy;
    use crate::config::Config;
    use crate::procfs::ProcFs;
    use crate::sample::{self, HostWanted, Sample, Wanted};
    use crate::testing::FakeHost;

    /// The fake host's two tenants with t0's CPU baseline at `baseline`
    /// and t1's at 0.3 (weight 30).
    fn config(host: &FakeHost, baseline: &str) -> Config {
        let text = host
            .config_toml()
            .replacen("baseline = 0.02,", &format!("baseline = {baseline},"), 1)
            .replacen("baseline = 0.01,", "baseline = 0.3,", 1);
        let origin = Path::new("cpu.toml");
        crate::config::parse(&text, origin, &FakeHost::facts())
            .unwrap()
            .config
    }

    fn take(host: &FakeHost, config: &Config, tenants: &[Managed]) -> Sample {
        let wanted: Vec<Wanted> = tenants
            .iter()
            .map(|m| Wanted::for_tenant(&m.tenant, &m.group, false))
            .collect();
        let proc = ProcFs::at(host.proc_root());
        let host_wanted = HostWanted::for_config(config, false);
        sample::take(&proc, &wanted, host_wanted).unwrap().0
    }

    /// One decision over a second of the fake host's counters: t0 gets
    /// 0.67 of the two saturated CPUs and waits 6.7% of the time, t1 1.33.
    /// The weights written, t0's then t1's.
    fn weights_after_one_second(t0_baseline: &str) -> (String, String) {
        let dir = tempfile::tempdir().unwrap();
        let mut host = FakeHost::create(dir.path(), 2).unwrap();
        let config = config(&host, t0_baseline);
        let hierarchy = Hierarchy::at(host.cgroup_root());
        let tenants: Vec<Managed> = config
            .tenants
            .iter()
            .map(|tenant| Managed {
                tenant: tenant.clone(),
                group: hierarchy.group(Path::new(&tenant.name)),
                ready: true,
            })
            .collect();
        let earlier = take(&host, &config, &tenants);
        host.advance().unwrap();
        let mut later = take(&host, &config, &tenants);
        later.taken = earlier.taken + Duration::from_secs(1);
        let rates = Rates::between(&earlier, &later);
        let metrics = std::sync::Arc::new(Metrics::new().unwrap());
        let mut control = CpuControl::new(&metrics).unwrap();
        let (kept, gone) = (vec![None; tenants.len()], Vec::new());
        control.configure(&Reconfigure {
            config: &config,
            tenants: &tenants,
            kept: &kept,
            gone: &gone,
            hierarchy: &hierarchy,
        });
        let tick = Tick {
            config: &config,
            tenants: &tenants,
            hierarchy: &hierarchy,
            sample: &later,
            previous: Some(&earlier),
            rates: Some(&rates),
            recent: None,
        };
        let mut outcome = Outcome::default();
        control.control(&tick, &mut Enforcer::new(false), &mut outcome);
        assert!(outcome.failed.is_empty(), "{:?}", outcome.failed);
        let weight = |tenant: usize| {
            let path = host.tenant_dir(tenant).join("cpu.weight");
            std::fs::read_to_string(path).unwrap().trim().to_owned()
        };
        (weight(0), weight(1))
    }

    #[test]
    fn a_tenant_waiting_below_its_baseline_gets_its_weight_boosted() {
        let (victim, neighbour) = weights_after_one_second("1.0");
        // A hundred times the weight of the tenants that are not boosted.
        assert_eq!((victim.as_str(), neighbour.as_str()), ("3000", "30"));
    }

    #[test]
    fn a_tenant_above_its_baseline_keeps_its_own_weight() {
        let (t0, t1) = weights_after_one_second("0.5");
        assert_eq!((t0.as_str(), t1.as_str()), ("50", "30"));
    }
}
