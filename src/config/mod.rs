//! TOML contracts: schema, units and validation. The only module that knows TOML.
//!
//! Reading a file goes through four steps, each in its own file:
//!
//! 1. `toml` parses the text into a span-preserving tree (syntax errors stop here).
//! 2. [`schema`] decodes each section and each tenant with serde into *raw*
//!    types that keep the text's spans. Sections, tenants and list entries
//!    (`[[host.disks]]`, `[[host.links]]`, a tenant's `disk = [...]` and
//!    `net = [...]`) are decoded one by one so a mistake in one does not hide
//!    the mistakes in the others.
//! 3. [`validate`] turns the raw types into [`Config`]: units, ranges, paths,
//!    cross-checks (baseline ≤ burst, overcommitment), collecting every error.
//! 4. [`diagnostics`] renders the errors like a compiler:
//!    `path:line:col: error: `dotted.key`: message`, one per line.

mod devices;
mod diagnostics;
mod pattern;
mod schema;
mod summary;
#[cfg(test)]
mod tests;
mod units;
mod validate;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use crate::cgroup::io::DeviceNumber;
pub use devices::{check_device_syntax, check_interface_name, parse_device_number};
use diagnostics::Diagnostics;
pub use pattern::TextPattern;
pub use units::{
    CoresError, RateError, SizeError, format_bits_per_second, format_bytes,
    format_bytes_per_second, parse_bytes,
};

pub const DEFAULT_PATH: &str = "/etc/qosd/qosd.toml";

/// Where nftables looks up `socket cgroupv2` paths (compiled into nft): a
/// tenant's own traffic can be classified only if its group lives here.
pub const NFTABLES_CGROUP_MOUNT: &str = "/sys/fs/cgroup";

/// CPU cores (1.0 = one CPU). Parsed from a float or a string like "500m".
///
/// `"1.5".parse::<Cores>()` accepts the same strings as the configuration file
/// (`"1.5"`, `"2"`, `"500m"`); [`Cores::new`] checks a plain number. `Display`
/// prints at most three decimals and at least one (`1.5`, `2.0`, `0.125`).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct Cores(pub f64);

impl Cores {
    pub fn get(self) -> f64 {
        self.0
    }
}

/// A byte rate in bytes per second, parsed from a number of bytes per second
/// or a string like "50MiB/s".
///
/// `"50MiB/s".parse::<BytesPerSecond>()` accepts the same strings as the
/// configuration file: a number, an optional prefix (`K`, `M`, `G`, `T` are
/// powers of 1000, `Ki`, `Mi`, `Gi`, `Ti` powers of 1024), an optional `B`,
/// and `/s` (`"500M/s"`, `"1.5GiB/s"`, `"1000B/s"`). `Display` prints the
/// largest unit that shows the value exactly (`20 MiB/s`, `500 MB/s`), like
/// [`format_bytes_per_second`].
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct BytesPerSecond(pub f64);

impl BytesPerSecond {
    pub fn get(self) -> f64 {
        self.0
    }
}

/// A bit rate in bits per second, as tc writes rates: parsed from a number of
/// bits per second or a string like "100Mbit/s" (`k`, `M`, `G`, `T` are
/// powers of 1000, `Ki`, `Mi`, `Gi`, `Ti` powers of 1024; `/s` is optional,
/// and prefixes are read in any case, so tc's own "100mbit" reads too).
///
/// `"100Mbit/s".parse::<BitsPerSecond>()` accepts the same strings as the
/// configuration file; a byte rate ("10MB/s", "10MiB/s", tc's "10mbps") is
/// refused with the same rate in bits as a hint. [`BitsPerSecond::new`]
/// checks a plain number. `Display` prints the largest unit in which the
/// value is a whole number (`100 Mbit/s`, `1 Gbit/s`, `1500 bit/s`), like
/// [`format_bits_per_second`].
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct BitsPerSecond(pub f64);

impl BitsPerSecond {
    pub fn get(self) -> f64 {
        self.0
    }

