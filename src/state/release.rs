//! A release: one deploy, rollback or adoption in one environment, with the
//! exact image of every service it put (or meant to put) in place.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Deploy,
    Rollback,
    /// What already ran when slipway first deployed an environment.
    Adopt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    InProgress,
    Succeeded,
    RolledBack,
    Failed,
    /// Stopped before changing anything.
    Aborted,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Deploy => "deploy",
            Kind::Rollback => "rollback",
            Kind::Adopt => "adopt",
        }
    }
    fn parse(s: &str) -> Option<Kind> {
        [Kind::Deploy, Kind::Rollback, Kind::Adopt]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::InProgress => "in_progress",
            Status::Succeeded => "succeeded",
            Status::RolledBack => "rolled_back",
            Status::Failed => "failed",
            Status::Aborted => "aborted",
        }
    }
    fn parse(s: &str) -> Option<Status> {
        [
            Status::InProgress,
            Status::Succeeded,
            Status::RolledBack,
            Status::Failed,
            Status::Aborted,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceImage {
    /// The reference the user knows (`repo:tag`).
    pub image: String,
    /// What actually ran: `sha256:…`.
    pub image_id: String,
}

/// PRODUCT.md's release object (`history --json`).
#[derive(Debug, Clone, Serialize)]
pub struct Release {
    pub id: i64,
    pub env: String,
    pub kind: Kind,
    pub tag: Option<String>,
    pub status: Status,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub reason: Option<String>,
    /// The release that was live when this one started: the way back.
    pub previous: Option<i64>,
    pub services: BTreeMap<String, ServiceImage>,
    pub commit: Option<String>,
    pub branch: Option<String>,
    pub run_url: Option<String>,
}

pub(super) const COLUMNS: &str =
    "id, env, kind, tag, status, started_at, finished_at, reason, previous_id, services, git_commit, branch, run_url";

/// A row as stored; [`Stored::parse`] turns it into a [`Release`] or says
/// what is wrong with it. An unknown kind or status, or services that are not
/// the JSON slipway writes, is an error: read as defaults, a corrupt row would
/// be a release with no images (a way back that restores nothing).
pub(super) struct Stored {
    release: Release,
    kind: String,
    status: String,
    services: String,
}

pub(super) fn from_row(r: &rusqlite::Row) -> rusqlite::Result<Stored> {
    Ok(Stored {
        release: Release {
            id: r.get(0)?,
            env: r.get(1)?,
            kind: Kind::Deploy,
            tag: r.get(3)?,
            status: Status::Failed,
            started_at: r.get(5)?,
            finished_at: r.get(6)?,
            reason: r.get(7)?,
            previous: r.get(8)?,
            services: BTreeMap::new(),
            commit: r.get(10)?,
            branch: r.get(11)?,
            run_url: r.get(12)?,
        },
        kind: r.get(2)?,
        status: r.get(4)?,
        services: r.get(9)?,
    })
}

impl Stored {
    pub(super) fn parse(self) -> Result<Release, String> {
        let Stored {
            mut release,
            kind,
            status,
            services,
        } = self;
        let id = release.id;
        release.kind = Kind::parse(&kind)
            .ok_or_else(|| format!("release {id} has the unknown kind `{kind}`"))?;
        release.status = Status::parse(&status)
            .ok_or_else(|| format!("release {id} has the unknown status `{status}`"))?;
        release.services = serde_json::from_str(&services)
            .map_err(|e| format!("release {id} has unreadable services ({e})"))?;
        Ok(release)
    }
}

pub(super) fn services_json(s: &BTreeMap<String, ServiceImage>) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "{}".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(kind: &str, status: &str, services: &str) -> Stored {
        Stored {
            release: Release {
                id: 3,
                env: "staging".into(),
                kind: Kind::Deploy,
                tag: None,
                status: Status::Failed,
                started_at: String::new(),
                finished_at: None,
                reason: None,
                previous: None,
                services: BTreeMap::new(),
                commit: None,
                branch: None,
                run_url: None,
            },
            kind: kind.into(),
            status: status.into(),
            services: services.into(),
        }
    }

    #[test]
    fn a_stored_row_reads_back() {
        let svc = r#"{"api":{"image":"r/api:v2","image_id":"sha256:a"}}"#;
        let r = stored("rollback", "rolled_back", svc)
            .parse()
            .expect("valid");
        assert_eq!((r.kind, r.status), (Kind::Rollback, Status::RolledBack));
        assert_eq!(r.services["api"].image_id, "sha256:a");
    }

    #[test]
    fn a_corrupt_row_is_an_error_not_a_release_with_no_images() {
        let e = stored("deploy", "succeded", "{}")
            .parse()
            .expect_err("status");
        assert!(e.contains("release 3") && e.contains("`succeded`"), "{e}");
        let e = stored("redeploy", "succeeded", "{}")
            .parse()
            .expect_err("kind");
        assert!(e.contains("`redeploy`"), "{e}");
        let e = stored("deploy", "succeeded", "{not json")
            .parse()
            .expect_err("services");
        assert!(e.contains("release 3") && e.contains("services"), "{e}");
    }
}
