//! The decision, as a pure function: contracts, capacity, measured usage and
//! the limits in force go in; contention and the next limits come out.
//!
//! Every resource (CPU cores now; disk and network dimensions later) is held
//! the same way: weighted max-min fairness with floors at the baselines and
//! caps at the bursts ("water-filling"), contention detection with
//! hysteresis, and limits that tighten at once but relax in steps.

use crate::cgroup::cpu;

/// A tenant at or above this fraction of its limit may want more than we can
/// see, so its demand is taken to be its burst; otherwise a clamped tenant
/// could never get its limit raised again.
pub const AT_LIMIT_FRACTION: f64 = 0.95;

/// Under contention, a tenant that is not pressing its limit is given this
/// much more than it uses. A limit at exactly its usage made it press at
/// the next tick, be taken to want its burst, get a share of the spare, not
/// press, and be cut back to its usage: the one-thread victim of the VM's
/// workload shapes had its cpu.max flip between 1.00 and 1.11 cores every
/// tick. With 10% above its usage it stays under `AT_LIMIT_FRACTION` of
/// its limit while its usage holds.
pub const USAGE_HEADROOM: f64 = 1.1;

/// Contention ends only when demand falls this far (as a fraction of capacity)
/// below the threshold, so a load hovering at the threshold does not flap.
pub const CONTENTION_HYSTERESIS: f64 = 0.05;

/// How far a limit may rise in one tick, as a fraction of capacity. Limits
/// fall at once (to protect baselines) but rise in steps (to avoid
/// oscillating between clamped and released).
pub const RELAX_STEP_FRACTION: f64 = 0.5;

/// A tenant using less than this fraction of its baseline is idle: its
/// baseline is not held free for it while others contend (`Resource`'s
/// `active_fraction`, CPU's). The absolute floor (a fraction of capacity)
/// keeps measurement noise from counting as activity for tenants with tiny
/// baselines.
pub const ACTIVE_BASELINE_FRACTION: f64 = 0.05;

/// A disk's `active_fraction`. A starved disk reader shows no stall: one
/// reading at queue depth 1 (libaio) beside 64 requests in flight got 0.77
/// of its 20 MiB/s baseline (VM, QEMU serves requests in turn), under the
/// CPU's 5% floor, and with no I/O pressure at all (it waits in
/// io_getevents, which PSI does not count): it was taken to be idle and
/// never protected. On a CPU, a starved tenant stalls, and PSI shows it.
pub const DISK_ACTIVE_BASELINE_FRACTION: f64 = 0.01;
pub const ACTIVE_CAPACITY_FRACTION: f64 = 0.005;

/// One tenant's contract on one resource and what it is doing now, all in
/// the resource's unit (cores, bytes/s, ...).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Claim {
    pub baseline: f64,
    pub burst: f64,
    /// Share of the spare capacity; > 0.
    pub weight: f64,
    /// Measured over the last tick.
    pub usage: f64,
    /// Measured over the tick's latest half, when the agent probed at its
    /// middle: whether the tenant is active *now*. A tenant that stopped
    /// early in the tick still shows usage over the whole of it, and would
    /// keep its baseline held free for a tick more.
    pub recent_usage: Option<f64>,
    /// The limit in force during that tick, if any.
    pub limit: Option<f64>,
    /// Share of the tick the tenant stalled waiting for the resource (PSI
    /// "some"); 0 where the kernel keeps no pressure.
    pub stall: f64,
}

/// One resource of the host (the CPUs, one disk's read bandwidth, ...).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Resource {
    pub capacity: f64,
    /// Fraction of capacity at which the resource counts as contended.
    pub threshold: f64,
    /// What the whole resource did over the tick, tenants or not (busy
    /// CPUs, a device's throughput): load outside the tenants counts too.
    pub measured: f64,
    /// Below this fraction of its baseline, a tenant is idle
    /// ([`ACTIVE_BASELINE_FRACTION`], [`DISK_ACTIVE_BASELINE_FRACTION`]).
    pub active_fraction: f64,
}

