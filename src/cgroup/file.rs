//! Reading and writing single cgroupfs files, with errors that carry the path
//! (and the value written).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::str::FromStr;

use super::{CgroupError, Result, ValueError};

/// Reads a whole cgroupfs (or procfs) file.
pub(crate) fn read(path: &Path) -> Result<String> {
    File::open(path)
        .and_then(|file| read_from_start(&file))
        .map_err(|source| read_error(path, source))
}

/// Reads a file from offset 0 with pread, so an open file can be read again
/// each tick: seq_file regenerates its content on a read at offset 0. Unlike
/// `fs::read_to_string` it asks for no size hint (these files report size 0
/// anyway) and stops at the first short read: seq_file and regular files both
/// hand over everything they have in one read.
pub(crate) fn read_from_start(file: &File) -> io::Result<String> {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match file.read_at(&mut chunk, bytes.len() as u64) {
            Ok(n) => {
                bytes.extend_from_slice(&chunk[..n]);
                if n < chunk.len() {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    String::from_utf8(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

pub(crate) fn read_error(path: &Path, source: io::Error) -> CgroupError {
    CgroupError::Read {
        path: path.to_owned(),
        source,
    }
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

/// Writes `value` unless `refusal` says why the kernel would reject it (or
/// not read it back): then nothing is written and the error names the value.
pub(crate) fn write_unless(path: &Path, value: &str, refusal: Option<ValueError>) -> Result<()> {
    match refusal {
        Some(reason) => Err(CgroupError::InvalidValue {
            path: path.to_owned(),
            value: value.to_owned(),
            reason,
        }),
        None => write(path, value),
    }
}

/// The content of a file that holds one number.
pub(crate) fn number<T: FromStr>(content: &str) -> std::result::Result<T, ValueError> {
    content.trim().parse().map_err(|_| ValueError::NotANumber)
}

pub(crate) fn parse_error(
    path: &Path,
    content: String,
    reason: impl Into<ValueError>,
) -> CgroupError {
    CgroupError::Parse {
        path: path.to_owned(),
        content,
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

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
}
