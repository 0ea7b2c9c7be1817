//! Network egress in the tick: plan the links from the contracts and the
//! groups that exist, reconcile them, then export the tenants' counters,
//! each link's contention and broken contracts.
//!
//! HTB holds the contracts inside the kernel (a tenant below its rate always
//! sends, and spare capacity is lent up to the ceil), so unlike CPU and disk
//! nothing here changes limits with the load.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use super::Agent;
use crate::config::{Config, NFTABLES_CGROUP_MOUNT, NetContract, Tenant};
use crate::metrics::{Metrics, TenantNetSeries};
use crate::net::{self, GroupLocator, Invocations, Network, TenantTraffic};
use crate::policy::{BASELINE_TOLERANCE, CONTENTION_HYSTERESIS};

/// The network side of the agent's state.
pub(super) struct NetControl {
    pub network: Network,
    series: HashMap<(String, String), TenantNetSeries>,
    contended: HashMap<String, bool>,
    /// Per link, its transmitted bytes at the previous tick (/proc/net/dev).
    link_bytes: HashMap<String, u64>,
    /// Per tenant with a veth, the bytes its namespace had sent.
    namespace_bytes: HashMap<String, u64>,
    last: Option<Instant>,
    invocations: Invocations,
    /// Per link, its send rate over the last tick (bits/s).
    link_rates: HashMap<String, f64>,
    /// Per (tenant, interface), what the last tick saw.
    seen: HashMap<(String, String), NetSeen>,
}

/// A tenant's traffic on a link over the last tick.
#[derive(Debug, Clone, Copy)]
pub(super) struct NetSeen {
    pub bits_per_second: f64,
    /// Held back below its baseline on a contended link.
    pub broken: bool,
}

impl NetControl {
    pub fn new(network: Network) -> Self {
        NetControl {
            network,
            series: HashMap::new(),
            contended: HashMap::new(),
            link_bytes: HashMap::new(),
            namespace_bytes: HashMap::new(),
            last: None,
            invocations: Invocations::default(),
            link_rates: HashMap::new(),
            seen: HashMap::new(),
        }
    }

    pub fn link_rate(&self, interface: &str) -> Option<f64> {
        self.link_rates.get(interface).copied()
    }

    pub fn contended(&self, interface: &str) -> bool {
        self.contended.get(interface).copied().unwrap_or(false)
    }

    pub fn tenant_seen(&self, tenant: &str, interface: &str) -> Option<NetSeen> {
        self.seen
            .get(&(tenant.to_owned(), interface.to_owned()))
            .copied()
    }

    /// A reload may change contracts: series are made again (and their
    /// contract gauges set) on the next tick; those of contracts that went
    /// away are dropped now.
    pub fn reloaded(&mut self, config: &Config, metrics: &Metrics) {
        for (tenant, interface) in self.series.keys() {
            let kept = config
                .tenants
                .iter()
                .any(|t| t.name == *tenant && t.net.iter().any(|c| c.interface == *interface));
            if !kept {
                metrics.forget_tenant_net(tenant, interface);
            }
        }
        self.series.clear();
        self.contended
            .retain(|link, _| config.host.links.iter().any(|l| l.interface == *link));
    }
}

/// Finds the tenants' groups for the nftables rules: the path relative to
/// the cgroup2 mount (qosd's `cgroup_root`), and its inode. nftables looks
/// paths up only under /sys/fs/cgroup, so with another root there are no
/// group rules (`qosd check` warns about that).
struct ReadyGroups<'a> {
    root: PathBuf,
    ready: Vec<&'a str>,
}

impl GroupLocator for ReadyGroups<'_> {
    fn locate(&self, tenant: &Tenant) -> Option<(PathBuf, u64)> {
        if self.root != Path::new(NFTABLES_CGROUP_MOUNT)
            || !self.ready.contains(&tenant.name.as_str())
            || tenant.cgroup.components().next().is_none()
        {
            return None;
        }
        let inode = std::fs::metadata(self.root.join(&tenant.cgroup))
            .ok()?
            .ino();
        Some((tenant.cgroup.clone(), inode))
    }
}