/// The policy's answer for one resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Allocation {
    pub contended: bool,
    /// What the tenants would use if nothing limited them, as far as we can tell.
    pub demand: f64,
    /// One per claim, in the same order; each within `[baseline, burst]`.
    pub limits: Vec<f64>,
    /// Tenants (by index) that are active but using less than their baseline.
    pub below_baseline: Vec<usize>,
}

/// Decides contention and limits for one resource.
pub fn allocate(resource: Resource, claims: &[Claim], was_contended: bool) -> Allocation {
    let active: Vec<bool> = claims
        .iter()
        .map(|claim| is_active(claim, resource.capacity, resource.active_fraction))
        .collect();
    let demands: Vec<f64> = claims
        .iter()
        .zip(&active)
        .map(|(claim, active)| demand(claim, *active))
        .collect();
    let total_demand: f64 = demands.iter().sum();
    let busy = total_demand.max(resource.measured);
    let contended = is_contended(resource, busy, was_contended) || a_victim_stalls(claims, &active);
    let targets = if contended {
        share_under_contention(resource.capacity, claims, &demands, &active)
    } else {
        claims.iter().map(|claim| claim.burst).collect()
    };
    // Steps keep tenants from trading the resource back and forth; a tenant
    // active alone has nobody to trade with, and gets its share at once.
    let step = if active.iter().filter(|a| **a).count() > 1 {
        RELAX_STEP_FRACTION * resource.capacity
    } else {
        f64::INFINITY
    };
    let limits = claims
        .iter()
        .zip(targets)
        .map(|(claim, target)| relax_in_steps(claim, target, step))
        .collect();
    let below_baseline = (0..claims.len())
        .filter(|&i| active[i] && claims[i].usage < claims[i].baseline)
        .collect();
    Allocation {
        contended,
        demand: total_demand,
        limits,
        below_baseline,
    }
}

/// What a tenant would use if nothing held it back. Its usage, except for
/// two tenants whose usage understates it: one pressing against its limit,
/// and an active one that stalls for the resource (waiting for the CPU or
/// the device is wanting more of it; a device that gives less than its
/// declared capacity holds tenants back as a limit would). Both are taken
/// to want their burst.
///
/// Judging a stalled tenant by its usage made limits swing: it got its
/// share of the spare while below its baseline, used part of it, was then
/// taken to want only that, lost the rest, fell below its baseline again,
/// and so on (the disk-iops VM scenario, one limit change every tick).
fn demand(claim: &Claim, active: bool) -> f64 {
    let stalled = active && claim.stall >= WANTING_STALL_FRACTION;
    if is_at_limit(claim) || stalled {
        claim.burst
    } else {
        claim.usage.clamp(0.0, claim.burst)
    }
}

fn is_at_limit(claim: &Claim) -> bool {
    claim
        .limit
        .is_some_and(|limit| claim.usage >= AT_LIMIT_FRACTION * limit)
}

/// A tenant at its limit is active even when the limit is tiny: otherwise a
/// tenant held at a baseline below the noise floor could never ask for more.
/// Judged on the latest usage the agent has: the tick's second half when it
/// probed, or the whole tick.
fn is_active(claim: &Claim, capacity: f64, active_fraction: f64) -> bool {
    let floor = (active_fraction * claim.baseline).max(ACTIVE_CAPACITY_FRACTION * capacity);
    let usage = claim.recent_usage.unwrap_or(claim.usage);
    usage > floor || (usage > 0.0 && is_at_limit(claim))
}

fn is_contended(resource: Resource, busy: f64, was_contended: bool) -> bool {
    let threshold = if was_contended {
        resource.threshold - CONTENTION_HYSTERESIS
    } else {
        resource.threshold
    };
    busy >= threshold * resource.capacity
}

/// Contention that throughput alone does not show (a device slowed by
/// seeks, say): an active tenant below its baseline stalls for the
/// resource while another runs above its own.
fn a_victim_stalls(claims: &[Claim], active: &[bool]) -> bool {
    let stalled_victim = claims.iter().zip(active).any(|(claim, active)| {
        *active && contract_broken(claim.usage, claim.baseline, claim.stall)
    });
    let above_baseline = claims.iter().any(|claim| claim.usage > claim.baseline);
    stalled_victim && above_baseline
}

