//! The agent's errors: each layer's own, rolled up. Every one of them names
//! what failed (the file and key, the path, the socket) on its own.

use crate::agent::status::SocketError;
use crate::cgroup::CgroupError;
use crate::config::ConfigError;
use crate::procfs::ProcError;

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The cgroup root, or a controller it lacks.
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    /// The host's own files (/proc/stat for the CPUs).
    #[error(transparent)]
    Host(#[from] ProcError),
    #[error(transparent)]
    StatusSocket(#[from] SocketError),
    #[error("cannot install the signal handlers: {0}")]
    Signals(#[from] std::io::Error),
    /// Registering or serving the metrics.
    #[error("{0:#}")]
    Metrics(anyhow::Error),
}
