//! Reading and writing single cgroupfs files, with errors that carry the path
//! (and the value written).

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::str::FromStr;

use super::{CgroupError, Result};

pub(crate) fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(|source| CgroupError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Writes `value` with exactly one write(2): cgroupfs parses every write on its
/// own, so a value split over two writes would be taken as two values.
///
/// The file is opened without O_CREAT: cgroupfs files exist as soon as their
/// controller is enabled, and creating one is never what we want (a fake tree in
/// a test must create its files first, as the kernel would).
pub(crate) fn write(path: &Path, value: &str) -> Result<()> {
    let error = |source: io::Error| CgroupError::Write {
        path: path.to_owned(),
        value: value.to_owned(),
        source,
    };
    // O_TRUNC is a no-op on cgroupfs but keeps a fake tree's file free of old bytes.
    let mut file = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(error)?;
    let written = file.write(value.as_bytes()).map_err(error)?;
    if written != value.len() {
        let short = format!("short write: {written} of {} bytes", value.len());
        return Err(error(io::Error::new(io::ErrorKind::WriteZero, short)));
    }
    Ok(())
}

/// Reads a file that holds one number (e.g. `cpu.weight`).
pub(crate) fn read_number<T: FromStr>(path: &Path) -> Result<T> {
    let content = read(path)?;
    match content.trim().parse() {
        Ok(value) => Ok(value),
        Err(_) => Err(parse_error(path, content, "expected a single number")),
    }
}

pub(crate) fn parse_error(path: &Path, content: String, reason: impl Into<String>) -> CgroupError {
    CgroupError::Parse {
        path: path.to_owned(),
        content,
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_replaces_the_whole_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cpu.max");
        fs::write(&path, "max 100000\n").unwrap();
        write(&path, "5").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "5");
    }

    #[test]
    fn write_does_not_create_files() {
        let dir = tempfile::tempdir().unwrap();
        let error = write(&dir.path().join("cpu.max"), "max").unwrap_err();
        assert!(error.is_vanished());
        assert!(!dir.path().join("cpu.max").exists());
    }

    #[test]
    fn read_number_rejects_garbage_and_keeps_the_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cpu.weight");
        fs::write(&path, "lots\n").unwrap();
        let error = read_number::<u32>(&path).unwrap_err();
        assert!(matches!(error, CgroupError::Parse { ref content, .. } if content == "lots\n"));
    }

    #[test]
    fn read_of_a_missing_file_is_an_error_not_zero() {
        let dir = tempfile::tempdir().unwrap();
        let error = read_number::<u64>(&dir.path().join("cpu.max.burst")).unwrap_err();
        assert!(error.is_vanished());
        assert!(error.to_string().contains("cpu.max.burst"));
    }
}
