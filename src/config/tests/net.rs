//! `[[host.links]]`, the tenants' `net = [...]` and bit rates. The fake host
//! ([`DISKS`]) has the interfaces eth0 and veth-ctr.

use super::*;

/// eth0 with 1 Gbit/s of egress; text appended to it starts on line 5.
const ETH0_HOST: &str = r#"
[[host.links]]
interface = "eth0"
egress = "1Gbit/s"
"#;

fn net_of<'a>(tenant: &'a Tenant, interface: &str) -> &'a NetContract {
    match tenant.net.iter().find(|net| net.interface == interface) {
        Some(net) => net,
        None => panic!("tenant {} has no contract on {interface}", tenant.name),
    }
}

fn bits(text: &str) -> Result<BitsPerSecond, RateError> {
    text.parse()
}

#[test]
fn bit_rates_parse_in_si_and_binary_units_and_tc_spellings() {
    let cases = [
        ("100Mbit/s", 1e8),
        ("100Mbit", 1e8),
        ("100mbit", 1e8),
        ("100MBIT", 1e8),
        (" 100 Mbit/s ", 1e8),
        ("1Gbit/s", 1e9),
        ("1gbit", 1e9),
        ("1.5Gbit/s", 1.5e9),
        ("500kbit", 5e5),
        ("500Kbit/s", 5e5),
        ("1Tbit/s", 1e12),
        ("1500bit/s", 1500.0),
        ("1500bit", 1500.0),
        ("0bit", 0.0),
        ("2Kibit/s", 2048.0),
        ("2kibit", 2048.0),
        ("1mibit", 1_048_576.0),
        ("10Mibit/s", 10_485_760.0),
        ("1Gibit", 1_073_741_824.0),
        ("1Tibit/s", 1_099_511_627_776.0),
    ];
    for (text, expected) in cases {
        assert_eq!(bits(text), Ok(BitsPerSecond(expected)), "{text}");
    }
    for bad in [
        "100",
        "100/s",
        "100M/s",
        "100Mb/s",
        "100Mbits/s",
        "100 Mbit/sec",
        "100Xbit/s",
        "-1Mbit",
        "Mbit/s",
        "bit",
        "/s",
        "",
        "1.2.3Mbit",
        "infMbit",
        "1e3Mbit",
        "10MB/s",
        "10MiB/s",
        "10mbps",
        "10 bytes/s",
    ] {
        assert!(bits(bad).is_err(), "{bad:?} was accepted");
    }
    assert_eq!(bits("0"), Ok(BitsPerSecond(0.0)), "zero needs no unit");
    assert_refused(bits("100"), "needs a unit such as `Mbit`");
    assert_refused(bits("100Mb/s"), "write `bit` in full");
    let error = bits("100 megabits").expect_err("words").to_string();
    assert!(
        error.starts_with(
            r#"invalid bit rate "100 megabits": write bits per second as "100Mbit/s""#
        ),
        "{error}"
    );
    assert!(BitsPerSecond::new(f64::NAN).is_err());
    assert!(BitsPerSecond::new(f64::INFINITY).is_err());
    assert!(BitsPerSecond::new(-1.0).is_err());
    assert_eq!(BitsPerSecond::new(-0.0), Ok(BitsPerSecond(0.0)));
    assert_eq!(BitsPerSecond(1e8).bytes_per_second(), 12_500_000);
}

#[test]
fn a_byte_rate_is_refused_with_the_same_rate_in_bits() {
    let cases = [
        ("10MB/s", "\"80Mbit/s\""),
        ("10MiB/s", "\"80Mibit/s\""),
        ("125MB", "\"1Gbit/s\""),
        ("1 byte/s", "\"8bit/s\""),
        ("0B/s", "\"80Mbit/s\""),
    ];
    for (text, example) in cases {
        let error = bits(text).expect_err(text).to_string();
        let expected = format!(
            "invalid bit rate {text:?}: that is a byte rate, but network rates are in bits, \
             e.g. {example} (8 bits per byte)"
        );
        assert_eq!(error, expected);
    }
    // tc reads "mbps" as megabytes, people often mean megabits: say both.
    assert_eq!(
        bits("10mbps").expect_err("bps").to_string(),
        "invalid bit rate \"10mbps\": that is a byte rate, but network rates are in bits, \
         e.g. \"80Mbit/s\" (8 bits per byte); tc reads `bps` as bytes per second: \
         write \"10Mbit/s\" if you meant bits"
    );
}

