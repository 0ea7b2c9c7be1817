//! Network egress: plan the links from the contracts and the groups that
//! exist, reconcile them, then export the tenants' counters, each link's
//! contention and broken contracts.
//!
//! HTB holds the contracts inside the kernel (a tenant below its rate always
//! sends, and spare capacity is lent up to the ceil), so unlike CPU and disk
//! nothing here changes limits with the load.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus::{Counter, CounterVec, GaugeVec, IntCounterVec};
use tracing::debug;

use super::report::{resource_row, row};
use super::{Outcome, Reconfigure, ResourceControl, Tick};
use crate::config::{Config, NFTABLES_CGROUP_MOUNT, NetContract, Tenant};
use crate::enforce::Enforcer;
use crate::metrics::{INTERFACE, Metrics, Registrar, TENANT, remove_series};
use crate::net::{self, GroupLocator, Invocations, Network, Shaper, TenantTraffic};
use crate::policy::{BASELINE_TOLERANCE, CONTENTION_HYSTERESIS};
use crate::status::{ResourceRow, Subject, TenantRow, Unit};

pub struct NetControl {
    families: NetFamilies,
    metrics: Arc<Metrics>,
    network: Network,
    /// The contracts in force (the tick's config is the same; this copy
    /// names them by tenant and interface for the series).
    series: HashMap<(String, String), TenantNetSeries>,
    contended: HashMap<String, bool>,
    /// When the classes' counters were last read (every reconcile).
    last: Option<Instant>,
    /// When the sample's link counters were last taken in.
    links_sampled: Option<Instant>,
    invocations: Invocations,
    /// Per link, its send rate over the last tick (bits/s).
    link_rates: HashMap<String, f64>,
    /// Per (tenant, interface), what the last tick saw.
    seen: HashMap<(String, String), NetSeen>,
}

/// One tenant's series on one link.
struct TenantNetSeries {
    transmit_bytes: Counter,
    transmit_packets: Counter,
    dropped_packets: Counter,
    overlimits: Counter,
}

/// A tenant's traffic on a link over the last tick.
#[derive(Debug, Clone, Copy)]
struct NetSeen {
    bits_per_second: f64,
    /// Held back below its baseline on a contended link.
    broken: bool,
}

impl NetControl {
    pub fn new(
        metrics: &Arc<Metrics>,
        shaper: Box<dyn Shaper>,
        dry_run: bool,
    ) -> anyhow::Result<Self> {
        let families = NetFamilies::register(&metrics.registrar())?;
        for tool in ["tc", "nft"] {
            families.shaper_invocations.with_label_values(&[tool]);
        }
        Ok(NetControl {
            families,
            metrics: metrics.clone(),
            network: Network::new(shaper, dry_run),
            series: HashMap::new(),
            contended: HashMap::new(),
            last: None,
            links_sampled: None,
            invocations: Invocations::default(),
            link_rates: HashMap::new(),
            seen: HashMap::new(),
        })
    }

    fn contended(&self, interface: &str) -> bool {
        self.contended.get(interface).copied().unwrap_or(false)
    }

    fn forget_series(&self, tenant: &str, interface: &str) {
        let families = &self.families;
        remove_series(
            &[
                &families.transmit_bytes,
                &families.transmit_packets,
                &families.dropped_packets,
                &families.overlimits,
                &families.baseline_bytes,
                &families.burst_bytes,
            ],
            &[tenant, interface],
        );
    }

    fn count_shaping(&mut self, done: &net::Reconciled, outcome: &mut Outcome) {
        outcome.writes.drift_corrections += done.drift_corrections;
        outcome.writes.writes += done.writes;
        outcome.errors += done.failures;
        let now = self.network.invocations();
        let before = std::mem::replace(&mut self.invocations, now);
        let tools = [("tc", now.tc - before.tc), ("nft", now.nft - before.nft)];
        for (tool, count) in tools.into_iter().filter(|(_, count)| *count > 0) {
            let counter = self.families.shaper_invocations.with_label_values(&[tool]);
            counter.inc_by(count);
        }
    }

