//! Prune on a Swarm node (the manager slipway runs on): images of managed
//! repositories whose digests no retained release names and no container
//! uses. Each node keeps its own images; run prune on a node to prune it.

use std::collections::{BTreeMap, BTreeSet};

use super::Ctx;
use crate::backend::compose::prune::{retained, Decision, Plan};
use crate::config::names::split_image;
use crate::engine::Image;
use crate::error::Result;
use crate::state::Release;

/// The pure decision: `keep` is digest → the release that needs it.
pub fn plan(
    images: &[Image],
    in_use: &BTreeSet<String>,
    keep: &BTreeMap<String, String>,
    managed_repos: &BTreeSet<String>,
) -> Plan {
    let mut p = Plan::default();
    for img in images {
        let ours: Vec<&String> = img
            .digests
            .iter()
            .filter(|d| managed_repos.contains(split_image(d.split('@').next().unwrap_or("")).0))
            .collect();
        if ours.is_empty() {
            continue;
        }
        let mut names: Vec<String> = img.tags.clone();
        names.extend(ours.iter().map(|d| d.to_string()));
        let needed = ours
            .iter()
            .find_map(|d| d.split_once('@').and_then(|(_, dg)| keep.get(dg)));
        let decision = |reason: String| Decision {
            id: img.id.clone(),
            names: names.clone(),
            reason,
        };
        if in_use.contains(&img.id) {
            p.keep.push(decision("used by a container".into()));
        } else if let Some(why) = needed {
            p.keep.push(decision(why.clone()));
        } else {
            p.delete
                .push(decision("no retained release names its digest".into()));
        }
    }
    p
}

pub async fn run(ctx: &Ctx, dry_run: bool) -> Result<Plan> {
    let releases: Vec<Release> = ctx.state.all_releases()?;
    let keep_releases: BTreeMap<String, usize> = ctx
        .cfg
        .environments
        .iter()
        .map(|(n, e)| (n.clone(), e.keep_releases))
        .collect();
    let keep = retained(&releases, &keep_releases);
    let (images, in_use) = tokio::join!(ctx.docker.images(), ctx.docker.images_in_use());
    let managed: BTreeSet<String> = ctx.repos.values().cloned().collect();
    let plan = plan(&images?, &in_use?, &keep, &managed);
    if !dry_run {
        for d in &plan.delete {
            if let Err(e) = ctx.docker.remove_image(&d.id).await {
                ctx.out.warn(format!("could not remove {}: {e}", d.id));
            }
        }
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(id: &str, digest: &str) -> Image {
        Image {
            id: id.into(),
            tags: Vec::new(),
            digests: vec![format!("reg/api@{digest}")],
        }
    }

    #[test]
    fn keeps_retained_digests_and_images_in_use_deletes_the_rest() {
        let images = [
            image("i1", "sha256:d1"),
            image("i2", "sha256:d2"),
            image("i3", "sha256:d3"),
            Image {
                id: "other".into(),
                tags: vec!["postgres:16".into()],
                digests: vec!["postgres@sha256:x".into()],
            },
        ];
        let in_use: BTreeSet<String> = ["i3".to_string()].into();
        let keep: BTreeMap<String, String> =
            [("sha256:d1".to_string(), "release 4".to_string())].into();
        let managed: BTreeSet<String> = ["reg/api".to_string()].into();
        let p = plan(&images, &in_use, &keep, &managed);
        let ids = |ds: &[Decision]| ds.iter().map(|d| d.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&p.delete), ["i2"]);
        assert_eq!(ids(&p.keep), ["i1", "i3"]);
        assert_eq!(p.keep[0].reason, "release 4");
    }
}
