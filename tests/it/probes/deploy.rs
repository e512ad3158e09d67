//! Probes inside the deploy transaction, against the real engine: an `exec`
//! smoke check that fails rolls the release back, an env file that breaks a
//! rule stops the deploy at preflight, and the env file canary stays out of
//! history and output.

use slipway::fixture::App;

use super::secrets::CANARY;
use crate::harness::Stack;

/// Replace the stack's `[[smoke]]` suite, and give its environment an env file.
fn configure(stack: &Stack, env_file: Option<&str>, tail: &str) {
    let path = stack.config_path();
    let config = std::fs::read_to_string(&path).expect("config");
    let head = config.split("[[smoke]]").next().unwrap_or_default();
    let head = match env_file {
        Some(f) => head.replace(
            "[environments.test]\n",
            &format!("[environments.test]\nenv_file = \"{f}\"\n"),
        ),
        None => head.to_string(),
    };
    std::fs::write(&path, format!("{head}{tail}")).expect("config");
}

fn hay(run: &crate::harness::Run) -> String {
    format!("{}{}", run.stdout, run.stderr)
}

#[test]
fn a_failing_exec_smoke_check_rolls_the_release_back() {
    let stack = Stack::new("execsmoke");
    let (api1, web1) = stack.publish_good("v1");
    let mut broken = App::new("v2");
    broken.smoke_ok = false;
    stack.publish("api", "v2", broken);
    stack.publish("web", "v2", App::new("v2"));
    configure(
        &stack,
        None,
        r#"[[smoke]]
name = "api smoke file"
exec = { service = "api", command = ["cat", "/www/smoke"] }
expect_stdout = '"status":"ok"'

[[smoke]]
name = "exec sees SLIPWAY variables"
exec = { service = "api", command = ["sh", "-c", "test \"$SLIPWAY_ENV\" = test && echo tag=$SLIPWAY_TAG"] }
expect_stdout = { matches = '^tag={tag}$' }
"#,
    );

    let run = stack.deploy("v1");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("✓ api smoke file"), "{}", run.stderr);
    assert!(
        run.stderr.contains("✓ exec sees SLIPWAY variables"),
        "{}",
        run.stderr
    );

    let run = stack.deploy("v2");
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("✗ api smoke file"), "{}", run.stderr);
    assert_eq!(stack.running_image("api"), api1);
    assert_eq!(stack.running_image("web"), web1);
    let h = stack.history();
    assert_eq!(h[0]["status"], "rolled_back");
    let reason = h[0]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("smoke check `api smoke file` failed: stdout: expected to contain"),
        "{reason}"
    );
    assert!(reason.contains("broken"), "{reason}");
    assert!(
        !reason.contains("exec sees SLIPWAY variables"),
        "only the exec check that should fail failed: {reason}"
    );

    // The exec kind's other assertions, run alone against the restored stack.
    configure(
        &stack,
        None,
        r#"[[smoke]]
name = "pass exec exit code"
exec = { service = "api", command = ["sh", "-c", "exit 3"] }
expect_exit = 3

[[smoke]]
name = "fail exec exit code"
exec = { service = "api", command = ["test", "-f", "/www/missing"] }

[[smoke]]
name = "fail exec timeout"
exec = { service = "api", command = ["sleep", "30"] }
timeout = "1s"

[[smoke]]
name = "fail exec in a service that does not exist"
exec = { service = "nosuch", command = ["true"] }
"#,
    );
    let run = stack.slipway(&["smoke", "--json"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let checks = run.json()["checks"].as_array().cloned().expect("checks");
    let ok: Vec<bool> = checks.iter().map(|c| c["ok"] == true).collect();
    assert_eq!(ok, vec![true, false, false, false], "{checks:?}");
    assert_eq!(checks[1]["failures"][0]["what"], "exit code");
    assert_eq!(checks[1]["failures"][0]["actual"], "1");
    assert_eq!(checks[2]["error"], "no result within 1s (killed)");
    assert!(
        checks[3]["excerpt"]
            .as_str()
            .unwrap_or_default()
            .contains("nosuch"),
        "{}",
        checks[3]
    );
}

#[test]
fn an_env_file_that_breaks_a_rule_stops_the_deploy_at_preflight() {
    let stack = Stack::new("envrules");
    let (api1, web1) = stack.publish_good("v1");
    stack.publish_good("v2");
    configure(
        &stack,
        Some(".env"),
        r#"[env_rules.vars.NODE_ENV]
equals = "production"

[env_rules.vars.JWT_SECRET]
required = true
min_length = 32
"#,
    );
    let env = stack.path().join(".env");
    std::fs::write(
        &env,
        format!("NODE_ENV=production\nJWT_SECRET={CANARY}-long-enough\n"),
    )
    .expect("env");
    let run = stack.deploy("v1");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let (api_c, web_c) = (stack.container("api"), stack.container("web"));

    std::fs::write(
        &env,
        format!("NODE_ENV=development\nJWT_SECRET={}\n", &CANARY[..12]),
    )
    .expect("env");
    let run = stack.deploy("v2");
    assert_eq!(run.code, 2, "{}", run.stderr);
    for expected in [
        ".env:1: NODE_ENV: must be `production`",
        ".env:2: JWT_SECRET: must be at least 32 characters long",
        "nothing was changed",
    ] {
        assert!(run.stderr.contains(expected), "{expected}: {}", run.stderr);
    }
    assert!(!hay(&run).contains("development") && !hay(&run).contains(&CANARY[..12]));
    // Nothing was recreated, nothing was recorded.
    assert_eq!(stack.container("api"), api_c, "api was recreated");
    assert_eq!(stack.container("web"), web_c, "web was recreated");
    assert_eq!(stack.running_image("api"), api1);
    assert_eq!(stack.running_image("web"), web1);
    let h = stack.history();
    assert_eq!(h.len(), 1, "{h:?}");
    assert_eq!(h[0]["tag"], "v1");
}

#[test]
fn the_env_file_canary_stays_out_of_deploy_output_and_history() {
    let stack = Stack::new("canary");
    let (api1, _) = stack.publish_good("v1");
    stack.publish_good("v2");
    configure(
        &stack,
        Some(".env"),
        r#"[[smoke]]
name = "script that dumps its config on failure"
command = ["sh", "-c", "test \"$SLIPWAY_TAG\" != v2 || { echo 'config:'; cat .env; exit 1; }"]
"#,
    );
    std::fs::write(stack.path().join(".env"), format!("JWT_SECRET={CANARY}\n")).expect("env");
    let run = stack.deploy("v1");
    assert_eq!(run.code, 0, "{}", run.stderr);

    let junit = stack.path().join("deploy-smoke.xml");
    let run = stack.slipway(&[
        "deploy",
        "--tag",
        "v2",
        "--junit",
        junit.to_str().expect("path"),
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(stack.running_image("api"), api1);
    assert!(run.stderr.contains("[JWT_SECRET]"), "{}", run.stderr);
    assert!(
        !hay(&run).contains(CANARY),
        "deploy output leaked the canary"
    );
    let xml = std::fs::read_to_string(&junit).expect("junit written by deploy");
    assert!(xml.contains("failures=\"1\""), "{xml}");
    assert!(!xml.contains(CANARY), "{xml}");
    for args in [&["history", "--json"][..], &["status", "--json"][..]] {
        let run = stack.slipway(args);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(!hay(&run).contains(CANARY), "{args:?} leaked the canary");
    }
    let h = stack.history();
    assert!(
        h[0]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("JWT_SECRET=[JWT_SECRET]"),
        "{}",
        h[0]["reason"]
    );
}
