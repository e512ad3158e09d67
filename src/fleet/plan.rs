//! The fleet's decisions, over plain data: the order hosts switch in, the
//! ID one release gets on every host, how a run over several hosts ended,
//! and which release `recover` brings every host to.

use std::collections::BTreeMap;

/// Canary hosts one at a time, then the rest `max_parallel` at once (0 = all).
pub fn batches(hosts: &[String], canary: usize, max_parallel: usize) -> Vec<Vec<String>> {
    let canary = canary.min(hosts.len());
    let mut out: Vec<Vec<String>> = hosts[..canary].iter().map(|h| vec![h.clone()]).collect();
    let rest = &hosts[canary..];
    if !rest.is_empty() {
        let size = if max_parallel == 0 {
            rest.len()
        } else {
            max_parallel
        };
        out.extend(rest.chunks(size).map(<[String]>::to_vec));
    }
    out
}

/// One ID for the release on every host: past every host's own history.
pub fn release_id(next_ids: &[i64]) -> i64 {
    next_ids.iter().copied().max().unwrap_or(1)
}

/// How far a host got, as the controller saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Started,
    Locked,
    Ready,
    /// Told to switch; may have changed what runs.
    Switching,
    Verified,
}

impl Stage {
    /// Whether what runs on the host may have changed.
    pub fn touched(self) -> bool {
        matches!(self, Stage::Switching | Stage::Verified)
    }
}

/// One host's end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEnd {
    pub host: String,
    pub stage: Stage,
    /// `None`: the agent vanished (its host or the link is gone).
    pub exit: Option<i32>,
    pub reason: Option<String>,
}

/// The run's exit code once every host ended: a lock held anywhere is 4; a
/// host lost or not restored after switching is 3; a failure after any
/// switch is 1; a failure before any is 2 (nothing changed anywhere).
pub fn exit_code(ends: &[HostEnd]) -> u8 {
    if ends.iter().all(|e| e.exit == Some(0)) {
        return 0;
    }
    let touched = ends.iter().any(|e| e.stage.touched());
    if ends
        .iter()
        .any(|e| e.exit == Some(3) || (e.exit.is_none() && e.stage.touched()))
    {
        return 3;
    }
    if touched {
        return 1;
    }
    if ends.iter().any(|e| e.exit == Some(4)) {
        return 4;
    }
    2
}

/// Release `recover` brings every host to: the newest release that
/// succeeded on every host (a release committed on some hosts only, because
/// the controller died between commits, is not the environment's release).
/// `None` when the hosts share no succeeded release.
pub fn common_release(succeeded: &BTreeMap<String, Vec<i64>>) -> Option<i64> {
    let mut hosts = succeeded.values();
    let first = hosts.next()?;
    let mut common: Vec<i64> = first.clone();
    for ids in hosts {
        common.retain(|id| ids.contains(id));
    }
    common.into_iter().max()
}

/// Hosts whose live release is not `target`, with what they run.
pub fn behind_or_ahead(
    live: &BTreeMap<String, Option<i64>>,
    target: i64,
) -> Vec<(String, Option<i64>)> {
    live.iter()
        .filter(|(_, l)| **l != Some(target))
        .map(|(h, l)| (h.clone(), *l))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn canary_alone_then_batches() {
        let h = names(&["a", "b", "c", "d", "e"]);
        assert_eq!(batches(&h, 0, 0), vec![h.clone()]);
        assert_eq!(
            batches(&h, 1, 2),
            vec![names(&["a"]), names(&["b", "c"]), names(&["d", "e"])]
        );
        assert_eq!(
            batches(&h, 2, 0),
            vec![names(&["a"]), names(&["b"]), names(&["c", "d", "e"])]
        );
        assert_eq!(batches(&h, 9, 0).len(), 5);
        assert_eq!(batches(&h, 0, 1).len(), 5);
    }

    #[test]
    fn one_id_past_every_history() {
        assert_eq!(release_id(&[3, 7, 5]), 7);
        assert_eq!(release_id(&[]), 1);
    }

    fn end(host: &str, stage: Stage, exit: Option<i32>) -> HostEnd {
        HostEnd {
            host: host.into(),
            stage,
            exit,
            reason: None,
        }
    }

    #[test]
    fn how_a_fleet_run_ends() {
        use Stage::*;
        assert_eq!(
            exit_code(&[end("a", Verified, Some(0)), end("b", Verified, Some(0))]),
            0
        );
        // A pull failing on one host before any switched: nothing changed.
        assert_eq!(
            exit_code(&[end("a", Ready, Some(2)), end("b", Locked, Some(2))]),
            2
        );
        assert_eq!(
            exit_code(&[end("a", Started, Some(4)), end("b", Started, Some(2))]),
            4
        );
        // Smoke failed on the second host: both restored.
        assert_eq!(
            exit_code(&[end("a", Verified, Some(1)), end("b", Switching, Some(1))]),
            1
        );
        // A host lost mid-switch, or not restored.
        assert_eq!(
            exit_code(&[end("a", Verified, Some(1)), end("b", Switching, None)]),
            3
        );
        assert_eq!(
            exit_code(&[end("a", Verified, Some(1)), end("b", Switching, Some(3))]),
            3
        );
        // Lost before it changed anything: nothing to restore there.
        assert_eq!(
            exit_code(&[end("a", Ready, Some(2)), end("b", Ready, None)]),
            2
        );
    }

    #[test]
    fn recover_brings_every_host_to_the_newest_common_release() {
        let s = BTreeMap::from([
            ("a".to_string(), vec![1, 2, 3]),
            ("b".to_string(), vec![1, 2]),
            ("c".to_string(), vec![1, 2, 3]),
        ]);
        assert_eq!(common_release(&s), Some(2));
        let live = BTreeMap::from([
            ("a".to_string(), Some(3)),
            ("b".to_string(), Some(2)),
            ("c".to_string(), None),
        ]);
        assert_eq!(
            behind_or_ahead(&live, 2),
            vec![("a".to_string(), Some(3)), ("c".to_string(), None)]
        );
        assert_eq!(common_release(&BTreeMap::new()), None);
    }
}
