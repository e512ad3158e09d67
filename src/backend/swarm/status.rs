//! `slipway status` on a Swarm: each managed service's spec digest, update
//! state and the tasks Swarm wants running, per node; whether the registry
//! still has the way back's digests.

use std::collections::BTreeMap;

use super::engine::{self, Swarm};
use super::judge::{self, digest_of};
use crate::commands::status::{Now, ServiceNow};
use crate::config::names::split_image;
use crate::error::Result;
use crate::settings::Settings;
use crate::state::Release;

pub async fn now(s: &Settings, rollback: Option<&Release>) -> Result<Now> {
    let stack = super::stack_of(&s.config, &s.env);
    let (_, swarm) = Swarm::manager().await?;
    let mut rollback_images_present = rollback.is_some();
    for img in rollback.map(|r| r.services.values()).into_iter().flatten() {
        let repo = split_image(&img.image).0;
        rollback_images_present &= swarm
            .registry_digest(&format!("{repo}@{}", img.image_id))
            .await
            .is_ok_and(|found| found.is_some());
    }
    let mut services = BTreeMap::new();
    let mut running = BTreeMap::new();
    let mut tasks_of = BTreeMap::new();
    for svc in s.config.services.keys() {
        let (now, digests, tasks) = service_now(&swarm, &format!("{stack}_{svc}")).await?;
        services.insert(svc.clone(), now);
        running.insert(svc.clone(), digests);
        if !tasks.is_empty() {
            tasks_of.insert(svc.clone(), tasks);
        }
    }
    Ok(Now {
        rollback_images_present,
        way_back_tags: Vec::new(),
        services,
        running,
        stack: Some(stack),
        tasks: tasks_of,
    })
}

/// One service: as shown, the digests its running tasks run, its tasks.
async fn service_now(
    swarm: &Swarm,
    name: &str,
) -> Result<(ServiceNow, Vec<String>, Vec<judge::TaskView>)> {
    let Some(service) = swarm.service(name).await? else {
        let missing = ServiceNow {
            image: None,
            image_id: None,
            container: None,
            state: "missing".into(),
            health: "none".into(),
        };
        return Ok((missing, Vec::new(), Vec::new()));
    };
    let view = engine::view(&service);
    let tasks: Vec<_> = swarm
        .tasks(service.id.as_deref().unwrap_or_default())
        .await?
        .into_iter()
        .filter(|t| t.desired == "running")
        .collect();
    let up: Vec<String> = tasks
        .iter()
        .filter(|t| t.state == "running")
        .filter_map(|t| t.digest.clone())
        .collect();
    let want = view
        .replicas
        .map_or_else(|| "global".to_string(), |n| n.to_string());
    let now = ServiceNow {
        image: Some(view.image.clone()),
        image_id: digest_of(&view.image).map(str::to_string),
        container: Some(name.to_string()),
        state: format!("{}/{want}", up.len()),
        health: view.update_state.clone().unwrap_or_else(|| "-".into()),
    };
    Ok((now, up, tasks))
}
