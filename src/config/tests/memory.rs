//! Memory sizes, the tenants' `memory = { ... }` and `host.reserved_memory`.
//! The fake host ([`FakeHost::facts`]) has 4 GiB of MemTotal; the other
//! facts of these tests ([`TWO_CPUS`], [`DISKS`]) do not know it.

use super::*;
use crate::testing::{FAKE_MEMORY_TOTAL, FakeHost};

const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;

fn memory_error(text: &str, place: &str, key: &str, words: &str) {
    assert_one_error_on(FakeHost::facts(), text, place, key, words);
}

fn valid_on_fake_host(text: &str) -> Loaded {
    valid_on(text, FakeHost::facts())
}

fn memory(tenant: &Tenant) -> MemoryContract {
    match tenant.memory {
        Some(memory) => memory,
        None => panic!("tenant {} has no memory contract", tenant.name),
    }
}

/// A contract as validated.
fn contract(
    (baseline, burst): (u64, u64),
    limit: Option<u64>,
    protection: MemoryProtection,
) -> MemoryContract {
    MemoryContract {
        baseline,
        burst,
        limit,
        protection,
    }
}

fn size(text: &str) -> Result<u64, SizeError> {
    parse_bytes(text)
}

#[test]
fn fake_host_has_four_gib() {
    assert_eq!(FakeHost::facts().memory_total, Some(4 * GIB));
    assert_eq!(FAKE_MEMORY_TOTAL, 4 * GIB);
}

#[test]
fn sizes_parse_in_si_and_binary_units() {
    let cases = [
        ("1GiB", GIB),
        ("1Gi", GIB),
        ("300MiB", 300 * MIB),
        ("300Mi", 300 * MIB),
        (" 300 MiB ", 300 * MIB),
        ("512KiB", 512 * 1024),
        ("512Ki", 512 * 1024),
        ("2TiB", 2 << 40),
        ("2Ti", 2 << 40),
        ("1.5GiB", 3 * GIB / 2),
        ("1.5KiB", 1536),
        ("4096B", 4096),
        ("0B", 0),
        ("1K", 1000),
        ("1KB", 1000),
        ("1k", 1000),
        ("1kB", 1000),
        ("500M", 500_000_000),
        ("500MB", 500_000_000),
        ("2G", 2_000_000_000),
        ("2GB", 2_000_000_000),
        ("1T", 1_000_000_000_000),
        ("1TB", 1_000_000_000_000),
        // Rounded down to whole bytes.
        ("1.0001KiB", 1024),
        ("0.5B", 0),
    ];
    for (text, expected) in cases {
        assert_eq!(size(text), Ok(expected), "{text}");
    }
    for bad in [
        "1024",
        "1",
        "GiB",
        "",
        "1XiB",
        "1GiB/s",
        "10MiB/s",
        "1gib",
        "1Gb",
        "1Gbit",
        "1Mib",
        "-1GiB",
        "NaN",
        "NaNGiB",
        "infGiB",
        "1.2.3GiB",
        "1e3MiB",
        "1 GiB B",
        "20000000TiB",
    ] {
        assert!(size(bad).is_err(), "{bad:?} was accepted");
    }
    assert_eq!(
        (size("0"), size(" 0.0 ")),
        (Ok(0), Ok(0)),
        "zero needs no unit"
    );
    assert_refused(size("1024"), "needs a unit such as `MiB`");
    assert_refused(size("-1GiB"), "must not be negative, got -1GiB");
    assert_refused(size("1Gb"), "memory is counted in bytes (`B`)");
    assert_refused(size("20000000TiB"), "too large");
}

#[test]
fn a_rate_is_refused_with_a_hint() {
    let error = size("10MiB/s").expect_err("a rate").to_string();
    assert_eq!(
        error,
        "invalid memory size \"10MiB/s\": that is a rate, but memory sizes have no \"/s\"; \
         write \"10MiB\""
    );
    memory_error(
        "[tenants.web]\nmemory = { baseline = \"10MiB/s\", burst = \"1GiB\" }\n",
        "2:23",
        "tenants.web.memory.baseline",
        "memory sizes have no \"/s\"; write \"10MiB\"",
    );
}

