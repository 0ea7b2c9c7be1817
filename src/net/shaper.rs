//! The kernel side of shaping behind one trait: [`SystemShaper`] reads over
//! netlink and writes by running `tc -batch -` and `nft -f -` (the netlink
//! crates cannot build HTB classes); tests use `fake::FakeShaper`.

use std::io::{self, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::plan::{self, LinkPlan};
use super::types::{LinkState, QdiscState};
use crate::netlink::{NetlinkSocket, RequestError};

/// Why shaping could not be read or written. The messages name the binary
/// or the kernel module an operator has to install.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    #[error("`{binary}` was not found in PATH (it comes with the {package} package)")]
    MissingBinary {
        binary: &'static str,
        package: &'static str,
    },
    #[error("the kernel has no {feature} (module {module}): {detail}")]
    MissingKernelFeature {
        feature: &'static str,
        module: &'static str,
        detail: String,
    },
    #[error("`{command}` failed: {detail}")]
    Failed {
        command: &'static str,
        detail: String,
    },
    #[error("cannot read {what} over netlink: {detail}")]
    Netlink { what: String, detail: String },
}

/// How many `tc` and `nft` processes were started: zero on a tick where
/// nothing changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Invocations {
    pub tc: u64,
    pub nft: u64,
}

pub trait Shaper: Send {
    /// The link's qdiscs and classes; `None` if there is no such interface.
    /// Forgets what was read at the previous reconcile.
    fn refresh(&mut self) {}
    fn observe(&mut self, interface: &str) -> Result<Option<LinkState>, ShapeError>;
    /// Makes `observed` into `plan`.
    fn apply_link(&mut self, plan: &LinkPlan, observed: &LinkState) -> Result<(), ShapeError>;
    /// Removes qosd's root qdisc from the link.
    fn remove_link(&mut self, interface: &str) -> Result<(), ShapeError>;
    /// Replaces table `inet qosd` with the rules of `plans`.
    fn apply_table(&mut self, plans: &[LinkPlan]) -> Result<(), ShapeError>;
    /// False when table `inet qosd` is gone or is not what `apply_table`
    /// last wrote. Cheap when nothing changed.
    fn table_intact(&mut self) -> Result<bool, ShapeError>;
    fn remove_table(&mut self) -> Result<(), ShapeError>;
    fn invocations(&self) -> Invocations;
}

/// The real kernel.
pub struct SystemShaper {
    route: NetlinkSocket,
    netfilter: NetlinkSocket,
    /// The nftables generation when the table was last known to be ours,
    /// and its listing then.
    table_seen: Option<(u32, String)>,
    /// Calls of `table_intact` since the table was last listed.
    checks_since_listing: u32,
    /// Every qdisc on the host, dumped once per reconcile.
    qdiscs: Option<Vec<(u32, QdiscState)>>,
    invocations: Invocations,
}

/// While other programs keep changing nftables (a container runtime, a
/// firewall), the generation moves every tick: list our table at most on
/// every second check then, so a quiet tick still starts no process.
const CHECKS_PER_LISTING: u32 = 2;

/// A `tc` or `nft` that does not finish in this time is killed.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

impl Default for SystemShaper {
    fn default() -> Self {
        SystemShaper {
            route: NetlinkSocket::route(),
            netfilter: NetlinkSocket::netfilter(),
            table_seen: None,
            checks_since_listing: CHECKS_PER_LISTING,
            qdiscs: None,
            invocations: Invocations::default(),
        }
    }
}

impl Shaper for SystemShaper {
    fn refresh(&mut self) {
        self.qdiscs = None;
    }

    fn observe(&mut self, interface: &str) -> Result<Option<LinkState>, ShapeError> {
        let unreadable = |error: RequestError| ShapeError::Netlink {
            what: format!("the qdiscs of {interface}"),
            detail: error.to_string(),
        };
        if self.qdiscs.is_none() {
            self.qdiscs = Some(self.route.qdiscs().map_err(unreadable)?);
        }
        let qdiscs = self.qdiscs.as_deref().unwrap_or_default();
        self.route.link_state(interface, qdiscs).map_err(unreadable)
    }

    fn apply_link(&mut self, plan: &LinkPlan, observed: &LinkState) -> Result<(), ShapeError> {
        self.run_tc(&plan::tc_batch(plan, observed))
    }

    fn remove_link(&mut self, interface: &str) -> Result<(), ShapeError> {
        self.run_tc(&plan::tc_removal(interface))
    }

