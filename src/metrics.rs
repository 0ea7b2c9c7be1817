//! The Prometheus registry and its HTTP endpoint. Names follow Prometheus
//! conventions: base units, `_total` counters (see DESIGN.md, "Metrics").

use std::net::SocketAddr;

use anyhow::Context;

use crate::config::{IoDimension, IoDimensions};
use prometheus::{
    Counter, CounterVec, Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, IntCounter,
    IntCounterVec, Opts, Registry, TextEncoder,
};

/// Every metric qosd exports.
pub struct Metrics {
    registry: Registry,
    pub cpu_usage_seconds: CounterVec,
    pub cpu_throttled_seconds: CounterVec,
    pub cpu_baseline_cores: GaugeVec,
    pub cpu_burst_cores: GaugeVec,
    pub cpu_limit_cores: GaugeVec,
    pub cpu_weight: GaugeVec,
    pub pressure_stall_seconds: CounterVec,
    pub disk_read_bytes: CounterVec,
    pub disk_written_bytes: CounterVec,
    pub disk_read_ios: CounterVec,
    pub disk_write_ios: CounterVec,
    pub disk_limit: GaugeVec,
    pub disk_baseline: GaugeVec,
    pub disk_burst: GaugeVec,
    pub network_transmit_bytes: CounterVec,
    pub network_transmit_packets: CounterVec,
    pub network_dropped_packets: CounterVec,
    pub network_overlimits: CounterVec,
    pub network_baseline_bytes: GaugeVec,
    pub network_burst_bytes: GaugeVec,
    pub netns_transmit_bytes: CounterVec,
    pub link_transmit_bytes: CounterVec,
    pub shaper_invocations: IntCounterVec,
    pub memory_usage_bytes: GaugeVec,
    pub memory_stat_bytes: GaugeVec,
    pub memory_events: CounterVec,
    pub memory_baseline_bytes: GaugeVec,
    pub memory_burst_bytes: GaugeVec,
    pub memory_limit_bytes: GaugeVec,
    pub tenant_processes: GaugeVec,
    pub classification_moves: IntCounter,
    pub classification_rescans: IntCounter,
    pub classification_rescan_seconds: Counter,
    pub below_baseline_seconds: CounterVec,
    pub resource_contended: GaugeVec,
    pub resource_capacity: GaugeVec,
    pub resource_demand: GaugeVec,
    pub host_cpu_busy_cores: Gauge,
    pub host_pressure_stall_seconds: CounterVec,
    pub tick_duration: Histogram,
    pub probe_duration: Histogram,
    pub config_reloads: IntCounterVec,
    pub enforcement_writes: IntCounter,
    pub drift_corrections: IntCounter,
    pub enforcement_errors: IntCounter,
    pub build_info: GaugeVec,
}

/// Label names, kept in one place so every family agrees.
const TENANT: &str = "tenant";
const RESOURCE: &str = "resource";
const DEVICE: &str = "device";
const KIND: &str = "kind";
const DIMENSION: &str = "dimension";
const INTERFACE: &str = "interface";

