//! A failed release shows its failing containers' last log lines: under the
//! failing step, in `--json`, in the failure notification, and later with
//! `slipway logs` after the rollback removed the containers. `--logs 0`
//! shows none; env file values are redacted everywhere.

use serde_json::Value;
use slipway::fixture::{App, Behaviour};

use crate::canary::files_under;
use crate::harness::{docker, Stack};
use crate::notify::{Mode, Receiver};

const KNOWN: &str = "fixture: crashing at start on purpose";
const SECRET: &str = "canary-logline-5e7b02d9";

/// A stack whose v1 deploys and whose api v2 exits at start.
fn crashing(test: &str) -> Stack {
    let stack = Stack::new(test);
    stack.publish_good("v1");
    let mut crash = App::new("v2");
    crash.behaviour = Behaviour::Crash;
    stack.publish("api", "v2", crash);
    stack.publish("web", "v2", App::new("v2"));
    stack
}

/// Replace the first `from` in a stack file with `to`.
fn edit(path: &std::path::Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).expect("read stack file");
    assert!(text.contains(from), "{from:?} not in {}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).expect("write stack file");
}

/// Every line of every container in a `logs` array.
fn lines(logs: &Value) -> Vec<String> {
    logs.as_array()
        .into_iter()
        .flatten()
        .flat_map(|l| l["lines"].as_array().cloned().unwrap_or_default())
        .filter_map(|l| l.as_str().map(str::to_string))
        .collect()
}

#[test]
fn a_container_that_exits_at_start_shows_its_last_lines_then_and_later() {
    let stack = crashing("logs");
    assert_eq!(stack.deploy("v1").code, 0);
    let api1 = stack.running_image("api");

    // --logs 0: the failure as before, no lines.
    let quiet = stack.slipway(&["deploy", "--tag", "v2", "--logs", "0"]);
    assert_eq!(quiet.code, 1, "{}", quiet.stderr);
    assert!(!quiet.stderr.contains('┆'), "{}", quiet.stderr);
    assert!(!quiet.stderr.contains(KNOWN), "{}", quiet.stderr);
    let none = stack.slipway(&["logs", "--json"]);
    assert_eq!(none.code, 0, "{}", none.stderr);
    assert_eq!(none.json()["source"], "none");

    let run = stack.deploy("v2");
    assert_eq!(run.code, 1, "{}", run.stderr);
    let failed = stack.history()[0]["id"].as_i64().expect("id");
    // Under the failing step, before the rollback.
    let step = run.stderr.find("✗ health").expect("the failing step");
    let line = run
        .stderr
        .find(&format!("    ┆ api-1: {KNOWN}"))
        .unwrap_or_else(|| panic!("the known line under the step: {}", run.stderr));
    let back = run.stderr.find("rolling back:").expect("rolling back");
    assert!(step < line && line < back, "{}", run.stderr);
    assert!(run.stderr.contains("    ┆ api-1: fixture: booting"));
    // Only the failing container: web came up fine.
    assert!(!run.stderr.contains("┆ web-1"), "{}", run.stderr);

    // The failing container is gone; its lines are kept.
    assert_eq!(stack.containers("api").len(), 1);
    assert_eq!(stack.running_image("api"), api1);
    let later = stack.slipway(&["logs", "api", "--release", &failed.to_string()]);
    assert_eq!(later.code, 0, "{}", later.stderr);
    assert!(
        later.stdout.contains(&format!(
            "release {failed}: the last lines of api, captured"
        )),
        "{}",
        later.stdout
    );
    assert!(
        later.stdout.contains(&format!("┆ api-1: {KNOWN}")),
        "{}",
        later.stdout
    );
    // The default: the newest release that captured lines; -n bounds them.
    let newest = stack.slipway(&["logs", "--json", "-n", "1"]);
    assert_eq!(newest.code, 0, "{}", newest.stderr);
    let v = newest.json();
    assert_eq!(
        (v["release"].as_i64(), &v["source"]),
        (Some(failed), &Value::from("captured"))
    );
    assert_eq!(lines(&v["logs"]), [KNOWN]);
    assert_eq!(v["logs"][0]["service"], "api");
    // Nothing captured for web: its live container's lines, said so.
    let live = stack.slipway(&["logs", "web", "--json"]);
    assert_eq!(live.code, 0, "{}", live.stderr);
    assert_eq!(live.json()["source"], "live");
    assert_eq!(live.json()["logs"][0]["service"], "web");
    // A release of no such ID, a service slipway does not deploy: exit 2.
    assert_eq!(stack.slipway(&["logs", "--release", "999"]).code, 2);
    let unknown = stack.slipway(&["logs", "apj"]);
    assert_eq!(unknown.code, 2, "{}", unknown.stderr);
    assert!(
        unknown.stderr.contains("did you mean `api`"),
        "{}",
        unknown.stderr
    );

    // --json: the release object carries them.
    let json = stack.slipway(&["deploy", "--tag", "v2", "--json"]);
    assert_eq!(json.code, 1, "{}", json.stderr);
    let r = json.json();
    assert_eq!(r["status"], "rolled_back");
    assert_eq!(r["logs"][0]["service"], "api");
    assert!(
        r["logs"][0]["container"]
            .as_str()
            .is_some_and(|c| c.ends_with("api-1")),
        "{r}"
    );
    assert_eq!(
        lines(&r["logs"]).last().map(String::as_str),
        Some(KNOWN),
        "{r}"
    );
}