impl Agent {
    pub(super) fn control_network(&mut self) {
        let groups = ReadyGroups {
            root: self.hierarchy.root().to_path_buf(),
            ready: self
                .tenants
                .iter()
                .filter(|t| t.ready)
                .map(|t| t.tenant.name.as_str())
                .collect(),
        };
        let plans = net::plan_links(&self.config, &groups);
        let done = self.net.network.reconcile(plans);
        self.count_shaping(&done);
        if self.config.host.links.is_empty() {
            // The reconcile above removed what a reload took away; with no
            // links there is nothing more to read.
            return;
        }
        let now = Instant::now();
        let elapsed = self.net.last.replace(now).map(|last| now - last);
        self.export_traffic(&done.traffic, elapsed);
        if let Some(elapsed) = elapsed.filter(|elapsed| !elapsed.is_zero()) {
            let link_rates = self.link_rates(elapsed);
            self.report_link_contention(&link_rates);
            self.net.link_rates = link_rates;
            self.judge_net_contracts(&done.traffic, elapsed);
            self.export_namespace_traffic();
        }
    }

    fn count_shaping(&mut self, done: &net::Reconciled) {
        let metrics = &self.metrics;
        metrics.drift_corrections.inc_by(done.drift_corrections);
        metrics.enforcement_writes.inc_by(done.writes);
        metrics.enforcement_errors.inc_by(done.failures);
        let now = self.net.network.invocations();
        let before = std::mem::replace(&mut self.net.invocations, now);
        let tools = [("tc", now.tc - before.tc), ("nft", now.nft - before.nft)];
        for (tool, count) in tools.into_iter().filter(|(_, count)| *count > 0) {
            metrics
                .shaper_invocations
                .with_label_values(&[tool])
                .inc_by(count);
        }
    }

    fn export_traffic(&mut self, traffic: &[TenantTraffic], elapsed: Option<Duration>) {
        for seen in traffic {
            let series = self.net_series(&seen.tenant, &seen.interface);
            series.transmit_bytes.inc_by(seen.delta.bytes as f64);
            series.transmit_packets.inc_by(seen.delta.packets as f64);
            series.dropped_packets.inc_by(seen.delta.drops as f64);
            series.overlimits.inc_by(seen.delta.overlimits as f64);
            if let Some(elapsed) = elapsed {
                let bits = seen.delta.bytes as f64 * 8.0 / elapsed.as_secs_f64();
                debug!(
                    "tenant {} sends {bits:.0} bit/s on {}",
                    seen.tenant, seen.interface
                );
            }
        }
    }

    /// The series of a tenant on a link, made (with its contract gauges)
    /// the first time it is needed after a (re)load.
    fn net_series(&mut self, tenant: &str, interface: &str) -> &TenantNetSeries {
        let key = (tenant.to_owned(), interface.to_owned());
        let (config, metrics) = (&self.config, &self.metrics);
        // The contract is looked up only when the series is made.
        self.net.series.entry(key).or_insert_with(|| {
            let series = metrics.tenant_net(tenant, interface);
            if let Some(contract) = net_contract(config, tenant, interface) {
                series
                    .baseline_bytes
                    .set(contract.egress.baseline.get() / 8.0);
                series.burst_bytes.set(contract.egress.burst.get() / 8.0);
            }
            series
        })
    }

    /// Each declared link's transmit rate in bits/s, from /proc/net/dev.
    fn link_rates(&mut self, elapsed: Duration) -> HashMap<String, f64> {
        let stats = match self.proc.read_net_dev() {
            Ok(stats) => stats,
            Err(error) => {
                warn!("cannot read the links' counters: {error}");
                return HashMap::new();
            }
        };
        let mut rates = HashMap::new();
        for link in &self.config.host.links {
            let Some(now) = stats.get(&link.interface).map(|s| s.transmitted_bytes) else {
                continue;
            };
            let before = self.net.link_bytes.insert(link.interface.clone(), now);
            let delta = before.map_or(0, |before| now.saturating_sub(before));
            let labels = [link.interface.as_str()];
            self.metrics
                .link_transmit_bytes
                .with_label_values(&labels)
                .inc_by(delta as f64);
            if before.is_some() {
                rates.insert(
                    link.interface.clone(),
                    delta as f64 * 8.0 / elapsed.as_secs_f64(),
                );
            }
        }
        rates
    }

