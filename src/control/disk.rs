//! Disk contracts: each dimension (read/write bytes/s, read/write IOs/s) of
//! each declared device is a resource of its own, shared by the same policy
//! as the CPUs. `io.max` is not work-conserving, so it is lifted while a
//! device is not contended and clamps tenants above baseline when it is.
//! Where the device's scheduler or iocost takes weights, the tenants'
//! weights share it between ticks too.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use prometheus::{Counter, CounterVec, Gauge, GaugeVec};
use tracing::{info, warn};

use super::report::{disk_subject, measured_row, resource_row};
use super::{Outcome, Reconfigure, ResourceControl, Tick};
use crate::cgroup::Hierarchy;
use crate::cgroup::io::{self, DeviceNumber, IoMax, IoWeightMode};
use crate::config::{Contract, DiskCapacity, DiskContract, IoDimension, IoDimensions};
use crate::enforce::Enforcer;
use crate::metrics::{DEVICE, DIMENSION, Metrics, Registrar, SeriesFamily, TENANT, remove_series};
use crate::policy::{self, Allocation, Claim, Resource};
use crate::sample::{Rates, TenantRates};
use crate::status::{ResourceRow, TenantRow};

/// One dimension of one device.
type Key = (DeviceNumber, IoDimension);

pub struct DiskControl {
    families: DiskFamilies,
    metrics: Arc<Metrics>,
    /// `[[host.disks]]`, with numbers updated when a node is made again.
    disks: Vec<DiskCapacity>,
    /// Per tenant, in the agent's order.
    tenants: Vec<DiskTenant>,
    contended: HashMap<Key, bool>,
    /// Declared devices absent from /proc/diskstats (said once).
    missing: HashSet<DeviceNumber>,
    /// Per declared device: whether `io.weight` (iocost) or `io.bfq.weight`
    /// also shares it, or `io.max` alone.
    weight_modes: HashMap<DeviceNumber, IoWeightMode>,
    /// How a device's name is looked up again when its node is made again
    /// (a fake host's in tests).
    resolve_device: fn(&str) -> Result<DeviceNumber, String>,
}

/// What the controller keeps of one tenant.
#[derive(Default)]
struct DiskTenant {
    /// The tenant's contracts, with device numbers kept current.
    contracts: Vec<DiskContract>,
    /// Limits in force, per device and dimension (bytes/s, IOs/s).
    limits: HashMap<Key, f64>,
    /// Per contract, in the same order.
    series: Vec<DeviceSeries>,
    below_baseline_seconds: Option<Counter>,
}

/// One tenant's series on one device; limit gauges only for the dimensions
/// it has contracts on.
struct DeviceSeries {
    read_bytes: Counter,
    written_bytes: Counter,
    read_ios: Counter,
    write_ios: Counter,
    limit: IoDimensions<Option<Gauge>>,
}

/// What one device's dimensions share while they are decided.
struct Sharing<'a> {
    tick: &'a Tick<'a>,
    rates: &'a Rates,
    disk: &'a DiskCapacity,
    /// The ready tenants with a contract on the device, by index.
    tenants: Vec<usize>,
    /// Per tenant of `tenants`, its `io.max` line.
    limits: Vec<IoMax>,
}

impl DiskControl {
    pub fn new(metrics: &Arc<Metrics>) -> anyhow::Result<Self> {
        Ok(DiskControl {
            families: DiskFamilies::register(&metrics.registrar())?,
            metrics: metrics.clone(),
            disks: Vec::new(),
            tenants: Vec::new(),
            contended: HashMap::new(),
            missing: HashSet::new(),
            weight_modes: HashMap::new(),
            resolve_device: crate::host::resolve_block_device,
        })
    }

    /// Looks devices up again with `resolve` (a fake host's in tests).
    pub fn resolving_with(&mut self, resolve: fn(&str) -> Result<DeviceNumber, String>) {
        self.resolve_device = resolve;
    }

    fn contract(&self, index: usize, device: DeviceNumber) -> Option<&DiskContract> {
        let contracts = &self.tenants.get(index)?.contracts;
        contracts.iter().find(|c| c.device.number == device)
    }

