//! Crash safety: kill slipway with SIGKILL at every step boundary of deploy
//! and rollback (and in the middle of the pull, rollout and health waits),
//! then `slipway recover` must leave the last succeeded release (or the new
//! one, if fully verified) running by image ID, every retained image present,
//! nothing in progress and the lock free. Needs `--features failpoints`.
//!
//! Each case prints a `FAULT …` line that scripts/faults.sh sums up.

use serde_json::Value;
use slipway::fixture::App;

use crate::harness::{image_id, Stack};

/// What the environment must look like after `recover`; returns the number of lost images.
fn assert_recovered(stack: &Stack, case: &str) -> usize {
    let h = stack.history();
    assert!(
        h.iter().all(|r| r["status"] != "in_progress"),
        "{case}: a release is still in progress: {h:?}"
    );
    let live = h
        .iter()
        .find(|r| r["status"] == "succeeded")
        .expect("a succeeded release");
    for svc in ["api", "web"] {
        assert_eq!(
            stack.running_image(svc),
            live["services"][svc]["image_id"]
                .as_str()
                .unwrap_or_default(),
            "{case}: {svc} does not run the live release {}",
            live["id"]
        );
    }
    let mut lost = 0;
    for r in h.iter().filter(|r| r["status"] == "succeeded") {
        for svc in ["api", "web"] {
            let id = r["services"][svc]["image_id"].as_str().unwrap_or_default();
            if image_id(id).is_none() {
                lost += 1;
            }
        }
    }
    assert_eq!(lost, 0, "{case}: retained release images were lost");
    let status = stack.slipway(&["status", "--json"]).json();
    assert!(status["locked"].is_null(), "{case}: lock still held");
    assert!(status["unfinished"].is_null(), "{case}: unfinished release");
    if !status["rollback"].is_null() {
        assert_eq!(
            status["rollback_images_present"], true,
            "{case}: rollback images missing"
        );
    }
    lost
}

fn killed(run: &crate::harness::Run) -> bool {
    run.code == -1 && run.stderr.contains("SIGKILL")
}

/// Deploy v1 (and v2 when `deployed_v2`), then run `args` with the failpoint armed.
fn kill_case(name: &str, point: &str, args: &[&str], broken_v2: bool, deployed_v2: bool) {
    let stack = Stack::new(name);
    stack.publish_good("v1");
    let mut v2 = App::new("v2");
    v2.smoke_ok = !broken_v2;
    stack.publish("api", "v2", v2);
    stack.publish("web", "v2", App::new("v2"));
    assert_eq!(stack.deploy("v1").code, 0);
    if deployed_v2 {
        assert_eq!(stack.deploy("v2").code, 0);
    }
    let case = format!("{} at {point}", args[0]);
    let run = stack.slipway_env(args, &[("SLIPWAY_FAILPOINT", point)]);
    assert!(
        killed(&run),
        "{case}: expected the failpoint to kill slipway: {}",
        run.stderr
    );

    // The next deploy refuses until recover has run, when the kill left a release open.
    let h: Vec<Value> = stack.history();
    if h[0]["status"] == "in_progress" {
        let refused = stack.deploy("v2");
        assert_eq!(refused.code, 2, "{case}: {}", refused.stderr);
        assert!(
            refused.stderr.contains("slipway recover"),
            "{}",
            refused.stderr
        );
    }
    let rec = stack.slipway(&["recover"]);
    assert_eq!(rec.code, 0, "{case}: recover failed: {}", rec.stderr);
    let lost = assert_recovered(&stack, &case);
    // Idempotent.
    let again = stack.slipway(&["recover", "--json"]);
    assert_eq!(again.code, 0);
    assert_eq!(
        again.json()["recovered"],
        false,
        "{case}: second recover did something"
    );
    let live = stack
        .history()
        .into_iter()
        .find(|r| r["status"] == "succeeded")
        .expect("live");
    eprintln!(
        "FAULT kill {case}: recovered, live release {} ({}), images lost {lost}",
        live["id"], live["tag"]
    );
}

macro_rules! kill_points {
    ($($test:ident: $point:expr, $args:expr, broken = $broken:expr, v2 = $v2:expr;)*) => {$(
        #[test]
        fn $test() {
            kill_case(stringify!($test), $point, $args, $broken, $v2);
        }
    )*};
}

kill_points! {
    kd_preflight: "preflight:after", &["deploy", "--tag", "v2"], broken = false, v2 = false;
    kd_begin: "begin:after", &["deploy", "--tag", "v2"], broken = false, v2 = false;
    kd_pull_mid: "pull:during", &["deploy", "--tag", "v2"], broken = false, v2 = false;
    kd_pull: "pull:after", &["deploy", "--tag", "v2"], broken = false, v2 = false;
    kd_pin: "pin:after", &["deploy", "--tag", "v2"], broken = false, v2 = false;
    kd_dependencies: "dependencies:after", &["deploy", "--tag", "v2"], broken = false, v2 = false;
    kd_rollout_mid: "rollout:between", &["deploy", "--tag", "v2"], broken = false, v2 = false;
    kd_rollout: "rollout:after", &["deploy", "--tag", "v2"], broken = false, v2 = false;
    kd_health_mid: "health:during", &["deploy", "--tag", "v2"], broken = false, v2 = false;
    kd_health: "health:after", &["deploy", "--tag", "v2"], broken = false, v2 = false;
    kd_smoke: "smoke:after", &["deploy", "--tag", "v2"], broken = false, v2 = false;
    kd_commit: "commit:after", &["deploy", "--tag", "v2"], broken = false, v2 = false;
    kd_restore_mid: "restore:during", &["deploy", "--tag", "v2"], broken = true, v2 = false;
    kd_broken_health: "health:after", &["deploy", "--tag", "v2"], broken = true, v2 = false;
    kr_preflight: "preflight:after", &["rollback"], broken = false, v2 = true;
    kr_images: "pull:after", &["rollback"], broken = false, v2 = true;
    kr_pin: "pin:after", &["rollback"], broken = false, v2 = true;
    kr_rollout_mid: "rollout:between", &["rollback"], broken = false, v2 = true;
    kr_health_mid: "health:during", &["rollback"], broken = false, v2 = true;
    kr_smoke: "smoke:after", &["rollback"], broken = false, v2 = true;
    kr_commit: "commit:after", &["rollback"], broken = false, v2 = true;
}
