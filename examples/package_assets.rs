//! Writes the files the Debian package ships beside the binary, from the
//! command line's definition (`qosd::cli`), so that they never drift from it:
//!
//! - `OUT/man/qosd.8` and one page per subcommand (`qosd-run.8`, ...), in
//!   section 8 (system administration: a daemon, and commands run as root);
//! - `OUT/completions/qosd.bash`, `_qosd` (zsh) and `qosd.fish`.
//!
//! Usage: `cargo run --release --example package_assets -- OUT`
//! (scripts/package.sh passes `target/assets`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;
use qosd::cli::Cli;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(out), None) = (args.next(), args.next()) else {
        eprintln!("usage: package_assets OUT_DIR");
        return ExitCode::from(2);
    };
    match write_assets(&PathBuf::from(out)) {
        Ok(written) => {
            for path in written {
                println!("{}", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("package_assets: {error}");
            ExitCode::FAILURE
        }
    }
}

fn write_assets(out: &std::path::Path) -> std::io::Result<Vec<PathBuf>> {
    let man = out.join("man");
    let completions = out.join("completions");
    // Start empty, so that a renamed subcommand leaves no stale page behind.
    for dir in [&man, &completions] {
        match std::fs::remove_dir_all(dir) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error),
            _ => std::fs::create_dir_all(dir)?,
        }
    }

    // qosd.8, then qosd-run.8, qosd-check.8, ... (no page for `help`), as
    // clap_mangen::generate_to makes them, but with every footer naming the
    // version (a subcommand has none of its own, so its page would show only
    // its name).
    let mut command = Cli::command().disable_help_subcommand(true);
    command.build();
    let source = format!("qosd {}", env!("CARGO_PKG_VERSION"));
    let mut written = Vec::new();
    for page in pages(command) {
        let page = clap_mangen::Man::new(page)
            .section("8")
            .source(source.clone())
            .manual("qosd manual");
        written.push(page.generate_to(&man)?);
    }
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let mut command = Cli::command();
        written.push(clap_complete::generate_to(
            shell,
            &mut command,
            "qosd",
            &completions,
        )?);
    }
    Ok(written)
}

/// A command and, after it, every visible subcommand, depth first.
fn pages(command: clap::Command) -> Vec<clap::Command> {
    let mut all = vec![command.clone()];
    for sub in command.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        all.extend(pages(sub.clone()));
    }
    all
}
