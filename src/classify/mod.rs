//! Process classification: tenants declared by `match = [...]` get their
//! own group, and qosd moves matching processes (all their threads) there.
//!
//! - [`matches`] decides one matcher against one process (`matching.rs`,
//!   which reads only what a matcher's keys need).
//! - [`Classifier`] holds the tenants with matchers, in file order (the
//!   first match wins), and decides where a process belongs
//!   ([`Classifier::target`], `placement.rs`), moves it
//!   ([`Classifier::classify_pid`], `moving.rs`) or walks all of /proc
//!   ([`Classifier::rescan`], `rescan.rs`).
//! - [`events`] follows new and re-exec'd processes with the netlink proc
//!   connector, on a thread of its own ([`events::spawn_listener`]).
//!
//! Some processes are never moved, whatever matches them (each logged once,
//! at info, with the reason): kernel threads, PID 1, qosd itself, processes
//! in an adopted tenant's cgroup, and processes in a subtree delegated to
//! someone else (a container runtime, a user manager).
//!
//! A process that exits while it is read or moved is normal: it is counted
//! as vanished and logged at debug level only.

mod cgroup_paths;
mod counters;
pub mod delegate;
pub mod events;
mod matching;
mod moving;
mod placement;
pub mod protected;
mod rescan;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use crate::cgroup::{CgroupError, Group, Hierarchy};
use crate::config::{ProcessMatcher, Tenant};
use crate::procfs::{ProcError, ProcFs, ProcessInfo};
use cgroup_paths::{mount_prefix, relative_string};
pub use counters::Counters;
use matching::Lazy;
pub use matching::matches;
pub use moving::{MoveOutcome, move_process};
pub use placement::{Decision, Exclusion};
pub use rescan::ScanReport;

/// What happened to one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Moved {
        tenant: usize,
    },
    AlreadyThere {
        tenant: usize,
    },
    NoMatch,
    Excluded {
        tenant: usize,
    },
    /// It exited before it could be read or moved.
    Vanished,
}

#[derive(Debug, thiserror::Error)]
pub enum ClassifyError {
    #[error(transparent)]
    Proc(#[from] ProcError),
    #[error(transparent)]
    Move(#[from] CgroupError),
}

/// A tenant with matchers: its group and its matchers.
#[derive(Debug, Clone)]
struct Target {
    index: usize,
    name: String,
    /// Relative to the root, without leading '/': `qosd.slice/web`.
    relative: String,
    group: Group,
    matchers: Vec<ProcessMatcher>,
}

/// Decides and carries out where processes belong. Built from the
/// configuration's tenants; rebuild it on reload and swap it in (the
/// listener reads it through an `Arc<RwLock<Classifier>>`), passing the
/// same [`Counters`].
pub struct Classifier {
    hierarchy: Hierarchy,
    /// The root as /proc/PID/cgroup shows it: "" when the root is the
    /// mount, `/some/group` when it is a group inside it.
    prefix: String,
    targets: Vec<Target>,
    /// Adopted tenants: (name, cgroup relative to the root).
    adopted: Vec<(String, String)>,
    /// Some matcher has a uid or gid key.
    reads_ids: bool,
    own_pid: u32,
    counters: Arc<Counters>,
    /// (pid, reason) pairs already logged.
    logged: Mutex<HashSet<(u32, Exclusion)>>,
    is_delegated: fn(&Path, u32) -> bool,
    /// The owner of the cgroup root: a group owned by anyone else was
    /// delegated to them.
    root_owner: u32,
}

impl fmt::Debug for Classifier {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.debug_struct("Classifier")
            .field("root", &self.hierarchy.root())
            .field("prefix", &self.prefix)
            .field("targets", &self.targets)
            .field("adopted", &self.adopted)
            .finish_non_exhaustive()
    }
}

impl Classifier {
    /// `tenants` in file order (indexes in decisions refer to this slice);
    /// those with matchers are targets, adopted ones keep their processes.
    pub fn new(hierarchy: Hierarchy, tenants: &[Tenant], counters: Arc<Counters>) -> Self {
        let targets: Vec<Target> = tenants
            .iter()
            .enumerate()
            .filter(|(_, tenant)| !tenant.matchers.is_empty())
            .map(|(index, tenant)| Target {
                index,
                name: tenant.name.clone(),
                relative: relative_string(&tenant.cgroup),
                group: hierarchy.group(&tenant.cgroup),
                matchers: tenant.matchers.clone(),
            })
            .collect();
        let adopted = tenants
            .iter()
            .filter(|tenant| tenant.adopted && tenant.matchers.is_empty())
            .map(|tenant| (tenant.name.clone(), relative_string(&tenant.cgroup)))
            .collect();
        let reads_ids = targets
            .iter()
            .flat_map(|target| &target.matchers)
            .any(|matcher| matcher.uid.is_some() || matcher.gid.is_some());
        Classifier {
            reads_ids,
            prefix: mount_prefix(hierarchy.root()),
            root_owner: delegate::owner(hierarchy.root()),
            hierarchy,
            targets,
            adopted,
            own_pid: std::process::id(),
            counters,
            logged: Mutex::default(),
            is_delegated: delegate::is_delegated,
        }
    }

