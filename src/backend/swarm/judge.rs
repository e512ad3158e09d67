//! Whether a Swarm service has reached a release's image, judged from what
//! the manager reports (pure, unit-tested): the service's `UpdateStatus`
//! and its tasks. Never the CLI's exit code (`docker stack deploy` exits 0
//! when Swarm rolled an update back, docker/cli#6752).
//!
//! A task reaches `running` only once its container's HEALTHCHECK passed
//! (Swarm holds it in `starting` until then), so running on the release's
//! digest is healthy.

use std::collections::BTreeSet;

/// A service as the manager reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceView {
    /// The Swarm service's name (`<stack>_<service>`).
    pub name: String,
    /// `Spec.TaskTemplate.ContainerSpec.Image` (`repo:tag@sha256:…`).
    pub image: String,
    /// Replicated mode's count; `None` for a global service.
    pub replicas: Option<u64>,
    /// `UpdateStatus.State` (`updating`, `paused`, `completed`, `rollback_…`).
    pub update_state: Option<String>,
    pub update_message: Option<String>,
}

/// One task of a service.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TaskView {
    pub id: String,
    pub slot: Option<i64>,
    /// The node's hostname (its ID when the manager does not know it).
    pub node: String,
    /// The manager marks the node `down` (its engine stopped answering).
    pub node_down: bool,
    /// The image's digest from the task's spec, if pinned by one.
    pub digest: Option<String>,
    /// `Status.State`: `new` … `starting`, `running`, `failed`, `shutdown`, …
    pub state: String,
    /// `DesiredState`: `running` for a task Swarm wants to run.
    pub desired: String,
    /// `Status.Err`, else `Status.Message`.
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every wanted task runs the digest: what to print.
    Done(String),
    /// Not yet: what is missing (for the timeout's message).
    Wait(String),
    /// It will not get there: why, for history.
    Failed(String),
}

/// The `sha256:…` after `@` in an image reference.
pub fn digest_of(image: &str) -> Option<&str> {
    image.rsplit_once('@').map(|(_, d)| d)
}

/// `sha256:0123456789ab` for messages.
pub fn short(digest: &str) -> String {
    let hex = digest.trim_start_matches("sha256:");
    format!("sha256:{}", &hex[..hex.len().min(12)])
}

/// Judge `svc` against `digest`. `before` holds the IDs of the tasks that
/// existed before this update: a failed task among them is history, a new
/// one that failed on the digest ends the wait at once. `down_nodes`: the
/// swarm's nodes the manager marks down, said when done without them.
pub fn judge(
    svc: &ServiceView,
    tasks: &[TaskView],
    digest: &str,
    before: &BTreeSet<String>,
    down_nodes: &[String],
) -> Verdict {
    if let Some(why) = stopped(svc, tasks, digest, before) {
        return Verdict::Failed(why);
    }
    let wanted: Vec<&TaskView> = tasks
        .iter()
        .filter(|t| t.desired == "running" && !t.node_down)
        .collect();
    let ok = wanted
        .iter()
        .filter(|t| t.digest.as_deref() == Some(digest) && t.state == "running")
        .count();
    let want = wanted_count(svc, tasks);
    let progress = format!("{ok}/{want} tasks running {}", short(digest));
    if ok == want && ok == wanted.len() {
        let down: BTreeSet<&str> = down_nodes
            .iter()
            .map(String::as_str)
            .chain(
                tasks
                    .iter()
                    .filter(|t| t.node_down && t.desired == "running")
                    .map(|t| t.node.as_str()),
            )
            .collect();
        if down.is_empty() {
            return Verdict::Done(progress);
        }
        let nodes: Vec<&str> = down.into_iter().collect();
        return Verdict::Done(format!(
            "{progress} on the nodes left (node {} down)",
            nodes.join(", ")
        ));
    }
    // The task a human would look at: a new one not running yet, else an
    // old one still waiting to be replaced.
    let behind = wanted
        .iter()
        .find(|t| t.digest.as_deref() == Some(digest) && t.state != "running")
        .or_else(|| wanted.iter().find(|t| t.digest.as_deref() != Some(digest)));
    Verdict::Wait(match behind {
        Some(t) => format!("{progress}; {}", describe(t)),
        None => progress,
    })
}

/// Why the update will not get there: Swarm paused it or rolled it back,
/// or a task of this update failed on the digest.
fn stopped(
    svc: &ServiceView,
    tasks: &[TaskView],
    digest: &str,
    before: &BTreeSet<String>,
) -> Option<String> {
    let name = &svc.name;
    let failed = failed_task(tasks, digest, before);
    match svc.update_state.as_deref() {
        Some("paused") => Some(format!(
            "{name}: Swarm paused the update{}{}",
            said(svc.update_message.as_deref()),
            failed
                .map(|t| format!("; {}", describe(t)))
                .unwrap_or_default()
        )),
        Some(s) if s.starts_with("rollback") => Some(format!(
            "{name}: Swarm rolled the update back{}",
            said(svc.update_message.as_deref())
        )),
        _ => failed.map(|t| format!("{name}: {}", describe(t))),
    }
}