/// Holds every active tenant's baseline free, then shares what is left by
/// weight: first up to what each tenant wants, then (if anything remains)
/// up to its burst, so limits keep headroom when the resource is not full.
/// Idle tenants keep their baseline as their limit.
fn share_under_contention(
    capacity: f64,
    claims: &[Claim],
    demands: &[f64],
    active: &[bool],
) -> Vec<f64> {
    let held: f64 = claims
        .iter()
        .zip(active)
        .filter(|(_, active)| **active)
        .map(|(claim, _)| claim.baseline)
        .sum();
    let spare = (capacity - held).max(0.0);
    let weights: Vec<f64> = claims.iter().map(|claim| claim.weight).collect();
    let extra_cap = |i: usize, limit: f64| {
        if active[i] {
            (limit - claims[i].baseline).max(0.0)
        } else {
            0.0
        }
    };

    let wanted: Vec<f64> = (0..claims.len())
        .map(|i| extra_cap(i, (demands[i] * USAGE_HEADROOM).min(claims[i].burst)))
        .collect();
    let first = water_fill(spare, &wanted, &weights);
    let left = spare - first.iter().sum::<f64>();
    let headroom: Vec<f64> = (0..claims.len())
        .map(|i| extra_cap(i, claims[i].burst) - first[i])
        .collect();
    let second = water_fill(left, &headroom, &weights);

    claims
        .iter()
        .enumerate()
        .map(|(i, claim)| (claim.baseline + first[i] + second[i]).min(claim.burst))
        .collect()
}

/// Splits `amount` in proportion to `weights`, giving no one more than its
/// cap; what a capped share leaves is shared among the rest (weighted
/// max-min fairness). Sorting by cap per weight makes it O(n log n).
pub fn water_fill(amount: f64, caps: &[f64], weights: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..caps.len()).filter(|&i| caps[i] > 0.0).collect();
    order.sort_by(|&a, &b| {
        (caps[a] / weights[a])
            .total_cmp(&(caps[b] / weights[b]))
            .then(a.cmp(&b))
    });
    let mut given = vec![0.0; caps.len()];
    let mut remaining = amount.max(0.0);
    let mut weight_left: f64 = order.iter().map(|&i| weights[i]).sum();
    for i in order {
        // Weights far apart can exhaust `weight_left` by rounding before
        // the last tenant; never hand out more than remains.
        let fair = if weight_left > 0.0 {
            remaining * weights[i] / weight_left
        } else {
            remaining
        };
        given[i] = fair.min(caps[i]).min(remaining).max(0.0);
        remaining -= given[i];
        weight_left -= weights[i];
    }
    given
}

fn relax_in_steps(claim: &Claim, target: f64, step: f64) -> f64 {
    let stepped = match claim.limit {
        Some(previous) if target > previous => target.min(previous + step),
        _ => target,
    };
    stepped.clamp(claim.baseline, claim.burst)
}

/// A tenant waiting for a resource this share of the time wants more than
/// it gets.
pub const WANTING_STALL_FRACTION: f64 = 0.05;

/// Usage this close to the baseline counts as getting it: measurement over
/// a tick is never exact.
pub const BASELINE_TOLERANCE: f64 = 0.95;

/// True when a tenant gets less than its baseline while it wants more: it
/// stalls waiting for the resource. Using little because it asks for little
/// breaks nothing.
pub fn contract_broken(usage: f64, baseline: f64, stall_fraction: f64) -> bool {
    usage < BASELINE_TOLERANCE * baseline && stall_fraction >= WANTING_STALL_FRACTION
}

/// A tenant that uses this share of its limit or more presses against it.
pub const PRESSING_FRACTION: f64 = 0.9;

/// [`contract_broken`], except for a tenant that presses against a limit of
/// at least its baseline: it stalls because of its own clamp (cpu.max and
/// io.max throttling show as pressure), and gets what its contract allows,
/// give or take a tick's measurement. What is reported as a broken contract.
pub fn contract_broken_under(
    usage: f64,
    baseline: f64,
    stall_fraction: f64,
    limit: Option<f64>,
) -> bool {
    let held_by_own_limit =
        limit.is_some_and(|limit| limit >= baseline && usage >= PRESSING_FRACTION * limit);
    contract_broken(usage, baseline, stall_fraction) && !held_by_own_limit
}

