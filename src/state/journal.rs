//! The step journal: what a release did, one row per step, written before the
//! step acts. Steps and recover decisions are enums stored by name; a row
//! whose name this version does not know is an error naming the row, never
//! skipped (a skipped `restore` or `interrupted` would let `recover` commit
//! a release that had failed or that the operator cancelled).

use std::fmt;

/// One step of a release, as journaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// What ran was not the live release's images before anything changed
    /// (detail: which services, and what they ran).
    Drift,
    /// Pulling the new images (detail: the references).
    Pull,
    /// Pinning the way back (detail: the live release's id).
    Pin,
    /// Starting unmanaged services the deployed ones depend on (detail: their names).
    Dependencies,
    /// A `pre_deploy` hook (detail: its name).
    PreDeploy,
    /// Rolling one service (detail: its name).
    Rollout,
    /// Waiting for a wave's services to be healthy (detail: their names).
    Health,
    Smoke,
    Commit,
    /// Putting the way back in place (detail: the target release's id).
    Restore,
    /// The operator stopped the run with a signal: the release must not go forward.
    Interrupted,
    /// `slipway recover` decided (detail: the decision's name).
    Recover,
}

/// What `slipway recover` does with an unfinished release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Nothing running was touched: mark it aborted.
    Abort,
    /// Every service runs the release's images: verify them now and keep the release if they pass.
    Verify,
    /// Put the last succeeded release back.
    RollBack,
}

const STEPS: [(Step, &str); 12] = [
    (Step::Drift, "drift"),
    (Step::Pull, "pull"),
    (Step::Pin, "pin"),
    (Step::Dependencies, "dependencies"),
    (Step::PreDeploy, "pre_deploy"),
    (Step::Rollout, "rollout"),
    (Step::Health, "health"),
    (Step::Smoke, "smoke"),
    (Step::Commit, "commit"),
    (Step::Restore, "restore"),
    (Step::Interrupted, "interrupted"),
    (Step::Recover, "recover"),
];

impl Step {
    pub fn as_str(self) -> &'static str {
        STEPS
            .iter()
            .find(|(s, _)| *s == self)
            .map_or("?", |(_, name)| name)
    }

    /// The step a stored name stands for (every name any version wrote).
    pub fn parse(name: &str) -> Option<Step> {
        STEPS.iter().find(|(_, n)| *n == name).map(|(s, _)| *s)
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Abort => "abort",
            Decision::Verify => "verify",
            Decision::RollBack => "roll_back",
        }
    }

    /// Also reads what earlier versions stored (`format!("{:?}")`: `Abort`, `Verify`, `RollBack`).
    pub fn parse(name: &str) -> Option<Decision> {
        match name {
            "abort" | "Abort" => Some(Decision::Abort),
            "verify" | "Verify" => Some(Decision::Verify),
            "roll_back" | "RollBack" => Some(Decision::RollBack),
            _ => None,
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One journal row, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub step: Step,
    /// Free text for people (services, references, release ids); for
    /// [`Step::Recover`], the decision's name.
    pub detail: String,
    /// Set for [`Step::Recover`] rows.
    pub decision: Option<Decision>,
}

impl Entry {
    pub fn new(step: Step, detail: impl Into<String>) -> Entry {
        Entry {
            step,
            detail: detail.into(),
            decision: None,
        }
    }

    pub fn recover(decision: Decision) -> Entry {
        Entry {
            step: Step::Recover,
            detail: decision.as_str().to_string(),
            decision: Some(decision),
        }
    }

    /// A stored row (`row` is the journal row's id, for the error message).
    pub fn parse(row: i64, step: &str, detail: &str) -> Result<Entry, String> {
        let Some(parsed) = Step::parse(step) else {
            return Err(format!(
                "journal row {row} has the unknown step `{step}` (written by a newer slipway, or corrupt)"
            ));
        };
        let decision = match parsed {
            Step::Recover => Some(Decision::parse(detail).ok_or_else(|| {
                format!("journal row {row} (recover) has the unknown decision `{detail}`")
            })?),
            _ => None,
        };
        Ok(Entry {
            step: parsed,
            detail: detail.to_string(),
            decision,
        })
    }
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.detail.is_empty() {
            write!(f, "{}", self.step)
        } else {
            write!(f, "{} {}", self.step, self.detail)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_step_round_trips_by_name() {
        for (step, name) in STEPS {
            assert_eq!(step.as_str(), name);
            assert_eq!(Step::parse(name), Some(step));
        }
        for d in [Decision::Abort, Decision::Verify, Decision::RollBack] {
            assert_eq!(Decision::parse(d.as_str()), Some(d));
        }
    }

    #[test]
    fn rows_written_by_the_previous_version_still_read() {
        // The previous version stored these strings, and `format!("{:?}")` decisions.
        for name in [
            "pull",
            "pin",
            "pre_deploy",
            "rollout",
            "smoke",
            "commit",
            "restore",
        ] {
            assert!(Entry::parse(1, name, "").is_ok(), "{name}");
        }
        let rec = Entry::parse(9, "recover", "RollBack").expect("old decision");
        assert_eq!(rec.decision, Some(Decision::RollBack));
        assert_eq!(
            Entry::parse(9, "recover", "Verify").map(|e| e.decision),
            Ok(Some(Decision::Verify))
        );
    }

    #[test]
    fn an_unknown_row_is_an_error_naming_it() {
        let e = Entry::parse(42, "teleport", "").expect_err("unknown step");
        assert!(e.contains("row 42") && e.contains("`teleport`"), "{e}");
        let e = Entry::parse(43, "recover", "Maybe").expect_err("unknown decision");
        assert!(e.contains("row 43") && e.contains("`Maybe`"), "{e}");
    }
}
