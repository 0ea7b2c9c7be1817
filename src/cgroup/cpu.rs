//! The cpu controller: cpu.stat, cpu.weight, cpu.max, cpu.max.burst.

use std::fmt;
use std::str::FromStr;

use super::flat_keyed::FlatKeyed;
use super::{Group, Result, Syntax, SyntaxError, ValueError, file};

const CPU_STAT: &str = "cpu.stat";
const CPU_WEIGHT: &str = "cpu.weight";
const CPU_MAX: &str = "cpu.max";
const CPU_MAX_BURST: &str = "cpu.max.burst";

/// The unlimited quota in cpu.max.
const QUOTA_MAX: &str = "max";

/// cpu.weight bounds enforced by the kernel.
pub const WEIGHT_MIN: u32 = 1;
pub const WEIGHT_MAX: u32 = 10_000;

/// cpu.max bounds enforced by the kernel (1 ms ..= 1 s period, quota ≥ 1 ms).
pub const PERIOD_MIN_US: u64 = 1_000;
pub const PERIOD_MAX_US: u64 = 1_000_000;
pub const QUOTA_MIN_US: u64 = 1_000;

/// What is wrong with a cpu.max value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CpuValueError {
    #[error(transparent)]
    Max(SyntaxError),
    #[error("the period must be in {PERIOD_MIN_US}..={PERIOD_MAX_US} us")]
    PeriodOutOfRange,
    #[error("the quota must be at least {QUOTA_MIN_US} us")]
    QuotaTooSmall,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuStat {
    pub usage_usec: u64,
    pub user_usec: u64,
    pub system_usec: u64,
    /// The next three are absent until the cpu controller is enabled; then 0.
    pub nr_periods: u64,
    pub nr_throttled: u64,
    pub throttled_usec: u64,
}

/// cpu.stat keys. The first three come from the core, not the cpu
/// controller, so the kernel always prints them: their absence means the
/// file is not what we think it is.
const USAGE_USEC: &str = "usage_usec";
const USER_USEC: &str = "user_usec";
const SYSTEM_USEC: &str = "system_usec";
const NR_PERIODS: &str = "nr_periods";
const NR_THROTTLED: &str = "nr_throttled";
const THROTTLED_USEC: &str = "throttled_usec";
const STAT_KEYS: [&str; 6] = [
    USAGE_USEC,
    USER_USEC,
    SYSTEM_USEC,
    NR_PERIODS,
    NR_THROTTLED,
    THROTTLED_USEC,
];

/// cpu.max: quota per period, `None` quota = "max" (unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuMax {
    pub quota_us: Option<u64>,
    pub period_us: u64,
}

pub const DEFAULT_PERIOD_US: u64 = 100_000;

impl CpuMax {
    /// The kernel's default: no quota, 100 ms period.
    pub const UNLIMITED: CpuMax = CpuMax {
        quota_us: None,
        period_us: DEFAULT_PERIOD_US,
    };

    /// Why the kernel would reject this value, if it would.
    fn refusal(&self) -> Option<ValueError> {
        if !(PERIOD_MIN_US..=PERIOD_MAX_US).contains(&self.period_us) {
            return Some(CpuValueError::PeriodOutOfRange.into());
        }
        match self.quota_us {
            Some(quota) if quota < QUOTA_MIN_US => Some(CpuValueError::QuotaTooSmall.into()),
            _ => None,
        }
    }
}

/// The kernel's format: `"max 100000"` or `"50000 100000"`.
impl fmt::Display for CpuMax {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.quota_us {
            Some(quota) => write!(f, "{quota} {}", self.period_us),
            None => write!(f, "{QUOTA_MAX} {}", self.period_us),
        }
    }
}

const CPU_MAX_SYNTAX: Syntax = Syntax {
    what: CPU_MAX,
    expected: "\"<quota|max> <period>\" in microseconds",
};

/// Parses what the kernel shows (always two fields; writing one is a kernel
/// shorthand we do not need to read back).
impl FromStr for CpuMax {
    type Err = SyntaxError;

    fn from_str(text: &str) -> std::result::Result<Self, Self::Err> {
        let error = || SyntaxError::new(&CPU_MAX_SYNTAX, text);
        let mut fields = text.split_whitespace();
        let (Some(quota), Some(period), None) = (fields.next(), fields.next(), fields.next())
        else {
            return Err(error());
        };
        let quota_us = match quota {
            QUOTA_MAX => None,
            number => Some(number.parse().map_err(|_| error())?),
        };
        let period_us = period.parse().map_err(|_| error())?;
        Ok(CpuMax {
            quota_us,
            period_us,
        })
    }
}

