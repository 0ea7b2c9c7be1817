use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

/// CPU contracts, cores and `host.reserved_cpu`.
mod cpu;
/// Disks, disk contracts, byte rates and IOPS.
mod disks;
/// Process matchers (`match = [...]`).
mod matchers;
/// Memory contracts, sizes and `host.reserved_memory`.
mod memory;
/// Network links and egress contracts.
mod net;

const EXAMPLE: &str = include_str!("../../config/qosd.toml");
const TWO_CPUS: HostFacts = crate::host::this_host(2.0, nothing_protected);

/// The processes that must never move are tested with `FakeHost::facts()`;
/// elsewhere matchers are free to name root or any path.
fn nothing_protected(_: &ProcessMatcher) -> Option<String> {
    None
}

const VDA: DeviceNumber = DeviceNumber {
    major: 254,
    minor: 0,
};
const VDB: DeviceNumber = DeviceNumber {
    major: 254,
    minor: 16,
};

/// A host with two disks, /dev/vda (254:0) and /dev/vdb (254:16).
fn fake_device(spec: &str) -> Result<DeviceNumber, String> {
    match spec {
        "/dev/vda" | "254:0" => Ok(VDA),
        "/dev/vdb" | "254:16" => Ok(VDB),
        _ => Err("no such file".to_owned()),
    }
}

const DISKS: HostFacts = HostFacts {
    online_cpus: 2.0,
    resolve_device: fake_device,
    find_interface: crate::testing::find_fake_interface,
    memory_total: None,
    resolve_user: crate::testing::resolve_fake_user,
    resolve_group: crate::testing::resolve_fake_group,
    captures_protected: nothing_protected,
};

fn parse_on(text: &str, host: HostFacts) -> Result<Loaded, ConfigError> {
    parse(text, Path::new("test.toml"), &host)
}

fn valid_on(text: &str, host: HostFacts) -> Loaded {
    match parse_on(text, host) {
        Ok(loaded) => loaded,
        Err(error) => panic!("expected a valid config, got:\n{error}"),
    }
}

fn valid(text: &str) -> Loaded {
    valid_on(text, TWO_CPUS)
}

fn valid_on_disks(text: &str) -> Loaded {
    valid_on(text, DISKS)
}

fn errors(text: &str) -> String {
    errors_on(text, TWO_CPUS)
}

fn errors_on(text: &str, host: HostFacts) -> String {
    match parse_on(text, host) {
        Ok(loaded) => panic!("expected errors, got {loaded:#?}"),
        Err(error) => error.rendered,
    }
}

/// Asserts exactly one error line, at `place` (`line:col`), naming `key`.
fn assert_one_error(text: &str, place: &str, key: &str, words: &str) {
    assert_one_error_on(TWO_CPUS, text, place, key, words);
}

fn assert_one_error_on(host: HostFacts, text: &str, place: &str, key: &str, words: &str) {
    let rendered = errors_on(text, host);
    assert_eq!(rendered.lines().count(), 1, "{rendered}");
    let prefix = format!("test.toml:{place}: error: `{key}`: ");
    assert!(
        rendered.starts_with(&prefix),
        "want {prefix:?}, got:\n{rendered}"
    );
    assert!(rendered.contains(words), "want {words:?} in:\n{rendered}");
}

/// Asserts exactly one error line on [`DISKS`] (the fake host of disks,
/// links, users and groups).
fn error_on_disks(text: &str, place: &str, key: &str, words: &str) {
    assert_one_error_on(DISKS, text, place, key, words);
}

/// Asserts one error line per line of `expected`, in that order, each
/// starting with that line (spaces around it aside).
fn assert_error_lines(rendered: &str, expected: &str) {
    let lines: Vec<&str> = rendered.lines().collect();
    let prefixes: Vec<&str> = expected.lines().map(str::trim).collect();
    assert_eq!(lines.len(), prefixes.len(), "{rendered}");
    for (line, prefix) in lines.iter().zip(prefixes) {
        assert!(
            line.starts_with(prefix),
            "want {prefix:?}, got:\n{rendered}"
        );
    }
}

