//! Block device numbers (`MAJ:MIN`), as cgroup files name devices.

use std::fmt;
use std::str::FromStr;

use crate::cgroup::{Syntax, SyntaxError};

/// A block device's number (`MAJ:MIN`), as cgroup files name devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceNumber {
    pub major: u32,
    pub minor: u32,
}

impl fmt::Display for DeviceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.major, self.minor)
    }
}

const DEVICE_NUMBER_SYNTAX: Syntax = Syntax {
    what: "device number",
    expected: "MAJ:MIN, e.g. 8:0",
};

/// Parses `MAJ:MIN` exactly (no spaces, both decimal).
impl FromStr for DeviceNumber {
    type Err = SyntaxError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = || SyntaxError::new(&DEVICE_NUMBER_SYNTAX, text);
        let (major, minor) = text.split_once(':').ok_or_else(error)?;
        Ok(DeviceNumber {
            major: parse_decimal(major).ok_or_else(error)?,
            minor: parse_decimal(minor).ok_or_else(error)?,
        })
    }
}

/// Digits only: `str::parse` would take a leading `+`.
fn parse_decimal(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_numbers_parse_and_print() {
        let device: DeviceNumber = "259:3".parse().unwrap();
        assert_eq!(
            device,
            DeviceNumber {
                major: 259,
                minor: 3
            }
        );
        assert_eq!(device.to_string(), "259:3");
        for bad in [
            "",
            "8",
            "8:",
            ":0",
            "8:0:1",
            " 8:0",
            "+8:0",
            "a:b",
            "8:-1",
            "4294967296:0",
        ] {
            let error = bad.parse::<DeviceNumber>().unwrap_err();
            assert!(error.to_string().contains(&format!("{bad:?}")), "{error}");
        }
    }
}