pub fn read_stat(group: &Group) -> Result<CpuStat> {
    group.read_parsed(CPU_STAT, parse_stat)
}

/// Parses cpu.stat's `key value` lines. Unknown keys (nr_bursts, burst_usec,
/// core_sched.*, …) are skipped. The throttling keys stay 0 when absent only
/// because the kernel omits them while the cpu controller is not enabled for
/// the group, and then nothing was throttled; the core usage keys are required.
fn parse_stat(content: &str) -> std::result::Result<CpuStat, ValueError> {
    let stat = FlatKeyed::parse(content, STAT_KEYS)?;
    Ok(CpuStat {
        usage_usec: stat.required(USAGE_USEC)?,
        user_usec: stat.required(USER_USEC)?,
        system_usec: stat.required(SYSTEM_USEC)?,
        nr_periods: stat.or_zero(NR_PERIODS),
        nr_throttled: stat.or_zero(NR_THROTTLED),
        throttled_usec: stat.or_zero(THROTTLED_USEC),
    })
}

pub fn read_weight(group: &Group) -> Result<u32> {
    group.read_parsed(CPU_WEIGHT, file::number)
}

/// Rejects weights outside 1..=10000 before the kernel does, naming the value.
pub fn write_weight(group: &Group, weight: u32) -> Result<()> {
    let refusal = ValueError::unless_within(CPU_WEIGHT, WEIGHT_MIN..=WEIGHT_MAX, weight);
    file::write_unless(&group.path().join(CPU_WEIGHT), &weight.to_string(), refusal)
}

pub fn read_max(group: &Group) -> Result<CpuMax> {
    group.read_parsed(CPU_MAX, |content| {
        content.parse().map_err(CpuValueError::Max)
    })
}

/// Rejects periods and quotas the kernel would refuse, naming the value.
pub fn write_max(group: &Group, max: CpuMax) -> Result<()> {
    file::write_unless(&group.path().join(CPU_MAX), &max.to_string(), max.refusal())
}

/// cpu.max.burst in microseconds; `Ok(None)` on kernels before 5.14,
/// which have no such file.
pub fn read_max_burst(group: &Group) -> Result<Option<u64>> {
    group.read_parsed_if_present(CPU_MAX_BURST, file::number)
}

