//! Disk contracts: each dimension (read/write bytes/s, read/write IOs/s) of
//! each declared device is a resource of its own, shared by the same policy
//! as the CPUs. `io.max` is not work-conserving, so it is lifted while a
//! device is not contended and clamps tenants above baseline when it is.

use tracing::{info, warn};

use super::{Agent, TenantState, log_limit_change};
use std::path::Path;

use crate::cgroup::io::{self, DeviceNumber, IoMax, IoWeightMode};
use crate::config::{Contract, DiskCapacity, IoDimension, IoDimensions};
use crate::enforce::Writes;
use crate::policy::{self, Claim, Resource};
use crate::sample::Rates;

impl Agent {
    pub(super) fn control_disks(&mut self, rates: &Rates) {
        let mut done = Writes::default();
        for index in 0..self.config.host.disks.len() {
            let disk = self.config.host.disks[index].clone();
            let Some(device_rates) = rates.devices.get(&disk.device.number) else {
                self.device_missing(index);
                continue;
            };
            self.device_present(&disk);
            done += self.control_disk(&disk, device_rates, rates);
        }
        self.metrics.enforcement_writes.inc_by(done.writes);
        self.metrics
            .drift_corrections
            .inc_by(done.drift_corrections);
    }

    fn control_disk(
        &mut self,
        disk: &DiskCapacity,
        measured: &IoDimensions<f64>,
        rates: &Rates,
    ) -> Writes {
        let device = disk.device.number;
        let tenants: Vec<usize> = (0..self.tenants.len())
            .filter(|&i| self.tenants[i].ready && disk_contract(&self.tenants[i], device).is_some())
            .collect();
        let mut limits = vec![IoMax::UNLIMITED; tenants.len()];
        let mut contended = false;
        for dimension in IoDimension::ALL {
            let Some(capacity) = *disk.capacity.get(dimension) else {
                continue;
            };
            let resource = Resource {
                capacity,
                threshold: self.config.host.contention_threshold,
                measured: *measured.get(dimension),
            };
            contended |=
                self.share_dimension(disk, dimension, resource, &tenants, &mut limits, rates);
        }
        let label = disk.device.name.as_str();
        self.metrics
            .resource_contended
            .with_label_values(&["disk", label])
            .set(f64::from(u8::from(contended)));
        let mode = self
            .io_weight_modes
            .get(&device)
            .copied()
            .unwrap_or(IoWeightMode::None);
        let mut done = Writes::default();
        for (slot, &index) in tenants.iter().enumerate() {
            done += self.apply_io(index, device, limits[slot]);
            if mode != IoWeightMode::None {
                done += self.apply_io_weight(index, device, mode);
            }
        }
        done
    }

    /// Which weight-based controller each declared device has, said once
    /// per (re)load: the weights then share a device between ticks too.
    pub(super) fn detect_io_weight_modes(&mut self) {
        let sys = Path::new("/sys");
        self.io_weight_modes = self
            .config
            .host
            .disks
            .iter()
            .map(|disk| {
                let number = disk.device.number;
                let mode = io::weight_mode(self.hierarchy.root(), number, sys);
                info!("disk {} ({number}): io weights: {mode}", disk.device.name);
                (number, mode)
            })
            .collect();
    }

    fn apply_io_weight(
        &mut self,
        index: usize,
        device: DeviceNumber,
        mode: IoWeightMode,
    ) -> Writes {
        let state = &self.tenants[index];
        let Some(contract) = disk_contract(state, device) else {
            return Writes::default();
        };
        let weight = IoDimension::ALL
            .iter()
            .find_map(|&dimension| *contract.get(dimension))
            .map_or(1.0, |terms| terms.weight);
        let range = mode
            .weight_range()
            .unwrap_or(io::WEIGHT_MIN..=io::WEIGHT_MAX);
        let desired = ((weight * 100.0).round() as u32).clamp(*range.start(), *range.end());
        match self.enforcer.apply_io_weight(&state.group, mode, desired) {
            Ok(done) => done,
            Err(error) => {
                let name = state.tenant.name.clone();
                self.group_failed(&name, &error);
                Writes::default()
            }
        }
    }

    /// Runs the policy on one dimension of one device and records each
    /// tenant's limit there into `limits`. Returns whether it is contended.
    fn share_dimension(
        &mut self,
        disk: &DiskCapacity,
        dimension: IoDimension,
        resource: Resource,
        tenants: &[usize],
        limits: &mut [IoMax],
        rates: &Rates,
    ) -> bool {
        let device = disk.device.number;
        let contracted: Vec<(usize, Contract<f64>)> = tenants
            .iter()
            .enumerate()
            .filter_map(|(slot, &i)| {
                Some((
                    slot,
                    (*disk_contract(&self.tenants[i], device)?.get(dimension))?,
                ))
            })
            .collect();
        if contracted.is_empty() {
            return false;
        }
        let claims: Vec<Claim> = contracted
            .iter()
            .map(|&(slot, contract)| {
                io_claim(
                    &self.tenants[tenants[slot]],
                    (device, dimension),
                    contract,
                    rates,
                    self.recent_rates.as_ref(),
                )
            })
            .collect();
        let key = (device, dimension);
        let was = self.disk_contended.get(&key).copied().unwrap_or(false);
        let allocation = policy::allocate(resource, &claims, was);
        if allocation.contended != was {
            let state = if allocation.contended {
                "contended"
            } else {
                "no longer contended"
            };
            info!(
                "disk {} {} {state}: demand {} of {} (device {})",
                disk.device.name,
                dimension.key(),
                format_value(dimension, allocation.demand),
                format_value(dimension, resource.capacity),
                format_value(dimension, resource.measured)
            );
        }
        self.disk_contended.insert(key, allocation.contended);
        let why = self.disk_reason(
            disk,
            dimension,
            &allocation,
            &contracted,
            tenants,
            resource.capacity,
        );
        for (&(slot, contract), &limit) in contracted.iter().zip(&allocation.limits) {
            let state = &mut self.tenants[tenants[slot]];
            let before = state.disk_limits.insert(key, limit);
            let what = || {
                format!(
                    "{} {} on {}",
                    state.tenant.name,
                    dimension.key(),
                    disk.device.name
                )
            };
            log_limit_change(what, before, limit, contract, &why, |v| {
                format_value(dimension, v)
            });
            *io_max_field(&mut limits[slot], dimension) = (limit < resource.capacity)
                .then(|| limit.round().max(io::MAX_LIMIT_MIN as f64) as u64);
        }
        allocation.contended
    }