#[test]
fn bit_rates_display_in_the_largest_unit_that_is_whole() {
    let cases = [
        (1e8, "100 Mbit/s"),
        (1e9, "1 Gbit/s"),
        (1500.0, "1500 bit/s"),
        (1.5e9, "1500 Mbit/s"),
        (1000.0, "1 kbit/s"),
        (1024.0, "1 Kibit/s"),
        (10_485_760.0, "10 Mibit/s"),
        (1e12, "1 Tbit/s"),
        (8.0, "8 bit/s"),
        (1_000_000_001.0, "1000000001 bit/s"),
        (0.0, "0 bit/s"),
        // Not a whole number of bits: the largest SI unit of its size.
        (1100.25, "1.1 kbit/s"),
        (0.5, "0.5 bit/s"),
    ];
    for (value, text) in cases {
        assert_eq!(format_bits_per_second(value), text, "{value}");
        assert_eq!(BitsPerSecond(value).to_string(), text, "{value}");
    }
    for text in [
        "100 Mbit/s",
        "1 Gbit/s",
        "1500 bit/s",
        "10 Mibit/s",
        "2 Kibit/s",
    ] {
        let rate: BitsPerSecond = text.parse().expect(text);
        assert_eq!(rate.to_string(), text);
    }
}

#[test]
fn a_valid_net_config() {
    let text = format!(
        r#"{ETH0_HOST}
[[host.links]]
interface = "veth-ctr"
egress = 10000000000

[tenants.api]
net = [{{ interface = "eth0", egress = {{ baseline = "100Mbit/s", burst = "1Gbit/s" }} }}]

[tenants.web]
cpu = {{ baseline = 0.5, burst = 1 }}
net = [
  {{ interface = "eth0", egress = {{ baseline = "200mbit", burst = "500Mbit/s" }}, weight = 2, veth = "veth-ctr" }},
  {{ interface = "veth-ctr", egress = {{ baseline = 0, burst = "1Gbit/s" }}, veth = "veth-ctr" }},
]
"#
    );
    let loaded = valid_on_disks(&text);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let config = &loaded.config;
    assert_eq!(
        config.host.links,
        [
            LinkCapacity {
                interface: "eth0".to_owned(),
                egress: BitsPerSecond(1e9),
            },
            LinkCapacity {
                interface: "veth-ctr".to_owned(),
                egress: BitsPerSecond(1e10),
            },
        ]
    );
    let api = tenant(config, "api");
    // The default weight is the baseline in bits/s.
    assert_eq!(
        api.net,
        [NetContract {
            interface: "eth0".to_owned(),
            veth: None,
            egress: Contract {
                baseline: BitsPerSecond(1e8),
                burst: BitsPerSecond(1e9),
                weight: 1e8,
            },
        }]
    );
    let web = tenant(config, "web");
    assert_eq!(web.net.len(), 2);
    let eth0 = net_of(web, "eth0");
    assert_eq!(eth0.veth.as_deref(), Some("veth-ctr"));
    assert_eq!(
        eth0.egress,
        Contract {
            baseline: BitsPerSecond(2e8),
            burst: BitsPerSecond(5e8),
            weight: 2.0,
        }
    );
    // A zero baseline is allowed, and weighs the least.
    let veth = net_of(web, "veth-ctr");
    assert_eq!(veth.egress.baseline, BitsPerSecond(0.0));
    assert_eq!(veth.egress.weight, ZERO_BASELINE_WEIGHT);
}

#[test]
fn a_link_that_does_not_exist_is_an_error_that_names_it() {
    error_on_disks(
        "[[host.links]]\ninterface = \"eth9\"\negress = \"1Gbit/s\"\n",
        "2:13",
        "host.links[0].interface",
        "no network interface named eth9",
    );
    error_on_disks(
        "[[host.links]]\ninterface = \"eth/0\"\negress = \"1Gbit/s\"\n",
        "2:13",
        "host.links[0].interface",
        "`eth/0` is not a valid interface name",
    );
}

