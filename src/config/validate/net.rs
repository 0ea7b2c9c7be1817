//! `[[host.links]]` and the tenants' `net = [...]`: interfaces, bit rates,
//! and the checks against each link's egress capacity.

use std::path::Path;

use toml::Spanned;

use super::{
    CheckedTenant, baseline_within_burst, check_field, declared_list, default_weight, exceeds,
    record_first, report_overcommitment, validate_entries,
};
use crate::config::devices::check_interface_name;
use crate::config::diagnostics::{Diagnostics, Span, join_key};
use crate::config::schema::{
    BitRate, InterfaceText, Listed, Quantity, RawEgressLimit, RawLinkCapacity, RawNetContract,
    Weight,
};
use crate::config::units::{format_bits_per_second, format_number, parse_quantity};
use crate::config::{
    AgentConfig, BitsPerSecond, Contract, HostConfig, HostFacts, LinkCapacity,
    NFTABLES_CGROUP_MOUNT, NetContract,
};

/// A plain number of bits per second below this is probably a unit left out
/// (`egress = 100` meaning 100 Mbit/s), which is worth a warning.
const SUSPICIOUSLY_FEW_BITS_PER_SECOND: f64 = 1000.0;

/// An interface that was already named, for "declared twice" errors.
struct Seen {
    name: String,
    /// The entry that named it, such as `host.links[0]`.
    key: String,
}

/// Records `name` under `key`; an earlier entry with the same name is
/// returned instead (and `name` is not recorded).
fn record<'a>(seen: &'a mut Vec<Seen>, name: &str, key: &str) -> Option<&'a Seen> {
    let is_same = |earlier: &Seen| earlier.name == name;
    record_first(seen, is_same, || Seen {
        name: name.to_owned(),
        key: key.to_owned(),
    })
}

/// A `veth` named by some tenant: a veth's traffic goes to one tenant.
pub(super) struct SeenVeth {
    name: String,
    tenant: String,
    /// Such as `tenants.web.net[0].veth`.
    key: String,
}

/// `[[host.links]]`: each entry's interface exists on this host, its egress
/// capacity parses and is positive, and no interface is declared twice.
pub(super) fn validate_links(
    entries: &[Listed<RawLinkCapacity>],
    facts: &HostFacts,
    diagnostics: &mut Diagnostics,
) -> Vec<LinkCapacity> {
    let mut seen = Vec::new();
    validate_entries(
        entries,
        "host.links",
        diagnostics,
        |key, entry, diagnostics| {
            validate_link(key, entry.get_ref(), facts, &mut seen, diagnostics)
        },
    )
}

/// One `[[host.links]]` entry at `key`; `seen` holds the interfaces of the
/// entries before it.
fn validate_link(
    key: &str,
    raw: &RawLinkCapacity,
    facts: &HostFacts,
    seen: &mut Vec<Seen>,
    diagnostics: &mut Diagnostics,
) -> Option<LinkCapacity> {
    let interface_key = join_key(key, "interface");
    let interface = check_field(&raw.interface, &interface_key, diagnostics, |written| {
        find_link_interface(&written.0, facts)
    });
    let egress = capacity_field(&raw.egress, &join_key(key, "egress"), diagnostics);
    if let Some(interface) = &interface
        && let Some(earlier) = record(seen, interface, key)
    {
        let message = format!(
            "interface {interface} is already declared by `{}`; give each interface one \
             `[[host.links]]` entry",
            earlier.key
        );
        diagnostics.error(&interface_key, Some(raw.interface.span()), message);
    }
    Some(LinkCapacity {
        interface: interface?,
        egress: egress?,
    })
}

/// A link's interface: a valid name, of an interface of this host.
fn find_link_interface(name: &str, facts: &HostFacts) -> Result<String, String> {
    check_interface_name(name)?;
    (facts.find_interface)(name)
        .map_err(|reason| format!("{reason} (`ip link` lists the interfaces of this host)"))?;
    Ok(name.to_owned())
}

/// A link's egress capacity: a bit rate, more than 0 (a link that carries
/// nothing cannot be shared).
fn capacity_field(
    field: &Spanned<BitRate>,
    key: &str,
    diagnostics: &mut Diagnostics,
) -> Option<BitsPerSecond> {
    let capacity = bit_rate_field(field, key, diagnostics)?;
    if capacity.get() > 0.0 {
        return Some(capacity);
    }
    let message = format!(
        "a capacity must be more than 0, got {capacity}; leave the link out to leave it unshaped"
    );
    diagnostics.error(key, Some(field.span()), message);
    None
}

