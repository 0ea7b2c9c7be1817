//! `[[host.disks]]` and the tenants' `disk = [...]`: devices, units, and the
//! checks against each device's capacity, one dimension at a time.

use toml::Spanned;

use super::{
    CheckedTenant, WEIGHT_RANGE, baseline_within_burst, check_field, declared_list, exceeds,
    positive_weight, record_first, report_overcommitment, validate_entries,
};
use crate::config::devices::check_device_syntax;
use crate::config::diagnostics::{Diagnostics, Span, join_key};
use crate::config::schema::{
    DeviceText, DiskLimitView, Listed, Quantity, RawDiskCapacity, RawDiskContract,
};
use crate::config::units::{format_io, format_number, parse_io};
use crate::config::{
    Contract, DeviceNumber, DeviceRef, DiskCapacity, DiskContract, HostConfig, HostFacts,
    IoDimension, IoDimensions, ZERO_BASELINE_WEIGHT,
};

const DIMENSION_KEYS: &str = "`read_bps`, `write_bps`, `read_iops` or `write_iops`";

/// A plain number of bytes per second below this is probably a unit left out
/// (`read_bps = 50` meaning 50 MiB/s), which is worth a warning.
const SUSPICIOUSLY_FEW_BYTES_PER_SECOND: f64 = 1024.0;

/// A device that was already seen, for "declared twice" errors.
struct SeenDevice {
    number: DeviceNumber,
    name: String,
    /// The entry that named it, such as `host.disks[0]`.
    key: String,
}

impl SeenDevice {
    /// Records `device`; an earlier entry with the same number is returned
    /// instead (and `device` is not recorded).
    fn record<'a>(
        seen: &'a mut Vec<SeenDevice>,
        device: &DeviceRef,
        key: &str,
    ) -> Option<&'a SeenDevice> {
        let is_same = |earlier: &SeenDevice| earlier.number == device.number;
        record_first(seen, is_same, || SeenDevice {
            number: device.number,
            name: device.name.clone(),
            key: key.to_owned(),
        })
    }

    /// The error for `device`, named again after this entry named it:
    /// "device 254:0 (254:0) {repeated} `host.disks[0]` (as \"/dev/vda\");
    /// {advice}". The earlier name is shown when it was written differently,
    /// so the operator sees why two names are one device.
    fn named_again(&self, device: &DeviceRef, repeated: &str, advice: &str) -> String {
        let earlier = if self.name == device.name {
            format!("`{}`", self.key)
        } else {
            format!("`{}` (as {:?})", self.key, self.name)
        };
        let (name, number) = (&device.name, device.number);
        format!("device {name} ({number}) {repeated} {earlier}; {advice}")
    }
}

/// `[[host.disks]]`: each entry's device resolves, its capacities parse and
/// are positive, and no device is declared twice.
pub(super) fn validate_disks(
    entries: &[Listed<RawDiskCapacity>],
    facts: &HostFacts,
    diagnostics: &mut Diagnostics,
) -> Vec<DiskCapacity> {
    let mut seen = Vec::new();
    validate_entries(
        entries,
        "host.disks",
        diagnostics,
        |key, entry, diagnostics| validate_disk(key, entry, facts, &mut seen, diagnostics),
    )
}

/// One `[[host.disks]]` entry at `key`; `seen` holds the devices of the
/// entries before it.
fn validate_disk(
    key: &str,
    entry: &Spanned<RawDiskCapacity>,
    facts: &HostFacts,
    seen: &mut Vec<SeenDevice>,
    diagnostics: &mut Diagnostics,
) -> Option<DiskCapacity> {
    let raw = entry.get_ref();
    let device_key = join_key(key, "device");
    let device = check_field(&raw.device, &device_key, diagnostics, |written| {
        resolve_device(&written.0, facts)
    });
    let mut capacity = IoDimensions::default();
    for dimension in IoDimension::ALL {
        if let Some(written) = raw.capacity(dimension) {
            let key = join_key(key, dimension.key());
            *capacity.get_mut(dimension) = capacity_field(dimension, written, &key, diagnostics);
        }
    }
    if IoDimension::ALL.iter().all(|d| raw.capacity(*d).is_none()) {
        let message = format!(
            "declare at least one capacity of {:?}: {DIMENSION_KEYS}, \
             such as `read_bps = \"50MiB/s\"`",
            raw.device.get_ref().0
        );
        diagnostics.error(key, Some(entry.span()), message);
    }
    if let Some(device) = &device
        && let Some(earlier) = SeenDevice::record(seen, device, key)
    {
        let advice = "give each device one `[[host.disks]]` entry";
        let message = earlier.named_again(device, "is already declared by", advice);
        diagnostics.error(&device_key, Some(raw.device.span()), message);
    }
    Some(DiskCapacity {
        device: device?,
        capacity,
    })
}

