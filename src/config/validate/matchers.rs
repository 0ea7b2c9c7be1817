//! A tenant's `match = [...]`: user and group names resolved to ids,
//! patterns compiled, and the warnings about matchers that can never match
//! because an earlier one covers them.

use toml::Spanned;

use super::{CheckedTenant, Table, validate_entries};
use crate::config::diagnostics::{Diagnostics, join_key};
use crate::config::schema::{IdNumber, Listed, RawMatcher};
use crate::config::{HostFacts, ProcessMatcher, TextPattern};

/// The longest /proc/PID/comm: the kernel keeps 15 bytes of a process name
/// (TASK_COMM_LEN 16 with the NUL) and cuts the rest.
const COMM_MAX_BYTES: usize = 15;

/// The highest uid or gid: (uid_t)-1, 4294967295, means "no id" to the kernel.
const MAX_ID: i128 = u32::MAX as i128 - 1;

/// The keys of a matcher, for "needs at least one key".
const MATCHER_KEYS: &str = "`user` or `uid`, `group` or `gid`, `comm`, `exe`, `cmdline`, `unit`";

/// Each entry of `match = [...]` (`key` is `tenants.NAME.match`): at least
/// one key; `user` or `uid`, not both, and likewise `group` or `gid`; names
/// that exist on this host; patterns that compile. Entries with an error are
/// left out (the tenant is refused anyway).
pub(super) fn validate_matchers(
    entries: &[Listed<RawMatcher>],
    key: &str,
    facts: &HostFacts,
    diagnostics: &mut Diagnostics,
) -> Vec<ProcessMatcher> {
    validate_entries(entries, key, diagnostics, |key, entry, diagnostics| {
        let errors_before = diagnostics.error_count();
        let matcher = validate_matcher(entry.get_ref(), key, facts, diagnostics);
        if matcher == ProcessMatcher::default() && diagnostics.error_count() == errors_before {
            let message = format!(
                "a matcher needs at least one key ({MATCHER_KEYS}); an empty one would match \
                 every process"
            );
            diagnostics.error(key, Some(entry.span()), message);
        }
        if diagnostics.error_count() == errors_before
            && let Some(protected) = (facts.captures_protected)(&matcher)
        {
            let message = format!(
                "this matcher would capture {protected}, which qosd never moves; narrow it \
                 (add `comm`, `exe` or `cmdline`)"
            );
            diagnostics.error(key, Some(entry.span()), message);
        }
        Some(matcher)
    })
}

fn validate_matcher(
    raw: &RawMatcher,
    key: &str,
    facts: &HostFacts,
    diagnostics: &mut Diagnostics,
) -> ProcessMatcher {
    let mut keys = Table { key, diagnostics };
    let user = keys.text(&raw.user, "user", |name| {
        resolve(name, "user", "uid", "getent passwd", facts.resolve_user)
    });
    let uid = keys.check(&raw.uid, "uid", |id| checked_id(*id, "user"));
    let group = keys.text(&raw.group, "group", |name| {
        resolve(name, "group", "gid", "getent group", facts.resolve_group)
    });
    let gid = keys.check(&raw.gid, "gid", |id| checked_id(*id, "group"));
    keys.one_of(&raw.user, "user", &raw.uid, "uid");
    keys.one_of(&raw.group, "group", &raw.gid, "gid");
    ProcessMatcher {
        uid: user.or(uid),
        gid: group.or(gid),
        comm: keys.text(&raw.comm, "comm", comm_pattern),
        exe: keys.text(&raw.exe, "exe", exe_pattern),
        cmdline: keys.text(&raw.cmdline, "cmdline", cmdline_pattern),
        unit: keys.text(&raw.unit, "unit", unit_name),
    }
}

/// The keys of one matcher, the table's key being `tenants.NAME.match[I]`.
impl Table<'_> {
    /// `user` and `uid` (or `group` and `gid`) name the same thing: an error
    /// at the second key when both are written.
    fn one_of<A, B>(
        &mut self,
        first: &Option<Spanned<A>>,
        first_name: &str,
        second: &Option<Spanned<B>>,
        second_name: &str,
    ) {
        if let (Some(_), Some(second)) = (first, second) {
            let message = format!(
                "`{first_name}` and `{second_name}` both name the process's {first_name}: \
                 write one or the other"
            );
            let key = join_key(self.key, second_name);
            self.diagnostics.error(&key, Some(second.span()), message);
        }
    }
}

/// A user or group name, resolved on this host: `what` is "user" or
/// "group", `id_key` the key that names it by id, `lister` the command that
/// lists them.
fn resolve(
    name: &str,
    what: &str,
    id_key: &str,
    lister: &str,
    lookup: fn(&str) -> Result<u32, String>,
) -> Result<u32, String> {
    if name.is_empty() {
        return Err(format!("a {what} name must not be empty"));
    }
    lookup(name).map_err(|reason| match name.parse::<u32>() {
        Ok(id) => format!("{reason}; to match the {what} id {id}, write `{id_key} = {id}`"),
        Err(_) => format!(
            "{reason} (`{lister}` lists them; `{id_key} = N` matches an id that has no name)"
        ),
    })
}

