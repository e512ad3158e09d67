//! What slipway remembers between runs, under `.slipway/` beside the config:
//! release history and the step journal in SQLite (WAL, synchronous=FULL, so
//! a journal entry written before a step survives a crash during it), and one
//! lock file per environment.

mod journal;
mod lock;
mod logs;
mod release;

pub use journal::{Decision, Entry, Step};
pub use lock::{EnvLock, LockInfo, LockState};
pub use logs::ContainerLogs;
pub use release::{Kind, Release, ServiceImage, Status};

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};

use crate::error::{Error, Result};

pub struct State {
    conn: Connection,
    dir: PathBuf,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS releases (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    env         TEXT NOT NULL,
    kind        TEXT NOT NULL,
    tag         TEXT,
    status      TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    reason      TEXT,
    previous_id INTEGER,
    services    TEXT NOT NULL,
    git_commit  TEXT,
    branch      TEXT,
    run_url     TEXT
);
CREATE INDEX IF NOT EXISTS releases_env ON releases(env, id);
CREATE TABLE IF NOT EXISTS journal (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    release_id INTEGER NOT NULL REFERENCES releases(id),
    step       TEXT NOT NULL,
    detail     TEXT,
    at         TEXT NOT NULL
);
";

pub fn now() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| jiff::Timestamp::now().to_string())
}

fn open_db(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch(SCHEMA)?;
    conn.execute_batch(logs::SCHEMA)?;
    Ok(conn)
}

/// Why SQLite could not use the database, which its own errors do not say:
/// try what it needs (the file read-write, new files beside it for WAL).
fn cause(dir: &Path, path: &Path) -> String {
    if path.is_dir() {
        return ": it is a directory".into();
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path);
    if let Err(e) = file {
        return format!(": {e}");
    }
    let probe = dir.join(format!(".write-check-{}", std::process::id()));
    match std::fs::File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            String::new()
        }
        Err(e) => format!(": cannot create files in {}: {e}", dir.display()),
    }
}

