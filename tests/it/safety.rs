//! Locks: a second run while one deploys exits 4 and names the holder.

use crate::harness::Stack;

/// The first deploy is held at a pause point while it holds the lock, so
/// the second one certainly meets it, however slow the machine.
fn hold_first(stack: &Stack, tag: &str) -> crate::harness::Background {
    let resume = stack.resume_file();
    let first = stack.spawn(
        &["deploy", "--tag", tag],
        &[
            ("SLIPWAY_PAUSE", "pin:after"),
            ("SLIPWAY_RESUME", &resume.to_string_lossy()),
        ],
    );
    first.wait_for("failpoint pin:after: paused");
    first
}

#[test]
fn a_second_deploy_while_one_runs_exits_4() {
    let stack = Stack::new("lock");
    stack.publish_good("v1");
    stack.publish_good("v2");
    assert_eq!(stack.deploy("v1").code, 0);

    let first = hold_first(&stack, "v2");
    let second = stack.deploy("v2");
    assert_eq!(second.code, 4, "{}", second.stderr);
    assert!(
        second.stderr.contains(&format!("pid {}", first.child.id())),
        "{}",
        second.stderr
    );
    std::fs::write(stack.resume_file(), "").expect("resume");
    let (code, err) = first.finish();
    assert_eq!(code, 0, "{err}");
    // Lock released at the end: the next run gets it.
    assert!(stack.slipway(&["status", "--json"]).json()["locked"].is_null());
}

#[test]
fn wait_queues_behind_a_running_deploy() {
    let stack = Stack::new("lockwait");
    stack.publish_good("v1");
    let (api2, _) = stack.publish_good("v2");

    let first = hold_first(&stack, "v1");
    let second = stack.spawn(&["deploy", "--tag", "v2", "--wait", "2m"], &[]);
    second.wait_for("waiting up to 2m for the lock");
    std::fs::write(stack.resume_file(), "").expect("resume");
    let (code, err) = first.finish();
    assert_eq!(code, 0, "{err}");
    let (code, err) = second.finish();
    assert_eq!(code, 0, "{err}");
    assert_eq!(stack.running_image("api"), api2);
    let h = stack.history();
    assert_eq!(
        (h[0]["tag"].as_str(), h[1]["tag"].as_str()),
        (Some("v2"), Some("v1"))
    );
}
