//! The deploy transaction: commit, automatic rollback, aborted pulls.

use slipway::fixture::{App, Behaviour};

use crate::harness::{image_id, Stack};

#[test]
fn deploy_v1_then_v2_pins_v1_as_the_way_back() {
    let stack = Stack::new("v1v2");
    let (api1, web1) = stack.publish_good("v1");
    let (api2, web2) = stack.publish_good("v2");
    let cache = stack.start_cache();

    let run = stack.slipway(&["deploy", "--tag", "v1", "--timings"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(stack.running_image("api"), api1);
    assert_eq!(stack.running_image("web"), web1);
    // Where the time went: every step, and each kind of compose call; api
    // and web (stop-first, one wave) are recreated by one compose run.
    let table = &run.stderr[run.stderr.find("timings:").expect("--timings table")..];
    for line in [
        "in steps",
        "outside steps",
        "docker compose pull ×1",
        "docker compose up ×1",
        "per service, seconds since the start:",
    ] {
        assert!(table.contains(line), "{line}: {table}");
    }
    // Each service's timeline: recreated, then healthy.
    for svc in ["api", "web"] {
        let line = table
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{svc} ")))
            .unwrap_or_else(|| panic!("no timeline for {svc}: {table}"));
        let recreated = line.find("recreated").expect("recreated");
        assert!(line[recreated..].contains("healthy"), "{line}");
    }

    // A log filter that is none is refused before anything runs.
    let bad = stack.slipway_env(
        &["deploy", "--tag", "v2"],
        &[("SLIPWAY_LOG", "slipway=loud")],
    );
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(
        bad.stderr
            .contains("SLIPWAY_LOG=slipway=loud: not a log filter"),
        "{}",
        bad.stderr
    );
    assert_eq!(stack.history().len(), 1);

    // SLIPWAY_LOG logs each command and mark to stderr; --json stays clean.
    let run = stack.slipway_env(
        &["deploy", "--tag", "v2", "--json"],
        &[("SLIPWAY_LOG", "slipway=debug")],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    for logged in [
        "ran command=docker compose pull",
        r#"mark service="api" event="healthy""#,
    ] {
        assert!(run.stderr.contains(logged), "{logged}: {}", run.stderr);
    }
    let timings = &run.json()["timings"];
    let steps: Vec<&str> = timings["steps"]
        .as_array()
        .map(|s| s.iter().filter_map(|s| s["step"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        steps,
        [
            "preflight",
            "pull",
            "pin",
            "dependencies",
            "rollout",
            "health",
            "smoke",
            "prune"
        ],
        "{timings}"
    );
    assert_eq!(
        timings["commands"]["docker compose pull"]["count"], 1,
        "{timings}"
    );
    // The timeline in seconds since the start: in order, within the run.
    let wall = timings["wall"].as_f64().unwrap_or(0.0);
    let api: Vec<(&str, f64)> = timings["marks"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter(|m| m["service"] == "api")
                .filter_map(|m| Some((m["event"].as_str()?, m["at"].as_f64()?)))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        api.iter().map(|(e, _)| *e).collect::<Vec<_>>(),
        ["recreated", "healthy"],
        "{timings}"
    );
    assert!(
        api[0].1 <= api[1].1 && api[1].1 <= wall && wall > 0.0,
        "{timings}"
    );
    assert_eq!(stack.running_image("api"), api2);
    assert_eq!(stack.running_image("web"), web2);
    // The way back: :rollback names v1's exact images.
    assert_eq!(
        image_id(&format!("{}:rollback", stack.repo("api"))),
        Some(api1.clone())
    );
    assert_eq!(
        image_id(&format!("{}:rollback", stack.repo("web"))),
        Some(web1)
    );
    // A service slipway does not manage was never recreated.
    assert_eq!(stack.container("cache"), Some(cache));

    let h = stack.history();
    assert_eq!(h.len(), 2);
    assert!(
        h.iter()
            .all(|r| r["status"] == "succeeded" && r["kind"] == "deploy"),
        "{h:?}"
    );
    assert_eq!(h[0]["tag"], "v2");
    assert_eq!(h[0]["services"]["api"]["image_id"], api2.as_str());
    assert_eq!(h[1]["services"]["api"]["image_id"], api1.as_str());

    let status = stack.slipway(&["status", "--json"]).json();
    assert_eq!(status["current"]["tag"], "v2");
    assert_eq!(status["rollback"]["tag"], "v1");
    assert_eq!(status["rollback_images_present"], true);
    assert_eq!(status["services"]["api"]["image_id"], api2.as_str());
    assert_eq!(status["services"]["api"]["health"], "healthy");
    assert!(status["locked"].is_null() && status["unfinished"].is_null());
}

#[test]
fn a_failing_smoke_test_restores_the_previous_images() {
    let stack = Stack::new("smoke");
    let (api1, web1) = stack.publish_good("v1");
    let mut broken = App::new("v2");
    broken.smoke_ok = false;
    stack.publish("api", "v2", broken);
    stack.publish("web", "v2", App::new("v2"));
    assert_eq!(stack.deploy("v1").code, 0);

    let run = stack.deploy("v2");
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("core API"), "{}", run.stderr);
    // Checked by ID, not by tag.
    assert_eq!(stack.running_image("api"), api1);
    assert_eq!(stack.running_image("web"), web1);
    let h = stack.history();
    assert_eq!(h[0]["status"], "rolled_back");
    let reason = h[0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("smoke check `core API` failed"), "{reason}");
    assert!(reason.contains("\"broken\""), "{reason}");
    assert_eq!(h[1]["status"], "succeeded");
}

#[test]
fn a_health_check_that_never_passes_is_rolled_back_at_health_timeout() {
    let mut stack = Stack::new("unhealthy");
    stack.health_timeout = "4s".into();
    stack.write();
    let (api1, _) = stack.publish_good("v1");
    let mut sick = App::new("v2");
    sick.behaviour = Behaviour::NeverHealthy;
    stack.publish("api", "v2", sick);
    stack.publish("web", "v2", App::new("v2"));
    assert_eq!(stack.deploy("v1").code, 0);

    let run = stack.deploy("v2");
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(stack.running_image("api"), api1);
    let h = stack.history();
    let reason = h[0]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("not healthy within health_timeout 4s"),
        "{reason}"
    );
}

#[test]
fn a_container_that_exits_at_start_fails_fast_and_is_rolled_back() {
    let stack = Stack::new("crash");
    let (api1, web1) = stack.publish_good("v1");
    let mut crash = App::new("v2");
    crash.behaviour = Behaviour::Crash;
    stack.publish("api", "v2", crash);
    stack.publish("web", "v2", App::new("v2"));
    assert_eq!(stack.deploy("v1").code, 0);

    let run = stack.deploy("v2");
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(stack.running_image("api"), api1);
    assert_eq!(stack.running_image("web"), web1);
    assert_eq!(stack.state("api"), "running");
    let h = stack.history();
    assert_eq!(h[0]["status"], "rolled_back");
    let reason = h[0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("exited with code 3"), "{reason}");
}

#[test]
fn a_tag_missing_from_the_registry_changes_nothing() {
    let stack = Stack::new("notag");
    let (api1, _) = stack.publish_good("v1");
    assert_eq!(stack.deploy("v1").code, 0);
    let (api_c, web_c) = (stack.container("api"), stack.container("web"));

    let run = stack.deploy("v9-does-not-exist");
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("pull failed"), "{}", run.stderr);
    assert_eq!(stack.container("api"), api_c, "api was recreated");
    assert_eq!(stack.container("web"), web_c, "web was recreated");
    assert_eq!(stack.running_image("api"), api1);
    let h = stack.history();
    assert_eq!(h[0]["status"], "aborted");
    assert_eq!(h[0]["tag"], "v9-does-not-exist");
}

#[test]
fn first_deploy_adopts_what_already_runs() {
    let stack = Stack::new("adopt");
    let (api1, web1) = stack.publish_good("v1");
    stack.publish_good("v2");
    // The team's stack, started by hand before slipway.
    let (ok, err) = stack.compose(&["up", "--detach"]);
    assert!(ok, "{err}");
    assert_eq!(stack.running_image("api"), api1);

    let run = stack.deploy("v2");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let h = stack.history();
    assert_eq!(h.len(), 2);
    assert_eq!(h[1]["kind"], "adopt");
    assert_eq!(h[1]["services"]["api"]["image_id"], api1.as_str());
    assert_eq!(
        image_id(&format!("{}:rollback", stack.repo("api"))),
        Some(api1)
    );
    assert_eq!(
        image_id(&format!("{}:rollback", stack.repo("web"))),
        Some(web1)
    );
}
