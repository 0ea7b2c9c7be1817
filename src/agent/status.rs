//! The agent's side of `qosd status`: the report of its last tick, built
//! when asked (nothing is spent on it while nobody looks), and the Unix
//! socket it is served on.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt;
use tokio::net::UnixListener;
use tracing::{debug, warn};

use super::Agent;
use crate::status::Report;

impl Agent {
    /// What the last tick saw and decided: each controller's rows.
    pub fn status_report(&self) -> Report {
        let parts = (&self.config, self.tenants.as_slice(), &self.hierarchy);
        let (mut resources, mut tenants) = (Vec::new(), Vec::new());
        if let Some(tick) = super::view(parts, &self.samples) {
            for controller in &self.controllers {
                resources.extend(controller.resource_rows(&tick));
            }
            for (index, _) in tick.ready() {
                for controller in &self.controllers {
                    tenants.extend(controller.tenant_rows(&tick, index));
                }
            }
        }
        Report {
            tick: self.ticks,
            interval_seconds: self.config.agent.interval.as_secs_f64(),
            age_seconds: self
                .last_tick
                .map_or(0.0, |last| last.elapsed().as_secs_f64()),
            resources,
            tenants,
        }
    }
}

/// The status socket: root only, removed when the agent stops.
pub struct StatusSocket {
    listener: UnixListener,
    path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("another qosd answers on {0}; stop it first")]
    InUse(PathBuf),
    #[error("cannot serve status on {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

impl StatusSocket {
    /// Binds `path` (making its directory, owner only), replacing a socket
    /// left by an agent that died, but never one that still answers.
    pub fn bind(path: &Path) -> Result<Self, SocketError> {
        let failed = |source| SocketError::Io {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent().filter(|dir| !dir.exists()) {
            std::fs::create_dir_all(dir).map_err(failed)?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(failed)?;
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(SocketError::InUse(path.to_owned()));
        }
        match std::fs::remove_file(path) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(failed(error)),
            _ => {}
        }
        let listener = UnixListener::bind(path).map_err(failed)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(failed)?;
        Ok(StatusSocket {
            listener,
            path: path.to_owned(),
        })
    }

    /// The next client; errors are logged and waited out.
    pub async fn accept(&self) -> tokio::net::UnixStream {
        loop {
            match self.listener.accept().await {
                Ok((stream, _)) => return stream,
                Err(error) => {
                    warn!("status socket {}: {error}", self.path.display());
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    }
}

impl Drop for StatusSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Sends `report` to one client, in the background: a slow reader must not
/// hold up the next tick.
pub(super) fn answer(mut stream: tokio::net::UnixStream, report: &Report) {
    let Ok(json) = serde_json::to_vec(report) else {
        return;
    };
    tokio::spawn(async move {
        if let Err(error) = stream.write_all(&json).await {
            debug!("status client went away: {error}");
        }
        let _ = stream.shutdown().await;
    });
}
