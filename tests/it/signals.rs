//! Signals and external faults: SIGTERM mid-deploy, a container killed during
//! the health wait, the registry gone, a Docker daemon that answers errors.

use std::io::{Read, Write};
use std::time::Duration;

use slipway::fixture::{self, App, Registry};

use crate::harness::{docker, Stack};

/// v2 whose api takes 5 s to boot; returns its image ID.
fn slow_v2(stack: &Stack) -> String {
    let mut slow = App::new("v2");
    slow.boot_delay = 5;
    let id = stack.publish("api", "v2", slow);
    stack.publish("web", "v2", App::new("v2"));
    id
}

/// Until the new (slow-booting) api container runs and is still starting.
fn wait_for_health_step(stack: &Stack, new_api: &str) {
    stack.wait_until(
        "the deploy to reach its health wait",
        Duration::from_secs(60),
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
    let stack = Stack::new("sigterm");
    let (api1, web1) = stack.publish_good("v1");
    let new_api = slow_v2(&stack);
    assert_eq!(stack.deploy("v1").code, 0);
    let mut child = stack.spawn_deploy("v2");
    wait_for_health_step(&stack, &new_api);
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().expect("wait");
    let mut err = String::new();
    child.stderr.take().map(|mut e| e.read_to_string(&mut err));
    assert_eq!(status.code(), Some(1), "{err}");
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

#[test]
fn a_second_signal_exits_at_once_and_recover_finishes() {
    let stack = Stack::new("sigtwice");
    let (api1, _) = stack.publish_good("v1");
    let new_api = slow_v2(&stack);
    assert_eq!(stack.deploy("v1").code, 0);
    let mut child = stack.spawn_deploy("v2");
    wait_for_health_step(&stack, &new_api);
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    std::thread::sleep(Duration::from_millis(50));
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().expect("wait");
    // Either the second signal cut the rollback short (130) or the rollback had already finished (1).
    assert!(matches!(status.code(), Some(130) | Some(1)), "{status:?}");
    let rec = stack.slipway(&["recover"]);
    assert_eq!(rec.code, 0, "{}", rec.stderr);
    assert_eq!(stack.running_image("api"), api1);
    assert!(stack.history().iter().all(|r| r["status"] != "in_progress"));
    eprintln!(
        "FAULT signal SIGTERM twice: exit {:?}, recovered",
        status.code()
    );
}

#[test]
fn a_container_killed_during_the_health_wait_is_rolled_back() {
    let stack = Stack::new("killed");
    let (api1, web1) = stack.publish_good("v1");
    let new_api = slow_v2(&stack);
    assert_eq!(stack.deploy("v1").code, 0);
    let mut child = stack.spawn_deploy("v2");
    wait_for_health_step(&stack, &new_api);
    let api = stack.container("api").expect("api");
    docker(&["kill", &api]);
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(1));
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
