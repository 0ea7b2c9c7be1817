//! What each link should hold, from the contracts (pure): the HTB tree, the
//! `tc -batch` commands that build it, the nftables table that classifies
//! the tenants' packets into it, and how an observed link differs from it.
//!
//! The tree on a link:
//!
//! ```text
//! 1:   htb root qdisc, unclassified packets go to 1:2
//! └─ 1:1   rate = ceil = the link's capacity
//!    ├─ 1:2    unclassified: rate = capacity - baselines, ceil = capacity
//!    ├─ 1:10   first tenant: rate = baseline, ceil = burst
//!    └─ 1:11   ...
//! ```
//! with an fq_codel qdisc on every leaf (`10:` under `1:10`), so queues stay
//! short whoever borrows.

use std::fmt::Write;
use std::path::PathBuf;

use super::types::{Handle, LinkState};
use crate::config::{Config, Tenant};

pub const ROOT_QDISC: Handle = Handle::new(1, 0);
pub const LINK_CLASS: Handle = Handle::new(1, 1);
pub const DEFAULT_CLASS: Handle = Handle::new(1, 2);
pub(super) const FIRST_TENANT_MINOR: u16 = 0x10;
pub const LEAF_QDISC_KIND: &str = "fq_codel";
pub const TABLE: &str = "inet qosd";
/// HTB refuses a rate of 0; this is 8 kbit/s.
const MIN_RATE: u64 = 1000;
/// The quantum of the class with the smallest weight: one largest GSO
/// packet (64 KiB). HTB lets a class send one packet per turn even when
/// that overdraws its quantum, so a quantum below the packet size shares by
/// packets, not bytes: with 1514 the VM saw two equal contracts split a
/// link 27 : 11. Heavier classes get proportionally more, up to
/// [`MAX_QUANTUM`].
const MIN_QUANTUM: u64 = 65_536;
/// Eight packets per turn: beyond that a borrowing class would hold the
/// link for long stretches (at 40 Mbit/s, 512 KiB is 100 ms).
const MAX_QUANTUM: u64 = 8 * MIN_QUANTUM;

/// One tenant's class on a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantClass {
    pub tenant: String,
    pub class: Handle,
    /// Bytes per second.
    pub rate: u64,
    pub ceil: u64,
    pub quantum: u32,
    /// The tenant's cgroup relative to the cgroup2 mount, when it exists,
    /// with its inode: nftables resolves the path once, when the table is
    /// loaded, so a group made again needs the table loaded again.
    pub cgroup: Option<(PathBuf, u64)>,
    pub veth: Option<String>,
}

/// Everything qosd builds on one link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkPlan {
    pub interface: String,
    /// Bytes per second.
    pub capacity: u64,
    pub tenants: Vec<TenantClass>,
}

impl LinkPlan {
    fn default_rate(&self) -> u64 {
        let baselines: u64 = self.tenants.iter().map(|tenant| tenant.rate).sum();
        self.capacity.saturating_sub(baselines).max(MIN_RATE)
    }

    /// (class, rate, ceil, quantum) of every class qosd builds; quantum 0
    /// leaves HTB's default.
    pub(super) fn classes(&self) -> Vec<(Handle, u64, u64, u32)> {
        let mut classes = vec![
            (LINK_CLASS, self.capacity, self.capacity, 0),
            (
                DEFAULT_CLASS,
                self.default_rate(),
                self.capacity,
                MIN_QUANTUM as u32,
            ),
        ];
        classes.extend(
            self.tenants
                .iter()
                .map(|t| (t.class, t.rate, t.ceil, t.quantum)),
        );
        classes
    }

    pub(super) fn leaves(&self) -> impl Iterator<Item = Handle> + '_ {
        std::iter::once(DEFAULT_CLASS).chain(self.tenants.iter().map(|tenant| tenant.class))
    }
}

/// Where a tenant's cgroup is, for the nftables rules.
pub trait GroupLocator {
    /// The group's path relative to the cgroup2 mount and its inode, or
    /// `None` when it does not exist (no rule is written for it then).
    fn locate(&self, tenant: &Tenant) -> Option<(PathBuf, u64)>;
}

