//! Pure decisions of the deploy transaction, over plain data: which release is
//! live and which is the way back, in what order services roll out, and what
//! slipway names its tags.

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

/// Who a tag belongs to on a shared engine: one environment of one compose
/// project. Several owners may use the same image repository; each names its
/// releases and its way back with its own prefix, so none moves or removes
/// another's. Compose project names hold no `.`, so `<project>.<env>` is
/// unambiguous.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub project: String,
    pub env: String,
}

/// What follows the owner's prefix in its way-back tag (release tags are digits).
const WAY_BACK_SUFFIX: &str = "rollback";
/// What follows it in the tag marking the holder of the plain `:rollback`.
const HOLDER_SUFFIX: &str = "rollback-holder";
/// Docker's limit on a tag's length.
const MAX_TAG: usize = 128;

impl Owner {
    pub fn new(project: &str, env: &str) -> Owner {
        Owner {
            project: project.to_string(),
            env: env.to_string(),
        }
    }

    fn prefix(&self) -> String {
        format!("slipway-{}.{}-", self.project, self.env)
    }

    /// The immutable per-release tag that keeps a release's images reachable
    /// independent of the moving way-back tags.
    pub fn release_tag(&self, id: i64) -> String {
        format!("{}{id}", self.prefix())
    }

    /// The way-back tag only this owner moves: names the release before the live one.
    pub fn way_back_tag(&self) -> String {
        format!("{}{WAY_BACK_SUFFIX}", self.prefix())
    }

    /// Sits on the same image as the plain `rollback_tag` while this owner
    /// holds it, so every other owner on the engine can see whose it is.
    pub fn holder_tag(&self) -> String {
        format!("{}{HOLDER_SUFFIX}", self.prefix())
    }

    /// Whether `tag` is one of this owner's (`slipway-<project>.<env>-<id|rollback|rollback-holder>`).
    pub fn owns(&self, tag: &str) -> bool {
        tag.strip_prefix(&self.prefix()).is_some_and(|rest| {
            rest == WAY_BACK_SUFFIX
                || rest == HOLDER_SUFFIX
                || (!rest.is_empty() && rest.chars().all(|c| c.is_ascii_digit()))
        })
    }

    /// A project and environment too long for the tags above.
    pub fn check(&self) -> Result<(), String> {
        if self.holder_tag().len() > MAX_TAG {
            return Err(format!(
                "project `{}` and environment `{}` together are too long for slipway's image tags \
                 (at most {} characters between them)",
                self.project,
                self.env,
                MAX_TAG - "slipway-.-".len() - HOLDER_SUFFIX.len()
            ));
        }
        Ok(())
    }
}

/// The per-release tag of slipway before tags were namespaced
/// (`slipway-<env>-<id>`): still read, never written.
pub fn legacy_release_tag(env: &str, id: i64) -> String {
    format!("slipway-{env}-{id}")
}

/// Whether a tag is a way-back tag of any owner (`slipway-…-rollback`).
pub fn is_way_back_tag(tag: &str) -> bool {
    tag.starts_with("slipway-") && tag.ends_with(&format!("-{WAY_BACK_SUFFIX}"))
}

