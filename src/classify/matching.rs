//! Whether a matcher holds for a process, reading only the parts of the
//! process its keys need, cheapest first.

use crate::config::{ProcessMatcher, TextPattern};
use crate::procfs::{ProcError, ProcFs, ProcessFields, ProcessInfo};

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

/// A process whose parts are read when a key first needs them: most
/// processes fail their first key, and each /proc file costs ~10 µs.
pub(super) trait Parts {
    /// Makes sure `fields` are in `info()`; `Ok(false)` if the process is gone.
    fn ensure(&mut self, fields: ProcessFields) -> Result<bool, ProcError>;
    fn info(&self) -> &ProcessInfo;
}

/// A process read whole (or as far as the caller chose).
pub(super) struct Complete<'a>(pub &'a ProcessInfo);

impl Parts for Complete<'_> {
    fn ensure(&mut self, _: ProcessFields) -> Result<bool, ProcError> {
        Ok(true)
    }

    fn info(&self) -> &ProcessInfo {
        self.0
    }
}

/// A process of which nothing was read so far.
pub(super) struct Lazy<'a> {
    proc: &'a ProcFs,
    info: ProcessInfo,
    read: ProcessFields,
    /// Some matcher looks at ids: for comm, read status (which gives comm
    /// too) rather than /proc/PID/comm, and the ids come with it.
    prefer_status: bool,
}

impl<'a> Lazy<'a> {
    pub fn new(proc: &'a ProcFs, pid: u32, prefer_status: bool) -> Self {
        Lazy {
            proc,
            info: ProcessInfo {
                pid,
                ..ProcessInfo::default()
            },
            read: ProcessFields::NONE,
            prefer_status,
        }
    }

    /// What was read of the process.
    pub fn into_info(self) -> ProcessInfo {
        self.info
    }
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

/// The keys of a matcher.
#[derive(Debug, Clone, Copy)]
enum Key {
    Comm,
    Exe,
    Cmdline,
    Unit,
    /// uid and gid, both from status.
    Ids,
}

impl Key {
    /// From the cheapest part to read (comm, from /proc/PID/comm) to the
    /// dearest (status).
    const CHEAPEST_FIRST: [Key; 5] = [Key::Comm, Key::Exe, Key::Cmdline, Key::Unit, Key::Ids];

    fn in_matcher(self, matcher: &ProcessMatcher) -> bool {
        match self {
            Key::Comm => matcher.comm.is_some(),
            Key::Exe => matcher.exe.is_some(),
            Key::Cmdline => matcher.cmdline.is_some(),
            Key::Unit => matcher.unit.is_some(),
            Key::Ids => matcher.uid.is_some() || matcher.gid.is_some(),
        }
    }

    /// The part of the process the key looks at.
    fn reads(self) -> ProcessFields {
        let mut fields = ProcessFields::NONE;
        match self {
            Key::Comm => fields.comm = true,
            Key::Exe => fields.exe = true,
            Key::Cmdline => fields.cmdline = true,
            Key::Unit => fields.cgroup = true,
            Key::Ids => fields.ids = true,
        }
        fields
    }

    /// Whether the key holds for `process`, which has the part it reads.
    fn holds(
        self,
        matcher: &ProcessMatcher,
        process: &ProcessInfo,
        unit_held: &dyn Fn(&ProcessInfo) -> bool,
    ) -> bool {
        match self {
            Key::Comm => text_holds(&matcher.comm, Some(&process.comm)),
            Key::Exe => text_holds(&matcher.exe, process.exe.as_deref()),
            Key::Cmdline => text_holds(&matcher.cmdline, process.cmdline.as_deref()),
            Key::Unit => {
                let in_unit = |unit: &str| {
                    let path = process.cgroup.as_deref();
                    path.is_some_and(|path| path.split('/').any(|component| component == unit))
                };
                matcher.unit.as_deref().is_none_or(in_unit) || unit_held(process)
            }
            Key::Ids => id_holds(matcher.uid, process.uid) && id_holds(matcher.gid, process.gid),
        }
    }
}

fn text_holds(pattern: &Option<TextPattern>, have: Option<&str>) -> bool {
    pattern
        .as_ref()
        .is_none_or(|pattern| have.is_some_and(|have| pattern.matches(have)))
}

fn id_holds(want: Option<u32>, have: Option<u32>) -> bool {
    want.is_none_or(|want| have == Some(want))
}

/// Whether `matcher` holds, reading the parts its keys need from the
/// cheapest to the dearest; `Ok(None)` if the process vanished meanwhile.
///
/// `unit_held(process)`: the process sits in the group of the tenant this
/// matcher belongs to. Moving it there took it out of its unit's cgroup,
/// so the path no longer shows the unit; the unit key still counts as
/// held, or a process would match on one scan and not the next.
pub(super) fn holds(
    matcher: &ProcessMatcher,
    parts: &mut dyn Parts,
    unit_held: &dyn Fn(&ProcessInfo) -> bool,
) -> Result<Option<bool>, ProcError> {
    let keys = Key::CHEAPEST_FIRST.into_iter();
    for key in keys.filter(|key| key.in_matcher(matcher)) {
        if !parts.ensure(key.reads())? {
            return Ok(None);
        }
        if !key.holds(matcher, parts.info(), unit_held) {
            return Ok(Some(false));
        }
    }
    Ok(Some(true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::tests::{comm, glob, matcher, process, uid, unit};

    #[test]
    fn each_matcher_key() {
        let p = process();
        let check = |matcher: ProcessMatcher| matches(&matcher, &p);
        assert!(check(ProcessMatcher::default()), "no keys: everything");
        assert!(check(uid(1001)) && !check(uid(1002)));
        let gid = |gid| matcher(|m| m.gid = Some(gid));
        assert!(check(gid(100)) && !check(gid(0)));
        assert!(check(comm("python3")) && check(comm("py*")) && !check(comm("python")));
        let exe = |pattern| matcher(|m| m.exe = Some(glob(pattern)));
        assert!(check(exe("/usr/bin/python3*")) && !check(exe("/opt/*")));
        let cmdline = |pattern| matcher(|m| m.cmdline = Some(TextPattern::regex(pattern).unwrap()));
        assert!(check(cmdline(r"http\.server \d+$")) && !check(cmdline("^java")));
        assert!(check(unit("web.service")) && check(unit("system.slice")));
        assert!(!check(unit("web")), "a unit is a whole path component");
    }

    #[test]
    fn every_key_must_hold_and_unknown_parts_do_not_match() {
        let p = process();
        let both = ProcessMatcher {
            uid: Some(1001),
            ..comm("java")
        };
        assert!(!matches(&both, &p));
        let kernel = ProcessInfo {
            uid: None,
            exe: None,
            cgroup: None,
            ..process()
        };
        assert!(!matches(&uid(1001), &kernel));
        assert!(!matches(&matcher(|m| m.exe = Some(glob("*"))), &kernel));
        assert!(!matches(&unit("web.service"), &kernel));
    }
}