    fn device_series(&self, tenant: &str, contract: &DiskContract) -> DeviceSeries {
        let device = contract.device.name.as_str();
        let pair = [tenant, device];
        let families = &self.families;
        let contracted = |dimension: IoDimension| *contract.limits.get(dimension);
        for dimension in IoDimension::ALL {
            let Some(terms) = contracted(dimension) else {
                continue;
            };
            let labels = [tenant, device, dimension.key()];
            families
                .baseline
                .with_label_values(&labels)
                .set(terms.baseline);
            families.burst.with_label_values(&labels).set(terms.burst);
        }
        let limit = |dimension: IoDimension| {
            let labels = [tenant, device, dimension.key()];
            contracted(dimension).map(|_| families.limit.with_label_values(&labels))
        };
        DeviceSeries {
            read_bytes: families.read_bytes.with_label_values(&pair),
            written_bytes: families.written_bytes.with_label_values(&pair),
            read_ios: families.read_ios.with_label_values(&pair),
            write_ios: families.write_ios.with_label_values(&pair),
            limit: IoDimensions {
                read_bps: limit(IoDimension::ReadBps),
                write_bps: limit(IoDimension::WriteBps),
                read_iops: limit(IoDimension::ReadIops),
                write_iops: limit(IoDimension::WriteIops),
            },
        }
    }

    /// Drops a tenant's series on one device.
    fn forget_device_series(&self, tenant: &str, device: &str) {
        let families = &self.families;
        let counters: [&dyn SeriesFamily; 4] = [
            &families.read_bytes,
            &families.written_bytes,
            &families.read_ios,
            &families.write_ios,
        ];
        remove_series(&counters, &[tenant, device]);
        let gauges: [&dyn SeriesFamily; 3] = [&families.limit, &families.baseline, &families.burst];
        for dimension in IoDimension::ALL {
            remove_series(&gauges, &[tenant, device, dimension.key()]);
        }
    }

    /// Which weight-based controller each declared device has, said once
    /// per (re)load: the weights then share a device between ticks too.
    fn detect_weight_modes(&mut self, hierarchy: &Hierarchy) {
        let sys = Path::new("/sys");
        self.weight_modes = self
            .disks
            .iter()
            .map(|disk| {
                let number = disk.device.number;
                let mode = io::weight_mode(hierarchy.root(), number, sys);
                info!("disk {} ({number}): io weights: {mode}", disk.device.name);
                (number, mode)
            })
            .collect();
    }

    /// Decides every dimension of one device, then writes its `io.max`
    /// lines and weights.
    fn control_disk(
        &mut self,
        (tick, rates): (&Tick, &Rates),
        disk: &DiskCapacity,
        enforcer: &mut Enforcer,
        outcome: &mut Outcome,
    ) {
        let device = disk.device.number;
        let tenants: Vec<usize> = tick
            .ready()
            .map(|(i, _)| i)
            .filter(|&i| self.contract(i, device).is_some())
            .collect();
        let mut sharing = Sharing {
            tick,
            rates,
            disk,
            limits: vec![IoMax::UNLIMITED; tenants.len()],
            tenants,
        };
        let mut contended = false;
        for dimension in IoDimension::ALL {
            contended |= self.share_dimension(&mut sharing, dimension);
        }
        let label = disk.device.name.as_str();
        super::publish_contention(&self.metrics, ("disk", label), contended, None);
        let mode = self
            .weight_modes
            .get(&device)
            .copied()
            .unwrap_or(IoWeightMode::None);
        for (&index, &max) in sharing.tenants.iter().zip(&sharing.limits) {
            let group = &tick.tenants[index].group;
            match enforcer.apply_io(group, device, max) {
                Err(error) if error.is_no_device() => self.device_missing(device, enforcer),
                done => outcome.record(index, done),
            }
            if mode != IoWeightMode::None {
                let weight = self.io_weight(index, device, mode);
                outcome.record(index, enforcer.apply_io_weight(group, mode, weight));
            }
        }
    }

    /// The tenant's weight on the device, in the range its controller takes.
    fn io_weight(&self, index: usize, device: DeviceNumber, mode: IoWeightMode) -> u32 {
        let weight = self.contract(index, device).map_or(1.0, |contract| {
            IoDimension::ALL
                .iter()
                .find_map(|&dimension| *contract.limits.get(dimension))
                .map_or(1.0, |terms| terms.weight)
        });
        let range = mode
            .weight_range()
            .unwrap_or(io::WEIGHT_MIN..=io::WEIGHT_MAX);
        ((weight * 100.0).round() as u32).clamp(*range.start(), *range.end())
    }

