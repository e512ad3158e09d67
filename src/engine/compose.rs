//! `docker compose` invocations as data.
//!
//! Compose owns pulling and (re)creating containers; slipway decides *which*
//! image each service runs by adding a generated override file that pins the
//! service to an exact, slipway-owned tag. Every function here is pure and
//! returns a [`Cmd`]; `Compose::model` parses `docker compose config` output.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::exec::Cmd;
use crate::config::redact::Secrets;

/// How to address one compose project.
#[derive(Debug, Clone)]
pub struct Compose {
    pub project: String,
    pub dir: PathBuf,
    pub files: Vec<String>,
    pub env_file: Option<PathBuf>,
    /// What its output must not quote (its commands' [`Cmd::hide`]).
    pub secrets: Secrets,
}

impl Compose {
    fn base(&self, overrides: &[&Path]) -> Cmd {
        let mut cmd = Cmd::new("docker").args(["compose", "--project-name", &self.project]);
        for f in &self.files {
            cmd = cmd.args(["--file", f]);
        }
        for f in overrides {
            cmd = cmd.arg("--file").arg(f.to_string_lossy());
        }
        if let Some(e) = &self.env_file {
            cmd = cmd.arg("--env-file").arg(e.to_string_lossy());
        }
        cmd.cwd = Some(self.dir.clone());
        cmd.hide = self.secrets.clone();
        cmd
    }

    pub fn version() -> Cmd {
        Cmd::new("docker").args(["compose", "version", "--short"])
    }

    /// The resolved model (interpolation and merges done by compose itself).
    pub fn config(&self) -> Cmd {
        self.base(&[]).args(["config", "--format", "json"])
    }

    /// The model of compose files no slipway.toml names yet (`slipway init`):
    /// without `--project-name`, compose names the project itself (its
    /// `name:` key, else the folder), exactly as a team's `docker compose up` did.
    pub fn config_of(dir: &Path, files: &[String], project: Option<&str>) -> Cmd {
        let mut cmd = Cmd::new("docker").arg("compose");
        if let Some(p) = project {
            cmd = cmd.args(["--project-name", p]);
        }
        for f in files {
            cmd = cmd.args(["--file", f]);
        }
        cmd = cmd.args(["config", "--format", "json"]);
        cmd.cwd = Some(dir.to_path_buf());
        // Compose reads the folder's `.env` here too, and quotes a line of it
        // it cannot parse.
        cmd.hide = Secrets::from_env_file(crate::config::compose_dotenv(dir, files).as_deref());
        cmd
    }

    pub fn pull(&self, overrides: &Path, services: &[String]) -> Cmd {
        self.base(&[overrides])
            .args(["pull", "--quiet", "--"])
            .args(services.iter().cloned())
    }

    /// Recreate one service on the image the override pins, leaving its dependencies alone.
    pub fn up(&self, overrides: &Path, service: &str) -> Cmd {
        self.base(&[overrides])
            .args(["up", "--detach", "--no-deps", "--no-build", "--", service])
    }

    /// [`Compose::up`] for several services in one compose run: compose
    /// recreates them at once, and its start-up (about 0.5 s of CPU) is paid
    /// once instead of once per service.
    pub fn up_many(&self, overrides: &Path, services: &[String]) -> Cmd {
        self.base(&[overrides])
            .args(["up", "--detach", "--no-deps", "--no-build", "--"])
            .args(services.iter().map(String::as_str))
    }

    /// Start one more container of a service beside the ones it has (start-first,
    /// and one-replica-at-a-time rollouts): `scale` is how many it will then
    /// have; existing containers are left exactly as they are.
    pub fn up_scaled(&self, overrides: &Path, service: &str, scale: usize) -> Cmd {
        self.base(&[overrides])
            .args(["up", "--detach", "--no-deps", "--no-build", "--no-recreate"])
            .arg("--scale")
            .arg(format!("{service}={scale}"))
            .args(["--", service])
    }

    /// Like [`Compose::up_scaled`], but the new container is only created,
    /// not started: it can be kept out of rotation before it first runs.
    pub fn create_scaled(&self, overrides: &Path, service: &str, scale: usize) -> Cmd {
        self.base(&[overrides])
            .args([
                "up",
                "--no-start",
                "--no-deps",
                "--no-build",
                "--no-recreate",
            ])
            .arg("--scale")
            .arg(format!("{service}={scale}"))
            .args(["--", service])
    }