#[test]
fn the_same_link_twice_is_an_error_that_names_both() {
    error_on_disks(
        &format!("{ETH0_HOST}[[host.links]]\ninterface = \"eth0\"\negress = \"10Gbit/s\"\n"),
        "6:13",
        "host.links[1].interface",
        "interface eth0 is already declared by `host.links[0]`; give each interface one \
         `[[host.links]]` entry",
    );
}

#[test]
fn a_link_capacity_must_be_a_positive_bit_rate() {
    error_on_disks(
        "[[host.links]]\ninterface = \"eth0\"\negress = \"0bit\"\n",
        "3:10",
        "host.links[0].egress",
        "a capacity must be more than 0, got 0 bit/s",
    );
    error_on_disks(
        "[[host.links]]\ninterface = \"eth0\"\negress = \"125MB/s\"\n",
        "3:10",
        "host.links[0].egress",
        r#"invalid bit rate "125MB/s": that is a byte rate, but network rates are in bits, e.g. "1Gbit/s""#,
    );
    error_on_disks(
        "[[host.links]]\ninterface = \"eth0\"\negress = true\n",
        "3:10",
        "host.links[0].egress",
        r#"expected a bit rate such as "100Mbit/s""#,
    );
    error_on_disks(
        "[[host.links]]\ninterface = \"eth0\"\n",
        "1:1",
        "host.links[0]",
        "missing required key `egress`",
    );
}

#[test]
fn a_plain_number_of_bits_per_second_is_read_as_bits() {
    let loaded = valid_on_disks("[[host.links]]\ninterface = \"eth0\"\negress = 100\n");
    assert_eq!(loaded.config.host.links[0].egress, BitsPerSecond(100.0));
    assert!(
        loaded.warnings.iter().any(|warning| warning
            == "`host.links[0].egress` is 100 bits per second: a plain number counts bits; \
                write \"100Mbit/s\" if you meant megabits per second"),
        "{:?}",
        loaded.warnings
    );
}

#[test]
fn a_tenant_link_must_be_declared_in_host_links() {
    error_on_disks(
        &format!(
            "{ETH0_HOST}[tenants.api]\nnet = [{{ interface = \"eth1\", egress = {{ baseline = 0, burst = \"1Mbit\" }} }}]\n"
        ),
        "6:22",
        "tenants.api.net[0].interface",
        "interface eth1 is not declared in `[[host.links]]`; declare it in a `[[host.links]]` \
         entry with `interface = \"eth1\"` and its capacity, such as `egress = \"1Gbit/s\"` \
         (declared: eth0)",
    );
    error_on_disks(
        "[tenants.api]\nnet = [{ interface = \"eth0\", egress = { baseline = 0, burst = \"1Mbit\" } }]\n",
        "2:22",
        "tenants.api.net[0].interface",
        "(no link is declared yet)",
    );
}

#[test]
fn the_same_link_twice_in_a_tenant_is_an_error() {
    error_on_disks(
        &format!(
            "{ETH0_HOST}[tenants.api]\nnet = [\n  {{ interface = \"eth0\", egress = {{ baseline = 0, burst = \"1Mbit\" }} }},\n  {{ interface = \"eth0\", egress = {{ baseline = 0, burst = \"2Mbit\" }} }},\n]\n"
        ),
        "8:17",
        "tenants.api.net[1].interface",
        "interface eth0 already has a contract in `tenants.api.net[0]`; give each interface one entry",
    );
}

#[test]
fn an_egress_baseline_above_its_burst_is_an_error() {
    error_on_disks(
        &format!(
            "{ETH0_HOST}[tenants.api]\nnet = [{{ interface = \"eth0\", egress = {{ baseline = \"200Mbit/s\", burst = \"100Mbit/s\" }} }}]\n"
        ),
        "6:52",
        "tenants.api.net[0].egress.baseline",
        "the baseline of 200 Mbit/s is more than the burst of 100 Mbit/s; \
         the burst is a ceiling, so it must be at least the baseline",
    );
}

#[test]
fn an_egress_burst_above_the_link_capacity_is_an_error() {
    error_on_disks(
        &format!(
            "{ETH0_HOST}[tenants.api]\nnet = [{{ interface = \"eth0\", egress = {{ baseline = \"100Mbit/s\", burst = \"2Gbit/s\" }} }}]\n"
        ),
        "6:73",
        "tenants.api.net[0].egress.burst",
        "the burst of 2 Gbit/s is more than the egress capacity of eth0, 1 Gbit/s \
         (`host.links[0]`): lower it to at most the link's capacity",
    );
}