    fn export_traffic(
        &mut self,
        config: &Config,
        traffic: &[TenantTraffic],
        elapsed: Option<Duration>,
    ) {
        for seen in traffic {
            let series = self.net_series(config, &seen.tenant, &seen.interface);
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
    fn net_series(&mut self, config: &Config, tenant: &str, interface: &str) -> &TenantNetSeries {
        let key = (tenant.to_owned(), interface.to_owned());
        let families = &self.families;
        self.series.entry(key).or_insert_with(|| {
            let pair = [tenant, interface];
            if let Some(contract) = net_contract(config, tenant, interface) {
                let egress = contract.egress;
                let gauge = |family: &GaugeVec, bits: f64| {
                    family.with_label_values(&pair).set(bits / 8.0);
                };
                gauge(&families.baseline_bytes, egress.baseline.get());
                gauge(&families.burst_bytes, egress.burst.get());
            }
            TenantNetSeries {
                transmit_bytes: families.transmit_bytes.with_label_values(&pair),
                transmit_packets: families.transmit_packets.with_label_values(&pair),
                dropped_packets: families.dropped_packets.with_label_values(&pair),
                overlimits: families.overlimits.with_label_values(&pair),
            }
        })
    }

    /// Each declared link's transmit rate in bits/s, from the tick's
    /// samples of /proc/net/dev.
    fn link_rates(&self, tick: &Tick) -> HashMap<String, f64> {
        let Some(previous) = tick.previous else {
            return HashMap::new();
        };
        let elapsed = tick.sample.taken.saturating_duration_since(previous.taken);
        let mut rates = HashMap::new();
        for link in &tick.config.host.links {
            let interface = &link.interface;
            let Some(&now) = tick.sample.links.get(interface) else {
                continue;
            };
            let delta = previous
                .links
                .get(interface)
                .map(|&b| now.saturating_sub(b));
            let counter = self
                .families
                .link_transmit_bytes
                .with_label_values(&[interface]);
            counter.inc_by(delta.unwrap_or(0) as f64);
            if let Some(delta) = delta.filter(|_| !elapsed.is_zero()) {
                rates.insert(
                    interface.clone(),
                    delta as f64 * 8.0 / elapsed.as_secs_f64(),
                );
            }
        }
        rates
    }

    /// A link is contended while it sends at `contention_threshold` of its
    /// capacity or more (with the usual hysteresis).
    fn report_link_contention(&mut self, config: &Config) {
        let threshold = config.host.contention_threshold;
        for link in &config.host.links {
            let Some(&rate) = self.link_rates.get(&link.interface) else {
                continue;
            };
            let capacity = link.egress.get();
            let was = self.contended(&link.interface);
            let level = if was {
                threshold - CONTENTION_HYSTERESIS
            } else {
                threshold
            };
            let contended = rate >= level * capacity;
            super::log_contention_change(was, contended, |state| {
                format!(
                    "network on {} is {state}: sending {:.1} Mbit/s of {:.1}",
                    link.interface,
                    rate / 1e6,
                    capacity / 1e6
                )
            });
            self.contended.insert(link.interface.clone(), contended);
            let labels = ("network", link.interface.as_str());
            super::publish_contention(&self.metrics, labels, contended, Some((capacity, rate)));
        }
    }

    /// HTB never holds a class back below its rate, so a tenant that sends
    /// less than its baseline while its class is held back (overlimits or
    /// drops) on a contended link means the link cannot carry its declared
    /// capacity: the contract is broken.
    /// Also keeps what each tenant sent, for `qosd status`.
    fn judge_contracts(&mut self, config: &Config, traffic: &[TenantTraffic], elapsed: Duration) {
        self.seen.clear();
        for seen in traffic {
            let baseline = net_contract(config, &seen.tenant, &seen.interface)
                .map_or(0.0, |c| c.egress.baseline.get());
            let rate = seen.delta.bytes as f64 * 8.0 / elapsed.as_secs_f64();
            let held_back = seen.delta.overlimits + seen.delta.drops > 0;
            let broken = self.contended(&seen.interface)
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
            self.seen.insert(key, view);
        }
    }

    /// Tenants in their own network namespace: what their interfaces sent,
    /// from the tick's samples.
    fn export_namespace_traffic(&self, tick: &Tick) {
        for (_, managed) in tick.ready() {
            let name = &managed.tenant.name;
            let sent = |sample: &crate::sample::Sample| sample.tenants.get(name)?.netns_sent_bytes;
            let Some(now) = sent(tick.sample) else {
                continue;
            };
            let before = tick.previous.and_then(sent);
            let delta = before.map_or(0, |before| now.saturating_sub(before));
            let counter = self
                .families
                .netns_transmit_bytes
                .with_label_values(&[name]);
            counter.inc_by(delta as f64);
        }
    }
}

impl ResourceControl for NetControl {
    /// Series are made again (and their contract gauges set) on the next
    /// tick; those of contracts that went away are dropped now.
    fn configure(&mut self, change: &Reconfigure) {
        let config = change.config;
        for (tenant, interface) in self.series.keys() {
            let kept = config
                .tenants
                .iter()
                .any(|t| t.name == *tenant && t.net.iter().any(|c| c.interface == *interface));
            if !kept {
                self.forget_series(tenant, interface);
            }
        }
        for gone in change.gone {
            remove_series(&[&self.families.netns_transmit_bytes], &[&gone.name]);
        }
        self.series.clear();
        self.contended
            .retain(|link, _| config.host.links.iter().any(|l| l.interface == *link));
    }

    /// Not held back by the first tick: HTB holds the contracts without
    /// rates, so the tree is built at start-up.
    fn control(&mut self, tick: &Tick, _enforcer: &mut Enforcer, outcome: &mut Outcome) {
        let groups = ReadyGroups {
            root: tick.hierarchy.root().to_path_buf(),
            ready: tick.ready().map(|(_, t)| t.tenant.name.as_str()).collect(),
        };
        let plans = net::plan_links(tick.config, &groups);
        let done = self.network.reconcile(plans);
        self.count_shaping(&done, outcome);
        if tick.config.host.links.is_empty() {
            // The reconcile above removed what a reload took away; with no
            // links there is nothing more to read.
            return;
        }
        let now = Instant::now();
        let elapsed = self.last.replace(now).map(|last| now - last);
        self.export_traffic(tick.config, &done.traffic, elapsed);
        // A reload controls again on the same sample: its links were taken in.
        if self.links_sampled != Some(tick.sample.taken) {
            self.links_sampled = Some(tick.sample.taken);
            self.link_rates = self.link_rates(tick);
            self.export_namespace_traffic(tick);
        }
        if let Some(elapsed) = elapsed.filter(|elapsed| !elapsed.is_zero()) {
            self.report_link_contention(tick.config);
            self.judge_contracts(tick.config, &done.traffic, elapsed);
        }
    }

    fn export(&mut self, _tick: &Tick) {}

    fn forget(&mut self, _index: usize, _enforcer: &mut Enforcer) {}

    fn resource_rows(&self, tick: &Tick) -> Vec<ResourceRow> {
        let links = &tick.config.host.links;
        let link_row = |link: &crate::config::LinkCapacity| {
            let interface = link.interface.as_str();
            let used = self.link_rates.get(interface).copied();
            let subject = Subject::new("network", interface, "", Unit::BitsPerSecond);
            let capacity = link.egress.get();
            resource_row(subject, capacity, used, self.contended(interface))
        };
        links.iter().map(link_row).collect()
    }

    fn tenant_rows(&self, tick: &Tick, index: usize) -> Vec<TenantRow> {
        let tenant = &tick.tenants[index].tenant;
        let contract_row = |contract: &NetContract| {
            let key = (tenant.name.clone(), contract.interface.clone());
            let seen = self.seen.get(&key);
            let egress = contract.egress;
            let terms = (egress.baseline.get(), egress.burst.get());
            row(
                tenant,
                Subject::new("network", &contract.interface, "", Unit::BitsPerSecond),
                terms,
                seen.map(|seen| seen.bits_per_second),
                Some(terms.1),
                (seen.is_some_and(|seen| seen.broken), None),
            )
        };
        tenant.net.iter().map(contract_row).collect()
    }

    fn stop(&mut self, cleanup: bool) {
        if cleanup {
            self.network.clean_up();
        }
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

/// `tenant`'s contract on `interface`, if it has one.
fn net_contract<'a>(config: &'a Config, tenant: &str, interface: &str) -> Option<&'a NetContract> {
    let tenant = config.tenants.iter().find(|t| t.name == tenant)?;
    tenant.net.iter().find(|c| c.interface == interface)
}

/// The network metric families.
pub struct NetFamilies {
    pub transmit_bytes: CounterVec,
    pub transmit_packets: CounterVec,
    pub dropped_packets: CounterVec,
    pub overlimits: CounterVec,
    pub baseline_bytes: GaugeVec,
    pub burst_bytes: GaugeVec,
    pub netns_transmit_bytes: CounterVec,
    pub link_transmit_bytes: CounterVec,
    pub shaper_invocations: IntCounterVec,
}

impl NetFamilies {
    pub fn register(reg: &Registrar) -> anyhow::Result<Self> {
        Ok(NetFamilies {
                transmit_bytes: reg.counters(
                    "qosd_tenant_network_transmit_bytes_total",
                    "Bytes the tenant sent through its HTB class on the link.",
                    &[TENANT, INTERFACE],
                )?,
                transmit_packets: reg.counters(
                    "qosd_tenant_network_transmit_packets_total",
                    "Packets the tenant sent through its HTB class on the link.",
                    &[TENANT, INTERFACE],
                )?,
                dropped_packets: reg.counters(
                    "qosd_tenant_network_dropped_packets_total",
                    "Packets of the tenant its HTB class dropped.",
                    &[TENANT, INTERFACE],
                )?,
                overlimits: reg.counters(
                    "qosd_tenant_network_overlimits_total",
                    "Times the tenant's HTB class was held back at its rate or ceil.",
                    &[TENANT, INTERFACE],
                )?,
                baseline_bytes: reg.gauges(
                    "qosd_tenant_network_baseline_bytes_per_second",
                    "Contracted egress baseline (the HTB class rate), in bytes/s as Prometheus base units go.",
                    &[TENANT, INTERFACE],
                )?,
                burst_bytes: reg.gauges(
                    "qosd_tenant_network_burst_bytes_per_second",
                    "Contracted egress burst (the HTB class ceil), in bytes/s.",
                    &[TENANT, INTERFACE],
                )?,
                netns_transmit_bytes: reg.counters(
                    "qosd_tenant_netns_transmit_bytes_total",
                    "Bytes sent by the interfaces of the tenant's own network namespace (/proc/<pid>/net/dev).",
                    &[TENANT],
                )?,
                link_transmit_bytes: reg.counters(
                    "qosd_link_transmit_bytes_total",
                    "Bytes the link sent, all traffic (/proc/net/dev).",
                    &[INTERFACE],
                )?,
                shaper_invocations: reg.int_counters(
                    "qosd_network_shaper_invocations_total",
                    "tc and nft processes qosd started (none on a tick where nothing changed).",
                    &["tool"],
                )?,
        })
    }
}