    fn disk_reason(
        &self,
        disk: &DiskCapacity,
        dimension: IoDimension,
        allocation: &policy::Allocation,
        contracted: &[(usize, Contract<f64>)],
        tenants: &[usize],
        capacity: f64,
    ) -> String {
        let load = format!(
            "demand {} of {}",
            format_value(dimension, allocation.demand),
            format_value(dimension, capacity)
        );
        let resource = format!("disk {} {}", disk.device.name, dimension.key());
        let below: Vec<&str> = allocation
            .below_baseline
            .iter()
            .map(|&claim| {
                self.tenants[tenants[contracted[claim].0]]
                    .tenant
                    .name
                    .as_str()
            })
            .collect();
        super::explain(&resource, allocation.contended, &load, &below)
    }

    fn apply_io(&mut self, index: usize, device: DeviceNumber, max: IoMax) -> Writes {
        let state = &self.tenants[index];
        match self.enforcer.apply_io(&state.group, device, max) {
            Ok(done) => done,
            Err(error) if error.is_no_device() => {
                if let Some(index) = self
                    .config
                    .host
                    .disks
                    .iter()
                    .position(|d| d.device.number == device)
                {
                    self.device_missing(index);
                }
                Writes::default()
            }
            Err(error) => {
                let name = state.tenant.name.clone();
                self.group_failed(&name, &error);
                Writes::default()
            }
        }
    }

    /// A declared device absent from /proc/diskstats: said once, and its
    /// limits forgotten (the kernel dropped them with the device). If the
    /// name now resolves to another number (the node was made again), the
    /// new number is used from the next tick.
    fn device_missing(&mut self, index: usize) {
        let disk = &self.config.host.disks[index];
        let (name, number) = (disk.device.name.clone(), disk.device.number);
        if self.missing_devices.insert(number) {
            warn!("disk {name} ({number}) is gone; its limits are dropped until it comes back");
            self.enforcer.forget_device(number);
            for state in &mut self.tenants {
                state.disk_limits.retain(|(device, _), _| *device != number);
            }
        }
        if let Ok(renumbered) = (self.host_lookups.resolve_device)(&name)
            && renumbered != number
        {
            info!("disk {name} is now {renumbered} (was {number})");
            self.config.host.disks[index].device.number = renumbered;
            for state in &mut self.tenants {
                for contract in state
                    .tenant
                    .disk
                    .iter_mut()
                    .filter(|c| c.device.number == number)
                {
                    contract.device.number = renumbered;
                }
            }
        }
    }

    fn device_present(&mut self, disk: &DiskCapacity) {
        if self.missing_devices.remove(&disk.device.number) {
            info!("disk {} ({}) is back", disk.device.name, disk.device.number);
        }
    }
}

fn disk_contract(
    state: &TenantState,
    device: DeviceNumber,
) -> Option<&IoDimensions<Option<Contract<f64>>>> {
    state
        .tenant
        .disk
        .iter()
        .find(|contract| contract.device.number == device)
        .map(|contract| &contract.limits)
}

fn io_claim(
    state: &TenantState,
    (device, dimension): (DeviceNumber, IoDimension),
    contract: Contract<f64>,
    rates: &Rates,
    recent: Option<&Rates>,
) -> Claim {
    let measured = rates.tenants.get(&state.tenant.name);
    let usage = |rates: &Rates| {
        let io = rates.tenants.get(&state.tenant.name)?.io.get(&device);
        Some(io.map_or(0.0, |io| *io.per_second.get(dimension)))
    };
    Claim {
        baseline: contract.baseline,
        burst: contract.burst,
        weight: contract.weight,
        usage: usage(rates).unwrap_or(0.0),
        recent_usage: recent.and_then(usage),
        limit: state.disk_limits.get(&(device, dimension)).copied(),
        stall: measured.map_or(0.0, |r| r.io_stall_fraction(rates.elapsed)),
    }
}

fn io_max_field(max: &mut IoMax, dimension: IoDimension) -> &mut Option<u64> {
    match dimension {
        IoDimension::ReadBps => &mut max.rbps,
        IoDimension::WriteBps => &mut max.wbps,
        IoDimension::ReadIops => &mut max.riops,
        IoDimension::WriteIops => &mut max.wiops,
    }
}

/// MiB/s for bandwidth, IOs/s for IOPS.
pub(super) fn format_value(dimension: IoDimension, value: f64) -> String {
    match dimension {
        IoDimension::ReadBps | IoDimension::WriteBps => format!("{:.1}MiB/s", value / 1_048_576.0),
        IoDimension::ReadIops | IoDimension::WriteIops => format!("{value:.0}IOPS"),
    }
}