/// The plan of every `[[host.links]]` entry.
pub fn plan_links(config: &Config, groups: &dyn GroupLocator) -> Vec<LinkPlan> {
    config
        .host
        .links
        .iter()
        .map(|link| {
            let contracts: Vec<_> = config
                .tenants
                .iter()
                .filter_map(|tenant| {
                    let contract = tenant.net.iter().find(|c| c.interface == link.interface)?;
                    Some((tenant, contract))
                })
                .collect();
            let least_weight = contracts
                .iter()
                .map(|(_, contract)| contract.egress.weight)
                .fold(f64::INFINITY, f64::min);
            let tenants = contracts
                .iter()
                .zip(FIRST_TENANT_MINOR..)
                .map(|((tenant, contract), minor)| TenantClass {
                    tenant: tenant.name.clone(),
                    class: Handle::new(1, minor),
                    rate: contract.egress.baseline.bytes_per_second().max(MIN_RATE),
                    ceil: contract.egress.burst.bytes_per_second().max(MIN_RATE),
                    quantum: quantum(contract.egress.weight / least_weight),
                    cgroup: groups.locate(tenant),
                    veth: contract.veth.clone(),
                })
                .collect();
            LinkPlan {
                interface: link.interface.clone(),
                capacity: link.egress.bytes_per_second(),
                tenants,
            }
        })
        .collect()
}

/// HTB lends spare capacity round-robin by quantum, so a quantum in
/// proportion to the weight shares spare capacity by weight.
fn quantum(relative_weight: f64) -> u32 {
    let quantum = (MIN_QUANTUM as f64 * relative_weight).round() as u64;
    quantum.clamp(MIN_QUANTUM, MAX_QUANTUM) as u32
}

/// How a link differs from its plan; empty when it matches.
pub fn differences(plan: &LinkPlan, observed: &LinkState) -> Vec<String> {
    let mut found = Vec::new();
    match observed.qdisc_under(Handle::ROOT) {
        Some(root) if root.kind == "htb" && root.handle == ROOT_QDISC => {}
        Some(root) => found.push(format!("root qdisc is {} {}", root.kind, root.handle)),
        None => found.push("no root qdisc".to_owned()),
    }
    for (class, rate, ceil, quantum) in plan.classes() {
        match observed.class(class) {
            None => found.push(format!("class {class} is missing")),
            Some(seen) if seen.kind != "htb" || seen.rate != rate || seen.ceil != ceil => found
                .push(format!(
                    "class {class} is rate {} ceil {} (want {rate} {ceil})",
                    seen.rate, seen.ceil
                )),
            Some(seen) if quantum != 0 && seen.quantum != quantum => found.push(format!(
                "class {class} has quantum {} (want {quantum})",
                seen.quantum
            )),
            Some(_) => {}
        }
    }
    for leaf in plan.leaves() {
        if observed
            .qdisc_under(leaf)
            .is_none_or(|qdisc| qdisc.kind != LEAF_QDISC_KIND)
        {
            found.push(format!("no {LEAF_QDISC_KIND} under {leaf}"));
        }
    }
    found.extend(extra_classes(plan, observed).map(|class| format!("class {class} is not ours")));
    found
}

/// HTB classes under our root that the plan does not have (a tenant removed
/// by a reload, or added by hand).
fn extra_classes<'a>(
    plan: &'a LinkPlan,
    observed: &'a LinkState,
) -> impl Iterator<Item = Handle> + 'a {
    let planned: Vec<Handle> = plan.classes().iter().map(|(class, ..)| *class).collect();
    observed
        .classes
        .iter()
        .filter(move |class| class.kind == "htb" && class.handle.major() == ROOT_QDISC.major())
        .map(|class| class.handle)
        .filter(move |class| !planned.contains(class))
}