#[test]
fn an_egress_burst_must_be_positive() {
    error_on_disks(
        &format!(
            "{ETH0_HOST}[tenants.api]\nnet = [{{ interface = \"eth0\", egress = {{ baseline = 0, burst = \"0Mbit/s\" }} }}]\n"
        ),
        "6:63",
        "tenants.api.net[0].egress.burst",
        "the burst must be more than 0, got 0 bit/s",
    );
}

#[test]
fn a_net_weight_belongs_next_to_the_interface() {
    error_on_disks(
        &format!(
            "{ETH0_HOST}[tenants.api]\nnet = [{{ interface = \"eth0\", egress = {{ baseline = 0, burst = \"1Mbit\", weight = 5 }} }}]\n"
        ),
        "6:81",
        "tenants.api.net[0].egress.weight",
        "a net entry's weight is written next to its `interface`, not inside `egress`: \
         write `weight = ...` there",
    );
    error_on_disks(
        &format!(
            "{ETH0_HOST}[tenants.api]\nnet = [{{ interface = \"eth0\", egress = {{ baseline = 0, burst = \"1Mbit\" }}, weight = 0 }}]\n"
        ),
        "6:83",
        "tenants.api.net[0].weight",
        "the weight must be a number more than 0, got 0",
    );
}

#[test]
fn a_veth_that_does_not_exist_is_only_a_warning() {
    let loaded = valid_on_disks(&format!(
        "{ETH0_HOST}[tenants.api]\nnet = [{{ interface = \"eth0\", egress = {{ baseline = 0, burst = \"1Mbit\" }}, veth = \"veth-gone\" }}]\n"
    ));
    assert_eq!(
        net_of(tenant(&loaded.config, "api"), "eth0")
            .veth
            .as_deref(),
        Some("veth-gone")
    );
    assert_eq!(
        loaded.warnings,
        [
            "`tenants.api.net[0].veth`: no network interface named veth-gone on the fake host; \
             that is expected while its container is down: the tenant's forwarded traffic is \
             classified whenever veth-gone appears"
        ]
    );
}

#[test]
fn a_veth_must_be_a_valid_interface_name() {
    error_on_disks(
        &format!(
            "{ETH0_HOST}[tenants.api]\nnet = [{{ interface = \"eth0\", egress = {{ baseline = 0, burst = \"1Mbit\" }}, veth = \"veth:ctr-with-a-long-name\" }}]\n"
        ),
        "6:81",
        "tenants.api.net[0].veth",
        "`veth:ctr-with-a-long-name` is not a valid interface name: write 1 to 15 characters \
         without `/`, `:` or spaces",
    );
}

#[test]
fn two_tenants_naming_the_same_veth_is_an_error() {
    error_on_disks(
        &format!(
            "{ETH0_HOST}[tenants.a]\nnet = [{{ interface = \"eth0\", egress = {{ baseline = 0, burst = \"1Mbit\" }}, veth = \"veth-ctr\" }}]\n\
             [tenants.b]\nnet = [{{ interface = \"eth0\", egress = {{ baseline = 0, burst = \"1Mbit\" }}, veth = \"veth-ctr\" }}]\n"
        ),
        "8:81",
        "tenants.b.net[0].veth",
        "veth veth-ctr already belongs to tenant `a` (`tenants.a.net[0].veth`); \
         the traffic of a veth is classified into one tenant",
    );
}