    /// Whole bytes per second, as HTB holds rates (rounded down, at least 1).
    pub fn bytes_per_second(self) -> u64 {
        ((self.0 / 8.0).floor() as u64).max(1)
    }
}

/// A validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub agent: AgentConfig,
    pub host: HostConfig,
    /// In the order they appear in the file.
    pub tenants: Vec<Tenant>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AgentConfig {
    pub interval: Duration,
    pub cgroup_root: PathBuf,
    /// Relative to `cgroup_root`.
    pub parent: PathBuf,
    pub metrics_listen: SocketAddr,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HostConfig {
    pub reserved_cpu: Cores,
    pub contention_threshold: f64,
    pub allow_overcommit: bool,
    /// `[[host.disks]]`, in file order; at most one entry per device.
    pub disks: Vec<DiskCapacity>,
    /// `[[host.links]]`, in file order; at most one entry per interface.
    pub links: Vec<LinkCapacity>,
    /// `host.reserved_memory`, bytes kept out of the tenants' memory
    /// baselines (for the kernel and the system).
    pub reserved_memory: u64,
}

/// `[[host.links]]`: a network interface whose egress qosd shapes, and its
/// capacity. qosd owns the root qdisc of every link it declares.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkCapacity {
    pub interface: String,
    pub egress: BitsPerSecond,
}

/// One entry of a tenant's `net = [...]`: an egress contract on a link of
/// `[[host.links]]`. The tenant's locally generated traffic is recognised by
/// its cgroup; traffic forwarded from its own network namespace by the
/// host-side veth it arrives on (`veth`), when the contract names one.
/// `egress.weight` is the baseline in bits/s unless `weight = N` overrides it;
/// it sets the tenant's share of spare capacity (the HTB quantum).
#[derive(Debug, Clone, PartialEq)]
pub struct NetContract {
    pub interface: String,
    pub veth: Option<String>,
    pub egress: Contract<BitsPerSecond>,
}

/// A device as the file names it (`"/dev/vda"` or `"254:0"`), resolved.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeviceRef {
    pub name: String,
    pub number: DeviceNumber,
}

/// The four dimensions of a device that `io.max` limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IoDimension {
    ReadBps,
    WriteBps,
    ReadIops,
    WriteIops,
}

impl IoDimension {
    pub const ALL: [IoDimension; 4] = [
        IoDimension::ReadBps,
        IoDimension::WriteBps,
        IoDimension::ReadIops,
        IoDimension::WriteIops,
    ];

    /// The configuration key: `read_bps`, ...
    pub fn key(self) -> &'static str {
        match self {
            IoDimension::ReadBps => "read_bps",
            IoDimension::WriteBps => "write_bps",
            IoDimension::ReadIops => "read_iops",
            IoDimension::WriteIops => "write_iops",
        }
    }
}

/// One value per dimension.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct IoDimensions<T> {
    pub read_bps: T,
    pub write_bps: T,
    pub read_iops: T,
    pub write_iops: T,
}

impl<T> IoDimensions<T> {
    pub fn get(&self, dimension: IoDimension) -> &T {
        match dimension {
            IoDimension::ReadBps => &self.read_bps,
            IoDimension::WriteBps => &self.write_bps,
            IoDimension::ReadIops => &self.read_iops,
            IoDimension::WriteIops => &self.write_iops,
        }
    }

    pub fn get_mut(&mut self, dimension: IoDimension) -> &mut T {
        match dimension {
            IoDimension::ReadBps => &mut self.read_bps,
            IoDimension::WriteBps => &mut self.write_bps,
            IoDimension::ReadIops => &mut self.read_iops,
            IoDimension::WriteIops => &mut self.write_iops,
        }
    }
}

/// `[[host.disks]]`: a device's capacity, in bytes/s and IOs/s. A dimension
/// without a capacity is not controlled (no tenant may hold a contract on it).
#[derive(Debug, Clone, PartialEq)]
pub struct DiskCapacity {
    pub device: DeviceRef,
    pub capacity: IoDimensions<Option<f64>>,
}

