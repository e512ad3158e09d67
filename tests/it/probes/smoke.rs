//! `slipway smoke` against real servers on 127.0.0.1: every assertion kind
//! passes once and fails once, misbehaving servers (stalling, endless body,
//! invalid JSON, closing the connection) cannot hang the suite, and the text,
//! `--json` and `--junit` reports say what was expected and what came back.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::http_server;
use crate::harness::Run;

/// A project folder holding slipway.toml (and a compose file, for `check`).
pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    pub fn new(url: &str, extra: &str) -> Project {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = format!(
            r#"project = "slipway-probe-t"
[deploy]
smoke_timeout = "30s"

[environments.test]
url = "{url}"
tag = "v2"
{extra}"#
        );
        std::fs::write(dir.path().join("slipway.toml"), config).expect("config");
        std::fs::write(
            dir.path().join("docker-compose.yml"),
            "services:\n  api:\n    image: example.invalid/probe/api:v1\n",
        )
        .expect("compose");
        Project { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn slipway(&self, args: &[&str]) -> Run {
        let out = Command::new(env!("CARGO_BIN_EXE_slipway"))
            .arg("--config")
            .arg(self.path().join("slipway.toml"))
            .args(args)
            .current_dir(self.path())
            .output()
            .expect("run slipway");
        Run::of(args, out)
    }
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    slipway::fixture::free_port().expect("port")
}

fn checks_by_name(run: &Run) -> std::collections::BTreeMap<String, Value> {
    run.json()["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or_default().to_string(),
                c.clone(),
            )
        })
        .collect()
}