#[test]
fn net_entries_say_how_to_write_them() {
    error_on_disks(
        "[host.links]\ninterface = \"eth0\"\negress = \"1Gbit/s\"\n",
        "1:1",
        "host.links",
        "declare each in its own `[[host.links]]` table (double brackets)",
    );
    error_on_disks(
        "[tenants.api]\nnet = { interface = \"eth0\" }\n",
        "2:7",
        "tenants.api.net",
        "expected a list of net contracts, one per interface, such as `net = [{ interface = ",
    );
    error_on_disks(
        "[tenants.api]\nnet = [\"eth0\"]\n",
        "2:8",
        "tenants.api.net[0]",
        "expected a net contract table such as",
    );
    error_on_disks(
        &format!(
            "{ETH0_HOST}[tenants.api]\nnet = [{{ interfce = \"eth0\", egress = {{ baseline = 0, burst = \"1Mbit\" }} }}]\n"
        ),
        "6:10",
        "tenants.api.net[0].interfce",
        "unknown key, did you mean `interface`?",
    );
    error_on_disks(
        &format!(
            "{ETH0_HOST}[tenants.api]\nnet = [{{ interface = \"eth0\", egress = {{ baseline = 0 }} }}]\n"
        ),
        "6:39",
        "tenants.api.net[0].egress",
        "missing required key `burst`",
    );
    error_on_disks(
        "[[host.links]]\ninterface = \"eth0\"\negres = \"1Gbit/s\"\n",
        "3:1",
        "host.links[0].egres",
        "unknown key, did you mean `egress`?",
    );
}

#[test]
fn a_broken_host_link_does_not_make_its_tenants_undeclared() {
    error_on_disks(
        "[[host.links]]\ninterface = \"eth0\"\negress = \"fast\"\n\
         [tenants.api]\nnet = [{ interface = \"eth0\", egress = { baseline = 0, burst = \"1Mbit\" } }]\n",
        "3:10",
        "host.links[0].egress",
        "invalid bit rate",
    );
}

const NET_OVERCOMMITTED: &str = r#"
[host]
[[host.links]]
interface = "eth0"
egress = "1Gbit/s"
[tenants.api]
net = [{ interface = "eth0", egress = { baseline = "600Mbit/s", burst = "1Gbit/s" } }]
[tenants.web]
net = [{ interface = "eth0", egress = { baseline = "600Mbit/s", burst = "1Gbit/s" } }]
"#;

#[test]
fn net_overcommitment_is_a_warning_or_an_error_when_refused() {
    assert_overcommitted(
        DISKS,
        NET_OVERCOMMITTED,
        "net egress baselines on eth0 add up to 1200 Mbit/s, more than its capacity of 1 Gbit/s",
    );
}

#[test]
fn net_baselines_that_fill_the_link_are_not_overcommitted() {
    let text = NET_OVERCOMMITTED.replace("600Mbit/s", "500Mbit/s");
    assert!(valid_on_disks(&text).warnings.is_empty());
}

#[test]
fn net_errors_are_all_reported_together() {
    let rendered = errors_on(
        &format!(
            r#"{ETH0_HOST}[[host.links]]
interface = "eth9"
egress = "10MiB/s"
[tenants.a]
net = [{{ interface = "eth0", egress = {{ baseline = "1Mbit/s", burst = "1Tbit/s" }}, veth = "a/b" }}]
[tenants.b]
net = [{{ interface = "eth0", egress = {{ baseline = "5mbit", burst = "1mbit" }}, weight = -1 }}]
"#
        ),
        DISKS,
    );
    // The links have errors, so the 1 Tbit/s burst is not checked against
    // eth0's capacity: that error would be noise until they are fixed.
    assert_error_lines(
        &rendered,
        "test.toml:6:13: error: `host.links[1].interface`: no network interface named eth9
         test.toml:7:10: error: `host.links[1].egress`: invalid bit rate \"10MiB/s\": that is a byte rate
         test.toml:9:91: error: `tenants.a.net[0].veth`: `a/b` is not a valid interface name
         test.toml:11:52: error: `tenants.b.net[0].egress.baseline`: the baseline of 5 Mbit/s is more than the burst of 1 Mbit/s
         test.toml:11:89: error: `tenants.b.net[0].weight`: the weight must be a number more than 0, got -1",
    );
}