/// `cpu.weight` from a contract weight given in cores: one core of weight is
/// 100, the kernel's default for one group.
pub fn cpu_weight(weight: f64) -> u32 {
    let range = f64::from(cpu::WEIGHT_MIN)..=f64::from(cpu::WEIGHT_MAX);
    (weight * 100.0).round().clamp(*range.start(), *range.end()) as u32
}

/// How far a boosted tenant's `cpu.weight` outweighs the tenants that are
/// not boosted, all of them together (up to the kernel's largest, 10000).
/// Weights in proportion to the baselines were too small on one CPU: a
/// one-thread tenant with a 1.0-core baseline (weight 100) got 0.89-0.92
/// cores beside neighbours of weight 60 and 20 whose threads burst onto its
/// CPU at every quota period; at weight 10000 it got 0.98 (VM, 2 vCPUs).
/// At 10 times its neighbours, a victim whose demand comes in bursts (two
/// threads, 100 ms on and 100 ms off) still got only 0.90-0.92 of its
/// baseline: in each burst it shared the CPUs 10:1 with a neighbour's
/// quota. A ratio to the neighbours, not a fixed 10000, so that what runs
/// beside the tenants (the host's own services, at weight 100) keeps a
/// share against a boost it has no part in where the neighbours weigh
/// little.
pub const BOOST_DOMINANCE: u32 = 100;

/// A boosted tenant keeps its boost until it uses this share of its
/// baseline: the boost itself lifts it to its baseline, and dropping the
/// boost there would only let it fall back.
pub const BOOST_RELEASE_FRACTION: f64 = 1.05;

/// The `cpu.weight` of each tenant, given which are `boosted`: its own
/// (`cpu_weight`) unless boosted; boosted, at least `BOOST_DOMINANCE` times
/// the sum of the weights of those not boosted.
pub fn boosted_cpu_weights(claims: &[Claim], boosted: &[bool]) -> Vec<u32> {
    let own: Vec<u32> = claims.iter().map(|c| cpu_weight(c.weight)).collect();
    let unboosted: u32 = own
        .iter()
        .zip(boosted)
        .filter(|(_, b)| !**b)
        .map(|(w, _)| *w)
        .fold(0, u32::saturating_add);
    let lifted = unboosted.saturating_mul(BOOST_DOMINANCE);
    own.iter()
        .zip(boosted)
        .map(|(&w, &b)| {
            if b {
                w.max(lifted).min(cpu::WEIGHT_MAX)
            } else {
                w
            }
        })
        .collect()
}

/// Which tenants get their weight boosted this tick. Only while the CPUs
/// are `contended` and only active tenants: a tenant is boosted when it
/// uses less than its baseline, whether it waits yet or not (waiting for
/// the stall to show let the victim lose a second first), unless it presses
/// its own `cpu.max` (then its limit holds it, not its neighbours, and a
/// boost would only take from what runs beside the tenants); it stays
/// boosted until it uses more than its baseline. The boost acts in the
/// scheduler at once, with no tick, where a quota on the neighbours acts
/// only at their next period.
pub fn weight_boosts(
    capacity: f64,
    claims: &[Claim],
    contended: bool,
    was_boosted: &[bool],
) -> Vec<bool> {
    claims
        .iter()
        .enumerate()
        .map(|(i, claim)| {
            let was = was_boosted.get(i).copied().unwrap_or(false);
            let active = is_active(claim, capacity, ACTIVE_BASELINE_FRACTION);
            contended && active && wants_boost(claim, was)
        })
        .collect()
}

fn wants_boost(claim: &Claim, was_boosted: bool) -> bool {
    let usage = claim.recent_usage.unwrap_or(claim.usage);
    if was_boosted {
        usage < BOOST_RELEASE_FRACTION * claim.baseline
    } else {
        usage < claim.baseline && !is_at_limit(claim)
    }
}

#[cfg(test)]
mod tests;
