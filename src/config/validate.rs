//! From the raw schema to a [`Config`]: units, ranges, paths and the checks
//! that span several keys. Every error is recorded and checking goes on, so
//! one `qosd check` lists all the problems of a file.

mod cpu;
mod disks;
mod matchers;
mod memory;
mod net;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use cpu::{check_cpu_capacity, check_reserved_cpu, cores, validate_cpu_contract};
use disks::{check_disk_capacity, validate_disk_contracts, validate_disks};
use matchers::{validate_matchers, warn_about_covered_matchers};
use memory::{check_memory_capacity, validate_memory_contract, validate_reserved_memory};
use net::{NetChecks, SeenVeth, check_link_capacity, validate_links};

use super::diagnostics::{Diagnostics, Span, join_key};
use super::schema::{Listed, RawAgent, RawConfig, RawHost, RawTenant, RawTenantEntry, Weight};
use super::units::{format_number, parse_interval};
use super::{
    AgentConfig, Config, Cores, DiskCapacity, HostConfig, HostFacts, LinkCapacity, Tenant,
    ZERO_BASELINE_WEIGHT,
};

const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
const DEFAULT_CGROUP_ROOT: &str = "/sys/fs/cgroup";
const DEFAULT_PARENT: &str = "qosd.slice";
const DEFAULT_METRICS_LISTEN: ([u8; 4], u16) = ([127, 0, 0, 1], 9477);
const DEFAULT_CONTENTION_THRESHOLD: f64 = 0.9;
/// Kept out of the tenants' memory baselines: the kernel, qosd and the
/// system's own services need some.
const DEFAULT_RESERVED_MEMORY: u64 = 256 * 1024 * 1024;
/// Longest cgroup directory name (NAME_MAX); a tenant name becomes one.
const MAX_TENANT_NAME_BYTES: usize = 255;
/// Rates such as "1.1MiB/s" or "1.1Mbit/s" are not whole numbers, and sums
/// of those are not exact in binary either.
const RELATIVE_SLACK: f64 = 1e-9;

/// A validated tenant with where it came from, for the checks across tenants.
struct CheckedTenant {
    tenant: Tenant,
    /// `tenants.NAME.cgroup` when adopted, `tenants.NAME` when qosd owns it.
    cgroup_key: String,
    cgroup_span: Span,
}

pub(super) fn validate(
    raw: &RawConfig,
    facts: &HostFacts,
    diagnostics: &mut Diagnostics,
) -> Config {
    let agent = validate_agent(&raw.agent, diagnostics);
    let errors_before_host = diagnostics.error_count();
    let mut host = validate_host(&raw.host, facts, diagnostics);
    let host_is_valid = diagnostics.error_count() == errors_before_host;
    let errors_before_disks = diagnostics.error_count();
    host.disks = validate_disks(&raw.disks, facts, diagnostics);
    // Tenants' disks are checked against the host's only when all of those
    // are known: a device whose entry has an error is not "undeclared".
    let disks_are_valid = raw.disks_decoded && diagnostics.error_count() == errors_before_disks;
    let declared_disks = disks_are_valid.then_some(host.disks.as_slice());
    let errors_before_links = diagnostics.error_count();
    host.links = validate_links(&raw.links, facts, diagnostics);
    // Likewise for links: an interface whose entry has an error is not
    // "undeclared".
    let links_are_valid = raw.links_decoded && diagnostics.error_count() == errors_before_links;
    let declared = Declared {
        disks: declared_disks,
        links: links_are_valid.then_some(host.links.as_slice()),
    };
    let mut veths = Vec::new();
    let tenants: Vec<CheckedTenant> = raw
        .tenants
        .iter()
        .filter_map(|entry| {
            validate_tenant(entry, &agent, &declared, &mut veths, facts, diagnostics)
        })
        .collect();

    // Totals and overlaps are only meaningful when every tenant is known.
    if raw.complete && tenants.len() == raw.tenants.len() {
        check_cgroup_overlaps(&tenants, diagnostics);
        let overcommit_span = raw.host.allow_overcommit.as_ref().map(Spanned::span);
        if host_is_valid {
            check_cpu_capacity(&tenants, &host, facts, overcommit_span.clone(), diagnostics);
        }
        if disks_are_valid {
            check_disk_capacity(&tenants, &host, overcommit_span.clone(), diagnostics);
        }
        if links_are_valid {
            check_link_capacity(&tenants, &host, overcommit_span.clone(), diagnostics);
        }
        if host_is_valid {
            check_memory_capacity(&tenants, &host, facts, overcommit_span, diagnostics);
        }
        warn_about_idle_tenants(&tenants, diagnostics);
        warn_about_covered_matchers(&tenants, diagnostics);
        net::warn_about_unmatchable_cgroups(&tenants, &agent, diagnostics);
    }
    Config {
        agent,
        host,
        tenants: tenants.into_iter().map(|checked| checked.tenant).collect(),
    }
}