fn suite(closed: u16) -> String {
    format!(
        r#"
[services.api]

[[smoke]]
name = "pass status"
http = "{{url}}/health"
expect_status = 200

[[smoke]]
name = "fail status"
http = "{{url}}/status/500"
expect_status = 200

[[smoke]]
name = "pass status list"
http = "{{url}}/status/401"
expect_status = [400, 401]

[[smoke]]
name = "fail status list"
http = "{{url}}/status/404"
expect_status = [400, 401]

[[smoke]]
name = "pass json equals"
http = "{{url}}/health"
expect_json = {{ "$.status" = "ok", "$.version" = "{{tag}}", "$.env" = "{{env}}", "$.db" = {{ equals = {{ up = true }} }} }}

[[smoke]]
name = "fail json equals"
http = "{{url}}/health"
expect_json = {{ "$.status" = "degraded" }}

[[smoke]]
name = "pass json exists"
http = "{{url}}/health"
expect_json = {{ "$.db.up" = {{ exists = true }}, "$.nope" = {{ exists = false }} }}

[[smoke]]
name = "fail json exists"
http = "{{url}}/health"
expect_json = {{ "$.nope" = {{ exists = true }} }}

[[smoke]]
name = "pass json comparisons"
http = "{{url}}/health"
expect_json = {{ "$.latency_ms" = {{ gte = 1, lt = 100 }}, "$.items" = {{ count = 3 }}, "$.items[*].id" = [1, 2, 3], "$.tags" = {{ contains = "b" }}, "$.version" = {{ matches = '^v\d+$' }}, "$.status" = {{ one_of = ["ok", "degraded"], type = "string", not_equals = "down", starts_with = "o" }} }}

[[smoke]]
name = "fail json comparisons"
http = "{{url}}/health"
expect_json = {{ "$.latency_ms" = {{ gt = 100 }}, "$.items" = {{ count = 5 }} }}

[[smoke]]
name = "pass body"
http = "{{url}}/text"
expect_body = "version {{tag}}"

[[smoke]]
name = "fail body"
http = "{{url}}/text"
expect_body = "version v9"

[[smoke]]
name = "pass body regex"
http = "{{url}}/text"
expect_body = {{ matches = 'version v\d' }}

[[smoke]]
name = "fail body regex"
http = "{{url}}/text"
expect_body = {{ matches = '^goodbye' }}

[[smoke]]
name = "pass header"
http = "{{url}}/health"
expect_header = {{ "X-Version" = "{{tag}}", "Content-Type" = {{ contains = "json" }} }}

[[smoke]]
name = "fail header"
http = "{{url}}/health"
expect_header = {{ "Content-Type" = {{ contains = "xml" }}, "X-Missing" = {{ exists = true }} }}

[[smoke]]
name = "pass latency"
http = "{{url}}/delay/10"
max_latency = "5s"

[[smoke]]
name = "fail latency"
http = "{{url}}/delay/300"
max_latency = "100ms"

[[smoke]]
name = "pass post with headers and body"
http = "{{url}}/echo?env={{env}}"
method = "POST"
headers = {{ Authorization = "Bearer {{tag}}" }}
body = '{{"q":"{{env}}"}}'
expect_json = {{ "$.method" = "POST", "$.authorization" = "Bearer v2", "$.body" = '{{"q":"test"}}', "$.query" = "env=test" }}

[[smoke]]
name = "fail timeout on a stalled server"
http = "{{url}}/stall"
timeout = "1s"

[[smoke]]
name = "pass retries"
http = "{{url}}/flaky"
retries = 3
retry_interval = "100ms"

[[smoke]]
name = "fail retries"
http = "{{url}}/status/503"
retries = 2
retry_interval = "100ms"

[[smoke]]
name = "fail invalid json"
http = "{{url}}/invalid-json"
expect_json = {{ "$.status" = "ok" }}

[[smoke]]
name = "pass huge body"
http = "{{url}}/huge"

[[smoke]]
name = "fail huge body as json"
http = "{{url}}/huge"
expect_json = {{ "$.data" = {{ exists = true }} }}

[[smoke]]
name = "fail closed connection"
http = "{{url}}/close"

[[smoke]]
name = "fail connection refused"
http = "http://127.0.0.1:{closed}/health"

[[smoke]]
name = "pass tcp"
tcp = "{{host}}"

[[smoke]]
name = "fail tcp"
tcp = "127.0.0.1:{closed}"

[[smoke]]
name = "pass command"
command = ["sh", "-c", "test \"$1\" = \"$SLIPWAY_URL\" && test \"$SLIPWAY_ENV\" = test && test \"$SLIPWAY_TAG\" = v2 && echo ready", "sh", "{{url}}"]
expect_stdout = "ready"

[[smoke]]
name = "fail command exit"
command = ["sh", "-c", "echo 'search returned 0 results' >&2; exit 3"]

[[smoke]]
name = "pass command stdout"
command = ["echo", "PONG"]
expect_stdout = {{ matches = '^PONG$' }}

[[smoke]]
name = "fail command stdout"
command = ["echo", "PONG?"]
expect_stdout = {{ matches = '^PONG$' }}

[[smoke]]
name = "pass expect_exit"
command = ["sh", "-c", "exit 4"]
expect_exit = 4

[[smoke]]
name = "fail expect_exit"
command = ["true"]
expect_exit = 4
"#
    )
}

