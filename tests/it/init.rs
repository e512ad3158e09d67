//! `slipway init` on the example compose projects: the file it writes loads,
//! passes `slipway check`, matches what was written by hand for goodgo, is
//! never overwritten, and deploys the fixture stacks as written.

use std::path::Path;
use std::process::Command;

use slipway::fixture::App;

use crate::harness::{docker, Run, Stack};
use crate::startfirst::proxy_image;

fn slipway(config: &Path, args: &[&str], env: &[(&str, String)]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_slipway"))
        .arg("--config")
        .arg(config)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("run slipway");
    Run::of(args, out)
}

fn example(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(path)
}

fn toml_file(path: &Path) -> toml::Value {
    let text = std::fs::read_to_string(path).expect("read toml");
    toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn keys(v: &toml::Value, table: &str) -> Vec<String> {
    v.get(table)
        .and_then(|t| t.as_table())
        .map(|t| t.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn init_on_goodgo_drafts_what_was_written_by_hand_and_never_overwrites() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    for f in ["docker-compose.prod.yml", ".env.staging"] {
        std::fs::copy(example("goodgo").join(f), d.join(f)).expect("copy");
    }
    let config = d.join("slipway.toml");
    let compose = d.join("docker-compose.prod.yml");
    let compose = compose.to_string_lossy();
    let args = [
        "--env",
        "staging",
        "--json",
        "init",
        "--project",
        "goodgo",
        "--compose",
        &compose,
    ];
    let run = slipway(&config, &args, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    assert_eq!(
        report["managed"],
        serde_json::json!(["ai-services", "api", "web"])
    );
    for svc in ["postgres", "redis", "typesense", "minio", "prometheus"] {
        assert!(
            report["unmanaged"][svc].is_string(),
            "{svc} not listed: {report}"
        );
    }
    let text = std::fs::read_to_string(&config).expect("written");
    assert!(
        text.contains("#   postgres: a database (postgis/postgis:16-3.4, data in volume `pgdata`"),
        "{text}"
    );

    let check = slipway(&config, &["check"], &[]);
    assert_eq!(check.code, 0, "{}", check.stderr);

    // Against the hand-written example: the same project, compose files,
    // services and url; the staging environment and its env file.
    let drafted = toml_file(&config);
    let by_hand = toml_file(&example("goodgo").join("slipway.toml"));
    for key in ["project", "compose_files"] {
        assert_eq!(drafted.get(key), by_hand.get(key), "{key}");
    }
    assert_eq!(keys(&drafted, "services"), keys(&by_hand, "services"));
    assert_eq!(
        drafted["environments"]["staging"]["url"],
        by_hand["environments"]["staging"]["url"]
    );
    assert_eq!(
        drafted["environments"]["staging"]["env_file"],
        by_hand["environments"]["staging"]["env_file"]
    );
    assert_eq!(
        drafted["services"]["ai-services"]["health"],
        by_hand["services"]["ai-services"]["health"]
    );

    // Never overwritten: exit 2, the file as it was.
    std::fs::write(&config, "# mine\n").expect("write");
    let again = slipway(&config, &args, &[]);
    assert_eq!(again.code, 2, "{}", again.stderr);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
    assert_eq!(std::fs::read_to_string(&config).expect("read"), "# mine\n");

    // Nothing to deploy: exit 2, the reasons, no file.
    let other = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        other.path().join("compose.yaml"),
        "services:\n  db:\n    image: postgres:16\n",
    )
    .expect("compose");
    let config = other.path().join("slipway.toml");
    let run = slipway(&config, &["init"], &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("db: a database (postgres:16)"),
        "{}",
        run.stderr
    );
    assert!(!config.exists());
}

#[test]
fn init_on_the_fixture_stack_deploys_it() {
    let stack = Stack::new("init-fixture");
    let (api, web) = stack.publish_good("v1");
    std::fs::remove_file(stack.config_path()).expect("remove the harness config");
    let run = stack.slipway(&["--env", "test", "init", "--project", &stack.name]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let drafted = toml_file(&stack.config_path());
    assert_eq!(keys(&drafted, "services"), ["api", "web"]);
    assert_eq!(
        drafted["environments"]["test"]["url"].as_str(),
        Some(format!("http://127.0.0.1:{}", stack.port).as_str())
    );
    assert_eq!(stack.slipway(&["check"]).code, 0);

    let run = stack.deploy("v1");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(stack.running_image("api"), api);
    assert_eq!(stack.running_image("web"), web);
    // `cache` stays unmanaged, but the deployed services depend on it: the
    // deploy starts it (never recreates it), as any dependency.
    assert!(
        stack.container("cache").is_some(),
        "the dependency cache runs"
    );
    let h = stack.history();
    assert_eq!(h[0]["status"], "succeeded");
}

#[test]
fn init_on_startfirst_deploys_it_start_first() {
    let stack = Stack::new("init-sf");
    // The example's compose file, its image in this stack's repository.
    let compose = std::fs::read_to_string(example("startfirst").join("docker-compose.yml"))
        .expect("example compose")
        .replace("slipway-startfirst/web", &format!("{}/web", stack.name));
    std::fs::write(stack.path().join("docker-compose.yml"), compose).expect("compose");
    std::fs::remove_file(stack.config_path()).expect("remove the harness config");
    let web = stack.publish("web", "v1", App::new("v1"));
    let env = [
        ("PROXY_IMAGE", proxy_image()),
        ("PROXY_PORT", stack.port.to_string()),
        ("REGISTRY", stack.registry.to_string()),
    ];
    let config = stack.config_path();

    let run = slipway(
        &config,
        &["--env", "local", "init", "--project", &stack.name],
        &env,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let drafted = toml_file(&config);
    assert_eq!(keys(&drafted, "services"), ["web"]);
    assert_eq!(
        drafted["services"]["web"]["strategy"].as_str(),
        Some("start-first")
    );
    assert_eq!(
        drafted["environments"]["local"]["url"].as_str(),
        Some(format!("http://127.0.0.1:{}", stack.port).as_str())
    );
    assert_eq!(slipway(&config, &["check"], &env).code, 0);

    let up = Command::new("docker")
        .args([
            "compose",
            "--project-name",
            &stack.name,
            "up",
            "--detach",
            "--",
            "proxy",
        ])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(stack.path())
        .output()
        .expect("compose up proxy");
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );

    let run = slipway(&config, &["deploy", "--tag", "v1"], &env);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let containers = stack.containers("web");
    assert_eq!(containers.len(), 2, "{containers:?}");
    for c in containers {
        assert_eq!(docker(&["inspect", "--format", "{{.Image}}", &c]).1, web);
    }
    // The drafted smoke check went through the proxy.
    assert!(run.stderr.contains("proxy /health"), "{}", run.stderr);
}