impl Metrics {
    pub fn new() -> anyhow::Result<Self> {
        let registry = Registry::new();
        let reg = Registrar(&registry);
        let metrics = Metrics {
            cpu_usage_seconds: reg.counters(
                "qosd_tenant_cpu_usage_seconds_total",
                "CPU time used by the tenant's cgroup.",
                &[TENANT],
            )?,
            cpu_throttled_seconds: reg.counters(
                "qosd_tenant_cpu_throttled_seconds_total",
                "Time the tenant's cgroup was throttled by cpu.max.",
                &[TENANT],
            )?,
            cpu_baseline_cores: reg.gauges(
                "qosd_tenant_cpu_baseline_cores",
                "Contracted CPU baseline.",
                &[TENANT],
            )?,
            cpu_burst_cores: reg.gauges(
                "qosd_tenant_cpu_burst_cores",
                "Contracted CPU burst.",
                &[TENANT],
            )?,
            cpu_limit_cores: reg.gauges(
                "qosd_tenant_cpu_limit_cores",
                "CPU limit (cpu.max) qosd holds now.",
                &[TENANT],
            )?,
            cpu_weight: reg.gauges(
                "qosd_tenant_cpu_weight",
                "cpu.weight qosd holds now.",
                &[TENANT],
            )?,
            pressure_stall_seconds: reg.counters(
                "qosd_tenant_pressure_stall_seconds_total",
                "Stall time from the tenant's PSI files (kind: some or full).",
                &[TENANT, RESOURCE, KIND],
            )?,
            disk_read_bytes: reg.counters(
                "qosd_tenant_disk_read_bytes_total",
                "Bytes the tenant read from the device (io.stat rbytes).",
                &[TENANT, DEVICE],
            )?,
            disk_written_bytes: reg.counters(
                "qosd_tenant_disk_written_bytes_total",
                "Bytes the tenant wrote to the device (io.stat wbytes).",
                &[TENANT, DEVICE],
            )?,
            disk_read_ios: reg.counters(
                "qosd_tenant_disk_read_ios_total",
                "Read IOs of the tenant on the device (io.stat rios).",
                &[TENANT, DEVICE],
            )?,
            disk_write_ios: reg.counters(
                "qosd_tenant_disk_write_ios_total",
                "Write IOs of the tenant on the device (io.stat wios).",
                &[TENANT, DEVICE],
            )?,
            disk_limit: reg.gauges(
                "qosd_tenant_disk_limit",
                "io.max qosd holds now: bytes/s for *_bps, IOs/s for *_iops; absent or the burst when unlimited.",
                &[TENANT, DEVICE, DIMENSION],
            )?,
            disk_baseline: reg.gauges(
                "qosd_tenant_disk_baseline",
                "Contracted disk baseline: bytes/s for *_bps, IOs/s for *_iops.",
                &[TENANT, DEVICE, DIMENSION],
            )?,
            disk_burst: reg.gauges(
                "qosd_tenant_disk_burst",
                "Contracted disk burst: bytes/s for *_bps, IOs/s for *_iops.",
                &[TENANT, DEVICE, DIMENSION],
            )?,
            network_transmit_bytes: reg.counters(
                "qosd_tenant_network_transmit_bytes_total",
                "Bytes the tenant sent through its HTB class on the link.",
                &[TENANT, INTERFACE],
            )?,
            network_transmit_packets: reg.counters(
                "qosd_tenant_network_transmit_packets_total",
                "Packets the tenant sent through its HTB class on the link.",
                &[TENANT, INTERFACE],
            )?,
            network_dropped_packets: reg.counters(
                "qosd_tenant_network_dropped_packets_total",
                "Packets of the tenant its HTB class dropped.",
                &[TENANT, INTERFACE],
            )?,
            network_overlimits: reg.counters(
                "qosd_tenant_network_overlimits_total",
                "Times the tenant's HTB class was held back at its rate or ceil.",
                &[TENANT, INTERFACE],
            )?,
            network_baseline_bytes: reg.gauges(
                "qosd_tenant_network_baseline_bytes_per_second",
                "Contracted egress baseline (the HTB class rate), in bytes/s as Prometheus base units go.",
                &[TENANT, INTERFACE],
            )?,
            network_burst_bytes: reg.gauges(
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
            memory_usage_bytes: reg.gauges(
                "qosd_tenant_memory_usage_bytes",
                "Memory charged to the tenant's cgroup (memory.current).",
                &[TENANT],
            )?,
            memory_stat_bytes: reg.gauges(
                "qosd_tenant_memory_stat_bytes",
                "The tenant's anonymous memory and page cache (memory.stat anon, file).",
                &[TENANT, KIND],
            )?,
            memory_events: reg.counters(
                "qosd_tenant_memory_events_total",
                "Times the tenant hit a memory boundary (memory.events: low, high, max, oom_kill).",
                &[TENANT, "event"],
            )?,
            memory_baseline_bytes: reg.gauges(
                "qosd_tenant_memory_baseline_bytes",
                "Contracted memory baseline (memory.min, or memory.low when soft).",
                &[TENANT],
            )?,
            memory_burst_bytes: reg.gauges(
                "qosd_tenant_memory_burst_bytes",
                "Contracted memory burst (memory.high).",
                &[TENANT],
            )?,
            memory_limit_bytes: reg.gauges(
                "qosd_tenant_memory_limit_bytes",
                "Contracted hard memory limit (memory.max); absent when unlimited.",
                &[TENANT],
            )?,
            tenant_processes: reg.gauges(
                "qosd_tenant_processes",
                "Processes in the tenant's cgroup (cgroup.procs).",
                &[TENANT],
            )?,
            classification_moves: reg.int_counter(
                "qosd_classification_moves_total",
                "Processes qosd moved into a tenant's group because a matcher matched.",
            )?,
            classification_rescans: reg.int_counter(
                "qosd_classification_rescans_total",
                "Full walks of /proc to classify every process (start-up, lost events, periodic).",
            )?,
            classification_rescan_seconds: reg.counter(
                "qosd_classification_rescan_seconds_total",
                "Time spent in full walks of /proc.",
            )?,
            below_baseline_seconds: reg.counters(
                "qosd_tenant_below_baseline_seconds_total",
                "Time the tenant wanted at least its baseline but got less: a broken contract.",
                &[TENANT, RESOURCE],
            )?,
            resource_contended: reg.gauges(
                "qosd_resource_contended",
                "1 while the resource is contended.",
                &[RESOURCE, DEVICE],
            )?,
            resource_capacity: reg.gauges(
                "qosd_resource_capacity",
                "Capacity qosd shares among tenants (cores for cpu).",
                &[RESOURCE, DEVICE],
            )?,
            resource_demand: reg.gauges(
                "qosd_resource_demand",
                "Tenants' estimated demand (cores for cpu).",
                &[RESOURCE, DEVICE],
            )?,
            host_cpu_busy_cores: reg.gauge(
                "qosd_host_cpu_busy_cores",
                "Busy CPUs on the host, all processes.",
            )?,
            host_pressure_stall_seconds: reg.counters(
                "qosd_host_pressure_stall_seconds_total",
                "Host-wide stall time from /proc/pressure (kind: some or full).",
                &[RESOURCE, KIND],
            )?,
            tick_duration: reg.histogram(
                "qosd_tick_duration_seconds",
                "Time one control-loop tick takes (sample, decide, enforce).",
            )?,
            probe_duration: reg.histogram(
                "qosd_probe_duration_seconds",
                "Time the read of the tenants halfway between two ticks takes.",
            )?,
            config_reloads: reg.int_counters(
                "qosd_config_reloads_total",
                "Configuration reloads by result (success or failure).",
                &["result"],
            )?,
            enforcement_writes: reg.int_counter(
                "qosd_enforcement_writes_total",
                "Values written to the kernel.",
            )?,
            drift_corrections: reg.int_counter(
                "qosd_drift_corrections_total",
                "Values changed behind qosd's back and put back.",
            )?,
            enforcement_errors: reg.int_counter(
                "qosd_enforcement_errors_total",
                "Failed reads or writes of tenant cgroups (vanished groups excluded).",
            )?,
            build_info: reg.gauges(
                "qosd_build_info",
                "Always 1; labels describe the build.",
                &["version"],
            )?,
            registry,
        };
        metrics
            .build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1.0);
        for result in ["success", "failure"] {
            metrics.config_reloads.with_label_values(&[result]);
        }
        for tool in ["tc", "nft"] {
            metrics.shaper_invocations.with_label_values(&[tool]);
        }
        Ok(metrics)
    }

