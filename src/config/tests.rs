use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

/// Process matchers (`match = [...]`).
mod matchers;
/// Memory contracts, sizes and `host.reserved_memory`.
mod memory;
/// Network links and egress contracts.
mod net;

const EXAMPLE: &str = include_str!("../../config/qosd.toml");
const TWO_CPUS: HostFacts = HostFacts::of_this_host(2.0, nothing_protected);

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

fn valid(text: &str) -> Loaded {
    match parse_on(text, TWO_CPUS) {
        Ok(loaded) => loaded,
        Err(error) => panic!("expected a valid config, got:\n{error}"),
    }
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
fn cores_accept_numbers_millicores_and_numeric_strings() {
    let config = valid(
        r#"
[tenants.a]
cpu = { baseline = "500m", burst = 2 }
[tenants.b]
cpu = { baseline = "0.25", burst = " 1500m " }
[tenants.c]
cpu = { baseline = 0, burst = 1e0 }
"#,
    )
    .config;
    assert_eq!(cpu(tenant(&config, "a")).baseline, Cores(0.5));
    assert_eq!(cpu(tenant(&config, "a")).burst, Cores(2.0));
    assert_eq!(cpu(tenant(&config, "b")).baseline, Cores(0.25));
    assert_eq!(cpu(tenant(&config, "b")).burst, Cores(1.5));
    assert_eq!(cpu(tenant(&config, "c")).baseline, Cores(0.0));
}

#[test]
fn cores_from_str_and_display() {
    assert_eq!("500m".parse::<Cores>(), Ok(Cores(0.5)));
    assert_eq!("2".parse::<Cores>(), Ok(Cores(2.0)));
    assert!("1.5 cores".parse::<Cores>().is_err());
    assert!("-1".parse::<Cores>().is_err());
    assert!("NaN".parse::<Cores>().is_err());
    assert!("inf".parse::<Cores>().is_err());
    assert!("m".parse::<Cores>().is_err());
    assert!(Cores::new(f64::NAN).is_err());
    assert_eq!(Cores::new(-0.0), Ok(Cores(0.0)));
    assert_eq!(Cores(2.0).to_string(), "2.0");
    assert_eq!(Cores(1.5).to_string(), "1.5");
    assert_eq!(Cores(0.125).to_string(), "0.125");
}

#[test]
fn weight_defaults_to_baseline_and_can_be_overridden() {
    let config = valid(
        r#"
[tenants.default]
cpu = { baseline = 1.5, burst = 2 }
[tenants.explicit]
cpu = { baseline = 0.1, burst = 2, weight = 3 }
[tenants.zero]
cpu = { baseline = 0, burst = 1 }
"#,
    )
    .config;
    assert_eq!(cpu(tenant(&config, "default")).weight, 1.5);
    assert_eq!(cpu(tenant(&config, "explicit")).weight, 3.0);
    assert_eq!(cpu(tenant(&config, "zero")).weight, ZERO_BASELINE_WEIGHT);
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
fn baseline_above_burst_points_at_the_baseline() {
    assert_one_error(
        "[tenants.web]\ncpu = { baseline = 2.5, burst = 2.0 }\n",
        "2:20",
        "tenants.web.cpu.baseline",
        "baseline of 2.5 cores is more than the burst of 2.0 cores",
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
fn bad_unit_string_says_which_forms_are_accepted() {
    assert_one_error(
        "[tenants.web]\ncpu = { baseline = \"1.5 cores\", burst = 2 }\n",
        "2:20",
        "tenants.web.cpu.baseline",
        r#"millicores ("500m")"#,
    );
}

#[test]
fn negative_and_nan_cores_are_errors() {
    assert_one_error(
        "[tenants.web]\ncpu = { baseline = -1, burst = 2 }\n",
        "2:20",
        "tenants.web.cpu.baseline",
        "must not be negative",
    );
    assert_one_error(
        "[tenants.web]\ncpu = { baseline = nan, burst = 2 }\n",
        "2:20",
        "tenants.web.cpu.baseline",
        "finite",
    );
    assert_one_error(
        "[host]\nreserved_cpu = \"-500m\"\n",
        "2:16",
        "host.reserved_cpu",
        "must not be negative",
    );
}

#[test]
fn burst_must_be_positive() {
    assert_one_error(
        "[tenants.web]\ncpu = { baseline = 0, burst = 0 }\n",
        "2:31",
        "tenants.web.cpu.burst",
        "at least 0.01 cores",
    );
}

#[test]
fn a_burst_below_what_cpu_max_can_hold_is_an_error() {
    assert_one_error(
        "[tenants.web]\ncpu = { baseline = 0, burst = \"1m\" }\n",
        "2:31",
        "tenants.web.cpu.burst",
        "at least 0.01 cores",
    );
}

#[test]
fn a_weight_beyond_what_cpu_weight_can_express_is_an_error() {
    assert_one_error(
        "[tenants.web]\ncpu = { baseline = 1, burst = 2, weight = 1e9 }\n",
        "2:43",
        "tenants.web.cpu.weight",
        "between 0.01 and 100",
    );
}

#[test]
fn weight_must_be_positive() {
    assert_one_error(
        "[tenants.web]\ncpu = { baseline = 1, burst = 2, weight = 0 }\n",
        "2:43",
        "tenants.web.cpu.weight",
        "between 0.01 and 100",
    );
}

#[test]
fn missing_burst_names_the_cpu_table() {
    assert_one_error(
        "[tenants.web]\ncpu = { baseline = 1 }\n",
        "2:7",
        "tenants.web.cpu",
        "missing required key `burst`",
    );
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
    let lines: Vec<&str> = rendered.lines().collect();
    let expected = [
        "test.toml:3:12: error: `agent.interval`",
        "test.toml:5:24: error: `host.contention_threshold`",
        "test.toml:7:9: error: `tenants.web.cpu.baselin`",
        "test.toml:8:10: error: `tenants.\"bad name\"`",
        "test.toml:9:20: error: `tenants.\"bad name\".cpu.baseline`",
        "test.toml:11:31: error: `tenants.ok.cpu.burst`",
    ];
    assert_eq!(lines.len(), expected.len(), "{rendered}");
    for (line, prefix) in lines.iter().zip(expected) {
        assert!(
            line.starts_with(prefix),
            "want {prefix:?}, got:\n{rendered}"
        );
    }
}

const OVERCOMMITTED: &str = r#"
[host]
reserved_cpu = 0.5
[tenants.web]
cpu = { baseline = 1.5, burst = 2.0 }
[tenants.batch]
cpu = { baseline = 1.5, burst = 1.5 }
"#;

#[test]
fn overcommitment_is_a_warning_by_default() {
    let loaded = valid(OVERCOMMITTED);
    let expected = "cpu baselines add up to 3.0 cores, more than the 1.5 cores available \
                    (2 online - 0.5 reserved)";
    assert!(
        loaded.warnings.iter().any(|w| w.starts_with(expected)),
        "{:?}",
        loaded.warnings
    );
}

#[test]
fn overcommitment_is_an_error_when_refused() {
    let text = OVERCOMMITTED.replace(
        "reserved_cpu = 0.5\n",
        "reserved_cpu = 0.5\nallow_overcommit = false\n",
    );
    assert_one_error(
        &text,
        "4:20",
        "host.allow_overcommit",
        "cpu baselines add up to 3.0 cores, more than the 1.5 cores available",
    );
}

#[test]
fn baselines_that_fit_exactly_are_not_overcommitted() {
    let loaded = valid(
        "[host]\nallow_overcommit = false\n\
         [tenants.a]\ncpu = { baseline = 0.1, burst = 1 }\n\
         [tenants.b]\ncpu = { baseline = 0.2, burst = 1 }\n\
         [tenants.c]\ncpu = { baseline = 1.7, burst = 2 }\n",
    );
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn burst_above_capacity_is_only_a_warning() {
    let loaded = valid("[tenants.web]\ncpu = { baseline = 1, burst = 8 }\n");
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.contains("burst of 8.0 cores")),
        "{:?}",
        loaded.warnings
    );
}

#[test]
fn reserving_all_cpus_is_an_error() {
    assert_one_error(
        "[host]\nreserved_cpu = 2\n",
        "2:16",
        "host.reserved_cpu",
        "leaves nothing for tenants: the host has 2 online CPUs",
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
    let header = lines
        .iter()
        .position(|l| l.contains("TENANT"))
        .expect("table");
    let web = lines[header + 1];
    let batch = lines[header + 2];
    assert!(web.contains("web.slice (adopted)"), "{summary}");
    assert!(batch.contains("qosd.slice/batch (owned)"), "{summary}");
    // Right-aligned numbers end in the same column.
    assert_eq!(lines[header].len(), web.len(), "{summary}");
    assert_eq!(web.len(), batch.len(), "{summary}");
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
    for text in odd {
        let _ = parse_on(text, DISKS);
        let _ = parse_on(text, TWO_CPUS);
        let _ = parse_on(text, HostFacts::of_this_host(f64::NAN, nothing_protected));
        let _ = parse_on(text, HostFacts::of_this_host(0.0, nothing_protected));
    }
}

#[test]
fn zero_online_cpus_is_reported_not_panicked() {
    let rendered = errors_on("", HostFacts::of_this_host(0.0, nothing_protected));
    assert!(rendered.contains("`host.reserved_cpu`"), "{rendered}");
}

#[test]
fn a_tenant_that_fails_to_decode_still_has_its_name_checked() {
    let rendered = errors("[tenants.\"a b\"]\ncpu = { baselin = 1, burst = 2 }\n");
    let lines: Vec<&str> = rendered.lines().collect();
    assert_eq!(lines.len(), 2, "{rendered}");
    assert!(lines[0].starts_with("test.toml:1:10: error: `tenants.\"a b\"`: invalid tenant name"));
    assert!(lines[1].starts_with("test.toml:2:9: error: `tenants.\"a b\".cpu.baselin`"));
}

// ---- disks ----

fn valid_on_disks(text: &str) -> Loaded {
    match parse_on(text, DISKS) {
        Ok(loaded) => loaded,
        Err(error) => panic!("expected a valid config, got:\n{error}"),
    }
}

fn disk_error(text: &str, place: &str, key: &str, words: &str) {
    assert_one_error_on(DISKS, text, place, key, words);
}

fn disk_of(tenant: &Tenant, device: DeviceNumber) -> &DiskContract {
    match tenant.disk.iter().find(|disk| disk.device.number == device) {
        Some(disk) => disk,
        None => panic!("tenant {} has no contract on {device}", tenant.name),
    }
}

fn limit(disk: &DiskContract, dimension: IoDimension) -> Contract<f64> {
    match disk.limits.get(dimension) {
        Some(limit) => *limit,
        None => panic!("{} has no {} contract", disk.device.name, dimension.key()),
    }
}

const MIB: f64 = 1024.0 * 1024.0;

/// /dev/vda: 50 MiB/s each way and 2000 read IOPS.
const VDA_HOST: &str = r#"
[[host.disks]]
device = "/dev/vda"
read_bps = "50MiB/s"
write_bps = "50MiB/s"
read_iops = 2000
"#;

#[test]
fn a_valid_disk_config() {
    let text = format!(
        r#"{VDA_HOST}
[[host.disks]]
device = "254:16"
write_iops = 1000

[tenants.db]
disk = [{{ device = "/dev/vda", read_bps = {{ baseline = "20MiB/s", burst = "50MiB/s" }}, read_iops = {{ baseline = 500, burst = 2000 }} }}]

[tenants.backup]
cpu = {{ baseline = 0.5, burst = 1 }}
disk = [
  {{ device = "254:0", read_bps = {{ baseline = "10MiB/s", burst = "50MiB/s" }}, weight = 3 }},
  {{ device = "/dev/vdb", write_iops = {{ baseline = 0, burst = 1000.0 }} }},
]
"#
    );
    let loaded = valid_on_disks(&text);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let config = &loaded.config;

    assert_eq!(config.host.disks.len(), 2);
    let vda = &config.host.disks[0];
    assert_eq!(
        vda.device,
        DeviceRef {
            name: "/dev/vda".to_owned(),
            number: VDA
        }
    );
    assert_eq!(
        vda.capacity,
        IoDimensions {
            read_bps: Some(50.0 * MIB),
            write_bps: Some(50.0 * MIB),
            read_iops: Some(2000.0),
            write_iops: None,
        }
    );
    let vdb = &config.host.disks[1];
    assert_eq!(vdb.device.name, "254:16");
    assert_eq!(vdb.device.number, VDB);
    assert_eq!(vdb.capacity.write_iops, Some(1000.0));
    assert_eq!(vdb.capacity.read_bps, None);

    let db = tenant(config, "db");
    assert_eq!(db.cpu, None);
    assert_eq!(db.disk.len(), 1);
    let db_vda = disk_of(db, VDA);
    assert_eq!(db_vda.device.name, "/dev/vda");
    // Default weights: the baseline as a percentage of the capacity.
    assert_eq!(
        limit(db_vda, IoDimension::ReadBps),
        Contract {
            baseline: 20.0 * MIB,
            burst: 50.0 * MIB,
            weight: 40.0
        }
    );
    assert_eq!(
        limit(db_vda, IoDimension::ReadIops),
        Contract {
            baseline: 500.0,
            burst: 2000.0,
            weight: 25.0
        }
    );
    assert_eq!(db_vda.limits.write_bps, None);
    assert_eq!(db_vda.limits.write_iops, None);

    let backup = tenant(config, "backup");
    assert_eq!(backup.disk.len(), 2);
    // Named by number, matched to /dev/vda's entry; the explicit weight wins.
    let backup_vda = disk_of(backup, VDA);
    assert_eq!(backup_vda.device.name, "254:0");
    assert_eq!(limit(backup_vda, IoDimension::ReadBps).baseline, 10.0 * MIB);
    assert_eq!(limit(backup_vda, IoDimension::ReadBps).weight, 3.0);
    let backup_vdb = disk_of(backup, VDB);
    assert_eq!(
        limit(backup_vdb, IoDimension::WriteIops),
        Contract {
            baseline: 0.0,
            burst: 1000.0,
            weight: ZERO_BASELINE_WEIGHT
        }
    );
}

#[test]
fn tiny_default_disk_weights_are_clamped_to_the_weight_range() {
    let text = format!(
        "{VDA_HOST}[tenants.a]\ndisk = [{{ device = \"/dev/vda\", read_bps = {{ baseline = \"1KiB/s\", burst = \"1MiB/s\" }}, read_iops = {{ baseline = 2000, burst = 2000 }} }}]\n"
    );
    let config = valid_on_disks(&text).config;
    let vda = disk_of(tenant(&config, "a"), VDA);
    assert_eq!(limit(vda, IoDimension::ReadBps).weight, 0.01);
    assert_eq!(limit(vda, IoDimension::ReadIops).weight, 100.0);
}

#[test]
fn byte_rates_parse_in_si_and_binary_units() {
    let cases = [
        ("20MiB/s", 20_971_520.0),
        ("500M/s", 500_000_000.0),
        ("500MB/s", 500_000_000.0),
        ("1.5GiB/s", 1_610_612_736.0),
        ("800KiB/s", 819_200.0),
        ("2kB/s", 2000.0),
        ("2K/s", 2000.0),
        ("1000B/s", 1000.0),
        ("1000/s", 1000.0),
        ("1T/s", 1e12),
        ("1TiB/s", 1_099_511_627_776.0),
        (" 50 MiB/s ", 52_428_800.0),
        ("0B/s", 0.0),
        // Zero is zero in every unit: it needs none.
        ("0", 0.0),
        ("0.0", 0.0),
    ];
    for (text, bytes) in cases {
        assert_eq!(
            text.parse::<BytesPerSecond>(),
            Ok(BytesPerSecond(bytes)),
            "{text}"
        );
    }
    for bad in [
        "50MiB",
        "1000",
        "50Mb/s",
        "50Mbit/s",
        "50 MIB/s",
        "50mB/s",
        "-1M/s",
        "M/s",
        "/s",
        "",
        "1.2.3M/s",
        "50 MiB/sec",
        "infM/s",
        "1e3M/s",
    ] {
        assert!(
            bad.parse::<BytesPerSecond>().is_err(),
            "{bad:?} was accepted"
        );
    }
    let error = "50Mb/s".parse::<BytesPerSecond>().expect_err("bits");
    assert!(error.to_string().contains("bits"), "{error}");
    let error = "50MiB".parse::<BytesPerSecond>().expect_err("no /s");
    assert!(error.to_string().contains("`/s`"), "{error}");
    assert!(BytesPerSecond::new(f64::NAN).is_err());
    assert!(BytesPerSecond::new(f64::INFINITY).is_err());
    assert_eq!(BytesPerSecond::new(-0.0), Ok(BytesPerSecond(0.0)));
}

#[test]
fn byte_rates_display_in_the_largest_exact_unit() {
    let cases = [
        (20_971_520.0, "20 MiB/s"),
        (500_000_000.0, "500 MB/s"),
        (1_610_612_736.0, "1.5 GiB/s"),
        (819_200.0, "800 KiB/s"),
        (1000.0, "1000 B/s"),
        (2000.0, "2 kB/s"),
        (1_024_000.0, "1000 KiB/s"),
        (512.0, "512 B/s"),
        (0.0, "0 B/s"),
        (1e12, "1 TB/s"),
        (1_099_511_627_776.0, "1 TiB/s"),
        (62_914_560.0, "60 MiB/s"),
        // Not exact in any unit: rounded in the largest binary unit.
        (1_398_101.0, "1.333 MiB/s"),
    ];
    for (bytes, text) in cases {
        assert_eq!(format_bytes_per_second(bytes), text, "{bytes}");
        assert_eq!(BytesPerSecond(bytes).to_string(), text, "{bytes}");
    }
    // What is displayed exactly parses back to the same value.
    for text in ["20 MiB/s", "500 MB/s", "1.5 GiB/s", "2 kB/s", "512 B/s"] {
        let rate: BytesPerSecond = text.parse().expect(text);
        assert_eq!(rate.to_string(), text);
    }
}

#[test]
fn a_bad_byte_rate_says_which_forms_are_accepted() {
    disk_error(
        "[[host.disks]]\ndevice = \"/dev/vda\"\nread_bps = \"50 megs/s\"\n",
        "3:12",
        "host.disks[0].read_bps",
        r#"invalid byte rate "50 megs/s": write bytes per second as "50MiB/s", "500M/s""#,
    );
    disk_error(
        "[[host.disks]]\ndevice = \"/dev/vda\"\nread_bps = \"50MiB\"\n",
        "3:12",
        "host.disks[0].read_bps",
        "a rate ends in `/s`",
    );
    disk_error(
        "[[host.disks]]\ndevice = \"/dev/vda\"\nread_bps = true\n",
        "3:12",
        "host.disks[0].read_bps",
        r#"expected a byte rate such as "50MiB/s""#,
    );
}

#[test]
fn iops_are_whole_numbers() {
    disk_error(
        "[[host.disks]]\ndevice = \"/dev/vda\"\nread_iops = 1.5\n",
        "3:13",
        "host.disks[0].read_iops",
        "whole number",
    );
    disk_error(
        "[[host.disks]]\ndevice = \"/dev/vda\"\nread_iops = \"2k\"\n",
        "3:13",
        "host.disks[0].read_iops",
        "write a whole number of IOs per second without quotes, such as 2000",
    );
    disk_error(
        "[[host.disks]]\ndevice = \"/dev/vda\"\nwrite_iops = \"50MiB/s\"\n",
        "3:14",
        "host.disks[0].write_iops",
        "belongs in `read_bps` or `write_bps`",
    );
    disk_error(
        "[[host.disks]]\ndevice = \"/dev/vda\"\nwrite_iops = -5\n",
        "3:14",
        "host.disks[0].write_iops",
        "must not be negative",
    );
    let config = valid_on_disks(
        "[[host.disks]]\ndevice = \"/dev/vda\"\nread_iops = 2e3\nwrite_iops = 1000.0\n",
    )
    .config;
    assert_eq!(config.host.disks[0].capacity.read_iops, Some(2000.0));
    assert_eq!(config.host.disks[0].capacity.write_iops, Some(1000.0));
}

#[test]
fn a_plain_number_of_bytes_per_second_is_read_as_bytes() {
    let loaded = valid_on_disks(
        "[[host.disks]]\ndevice = \"/dev/vda\"\nread_bps = 52428800\nwrite_bps = 50\n",
    );
    let capacity = loaded.config.host.disks[0].capacity;
    assert_eq!(capacity.read_bps, Some(50.0 * MIB));
    assert_eq!(capacity.write_bps, Some(50.0));
    // 50 bytes per second is almost certainly a unit left out.
    assert_eq!(loaded.warnings.len(), 2, "{:?}", loaded.warnings);
    assert!(
        loaded.warnings.iter().any(|w| w
            .contains("`host.disks[0].write_bps` is 50 bytes per second")
            && w.contains("\"50MiB/s\"")),
        "{:?}",
        loaded.warnings
    );
}

#[test]
fn a_disk_capacity_must_be_positive() {
    disk_error(
        "[[host.disks]]\ndevice = \"/dev/vda\"\nread_bps = \"0MiB/s\"\n",
        "3:12",
        "host.disks[0].read_bps",
        "a capacity must be more than 0, got 0 B/s",
    );
    disk_error(
        "[[host.disks]]\ndevice = \"/dev/vda\"\nwrite_iops = 0\n",
        "3:14",
        "host.disks[0].write_iops",
        "more than 0, got 0 IOPS",
    );
}

#[test]
fn a_disk_without_any_capacity_is_an_error() {
    disk_error(
        "[[host.disks]]\ndevice = \"/dev/vda\"\n",
        "1:1",
        "host.disks[0]",
        "declare at least one capacity of \"/dev/vda\": `read_bps`, `write_bps`, `read_iops` or `write_iops`",
    );
    disk_error(
        "[host]\ndisks = [{ device = \"/dev/vda\" }]\n",
        "2:10",
        "host.disks[0]",
        "declare at least one capacity",
    );
}

#[test]
fn a_host_disk_that_does_not_exist_is_an_error() {
    disk_error(
        "[[host.disks]]\ndevice = \"/dev/vdz\"\nread_bps = \"50MiB/s\"\n",
        "2:10",
        "host.disks[0].device",
        "no such block device /dev/vdz: no such file",
    );
    disk_error(
        "[[host.disks]]\ndevice = \"vda\"\nread_bps = \"50MiB/s\"\n",
        "2:10",
        "host.disks[0].device",
        r#"invalid device "vda": write an absolute path such as "/dev/vda" or a device number MAJ:MIN"#,
    );
}

#[test]
fn the_same_disk_twice_is_an_error_at_the_second() {
    disk_error(
        &format!("{VDA_HOST}[[host.disks]]\ndevice = \"254:0\"\nread_bps = \"10MiB/s\"\n"),
        "8:10",
        "host.disks[1].device",
        "device 254:0 (254:0) is already declared by `host.disks[0]` (as \"/dev/vda\")",
    );
}

#[test]
fn a_tenant_disk_that_does_not_exist_is_an_error() {
    disk_error(
        &format!(
            "{VDA_HOST}[tenants.db]\ndisk = [{{ device = \"/dev/vdz\", read_bps = {{ baseline = \"1MiB/s\", burst = \"2MiB/s\" }} }}]\n"
        ),
        "8:20",
        "tenants.db.disk[0].device",
        "no such block device /dev/vdz: no such file",
    );
}

#[test]
fn a_tenant_disk_must_be_declared_in_host_disks() {
    disk_error(
        &format!(
            "{VDA_HOST}[tenants.db]\ndisk = [{{ device = \"/dev/vdb\", read_bps = {{ baseline = \"1MiB/s\", burst = \"2MiB/s\" }} }}]\n"
        ),
        "8:20",
        "tenants.db.disk[0].device",
        "device /dev/vdb (254:16) is not declared in `[[host.disks]]`; add a `[[host.disks]]` entry \
         with `device = \"/dev/vdb\"` and its capacity, such as `read_bps = \"50MiB/s\"` \
         (declared: /dev/vda (254:0))",
    );
    disk_error(
        "[tenants.db]\ndisk = [{ device = \"/dev/vda\", read_iops = { baseline = 1, burst = 2 } }]\n",
        "2:20",
        "tenants.db.disk[0].device",
        "(no device is declared yet)",
    );
}

#[test]
fn a_tenant_dimension_needs_a_capacity_for_it() {
    disk_error(
        &format!(
            "{VDA_HOST}[tenants.db]\ndisk = [{{ device = \"/dev/vda\", write_iops = {{ baseline = 10, burst = 20 }} }}]\n"
        ),
        "8:45",
        "tenants.db.disk[0].write_iops",
        "/dev/vda has no `write_iops` capacity: add `write_iops = ...` to its `[[host.disks]]` \
         entry (`host.disks[0]`)",
    );
}

#[test]
fn a_disk_baseline_above_capacity_is_an_error() {
    disk_error(
        &format!(
            "{VDA_HOST}[tenants.db]\ndisk = [{{ device = \"/dev/vda\", read_bps = {{ baseline = \"60MiB/s\", burst = \"60MiB/s\" }} }}]\n"
        ),
        "8:56",
        "tenants.db.disk[0].read_bps.baseline",
        "the baseline of 60 MiB/s is more than the read_bps capacity of /dev/vda, 50 MiB/s (`host.disks[0]`)",
    );
}

#[test]
fn a_disk_baseline_above_burst_is_an_error() {
    disk_error(
        &format!(
            "{VDA_HOST}[tenants.db]\ndisk = [{{ device = \"/dev/vda\", read_iops = {{ baseline = 300, burst = 200 }} }}]\n"
        ),
        "8:57",
        "tenants.db.disk[0].read_iops.baseline",
        "the baseline of 300 IOPS is more than the burst of 200 IOPS",
    );
}

#[test]
fn a_disk_burst_must_be_positive() {
    disk_error(
        &format!(
            "{VDA_HOST}[tenants.db]\ndisk = [{{ device = \"/dev/vda\", read_bps = {{ baseline = 0, burst = \"0MiB/s\" }} }}]\n"
        ),
        "8:67",
        "tenants.db.disk[0].read_bps.burst",
        "the burst must be more than 0, got 0 B/s",
    );
}

#[test]
fn a_disk_burst_above_capacity_is_only_a_warning() {
    let loaded = valid_on_disks(&format!(
        "{VDA_HOST}[tenants.db]\ndisk = [{{ device = \"/dev/vda\", read_bps = {{ baseline = \"5MiB/s\", burst = \"1GiB/s\" }} }}]\n"
    ));
    assert_eq!(
        loaded.warnings,
        [
            "tenant `db`: the disk read_bps burst of 1 GiB/s on /dev/vda is more than its capacity of 50 MiB/s, so it cannot be reached"
        ]
    );
}

#[test]
fn the_same_disk_twice_in_a_tenant_is_an_error() {
    disk_error(
        &format!(
            "{VDA_HOST}[tenants.db]\ndisk = [\n  {{ device = \"/dev/vda\", read_bps = {{ baseline = 0, burst = \"1MiB/s\" }} }},\n  {{ device = \"254:0\", write_bps = {{ baseline = 0, burst = \"1MiB/s\" }} }},\n]\n"
        ),
        "10:14",
        "tenants.db.disk[1].device",
        "device 254:0 (254:0) already has a contract in `tenants.db.disk[0]` (as \"/dev/vda\"); \
         write all its dimensions in one entry",
    );
}

#[test]
fn a_disk_entry_needs_a_dimension() {
    disk_error(
        &format!("{VDA_HOST}[tenants.db]\ndisk = [{{ device = \"/dev/vda\", weight = 2 }}]\n"),
        "8:9",
        "tenants.db.disk[0]",
        "a disk entry needs a contract on at least one of `read_bps`, `write_bps`, `read_iops` or `write_iops`",
    );
}

#[test]
fn a_disk_weight_belongs_to_the_entry() {
    disk_error(
        &format!(
            "{VDA_HOST}[tenants.db]\ndisk = [{{ device = \"/dev/vda\", read_iops = {{ baseline = 1, burst = 2, weight = 5 }} }}]\n"
        ),
        "8:80",
        "tenants.db.disk[0].read_iops.weight",
        "a disk entry has one weight for all its dimensions: write `weight = ...` next to its `device`",
    );
    disk_error(
        &format!(
            "{VDA_HOST}[tenants.db]\ndisk = [{{ device = \"/dev/vda\", read_iops = {{ baseline = 1, burst = 2 }}, weight = 500 }}]\n"
        ),
        "8:82",
        "tenants.db.disk[0].weight",
        "the weight must be between 0.01 and 100 (io.weight 1..10000), got 500",
    );
}

#[test]
fn typos_in_disk_keys_suggest_the_known_key() {
    disk_error(
        "[[host.disks]]\ndevice = \"/dev/vda\"\nread_bsp = \"50MiB/s\"\n",
        "3:1",
        "host.disks[0].read_bsp",
        "unknown key, did you mean `read_bps`?",
    );
    disk_error(
        &format!(
            "{VDA_HOST}[tenants.db]\ndisk = [{{ device = \"/dev/vda\", read_iop = {{ baseline = 1, burst = 2 }} }}]\n"
        ),
        "8:32",
        "tenants.db.disk[0].read_iop",
        "unknown key, did you mean `read_iops`?",
    );
    disk_error(
        &format!(
            "{VDA_HOST}[tenants.db]\ndisk = [{{ device = \"/dev/vda\", read_bps = {{ baseline = 0 }} }}]\n"
        ),
        "8:43",
        "tenants.db.disk[0].read_bps",
        "missing required key `burst`",
    );
}

#[test]
fn a_broken_host_disk_does_not_make_its_tenants_undeclared() {
    // Only the host's error: the tenant's device is not "undeclared".
    disk_error(
        "[[host.disks]]\ndevice = \"/dev/vda\"\nread_bps = \"fast\"\n\
         [tenants.db]\ndisk = [{ device = \"/dev/vda\", read_bps = { baseline = \"1MiB/s\", burst = \"2MiB/s\" } }]\n",
        "3:12",
        "host.disks[0].read_bps",
        "invalid byte rate",
    );
    // Nor does a broken [host] table.
    disk_error(
        "[host]\nreserved_cpus = 1\n\
         [[host.disks]]\ndevice = \"/dev/vda\"\nread_bps = \"50MiB/s\"\n\
         [tenants.db]\ndisk = [{ device = \"/dev/vda\", read_bps = { baseline = \"1MiB/s\", burst = \"2MiB/s\" } }]\n",
        "2:1",
        "host.reserved_cpus",
        "did you mean `reserved_cpu`?",
    );
}

#[test]
fn disk_errors_are_all_reported_together() {
    let rendered = errors_on(
        &format!(
            r#"{VDA_HOST}[[host.disks]]
device = "/dev/vdq"
read_bps = "1GiB"
[tenants.a]
disk = [{{ device = "/dev/vda", read_bps = {{ baseline = "1MiB", burst = "2MiB/s" }}, write_bps = {{ baseline = "9MiB/s", burst = "8MiB/s" }} }}]
[tenants.b]
disk = [{{ device = "/dev/vda", read_iops = {{ baseline = 1.5, burst = 2 }}, weight = 0 }}]
"#
        ),
        DISKS,
    );
    let lines: Vec<&str> = rendered.lines().collect();
    let expected = [
        "test.toml:8:10: error: `host.disks[1].device`: no such block device /dev/vdq",
        "test.toml:9:12: error: `host.disks[1].read_bps`: invalid byte rate",
        "test.toml:11:56: error: `tenants.a.disk[0].read_bps.baseline`: invalid byte rate",
        "test.toml:11:109: error: `tenants.a.disk[0].write_bps.baseline`: the baseline of 9 MiB/s is more than the burst of 8 MiB/s",
        "test.toml:13:57: error: `tenants.b.disk[0].read_iops.baseline`: IOPS are a whole number",
        "test.toml:13:84: error: `tenants.b.disk[0].weight`: the weight must be between 0.01 and 100",
    ];
    assert_eq!(lines.len(), expected.len(), "{rendered}");
    for (line, prefix) in lines.iter().zip(expected) {
        assert!(
            line.starts_with(prefix),
            "want {prefix:?}, got:\n{rendered}"
        );
    }
}

const DISK_OVERCOMMITTED: &str = r#"
[host]
[[host.disks]]
device = "/dev/vda"
read_bps = "50MiB/s"
read_iops = 2000
[tenants.db]
disk = [{ device = "/dev/vda", read_bps = { baseline = "20MiB/s", burst = "50MiB/s" }, read_iops = { baseline = 1000, burst = 2000 } }]
[tenants.backup]
disk = [{ device = "254:0", read_bps = { baseline = "40MiB/s", burst = "50MiB/s" }, read_iops = { baseline = 1000, burst = 2000 } }]
"#;

#[test]
fn disk_overcommitment_is_a_warning_by_default() {
    let loaded = valid_on_disks(DISK_OVERCOMMITTED);
    // read_iops add up to exactly the capacity: not overcommitted.
    assert_eq!(
        loaded.warnings,
        [
            "disk read_bps baselines on /dev/vda add up to 60 MiB/s, more than its capacity of \
          50 MiB/s; under full contention some tenants will get less than their baseline"
        ]
    );
}

#[test]
fn disk_overcommitment_is_an_error_when_refused() {
    let text = DISK_OVERCOMMITTED.replace("[host]\n", "[host]\nallow_overcommit = false\n");
    disk_error(
        &text,
        "3:20",
        "host.allow_overcommit",
        "disk read_bps baselines on /dev/vda add up to 60 MiB/s, more than its capacity of \
         50 MiB/s; lower the baselines or set `host.allow_overcommit = true`",
    );
}

#[test]
fn disk_contracts_need_no_cpu_contract() {
    let loaded = valid_on_disks(&format!(
        "{VDA_HOST}[tenants.db]\ndisk = [{{ device = \"/dev/vda\", read_bps = {{ baseline = 0, burst = \"1MiB/s\" }} }}]\n[tenants.idle]\ndisk = []\n"
    ));
    assert_eq!(
        loaded.warnings,
        ["tenant `idle` has no cpu, disk, net or memory contract: qosd will only report its usage"]
    );
}

#[test]
fn device_numbers_parse() {
    assert_eq!(parse_device_number("254:0"), Some(VDA));
    assert_eq!(
        parse_device_number(" 8:16 "),
        Some(DeviceNumber {
            major: 8,
            minor: 16
        })
    );
    for bad in [
        "8:",
        ":1",
        "a:b",
        "1:2:3",
        "99999999999:0",
        "+8:1",
        "8 :1",
        "",
        "/dev/sda",
    ] {
        assert_eq!(parse_device_number(bad), None, "{bad:?}");
    }
}

#[test]
fn the_real_resolver_explains_what_is_not_a_block_device() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("disk.img");
    std::fs::write(&file, b"").expect("write");
    let path = |p: &Path| p.to_str().expect("UTF-8 path").to_owned();
    assert_eq!(
        resolve_block_device(&path(&file)),
        Err("not a block device (it is a regular file)".to_owned())
    );
    assert_eq!(
        resolve_block_device(&path(dir.path())),
        Err("not a block device (it is a directory)".to_owned())
    );
    assert_eq!(
        resolve_block_device(&path(&dir.path().join("missing"))),
        Err("no such file".to_owned())
    );
    if Path::new("/dev/null").exists() {
        assert_eq!(
            resolve_block_device("/dev/null"),
            Err("not a block device (it is a character device)".to_owned())
        );
    }
    let unknown = resolve_block_device("4094:1048575").expect_err("no such number");
    assert!(
        unknown.contains("/sys/dev/block/4094:1048575 does not exist"),
        "{unknown}"
    );
    let relative = resolve_block_device("vda").expect_err("relative");
    assert!(relative.contains("absolute path"), "{relative}");
}

/// Every block device the kernel lists resolves, by number and by its /dev
/// node (when this host has both).
#[test]
fn the_real_resolver_finds_this_hosts_block_devices() {
    let Ok(listed) = std::fs::read_dir("/sys/dev/block") else {
        return;
    };
    for entry in listed.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(number) = parse_device_number(&name) else {
            continue;
        };
        assert_eq!(resolve_block_device(&name), Ok(number));
        let uevent = std::fs::read_to_string(entry.path().join("uevent")).unwrap_or_default();
        let node = uevent
            .lines()
            .find_map(|line| line.strip_prefix("DEVNAME="))
            .map(|devname| format!("/dev/{devname}"));
        if let Some(node) = node.filter(|node| Path::new(node).exists()) {
            assert_eq!(resolve_block_device(&node), Ok(number), "{node}");
        }
    }
}

/// The example's commented-out disk lines, uncommented, form a valid config.
#[test]
fn the_example_disk_configuration_is_valid_when_uncommented() {
    let disk_lines = [
        "[[host.disks]]",
        "device = ",
        "read_bps = ",
        "write_bps = ",
        "read_iops = ",
        "write_iops = ",
        // Not the `disk = [{ device = D, ... }]` that documents the keys.
        "disk = [{ device = \"",
    ];
    let mut uncommented = 0;
    let text: Vec<&str> = EXAMPLE
        .lines()
        .map(|line| match line.strip_prefix("# ") {
            Some(code) if disk_lines.iter().any(|start| code.starts_with(start)) => {
                uncommented += 1;
                code
            }
            _ => line,
        })
        .collect();
    assert_eq!(uncommented, 8, "{text:#?}");
    let loaded = valid_on_disks(&text.join("\n"));
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let config = &loaded.config;
    assert_eq!(config.host.disks.len(), 1);
    let web = disk_of(tenant(config, "web"), VDA);
    assert_eq!(limit(web, IoDimension::ReadBps).baseline, 20.0 * MIB);
    let batch = disk_of(tenant(config, "batch"), VDA);
    assert_eq!(limit(batch, IoDimension::WriteIops).burst, 1000.0);
}

#[test]
fn summary_lists_disks_and_disk_contracts() {
    let text = format!(
        "{VDA_HOST}[tenants.db]\ndisk = [{{ device = \"/dev/vda\", read_bps = {{ baseline = \"20MiB/s\", burst = \"50MiB/s\" }}, read_iops = {{ baseline = 500, burst = 2000 }} }}]\n[tenants.web]\ncpu = {{ baseline = 1, burst = 2 }}\n"
    );
    let summary = valid_on_disks(&text).config.summary();
    let lines: Vec<&str> = summary.lines().collect();
    assert_eq!(lines[2], "disks:   1 (/dev/vda)", "{summary}");
    assert!(
        lines[4].ends_with("cpu baselines add up to 1.0 cores, 1 disk contract"),
        "{summary}"
    );
    let disks = lines
        .iter()
        .position(|l| l.starts_with("  DISK"))
        .expect("disk table");
    assert_eq!(
        lines[disks + 1].split_whitespace().collect::<Vec<_>>(),
        [
            "/dev/vda", "254:0", "50", "MiB/s", "50", "MiB/s", "2000", "IOPS", "-"
        ],
        "{summary}"
    );
    let contracts = lines
        .iter()
        .position(|l| l.contains("DIMENSION"))
        .expect("disk contract table");
    assert_eq!(
        lines[contracts + 1].split_whitespace().collect::<Vec<_>>(),
        [
            "db", "/dev/vda", "read_bps", "20", "MiB/s", "50", "MiB/s", "40"
        ],
        "{summary}"
    );
    assert_eq!(
        lines[contracts + 2].split_whitespace().collect::<Vec<_>>(),
        [
            "db",
            "/dev/vda",
            "read_iops",
            "500",
            "IOPS",
            "2000",
            "IOPS",
            "25"
        ],
        "{summary}"
    );
    // Right-aligned numbers end in the same column.
    assert_eq!(
        lines[contracts].len(),
        lines[contracts + 1].len(),
        "{summary}"
    );
    assert_eq!(lines[disks].len(), lines[disks + 1].len(), "{summary}");
}

#[test]
fn disks_that_are_not_a_list_say_how_to_write_them() {
    disk_error(
        "[host.disks]\ndevice = \"/dev/vda\"\nread_bps = \"50MiB/s\"\n",
        "1:1",
        "host.disks",
        "declare each in its own `[[host.disks]]` table (double brackets)",
    );
    disk_error(
        "[tenants.db]\ndisk = { device = \"/dev/vda\" }\n",
        "2:8",
        "tenants.db.disk",
        "expected a list of disk contracts, one per device, such as `disk = [{ device = ",
    );
    disk_error(
        "[tenants.db]\ndisk = [\"/dev/vda\"]\n",
        "2:9",
        "tenants.db.disk[0]",
        "expected a disk contract table such as",
    );
}

#[test]
fn one_bad_disk_entry_hides_nothing_else() {
    let rendered = errors_on(
        r#"
[host]
reserved_cpus = 1
[[host.disks]]
devise = "/dev/vda"
[[host.disks]]
device = "/dev/vdz"
read_bps = "50MiB/s"
[tenants.db]
cpu = { baseline = 1 }
disk = [
  { device = "/dev/vda", read_bps = { baseline = "20MiB/s", burst = "1MiB/s" } },
  { device = "/dev/vdb", read_bsp = { baseline = "20MiB/s", burst = "50MiB/s" } },
]
"#,
        DISKS,
    );
    let lines: Vec<&str> = rendered.lines().collect();
    let expected = [
        "test.toml:3:1: error: `host.reserved_cpus`: unknown key, did you mean `reserved_cpu`?",
        "test.toml:5:1: error: `host.disks[0].devise`: unknown key, did you mean `device`?",
        "test.toml:7:10: error: `host.disks[1].device`: no such block device /dev/vdz",
        "test.toml:10:7: error: `tenants.db.cpu`: missing required key `burst`",
        "test.toml:12:50: error: `tenants.db.disk[0].read_bps.baseline`: the baseline of 20 MiB/s is more than the burst of 1 MiB/s",
        "test.toml:13:26: error: `tenants.db.disk[1].read_bsp`: unknown key, did you mean `read_bps`?",
    ];
    assert_eq!(lines.len(), expected.len(), "{rendered}");
    for (line, prefix) in lines.iter().zip(expected) {
        assert!(
            line.starts_with(prefix),
            "want {prefix:?}, got:\n{rendered}"
        );
    }
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