/// The host's disks and links that the tenants' contracts are checked
/// against; `None` when their declarations have errors.
struct Declared<'a> {
    disks: Option<&'a [DiskCapacity]>,
    links: Option<&'a [LinkCapacity]>,
}

/// The optional keys of one table (`agent`, `host`, a matcher), checked one
/// by one. A key that is absent, or whose value has an error, gives `None`
/// (and the file is refused in the second case).
struct Table<'a> {
    /// The table's dotted key, such as `agent` or `tenants.web.match[0]`.
    key: &'a str,
    diagnostics: &'a mut Diagnostics,
}

impl Table<'_> {
    /// The value of key `name` checked by `check`, or `None`.
    fn check<R, T, E: fmt::Display>(
        &mut self,
        field: &Option<Spanned<R>>,
        name: &str,
        check: impl FnOnce(&R) -> Result<T, E>,
    ) -> Option<T> {
        let field = field.as_ref()?;
        check_field(field, &join_key(self.key, name), self.diagnostics, check)
    }

    /// The value of string key `name` checked by `check`, or `None`.
    fn text<R: AsRef<str>, T>(
        &mut self,
        field: &Option<Spanned<R>>,
        name: &str,
        check: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        self.check(field, name, |text| check(text.as_ref()))
    }
}

/// The value of a required `field` checked by `check`, or `None` once its
/// error is recorded at `key`.
fn check_field<R, T, E: fmt::Display>(
    field: &Spanned<R>,
    key: &str,
    diagnostics: &mut Diagnostics,
    check: impl FnOnce(&R) -> Result<T, E>,
) -> Option<T> {
    diagnostics.ok_or_record(key, field.span(), check(field.get_ref()))
}

/// Each entry of a list (`key` is the list's, such as `host.disks`), checked
/// by `validate` under its own key (`host.disks[0]`); the values of the
/// entries that recorded no error, in file order.
fn validate_entries<R, T>(
    entries: &[Listed<R>],
    key: &str,
    diagnostics: &mut Diagnostics,
    mut validate: impl FnMut(&str, &Spanned<R>, &mut Diagnostics) -> Option<T>,
) -> Vec<T> {
    let mut valid = Vec::new();
    for Listed { index, entry } in entries {
        let key = format!("{key}[{index}]");
        let errors_before = diagnostics.error_count();
        let value = validate(&key, entry, diagnostics);
        if let Some(value) = value
            && diagnostics.error_count() == errors_before
        {
            valid.push(value);
        }
    }
    valid
}

/// The entry of `seen` that `is_same` finds, for "named twice" errors;
/// when there is none, `new()` is recorded and `None` returned.
fn record_first<T>(
    seen: &mut Vec<T>,
    is_same: impl Fn(&T) -> bool,
    new: impl FnOnce() -> T,
) -> Option<&T> {
    match seen.iter().position(is_same) {
        Some(index) => seen.get(index),
        None => {
            seen.push(new());
            None
        }
    }
}

/// What a "not declared" error lists of what is: "declared: a, b", or
/// "no device is declared yet" (`what` being "device").
fn declared_list(names: Vec<String>, what: &str) -> String {
    if names.is_empty() {
        format!("no {what} is declared yet")
    } else {
        format!("declared: {}", names.join(", "))
    }
}

/// Whether `value` is more than `capacity`, beyond rounding.
fn exceeds(value: f64, capacity: f64) -> bool {
    value > capacity + capacity.abs() * RELATIVE_SLACK
}

