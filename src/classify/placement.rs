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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::cgroup::fake::FakeTree;
    use crate::classify::cgroup_paths::strip_prefix;
    use crate::classify::delegate;
    use crate::classify::tests::{classifier, in_cgroup, process, tenant, tenants, uid, unit};

    /// The tenant `c` moves `p` to, if it moves it.
    fn moves_to(c: &Classifier, p: &ProcessInfo) -> Option<usize> {
        match c.target(p) {
            Decision::Move { tenant, .. } => Some(tenant),
            _ => None,
        }
    }

    fn excluded(c: &Classifier, p: &ProcessInfo) -> Exclusion {
        match c.target(p) {
            Decision::Excluded { reason, .. } => reason,
            other => panic!("expected an exclusion, got {other:?}"),
        }
    }

    fn delegated(cgroup: &str) -> Exclusion {
        Exclusion::Delegated {
            cgroup: cgroup.into(),
        }
    }

    /// The move into the group `qosd.slice/<name>` of tenant `tenant`.
    fn move_into(tenant: usize, name: &str) -> Decision {
        Decision::Move {
            tenant,
            name: name.into(),
            group: format!("qosd.slice/{name}").into(),
        }
    }

    #[test]
    fn first_match_wins_in_file_order() {
        let tree = FakeTree::new();
        let batch_as_alice = ProcessInfo {
            comm: "batch-job".into(),
            ..process()
        };
        let c = classifier(&tree, &tenants());
        assert_eq!(c.target(&batch_as_alice), move_into(1, "alice"));
        let mut reversed = tenants();
        reversed.swap(1, 2);
        let c = classifier(&tree, &reversed);
        assert_eq!(c.target(&batch_as_alice), move_into(1, "batch"));
        let nobody = ProcessInfo {
            uid: Some(0),
            ..process()
        };
        assert_eq!(c.target(&nobody), Decision::NoMatch);
    }

    #[test]
    fn in_its_group_or_below_is_already_there_and_keeps_its_unit() {
        let tree = FakeTree::new();
        let tenants = vec![tenant("web", "qosd.slice/web", vec![unit("web.service")])];
        let c = classifier(&tree, &tenants);
        assert_eq!(moves_to(&c, &process()), Some(0));
        for cgroup in ["/qosd.slice/web", "/qosd.slice/web/sub"] {
            let moved = in_cgroup(cgroup);
            assert_eq!(c.target(&moved), Decision::AlreadyThere { tenant: 0 });
        }
        let sibling = in_cgroup("/qosd.slice/webby");
        assert_eq!(c.target(&sibling), Decision::NoMatch);
    }

    #[test]
    fn a_process_in_another_tenants_group_moves() {
        let tree = FakeTree::new();
        let c = classifier(&tree, &tenants());
        assert_eq!(moves_to(&c, &in_cgroup("/qosd.slice/batch")), Some(1));
    }

    #[test]
    fn kernel_threads_init_and_qosd_are_never_moved() {
        let tree = FakeTree::new();
        let c = classifier(&tree, &[tenant("root", "qosd.slice/root", vec![uid(0)])]);
        let root = |pid, kernel_thread| ProcessInfo {
            pid,
            uid: Some(0),
            kernel_thread,
            ..process()
        };
        assert_eq!(excluded(&c, &root(2, true)), Exclusion::KernelThread);
        assert_eq!(excluded(&c, &root(1, false)), Exclusion::Init);
        assert_eq!(
            excluded(&c, &root(std::process::id(), false)),
            Exclusion::Qosd
        );
        let no_v2 = ProcessInfo {
            cgroup: None,
            ..root(77, false)
        };
        assert_eq!(excluded(&c, &no_v2), Exclusion::NoCgroupV2);
        assert_eq!(moves_to(&c, &root(77, false)), Some(0));
    }

    #[test]
    fn processes_of_an_adopted_group_stay() {
        let tree = FakeTree::new();
        let c = classifier(&tree, &tenants());
        let legacy = in_cgroup("/legacy.slice/app.service");
        let adopted = Exclusion::Adopted {
            tenant: "legacy".into(),
        };
        assert_eq!(excluded(&c, &legacy), adopted);
    }

    #[test]
    fn a_delegated_subtree_is_left_alone_but_not_our_own_groups() {
        let tree = FakeTree::new();
        let mut c = classifier(&tree, &tenants());
        c.is_delegated = |dir, _| dir.ends_with("docker-1.scope") || dir.ends_with("qosd.slice");
        let container = in_cgroup("/system.slice/docker-1.scope/init");
        assert_eq!(
            excluded(&c, &container),
            delegated("system.slice/docker-1.scope")
        );
        // qosd.slice is marked (qosd's own delegation), yet its tenant groups are ours.
        assert_eq!(moves_to(&c, &in_cgroup("/qosd.slice/batch")), Some(1));
    }

    const USER_MANAGER: &str = "user.slice/user@1001.service";

    /// A process of one of alice's services is the classifier's to move
    /// until `mark` (given the group of her user manager and the cgroup
    /// root) hands that group to someone else; then it is left alone.
    /// Skipped, saying why, where `mark` cannot be done here.
    fn left_alone_once_marked(mark: impl FnOnce(&Path, &Path) -> Result<(), String>) {
        let tree = FakeTree::new();
        let manager = tree.add_group(USER_MANAGER);
        let c = classifier(&tree, &tenants());
        let p = in_cgroup(&format!("/{USER_MANAGER}/app.slice/x.service"));
        assert_eq!(moves_to(&c, &p), Some(1), "not delegated yet");
        if let Err(why) = mark(&manager, tree.path()) {
            eprintln!("skipped: {why}");
            return;
        }
        assert_eq!(excluded(&c, &p), delegated(USER_MANAGER));
    }

    #[test]
    fn the_delegate_xattr_of_a_real_directory_is_read() {
        left_alone_once_marked(|manager, _| {
            let names = [c"user.delegate", c"trusted.delegate"];
            let marked = names
                .into_iter()
                .any(|name| delegate::set_xattr(manager, name, b"1").is_ok());
            marked
                .then_some(())
                .ok_or_else(|| "no delegate xattr on this file system".into())
        });
    }

    /// systemd chowns `user@UID.service` to the user on every version; the
    /// kernel's delegation model is that ownership, xattr or not.
    #[test]
    fn a_group_chowned_to_a_user_is_left_alone() {
        left_alone_once_marked(|manager, root| {
            let owner = nix::unistd::Uid::from_raw(delegate::owner(root) + 1);
            nix::unistd::chown(manager, Some(owner), None)
                .map_err(|error| format!("cannot chown a directory here ({error})"))
        });
    }

    #[test]
    fn a_root_inside_the_mount_sees_paths_below_its_prefix() {
        let tree = FakeTree::new();
        let mut c = classifier(&tree, &tenants());
        c.prefix = "/nested".into();
        let inside = in_cgroup("/nested/qosd.slice/alice");
        assert_eq!(c.target(&inside), Decision::AlreadyThere { tenant: 1 });
        let outside = Exclusion::OutsideRoot {
            cgroup: "/system.slice/web.service".into(),
        };
        assert_eq!(excluded(&c, &process()), outside);
        assert_eq!(strip_prefix("/nestedx/a", "/nested"), None);
        assert_eq!(strip_prefix("/", ""), Some(""));
    }
}