    /// The text exposition format (0.0.4).
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        // Encoding into a Vec cannot fail for well-formed families.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buffer);
        String::from_utf8_lossy(&buffer).into_owned()
    }

    /// The series of one tenant, looked up once rather than on every tick.
    pub fn tenant(&self, tenant: &str) -> TenantSeries {
        let one = [tenant];
        let stall = |kind: &str| {
            self.pressure_stall_seconds
                .with_label_values(&[tenant, "cpu", kind])
        };
        TenantSeries {
            cpu_usage_seconds: self.cpu_usage_seconds.with_label_values(&one),
            cpu_throttled_seconds: self.cpu_throttled_seconds.with_label_values(&one),
            cpu_baseline_cores: self.cpu_baseline_cores.with_label_values(&one),
            cpu_burst_cores: self.cpu_burst_cores.with_label_values(&one),
            cpu_limit_cores: self.cpu_limit_cores.with_label_values(&one),
            cpu_weight: self.cpu_weight.with_label_values(&one),
            cpu_stall_some_seconds: stall("some"),
            cpu_stall_full_seconds: stall("full"),
            cpu_below_baseline_seconds: self
                .below_baseline_seconds
                .with_label_values(&[tenant, "cpu"]),
            disk_below_baseline_seconds: self
                .below_baseline_seconds
                .with_label_values(&[tenant, "disk"]),
        }
    }

    /// The series of one tenant on one device (`device` as configured);
    /// per-dimension series only for the dimensions it has contracts on.
    pub fn tenant_disk(
        &self,
        tenant: &str,
        device: &str,
        contracted: IoDimensions<bool>,
    ) -> TenantDiskSeries {
        let pair = [tenant, device];
        let per_dimension = |family: &GaugeVec| {
            let gauge = |dimension: IoDimension| {
                let labels = [tenant, device, dimension.key()];
                contracted
                    .get(dimension)
                    .then(|| family.with_label_values(&labels))
            };
            IoDimensions {
                read_bps: gauge(IoDimension::ReadBps),
                write_bps: gauge(IoDimension::WriteBps),
                read_iops: gauge(IoDimension::ReadIops),
                write_iops: gauge(IoDimension::WriteIops),
            }
        };
        TenantDiskSeries {
            read_bytes: self.disk_read_bytes.with_label_values(&pair),
            written_bytes: self.disk_written_bytes.with_label_values(&pair),
            read_ios: self.disk_read_ios.with_label_values(&pair),
            write_ios: self.disk_write_ios.with_label_values(&pair),
            limit: per_dimension(&self.disk_limit),
            baseline: per_dimension(&self.disk_baseline),
            burst: per_dimension(&self.disk_burst),
        }
    }

    /// The series of one tenant on one link.
    pub fn tenant_net(&self, tenant: &str, interface: &str) -> TenantNetSeries {
        let pair = [tenant, interface];
        TenantNetSeries {
            transmit_bytes: self.network_transmit_bytes.with_label_values(&pair),
            transmit_packets: self.network_transmit_packets.with_label_values(&pair),
            dropped_packets: self.network_dropped_packets.with_label_values(&pair),
            overlimits: self.network_overlimits.with_label_values(&pair),
            baseline_bytes: self.network_baseline_bytes.with_label_values(&pair),
            burst_bytes: self.network_burst_bytes.with_label_values(&pair),
        }
    }

    /// Drops a tenant's series on one link.
    pub fn forget_tenant_net(&self, tenant: &str, interface: &str) {
        let counters = [
            &self.network_transmit_bytes,
            &self.network_transmit_packets,
            &self.network_dropped_packets,
            &self.network_overlimits,
        ];
        for family in counters {
            let _ = family.remove_label_values(&[tenant, interface]);
        }
        for family in [&self.network_baseline_bytes, &self.network_burst_bytes] {
            let _ = family.remove_label_values(&[tenant, interface]);
        }
    }

    /// Drops a tenant's series on one device.
    pub fn forget_tenant_disk(&self, tenant: &str, device: &str) {
        for family in [
            &self.disk_read_bytes,
            &self.disk_written_bytes,
            &self.disk_read_ios,
            &self.disk_write_ios,
        ] {
            let _ = family.remove_label_values(&[tenant, device]);
        }
        for family in [&self.disk_limit, &self.disk_baseline, &self.disk_burst] {
            for dimension in IoDimension::ALL {
                let _ = family.remove_label_values(&[tenant, device, dimension.key()]);
            }
        }
    }

    /// Drops the series of a tenant that left the configuration, so dashboards
    /// do not show a stale limit forever.
    pub fn forget_tenant(&self, tenant: &str) {
        let counters = [&self.cpu_usage_seconds, &self.cpu_throttled_seconds];
        let gauges = [
            &self.cpu_baseline_cores,
            &self.cpu_burst_cores,
            &self.cpu_limit_cores,
            &self.cpu_weight,
        ];
        // Removing a series that was never set is an error we do not care about.
        for family in counters {
            let _ = family.remove_label_values(&[tenant]);
        }
        for family in gauges {
            let _ = family.remove_label_values(&[tenant]);
        }
        for kind in ["some", "full"] {
            let _ = self
                .pressure_stall_seconds
                .remove_label_values(&[tenant, "cpu", kind]);
        }
        let _ = self.netns_transmit_bytes.remove_label_values(&[tenant]);
        let _ = self.tenant_processes.remove_label_values(&[tenant]);
        for family in [
            &self.memory_usage_bytes,
            &self.memory_baseline_bytes,
            &self.memory_burst_bytes,
            &self.memory_limit_bytes,
        ] {
            let _ = family.remove_label_values(&[tenant]);
        }
        for kind in ["anon", "file"] {
            let _ = self.memory_stat_bytes.remove_label_values(&[tenant, kind]);
        }
        for event in ["low", "high", "max", "oom_kill"] {
            let _ = self.memory_events.remove_label_values(&[tenant, event]);
        }
        for kind in ["some", "full"] {
            let _ = self
                .pressure_stall_seconds
                .remove_label_values(&[tenant, "memory", kind]);
        }
        for resource in ["cpu", "disk", "network"] {
            let _ = self
                .below_baseline_seconds
                .remove_label_values(&[tenant, resource]);
        }
    }
}

