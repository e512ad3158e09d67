//! Env file rules through `slipway check`: every violation at once, each with
//! the env file's line, exit 2, and never a value.

use super::smoke::Project;

const RULES: &str = r#"env_file = ".env"

[services.api]

[env_rules]
preset = "production"

[env_rules.vars.LOG_LEVEL]
one_of = ["info", "warn", "error"]

[env_rules.vars.PUBLIC_URL]
url = ["https"]
required = true
"#;

const GOOD: &str = "# production
NODE_ENV=production
DATABASE_URL=postgresql://goodgo:Zq8vT2-unique@postgres:5432/goodgo
JWT_SECRET=3f9a1c7e5b2d4f6a8c0e1b3d5f7a9c2e4b6d8f0a
JWT_REFRESH_SECRET=a0f8d6b4e2c9a7f5d3b1e0c8a6f4d2b5e7c3a1f9
REDIS_URL=redis://redis:6379
TYPESENSE_API_KEY=9c1e7a3f5b8d2e4c6a0f1b3d5e7a9c2f4b6d8e0a
CORS_ORIGINS=https://goodgo.example
LOG_LEVEL=warn
PUBLIC_URL=https://goodgo.example
";

#[test]
fn a_clean_env_file_passes_check() {
    let p = Project::new("http://127.0.0.1:1", RULES);
    std::fs::write(p.path().join(".env"), GOOD).expect("env");
    let run = p.slipway(&["check"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("✓ env rules   27 rules hold in .env"),
        "{}",
        run.stderr
    );
}

#[test]
fn check_reports_every_violation_with_its_line_and_no_value() {
    let p = Project::new("http://127.0.0.1:1", RULES);
    let secret = "canary-7d1f0e-short";
    let bad = format!(
        "NODE_ENV=development
DATABASE_URL=postgresql://goodgo:change-me@postgres:5432/goodgo
JWT_SECRET={secret}
JWT_REFRESH_SECRET={secret}
REDIS_URL=redis://redis:6379
CORS_ORIGINS=*
LOG_LEVEL=verbose
PUBLIC_URL=http://goodgo.example
GRAFANA_ADMIN_PASSWORD=admin
this line is broken
"
    );
    std::fs::write(p.path().join(".env"), &bad).expect("env");
    let run = p.slipway(&["check"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    for expected in [
        ".env:1: NODE_ENV: must be `production` (preset \"production\")",
        ".env:2: DATABASE_URL: is a well-known default or placeholder; set a unique value",
        ".env:3: JWT_SECRET: must be at least 32 characters long",
        ".env:4: JWT_REFRESH_SECRET: must be at least 32 characters long",
        ".env:4: JWT_REFRESH_SECRET: must differ from JWT_SECRET (they are the same)",
        ".env:6: CORS_ORIGINS: must not contain `*`",
        ".env:7: LOG_LEVEL: must be one of `info`, `warn`, `error` (env_rules.vars.LOG_LEVEL)",
        ".env:8: PUBLIC_URL: must be a URL with scheme https (it has `http`)",
        ".env:9: GRAFANA_ADMIN_PASSWORD: is a well-known default",
        ".env:10: (line): not a KEY=VALUE line",
        ".env: TYPESENSE_API_KEY: is required but not set in the env file",
    ] {
        assert!(
            run.stderr.contains(expected),
            "missing {expected:?} in:\n{}",
            run.stderr
        );
    }
    assert!(
        run.stderr.contains("breaks 11 of its rules"),
        "{}",
        run.stderr
    );
    for value in [secret, "change-me", "development", "verbose", "admin\n"] {
        assert!(
            !run.stderr.contains(value) && !run.stdout.contains(value),
            "{value} was printed"
        );
    }

    let run = p.slipway(&["check", "--json"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let json = run.json();
    assert_eq!(json["ok"], false);
    let v = json["violations"].as_array().expect("violations");
    assert_eq!(v.len(), 11);
    assert_eq!(v[0]["var"], "NODE_ENV");
    assert_eq!(v[0]["line"], 1);
    assert_eq!(v[0]["rule"], "equals");
    assert!(!run.stdout.contains(secret));
}
