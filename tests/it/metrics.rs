//! Prometheus textfile metrics after a succeeded and a rolled-back deploy:
//! the file parses, its counters follow history, and `--metrics-file`
//! overrides `[metrics] textfile`.

use std::path::Path;

use prometheus_parse::{Scrape, Value};
use slipway::fixture::App;

use crate::harness::Stack;

fn scrape(path: &Path) -> Scrape {
    let text = std::fs::read_to_string(path).expect("metrics file");
    // Every line is a comment or `name{labels} value`, as the exposition format says.
    let line =
        regex::Regex::new(r#"^(# (HELP|TYPE) .+|[a-z_]+\{([a-z_]+="[^"]*",?)+\} [0-9.e+-]+)$"#)
            .expect("regex");
    for l in text.lines() {
        assert!(line.is_match(l), "not exposition format: {l}");
    }
    Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("parse")
}

fn value(s: &Scrape, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    s.samples
        .iter()
        .find(|x| x.metric == metric && labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .map(|x| match x.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
            _ => f64::NAN,
        })
}

#[test]
fn metrics_after_a_succeeded_and_a_rolled_back_deploy() {
    let mut stack = Stack::new("metrics");
    std::fs::create_dir_all(stack.path().join("node")).expect("dir");
    stack.extra_config = "\n[metrics]\ntextfile = \"node/slipway.prom\"\n".into();
    stack.write();
    stack.publish_good("v1");
    let mut broken = App::new("v2");
    broken.smoke_ok = false;
    stack.publish("api", "v2", broken);
    stack.publish("web", "v2", App::new("v2"));

    let run = stack.deploy("v1");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let configured = stack.path().join("node/slipway.prom");
    let s = scrape(&configured);
    let env = ("env", "test");
    let deploys = |status| [env, ("kind", "deploy"), ("status", status)];
    assert_eq!(
        value(&s, "slipway_releases_total", &deploys("succeeded")),
        Some(1.0)
    );
    assert_eq!(
        value(&s, "slipway_releases_total", &deploys("rolled_back")),
        Some(0.0)
    );
    assert_eq!(
        value(&s, "slipway_last_deploy_succeeded", &[env]),
        Some(1.0)
    );
    let first_success = value(&s, "slipway_last_success_timestamp_seconds", &[env]).expect("ts");
    assert!(first_success > 1.7e9, "{first_success}");
    assert!(value(&s, "slipway_last_deploy_duration_seconds", &[env]).expect("duration") >= 0.0);

    // The flag wins over the config.
    let flagged = stack.path().join("other.prom");
    let flag = flagged.to_string_lossy().into_owned();
    let run = stack.slipway(&["deploy", "--tag", "v2", "--metrics-file", &flag]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let s = scrape(&flagged);
    assert_eq!(
        value(&s, "slipway_releases_total", &deploys("succeeded")),
        Some(1.0)
    );
    assert_eq!(
        value(&s, "slipway_releases_total", &deploys("rolled_back")),
        Some(1.0)
    );
    assert_eq!(
        value(
            &s,
            "slipway_rollbacks_total",
            &[env, ("trigger", "automatic")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&s, "slipway_last_deploy_succeeded", &[env]),
        Some(0.0)
    );
    assert_eq!(
        value(&s, "slipway_last_success_timestamp_seconds", &[env]),
        Some(first_success)
    );
    let h = stack.history();
    assert_eq!(
        value(&s, "slipway_current_release", &[env]),
        h[1]["id"].as_f64()
    );
    // The configured file was left as the first run wrote it.
    let s = scrape(&configured);
    assert_eq!(
        value(&s, "slipway_releases_total", &deploys("rolled_back")),
        Some(0.0)
    );
    // No temporary file left beside them.
    let names: Vec<String> = std::fs::read_dir(stack.path().join("node"))
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["slipway.prom"]);

    // A path the textfile collector would ignore is refused before anything runs.
    let run = stack.slipway(&["deploy", "--tag", "v1", "--metrics-file", "/tmp/x.txt"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--metrics-file"), "{}", run.stderr);
}