/// One tenant's series (see `Metrics` for their meaning).
#[derive(Clone)]
pub struct TenantSeries {
    pub cpu_usage_seconds: Counter,
    pub cpu_throttled_seconds: Counter,
    pub cpu_baseline_cores: Gauge,
    pub cpu_burst_cores: Gauge,
    pub cpu_limit_cores: Gauge,
    pub cpu_weight: Gauge,
    pub cpu_stall_some_seconds: Counter,
    pub cpu_stall_full_seconds: Counter,
    pub cpu_below_baseline_seconds: Counter,
    pub disk_below_baseline_seconds: Counter,
}

/// One tenant's series on one link.
#[derive(Clone)]
pub struct TenantNetSeries {
    pub transmit_bytes: Counter,
    pub transmit_packets: Counter,
    pub dropped_packets: Counter,
    pub overlimits: Counter,
    pub baseline_bytes: Gauge,
    pub burst_bytes: Gauge,
}

/// One tenant's series on one device.
#[derive(Clone)]
pub struct TenantDiskSeries {
    pub read_bytes: Counter,
    pub written_bytes: Counter,
    pub read_ios: Counter,
    pub write_ios: Counter,
    pub limit: IoDimensions<Option<Gauge>>,
    pub baseline: IoDimensions<Option<Gauge>>,
    pub burst: IoDimensions<Option<Gauge>>,
}