/// The device as written, checked for shape and resolved on this host.
fn resolve_device(name: &str, facts: &HostFacts) -> Result<DeviceRef, String> {
    check_device_syntax(name)?;
    let number = (facts.resolve_device)(name)
        .map_err(|reason| format!("no such block device {name}: {reason}"))?;
    let name = name.to_owned();
    Ok(DeviceRef { name, number })
}

/// A capacity: a value of its dimension, more than 0 (a device that can do
/// nothing cannot be shared).
fn capacity_field(
    dimension: IoDimension,
    written: (&Quantity, Span),
    key: &str,
    diagnostics: &mut Diagnostics,
) -> Option<f64> {
    let span = written.1.clone();
    let capacity = io_field(dimension, written, key, diagnostics)?;
    if capacity > 0.0 {
        return Some(capacity);
    }
    let message = format!(
        "a capacity must be more than 0, got {}; leave `{}` out to leave this dimension uncontrolled",
        format_io(dimension, capacity),
        dimension.key()
    );
    diagnostics.error(key, Some(span), message);
    None
}

/// A value of `dimension` (a byte rate or IOPS), or an error at its span.
fn io_field(
    dimension: IoDimension,
    (quantity, span): (&Quantity, Span),
    key: &str,
    diagnostics: &mut Diagnostics,
) -> Option<f64> {
    let value = diagnostics.ok_or_record(key, span, parse_io(dimension, quantity))?;
    let counts_bytes = matches!(dimension, IoDimension::ReadBps | IoDimension::WriteBps);
    if counts_bytes
        && let Quantity::Number(bytes) = quantity
        && *bytes > 0.0
        && *bytes < SUSPICIOUSLY_FEW_BYTES_PER_SECOND
    {
        let bytes = format_number(*bytes);
        diagnostics.warn(format!(
            "`{key}` is {bytes} bytes per second: a plain number counts bytes; \
             write \"{bytes}MiB/s\" if you meant mebibytes per second"
        ));
    }
    Some(value)
}

/// A tenant's `disk = [...]`: each entry names a device of `[[host.disks]]`
/// once, and holds a contract on at least one dimension that device has a
/// capacity for. `declared` is `None` when the host's disks have errors:
/// then only what does not depend on them is checked.
pub(super) fn validate_disk_contracts(
    entries: &[Listed<RawDiskContract>],
    key: &str,
    declared: Option<&[DiskCapacity]>,
    facts: &HostFacts,
    diagnostics: &mut Diagnostics,
) -> Vec<DiskContract> {
    let mut seen = Vec::new();
    validate_entries(entries, key, diagnostics, |key, entry, diagnostics| {
        let raw = entry.get_ref();
        let device_key = join_key(key, "device");
        let device = check_field(&raw.device, &device_key, diagnostics, |written| {
            resolve_device(&written.0, facts)
        });
        let mut capacity = None;
        if let Some(device) = &device {
            if let Some(earlier) = SeenDevice::record(&mut seen, device, key) {
                let advice = "write all its dimensions in one entry";
                let message = earlier.named_again(device, "already has a contract in", advice);
                diagnostics.error(&device_key, Some(raw.device.span()), message);
            }
            if let Some(declared) = declared {
                capacity =
                    declared_capacity(device, declared, &device_key, &raw.device, diagnostics);
            }
        }
        let weight = raw
            .weight
            .as_ref()
            .map(|weight| positive_weight(weight, &join_key(key, "weight"), "io", diagnostics));
        let mut limits = IoDimensions::default();
        for dimension in IoDimension::ALL {
            if let Some(limit) = raw.limit(dimension) {
                let checks = LimitChecks {
                    dimension,
                    key: join_key(key, dimension.key()),
                    capacity,
                    weight,
                };
                *limits.get_mut(dimension) = checks.validate(&limit, diagnostics);
            }
        }
        if IoDimension::ALL.iter().all(|d| raw.limit(*d).is_none()) {
            let message = format!(
                "a disk entry needs a contract on at least one of {DIMENSION_KEYS}, \
                 such as `read_bps = {{ baseline = \"20MiB/s\", burst = \"50MiB/s\" }}`"
            );
            diagnostics.error(key, Some(entry.span()), message);
        }
        device.map(|device| DiskContract { device, limits })
    })
}