#[test]
fn env_file_values_in_log_lines_are_redacted_everywhere() {
    let receiver = Receiver::start(Mode::Ok);
    let mut stack = crashing("logs-secret");
    stack.extra_config = "\n[notify.slack]\nwebhook_env = \"SLIPWAY_T_SLACK\"\n\n\
         [[notify.webhook]]\nurl_env = \"SLIPWAY_T_HOOK\"\n"
        .into();
    stack.write();
    edit(
        &stack.config_path(),
        "[environments.test]\n",
        "[environments.test]\nenv_file = \".env\"\n",
    );
    std::fs::write(stack.path().join(".env"), format!("APP_SECRET={SECRET}\n")).expect("env file");
    // The app is given the secret, as compose would give it a database password.
    edit(
        &stack.path().join("docker-compose.yml"),
        "    depends_on: [cache]\n",
        "    depends_on: [cache]\n    environment:\n      APP_SECRET: ${APP_SECRET:-}\n",
    );
    let (slack, hook) = (receiver.url("/slack"), receiver.url("/hook"));
    let env = [
        ("SLIPWAY_T_SLACK", slack.as_str()),
        ("SLIPWAY_T_HOOK", hook.as_str()),
    ];
    assert_eq!(stack.slipway_env(&["deploy", "--tag", "v1"], &env).code, 0);

    let run = stack.slipway_env(&["deploy", "--tag", "v2"], &env);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("┆ api-1: fixture: APP_SECRET=[APP_SECRET]"),
        "the app printed the secret, redacted: {}",
        run.stderr
    );
    let json = stack.slipway_env(&["deploy", "--tag", "v2", "--json"], &env);
    assert_eq!(json.code, 1, "{}", json.stderr);
    assert!(
        lines(&json.json()["logs"]).contains(&"fixture: APP_SECRET=[APP_SECRET]".to_string()),
        "{}",
        json.stdout
    );
    let later = stack.slipway(&["logs", "api"]);
    assert!(
        later
            .stdout
            .contains("┆ api-1: fixture: APP_SECRET=[APP_SECRET]"),
        "{}",
        later.stdout
    );

    // The failure notification carries the lines; the events after it do not.
    let hooks = receiver.bodies("/hook");
    let failed: Vec<&Value> = hooks
        .iter()
        .filter(|b| b["event"] == "deploy_failed")
        .collect();
    assert_eq!(failed.len(), 2, "{hooks:?}");
    assert_eq!(failed[0]["logs"][0]["service"], "api");
    assert!(
        lines(&failed[0]["logs"]).contains(&KNOWN.to_string()),
        "{}",
        failed[0]
    );
    assert!(hooks
        .iter()
        .filter(|b| b["event"] != "deploy_failed")
        .all(|b| b.get("logs").is_none()));
    let slack = receiver.bodies("/slack");
    let message: String = slack.iter().map(Value::to_string).collect();
    assert!(message.contains("*Last lines of api-1*"), "{message}");
    assert!(message.contains(KNOWN), "{message}");

    let mut everything = format!(
        "{}{}{}{}{}",
        run.stderr, json.stdout, json.stderr, later.stdout, later.stderr
    );
    everything.push_str(&hooks.iter().map(Value::to_string).collect::<String>());
    everything.push_str(&message);
    for f in files_under(&stack.path().join(".slipway")) {
        everything.push_str(&String::from_utf8_lossy(
            &std::fs::read(&f).expect("state file"),
        ));
    }
    assert!(everything.contains("[APP_SECRET]"));
    assert!(!everything.contains(SECRET), "the secret leaked");
}

#[test]
fn a_start_first_container_removed_at_once_still_shows_its_lines() {
    let stack = Stack::new("logs-sf");
    edit(
        &stack.config_path(),
        "[services.web]\n",
        "[services.web]\nstrategy = \"start-first\"\n",
    );
    stack.publish_good("v1");
    let mut crash = App::new("v2");
    crash.behaviour = Behaviour::Crash;
    stack.publish("web", "v2", crash);
    assert_eq!(stack.deploy("v1").code, 0);
    let web1 = stack.container("web").expect("web container");
    // api's v2 is its v1 image: only web rolls, nothing beside it in the wave.
    let (api1, api2) = (
        format!("{}:v1", stack.repo("api")),
        format!("{}:v2", stack.repo("api")),
    );
    assert!(docker(&["tag", &api1, &api2]).0, "docker tag {api2}");
    assert!(docker(&["push", &api2]).0, "docker push {api2}");

    let run = stack.deploy("v2");
    assert_eq!(run.code, 1, "{}", run.stderr);
    // The new container (beside the old one, so web-2) was removed as soon
    // as it failed, while the old one kept serving.
    assert!(
        run.stderr.contains(&format!("    ┆ web-2: {KNOWN}")),
        "{}",
        run.stderr
    );
    assert_eq!(stack.containers("web"), [web1]);
    let later = stack.slipway(&["logs", "web"]);
    assert!(
        later.stdout.contains(&format!("┆ web-2: {KNOWN}")),
        "{}",
        later.stdout
    );
}
