//! The rows each controller gives `qosd status`, built the same way for
//! every resource.

use crate::config::{IoDimension, Tenant};
use crate::policy;
use crate::status::{ResourceRow, State, TenantRow, Unit, state};

/// What a tenant row is about: resource, device and dimension ("" for none).
pub type RowKey<'a> = (&'a str, &'a str, &'a str);

/// A host row: the resource's capacity, what is used, and contention.
pub fn resource_row(
    (resource, device, dimension): RowKey,
    unit: Unit,
    capacity: f64,
    used: Option<f64>,
    contended: bool,
) -> ResourceRow {
    ResourceRow {
        resource: resource.into(),
        device: device.into(),
        dimension: dimension.into(),
        unit,
        capacity,
        used,
        contended,
    }
}

/// A row whose usage and pressure come from the tick's rates: the contract
/// is broken when the tenant stalls below its baseline, as the policy says.
/// `seen` is (usage, stall fraction).
pub fn measured_row(
    tenant: &Tenant,
    what: RowKey,
    unit: Unit,
    (baseline, burst): (f64, f64),
    seen: Option<(f64, f64)>,
    limit: Option<f64>,
) -> TenantRow {
    let broken = seen
        .is_some_and(|(usage, stall)| policy::contract_broken_under(usage, baseline, stall, limit));
    row(
        tenant,
        what,
        unit,
        (baseline, burst),
        seen.map(|(usage, _)| usage),
        limit,
        (broken, seen.map(|(_, stall)| stall)),
    )
}

/// A tenant row; its state follows from usage against the contract.
pub fn row(
    tenant: &Tenant,
    (resource, device, dimension): RowKey,
    unit: Unit,
    (baseline, burst): (f64, f64),
    usage: Option<f64>,
    limit: Option<f64>,
    (broken, pressure): (bool, Option<f64>),
) -> TenantRow {
    let state = match usage {
        Some(usage) => state(usage, baseline, burst, limit, broken),
        None => State::Idle,
    };
    TenantRow {
        tenant: tenant.name.clone(),
        resource: resource.into(),
        device: device.into(),
        dimension: dimension.into(),
        unit,
        baseline,
        burst,
        usage,
        limit,
        state,
        pressure,
    }
}

/// Bytes/s for bandwidth, IOs/s for IOPS.
pub fn io_unit(dimension: IoDimension) -> Unit {
    match dimension {
        IoDimension::ReadBps | IoDimension::WriteBps => Unit::BytesPerSecond,
        IoDimension::ReadIops | IoDimension::WriteIops => Unit::IosPerSecond,
    }
}