/// The `[[host.disks]]` entry of `device` and its index, or an error that
/// says how to declare it.
fn declared_capacity<'a>(
    device: &DeviceRef,
    declared: &'a [DiskCapacity],
    key: &str,
    field: &Spanned<DeviceText>,
    diagnostics: &mut Diagnostics,
) -> Option<(usize, &'a DiskCapacity)> {
    let found = declared
        .iter()
        .enumerate()
        .find(|(_, disk)| disk.device.number == device.number);
    if found.is_none() {
        let names = declared
            .iter()
            .map(|disk| format!("{} ({})", disk.device.name, disk.device.number));
        let known = declared_list(names.collect(), "device");
        let message = format!(
            "device {} ({}) is not declared in `[[host.disks]]`; add a `[[host.disks]]` entry \
             with `device = {:?}` and its capacity, such as `read_bps = \"50MiB/s\"` ({known})",
            device.name, device.number, device.name
        );
        diagnostics.error(key, Some(field.span()), message);
    }
    found
}

/// What one dimension of a disk entry is checked against.
struct LimitChecks<'a> {
    dimension: IoDimension,
    /// Such as `tenants.db.disk[0].read_bps`.
    key: String,
    /// The device's `[[host.disks]]` entry and its index, when known.
    capacity: Option<(usize, &'a DiskCapacity)>,
    /// The entry's explicit weight: `Some(None)` when it was invalid.
    weight: Option<Option<f64>>,
}

impl LimitChecks<'_> {
    fn validate(
        &self,
        limit: &DiskLimitView,
        diagnostics: &mut Diagnostics,
    ) -> Option<Contract<f64>> {
        let dimension = self.dimension;
        if let Some(span) = &limit.weight {
            let message = "a disk entry has one weight for all its dimensions: \
                           write `weight = ...` next to its `device`";
            diagnostics.error(&join_key(&self.key, "weight"), Some(span.clone()), message);
        }
        let baseline_key = join_key(&self.key, "baseline");
        let baseline = io_field(
            dimension,
            limit.baseline.clone(),
            &baseline_key,
            diagnostics,
        );
        let burst_key = join_key(&self.key, "burst");
        let burst = io_field(dimension, limit.burst.clone(), &burst_key, diagnostics);
        let burst = burst.filter(|burst| {
            let positive = *burst > 0.0;
            if !positive {
                let message = format!(
                    "the burst must be more than 0, got {}; a burst of 0 would stop the tenant's I/O",
                    format_io(dimension, *burst)
                );
                diagnostics.error(&burst_key, Some(limit.burst.1.clone()), message);
            }
            positive
        });
        let capacity = self.dimension_capacity(limit, diagnostics);
        let (baseline, burst) = (baseline?, burst?);
        let ordered = baseline_within_burst(baseline, burst, |value| format_io(dimension, value));
        diagnostics.ok_or_record(&baseline_key, limit.baseline.1.clone(), ordered)?;
        if let Some((index, device, capacity)) = capacity
            && exceeds(baseline, capacity)
        {
            let message = format!(
                "the baseline of {} is more than the {} capacity of {device}, {} \
                 (`host.disks[{index}]`): the device cannot keep that promise",
                format_io(dimension, baseline),
                dimension.key(),
                format_io(dimension, capacity)
            );
            diagnostics.error(&baseline_key, Some(limit.baseline.1.clone()), message);
            return None;
        }
        let capacity = capacity.map(|(_, _, capacity)| capacity);
        let weight = self
            .weight
            .unwrap_or_else(|| Some(default_disk_weight(baseline, capacity)))?;
        Some(Contract {
            baseline,
            burst,
            weight,
        })
    }

    /// The capacity of this dimension on the device (with the index and name
    /// of its `[[host.disks]]` entry), or an error if the device has none.
    fn dimension_capacity(
        &self,
        limit: &DiskLimitView,
        diagnostics: &mut Diagnostics,
    ) -> Option<(usize, &str, f64)> {
        let (index, disk) = self.capacity?;
        let key = self.dimension.key();
        let name = disk.device.name.as_str();
        match disk.capacity.get(self.dimension) {
            Some(capacity) => Some((index, name, *capacity)),
            None => {
                let message = format!(
                    "{name} has no `{key}` capacity: add `{key} = ...` to its `[[host.disks]]` \
                     entry (`host.disks[{index}]`) to hold contracts on this dimension"
                );
                diagnostics.error(&self.key, Some(limit.span.clone()), message);
                None
            }
        }
    }
}

