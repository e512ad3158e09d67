//! What the controller puts on the host before a remote run: its own binary
//! (checked by architecture, stored by sha256, uploaded only when missing and
//! verified there), and the project's files (slipway.toml, the compose files,
//! the env file at mode 0600) as one tar stream on stdin, so no content ever
//! appears on a command line.

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::config::{Config, Environment};
use crate::error::{Error, Result};

/// Where a binary with this checksum lives on the host.
pub fn remote_bin(sha: &str) -> String {
    format!("\"$HOME\"/.cache/slipway/bin/slipway-{sha}")
}

pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// A word for a POSIX shell, quoted.
pub fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:@,".contains(c))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// `dir` as a shell word: `~/x` is the login's home.
pub fn shell_dir(dir: &str) -> String {
    match dir.strip_prefix("~/") {
        Some(rest) => format!("\"$HOME\"/{}", quote(rest)),
        None if dir == "~" => "\"$HOME\"".into(),
        None => quote(dir),
    }
}

/// One round trip: the host's architecture, and whether our binary is there
/// (named by its checksum, verified before it was moved into place, so its
/// presence is enough: no re-hash of a large file on every run).
pub fn probe_script(sha: &str) -> String {
    let bin = remote_bin(sha);
    format!("uname -m; if [ -x {bin} ]; then echo present; else echo missing; fi")
}

/// Store the binary on stdin under its checksum, verified before it is used.
pub fn upload_script(sha: &str) -> String {
    let bin = remote_bin(sha);
    format!(
        "set -e; mkdir -p \"$HOME\"/.cache/slipway/bin; t=$(mktemp \"$HOME\"/.cache/slipway/bin/.upload.XXXXXX); \
         cat > \"$t\"; if [ \"$(sha256sum \"$t\" | cut -d' ' -f1)\" != {sha} ]; then rm -f \"$t\"; \
         echo 'checksum mismatch after upload' >&2; exit 1; fi; chmod 755 \"$t\"; mv -f \"$t\" {bin}"
    )
}

/// Unpack the project files (tar on stdin) into `dir`, owner-only, while
/// holding the environment's lock (`.slipway/<env>.lock`, the flock the
/// host's run takes; opened without truncating its holder record). A run
/// holding it reads these compose files for its rollout and its way back,
/// so they are never rewritten under it: then the files are left as they
/// are (the host's run says who holds the lock) after waiting up to
/// `wait_s` seconds (`--wait`).
pub fn unpack_script(dir: &str, env: &str, wait_s: u64) -> String {
    let d = shell_dir(dir);
    let lock = format!("{d}/.slipway/{}", quote(&format!("{env}.lock")));
    format!(
        "set -e; umask 077; mkdir -p {d}/.slipway; : >> {lock}; exec 9< {lock}; \
         if flock -w {wait_s} 9; then tar -x -f - -C {d} --no-same-owner; else cat > /dev/null; fi"
    )
}

/// Whether `uname -m` on the host runs a binary built for `arch` (Rust's name).
pub fn arch_matches(arch: &str, uname: &str) -> bool {
    match arch {
        "x86_64" => uname == "x86_64" || uname == "amd64",
        "aarch64" => uname == "aarch64" || uname == "arm64",
        "arm" => uname.starts_with("arm"),
        other => uname == other,
    }
}

/// A path of the project as it will sit under `dir` on the host.
fn inside(cfg: &Config, what: &str, file: &str) -> Result<String> {
    let p = Path::new(file);
    let clean = p.is_relative()
        && p.components().all(|c| {
            matches!(
                c,
                std::path::Component::Normal(_) | std::path::Component::CurDir
            )
        });
    if !clean {
        return Err(Error::Usage(format!(
            "{what} `{file}`: a remote environment uploads the project's files to its `dir`, so they must be inside {} (no absolute path, no `..`)",
            cfg.dir.display()
        )));
    }
    Ok(file.trim_start_matches("./").to_string())
}

