//! start-first behind real proxies: Debian's nginx and Caddy, configured only
//! by `examples/proxies/`, under steady load through the proxy. No request
//! fails and none takes longer than a second during a deploy, a failing
//! deploy with its automatic rollback, and `slipway rollback`. The control:
//! nginx as the README used to advise (no `proxy_connect_timeout`) stalls.
//! The apps serve like real ones (keep-alive, a full listen backlog, a
//! graceful stop: `fixtures/serve.rs`).

use slipway::fixture::load::{Load, Report};
use slipway::fixture::proxy::Kind;
use slipway::fixture::{self, App, Server};

use crate::harness::{runtime, Stack};

/// A stack where traffic reaches `web` only through `proxy` on the stack's
/// port; `config` replaces the shipped proxy configuration.
fn stack_behind(test: &str, proxy: Kind, config: Option<&str>, extra_config: &str) -> Stack {
    let stack = Stack::new(test);
    let image = runtime().block_on(async {
        let docker = slipway::engine::Docker::connect().await.expect("docker");
        fixture::ensure_base(&docker).await.expect("base image");
        proxy.image(&docker).await.expect("proxy image")
    });
    let config_file = config.map(|text| {
        let path = stack.path().join("proxy.conf");
        std::fs::write(&path, text).expect("proxy config");
        path
    });
    let compose = format!(
        "services:\n{}  web:\n    image: {}:v1\n",
        proxy.compose_service(&image, stack.port, config_file.as_deref()),
        stack.repo("web"),
    );
    let config = format!(
        r#"project = "{name}"
compose_files = ["docker-compose.yml"]

[deploy]
health_timeout = "30s"

[environments.test]
url = "http://127.0.0.1:{port}"

[services.web]
strategy = "start-first"
health = {{ http = "http://{{container}}:8080/health" }}

[[smoke]]
name = "core API"
http = "{{url}}/smoke"
expect_json = {{ "$.status" = "ok" }}
{extra_config}"#,
        name = stack.name,
        port = stack.port,
    );
    std::fs::write(stack.path().join("docker-compose.yml"), compose).expect("compose file");
    std::fs::write(stack.config_path(), config).expect("config");
    let (ok, err) = stack.compose(&["up", "--detach", "--", "proxy"]);
    assert!(ok, "proxy: {err}");
    stack
}

/// A web app that takes a second to boot and serves like real ones do
/// (keep-alive, a full listen backlog, a graceful stop).
pub fn app(version: &str, smoke_ok: bool) -> App {
    let mut a = App::new(version);
    a.boot_delay = 1;
    a.server = Server::Serve;
    a.smoke_ok = smoke_ok;
    a
}

pub fn load(stack: &Stack, rate: u32) -> Load {
    let addr = format!("127.0.0.1:{}", stack.port).parse().expect("addr");
    Load::start(&[addr], "/health", rate, 64)
}

/// Run `what` under load through the proxy; its exit code and the load report.
fn under_load(stack: &Stack, what: &[&str]) -> (i32, String, Report) {
    let traffic = load(stack, 450);
    let run = stack.slipway(what);
    let report = traffic.stop();
    eprintln!("{}: {}", what.join(" "), report.summary());
    (run.code, run.stderr, report)
}

/// The proxy's last log lines, to see why a request failed.
fn proxy_logs(stack: &Stack) -> String {
    let Some(id) = stack.container("proxy") else {
        return "(no proxy container)".into();
    };
    std::process::Command::new("docker")
        .args(["logs", "--tail", "100000", &id])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
        })
        .unwrap_or_default()
}

/// Deploy, failing deploy + automatic rollback, manual rollback: each under
/// load, with nothing failed and nothing slow.
fn zero_failed_and_none_slow(test: &str, proxy: Kind) {
    // PX_DEBUG=1: nginx logs each request's upstream addresses and times.
    let debug = std::env::var("PX_DEBUG").ok().map(|_| {
        std::fs::read_to_string(proxy.example().expect("config").0)
            .expect("read")
            .replace("access_log off;", "log_format up \"$msec $status $upstream_addr $upstream_connect_time $request_time\"; access_log /dev/stdout up;")
    });
    let stack = stack_behind(test, proxy, debug.as_deref(), "");
    stack.publish("web", "v1", app("v1", true));
    stack.publish("web", "v2", app("v2", true));
    stack.publish("web", "v3", app("v3", false));
    assert_eq!(stack.deploy("v1").code, 0);
    let mut total = 0;
    for (what, code) in [
        (&["deploy", "--tag", "v2"][..], 0),
        (&["deploy", "--tag", "v3"][..], 1),
        (&["rollback"][..], 0),
    ] {
        let (got, stderr, report) = under_load(&stack, what);
        if report.failed + report.slow > 0 || got != code {
            eprintln!("{stderr}\nproxy logs:\n{}", proxy_logs(&stack));
        }
        assert_eq!(got, code, "{what:?}: {stderr}");
        assert_eq!(
            report.failed,
            0,
            "{what:?} through {}: {}",
            proxy.name(),
            report.summary()
        );
        assert_eq!(
            report.slow,
            0,
            "{what:?} through {}: {}",
            proxy.name(),
            report.summary()
        );
        assert!(report.sent >= 500, "too little load: {}", report.summary());
        total += report.sent;
    }
    assert!(total >= 5_000, "{total} requests in all");
    let h = stack.history();
    let statuses: Vec<&str> = h.iter().filter_map(|r| r["status"].as_str()).collect();
    assert_eq!(
        statuses,
        ["succeeded", "rolled_back", "succeeded", "succeeded"]
    );
}

