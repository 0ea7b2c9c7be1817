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
    /// Show the processes of one tenant, busiest first: CPU (cores), disk
    /// (bytes/s read and written) and resident memory, measured over an interval.
    ///
    /// Reads the tenant's cgroup and /proc directly; the agent need not run.
    Status {
        /// Configuration file (where the tenant's cgroup is).
        #[arg(long, short, default_value = config::DEFAULT_PATH)]
        config: PathBuf,
        /// The tenant, as named in the configuration.
        #[arg(long)]
        tenant: String,
        /// How long to measure.
        #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
        interval: std::time::Duration,
        /// How many processes to list.
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
        } => run(qosd::agent::Options {
            config_path: config,
            dry_run,
            once,
            cleanup,
        }),
        Command::Check { config } => check(&config),
        Command::Status {
            config,
            tenant,
            interval,
            top,
        } => status(&config, &tenant, interval, top),
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

fn run(options: qosd::agent::Options) -> ExitCode {
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
    match runtime.block_on(qosd::agent::run(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            ExitCode::FAILURE
        }
    }
}

fn status(
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
