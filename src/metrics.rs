//! The Prometheus registry and its HTTP endpoint, and the families every
//! resource shares (contention, broken contracts, the agent's own work).
//! Each controller registers its own families next to its export
//! (`control::cpu::CpuFamilies`, ...). Names follow Prometheus conventions:
//! base units, `_total` counters (docs/design.md, "Metrics").

use std::net::SocketAddr;

use anyhow::Context;

use prometheus::{
    Counter, CounterVec, Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec,
    IntCounter, IntCounterVec, Opts, Registry, TextEncoder,
};

/// The families shared by every resource, and the registry the
/// controllers register theirs in.
pub struct Metrics {
    registry: Registry,
    pub pressure_stall_seconds: CounterVec,
    pub tenant_processes: GaugeVec,
    pub classification_moves: IntCounter,
    pub classification_rescans: IntCounter,
    pub classification_rescan_seconds: Counter,
    pub below_baseline_seconds: CounterVec,
    pub resource_contended: GaugeVec,
    pub resource_capacity: GaugeVec,
    pub resource_demand: GaugeVec,
    pub tick_duration: Histogram,
    pub probe_duration: Histogram,
    /// What woke the loop: `tick`, `pressure` (a trigger, and the tick it
    /// caused), `pressure_ignored` (a trigger that caused none) or
    /// `release` (a tick the probe caused: the host went idle).
    pub wakeups: IntCounterVec,
    pub reaction_seconds: HistogramVec,
    pub config_reloads: IntCounterVec,
    pub enforcement_writes: IntCounter,
    pub drift_corrections: IntCounter,
    pub enforcement_errors: IntCounter,
    pub build_info: GaugeVec,
}

/// Label names, kept in one place so every family agrees.
pub const TENANT: &str = "tenant";
pub const RESOURCE: &str = "resource";
pub const DEVICE: &str = "device";
pub const KIND: &str = "kind";
pub const DIMENSION: &str = "dimension";
pub const INTERFACE: &str = "interface";
const WAKEUP_CAUSE: &str = "cause";

/// The values of `qosd_wakeups_total`'s `cause`.
pub const WAKEUP_TICK: &str = "tick";
pub const WAKEUP_PRESSURE: &str = "pressure";
pub const WAKEUP_PRESSURE_IGNORED: &str = "pressure_ignored";
pub const WAKEUP_RELEASE: &str = "release";
const WAKEUP_CAUSES: [&str; 4] = [
    WAKEUP_TICK,
    WAKEUP_PRESSURE,
    WAKEUP_PRESSURE_IGNORED,
    WAKEUP_RELEASE,
];

impl Metrics {
    pub fn new() -> anyhow::Result<Self> {
        let registry = Registry::new();
        let reg = Registrar(&registry);
        let metrics = Metrics {
            pressure_stall_seconds: reg.counters(
                "qosd_tenant_pressure_stall_seconds_total",
                "Stall time from the tenant's PSI files (kind: some or full).",
                &[TENANT, RESOURCE, KIND],
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
            tick_duration: reg.histogram(
                "qosd_tick_duration_seconds",
                "Time one control-loop tick takes (sample, decide, enforce).",
            )?,
            probe_duration: reg.histogram(
                "qosd_probe_duration_seconds",
                "Time the read of the tenants halfway between two ticks takes.",
            )?,
            wakeups: reg.int_counters(
                "qosd_wakeups_total",
                "What woke the control loop to tick (cause: tick, pressure, release), and PSI events that ran no tick (pressure_ignored).",
                &[WAKEUP_CAUSE],
            )?,
            reaction_seconds: reg.histograms(
                "qosd_reaction_seconds",
                "From a PSI trigger's event to the end of the tick it caused, by the trigger's resource.",
                &[RESOURCE],
                prometheus::exponential_buckets(0.001, 2.0, 12)?,
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
        for cause in WAKEUP_CAUSES {
            metrics.wakeups.with_label_values(&[cause]);
        }
        Ok(metrics)
    }

    /// Where the controllers register their families.
    pub fn registrar(&self) -> Registrar<'_> {
        Registrar(&self.registry)
    }

    /// The text exposition format (0.0.4).
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        // Encoding into a Vec cannot fail for well-formed families.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buffer);
        String::from_utf8_lossy(&buffer).into_owned()
    }

    /// Drops the shared series of a tenant that left the configuration, so
    /// dashboards do not show a stale value forever (each controller drops
    /// its own).
    pub fn forget_tenant(&self, tenant: &str) {
        remove_series(&[&self.tenant_processes], &[tenant]);
        for resource in ["cpu", "memory"] {
            for kind in ["some", "full"] {
                remove_series(&[&self.pressure_stall_seconds], &[tenant, resource, kind]);
            }
        }
        for resource in ["cpu", "disk", "network"] {
            remove_series(&[&self.below_baseline_seconds], &[tenant, resource]);
        }
    }
}

/// A family one tenant's series can be dropped from.
pub trait SeriesFamily {
    fn remove(&self, labels: &[&str]);
}

impl<B: prometheus::core::MetricVecBuilder> SeriesFamily for prometheus::core::MetricVec<B> {
    fn remove(&self, labels: &[&str]) {
        // Removing a series that was never set is an error we do not care about.
        let _ = self.remove_label_values(labels);
    }
}

/// Drops the series with `labels` from each family.
pub fn remove_series(families: &[&dyn SeriesFamily], labels: &[&str]) {
    for family in families {
        family.remove(labels);
    }
}

/// Creates and registers metric families, so each is named once.
pub struct Registrar<'a>(&'a Registry);