/// Creates and registers metric families, so each is named once.
struct Registrar<'a>(&'a Registry);

impl Registrar<'_> {
    fn register<M: prometheus::core::Collector + Clone + 'static>(
        &self,
        metric: M,
    ) -> anyhow::Result<M> {
        self.0.register(Box::new(metric.clone()))?;
        Ok(metric)
    }
    fn counters(&self, name: &str, help: &str, labels: &[&str]) -> anyhow::Result<CounterVec> {
        self.register(CounterVec::new(Opts::new(name, help), labels)?)
    }
    fn int_counters(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> anyhow::Result<IntCounterVec> {
        self.register(IntCounterVec::new(Opts::new(name, help), labels)?)
    }
    fn counter(&self, name: &str, help: &str) -> anyhow::Result<Counter> {
        self.register(Counter::with_opts(Opts::new(name, help))?)
    }
    fn int_counter(&self, name: &str, help: &str) -> anyhow::Result<IntCounter> {
        self.register(IntCounter::with_opts(Opts::new(name, help))?)
    }
    fn gauges(&self, name: &str, help: &str, labels: &[&str]) -> anyhow::Result<GaugeVec> {
        self.register(GaugeVec::new(Opts::new(name, help), labels)?)
    }
    fn gauge(&self, name: &str, help: &str) -> anyhow::Result<Gauge> {
        self.register(Gauge::with_opts(Opts::new(name, help))?)
    }
    fn histogram(&self, name: &str, help: &str) -> anyhow::Result<Histogram> {
        // A tick should take well under a millisecond; the top buckets catch
        // a slow filesystem.
        let buckets = prometheus::exponential_buckets(0.000_05, 4.0, 9)?;
        self.register(Histogram::with_opts(
            HistogramOpts::new(name, help).buckets(buckets),
        )?)
    }
}

