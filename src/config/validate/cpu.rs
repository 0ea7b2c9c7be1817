//! The CPU: `host.reserved_cpu` and the tenants' `cpu = { ... }` in cores,
//! and the baselines against the CPUs online.

use toml::Spanned;

use super::{
    CheckedTenant, baseline_within_burst, check_field, default_weight, positive_weight,
    report_overcommitment,
};
use crate::config::diagnostics::{Diagnostics, Span, join_key};
use crate::config::schema::{Quantity, RawContract, RawHost};
use crate::config::units::{format_cores, format_number, parse_quantity};
use crate::config::{Contract, Cores, CoresError, HostConfig, HostFacts};

/// Sums of decimal baselines such as 0.1 + 0.2 are not exact in binary.
const ROUNDING_SLACK: f64 = 1e-9;

/// `host.reserved_cpu` must leave some of the CPUs online to the tenants.
pub(super) fn check_reserved_cpu(
    reserved: Cores,
    raw: &RawHost,
    facts: &HostFacts,
    diagnostics: &mut Diagnostics,
) {
    // Written as "less than" so that a NaN CPU count is refused too.
    let leaves_capacity = reserved.get() < facts.online_cpus;
    if !leaves_capacity {
        let message = format!(
            "reserving {reserved} cores leaves nothing for tenants: the host has {} online CPUs",
            format_number(facts.online_cpus)
        );
        let span = raw.reserved_cpu.as_ref().map(Spanned::span);
        diagnostics.error("host.reserved_cpu", span, message);
    }
}

/// A tenant's `cpu = { baseline, burst, weight? }` at `key`
/// (`tenants.NAME.cpu`): cores, a burst that cpu.max can hold, baseline ≤
/// burst, and a weight that cpu.weight can express.
pub(super) fn validate_cpu_contract(
    contract: &Spanned<RawContract>,
    key: &str,
    diagnostics: &mut Diagnostics,
) -> Option<Contract<Cores>> {
    let raw = contract.get_ref();
    let baseline_key = join_key(key, "baseline");
    let baseline = check_field(&raw.baseline, &baseline_key, diagnostics, cores);
    let burst = check_field(&raw.burst, &join_key(key, "burst"), diagnostics, cores)
        .filter(|burst| burst_is_positive(*burst, &raw.burst, key, diagnostics));
    let weight = raw
        .weight
        .as_ref()
        .map(|weight| positive_weight(weight, &join_key(key, "weight"), "cpu", diagnostics));
    let (baseline, burst) = (baseline?, burst?);
    let ordered = baseline_within_burst(baseline, burst, |cores| format!("{cores} cores"));
    diagnostics.ok_or_record(&baseline_key, raw.baseline.span(), ordered)?;
    let weight = weight.unwrap_or_else(|| Some(default_weight(baseline.get())))?;
    Some(Contract {
        baseline,
        burst,
        weight,
    })
}

/// Cores as the file writes them: a number, or a string such as "500m".
pub(super) fn cores(quantity: &Quantity) -> Result<Cores, CoresError> {
    parse_quantity(quantity, Cores::new)
}

/// The smallest burst the kernel can hold: cpu.max refuses quotas under 1 ms
/// per 100 ms period.
const MIN_BURST_CORES: f64 = 0.01;

fn burst_is_positive(
    burst: Cores,
    field: &Spanned<Quantity>,
    key: &str,
    diagnostics: &mut Diagnostics,
) -> bool {
    let holdable = burst.get() >= MIN_BURST_CORES;
    if !holdable {
        let message = format!(
            "the burst must be at least {MIN_BURST_CORES} cores (\"10m\"), the least cpu.max can hold, got {burst}"
        );
        diagnostics.error(&join_key(key, "burst"), Some(field.span()), message);
    }
    holdable
}

/// Baselines are promises: more promised than the host has is overcommitment.
pub(super) fn check_cpu_capacity(
    tenants: &[CheckedTenant],
    host: &HostConfig,
    facts: &HostFacts,
    overcommit_span: Option<Span>,
    diagnostics: &mut Diagnostics,
) {
    let available = facts.online_cpus - host.reserved_cpu.get();
    let contracts = tenants.iter().filter_map(|checked| checked.tenant.cpu);
    let total: f64 = contracts.map(|contract| contract.baseline.get()).sum();
    if total > available + ROUNDING_SLACK {
        let message = format!(
            "cpu baselines add up to {} cores, more than the {} cores available ({} online - {} reserved)",
            format_cores(total),
            format_cores(available),
            format_number(facts.online_cpus),
            format_number(host.reserved_cpu.get())
        );
        report_overcommitment(message, host, overcommit_span, diagnostics);
    }
    warn_about_unreachable_bursts(tenants, available, diagnostics);
}

/// Not an error: the burst is a ceiling, and the host may grow.
fn warn_about_unreachable_bursts(
    tenants: &[CheckedTenant],
    available: f64,
    diagnostics: &mut Diagnostics,
) {
    for checked in tenants {
        let Some(cpu) = checked.tenant.cpu else {
            continue;
        };
        if cpu.burst.get() > available + ROUNDING_SLACK {
            diagnostics.warn(format!(
                "tenant `{}`: the cpu burst of {} cores is more than the {} cores available, so it cannot be reached",
                checked.tenant.name,
                cpu.burst,
                format_cores(available)
            ));
        }
    }
}
