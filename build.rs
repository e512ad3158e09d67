//! Names the commit a binary was built from, for `slipway --version`:
//! `SLIPWAY_BUILD_COMMIT` if set (packaging from a tarball), else
//! `git rev-parse`, else "unknown commit" (not a git checkout, no git).

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !s.is_empty()).then_some(s)
}

fn main() {
    println!("cargo:rerun-if-env-changed=SLIPWAY_BUILD_COMMIT");
    let commit = std::env::var("SLIPWAY_BUILD_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]));
    // Rebuild when HEAD moves: HEAD itself (a checkout) and the checked-out
    // branch's ref (a commit); not other branches' refs, which would rebuild
    // on every commit anyone makes in a shared repository.
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        println!("cargo:rerun-if-changed={dir}/HEAD");
    }
    if let (Some(dir), Some(branch)) = (
        git(&["rev-parse", "--git-common-dir"]),
        git(&["symbolic-ref", "-q", "HEAD"]),
    ) {
        // A path that does not exist would rerun this script on every build.
        for path in [format!("{dir}/{branch}"), format!("{dir}/packed-refs")] {
            if std::path::Path::new(&path).exists() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
    let version = match commit {
        Some(c) => format!("{} (commit {c})", env!("CARGO_PKG_VERSION")),
        None => format!("{} (unknown commit)", env!("CARGO_PKG_VERSION")),
    };
    println!("cargo:rustc-env=SLIPWAY_VERSION={version}");
}
