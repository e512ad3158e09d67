//! Unmanaged services that deployed ones `depends_on` (issue 14): on a fresh
//! host slipway starts them and honours the condition before rolling the
//! service that needs them; one that runs is never recreated; one that cannot
//! meet its condition stops the deploy before anything it deploys changes.

use slipway::fixture::BASE_IMAGE;

use crate::harness::{docker, Stack};

/// The stack's compose file with an unmanaged `db` that api needs healthy.
/// `db` is healthy once `/tmp/ready` exists (the test decides when: failures
/// before it do not count, within `start_period`), or with `healthcheck =
/// "false"` unhealthy after its first check.
fn with_db(stack: &Stack, healthcheck: &str, start_period: &str) {
    let path = stack.path().join("docker-compose.yml");
    let compose = std::fs::read_to_string(&path).expect("compose file");
    let compose = compose.replace(
        "    depends_on: [cache]\n",
        "    depends_on:\n      db: {condition: service_healthy}\n      cache: {condition: service_started}\n",
    ) + &format!(
        r#"  db:
    image: {BASE_IMAGE}
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1 & wait $$!; done"]
    healthcheck:
      test: ["CMD-SHELL", "{healthcheck}"]
      interval: 1s
      timeout: 2s
      retries: 1
      start_period: {start_period}
"#
    );
    std::fs::write(path, compose).expect("write compose file");
}

fn health(container: &str) -> String {
    docker(&["inspect", "--format", "{{.State.Health.Status}}", container]).1
}

#[test]
fn a_fresh_host_starts_the_database_and_waits_until_it_is_healthy() {
    let stack = Stack::new("depsfresh");
    let (api1, _) = stack.publish_good("v1");
    let (api2, _) = stack.publish_good("v2");
    with_db(&stack, "test -f /tmp/ready", "10m");

    let run = stack.spawn(&["deploy", "--tag", "v1"], &[]);
    // db was started and cannot be healthy until the test says so: api must not exist yet.
    stack.wait_until(
        "the deploy to start db",
        std::time::Duration::from_secs(120),
        || {
            stack
                .container("db")
                .is_some_and(|c| health(&c) == "starting")
        },
    );
    let db = stack.container("db").expect("db");
    assert_eq!(
        stack.container("api"),
        None,
        "api rolled before db was healthy"
    );
    assert!(
        docker(&["exec", &db, "touch", "/tmp/ready"]).0,
        "mark db ready"
    );
    let (code, err) = run.finish();
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("db started, healthy"), "{err}");
    assert!(err.contains("cache started, running"), "{err}");
    assert_eq!(stack.running_image("api"), api1);
    assert_eq!(health(&db), "healthy");
    let cache = stack.container("cache").expect("cache was started");

    // Running dependencies are never recreated or restarted.
    let started_at = |c: &str| docker(&["inspect", "--format", "{{.State.StartedAt}}", c]).1;
    let (db_started, cache_started) = (started_at(&db), started_at(&cache));
    let run = stack.deploy("v2");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("cache running, db healthy"),
        "{}",
        run.stderr
    );
    assert_eq!(stack.running_image("api"), api2);
    assert_eq!(stack.container("db"), Some(db.clone()));
    assert_eq!(stack.container("cache"), Some(cache.clone()));
    assert_eq!(
        (started_at(&db), started_at(&cache)),
        (db_started.clone(), cache_started)
    );

    // A rollback leaves them alone too.
    let back = stack.slipway(&["rollback"]);
    assert_eq!(back.code, 0, "{}", back.stderr);
    assert_eq!(stack.running_image("api"), api1);
    assert_eq!(stack.container("db"), Some(db.clone()));
    assert_eq!(started_at(&db), db_started);
}

#[test]
fn a_dependency_that_never_gets_healthy_stops_the_deploy_with_exit_2() {
    let stack = Stack::new("depsbad");
    stack.publish_good("v1");
    with_db(&stack, "false", "0s");

    let run = stack.deploy("v1");
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("db (needed by api with service_healthy) is unhealthy")
            && run.stderr.contains("nothing slipway deploys was changed"),
        "{}",
        run.stderr
    );
    assert_eq!(stack.container("api"), None);
    assert_eq!(stack.container("web"), None);
    let h = stack.history();
    assert_eq!(h[0]["status"], "aborted", "{h:?}");
    // Nothing is left open: the next attempt needs no `recover`.
    let status = stack.slipway(&["status", "--json"]).json();
    assert!(status["unfinished"].is_null() && status["locked"].is_null());
}
