//! The rows each controller gives `qosd status`, built the same way for
//! every resource.

use crate::config::{IoDimension, Tenant};
use crate::policy;
use crate::status::{ResourceRow, State, Subject, TenantRow, Unit, state};

/// A host row: the resource's capacity, what is used, and contention.
pub fn resource_row(
    subject: Subject,
    capacity: f64,
    used: Option<f64>,
    contended: bool,
) -> ResourceRow {
    ResourceRow {
        subject,
        capacity,
        used,
        contended,
    }
}

/// A disk's dimension: bytes/s for bandwidth, IOs/s for IOPS.
pub fn disk_subject(device: &str, dimension: IoDimension) -> Subject {
    Subject::new("disk", device, dimension.key(), io_unit(dimension))
}

/// A row whose usage and pressure come from the tick's rates: the contract
/// is broken when the tenant stalls below its baseline, as the policy says.
/// `seen` is (usage, stall fraction).
pub fn measured_row(
    tenant: &Tenant,
    subject: Subject,
    (baseline, burst): (f64, f64),
    seen: Option<(f64, f64)>,
    limit: Option<f64>,
) -> TenantRow {
    let broken = seen
        .is_some_and(|(usage, stall)| policy::contract_broken_under(usage, baseline, stall, limit));
    row(
        tenant,
        subject,
        (baseline, burst),
        seen.map(|(usage, _)| usage),
        limit,
        (broken, seen.map(|(_, stall)| stall)),
    )
}

/// A tenant row; its state follows from usage against the contract.
pub fn row(
    tenant: &Tenant,
    subject: Subject,
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
        subject,
        baseline,
        burst,
        usage,
        limit,
        state,
        pressure,
    }
}

/// Bytes/s for bandwidth, IOs/s for IOPS.
fn io_unit(dimension: IoDimension) -> Unit {
    match dimension {
        IoDimension::ReadBps | IoDimension::WriteBps => Unit::BytesPerSecond,
        IoDimension::ReadIops | IoDimension::WriteIops => Unit::IosPerSecond,
    }
}
