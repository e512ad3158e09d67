//! Safe prune: the keep-set decision (pure) and its application.
//!
//! Only images of repositories slipway manages are candidates. Kept: images
//! any container uses, `:rollback` images, images of every environment's last
//! `keep_releases` succeeded releases and of unfinished releases, and any
//! image that also carries a name outside the managed repositories. The rest
//! is deleted by ID. Never `docker image prune -a`, which strips tags from
//! images still in use.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::config::names::split_image;
use crate::engine::Image;
use crate::state::{Release, Status};

#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    pub managed_repos: &'a BTreeSet<String>,
    pub images: &'a [Image],
    pub in_use: &'a BTreeSet<String>,
    /// Every release of every environment.
    pub releases: &'a [Release],
    /// Per environment; environments not listed keep 5.
    pub keep_releases: &'a BTreeMap<String, usize>,
    pub rollback_tags: &'a BTreeSet<String>,
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
    pub keep: Vec<Decision>,
}

fn repo_of(name: &str) -> &str {
    split_image(name).0
}

/// Image IDs the retained releases need, with the release that needs them.
fn retained(releases: &[Release], keep: &BTreeMap<String, usize>) -> BTreeMap<String, String> {
    let mut need = BTreeMap::new();
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    // Newest first, so the first `keep` succeeded ones per env are the retained ones.
    let mut sorted: Vec<&Release> = releases.iter().collect();
    sorted.sort_by_key(|r| std::cmp::Reverse(r.id));
    for r in sorted {
        let keep_this = match r.status {
            Status::InProgress => true,
            Status::Succeeded => {
                let n = seen.entry(r.env.as_str()).or_default();
                *n += 1;
                *n <= keep.get(&r.env).copied().unwrap_or(5)
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

pub fn plan(i: &Inputs) -> Plan {
    let need = retained(i.releases, i.keep_releases);
    let mut out = Plan::default();
    for img in i.images {
        let names: Vec<String> = img.tags.iter().chain(img.digests.iter()).cloned().collect();
        let managed = names.iter().any(|n| i.managed_repos.contains(repo_of(n)));
        if !managed {
            continue;
        }
        let decision = |reason: &str| Decision {
            id: img.id.clone(),
            names: img.tags.clone(),
            reason: reason.to_string(),
        };
        if let Some(other) = names.iter().find(|n| !i.managed_repos.contains(repo_of(n))) {
            out.keep.push(decision(&format!(
                "also named {other}, which slipway does not manage"
            )));
        } else if i.in_use.contains(&img.id) {
            out.keep.push(decision("used by a container"));
        } else if let Some(t) = img.tags.iter().find(|t| {
            split_image(t)
                .1
                .is_some_and(|tag| i.rollback_tags.contains(tag))
        }) {
            out.keep.push(decision(&format!("{t} is the way back")));
        } else if let Some(r) = need.get(&img.id) {
            out.keep.push(decision(&format!("kept for {r}")));
        } else {
            out.delete
                .push(decision("older than the retained releases"));
        }
    }
    out
}

/// Gather the inputs from Docker and history, decide, and (unless
/// `dry_run`) delete by ID. Returns what was decided.
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
    let repos = ctx.managed_repos();
    let p = plan(&Inputs {
        managed_repos: &repos,
        images: &images,
        in_use: &in_use,
        releases: &releases,
        keep_releases: &keep,
        rollback_tags: &rollback_tags,
    });
    if !dry_run {
        let mut errors = Vec::new();
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
        });
        assert!(p.delete.is_empty());
    }
}
