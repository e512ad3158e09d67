//! What a team installs: `--version` names the commit, the completion
//! scripts load in bash, the man page renders; the `.deb` itself is built and
//! installed by scripts/deb-test.sh (it needs root and cargo-deb).

use std::process::Command;

fn slipway(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_slipway"))
        .args(args)
        .output()
        .expect("run slipway");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn version_names_the_commit_it_was_built_from() {
    let (code, out) = slipway(&["--version"]);
    assert_eq!(code, 0);
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    match head {
        Some(commit) => assert_eq!(
            out.trim(),
            format!("slipway {} (commit {commit})", env!("CARGO_PKG_VERSION"))
        ),
        None => assert!(out.contains("commit"), "{out}"),
    }
}

#[test]
fn completions_load_in_bash_and_the_man_page_renders() {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("slipway.bash");
    let (code, text) = slipway(&["completions", "bash"]);
    assert_eq!(code, 0);
    std::fs::write(&script, text).expect("write");
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source '{}' && complete -p slipway",
            script.display()
        ))
        .output()
        .expect("bash");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(shown.contains("-F _slipway slipway"), "{shown}");
    // What the completion offers after `slipway de`.
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source '{}'; COMP_WORDS=(slipway de); COMP_CWORD=1; COMP_LINE='slipway de'; COMP_POINT=10; _slipway slipway de slipway; echo \"${{COMPREPLY[@]}}\"",
            script.display()
        ))
        .output()
        .expect("bash");
    let offered = String::from_utf8_lossy(&out.stdout);
    assert!(
        offered.split_whitespace().any(|w| w == "deploy"),
        "{offered}"
    );

    for shell in ["zsh", "fish"] {
        let (code, text) = slipway(&["completions", shell]);
        assert_eq!(code, 0);
        assert!(text.contains("rollback"), "{shell}");
    }
    let (code, man) = slipway(&["man"]);
    assert_eq!(code, 0);
    assert!(man.contains(".TH slipway 1"), "{man}");
    assert!(man.contains("deploy"));
}
