//! Follows process events from the netlink proc connector
//! ([`crate::netlink::connector`]): qosd classifies the process of an exec,
//! uid, gid or comm event at once, so a new or re-exec'd process lands in
//! its tenant's group within milliseconds rather than at the next rescan.
//!
//! A forked child starts in its parent's cgroup and needs nothing, except
//! when the parent was moved a moment ago: a child forked while its parent
//! was being moved may have stayed behind, so the child of a parent the
//! listener moved within the last second is classified too.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::errno::Errno;

use super::{Classifier, Outcome};
use crate::netlink::connector::{
    ConnectorError, POLL_INTERVAL, ProcEvent, ProcEvents, ReceiveError,
};
use crate::procfs::ProcFs;

/// A parent moved this recently may have forked children that stayed behind.
const RECENT_MOVE: Duration = Duration::from_secs(1);

/// The thread that classifies processes as events arrive. Dropping it (or
/// [`Listener::stop`]) stops the thread within [`POLL_INTERVAL`].
#[derive(Debug)]
pub struct Listener {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Listener {
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// Subscribes to process events (on the caller's thread, so a failure is
/// returned here) and starts the thread `qosd-classify`, which classifies
/// the process of every exec, uid, gid and comm event with the classifier
/// in force (swap it on reload through the lock). Lost events ask the
/// agent for a rescan (`Counters::take_rescan_request`).
pub fn spawn_listener(
    classifier: Arc<RwLock<Classifier>>,
    proc: ProcFs,
) -> Result<Listener, ConnectorError> {
    let events = ProcEvents::open()?;
    let stop = Arc::new(AtomicBool::new(false));
    let thread = std::thread::Builder::new()
        .name("qosd-classify".into())
        .spawn({
            let stop = Arc::clone(&stop);
            move || listen(events, &classifier, &proc, &stop)
        })
        .map_err(|error| {
            ConnectorError::Subscribe(Errno::from_raw(error.raw_os_error().unwrap_or(0)))
        })?;
    Ok(Listener {
        stop,
        thread: Some(thread),
    })
}

fn listen(
    mut events: ProcEvents,
    classifier: &RwLock<Classifier>,
    proc: &ProcFs,
    stop: &AtomicBool,
) {
    let mut recently_moved: HashMap<u32, Instant> = HashMap::new();
    let mut last_prune = Instant::now();
    let mut last_error: Option<Errno> = None;
    while !stop.load(Ordering::Relaxed) {
        let received = events.receive();
        let classifier = classifier.read().unwrap_or_else(PoisonError::into_inner);
        let counters = classifier.counters();
        match received {
            Ok(received) => {
                for event in received {
                    counters.count_event();
                    handle(event, &classifier, proc, &mut recently_moved);
                }
                last_error = None;
            }
            Err(ReceiveError::Overrun) => {
                counters.request_rescan();
                tracing::warn!("process events were lost (socket overrun); asking for a rescan");
            }
            Err(ReceiveError::Io(errno)) => {
                // Log a persistent error once, not every poll.
                if last_error != Some(errno) {
                    tracing::warn!("cannot receive process events: {errno}");
                }
                last_error = Some(errno);
                drop(classifier);
                std::thread::sleep(POLL_INTERVAL);
            }
        }
        if last_prune.elapsed() > RECENT_MOVE {
            recently_moved.retain(|_, moved| moved.elapsed() < RECENT_MOVE);
            last_prune = Instant::now();
        }
    }
}

fn handle(
    event: ProcEvent,
    classifier: &Classifier,
    proc: &ProcFs,
    recently_moved: &mut HashMap<u32, Instant>,
) {
    let pid = match event {
        ProcEvent::Fork {
            parent_tgid,
            child_pid,
            child_tgid,
        } if child_pid == child_tgid
            && recently_moved
                .get(&parent_tgid)
                .is_some_and(|moved| moved.elapsed() < RECENT_MOVE) =>
        {
            child_tgid
        }
        ProcEvent::Exit { pid, tgid } if pid == tgid => {
            recently_moved.remove(&tgid);
            return;
        }
        event => match event.changed_process() {
            Some(pid) => pid,
            None => return,
        },
    };
    if !classifier.is_active() {
        return;
    }
    match classifier.classify_pid(proc, pid) {
        Ok(Outcome::Moved { .. }) => {
            recently_moved.insert(pid, Instant::now());
        }
        Ok(_) => {}
        Err(error) => tracing::warn!(pid, "cannot classify process: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::fake::FakeTree;
    use crate::classify::Counters;
    use crate::classify::tests::{comm, fake_proc, tenant, uid};
    use crate::procfs::process::tests::FakeProcess;

    #[test]
    fn exec_is_classified_and_a_fork_only_after_its_parent_moved() {
        let tree = FakeTree::new();
        tree.add_group("alice");
        let tenants = [tenant("alice", "alice", vec![uid(1001)])];
        let classifier = Classifier::new(tree.hierarchy(), &tenants, Arc::default());
        let (_dir, proc) = fake_proc(&[100, 101, 102].map(|pid| FakeProcess {
            pid,
            ..FakeProcess::default()
        }));
        let procs = || tree.read("alice/cgroup.procs");
        let mut recent = HashMap::new();
        let mut see = |event| handle(event, &classifier, &proc, &mut recent);
        let fork = |parent_tgid, child| ProcEvent::Fork {
            parent_tgid,
            child_pid: child,
            child_tgid: child,
        };
        see(fork(100, 101));
        assert_eq!(procs(), "", "a fork of a parent not moved needs nothing");
        see(ProcEvent::Exec { tgid: 100 });
        assert_eq!(procs(), "100");
        see(fork(100, 101));
        assert_eq!(procs(), "101", "forked while its parent was moved");
        see(ProcEvent::Exit {
            pid: 100,
            tgid: 100,
        });
        see(fork(100, 102));
        assert_eq!(procs(), "101");
        see(ProcEvent::Uid { tgid: 102 });
        assert_eq!(procs(), "102");
        assert_eq!(classifier.counters().moves(), 3);
    }

    /// The listener moves a process at its exec: a link to /bin/sleep with a
    /// name of its own (its comm) is matched, and its PID lands in the fake
    /// tenant group's cgroup.procs. Skipped where the connector is unavailable.
    #[test]
    fn the_listener_moves_a_new_process_at_its_exec() {
        let tree = FakeTree::new();
        let bin = tempfile::tempdir().unwrap();
        let name = format!("qt{}", std::process::id() % 100_000);
        let program = bin.path().join(&name);
        std::os::unix::fs::symlink("/bin/sleep", &program).unwrap();
        let tenants = [tenant("t", "qosd.slice/t", vec![comm(&name)])];
        let counters = Arc::new(Counters::default());
        tree.add_group("qosd.slice/t");
        let c = Classifier::new(tree.hierarchy(), &tenants, Arc::clone(&counters));
        let shared = Arc::new(RwLock::new(c));
        let listener = match spawn_listener(Arc::clone(&shared), ProcFs::default()) {
            Ok(listener) => listener,
            Err(error) => {
                eprintln!("skipped: {error}");
                return;
            }
        };
        let start = Instant::now();
        let mut child = std::process::Command::new(&program)
            .arg("2")
            .spawn()
            .unwrap();
        let pid = child.id().to_string();
        while tree.read("qosd.slice/t/cgroup.procs") != pid
            && start.elapsed() < Duration::from_secs(2)
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        let latency = start.elapsed();
        child.kill().unwrap();
        child.wait().unwrap();
        listener.stop();
        assert_eq!(tree.read("qosd.slice/t/cgroup.procs"), pid);
        assert!(counters.moves() >= 1 && counters.events() > 0);
        eprintln!("spawn to move: {latency:?}");
    }
}