/// The project files as a tar stream: slipway.toml, the compose files and,
/// if `with_env_file` and it exists, the env file (mode 0600).
pub fn bundle(cfg: &Config, env: &Environment, with_env_file: bool) -> Result<Vec<u8>> {
    let mut files: Vec<(String, std::path::PathBuf, u32)> =
        vec![("slipway.toml".into(), cfg.path.clone(), 0o600)];
    for f in &cfg.compose_files {
        files.push((inside(cfg, "compose file", f)?, cfg.dir.join(f), 0o600));
    }
    if let Some(f) = &env.env_file {
        let local = cfg.dir.join(f);
        if local.exists() {
            files.push((inside(cfg, "env_file", f)?, local, 0o600));
        } else if with_env_file {
            return Err(Error::Usage(format!(
                "env_file {} does not exist (it is uploaded to the host)",
                local.display()
            )));
        }
    }
    let mut tar = tar::Builder::new(Vec::new());
    for (name, path, mode) in files {
        let data = std::fs::read(&path)
            .map_err(|e| Error::Usage(format!("cannot read {}: {e}", path.display())))?;
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_mtime(0);
        h.set_cksum();
        tar.append_data(&mut h, &name, data.as_slice())
            .map_err(|e| Error::env(format!("cannot pack {name}: {e}")))?;
    }
    tar.into_inner()
        .map_err(|e| Error::env(format!("cannot pack the project files: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words() {
        assert_eq!(quote("deploy"), "deploy");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote("$(id)"), "'$(id)'");
        assert_eq!(quote(""), "''");
        assert_eq!(shell_dir("~/apps/a b"), "\"$HOME\"/'apps/a b'");
        assert_eq!(shell_dir("/srv/app"), "/srv/app");
    }

    #[test]
    fn files_are_unpacked_only_under_the_environments_lock() {
        let script = unpack_script("~/app", "prod", 30);
        assert!(
            script.contains(
                ": >> \"$HOME\"/app/.slipway/prod.lock; exec 9< \"$HOME\"/app/.slipway/prod.lock"
            ),
            "{script}"
        );
        assert!(script.contains("if flock -w 30 9; then tar -x"), "{script}");
        assert!(script.contains("else cat > /dev/null; fi"), "{script}");
    }

    #[test]
    fn architectures() {
        assert!(arch_matches("x86_64", "x86_64"));
        assert!(arch_matches("aarch64", "arm64"));
        assert!(!arch_matches("x86_64", "aarch64"));
    }

    #[test]
    fn bundle_keeps_files_inside_and_modes() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("docker-compose.yml"), "services: {}\n").expect("w");
        std::fs::write(dir.path().join(".env"), "SECRET=1\n").expect("w");
        let text = "project = \"p\"\n[services.api]\n[environments.s]\nhost = \"ssh://h\"\nenv_file = \".env\"\n";
        std::fs::write(dir.path().join("slipway.toml"), text).expect("w");
        let cfg = Config::load(&dir.path().join("slipway.toml")).expect("config");
        let env = cfg.environments["s"].clone();
        let bytes = bundle(&cfg, &env, true).expect("bundle");
        let mut names = Vec::new();
        for e in tar::Archive::new(bytes.as_slice()).entries().expect("tar") {
            let e = e.expect("entry");
            names.push((
                e.path().expect("path").display().to_string(),
                e.header().mode().expect("mode"),
            ));
        }
        assert_eq!(
            names,
            [
                ("slipway.toml".to_string(), 0o600),
                ("docker-compose.yml".to_string(), 0o600),
                (".env".to_string(), 0o600)
            ]
        );
        let mut outside = cfg.clone();
        outside.compose_files = vec!["../x.yml".into()];
        assert!(bundle(&outside, &env, true).is_err());
        std::fs::remove_file(dir.path().join(".env")).expect("rm");
        assert!(bundle(&cfg, &env, true).is_err());
        assert!(bundle(&cfg, &env, false).is_ok());
    }
}
