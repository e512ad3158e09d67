//! Secrets never leak: a canary in the env file and another in the webhook
//! URL's variable, through a good deploy, a failing one (whose smoke script
//! dumps the env file; a pre_deploy hook prints it in both) and the read
//! commands. Neither appears in stdout,
//! stderr, history, status, the state folder (database, journal, overrides,
//! lock) or what the webhook receiver was sent, with `SLIPWAY_LOG=trace`.

use std::path::Path;

use slipway::fixture::App;

use crate::harness::Stack;
use crate::notify::{Mode, Receiver};

const ENV_CANARY: &str = "canary-envfile-3f9a1c77e2b4";
const PASSWORD_CANARY: &str = "canarypw-81c0d9e5";
const URL_CANARY: &str = "canary-url-91b2d4a07f";

pub(crate) fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn canary_secrets_appear_nowhere() {
    let stack = Stack::new("canary-all");
    stack.publish_good("v1");
    let mut broken = App::new("v2");
    broken.smoke_ok = false;
    stack.publish("api", "v2", broken);
    stack.publish("web", "v2", App::new("v2"));
    let receiver = Receiver::start(Mode::Ok);
    let hook_path = format!("/hook/{URL_CANARY}");
    let hook_url = receiver.url(&hook_path);

    let config = std::fs::read_to_string(stack.config_path()).expect("config");
    let config = config.replace(
        "[environments.test]\n",
        "[environments.test]\nenv_file = \".env\"\n",
    );
    std::fs::write(
        stack.config_path(),
        format!(
            "{config}\n[[smoke]]\nname = \"script that dumps the env file when it fails\"\n\
             command = [\"sh\", \"-c\", \"test \\\"$SLIPWAY_TAG\\\" != v2 || {{ cat .env; exit 1; }}\"]\n\n\
             [[notify.webhook]]\nurl_env = \"CANARY_HOOK\"\n\n\
             [[hooks.pre_deploy]]\nname = \"prints the env file\"\ncommand = [\"cat\", \".env\"]\n"
        ),
    )
    .expect("config");
    std::fs::write(
        stack.path().join(".env"),
        format!("JWT_SECRET={ENV_CANARY}\nDATABASE_URL=postgresql://goodgo:{PASSWORD_CANARY}@postgres:5432/goodgo\n"),
    )
    .expect("env file");

    // With every log on, as a user chasing a problem would run it: what the
    // libraries underneath log (Engine API answers hold the containers'
    // environment, HTTP clients their URLs) must not come through.
    // api takes the env file as its environment, as the seed's services do.
    let compose_path = stack.path().join("docker-compose.yml");
    let compose = std::fs::read_to_string(&compose_path).expect("compose");
    std::fs::write(
        &compose_path,
        compose.replacen("  api:\n", "  api:\n    env_file: [.env]\n", 1),
    )
    .expect("compose");
    let env = [("CANARY_HOOK", hook_url.as_str()), ("SLIPWAY_LOG", "trace")];
    let mut seen = String::new();
    let mut run = |args: &[&str], code: i32| {
        let r = stack.slipway_env(args, &env);
        assert_eq!(r.code, code, "{args:?}: {}", r.stderr);
        seen.push_str(&r.stdout);
        seen.push_str(&r.stderr);
        r
    };
    let first = run(&["deploy", "--tag", "v1"], 0);
    assert!(
        first.stderr.contains("JWT_SECRET=[JWT_SECRET]"),
        "the pre_deploy hook's output is shown, redacted: {}",
        first.stderr
    );
    let failed = run(&["deploy", "--tag", "v2"], 1);
    assert!(
        failed.stderr.contains("[JWT_SECRET]"),
        "redaction should be visible: {}",
        failed.stderr
    );
    assert!(
        failed.stderr.contains("DEBUG slipway::"),
        "SLIPWAY_LOG=trace logs slipway's own events: {}",
        failed.stderr
    );
    assert!(
        !failed.stderr.contains("bollard::") && !failed.stderr.contains("reqwest::"),
        "and none of the libraries': {}",
        failed.stderr
    );
    run(&["history", "--json"], 0);
    run(&["status", "--json"], 0);
    run(&["check", "--json"], 0);
    run(&["smoke"], 0);
    run(&["notify", "test"], 0);

    let mut state = String::new();
    for f in files_under(&stack.path().join(".slipway")) {
        state.push_str(&String::from_utf8_lossy(
            &std::fs::read(&f).expect("read state file"),
        ));
    }
    assert!(
        state.contains("smoke check"),
        "the journal and history were read"
    );
    let sent: String = receiver
        .bodies(&hook_path)
        .iter()
        .map(|b| b.to_string())
        .collect();
    assert!(
        sent.contains("deploy_failed"),
        "the webhook got the events: {sent}"
    );

    for (what, text) in [
        ("output", &seen),
        ("state folder", &state),
        ("notifications", &sent),
    ] {
        for canary in [ENV_CANARY, PASSWORD_CANARY, URL_CANARY] {
            assert!(!text.contains(canary), "{canary} leaked into {what}");
        }
    }
}

/// compose quotes an env file line it cannot read ("Invalid template:
/// \"VALUE\""); slipway passes compose's words on, without the value: from
/// the configured env file, and from the `.env` compose reads by itself.
#[test]
fn an_env_file_compose_cannot_read_is_refused_without_its_values() {
    for configured in [true, false] {
        let stack = Stack::new(if configured {
            "canary-badenv"
        } else {
            "canary-dotenv"
        });
        if configured {
            let config = std::fs::read_to_string(stack.config_path()).expect("config");
            std::fs::write(
                stack.config_path(),
                config.replace(
                    "[environments.test]\n",
                    "[environments.test]\nenv_file = \".env\"\n",
                ),
            )
            .expect("config");
        }
        std::fs::write(
            stack.path().join(".env"),
            format!("JWT_SECRET={ENV_CANARY}${{oops\n"),
        )
        .expect("env file");
        for args in [&["check"][..], &["deploy", "--tag", "v1"][..]] {
            let r = stack.slipway(args);
            assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
            assert!(
                r.stderr.contains("Invalid template") && r.stderr.contains("[JWT_SECRET]"),
                "{args:?} (env_file configured: {configured}) says what compose said: {}",
                r.stderr
            );
            assert!(
                !r.stderr.contains(ENV_CANARY) && !r.stdout.contains(ENV_CANARY),
                "{args:?}: {}",
                r.stderr
            );
        }
        if !configured {
            // `init` reads the project before any slipway.toml exists.
            std::fs::remove_file(stack.config_path()).expect("remove the config");
            let r = stack.slipway(&["--env", "test", "init", "--project", &stack.name]);
            assert_eq!(r.code, 2, "init: {}", r.stderr);
            assert!(r.stderr.contains("[JWT_SECRET]"), "init: {}", r.stderr);
            assert!(!r.stderr.contains(ENV_CANARY), "init: {}", r.stderr);
        }
    }
}