/// The `/metrics` endpoint, served until the process ends.
pub struct Server {
    pub task: tokio::task::JoinHandle<()>,
    /// Where it listens: `listen` with the port the kernel chose for port 0.
    pub address: SocketAddr,
}

/// Serves `/metrics` until the process ends.
pub async fn serve(listen: SocketAddr, metrics: std::sync::Arc<Metrics>) -> anyhow::Result<Server> {
    use axum::{Router, http::header, routing::get};
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen for metrics on {listen} (agent.metrics_listen)"))?;
    let address = listener.local_addr()?;
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let metrics = metrics.clone();
            async move {
                (
                    [(
                        header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    metrics.render(),
                )
            }
        }),
    );
    let task = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!("metrics endpoint stopped: {error}");
        }
    });
    Ok(Server { task, address })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_is_exported_with_its_conventional_name() {
        let metrics = Metrics::new().unwrap();
        metrics
            .cpu_usage_seconds
            .with_label_values(&["web"])
            .inc_by(1.5);
        metrics.tick_duration.observe(0.0001);
        metrics.probe_duration.observe(0.0001);
        let text = metrics.render();
        for name in [
            "qosd_tenant_cpu_usage_seconds_total{tenant=\"web\"} 1.5",
            "qosd_config_reloads_total{result=\"failure\"} 0",
            "qosd_build_info{version=",
            "qosd_tick_duration_seconds_bucket",
            "qosd_probe_duration_seconds_bucket",
            "qosd_enforcement_writes_total 0",
            "qosd_drift_corrections_total 0",
        ] {
            assert!(text.contains(name), "missing {name} in\n{text}");
        }
    }

    #[test]
    fn a_forgotten_tenant_leaves_no_series() {
        let metrics = Metrics::new().unwrap();
        // Every series of the tenant gets a value. The exhaustive pattern
        // makes a series added to `tenant` fail to compile here until it is
        // also set, and so checked against `forget_tenant`.
        let TenantSeries {
            cpu_usage_seconds,
            cpu_throttled_seconds,
            cpu_baseline_cores,
            cpu_burst_cores,
            cpu_limit_cores,
            cpu_weight,
            cpu_stall_some_seconds,
            cpu_stall_full_seconds,
            cpu_below_baseline_seconds,
            disk_below_baseline_seconds,
        } = metrics.tenant("gone");
        for counter in [
            cpu_usage_seconds,
            cpu_throttled_seconds,
            cpu_stall_some_seconds,
            cpu_stall_full_seconds,
            cpu_below_baseline_seconds,
            disk_below_baseline_seconds,
        ] {
            counter.inc();
        }
        for gauge in [
            cpu_baseline_cores,
            cpu_burst_cores,
            cpu_limit_cores,
            cpu_weight,
        ] {
            gauge.set(1.0);
        }
        assert!(metrics.render().contains("gone"));
        metrics.forget_tenant("gone");
        assert!(!metrics.render().contains("gone"));
    }
}
