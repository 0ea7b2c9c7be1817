use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

const EXAMPLE: &str = include_str!("../../config/qosd.toml");
const TWO_CPUS: HostFacts = HostFacts::of_this_host(2.0);

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
    let rendered = errors(text);
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
fn unsupported_resources_say_not_yet() {
    assert_one_error(
        "[tenants.web]\nmemory = { baseline = \"1GiB\", burst = \"2GiB\" }\n",
        "2:10",
        "tenants.web.memory",
        "memory contracts are not supported by this version of qosd yet",
    );
    let rendered = errors(
        "[tenants.web]\nmatch = [{ user = \"www\" }]\ndisk = []\nnet = []\n\
         [[host.disks]]\ndevice = \"/dev/vda\"\n[[host.links]]\ninterface = \"eth0\"\n",
    );
    for key in [
        "tenants.web.match",
        "tenants.web.disk",
        "tenants.web.net",
        "host.disks",
        "host.links",
    ] {
        let line = rendered
            .lines()
            .find(|line| line.contains(&format!("`{key}`")));
        let line = line.unwrap_or_else(|| panic!("no error for {key} in:\n{rendered}"));
        assert!(
            line.contains("not supported by this version of qosd yet"),
            "{line}"
        );
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
    assert!(lines[2].contains("2.0 cores"), "{summary}");
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
    ];
    for text in odd {
        let _ = parse_on(text, TWO_CPUS);
        let _ = parse_on(text, HostFacts::of_this_host(f64::NAN));
        let _ = parse_on(text, HostFacts::of_this_host(0.0));
    }
}

#[test]
fn zero_online_cpus_is_reported_not_panicked() {
    let rendered = errors_on("", HostFacts::of_this_host(0.0));
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
