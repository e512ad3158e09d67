//! Remembers that `docker compose version` already said v2 for this very
//! Compose: every deploy's preflight ran it (0.1–0.25 s of compose start-up,
//! on a busy machine more), though the answer only changes when the `docker`
//! CLI or its compose plugin is replaced. The fingerprint is each binary's
//! path, size and modification time; a file under the config's `.slipway/`
//! holds the last one that passed. Anything unusual (no plugin found, extra
//! plugin folders, unreadable files) means no fingerprint, and the check runs.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

/// The file under `.slipway/` that holds the fingerprint of the last Compose
/// that passed the version check.
pub const FILE: &str = "compose-v2";

/// Where the docker CLI looks for its plugins, in its own order: the user's
/// config folder first, then the system folders.
pub fn plugin_dirs(docker_config: Option<&Path>, home: Option<&Path>) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    match (docker_config, home) {
        (Some(c), _) => dirs.push(c.join("cli-plugins")),
        (None, Some(h)) => dirs.push(h.join(".docker").join("cli-plugins")),
        (None, None) => {}
    }
    for d in [
        "/usr/local/lib/docker/cli-plugins",
        "/usr/local/libexec/docker/cli-plugins",
        "/usr/lib/docker/cli-plugins",
        "/usr/libexec/docker/cli-plugins",
    ] {
        dirs.push(PathBuf::from(d));
    }
    dirs
}

/// One binary as the fingerprint sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Stamp {
    pub path: PathBuf,
    pub size: u64,
    pub mtime_ns: u128,
}

/// The fingerprint of a docker CLI and its compose plugin, one line each.
pub fn fingerprint(docker: &Stamp, plugin: &Stamp) -> String {
    [docker, plugin]
        .iter()
        .map(|s| format!("{} {} {}\n", s.size, s.mtime_ns, s.path.display()))
        .collect()
}

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    let mtime_ns = meta
        .modified()
        .ok()?
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_nanos();
    meta.is_file().then(|| Stamp {
        path: path.to_path_buf(),
        size: meta.len(),
        mtime_ns,
    })
}

/// The fingerprint of the Compose `docker compose` would run now, if it can
/// be told for sure.
pub fn current() -> Option<String> {
    // Extra plugin folders change the search; leave that case to the check.
    if std::env::var_os("DOCKER_CLI_PLUGIN_EXTRA_DIRS").is_some() {
        return None;
    }
    let docker = std::env::var_os("PATH")
        .and_then(|p| std::env::split_paths(&p).find_map(|d| stamp(&d.join("docker"))))?;
    let config = std::env::var_os("DOCKER_CONFIG").map(PathBuf::from);
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let plugin = plugin_dirs(config.as_deref(), home.as_deref())
        .iter()
        .find_map(|d| stamp(&d.join("docker-compose")))?;
    Some(fingerprint(&docker, &plugin))
}

/// Whether `dir` remembers `print` as a Compose that passed.
pub fn passed(dir: &Path, print: &str) -> bool {
    std::fs::read_to_string(dir.join(FILE)).is_ok_and(|s| s == print)
}

/// Remember `print` as passed. A folder that cannot be written only costs
/// the next run the check again.
pub fn remember(dir: &Path, print: &str) {
    let _ = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(dir.join(FILE), print));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_users_plugin_folder_comes_before_the_system_ones() {
        let d = plugin_dirs(None, Some(Path::new("/home/a")));
        assert_eq!(d[0], PathBuf::from("/home/a/.docker/cli-plugins"));
        assert_eq!(
            d.last(),
            Some(&PathBuf::from("/usr/libexec/docker/cli-plugins"))
        );
        let d = plugin_dirs(Some(Path::new("/cfg")), Some(Path::new("/home/a")));
        assert_eq!(d[0], PathBuf::from("/cfg/cli-plugins"));
        assert_eq!(d.len(), 5);
        assert_eq!(plugin_dirs(None, None).len(), 4);
    }

    #[test]
    fn a_replaced_binary_changes_the_fingerprint() {
        let s = |p: &str, size, mtime_ns| Stamp {
            path: PathBuf::from(p),
            size,
            mtime_ns,
        };
        let docker = s("/usr/bin/docker", 10, 1);
        let a = fingerprint(&docker, &s("/x/docker-compose", 20, 2));
        assert_eq!(a, fingerprint(&docker, &s("/x/docker-compose", 20, 2)));
        assert_ne!(a, fingerprint(&docker, &s("/x/docker-compose", 21, 2)));
        assert_ne!(a, fingerprint(&docker, &s("/x/docker-compose", 20, 3)));
        assert_ne!(a, fingerprint(&docker, &s("/y/docker-compose", 20, 2)));
        assert_ne!(
            a,
            fingerprint(&s("/usr/bin/docker", 11, 1), &s("/x/docker-compose", 20, 2))
        );
    }

    #[test]
    fn only_the_same_fingerprint_counts_as_passed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let state = dir.path().join(".slipway");
        assert!(!passed(&state, "a\n"));
        remember(&state, "a\n");
        assert!(passed(&state, "a\n"));
        assert!(!passed(&state, "b\n"));
    }
}