/// How many tasks must run the digest. A global service wants one per node
/// it runs on: every node that holds a task of it (Swarm keeps a few per
/// node), down ones aside; not the tasks wanted this instant, as a crashed
/// task's successor may not exist yet.
fn wanted_count(svc: &ServiceView, tasks: &[TaskView]) -> usize {
    match svc.replicas {
        Some(n) => n as usize,
        None => tasks
            .iter()
            .filter(|t| !t.node.is_empty() && !t.node_down)
            .map(|t| t.node.as_str())
            .collect::<BTreeSet<_>>()
            .len()
            .max(1),
    }
}

/// The task whose logs say why: one of this update that failed on the
/// digest, else one on the digest that is not running yet.
pub fn culprit<'a>(
    tasks: &'a [TaskView],
    digest: &str,
    before: &BTreeSet<String>,
) -> Option<&'a TaskView> {
    failed_task(tasks, digest, before).or_else(|| {
        tasks.iter().find(|t| {
            t.desired == "running" && t.digest.as_deref() == Some(digest) && t.state != "running"
        })
    })
}

/// A task created by this update that failed on the digest.
fn failed_task<'a>(
    tasks: &'a [TaskView],
    digest: &str,
    before: &BTreeSet<String>,
) -> Option<&'a TaskView> {
    tasks.iter().find(|t| {
        !before.contains(&t.id)
            && t.digest.as_deref() == Some(digest)
            && matches!(t.state.as_str(), "failed" | "rejected")
    })
}

/// `task 1 on node-b: failed (task: non-zero exit (3))`.
fn describe(t: &TaskView) -> String {
    let slot = t.slot.map(|s| format!(" {s}")).unwrap_or_default();
    let image = match &t.digest {
        Some(d) => format!(" {}", short(d)),
        None => String::new(),
    };
    format!(
        "task{slot}{image} on {}: {}{}",
        t.node,
        t.state,
        if t.message.is_empty() || t.message == t.state {
            String::new()
        } else {
            format!(" ({})", t.message)
        }
    )
}