/// One entry of a tenant's `disk = [...]`: contracts per dimension, in
/// bytes/s (bps) and IOs/s (iops). `weight` (if given) applies to every
/// dimension. Otherwise each dimension's weight is its baseline as a
/// percentage of the device's capacity in that dimension, clamped to
/// 0.01..=100 (so weights compare within a dimension whatever its unit): a
/// baseline of 20 MiB/s on a 50 MiB/s device weighs 40. A zero baseline gets
/// [`ZERO_BASELINE_WEIGHT`].
#[derive(Debug, Clone, PartialEq)]
pub struct DiskContract {
    pub device: DeviceRef,
    pub limits: IoDimensions<Option<Contract<f64>>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tenant {
    pub name: String,
    /// The tenant's cgroup relative to `cgroup_root`: the adopted `cgroup = "..."`,
    /// or `<parent>/<name>` when qosd owns it.
    pub cgroup: PathBuf,
    /// True when the cgroup was named in the file (adopted, qosd does not create it).
    pub adopted: bool,
    pub cpu: Option<Contract<Cores>>,
    /// At most one entry per device, each on a device of `[[host.disks]]`.
    pub disk: Vec<DiskContract>,
    /// At most one entry per interface, each on a link of `[[host.links]]`.
    pub net: Vec<NetContract>,
    pub memory: Option<MemoryContract>,
    /// `match = [...]`: processes that belong to the tenant, in file order.
    /// A tenant with matchers owns its group (`<parent>/<name>`), and
    /// qosd moves matching processes there. Empty for adopted groups.
    pub matchers: Vec<ProcessMatcher>,
}

/// One entry of a tenant's `match = [...]`. Every key it has must hold for
/// a process to match (`{ user = "alice", comm = "python*" }` is alice's
/// python processes); the entries of a list are alternatives.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProcessMatcher {
    /// The real user id (`user = "alice"` or `uid = 1001`).
    pub uid: Option<u32>,
    /// The real group id (`group = "staff"` or `gid = 50`).
    pub gid: Option<u32>,
    /// /proc/PID/comm: exact or glob.
    pub comm: Option<TextPattern>,
    /// The executable's path (/proc/PID/exe): exact or glob.
    pub exe: Option<TextPattern>,
    /// The command line, arguments joined by spaces: a regular expression.
    pub cmdline: Option<TextPattern>,
    /// A systemd unit or slice in the process's cgroup path
    /// (/proc/PID/cgroup), e.g. `"nginx.service"` or `"user-1001.slice"`.
    pub unit: Option<String>,
}

/// `memory = { baseline, burst, limit?, protection? }`, in bytes: the
/// baseline is protected from reclaim (`memory.min`, or `memory.low` when
/// `protection = "soft"`), above the burst the kernel throttles and
/// reclaims (`memory.high`), and `limit` is the hard cap (`memory.max`,
/// where the OOM killer acts). baseline ≤ burst ≤ limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryContract {
    pub baseline: u64,
    pub burst: u64,
    pub limit: Option<u64>,
    pub protection: MemoryProtection,
}

/// How a memory baseline is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MemoryProtection {
    /// `memory.min`: never reclaimed, even if the host must OOM-kill.
    #[default]
    Hard,
    /// `memory.low`: reclaimed only when nothing unprotected is left.
    Soft,
}

/// Baseline and burst of one resource. `weight` is resolved: the `weight = N`
/// override, or the baseline's numeric value by default. It is always > 0
/// (a zero baseline without an explicit weight gets [`ZERO_BASELINE_WEIGHT`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Contract<U> {
    pub baseline: U,
    pub burst: U,
    pub weight: f64,
}

/// The weight given to a contract whose baseline is 0 and that names no
/// `weight`. The default weight is the baseline, but a weight of 0 would make
/// the policy's weighted share divide by zero (and `cpu.weight` must be ≥ 1),
/// so such a tenant gets a small positive weight: it still shares spare
/// capacity, just with the lowest priority.
pub const ZERO_BASELINE_WEIGHT: f64 = 0.01;

