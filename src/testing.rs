//! A fake host for tests and benchmarks: a directory shaped like cgroupfs and
//! procfs, with N tenants whose counters can be advanced. It exercises the
//! parsing and write layers; it proves nothing about enforcement, which only
//! a real kernel can (see tests/vm).

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::cgroup::io::DeviceNumber;
use crate::config::HostFacts;

/// Files of the root of a cgroup2 mount with cpu, io and memory available.
pub const ROOT_FILES: &[(&str, &str)] = &[
    ("cgroup.controllers", "cpu io memory\n"),
    ("cgroup.subtree_control", ""),
    ("cgroup.procs", ""),
    ("io.stat", ""),
    // iocost built in but enabled for no device (lines appear on first write).
    ("io.cost.qos", ""),
];

/// Files of a new group whose parent enabled cpu, io and memory, as a
/// kernel shows them right after mkdir.
pub const GROUP_FILES: &[(&str, &str)] = &[
    ("cgroup.controllers", ""),
    ("cgroup.subtree_control", ""),
    ("cgroup.procs", ""),
    (
        "cpu.stat",
        "usage_usec 0\nuser_usec 0\nsystem_usec 0\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\n",
    ),
    ("cpu.weight", "100\n"),
    ("cpu.max", "max 100000\n"),
    ("cpu.max.burst", "0\n"),
    ("cpu.pressure", PSI_ZERO),
    ("io.stat", ""),
    ("io.max", ""),
    ("io.weight", "default 100\n"),
    ("io.pressure", PSI_ZERO),
    ("memory.min", "0\n"),
    ("memory.low", "0\n"),
    ("memory.high", "max\n"),
    ("memory.max", "max\n"),
    ("memory.current", "0\n"),
    ("memory.stat", "anon 0\nfile 0\nkernel 0\nshmem 0\n"),
    (
        "memory.events",
        "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n",
    ),
    ("memory.pressure", PSI_ZERO),
];

pub const PSI_ZERO: &str = "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n\
                        full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n";

/// Writes `(name, content)` files into `dir`.
/// Where benchmarks put their files: /dev/shm where there is one, since
/// tmpfs, like cgroupfs and procfs, keeps files in memory and a disk-backed
/// /tmp would measure the disk filesystem instead of qosd.
pub fn tmpfs_dir() -> PathBuf {
    let shm = PathBuf::from("/dev/shm");
    if shm.is_dir() {
        shm
    } else {
        std::env::temp_dir()
    }
}

pub fn write_files(dir: &Path, files: &[(&str, &str)]) -> io::Result<()> {
    files
        .iter()
        .try_for_each(|(name, content)| fs::write(dir.join(name), content))
}

/// Two CPUs, and tenants `t0`..`tN` adopted under `cgroup/`.
pub struct FakeHost {
    root: PathBuf,
    tenants: usize,
    ticks: u64,
    /// Disks pulled out with `remove_disk` vanish from diskstats.
    removed_disks: Vec<&'static str>,
}

const ONLINE_CPUS: u64 = 2;

