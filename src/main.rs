//! The command line: `qosd run` (the daemon) and `qosd check` (validate a file).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use qosd::calibrate::CalibrateOptions;
use qosd::config::{self, HostFacts};
use qosd::procfs::ProcFs;

#[derive(Parser)]
#[command(
    version,
    about = "Holds tenants' CPU and disk contracts (baseline and burst) on a cgroup v2 host"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the agent: sample usage every tick, decide limits, write them to cgroup v2.
    ///
    /// Reloads the configuration on SIGHUP (a broken file keeps the contracts in
    /// force) and stops on SIGTERM, leaving the limits in place. Logs go to stderr;
    /// set RUST_LOG (e.g. RUST_LOG=qosd=debug) for more detail.
    Run {
        /// Configuration file.
        #[arg(long, short, default_value = config::DEFAULT_PATH)]
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
        #[arg(long, default_value = qosd::status::DEFAULT_SOCKET)]
        status_socket: PathBuf,
    },
    /// Validate a configuration file and summarise its tenants and contracts.
    ///
    /// Exits 0 when the file is valid (warnings such as overcommitment are
    /// printed but allowed), 1 when it is not.
    Check {
        /// Configuration file.
        #[arg(long, short, default_value = config::DEFAULT_PATH)]
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
        #[arg(long, default_value = qosd::status::DEFAULT_SOCKET)]
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
        #[arg(long, short, default_value = config::DEFAULT_PATH)]
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match cli.command {
        Command::Run {
            config,
            dry_run,
            once,
            cleanup,
            status_socket,
        } => run(
            qosd::agent::Options {
                config_path: config,
                dry_run,
                once,
                cleanup,
            },
            &status_socket,
        ),
        Command::Check { config } => check(&config),
        Command::Status {
            tenant: Some(tenant),
            config,
            interval,
            top,
            ..
        } => tenant_processes(&config, &tenant, interval, top),
        Command::Status {
            socket,
            json,
            watch,
            interval,
            ..
        } => agent_status(&socket, json, watch.then_some(interval)),
        Command::Calibrate {
            device,
            scratch_file,
            read_only,
            overwrite_device,
            ..
        } if scratch_file.is_none() && !read_only && !overwrite_device => {
            eprintln!(
                "qosd calibrate: the write tests would overwrite data on {}; pass --overwrite-device \
                 to confirm, --scratch-file PATH to write to a file instead, or --read-only",
                device.display()
            );
            ExitCode::FAILURE
        }
        Command::Calibrate {
            device,
            scratch_file,
            seconds,
            read_only,
            ..
        } => calibrate(CalibrateOptions {
            device,
            scratch_file,
            seconds_per_test: seconds,
            read_only,
            progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
        }),
    }
}

fn calibrate(options: CalibrateOptions) -> ExitCode {
    match qosd::calibrate::calibrate(&options) {
        Ok(capacity) => {
            let name = options.device.display().to_string();
            print!("{}", qosd::calibrate::host_disks_block(&name, &capacity));
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("qosd calibrate: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(options: qosd::agent::Options, status_socket: &std::path::Path) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("qosd: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(qosd::agent::run(options, status_socket)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            ExitCode::FAILURE
        }
    }
}

/// `qosd status`: the running agent's report, once, as JSON, or refreshed.
fn agent_status(
    socket: &std::path::Path,
    json: bool,
    watch: Option<std::time::Duration>,
) -> ExitCode {
    use qosd::status;
    let colour = status::colour_wanted();
    let shown = match watch {
        Some(every) => status::watch(socket, every, colour),
        None => status::fetch(socket).map(|report| {
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                );
            } else {
                print!("{}", status::render(&report, colour));
            }
        }),
    };
    match shown {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("qosd status: {error}");
            ExitCode::FAILURE
        }
    }
}

fn tenant_processes(
    path: &std::path::Path,
    tenant: &str,
    interval: std::time::Duration,
    top: usize,
) -> ExitCode {
    let facts =
        qosd::agent::with_memory_total(HostFacts::of_this_host(online_cpus()), &ProcFs::default());
    let report = config::load(path, &facts)
        .map_err(anyhow::Error::from)
        .and_then(|loaded| qosd::top::report(&loaded.config, tenant, interval, top));
    match report {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("qosd status: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn check(path: &std::path::Path) -> ExitCode {
    let facts =
        qosd::agent::with_memory_total(HostFacts::of_this_host(online_cpus()), &ProcFs::default());
    match config::load(path, &facts) {
        Ok(loaded) => {
            print!("{}", loaded.config.summary());
            for warning in &loaded.warnings {
                eprintln!("{}: warning: {warning}", path.display());
            }
            println!("{}: ok", path.display());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}

/// The CPUs of this host, for the overcommitment check.
fn online_cpus() -> f64 {
    match ProcFs::default().read_cpu_stat() {
        Ok(stat) => f64::from(stat.online_cpus),
        Err(_) => std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64),
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only help a human at a terminal; journald shows them raw.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
