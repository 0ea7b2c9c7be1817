//! PSI files: `<group>/{cpu,io,memory}.pressure` and `/proc/pressure/*` share one format.

use std::path::Path;

use super::{Group, Result, file};

const CPU_PRESSURE: &str = "cpu.pressure";
const IO_PRESSURE: &str = "io.pressure";
const MEMORY_PRESSURE: &str = "memory.pressure";

const SOME: &str = "some";
const FULL: &str = "full";

/// The fields of a PSI line, in the kernel's order; all are required.
const FIELDS: [&str; 4] = ["avg10", "avg60", "avg300", "total"];

/// What is wrong with a PSI file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PressureValueError {
    #[error("no {SOME:?} line")]
    NoSome,
    #[error("{field:?} is not key=value")]
    NotKeyValue { field: String },
    #[error("{key} has a bad value {value:?}")]
    BadValue { key: &'static str, value: String },
    #[error("{key} is missing")]
    Missing { key: &'static str },
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PressureLine {
    pub avg10: f64,
    pub avg60: f64,
    pub avg300: f64,
    /// Cumulative stall time in microseconds.
    pub total_usec: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Pressure {
    pub some: PressureLine,
    /// Absent from /proc/pressure/cpu on older kernels.
    pub full: Option<PressureLine>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PressureResource {
    Cpu,
    Io,
    Memory,
}

impl PressureResource {
    /// The name under /proc/pressure/.
    pub fn name(self) -> &'static str {
        match self {
            PressureResource::Cpu => "cpu",
            PressureResource::Io => "io",
            PressureResource::Memory => "memory",
        }
    }

    /// The file in a cgroup directory.
    pub fn file_name(self) -> &'static str {
        match self {
            PressureResource::Cpu => CPU_PRESSURE,
            PressureResource::Io => IO_PRESSURE,
            PressureResource::Memory => MEMORY_PRESSURE,
        }
    }
}

/// Parses PSI text; `path` is only used in errors.
pub fn parse(path: &Path, text: &str) -> Result<Pressure> {
    parse_text(text).map_err(|reason| file::parse_error(path, text.to_owned(), reason))
}

/// Reads `<group>/<resource>.pressure`.
pub fn read(group: &Group, resource: PressureResource) -> Result<Pressure> {
    group.read_parsed(resource.file_name(), parse_text)
}

/// `some` is required; `full` is optional. Lines of other kinds are skipped so
/// that a future kernel adding one does not break us.
fn parse_text(text: &str) -> std::result::Result<Pressure, PressureValueError> {
    let (mut some, mut full) = (None, None);
    for line in text.lines() {
        let (kind, fields) = line.split_once(' ').unwrap_or((line, ""));
        match kind {
            SOME => some = Some(parse_line(fields)?),
            FULL => full = Some(parse_line(fields)?),
            _ => {}
        }
    }
    let some = some.ok_or(PressureValueError::NoSome)?;
    Ok(Pressure { some, full })
}

/// Parses `avg10=0.00 avg60=0.00 avg300=0.00 total=0`; unknown fields are
/// skipped for the same reason as unknown lines.
fn parse_line(fields: &str) -> std::result::Result<PressureLine, PressureValueError> {
    let mut line = PressureLine::default();
    let mut seen = [false; FIELDS.len()];
    for field in fields.split_whitespace() {
        let (key, value) =
            field
                .split_once('=')
                .ok_or_else(|| PressureValueError::NotKeyValue {
                    field: field.to_owned(),
                })?;
        let Some(index) = FIELDS.iter().position(|known| *known == key) else {
            continue;
        };
        let key = FIELDS[index];
        match index {
            0 => line.avg10 = parse_avg(key, value)?,
            1 => line.avg60 = parse_avg(key, value)?,
            2 => line.avg300 = parse_avg(key, value)?,
            _ => line.total_usec = value.parse().map_err(|_| bad_value(key, value))?,
        }
        seen[index] = true;
    }
    match seen.iter().position(|found| !found) {
        Some(missing) => Err(PressureValueError::Missing {
            key: FIELDS[missing],
        }),
        None => Ok(line),
    }
}

/// An average is a percentage of time stalled: finite and not negative.
fn parse_avg(key: &'static str, value: &str) -> std::result::Result<f64, PressureValueError> {
    match value.parse::<f64>() {
        Ok(avg) if avg.is_finite() && avg >= 0.0 => Ok(avg),
        _ => Err(bad_value(key, value)),
    }
}

fn bad_value(key: &'static str, value: &str) -> PressureValueError {
    PressureValueError::BadValue {
        key,
        value: value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::CgroupError;
    use crate::cgroup::fake::FakeTree;

    const WITH_FULL: &str = "some avg10=1.53 avg60=0.87 avg300=0.21 total=2087314\n\
                             full avg10=0.40 avg60=0.12 avg300=0.03 total=514230\n";
    const SOME_ONLY: &str = "some avg10=0.00 avg60=0.01 avg300=0.05 total=12345\n";

    fn parse_str(text: &str) -> Result<Pressure> {
        parse(Path::new("/proc/pressure/cpu"), text)
    }

    #[test]
    fn some_and_full() {
        let pressure = parse_str(WITH_FULL).unwrap();
        assert_eq!(
            pressure.some,
            PressureLine {
                avg10: 1.53,
                avg60: 0.87,
                avg300: 0.21,
                total_usec: 2_087_314
            }
        );
        assert_eq!(pressure.full.unwrap().total_usec, 514_230);
    }

    #[test]
    fn some_without_full() {
        let pressure = parse_str(SOME_ONLY).unwrap();
        assert_eq!(pressure.some.total_usec, 12_345);
        assert_eq!(pressure.some.avg300, 0.05);
        assert_eq!(pressure.full, None);
    }

    #[test]
    fn garbage_is_an_error_with_path_and_content() {
        let cases = [
            "",
            "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
            "some avg10=0.00 avg60=0.00 total=0\n",
            "some avg10=x avg60=0.00 avg300=0.00 total=0\n",
            "some avg10=-1 avg60=0.00 avg300=0.00 total=0\n",
            "some avg10=0.00 avg60=0.00 avg300=0.00 total=-5\n",
            "some avg10 avg60=0.00 avg300=0.00 total=0\n",
        ];
        for text in cases {
            let error = parse_str(text).unwrap_err();
            assert!(
                matches!(error, CgroupError::Parse { ref path, ref content, .. }
                    if path == Path::new("/proc/pressure/cpu") && content == text),
                "{text:?}: {error}"
            );
        }
    }

    #[test]
    fn unknown_fields_and_lines_are_skipped() {
        let text = "some avg10=0.00 avg60=0.00 avg300=0.00 total=7 extra=1\nother x\n";
        assert_eq!(parse_str(text).unwrap().some.total_usec, 7);
    }

    #[test]
    fn read_from_a_group() {
        let tree = FakeTree::new();
        tree.add_group("web");
        tree.write("web/io.pressure", WITH_FULL);
        let group = tree.hierarchy().group(Path::new("web"));
        let pressure = read(&group, PressureResource::Io).unwrap();
        assert_eq!(pressure.some.total_usec, 2_087_314);
        assert_eq!(
            read(&group, PressureResource::Memory)
                .unwrap()
                .some
                .total_usec,
            0
        );
    }

    #[test]
    fn read_from_a_removed_group_is_vanished() {
        let tree = FakeTree::new();
        let group = tree.hierarchy().group(Path::new("gone"));
        assert!(
            read(&group, PressureResource::Cpu)
                .unwrap_err()
                .is_vanished()
        );
    }
}
