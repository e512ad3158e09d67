//! Notifications and hooks around real deploys: what a webhook receiver on
//! 127.0.0.1 is sent (event order and fields), what hooks see, and that an
//! unreachable or stalling receiver never fails a deploy nor leaks its URL.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use slipway::fixture::{self, App};

use crate::harness::{docker, Stack};

/// How the receiver treats a request.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Mode {
    /// Record it and answer 200.
    Ok,
    /// Accept the connection and never answer (until dropped, or 300 s).
    Stall,
}

/// The stand-in for Slack and a webhook consumer: records every POST by path.
pub(crate) struct Receiver {
    port: u16,
    posts: Arc<Mutex<Vec<(String, Value)>>>,
    connections: Arc<AtomicUsize>,
    /// Stalled connections that ran out their 300 s: a client that waited that long.
    outwaited: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Receiver {
    pub(crate) fn start(mode: Mode) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let posts = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let outwaited = Arc::new(AtomicUsize::new(0));
        let (p, c, s, o) = (
            posts.clone(),
            connections.clone(),
            stop.clone(),
            outwaited.clone(),
        );
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                c.fetch_add(1, Ordering::SeqCst);
                let (p, s, o) = (p.clone(), s.clone(), o.clone());
                std::thread::spawn(move || serve(stream, mode, &p, &s, &o));
            }
        });
        Receiver {
            port,
            posts,
            connections,
            outwaited,
            stop,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Bodies posted to `path`, in arrival order.
    pub(crate) fn bodies(&self, path: &str) -> Vec<Value> {
        self.posts
            .lock()
            .expect("lock")
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, b)| b.clone())
            .collect()
    }

    /// Events posted to `path` for one release.
    fn events(&self, path: &str, release: i64) -> Vec<Value> {
        self.bodies(path)
            .into_iter()
            .filter(|b| b["release"] == release)
            .collect()
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve(
    stream: TcpStream,
    mode: Mode,
    posts: &Mutex<Vec<(String, Value)>>,
    stop: &AtomicBool,
    outwaited: &AtomicUsize,
) {
    if mode == Mode::Stall {
        let started = Instant::now();
        while !stop.load(Ordering::SeqCst) {
            if started.elapsed() >= Duration::from_secs(300) {
                outwaited.fetch_add(1, Ordering::SeqCst);
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        drop(stream);
        return;
    }
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .to_string();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).is_err() || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0u8; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
    posts.lock().expect("lock").push((path, json));
    let mut stream = stream;
    let _ =
        stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
}

fn names(events: &[Value]) -> Vec<&str> {
    events.iter().filter_map(|e| e["event"].as_str()).collect()
}

/// `KEY=value` lines a hook wrote with `env | sort`.
fn hook_env(stack: &Stack, file: &str) -> std::collections::BTreeMap<String, String> {
    let text = std::fs::read_to_string(stack.path().join(file))
        .unwrap_or_else(|e| panic!("{file} was not written by the hook: {e}"));
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A host hook that records its `SLIPWAY_*` variables in `<point>.env`.
fn recording_hook(point: &str) -> String {
    format!(
        "[[hooks.{point}]]\ncommand = [\"sh\", \"-c\", \"env | grep ^SLIPWAY_ | sort > {point}.env\"]\n"
    )
}

const CHANNELS: &str = r#"
[notify]
timeout = "2s"

[notify.slack]
webhook_env = "SLIPWAY_T_SLACK"

[[notify.webhook]]
url_env = "SLIPWAY_T_HOOK"

[[notify.webhook]]
url_env = "SLIPWAY_T_ALERTS"
events = ["deploy_failed", "rollback_started", "rollback_succeeded", "rollback_failed"]
"#;

fn channel_env(r: &Receiver) -> Vec<(&'static str, String)> {
    vec![
        ("SLIPWAY_T_SLACK", r.url("/slack")),
        ("SLIPWAY_T_HOOK", r.url("/hook")),
        ("SLIPWAY_T_ALERTS", r.url("/alerts")),
    ]
}

fn run_with(stack: &Stack, args: &[&str], env: &[(&str, String)]) -> crate::harness::Run {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    stack.slipway_env(args, &env)
}

fn release_id(v: &Value) -> i64 {
    v["id"].as_i64().expect("release id")
}

#[test]
fn a_successful_deploy_is_announced_with_its_ci_context() {
    let receiver = Receiver::start(Mode::Ok);
    let mut stack = Stack::new("notify-ok");
    stack.extra_config = format!("{CHANNELS}{}", recording_hook("post_deploy"));
    stack.write();
    let (api1, web1) = stack.publish_good("v1");
    stack.publish_good("v2");

    let run = run_with(
        &stack,
        &[
            "deploy",
            "--tag",
            "v1",
            "--commit",
            "0123456789abcdef0123456789abcdef01234567",
            "--branch",
            "develop",
            "--run-url",
            "https://ci.example/acme/goodgo/runs/41",
        ],
        &channel_env(&receiver),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stderr.contains("warning"), "{}", run.stderr);
    let h = stack.history();
    let r1 = release_id(&h[0]);
    // History records where the deploy came from.
    assert_eq!(h[0]["commit"], "0123456789abcdef0123456789abcdef01234567");
    assert_eq!(h[0]["branch"], "develop");
    assert_eq!(h[0]["run_url"], "https://ci.example/acme/goodgo/runs/41");

    let events = receiver.events("/hook", r1);
    assert_eq!(names(&events), ["deploy_started", "deploy_succeeded"]);
    let (started, done) = (&events[0], &events[1]);
    for e in &events {
        assert_eq!(e["env"], "test");
        assert_eq!(e["project"], stack.name.as_str());
        assert_eq!(e["kind"], "deploy");
        assert_eq!(e["tag"], "v1");
        assert_eq!(e["commit"], "0123456789abcdef0123456789abcdef01234567");
        assert_eq!(e["branch"], "develop");
        assert_eq!(e["run_url"], "https://ci.example/acme/goodgo/runs/41");
        assert!(e["reason"].is_null(), "{e}");
        assert!(e["at"].as_str().is_some_and(|a| a.ends_with('Z')), "{e}");
    }
    assert_eq!(started["status"], "in_progress");
    assert_eq!(
        started["services"]["api"]["image"],
        format!("{}:v1", stack.repo("api"))
    );
    assert!(started["services"]["api"]["image_id"].is_null());
    assert_eq!(done["status"], "succeeded");
    assert_eq!(done["services"]["api"]["image_id"], api1.as_str());
    assert_eq!(done["services"]["web"]["image_id"], web1.as_str());
    assert!(
        done["duration_s"].as_f64().is_some_and(|d| d > 0.0),
        "{done}"
    );

    // Slack: the same two events, readable.
    let slack = receiver.bodies("/slack");
    assert_eq!(slack.len(), 2, "{slack:?}");
    assert_eq!(
        slack[1]["text"],
        format!("✅ Deployed v1 to test (release {r1})")
    );
    let message = slack[1].to_string();
    for needle in [
        "*Environment*\\ntest",
        "*Tag*\\n`v1`",
        "*Commit*\\n`0123456`",
        "*Branch*\\ndevelop",
        "*Duration*",
        "<https://ci.example/acme/goodgo/runs/41|View the CI run>",
    ] {
        assert!(message.contains(needle), "{needle} not in {message}");
    }
    // A channel for failures only heard nothing.
    assert!(receiver.bodies("/alerts").is_empty());

    let env = hook_env(&stack, "post_deploy.env");
    assert_eq!(env["SLIPWAY_ENV"], "test");
    assert_eq!(env["SLIPWAY_RELEASE"], r1.to_string());
    assert_eq!(env["SLIPWAY_TAG"], "v1");
    assert_eq!(env["SLIPWAY_STATUS"], "succeeded");
    assert_eq!(env["SLIPWAY_REASON"], "");
    assert_eq!(env["SLIPWAY_HOOK"], "post_deploy");
    assert_eq!(
        env["SLIPWAY_COMMIT"],
        "0123456789abcdef0123456789abcdef01234567"
    );

    // In GitHub Actions, no flags: the run's standard variables.
    let mut env = channel_env(&receiver);
    for (k, v) in [
        ("GITHUB_SHA", "feedface00000000000000000000000000000000"),
        ("GITHUB_REF_NAME", "master"),
        ("GITHUB_SERVER_URL", "https://github.com"),
        ("GITHUB_REPOSITORY", "acme/goodgo"),
        ("GITHUB_RUN_ID", "4242"),
    ] {
        env.push((k, v.to_string()));
    }
    let run = run_with(&stack, &["deploy", "--tag", "v2"], &env);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let h = stack.history();
    let r2 = release_id(&h[0]);
    assert_eq!(h[0]["commit"], "feedface00000000000000000000000000000000");
    let events = receiver.events("/hook", r2);
    assert_eq!(names(&events), ["deploy_started", "deploy_succeeded"]);
    assert_eq!(events[1]["branch"], "master");
    assert_eq!(
        events[1]["run_url"],
        "https://github.com/acme/goodgo/actions/runs/4242"
    );
    assert_eq!(hook_env(&stack, "post_deploy.env")["SLIPWAY_TAG"], "v2");

    // `notify test` reaches every channel, whatever events it chose.
    let test = run_with(
        &stack,
        &["notify", "test", "--json", "--branch", "develop"],
        &channel_env(&receiver),
    );
    assert_eq!(test.code, 0, "{}", test.stderr);
    let report = test.json();
    let channels = report["channels"].as_array().expect("channels");
    assert_eq!(channels.len(), 3);
    assert!(
        channels
            .iter()
            .all(|c| c["delivered"] == true && c["attempts"] == 1),
        "{report}"
    );
    for path in ["/hook", "/alerts"] {
        let last = receiver.bodies(path).pop().expect("a test message");
        assert_eq!(last["event"], "test");
        assert_eq!(last["branch"], "develop");
    }
    let slack = receiver.bodies("/slack").pop().expect("a test message");
    assert_eq!(
        slack["text"],
        "🔔 Test message from slipway for test: notifications work"
    );
}

#[test]
fn a_smoke_failure_is_announced_then_rolled_back_automatically() {
    let receiver = Receiver::start(Mode::Ok);
    let mut stack = Stack::new("notify-smoke");
    stack.extra_config = format!(
        "{CHANNELS}{}{}{}",
        recording_hook("post_deploy"),
        recording_hook("post_rollback"),
        recording_hook("on_failure")
    );
    stack.write();
    let (api1, _) = stack.publish_good("v1");
    let mut broken = App::new("v2");
    broken.smoke_ok = false;
    let api2 = stack.publish("api", "v2", broken);
    stack.publish("web", "v2", App::new("v2"));
    assert_eq!(
        run_with(&stack, &["deploy", "--tag", "v1"], &channel_env(&receiver)).code,
        0
    );
    let r1 = release_id(&stack.history()[0]);

    let run = run_with(
        &stack,
        &[
            "deploy", "--tag", "v2", "--commit", "bad0000", "--branch", "develop",
        ],
        &channel_env(&receiver),
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(stack.running_image("api"), api1);
    let r2 = release_id(&stack.history()[0]);

    let events = receiver.events("/hook", r2);
    assert_eq!(
        names(&events),
        [
            "deploy_started",
            "deploy_failed",
            "rollback_started",
            "rollback_succeeded"
        ]
    );
    let (failed, rolling, rolled) = (&events[1], &events[2], &events[3]);
    assert_eq!(failed["status"], "in_progress");
    assert_eq!(failed["services"]["api"]["image_id"], api2.as_str());
    for e in [failed, rolling, rolled] {
        let reason = e["reason"].as_str().unwrap_or_default();
        assert!(reason.contains("smoke check `core API` failed"), "{e}");
        assert_eq!(e["commit"], "bad0000");
        assert_eq!(e["tag"], "v2");
    }
    for e in [rolling, rolled] {
        assert_eq!(e["automatic"], true, "{e}");
        assert_eq!(e["rollback_to"], r1, "{e}");
    }
    assert_eq!(rolled["status"], "rolled_back");
    assert!(rolled["duration_s"].as_f64().is_some(), "{rolled}");
    // The failures-only channel heard the failure and the rollback, not the start.
    assert_eq!(
        names(&receiver.events("/alerts", r2)),
        ["deploy_failed", "rollback_started", "rollback_succeeded"]
    );
    let slack: Vec<String> = receiver
        .bodies("/slack")
        .iter()
        .filter_map(|b| b["text"].as_str().map(String::from))
        .collect();
    assert_eq!(
        slack[slack.len() - 3..],
        [
            format!("🚨 Deploy of v2 to test failed (release {r2})"),
            format!("⚠️ Rolling back test to release {r1}: release {r2} failed"),
            format!("↩️ Rolled back test to release {r1} after release {r2} failed; it is healthy"),
        ]
    );

    for hook in ["post_rollback.env", "on_failure.env"] {
        let env = hook_env(&stack, hook);
        assert_eq!(env["SLIPWAY_RELEASE"], r2.to_string(), "{hook}");
        assert_eq!(env["SLIPWAY_STATUS"], "rolled_back", "{hook}");
        assert_eq!(env["SLIPWAY_ROLLBACK_TO"], r1.to_string(), "{hook}");
        assert!(
            env["SLIPWAY_REASON"].contains("core API"),
            "{hook}: {env:?}"
        );
    }
    // post_deploy ran for release 1 only.
    assert_eq!(
        hook_env(&stack, "post_deploy.env")["SLIPWAY_RELEASE"],
        r1.to_string()
    );
}

#[test]
fn a_manual_rollback_is_announced() {
    let receiver = Receiver::start(Mode::Ok);
    let mut stack = Stack::new("notify-rollback");
    stack.extra_config = format!("{CHANNELS}{}", recording_hook("post_rollback"));
    stack.write();
    let (api1, web1) = stack.publish_good("v1");
    stack.publish_good("v2");
    for t in ["v1", "v2"] {
        assert_eq!(
            run_with(&stack, &["deploy", "--tag", t], &channel_env(&receiver)).code,
            0
        );
    }
    let r1 = release_id(&stack.history()[1]);

    let run = run_with(
        &stack,
        &["rollback", "--run-url", "https://ci.example/runs/7"],
        &channel_env(&receiver),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(stack.running_image("api"), api1);
    let h = stack.history();
    let r3 = release_id(&h[0]);
    assert_eq!(h[0]["kind"], "rollback");
    assert_eq!(h[0]["run_url"], "https://ci.example/runs/7");

    let events = receiver.events("/hook", r3);
    assert_eq!(names(&events), ["rollback_started", "rollback_succeeded"]);
    for e in &events {
        assert_eq!(e["kind"], "rollback");
        assert_eq!(e["automatic"], false);
        assert_eq!(e["rollback_to"], r1);
        assert_eq!(e["tag"], "v1");
        assert_eq!(e["run_url"], "https://ci.example/runs/7");
        assert_eq!(e["services"]["api"]["image_id"], api1.as_str());
        assert_eq!(e["services"]["web"]["image_id"], web1.as_str());
    }
    assert_eq!(events[0]["status"], "in_progress");
    assert_eq!(events[1]["status"], "succeeded");
    // A manual rollback is news for the rollback-minded channel too.
    assert_eq!(
        names(&receiver.events("/alerts", r3)),
        ["rollback_started", "rollback_succeeded"]
    );
    let env = hook_env(&stack, "post_rollback.env");
    assert_eq!(env["SLIPWAY_KIND"], "rollback");
    assert_eq!(env["SLIPWAY_RELEASE"], r3.to_string());
    assert_eq!(env["SLIPWAY_STATUS"], "succeeded");
    assert_eq!(env["SLIPWAY_TAG"], "v1");
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn an_undeliverable_notification_is_a_bounded_warning_that_never_shows_the_url() {
    let stall = Receiver::start(Mode::Stall);
    let down = fixture::free_port().expect("port");
    let canary = format!("CANARY-{}-s3cr3t", std::process::id());
    let slack_url = format!("http://127.0.0.1:{down}/services/T0/B0/{canary}");
    let hook_url = stall.url(&format!("/hook/{canary}"));
    let mut stack = Stack::new("notify-down");
    stack.extra_config = r#"
[notify]
timeout = "1s"
retries = 2

[notify.slack]
webhook_env = "SLIPWAY_T_SLACK"

[[notify.webhook]]
url_env = "SLIPWAY_T_HOOK"
"#
    .into();
    stack.write();
    let (api1, _) = stack.publish_good("v1");
    let env = vec![
        ("SLIPWAY_T_SLACK", slack_url.clone()),
        ("SLIPWAY_T_HOOK", hook_url.clone()),
    ];

    let run = run_with(&stack, &["deploy", "--tag", "v1", "--json"], &env);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(stack.running_image("api"), api1);
    assert_eq!(run.json()["status"], "succeeded");
    assert!(
        run.stderr.contains(
            "warning: notify: slack (SLIPWAY_T_SLACK): 2 of 2 notifications not delivered"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("warning: notify: webhook (SLIPWAY_T_HOOK)"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("no answer within 1s"), "{}", run.stderr);
    // The first event was tried 3 times (1 + 2 retries) before the channel was given up on.
    assert!(stall.connections() >= 3, "{}", stall.connections());
    // The receiver stalls for 300 s; the deploy gave up on it (its retry
    // budget) instead of waiting for an answer.
    assert_eq!(stall.outwaited.load(Ordering::SeqCst), 0);

    // `notify test` says which channel failed, exactly 1 + retries attempts each.
    let before = stall.connections();
    let test = run_with(&stack, &["notify", "test"], &env);
    assert_eq!(test.code, 1, "{}", test.stderr);
    assert_eq!(stall.outwaited.load(Ordering::SeqCst), 0);
    assert_eq!(stall.connections() - before, 3);
    assert!(
        test.stderr.contains("✗ slack (SLIPWAY_T_SLACK)")
            && test.stderr.contains("cannot connect")
            && test.stderr.contains("(3 attempts)"),
        "{}",
        test.stderr
    );
    assert!(test
        .stderr
        .contains("2 of 2 notification channels did not get the test message"));
    // A variable that is not set: said plainly, nothing sent.
    let unset = run_with(&stack, &["notify", "test"], &env[1..]);
    assert_eq!(unset.code, 1);
    assert!(
        unset.stderr.contains("SLIPWAY_T_SLACK is not set"),
        "{}",
        unset.stderr
    );

    // The URL appears nowhere: output, history, status, state files, overrides.
    let history = stack.slipway(&["history", "--json"]);
    let status = stack.slipway(&["status", "--json"]);
    for (what, text) in [
        ("deploy stdout", &run.stdout),
        ("deploy stderr", &run.stderr),
        ("notify test", &test.stderr),
        ("notify test stdout", &test.stdout),
        ("history", &history.stdout),
        ("status", &status.stdout),
    ] {
        assert!(
            !text.contains(&canary),
            "the webhook URL leaked into {what}"
        );
        assert!(
            !text.contains(&format!("127.0.0.1:{down}")),
            "the slack host leaked into {what}"
        );
    }
    let all = files(stack.path());
    assert!(all.iter().any(|p| p.ends_with("state.db")), "{all:?}");
    for file in all {
        let bytes = std::fs::read(&file).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(&canary),
            "the webhook URL leaked into {}",
            file.display()
        );
    }
}

#[test]
fn a_failing_pre_deploy_hook_stops_the_deploy_before_anything_changes() {
    let receiver = Receiver::start(Mode::Ok);
    let mut stack = Stack::new("notify-pre");
    // The migration runs in a one-off api container on the release's own
    // image; this one only passes on v1, so v2's "migration" fails.
    let migrate = r#"
[[hooks.pre_deploy]]
name = "migrate"
service = "api"
command = ["sh", "-c", "echo migrating $(cat /www/version) for $SLIPWAY_TAG in $SLIPWAY_ENV; test $(cat /www/version) = v1"]
"#;
    stack.extra_config = format!("{CHANNELS}{migrate}{}", recording_hook("on_failure"));
    stack.write();
    let (api1, web1) = stack.publish_good("v1");
    stack.publish_good("v2");
    let run = run_with(&stack, &["deploy", "--tag", "v1"], &channel_env(&receiver));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("migrating v1 for v1 in test"),
        "{}",
        run.stderr
    );
    let containers = (stack.container("api"), stack.container("web"));

    let run = run_with(&stack, &["deploy", "--tag", "v2"], &channel_env(&receiver));
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("pre_deploy hook `migrate` failed (exit 1)"),
        "{}",
        run.stderr
    );
    // It ran on the new image, with the release's variables.
    assert!(
        run.stderr.contains("migrating v2 for v2 in test"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("nothing running was changed"),
        "{}",
        run.stderr
    );
    assert_eq!((stack.container("api"), stack.container("web")), containers);
    assert_eq!(stack.running_image("api"), api1);
    assert_eq!(stack.running_image("web"), web1);
    let h = stack.history();
    let r2 = release_id(&h[0]);
    assert_eq!(h[0]["status"], "aborted");
    let reason = h[0]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("pre_deploy hook `migrate` failed (exit 1)"),
        "{reason}"
    );
    // What the hook printed is shown, not stored.
    assert!(!reason.contains("migrating"), "{reason}");
    let events = receiver.events("/hook", r2);
    assert_eq!(names(&events), ["deploy_started", "deploy_failed"]);
    assert_eq!(events[1]["status"], "aborted");
    let env = hook_env(&stack, "on_failure.env");
    assert_eq!(env["SLIPWAY_RELEASE"], r2.to_string());
    assert_eq!(env["SLIPWAY_STATUS"], "aborted");
    assert!(env["SLIPWAY_REASON"].contains("migrate"), "{env:?}");

    // A hook that hangs is stopped at its timeout, container and all.
    stack.extra_config = r#"
[[hooks.pre_deploy]]
name = "hangs"
service = "api"
command = ["sleep", "600"]
timeout = "2s"
"#
    .into();
    stack.write();
    let run = stack.deploy("v2");
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("pre_deploy hook `hangs` timed out after 2s"),
        "{}",
        run.stderr
    );
    assert_eq!((stack.container("api"), stack.container("web")), containers);
    let (_, left) = docker(&[
        "ps",
        "-aq",
        "--filter",
        &format!("label=com.docker.compose.project={}", stack.name),
        "--filter",
        "label=com.docker.compose.oneoff=True",
    ]);
    assert_eq!(left, "", "a one-off hook container was left behind");
    assert_eq!(stack.history()[0]["status"], "aborted");
}
