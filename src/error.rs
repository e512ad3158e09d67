//! The one error type users see, and the one place it maps to exit codes.
//!
//! Messages are written for the person at the terminal: what went wrong,
//! where, and what to do next. They never contain secret values.

use std::fmt;

/// Exit codes from PRODUCT.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    /// The new release failed; the previous one is restored and healthy.
    RolledBack = 1,
    /// Usage, config, preflight or pull error; nothing running was changed.
    Usage = 2,
    /// Failed and could not restore: a human must act.
    Broken = 3,
    /// Another slipway run holds the environment lock.
    Locked = 4,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A config problem with its location (`file:line:col`).
    #[error("{location}: {message}")]
    Config { location: String, message: String },
    /// Bad flags or arguments, or a check that failed before anything changed.
    #[error("{0}")]
    Usage(String),
    /// Preflight found a problem; nothing was changed.
    #[error("preflight: {0}")]
    Preflight(String),
    /// A pull failed; nothing running was touched.
    #[error("pull failed: {0}")]
    Pull(String),
    /// The new release failed and the previous one was restored.
    #[error("{0}")]
    RolledBack(String),
    /// Restoring failed; the message says what runs.
    #[error("{0}")]
    Broken(String),
    #[error("{0}")]
    Locked(String),
    /// Docker, Compose, disk: something around us failed before we changed anything.
    #[error("{0}")]
    Environment(String),
    /// A check (`slipway smoke`) ran and some assertion failed.
    #[error("{0}")]
    ChecksFailed(String),
}

impl Error {
    pub fn exit(&self) -> Exit {
        match self {
            Error::Config { .. }
            | Error::Usage(_)
            | Error::Preflight(_)
            | Error::Pull(_)
            | Error::Environment(_) => Exit::Usage,
            Error::RolledBack(_) | Error::ChecksFailed(_) => Exit::RolledBack,
            Error::Broken(_) => Exit::Broken,
            Error::Locked(_) => Exit::Locked,
        }
    }

    /// Short machine name for `--json` error objects.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Config { .. } => "config",
            Error::Usage(_) => "usage",
            Error::Preflight(_) => "preflight",
            Error::Pull(_) => "pull",
            Error::RolledBack(_) => "rolled_back",
            Error::Broken(_) => "failed",
            Error::Locked(_) => "locked",
            Error::Environment(_) => "environment",
            Error::ChecksFailed(_) => "checks_failed",
        }
    }

    pub fn env(message: impl fmt::Display) -> Self {
        Error::Environment(message.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Environment(format!("state database: {e}"))
    }
}