    /// Runs the policy on one dimension of one device and records each
    /// tenant's limit there. Returns whether it is contended.
    fn share_dimension(&mut self, sharing: &mut Sharing, dimension: IoDimension) -> bool {
        let Some(capacity) = *sharing.disk.capacity.get(dimension) else {
            return false;
        };
        let device = sharing.disk.device.number;
        let key = (device, dimension);
        let contracted: Vec<(usize, Contract<f64>)> = (0..sharing.tenants.len())
            .filter_map(|slot| {
                let contract = self.contract(sharing.tenants[slot], device)?;
                Some((slot, (*contract.limits.get(dimension))?))
            })
            .collect();
        if contracted.is_empty() {
            return false;
        }
        let claims: Vec<Claim> = contracted
            .iter()
            .map(|&(slot, contract)| self.claim(sharing, sharing.tenants[slot], key, contract))
            .collect();
        let resource = Resource {
            capacity,
            threshold: sharing.tick.config.host.contention_threshold,
            measured: sharing
                .rates
                .devices
                .get(&device)
                .map_or(0.0, |m| *m.get(dimension)),
            active_fraction: policy::DISK_ACTIVE_BASELINE_FRACTION,
        };
        let was = self.contended.get(&key).copied().unwrap_or(false);
        let allocation = policy::allocate(resource, &claims, was);
        let name = &sharing.disk.device.name;
        super::log_contention_change(was, allocation.contended, |state| {
            let show = |value| format_value(dimension, value);
            format!(
                "disk {name} {} {state}: demand {} of {} (device {})",
                dimension.key(),
                show(allocation.demand),
                show(capacity),
                show(resource.measured)
            )
        });
        self.contended.insert(key, allocation.contended);
        let why = self.reason(sharing, dimension, &allocation, &contracted, capacity);
        for (&(slot, contract), &limit) in contracted.iter().zip(&allocation.limits) {
            let index = sharing.tenants[slot];
            let before = self.tenants[index].limits.insert(key, limit);
            let tenant = &sharing.tick.tenants[index].tenant.name;
            let what = || format!("{tenant} {} on {name}", dimension.key());
            let show = |v| format_value(dimension, v);
            super::log_limit_change(what, (before, limit), contract, &why, show);
            *io_max_field(&mut sharing.limits[slot], dimension) =
                (limit < capacity).then(|| limit.round().max(io::MAX_LIMIT_MIN as f64) as u64);
        }
        allocation.contended
    }

    fn claim(&self, sharing: &Sharing, index: usize, key: Key, contract: Contract<f64>) -> Claim {
        let (device, dimension) = key;
        let name = &sharing.tick.tenants[index].tenant.name;
        let usage = |rates: &Rates| {
            let io = rates.tenants.get(name)?.io.get(&device);
            Some(io.map_or(0.0, |io| *io.per_second.get(dimension)))
        };
        let rates = sharing.rates;
        let measured = rates.tenants.get(name);
        Claim {
            baseline: contract.baseline,
            burst: contract.burst,
            weight: contract.weight,
            usage: usage(rates).unwrap_or(0.0),
            recent_usage: sharing.tick.recent.and_then(usage),
            limit: self.tenants[index].limits.get(&key).copied(),
            stall: measured.map_or(0.0, |r| r.io_stall.fraction(rates.elapsed)),
        }
    }

    fn reason(
        &self,
        sharing: &Sharing,
        dimension: IoDimension,
        allocation: &Allocation,
        contracted: &[(usize, Contract<f64>)],
        capacity: f64,
    ) -> String {
        let load = format!(
            "demand {} of {}",
            format_value(dimension, allocation.demand),
            format_value(dimension, capacity)
        );
        let resource = format!("disk {} {}", sharing.disk.device.name, dimension.key());
        let below: Vec<&str> = allocation
            .below_baseline
            .iter()
            .map(|&claim| {
                let index = sharing.tenants[contracted[claim].0];
                sharing.tick.tenants[index].tenant.name.as_str()
            })
            .collect();
        super::explain(&resource, allocation.contended, &load, &below)
    }

    /// A declared device absent from /proc/diskstats: said once, and its
    /// limits forgotten (the kernel dropped them with the device). If the
    /// name now resolves to another number (the node was made again), the
    /// new number is used from the next tick.
    fn device_missing(&mut self, number: DeviceNumber, enforcer: &mut Enforcer) {
        let Some(disk) = self.disks.iter_mut().find(|d| d.device.number == number) else {
            return;
        };
        let name = disk.device.name.clone();
        if self.missing.insert(number) {
            warn!("disk {name} ({number}) is gone; its limits are dropped until it comes back");
            enforcer.forget_device(number);
            for state in &mut self.tenants {
                state.limits.retain(|(device, _), _| *device != number);
            }
        }
        if let Ok(renumbered) = (self.resolve_device)(&name)
            && renumbered != number
        {
            info!("disk {name} is now {renumbered} (was {number})");
            disk.device.number = renumbered;
            let contracts = self.tenants.iter_mut().flat_map(|t| &mut t.contracts);
            for contract in contracts.filter(|c| c.device.number == number) {
                contract.device.number = renumbered;
            }
        }
    }

