//! The environment lock: an advisory `flock` on `.slipway/<env>.lock`.
//!
//! The kernel drops a flock when its holder dies (SIGKILL, reboot, cancelled CI
//! job), so the lock itself cannot get stuck. The file also records who holds
//! it (pid, host, since) so a second run can say who is deploying; a record
//! left behind with no lock held is reported as stale.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    pub pid: u32,
    pub host: String,
    pub since: String,
    pub command: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockState {
    Free,
    Held(LockInfo),
    /// A holder record with no live holder: that run died without cleaning up.
    Stale(LockInfo),
}

/// Held while this value lives.
pub struct EnvLock {
    file: File,
    path: PathBuf,
}

fn lock_path(dir: &Path, env: &str) -> PathBuf {
    dir.join(format!("{env}.lock"))
}

fn open(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| Error::env(format!("cannot open lock file {}: {e}", path.display())))
}

fn read_info(file: &mut File) -> Option<LockInfo> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

impl EnvLock {
    /// Take the lock or say who holds it. Returns the stale record, if one was taken over.
    pub fn acquire(dir: &Path, env: &str, command: &str) -> Result<(EnvLock, Option<LockInfo>)> {
        let path = lock_path(dir, env);
        let mut file = open(&path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let who = read_info(&mut file)
                    .map(|i| {
                        format!(
                            "{} (pid {} on {}, since {})",
                            i.command, i.pid, i.host, i.since
                        )
                    })
                    .unwrap_or_else(|| "another slipway run".into());
                return Err(Error::Locked(format!(
                    "environment `{env}` is locked by {who}\n  hint: wait for it to finish; `slipway status --env {env}` shows what it is doing"
                )));
            }
            Err(TryLockError::Error(e)) => {
                return Err(Error::env(format!("cannot lock {}: {e}", path.display())))
            }
        }
        let stale = read_info(&mut file);
        let info = LockInfo {
            pid: std::process::id(),
            host: gethostname::gethostname().to_string_lossy().into_owned(),
            since: super::now(),
            command: command.to_string(),
        };
        let text = serde_json::to_string(&info).unwrap_or_default();
        file.set_len(0)
            .and_then(|_| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(text.as_bytes()))
            .and_then(|_| file.sync_all())
            .map_err(|e| Error::env(format!("cannot write lock file {}: {e}", path.display())))?;
        Ok((EnvLock { file, path }, stale))
    }

    /// Like `acquire`, but queue up to `wait` behind a running holder.
    pub async fn acquire_waiting(
        dir: &Path,
        env: &str,
        command: &str,
        wait: std::time::Duration,
    ) -> Result<(EnvLock, Option<LockInfo>)> {
        let deadline = std::time::Instant::now() + wait;
        let mut said = false;
        loop {
            match EnvLock::acquire(dir, env, command) {
                Err(Error::Locked(msg)) if std::time::Instant::now() < deadline => {
                    if !said {
                        eprintln!(
                            "  waiting up to {} for the lock: {}",
                            humantime::format_duration(wait),
                            msg.lines().next().unwrap_or("")
                        );
                        said = true;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                }
                other => return other,
            }
        }
    }

    pub fn inspect(dir: &Path, env: &str) -> LockState {
        let path = lock_path(dir, env);
        let Ok(mut file) = File::open(&path) else {
            return LockState::Free;
        };
        let info = read_info(&mut file);
        match (file.try_lock_shared(), info) {
            (Err(TryLockError::WouldBlock), Some(i)) => LockState::Held(i),
            (Err(TryLockError::WouldBlock), None) => LockState::Held(LockInfo {
                pid: 0,
                host: "?".into(),
                since: "?".into(),
                command: "?".into(),
            }),
            (_, Some(i)) => LockState::Stale(i),
            (_, None) => LockState::Free,
        }
    }
}

impl Drop for EnvLock {
    fn drop(&mut self) {
        // Clear the record first so nobody reads it as stale; the flock goes with the file.
        let _ = self.file.set_len(0);
        let _ = self.file.sync_all();
        let _ = &self.path;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_and_names_the_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (held, stale) = EnvLock::acquire(dir.path(), "staging", "deploy").expect("first");
        assert!(stale.is_none());
        let err = EnvLock::acquire(dir.path(), "staging", "deploy")
            .err()
            .expect("locked");
        assert_eq!(err.exit(), crate::error::Exit::Locked);
        assert!(
            err.to_string()
                .contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        assert!(matches!(
            EnvLock::inspect(dir.path(), "staging"),
            LockState::Held(_)
        ));
        // Other environments are independent.
        assert!(EnvLock::acquire(dir.path(), "production", "deploy").is_ok());
        drop(held);
        assert_eq!(EnvLock::inspect(dir.path(), "staging"), LockState::Free);
    }

    #[test]
    fn a_record_without_a_holder_is_stale_and_taken_over() {
        let dir = tempfile::tempdir().expect("tempdir");
        let record =
            r#"{"pid":999999,"host":"h","since":"2026-01-01T00:00:00Z","command":"deploy"}"#;
        std::fs::write(dir.path().join("staging.lock"), record).expect("write");
        assert!(
            matches!(EnvLock::inspect(dir.path(), "staging"), LockState::Stale(i) if i.pid == 999999)
        );
        let (_held, stale) = EnvLock::acquire(dir.path(), "staging", "deploy").expect("take over");
        assert_eq!(stale.map(|s| s.pid), Some(999999));
    }
}