    /// A link is contended while it sends at `contention_threshold` of its
    /// capacity or more (with the usual hysteresis).
    fn report_link_contention(&mut self, link_rates: &HashMap<String, f64>) {
        let threshold = self.config.host.contention_threshold;
        for link in &self.config.host.links {
            let Some(rate) = link_rates.get(&link.interface) else {
                continue;
            };
            let capacity = link.egress.get();
            let was = self
                .net
                .contended
                .get(&link.interface)
                .copied()
                .unwrap_or(false);
            let level = if was {
                threshold - CONTENTION_HYSTERESIS
            } else {
                threshold
            };
            let contended = *rate >= level * capacity;
            if contended != was {
                let state = if contended {
                    "contended"
                } else {
                    "no longer contended"
                };
                info!(
                    "network on {} is {state}: sending {:.1} Mbit/s of {:.1}",
                    link.interface,
                    rate / 1e6,
                    capacity / 1e6
                );
            }
            self.net.contended.insert(link.interface.clone(), contended);
            let labels = ["network", link.interface.as_str()];
            let metrics = &self.metrics;
            metrics
                .resource_contended
                .with_label_values(&labels)
                .set(f64::from(u8::from(contended)));
            metrics
                .resource_capacity
                .with_label_values(&labels)
                .set(capacity);
            metrics
                .resource_demand
                .with_label_values(&labels)
                .set(*rate);
        }
    }

    /// HTB never holds a class back below its rate, so a tenant that sends
    /// less than its baseline while its class is held back (overlimits or
    /// drops) on a contended link means the link cannot carry its declared
    /// capacity: the contract is broken.
    /// Also keeps what each tenant sent, for `qosd status`.
    fn judge_net_contracts(&mut self, traffic: &[TenantTraffic], elapsed: Duration) {
        self.net.seen.clear();
        for seen in traffic {
            let baseline = net_contract(&self.config, &seen.tenant, &seen.interface)
                .map_or(0.0, |c| c.egress.baseline.get());
            let rate = seen.delta.bytes as f64 * 8.0 / elapsed.as_secs_f64();
            let held_back = seen.delta.overlimits + seen.delta.drops > 0;
            let broken = self.net.contended(&seen.interface)
                && held_back
                && rate < BASELINE_TOLERANCE * baseline;
            if broken {
                let labels = [seen.tenant.as_str(), "network"];
                self.metrics
                    .below_baseline_seconds
                    .with_label_values(&labels)
                    .inc_by(elapsed.as_secs_f64());
            }
            let key = (seen.tenant.clone(), seen.interface.clone());
            let view = NetSeen {
                bits_per_second: rate,
                broken,
            };
            self.net.seen.insert(key, view);
        }
    }

    /// Tenants in their own network namespace: what their interfaces sent,
    /// read through one of their processes.
    fn export_namespace_traffic(&mut self) {
        for state in self.tenants.iter().filter(|t| t.ready) {
            if !state.tenant.net.iter().any(|c| c.veth.is_some()) {
                continue;
            }
            let Some(sent) = namespace_sent_bytes(&self.proc, &state.group) else {
                continue;
            };
            let name = &state.tenant.name;
            let before = self.net.namespace_bytes.insert(name.clone(), sent);
            let delta = before.map_or(0, |before| sent.saturating_sub(before));
            self.metrics
                .netns_transmit_bytes
                .with_label_values(&[name])
                .inc_by(delta as f64);
        }
    }
}

/// `tenant`'s contract on `interface`, if it has one.
fn net_contract<'a>(config: &'a Config, tenant: &str, interface: &str) -> Option<&'a NetContract> {
    let tenant = config.tenants.iter().find(|t| t.name == tenant)?;
    tenant.net.iter().find(|c| c.interface == interface)
}

/// Bytes sent by every interface but loopback in the network namespace of
/// the group's first process; `None` without a process in another namespace.
fn namespace_sent_bytes(proc: &crate::procfs::ProcFs, group: &crate::cgroup::Group) -> Option<u64> {
    let pid = group.procs().ok()?.into_iter().next()?;
    if !proc.in_other_network_namespace(pid)? {
        return None;
    }
    match proc.read_process_net_dev(pid) {
        Ok(Some(stats)) => Some(
            stats
                .iter()
                .filter(|(name, _)| *name != "lo")
                .map(|(_, s)| s.transmitted_bytes)
                .sum(),
        ),
        Ok(None) => None,
        Err(error) => {
            debug!("cannot read the network counters of process {pid}: {error}");
            None
        }
    }
}