fn validate_agent(raw: &RawAgent, diagnostics: &mut Diagnostics) -> AgentConfig {
    let mut agent = Table {
        key: "agent",
        diagnostics,
    };
    let interval = agent.text(&raw.interval, "interval", parse_interval);
    let cgroup_root = agent.text(&raw.cgroup_root, "cgroup_root", absolute_path);
    let parent = agent.text(&raw.parent, "parent", relative_cgroup_path);
    let metrics_listen = agent.text(&raw.metrics_listen, "metrics_listen", socket_address);
    AgentConfig {
        interval: interval.unwrap_or(DEFAULT_INTERVAL),
        cgroup_root: cgroup_root.unwrap_or_else(|| PathBuf::from(DEFAULT_CGROUP_ROOT)),
        parent: parent.unwrap_or_else(|| PathBuf::from(DEFAULT_PARENT)),
        metrics_listen: metrics_listen.unwrap_or_else(|| SocketAddr::from(DEFAULT_METRICS_LISTEN)),
    }
}

fn absolute_path(text: &str) -> Result<PathBuf, String> {
    let path = Path::new(text);
    if !path.is_absolute() {
        return Err(format!(
            r#"{text:?} must be an absolute path, such as "/sys/fs/cgroup""#
        ));
    }
    if path.components().any(|part| part == Component::ParentDir) {
        return Err(format!("{text:?} must not contain `..`"));
    }
    // Collecting the components drops a trailing `/` and repeated slashes.
    Ok(path.components().collect())
}

/// A cgroup below `agent.cgroup_root`. It must stay inside that root: qosd
/// joins it to the root and writes limits there.
fn relative_cgroup_path(text: &str) -> Result<PathBuf, String> {
    if text.contains('\0') {
        return Err(format!("{text:?} must not contain a NUL character"));
    }
    let mut path = PathBuf::new();
    for part in Path::new(text).components() {
        match part {
            Component::Normal(name) => path.push(name),
            Component::CurDir => {}
            Component::ParentDir => return Err(format!("{text:?} must not contain `..`")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!(
                    "{text:?} must be relative to `agent.cgroup_root`; remove the leading `/`"
                ));
            }
        }
    }
    if path.as_os_str().is_empty() {
        return Err(format!(
            "{text:?} must name a cgroup below `agent.cgroup_root`, not the root itself"
        ));
    }
    Ok(path)
}

fn socket_address(text: &str) -> Result<SocketAddr, String> {
    text.trim().parse().map_err(|_| {
        format!(
            r#"invalid address {text:?}: write IP:PORT, such as "127.0.0.1:9477" or "[::1]:9477""#
        )
    })
}

/// The CPU and memory part of `[host]`; its disks are checked by [`validate_disks`] and
/// its links by [`validate_links`].
fn validate_host(raw: &RawHost, facts: &HostFacts, diagnostics: &mut Diagnostics) -> HostConfig {
    let mut host = Table {
        key: "host",
        diagnostics,
    };
    let reserved_cpu = host.check(&raw.reserved_cpu, "reserved_cpu", cores);
    let reserved_cpu = reserved_cpu.unwrap_or(Cores(0.0));
    check_reserved_cpu(reserved_cpu, raw, facts, host.diagnostics);
    let contention_threshold = host
        .check(
            &raw.contention_threshold,
            "contention_threshold",
            |fraction| contention_threshold(fraction.0),
        )
        .unwrap_or(DEFAULT_CONTENTION_THRESHOLD);
    let reserved_memory =
        validate_reserved_memory(raw, DEFAULT_RESERVED_MEMORY, facts, diagnostics);
    HostConfig {
        reserved_cpu,
        contention_threshold,
        disks: Vec::new(),
        links: Vec::new(),
        reserved_memory,
        // Overcommitment is allowed unless refused: a warning is enough for a
        // host whose tenants rarely peak together.
        allow_overcommit: raw
            .allow_overcommit
            .as_ref()
            .is_none_or(|allow| *allow.get_ref()),
    }
}

/// The share of capacity in use above which a resource counts as contended.
/// 0 would mean "always contended" and more than 1 "never": both are mistakes.
fn contention_threshold(threshold: f64) -> Result<f64, String> {
    if threshold > 0.0 && threshold <= 1.0 {
        Ok(threshold)
    } else {
        Err(format!(
            "{} is out of range: the threshold is a fraction of capacity, more than 0 and at most 1 (such as 0.9)",
            format_number(threshold)
        ))
    }
}