/// Facts about the host that validation needs (overcommitment checks,
/// devices, interfaces, user and group names).
#[derive(Debug, Clone, Copy)]
pub struct HostFacts {
    pub online_cpus: f64,
    /// Resolves a device as written (`"/dev/vda"` or `"254:0"`) to its number;
    /// the error says why not ("no such device"). Tests pass a fake one.
    pub resolve_device: fn(&str) -> Result<DeviceNumber, String>,
    /// Whether a network interface exists (`Err` says why not: "no network
    /// interface named eth9"). Tests pass a fake one.
    pub find_interface: fn(&str) -> Result<(), String>,
    /// MemTotal in bytes, when known: memory baselines are checked against
    /// it minus `host.reserved_memory`.
    pub memory_total: Option<u64>,
    /// The uid of a user name of a process matcher (`Err` says why not: "no
    /// user named bob on this host"). Tests pass a fake one.
    pub resolve_user: fn(&str) -> Result<u32, String>,
    /// The gid of a group name of a process matcher (`Err`: "no group named
    /// ops on this host"). Tests pass a fake one.
    pub resolve_group: fn(&str) -> Result<u32, String>,
    /// What a matcher would capture of the processes that must never move
    /// (PID 1, qosd itself), if any: such a matcher is refused.
    pub captures_protected: fn(&ProcessMatcher) -> Option<String>,
}

impl HostFacts {
    /// The same facts, knowing the host's memory.
    pub const fn with_memory_total(mut self, bytes: u64) -> Self {
        self.memory_total = Some(bytes);
        self
    }
}

/// A configuration that passed validation, with its warnings (overcommitment, ...).
/// Warnings are plain sentences without a `warning:` prefix or location.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<String>,
}

/// One or more errors, each rendered like a compiler diagnostic on its own line:
/// `path:line:col: error: `tenants.web.cpu.baseline`: message`.
/// An error without a place in the file is rendered `path: error: message`.
#[derive(Debug, thiserror::Error)]
#[error("{rendered}")]
pub struct ConfigError {
    pub rendered: String,
}

/// Reads and validates the file at `path`. An unreadable file is an error that
/// names the path and the OS error.
/// For an adopted group that does not exist: systemd nests a slice with
/// dashes in its name under one slice per prefix (`tenant-a.slice` is at
/// `tenant.slice/tenant-a.slice`), a path easy to get wrong.
pub fn slice_path_hint(cgroup: &Path) -> Option<String> {
    let name = cgroup.to_str()?;
    let stem = name.strip_suffix(".slice")?;
    if name.contains('/') || !stem.contains('-') {
        return None;
    }
    let parts: Vec<&str> = stem.split('-').collect();
    let nested: Vec<String> = (1..=parts.len())
        .map(|n| format!("{}.slice", parts[..n].join("-")))
        .collect();
    Some(format!(
        "systemd puts {name} at {}; write that path",
        nested.join("/")
    ))
}

pub fn load(path: &Path, host: &HostFacts) -> Result<Loaded, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, path, host),
        Err(error) => Err(ConfigError {
            rendered: format!("{}: error: cannot read the file: {error}", path.display()),
        }),
    }
}

/// Validates `text`; `origin` is only used to name the file in errors.
pub fn parse(text: &str, origin: &Path, host: &HostFacts) -> Result<Loaded, ConfigError> {
    let mut diagnostics = Diagnostics::default();
    let config = schema::parse_document(text, &mut diagnostics)
        .map(|raw| validate::validate(&raw, host, &mut diagnostics));
    match config {
        Some(config) if !diagnostics.has_errors() => Ok(Loaded {
            config,
            warnings: diagnostics.into_warnings(),
        }),
        _ => Err(ConfigError {
            rendered: diagnostics.render_errors(text, origin),
        }),
    }
}