    fn device_present(&mut self, disk: &DiskCapacity) {
        if self.missing.remove(&disk.device.number) {
            info!("disk {} ({}) is back", disk.device.name, disk.device.number);
        }
    }

    fn export_tenant(&self, state: &DiskTenant, tenant: &TenantRates, rates: &Rates) {
        let mut broken = false;
        for (contract, series) in state.contracts.iter().zip(&state.series) {
            let device = contract.device.number;
            let io = tenant.io.get(&device).copied().unwrap_or_default();
            series.read_bytes.inc_by(io.done.read_bps);
            series.written_bytes.inc_by(io.done.write_bps);
            series.read_ios.inc_by(io.done.read_iops);
            series.write_ios.inc_by(io.done.write_iops);
            for dimension in IoDimension::ALL {
                let Some(terms) = contract.limits.get(dimension) else {
                    continue;
                };
                let limit = state.limits.get(&(device, dimension)).copied();
                if let Some(gauge) = series.limit.get(dimension) {
                    gauge.set(limit.unwrap_or(terms.burst));
                }
                let usage = *io.per_second.get(dimension);
                let stall = tenant.io_stall.fraction(rates.elapsed);
                broken |= policy::contract_broken_under(usage, terms.baseline, stall, limit);
            }
        }
        if let Some(counter) = state.below_baseline_seconds.as_ref().filter(|_| broken) {
            counter.inc_by(rates.elapsed.as_secs_f64());
        }
    }
}

impl ResourceControl for DiskControl {
    fn configure(&mut self, change: &Reconfigure) {
        self.disks = change.config.host.disks.clone();
        for gone in change.gone {
            for contract in &gone.disk {
                self.forget_device_series(&gone.name, &contract.device.name);
            }
        }
        let mut kept = std::mem::take(&mut self.tenants);
        super::carry_over(&mut kept, change.kept);
        self.tenants = kept
            .into_iter()
            .zip(change.tenants)
            .map(|(state, managed)| self.tenant_state(state, &managed.tenant))
            .collect();
        self.detect_weight_modes(change.hierarchy);
    }

    fn control(&mut self, tick: &Tick, enforcer: &mut Enforcer, outcome: &mut Outcome) {
        let Some(rates) = tick.rates else {
            return;
        };
        for index in 0..self.disks.len() {
            let disk = self.disks[index].clone();
            let number = disk.device.number;
            if !rates.devices.contains_key(&number) {
                self.device_missing(number, enforcer);
                continue;
            }
            self.device_present(&disk);
            self.control_disk((tick, rates), &disk, enforcer, outcome);
        }
    }

    fn export(&mut self, tick: &Tick) {
        let Some(rates) = tick.rates else {
            return;
        };
        for (managed, state) in tick.tenants.iter().zip(&self.tenants) {
            if let Some(tenant) = rates.tenants.get(&managed.tenant.name) {
                self.export_tenant(state, tenant, rates);
            }
        }
    }

    fn forget(&mut self, index: usize, _enforcer: &mut Enforcer) {
        if let Some(state) = self.tenants.get_mut(index) {
            state.limits.clear();
        }
    }

    fn resource_rows(&self, tick: &Tick) -> Vec<ResourceRow> {
        let Some(rates) = tick.rates else {
            return Vec::new();
        };
        let mut rows = Vec::new();
        for disk in &self.disks {
            let number = disk.device.number;
            for dimension in IoDimension::ALL {
                let Some(capacity) = *disk.capacity.get(dimension) else {
                    continue;
                };
                let used = rates.devices.get(&number).map(|used| *used.get(dimension));
                let contended = self.contended.get(&(number, dimension)).copied();
                let subject = disk_subject(&disk.device.name, dimension);
                let row = resource_row(subject, capacity, used, contended.unwrap_or(false));
                rows.push(row);
            }
        }
        rows
    }

