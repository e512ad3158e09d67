//! What a command asks the transaction for, and what it gets back: plain
//! data shared by the commands, the transaction and the lifecycle around it.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::Result;
pub use crate::settings::Ci;
use crate::state::{Kind, Release};

/// Where the new release's images come from.
pub enum Desired {
    /// Deploy: pull `<repo>:<tag>` for every service.
    Pull { tag: String },
    /// Rollback: the exact images of a recorded release.
    Restore { release: Box<Release> },
}

pub struct Request {
    pub kind: Kind,
    pub desired: Desired,
    pub ci: Ci,
    /// Queue this long behind a run holding the lock (`--wait`).
    pub lock_wait: Option<Duration>,
    /// Where to write the smoke suite's JUnit XML (`deploy --junit`).
    pub junit: Option<PathBuf>,
    /// One host of a release spanning several: where it waits for the others.
    pub gate: Option<super::gate::Gate>,
}

impl Request {
    /// The tag the release is known by (a rollback keeps its target's).
    pub fn tag(&self) -> Option<String> {
        match &self.desired {
            Desired::Pull { tag } => Some(tag.clone()),
            Desired::Restore { release } => release.tag.clone(),
        }
    }
}

/// The release as recorded at the end (if one was started), and how it ended.
pub struct Outcome {
    pub release: Option<Release>,
    pub result: Result<()>,
}