fn validate_tenant(
    entry: &RawTenantEntry,
    agent: &AgentConfig,
    declared: &Declared,
    veths: &mut Vec<SeenVeth>,
    facts: &HostFacts,
    diagnostics: &mut Diagnostics,
) -> Option<CheckedTenant> {
    let errors_before = diagnostics.error_count();
    let name = entry.name.get_ref();
    let key = join_key("tenants", name);
    check_tenant_name(name, &key, entry.name.span(), diagnostics);
    // Checked even when the rest of the table did not decode.
    let disk = validate_disk_contracts(
        &entry.disk,
        &join_key(&key, "disk"),
        declared.disks,
        facts,
        diagnostics,
    );
    let net_checks = NetChecks {
        key: &join_key(&key, "net"),
        tenant: name,
        declared: declared.links,
        facts,
    };
    let net = net_checks.validate(&entry.net, veths, diagnostics);
    let match_key = join_key(&key, "match");
    let matchers = validate_matchers(&entry.matchers, &match_key, facts, diagnostics);
    let body = entry.body.as_ref()?;
    let owned = agent.parent.join(name);
    check_match_ownership(body, entry, &match_key, &owned, diagnostics);
    let (cgroup, cgroup_key, cgroup_span) = match &body.cgroup {
        Some(path) => {
            let cgroup_key = join_key(&key, "cgroup");
            let cgroup = check_field(path, &cgroup_key, diagnostics, |text| {
                relative_cgroup_path(&text.0)
            });
            (cgroup.unwrap_or_default(), cgroup_key, path.span())
        }
        None => (agent.parent.join(name), key.clone(), entry.name.span()),
    };
    let cpu = body
        .cpu
        .as_ref()
        .and_then(|contract| validate_cpu_contract(contract, &join_key(&key, "cpu"), diagnostics));
    let memory = body.memory.as_ref().and_then(|contract| {
        validate_memory_contract(contract, &join_key(&key, "memory"), diagnostics)
    });
    let tenant = Tenant {
        name: name.clone(),
        cgroup,
        adopted: body.cgroup.is_some(),
        cpu,
        disk,
        net,
        memory,
        matchers,
    };
    (diagnostics.error_count() == errors_before).then_some(CheckedTenant {
        tenant,
        cgroup_key,
        cgroup_span,
    })
}

/// Names become cgroup directory names and Prometheus label values, so they
/// are kept to characters that are safe in both.
fn check_tenant_name(name: &str, key: &str, span: Span, diagnostics: &mut Diagnostics) {
    let allowed = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    let problem = if name.is_empty() {
        Some("a tenant name must not be empty".to_owned())
    } else if !name.chars().all(allowed) {
        Some(format!(
            "invalid tenant name {name:?}: use only letters, digits, `_` and `-` \
             (the name becomes a cgroup directory and a metrics label)"
        ))
    } else if name.len() > MAX_TENANT_NAME_BYTES {
        Some(format!(
            "the tenant name is longer than {MAX_TENANT_NAME_BYTES} bytes, the limit for a cgroup directory name"
        ))
    } else {
        None
    };
    if let Some(message) = problem {
        diagnostics.error(key, Some(span), message);
    }
}

/// A tenant with `match` owns its group, so it cannot adopt one too; an
/// empty `match` moves nothing into it (a warning). `owned` is the group it
/// would own.
fn check_match_ownership(
    body: &RawTenant,
    entry: &RawTenantEntry,
    key: &str,
    owned: &Path,
    diagnostics: &mut Diagnostics,
) {
    let Some(matchers) = &body.match_processes else {
        return;
    };
    if body.cgroup.is_some() {
        let message = format!(
            "matched processes are moved into a group qosd owns ({}); adopt a cgroup or match \
             processes, not both: remove `cgroup`, or remove `match` and put the processes in \
             the adopted cgroup yourself",
            owned.display()
        );
        diagnostics.error(key, Some(matchers.span()), message);
    } else if entry.matchers.is_empty() {
        diagnostics.warn(format!(
            "`{key}` is empty: no process is moved into tenant `{}`",
            entry.name.get_ref()
        ));
    }
}

