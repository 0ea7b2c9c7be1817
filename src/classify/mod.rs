//! Process classification: tenants declared by `match = [...]` get their
//! own group, and qosd moves matching processes (all their threads) there.
//!
//! - [`matches`] decides one matcher against one process.
//! - [`Classifier`] holds the tenants with matchers, in file order (the
//!   first match wins), and decides where a process belongs
//!   ([`Classifier::target`]), moves it ([`Classifier::classify_pid`]) or
//!   walks all of /proc ([`Classifier::rescan`]).
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

pub mod delegate;
pub mod events;
pub mod protected;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::statfs;

use crate::cgroup::{CgroupError, Group, Hierarchy};
use crate::config::{ProcessMatcher, Tenant, TextPattern};
use crate::procfs::{ProcError, ProcFs, ProcessFields, ProcessInfo};

const CGROUP_PROCS: &str = "cgroup.procs";
/// A rescan uses at most this many threads, one per this many processes.
const MAX_SCAN_THREADS: usize = 4;
const PIDS_PER_SCAN_THREAD: usize = 1000;

/// Whether every key `matcher` has holds for `process`. A key whose part of
/// the process was not read (or could not be: a kernel thread has no
/// executable) does not hold.
///
/// `unit` holds when it equals one component of the process's cgroup path
/// (`nginx.service` in `/system.slice/nginx.service`).
pub fn matches(matcher: &ProcessMatcher, process: &ProcessInfo) -> bool {
    matches!(
        holds(matcher, &mut Complete(process), &|_| false),
        Ok(Some(true))
    )
}

const COMM: ProcessFields = ProcessFields {
    comm: true,
    ..ProcessFields::NONE
};
const STAT: ProcessFields = ProcessFields {
    stat: true,
    ..ProcessFields::NONE
};
const IDS: ProcessFields = ProcessFields {
    ids: true,
    ..ProcessFields::NONE
};
const EXE: ProcessFields = ProcessFields {
    exe: true,
    ..ProcessFields::NONE
};
const CMDLINE: ProcessFields = ProcessFields {
    cmdline: true,
    ..ProcessFields::NONE
};
const CGROUP: ProcessFields = ProcessFields {
    cgroup: true,
    ..ProcessFields::NONE
};

/// A process whose parts are read when a key first needs them: most
/// processes fail their first key, and each /proc file costs ~10 µs.
trait Parts {
    /// Makes sure `fields` are in `info()`; `Ok(false)` if the process is gone.
    fn ensure(&mut self, fields: ProcessFields) -> Result<bool, ProcError>;
    fn info(&self) -> &ProcessInfo;
}

/// A process read whole (or as far as the caller chose).
struct Complete<'a>(&'a ProcessInfo);

impl Parts for Complete<'_> {
    fn ensure(&mut self, _: ProcessFields) -> Result<bool, ProcError> {
        Ok(true)
    }

    fn info(&self) -> &ProcessInfo {
        self.0
    }
}

/// A process of which nothing was read so far.
struct Lazy<'a> {
    proc: &'a ProcFs,
    info: ProcessInfo,
    read: ProcessFields,
    /// Some matcher looks at ids: for comm, read status (which gives comm
    /// too) rather than /proc/PID/comm, and the ids come with it.
    prefer_status: bool,
}