impl State {
    /// Open (creating if needed) the state folder `dir`.
    pub fn open(dir: &Path) -> Result<State> {
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::env(format!("cannot create state folder {}: {e}", dir.display()))
        })?;
        let path = dir.join("state.db");
        let conn = open_db(&path).map_err(|e| {
            Error::env(format!(
                "state database {}: {e}{}\n  hint: slipway keeps its history and journal there; \
                 it must be writable by the user running slipway",
                path.display(),
                cause(dir, &path)
            ))
        })?;
        Ok(State {
            conn,
            dir: dir.to_path_buf(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn begin(&self, r: &Release) -> Result<i64> {
        // An ID given by a coordinator (one release spanning hosts) is kept; 0 = the next.
        self.conn.execute(
            "INSERT INTO releases (id, env, kind, tag, status, started_at, finished_at, reason, previous_id, services, git_commit, branch, run_url)
             VALUES (NULLIF(?13, 0), ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            params![
                r.env,
                r.kind.as_str(),
                r.tag,
                r.status.as_str(),
                r.started_at,
                r.finished_at,
                r.reason,
                r.previous,
                release::services_json(&r.services),
                r.commit,
                r.branch,
                r.run_url,
                r.id
            ],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// The ID the next release would get here.
    pub fn next_id(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("SELECT COALESCE(MAX(id), 0) + 1 FROM releases", [], |r| {
                r.get(0)
            })?)
    }

    /// Record the resolved images of a release (after pull, before anything runs them).
    pub fn set_services(
        &self,
        id: i64,
        services: &std::collections::BTreeMap<String, ServiceImage>,
    ) -> Result<()> {
        self.conn.execute(
            "UPDATE releases SET services = ?2 WHERE id = ?1",
            params![id, release::services_json(services)],
        )?;
        Ok(())
    }

    pub fn set_previous(&self, id: i64, previous: Option<i64>) -> Result<()> {
        self.conn.execute(
            "UPDATE releases SET previous_id = ?2 WHERE id = ?1",
            params![id, previous],
        )?;
        Ok(())
    }

    pub fn finish(&self, id: i64, status: Status, reason: Option<&str>) -> Result<()> {
        self.conn.execute(
            "UPDATE releases SET status = ?2, reason = ?3, finished_at = ?4 WHERE id = ?1",
            params![id, status.as_str(), reason, now()],
        )?;
        Ok(())
    }

    /// Releases of `env`, newest first.
    pub fn history(&self, env: &str, limit: Option<usize>) -> Result<Vec<Release>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {} FROM releases WHERE env = ?1 ORDER BY id DESC LIMIT ?2",
            release::COLUMNS
        ))?;
        let limit = limit.map_or(-1, |l| l as i64);
        let rows = stmt.query_map(params![env, limit], release::from_row)?;
        rows.map(|r| self.parsed(r?)).collect()
    }

    /// Every release of every environment (prune keeps what any of them needs).
    pub fn all_releases(&self) -> Result<Vec<Release>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {} FROM releases ORDER BY id DESC",
            release::COLUMNS
        ))?;
        let rows = stmt.query_map([], release::from_row)?;
        rows.map(|r| self.parsed(r?)).collect()
    }

    pub fn release(&self, id: i64) -> Result<Option<Release>> {
        self.conn
            .query_row(
                &format!("SELECT {} FROM releases WHERE id = ?1", release::COLUMNS),
                params![id],
                release::from_row,
            )
            .optional()?
            .map(|r| self.parsed(r))
            .transpose()
    }

    /// Journal a step before it acts.
    pub fn journal(&self, release: i64, step: Step, detail: &str) -> Result<()> {
        self.journal_entry(release, &Entry::new(step, detail))
    }

    pub fn journal_entry(&self, release: i64, entry: &Entry) -> Result<()> {
        journal_into(&self.conn, release, entry)
    }

    /// The release's journal, oldest first. A row this version cannot read is an error naming it.
    pub fn journal_of(&self, release: i64) -> Result<Vec<Entry>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, step, COALESCE(detail, '') FROM journal WHERE release_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map(params![release], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        rows.map(|row| {
            let (id, step, detail) = row?;
            Entry::parse(id, &step, &detail).map_err(|e| self.corrupt(e))
        })
        .collect()
    }

    fn parsed(&self, stored: release::Stored) -> Result<Release> {
        stored.parse().map_err(|e| self.corrupt(e))
    }

    fn corrupt(&self, what: String) -> Error {
        Error::env(format!(
            "state database {}: {what}\n  hint: a newer slipway wrote it, or the file is damaged; \
             nothing was read as a default (run the slipway that wrote it, or restore the file)",
            self.dir.join("state.db").display()
        ))
    }
}

/// A second connection to `dir`'s database that can journal one row from
/// anywhere (the signal handler records an interrupt with it).
pub struct Journal {
    conn: Connection,
    release: i64,
}

impl Journal {
    pub fn open(dir: &Path, release: i64) -> Result<Journal> {
        let conn = Connection::open(dir.join("state.db"))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        Ok(Journal { conn, release })
    }

    pub fn write(&self, step: Step, detail: &str) -> Result<()> {
        journal_into(&self.conn, self.release, &Entry::new(step, detail))
    }
}

fn journal_into(conn: &Connection, release: i64, entry: &Entry) -> Result<()> {
    conn.execute(
        "INSERT INTO journal (release_id, step, detail, at) VALUES (?1, ?2, ?3, ?4)",
        params![release, entry.step.as_str(), entry.detail, now()],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unusable_database_is_named_with_its_cause() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("state.db")).expect("dir");
        let err = State::open(dir.path()).err().expect("an error").to_string();
        assert!(
            err.contains(&dir.path().join("state.db").display().to_string()),
            "{err}"
        );
        assert!(err.contains("it is a directory"), "{err}");
    }
}