/// Asserts that the baselines of `text` are overcommitted, as `message`
/// says: a warning, and an error at `host.allow_overcommit` (line 3, under
/// the `[host]` of line 2) once that refuses it.
fn assert_overcommitted(host: HostFacts, text: &str, message: &str) {
    let warning =
        format!("{message}; under full contention some tenants will get less than their baseline");
    assert_eq!(valid_on(text, host).warnings, [warning]);
    let refused = text.replace("[host]\n", "[host]\nallow_overcommit = false\n");
    let error = format!("{message}; lower the baselines or set `host.allow_overcommit = true`");
    assert_one_error_on(host, &refused, "3:20", "host.allow_overcommit", &error);
}

/// The example file with its commented-out lines that start (after "# ")
/// with one of `starts` uncommented, which must be `count` lines, as
/// validated on `host`: without warnings.
fn example_uncommented(starts: &[&str], count: usize, host: HostFacts) -> Config {
    let mut uncommented = 0;
    let text: Vec<&str> = EXAMPLE
        .lines()
        .map(|line| match line.strip_prefix("# ") {
            Some(code) if starts.iter().any(|start| code.starts_with(start)) => {
                uncommented += 1;
                code
            }
            _ => line,
        })
        .collect();
    assert_eq!(uncommented, count, "{text:#?}");
    let loaded = valid_on(&text.join("\n"), host);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    loaded.config
}

/// Asserts the table of `summary` whose header contains `header`: its
/// lines, one space between words, are those of `expected` (spaces around
/// each aside), and they all end in the same column, as they do when the
/// last column holds right-aligned numbers.
fn assert_table(summary: &str, header: &str, expected: &str) {
    let lines = summary.lines().skip_while(|line| !line.contains(header));
    let table: Vec<&str> = lines.take_while(|line| !line.is_empty()).collect();
    let words = |line: &str| line.split_whitespace().collect::<Vec<_>>().join(" ");
    let rows: Vec<String> = table.iter().map(|line| words(line)).collect();
    let expected: Vec<String> = expected.trim().lines().map(words).collect();
    assert_eq!(rows, expected, "{summary}");
    let width = |line: &&str| line.chars().count();
    assert!(
        table.iter().all(|line| width(line) == width(&table[0])),
        "{summary}"
    );
}

/// Parses each of `texts` on every host of these tests: none may panic,
/// whatever it says of the text.
fn parse_on_every_host(texts: &[&str]) {
    let hosts = [
        DISKS,
        TWO_CPUS,
        crate::host::this_host(f64::NAN, nothing_protected),
        crate::host::this_host(0.0, nothing_protected),
    ];
    for text in texts {
        for host in hosts {
            let _ = parse_on(text, host);
        }
    }
}

/// Asserts that `parsed` is an error whose message contains `words`.
fn assert_refused<T: std::fmt::Debug, E: std::fmt::Display>(parsed: Result<T, E>, words: &str) {
    match parsed {
        Ok(value) => panic!("expected an error with {words:?}, got {value:?}"),
        Err(error) => assert!(error.to_string().contains(words), "{error}"),
    }
}

fn tenant<'a>(config: &'a Config, name: &str) -> &'a Tenant {
    match config.tenants.iter().find(|tenant| tenant.name == name) {
        Some(tenant) => tenant,
        None => panic!("no tenant {name} in {config:#?}"),
    }
}

fn cpu(tenant: &Tenant) -> Contract<Cores> {
    match tenant.cpu {
        Some(cpu) => cpu,
        None => panic!("tenant {} has no cpu contract", tenant.name),
    }
}

