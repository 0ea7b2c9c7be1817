//! `[[host.disks]]`, the tenants' `disk = [...]`, byte rates and IOPS. The
//! fake host ([`DISKS`]) has /dev/vda (254:0) and /dev/vdb (254:16).

use super::*;

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
    assert_refused("50Mb/s".parse::<BytesPerSecond>(), "bits");
    assert_refused("50MiB".parse::<BytesPerSecond>(), "`/s`");
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
    error_on_disks(
        "[[host.disks]]\ndevice = \"/dev/vda\"\nread_bps = \"50 megs/s\"\n",
        "3:12",
        "host.disks[0].read_bps",
        r#"invalid byte rate "50 megs/s": write bytes per second as "50MiB/s", "500M/s""#,
    );
    error_on_disks(
        "[[host.disks]]\ndevice = \"/dev/vda\"\nread_bps = \"50MiB\"\n",
        "3:12",
        "host.disks[0].read_bps",
        "a rate ends in `/s`",
    );
    error_on_disks(
        "[[host.disks]]\ndevice = \"/dev/vda\"\nread_bps = true\n",
        "3:12",
        "host.disks[0].read_bps",
        r#"expected a byte rate such as "50MiB/s""#,
    );
}

#[test]
fn iops_are_whole_numbers() {
    error_on_disks(
        "[[host.disks]]\ndevice = \"/dev/vda\"\nread_iops = 1.5\n",
        "3:13",
        "host.disks[0].read_iops",
        "whole number",
    );
    error_on_disks(
        "[[host.disks]]\ndevice = \"/dev/vda\"\nread_iops = \"2k\"\n",
        "3:13",
        "host.disks[0].read_iops",
        "write a whole number of IOs per second without quotes, such as 2000",
    );
    error_on_disks(
        "[[host.disks]]\ndevice = \"/dev/vda\"\nwrite_iops = \"50MiB/s\"\n",
        "3:14",
        "host.disks[0].write_iops",
        "belongs in `read_bps` or `write_bps`",
    );
    error_on_disks(
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
    error_on_disks(
        "[[host.disks]]\ndevice = \"/dev/vda\"\nread_bps = \"0MiB/s\"\n",
        "3:12",
        "host.disks[0].read_bps",
        "a capacity must be more than 0, got 0 B/s",
    );
    error_on_disks(
        "[[host.disks]]\ndevice = \"/dev/vda\"\nwrite_iops = 0\n",
        "3:14",
        "host.disks[0].write_iops",
        "more than 0, got 0 IOPS",
    );
}

#[test]
fn a_disk_without_any_capacity_is_an_error() {
    error_on_disks(
        "[[host.disks]]\ndevice = \"/dev/vda\"\n",
        "1:1",
        "host.disks[0]",
        "declare at least one capacity of \"/dev/vda\": `read_bps`, `write_bps`, `read_iops` or `write_iops`",
    );
    error_on_disks(
        "[host]\ndisks = [{ device = \"/dev/vda\" }]\n",
        "2:10",
        "host.disks[0]",
        "declare at least one capacity",
    );
}

#[test]
fn a_host_disk_that_does_not_exist_is_an_error() {
    error_on_disks(
        "[[host.disks]]\ndevice = \"/dev/vdz\"\nread_bps = \"50MiB/s\"\n",
        "2:10",
        "host.disks[0].device",
        "no such block device /dev/vdz: no such file",
    );
    error_on_disks(
        "[[host.disks]]\ndevice = \"vda\"\nread_bps = \"50MiB/s\"\n",
        "2:10",
        "host.disks[0].device",
        r#"invalid device "vda": write an absolute path such as "/dev/vda" or a device number MAJ:MIN"#,
    );
}

#[test]
fn the_same_disk_twice_is_an_error_at_the_second() {
    error_on_disks(
        &format!("{VDA_HOST}[[host.disks]]\ndevice = \"254:0\"\nread_bps = \"10MiB/s\"\n"),
        "8:10",
        "host.disks[1].device",
        "device 254:0 (254:0) is already declared by `host.disks[0]` (as \"/dev/vda\")",
    );
}

#[test]
fn a_tenant_disk_that_does_not_exist_is_an_error() {
    error_on_disks(
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
    error_on_disks(
        &format!(
            "{VDA_HOST}[tenants.db]\ndisk = [{{ device = \"/dev/vdb\", read_bps = {{ baseline = \"1MiB/s\", burst = \"2MiB/s\" }} }}]\n"
        ),
        "8:20",
        "tenants.db.disk[0].device",
        "device /dev/vdb (254:16) is not declared in `[[host.disks]]`; add a `[[host.disks]]` entry \
         with `device = \"/dev/vdb\"` and its capacity, such as `read_bps = \"50MiB/s\"` \
         (declared: /dev/vda (254:0))",
    );
    error_on_disks(
        "[tenants.db]\ndisk = [{ device = \"/dev/vda\", read_iops = { baseline = 1, burst = 2 } }]\n",
        "2:20",
        "tenants.db.disk[0].device",
        "(no device is declared yet)",
    );
}

#[test]
fn a_tenant_dimension_needs_a_capacity_for_it() {
    error_on_disks(
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
    error_on_disks(
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
    error_on_disks(
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
    error_on_disks(
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
    error_on_disks(
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
    error_on_disks(
        &format!("{VDA_HOST}[tenants.db]\ndisk = [{{ device = \"/dev/vda\", weight = 2 }}]\n"),
        "8:9",
        "tenants.db.disk[0]",
        "a disk entry needs a contract on at least one of `read_bps`, `write_bps`, `read_iops` or `write_iops`",
    );
}

#[test]
fn a_disk_weight_belongs_to_the_entry() {
    error_on_disks(
        &format!(
            "{VDA_HOST}[tenants.db]\ndisk = [{{ device = \"/dev/vda\", read_iops = {{ baseline = 1, burst = 2, weight = 5 }} }}]\n"
        ),
        "8:80",
        "tenants.db.disk[0].read_iops.weight",
        "a disk entry has one weight for all its dimensions: write `weight = ...` next to its `device`",
    );
    error_on_disks(
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
    error_on_disks(
        "[[host.disks]]\ndevice = \"/dev/vda\"\nread_bsp = \"50MiB/s\"\n",
        "3:1",
        "host.disks[0].read_bsp",
        "unknown key, did you mean `read_bps`?",
    );
    error_on_disks(
        &format!(
            "{VDA_HOST}[tenants.db]\ndisk = [{{ device = \"/dev/vda\", read_iop = {{ baseline = 1, burst = 2 }} }}]\n"
        ),
        "8:32",
        "tenants.db.disk[0].read_iop",
        "unknown key, did you mean `read_iops`?",
    );
    error_on_disks(
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
    error_on_disks(
        "[[host.disks]]\ndevice = \"/dev/vda\"\nread_bps = \"fast\"\n\
         [tenants.db]\ndisk = [{ device = \"/dev/vda\", read_bps = { baseline = \"1MiB/s\", burst = \"2MiB/s\" } }]\n",
        "3:12",
        "host.disks[0].read_bps",
        "invalid byte rate",
    );
    // Nor does a broken [host] table.
    error_on_disks(
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
    assert_error_lines(
        &rendered,
        "test.toml:8:10: error: `host.disks[1].device`: no such block device /dev/vdq
         test.toml:9:12: error: `host.disks[1].read_bps`: invalid byte rate
         test.toml:11:56: error: `tenants.a.disk[0].read_bps.baseline`: invalid byte rate
         test.toml:11:109: error: `tenants.a.disk[0].write_bps.baseline`: the baseline of 9 MiB/s is more than the burst of 8 MiB/s
         test.toml:13:57: error: `tenants.b.disk[0].read_iops.baseline`: IOPS are a whole number
         test.toml:13:84: error: `tenants.b.disk[0].weight`: the weight must be between 0.01 and 100",
    );
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
fn disk_overcommitment_is_a_warning_or_an_error_when_refused() {
    // read_iops add up to exactly the capacity: not overcommitted.
    assert_overcommitted(
        DISKS,
        DISK_OVERCOMMITTED,
        "disk read_bps baselines on /dev/vda add up to 60 MiB/s, more than its capacity of 50 MiB/s",
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
    let config = example_uncommented(&disk_lines, 8, DISKS);
    assert_eq!(config.host.disks.len(), 1);
    let web = disk_of(tenant(&config, "web"), VDA);
    assert_eq!(limit(web, IoDimension::ReadBps).baseline, 20.0 * MIB);
    let batch = disk_of(tenant(&config, "batch"), VDA);
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
    assert_table(
        &summary,
        "  DISK",
        "DISK NUMBER READ BPS WRITE BPS READ IOPS WRITE IOPS
         /dev/vda 254:0 50 MiB/s 50 MiB/s 2000 IOPS -",
    );
    assert_table(
        &summary,
        "DIMENSION",
        "TENANT DISK DIMENSION BASELINE BURST WEIGHT
         db /dev/vda read_bps 20 MiB/s 50 MiB/s 40
         db /dev/vda read_iops 500 IOPS 2000 IOPS 25",
    );
}

#[test]
fn disks_that_are_not_a_list_say_how_to_write_them() {
    error_on_disks(
        "[host.disks]\ndevice = \"/dev/vda\"\nread_bps = \"50MiB/s\"\n",
        "1:1",
        "host.disks",
        "declare each in its own `[[host.disks]]` table (double brackets)",
    );
    error_on_disks(
        "[tenants.db]\ndisk = { device = \"/dev/vda\" }\n",
        "2:8",
        "tenants.db.disk",
        "expected a list of disk contracts, one per device, such as `disk = [{ device = ",
    );
    error_on_disks(
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
    assert_error_lines(
        &rendered,
        "test.toml:3:1: error: `host.reserved_cpus`: unknown key, did you mean `reserved_cpu`?
         test.toml:5:1: error: `host.disks[0].devise`: unknown key, did you mean `device`?
         test.toml:7:10: error: `host.disks[1].device`: no such block device /dev/vdz
         test.toml:10:7: error: `tenants.db.cpu`: missing required key `burst`
         test.toml:12:50: error: `tenants.db.disk[0].read_bps.baseline`: the baseline of 20 MiB/s is more than the burst of 1 MiB/s
         test.toml:13:26: error: `tenants.db.disk[1].read_bsp`: unknown key, did you mean `read_bps`?",
    );
}
