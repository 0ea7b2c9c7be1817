use std::path::PathBuf;

pub type Result<T> = std::result::Result<T, CgroupError>;

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {value:?} to {path}: {source}")]
    Write {
        path: PathBuf,
        value: String,
        source: std::io::Error,
    },
    #[error("cannot parse {path}: {reason} (content: {content:?})")]
    Parse {
        path: PathBuf,
        content: String,
        reason: String,
    },
}

impl CgroupError {
    /// The cgroup (or the file) is gone: a tenant's group removed behind our back.
    /// That is normal on a live host, not a crash.
    pub fn is_vanished(&self) -> bool {
        todo!()
    }
}
