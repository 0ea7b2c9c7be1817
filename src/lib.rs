//! qosd: per-node agent that holds tenants' resource contracts (baseline and
//! burst) with cgroup v2. See docs/design.md for the flow:
//! config -> sample -> policy -> enforce -> kernel, with metrics on the side.

pub mod agent;
pub mod calibrate;
pub mod cgroup;
pub mod classify;
pub mod cli;
pub mod config;
pub mod control;
pub mod enforce;
pub mod host;
pub mod metrics;
pub mod net;
pub mod netlink;
pub mod policy;
pub mod procfs;
pub mod sample;
pub mod status;
#[doc(hidden)]
pub mod testing;
pub mod top;