    /// The config hash compose gives each service's containers (label
    /// `com.docker.compose.config-hash`): equal means up to date.
    pub fn config_hashes(&self, overrides: &Path, services: &[String]) -> Cmd {
        self.base(&[overrides])
            .args(["config", "--hash"])
            .arg(services.join(","))
    }

    /// Start services slipway does not deploy (dependencies of those it
    /// does) on the compose file's own images: ones that exist are started,
    /// never recreated; their own dependencies are listed by the caller.
    pub fn up_dependencies(&self, services: &[String]) -> Cmd {
        self.base(&[])
            .args([
                "up",
                "--detach",
                "--no-deps",
                "--no-recreate",
                "--no-build",
                "--",
            ])
            .args(services.iter().cloned())
    }

    /// Stop and remove a service's containers (a first deploy with nothing to go back to).
    pub fn remove(&self, overrides: &Path, service: &str) -> Cmd {
        self.base(&[overrides])
            .args(["rm", "--stop", "--force", "--", service])
    }

    pub fn exec(&self, service: &str, command: &[String]) -> Cmd {
        self.base(&[])
            .args(["exec", "-T", "--", service])
            .args(command.iter().cloned())
    }

    /// A one-off container of `service` on the image the override pins
    /// (`docker compose run`): removed afterwards, its dependencies left
    /// alone, no TTY, named so a timeout can remove it. `env` lists variable
    /// names; their values come from the `Cmd`'s environment, not argv.
    pub fn run_once(
        &self,
        overrides: &Path,
        service: &str,
        name: &str,
        env: &[String],
        command: &[String],
    ) -> Cmd {
        let mut cmd =
            self.base(&[overrides])
                .args(["run", "--rm", "--no-deps", "-T", "--name", name]);
        for var in env {
            cmd = cmd.args(["-e", var]);
        }
        cmd.args(["--", service]).args(command.iter().cloned())
    }

    /// `exec` with variables set inside the container (`-e NAME=VALUE`).
    pub fn exec_with_env(
        &self,
        service: &str,
        command: &[String],
        env: &[(String, String)],
    ) -> Cmd {
        let mut cmd = self.base(&[]).args(["exec", "-T"]);
        for (k, v) in env {
            cmd = cmd.arg("--env").arg(format!("{k}={v}"));
        }
        cmd.args(["--", service]).args(command.iter().cloned())
    }
}

/// The override that pins each service to one image. JSON is valid YAML, so
/// compose reads it as a compose file.
pub fn pin_override(images: &BTreeMap<String, String>, pull_policy: &str) -> String {
    let services: serde_json::Map<String, serde_json::Value> = images
        .iter()
        .map(|(svc, image)| {
            (
                svc.clone(),
                serde_json::json!({ "image": image, "pull_policy": pull_policy }),
            )
        })
        .collect();
    serde_json::json!({ "services": services }).to_string()
}

/// What slipway needs from `docker compose config --format json`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Model {
    /// The project name compose resolved (`name:`, else the folder's name).
    pub name: Option<String>,
    #[serde(default)]
    pub services: BTreeMap<String, ModelService>,
    #[serde(default)]
    pub networks: BTreeMap<String, ModelNetwork>,
}

