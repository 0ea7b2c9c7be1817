//! /proc/pressure/*: the host's PSI, read with the cgroup module's parser.

use std::fs;
use std::io;
use std::path::PathBuf;

use super::{ProcError, ProcFs};
use crate::cgroup::CgroupError;
use crate::cgroup::pressure::{self, Pressure, PressureResource};

const PRESSURE_DIR: &str = "pressure";

impl ProcFs {
    /// `/proc/pressure/<resource>`; `Ok(None)` when the kernel has no PSI.
    /// Kernels built without CONFIG_PSI, or booted with psi=0, have no
    /// /proc/pressure directory at all; any other failure is an error.
    pub fn read_pressure(&self, resource: PressureResource) -> Result<Option<Pressure>, ProcError> {
        let dir = self.root.join(PRESSURE_DIR);
        let path = dir.join(resource.name());
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == io::ErrorKind::NotFound && !dir.exists() => {
                return Ok(None);
            }
            Err(source) => return Err(ProcError::Read { path, source }),
        };
        pressure::parse(&path, &text)
            .map(Some)
            .map_err(|error| from_cgroup(path, error))
    }
}

/// The PSI parser is shared with the cgroup module; keep its reason and content.
fn from_cgroup(path: PathBuf, error: CgroupError) -> ProcError {
    let reason = match error {
        CgroupError::Parse {
            reason, content, ..
        } => format!("{reason} (content: {content:?})"),
        other => other.to_string(),
    };
    ProcError::Parse { path, reason }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::fixtures::{STAT_TEXT, fake_proc};

    #[test]
    fn pressure_is_read_with_the_shared_parser() {
        let psi = "some avg10=2.50 avg60=1.00 avg300=0.50 total=99\n";
        let (_dir, procfs) = fake_proc(&[("pressure/cpu", psi)]);
        let pressure = procfs
            .read_pressure(PressureResource::Cpu)
            .unwrap()
            .unwrap();
        assert_eq!(pressure.some.avg10, 2.5);
        assert_eq!(pressure.some.total_usec, 99);
        assert_eq!(pressure.full, None);
    }

    #[test]
    fn no_pressure_dir_means_no_psi() {
        let (_dir, procfs) = fake_proc(&[("stat", STAT_TEXT)]);
        assert!(
            procfs
                .read_pressure(PressureResource::Io)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_missing_file_in_the_pressure_dir_is_an_error() {
        let (_dir, procfs) = fake_proc(&[("pressure/cpu", "")]);
        let error = procfs.read_pressure(PressureResource::Memory).unwrap_err();
        assert!(matches!(error, ProcError::Read { .. }), "{error}");
    }

    #[test]
    fn bad_pressure_keeps_path_and_content() {
        let (_dir, procfs) = fake_proc(&[("pressure/io", "nonsense\n")]);
        let error = procfs.read_pressure(PressureResource::Io).unwrap_err();
        let text = error.to_string();
        assert!(text.contains("pressure/io"), "{text}");
        assert!(text.contains("nonsense"), "{text}");
    }

    #[test]
    fn io_pressure_has_some_and_full() {
        let psi = "some avg10=30.12 avg60=12.40 avg300=3.02 total=94123456\n\
                   full avg10=28.90 avg60=11.85 avg300=2.88 total=90011223\n";
        let (_dir, procfs) = fake_proc(&[("pressure/io", psi)]);
        let io = procfs.read_pressure(PressureResource::Io).unwrap().unwrap();
        assert_eq!(io.some.total_usec, 94_123_456);
        assert_eq!(io.full.unwrap().avg10, 28.9);
    }
}