    fn tenant_rows(&self, tick: &Tick, index: usize) -> Vec<TenantRow> {
        let tenant = &tick.tenants[index].tenant;
        let state = &self.tenants[index];
        let measured = tick
            .rates
            .and_then(|rates| Some((rates, rates.tenants.get(&tenant.name)?)));
        let mut rows = Vec::new();
        for contract in &state.contracts {
            let number = contract.device.number;
            for dimension in IoDimension::ALL {
                let Some(terms) = contract.limits.get(dimension) else {
                    continue;
                };
                let seen = measured.map(|(rates, measured)| {
                    let io = measured.io.get(&number).copied().unwrap_or_default();
                    let stall = measured.io_stall.fraction(rates.elapsed);
                    (*io.per_second.get(dimension), stall)
                });
                let limit = state.limits.get(&(number, dimension)).copied();
                let subject = disk_subject(&contract.device.name, dimension);
                let terms = (terms.baseline, terms.burst);
                let limit = limit.or(Some(terms.1));
                rows.push(measured_row(tenant, subject, terms, seen, limit));
            }
        }
        rows
    }
}

impl DiskControl {
    /// A tenant's state under a new configuration: its contracts as
    /// written now, its series made again, what it had kept.
    fn tenant_state(&self, mut state: DiskTenant, tenant: &crate::config::Tenant) -> DiskTenant {
        for contract in &state.contracts {
            let dropped = !tenant
                .disk
                .iter()
                .any(|c| c.device.name == contract.device.name);
            if dropped {
                self.forget_device_series(&tenant.name, &contract.device.name);
            }
        }
        state.contracts = tenant.disk.clone();
        state.series = tenant
            .disk
            .iter()
            .map(|contract| self.device_series(&tenant.name, contract))
            .collect();
        let below = &self.metrics.below_baseline_seconds;
        state.below_baseline_seconds = Some(below.with_label_values(&[&tenant.name, "disk"]));
        state
    }
}

pub(crate) fn io_max_field(max: &mut IoMax, dimension: IoDimension) -> &mut Option<u64> {
    match dimension {
        IoDimension::ReadBps => &mut max.rbps,
        IoDimension::WriteBps => &mut max.wbps,
        IoDimension::ReadIops => &mut max.riops,
        IoDimension::WriteIops => &mut max.wiops,
    }
}

/// MiB/s for bandwidth, IOs/s for IOPS.
fn format_value(dimension: IoDimension, value: f64) -> String {
    match dimension {
        IoDimension::ReadBps | IoDimension::WriteBps => format!("{:.1}MiB/s", value / 1_048_576.0),
        IoDimension::ReadIops | IoDimension::WriteIops => format!("{value:.0}IOPS"),
    }
}

/// The disk metric families.
pub struct DiskFamilies {
    pub read_bytes: CounterVec,
    pub written_bytes: CounterVec,
    pub read_ios: CounterVec,
    pub write_ios: CounterVec,
    pub limit: GaugeVec,
    pub baseline: GaugeVec,
    pub burst: GaugeVec,
}

impl DiskFamilies {
    pub fn register(reg: &Registrar) -> anyhow::Result<Self> {
        Ok(DiskFamilies {
                read_bytes: reg.counters(
                    "qosd_tenant_disk_read_bytes_total",
                    "Bytes the tenant read from the device (io.stat rbytes).",
                    &[TENANT, DEVICE],
                )?,
                written_bytes: reg.counters(
                    "qosd_tenant_disk_written_bytes_total",
                    "Bytes the tenant wrote to the device (io.stat wbytes).",
                    &[TENANT, DEVICE],
                )?,
                read_ios: reg.counters(
                    "qosd_tenant_disk_read_ios_total",
                    "Read IOs of the tenant on the device (io.stat rios).",
                    &[TENANT, DEVICE],
                )?,
                write_ios: reg.counters(
                    "qosd_tenant_disk_write_ios_total",
                    "Write IOs of the tenant on the device (io.stat wios).",
                    &[TENANT, DEVICE],
                )?,
                limit: reg.gauges(
                    "qosd_tenant_disk_limit",
                    "io.max qosd holds now: bytes/s for *_bps, IOs/s for *_iops; absent or the burst when unlimited.",
                    &[TENANT, DEVICE, DIMENSION],
                )?,
                baseline: reg.gauges(
                    "qosd_tenant_disk_baseline",
                    "Contracted disk baseline: bytes/s for *_bps, IOs/s for *_iops.",
                    &[TENANT, DEVICE, DIMENSION],
                )?,
                burst: reg.gauges(
                    "qosd_tenant_disk_burst",
                    "Contracted disk burst: bytes/s for *_bps, IOs/s for *_iops.",
                    &[TENANT, DEVICE, DIMENSION],
                )?,
        })
    }
}
