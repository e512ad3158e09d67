//! Where a transaction that is one part of a larger one (one host of a
//! release spanning several) waits for its coordinator: before the lock, once
//! preflight passed (to be given the release's ID), once nothing is left but
//! switching (pulled and pinned), and once verified (before commit). A
//! transaction without a gate never waits.
//!
//! The gate is plain channels: how phases travel (an SSH session's stdout and
//! stdin, see `crate::remote::agent`) is not the pipeline's business.

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, Mutex};

/// What the part reports at each gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Phase {
    /// About to take the environment's lock.
    Lock,
    /// Holds the lock (preflight runs now; the next host may lock).
    Holding,
    /// Locked and preflight passed; the ID the next release would get here.
    Locked { next_id: i64 },
    /// Pulled, pinned, dependencies and hooks passed; nothing running changed.
    Ready,
    /// Rolled out, healthy and its own smoke checks passed.
    Verified,
    /// The end: how this part's release finished.
    Done {
        release: Option<i64>,
        status: Option<String>,
        reason: Option<String>,
    },
}

/// The coordinator's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "go", rename_all = "snake_case")]
pub enum Go {
    /// Go on to the next phase.
    On,
    /// Go on, recording the release under this ID (after `Locked`).
    As { id: i64 },
    /// Stop: abort (before anything changed) or roll back (after).
    Stop { reason: String },
}

pub struct Gate {
    report: Box<dyn Fn(&Phase) + Send + Sync>,
    answers: Mutex<mpsc::UnboundedReceiver<Go>>,
}

impl Gate {
    pub fn new(
        report: impl Fn(&Phase) + Send + Sync + 'static,
        answers: mpsc::UnboundedReceiver<Go>,
    ) -> Gate {
        Gate {
            report: Box::new(report),
            answers: Mutex::new(answers),
        }
    }

    /// Report `phase` and wait for the answer; a coordinator gone is a stop.
    pub async fn pass(&self, phase: Phase) -> Go {
        (self.report)(&phase);
        match self.answers.lock().await.recv().await {
            Some(go) => go,
            None => Go::Stop {
                reason: "the coordinating slipway is gone".into(),
            },
        }
    }

    /// Report without waiting (the end).
    pub fn tell(&self, phase: Phase) {
        (self.report)(&phase);
    }
}

/// Pass `phase` if there is a gate: `Ok(Some(id))` for an ID given, an
/// error (as `stop`) for a stop.
pub async fn pass<E>(
    gate: Option<&Gate>,
    phase: Phase,
    stop: impl FnOnce(String) -> E,
) -> Result<Option<i64>, E> {
    let Some(g) = gate else { return Ok(None) };
    match g.pass(phase).await {
        Go::On => Ok(None),
        Go::As { id } => Ok(Some(id)),
        Go::Stop { reason } => Err(stop(reason)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_and_answers_are_one_json_line_each() {
        let p = serde_json::to_string(&Phase::Locked { next_id: 7 }).expect("json");
        assert_eq!(p, r#"{"phase":"locked","next_id":7}"#);
        let g: Go = serde_json::from_str(r#"{"go":"stop","reason":"web-2 failed"}"#).expect("go");
        assert_eq!(
            g,
            Go::Stop {
                reason: "web-2 failed".into()
            }
        );
    }

    #[tokio::test]
    async fn a_gate_whose_coordinator_left_stops() {
        let (tx, rx) = mpsc::unbounded_channel();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let s = seen.clone();
        let gate = Gate::new(move |p| s.lock().expect("lock").push(p.clone()), rx);
        tx.send(Go::As { id: 9 }).expect("send");
        assert_eq!(
            pass(
                Some(&gate),
                Phase::Locked { next_id: 3 },
                crate::error::Error::Preflight
            )
            .await
            .ok(),
            Some(Some(9))
        );
        drop(tx);
        assert!(
            pass(Some(&gate), Phase::Ready, crate::error::Error::Preflight)
                .await
                .is_err()
        );
        assert_eq!(seen.lock().expect("lock").len(), 2);
    }
}
