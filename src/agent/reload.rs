//! Taking a configuration: at start-up, and on SIGHUP after it validated.
//! A file that does not validate changes nothing.

use std::collections::HashMap;

use tracing::{error, info, warn};

use super::Agent;
use crate::cgroup::Group;
use crate::config::{self, Config, HostFacts};
use crate::control::{self, Managed, Reconfigure};

impl Agent {
    pub(super) fn reload(&mut self) {
        let path = self.options.config_path.clone();
        info!("reloading {}", path.display());
        let loaded = self
            .reload_facts()
            .map_err(|error| error.to_string())
            .and_then(|facts| config::load(&path, &facts).map_err(|error| error.to_string()));
        let result = match loaded {
            Ok(loaded) => {
                for warning in &loaded.warnings {
                    warn!("{}: {warning}", path.display());
                }
                self.swap_config(loaded.config);
                self.classification
                    .reloaded(&self.config, &self.hierarchy, &self.proc);
                // Applied now, on the latest sample, not a tick later.
                self.prepare_groups();
                self.control();
                self.wakeups
                    .sync(&self.tenants, &self.samples, &self.enforcer);
                info!(
                    "reloaded {}: {} tenants",
                    path.display(),
                    self.tenants.len()
                );
                "success"
            }
            Err(error) => {
                error!("reload failed; the contracts in force stay: {error}");
                "failure"
            }
        };
        let reloads = self.metrics.config_reloads.with_label_values(&[result]);
        reloads.inc();
    }

    /// The host as validation sees it now: the CPUs online are read again.
    fn reload_facts(&self) -> Result<HostFacts, crate::procfs::ProcError> {
        let online_cpus = crate::host::online_cpus(&self.proc)?;
        let facts = HostFacts {
            online_cpus,
            ..self.host_lookups
        };
        Ok(match facts.memory_total {
            Some(_) => facts,
            None => crate::host::with_memory_total(facts, &self.proc),
        })
    }

    /// Takes a validated configuration, keeping what is known of tenants
    /// that stay (same name and group) so their limits do not jump.
    pub(super) fn swap_config(&mut self, mut new: Config) {
        keep_restart_only_settings(&self.config, &mut new);
        let old: Vec<Managed> = std::mem::take(&mut self.tenants);
        let mut by_name: HashMap<&str, usize> = old
            .iter()
            .enumerate()
            .map(|(i, t)| (t.tenant.name.as_str(), i))
            .collect();
        let mut kept = Vec::with_capacity(new.tenants.len());
        for tenant in &new.tenants {
            let group = self.hierarchy.group(&tenant.cgroup);
            let was = by_name.remove(tenant.name.as_str());
            let same = was.filter(|&i| old[i].group == group);
            // A new kind of contract may need a controller enabled: prepare
            // the group again.
            let ready = same.is_some_and(|i| {
                old[i].ready
                    && control::cgroup_controllers(&old[i].tenant)
                        == control::cgroup_controllers(tenant)
            });
            kept.push(same);
            self.tenants.push(Managed {
                tenant: tenant.clone(),
                group: same.map_or(group, |i| old[i].group.clone()),
                ready,
            });
        }
        let gone: Vec<_> = by_name.values().map(|&i| old[i].tenant.clone()).collect();
        for tenant in &gone {
            info!(
                "tenant {} left the configuration; its cgroup limits stay as they are",
                tenant.name
            );
            self.metrics.forget_tenant(&tenant.name);
        }
        let groups: Vec<&Group> = self.tenants.iter().map(|t| &t.group).collect();
        self.enforcer.retain(&groups);
        let change = Reconfigure {
            config: &new,
            tenants: &self.tenants,
            kept: &kept,
            gone: &gone,
            hierarchy: &self.hierarchy,
        };
        for controller in &mut self.controllers {
            controller.configure(&change);
        }
        self.config = new;
    }
}

/// Settings bound at start-up (the cgroup mount, the metrics socket) cannot
/// change on reload; say so and keep the running ones.
fn keep_restart_only_settings(running: &Config, new: &mut Config) {
    let (old, next) = (&running.agent, &mut new.agent);
    if old.cgroup_root != next.cgroup_root {
        warn!(
            "agent.cgroup_root changed to {}: takes effect on restart; keeping {}",
            next.cgroup_root.display(),
            old.cgroup_root.display()
        );
        next.cgroup_root = old.cgroup_root.clone();
    }
    if old.metrics_listen != next.metrics_listen {
        warn!(
            "agent.metrics_listen changed to {}: takes effect on restart; keeping {}",
            next.metrics_listen, old.metrics_listen
        );
        next.metrics_listen = old.metrics_listen;
    }
}