#[test]
fn example_file_is_valid_on_two_cpus_without_warnings() {
    let loaded = valid(EXAMPLE);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let config = &loaded.config;
    let names: Vec<&str> = config.tenants.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["web", "batch"]);

    let web = tenant(config, "web");
    assert_eq!(web.cgroup, PathBuf::from("web.slice"));
    assert!(web.adopted);
    assert_eq!(
        cpu(web),
        Contract {
            baseline: Cores(1.5),
            burst: Cores(2.0),
            weight: 1.5
        }
    );

    let batch = tenant(config, "batch");
    assert_eq!(batch.cgroup, PathBuf::from("qosd.slice/batch"));
    assert!(!batch.adopted);
    assert_eq!(cpu(batch).baseline, Cores(0.5));
    assert_eq!(cpu(batch).burst, Cores(2.0));
    assert_eq!(cpu(batch).weight, 0.5);
}

#[test]
fn empty_file_gives_defaults() {
    let loaded = valid("");
    let config = loaded.config;
    assert_eq!(config.agent.interval, Duration::from_secs(1));
    assert_eq!(config.agent.cgroup_root, PathBuf::from("/sys/fs/cgroup"));
    assert_eq!(config.agent.parent, PathBuf::from("qosd.slice"));
    let listen: SocketAddr = "127.0.0.1:9477".parse().expect("literal address");
    assert_eq!(config.agent.metrics_listen, listen);
    assert_eq!(config.host.reserved_cpu, Cores(0.0));
    assert_eq!(config.host.contention_threshold, 0.9);
    assert!(config.host.allow_overcommit);
    assert!(config.tenants.is_empty());
    assert_eq!(
        loaded.warnings.len(),
        1,
        "no tenants: {:?}",
        loaded.warnings
    );
}

#[test]
fn all_agent_and_host_keys_are_read() {
    let config = valid(
        r#"
[agent]
interval = "500ms"
cgroup_root = "/mnt/cgroup2/"
parent = "./tenants//qos"
metrics_listen = "[::1]:9000"
[host]
reserved_cpu = "250m"
contention_threshold = 1
allow_overcommit = false
"#,
    )
    .config;
    assert_eq!(config.agent.interval, Duration::from_millis(500));
    assert_eq!(config.agent.cgroup_root, PathBuf::from("/mnt/cgroup2"));
    assert_eq!(config.agent.parent, PathBuf::from("tenants/qos"));
    assert_eq!(config.agent.metrics_listen.port(), 9000);
    assert_eq!(config.host.reserved_cpu, Cores(0.25));
    assert_eq!(config.host.contention_threshold, 1.0);
    assert!(!config.host.allow_overcommit);
}

#[test]
fn tenants_keep_file_order() {
    let config = valid(
        r#"
[tenants.zeta]
[tenants.alpha]
cpu = { baseline = 0.1, burst = 1 }
[tenants.mid]
[tenants.beta]
"#,
    )
    .config;
    let names: Vec<&str> = config.tenants.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["zeta", "alpha", "mid", "beta"]);
}

#[test]
fn tenant_without_cpu_is_valid_with_a_warning() {
    let loaded = valid("[tenants.idle]\n");
    assert_eq!(tenant(&loaded.config, "idle").cpu, None);
    assert!(loaded.warnings.iter().any(|w| w.contains("`idle`")));
}

#[test]
fn typo_in_a_key_suggests_the_known_key() {
    assert_one_error(
        "[tenants.web]\ncpu = { baselin = 1.5, burst = 2.0 }\n",
        "2:9",
        "tenants.web.cpu.baselin",
        "unknown key, did you mean `baseline`?",
    );
}

#[test]
fn typo_in_a_section_key_suggests_the_known_key() {
    assert_one_error(
        "[agent]\nintervall = \"1s\"\n",
        "2:1",
        "agent.intervall",
        "did you mean `interval`?",
    );
    assert_one_error("[tenant.web]\n", "1:2", "tenant", "did you mean `tenants`?");
}

#[test]
fn unknown_key_without_a_close_match_lists_the_known_keys() {
    assert_one_error(
        "[host]\nturbo = true\n",
        "2:1",
        "host.turbo",
        "expected one of `reserved_cpu`",
    );
}

