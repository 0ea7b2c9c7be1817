//! `host.reserved_memory` and the tenants' `memory = { ... }`: sizes, the
//! order baseline ≤ burst ≤ limit, and the baselines against MemTotal.

use toml::Spanned;

use super::{CheckedTenant, check_field, report_overcommitment};
use crate::config::diagnostics::{Diagnostics, Span, join_key};
use crate::config::schema::{MemorySize, ProtectionText, RawHost, RawMemoryContract};
use crate::config::units::{format_bytes, parse_memory_size};
use crate::config::{HostConfig, HostFacts, MemoryContract, MemoryProtection, SizeError};

const RESERVED_KEY: &str = "host.reserved_memory";

/// `host.reserved_memory`: a size (`default` when absent); less than
/// MemTotal when that is known, or nothing is left for the tenants. A bad
/// value is an error and gives `default` (the file is refused anyway).
pub(super) fn validate_reserved_memory(
    raw: &RawHost,
    default: u64,
    facts: &HostFacts,
    diagnostics: &mut Diagnostics,
) -> u64 {
    let field = raw.reserved_memory.as_ref();
    let reserved = match field {
        Some(field) => match check_field(field, RESERVED_KEY, diagnostics, bytes) {
            Some(reserved) => reserved,
            None => return default,
        },
        None => default,
    };
    if let Some(total) = facts.memory_total
        && reserved >= total
    {
        let default_note = if field.is_none() {
            " (the default)"
        } else {
            ""
        };
        let message = format!(
            "reserving {}{default_note} leaves no memory for tenants: the host has {} \
             (MemTotal); reserve less than that",
            format_bytes(reserved),
            format_bytes(total)
        );
        diagnostics.error(RESERVED_KEY, field.map(Spanned::span), message);
    }
    reserved
}

/// A memory size as the file writes it, in bytes.
fn bytes(size: &MemorySize) -> Result<u64, SizeError> {
    parse_memory_size(&size.0)
}

/// `"hard"` (memory.min) or `"soft"` (memory.low).
fn protection_field(
    field: &Spanned<ProtectionText>,
    key: &str,
    diagnostics: &mut Diagnostics,
) -> Option<MemoryProtection> {
    match field.get_ref().0.as_str() {
        "hard" => Some(MemoryProtection::Hard),
        "soft" => Some(MemoryProtection::Soft),
        other => {
            let message = format!(
                "unknown protection {other:?}: write \"hard\" (memory.min, the default: the \
                 baseline is never reclaimed) or \"soft\" (memory.low: the baseline is \
                 reclaimed only when nothing unprotected is left)"
            );
            diagnostics.error(key, Some(field.span()), message);
            None
        }
    }
}

/// A tenant's `memory = { baseline, burst, limit?, protection? }` at `key`
/// (`tenants.NAME.memory`): sizes, burst > 0, baseline ≤ burst ≤ limit, and
/// no `weight`.
pub(super) fn validate_memory_contract(
    contract: &Spanned<RawMemoryContract>,
    key: &str,
    diagnostics: &mut Diagnostics,
) -> Option<MemoryContract> {
    let raw = contract.get_ref();
    let errors_before = diagnostics.error_count();
    if let Some(weight) = &raw.weight {
        let message = "memory has no weight: the kernel protects a tenant's memory by its \
                       baseline (memory.min, or memory.low) and reclaims above its burst \
                       (memory.high), so there is nothing to share by weight; remove `weight`";
        diagnostics.error(&join_key(key, "weight"), Some(weight.span()), message);
    }
    let baseline_key = join_key(key, "baseline");
    let baseline = check_field(&raw.baseline, &baseline_key, diagnostics, bytes);
    let burst_key = join_key(key, "burst");
    let burst = check_field(&raw.burst, &burst_key, diagnostics, bytes).filter(|burst| {
        let positive = *burst > 0;
        if !positive {
            let message = "the burst must be more than 0: it becomes memory.high, and a \
                           memory.high of 0 would make the kernel reclaim and throttle the \
                           tenant at every allocation, freezing it";
            diagnostics.error(&burst_key, Some(raw.burst.span()), message);
        }
        positive
    });
    let limit_key = join_key(key, "limit");
    let limit = raw
        .limit
        .as_ref()
        .map(|limit| check_field(limit, &limit_key, diagnostics, bytes));
    let protection = match &raw.protection {
        Some(field) => protection_field(field, &join_key(key, "protection"), diagnostics),
        None => Some(MemoryProtection::default()),
    };

    let baseline_above_burst = matches!((baseline, burst), (Some(b), Some(u)) if b > u);
    if let (true, Some(baseline), Some(burst)) = (baseline_above_burst, baseline, burst) {
        let message = format!(
            "the baseline of {} is above its burst of {}; the burst is where the kernel \
             starts to reclaim and throttle (memory.high), so it must be at least the baseline",
            format_bytes(baseline),
            format_bytes(burst)
        );
        diagnostics.error(&baseline_key, Some(raw.baseline.span()), message);
    }
    if let Some(Some(limit)) = &limit {
        if let Some(burst) = burst
            && burst > *limit
        {
            let message = format!(
                "the burst of {} is above its limit of {} (`{limit_key}`); the limit is the \
                 hard cap (memory.max, where the OOM killer acts), so it must be at least the \
                 burst",
                format_bytes(burst),
                format_bytes(*limit)
            );
            diagnostics.error(&burst_key, Some(raw.burst.span()), message);
        }
        // Above a burst that is itself at most the limit cannot happen, and
        // above a burst that is above it is already said.
        if let Some(baseline) = baseline
            && baseline > *limit
            && !baseline_above_burst
        {
            let message = format!(
                "the baseline of {} is above its limit of {} (`{limit_key}`); the limit is \
                 the hard cap (memory.max), so it must be at least the baseline",
                format_bytes(baseline),
                format_bytes(*limit)
            );
            diagnostics.error(&baseline_key, Some(raw.baseline.span()), message);
        }
    }
    if diagnostics.error_count() != errors_before {
        return None;
    }
    Some(MemoryContract {
        baseline: baseline?,
        burst: burst?,
        limit: match limit {
            Some(limit) => Some(limit?),
            None => None,
        },
        protection: protection?,
    })
}

/// The tenants' memory baselines against MemTotal minus the reserve: more
/// promised than the host has is overcommitment (a warning, or an error
/// when refused). Needs MemTotal; `reserved_memory` is less than it.
pub(super) fn check_memory_capacity(
    tenants: &[CheckedTenant],
    host: &HostConfig,
    facts: &HostFacts,
    overcommit_span: Option<Span>,
    diagnostics: &mut Diagnostics,
) {
    let Some(total) = facts.memory_total else {
        return;
    };
    let available = total.saturating_sub(host.reserved_memory);
    let baselines = tenants
        .iter()
        .filter_map(|checked| checked.tenant.memory)
        .map(|memory| u128::from(memory.baseline));
    let sum: u128 = baselines.sum();
    if sum > u128::from(available) {
        let shown = u64::try_from(sum).map_or_else(|_| format!("{sum} B"), format_bytes);
        let message = format!(
            "memory baselines add up to {shown}, more than the {} available (MemTotal {} - {} \
             reserved in `host.reserved_memory`)",
            format_bytes(available),
            format_bytes(total),
            format_bytes(host.reserved_memory)
        );
        report_overcommitment(message, host, overcommit_span, diagnostics);
    }
}
