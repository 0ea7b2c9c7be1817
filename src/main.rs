//! The command line: `qosd run` (the daemon), `qosd check` (validate a file),
//! `qosd status` and `qosd calibrate`. Their definition is `qosd::cli`; this
//! file only dispatches.

use std::process::ExitCode;

use clap::Parser;
use qosd::calibrate::CalibrateOptions;
use qosd::cli::{Cli, Command};
use qosd::config;

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
    let facts = qosd::host::facts_for_commands();
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
    let facts = qosd::host::facts_for_commands();
    match config::load(path, &facts) {
        Ok(loaded) => {
            print!("{}", loaded.config.summary());
            for warning in &loaded.warnings {
                eprintln!("{}: warning: {warning}", path.display());
            }
            for warning in missing_adopted_groups(&loaded.config) {
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

/// Adopted groups not on this host (yet). Not an error: a unit may start
/// later, and qosd waits for it. Nothing is said where the cgroup root
/// itself is absent (a build root, a container without it).
fn missing_adopted_groups(config: &config::Config) -> Vec<String> {
    let root = &config.agent.cgroup_root;
    if !root.join("cgroup.controllers").exists() {
        return Vec::new();
    }
    config
        .tenants
        .iter()
        .filter(|tenant| tenant.adopted && !root.join(&tenant.cgroup).is_dir())
        .map(|tenant| {
            let hint = config::slice_path_hint(&tenant.cgroup)
                .map_or_else(String::new, |hint| format!("; {hint}"));
            format!(
                "tenant {}: cgroup {} does not exist on this host (yet); qosd waits for it{hint}",
                tenant.name,
                root.join(&tenant.cgroup).display()
            )
        })
        .collect()
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