impl Registrar<'_> {
    fn register<M: prometheus::core::Collector + Clone + 'static>(
        &self,
        metric: M,
    ) -> anyhow::Result<M> {
        self.0.register(Box::new(metric.clone()))?;
        Ok(metric)
    }
    pub fn counters(&self, name: &str, help: &str, labels: &[&str]) -> anyhow::Result<CounterVec> {
        self.register(CounterVec::new(Opts::new(name, help), labels)?)
    }
    pub fn int_counters(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> anyhow::Result<IntCounterVec> {
        self.register(IntCounterVec::new(Opts::new(name, help), labels)?)
    }
    pub fn counter(&self, name: &str, help: &str) -> anyhow::Result<Counter> {
        self.register(Counter::with_opts(Opts::new(name, help))?)
    }
    pub fn int_counter(&self, name: &str, help: &str) -> anyhow::Result<IntCounter> {
        self.register(IntCounter::with_opts(Opts::new(name, help))?)
    }
    pub fn gauges(&self, name: &str, help: &str, labels: &[&str]) -> anyhow::Result<GaugeVec> {
        self.register(GaugeVec::new(Opts::new(name, help), labels)?)
    }
    pub fn gauge(&self, name: &str, help: &str) -> anyhow::Result<Gauge> {
        self.register(Gauge::with_opts(Opts::new(name, help))?)
    }
    pub fn histograms(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
        buckets: Vec<f64>,
    ) -> anyhow::Result<HistogramVec> {
        let opts = HistogramOpts::new(name, help).buckets(buckets);
        self.register(HistogramVec::new(opts, labels)?)
    }
    pub fn histogram(&self, name: &str, help: &str) -> anyhow::Result<Histogram> {
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
            .below_baseline_seconds
            .with_label_values(&["web", "cpu"])
            .inc_by(1.5);
        metrics.tick_duration.observe(0.0001);
        metrics.probe_duration.observe(0.0001);
        metrics
            .reaction_seconds
            .with_label_values(&["cpu"])
            .observe(0.0015);
        let text = metrics.render();
        for name in [
            "qosd_tenant_below_baseline_seconds_total{resource=\"cpu\",tenant=\"web\"} 1.5",
            "qosd_config_reloads_total{result=\"failure\"} 0",
            "qosd_build_info{version=",
            "qosd_tick_duration_seconds_bucket",
            "qosd_probe_duration_seconds_bucket",
            "qosd_enforcement_writes_total 0",
            "qosd_drift_corrections_total 0",
            "qosd_wakeups_total{cause=\"pressure_ignored\"} 0",
            "qosd_reaction_seconds_bucket{resource=\"cpu\",le=\"0.002\"} 1",
        ] {
            assert!(text.contains(name), "missing {name} in\n{text}");
        }
    }

    #[test]
    fn a_forgotten_tenant_leaves_no_shared_series() {
        let metrics = Metrics::new().unwrap();
        metrics
            .tenant_processes
            .with_label_values(&["gone"])
            .set(3.0);
        for resource in ["cpu", "memory"] {
            let labels = ["gone", resource, "some"];
            metrics
                .pressure_stall_seconds
                .with_label_values(&labels)
                .inc();
        }
        for resource in ["cpu", "disk", "network"] {
            let labels = ["gone", resource];
            metrics
                .below_baseline_seconds
                .with_label_values(&labels)
                .inc();
        }
        assert!(metrics.render().contains("gone"));
        metrics.forget_tenant("gone");
        assert!(!metrics.render().contains("gone"));
    }
}
