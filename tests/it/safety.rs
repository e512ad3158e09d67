//! Locks: a second run while one deploys exits 4 and names the holder.

use slipway::fixture::App;

use crate::harness::Stack;

#[test]
fn a_second_deploy_while_one_runs_exits_4() {
    let stack = Stack::new("lock");
    stack.publish_good("v1");
    let mut slow = App::new("v2");
    slow.boot_delay = 6;
    stack.publish("api", "v2", slow);
    stack.publish("web", "v2", App::new("v2"));
    assert_eq!(stack.deploy("v1").code, 0);

    let mut first = stack.spawn_deploy("v2");
    stack.wait_for_lock();
    let second = stack.deploy("v2");
    assert_eq!(second.code, 4, "{}", second.stderr);
    assert!(
        second.stderr.contains(&format!("pid {}", first.id())),
        "{}",
        second.stderr
    );
    let status = first.wait().expect("wait");
    assert_eq!(status.code(), Some(0));
    // Lock released at the end: the next run gets it.
    assert!(stack.slipway(&["status", "--json"]).json()["locked"].is_null());
}

#[test]
fn wait_queues_behind_a_running_deploy() {
    let stack = Stack::new("lockwait");
    stack.publish_good("v1");
    let mut slow = App::new("v2");
    slow.boot_delay = 4;
    let api2 = stack.publish("api", "v2", slow);
    stack.publish("web", "v2", App::new("v2"));

    let mut first = stack.spawn_deploy("v1");
    stack.wait_for_lock();
    let second = stack.slipway(&["deploy", "--tag", "v2", "--wait", "2m"]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(
        second.stderr.contains("waiting up to 2m for the lock"),
        "{}",
        second.stderr
    );
    assert_eq!(first.wait().expect("wait").code(), Some(0));
    assert_eq!(stack.running_image("api"), api2);
    let h = stack.history();
    assert_eq!(
        (h[0]["tag"].as_str(), h[1]["tag"].as_str()),
        (Some("v2"), Some("v1"))
    );
}
