//! Safe prune: the keep-set decision (pure) and its application.
//!
//! Several projects and environments may share an image repository on one
//! engine, each with its own history in its own folder: the engine's tags are
//! all they share. So ownership is written on the engine (per-release and
//! way-back tags namespaced `slipway-<project>.<env>-…`, see `plan::Owner`)
//! and a prune acts only on what this config owns.
//!
//! Only images of repositories slipway manages are candidates. Kept: images
//! any container uses, images any way-back tag names (`:rollback`, anyone's
//! `slipway-…-rollback`), images of each environment's last `keep_releases`
//! distinct succeeded releases and of unfinished releases, and images that
//! also carry a name outside the managed repositories. An image another
//! owner's slipway tag still holds loses only this config's tags (`docker
//! rmi <repo>:<tag>` removes a name, not the image). The rest is deleted by
//! ID. Never `docker image prune -a`, which strips tags from images in use.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::backend::tags::{self, Owner};
use crate::config::names::split_image;
use crate::engine::Image;
use crate::state::{Release, Status};

#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    pub managed_repos: &'a BTreeSet<String>,
    pub images: &'a [Image],
    pub in_use: &'a BTreeSet<String>,
    /// Every release of every environment of this config.
    pub releases: &'a [Release],
    /// Per environment; environments not listed keep 5.
    pub keep_releases: &'a BTreeMap<String, usize>,
    pub rollback_tags: &'a BTreeSet<String>,
    /// This config's environments: the only owners whose tags prune removes.
    pub owners: &'a [Owner],
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Decision {
    pub id: String,
    pub names: Vec<String>,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Plan {
    pub delete: Vec<Decision>,
    /// Images another owner still holds: only these names (ours) are removed.
    pub untag: Vec<Decision>,
    pub keep: Vec<Decision>,
}

fn repo_of(name: &str) -> &str {
    split_image(name).0
}

fn tag_of(name: &str) -> &str {
    split_image(name).1.unwrap_or("")
}

/// Image IDs the retained releases need, with the release that needs them.
/// `keep_releases` counts distinct releases: a rollback to an earlier release
/// makes its images the newest kept set again, it does not take a slot.
pub fn retained(releases: &[Release], keep: &BTreeMap<String, usize>) -> BTreeMap<String, String> {
    let mut need = BTreeMap::new();
    // Per environment: the distinct image sets seen so far, newest first.
    let mut seen: BTreeMap<&str, Vec<BTreeSet<&str>>> = BTreeMap::new();
    let mut sorted: Vec<&Release> = releases.iter().collect();
    sorted.sort_by_key(|r| std::cmp::Reverse(r.id));
    for r in sorted {
        let keep_this = match r.status {
            Status::InProgress => true,
            Status::Succeeded => {
                let set: BTreeSet<&str> =
                    r.services.values().map(|s| s.image_id.as_str()).collect();
                let sets = seen.entry(r.env.as_str()).or_default();
                let rank = match sets.iter().position(|s| *s == set) {
                    Some(rank) => rank,
                    None => {
                        sets.push(set);
                        sets.len() - 1
                    }
                };
                rank < keep.get(&r.env).copied().unwrap_or(5)
            }
            _ => false,
        };
        if keep_this {
            for s in r.services.values() {
                need.entry(s.image_id.clone())
                    .or_insert_with(|| format!("release {} ({})", r.id, r.status.as_str()));
            }
        }
    }
    need
}

/// Whether a tag on image `id` is this config's: namespaced with one of its
/// owners, or a pre-namespace `slipway-<env>-<id>` tag that this config's
/// history says it wrote (same environment, release and image).
fn owned(tag: &str, id: &str, i: &Inputs) -> bool {
    i.owners.iter().any(|o| o.owns(tag))
        || i.releases.iter().any(|r| {
            tags::legacy_release_tag(&r.env, r.id) == tag
                && r.services.values().any(|s| s.image_id == id)
        })
}

pub fn plan(i: &Inputs) -> Plan {
    let need = retained(i.releases, i.keep_releases);
    let mut out = Plan::default();
    for img in i.images {
        let names: Vec<String> = img.tags.iter().chain(img.digests.iter()).cloned().collect();
        let managed = names.iter().any(|n| i.managed_repos.contains(repo_of(n)));
        if !managed {
            continue;
        }
        let decision = |names: Vec<String>, reason: String| Decision {
            id: img.id.clone(),
            names,
            reason,
        };
        let slipway_tags = img
            .tags
            .iter()
            .filter(|t| tag_of(t).starts_with("slipway-"));
        let (own, foreign): (Vec<&String>, Vec<&String>) =
            slipway_tags.partition(|t| owned(tag_of(t), &img.id, i));
        let way_back = img.tags.iter().find(|t| {
            let tag = tag_of(t);
            i.rollback_tags.contains(tag) || tags::is_way_back_tag(tag)
        });
        if let Some(other) = names.iter().find(|n| !i.managed_repos.contains(repo_of(n))) {
            out.keep.push(decision(
                img.tags.clone(),
                format!("also named {other}, which slipway does not manage"),
            ));
        } else if i.in_use.contains(&img.id) {
            out.keep
                .push(decision(img.tags.clone(), "used by a container".into()));
        } else if let Some(t) = way_back {
            out.keep
                .push(decision(img.tags.clone(), format!("{t} is a way back")));
        } else if let Some(r) = need.get(&img.id) {
            out.keep
                .push(decision(img.tags.clone(), format!("kept for {r}")));
        } else if let Some(holder) = foreign.first() {
            let reason = format!("{holder} (another project or environment) still holds it");
            if own.is_empty() {
                out.keep.push(decision(img.tags.clone(), reason));
            } else {
                out.untag
                    .push(decision(own.into_iter().cloned().collect(), reason));
            }
        } else {
            out.delete.push(decision(
                img.tags.clone(),
                "older than the retained releases".into(),
            ));
        }
    }
    out
}

/// Gather the inputs from Docker and history, decide, and (unless
/// `dry_run`) untag and delete by ID. Returns what was decided.
pub async fn run(ctx: &super::context::Ctx, dry_run: bool) -> crate::error::Result<Plan> {
    let images = ctx.docker.images().await?;
    let in_use = ctx.docker.images_in_use().await?;
    let releases = ctx.state.all_releases()?;
    let keep: BTreeMap<String, usize> = ctx
        .cfg
        .environments
        .iter()
        .map(|(n, e)| (n.clone(), e.keep_releases))
        .collect();
    let rollback_tags: BTreeSet<String> = ctx
        .cfg
        .environments
        .values()
        .map(|e| e.rollback_tag.clone())
        .collect();
    let owners: Vec<Owner> = ctx
        .cfg
        .environments
        .keys()
        .map(|e| Owner::new(&ctx.cfg.project, e))
        .collect();
    let repos = ctx.managed_repos();
    let p = plan(&Inputs {
        managed_repos: &repos,
        images: &images,
        in_use: &in_use,
        releases: &releases,
        keep_releases: &keep,
        rollback_tags: &rollback_tags,
        owners: &owners,
    });
    if !dry_run {
        let mut errors = Vec::new();
        for name in p.untag.iter().flat_map(|d| &d.names) {
            if let Err(e) = ctx.docker.untag(name).await {
                errors.push(e.to_string());
            }
        }
        for d in &p.delete {
            if let Err(e) = ctx.docker.remove_image(&d.id).await {
                errors.push(e.to_string());
            }
        }
        if !errors.is_empty() {
            return Err(crate::error::Error::env(errors.join("; ")));
        }
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Kind, ServiceImage};

    fn image(id: &str, tags: &[&str]) -> Image {
        Image {
            id: id.into(),
            tags: tags.iter().map(|s| s.to_string()).collect(),
            digests: vec![],
        }
    }

    fn release(id: i64, env: &str, status: Status, image_id: &str) -> Release {
        let mut services = BTreeMap::new();
        services.insert(
            "api".to_string(),
            ServiceImage {
                image: "r/api:x".into(),
                image_id: image_id.into(),
            },
        );
        Release {
            id,
            env: env.into(),
            kind: Kind::Deploy,
            tag: None,
            status,
            started_at: String::new(),
            finished_at: None,
            reason: None,
            previous: None,
            services,
            commit: None,
            branch: None,
            run_url: None,
        }
    }

    #[test]
    fn keeps_what_the_way_back_needs_and_deletes_the_rest() {
        let repos: BTreeSet<String> = ["r/api".to_string()].into();
        let images = vec![
            image("sha256:1", &["r/api:v1", "r/api:slipway-staging-1"]),
            image("sha256:2", &["r/api:v2"]),
            image("sha256:3", &["r/api:v3", "r/api:rollback"]),
            image("sha256:4", &["r/api:v4"]),
            image("sha256:5", &["r/api:v5-bad"]),
            image("sha256:6", &["r/api:v6", "mine/other:keep"]),
            image("sha256:9", &["postgres:16"]),
            image("sha256:7", &["r/api:pulled-not-deployed"]),
        ];
        let in_use: BTreeSet<String> = ["sha256:4".to_string()].into();
        let releases = vec![
            release(1, "staging", Status::Succeeded, "sha256:1"),
            release(2, "staging", Status::Succeeded, "sha256:2"),
            release(3, "staging", Status::Succeeded, "sha256:3"),
            release(4, "staging", Status::Succeeded, "sha256:4"),
            release(5, "staging", Status::RolledBack, "sha256:5"),
            release(6, "production", Status::Succeeded, "sha256:1"),
        ];
        let keep: BTreeMap<String, usize> =
            [("staging".to_string(), 2), ("production".to_string(), 2)].into();
        let rollback: BTreeSet<String> = ["rollback".to_string()].into();
        let p = plan(&Inputs {
            managed_repos: &repos,
            images: &images,
            in_use: &in_use,
            releases: &releases,
            keep_releases: &keep,
            rollback_tags: &rollback,
            owners: &[Owner::new("shop", "staging")],
        });
        let deleted: BTreeSet<&str> = p.delete.iter().map(|d| d.id.as_str()).collect();
        // 2: succeeded but older than the last 2 in staging; 5: failed release; 7: never deployed.
        assert_eq!(deleted, ["sha256:2", "sha256:5", "sha256:7"].into());
        let kept: BTreeMap<&str, &str> = p
            .keep
            .iter()
            .map(|d| (d.id.as_str(), d.reason.as_str()))
            .collect();
        assert!(
            kept["sha256:1"].contains("release 6"),
            "production still needs it"
        );
        assert!(kept["sha256:3"].contains("way back"));
        assert!(kept["sha256:4"].contains("container"));
        assert!(kept["sha256:6"].contains("does not manage"));
        assert!(
            !kept.contains_key("sha256:9"),
            "unmanaged images are not even considered"
        );
    }

    #[test]
    fn an_unfinished_release_keeps_its_images() {
        let repos: BTreeSet<String> = ["r/api".to_string()].into();
        let images = vec![image("sha256:8", &["r/api:v8"])];
        let releases = vec![release(8, "staging", Status::InProgress, "sha256:8")];
        let p = plan(&Inputs {
            managed_repos: &repos,
            images: &images,
            in_use: &BTreeSet::new(),
            releases: &releases,
            keep_releases: &BTreeMap::new(),
            rollback_tags: &BTreeSet::new(),
            owners: &[],
        });
        assert!(p.delete.is_empty());
    }

    fn release_of(id: i64, env: &str, kind: Kind, image_id: &str) -> Release {
        let mut r = release(id, env, Status::Succeeded, image_id);
        r.kind = kind;
        r
    }

    #[test]
    fn keep_releases_counts_distinct_releases() {
        // v1, v2, v6, then a rollback to v2: three distinct releases, all kept.
        let repos: BTreeSet<String> = ["r/api".to_string()].into();
        let images = vec![
            image("sha256:1", &["r/api:v1"]),
            image("sha256:2", &["r/api:v2"]),
            image("sha256:6", &["r/api:v6"]),
        ];
        let releases = vec![
            release(1, "staging", Status::Succeeded, "sha256:1"),
            release(2, "staging", Status::Succeeded, "sha256:2"),
            release(3, "staging", Status::Succeeded, "sha256:6"),
            release_of(4, "staging", Kind::Rollback, "sha256:2"),
        ];
        let keep: BTreeMap<String, usize> = [("staging".to_string(), 3)].into();
        let p = plan(&Inputs {
            managed_repos: &repos,
            images: &images,
            in_use: &BTreeSet::new(),
            releases: &releases,
            keep_releases: &keep,
            rollback_tags: &BTreeSet::new(),
            owners: &[],
        });
        assert!(p.delete.is_empty(), "{:?}", p.delete);
        // With 2 kept, v1 (the oldest distinct) goes.
        let keep: BTreeMap<String, usize> = [("staging".to_string(), 2)].into();
        let p = plan(&Inputs {
            keep_releases: &keep,
            managed_repos: &repos,
            images: &images,
            in_use: &BTreeSet::new(),
            releases: &releases,
            rollback_tags: &BTreeSet::new(),
            owners: &[],
        });
        let deleted: Vec<&str> = p.delete.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(deleted, ["sha256:1"]);
    }

    #[test]
    fn another_owners_images_are_never_deleted_only_our_names_removed() {
        // Project a (this config, env staging) and project b share r/api.
        let repos: BTreeSet<String> = ["r/api".to_string()].into();
        let images = vec![
            // b's release, never ours: kept, untouched.
            image("sha256:b5", &["r/api:v5", "r/api:slipway-b.staging-5"]),
            // Ours once (release 1, old), b's now: only our tag goes.
            image(
                "sha256:1",
                &[
                    "r/api:v1",
                    "r/api:slipway-a.staging-1",
                    "r/api:slipway-b.staging-2",
                ],
            ),
            // b's way back: kept whoever prunes.
            image("sha256:b1", &["r/api:slipway-b.staging-rollback"]),
            // Ours before the upgrade (legacy tag, matching our history): deleted.
            image("sha256:0", &["r/api:slipway-staging-0"]),
            // A legacy tag our history did not write (b's, release 9): kept.
            image("sha256:9", &["r/api:slipway-staging-9"]),
            // Pulled, never deployed by anyone: deleted.
            image("sha256:7", &["r/api:v7"]),
            // Ours, retained.
            image("sha256:3", &["r/api:slipway-a.staging-3"]),
            image("sha256:4", &["r/api:slipway-a.staging-4"]),
        ];
        let releases = vec![
            release(0, "staging", Status::Succeeded, "sha256:0"),
            release(1, "staging", Status::Succeeded, "sha256:1"),
            release(3, "staging", Status::Succeeded, "sha256:3"),
            release(4, "staging", Status::Succeeded, "sha256:4"),
        ];
        let keep: BTreeMap<String, usize> = [("staging".to_string(), 2)].into();
        let p = plan(&Inputs {
            managed_repos: &repos,
            images: &images,
            in_use: &BTreeSet::new(),
            releases: &releases,
            keep_releases: &keep,
            rollback_tags: &["rollback".to_string()].into(),
            owners: &[Owner::new("a", "staging")],
        });
        let ids = |v: &[Decision]| v.iter().map(|d| d.id.clone()).collect::<BTreeSet<_>>();
        assert_eq!(
            ids(&p.delete),
            ["sha256:0".to_string(), "sha256:7".to_string()].into()
        );
        assert_eq!(p.untag.len(), 1);
        assert_eq!(p.untag[0].id, "sha256:1");
        assert_eq!(p.untag[0].names, vec!["r/api:slipway-a.staging-1"]);
        assert!(p.untag[0].reason.contains("slipway-b.staging-2"));
        let kept: BTreeMap<String, String> = p
            .keep
            .iter()
            .map(|d| (d.id.clone(), d.reason.clone()))
            .collect();
        assert!(kept["sha256:b5"].contains("another project"));
        assert!(kept["sha256:b1"].contains("way back"));
        assert!(kept["sha256:9"].contains("slipway-staging-9"));
        assert!(kept["sha256:3"].contains("release 3"));
        assert!(kept["sha256:4"].contains("release 4"));
    }
}
