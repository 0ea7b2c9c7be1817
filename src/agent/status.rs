//! The agent's side of `qosd status`: the report of its last tick, built
//! when asked (nothing is spent on it while nobody looks), and the Unix
//! socket it is served on.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt;
use tokio::net::UnixListener;
use tracing::{debug, warn};

use super::Agent;
use crate::cgroup::memory;
use crate::config::{Cores, IoDimension, Tenant};
use crate::policy;
use crate::sample::{Rates, TenantRates};
use crate::status::{Report, ResourceRow, State, TenantRow, Unit, state};

impl Agent {
    /// What the last tick saw and decided.
    pub fn status_report(&self) -> Report {
        let mut resources = Vec::new();
        let mut tenants = Vec::new();
        if let Some(rates) = &self.rates {
            resources.push(ResourceRow {
                resource: "cpu".into(),
                device: String::new(),
                dimension: String::new(),
                unit: Unit::Cores,
                capacity: self.cpu_capacity(),
                used: Some(rates.host_cpu_busy_cores),
                contended: self.cpu_contended,
            });
            resources.extend(self.disk_resources(rates));
        }
        resources.extend(self.memory_resource());
        resources.extend(self.link_resources());
        for state in self.tenants.iter().filter(|state| state.ready) {
            let tenant = &state.tenant;
            let measured = self
                .rates
                .as_ref()
                .and_then(|rates| Some((rates, rates.tenants.get(&tenant.name)?)));
            if let Some(contract) = tenant.cpu {
                tenants.push(cpu_row(tenant, contract, state.cpu_limit, measured));
            }
            tenants.extend(self.disk_rows(state, measured));
            if let Some(contract) = tenant.memory {
                let usage = memory::read_current(&state.group).ok().map(|b| b as f64);
                tenants.push(row(
                    tenant,
                    ("memory", "", ""),
                    Unit::Bytes,
                    (contract.baseline as f64, contract.burst as f64),
                    usage,
                    Some(contract.burst as f64),
                    (false, state.memory_seen.stall_fraction),
                ));
            }
            tenants.extend(self.net_rows(tenant));
        }
        Report {
            tick: self.ticks,
            interval_seconds: self.config.agent.interval.as_secs_f64(),
            age_seconds: self
                .last_tick
                .map_or(0.0, |last| last.elapsed().as_secs_f64()),
            resources,
            tenants,
        }
    }

    /// The memory left for tenants (MemTotal less `host.reserved_memory`)
    /// and what is not available (MemTotal less MemAvailable), read when
    /// asked; only when some tenant has a memory contract.
    fn memory_resource(&self) -> Option<ResourceRow> {
        let contracts = self
            .tenants
            .iter()
            .any(|state| state.tenant.memory.is_some());
        let host = match self.proc.read_memory() {
            Ok(host) if contracts => host,
            Ok(_) => return None,
            Err(error) => {
                debug!("no memory row in the status report: {error}");
                return None;
            }
        };
        let capacity = host.total.saturating_sub(self.config.host.reserved_memory) as f64;
        let used = host.used() as f64;
        Some(ResourceRow {
            resource: "memory".into(),
            device: String::new(),
            dimension: String::new(),
            unit: Unit::Bytes,
            capacity,
            used: Some(used),
            contended: used >= self.config.host.contention_threshold * capacity,
        })
    }

    fn disk_resources(&self, rates: &Rates) -> Vec<ResourceRow> {
        let mut rows = Vec::new();
        for disk in &self.config.host.disks {
            for dimension in IoDimension::ALL {
                let Some(capacity) = *disk.capacity.get(dimension) else {
                    continue;
                };
                let number = disk.device.number;
                rows.push(ResourceRow {
                    resource: "disk".into(),
                    device: disk.device.name.clone(),
                    dimension: dimension.key().into(),
                    unit: io_unit(dimension),
                    capacity,
                    used: rates.devices.get(&number).map(|used| *used.get(dimension)),
                    contended: self
                        .disk_contended
                        .get(&(number, dimension))
                        .copied()
                        .unwrap_or(false),
                });
            }
        }
        rows
    }

    fn disk_rows(
        &self,
        state: &super::TenantState,
        measured: Option<(&Rates, &TenantRates)>,
    ) -> Vec<TenantRow> {
        let mut rows = Vec::new();
        for contract in &state.tenant.disk {
            let number = contract.device.number;
            for dimension in IoDimension::ALL {
                let Some(terms) = contract.limits.get(dimension) else {
                    continue;
                };
                let seen = measured.map(|(rates, tenant)| {
                    let io = tenant.io.get(&number).copied().unwrap_or_default();
                    (
                        *io.per_second.get(dimension),
                        tenant.io_stall_fraction(rates.elapsed),
                    )
                });
                let limit = state.disk_limits.get(&(number, dimension)).copied();
                rows.push(measured_row(
                    &state.tenant,
                    ("disk", &contract.device.name, dimension.key()),
                    io_unit(dimension),
                    (terms.baseline, terms.burst),
                    seen,
                    limit.or(Some(terms.burst)),
                ));
            }
        }
        rows
    }