/// A bit rate, or an error at its span; a small plain number gets a warning.
fn bit_rate_field(
    field: &Spanned<BitRate>,
    key: &str,
    diagnostics: &mut Diagnostics,
) -> Option<BitsPerSecond> {
    let rate = check_field(field, key, diagnostics, |rate| {
        parse_quantity(&rate.0, BitsPerSecond::new)
    })?;
    let quantity = &field.get_ref().0;
    if let Quantity::Number(bits) = quantity
        && *bits > 0.0
        && *bits < SUSPICIOUSLY_FEW_BITS_PER_SECOND
    {
        let bits = format_number(*bits);
        diagnostics.warn(format!(
            "`{key}` is {bits} bits per second: a plain number counts bits; \
             write \"{bits}Mbit/s\" if you meant megabits per second"
        ));
    }
    Some(rate)
}

/// What a tenant's `net = [...]` is checked against.
pub(super) struct NetChecks<'a> {
    /// Such as `tenants.web.net`.
    pub key: &'a str,
    pub tenant: &'a str,
    /// The host's links; `None` when they have errors: then only what does
    /// not depend on them is checked.
    pub declared: Option<&'a [LinkCapacity]>,
    pub facts: &'a HostFacts,
}

impl NetChecks<'_> {
    /// Each entry names a link of `[[host.links]]` once, with an egress
    /// contract that fits it; a `veth` is named by one tenant only.
    pub(super) fn validate(
        &self,
        entries: &[Listed<RawNetContract>],
        veths: &mut Vec<SeenVeth>,
        diagnostics: &mut Diagnostics,
    ) -> Vec<NetContract> {
        let mut seen = Vec::new();
        validate_entries(entries, self.key, diagnostics, |key, entry, diagnostics| {
            let raw = entry.get_ref();
            let interface_key = join_key(key, "interface");
            let name = &raw.interface.get_ref().0;
            let interface = check_interface_name(name).map(|()| name.clone());
            let interface =
                diagnostics.ok_or_record(&interface_key, raw.interface.span(), interface);
            let mut link = None;
            if let Some(interface) = &interface {
                if let Some(earlier) = record(&mut seen, interface, key) {
                    let message = format!(
                        "interface {interface} already has a contract in `{}`; give each \
                         interface one entry",
                        earlier.key
                    );
                    diagnostics.error(&interface_key, Some(raw.interface.span()), message);
                }
                if let Some(declared) = self.declared {
                    link = declared_link(interface, declared)
                        .map_err(|message| {
                            diagnostics.error(&interface_key, Some(raw.interface.span()), message)
                        })
                        .ok();
                }
            }
            let weight = raw
                .weight
                .as_ref()
                .map(|weight| net_weight(weight, &join_key(key, "weight"), diagnostics));
            let egress_key = join_key(key, "egress");
            let egress = validate_egress(&raw.egress, &egress_key, link, weight, diagnostics);
            let veth = raw
                .veth
                .as_ref()
                .and_then(|veth| self.veth(veth, &join_key(key, "veth"), veths, diagnostics));
            Some(NetContract {
                interface: interface?,
                veth,
                egress: egress?,
            })
        })
    }

    /// The host-side veth of the tenant's network namespace: a valid name,
    /// of no other tenant. One that does not exist (yet) is only a warning:
    /// a container's veth comes and goes with it.
    fn veth(
        &self,
        field: &Spanned<InterfaceText>,
        key: &str,
        veths: &mut Vec<SeenVeth>,
        diagnostics: &mut Diagnostics,
    ) -> Option<String> {
        let name = &field.get_ref().0;
        if let Err(message) = check_interface_name(name) {
            diagnostics.error(key, Some(field.span()), message);
            return None;
        }
        let earlier = veths.iter().find(|earlier| &earlier.name == name);
        match earlier {
            Some(earlier) if earlier.tenant != self.tenant => {
                let message = format!(
                    "veth {name} already belongs to tenant `{}` (`{}`); the traffic of a veth \
                     is classified into one tenant",
                    earlier.tenant, earlier.key
                );
                diagnostics.error(key, Some(field.span()), message);
                return None;
            }
            // The same tenant may name its veth on several links.
            Some(_) => {}
            None => veths.push(SeenVeth {
                name: name.clone(),
                tenant: self.tenant.to_owned(),
                key: key.to_owned(),
            }),
        }
        if let Err(reason) = (self.facts.find_interface)(name) {
            diagnostics.warn(format!(
                "`{key}`: {reason}; that is expected while its container is down: \
                 the tenant's forwarded traffic is classified whenever {name} appears"
            ));
        }
        Some(name.clone())
    }
}

/// The `[[host.links]]` entry of `interface` and its index, or the error
/// that says how to declare it.
fn declared_link<'a>(
    interface: &str,
    declared: &'a [LinkCapacity],
) -> Result<(usize, &'a LinkCapacity), String> {
    let found = declared
        .iter()
        .enumerate()
        .find(|(_, link)| link.interface == interface);
    found.ok_or_else(|| {
        let names = declared.iter().map(|link| link.interface.clone());
        let known = declared_list(names.collect(), "link");
        format!(
            "interface {interface} is not declared in `[[host.links]]`; declare it in a \
             `[[host.links]]` entry with `interface = {interface:?}` and its capacity, such as \
             `egress = \"1Gbit/s\"` ({known})"
        )
    })
}