/// The kernel refuses a burst above the quota in force: lower the burst
/// before the quota, raise it after.
pub fn write_max_burst(group: &Group, burst_us: u64) -> Result<()> {
    file::write(&group.path().join(CPU_MAX_BURST), &burst_us.to_string())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::cgroup::fake::{FakeTree, assert_mentions, assert_parse_error, assert_refused};

    /// cpu.stat of a group with the cpu controller enabled (kernel 6.1).
    const STAT_ENABLED: &str = "usage_usec 9133418\nuser_usec 7024113\nsystem_usec 2109305\n\
        core_sched.force_idle_usec 0\nnr_periods 1520\nnr_throttled 212\n\
        throttled_usec 4031337\nnr_bursts 0\nburst_usec 0\n";

    /// cpu.stat of a group whose parent has not enabled the cpu controller.
    const STAT_CORE_ONLY: &str = "usage_usec 4200\nuser_usec 4000\nsystem_usec 200\n\
        core_sched.force_idle_usec 0\n";

    #[test]
    fn stat_with_throttling_keys() {
        let stat = parse_stat(STAT_ENABLED).unwrap();
        assert_eq!(
            stat,
            CpuStat {
                usage_usec: 9_133_418,
                user_usec: 7_024_113,
                system_usec: 2_109_305,
                nr_periods: 1520,
                nr_throttled: 212,
                throttled_usec: 4_031_337,
            }
        );
    }

    #[test]
    fn stat_without_throttling_keys_defaults_them_to_zero() {
        let stat = parse_stat(STAT_CORE_ONLY).unwrap();
        assert_eq!(stat.usage_usec, 4200);
        assert_eq!(
            (stat.nr_periods, stat.nr_throttled, stat.throttled_usec),
            (0, 0, 0)
        );
    }

    #[test]
    fn stat_without_usage_is_an_error_not_zero() {
        let (_tree, group) = FakeTree::with_group("web", &[("cpu.stat", "nr_periods 3\n")]);
        let error = read_stat(&group).unwrap_err();
        assert_parse_error(&error, "web/cpu.stat", "nr_periods 3\n");
        assert_mentions(&error, &["usage_usec is missing", "web/cpu.stat"]);
    }

    #[test]
    fn stat_with_a_bad_number_is_an_error() {
        let error = parse_stat("usage_usec 12x\nuser_usec 1\nsystem_usec 1\n").unwrap_err();
        assert_mentions(&error, &["usage_usec"]);
    }

    #[test]
    fn read_stat_from_a_group() {
        let (_tree, group) = FakeTree::with_group("web", &[("cpu.stat", STAT_ENABLED)]);
        assert_eq!(read_stat(&group).unwrap().nr_throttled, 212);
    }

    #[test]
    fn cpu_max_both_forms_round_trip() {
        let unlimited: CpuMax = "max 100000\n".parse().unwrap();
        assert_eq!(unlimited, CpuMax::UNLIMITED);
        assert_eq!(unlimited.to_string(), "max 100000");

        let half: CpuMax = "50000 100000".parse().unwrap();
        assert_eq!(
            half,
            CpuMax {
                quota_us: Some(50_000),
                period_us: 100_000
            }
        );
        assert_eq!(half.to_string(), "50000 100000");
    }

    #[test]
    fn cpu_max_garbage_is_rejected() {
        for bad in [
            "",
            "max",
            "50000",
            "max max",
            "-1 100000",
            "1 2 3",
            "half 100000",
        ] {
            assert!(bad.parse::<CpuMax>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn read_and_write_max() {
        let (tree, group) = FakeTree::with_group("web", &[]);
        assert_eq!(read_max(&group).unwrap(), CpuMax::UNLIMITED);
        let limit = CpuMax {
            quota_us: Some(150_000),
            period_us: DEFAULT_PERIOD_US,
        };
        write_max(&group, limit).unwrap();
        assert_eq!(tree.read("web/cpu.max"), "150000 100000");
        assert_eq!(read_max(&group).unwrap(), limit);
    }

    #[test]
    fn read_max_garbage_carries_path_and_content() {
        let (_tree, group) = FakeTree::with_group("web", &[("cpu.max", "lots\n")]);
        assert_parse_error(&read_max(&group).unwrap_err(), "web/cpu.max", "lots\n");
    }

    #[test]
    fn write_max_rejects_what_the_kernel_would() {
        let (tree, group) = FakeTree::with_group("web", &[]);
        let tiny = CpuMax {
            quota_us: Some(999),
            period_us: DEFAULT_PERIOD_US,
        };
        let long = CpuMax {
            quota_us: None,
            period_us: 2_000_000,
        };
        for bad in [tiny, long] {
            let error = write_max(&group, bad).unwrap_err();
            assert!(error.to_string().contains(&bad.to_string()), "{error}");
        }
        assert_eq!(tree.read("web/cpu.max"), "max 100000\n");
    }

    #[test]
    fn weight_bounds() {
        let (_tree, group) = FakeTree::with_group("web", &[]);
        for good in [WEIGHT_MIN, 100, WEIGHT_MAX] {
            write_weight(&group, good).unwrap();
            assert_eq!(read_weight(&group).unwrap(), good);
        }
        for bad in [0, WEIGHT_MAX + 1] {
            assert_refused(&write_weight(&group, bad).unwrap_err(), &bad.to_string());
        }
        assert_eq!(read_weight(&group).unwrap(), WEIGHT_MAX);
    }

    #[test]
    fn max_burst_round_trip() {
        let (tree, group) = FakeTree::with_group("web", &[]);
        assert_eq!(read_max_burst(&group).unwrap(), Some(0));
        write_max_burst(&group, 20_000).unwrap();
        assert_eq!(tree.read("web/cpu.max.burst"), "20000");
        assert_eq!(read_max_burst(&group).unwrap(), Some(20_000));
    }

    #[test]
    fn max_burst_is_none_without_the_file_and_an_error_on_garbage_or_a_gone_group() {
        let (tree, group) = FakeTree::with_group("web", &[]);
        tree.write("web/cpu.max.burst", "lots\n");
        let error = read_max_burst(&group).unwrap_err();
        assert!(
            matches!(error, crate::cgroup::CgroupError::Parse { ref content, .. } if content == "lots\n")
        );
        std::fs::remove_file(group.path().join(CPU_MAX_BURST)).unwrap();
        assert_eq!(
            read_max_burst(&group).unwrap(),
            None,
            "a kernel before 5.14"
        );
        std::fs::remove_dir_all(group.path()).unwrap();
        let error = read_max_burst(&group).unwrap_err();
        assert!(error.is_vanished(), "{error}");
    }

    #[test]
    fn writes_to_a_removed_group_are_vanished_and_carry_the_value() {
        let tree = FakeTree::new();
        let group = tree.hierarchy().group(Path::new("gone"));
        let error = write_max(&group, CpuMax::UNLIMITED).unwrap_err();
        assert!(error.is_vanished());
        assert!(error.to_string().contains("\"max 100000\""), "{error}");
        assert!(read_stat(&group).unwrap_err().is_vanished());
    }
}
