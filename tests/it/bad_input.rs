//! Bad input: generated configs, tags and names. Nothing panics, every config
//! error names `file:line:col`, and every rejection is exit code 2.
//! Prints a `BADINPUT …` line that scripts/faults.sh sums up.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use slipway::config::names::{check_name, check_repository, check_tag};
use slipway::config::Config;
use slipway::error::{Error, Exit};

static TRIED: AtomicUsize = AtomicUsize::new(0);

const GOOD: &str = r#"project = "goodgo"
compose_files = ["docker-compose.yml"]
[deploy]
health_timeout = "30s"
keep_releases = 3
[environments.staging]
url = "http://127.0.0.1:8080"
tag = "staging-latest"
[services.api]
image = "ghcr.io/acme/api"
health = { http = "{url}/health", expect_json = { "$.status" = "ok" } }
[[smoke]]
name = "health"
http = "{url}/health"
expect_status = 200
"#;

/// A parse either succeeds or fails as a located config error with exit 2.
fn judge(text: &str) {
    match Config::parse(Path::new("slipway.toml"), text) {
        Ok(_) => {}
        Err(e) => {
            assert_eq!(e.exit(), Exit::Usage, "{e}");
            match &e {
                Error::Config { location, .. } => {
                    let parts: Vec<&str> = location.split(':').collect();
                    assert_eq!(parts.len(), 3, "no line:col in {location}");
                    assert!(
                        parts[1].parse::<usize>().is_ok() && parts[2].parse::<usize>().is_ok(),
                        "{location}"
                    );
                }
                other => panic!("not a located config error: {other}"),
            }
        }
    }
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        "[ -~]{0,40}".prop_map(|s| format!("{s:?}")),
        Just("true".to_string()),
        Just("[1, \"a\", {}]".to_string()),
        Just("{ x = 1 }".to_string()),
        Just("\"--help\"".to_string()),
        Just("\"../../etc/passwd\"".to_string()),
        Just("\"$(rm -rf /); `id`\"".to_string()),
        Just("\"\\u0000\"".to_string()),
        "[a-z_]{1,12}".prop_map(|s| format!("\"{s}\"")),
    ]
}

const CASES: u32 = 1500;

/// Run one property for CASES generated inputs, counting them.
fn check<S: Strategy>(strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>) {
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: CASES,
        ..ProptestConfig::default()
    });
    if let Err(e) = runner.run(&strategy, |v| {
        TRIED.fetch_add(1, Ordering::Relaxed);
        test(v)
    }) {
        panic!("{e}");
    }
}

#[test]
fn generated_configs_tags_and_names() {
    // Arbitrary text.
    check("\\PC{0,300}", |text: String| {
        judge(&text);
        Ok(())
    });
    // A value replaced anywhere in a valid config.
    check((0usize..16, value()), |(line, v)| {
        let mut lines: Vec<String> = GOOD.lines().map(str::to_string).collect();
        let i = line % lines.len();
        if let Some((key, _)) = lines[i].clone().split_once(" = ") {
            lines[i] = format!("{key} = {v}");
        }
        judge(&lines.join("\n"));
        Ok(())
    });
    // An extra key anywhere.
    check((0usize..16, "[a-z_]{1,14}", value()), |(line, key, v)| {
        let mut lines: Vec<String> = GOOD.lines().map(str::to_string).collect();
        let i = line % (lines.len() + 1);
        lines.insert(i, format!("{key} = {v}"));
        judge(&lines.join("\n"));
        Ok(())
    });
    // Whatever a name check accepts can never be read as a flag, a path or two words.
    check("\\PC{0,80}", |s: String| {
        for ok in [check_tag(&s).is_ok(), check_name("service", &s).is_ok()] {
            if ok {
                prop_assert!(
                    !s.starts_with(['-', '.'])
                        && !s.contains('/')
                        && !s.contains(char::is_whitespace)
                );
            }
        }
        if check_repository(&s).is_ok() {
            prop_assert!(
                !s.starts_with('-')
                    && !s.contains("..")
                    && !s.contains(char::is_whitespace)
                    && !s.contains('@')
            );
        }
        Ok(())
    });
    eprintln!(
        "BADINPUT generated inputs judged: {}",
        TRIED.load(Ordering::Relaxed)
    );
}

#[test]
fn an_enormous_config_is_refused_quickly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("slipway.toml");
    std::fs::write(&path, "# ".repeat(3 * 1024 * 1024)).expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_slipway"))
        .args(["--config", &path.display().to_string(), "check"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("refused"));
    eprintln!("BADINPUT a 6 MiB config: refused, exit 2");
}
