//! The way back in the real world (issues 14 and 15): projects and
//! environments sharing image repositories on one engine, distinct releases
//! in `keep_releases`, an aborted deploy, drift, an unwritable state folder.

use serde_json::Value;

use crate::harness::{docker, image_id, Stack};

fn history(stack: &Stack, env: &str) -> Vec<Value> {
    let run = stack.slipway(&["history", "--env", env, "--json"]);
    assert_eq!(run.code, 0, "history: {}", run.stderr);
    run.json().as_array().cloned().expect("array")
}

fn deploy(stack: &Stack, env: &str, tag: &str) {
    let run = stack.slipway(&["deploy", "--env", env, "--tag", tag]);
    assert_eq!(run.code, 0, "deploy {env} {tag}: {}", run.stderr);
}

/// (api, web) image IDs of a release in history JSON.
fn ids(release: &Value) -> (String, String) {
    let id = |svc: &str| {
        release["services"][svc]["image_id"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    (id("api"), id("web"))
}

/// The last `keep` distinct succeeded releases, newest first (what a user
/// was promised stays on the host).
fn retained(history: &[Value], keep: usize) -> Vec<Value> {
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for r in history.iter().filter(|r| r["status"] == "succeeded") {
        let images = ids(r);
        if !seen.contains(&images) {
            seen.push(images);
            if seen.len() > keep {
                break;
            }
            out.push(r.clone());
        }
    }
    out
}

/// The namespaced way-back tag of one (project, env) for a service.
fn way_back(stack: &Stack, env: &str, service: &str) -> String {
    format!(
        "{}:slipway-{}.{env}-rollback",
        stack.repo(service),
        stack.name
    )
}

/// Every retained release of `env` still has its images, and the
/// namespaced way-back tag names the release before the live one.
fn assert_way_back_intact(stack: &Stack, env: &str, keep: usize) {
    let h = history(stack, env);
    for r in retained(&h, keep) {
        let (api, web) = ids(&r);
        assert!(
            image_id(&api).is_some() && image_id(&web).is_some(),
            "{} {env}: images of retained release {} are gone",
            stack.name,
            r["id"]
        );
    }
    let status = stack.slipway(&["status", "--env", env, "--json"]).json();
    let (api, web) = ids(&status["rollback"]);
    assert_eq!(
        image_id(&way_back(stack, env, "api")),
        Some(api),
        "{env}: api way back"
    );
    assert_eq!(
        image_id(&way_back(stack, env, "web")),
        Some(web),
        "{env}: web way back"
    );
}

#[test]
fn projects_and_environments_sharing_repositories_keep_each_ones_way_back() {
    // A: one project, environments `test` and `prod` (same containers).
    let mut a = Stack::new("share-a");
    a.keep_releases = 2;
    a.extra_config = format!(
        "\n[environments.prod]\nurl = \"http://127.0.0.1:{}\"\n",
        a.port
    );
    a.write();
    // B: another project in another folder, the same repositories.
    let mut b = Stack::sharing("share-b", &a);
    b.keep_releases = 2;
    b.write();
    let tags = ["v1", "v2", "v3", "v4", "v5", "v6"];
    let published: Vec<(String, String)> = tags.iter().map(|t| a.publish_good(t)).collect();

    for t in ["v1", "v2", "v3"] {
        deploy(&a, "test", t);
    }
    deploy(&b, "test", "v4");
    deploy(&a, "prod", "v5");
    deploy(&b, "test", "v5");
    deploy(&b, "test", "v6");
    deploy(&a, "test", "v4");
    deploy(&a, "prod", "v6");

    assert_way_back_intact(&a, "test", 2);
    assert_way_back_intact(&a, "prod", 2);
    assert_way_back_intact(&b, "test", 2);
    // `:rollback` stays with its first user (A test), at A test's way back
    // (v3), not moved by B or by A's other environment.
    assert_eq!(
        image_id(&format!("{}:rollback", a.repo("api"))),
        Some(published[2].0.clone())
    );

    // `status` says which tags are each one's way back.
    let tags_of = |stack: &Stack, env: &str| {
        stack.slipway(&["status", "--env", env, "--json"]).json()["way_back_tags"].clone()
    };
    let own = |stack: &Stack, env: &str| format!("slipway-{}.{env}-rollback", stack.name);
    assert_eq!(
        tags_of(&a, "test"),
        serde_json::json!([own(&a, "test"), "rollback"])
    );
    assert_eq!(tags_of(&a, "prod"), serde_json::json!([own(&a, "prod")]));
    assert_eq!(tags_of(&b, "test"), serde_json::json!([own(&b, "test")]));

    // Every retained release of each can be rolled back to by ID.
    for (stack, env) in [(&a, "test"), (&b, "test"), (&a, "prod")] {
        let h = history(stack, env);
        let oldest = retained(&h, 2).pop().expect("a retained release");
        let id = oldest["id"].as_i64().unwrap_or(0).to_string();
        let run = stack.slipway(&["rollback", "--env", env, "--to", &id]);
        assert_eq!(run.code, 0, "{} {env} → {id}: {}", stack.name, run.stderr);
        let (api, web) = ids(&oldest);
        assert_eq!(stack.running_image("api"), api);
        assert_eq!(stack.running_image("web"), web);
    }
    assert_way_back_intact(&a, "test", 2);
    assert_way_back_intact(&a, "prod", 2);
    assert_way_back_intact(&b, "test", 2);

    // The dry run says who holds what, and B never plans to delete A's.
    let run = b.slipway(&["prune", "--dry-run", "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let plan = run.json();
    let a_needs: Vec<String> = ["test", "prod"]
        .iter()
        .flat_map(|e| retained(&history(&a, e), 2))
        .flat_map(|r| {
            let (api, web) = ids(&r);
            [api, web]
        })
        .collect();
    for d in plan["delete"].as_array().cloned().unwrap_or_default() {
        let id = d["id"].as_str().unwrap_or_default().to_string();
        assert!(!a_needs.contains(&id), "B would delete A's {id}: {d}");
    }
}

/// Rewrite a stack's tags as slipway wrote them before namespacing:
/// `slipway-<env>-<id>` release tags, no namespaced way-back or holder tag.
fn as_before_upgrade(stack: &Stack, env: &str) {
    let (_, list) = docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    let prefix = format!("slipway-{}.{env}-", stack.name);
    for name in list.lines() {
        let Some((repo, tag)) = name.rsplit_once(':') else {
            continue;
        };
        if !repo.starts_with(&stack.repo_base) {
            continue;
        }
        if let Some(rest) = tag.strip_prefix(&prefix) {
            if rest.chars().all(|c| c.is_ascii_digit()) {
                assert!(docker(&["tag", name, &format!("{repo}:slipway-{env}-{rest}")]).0);
            }
            assert!(docker(&["rmi", name]).0, "untag {name}");
        }
    }
}

#[test]
fn tags_of_the_old_scheme_keep_working_after_an_upgrade() {
    let mut a = Stack::new("upgrade-a");
    a.keep_releases = 2;
    a.write();
    let b = Stack::sharing("upgrade-b", &a);
    let v: Vec<(String, String)> = ["v1", "v2", "v3", "v4"]
        .iter()
        .map(|t| a.publish_good(t))
        .collect();
    assert_eq!(a.deploy("v1").code, 0);
    assert_eq!(a.deploy("v2").code, 0);
    as_before_upgrade(&a, "test");
    let rollback = format!("{}:rollback", a.repo("api"));
    assert_eq!(image_id(&rollback), Some(v[0].0.clone()));

    // Another project arrives on the upgraded slipway: A's old tags are not its.
    assert_eq!(b.deploy("v3").code, 0);
    assert_eq!(
        image_id(&v[0].0),
        Some(v[0].0.clone()),
        "B pruned A's way back"
    );
    assert_eq!(
        image_id(&rollback),
        Some(v[0].0.clone()),
        "B moved A's :rollback"
    );

    // A upgrades: its old tags are its own, `:rollback` is still its.
    assert_eq!(a.deploy("v4").code, 0);
    assert_eq!(image_id(&rollback), Some(v[1].0.clone()));
    assert_eq!(image_id(&way_back(&a, "test", "api")), Some(v[1].0.clone()));
    // v1 was A's alone and is no longer retained: gone. B's live v3 stays.
    assert_eq!(image_id(&v[0].0), None);
    assert_eq!(image_id(&v[2].0), Some(v[2].0.clone()));
    let run = a.slipway(&["rollback"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(a.running_image("api"), v[1].0);
    assert_eq!(b.running_image("api"), v[2].0);
}

#[test]
fn keep_releases_counts_distinct_releases() {
    let mut stack = Stack::new("distinct");
    stack.keep_releases = 3;
    stack.write();
    let v1 = stack.publish_good("v1");
    for t in ["v2", "v6"] {
        stack.publish_good(t);
    }
    for t in ["v1", "v2", "v6"] {
        assert_eq!(stack.deploy(t).code, 0, "deploy {t}");
    }
    let r1 = history(&stack, "test")
        .last()
        .and_then(|r| r["id"].as_i64())
        .unwrap_or(0);
    let run = stack.slipway(&["rollback"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // Release 2 again is not a fourth release: release 1 is still kept.
    let run = stack.slipway(&["rollback", "--to", &r1.to_string()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(stack.running_image("api"), v1.0);
    assert_eq!(stack.running_image("web"), v1.1);
}

#[test]
fn a_deploy_aborted_after_pin_leaves_the_way_back_where_it_was() {
    let mut stack = Stack::new("abortpin");
    stack.extra_config =
        "\n[[hooks.pre_deploy]]\nname = \"gate\"\ncommand = [\"sh\", \"-c\", \"test ! -e closed\"]\n"
            .into();
    stack.write();
    let v1 = stack.publish_good("v1");
    stack.publish_good("v2");
    stack.publish_good("v3");
    assert_eq!(stack.deploy("v1").code, 0);
    assert_eq!(stack.deploy("v2").code, 0);
    let rollback = format!("{}:rollback", stack.repo("api"));
    assert_eq!(image_id(&rollback), Some(v1.0.clone()));

    std::fs::write(stack.path().join("closed"), "").expect("gate");
    let run = stack.deploy("v3");
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(history(&stack, "test")[0]["status"], "aborted");
    assert_eq!(image_id(&rollback), Some(v1.0.clone()));
    assert_eq!(
        image_id(&format!("{}:rollback", stack.repo("web"))),
        Some(v1.1.clone())
    );
    assert_eq!(
        image_id(&way_back(&stack, "test", "api")),
        Some(v1.0.clone())
    );
}

#[test]
fn drift_is_flagged_by_status_and_warned_by_deploy() {
    let stack = Stack::new("drift");
    let v1 = stack.publish_good("v1");
    let v2 = stack.publish_good("v2");
    stack.publish_good("v3");
    assert_eq!(stack.deploy("v1").code, 0);
    assert_eq!(stack.deploy("v2").code, 0);
    // Another tool: plain compose recreates api from the compose file (v1).
    let (ok, err) = stack.compose(&["up", "--detach", "--no-deps", "--", "api"]);
    assert!(ok, "{err}");
    assert_eq!(stack.running_image("api"), v1.0);

    let status = stack.slipway(&["status", "--json"]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    let drift = status.json()["drift"].clone();
    assert_eq!(drift.as_array().map(Vec::len), Some(1), "{drift}");
    assert_eq!(drift[0]["service"], "api");
    assert_eq!(drift[0]["expected_image_id"], v2.0.as_str());
    assert_eq!(drift[0]["running_image_ids"][0], v1.0.as_str());
    let human = stack.slipway(&["status"]);
    assert!(human.stdout.contains("DRIFT"), "{}", human.stdout);

    let run = stack.deploy("v3");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("drift: api runs"),
        "no drift warning: {}",
        run.stderr
    );
    // The way back is the last release that passed, not what ran.
    assert_eq!(
        image_id(&format!("{}:rollback", stack.repo("api"))),
        Some(v2.0.clone())
    );
    // And the drift is on record in the release's journal.
    let id = history(&stack, "test")[0]["id"].as_i64().unwrap_or(0);
    let state = slipway::state::State::open(&stack.path().join(".slipway")).expect("state");
    let journal = state.journal_of(id).expect("journal");
    assert!(
        journal
            .iter()
            .any(|e| e.step == slipway::state::Step::Drift && e.detail.contains("api")),
        "{journal:?}"
    );
}

#[test]
fn an_unwritable_state_folder_is_named_with_its_cause() {
    let stack = Stack::new("rostate");
    // Run as an unprivileged user (root writes anywhere): the config folder
    // readable, `.slipway/` read-only.
    let state = stack.path().join(".slipway");
    std::fs::create_dir_all(&state).expect("state dir");
    let chmod = |p: &std::path::Path, mode: &str| {
        assert!(chmod_path(p, mode), "chmod {mode} {}", p.display());
    };
    chmod(stack.path(), "755");
    chmod(&state, "555");
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_slipway"))
        .arg("--config")
        .arg(stack.config_path())
        .args(["status"])
        .output()
        .expect("setpriv");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&state.join("state.db").display().to_string()),
        "no path: {stderr}"
    );
    assert!(stderr.contains("Permission denied"), "no cause: {stderr}");
    chmod(&state, "755");
}

fn chmod_path(path: &std::path::Path, mode: &str) -> bool {
    std::process::Command::new("chmod")
        .arg(mode)
        .arg(path)
        .status()
        .is_ok_and(|s| s.success())
}