/// The burst is a ceiling: a baseline above it is refused, both shown in
/// their unit by `show`.
fn baseline_within_burst<U: PartialOrd + Copy>(
    baseline: U,
    burst: U,
    show: impl Fn(U) -> String,
) -> Result<(), String> {
    if baseline > burst {
        return Err(format!(
            "the baseline of {} is more than the burst of {}; \
             the burst is a ceiling, so it must be at least the baseline",
            show(baseline),
            show(burst)
        ));
    }
    Ok(())
}

/// Weights map to cpu.weight (and io.weight) as 100 per unit, and both span
/// 1..=10000: outside this range the kernel's weight and the policy's would
/// disagree.
pub const WEIGHT_RANGE: std::ops::RangeInclusive<f64> = 0.01..=100.0;

/// An explicit weight; `controller` names the kernel file it maps to
/// (`cpu` for cpu.weight, `io` for io.weight).
fn positive_weight(
    weight: &Spanned<Weight>,
    key: &str,
    controller: &str,
    diagnostics: &mut Diagnostics,
) -> Option<f64> {
    let value = weight.get_ref().0;
    if WEIGHT_RANGE.contains(&value) {
        return Some(value);
    }
    let message = format!(
        "the weight must be between {} and {} ({controller}.weight 1..10000), got {}",
        WEIGHT_RANGE.start(),
        WEIGHT_RANGE.end(),
        format_number(value)
    );
    diagnostics.error(key, Some(weight.span()), message);
    None
}

/// The weight defaults to the baseline (in cores, or bits/s for a link). A
/// zero baseline would give a zero weight, which the policy divides by, so it
/// gets a small positive one.
fn default_weight(baseline: f64) -> f64 {
    if baseline > 0.0 {
        baseline
    } else {
        ZERO_BASELINE_WEIGHT
    }
}

/// Two tenants whose cgroups are the same or nested would count the inner
/// tenant's usage twice and fight over its limits.
fn check_cgroup_overlaps(tenants: &[CheckedTenant], diagnostics: &mut Diagnostics) {
    for (index, later) in tenants.iter().enumerate() {
        let cgroup = &later.tenant.cgroup;
        let earlier = tenants[..index].iter().find(|earlier| {
            let other = &earlier.tenant.cgroup;
            cgroup.starts_with(other) || other.starts_with(cgroup)
        });
        if let Some(earlier) = earlier {
            let message = format!(
                "cgroup `{}` overlaps tenant `{}`'s cgroup `{}`; tenants' cgroups must be \
                 distinct and not nested in one another",
                cgroup.display(),
                earlier.tenant.name,
                earlier.tenant.cgroup.display()
            );
            diagnostics.error(&later.cgroup_key, Some(later.cgroup_span.clone()), message);
        }
    }
}

fn warn_about_idle_tenants(tenants: &[CheckedTenant], diagnostics: &mut Diagnostics) {
    if tenants.is_empty() {
        diagnostics.warn("no tenants are configured: qosd will only report host metrics");
    }
    let idle = |tenant: &Tenant| {
        tenant.cpu.is_none()
            && tenant.disk.is_empty()
            && tenant.net.is_empty()
            && tenant.memory.is_none()
    };
    for checked in tenants.iter().filter(|checked| idle(&checked.tenant)) {
        diagnostics.warn(format!(
            "tenant `{}` has no cpu, disk, net or memory contract: qosd will only report its usage",
            checked.tenant.name
        ));
    }
}

/// Overcommitted baselines (CPU, a disk's dimension, a link's egress,
/// memory): a
/// warning, or an error where `host.allow_overcommit = false` refuses it.
fn report_overcommitment(
    message: String,
    host: &HostConfig,
    overcommit_span: Option<Span>,
    diagnostics: &mut Diagnostics,
) {
    if host.allow_overcommit {
        diagnostics.warn(format!(
            "{message}; under full contention some tenants will get less than their baseline"
        ));
    } else {
        diagnostics.error(
            "host.allow_overcommit",
            overcommit_span,
            format!("{message}; lower the baselines or set `host.allow_overcommit = true`"),
        );
    }
}
