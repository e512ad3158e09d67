//! Bad config: exit 2, file:line:col and the key, nothing started.

use std::process::Command;

fn slipway_with(config: &str, args: &[&str]) -> (i32, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("slipway.toml");
    std::fs::write(&path, config).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_slipway"))
        .arg("--config")
        .arg(&path)
        .args(args)
        .output()
        .expect("run");
    let stderr =
        String::from_utf8_lossy(&out.stderr).replace(&path.display().to_string(), "slipway.toml");
    (out.status.code().unwrap_or(-1), stderr)
}

const GOOD: &str = "project = \"p\"\n[environments.staging]\nurl = \"http://127.0.0.1:1\"\n[services.api]\nimage = \"r/api\"\n";

#[test]
fn an_unknown_key_is_exit_2_with_location_and_suggestion() {
    let (code, err) = slipway_with(
        &GOOD.replace("image =", "imag ="),
        &["deploy", "--tag", "v2"],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("slipway.toml:5:1: services.api.imag: unknown field `imag`"),
        "{err}"
    );
    assert!(err.contains("did you mean `image`"), "{err}");
}

#[test]
fn a_wrong_type_is_exit_2_with_location() {
    let bad = format!("{GOOD}[deploy]\nkeep_releases = \"five\"\n");
    let (code, err) = slipway_with(&bad, &["check"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("slipway.toml:7:17: deploy.keep_releases: invalid type"),
        "{err}"
    );
}

#[test]
fn a_hostile_tag_is_refused_before_anything_runs() {
    for tag in ["--help", "../x", "v1;rm -rf /", "$(id)"] {
        let (code, err) = slipway_with(GOOD, &["deploy", &format!("--tag={tag}")]);
        assert_eq!(code, 2, "{tag}: {err}");
        assert!(err.contains("not a valid image tag"), "{err}");
    }
}

#[test]
fn a_missing_config_says_what_to_do() {
    let out = Command::new(env!("CARGO_BIN_EXE_slipway"))
        .args(["--config", "/nonexistent/slipway.toml", "status"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--config"));
}

#[test]
fn the_goodgo_example_checks_clean() {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/goodgo/slipway.toml");
    for env in ["staging", "production"] {
        let out = Command::new(env!("CARGO_BIN_EXE_slipway"))
            .args(["--config", config, "--env", env, "check"])
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{err}");
        assert!(err.contains("api ← ghcr.io/goodgo/goodgo-api"), "{err}");
    }
}
