//! Cores, the tenants' `cpu = { ... }` and `host.reserved_cpu`, on two CPUs
//! ([`TWO_CPUS`]).

use super::*;

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
fn baseline_above_burst_points_at_the_baseline() {
    assert_one_error(
        "[tenants.web]\ncpu = { baseline = 2.5, burst = 2.0 }\n",
        "2:20",
        "tenants.web.cpu.baseline",
        "baseline of 2.5 cores is more than the burst of 2.0 cores",
    );
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
fn zero_online_cpus_is_reported_not_panicked() {
    let rendered = errors_on("", crate::host::this_host(0.0, nothing_protected));
    assert!(rendered.contains("`host.reserved_cpu`"), "{rendered}");
}