#[test]
fn sizes_format_in_the_largest_exact_unit() {
    let cases = [
        (0, "0 B"),
        (512, "512 B"),
        (1000, "1 kB"),
        (1024, "1 KiB"),
        (1536, "1.5 KiB"),
        (300 * MIB, "300 MiB"),
        (256 * MIB, "256 MiB"),
        (2 * GIB, "2 GiB"),
        (3 * GIB / 2, "1.5 GiB"),
        (GIB + GIB / 8, "1.125 GiB"),
        (15 * GIB / 4, "3.75 GiB"),
        (500_000_000, "500 MB"),
        (2_000_000_000, "2 GB"),
        (4097, "4.097 kB"),
        (4099 * 1024 + 1, "4197377 B"),
        (1 << 40, "1 TiB"),
        (1024 * (1 << 40), "1024 TiB"),
    ];
    for (bytes, expected) in cases {
        assert_eq!(format_bytes(bytes), expected, "{bytes}");
    }
    // 1.0001 GiB is not a number of MiB: it is shown in the largest unit
    // that holds it whole.
    let odd = GIB + 4096;
    assert_eq!(format_bytes(odd), "1048580 KiB");
    assert_eq!(parse_bytes(&format_bytes(odd).replace(' ', "")), Ok(odd));
}

