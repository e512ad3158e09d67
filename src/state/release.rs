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
    fn parse(s: &str) -> Kind {
        match s {
            "rollback" => Kind::Rollback,
            "adopt" => Kind::Adopt,
            _ => Kind::Deploy,
        }
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
    fn parse(s: &str) -> Status {
        match s {
            "in_progress" => Status::InProgress,
            "succeeded" => Status::Succeeded,
            "rolled_back" => Status::RolledBack,
            "aborted" => Status::Aborted,
            _ => Status::Failed,
        }
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

pub(super) fn from_row(r: &rusqlite::Row) -> rusqlite::Result<Release> {
    let services: String = r.get(9)?;
    Ok(Release {
        id: r.get(0)?,
        env: r.get(1)?,
        kind: Kind::parse(&r.get::<_, String>(2)?),
        tag: r.get(3)?,
        status: Status::parse(&r.get::<_, String>(4)?),
        started_at: r.get(5)?,
        finished_at: r.get(6)?,
        reason: r.get(7)?,
        previous: r.get(8)?,
        services: serde_json::from_str(&services).unwrap_or_default(),
        commit: r.get(10)?,
        branch: r.get(11)?,
        run_url: r.get(12)?,
    })
}

pub(super) fn services_json(s: &BTreeMap<String, ServiceImage>) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "{}".into())
}