fn checked_id(id: IdNumber, what: &str) -> Result<u32, String> {
    match u32::try_from(id.0) {
        Ok(id) if i128::from(id) <= MAX_ID => Ok(id),
        _ => Err(format!(
            "a {what} id is a whole number from 0 to {MAX_ID}, got {}",
            id.0
        )),
    }
}

fn non_empty(text: &str, what: &str) -> Result<(), String> {
    if text.is_empty() {
        Err(format!("{what} must not be empty"))
    } else {
        Ok(())
    }
}

/// /proc/PID/comm: exact or glob. An exact name longer than the kernel keeps
/// could never match.
fn comm_pattern(text: &str) -> Result<TextPattern, String> {
    non_empty(text, "a process name")?;
    let pattern = TextPattern::exact_or_glob(text)?;
    if pattern.is_exact() && text.len() > COMM_MAX_BYTES {
        let mut cut = COMM_MAX_BYTES;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        return Err(format!(
            "the kernel keeps only the first {COMM_MAX_BYTES} bytes of a process name, so \
             {text:?} never matches: write {:?}, or match the whole name with `exe` or `cmdline`",
            &text[..cut]
        ));
    }
    Ok(pattern)
}

/// /proc/PID/exe is an absolute path: a pattern that cannot start with `/`
/// never matches.
fn exe_pattern(text: &str) -> Result<TextPattern, String> {
    non_empty(text, "an executable path")?;
    let pattern = TextPattern::exact_or_glob(text)?;
    if !text.starts_with(['/', '*', '?', '[']) {
        return Err(format!(
            "`exe` is matched against the executable's absolute path (/proc/PID/exe), so \
             {text:?} never matches: write a path such as \"/usr/bin/{text}\" or a glob such \
             as \"*/{text}\""
        ));
    }
    Ok(pattern)
}

/// A regular expression, searched anywhere in the command line.
fn cmdline_pattern(text: &str) -> Result<TextPattern, String> {
    if text.is_empty() {
        return Err(
            "an empty regular expression matches every process; write what the command line \
             contains, such as \"--role=web\""
                .to_owned(),
        );
    }
    TextPattern::regex(text)
}

/// A systemd unit or slice: one name, not a cgroup path.
fn unit_name(text: &str) -> Result<String, String> {
    non_empty(text, "a unit name")?;
    if text.contains('/') || text == "." || text == ".." || text.contains('\0') {
        return Err(format!(
            "{text:?} is not a unit name: `unit` names one systemd unit or slice, such as \
             \"nginx.service\" or \"user-1001.slice\", not a path (to adopt a cgroup, write \
             `cgroup = ...` instead of `match`)"
        ));
    }
    Ok(text.to_owned())
}

/// Whether every process `later` matches is matched by `earlier`: each key
/// of `earlier` is in `later` with the same value, or, for `comm` and `exe`,
/// `earlier` is a glob that matches `later`'s exact string.
pub(super) fn covers(earlier: &ProcessMatcher, later: &ProcessMatcher) -> bool {
    fn same<T: PartialEq>(earlier: &Option<T>, later: &Option<T>) -> bool {
        earlier.is_none() || earlier == later
    }
    fn pattern(earlier: &Option<TextPattern>, later: &Option<TextPattern>) -> bool {
        match (earlier, later) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(earlier), Some(later)) => {
                earlier == later || (later.is_exact() && earlier.matches(later.source()))
            }
        }
    }
    same(&earlier.uid, &later.uid)
        && same(&earlier.gid, &later.gid)
        && same(&earlier.unit, &later.unit)
        && pattern(&earlier.comm, &later.comm)
        && pattern(&earlier.exe, &later.exe)
        && pattern(&earlier.cmdline, &later.cmdline)
}

/// Tenants, and their matchers, are tried in file order and the first match
/// wins: a matcher that an earlier one covers never gets a process. Called
/// only when every tenant validated, so a matcher's position is its index
/// in the file.
pub(super) fn warn_about_covered_matchers(
    tenants: &[CheckedTenant],
    diagnostics: &mut Diagnostics,
) {
    let all: Vec<(&str, usize, &ProcessMatcher)> = tenants
        .iter()
        .flat_map(|checked| {
            let name = checked.tenant.name.as_str();
            let matchers = checked.tenant.matchers.iter().enumerate();
            matchers.map(move |(index, matcher)| (name, index, matcher))
        })
        .collect();
    for (position, (tenant, index, matcher)) in all.iter().enumerate() {
        let earlier = all[..position]
            .iter()
            .find(|(_, _, earlier)| covers(earlier, matcher));
        let Some((earlier_tenant, earlier_index, _)) = earlier else {
            continue;
        };
        let place = |tenant: &str, index: usize| {
            format!(
                "{}[{index}]",
                join_key(&join_key("tenants", tenant), "match")
            )
        };
        let advice = if earlier_tenant == tenant {
            "remove it".to_owned()
        } else {
            format!(
                "remove it, narrow the earlier matcher, or declare tenant `{tenant}` before \
                 tenant `{earlier_tenant}`"
            )
        };
        diagnostics.warn(format!(
            "`{}` is covered by `{}`, so it never matches: tenants and their matchers are \
             tried in file order and the first match wins; {advice}",
            place(tenant, *index),
            place(earlier_tenant, *earlier_index)
        ));
    }
}