/// The `tc -batch -` input that makes `observed` into `plan`. Every command
/// is a `replace`, which changes what exists in place (counters survive) and
/// makes what is missing, so the same batch serves a first build, a reload
/// and a repair.
pub fn tc_batch(plan: &LinkPlan, observed: &LinkState) -> String {
    let device = &plan.interface;
    let mut batch = String::new();
    // `replace` cannot turn a qdisc into another kind under the same handle.
    let foreign_root = observed
        .qdisc_under(Handle::ROOT)
        .is_some_and(|root| root.handle == ROOT_QDISC && root.kind != "htb");
    if foreign_root {
        let _ = writeln!(batch, "qdisc del dev {device} root");
    }
    let _ = writeln!(
        batch,
        "qdisc replace dev {device} root handle {ROOT_QDISC} htb default {:x}",
        DEFAULT_CLASS.minor()
    );
    let mut extra: Vec<Handle> = extra_classes(plan, observed).collect();
    // Children before parents, or the kernel refuses to delete.
    extra.sort_by_key(|class| std::cmp::Reverse(class.minor()));
    for class in extra {
        let _ = writeln!(batch, "class del dev {device} classid {class}");
    }
    for (class, rate, ceil, quantum) in plan.classes() {
        let parent = if class == LINK_CLASS {
            ROOT_QDISC
        } else {
            LINK_CLASS
        };
        let _ = write!(
            batch,
            "class replace dev {device} parent {parent} classid {class} htb rate {}bit ceil {}bit",
            rate * 8,
            ceil * 8
        );
        if quantum != 0 {
            let _ = write!(batch, " quantum {quantum}");
        }
        batch.push('\n');
    }
    for leaf in plan.leaves() {
        let handle = Handle::new(leaf.minor(), 0);
        let foreign_leaf = !foreign_root
            && observed
                .qdisc_under(leaf)
                .is_some_and(|qdisc| qdisc.handle == handle && qdisc.kind != LEAF_QDISC_KIND);
        if foreign_leaf {
            let _ = writeln!(batch, "qdisc del dev {device} parent {leaf}");
        }
        let _ = writeln!(
            batch,
            "qdisc replace dev {device} parent {leaf} handle {handle} {LEAF_QDISC_KIND}"
        );
    }
    batch
}

/// The `tc -batch -` input that removes qosd's tree from a link.
pub fn tc_removal(interface: &str) -> String {
    format!("qdisc del dev {interface} root handle {ROOT_QDISC}\n")
}

/// The `nft -f -` input that replaces table `inet qosd` at once: declaring
/// the table first makes the delete valid when it does not exist yet, and
/// the whole file is one transaction.
pub fn nft_ruleset(plans: &[LinkPlan]) -> String {
    let mut output = String::new();
    let mut forward = String::new();
    for plan in plans {
        for tenant in &plan.tenants {
            let (device, class) = (&plan.interface, tenant.class);
            if let Some((path, inode)) = &tenant.cgroup {
                let level = path.components().count();
                // The inode in the comment makes a group made again (same
                // path, new id) a different ruleset, so it is loaded again.
                let _ = writeln!(
                    output,
                    "\t\toifname \"{device}\" socket cgroupv2 level {level} \"{}\" meta priority set {class} comment \"cgroup inode {inode}\"",
                    path.display()
                );
            }
            if let Some(veth) = &tenant.veth {
                let _ = writeln!(
                    forward,
                    "\t\tiifname \"{veth}\" oifname \"{device}\" meta priority set {class}"
                );
            }
        }
    }
    format!(
        "table {TABLE}\ndelete table {TABLE}\ntable {TABLE} {{\n{}{}}}\n",
        chain("output", &output),
        chain("forward", &forward)
    )
}

/// Removes table `inet qosd` if it exists.
pub fn nft_removal() -> String {
    format!("table {TABLE}\ndelete table {TABLE}\n")
}

