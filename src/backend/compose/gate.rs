//! The start-first services of one wave switch together: no old container
//! leaves rotation (and no blue-green container enters it) until every new
//! container of the wave is healthy and past its pre-traffic checks. When one
//! service's new container fails, the others keep their old containers
//! serving, so going back removes new containers and boots nothing again.

use std::collections::BTreeSet;

use tokio::sync::watch;

#[derive(Debug, Default, Clone)]
struct State {
    ready: BTreeSet<String>,
    failed: Option<String>,
}

pub struct Gate {
    members: BTreeSet<String>,
    state: watch::Sender<State>,
}

impl Gate {
    pub fn new(members: impl IntoIterator<Item = String>) -> Gate {
        Gate {
            members: members.into_iter().collect(),
            state: watch::Sender::new(State::default()),
        }
    }

    pub fn holds(&self, svc: &str) -> bool {
        self.members.contains(svc)
    }

    /// `svc` is ready to switch; waits until every member is. `Err` names the
    /// member whose new container failed: then nothing switches.
    pub async fn ready(&self, svc: &str) -> Result<(), String> {
        self.mark(svc);
        let mut rx = self.state.subscribe();
        let all = self.members.len();
        let state = rx
            .wait_for(|s| s.ready.len() >= all || s.failed.is_some())
            .await
            .map_err(|_| "the rollout's gate closed".to_string())?
            .clone();
        match state.failed {
            // Everyone ready wins over a failure after the switch.
            Some(failed) if state.ready.len() < all => Err(failed),
            _ => Ok(()),
        }
    }

    /// `svc` needs no switch (nothing old to retire): counted as ready
    /// without waiting for the others.
    pub fn mark(&self, svc: &str) {
        self.state.send_modify(|s| {
            s.ready.insert(svc.to_string());
        });
    }

    /// `svc`'s new container failed before it was ready: nobody switches.
    pub fn fail(&self, svc: &str) {
        self.state.send_modify(|s| {
            if s.failed.is_none() && !s.ready.contains(svc) {
                s.failed = Some(svc.to_string());
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn gate(names: &[&str]) -> Arc<Gate> {
        Arc::new(Gate::new(names.iter().map(|s| s.to_string())))
    }

    #[tokio::test]
    async fn nobody_switches_before_everyone_is_ready() {
        let g = gate(&["api", "web"]);
        let api = tokio::spawn({
            let g = g.clone();
            async move { g.ready("api").await }
        });
        tokio::task::yield_now().await;
        assert!(!api.is_finished(), "api switched before web was ready");
        assert_eq!(g.ready("web").await, Ok(()));
        assert_eq!(api.await.ok(), Some(Ok(())));
    }

    #[tokio::test]
    async fn one_failure_holds_everyone_and_is_named() {
        let g = gate(&["api", "web", "worker"]);
        let web = tokio::spawn({
            let g = g.clone();
            async move { g.ready("web").await }
        });
        g.mark("worker");
        g.fail("api");
        assert_eq!(web.await.ok(), Some(Err("api".to_string())));
        assert_eq!(g.ready("worker").await, Err("api".to_string()));
    }

    #[tokio::test]
    async fn a_failure_after_its_own_switch_holds_nobody() {
        let g = gate(&["api", "web"]);
        g.mark("api");
        // api failed later (retiring its old container): web may still switch.
        g.fail("api");
        assert_eq!(g.ready("web").await, Ok(()));
        assert!(g.holds("web") && !g.holds("proxy"));
    }
}
