//! A first `slipway.toml`, drafted from a compose project (`slipway init`).
//!
//! Pure: [`draft`] decides over the compose model (and what is known about
//! local images) which services slipway deploys, how each is judged healthy,
//! the environment's url and one smoke check per published HTTP port;
//! [`Draft::render`] writes it as commented TOML. Services left out are listed
//! in the file with the reason, so a reader can disagree with a decision.
//!
//! The rules, in order: a service built here (`build:` without an image) or
//! with no image is left to compose; a known database, cache, queue, search
//! engine, object store or monitoring image is never deployed by slipway; a
//! service keeping data in a volume or a writable bind mount is upgraded by
//! hand; an image with no registry host (Docker Hub: third-party software) is
//! not one the team's CI pushes. The rest, images in the team's registry,
//! become `[services.NAME]`.

use std::collections::BTreeMap;

use crate::config::names::split_image;
use crate::engine::compose::{Model, ModelService};

/// What `draft` needs besides the compose model.
pub struct Inputs<'a> {
    pub project: &'a str,
    /// As written into `compose_files` (relative to the config's folder).
    pub compose_files: &'a [String],
    pub env: &'a str,
    /// An env file beside the config (`.env`), if there is one.
    pub env_file: Option<&'a str>,
    pub model: &'a Model,
    /// Service → whether its image, present locally, declares a HEALTHCHECK.
    /// A service missing here: the image is not present (or Docker did not answer).
    pub image_healthchecks: &'a BTreeMap<String, bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    Managed(Managed),
    Unmanaged(Unmanaged),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unmanaged {
    /// `build:` and no image, or no image at all.
    Built,
    /// A known kind of stateful or infrastructure software.
    Infrastructure {
        kind: &'static str,
        image: String,
        /// Where it keeps its data, if in a mount.
        mount: Option<String>,
    },
    /// Data in a volume or a writable bind mount.
    Data { mount: String },
    /// An image with no registry host: Docker Hub, third-party software.
    Public { image: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Managed {
    /// The compose image without its tag, as resolved at init time.
    pub repo: String,
    pub health: HealthDraft,
    pub rollout: RolloutDraft,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthDraft {
    /// The compose file's healthcheck.
    ComposeHealthcheck,
    /// The image's own HEALTHCHECK.
    ImageHealthcheck,
    /// No HEALTHCHECK known: probe a published port.
    Http { url: String },
    /// Nothing to go on: the image's HEALTHCHECK if it turns out to have one,
    /// else `readiness_delay` of running.
    Auto,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RolloutDraft {
    /// Several replicas that can run side by side: roll start-first.
    StartFirst { replicas: usize },
    /// Could run two copies; the user decides (needs a proxy in front).
    StartFirstPossible,
    /// Stop-first: why two copies cannot run.
    StopFirst,
}

/// A published TCP port that probably speaks HTTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpPort {
    pub service: String,
    /// `http://127.0.0.1:3001`
    pub base: String,
    /// The path to check, from the service's healthcheck if it names one.
    pub path: String,
    /// Whether `path` came from a healthcheck (else it is the `/health` guess).
    pub path_known: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    pub project: String,
    pub compose_files: Vec<String>,
    pub env: String,
    pub env_file: Option<String>,
    /// The entry point (`{url}`), when a port was found.
    pub url: Option<String>,
    pub services: BTreeMap<String, Role>,
    pub smoke: Vec<HttpPort>,
}

impl Unmanaged {
    /// Why slipway leaves the service `name` alone, for the file and `--json`.
    pub fn reason(&self, name: &str) -> String {
        match self {
            Unmanaged::Built => "no image from a registry (built here, or no image)".to_string(),
            Unmanaged::Infrastructure { kind, image, mount } => {
                let article = if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
                    "an"
                } else {
                    "a"
                };
                let data = mount
                    .as_ref()
                    .map(|m| format!(", data in {m}"))
                    .unwrap_or_default();
                format!("{article} {kind} ({image}{data}): upgrade it by hand")
            }
            Unmanaged::Data { mount } => format!("keeps data in {mount}: upgrade it by hand"),
            Unmanaged::Public { image } => format!(
                "a public image ({image}), not one your CI pushes; add [services.{name}] to deploy it"
            ),
        }
    }
}

/// `kind` of known infrastructure, matched on the image's last path
/// component (`postgis/postgis:16` → `postgis`), token by token.
const INFRASTRUCTURE: &[(&str, &[&str])] = &[
    (
        "database",
        &[
            "postgres",
            "postgis",
            "postgresql",
            "timescaledb",
            "mysql",
            "mariadb",
            "mongo",
            "mongodb",
            "cockroach",
            "cassandra",
            "scylla",
            "clickhouse",
            "influxdb",
            "neo4j",
            "couchdb",
            "couchbase",
            "mssql",
            "questdb",
            "surrealdb",
        ],
    ),
    (
        "cache",
        &["redis", "valkey", "memcached", "keydb", "dragonfly"],
    ),
    (
        "search engine",
        &[
            "elasticsearch",
            "opensearch",
            "typesense",
            "meilisearch",
            "solr",
        ],
    ),
    (
        "message broker",
        &[
            "rabbitmq",
            "kafka",
            "zookeeper",
            "nats",
            "mosquitto",
            "redpanda",
            "activemq",
        ],
    ),
    ("object store", &["minio"]),
    (
        "monitoring service",
        &[
            "prometheus",
            "grafana",
            "loki",
            "alertmanager",
            "exporter",
            "cadvisor",
            "jaeger",
            "tempo",
            "promtail",
        ],
    ),
];

/// Target ports that speak something other than HTTP.
const NOT_HTTP: &[u16] = &[
    21, 22, 25, 53, 1433, 1521, 1883, 2181, 3306, 4222, 5432, 5672, 6379, 9042, 9092, 11211, 27017,
];

/// Names that mark a reverse proxy: its port is the stack's entry point.
const PROXIES: &[&str] = &[
    "proxy", "nginx", "traefik", "caddy", "haproxy", "gateway", "envoy", "ingress",
];

pub fn draft(inputs: &Inputs) -> Draft {
    let model = inputs.model;
    let mut roles: BTreeMap<String, Role> = model
        .services
        .iter()
        .map(|(name, svc)| (name.clone(), classify(svc)))
        .collect();

    // Ports that count: the managed services' and those of third-party
    // services such as a proxy; never a data store's.
    let mut ports: BTreeMap<String, Vec<HttpPort>> = BTreeMap::new();
    for (name, svc) in &model.services {
        let counts = matches!(
            roles.get(name),
            Some(Role::Managed(_) | Role::Unmanaged(Unmanaged::Public { .. }))
        );
        if counts {
            ports.insert(name.clone(), http_ports(name, svc));
        }
    }
    let url = entry_point(model, &roles, &ports);

    for (name, role) in roles.iter_mut() {
        if let Role::Managed(m) = role {
            let svc = &model.services[name];
            m.health = if svc.healthcheck.as_ref().is_some_and(|h| h.active()) {
                HealthDraft::ComposeHealthcheck
            } else if inputs.image_healthchecks.get(name) == Some(&true) {
                HealthDraft::ImageHealthcheck
            } else if let Some(p) = ports.get(name).and_then(|p| p.first()) {
                HealthDraft::Http {
                    url: placeholder(url.as_deref(), &p.base) + &p.path,
                }
            } else {
                HealthDraft::Auto
            };
        }
    }
    let smoke = ports.into_values().flatten().collect();
    Draft {
        project: inputs.project.to_string(),
        compose_files: inputs.compose_files.to_vec(),
        env: inputs.env.to_string(),
        env_file: inputs.env_file.map(str::to_string),
        url,
        services: roles,
        smoke,
    }
}

/// Whether slipway deploys a service, and why not.
fn classify(svc: &ModelService) -> Role {
    let Some(image) = svc.image.as_deref().filter(|i| !i.is_empty()) else {
        return Role::Unmanaged(Unmanaged::Built);
    };
    let repo = split_image(image).0;
    let last = repo.rsplit('/').next().unwrap_or(repo).to_ascii_lowercase();
    let tokens: Vec<&str> = last.split(['-', '_', '.']).collect();
    for (kind, names) in INFRASTRUCTURE {
        if tokens.iter().any(|t| names.contains(t)) {
            return Role::Unmanaged(Unmanaged::Infrastructure {
                kind,
                image: image.to_string(),
                mount: data_mount(svc),
            });
        }
    }
    if let Some(mount) = data_mount(svc) {
        return Role::Unmanaged(Unmanaged::Data { mount });
    }
    if !has_registry_host(repo) {
        return Role::Unmanaged(Unmanaged::Public {
            image: image.to_string(),
        });
    }
    let replicas = svc.replicas();
    let rollout = match crate::backend::compose::rollout::two_copies_blocker(svc) {
        Some(_) => RolloutDraft::StopFirst,
        None if replicas > 1 => RolloutDraft::StartFirst { replicas },
        None => RolloutDraft::StartFirstPossible,
    };
    Role::Managed(Managed {
        repo: repo.to_string(),
        health: HealthDraft::Auto,
        rollout,
    })
}

/// A volume, or a writable bind mount of something other than a socket.
fn data_mount(svc: &ModelService) -> Option<String> {
    svc.volumes.iter().find_map(|v| {
        let source = v.source.as_deref().unwrap_or("");
        match v.kind.as_str() {
            "volume" if source.is_empty() => Some(format!("an anonymous volume at {}", v.target)),
            "volume" => Some(format!("volume `{source}` at {}", v.target)),
            "bind" if !v.read_only && !source.ends_with(".sock") => {
                Some(format!("the host folder {source} at {}", v.target))
            }
            _ => None,
        }
    })
}

/// `ghcr.io/acme/api`, `127.0.0.1:5000/x`, `localhost/x`: a registry host
/// comes first. `postgres`, `prom/prometheus`: Docker Hub.
fn has_registry_host(repo: &str) -> bool {
    match repo.split_once('/') {
        Some((host, _)) => host.contains(['.', ':']) || host == "localhost",
        None => false,
    }
}

/// The published TCP ports of a service that probably speak HTTP.
fn http_ports(name: &str, svc: &ModelService) -> Vec<HttpPort> {
    let health_urls: Vec<(Option<u16>, String)> = svc
        .healthcheck
        .as_ref()
        .filter(|h| h.active())
        .map(|h| local_urls(&h.test.join(" ")))
        .unwrap_or_default();
    svc.ports
        .iter()
        .filter_map(|p| {
            let protocol = p.get("protocol").and_then(|v| v.as_str()).unwrap_or("tcp");
            let target = p.get("target").and_then(|v| v.as_u64())? as u16;
            let published = p.get("published").and_then(|v| {
                v.as_str()
                    .map(str::to_string)
                    .or_else(|| v.as_u64().map(|n| n.to_string()))
            })?;
            let published: u16 = published.parse().ok().filter(|&n| n != 0)?;
            if protocol != "tcp" || NOT_HTTP.contains(&target) {
                return None;
            }
            let host = match p.get("host_ip").and_then(|v| v.as_str()).unwrap_or("") {
                "" | "0.0.0.0" | "::" => "127.0.0.1".to_string(),
                ip if ip.contains(':') => format!("[{ip}]"),
                ip => ip.to_string(),
            };
            let known = health_urls
                .iter()
                .find(|(port, _)| port.unwrap_or(80) == target)
                .map(|(_, path)| path.clone());
            Some(HttpPort {
                service: name.to_string(),
                base: format!("http://{host}:{published}"),
                path_known: known.is_some(),
                path: known.unwrap_or_else(|| "/health".into()),
            })
        })
        .collect()
}

/// `(port, path)` of every `http://localhost…` URL in a healthcheck command.
fn local_urls(text: &str) -> Vec<(Option<u16>, String)> {
    let Ok(re) = regex::Regex::new(
        r"https?://(?:localhost|127\.0\.0\.1|0\.0\.0\.0|\[::1\])(?::(\d+))?(/[^\s'\x22)]*)?",
    ) else {
        return Vec::new();
    };
    re.captures_iter(text)
        .map(|c| {
            let port = c.get(1).and_then(|m| m.as_str().parse().ok());
            let path = c.get(2).map_or("/", |m| m.as_str()).to_string();
            (port, path)
        })
        .collect()
}

/// The environment's url: a reverse proxy's port if there is one, else the
/// port of the managed service the most others depend on.
fn entry_point(
    model: &Model,
    roles: &BTreeMap<String, Role>,
    ports: &BTreeMap<String, Vec<HttpPort>>,
) -> Option<String> {
    let is_proxy = |name: &str| {
        let image = model.services[name].image.as_deref().unwrap_or("");
        PROXIES.iter().any(|p| {
            name.contains(p)
                || split_image(image)
                    .0
                    .rsplit('/')
                    .next()
                    .unwrap_or("")
                    .contains(p)
        })
    };
    let dependents = |name: &str| {
        model
            .services
            .iter()
            .filter(|(other, s)| {
                matches!(roles.get(*other), Some(Role::Managed(_)))
                    && s.depends_on.contains_key(name)
            })
            .count()
    };
    let mut candidates: Vec<(&String, &HttpPort)> = ports
        .iter()
        .filter_map(|(name, p)| Some((name, p.first()?)))
        .filter(|(name, _)| is_proxy(name) || matches!(roles.get(*name), Some(Role::Managed(_))))
        .collect();
    // Proxies first, then the most depended-on; the name breaks ties (stable).
    candidates.sort_by_key(|(name, _)| (!is_proxy(name), std::cmp::Reverse(dependents(name))));
    candidates.first().map(|(_, p)| p.base.clone())
}

/// `{url}` where a base is the environment's url.
fn placeholder(url: Option<&str>, base: &str) -> String {
    if url == Some(base) {
        "{url}".into()
    } else {
        base.into()
    }
}

/// `code   # comment`, comments lined up where the code allows.
fn kv(code: impl AsRef<str>, comment: &str) -> String {
    format!("{:<31} # {comment}\n", code.as_ref())
}

/// A TOML string literal.
fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// A TOML key: bare when it can be.
fn key(s: &str) -> String {
    let bare = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if bare {
        s.to_string()
    } else {
        q(s)
    }
}

impl Draft {
    pub fn managed(&self) -> impl Iterator<Item = (&String, &Managed)> {
        self.services.iter().filter_map(|(n, r)| match r {
            Role::Managed(m) => Some((n, m)),
            Role::Unmanaged(_) => None,
        })
    }

    pub fn unmanaged(&self) -> impl Iterator<Item = (&String, &Unmanaged)> {
        self.services.iter().filter_map(|(n, r)| match r {
            Role::Unmanaged(u) => Some((n, u)),
            Role::Managed(_) => None,
        })
    }

    /// The file, with a comment on every decision.
    pub fn render(&self) -> String {
        let mut o = self.render_header();
        o += &self.render_environment();
        for (name, m) in self.managed() {
            o += &render_service(name, m);
        }
        o += &self.render_unmanaged();
        o += &self.render_smoke();
        o
    }

    /// The opening comment, `project`, `compose_files` and `[deploy]`.
    fn render_header(&self) -> String {
        let mut o = String::new();
        let files: Vec<String> = self.compose_files.iter().map(|f| q(f)).collect();
        o += "# slipway.toml drafted by `slipway init` from the compose project.\n";
        o += "# Review it, then `slipway check`; the full reference is in the README.\n";
        o += &kv(
            format!("project = {}", q(&self.project)),
            "the compose project name",
        );
        o += &format!("compose_files = [{}]\n\n", files.join(", "));
        o += "[deploy]\n";
        o += &kv(
            "health_timeout = \"100s\"",
            "how long a service may take to become healthy",
        );
        o += &kv(
            "keep_releases = 5",
            "succeeded releases whose images prune keeps",
        );
        o
    }

    /// `[environments.ENV]`: `url` and `env_file` when found, else commented out.
    fn render_environment(&self) -> String {
        let mut o = format!("\n[environments.{}]\n", key(&self.env));
        o += &match &self.url {
            Some(u) => kv(
                format!("url = {}", q(u)),
                "{url} in health probes and smoke checks",
            ),
            None => kv(
                "# url = \"https://example.com\"",
                "{url} in probes and smoke checks (no published HTTP port found)",
            ),
        };
        o += &match &self.env_file {
            Some(f) => kv(
                format!("env_file = {}", q(f)),
                "given to compose; checked by `slipway check`",
            ),
            None => kv(
                "# env_file = \".env\"",
                "given to compose; checked by `slipway check`",
            ),
        };
        o += &kv("# tag = \"latest\"", "deployed when --tag is not given");
        o
    }

    /// The services slipway leaves alone, as a comment with each reason.
    fn render_unmanaged(&self) -> String {
        let unmanaged: Vec<_> = self.unmanaged().collect();
        if unmanaged.is_empty() {
            return String::new();
        }
        let mut o = "\n# Not deployed by slipway (never restarted, re-pulled or pruned by it):\n"
            .to_string();
        for (name, why) in unmanaged {
            let why = why.reason(name);
            o += &format!("#   {name}: {why}\n");
        }
        o
    }

    /// One `[[smoke]]` check per published HTTP port.
    fn render_smoke(&self) -> String {
        let mut o = String::new();
        if !self.smoke.is_empty() {
            o +=
                "\n# One check per published HTTP port; add your own (JSON, exec, command, tcp).\n";
        }
        for p in &self.smoke {
            let url = placeholder(self.url.as_deref(), &p.base) + &p.path;
            o += &format!(
                "\n[[smoke]]\nname = {}\n",
                q(&format!("{} {}", p.service, p.path))
            );
            o += &format!("http = {}", q(&url));
            if !p.path_known {
                o += "   # the path is a guess";
            }
            o += "\nexpect_status = 200\n";
        }
        o
    }
}

/// `[services.NAME]`: image, strategy and health, each with why.
fn render_service(name: &str, m: &Managed) -> String {
    let mut o = format!("\n[services.{}]\n", key(name));
    o += &kv(
        format!("# image = {}", q(&m.repo)),
        "default: compose's image without its tag",
    );
    match &m.rollout {
        RolloutDraft::StartFirst { replicas } => {
            o += &kv(
                "strategy = \"start-first\"",
                &format!("{replicas} replicas, rolled one by one, never fewer serving"),
            )
        }
        RolloutDraft::StartFirstPossible => {
            o += &kv(
                "# strategy = \"start-first\"",
                "zero downtime, if a proxy on a compose network sends it traffic",
            )
        }
        RolloutDraft::StopFirst => {}
    }
    o += &render_health(&m.health);
    o
}

/// The `health` line of a service, or why there is none.
fn render_health(health: &HealthDraft) -> String {
    match health {
        HealthDraft::ComposeHealthcheck => {
            kv("health = \"container\"", "wait for its compose healthcheck")
        }
        HealthDraft::ImageHealthcheck => {
            kv("health = \"container\"", "wait for its image's HEALTHCHECK")
        }
        HealthDraft::Http { url } => format!(
            "# No HEALTHCHECK known: probe its published port (the path is a guess).\n\
             health = {{ http = {} }}\n",
            q(url)
        ),
        HealthDraft::Auto => concat!(
            "# No HEALTHCHECK known and no published port: healthy once running for\n",
            "# readiness_delay (or by its image's HEALTHCHECK). Or probe each new container:\n",
            "# health = { http = \"http://{container}:8080/health\" }\n",
        )
        .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::compose::parse_model;

    fn goodgo() -> Model {
        // `docker compose config --format json` of examples/goodgo, trimmed.
        parse_model(
            r#"{"name":"goodgo","services":{
            "api":{"image":"ghcr.io/goodgo/goodgo-api:latest","depends_on":{"postgres":{}},
              "ports":[{"mode":"ingress","host_ip":"127.0.0.1","target":3001,"published":"3001","protocol":"tcp"}],
              "healthcheck":{"test":["CMD","wget","-q","-O","/dev/null","http://127.0.0.1:3001/health"]}},
            "web":{"image":"ghcr.io/goodgo/goodgo-web:latest","depends_on":{"api":{}},
              "ports":[{"host_ip":"127.0.0.1","target":3000,"published":"3000","protocol":"tcp"}]},
            "ai-services":{"image":"ghcr.io/goodgo/goodgo-ai-services:latest",
              "ports":[{"host_ip":"127.0.0.1","target":8000,"published":"8000","protocol":"tcp"}],
              "healthcheck":{"test":["CMD","python","-c","urllib.request.urlopen('http://127.0.0.1:8000/health')"]}},
            "postgres":{"image":"postgis/postgis:16-3.4","volumes":[{"type":"volume","source":"pgdata","target":"/var/lib/postgresql/data"}]},
            "redis":{"image":"redis:7-alpine"},
            "typesense":{"image":"typesense/typesense:27.0","ports":[{"target":8108,"published":"8108"}],
              "volumes":[{"type":"volume","source":"tsdata","target":"/data"}]},
            "minio":{"image":"minio/minio","volumes":[{"type":"volume","source":"miniodata","target":"/data"}]},
            "prometheus":{"image":"prom/prometheus"},
            "uploads":{"image":"ghcr.io/goodgo/uploads:1","volumes":[{"type":"bind","source":"/srv/up","target":"/up"}]},
            "tool":{"build":{"context":"."}},
            "docs":{"image":"nginxinc/docs:1"}}}"#,
        )
        .expect("model")
    }

    fn run(model: &Model, images: &BTreeMap<String, bool>) -> Draft {
        draft(&Inputs {
            project: "goodgo",
            compose_files: &["docker-compose.prod.yml".to_string()],
            env: "production",
            env_file: None,
            model,
            image_healthchecks: images,
        })
    }

    #[test]
    fn registry_images_are_managed_and_the_rest_say_why_not() {
        let d = run(&goodgo(), &BTreeMap::new());
        let managed: Vec<&String> = d.managed().map(|(n, _)| n).collect();
        assert_eq!(managed, ["ai-services", "api", "web"]);
        let why: BTreeMap<&String, &Unmanaged> = d.unmanaged().collect();
        assert!(matches!(
            why[&"postgres".to_string()],
            Unmanaged::Infrastructure {
                kind: "database",
                ..
            }
        ));
        assert!(matches!(
            why[&"redis".to_string()],
            Unmanaged::Infrastructure { kind: "cache", .. }
        ));
        assert!(matches!(
            why[&"prometheus".to_string()],
            Unmanaged::Infrastructure {
                kind: "monitoring service",
                ..
            }
        ));
        assert_eq!(
            why[&"uploads".to_string()],
            &Unmanaged::Data {
                mount: "the host folder /srv/up at /up".into()
            }
        );
        assert_eq!(why[&"tool".to_string()], &Unmanaged::Built);
        assert!(matches!(why[&"docs".to_string()], Unmanaged::Public { .. }));
    }

    #[test]
    fn health_from_healthchecks_then_ports_and_url_from_the_most_depended_on() {
        let mut images = BTreeMap::new();
        images.insert("web".to_string(), false);
        let d = run(&goodgo(), &images);
        let m: BTreeMap<&String, &Managed> = d.managed().collect();
        assert_eq!(
            m[&"api".to_string()].health,
            HealthDraft::ComposeHealthcheck
        );
        assert_eq!(
            m[&"web".to_string()].health,
            HealthDraft::Http {
                url: "http://127.0.0.1:3000/health".into()
            }
        );
        // web depends on api: api's port is the entry point.
        assert_eq!(d.url.as_deref(), Some("http://127.0.0.1:3001"));
        // A fixed host port: stop-first only.
        assert_eq!(m[&"api".to_string()].rollout, RolloutDraft::StopFirst);
        let smoke: Vec<(&str, &str, bool)> = d
            .smoke
            .iter()
            .map(|p| (p.service.as_str(), p.path.as_str(), p.path_known))
            .collect();
        assert_eq!(
            smoke,
            [
                ("ai-services", "/health", true),
                ("api", "/health", true),
                ("web", "/health", false)
            ]
        );
        let mut images = BTreeMap::new();
        images.insert("web".to_string(), true);
        let d = run(&goodgo(), &images);
        assert_eq!(
            d.managed()
                .find(|(n, _)| *n == "web")
                .map(|(_, m)| m.health.clone()),
            Some(HealthDraft::ImageHealthcheck)
        );
    }

    #[test]
    fn a_proxy_is_the_entry_point_and_replicas_roll_start_first() {
        let model = parse_model(
            r#"{"services":{
            "proxy":{"image":"slipway-fixture/proxy:latest","ports":[{"host_ip":"127.0.0.1","target":8080,"published":"18080"}]},
            "web":{"image":"127.0.0.1:5000/x/web:v1","deploy":{"replicas":2}},
            "db":{"image":"127.0.0.1:5000/x/db:v1","ports":[{"target":5432,"published":"5432"}]}}}"#,
        )
        .expect("model");
        let d = run(&model, &BTreeMap::new());
        assert_eq!(d.url.as_deref(), Some("http://127.0.0.1:18080"));
        let web = d
            .managed()
            .find(|(n, _)| *n == "web")
            .map(|(_, m)| m.clone())
            .expect("web");
        assert_eq!(web.rollout, RolloutDraft::StartFirst { replicas: 2 });
        assert_eq!(web.health, HealthDraft::Auto);
        // 5432 is not HTTP: no smoke check, no probe.
        assert_eq!(d.smoke.len(), 1);
        assert_eq!(d.smoke[0].service, "proxy");
    }

    #[test]
    fn the_rendered_file_is_a_valid_config() {
        let d = run(&goodgo(), &BTreeMap::new());
        let text = d.render();
        let cfg = crate::config::Config::parse(std::path::Path::new("/x/slipway.toml"), &text)
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(
            cfg.services.keys().collect::<Vec<_>>(),
            ["ai-services", "api", "web"]
        );
        assert_eq!(
            cfg.environments["production"].url.as_deref(),
            Some("http://127.0.0.1:3001")
        );
        assert_eq!(cfg.smoke.len(), 3);
        assert!(
            text.contains("#   postgres: a database (postgis/postgis:16-3.4, data in volume `pgdata` at /var/lib/postgresql/data)"),
            "{text}"
        );
        assert!(matches!(
            cfg.services["api"].health,
            crate::config::Health::Container
        ));
        // Odd names are quoted, and the file still parses.
        let model =
            parse_model(r#"{"services":{"my.app":{"image":"r.io/a/b:1"}}}"#).expect("model");
        let mut d = run(&model, &BTreeMap::new());
        d.env = "prod us".into();
        let text = d.render();
        let cfg = crate::config::Config::parse(std::path::Path::new("/x/slipway.toml"), &text);
        // Names slipway refuses are refused by the config too, with a message, never a panic.
        if let Ok(cfg) = cfg {
            assert!(cfg.services.contains_key("my.app"));
        }
    }
}
