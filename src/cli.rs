//! The command line's definition: `qosd run|check|status|calibrate`.
//!
//! It lives in the library, not in `src/main.rs`, so that the packaging
//! generator (`examples/package_assets.rs`) can reach [`Cli::command`] (from
//! [`clap::CommandFactory`]) and write the man pages and shell completions
//! from the same definition the binary parses with. `src/main.rs` only
//! dispatches.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// `qosd`: the parsed command line.
#[derive(Parser)]
#[command(
    version,
    about = "Holds tenants' CPU, memory, disk and network contracts (baseline and burst) on a cgroup v2 host"
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands, each with its options.
#[derive(Subcommand)]
pub enum Command {
    /// Run the agent: sample usage every tick, decide limits, write them to cgroup v2.
    ///
    /// Reloads the configuration on SIGHUP (a broken file keeps the contracts in
    /// force) and stops on SIGTERM, leaving the limits in place. Logs go to stderr;
    /// set RUST_LOG (e.g. RUST_LOG=qosd=debug) for more detail.
    Run {
        /// Configuration file.
        #[arg(long, short, default_value = crate::config::DEFAULT_PATH)]
        config: PathBuf,
        /// Read and decide as usual, but only log the writes it would make.
        #[arg(long)]
        dry_run: bool,
        /// Measure over one tick, apply the decision once and exit.
        #[arg(long)]
        once: bool,
        /// On SIGTERM, remove qosd's qdiscs and its nftables table (`inet qosd`)
        /// instead of leaving network shaping in force.
        #[arg(long)]
        cleanup: bool,
        /// Where to serve `qosd status` (a Unix socket, root only).
        #[arg(long, default_value = crate::status::DEFAULT_SOCKET)]
        status_socket: PathBuf,
    },
    /// Validate a configuration file and summarise its tenants and contracts.
    ///
    /// Exits 0 when the file is valid (warnings such as overcommitment are
    /// printed but allowed), 1 when it is not.
    Check {
        /// Configuration file.
        #[arg(long, short, default_value = crate::config::DEFAULT_PATH)]
        config: PathBuf,
    },
    /// Show each tenant's contracts against what it gets: baseline, burst,
    /// usage, the limit in force, its state (idle, within baseline, bursting,
    /// clamped, below baseline) and pressure, under a header of each resource's
    /// capacity and contention.
    ///
    /// Asks the running agent over its status socket, and says so plainly
    /// (exit 1) when no agent answers. With --tenant, lists that tenant's
    /// processes instead, busiest first by CPU, disk and resident memory, read
    /// from /proc over --interval (the agent need not run).
    Status {
        /// The agent's status socket.
        #[arg(long, default_value = crate::status::DEFAULT_SOCKET)]
        socket: PathBuf,
        /// Machine output: the agent's report as JSON.
        #[arg(long, conflicts_with_all = ["watch", "tenant"])]
        json: bool,
        /// Refresh every --interval, like top.
        #[arg(long, conflicts_with = "tenant")]
        watch: bool,
        /// List this tenant's processes (as named in the configuration).
        #[arg(long)]
        tenant: Option<String>,
        /// Configuration file (where --tenant's cgroup is).
        #[arg(long, short, default_value = crate::config::DEFAULT_PATH)]
        config: PathBuf,
        /// How long to measure (--tenant), or how often to refresh (--watch).
        #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
        interval: std::time::Duration,
        /// How many processes to list (--tenant).
        #[arg(long, default_value_t = 10)]
        top: usize,
    },
    /// Measure a block device's capacity and print the [[host.disks]] block to paste.
    ///
    /// Runs sequential (1 MiB) and random (4 KiB) reads, then writes, with direct
    /// I/O, each for a bounded time. WRITE TESTS OVERWRITE DATA on the device: they
    /// are refused while the device or one of its partitions is mounted or used as
    /// swap. Give --scratch-file (a file on that device's filesystem) to measure
    /// writes safely, or --read-only to skip them.
    Calibrate {
        /// The block device, e.g. /dev/vda.
        #[arg(long)]
        device: PathBuf,
        /// Write tests go to this file (created, then removed) instead of the device.
        #[arg(long)]
        scratch_file: Option<PathBuf>,
        /// Seconds per test (four tests).
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Measure reads only.
        #[arg(long)]
        read_only: bool,
        /// Confirm that write tests may overwrite data on the device itself
        /// (needed unless --scratch-file or --read-only is given).
        #[arg(long)]
        overwrite_device: bool,
    },
}