#[test]
fn a_tenant_outside_tenants_gets_a_hint() {
    assert_one_error(
        "[web]\ncpu = { baseline = 1, burst = 2 }\n",
        "1:2",
        "web",
        "`[tenants.web]`",
    );
}

#[test]
fn interval_out_of_range() {
    assert_one_error(
        "[agent]\ninterval = \"100ms\"\n",
        "2:12",
        "agent.interval",
        "between 250ms and 60s",
    );
    assert_one_error(
        "[agent]\ninterval = \"2m\"\n",
        "2:12",
        "agent.interval",
        "out of range",
    );
    assert_one_error(
        "[agent]\ninterval = \"soon\"\n",
        "2:12",
        "agent.interval",
        "invalid duration",
    );
}

#[test]
fn interval_of_the_wrong_type_says_what_to_write() {
    assert_one_error(
        "[agent]\ninterval = 1\n",
        "2:12",
        "agent.interval",
        r#"expected a duration string such as "1s""#,
    );
}

#[test]
fn contention_threshold_out_of_range() {
    for bad in ["0", "1.5", "-0.1", "nan"] {
        assert_one_error(
            &format!("[host]\ncontention_threshold = {bad}\n"),
            "2:24",
            "host.contention_threshold",
            "more than 0 and at most 1",
        );
    }
}

#[test]
fn wrong_types_are_reported_with_their_key() {
    assert_one_error(
        "[tenants.web]\ncpu = 5\n",
        "2:7",
        "tenants.web.cpu",
        "expected a contract table",
    );
    assert_one_error(
        "[host]\nallow_overcommit = \"yes\"\n",
        "2:20",
        "host.allow_overcommit",
        "invalid type",
    );
    assert_one_error("tenants = 3\n", "1:11", "tenants", "table of tenants");
}

#[test]
fn bad_tenant_name() {
    assert_one_error(
        "[tenants.\"web app\"]\n",
        "1:10",
        "tenants.\"web app\"",
        "invalid tenant name \"web app\"",
    );
    assert_one_error(
        "[tenants.\"\"]\n",
        "1:10",
        "tenants.\"\"",
        "must not be empty",
    );
}

#[test]
fn cgroup_paths_must_stay_below_the_root() {
    assert_one_error(
        "[tenants.web]\ncgroup = \"/web.slice\"\n",
        "2:10",
        "tenants.web.cgroup",
        "must be relative",
    );
    assert_one_error(
        "[tenants.web]\ncgroup = \"a/../../etc\"\n",
        "2:10",
        "tenants.web.cgroup",
        "must not contain `..`",
    );
    assert_one_error(
        "[agent]\nparent = \"/qosd.slice\"\n",
        "2:10",
        "agent.parent",
        "must be relative",
    );
    assert_one_error(
        "[agent]\nparent = \".\"\n",
        "2:10",
        "agent.parent",
        "not the root itself",
    );
    assert_one_error(
        "[agent]\ncgroup_root = \"sys/fs/cgroup\"\n",
        "2:15",
        "agent.cgroup_root",
        "absolute",
    );
}

#[test]
fn bad_metrics_address() {
    assert_one_error(
        "[agent]\nmetrics_listen = \"localhost\"\n",
        "2:18",
        "agent.metrics_listen",
        "IP:PORT",
    );
}

#[test]
fn nested_or_shared_cgroups_are_errors() {
    assert_one_error(
        "[tenants.a]\ncgroup = \"web.slice\"\n[tenants.b]\ncgroup = \"web.slice/app\"\n",
        "4:10",
        "tenants.b.cgroup",
        "overlaps tenant `a`",
    );
    // An adopted cgroup that is qosd's parent would contain the owned tenants.
    assert_one_error(
        "[tenants.all]\ncgroup = \"qosd.slice\"\n[tenants.owned]\n",
        "3:10",
        "tenants.owned",
        "overlaps tenant `all`",
    );
}

