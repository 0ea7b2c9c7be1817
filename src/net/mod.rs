//! Network egress: an HTB tree per declared link (rate = baseline, ceil =
//! burst; HTB lends spare capacity inside the kernel, so nothing here runs
//! per packet or per tick), an nftables table that classifies the tenants'
//! packets into it, and the per-class counters.
//!
//! Each tick [`Network::reconcile`] reads every link over netlink and
//! compares it with the plan. Only a difference (a new plan, or a change
//! behind qosd's back) starts `tc` or `nft`, so a quiet tick starts no
//! process at all.

pub mod fake;
pub mod plan;
pub mod shaper;
pub mod types;

use std::collections::{HashMap, HashSet};

use tracing::{debug, error, info, warn};

pub use plan::{GroupLocator, LinkPlan, plan_links};
pub use shaper::{Invocations, ShapeError, Shaper, SystemShaper};
pub use types::{ClassCounters, Handle, LinkState};

/// After a failed `tc` or `nft`, wait this many ticks before trying again,
/// so a host without HTB does not start a process every tick.
pub const RETRY_TICKS: u64 = 10;

/// One tenant's class counters on one link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantTraffic {
    pub tenant: String,
    pub interface: String,
    /// Since the previous reconcile (a class made again restarts from 0).
    pub delta: ClassCounters,
}

/// What one reconcile saw and did.
#[derive(Debug, Default)]
pub struct Reconciled {
    pub traffic: Vec<TenantTraffic>,
    /// Links and tables changed behind qosd's back and rebuilt.
    pub drift_corrections: u64,
    /// `tc` and `nft` runs that changed something.
    pub writes: u64,
    pub failures: u64,
}

/// Whether a link or the table is built, or failing and when to retry.
#[derive(Debug, Default)]
struct Health {
    built: bool,
    retry_at: u64,
    last_error: Option<String>,
}

impl Health {
    fn waiting(&self, tick: u64) -> bool {
        tick < self.retry_at
    }

    /// Logs an error once per distinct message (a host without HTB fails
    /// the same way every retry).
    fn failed(&mut self, what: &str, error: &ShapeError, tick: u64) {
        let message = error.to_string();
        if self.last_error.as_deref() != Some(message.as_str()) {
            error!(
                "network shaping of {what} is off: {message}; retrying every {RETRY_TICKS} ticks"
            );
        } else {
            debug!("network shaping of {what} still fails: {message}");
        }
        self.last_error = Some(message);
        self.built = false;
        self.retry_at = tick + RETRY_TICKS;
    }

    fn succeeded(&mut self, what: &str) {
        if self.last_error.take().is_some() {
            info!("network shaping of {what} works again");
        }
        self.built = true;
        self.retry_at = 0;
    }
}

pub struct Network {
    shaper: Box<dyn Shaper>,
    dry_run: bool,
    tick: u64,
    plans: Vec<LinkPlan>,
    links: HashMap<String, Health>,
    table: Health,
    /// The ruleset last loaded (or, in a dry run, shown).
    table_ruleset: Option<String>,
    /// Links said to be missing (said once until they appear).
    missing: HashSet<String>,
    previous: HashMap<(String, String), ClassCounters>,
    /// Per link, each tenant's class minor (see `keep_classes_stable`).
    classes: HashMap<String, HashMap<String, u16>>,
    /// In a dry run, the batch last shown per link (shown again only when
    /// it changes).
    dry_run_shown: HashMap<String, String>,
}

impl Network {
    pub fn new(shaper: Box<dyn Shaper>, dry_run: bool) -> Self {
        Network {
            shaper,
            dry_run,
            tick: 0,
            plans: Vec::new(),
            links: HashMap::new(),
            table: Health::default(),
            table_ruleset: None,
            missing: HashSet::new(),
            previous: HashMap::new(),
            classes: HashMap::new(),
            dry_run_shown: HashMap::new(),
        }
    }

    pub fn invocations(&self) -> Invocations {
        self.shaper.invocations()
    }

    /// Brings every link and the table to `plans`, repairing what changed
    /// behind qosd's back, and reads the tenants' counters.
    pub fn reconcile(&mut self, mut plans: Vec<LinkPlan>) -> Reconciled {
        self.tick += 1;
        self.shaper.refresh();
        self.keep_classes_stable(&mut plans);
        let mut done = Reconciled::default();
        self.drop_removed_links(&plans, &mut done);
        for plan in &plans {
            let changed = self.plans.iter().find(|p| p.interface == plan.interface) != Some(plan);
            self.reconcile_link(plan, changed, &mut done);
        }
        self.reconcile_table(&plans, &mut done);
        self.plans = plans;
        done
    }

