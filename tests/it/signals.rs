//! Signals and external faults: SIGTERM mid-deploy, a container killed during
//! the health wait, the registry gone, a Docker daemon that answers errors.

use std::io::{Read, Write};
use std::time::Duration;

use slipway::fixture::{self, App, Registry};

use crate::harness::{docker, Stack};

/// v2 whose api never becomes ready while the test runs (it boots for an
/// hour, and the health timeout is longer): only the test's signal or kill
/// ends its health wait, however slow the machine. Returns its image ID.
fn never_ready_v2(stack: &mut Stack) -> String {
    stack.health_timeout = "30m".into();
    stack.write();
    let mut slow = App::new("v2");
    slow.boot_delay = 3600;
    let id = stack.publish("api", "v2", slow);
    stack.publish("web", "v2", App::new("v2"));
    id
}

/// Until the new api container runs and is still starting (the deploy is in its health wait).
fn wait_for_health_step(stack: &Stack, new_api: &str) {
    stack.wait_until(
        "the deploy to reach its health wait",
        Duration::from_secs(120),
        || {
            stack.containers("api").iter().any(|c| {
                let (_, out) = docker(&[
                    "inspect",
                    "--format",
                    "{{.Image}} {{.State.Health.Status}}",
                    c,
                ]);
                out == format!("{new_api} starting")
            })
        },
    );
}

#[test]
fn sigterm_mid_deploy_rolls_back_and_exits_1() {
    let mut stack = Stack::new("sigterm");
    let (api1, web1) = stack.publish_good("v1");
    let new_api = never_ready_v2(&mut stack);
    assert_eq!(stack.deploy("v1").code, 0);
    let run = stack.spawn(&["deploy", "--tag", "v2"], &[]);
    wait_for_health_step(&stack, &new_api);
    run.signal(libc::SIGTERM);
    let (code, err) = run.finish();
    assert_eq!(code, 1, "{err}");
    assert_eq!(stack.running_image("api"), api1);
    assert_eq!(stack.running_image("web"), web1);
    let h = stack.history();
    assert_eq!(h[0]["status"], "rolled_back");
    assert!(
        h[0]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("interrupted by a signal"),
        "{:?}",
        h[0]
    );
    let status = stack.slipway(&["status", "--json"]).json();
    assert!(status["locked"].is_null());
    eprintln!("FAULT signal SIGTERM during health wait: rolled back, exit 1");
}

/// Issue 15: two SIGTERMs during v2's health wait, the second before the run
/// journaled its rollback (held there by a pause point, so the order is
/// certain). v2's images run and would pass; `recover` must still put v1
/// back, because the operator said no.
#[test]
fn a_second_signal_exits_at_once_and_recover_finishes() {
    let mut stack = Stack::new("sigtwice");
    let (api1, web1) = stack.publish_good("v1");
    let new_api = never_ready_v2(&mut stack);
    assert_eq!(stack.deploy("v1").code, 0);
    let run = stack.spawn(
        &["deploy", "--tag", "v2"],
        &[("SLIPWAY_PAUSE", "restore:before")],
    );
    wait_for_health_step(&stack, &new_api);
    run.signal(libc::SIGTERM);
    run.wait_for("failpoint restore:before: paused");
    run.signal(libc::SIGTERM);
    let (code, err) = run.finish();
    assert_eq!(code, 130, "{err}");
    assert!(err.contains("second signal: exiting now"), "{err}");
    assert_eq!(stack.history()[0]["status"], "in_progress");

    let rec = stack.slipway(&["recover"]);
    assert_eq!(rec.code, 0, "{}", rec.stderr);
    assert!(
        rec.stderr.contains("stopped by the operator's signal")
            && rec
                .stderr
                .contains("roll back to the last succeeded release"),
        "{}",
        rec.stderr
    );
    assert_eq!(stack.running_image("api"), api1);
    assert_eq!(stack.running_image("web"), web1);
    let h = stack.history();
    assert_eq!(h[0]["status"], "rolled_back", "{:?}", h[0]);
    assert!(
        h[0]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("stopped by a signal"),
        "{:?}",
        h[0]
    );
    assert_eq!(h[1]["status"], "succeeded");
    eprintln!("FAULT signal SIGTERM twice: exit 130, recover restored the previous release");
}