/// A base chain at the mangle priority: it only sets `meta priority`, which
/// the link's HTB reads as the class.
fn chain(hook: &str, rules: &str) -> String {
    format!(
        "\tchain {hook} {{\n\t\ttype filter hook {hook} priority mangle; policy accept;\n{rules}\t}}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> LinkPlan {
        LinkPlan {
            interface: "up0".into(),
            capacity: 5_000_000,
            tenants: vec![
                TenantClass {
                    tenant: "api".into(),
                    class: Handle::new(1, 0x10),
                    rate: 3_125_000,
                    ceil: 5_000_000,
                    quantum: 327_680,
                    cgroup: Some(("qosd.slice/api".into(), 7)),
                    veth: None,
                },
                TenantClass {
                    tenant: "ctr".into(),
                    class: Handle::new(1, 0x11),
                    rate: 625_000,
                    ceil: 5_000_000,
                    quantum: 65_536,
                    cgroup: None,
                    veth: Some("vctr".into()),
                },
            ],
        }
    }

    use crate::net::types::QdiscState;

    fn built(plan: &LinkPlan) -> LinkState {
        crate::net::fake::build(plan, &LinkState::default())
    }

    #[test]
    fn the_batch_builds_root_link_default_and_tenant_classes_with_fq_codel_leaves() {
        let batch = tc_batch(&plan(), &LinkState::default());
        let expected = "\
qdisc replace dev up0 root handle 1: htb default 2
class replace dev up0 parent 1: classid 1:1 htb rate 40000000bit ceil 40000000bit
class replace dev up0 parent 1:1 classid 1:2 htb rate 10000000bit ceil 40000000bit quantum 65536
class replace dev up0 parent 1:1 classid 1:10 htb rate 25000000bit ceil 40000000bit quantum 327680
class replace dev up0 parent 1:1 classid 1:11 htb rate 5000000bit ceil 40000000bit quantum 65536
qdisc replace dev up0 parent 1:2 handle 2: fq_codel
qdisc replace dev up0 parent 1:10 handle 10: fq_codel
qdisc replace dev up0 parent 1:11 handle 11: fq_codel
";
        assert_eq!(batch, expected);
    }

    #[test]
    fn a_built_link_has_no_differences_and_each_change_is_named() {
        let plan = plan();
        let mut state = built(&plan);
        assert_eq!(differences(&plan, &state), Vec::<String>::new());
        state.classes[2].ceil = 1;
        state
            .qdiscs
            .retain(|qdisc| qdisc.parent != Handle::new(1, 0x11));
        let found = differences(&plan, &state);
        assert_eq!(
            found,
            [
                "class 1:10 is rate 3125000 ceil 1 (want 3125000 5000000)",
                "no fq_codel under 1:11"
            ]
        );
        assert_eq!(
            differences(&plan, &LinkState::default())[0],
            "no root qdisc"
        );
    }

    #[test]
    fn classes_of_removed_tenants_are_deleted_children_first() {
        let mut plan = plan();
        let state = built(&plan);
        plan.tenants.truncate(1);
        let found = differences(&plan, &state);
        let default_grows = "class 1:2 is rate 1250000 ceil 5000000 (want 1875000 5000000)";
        assert_eq!(found, [default_grows, "class 1:11 is not ours"]);
        assert!(tc_batch(&plan, &state).contains("class del dev up0 classid 1:11\n"));
    }

    #[test]
    fn a_qdisc_of_another_kind_under_our_handle_is_deleted_before_the_replace() {
        let plan = plan();
        let mut state = built(&plan);
        state.qdiscs[1].kind = "pfifo".into(); // the leaf 2: under 1:2
        let batch = tc_batch(&plan, &state);
        assert!(
            batch.contains(
                "qdisc del dev up0 parent 1:2\nqdisc replace dev up0 parent 1:2 handle 2: fq_codel"
            ),
            "{batch}"
        );
        state.qdiscs[0].kind = "prio".into(); // the root 1:
        let batch = tc_batch(&plan, &state);
        assert!(batch.starts_with("qdisc del dev up0 root\n"), "{batch}");
        assert!(
            !batch.contains("parent 1:2\nqdisc replace"),
            "leaves go with the root: {batch}"
        );
        let noqueue = QdiscState {
            handle: Handle(0),
            parent: Handle::ROOT,
            kind: "noqueue".into(),
        };
        let fresh = LinkState {
            qdiscs: vec![noqueue],
            classes: vec![],
        };
        assert!(
            !tc_batch(&plan, &fresh).contains(" del "),
            "a kernel default is replaced, not deleted"
        );
    }

    #[test]
    fn baselines_above_capacity_leave_the_default_class_the_minimum_rate() {
        let mut plan = plan();
        plan.tenants[1].rate = plan.capacity;
        assert_eq!(plan.default_rate(), MIN_RATE);
    }

    #[test]
    fn the_table_classifies_by_cgroup_and_by_veth_and_replaces_itself_atomically() {
        let ruleset = nft_ruleset(&[plan()]);
        let expected = "\
table inet qosd
delete table inet qosd
table inet qosd {
\tchain output {
\t\ttype filter hook output priority mangle; policy accept;
\t\toifname \"up0\" socket cgroupv2 level 2 \"qosd.slice/api\" meta priority set 1:10 comment \"cgroup inode 7\"
\t}
\tchain forward {
\t\ttype filter hook forward priority mangle; policy accept;
\t\tiifname \"vctr\" oifname \"up0\" meta priority set 1:11
\t}
}
";
        assert_eq!(ruleset, expected);
    }

    #[test]
    fn quantum_follows_weight_within_bounds() {
        assert_eq!(quantum(1.0), 65_536);
        assert_eq!(quantum(5.0), 327_680);
        assert_eq!(quantum(1e9), 524_288);
    }
}
