//! Processes qosd must never move, checked when a configuration is read:
//! a matcher that would capture PID 1 or qosd itself is refused there, not
//! just skipped at run time, because it means the matcher is far wider than
//! its author thought.

use crate::config::ProcessMatcher;
use crate::procfs::{ProcFs, ProcessInfo};

use super::matches;

/// What `matcher` would capture of the processes that must never move on
/// this host ("PID 1 (systemd)", "qosd itself (pid 4242)"), if any.
pub fn captures_protected(matcher: &ProcessMatcher) -> Option<String> {
    let proc = ProcFs::default();
    let protected = [(1, "PID 1"), (std::process::id(), "qosd itself")];
    protected.into_iter().find_map(|(pid, what)| {
        let process = proc.read_process(pid).ok().flatten()?;
        matches(matcher, &process).then(|| describe(what, &process))
    })
}

/// The same check against processes given (a fake host's).
pub fn captures_any(matcher: &ProcessMatcher, protected: &[(&str, ProcessInfo)]) -> Option<String> {
    protected
        .iter()
        .find(|(_, process)| matches(matcher, process))
        .map(|(what, process)| describe(what, process))
}

fn describe(what: &str, process: &ProcessInfo) -> String {
    format!("{what} ({}, pid {})", process.comm, process.pid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TextPattern;

    #[test]
    fn a_matcher_wide_enough_to_take_pid_1_or_qosd_is_named() {
        let init = ProcessInfo {
            pid: 1,
            comm: "systemd".into(),
            uid: Some(0),
            ..ProcessInfo::default()
        };
        let protected = [("PID 1", init)];
        let root = ProcessMatcher {
            uid: Some(0),
            ..ProcessMatcher::default()
        };
        assert_eq!(
            captures_any(&root, &protected).as_deref(),
            Some("PID 1 (systemd, pid 1)")
        );
        let nginx = ProcessMatcher {
            comm: TextPattern::exact_or_glob("nginx").ok(),
            ..ProcessMatcher::default()
        };
        assert_eq!(captures_any(&nginx, &protected), None);
    }

    #[test]
    fn this_test_process_is_protected_from_a_matcher_of_its_own_user() {
        // The test runs as some user; a matcher of that uid would take "qosd
        // itself" (here the test binary, which plays qosd's part).
        let me = ProcFs::default()
            .read_process(std::process::id())
            .unwrap()
            .unwrap();
        let mine = ProcessMatcher {
            uid: me.uid,
            ..ProcessMatcher::default()
        };
        assert!(captures_protected(&mine).is_some());
    }
}
