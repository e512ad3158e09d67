//! Registry credentials for the Engine API calls the docker CLI would make
//! with the user's login: asking a registry for a tag's digest, and
//! `--with-registry-auth` on a service update so every node can pull.
//! Read as the CLI reads them: `$DOCKER_CONFIG/config.json` (default
//! `~/.docker`), a credential helper (`credHelpers`, `credsStore`) or the
//! `auths` entry. None found: the call goes without, as for a public image.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use base64::Engine as _;
use bollard::auth::DockerCredentials;

use crate::config::names::split_image;

/// The registry host of an image reference (`docker.io` for bare names).
pub fn registry_of(image: &str) -> String {
    let repo = split_image(image).0;
    match repo.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            first.to_string()
        }
        _ => "https://index.docker.io/v1/".to_string(),
    }
}

fn config_file() -> Option<PathBuf> {
    let dir = std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))?;
    Some(dir.join("config.json"))
}

/// The user's credentials for the registry `image` comes from, if any.
pub fn credentials_for(image: &str) -> Option<DockerCredentials> {
    let text = std::fs::read_to_string(config_file()?).ok()?;
    let config: serde_json::Value = serde_json::from_str(&text).ok()?;
    let server = registry_of(image);
    let helper = config["credHelpers"][&server]
        .as_str()
        .or_else(|| config["credsStore"].as_str());
    if let Some(helper) = helper {
        if let Some(c) = from_helper(helper, &server) {
            return Some(c);
        }
    }
    from_auths(&config, &server)
}

/// `auths.<server>.auth`: base64 of `user:password`.
pub fn from_auths(config: &serde_json::Value, server: &str) -> Option<DockerCredentials> {
    let auth = config["auths"][server]["auth"].as_str()?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(auth)
        .ok()?;
    let (user, password) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    Some(DockerCredentials {
        username: Some(user.to_string()),
        password: Some(password.to_string()),
        serveraddress: Some(server.to_string()),
        ..Default::default()
    })
}

/// `docker-credential-<helper> get`, the server on stdin.
fn from_helper(helper: &str, server: &str) -> Option<DockerCredentials> {
    use std::io::Write;
    let mut child = Command::new(format!("docker-credential-{helper}"))
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(server.as_bytes()).ok()?;
    let out = child.wait_with_output().ok()?;
    if !out.status.success() {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    Some(DockerCredentials {
        username: v["Username"].as_str().map(str::to_string),
        password: v["Secret"].as_str().map(str::to_string),
        serveraddress: Some(server.to_string()),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_hosts_as_the_cli_names_them() {
        assert_eq!(registry_of("ghcr.io/acme/api:v1"), "ghcr.io");
        assert_eq!(
            registry_of("10.0.0.1:5000/acme/api@sha256:ab"),
            "10.0.0.1:5000"
        );
        assert_eq!(registry_of("localhost/api"), "localhost");
        assert_eq!(registry_of("acme/api:v1"), "https://index.docker.io/v1/");
        assert_eq!(registry_of("redis:7"), "https://index.docker.io/v1/");
    }

    #[test]
    fn auths_entries_decode_to_user_and_password() {
        // base64("deploy:s3cret")
        let config = serde_json::json!({"auths": {"ghcr.io": {"auth": "ZGVwbG95OnMzY3JldA=="}}});
        let c = from_auths(&config, "ghcr.io").expect("found");
        assert_eq!(c.username.as_deref(), Some("deploy"));
        assert_eq!(c.password.as_deref(), Some("s3cret"));
        assert!(from_auths(&config, "docker.io").is_none());
    }
}
