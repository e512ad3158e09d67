//! Rolling a set of images out over a backend, PRODUCT.md steps 4–5 (wave by
//! wave, each wave healthy before the next), and restoring a release, which
//! is rolling out its exact images again. Shared by the transaction (a new
//! release, and step 8) and `recover`.

use std::collections::BTreeSet;

use crate::backend::{Backend, Images, Purpose, Rollout as _};
use crate::failpoint;
use crate::interrupt;
use crate::state::{Release, Step};

use super::plan;

/// Once rolling out, a signal means: stop here and roll back.
pub fn check_interrupt() -> Result<(), String> {
    if interrupt::requested() {
        return Err("interrupted by a signal".into());
    }
    Ok(())
}

/// Steps 4–5 for one set of images, wave by wave (a service after the ones
/// it depends on): roll every service of the wave by its strategy, then wait
/// until they are healthy. A release's rollout stops at the next wave
/// boundary (or health wait) on a signal; a restore does not. The error is
/// the reason, in words, for history.
pub async fn roll_out<B: Backend>(
    b: &B,
    id: i64,
    images: &Images,
    tag: &str,
    purpose: Purpose,
) -> Result<(), String> {
    let check_interrupt = || match purpose {
        Purpose::Release => check_interrupt(),
        Purpose::Restore => Ok(()),
    };
    // Tagged here too: a release recorded before tags were namespaced (or
    // whose tag someone removed) still rolls out by its exact image IDs.
    b.tag_release(id, images).await.map_err(|e| e.to_string())?;
    let vars = b.vars(tag);
    let rollout = b.prepare(id, images, &vars, purpose).await?;
    let services: BTreeSet<String> = images.keys().cloned().collect();
    for wave in plan::waves(&services, &b.depends_on(), b.env.max_parallel) {
        // 4. Roll out.
        let step = b.out.step("rollout");
        step.set(wave.join(", "));
        for svc in &wave {
            b.state
                .journal(id, Step::Rollout, svc)
                .map_err(|e| e.to_string())?;
        }
        // Every roll of the wave runs to its end, even when one fails: a roll
        // cut off mid-way (a `compose up` killed) leaves containers half
        // stopped for the restore to trip over. A health wait only looks, so
        // the first failure ends the others.
        let rolled = rollout.roll_wave(&wave).await;
        report(step, rolled.into_iter().collect())?;
        failpoint::hit("rollout:between");
        // 5. Wait healthy.
        let step = b.out.step("health");
        step.set(wave.join(", "));
        b.state
            .journal(id, Step::Health, &wave.join(" "))
            .map_err(|e| e.to_string())?;
        let healthy = futures_util::future::try_join_all(wave.iter().map(|s| rollout.healthy(s)));
        report(step, healthy.await)?;
        failpoint::hit("rollout:after");
        check_interrupt()?;
    }
    failpoint::hit("health:after");
    failpoint::pause("health:after").await;
    Ok(())
}

/// End a wave's step with what each service said, or the first error.
fn report(step: crate::output::Step, result: Result<Vec<String>, String>) -> Result<(), String> {
    match result {
        Ok(notes) => {
            step.done(notes.join(", "));
            Ok(())
        }
        Err(e) => {
            step.fail(&e);
            Err(e)
        }
    }
}

/// Put `target` back exactly (or, with no target, remove what `failed`
/// started and created: the environment as before it), and verify it is
/// healthy. Used by step 8 and by `recover`. Returns what the release had
/// created that was removed (a Swarm stack), to say so.
pub async fn restore_release<B: Backend>(
    b: &B,
    failed: &Release,
    target: Option<&Release>,
) -> Result<Option<String>, String> {
    let step = b.out.step("restore");
    // Services the failed release runs that the target did not: take them down.
    let extra: Vec<String> = failed
        .services
        .keys()
        .filter(|s| target.is_none_or(|t| !t.services.contains_key(*s)))
        .cloned()
        .collect();
    if let Err(e) = b.remove(failed.id, &extra).await {
        step.fail(&e);
        return Err(e);
    }
    let Some(target) = target else {
        step.done("no earlier release: removed the new containers");
        // And what the release created around them (a Swarm stack).
        return b.discard_created(failed.id).await;
    };
    step.done(format!("back to release {}", target.id));
    failpoint::hit("restore:during");
    roll_out(
        b,
        target.id,
        &target.services,
        target.tag.as_deref().unwrap_or(""),
        Purpose::Restore,
    )
    .await
    .map(|()| None)
}

/// After going back to `live`, the way-back names name what preceded it again.
pub async fn retag_rollback<B: Backend>(b: &B, live: &Release) {
    let Some(prev) = live
        .previous
        .and_then(|p| b.state.release(p).ok().flatten())
    else {
        return;
    };
    for img in prev.services.values() {
        if !matches!(b.has_image(img).await, Ok(true)) {
            return;
        }
    }
    if let Err(e) = b.point_way_back(&prev).await {
        b.out.warn(format!(
            "could not point the way-back tags at release {}: {e}",
            prev.id
        ));
    }
}

/// What runs now, a line per container, for a human who must act.
pub async fn describe_services<B: Backend>(b: &B) -> String {
    let mut lines = Vec::new();
    for svc in b.repos.keys() {
        match b.running(svc).await {
            Ok(cs) if cs.is_empty() => lines.push(format!("  {svc}: no container")),
            Ok(cs) => {
                for c in cs {
                    lines.push(format!(
                        "  {svc}: {} runs {} ({}), {}, health {}",
                        c.name,
                        c.image,
                        c.image_id,
                        c.state,
                        c.health.as_str()
                    ));
                }
            }
            Err(e) => lines.push(format!("  {svc}: cannot ask Docker: {e}")),
        }
    }
    lines.join("\n")
}