#[test]
fn every_tenant_key_of_the_design_is_supported() {
    let loaded = parse_on(
        "[tenants.web]\nmatch = [{ user = \"alice\" }]\ndisk = []\nnet = []\n\
         memory = { baseline = \"1GiB\", burst = \"2GiB\" }\n\
         cpu = { baseline = 1, burst = 2 }\n\
         [[host.disks]]\ndevice = \"/dev/vda\"\nread_bps = \"50MiB/s\"\n\
         [[host.links]]\ninterface = \"eth0\"\negress = \"1Gbit/s\"\n",
        DISKS,
    );
    match loaded {
        Ok(loaded) => assert_eq!(loaded.config.tenants[0].matchers.len(), 1),
        Err(error) => panic!("{error}"),
    }
}

#[test]
fn syntax_errors_have_a_place() {
    let rendered = errors("[agent\ninterval = \"1s\"\n");
    assert!(rendered.starts_with("test.toml:1:7: error: "), "{rendered}");
    let rendered = errors("[tenants.web]\ncgroup = \"a\"\ncgroup = \"b\"\n");
    assert!(
        rendered.starts_with("test.toml:3:1: error: duplicate key `cgroup`"),
        "{rendered}"
    );
}

#[test]
fn all_errors_are_reported_together_in_file_order() {
    let rendered = errors(
        r#"
[agent]
interval = "10ms"
[host]
contention_threshold = 2
[tenants.web]
cpu = { baselin = 1.5, burst = 2.0 }
[tenants."bad name"]
cpu = { baseline = 3, burst = 2 }
[tenants.ok]
cpu = { baseline = 1, burst = "2 cores" }
"#,
    );
    assert_error_lines(
        &rendered,
        "test.toml:3:12: error: `agent.interval`
         test.toml:5:24: error: `host.contention_threshold`
         test.toml:7:9: error: `tenants.web.cpu.baselin`
         test.toml:8:10: error: `tenants.\"bad name\"`
         test.toml:9:20: error: `tenants.\"bad name\".cpu.baseline`
         test.toml:11:31: error: `tenants.ok.cpu.burst`",
    );
}

#[test]
fn load_reads_a_file_and_names_an_unreadable_one() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("qosd.toml");
    std::fs::write(&path, EXAMPLE).expect("write the example");
    let loaded = load(&path, &TWO_CPUS).expect("the example loads");
    assert_eq!(loaded.config.tenants.len(), 2);

    let missing = dir.path().join("missing.toml");
    let error = load(&missing, &TWO_CPUS).expect_err("a missing file");
    let rendered = error.to_string();
    assert!(rendered.starts_with(&format!("{}: error: ", missing.display())));
    assert!(rendered.contains("No such file"), "{rendered}");
}

#[test]
fn errors_in_a_file_name_that_file() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[agent]\ninterval = \"1h\"\n").expect("write");
    let rendered = load(&path, &TWO_CPUS).expect_err("bad interval").rendered;
    let prefix = format!("{}:2:12: error: `agent.interval`", path.display());
    assert!(rendered.starts_with(&prefix), "{rendered}");
}

#[test]
fn columns_count_characters_not_bytes() {
    let rendered = errors("# é\n[agent]\ninterval = \"é\"\n");
    assert!(rendered.starts_with("test.toml:3:12: "), "{rendered}");
}

#[test]
fn summary_lists_settings_and_an_aligned_row_per_tenant() {
    let summary = valid(EXAMPLE).config.summary();
    let lines: Vec<&str> = summary.lines().collect();
    assert!(lines[0].contains("tick every 1s"), "{summary}");
    assert!(lines[0].contains("/sys/fs/cgroup/qosd.slice"), "{summary}");
    assert!(lines[0].contains("127.0.0.1:9477"), "{summary}");
    assert!(lines[1].contains("0.0 cores reserved"), "{summary}");
    assert!(lines[1].contains("90%"), "{summary}");
    assert_eq!(lines[2], "disks:   none declared", "{summary}");
    assert_eq!(lines[3], "links:   none declared", "{summary}");
    assert!(lines[4].contains("2.0 cores"), "{summary}");
    assert!(!lines[4].contains("disk"), "{summary}");
    assert!(!lines[4].contains("net"), "{summary}");
    assert_table(
        &summary,
        "TENANT",
        "TENANT CGROUP CPU BASELINE CPU BURST CPU WEIGHT
         web web.slice (adopted) 1.5 2.0 1.5
         batch qosd.slice/batch (owned) 0.5 2.0 0.5",
    );
}