impl Parts for Lazy<'_> {
    fn ensure(&mut self, fields: ProcessFields) -> Result<bool, ProcError> {
        let mut missing = fields.without(self.read);
        if missing.is_empty() {
            return Ok(true);
        }
        if (missing.comm || missing.stat) && self.prefer_status {
            missing.ids = !self.read.ids;
        }
        match self.proc.fill_process(&mut self.info, missing)? {
            Some(filled) => {
                self.read = self.read.union(filled);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn info(&self) -> &ProcessInfo {
        &self.info
    }
}

/// Whether `matcher` holds, checking the keys from the cheapest to read
/// (comm, from /proc/PID/comm) to the dearest (status); `Ok(None)` if the process
/// vanished meanwhile.
///
/// `unit_held(process)`: the process sits in the group of the tenant this
/// matcher belongs to. Moving it there took it out of its unit's cgroup,
/// so the path no longer shows the unit; the unit key still counts as
/// held, or a process would match on one scan and not the next.
fn holds(
    matcher: &ProcessMatcher,
    parts: &mut dyn Parts,
    unit_held: &dyn Fn(&ProcessInfo) -> bool,
) -> Result<Option<bool>, ProcError> {
    let text = |pattern: &Option<TextPattern>, have: Option<&str>| {
        pattern
            .as_ref()
            .is_none_or(|pattern| have.is_some_and(|have| pattern.matches(have)))
    };
    if matcher.comm.is_some() {
        if !parts.ensure(COMM)? {
            return Ok(None);
        }
        if !text(&matcher.comm, Some(&parts.info().comm)) {
            return Ok(Some(false));
        }
    }
    if matcher.exe.is_some() {
        if !parts.ensure(EXE)? {
            return Ok(None);
        }
        if !text(&matcher.exe, parts.info().exe.as_deref()) {
            return Ok(Some(false));
        }
    }
    if matcher.cmdline.is_some() {
        if !parts.ensure(CMDLINE)? {
            return Ok(None);
        }
        if !text(&matcher.cmdline, parts.info().cmdline.as_deref()) {
            return Ok(Some(false));
        }
    }
    if let Some(unit) = matcher.unit.as_deref() {
        if !parts.ensure(CGROUP)? {
            return Ok(None);
        }
        let process = parts.info();
        let in_unit = process
            .cgroup
            .as_deref()
            .is_some_and(|path| path.split('/').any(|component| component == unit));
        if !in_unit && !unit_held(process) {
            return Ok(Some(false));
        }
    }
    if matcher.uid.is_some() || matcher.gid.is_some() {
        if !parts.ensure(IDS)? {
            return Ok(None);
        }
        let process = parts.info();
        let id = |want: Option<u32>, have: Option<u32>| want.is_none_or(|want| have == Some(want));
        if !id(matcher.uid, process.uid) || !id(matcher.gid, process.gid) {
            return Ok(Some(false));
        }
    }
    Ok(Some(true))
}

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

/// Result of writing a PID to a group's `cgroup.procs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoveOutcome {
    Moved,
    /// The process exited meanwhile (ESRCH).
    Vanished,
}

#[derive(Debug, thiserror::Error)]
pub enum ClassifyError {
    #[error(transparent)]
    Proc(#[from] ProcError),
    #[error(transparent)]
    Move(#[from] CgroupError),
}

/// Moves process `pid` with all its threads into `group` (one write of the
/// PID to its `cgroup.procs`). A process that exited meanwhile is
/// [`MoveOutcome::Vanished`], not an error; a group that is gone is an
/// error for which `is_vanished()` holds.
pub fn move_process(group: &Group, pid: u32) -> Result<MoveOutcome, CgroupError> {
    match group.write(CGROUP_PROCS, &pid.to_string()) {
        Ok(()) => Ok(MoveOutcome::Moved),
        Err(error) if process_vanished(&error, group) => Ok(MoveOutcome::Vanished),
        Err(error) => Err(error),
    }
}

/// ESRCH: no such process. ENOENT while the group still exists: the
/// process went away during the write.
fn process_vanished(error: &CgroupError, group: &Group) -> bool {
    let CgroupError::Write { source, .. } = error else {
        return false;
    };
    match source.raw_os_error() {
        Some(errno) if errno == Errno::ESRCH as i32 => true,
        Some(errno) if errno == Errno::ENOENT as i32 => group.exists(),
        _ => false,
    }
}

/// Counters shared by every classifier of an agent's life (they outlive a
/// reload) and the event listener. The agent exports `moves` as
/// `qosd_classification_moves_total`.
#[derive(Debug, Default)]
pub struct Counters {
    moves: AtomicU64,
    vanished: AtomicU64,
    events: AtomicU64,
    events_lost: AtomicU64,
    rescan_wanted: AtomicBool,
}

impl Counters {
    /// Processes moved into a tenant's group.
    pub fn moves(&self) -> u64 {
        self.moves.load(Ordering::Relaxed)
    }

    /// Processes that exited while being read or moved.
    pub fn vanished(&self) -> u64 {
        self.vanished.load(Ordering::Relaxed)
    }

    /// Proc connector events received.
    pub fn events(&self) -> u64 {
        self.events.load(Ordering::Relaxed)
    }

    /// Times the kernel dropped proc connector events (socket overrun).
    pub fn events_lost(&self) -> u64 {
        self.events_lost.load(Ordering::Relaxed)
    }

    /// True once after events were lost: the agent should rescan /proc.
    pub fn take_rescan_request(&self) -> bool {
        self.rescan_wanted.swap(false, Ordering::Relaxed)
    }

    pub(crate) fn request_rescan(&self) {
        self.events_lost.fetch_add(1, Ordering::Relaxed);
        self.rescan_wanted.store(true, Ordering::Relaxed);
    }

    pub(crate) fn count_event(&self) {
        self.events.fetch_add(1, Ordering::Relaxed);
    }
}

/// One walk over /proc.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScanReport {
    /// PIDs listed.
    pub processes: u64,
    pub moved: u64,
    pub already: u64,
    pub excluded: u64,
    pub unmatched: u64,
    pub vanished: u64,
    /// Processes that could not be read or moved (logged at warn).
    pub errors: u64,
    pub elapsed: Duration,
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
    fn decide(
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
        if !parts.ensure(CGROUP.union(STAT))? {
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
        let mut parts = Lazy {
            proc,
            info: ProcessInfo {
                pid,
                ..ProcessInfo::default()
            },
            read: ProcessFields::NONE,
            prefer_status: self.reads_ids,
        };
        let Some(decision) = self.decide(&mut parts, delegated)? else {
            self.vanished(pid, "reading it");
            return Ok(Outcome::Vanished);
        };
        let process = parts.info;
        match decision {
            Decision::NoMatch => Ok(Outcome::NoMatch),
            Decision::AlreadyThere { tenant } => Ok(Outcome::AlreadyThere { tenant }),
            Decision::Excluded { tenant, reason } => {
                self.log_exclusion(&process, tenant, reason);
                Ok(Outcome::Excluded { tenant })
            }
            Decision::Move { tenant, name, .. } => {
                let target = self
                    .targets
                    .iter()
                    .find(|target| target.index == tenant)
                    .expect("a decision names one of our targets");
                match move_process(&target.group, pid)? {
                    MoveOutcome::Moved => {
                        self.counters.moves.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(
                            pid,
                            comm = %process.comm,
                            tenant = %name,
                            from = process.cgroup.as_deref().unwrap_or(""),
                            "moved process into its tenant's group"
                        );
                        Ok(Outcome::Moved { tenant })
                    }
                    MoveOutcome::Vanished => {
                        self.vanished(pid, "moving it");
                        Ok(Outcome::Vanished)
                    }
                }
            }
        }
    }

    fn vanished(&self, pid: u32, during: &str) {
        self.counters.vanished.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(pid, "process vanished while {during}");
    }

    fn log_exclusion(&self, process: &ProcessInfo, tenant: usize, reason: Exclusion) {
        let mut logged = self.logged.lock().unwrap_or_else(PoisonError::into_inner);
        let message = reason.to_string();
        if logged.insert((process.pid, reason)) {
            let name = self
                .targets
                .iter()
                .find(|target| target.index == tenant)
                .map_or("", |target| target.name.as_str());
            tracing::info!(
                pid = process.pid,
                comm = %process.comm,
                tenant = name,
                "process matches tenant {name} but is not moved: {message}"
            );
        }
    }

    fn scan(&self, proc: &ProcFs, pids: &[u32]) -> ScanReport {
        let mut report = ScanReport::default();
        let mut delegated = HashMap::new();
        for &pid in pids {
            match self.classify_with(proc, pid, &mut delegated) {
                Ok(Outcome::Moved { .. }) => report.moved += 1,
                Ok(Outcome::AlreadyThere { .. }) => report.already += 1,
                Ok(Outcome::Excluded { .. }) => report.excluded += 1,
                Ok(Outcome::NoMatch) => report.unmatched += 1,
                Ok(Outcome::Vanished) => report.vanished += 1,
                Err(error) => {
                    report.errors += 1;
                    tracing::warn!(pid, "cannot classify process: {error}");
                }
            }
        }
        report
    }

    /// Walks all of /proc once and classifies every process. Only listing
    /// /proc can fail; a process that cannot be read or moved is logged at
    /// warn and counted in `errors`.
    pub fn rescan(&self, proc: &ProcFs) -> Result<ScanReport, ProcError> {
        let start = Instant::now();
        let pids = proc.pids()?;
        let mut report = ScanReport {
            processes: pids.len() as u64,
            ..ScanReport::default()
        };
        // Each /proc file costs ~10 µs of system time on a VM: spread a
        // large host over a few threads (the CPU time is the same).
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, MAX_SCAN_THREADS)
            .min(pids.len().div_ceil(PIDS_PER_SCAN_THREAD).max(1));
        let chunk = pids.len().div_ceil(threads).max(1);
        let parts: Vec<ScanReport> = std::thread::scope(|scope| {
            let workers: Vec<_> = pids
                .chunks(chunk)
                .skip(1)
                .map(|pids| scope.spawn(move || self.scan(proc, pids)))
                .collect();
            let mut parts = vec![self.scan(proc, pids.chunks(chunk).next().unwrap_or(&[]))];
            parts.extend(workers.into_iter().filter_map(|worker| worker.join().ok()));
            parts
        });
        for part in parts {
            report.moved += part.moved;
            report.already += part.already;
            report.excluded += part.excluded;
            report.unmatched += part.unmatched;
            report.vanished += part.vanished;
            report.errors += part.errors;
        }
        // Forget exclusions of processes that are gone: their PIDs may be reused.
        let live: HashSet<u32> = pids.into_iter().collect();
        self.logged
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|(pid, _)| live.contains(pid));
        report.elapsed = start.elapsed();
        Ok(report)
    }
}

/// `qosd.slice/web` from a configured cgroup path (relative, maybe with `.`).
fn relative_string(path: &Path) -> String {
    let text = path.to_string_lossy();
    text.trim_matches('/')
        .split('/')
        .filter(|component| !component.is_empty() && *component != ".")
        .collect::<Vec<_>>()
        .join("/")
}

/// `path` (as /proc/PID/cgroup shows it, `/a/b`) relative to the root whose
/// own path is `prefix`; `None` if it is outside.
fn strip_prefix<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = path.strip_prefix(prefix)?;
    if rest.is_empty() {
        Some("")
    } else {
        rest.strip_prefix('/')
    }
}

/// `path` is `group` or below it (both relative, no leading '/'); every
/// path is within the root "".
fn within(path: &str, group: &str) -> bool {
    group.is_empty()
        || path == group
        || path
            .strip_prefix(group)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Where `root` sits in its cgroup2 mount, as /proc/PID/cgroup would show
/// it: "" for the mount itself (or for a root that is no cgroup2 at all,
/// e.g. a test's fake tree), `/qosd` for `<mount>/qosd`.
fn mount_prefix(root: &Path) -> String {
    let is_cgroup2 = |path: &Path| {
        statfs::statfs(path).is_ok_and(|s| s.filesystem_type() == statfs::CGROUP2_SUPER_MAGIC)
    };
    if !is_cgroup2(root) {
        return String::new();
    }
    let mut mount = root;
    while let Some(parent) = mount.parent().filter(|parent| is_cgroup2(parent)) {
        mount = parent;
    }
    match root.strip_prefix(mount) {
        Ok(rest) if !rest.as_os_str().is_empty() => format!("/{}", relative_string(rest)),
        _ => String::new(),
    }
}