    fn apply_table(&mut self, plans: &[LinkPlan]) -> Result<(), ShapeError> {
        self.table_seen = None;
        self.run_nft(&["-f", "-"], &plan::nft_ruleset(plans))?;
        let listing = self.list_table()?;
        self.table_seen = Some((self.generation()?, listing));
        Ok(())
    }

    fn table_intact(&mut self) -> Result<bool, ShapeError> {
        let generation = self.generation()?;
        let Some((seen, listing)) = &self.table_seen else {
            return Ok(false);
        };
        self.checks_since_listing += 1;
        if *seen == generation || self.checks_since_listing < CHECKS_PER_LISTING {
            return Ok(true);
        }
        // Some table changed, maybe not ours: look.
        self.checks_since_listing = 0;
        let listing = listing.clone();
        let intact = self.list_table()? == listing;
        if intact {
            self.table_seen = Some((generation, listing));
        }
        Ok(intact)
    }

    fn remove_table(&mut self) -> Result<(), ShapeError> {
        self.table_seen = None;
        self.run_nft(&["-f", "-"], &plan::nft_removal()).map(drop)
    }

    fn invocations(&self) -> Invocations {
        self.invocations
    }
}

impl SystemShaper {
    fn generation(&mut self) -> Result<u32, ShapeError> {
        self.netfilter
            .nftables_generation()
            .map_err(|error| ShapeError::Netlink {
                what: "the nftables generation".into(),
                detail: error.to_string(),
            })
    }

    /// `nft list table inet qosd`, or "" when there is none.
    fn list_table(&mut self) -> Result<String, ShapeError> {
        let table = plan::TABLE.split(' ');
        let arguments: Vec<&str> = ["list", "table"].into_iter().chain(table).collect();
        match self.run_nft(&arguments, "") {
            Ok(listing) => Ok(listing),
            Err(ShapeError::Failed { detail, .. })
                if detail.contains("No such file or directory") =>
            {
                Ok(String::new())
            }
            Err(error) => Err(error),
        }
    }

    fn run_tc(&mut self, batch: &str) -> Result<(), ShapeError> {
        self.invocations.tc += 1;
        let output = run("tc", &["-batch", "-"], batch)?;
        output
            .map(drop)
            .map_err(|stderr| explain_tc_failure(batch, &stderr))
    }

    fn run_nft(&mut self, arguments: &[&str], input: &str) -> Result<String, ShapeError> {
        self.invocations.nft += 1;
        run("nft", arguments, input)?.map_err(|stderr| explain_nft_failure(&stderr))
    }
}

/// Runs `binary` with `input` on stdin: `Ok(Ok(stdout))` on success,
/// `Ok(Err(stderr))` when it ran and failed.
fn run(
    binary: &'static str,
    arguments: &[&str],
    input: &str,
) -> Result<Result<String, String>, ShapeError> {
    let spawned = Command::new(binary)
        .args(arguments)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            let package = if binary == "tc" {
                "iproute2"
            } else {
                "nftables"
            };
            return Err(ShapeError::MissingBinary { binary, package });
        }
        Err(error) => return Err(failed(binary, error.to_string())),
    };
    if let Some(mut stdin) = child.stdin.take() {
        // A failure here shows as the command's own error below.
        let _ = stdin.write_all(input.as_bytes());
    }
    let output = wait_at_most(child, COMMAND_TIMEOUT).map_err(|error| failed(binary, error))?;
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).trim().to_owned();
    if output.status.success() {
        Ok(Ok(text(&output.stdout)))
    } else {
        Ok(Err(text(&output.stderr)))
    }
}

/// The child's output, or an error once `timeout` has passed (the child is
/// killed then). Its output is collected on a thread, so a full pipe cannot
/// stall it.
fn wait_at_most(
    child: std::process::Child,
    timeout: Duration,
) -> Result<std::process::Output, String> {
    let pid = Pid::from_raw(child.id() as i32);
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || sender.send(child.wait_with_output()));
    match receiver.recv_timeout(timeout) {
        Ok(output) => output.map_err(|error| error.to_string()),
        Err(_) => {
            // The waiting thread owns the child, so it goes by pid; that
            // pid is still the child's unless it exited at this very moment.
            let _ = kill(pid, Signal::SIGKILL);
            Err(format!(
                "did not finish within {} s and was killed",
                timeout.as_secs()
            ))
        }
    }
}