    fn link_resources(&self) -> Vec<ResourceRow> {
        self.config
            .host
            .links
            .iter()
            .map(|link| ResourceRow {
                resource: "network".into(),
                device: link.interface.clone(),
                dimension: String::new(),
                unit: Unit::BitsPerSecond,
                capacity: link.egress.get(),
                used: self.net.link_rate(&link.interface),
                contended: self.net.contended(&link.interface),
            })
            .collect()
    }

    fn net_rows(&self, tenant: &Tenant) -> Vec<TenantRow> {
        tenant
            .net
            .iter()
            .map(|contract| {
                let seen = self.net.tenant_seen(&tenant.name, &contract.interface);
                let egress = contract.egress;
                row(
                    tenant,
                    ("network", &contract.interface, ""),
                    Unit::BitsPerSecond,
                    (egress.baseline.get(), egress.burst.get()),
                    seen.map(|seen| seen.bits_per_second),
                    Some(egress.burst.get()),
                    (seen.is_some_and(|seen| seen.broken), None),
                )
            })
            .collect()
    }
}

fn cpu_row(
    tenant: &Tenant,
    contract: crate::config::Contract<Cores>,
    limit: Option<f64>,
    measured: Option<(&Rates, &TenantRates)>,
) -> TenantRow {
    let seen = measured
        .map(|(rates, tenant)| (tenant.cpu_cores, tenant.cpu_stall_fraction(rates.elapsed)));
    let terms = (contract.baseline.get(), contract.burst.get());
    measured_row(tenant, ("cpu", "", ""), Unit::Cores, terms, seen, limit)
}

/// A row whose usage and pressure come from the tick's rates: the contract
/// is broken when the tenant stalls below its baseline, as the policy says.
fn measured_row(
    tenant: &Tenant,
    what: (&str, &str, &str),
    unit: Unit,
    (baseline, burst): (f64, f64),
    seen: Option<(f64, f64)>,
    limit: Option<f64>,
) -> TenantRow {
    let broken = seen
        .is_some_and(|(usage, stall)| policy::contract_broken_under(usage, baseline, stall, limit));
    row(
        tenant,
        what,
        unit,
        (baseline, burst),
        seen.map(|(usage, _)| usage),
        limit,
        (broken, seen.map(|(_, stall)| stall)),
    )
}

fn row(
    tenant: &Tenant,
    (resource, device, dimension): (&str, &str, &str),
    unit: Unit,
    (baseline, burst): (f64, f64),
    usage: Option<f64>,
    limit: Option<f64>,
    (broken, pressure): (bool, Option<f64>),
) -> TenantRow {
    let state = match usage {
        Some(usage) => state(usage, baseline, burst, limit, broken),
        None => State::Idle,
    };
    TenantRow {
        tenant: tenant.name.clone(),
        resource: resource.into(),
        device: device.into(),
        dimension: dimension.into(),
        unit,
        baseline,
        burst,
        usage,
        limit,
        state,
        pressure,
    }
}

fn io_unit(dimension: IoDimension) -> Unit {
    match dimension {
        IoDimension::ReadBps | IoDimension::WriteBps => Unit::BytesPerSecond,
        IoDimension::ReadIops | IoDimension::WriteIops => Unit::IosPerSecond,
    }
}

/// The status socket: root only, removed when the agent stops.
pub(super) struct StatusSocket {
    listener: UnixListener,
    path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("another qosd answers on {0}; stop it first")]
    InUse(PathBuf),
    #[error("cannot serve status on {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

impl StatusSocket {
    /// Binds `path` (making its directory, owner only), replacing a socket
    /// left by an agent that died, but never one that still answers.
    pub fn bind(path: &Path) -> Result<Self, SocketError> {
        let failed = |source| SocketError::Io {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent().filter(|dir| !dir.exists()) {
            std::fs::create_dir_all(dir).map_err(failed)?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(failed)?;
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(SocketError::InUse(path.to_owned()));
        }
        match std::fs::remove_file(path) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(failed(error)),
            _ => {}
        }
        let listener = UnixListener::bind(path).map_err(failed)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(failed)?;
        Ok(StatusSocket {
            listener,
            path: path.to_owned(),
        })
    }

    /// The next client; errors are logged and waited out.
    pub async fn accept(&self) -> tokio::net::UnixStream {
        loop {
            match self.listener.accept().await {
                Ok((stream, _)) => return stream,
                Err(error) => {
                    warn!("status socket {}: {error}", self.path.display());
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    }
}

impl Drop for StatusSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Sends `report` to one client, in the background: a slow reader must not
/// hold up the next tick.
pub(super) fn answer(mut stream: tokio::net::UnixStream, report: &Report) {
    let Ok(json) = serde_json::to_vec(report) else {
        return;
    };
    tokio::spawn(async move {
        if let Err(error) = stream.write_all(&json).await {
            debug!("status client went away: {error}");
        }
        let _ = stream.shutdown().await;
    });
}
