//! Cgroup paths as /proc/PID/cgroup shows them, against the groups of the
//! configuration (relative to the cgroup root).

use std::path::Path;

use nix::sys::statfs;

/// `qosd.slice/web` from a configured cgroup path (relative, maybe with `.`).
pub(super) fn relative_string(path: &Path) -> String {
    let text = path.to_string_lossy();
    text.trim_matches('/')
        .split('/')
        .filter(|component| !component.is_empty() && *component != ".")
        .collect::<Vec<_>>()
        .join("/")
}

/// `path` (as /proc/PID/cgroup shows it, `/a/b`) relative to the root whose
/// own path is `prefix`; `None` if it is outside.
pub(super) fn strip_prefix<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = path.strip_prefix(prefix)?;
    if rest.is_empty() {
        Some("")
    } else {
        rest.strip_prefix('/')
    }
}

/// `path` is `group` or below it (both relative, no leading '/'); every
/// path is within the root "".
pub(super) fn within(path: &str, group: &str) -> bool {
    group.is_empty()
        || path == group
        || path
            .strip_prefix(group)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Where `root` sits in its cgroup2 mount, as /proc/PID/cgroup would show
/// it: "" for the mount itself (or for a root that is no cgroup2 at all,
/// e.g. a test's fake tree), `/qosd` for `<mount>/qosd`.
pub(super) fn mount_prefix(root: &Path) -> String {
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