    fn reconcile_link(&mut self, plan: &LinkPlan, changed: bool, done: &mut Reconciled) {
        let interface = &plan.interface;
        let health = self.links.entry(interface.clone()).or_default();
        if health.waiting(self.tick) && !changed {
            return;
        }
        let observed = match self.shaper.observe(interface) {
            Ok(Some(observed)) => observed,
            Ok(None) => {
                if self.missing.insert(interface.clone()) {
                    warn!("link {interface} does not exist; it is shaped once it appears");
                }
                health.built = false;
                return;
            }
            Err(error) => return health.failed(interface, &error, self.tick),
        };
        if self.missing.remove(interface) {
            info!("link {interface} appeared");
        }
        done.traffic
            .extend(traffic(plan, &observed, &mut self.previous));
        let differences = plan::differences(plan, &observed);
        if differences.is_empty() {
            health.succeeded(interface);
            return;
        }
        if health.built && !changed {
            warn!(
                "link {interface} changed behind qosd's back ({}); rebuilding it",
                differences.join("; ")
            );
            done.drift_corrections += 1;
        }
        if self.dry_run {
            let batch = plan::tc_batch(plan, &observed);
            if self
                .dry_run_shown
                .insert(interface.clone(), batch.clone())
                .as_ref()
                != Some(&batch)
            {
                info!("dry run: would run tc -batch -:\n{batch}");
            }
            return;
        }
        say_if_replacing_a_foreign_root(interface, &observed);
        match self.shaper.apply_link(plan, &observed) {
            Ok(()) => {
                done.writes += 1;
                health.succeeded(interface);
                debug!("link {interface} built: {}", differences.join("; "));
                start_new_classes_at_zero(plan, &observed, &mut self.previous);
            }
            Err(error) => {
                done.failures += 1;
                health.failed(interface, &error, self.tick);
            }
        }
    }

    fn reconcile_table(&mut self, plans: &[LinkPlan], done: &mut Reconciled) {
        if plans.is_empty() && self.table_ruleset.is_none() {
            return; // no links: qosd leaves nftables alone
        }
        let ruleset = plan::nft_ruleset(plans);
        let changed = self.table_ruleset.as_ref() != Some(&ruleset);
        if self.table.waiting(self.tick) && !changed {
            return;
        }
        if self.dry_run {
            if changed {
                info!("dry run: would load into nft -f -:\n{ruleset}");
                self.table_ruleset = Some(ruleset);
            }
            return;
        }
        if !changed && self.table.built {
            match self.shaper.table_intact() {
                Ok(true) => return,
                Ok(false) => {
                    warn!(
                        "nftables table {} changed behind qosd's back; loading it again",
                        plan::TABLE
                    );
                    done.drift_corrections += 1;
                }
                Err(error) => return self.table.failed("the nftables table", &error, self.tick),
            }
        }
        let applied = if plans.is_empty() {
            self.shaper.remove_table()
        } else {
            self.shaper.apply_table(plans)
        };
        match applied {
            Ok(()) => {
                done.writes += 1;
                self.table.succeeded("the nftables table");
                self.table_ruleset = (!plans.is_empty()).then_some(ruleset);
            }
            Err(error) => {
                done.failures += 1;
                // Kept, so the retry waits its turn unless the rules change.
                self.table_ruleset = Some(ruleset);
                self.table.failed("the nftables table", &error, self.tick);
            }
        }
    }

    /// A link no longer declared loses qosd's tree (a reload removed it).
    /// Gives each tenant the class it had before on the link, and a new one
    /// a minor no tenant held at the previous reconcile: the plan numbers
    /// tenants in file order, and `class replace` keeps a class's counters,
    /// so without this a reload that removes one tenant would hand its
    /// counters to the next.
    fn keep_classes_stable(&mut self, plans: &mut [LinkPlan]) {
        for plan in plans {
            let known = self.classes.entry(plan.interface.clone()).or_default();
            let mut taken: HashSet<u16> = known.values().copied().collect();
            for tenant in &mut plan.tenants {
                let minor = *known.entry(tenant.tenant.clone()).or_insert_with(|| {
                    let free =
                        (plan::FIRST_TENANT_MINOR..=u16::MAX).find(|minor| !taken.contains(minor));
                    let minor = free.unwrap_or(u16::MAX);
                    taken.insert(minor);
                    minor
                });
                tenant.class = Handle::new(plan::ROOT_QDISC.major(), minor);
            }
            known.retain(|name, _| plan.tenants.iter().any(|tenant| tenant.tenant == *name));
        }
    }