fn failed(binary: &'static str, detail: String) -> ShapeError {
    let command = if binary == "tc" {
        "tc -batch -"
    } else {
        "nft -f -"
    };
    ShapeError::Failed { command, detail }
}

/// `tc -batch` stops at the first failing line and says which
/// ("Command failed -:3"); an unknown qdisc kind there means a module is
/// missing from the kernel.
fn explain_tc_failure(batch: &str, stderr: &str) -> ShapeError {
    let failing_line = stderr
        .rsplit("Command failed -:")
        .next()
        .and_then(|rest| rest.trim().parse::<usize>().ok())
        .and_then(|number| batch.lines().nth(number.checked_sub(1)?));
    let detail = match failing_line {
        Some(line) => format!("{} (at `tc {line}`)", one_line(stderr)),
        None => one_line(stderr),
    };
    if stderr.contains("Specified qdisc kind is unknown")
        || stderr.contains("Specified class kind is unknown")
    {
        let line = failing_line.unwrap_or_default();
        let (feature, module) = if line.contains(plan::LEAF_QDISC_KIND) {
            ("fq_codel qdisc", "sch_fq_codel")
        } else {
            ("HTB qdisc", "sch_htb")
        };
        return ShapeError::MissingKernelFeature {
            feature,
            module,
            detail,
        };
    }
    ShapeError::Failed {
        command: "tc -batch -",
        detail,
    }
}

/// nft names the rule it could not load; a `socket` rule that the kernel
/// does not know means nft_socket is missing, anything at all means
/// nf_tables is.
fn explain_nft_failure(stderr: &str) -> ShapeError {
    let detail = one_line(stderr);
    let unsupported =
        stderr.contains("Could not process rule") || stderr.contains("Operation not supported");
    if unsupported && stderr.contains("socket cgroupv2") {
        return ShapeError::MissingKernelFeature {
            feature: "nftables socket matching",
            module: "nft_socket",
            detail,
        };
    }
    if stderr.contains("Protocol not supported") || stderr.contains("Could not receive") {
        return ShapeError::MissingKernelFeature {
            feature: "nftables",
            module: "nf_tables",
            detail,
        };
    }
    ShapeError::Failed {
        command: "nft -f -",
        detail,
    }
}

fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_qdisc_kind_names_the_module_of_the_failing_line() {
        let batch = "qdisc replace dev up0 root handle 1: htb default 2\nqdisc replace dev up0 parent 1:2 handle 2: fq_codel\n";
        let htb = explain_tc_failure(
            batch,
            "Error: Specified qdisc kind is unknown.\nCommand failed -:1",
        );
        assert!(htb.to_string().contains("module sch_htb"), "{htb}");
        assert!(
            htb.to_string()
                .contains("at `tc qdisc replace dev up0 root"),
            "{htb}"
        );
        let fq = explain_tc_failure(
            batch,
            "Error: Specified qdisc kind is unknown.\nCommand failed -:2",
        );
        assert!(fq.to_string().contains("module sch_fq_codel"), "{fq}");
        let other = explain_tc_failure(batch, "Cannot find device \"up0\"\nCommand failed -:1");
        assert!(matches!(other, ShapeError::Failed { .. }), "{other}");
    }

    #[test]
    fn a_socket_rule_the_kernel_cannot_load_names_nft_socket() {
        let stderr = "/dev/stdin:6:22-37: Error: Could not process rule: No such file or directory\n\
                      oifname \"up0\" socket cgroupv2 level 2 \"qosd.slice/api\" meta priority set 1:10";
        let error = explain_nft_failure(stderr);
        assert!(error.to_string().contains("module nft_socket"), "{error}");
        let path = explain_nft_failure("Error: cgroupv2 path fails: No such file or directory");
        assert!(matches!(path, ShapeError::Failed { .. }), "{path}");
    }

    #[test]
    fn a_missing_binary_is_named_with_its_package() {
        let error = run("qosd-no-such-binary", &[], "");
        assert!(matches!(
            error,
            Err(ShapeError::MissingBinary {
                binary: "qosd-no-such-binary",
                ..
            })
        ));
        let missing = ShapeError::MissingBinary {
            binary: "tc",
            package: "iproute2",
        };
        assert_eq!(
            missing.to_string(),
            "`tc` was not found in PATH (it comes with the iproute2 package)"
        );
    }
}