fn said(message: Option<&str>) -> String {
    match message {
        Some(m) if !m.is_empty() => format!(" ({m})"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEW: &str = "sha256:2222222222222222222222222222";
    const OLD: &str = "sha256:1111111111111111111111111111";

    fn svc(state: Option<&str>) -> ServiceView {
        ServiceView {
            name: "shop_api".into(),
            image: format!("r/api:v2@{NEW}"),
            replicas: Some(2),
            update_state: state.map(str::to_string),
            update_message: state.map(|s| format!("update {s}")),
        }
    }

    fn task(id: &str, digest: &str, state: &str, desired: &str) -> TaskView {
        TaskView {
            id: id.into(),
            slot: Some(1),
            node: "n1".into(),
            node_down: false,
            digest: Some(digest.into()),
            state: state.into(),
            desired: desired.into(),
            message: String::new(),
        }
    }

    fn none() -> BTreeSet<String> {
        BTreeSet::new()
    }

    #[test]
    fn done_when_every_wanted_task_runs_the_digest() {
        let tasks = [
            task("a", NEW, "running", "running"),
            task("b", NEW, "running", "running"),
            task("c", OLD, "shutdown", "shutdown"),
        ];
        assert_eq!(
            judge(&svc(Some("updating")), &tasks, NEW, &none(), &[]),
            Verdict::Done("2/2 tasks running sha256:222222222222".into())
        );
    }

    #[test]
    fn waits_for_old_tasks_and_tasks_still_starting() {
        let mixed = [
            task("a", NEW, "running", "running"),
            task("b", OLD, "running", "running"),
        ];
        assert!(matches!(
            judge(&svc(Some("updating")), &mixed, NEW, &none(), &[]),
            Verdict::Wait(w) if w.contains("1/2") && w.contains("sha256:111111111111")
        ));
        let starting = [
            task("a", NEW, "running", "running"),
            task("b", NEW, "starting", "running"),
        ];
        assert!(matches!(
            judge(&svc(Some("updating")), &starting, NEW, &none(), &[]),
            Verdict::Wait(w) if w.contains("starting")
        ));
        // start-first: old and new both wanted for a moment.
        let overlap = [
            task("a", NEW, "running", "running"),
            task("b", NEW, "running", "running"),
            task("c", OLD, "running", "running"),
        ];
        assert!(matches!(
            judge(&svc(Some("updating")), &overlap, NEW, &none(), &[]),
            Verdict::Wait(_)
        ));
    }

    #[test]
    fn a_paused_or_rolled_back_update_fails() {
        let mut failed = task("x", NEW, "failed", "shutdown");
        failed.message = "task: non-zero exit (3)".into();
        let tasks = [failed, task("b", OLD, "running", "running")];
        match judge(&svc(Some("paused")), &tasks, NEW, &none(), &[]) {
            Verdict::Failed(why) => {
                assert!(why.contains("paused"), "{why}");
                assert!(why.contains("non-zero exit (3)"), "{why}");
            }
            v => panic!("{v:?}"),
        }
        assert!(matches!(
            judge(&svc(Some("rollback_completed")), &tasks, NEW, &none(), &[]),
            Verdict::Failed(w) if w.contains("rolled the update back")
        ));
    }

    #[test]
    fn a_new_failed_task_fails_fast_an_old_one_is_history() {
        let tasks = [
            task("old-failure", NEW, "failed", "shutdown"),
            task("a", NEW, "running", "running"),
            task("b", NEW, "running", "running"),
        ];
        let before: BTreeSet<String> = ["old-failure".to_string()].into();
        assert!(matches!(
            judge(&svc(Some("updating")), &tasks, NEW, &before, &[]),
            Verdict::Done(_)
        ));
        assert!(matches!(
            judge(&svc(Some("updating")), &tasks, NEW, &none(), &[]),
            Verdict::Failed(w) if w.contains("failed")
        ));
    }

    #[test]
    fn tasks_on_a_down_node_are_not_waited_for_and_said() {
        let mut lost = task("c", NEW, "running", "running");
        lost.node = "n3".into();
        lost.node_down = true;
        let tasks = [
            task("a", NEW, "running", "running"),
            task("b", NEW, "running", "running"),
            lost,
        ];
        assert_eq!(
            judge(&svc(None), &tasks, NEW, &none(), &[]),
            Verdict::Done(
                "2/2 tasks running sha256:222222222222 on the nodes left (node n3 down)".into()
            )
        );
    }

    #[test]
    fn a_global_service_done_without_a_down_node_says_so() {
        let mut global = svc(None);
        global.replicas = None;
        let tasks = [task("a", NEW, "running", "running")];
        assert!(matches!(
            judge(&global, &tasks, NEW, &none(), &["n2".to_string()]),
            Verdict::Done(d) if d.ends_with("on the nodes left (node n2 down)")
        ));
    }

    #[test]
    fn the_wait_names_a_new_task_not_running_before_an_old_one() {
        let tasks = [
            task("old", OLD, "running", "running"),
            task("new", NEW, "starting", "running"),
        ];
        assert!(matches!(
            judge(&svc(Some("updating")), &tasks, NEW, &none(), &[]),
            Verdict::Wait(w) if w.contains("sha256:222222222222 on n1: starting")
        ));
    }

    #[test]
    fn a_global_service_waits_for_the_node_whose_task_is_being_replaced() {
        let mut global = svc(None);
        global.replicas = None;
        let mut crashed = task("c", OLD, "failed", "shutdown");
        crashed.node = "n3".into();
        let mut other = task("b", NEW, "running", "running");
        other.node = "n2".into();
        let tasks = [task("a", NEW, "running", "running"), other, crashed];
        assert!(matches!(
            judge(&global, &tasks, NEW, &none(), &[]),
            Verdict::Wait(w) if w.starts_with("2/3")
        ));
    }

    #[test]
    fn global_services_and_zero_replicas() {
        let mut global = svc(None);
        global.replicas = None;
        assert!(matches!(
            judge(
                &global,
                &[task("a", NEW, "running", "running")],
                NEW,
                &none(),
                &[]
            ),
            Verdict::Done(_)
        ));
        assert!(matches!(
            judge(&global, &[], NEW, &none(), &[]),
            Verdict::Wait(_)
        ));
        let mut zero = svc(None);
        zero.replicas = Some(0);
        assert!(matches!(
            judge(&zero, &[], NEW, &none(), &[]),
            Verdict::Done(_)
        ));
    }

    #[test]
    fn the_culprit_is_the_failed_new_task_else_the_one_still_starting() {
        let tasks = [
            task("old", OLD, "running", "running"),
            task("starting", NEW, "starting", "running"),
            task("crashed", NEW, "failed", "shutdown"),
        ];
        assert_eq!(
            culprit(&tasks, NEW, &none()).map(|t| t.id.as_str()),
            Some("crashed")
        );
        let before: BTreeSet<String> = ["crashed".to_string()].into();
        assert_eq!(
            culprit(&tasks, NEW, &before).map(|t| t.id.as_str()),
            Some("starting")
        );
        assert_eq!(culprit(&tasks[..1], NEW, &none()), None);
    }

    #[test]
    fn digests_from_references() {
        assert_eq!(digest_of("r/api:v2@sha256:ab"), Some("sha256:ab"));
        assert_eq!(digest_of("r/api:v2"), None);
        assert_eq!(short("sha256:0123456789abcdef"), "sha256:0123456789ab");
    }
}