    fn drop_removed_links(&mut self, plans: &[LinkPlan], done: &mut Reconciled) {
        let removed: Vec<String> = self
            .links
            .keys()
            .filter(|interface| !plans.iter().any(|plan| &plan.interface == *interface))
            .cloned()
            .collect();
        for interface in removed {
            self.links.remove(&interface);
            self.classes.remove(&interface);
            self.previous.retain(|(_, link), _| *link != interface);
            // Decided by what is there, not by `built`: a tree left half
            // made by a failed batch goes too.
            let ours = match self.shaper.observe(&interface) {
                Ok(Some(state)) => state
                    .qdisc_under(Handle::ROOT)
                    .is_some_and(|root| root.handle == plan::ROOT_QDISC),
                _ => false,
            };
            if ours && !self.dry_run {
                info!("link {interface} is no longer declared; removing qosd's qdisc from it");
                match self.shaper.remove_link(&interface) {
                    Ok(()) => done.writes += 1,
                    Err(error) => warn!("cannot remove qosd's qdisc from {interface}: {error}"),
                }
            }
        }
    }

    /// Removes every qdisc and the table qosd built (`qosd run --cleanup`
    /// on shutdown).
    pub fn clean_up(&mut self) {
        for plan in std::mem::take(&mut self.plans) {
            match self.shaper.remove_link(&plan.interface) {
                Ok(()) => info!("removed qosd's qdisc from {}", plan.interface),
                Err(error) => warn!(
                    "cannot remove qosd's qdisc from {}: {error}",
                    plan.interface
                ),
            }
        }
        match self.shaper.remove_table() {
            Ok(()) => info!("removed nftables table {}", plan::TABLE),
            Err(error) => warn!("cannot remove nftables table {}: {error}", plan::TABLE),
        }
    }
}

/// qosd owns the root qdisc of a declared link: say so when that displaces
/// another (a multi-queue `mq`, or someone's own shaping). The kernel's
/// defaults, which a link gets when nobody set one, go unmentioned.
fn say_if_replacing_a_foreign_root(interface: &str, observed: &LinkState) {
    let Some(root) = observed.qdisc_under(Handle::ROOT) else {
        return;
    };
    let ours = root.kind == "htb" && root.handle == plan::ROOT_QDISC;
    let default = matches!(root.kind.as_str(), "noqueue" | "pfifo_fast" | "fq_codel");
    if !ours && !default {
        warn!(
            "link {interface}: replacing its root qdisc {} {} with qosd's HTB tree",
            root.kind, root.handle
        );
    }
}

/// Each tenant's counters on `observed` since the previous call.
fn traffic(
    plan: &LinkPlan,
    observed: &LinkState,
    previous: &mut HashMap<(String, String), ClassCounters>,
) -> Vec<TenantTraffic> {
    plan.tenants
        .iter()
        .filter_map(|tenant| {
            let now = observed.class(tenant.class)?.counters;
            let key = (tenant.tenant.clone(), plan.interface.clone());
            let before = previous.insert(key, now).unwrap_or(now);
            Some(TenantTraffic {
                tenant: tenant.tenant.clone(),
                interface: plan.interface.clone(),
                delta: since(before, now),
            })
        })
        .collect()
}

/// A class qosd just made counts from zero, so its first bytes are not lost.
fn start_new_classes_at_zero(
    plan: &LinkPlan,
    observed: &LinkState,
    previous: &mut HashMap<(String, String), ClassCounters>,
) {
    for tenant in &plan.tenants {
        if observed.class(tenant.class).is_none() {
            let key = (tenant.tenant.clone(), plan.interface.clone());
            previous.insert(key, ClassCounters::default());
        }
    }
}

/// Counters that went down belong to a class made again: all of `now` is new.
fn since(before: ClassCounters, now: ClassCounters) -> ClassCounters {
    let restarted = now.bytes < before.bytes || now.packets < before.packets;
    let base = if restarted {
        ClassCounters::default()
    } else {
        before
    };
    ClassCounters {
        bytes: now.bytes - base.bytes,
        packets: now.packets - base.packets,
        drops: now.drops.saturating_sub(base.drops),
        overlimits: now.overlimits.saturating_sub(base.overlimits),
    }
}

#[cfg(test)]
mod tests;
