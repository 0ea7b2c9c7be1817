//! The tenants' groups: made ready for control (created, or adopted where
//! they are, with the controllers their contracts need), waited for while
//! they do not exist, and let go when they vanish.

use std::collections::HashSet;

use tracing::{info, warn};

use super::Agent;
use crate::cgroup::CgroupError;
use crate::config;
use crate::control::{self, Managed};

/// Adopted groups whose absence was said (once, until they appear).
#[derive(Debug, Default)]
pub(super) struct GroupWatch {
    said_missing: HashSet<String>,
}

impl Agent {
    pub(super) fn prepare_groups(&mut self) {
        for index in 0..self.tenants.len() {
            let managed = &self.tenants[index];
            if managed.ready {
                continue;
            }
            let name = managed.tenant.name.clone();
            match self.prepare_group(managed) {
                Ok(true) => {
                    info!(
                        "tenant {name}: managing cgroup {}",
                        managed.group.path().display()
                    );
                    self.tenants[index].ready = true;
                    self.groups.said_missing.remove(&name);
                }
                Ok(false) if !self.groups.said_missing.contains(&name) => {
                    let hint = config::slice_path_hint(&managed.tenant.cgroup)
                        .map_or_else(String::new, |hint| format!(" ({hint})"));
                    warn!(
                        "tenant {name}: cgroup {} does not exist (yet); retrying every tick{hint}",
                        managed.group.path().display()
                    );
                    self.groups.said_missing.insert(name);
                }
                Ok(false) => {}
                Err(error) => warn!("tenant {name}: {error}"),
            }
        }
    }

    /// Makes the group ready for control; `Ok(false)` while an adopted group
    /// does not exist.
    fn prepare_group(&self, managed: &Managed) -> Result<bool, CgroupError> {
        if self.options.dry_run {
            // Nothing is created or enabled; only an existing group can be read.
            return Ok(managed.group.exists());
        }
        let tenant = &managed.tenant;
        let controllers = control::cgroup_controllers(tenant);
        let prepared = if tenant.adopted {
            self.hierarchy.enable_for(&tenant.cgroup, controllers)
        } else {
            self.hierarchy.ensure_group(&tenant.cgroup, controllers)
        };
        match prepared {
            Ok(_) => Ok(true),
            Err(error) if error.is_vanished() => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// A group that vanished is normal (its service stopped): wait for it
    /// to come back, and forget what every controller knew of it. Anything
    /// else is counted as an error.
    pub(super) fn group_failed(&mut self, index: usize, error: &CgroupError) {
        let Some(managed) = self.tenants.get_mut(index) else {
            return;
        };
        let tenant = &managed.tenant.name;
        if !error.is_vanished() {
            self.metrics.enforcement_errors.inc();
            warn!("tenant {tenant}: {error}");
            return;
        }
        // A file gone from a group that still exists: its controller was
        // turned off above it (systemd does so on daemon-reload when no
        // unit of a slice asks for it). Preparing the group again turns it
        // back on.
        let why = if managed.group.exists() {
            "lost its controller files (a parent turned the controller off); enabling it again"
        } else {
            "vanished; waiting for it"
        };
        info!(
            "tenant {tenant}: cgroup {} {why}",
            managed.group.path().display()
        );
        managed.ready = false;
        // A group created again under the same name is a new group: its
        // files must be opened afresh and its defaults are not drift.
        managed.group.close_files();
        self.enforcer.forget(&managed.group);
        for controller in &mut self.controllers {
            controller.forget(index, &mut self.enforcer);
        }
    }
}
