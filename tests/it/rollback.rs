//! Manual rollback and safe prune.

use slipway::fixture::App;

use crate::harness::{docker, image_id, Stack};

#[test]
fn rollback_and_rollback_to_run_the_exact_images_and_are_recorded() {
    let stack = Stack::new("rollback");
    let ids: Vec<(String, String)> = ["v1", "v2", "v3"]
        .iter()
        .map(|t| stack.publish_good(t))
        .collect();
    for t in ["v1", "v2", "v3"] {
        assert_eq!(stack.deploy(t).code, 0);
    }
    let before = stack.history();
    let (r1, r2) = (
        before[2]["id"].as_i64().unwrap_or(0),
        before[1]["id"].as_i64().unwrap_or(0),
    );

    let run = stack.slipway(&["rollback"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(stack.running_image("api"), ids[1].0);
    assert_eq!(stack.running_image("web"), ids[1].1);
    let h = stack.history();
    assert_eq!(h[0]["kind"], "rollback");
    assert_eq!(h[0]["status"], "succeeded");
    assert_eq!(h[0]["tag"], "v2");
    assert_eq!(h[0]["services"]["api"]["image_id"], ids[1].0.as_str());
    // :rollback now names v3, the release that was live before.
    assert_eq!(
        image_id(&format!("{}:rollback", stack.repo("api"))),
        Some(ids[2].0.clone())
    );

    let run = stack.slipway(&["rollback", "--to", &r1.to_string(), "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["kind"], "rollback");
    assert_eq!(stack.running_image("api"), ids[0].0);
    assert_eq!(stack.running_image("web"), ids[0].1);
    assert_eq!(
        stack.history()[0]["services"]["web"]["image_id"],
        ids[0].1.as_str()
    );

    // A release that never passed its checks is refused, nothing changes.
    let run = stack.slipway(&["rollback", "--to", "99999"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(stack.running_image("api"), ids[0].0);
    let _ = r2;
}

#[test]
fn prune_keeps_the_retained_releases_and_rollback_and_leaves_others_alone() {
    let mut stack = Stack::new("prune");
    stack.keep_releases = 2;
    stack.write();
    let tags = ["v1", "v2", "v3", "v4", "v5"];
    let ids: Vec<(String, String)> = tags.iter().map(|t| stack.publish_good(t)).collect();
    // An image slipway does not manage, and one in a managed repo's neighbourhood.
    let other_repo = format!("{}/{}/other", stack.registry, stack.name);
    let other = stack.publish("other", "keep", App::new("x"));
    docker(&["pull", &format!("{other_repo}:keep")]);
    for t in tags {
        assert_eq!(stack.deploy(t).code, 0, "deploy {t}");
    }
    let present = |id: &str| image_id(id).is_some();
    // Live (v5) and the way back (v4) stay: the last 2 succeeded releases.
    assert!(present(&ids[4].0) && present(&ids[4].1));
    assert!(present(&ids[3].0) && present(&ids[3].1));
    assert_eq!(
        image_id(&format!("{}:rollback", stack.repo("api"))),
        Some(ids[3].0.clone())
    );
    // Older release images are gone.
    for (api, web) in &ids[..3] {
        assert!(
            !present(api) && !present(web),
            "an old release image survived prune"
        );
    }
    assert!(
        present(&other),
        "prune removed an image slipway does not manage"
    );
    assert!(present(slipway::fixture::BASE_IMAGE));

    // On demand, nothing more to do; the dry run says why each image is kept.
    let run = stack.slipway(&["prune", "--dry-run", "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let plan = run.json();
    assert_eq!(plan["delete"].as_array().map(Vec::len), Some(0));
    assert!(plan["keep"].as_array().is_some_and(|k| k.len() >= 4));
}
