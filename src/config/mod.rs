//! TOML contracts: schema, units and validation. The only module that knows TOML.
//!
//! INTERFACE STUB — to be implemented (keep these public names and signatures).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const DEFAULT_PATH: &str = "/etc/qosd/qosd.toml";

/// CPU cores (1.0 = one CPU). Parsed from a float or a string like "500m".
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct Cores(pub f64);

impl Cores {
    pub fn get(self) -> f64 {
        self.0
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
}

/// Baseline and burst of one resource. `weight` is resolved: the `weight = N`
/// override, or the baseline's numeric value by default.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Contract<U> {
    pub baseline: U,
    pub burst: U,
    pub weight: f64,
}

/// Facts about the host that validation needs (overcommitment checks).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HostFacts {
    pub online_cpus: f64,
}

/// A configuration that passed validation, with its warnings (overcommitment, ...).
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<String>,
}

/// One or more errors, each rendered like a compiler diagnostic:
/// `path:line:col: error: message (key `tenants.web.cpu.baseline`)`.
#[derive(Debug, thiserror::Error)]
#[error("{rendered}")]
pub struct ConfigError {
    pub rendered: String,
}

pub fn load(path: &Path, host: &HostFacts) -> Result<Loaded, ConfigError> {
    let _ = (path, host);
    todo!()
}

pub fn parse(text: &str, origin: &Path, host: &HostFacts) -> Result<Loaded, ConfigError> {
    let _ = (text, origin, host);
    todo!()
}