#[test]
fn every_assertion_kind_passes_once_and_fails_once() {
    let server = http_server::start("unused");
    let closed = closed_port();
    let p = Project::new(&server.url(), &suite(closed));
    let run = p.slipway(&["smoke", "--json"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let checks = checks_by_name(&run);
    assert_eq!(checks.len(), 35);
    for (name, c) in &checks {
        assert_eq!(
            c["ok"].as_bool(),
            Some(name.starts_with("pass")),
            "{name}: {c}"
        );
    }
    let failure = |name: &str, i: usize| -> (String, String, String) {
        let f = &checks[name]["failures"][i];
        (
            f["what"].as_str().unwrap_or_default().into(),
            f["expected"].as_str().unwrap_or_default().into(),
            f["actual"].as_str().unwrap_or_default().into(),
        )
    };
    let error = |name: &str| {
        checks[name]["error"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let excerpt = |name: &str| {
        checks[name]["excerpt"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };

    assert_eq!(
        failure("fail status", 0),
        ("status".into(), "200".into(), "500".into())
    );
    assert_eq!(
        excerpt("fail status"),
        "body: status 500 from the test server"
    );
    assert_eq!(failure("fail status list", 0).1, "400 or 401");
    assert_eq!(
        failure("fail json equals", 0),
        ("$.status".into(), "\"degraded\"".into(), "\"ok\"".into())
    );
    assert_eq!(
        failure("fail json exists", 0),
        ("$.nope".into(), "to exist".into(), "nothing".into())
    );
    assert_eq!(
        failure("fail json comparisons", 0),
        ("$.items".into(), "count 5".into(), "count 3".into())
    );
    assert_eq!(
        failure("fail json comparisons", 1),
        ("$.latency_ms".into(), "> 100".into(), "12".into())
    );
    assert_eq!(failure("fail body", 0).1, "to contain \"version v9\"");
    assert_eq!(failure("fail body", 0).2, "\"hello from version v2\"");
    assert_eq!(failure("fail body regex", 0).1, "to match /^goodbye/");
    assert_eq!(
        failure("fail header", 0),
        (
            "header content-type".into(),
            "to contain \"xml\"".into(),
            "\"application/json\"".into()
        )
    );
    assert_eq!(
        failure("fail header", 1),
        (
            "header x-missing".into(),
            "to exist".into(),
            "nothing".into()
        )
    );
    assert_eq!(failure("fail latency", 0).1, "at most 100ms");
    assert_eq!(
        error("fail timeout on a stalled server"),
        "no answer within 1s"
    );
    assert_eq!(checks["pass retries"]["attempts"], 3);
    assert_eq!(checks["fail retries"]["attempts"], 3);
    assert!(
        failure("fail invalid json", 0)
            .2
            .starts_with("invalid JSON"),
        "{:?}",
        failure("fail invalid json", 0)
    );
    assert!(excerpt("fail invalid json").contains("oops"));
    assert!(
        failure("fail huge body as json", 0)
            .2
            .contains("cut at 1024 KiB"),
        "{:?}",
        failure("fail huge body as json", 0)
    );
    assert!(
        error("fail closed connection").contains("closed the connection"),
        "{}",
        error("fail closed connection")
    );
    assert!(error("fail connection refused").starts_with("connection refused"));
    assert_eq!(error("fail tcp"), "connection refused");
    assert_eq!(
        failure("fail command exit", 0),
        ("exit code".into(), "0".into(), "3".into())
    );
    assert_eq!(
        excerpt("fail command exit"),
        "output: search returned 0 results"
    );
    assert_eq!(failure("fail command stdout", 0).2, "\"PONG?\"");
    assert_eq!(failure("fail expect_exit", 0).1, "4");
    assert_eq!(checks["pass tcp"]["target"], format!("tcp {}", server.addr));

    let json = run.json();
    assert_eq!(json["ok"], false);
    assert_eq!(json["passed"], 16);
    assert_eq!(json["failed"], 19);
}

#[test]
fn the_text_report_and_junit_say_expected_versus_got() {
    let server = http_server::start("unused");
    let p = Project::new(
        &server.url(),
        r#"
[services.api]

[[smoke]]
name = "api health"
http = "{url}/health"
expect_json = { "$.status" = "ok" }

[[smoke]]
name = "core API"
http = "{url}/status/500"

[[smoke]]
name = "stalled"
http = "{url}/stall"
timeout = "1s"
"#,
    );
    let junit = p.path().join("reports/smoke.xml");
    let run = p.slipway(&["smoke", "--junit", junit.to_str().expect("path")]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let lines: Vec<&str> = run.stderr.lines().collect();
    let line = |start: &str| {
        lines
            .iter()
            .find(|l| l.trim_start().starts_with(start))
            .unwrap_or_else(|| panic!("no line {start:?} in {}", run.stderr))
            .to_string()
    };
    assert!(
        line("✓ api health").ends_with(" ms"),
        "{}",
        line("✓ api health")
    );
    assert!(
        line("✗ core API")
            .ends_with("status: expected 200, got 500 — body: status 500 from the test server"),
        "{}",
        line("✗ core API")
    );
    assert!(
        line("✗ stalled").ends_with("could not run: no answer within 1s"),
        "{}",
        line("✗ stalled")
    );
    assert!(line("1 passed, 2 failed").contains("in "));
    assert!(run.stderr.contains("error: 2 of 3 smoke checks failed"));

    let xml = std::fs::read_to_string(&junit).expect("junit file");
    assert!(xml.starts_with("<?xml"), "{xml}");
    assert!(
        xml.contains("tests=\"3\" failures=\"1\" errors=\"1\""),
        "{xml}"
    );
    assert!(xml.contains("<testcase name=\"api health\" classname=\"smoke.http\""));
    assert!(
        xml.contains("<failure message=\"status: expected 200, got 500"),
        "{xml}"
    );
    assert!(
        xml.contains("<error message=\"no answer within 1s\""),
        "{xml}"
    );
}

#[test]
fn smoke_timeout_bounds_the_whole_suite() {
    let server = http_server::start("unused");
    let p = Project::new(
        &server.url(),
        r#"smoke_timeout = "2s"

[services.api]

[[smoke]]
name = "stalled with a long own timeout"
http = "{url}/stall"
timeout = "120s"

[[smoke]]
name = "retrying forever"
http = "{url}/status/503"
retries = 100
retry_interval = "500ms"

[[smoke]]
name = "healthy"
http = "{url}/health"
"#,
    );
    let run = p.slipway(&["smoke", "--json"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let checks = checks_by_name(&run);
    let stalled = checks["stalled with a long own timeout"]["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        stalled.starts_with("no answer before the overall timeout ran out")
            || stalled.starts_with("the suite's smoke_timeout (2s) ran out"),
        "{stalled}"
    );
    let retried = &checks["retrying forever"];
    assert_eq!(retried["ok"], false);
    assert!(retried["attempts"].as_u64().unwrap_or(0) < 10, "{retried}");
    assert_eq!(checks["healthy"]["ok"], true);
}

#[test]
fn concurrency_is_bounded_by_smoke_concurrency() {
    let server = http_server::start("unused");
    // Requests are answered in pairs (then all six together, below): the
    // counts follow from the bound, not from how fast the machine is.
    let checks = |gate: usize| {
        let mut c = String::from("smoke_concurrency = 2\n\n[services.api]\n");
        for i in 0..6 {
            c.push_str(&format!(
                "\n[[smoke]]\nname = \"slow {i}\"\nhttp = \"{{url}}/gate/{gate}\"\n"
            ));
        }
        c
    };
    let checks_of_two = checks(2);
    let p = Project::new(&server.url(), &checks_of_two);
    let run = p.slipway(&["smoke", "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let most = server
        .max_in_flight
        .load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(most, 2, "the server saw {most} requests at once");

    // Without a bound (0), all six are in flight together.
    let server = http_server::start("unused");
    let p = Project::new(
        &server.url(),
        &checks(6).replace("smoke_concurrency = 2", "smoke_concurrency = 0"),
    );
    let run = p.slipway(&["smoke", "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let most = server
        .max_in_flight
        .load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(most, 6, "the server saw {most} requests at once");
}

#[test]
fn bad_smoke_config_and_missing_url_are_exit_2() {
    let p = Project::new(
        "http://127.0.0.1:1",
        "[services.api]\n\n[[smoke]]\nname = \"a\"\nhttp = \"{url}/health\"\nexpect_json = { \"$.status\" = { eq = \"ok\" } }\n",
    );
    let run = p.slipway(&["smoke"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "slipway.toml:13:17: smoke[0] (a).expect_json.\"$.status\": unknown operator `eq`"
        ),
        "{}",
        run.stderr
    );

    let p = Project::new(
        "http://127.0.0.1:1",
        "[services.api]\n\n[[smoke]]\nname = \"a\"\nhttp = \"{url}/health\"\n",
    );
    let config = std::fs::read_to_string(p.path().join("slipway.toml")).expect("read");
    std::fs::write(
        p.path().join("slipway.toml"),
        config.replace("url = \"http://127.0.0.1:1\"\n", ""),
    )
    .expect("write");
    let run = p.slipway(&["smoke"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("hint: pass --url URL"),
        "{}",
        run.stderr
    );
    let run = p.slipway(&["smoke", "--url", "not a url"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    // --url points the same suite at another server.
    let server = http_server::start("unused");
    let run = p.slipway(&["smoke", "--url", &server.url()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}
