//! What is wrong with an io file's content or with a value for it.

use super::DeviceNumber;
use super::max::MAX_LIMIT_MIN;
use super::weight::DEFAULT;
use crate::cgroup::SyntaxError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IoValueError {
    /// A line that does not start with `MAJ:MIN`.
    #[error("{source} in line {line:?}")]
    Device { source: SyntaxError, line: String },
    #[error("{device}: {field:?} is not key=value")]
    NotKeyValue { device: DeviceNumber, field: String },
    #[error("{device}: {key} appears twice")]
    RepeatedKey {
        device: DeviceNumber,
        key: &'static str,
    },
    #[error("{device}: {} missing", .keys.join(", "))]
    MissingKeys {
        device: DeviceNumber,
        keys: Vec<&'static str>,
    },
    #[error("{device}: {value:?} is not a number")]
    NotANumber { device: DeviceNumber, value: String },
    #[error("{device} appears twice")]
    RepeatedDevice { device: DeviceNumber },
    /// An io.max value the kernel rejects.
    #[error("{key} must be at least {MAX_LIMIT_MIN} (use max for no limit)")]
    LimitTooLow { key: &'static str },
    /// An io.max value the kernel would clamp, or read back as `max`.
    #[error("{key} must be at most {highest}")]
    LimitTooHigh { key: &'static str, highest: u64 },
    #[error("expected a \"{DEFAULT} N\" line")]
    NoDefaultWeight,
}