    /// True when some tenant has matchers: without any, there is nothing
    /// to classify (no listener, no rescans needed).
    pub fn is_active(&self) -> bool {
        !self.targets.is_empty()
    }

    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    pub fn hierarchy(&self) -> &Hierarchy {
        &self.hierarchy
    }

    /// Reads process `pid`, decides, and moves it if it must move.
    pub fn classify_pid(&self, proc: &ProcFs, pid: u32) -> Result<Outcome, ClassifyError> {
        self.classify_with(proc, pid, &mut HashMap::new())
    }

    fn classify_with(
        &self,
        proc: &ProcFs,
        pid: u32,
        delegated: &mut HashMap<String, bool>,
    ) -> Result<Outcome, ClassifyError> {
        let mut parts = Lazy::new(proc, pid, self.reads_ids);
        let Some(decision) = self.decide(&mut parts, delegated)? else {
            self.vanished(pid, "reading it");
            return Ok(Outcome::Vanished);
        };
        let process = parts.into_info();
        match decision {
            Decision::NoMatch => Ok(Outcome::NoMatch),
            Decision::AlreadyThere { tenant } => Ok(Outcome::AlreadyThere { tenant }),
            Decision::Excluded { tenant, reason } => {
                self.log_exclusion(&process, tenant, reason);
                Ok(Outcome::Excluded { tenant })
            }
            Decision::Move { tenant, .. } => self.move_into(tenant, &process),
        }
    }

    fn move_into(&self, tenant: usize, process: &ProcessInfo) -> Result<Outcome, ClassifyError> {
        let target = self
            .target_of(tenant)
            .expect("a decision names one of our targets");
        match move_process(&target.group, process.pid)? {
            MoveOutcome::Moved => {
                self.counters.count_move();
                tracing::debug!(
                    pid = process.pid,
                    comm = %process.comm,
                    tenant = %target.name,
                    from = process.cgroup.as_deref().unwrap_or(""),
                    "moved process into its tenant's group"
                );
                Ok(Outcome::Moved { tenant })
            }
            MoveOutcome::Vanished => {
                self.vanished(process.pid, "moving it");
                Ok(Outcome::Vanished)
            }
        }
    }

    /// The target of the tenant at `tenant` in the configuration's list.
    fn target_of(&self, tenant: usize) -> Option<&Target> {
        self.targets.iter().find(|target| target.index == tenant)
    }

    fn vanished(&self, pid: u32, during: &str) {
        self.counters.count_vanished();
        tracing::debug!(pid, "process vanished while {during}");
    }

    fn log_exclusion(&self, process: &ProcessInfo, tenant: usize, reason: Exclusion) {
        let mut logged = self.logged.lock().unwrap_or_else(PoisonError::into_inner);
        let message = reason.to_string();
        if logged.insert((process.pid, reason)) {
            let name = self
                .target_of(tenant)
                .map_or("", |target| target.name.as_str());
            tracing::info!(
                pid = process.pid,
                comm = %process.comm,
                tenant = name,
                "process matches tenant {name} but is not moved: {message}"
            );
        }
    }
}