/// A signal before anything running changed: the release is aborted and
/// v1's containers are the very same ones.
#[test]
fn a_signal_before_the_rollout_changes_nothing() {
    let stack = Stack::new("sigearly");
    let (api1, _) = stack.publish_good("v1");
    stack.publish_good("v2");
    assert_eq!(stack.deploy("v1").code, 0);
    let before = (stack.container("api"), stack.container("web"));
    let run = stack.spawn(
        &["deploy", "--tag", "v2"],
        &[
            ("SLIPWAY_PAUSE", "pin:after"),
            ("SLIPWAY_RESUME", &stack.resume_file().to_string_lossy()),
        ],
    );
    run.wait_for("failpoint pin:after: paused");
    run.signal(libc::SIGTERM);
    run.wait_for("signal received");
    std::fs::write(stack.resume_file(), "").expect("resume");
    let (code, err) = run.finish();
    assert_eq!(code, 1, "{err}");
    assert_eq!((stack.container("api"), stack.container("web")), before);
    assert_eq!(stack.running_image("api"), api1);
    assert_eq!(stack.history()[0]["status"], "aborted");
    eprintln!("FAULT signal SIGTERM before rollout: aborted, nothing changed");
}

#[test]
fn a_container_killed_during_the_health_wait_is_rolled_back() {
    let mut stack = Stack::new("killed");
    let (api1, web1) = stack.publish_good("v1");
    let new_api = never_ready_v2(&mut stack);
    assert_eq!(stack.deploy("v1").code, 0);
    let run = stack.spawn(&["deploy", "--tag", "v2"], &[]);
    wait_for_health_step(&stack, &new_api);
    let api = stack.container("api").expect("api");
    docker(&["kill", &api]);
    let (code, err) = run.finish();
    assert_eq!(code, 1, "{err}");
    assert_eq!(stack.running_image("api"), api1);
    assert_eq!(stack.running_image("web"), web1);
    let reason = stack.history()[0]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(reason.contains("exited"), "{reason}");
    eprintln!("FAULT container killed during health wait: rolled back, exit 1");
}

#[test]
fn the_registry_gone_changes_nothing() {
    let stack = Stack::new("noregistry");
    let (api1, _) = stack.publish_good("v1");
    assert_eq!(stack.deploy("v1").code, 0);
    let before = (stack.container("api"), stack.container("web"));
    // A second registry that holds v2, then dies before the deploy pulls from it.
    let rt = crate::harness::runtime();
    let reg = Registry::start().expect("registry");
    let repo = format!("{}/{}/api", reg.addr, stack.name);
    rt.block_on(async {
        let d = slipway::engine::Docker::connect().await.expect("docker");
        fixture::publish(&d, App::new("v2"), &repo, "v2")
            .await
            .expect("publish");
    });
    let config = std::fs::read_to_string(stack.config_path()).expect("config");
    std::fs::write(
        stack.config_path(),
        config.replace(
            "[services.api]\n",
            &format!("[services.api]\nimage = \"{repo}\"\n"),
        ),
    )
    .expect("write");
    drop(reg);
    let run = stack.deploy("v2");
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!((stack.container("api"), stack.container("web")), before);
    assert_eq!(stack.running_image("api"), api1);
    assert_eq!(stack.history()[0]["status"], "aborted");
    let _ = docker(&["rmi", "--force", &format!("{repo}:v2")]);
    eprintln!("FAULT registry down at pull: exit 2, nothing changed");
}

#[test]
fn a_docker_daemon_answering_errors_is_a_clear_exit_2() {
    let stack = Stack::new("dockererr");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let mut conn = conn;
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let body = r#"{"message":"simulated daemon failure"}"#;
            let _ = write!(
                conn,
                "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let run = stack.slipway_env(
        &["deploy", "--tag", "v1"],
        &[("DOCKER_HOST", &format!("tcp://{addr}"))],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("Docker"), "{}", run.stderr);
    assert!(stack.container("api").is_none());
    eprintln!("FAULT docker daemon answering 500: exit 2, nothing changed");
}
