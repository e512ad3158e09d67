//! Pure decisions of the deploy transaction, over plain data: which release is
//! live and which is the way back, in what order services roll out, and
//! which services drifted. (What slipway names its tags: `backend::tags`.)

use std::collections::{BTreeMap, BTreeSet};

use crate::state::{Release, Status};

/// The live release: the newest one that passed its checks. Not "whatever
/// runs": an interrupted deploy may have left a bad image running.
pub fn current(history_newest_first: &[Release]) -> Option<&Release> {
    history_newest_first
        .iter()
        .find(|r| r.status == Status::Succeeded)
}

/// A release still marked in progress: a run that died before finishing.
pub fn unfinished(history_newest_first: &[Release]) -> Option<&Release> {
    history_newest_first
        .iter()
        .find(|r| r.status == Status::InProgress)
}

/// What `slipway rollback` restores without `--to`: the release that was live
/// before the current one (what `:rollback` names).
pub fn rollback_target<'a>(
    history: &'a [Release],
    current: Option<&Release>,
) -> Option<&'a Release> {
    let previous = current?.previous?;
    history.iter().find(|r| r.id == previous)
}

/// A service whose running containers are not on the live release's image:
/// something changed it behind slipway's back.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Drift {
    pub service: String,
    pub expected_image_id: String,
    /// Image IDs of the service's running containers (empty: none runs).
    pub running_image_ids: Vec<String>,
}

impl Drift {
    pub fn describe(&self, live: i64) -> String {
        let short = |id: &str| {
            id.trim_start_matches("sha256:")
                .chars()
                .take(12)
                .collect::<String>()
        };
        let running = if self.running_image_ids.is_empty() {
            "nothing".to_string()
        } else {
            self.running_image_ids
                .iter()
                .map(|i| short(i))
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            "{} runs {running}, not live release {live}'s {}",
            self.service,
            short(&self.expected_image_id)
        )
    }
}

/// Services of `live` that run something else (or nothing). `running` maps a
/// service to the image IDs of its running containers.
pub fn drift(live: &Release, running: &BTreeMap<String, Vec<String>>) -> Vec<Drift> {
    live.services
        .iter()
        .filter_map(|(svc, img)| {
            let now = running.get(svc).cloned().unwrap_or_default();
            let ok = !now.is_empty() && now.iter().all(|id| *id == img.image_id);
            (!ok).then(|| Drift {
                service: svc.clone(),
                expected_image_id: img.image_id.clone(),
                running_image_ids: now,
            })
        })
        .collect()
}

/// Roll-out waves: each wave holds services whose compose `depends_on` (among
/// the deployed services) are all in earlier waves; a wave is split into
/// chunks of `max_parallel` (0 = no limit). A dependency cycle falls back to
/// one service at a time, in name order.
pub fn waves(
    services: &BTreeSet<String>,
    depends_on: &BTreeMap<String, Vec<String>>,
    max_parallel: usize,
) -> Vec<Vec<String>> {
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut left: BTreeSet<String> = services.clone();
    let mut levels = Vec::new();
    while !left.is_empty() {
        let ready: Vec<String> = left
            .iter()
            .filter(|s| {
                depends_on.get(*s).is_none_or(|deps| {
                    deps.iter()
                        .all(|d| !services.contains(d) || done.contains(d))
                })
            })
            .cloned()
            .collect();
        let level = if ready.is_empty() {
            // A cycle: compose would refuse it too; roll the rest one by one.
            left.iter().take(1).cloned().collect()
        } else {
            ready
        };
        for s in &level {
            left.remove(s);
            done.insert(s.clone());
        }
        levels.push(level);
    }
    if max_parallel == 0 {
        return levels;
    }
    levels
        .into_iter()
        .flat_map(|l| {
            l.chunks(max_parallel)
                .map(<[String]>::to_vec)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Kind, ServiceImage};

    fn release(id: i64, status: Status, previous: Option<i64>) -> Release {
        let mut services = BTreeMap::new();
        services.insert(
            "api".to_string(),
            ServiceImage {
                image: format!("r/api:v{id}"),
                image_id: format!("sha256:{id}"),
            },
        );
        Release {
            id,
            env: "staging".into(),
            kind: Kind::Deploy,
            tag: Some(format!("v{id}")),
            status,
            started_at: String::new(),
            finished_at: None,
            reason: None,
            previous,
            services,
            commit: None,
            branch: None,
            run_url: None,
        }
    }

    #[test]
    fn current_skips_failed_and_interrupted_releases() {
        // Newest first: 4 was interrupted (its image may be running), 3 rolled back.
        let h = vec![
            release(4, Status::InProgress, Some(2)),
            release(3, Status::RolledBack, Some(2)),
            release(2, Status::Succeeded, Some(1)),
            release(1, Status::Succeeded, None),
        ];
        assert_eq!(current(&h).map(|r| r.id), Some(2));
        assert_eq!(unfinished(&h).map(|r| r.id), Some(4));
        assert_eq!(rollback_target(&h, current(&h)).map(|r| r.id), Some(1));
    }

    #[test]
    fn nothing_to_go_back_to_on_a_fresh_environment() {
        assert!(current(&[]).is_none());
        let h = vec![release(1, Status::Succeeded, None)];
        assert!(rollback_target(&h, current(&h)).is_none());
    }

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn independent_services_roll_together_dependents_after() {
        let mut deps = BTreeMap::new();
        deps.insert("web".to_string(), vec!["api".to_string()]);
        deps.insert("api".to_string(), vec!["postgres".to_string()]);
        let w = waves(&set(&["api", "web", "ai"]), &deps, 0);
        assert_eq!(
            w,
            vec![
                vec!["ai".to_string(), "api".to_string()],
                vec!["web".to_string()]
            ]
        );
        let w = waves(&set(&["api", "web", "ai"]), &deps, 1);
        assert_eq!(w.len(), 3);
        assert!(w.iter().all(|l| l.len() == 1));
    }

    #[test]
    fn a_cycle_still_rolls_everything_once() {
        let mut deps = BTreeMap::new();
        deps.insert("a".to_string(), vec!["b".to_string()]);
        deps.insert("b".to_string(), vec!["a".to_string()]);
        let w = waves(&set(&["a", "b"]), &deps, 0);
        assert_eq!(w.concat().len(), 2);
    }

    #[test]
    fn drift_is_any_service_not_running_the_live_image() {
        let live = release(2, Status::Succeeded, Some(1));
        let mut running = BTreeMap::new();
        running.insert("api".to_string(), vec!["sha256:2".to_string()]);
        assert!(drift(&live, &running).is_empty());
        running.insert(
            "api".to_string(),
            vec!["sha256:2".to_string(), "sha256:1".to_string()],
        );
        let d = drift(&live, &running);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].running_image_ids, vec!["sha256:2", "sha256:1"]);
        assert!(d[0]
            .describe(2)
            .starts_with("api runs 2, 1, not live release 2"));
        running.clear();
        assert_eq!(drift(&live, &running)[0].running_image_ids.len(), 0);
    }
}