impl Model {
    /// Service → the services it depends on (rollout waves follow it).
    pub fn depends_on(&self) -> BTreeMap<String, Vec<String>> {
        self.services
            .iter()
            .map(|(name, s)| (name.clone(), s.depends_on.keys().cloned().collect()))
            .collect()
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ModelNetwork {
    /// The engine's name for it (`<project>_<key>` unless set).
    pub name: Option<String>,
}

/// A service's attachment to one network.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ModelAttachment {
    #[serde(default)]
    pub aliases: Vec<String>,
    pub ipv4_address: Option<String>,
    pub ipv6_address: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ModelDeploy {
    pub replicas: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ModelService {
    pub image: Option<String>,
    #[serde(default)]
    pub depends_on: BTreeMap<String, serde_json::Value>,
    pub container_name: Option<String>,
    #[serde(default)]
    pub ports: Vec<serde_json::Value>,
    pub scale: Option<u64>,
    pub deploy: Option<ModelDeploy>,
    /// Network key → attachment (`null` for a plain one).
    #[serde(default)]
    pub networks: BTreeMap<String, Option<ModelAttachment>>,
    pub network_mode: Option<String>,
    pub healthcheck: Option<ModelHealthcheck>,
    #[serde(default)]
    pub volumes: Vec<ModelVolume>,
    /// Built locally (`build:`); any value means yes.
    pub build: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ModelHealthcheck {
    #[serde(default)]
    pub test: Vec<String>,
    #[serde(default)]
    pub disable: bool,
}

impl ModelHealthcheck {
    /// Declared and not switched off (`disable: true` or `test: ["NONE"]`).
    pub fn active(&self) -> bool {
        !self.disable && !self.test.is_empty() && self.test.first().is_none_or(|t| t != "NONE")
    }
}

/// One mount (compose's long form, which `config` always prints).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ModelVolume {
    /// `volume`, `bind`, `tmpfs`, …
    #[serde(rename = "type", default)]
    pub kind: String,
    pub source: Option<String>,
    #[serde(default)]
    pub target: String,
    #[serde(default)]
    pub read_only: bool,
}

impl ModelService {
    /// A published port with a fixed host port: two copies cannot run at once.
    pub fn has_fixed_host_port(&self) -> bool {
        self.ports.iter().any(|p| {
            p.get("published")
                .and_then(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .or_else(|| v.as_u64().map(|n| n.to_string()))
                })
                .is_some_and(|s| !s.is_empty() && s != "0")
        })
    }
}

impl ModelService {
    /// How many containers compose runs for it (`scale`, else `deploy.replicas`, else 1).
    pub fn replicas(&self) -> usize {
        self.scale
            .or(self.deploy.as_ref().and_then(|d| d.replicas))
            .unwrap_or(1) as usize
    }
}

impl Model {
    /// The engine names of the networks a service is attached to, with its
    /// aliases on each (empty with a `network_mode`).
    pub fn service_networks(&self, project: &str, service: &str) -> BTreeMap<String, Vec<String>> {
        let Some(s) = self.services.get(service) else {
            return BTreeMap::new();
        };
        if s.network_mode.is_some() {
            return BTreeMap::new();
        }
        let attached: Vec<(&String, Option<&ModelAttachment>)> = if s.networks.is_empty() {
            Vec::new()
        } else {
            s.networks.iter().map(|(k, a)| (k, a.as_ref())).collect()
        };
        let default = "default".to_string();
        let attached = if attached.is_empty() {
            vec![(&default, None)]
        } else {
            attached
        };
        attached
            .into_iter()
            .map(|(key, a)| {
                let name = self
                    .networks
                    .get(key)
                    .and_then(|n| n.name.clone())
                    .unwrap_or_else(|| format!("{project}_{key}"));
                (name, a.map(|a| a.aliases.clone()).unwrap_or_default())
            })
            .collect()
    }
}

pub fn parse_model(json: &str) -> Result<Model, String> {
    serde_json::from_str(json)
        .map_err(|e| format!("cannot read `docker compose config` output: {e}"))
}

/// `2.26.1` → `(2, 26)`; accepts a leading `v`.
pub fn parse_version(s: &str) -> Option<(u32, u32)> {
    let s = s.trim().trim_start_matches('v');
    let mut it = s.split(['.', '-', '+']);
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compose() -> Compose {
        Compose {
            project: "goodgo".into(),
            dir: PathBuf::from("/srv/goodgo"),
            files: vec!["docker-compose.prod.yml".into()],
            env_file: Some(PathBuf::from("/srv/goodgo/.env")),
            secrets: Default::default(),
        }
    }

    #[test]
    fn up_pins_one_service_and_leaves_dependencies() {
        let cmd = compose().up(Path::new("/srv/goodgo/.slipway/r7.yml"), "api");
        assert_eq!(cmd.program, "docker");
        assert_eq!(
            cmd.args,
            [
                "compose",
                "--project-name",
                "goodgo",
                "--file",
                "docker-compose.prod.yml",
                "--file",
                "/srv/goodgo/.slipway/r7.yml",
                "--env-file",
                "/srv/goodgo/.env",
                "up",
                "--detach",
                "--no-deps",
                "--no-build",
                "--",
                "api"
            ]
        );
        assert_eq!(cmd.cwd.as_deref(), Some(Path::new("/srv/goodgo")));
    }

    #[test]
    fn dependencies_start_without_recreating_on_the_compose_images() {
        let cmd = compose().up_dependencies(&["db".into(), "cache".into()]);
        let at = cmd.args.iter().position(|a| a == "up").expect("up");
        assert_eq!(
            cmd.args[at..],
            [
                "up",
                "--detach",
                "--no-deps",
                "--no-recreate",
                "--no-build",
                "--",
                "db",
                "cache"
            ]
        );
        // No override: unmanaged services run what the compose file names.
        assert!(!cmd.args.iter().any(|a| a.contains(".slipway")));
    }

    #[test]
    fn names_come_after_double_dash() {
        let cmd = compose().pull(Path::new("o.yml"), &["--help".into()]);
        let dd = cmd.args.iter().position(|a| a == "--").expect("--");
        assert_eq!(cmd.args[dd + 1], "--help");
        let cmd = compose().exec("redis", &["redis-cli".into(), "ping".into()]);
        assert!(cmd.args.ends_with(&[
            "-T".into(),
            "--".into(),
            "redis".into(),
            "redis-cli".into(),
            "ping".into()
        ]));
    }

    #[test]
    fn exec_sets_variables_before_the_service() {
        let env = vec![("SLIPWAY_URL".to_string(), "http://x".to_string())];
        let cmd = compose().exec_with_env("redis", &["redis-cli".into(), "ping".into()], &env);
        assert!(cmd.args.ends_with(&[
            "exec".into(),
            "-T".into(),
            "--env".into(),
            "SLIPWAY_URL=http://x".into(),
            "--".into(),
            "redis".into(),
            "redis-cli".into(),
            "ping".into()
        ]));
    }

    #[test]
    fn override_is_valid_json_pinning_images() {
        let mut m = BTreeMap::new();
        m.insert("api".to_string(), "r/api:slipway-staging-7".to_string());
        let v: serde_json::Value = serde_json::from_str(&pin_override(&m, "never")).expect("json");
        assert_eq!(v["services"]["api"]["image"], "r/api:slipway-staging-7");
        assert_eq!(v["services"]["api"]["pull_policy"], "never");
    }

    #[test]
    fn scaled_up_and_hashes_as_data() {
        let cmd = compose().up_scaled(Path::new("o.yml"), "api", 3);
        assert!(cmd.args.ends_with(&[
            "up".into(),
            "--detach".into(),
            "--no-deps".into(),
            "--no-build".into(),
            "--no-recreate".into(),
            "--scale".into(),
            "api=3".into(),
            "--".into(),
            "api".into()
        ]));
        // Created, not started: kept out of rotation before it first runs.
        let cmd = compose().create_scaled(Path::new("o.yml"), "api", 3);
        let args = cmd.args.join(" ");
        assert!(
            args.ends_with("up --no-start --no-deps --no-build --no-recreate --scale api=3 -- api"),
            "{args}"
        );
        let cmd = compose().config_hashes(Path::new("o.yml"), &["api".into(), "web".into()]);
        assert!(cmd.args.ends_with(&["--hash".into(), "api,web".into()]));
    }

    #[test]
    fn replicas_and_networks_from_the_model() {
        let m = parse_model(
            r#"{"networks":{"default":{"name":"p_default"},"back":{"name":"shared-back"}},
            "services":{"api":{"image":"r/api","deploy":{"replicas":3},
              "networks":{"default":null,"back":{"aliases":["api-internal"]}}},
            "web":{"image":"r/web","scale":2},
            "worker":{"image":"r/w","network_mode":"host"}}}"#,
        )
        .expect("model");
        assert_eq!(m.services["api"].replicas(), 3);
        assert_eq!(m.services["web"].replicas(), 2);
        let nets = m.service_networks("p", "api");
        assert_eq!(nets["p_default"], Vec::<String>::new());
        assert_eq!(nets["shared-back"], ["api-internal"]);
        // No `networks` key: compose attaches the project's default network.
        assert_eq!(
            m.service_networks("p", "web").keys().collect::<Vec<_>>(),
            ["p_default"]
        );
        assert!(m.service_networks("p", "worker").is_empty());
    }

    #[test]
    fn reads_the_model() {
        let m = parse_model(
            r#"{"name":"x","services":{"api":{"image":"r/api:v1","depends_on":{"db":{"condition":"service_healthy"}},
            "ports":[{"mode":"ingress","host_ip":"127.0.0.1","target":8080,"published":"3001","protocol":"tcp"}]},
            "web":{"image":"r/web","ports":[{"target":80}]}}}"#,
        )
        .expect("model");
        assert_eq!(
            m.services["api"].depends_on.keys().collect::<Vec<_>>(),
            ["db"]
        );
        assert!(m.services["api"].has_fixed_host_port());
        assert!(!m.services["web"].has_fixed_host_port());
        assert_eq!(m.services["api"].replicas(), 1);
        assert_eq!(parse_version("2.26.1"), Some((2, 26)));
        assert_eq!(parse_version("v2.40.3-desktop.1"), Some((2, 40)));
        assert_eq!(parse_version("1.29.2"), Some((1, 29)));
    }
}