/// Without an explicit `weight`, a dimension weighs its baseline as a
/// percentage of the device's capacity, so 20 MiB/s of a 50 MiB/s device
/// weighs 40 and weights compare within a dimension whatever the unit.
/// Clamped to [`WEIGHT_RANGE`]; a zero baseline (or an unknown capacity, in a
/// file rejected anyway) gets [`ZERO_BASELINE_WEIGHT`].
fn default_disk_weight(baseline: f64, capacity: Option<f64>) -> f64 {
    match capacity {
        Some(capacity) if baseline > 0.0 && capacity > 0.0 => {
            (baseline / capacity * 100.0).clamp(*WEIGHT_RANGE.start(), *WEIGHT_RANGE.end())
        }
        _ => ZERO_BASELINE_WEIGHT,
    }
}

/// Per device and dimension: baselines adding up to more than the capacity
/// are overcommitment (a warning, or an error when refused), and a burst above
/// the capacity cannot be reached (a warning).
pub(super) fn check_disk_capacity(
    tenants: &[CheckedTenant],
    host: &HostConfig,
    overcommit_span: Option<Span>,
    diagnostics: &mut Diagnostics,
) {
    for disk in &host.disks {
        for dimension in IoDimension::ALL {
            let Some(capacity) = *disk.capacity.get(dimension) else {
                continue;
            };
            let contracts: Vec<(&str, Contract<f64>)> = tenants
                .iter()
                .flat_map(|checked| {
                    let tenant = &checked.tenant;
                    tenant
                        .disk
                        .iter()
                        .filter(|contract| contract.device.number == disk.device.number)
                        .filter_map(move |contract| {
                            contract
                                .limits
                                .get(dimension)
                                .map(|limit| (tenant.name.as_str(), limit))
                        })
                })
                .collect();
            let total: f64 = contracts.iter().map(|(_, limit)| limit.baseline).sum();
            if exceeds(total, capacity) {
                let message = format!(
                    "disk {} baselines on {} add up to {}, more than its capacity of {}",
                    dimension.key(),
                    disk.device.name,
                    format_io(dimension, total),
                    format_io(dimension, capacity)
                );
                report_overcommitment(message, host, overcommit_span.clone(), diagnostics);
            }
            for (tenant, limit) in &contracts {
                if exceeds(limit.burst, capacity) {
                    diagnostics.warn(format!(
                        "tenant `{tenant}`: the disk {} burst of {} on {} is more than its capacity of {}, so it cannot be reached",
                        dimension.key(),
                        format_io(dimension, limit.burst),
                        disk.device.name,
                        format_io(dimension, capacity)
                    ));
                }
            }
        }
    }
}