#[test]
fn net_contracts_alone_make_a_tenant_not_idle() {
    let loaded = valid_on_disks(&format!(
        "{ETH0_HOST}[tenants.api]\nnet = [{{ interface = \"eth0\", egress = {{ baseline = 0, burst = \"1Mbit\" }} }}]\n"
    ));
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn summary_lists_links_and_net_contracts() {
    let text = format!(
        "{ETH0_HOST}[tenants.api]\nnet = [{{ interface = \"eth0\", egress = {{ baseline = \"100Mbit/s\", burst = \"1Gbit/s\" }}, veth = \"veth-ctr\" }}]\n\
         [tenants.web]\ncpu = {{ baseline = 1, burst = 2 }}\nnet = [{{ interface = \"eth0\", egress = {{ baseline = 0, burst = \"500Mbit/s\" }}, weight = 3 }}]\n"
    );
    let summary = valid_on_disks(&text).config.summary();
    let lines: Vec<&str> = summary.lines().collect();
    assert_eq!(lines[3], "links:   1 (eth0)", "{summary}");
    assert!(
        lines[4].ends_with("cpu baselines add up to 1.0 cores, 2 net contracts"),
        "{summary}"
    );
    assert_table(&summary, "  LINK", "LINK EGRESS\neth0 1 Gbit/s");
    assert_table(
        &summary,
        "VETH",
        "TENANT LINK VETH BASELINE BURST WEIGHT
         api eth0 veth-ctr 100 Mbit/s 1 Gbit/s 100000000
         web eth0 - 0 bit/s 500 Mbit/s 3",
    );
}

/// The example's commented-out net lines, uncommented, form a valid config
/// on a host with eth0 and veth-ctr.
#[test]
fn the_example_net_configuration_is_valid_when_uncommented() {
    let net_lines = [
        "[[host.links]]",
        "interface = ",
        "egress = ",
        // Not the `net = [{ interface = I, ... }]` that documents the keys.
        "net = [{ interface = \"",
    ];
    let config = example_uncommented(&net_lines, 5, DISKS);
    let eth0 = LinkCapacity {
        interface: "eth0".to_owned(),
        egress: BitsPerSecond(1e9),
    };
    assert_eq!(config.host.links, [eth0]);
    let web = net_of(tenant(&config, "web"), "eth0");
    assert_eq!(web.egress.baseline, BitsPerSecond(1e8));
    let batch = net_of(tenant(&config, "batch"), "eth0");
    assert_eq!(batch.veth.as_deref(), Some("veth-ctr"));
}

#[test]
fn no_panic_on_odd_net_input() {
    let odd = [
        "[[host.links]]\n",
        "[[host.links]]\ninterface = \"\"\negress = \"/s\"\n",
        "[[host.links]]\ninterface = \"eth0\"\negress = \"1e400bit\"\n",
        "[[host.links]]\ninterface = \"eth0\"\negress = 1e400\n",
        "[[host.links]]\ninterface = \"eth0\"\negress = \"99999999999999999999999Tibit/s\"\n",
        "[[host.links]]\ninterface = \"eth0\"\negress = 1e308\n\
         [tenants.a]\nnet = [{ interface = \"eth0\", egress = { baseline = 1e308, burst = 1e308 } }]\n\
         [tenants.b]\nnet = [{ interface = \"eth0\", egress = { baseline = 1e308, burst = 1e308 } }]\n",
        "[host]\nlinks = 3\n",
        "[tenants.a]\nnet = {}\n",
        "[tenants.a]\nnet = [1, {}]\n",
        "[tenants.a]\nnet = [{ interface = \"\\u0000\", weight = nan, veth = \"\" }]\n",
        "[tenants.a]\nnet = [{ interface = \"eth0\", egress = { baseline = \"nanbit\", burst = \"-0bit\" } }]\n",
    ];
    parse_on_every_host(&odd);
}

#[test]
fn net_contracts_under_another_cgroup_root_warn_that_only_veths_are_classified() {
    let contract = "[tenants.api]\nnet = [{ interface = \"eth0\", egress = { baseline = 0, burst = \"1Mbit\" } }]\n";
    let elsewhere = valid_on_disks(&format!(
        "[agent]\ncgroup_root = \"/tmp/cg\"\n{ETH0_HOST}{contract}"
    ));
    assert_eq!(
        elsewhere.warnings,
        [
            "agent.cgroup_root is /tmp/cg, but nftables matches `socket cgroupv2` only under /sys/fs/cgroup: \
             the tenants' own traffic is not classified into their net contracts (traffic from a tenant's \
             `veth` still is)"
        ]
    );
    let at_the_mount = valid_on_disks(&format!("{ETH0_HOST}{contract}"));
    assert!(
        at_the_mount.warnings.is_empty(),
        "{:?}",
        at_the_mount.warnings
    );
}