#[test]
fn nginx_as_shipped_serves_every_request_in_time() {
    zero_failed_and_none_slow("px-nginx", Kind::Nginx);
}

#[test]
fn caddy_as_shipped_serves_every_request_in_time() {
    zero_failed_and_none_slow("px-caddy", Kind::Caddy);
}

/// The shipped configuration without the lines that start with `lines`.
fn without(proxy: Kind, lines: &[&str]) -> String {
    let (path, _) = proxy.example().expect("a shipped configuration");
    let text = std::fs::read_to_string(path).expect("shipped configuration");
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| !lines.iter().any(|drop| l.trim_start().starts_with(drop)))
        .collect();
    assert_eq!(
        text.lines().count(),
        kept.len() + lines.len(),
        "{lines:?} not in the file"
    );
    kept.join("\n")
}

/// The README used to advise `resolver 127.0.0.11 valid=1s` with a variable
/// upstream and nothing else: a cached answer names the stopped container
/// for up to a second or two, and nginx waits its default 60 s to connect.
#[test]
fn nginx_without_a_short_connect_timeout_stalls_requests() {
    let config = without(Kind::Nginx, &["proxy_connect_timeout"]);
    let stack = stack_behind("px-nginx-control", Kind::Nginx, Some(&config), "");
    stack.publish("web", "v1", app("v1", true));
    stack.publish("web", "v2", app("v2", true));
    assert_eq!(stack.deploy("v1").code, 0);
    let (_, _, report) = under_load(&stack, &["deploy", "--tag", "v2"]);
    assert!(report.slow > 0, "{}", report.summary());
}

/// A release whose new container fails its pre-traffic check never answers
/// a request through the proxy: the check ran while the container was on the
/// network under its own name only, and it was removed.
#[test]
fn a_release_failing_pre_traffic_checks_serves_no_one() {
    let pre_traffic = r#"
[[smoke]]
name = "new container"
http = "http://{container}:8080/smoke"
expect_json = { "$.status" = "ok" }
pre_traffic = "web"
"#;
    let stack = stack_behind("px-pretraffic", Kind::Nginx, None, pre_traffic);
    stack.publish("web", "v1", app("v1", true));
    stack.publish("web", "v2", app("v2", true));
    stack.publish("web", "v3", app("v3", false));
    assert_eq!(stack.deploy("v1").code, 0);

    let (code, stderr, report) = under_load(&stack, &["deploy", "--tag", "v2"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("pre-traffic") && stderr.contains("1 checks passed before it took traffic"),
        "{stderr}"
    );
    assert_eq!(report.failed + report.slow, 0, "{}", report.summary());
    assert!(report.versions.contains_key("v2"), "{}", report.summary());

    let (code, stderr, report) = under_load(&stack, &["deploy", "--tag", "v3"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("1 of 1 checks failed before it took traffic"),
        "{stderr}"
    );
    assert_eq!(report.failed + report.slow, 0, "{}", report.summary());
    assert_eq!(
        report.versions.get("v3"),
        None,
        "the failing release answered: {}",
        report.summary()
    );
    assert!(report.sent >= 500, "{}", report.summary());
    let h = stack.history();
    assert_eq!(h[0]["status"], "rolled_back");
    let reason = h[0]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("pre-traffic smoke check `new container` failed"),
        "{reason}"
    );
    // v2's container still serves, the v3 container is gone.
    let web = stack.containers("web");
    assert_eq!(web.len(), 1, "{web:?}");
}

/// A stop-first service cannot be kept out of rotation: its pre-traffic
/// checks run on its new container once it serves, and the output says so.
#[test]
fn pre_traffic_checks_of_a_stop_first_service_say_they_ran_late() {
    let mut stack = Stack::new("px-pretraffic-late");
    stack.extra_config = r#"
[[smoke]]
name = "new web"
http = "http://{container}:8080/smoke"
expect_json = { "$.status" = "ok" }
pre_traffic = "web"
"#
    .into();
    stack.write();
    stack.publish_good("v1");
    stack.publish("api", "v2", App::new("v2"));
    let mut broken = App::new("v2");
    broken.smoke_ok = false;
    stack.publish("web", "v2", broken);
    let run = stack.deploy("v1");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "1 checks passed after it took traffic: stop-first replaces the container in place"
        ),
        "{}",
        run.stderr
    );
    let run = stack.deploy("v2");
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("1 of 1 checks failed after it took traffic"),
        "{}",
        run.stderr
    );
    assert_eq!(stack.history()[0]["status"], "rolled_back");
}