/// Whether `owner` may move the repository's plain way-back tag (`:rollback`,
/// the seed's convention). `tags_in_repo` is every tag of the repository on
/// the engine with the image it names; `others` says whether a tag is another
/// owner's. The plain tag belongs to the owner whose holder tag sits on the
/// same image. When it names nothing yet, or an image no holder tag marks (as
/// before an upgrade), it is free only while no other owner uses the
/// repository. So the sole user of a repository keeps `:rollback`; a second
/// one gets only its namespaced way-back tag and never moves the first's.
pub fn may_move_plain_rollback(
    owner: &Owner,
    plain: &str,
    tags_in_repo: &[(String, String)],
    others: impl Fn(&str, &str) -> bool,
) -> bool {
    let shared = tags_in_repo.iter().any(|(t, id)| others(t, id));
    let Some((_, at)) = tags_in_repo.iter().find(|(t, _)| t == plain) else {
        return !shared;
    };
    let holders: Vec<&str> = tags_in_repo
        .iter()
        .filter(|(t, id)| id == at && t.starts_with("slipway-") && t.ends_with(HOLDER_SUFFIX))
        .map(|(t, _)| t.as_str())
        .collect();
    if holders.is_empty() {
        // Unmarked (written before tags were namespaced): free for the sole
        // user, or for the owner whose own tags alone mark that image.
        let marks: Vec<&str> = tags_in_repo
            .iter()
            .filter(|(t, id)| id == at && t.starts_with("slipway-"))
            .map(|(t, _)| t.as_str())
            .collect();
        !shared || (!marks.is_empty() && marks.iter().all(|t| !others(t, at)))
    } else {
        holders.contains(&owner.holder_tag().as_str())
    }
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
    fn release_tags_are_namespaced_valid_docker_tags() {
        let o = Owner::new("shop", "staging");
        let t = o.release_tag(42);
        assert_eq!(t, "slipway-shop.staging-42");
        assert!(crate::config::names::check_tag(&t).is_ok());
        assert_eq!(o.way_back_tag(), "slipway-shop.staging-rollback");
        assert!(o.owns(&t) && o.owns(&o.way_back_tag()));
        // Another project or environment, a legacy tag, a look-alike: not ours.
        assert!(!o.owns("slipway-shop.production-42"));
        assert!(!o.owns("slipway-shop-preview.staging-42"));
        assert!(!o.owns("slipway-staging-42"));
        assert!(!o.owns("slipway-shop.staging-4x"));
        assert!(!o.owns("slipway-shop.staging-"));
        assert!(is_way_back_tag("slipway-shop.staging-rollback"));
        assert!(!is_way_back_tag("rollback"));
        let long = Owner::new(&"p".repeat(63), &"e".repeat(63));
        assert!(long.check().is_err());
        assert!(o.check().is_ok());
    }

    fn tags(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(t, i)| (t.to_string(), i.to_string()))
            .collect()
    }

    #[test]
    fn the_plain_rollback_tag_stays_with_its_first_user() {
        let a = Owner::new("a", "staging");
        let b = Owner::new("b", "staging");
        let foreign = |me: &Owner| {
            let me = me.clone();
            move |t: &str, _: &str| t.starts_with("slipway-") && !me.owns(t)
        };
        assert!(a.owns(&a.holder_tag()) && !b.owns(&a.holder_tag()));
        // Sole user: may take a free `:rollback`.
        let alone = tags(&[("slipway-a.staging-1", "i1"), ("v1", "i1")]);
        assert!(may_move_plain_rollback(&a, "rollback", &alone, foreign(&a)));
        // A holds `:rollback`, even where both way-back tags name that image.
        let shared = tags(&[
            ("rollback", "i1"),
            ("slipway-a.staging-rollback-holder", "i1"),
            ("slipway-a.staging-rollback", "i1"),
            ("slipway-b.staging-rollback", "i1"),
            ("slipway-b.staging-7", "i7"),
        ]);
        assert!(may_move_plain_rollback(
            &a,
            "rollback",
            &shared,
            foreign(&a)
        ));
        assert!(!may_move_plain_rollback(
            &b,
            "rollback",
            &shared,
            foreign(&b)
        ));
        // Free, but the repository is shared: nobody takes it.
        let free_shared = tags(&[("slipway-a.staging-1", "i1"), ("slipway-b.staging-7", "i7")]);
        assert!(!may_move_plain_rollback(
            &b,
            "rollback",
            &free_shared,
            foreign(&b)
        ));
        // Before an upgrade: `:rollback` on an image no holder tag marks; its
        // old release tag says whose it was, even once the repository is shared.
        let legacy = tags(&[
            ("rollback", "i1"),
            ("slipway-staging-1", "i1"),
            ("slipway-b.staging-1", "i3"),
        ]);
        let a_legacy = |t: &str, id: &str| {
            t.starts_with("slipway-") && !(t == "slipway-staging-1" && id == "i1")
        };
        assert!(may_move_plain_rollback(&a, "rollback", &legacy, a_legacy));
        assert!(!may_move_plain_rollback(
            &b,
            "rollback",
            &legacy,
            foreign(&b)
        ));
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
