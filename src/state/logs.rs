//! The last log lines of a release's failing containers, kept with the
//! release (table `logs`) so `slipway logs` shows them after the rollback
//! removed the containers. Lines are stored already redacted.

use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One failing container's last lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerLogs {
    pub service: String,
    /// The container's name (`<project>-api-1`).
    pub container: String,
    pub lines: Vec<String>,
}

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS logs (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    release_id INTEGER NOT NULL REFERENCES releases(id),
    service    TEXT NOT NULL,
    container  TEXT NOT NULL,
    lines      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS logs_release ON logs(release_id);
";

impl super::State {
    /// Keep the captured lines of a release (in addition to any kept before).
    pub fn save_logs(&self, release: i64, logs: &[ContainerLogs]) -> Result<()> {
        for l in logs {
            let lines = serde_json::to_string(&l.lines)
                .map_err(|e| Error::env(format!("cannot store log lines: {e}")))?;
            self.conn.execute(
                "INSERT INTO logs (release_id, service, container, lines) VALUES (?1, ?2, ?3, ?4)",
                params![release, l.service, l.container, lines],
            )?;
        }
        Ok(())
    }

    /// What a release captured, in the order it was captured.
    pub fn logs_of(&self, release: i64) -> Result<Vec<ContainerLogs>> {
        let mut stmt = self.conn.prepare(
            "SELECT service, container, lines FROM logs WHERE release_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map(params![release], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        rows.map(|row| {
            let (service, container, lines) = row?;
            let lines = serde_json::from_str(&lines).map_err(|e| {
                self.corrupt(format!("log lines of release {release} ({container}): {e}"))
            })?;
            Ok(ContainerLogs {
                service,
                container,
                lines,
            })
        })
        .collect()
    }

    /// The newest release of `env` that captured log lines.
    pub fn newest_with_logs(&self, env: &str) -> Result<Option<i64>> {
        Ok(self
            .conn
            .query_row(
                "SELECT MAX(l.release_id) FROM logs l JOIN releases r ON r.id = l.release_id \
                 WHERE r.env = ?1",
                params![env],
                |r| r.get::<_, Option<i64>>(0),
            )
            .optional()?
            .flatten())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Kind, Release, State, Status};

    fn release(state: &State, env: &str) -> i64 {
        state
            .begin(&Release {
                id: 0,
                env: env.into(),
                kind: Kind::Deploy,
                tag: Some("v2".into()),
                status: Status::InProgress,
                started_at: crate::state::now(),
                finished_at: None,
                reason: None,
                previous: None,
                services: Default::default(),
                commit: None,
                branch: None,
                run_url: None,
            })
            .expect("begin")
    }

    #[test]
    fn logs_are_kept_per_release_and_the_newest_is_found_per_env() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = State::open(dir.path()).expect("state");
        let a = release(&state, "prod");
        let b = release(&state, "prod");
        let other = release(&state, "staging");
        assert_eq!(state.newest_with_logs("prod").expect("query"), None);
        let api = ContainerLogs {
            service: "api".into(),
            container: "p-api-1".into(),
            lines: vec!["booting".into(), "fixture: crashing".into()],
        };
        state
            .save_logs(a, std::slice::from_ref(&api))
            .expect("save");
        state
            .save_logs(other, std::slice::from_ref(&api))
            .expect("save");
        assert_eq!(state.newest_with_logs("prod").expect("query"), Some(a));
        assert_eq!(state.logs_of(a).expect("read"), [api]);
        assert!(state.logs_of(b).expect("read").is_empty());
    }
}