impl FakeHost {
    pub fn create(root: &Path, tenants: usize) -> io::Result<Self> {
        let host = FakeHost {
            root: root.to_path_buf(),
            tenants,
            ticks: 0,
            removed_disks: Vec::new(),
        };
        fs::create_dir_all(host.cgroup_root())?;
        fs::create_dir_all(host.proc_root().join("pressure"))?;
        fs::write(
            host.cgroup_root().join("cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        )?;
        fs::write(host.cgroup_root().join("cgroup.subtree_control"), "")?;
        for tenant in 0..tenants {
            host.create_tenant(tenant)?;
        }
        host.write_counters()?;
        Ok(host)
    }

    pub fn cgroup_root(&self) -> PathBuf {
        self.root.join("cgroup")
    }

    pub fn proc_root(&self) -> PathBuf {
        self.root.join("proc")
    }

    pub fn tenant_dir(&self, tenant: usize) -> PathBuf {
        self.cgroup_root().join(format!("t{tenant}"))
    }

    /// A configuration adopting every tenant, alternating a victim-like and a
    /// burster-like contract so the policy has something to decide.
    /// Every tenant also holds read and write contracts on one of the two
    /// disks, alternately. (One disk each: a fake `io.max` is a plain file, so
    /// a second device's line would replace the first instead of joining it
    /// as in the kernel.)
    pub fn config_toml(&self) -> String {
        let mut text = format!(
            "[agent]\ninterval = \"1s\"\ncgroup_root = \"{}\"\n\n[host]\nreserved_cpu = 0\n",
            self.cgroup_root().display()
        );
        for (device, _) in DEVICES {
            let _ = write!(
                text,
                "\n[[host.disks]]\ndevice = \"{device}\"\nread_bps = \"50MiB/s\"\nwrite_bps = \"50MiB/s\"\n"
            );
        }
        for tenant in 0..self.tenants {
            let baseline = if tenant % 2 == 0 { "0.02" } else { "0.01" };
            let device = DEVICES[tenant % DEVICES.len()].0;
            let _ = write!(
                text,
                "\n[tenants.t{tenant}]\ncgroup = \"t{tenant}\"\ncpu = {{ baseline = {baseline}, burst = 2.0 }}\n\
                 disk = [{{ device = \"{device}\", read_bps = {{ baseline = \"10KiB/s\", burst = \"50MiB/s\" }}, \
                 write_bps = {{ baseline = \"10KiB/s\", burst = \"50MiB/s\" }} }}]\n"
            );
        }
        text
    }

    /// `config_toml` plus a 40 Mbit/s link `eth0` (one of [`INTERFACES`])
    /// on which tenants 0 and 1 hold egress contracts of 25 and 5 Mbit/s.
    pub fn config_toml_with_link(&self) -> String {
        let mut text = self.config_toml();
        for (tenant, baseline) in [(0, "25Mbit/s"), (1, "5Mbit/s")] {
            let key = format!("cgroup = \"t{tenant}\"\n");
            let contract = format!(
                "{key}net = [{{ interface = \"eth0\", egress = {{ baseline = \"{baseline}\", burst = \"40Mbit/s\" }} }}]\n"
            );
            text = text.replace(&key, &contract);
        }
        text.push_str("\n[[host.links]]\ninterface = \"eth0\"\negress = \"40Mbit/s\"\n");
        text
    }

    /// Host facts for `config_toml`: two CPUs and the two fake disks.
    pub fn facts() -> HostFacts {
        HostFacts {
            online_cpus: ONLINE_CPUS as f64,
            resolve_device: resolve_fake_device,
            find_interface: find_fake_interface,
            memory_total: Some(FAKE_MEMORY_TOTAL),
            resolve_user: resolve_fake_user,
            resolve_group: resolve_fake_group,
            captures_protected: captures_fake_protected,
        }
    }

    /// The disk `device` ("254:16") leaves /proc/diskstats, as when it is
    /// unplugged.
    pub fn remove_disk(&mut self, device: &'static str) {
        self.removed_disks.push(device);
    }

    /// Moves every counter on by one second of a saturated host: odd
    /// tenants use twice what even ones do.
    pub fn advance(&mut self) -> io::Result<()> {
        self.ticks += 1;
        self.write_counters()
    }

    fn create_tenant(&self, tenant: usize) -> io::Result<()> {
        let dir = self.tenant_dir(tenant);
        fs::create_dir_all(&dir)?;
        write_files(&dir, GROUP_FILES)
    }

    fn write_counters(&self) -> io::Result<()> {
        let per_tenant_usec = ONLINE_CPUS * 1_000_000 / (self.tenants.max(1) as u64);
        for tenant in 0..self.tenants {
            let share = if tenant % 2 == 0 { 2 } else { 4 };
            let usage = self.ticks * per_tenant_usec * share / 3;
            let dir = self.tenant_dir(tenant);
            fs::write(dir.join("cpu.stat"), cpu_stat(usage))?;
            fs::write(dir.join("cpu.pressure"), pressure(usage / 10))?;
        }
        let busy = self.ticks * ONLINE_CPUS * 100;
        fs::write(self.proc_root().join("stat"), proc_stat(busy))?;
        fs::write(self.proc_root().join("pressure/cpu"), pressure(busy * 1000))?;
        self.write_io_counters()
    }

    /// Each tenant moves 10 MiB per tick on each disk; the disks add it up.
    /// (Four tenants then contend for the fake 50 MiB/s disks as long as
    /// ticks come less than 0.8 s apart, even on a loaded machine.)
    fn write_io_counters(&self) -> io::Result<()> {
        let bytes = self.ticks * 10 * 1_048_576;
        let ios = self.ticks * 16;
        for tenant in 0..self.tenants {
            let dir = self.tenant_dir(tenant);
            let mut stat = String::new();
            for (device, _) in DEVICES {
                let _ = writeln!(
                    stat,
                    "{device} rbytes={bytes} wbytes={bytes} rios={ios} wios={ios} dbytes=0 dios=0"
                );
            }
            fs::write(dir.join("io.stat"), stat)?;
            fs::write(dir.join("io.pressure"), pressure(ios))?;
        }
        let tenants = self.tenants as u64;
        let mut diskstats = String::new();
        let present = DEVICES
            .iter()
            .filter(|(device, _)| !self.removed_disks.contains(device));
        for (device, name) in present {
            let DeviceNumber { major, minor } = device.parse().map_err(io::Error::other)?;
            let (sectors, count) = (tenants * bytes / 512, tenants * ios);
            let _ = writeln!(
                diskstats,
                "{major:>4} {minor:>7} {name} {count} 0 {sectors} 0 {count} 0 {sectors} 0 0 {} 0 0 0 0 0 0 0",
                self.ticks * 1000
            );
        }
        fs::write(self.proc_root().join("diskstats"), diskstats)?;
        fs::write(self.proc_root().join("pressure/io"), pressure(ios))
    }
}

/// The fake disks: number and name.
const DEVICES: [(&str, &str); 2] = [("254:0", "vda"), ("254:16", "vdb")];

/// The fake host's network interfaces.
pub const INTERFACES: &[&str] = &["eth0", "veth-ctr"];

/// Finds [`INTERFACES`], as `HostFacts::find_interface` does on a host.
pub fn find_fake_interface(name: &str) -> Result<(), String> {
    if INTERFACES.contains(&name) {
        Ok(())
    } else {
        Err(format!(
            "no network interface named {name} on the fake host"
        ))
    }
}

/// The users of the fake host: alice (1001), as `HostFacts::resolve_user`
/// finds them on a host.
pub fn resolve_fake_user(name: &str) -> Result<u32, String> {
    match name {
        "alice" => Ok(1001),
        _ => Err(format!("no user named {name} on the fake host")),
    }
}

/// The groups of the fake host: staff (50).
pub fn resolve_fake_group(name: &str) -> Result<u32, String> {
    match name {
        "staff" => Ok(50),
        _ => Err(format!("no group named {name} on the fake host")),
    }
}

fn resolve_fake_device(spec: &str) -> Result<DeviceNumber, String> {
    DEVICES
        .iter()
        .find(|(number, name)| spec == *number || spec.strip_prefix("/dev/") == Some(*name))
        .and_then(|(number, _)| number.parse().ok())
        .ok_or_else(|| format!("no such device {spec} on the fake host"))
}

fn cpu_stat(usage_usec: u64) -> String {
    format!(
        "usage_usec {usage_usec}\nuser_usec {}\nsystem_usec {}\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\n",
        usage_usec / 2,
        usage_usec / 2
    )
}

fn pressure(total_usec: u64) -> String {
    format!(
        "some avg10=1.00 avg60=1.00 avg300=1.00 total={total_usec}\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
    )
}

fn proc_stat(busy_ticks: u64) -> String {
    let mut text = format!("cpu  {busy_ticks} 0 0 1000 0 0 0 0 0 0\n");
    for cpu in 0..ONLINE_CPUS {
        let _ = writeln!(
            text,
            "cpu{cpu} {} 0 0 500 0 0 0 0 0 0",
            busy_ticks / ONLINE_CPUS
        );
    }
    text.push_str("intr 0\nctxt 0\nbtime 0\nprocesses 1\nprocs_running 1\nprocs_blocked 0\n");
    text
}

/// A /proc/meminfo of `lines` (MemTotal and MemAvailable, as a test wants
/// them) and, at zero, the other lines that procfs-core requires.
pub fn meminfo(lines: &str) -> String {
    const REQUIRED: &[&str] = &[
        "MemFree",
        "Buffers",
        "Cached",
        "SwapCached",
        "Active",
        "Inactive",
        "SwapTotal",
        "SwapFree",
        "Dirty",
        "Writeback",
        "Mapped",
        "Slab",
        "Committed_AS",
        "VmallocTotal",
        "VmallocUsed",
        "VmallocChunk",
    ];
    let mut text = lines.to_owned();
    for key in REQUIRED {
        let _ = writeln!(text, "{key}: 0 kB");
    }
    text
}

/// MemTotal of the fake host: 4 GiB.
pub const FAKE_MEMORY_TOTAL: u64 = 4 << 30;

/// The fake host's processes that must never move: PID 1 is systemd (root),
/// and qosd runs as root from /usr/bin/qosd.
pub fn captures_fake_protected(matcher: &crate::config::ProcessMatcher) -> Option<String> {
    use crate::procfs::ProcessInfo;
    let process = |pid, comm: &str, exe: &str| ProcessInfo {
        pid,
        comm: comm.to_owned(),
        uid: Some(0),
        gid: Some(0),
        exe: Some(exe.to_owned()),
        cmdline: Some(exe.to_owned()),
        cgroup: Some("/init.scope".to_owned()),
        ..ProcessInfo::default()
    };
    let protected = [
        ("PID 1", process(1, "systemd", "/usr/lib/systemd/systemd")),
        ("qosd itself", process(4242, "qosd", "/usr/bin/qosd")),
    ];
    crate::classify::protected::captures_any(matcher, &protected)
}

/// An agent over `host` (its /proc, cgroup tree and look-ups) holding
/// `config`, shaping links with `shaper`, and its metrics.
pub fn fake_agent(
    host: &FakeHost,
    config: crate::config::Config,
    options: crate::agent::Options,
    shaper: Box<dyn crate::net::Shaper>,
) -> (crate::agent::Agent, std::sync::Arc<crate::metrics::Metrics>) {
    let metrics = std::sync::Arc::new(crate::metrics::Metrics::new().expect("metrics register"));
    let fake = (
        crate::procfs::ProcFs::at(host.proc_root()),
        crate::cgroup::Hierarchy::at(host.cgroup_root()),
        FakeHost::facts(),
    );
    let agent = crate::agent::Agent::with_host(options, fake, config, metrics.clone(), shaper)
        .expect("the agent's metrics register");
    (agent, metrics)
}

/// Options for an agent that reads `config_path` and writes.
pub fn options(config_path: PathBuf) -> crate::agent::Options {
    crate::agent::Options {
        config_path,
        dry_run: false,
        once: false,
        cleanup: false,
    }
}

/// An agent over `host` with `config_text`, whose link `eth0` is shaped by
/// a fake kernel (so the network families have series too), and its
/// metrics. For tests that look at what a real agent exports.
pub fn agent_with_fake_link(
    host: &FakeHost,
    config_text: &str,
) -> (crate::agent::Agent, std::sync::Arc<crate::metrics::Metrics>) {
    let origin = PathBuf::from("fake.toml");
    let loaded = crate::config::parse(config_text, &origin, &FakeHost::facts())
        .expect("the fake host's configuration is valid");
    let shaper = crate::net::fake::FakeShaper::default();
    shaper.kernel.lock().expect("fake kernel").add_link("eth0");
    fake_agent(host, loaded.config, options(origin), Box::new(shaper))
}