#[test]
fn summary_of_an_empty_config() {
    let summary = valid("").config.summary();
    assert!(summary.contains("tenants: none"), "{summary}");
    assert!(!summary.contains("TENANT"), "{summary}");
}

#[test]
fn no_panic_on_odd_input() {
    let odd = [
        "\u{0}",
        "[",
        "a = [1, \"x\"",
        "[[tenants]]\n",
        "[tenants.web.cpu]\nbaseline = 1e400\nburst = 1e400\n",
        "[tenants.web]\ncpu = { baseline = 9223372036854775807, burst = \"1e309m\" }\n",
        "[agent]\ninterval = \"18446744073709551616s\"\n",
        "agent = []\nhost = 1\n",
        "[host]\ncontention_threshold = inf\nreserved_cpu = \"\"\n",
        "\u{feff}[agent]\r\ninterval = \"1s\"\r\n",
        "[[host.disks]]\n",
        "[[host.disks]]\ndevice = \"\"\nread_bps = \"/s\"\n",
        "[[host.disks]]\ndevice = \":\"\nread_bps = \"1e400/s\"\nread_iops = 1e400\n",
        "[[host.disks]]\ndevice = \"99999999999:0\"\nwrite_bps = -0.0\nwrite_iops = -1\n",
        "[[host.disks]]\ndevice = \"/dev/vda\"\nread_bps = \"99999999999999999999999TiB/s\"\n",
        "[[host.disks]]\ndevice = \"/dev/vda\"\nread_bps = 1e308\n\
         [tenants.a]\ndisk = [{ device = \"/dev/vda\", read_bps = { baseline = 1e308, burst = 1e308 } }]\n\
         [tenants.b]\ndisk = [{ device = \"/dev/vda\", read_bps = { baseline = 1e308, burst = 1e308 } }]\n",
        "[host]\ndisks = 3\n",
        "[host.disks]\ndevice = \"/dev/vda\"\n",
        "[tenants.a]\ndisk = {}\n",
        "[tenants.a]\ndisk = [1, {}]\n",
        "[tenants.a]\ndisk = [{ device = \"/dev/vda\", read_bps = 1 }]\n",
        "[tenants.a]\ndisk = [{ device = \"\\u0000\", weight = nan }]\n",
    ];
    parse_on_every_host(&odd);
}

#[test]
fn a_tenant_that_fails_to_decode_still_has_its_name_checked() {
    let rendered = errors("[tenants.\"a b\"]\ncpu = { baselin = 1, burst = 2 }\n");
    let lines: Vec<&str> = rendered.lines().collect();
    assert_eq!(lines.len(), 2, "{rendered}");
    assert!(lines[0].starts_with("test.toml:1:10: error: `tenants.\"a b\"`: invalid tenant name"));
    assert!(lines[1].starts_with("test.toml:2:9: error: `tenants.\"a b\".cpu.baselin`"));
}

#[test]
fn a_dashed_slice_gets_its_nested_path_as_a_hint() {
    let hint = |path: &str| slice_path_hint(Path::new(path));
    assert_eq!(
        hint("tenant-a.slice").as_deref(),
        Some("systemd puts tenant-a.slice at tenant.slice/tenant-a.slice; write that path")
    );
    assert_eq!(
        hint("a-b-c.slice").as_deref(),
        Some("systemd puts a-b-c.slice at a.slice/a-b.slice/a-b-c.slice; write that path")
    );
    assert_eq!(hint("web.slice"), None, "no dash: at the root");
    assert_eq!(hint("tenant.slice/tenant-a.slice"), None, "already nested");
    assert_eq!(hint("docker-1.scope"), None, "not a slice");
}
