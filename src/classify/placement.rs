//! Where a process belongs: the first tenant whose matchers claim it, and
//! whether it may be moved there.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

use super::cgroup_paths::{strip_prefix, within};
use super::matching::{Complete, Parts, holds};
use super::{Classifier, Target};
use crate::procfs::{ProcError, ProcessFields, ProcessInfo};

/// What placing a process claimed by a tenant looks at: its cgroup, and
/// whether it is a kernel thread (stat).
const PLACING: ProcessFields = ProcessFields {
    cgroup: true,
    stat: true,
    ..ProcessFields::NONE
};

/// Why a process that a tenant's matchers claim is not moved.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Exclusion {
    KernelThread,
    /// PID 1 (init, systemd).
    Init,
    /// qosd itself.
    Qosd,
    /// /proc/PID/cgroup has no cgroup v2 line.
    NoCgroupV2,
    /// Its cgroup is outside `agent.cgroup_root`.
    OutsideRoot {
        cgroup: String,
    },
    /// It is in the cgroup of a tenant that adopts it (`cgroup = "..."`).
    Adopted {
        tenant: String,
    },
    /// `cgroup` (relative to the root: the process's group or an ancestor)
    /// is delegated to someone else.
    Delegated {
        cgroup: String,
    },
}

impl fmt::Display for Exclusion {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Exclusion::KernelThread => write!(f, "it is a kernel thread"),
            Exclusion::Init => write!(f, "it is PID 1"),
            Exclusion::Qosd => write!(f, "it is qosd itself"),
            Exclusion::NoCgroupV2 => write!(f, "it is in no cgroup v2 hierarchy"),
            Exclusion::OutsideRoot { cgroup } => {
                write!(f, "its cgroup {cgroup} is outside agent.cgroup_root")
            }
            Exclusion::Adopted { tenant } => {
                write!(f, "it is in the cgroup adopted by tenant {tenant}")
            }
            Exclusion::Delegated { cgroup } => write!(
                f,
                "cgroup {cgroup} is delegated to another manager (delegate xattr), \
                 e.g. a container runtime or a user's systemd"
            ),
        }
    }
}

/// Where a process belongs. `tenant` indexes the tenants the classifier
/// was built from (the configuration's list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Move it into `group` (relative to the cgroup root).
    Move {
        tenant: usize,
        name: String,
        group: PathBuf,
    },
    /// It is in its tenant's group (or below it) already.
    AlreadyThere { tenant: usize },
    /// No tenant's matchers claim it: it stays where it is.
    NoMatch,
    /// A tenant's matchers claim it, but it must not be moved.
    Excluded { tenant: usize, reason: Exclusion },
}

impl Classifier {
    /// Where `process` belongs. Pure but for reading delegation marks of
    /// its cgroup's directories (only for a process that would move).
    pub fn target(&self, process: &ProcessInfo) -> Decision {
        match self.decide(&mut Complete(process), &mut HashMap::new()) {
            Ok(Some(decision)) => decision,
            // A complete process neither vanishes nor fails to read.
            _ => Decision::NoMatch,
        }
    }

    /// The position (in `targets`) of the tenant group the process is in.
    fn current(&self, process: &ProcessInfo) -> Option<usize> {
        let relative = strip_prefix(process.cgroup.as_deref()?, &self.prefix)?;
        self.targets
            .iter()
            .position(|target| within(relative, &target.relative))
    }

    /// `Ok(None)`: the process vanished while its parts were read.
    pub(super) fn decide(
        &self,
        parts: &mut dyn Parts,
        delegated: &mut HashMap<String, bool>,
    ) -> Result<Option<Decision>, ProcError> {
        let mut claimed = None;
        'targets: for (position, target) in self.targets.iter().enumerate() {
            for matcher in &target.matchers {
                let unit_held = |process: &ProcessInfo| self.current(process) == Some(position);
                match holds(matcher, parts, &unit_held)? {
                    None => return Ok(None),
                    Some(true) => {
                        claimed = Some(target);
                        break 'targets;
                    }
                    Some(false) => {}
                }
            }
        }
        let Some(target) = claimed else {
            return Ok(Some(Decision::NoMatch));
        };
        if !parts.ensure(PLACING)? {
            return Ok(None);
        }
        Ok(Some(self.place(parts.info(), target, delegated)))
    }

    /// The decision for a process that `target` claims.
    fn place(
        &self,
        process: &ProcessInfo,
        target: &Target,
        delegated: &mut HashMap<String, bool>,
    ) -> Decision {
        let current = self
            .current(process)
            .map(|position| &self.targets[position]);
        if current.is_some_and(|current| current.index == target.index) {
            return Decision::AlreadyThere {
                tenant: target.index,
            };
        }
        let excluded = |reason| Decision::Excluded {
            tenant: target.index,
            reason,
        };
        if process.kernel_thread {
            return excluded(Exclusion::KernelThread);
        }
        if process.pid == 1 {
            return excluded(Exclusion::Init);
        }
        if process.pid == self.own_pid {
            return excluded(Exclusion::Qosd);
        }
        let Some(cgroup) = process.cgroup.as_deref() else {
            return excluded(Exclusion::NoCgroupV2);
        };
        let Some(relative) = strip_prefix(cgroup, &self.prefix) else {
            return excluded(Exclusion::OutsideRoot {
                cgroup: cgroup.to_owned(),
            });
        };
        // In another tenant's group of ours: ours to move. Elsewhere, an
        // adopted group or a delegated subtree keeps its processes.
        if current.is_none() {
            if let Some((tenant, _)) = self
                .adopted
                .iter()
                .find(|(_, adopted)| within(relative, adopted))
            {
                return excluded(Exclusion::Adopted {
                    tenant: tenant.clone(),
                });
            }
            if let Some(cgroup) = self.delegated_ancestor(relative, delegated) {
                return excluded(Exclusion::Delegated { cgroup });
            }
        }
        Decision::Move {
            tenant: target.index,
            name: target.name.clone(),
            group: PathBuf::from(&target.relative),
        }
    }

    /// The topmost group from `relative` up to (not including) the root
    /// that is marked delegated. `cache` remembers answers within a scan.
    fn delegated_ancestor(
        &self,
        relative: &str,
        cache: &mut HashMap<String, bool>,
    ) -> Option<String> {
        let mut end = 0;
        while end < relative.len() {
            end = relative[end + 1..]
                .find('/')
                .map_or(relative.len(), |slash| end + 1 + slash);
            let ancestor = &relative[..end];
            let delegated = match cache.get(ancestor) {
                Some(&known) => known,
                None => {
                    let known =
                        (self.is_delegated)(&self.hierarchy.root().join(ancestor), self.root_owner);
                    cache.insert(ancestor.to_owned(), known);
                    known
                }
            };
            if delegated {
                return Some(ancestor.to_owned());
            }
        }
        None
    }
}
