//! A canary planted in the env file never appears in any output, report or
//! JUnit file, even when a server, a script or a broken rule puts it in front
//! of slipway.

use super::http_server;
use super::smoke::Project;

pub const CANARY: &str = "canary-5e1b9c04d7a2-do-not-print";

fn assert_clean(what: &str, text: &str) {
    assert!(
        !text.contains(CANARY) && !text.contains("5e1b9c04d7a2"),
        "the canary leaked into {what}:\n{text}"
    );
}

#[test]
fn the_env_file_canary_never_leaks_from_smoke_or_check() {
    let server = http_server::start(CANARY);
    let p = Project::new(
        &server.url(),
        r#"env_file = ".env"

[services.api]

[env_rules.vars.JWT_SECRET]
min_length = 200
not_equals = ["x"]
one_of = ["a", "b"]

[[smoke]]
name = "server echoes the secret in its body"
http = "{url}/leak"

[[smoke]]
name = "server echoes the secret in a header"
http = "{url}/leak"
expect_status = 500
expect_header = { "X-Debug" = "nope" }

[[smoke]]
name = "server echoes the secret in JSON"
http = "{url}/leak"
expect_status = 500
expect_json = { "$.jwt" = "x" }

[[smoke]]
name = "script prints the env file"
command = ["sh", "-c", "cat .env; cat .env >&2; exit 1"]

[[smoke]]
name = "script stdout is compared"
command = ["cat", ".env"]
expect_stdout = "nothing like this"
"#,
    );
    std::fs::write(
        p.path().join(".env"),
        format!("NODE_ENV=production\nJWT_SECRET={CANARY}\n"),
    )
    .expect("env");
    let junit = p.path().join("smoke.xml");
    let run = p.slipway(&["smoke", "--json", "--junit", junit.to_str().expect("path")]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_clean("smoke --json stdout", &run.stdout);
    assert_clean("smoke --json stderr", &run.stderr);
    let xml = std::fs::read_to_string(&junit).expect("junit");
    assert_clean("the JUnit file", &xml);
    // Redacted, not dropped: the report says which variable was there.
    assert!(run.stdout.contains("[JWT_SECRET]"), "{}", run.stdout);
    assert!(xml.contains("[JWT_SECRET]"), "{xml}");
    let checks = run.json()["checks"].as_array().cloned().expect("checks");
    assert!(checks.iter().all(|c| c["ok"] == false), "every check fails");

    let run = p.slipway(&["smoke"]);
    assert_eq!(run.code, 1);
    assert_clean(
        "smoke's text report",
        &format!("{}{}", run.stdout, run.stderr),
    );
    assert!(run.stderr.contains("[JWT_SECRET]"), "{}", run.stderr);

    for args in [&["check"][..], &["check", "--json"][..]] {
        let run = p.slipway(args);
        assert_eq!(run.code, 2, "{}", run.stderr);
        assert!(run
            .stderr
            .contains(".env:2: JWT_SECRET: must be at least 200 characters long"));
        assert_clean("check", &format!("{}{}", run.stdout, run.stderr));
    }
}