#[test]
fn a_memory_contract_is_read() {
    let loaded = valid_on_fake_host(
        "[tenants.cache]\n\
         memory = { baseline = \"1GiB\", burst = \"2GiB\", limit = \"3GiB\", protection = \"soft\" }\n\
         [tenants.flood]\n\
         memory = { baseline = 0, burst = 536870912 }\n\
         [tenants.hard]\n\
         memory = { baseline = \"1.5GiB\", burst = \"1.5GiB\", protection = \"hard\" }\n",
    );
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let config = &loaded.config;
    let cache = contract((GIB, 2 * GIB), Some(3 * GIB), MemoryProtection::Soft);
    assert_eq!(memory(tenant(config, "cache")), cache);
    let flood = contract((0, 512 * MIB), None, MemoryProtection::Hard);
    assert_eq!(memory(tenant(config, "flood")), flood);
    let hard = memory(tenant(config, "hard"));
    assert_eq!(hard.protection, MemoryProtection::Hard);
    assert_eq!(hard.baseline, 3 * GIB / 2);
    assert_eq!(config.host.reserved_memory, 256 * MIB);
    // A memory contract alone makes a tenant not idle, and without MemTotal
    // nothing is checked against the host.
    let loaded = valid("[tenants.web]\nmemory = { baseline = \"64GiB\", burst = \"64GiB\" }\n");
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn a_baseline_above_its_burst_is_an_error() {
    memory_error(
        "[tenants.x]\nmemory = { baseline = \"3GiB\", burst = \"2GiB\" }\n",
        "2:23",
        "tenants.x.memory.baseline",
        "the baseline of 3 GiB is above its burst of 2 GiB",
    );
}

#[test]
fn a_burst_above_its_limit_is_an_error() {
    memory_error(
        "[tenants.x]\nmemory = { baseline = \"1GiB\", burst = \"2GiB\", limit = \"1536MiB\" }\n",
        "2:39",
        "tenants.x.memory.burst",
        "the burst of 2 GiB is above its limit of 1.5 GiB (`tenants.x.memory.limit`)",
    );
}

#[test]
fn a_baseline_above_its_limit_is_an_error() {
    // The burst is refused too (0), so the baseline is compared with the
    // limit directly.
    let rendered = errors_on(
        "[tenants.x]\nmemory = { baseline = \"2GiB\", burst = 0, limit = \"1GiB\" }\n",
        FakeHost::facts(),
    );
    let lines: Vec<&str> = rendered.lines().collect();
    assert_eq!(lines.len(), 2, "{rendered}");
    assert!(
        lines[0].starts_with("test.toml:2:23: error: `tenants.x.memory.baseline`: the baseline of 2 GiB is above its limit of 1 GiB"),
        "{rendered}"
    );
    assert!(
        lines[1].starts_with(
            "test.toml:2:39: error: `tenants.x.memory.burst`: the burst must be more than 0"
        ),
        "{rendered}"
    );
    // Below its burst but above the limit: both are said.
    let rendered = errors_on(
        "[tenants.x]\nmemory = { baseline = \"2GiB\", burst = \"3GiB\", limit = \"1GiB\" }\n",
        FakeHost::facts(),
    );
    assert_eq!(rendered.lines().count(), 2, "{rendered}");
    assert!(
        rendered.contains("`tenants.x.memory.burst`: the burst of 3 GiB is above its limit"),
        "{rendered}"
    );
    assert!(
        rendered.contains("`tenants.x.memory.baseline`: the baseline of 2 GiB is above its limit"),
        "{rendered}"
    );
    // All three out of order: the baseline against the burst, the burst
    // against the limit, no third error.
    let rendered = errors_on(
        "[tenants.x]\nmemory = { baseline = \"3GiB\", burst = \"2GiB\", limit = \"1GiB\" }\n",
        FakeHost::facts(),
    );
    assert_eq!(rendered.lines().count(), 2, "{rendered}");
    assert!(rendered.contains("above its burst of 2 GiB"), "{rendered}");
    assert!(rendered.contains("above its limit of 1 GiB"), "{rendered}");
}

#[test]
fn equal_baseline_burst_and_limit_are_fine() {
    let loaded = valid_on_fake_host(
        "[tenants.x]\nmemory = { baseline = \"1GiB\", burst = \"1GiB\", limit = \"1GiB\" }\n",
    );
    let contract = memory(tenant(&loaded.config, "x"));
    assert_eq!(contract.limit, Some(GIB));
}

#[test]
fn a_burst_of_zero_is_an_error() {
    memory_error(
        "[tenants.x]\nmemory = { baseline = 0, burst = \"0B\" }\n",
        "2:34",
        "tenants.x.memory.burst",
        "a memory.high of 0 would make the kernel reclaim and throttle the tenant at every allocation, freezing it",
    );
}

#[test]
fn memory_has_no_weight() {
    memory_error(
        "[tenants.x]\nmemory = { baseline = \"1GiB\", burst = \"2GiB\", weight = 2 }\n",
        "2:56",
        "tenants.x.memory.weight",
        "memory has no weight: the kernel protects a tenant's memory by its baseline \
         (memory.min, or memory.low)",
    );
    // Whatever the value, the reason is what is said.
    memory_error(
        "[tenants.x]\nmemory = { baseline = \"1GiB\", burst = \"2GiB\", weight = \"high\" }\n",
        "2:56",
        "tenants.x.memory.weight",
        "there is nothing to share by weight; remove `weight`",
    );
}

#[test]
fn protection_is_hard_or_soft() {
    memory_error(
        "[tenants.x]\nmemory = { baseline = \"1GiB\", burst = \"2GiB\", protection = \"strict\" }\n",
        "2:60",
        "tenants.x.memory.protection",
        "unknown protection \"strict\": write \"hard\" (memory.min, the default: the baseline is never reclaimed) or \"soft\" (memory.low",
    );
    memory_error(
        "[tenants.x]\nmemory = { baseline = \"1GiB\", burst = \"2GiB\", protection = true }\n",
        "2:60",
        "tenants.x.memory.protection",
        "\"hard\" or \"soft\"",
    );
}

#[test]
fn bad_sizes_name_their_key() {
    memory_error(
        "[tenants.x]\nmemory = { baseline = -1, burst = \"2GiB\" }\n",
        "2:23",
        "tenants.x.memory.baseline",
        "a memory size must not be negative, got -1",
    );
    memory_error(
        "[tenants.x]\nmemory = { baseline = nan, burst = \"2GiB\" }\n",
        "2:23",
        "tenants.x.memory.baseline",
        "a memory size must be a finite number, not NaN",
    );
    memory_error(
        "[tenants.x]\nmemory = { baseline = 1.5, burst = \"2GiB\" }\n",
        "2:23",
        "tenants.x.memory.baseline",
        "a whole number of bytes, got 1.5; write a unit in a string for a fraction",
    );
    memory_error(
        "[tenants.x]\nmemory = { baseline = \"1GiB\", burst = \"2GiB\", limit = \"lots\" }\n",
        "2:55",
        "tenants.x.memory.limit",
        "invalid memory size \"lots\"",
    );
    memory_error(
        "[tenants.x]\nmemory = { baseline = \"1GiB\", burst = true }\n",
        "2:39",
        "tenants.x.memory.burst",
        "a memory size such as \"1GiB\" or a whole number of bytes",
    );
    memory_error(
        "[tenants.x]\nmemory = { baseline = \"1GiB\" }\n",
        "2:10",
        "tenants.x.memory",
        "missing required key `burst`",
    );
    memory_error(
        "[tenants.x]\nmemory = { baseline = \"1GiB\", burst = \"2GiB\", limt = \"3GiB\" }\n",
        "2:47",
        "tenants.x.memory.limt",
        "did you mean `limit`?",
    );
    memory_error(
        "[tenants.x]\nmemory = \"1GiB\"\n",
        "2:10",
        "tenants.x.memory",
        "a memory contract table such as",
    );
}

#[test]
fn reserved_memory_is_read_and_checked_against_mem_total() {
    let loaded = valid_on_fake_host("[host]\nreserved_memory = \"1GiB\"\n");
    assert_eq!(loaded.config.host.reserved_memory, GIB);
    let loaded = valid_on_fake_host("[host]\nreserved_memory = 0\n");
    assert_eq!(loaded.config.host.reserved_memory, 0);
    memory_error(
        "[host]\nreserved_memory = \"4GiB\"\n",
        "2:19",
        "host.reserved_memory",
        "reserving 4 GiB leaves no memory for tenants: the host has 4 GiB (MemTotal); reserve less than that",
    );
    memory_error(
        "[host]\nreserved_memory = \"1GiB/s\"\n",
        "2:19",
        "host.reserved_memory",
        "memory sizes have no \"/s\"",
    );
    // Without MemTotal, any reserve is accepted.
    let loaded = valid("[host]\nreserved_memory = \"1TiB\"\n");
    assert_eq!(loaded.config.host.reserved_memory, 1 << 40);
    // The default reserve on a host smaller than it.
    let tiny = TWO_CPUS.with_memory_total(128 * MIB);
    let rendered = errors_on("", tiny);
    assert!(
        rendered.contains("`host.reserved_memory`: reserving 256 MiB (the default) leaves no memory for tenants: the host has 128 MiB (MemTotal)"),
        "{rendered}"
    );
}

/// On the fake host: 4 GiB - 256 MiB reserved = 3.75 GiB for baselines.
const TWO_BIG_BASELINES: &str = "\n[host]\n\
     [tenants.a]\nmemory = { baseline = \"2GiB\", burst = \"3GiB\" }\n\
     [tenants.b]\nmemory = { baseline = \"2GiB\", burst = \"3GiB\", protection = \"soft\" }\n";

#[test]
fn overcommitted_memory_is_a_warning_or_an_error_when_refused() {
    assert_overcommitted(
        FakeHost::facts(),
        TWO_BIG_BASELINES,
        "memory baselines add up to 4 GiB, more than the 3.75 GiB available (MemTotal 4 GiB - \
         256 MiB reserved in `host.reserved_memory`)",
    );
}

#[test]
fn the_reserve_counts_against_the_baselines() {
    // 3.75 GiB fits exactly under the default reserve...
    let fits = "[host]\nallow_overcommit = false\n\
                [tenants.a]\nmemory = { baseline = \"3840MiB\", burst = \"4GiB\" }\n";
    assert!(valid_on_fake_host(fits).warnings.is_empty());
    // ...but not under a bigger one.
    let text = fits.replace("[host]\n", "[host]\nreserved_memory = \"1GiB\"\n");
    let rendered = errors_on(&text, FakeHost::facts());
    assert!(
        rendered.contains("more than the 3 GiB available (MemTotal 4 GiB - 1 GiB reserved"),
        "{rendered}"
    );
    // Without MemTotal, nothing is compared.
    assert!(
        valid(
            &text
                .replace("3840MiB", "40GiB")
                .replace("\"4GiB\"", "\"40GiB\"")
        )
        .warnings
        .is_empty()
    );
}

#[test]
fn summary_lists_memory_contracts_and_the_reserve() {
    let text = "[host]\nreserved_memory = \"512MiB\"\n\
                [tenants.cache]\nmemory = { baseline = \"300MiB\", burst = \"1GiB\", limit = \"2GiB\" }\n\
                [tenants.web]\ncpu = { baseline = 1, burst = 2 }\n\
                memory = { baseline = \"1.5GiB\", burst = \"2GiB\", protection = \"soft\" }\n";
    let summary = valid_on_fake_host(text).config.summary();
    let lines: Vec<&str> = summary.lines().collect();
    assert!(
        lines[1].starts_with("host:    0.0 cores reserved, 512 MiB of memory reserved,"),
        "{summary}"
    );
    assert!(
        lines[4].ends_with("cpu baselines add up to 1.0 cores, memory baselines to 1836 MiB"),
        "{summary}"
    );
    assert_table(
        &summary,
        "MEMORY PROTECTION",
        "TENANT MEMORY PROTECTION BASELINE BURST LIMIT
         cache hard (memory.min) 300 MiB 1 GiB 2 GiB
         web soft (memory.low) 1.5 GiB 2 GiB -",
    );
    // No memory table without memory contracts, and the default reserve.
    let summary = valid("[tenants.web]\ncpu = { baseline = 1, burst = 2 }\n")
        .config
        .summary();
    assert!(!summary.contains("MEMORY"), "{summary}");
    assert!(!summary.contains("memory baselines"), "{summary}");
    assert!(summary.contains("256 MiB of memory reserved"), "{summary}");
}

/// The example's commented-out memory lines, uncommented, form a valid
/// config on the fake host (4 GiB) without warnings.
#[test]
fn the_example_memory_configuration_is_valid_when_uncommented() {
    let memory_lines = [
        "reserved_memory = ",
        // Not the `memory = { baseline = B, ... }` that documents the keys.
        "memory = { baseline = \"",
    ];
    let config = example_uncommented(&memory_lines, 3, FakeHost::facts());
    assert_eq!(config.host.reserved_memory, 256 * MIB);
    let web = contract((GIB, 2 * GIB), Some(3 * GIB), MemoryProtection::Hard);
    assert_eq!(memory(tenant(&config, "web")), web);
    let batch = memory(tenant(&config, "batch"));
    assert_eq!(batch.protection, MemoryProtection::Soft);
    assert_eq!(batch.limit, None);
}