/// An explicit weight: any positive number. It competes with the other
/// tenants' weights on the link, which default to their baselines in bits/s.
fn net_weight(weight: &Spanned<Weight>, key: &str, diagnostics: &mut Diagnostics) -> Option<f64> {
    let value = weight.get_ref().0;
    if value > 0.0 && value.is_finite() {
        return Some(value);
    }
    let message = format!(
        "the weight must be a number more than 0, got {}",
        format_number(value)
    );
    diagnostics.error(key, Some(weight.span()), message);
    None
}

/// The egress `{ baseline, burst }` of an entry: baseline ≤ burst ≤ the
/// link's capacity, burst > 0. `weight` is the entry's explicit weight
/// (`Some(None)` when it was invalid).
fn validate_egress(
    limit: &Spanned<RawEgressLimit>,
    key: &str,
    link: Option<(usize, &LinkCapacity)>,
    weight: Option<Option<f64>>,
    diagnostics: &mut Diagnostics,
) -> Option<Contract<BitsPerSecond>> {
    let raw = limit.get_ref();
    if let Some(weight) = &raw.weight {
        let message = "a net entry's weight is written next to its `interface`, \
                       not inside `egress`: write `weight = ...` there";
        diagnostics.error(&join_key(key, "weight"), Some(weight.span()), message);
    }
    let baseline_key = join_key(key, "baseline");
    let baseline = bit_rate_field(&raw.baseline, &baseline_key, diagnostics);
    let burst_key = join_key(key, "burst");
    let burst = bit_rate_field(&raw.burst, &burst_key, diagnostics).filter(|burst| {
        let positive = burst.get() > 0.0;
        if !positive {
            let message = format!(
                "the burst must be more than 0, got {burst}; a burst of 0 would stop the \
                 tenant's traffic"
            );
            diagnostics.error(&burst_key, Some(raw.burst.span()), message);
        }
        positive
    });
    let (baseline, burst) = (baseline?, burst?);
    let ordered = baseline_within_burst(baseline, burst, |rate| rate.to_string());
    diagnostics.ok_or_record(&baseline_key, raw.baseline.span(), ordered)?;
    if let Some((index, link)) = link
        && exceeds(burst.get(), link.egress.get())
    {
        let message = format!(
            "the burst of {burst} is more than the egress capacity of {}, {} \
             (`host.links[{index}]`): lower it to at most the link's capacity",
            link.interface, link.egress
        );
        diagnostics.error(&burst_key, Some(raw.burst.span()), message);
        return None;
    }
    let weight = weight.unwrap_or_else(|| Some(default_weight(baseline.get())))?;
    Some(Contract {
        baseline,
        burst,
        weight,
    })
}

/// nftables resolves a `socket cgroupv2` path under its own compiled-in
/// mount, /sys/fs/cgroup, and refuses any other: with tenants elsewhere,
/// only their veths' traffic can be classified.
pub(super) fn warn_about_unmatchable_cgroups(
    tenants: &[CheckedTenant],
    agent: &AgentConfig,
    diagnostics: &mut Diagnostics,
) {
    let shaped = tenants.iter().any(|checked| !checked.tenant.net.is_empty());
    if shaped && agent.cgroup_root != Path::new(NFTABLES_CGROUP_MOUNT) {
        diagnostics.warn(format!(
            "agent.cgroup_root is {}, but nftables matches `socket cgroupv2` only under {}: the tenants' own traffic \
             is not classified into their net contracts (traffic from a tenant's `veth` still is)",
            agent.cgroup_root.display(),
            NFTABLES_CGROUP_MOUNT
        ));
    }
}

/// Per link: egress baselines adding up to more than its capacity are
/// overcommitment (a warning, or an error when refused). Bursts above the
/// capacity are already errors.
pub(super) fn check_link_capacity(
    tenants: &[CheckedTenant],
    host: &HostConfig,
    overcommit_span: Option<Span>,
    diagnostics: &mut Diagnostics,
) {
    for link in &host.links {
        let total: f64 = tenants
            .iter()
            .flat_map(|checked| &checked.tenant.net)
            .filter(|contract| contract.interface == link.interface)
            .map(|contract| contract.egress.baseline.get())
            .sum();
        if exceeds(total, link.egress.get()) {
            let message = format!(
                "net egress baselines on {} add up to {}, more than its capacity of {}",
                link.interface,
                format_bits_per_second(total),
                link.egress
            );
            report_overcommitment(message, host, overcommit_span.clone(), diagnostics);
        }
    }
}
