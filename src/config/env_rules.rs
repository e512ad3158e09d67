//! Env file rules: what each environment's env file must hold before slipway
//! deploys with it (`[env_rules]` in slipway.toml, and ready presets such as
//! the seed's production checklist).
//!
//! [`check`] is a pure function over the parsed env file that returns every
//! violation at once, each with the env file's line and a message that never
//! contains the value: `slipway check` prints them, deploy preflight stops on
//! them (exit 2) before anything changes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::env_file::EnvFile;
use super::{did_you_mean, Source};
use crate::error::{Error, Result};

use super::spanned::S;
use schemars::JsonSchema;

// ---- the serde shape -------------------------------------------------------

/// `[env_rules]`: an optional preset, the environments the rules apply to,
/// and `[env_rules.vars.NAME]` tables.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawEnvRules {
    pub preset: Option<S<String>>,
    pub environments: Option<S<Vec<String>>>,
    #[serde(default)]
    pub vars: BTreeMap<S<String>, RawVarRule>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn list(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RawUrl {
    Any(bool),
    Schemes(Vec<String>),
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawVarRule {
    pub required: Option<bool>,
    pub min_length: Option<S<i64>>,
    pub equals: Option<String>,
    pub not_equals: Option<OneOrMany>,
    pub one_of: Option<S<Vec<String>>>,
    pub distinct_from: Option<S<OneOrMany>>,
    pub not_default: Option<bool>,
    pub url: Option<RawUrl>,
    pub matches: Option<S<String>>,
    pub not_contains: Option<OneOrMany>,
    pub environments: Option<S<Vec<String>>>,
}

// ---- the model -------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// Set and not empty.
    Required,
    MinLength(usize),
    Equals(String),
    NotEquals(Vec<String>),
    OneOf(Vec<String>),
    /// Not the same value as these variables.
    DistinctFrom(Vec<String>),
    /// Not a well-known default password or placeholder (also the password inside a URL).
    NotDefault,
    /// An absolute URL with a host; with schemes, one of them.
    Url(Vec<String>),
    Matches(String),
    NotContains(Vec<String>),
}

impl Rule {
    pub fn name(&self) -> &'static str {
        match self {
            Rule::Required => "required",
            Rule::MinLength(_) => "min_length",
            Rule::Equals(_) => "equals",
            Rule::NotEquals(_) => "not_equals",
            Rule::OneOf(_) => "one_of",
            Rule::DistinctFrom(_) => "distinct_from",
            Rule::NotDefault => "not_default",
            Rule::Url(_) => "url",
            Rule::Matches(_) => "matches",
            Rule::NotContains(_) => "not_contains",
        }
    }
}

/// The rules for one variable.
#[derive(Debug, Clone, PartialEq)]
pub struct VarRule {
    pub var: String,
    pub rules: Vec<Rule>,
    /// `None`: every environment.
    pub environments: Option<Vec<String>>,
    /// Where the rule comes from, for messages: `env_rules.vars.X` or `preset "production"`.
    pub from: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct EnvRules {
    pub vars: Vec<VarRule>,
}

impl EnvRules {
    pub fn is_empty(&self) -> bool {
        self.vars.is_empty()
    }

    pub fn applies_to(&self, env: &str) -> bool {
        self.vars.iter().any(|v| applies(v, env))
    }
}

fn applies(v: &VarRule, env: &str) -> bool {
    v.environments
        .as_ref()
        .is_none_or(|envs| envs.iter().any(|e| e == env))
}

// ---- presets ---------------------------------------------------------------

pub const PRESETS: &[&str] = &["production"];

/// The seed's production checklist: secrets of at least 32 characters and
/// distinct from each other, default passwords changed, `NODE_ENV=production`,
/// a restricted `CORS_ORIGINS`, well-formed connection URLs.
pub fn preset(name: &str) -> Option<Vec<(&'static str, Vec<Rule>)>> {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    match name {
        "production" => Some(vec![
            (
                "JWT_SECRET",
                vec![Rule::Required, Rule::MinLength(32), Rule::NotDefault],
            ),
            (
                "JWT_REFRESH_SECRET",
                vec![
                    Rule::Required,
                    Rule::MinLength(32),
                    Rule::NotDefault,
                    Rule::DistinctFrom(s(&["JWT_SECRET"])),
                ],
            ),
            ("NODE_ENV", vec![Rule::Equals("production".into())]),
            (
                "CORS_ORIGINS",
                vec![Rule::Required, Rule::NotContains(s(&["*"]))],
            ),
            (
                "DATABASE_URL",
                vec![
                    Rule::Required,
                    Rule::Url(s(&["postgres", "postgresql"])),
                    Rule::NotDefault,
                ],
            ),
            (
                "REDIS_URL",
                vec![Rule::Required, Rule::Url(s(&["redis", "rediss"]))],
            ),
            (
                "TYPESENSE_API_KEY",
                vec![
                    Rule::Required,
                    Rule::MinLength(32),
                    Rule::NotDefault,
                    Rule::DistinctFrom(s(&["JWT_SECRET", "JWT_REFRESH_SECRET"])),
                ],
            ),
            ("POSTGRES_PASSWORD", vec![Rule::NotDefault]),
            ("MINIO_USER", vec![Rule::NotDefault]),
            ("MINIO_PASSWORD", vec![Rule::NotDefault]),
            ("GRAFANA_ADMIN_USER", vec![Rule::NotDefault]),
            ("GRAFANA_ADMIN_PASSWORD", vec![Rule::NotDefault]),
        ]),
        _ => None,
    }
}

/// Well-known defaults (compared whole, ignoring case).
const DEFAULTS: &[&str] = &[
    "admin",
    "admin123",
    "administrator",
    "changeit",
    "default",
    "guest",
    "letmein",
    "minio",
    "minio123",
    "minioadmin",
    "mysql",
    "p@ssw0rd",
    "pass",
    "passw0rd",
    "password",
    "password1",
    "password123",
    "postgres",
    "qwerty",
    "redis",
    "root",
    "secret",
    "secret123",
    "supersecret",
    "test",
    "test123",
    "toor",
    "user",
    "welcome",
    "xyz",
    "1234",
    "12345",
    "123456",
    "12345678",
    "123456789",
];

/// Placeholders left from an example file (found anywhere in the value).
const PLACEHOLDERS: &[&str] = &[
    "change-me",
    "changeme",
    "change_me",
    "change-this",
    "changethis",
    "replace-me",
    "replaceme",
    "replace_me",
    "your-secret",
    "your_secret",
    "yoursecret",
    "your-password",
    "your_password",
];

pub fn is_default(value: &str) -> bool {
    let v = value.trim().to_ascii_lowercase();
    DEFAULTS.contains(&v.as_str()) || PLACEHOLDERS.iter().any(|p| v.contains(p))
}

// ---- validation (config stage 2) -------------------------------------------

fn check_var_name(name: &str) -> std::result::Result<(), String> {
    if !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        Ok(())
    } else {
        Err(format!("`{name}` is not an environment variable name"))
    }
}

fn environments(
    src: &Source,
    key: &str,
    v: &Option<S<Vec<String>>>,
    known: &[&str],
) -> Result<Option<Vec<String>>> {
    let Some(v) = v else { return Ok(None) };
    for e in v.get_ref() {
        if !known.contains(&e.as_str()) {
            return src.err(
                v.span(),
                format!(
                    "{key}.environments: no environment `{e}` (known: {}){}",
                    known.join(", "),
                    did_you_mean(e, known.iter().copied())
                ),
            );
        }
    }
    Ok(Some(v.get_ref().clone()))
}

/// `min_length`: 1 or more.
fn min_length(src: &Source, key: &str, n: &S<i64>) -> Result<Rule> {
    if *n.get_ref() < 1 {
        return src.err(n.span(), format!("{key}.min_length: must be 1 or more"));
    }
    Ok(Rule::MinLength(*n.get_ref() as usize))
}

/// `distinct_from`: variable names, never the variable itself.
fn distinct_from(src: &Source, key: &str, var: &str, v: &S<OneOrMany>) -> Result<Rule> {
    let others = v.get_ref().list();
    for o in &others {
        check_var_name(o).or_else(|m| src.err(v.span(), format!("{key}.distinct_from: {m}")))?;
        if o == var {
            return src.err(
                v.span(),
                format!("{key}.distinct_from: a variable is never distinct from itself"),
            );
        }
    }
    Ok(Rule::DistinctFrom(others))
}

/// `matches`: a regular expression that compiles.
fn matches(src: &Source, key: &str, p: &S<String>) -> Result<Rule> {
    regex::Regex::new(p.get_ref()).or_else(|e| {
        src.err(
            p.span(),
            format!("{key}.matches: not a regular expression: {e}"),
        )
    })?;
    Ok(Rule::Matches(p.get_ref().clone()))
}

/// The rules of one `[env_rules.vars.NAME]` table, checked.
fn var_rules(src: &Source, key: &str, name: &S<String>, r: &RawVarRule) -> Result<Vec<Rule>> {
    let var = name.get_ref();
    let mut rules = Vec::new();
    if r.required == Some(true) {
        rules.push(Rule::Required);
    }
    if let Some(n) = &r.min_length {
        rules.push(min_length(src, key, n)?);
    }
    if let Some(v) = &r.equals {
        rules.push(Rule::Equals(v.clone()));
    }
    if let Some(v) = &r.not_equals {
        rules.push(Rule::NotEquals(v.list()));
    }
    if let Some(v) = &r.one_of {
        if v.get_ref().is_empty() {
            return src.err(v.span(), format!("{key}.one_of: list at least one value"));
        }
        rules.push(Rule::OneOf(v.get_ref().clone()));
    }
    if let Some(v) = &r.distinct_from {
        rules.push(distinct_from(src, key, var, v)?);
    }
    if r.not_default == Some(true) {
        rules.push(Rule::NotDefault);
    }
    match &r.url {
        Some(RawUrl::Any(true)) => rules.push(Rule::Url(Vec::new())),
        Some(RawUrl::Schemes(s)) => rules.push(Rule::Url(s.clone())),
        _ => {}
    }
    if let Some(p) = &r.matches {
        rules.push(matches(src, key, p)?);
    }
    if let Some(v) = &r.not_contains {
        rules.push(Rule::NotContains(v.list()));
    }
    if rules.is_empty() {
        return src.err(
            name.span(),
            format!("{key}: no rule given (use required, min_length, equals, not_equals, one_of, distinct_from, not_default, url, matches, not_contains)"),
        );
    }
    Ok(rules)
}

pub(super) fn build(
    src: &Source,
    raw: Option<&RawEnvRules>,
    known_envs: &[&str],
) -> Result<EnvRules> {
    let Some(raw) = raw else {
        return Ok(EnvRules::default());
    };
    let scope = environments(src, "env_rules", &raw.environments, known_envs)?;
    let mut vars: Vec<VarRule> = Vec::new();
    if let Some(p) = &raw.preset {
        let name = p.get_ref();
        let Some(rules) = preset(name) else {
            return src.err(
                p.span(),
                format!(
                    "env_rules.preset: no preset `{name}` (presets: {}){}",
                    PRESETS.join(", "),
                    did_you_mean(name, PRESETS.iter().copied())
                ),
            );
        };
        for (var, rules) in rules {
            // An explicit table for the same variable replaces the preset's rules.
            if raw.vars.keys().any(|k| k.get_ref() == var) {
                continue;
            }
            vars.push(VarRule {
                var: var.to_string(),
                rules,
                environments: scope.clone(),
                from: format!("preset \"{name}\""),
            });
        }
    }
    for (name, r) in &raw.vars {
        let var = name.get_ref();
        let key = format!("env_rules.vars.{var}");
        check_var_name(var).or_else(|m| src.err(name.span(), format!("{key}: {m}")))?;
        let rules = var_rules(src, &key, name, r)?;
        let envs = match &r.environments {
            Some(_) => environments(src, &key, &r.environments, known_envs)?,
            None => scope.clone(),
        };
        vars.push(VarRule {
            var: var.clone(),
            rules,
            environments: envs,
            from: key,
        });
    }
    Ok(EnvRules { vars })
}

// ---- checking an env file ----------------------------------------------------

/// One broken rule. `message` names the rule and never the value.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Violation {
    pub var: String,
    /// The env file's line (`None`: the variable is not in the file).
    pub line: Option<usize>,
    pub rule: &'static str,
    pub message: String,
}

impl Violation {
    /// `.env:3: JWT_SECRET: …` (or `.env: JWT_SECRET: …` when not set at all).
    pub fn located(&self, file: &str) -> String {
        match self.line {
            Some(l) => format!("{file}:{l}: {}: {}", self.var, self.message),
            None => format!("{file}: {}: {}", self.var, self.message),
        }
    }
}

fn quoted(list: &[String]) -> String {
    list.iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What is wrong with a set `value` under one rule, in words that never
/// repeat the value (empty: the rule holds).
fn broken(rule: &Rule, value: &str, file: &EnvFile) -> Vec<String> {
    let fails = |bad: bool, message: String| if bad { vec![message] } else { Vec::new() };
    match rule {
        Rule::Required => Vec::new(),
        Rule::MinLength(n) => fails(
            value.chars().count() < *n,
            format!("must be at least {n} characters long"),
        ),
        Rule::Equals(want) => fails(value != want, format!("must be `{want}`")),
        Rule::NotEquals(bad) => fails(
            bad.iter().any(|b| b == value),
            format!("must not be {}", quoted(bad)),
        ),
        Rule::OneOf(ok) => fails(
            !ok.iter().any(|o| o == value),
            format!("must be one of {}", quoted(ok)),
        ),
        Rule::DistinctFrom(others) => others
            .iter()
            .filter(|o| file.get(o).and_then(|e| e.value.as_deref()) == Some(value))
            .map(|o| format!("must differ from {o} (they are the same)"))
            .collect(),
        Rule::NotDefault => {
            let url_password = reqwest::Url::parse(value)
                .ok()
                .and_then(|u| u.password().map(str::to_string));
            if is_default(value) {
                vec!["is a well-known default or placeholder; set a unique value".into()]
            } else {
                fails(
                    url_password.is_some_and(|pw| is_default(&pw)),
                    "holds a URL whose password is a well-known default or placeholder".into(),
                )
            }
        }
        Rule::Url(schemes) => match reqwest::Url::parse(value) {
            Ok(u) if u.host_str().is_some_and(|h| !h.is_empty()) => fails(
                !schemes.is_empty() && !schemes.iter().any(|s| s == u.scheme()),
                format!(
                    "must be a URL with scheme {} (it has `{}`)",
                    schemes.join(" or "),
                    u.scheme()
                ),
            ),
            _ => vec!["is not a URL (scheme://host…)".into()],
        },
        Rule::Matches(p) => fails(
            regex::Regex::new(p).is_ok_and(|re| !re.is_match(value)),
            format!("does not match /{p}/"),
        ),
        Rule::NotContains(bad) => bad
            .iter()
            .filter(|b| value.contains(b.as_str()))
            .map(|b| format!("must not contain `{b}`"))
            .collect(),
    }
}

/// Every rule that applies to `env`, checked against `file`.
pub fn check(rules: &EnvRules, env: &str, file: &EnvFile) -> Vec<Violation> {
    let mut out: Vec<Violation> = file
        .malformed
        .iter()
        .map(|m| Violation {
            var: "(line)".into(),
            line: Some(m.line),
            rule: "syntax",
            message: format!("{} (compose would not read it)", m.why),
        })
        .collect();
    for vr in rules.vars.iter().filter(|v| applies(v, env)) {
        let entry = file.get(&vr.var);
        let line = entry.map(|e| e.line);
        let value = entry.and_then(|e| e.value.as_deref());
        let mut push = |rule: &Rule, message: String| {
            out.push(Violation {
                var: vr.var.clone(),
                line,
                rule: rule.name(),
                message: format!("{message} ({})", vr.from),
            })
        };
        let value = match value {
            Some(v) if !v.is_empty() => v,
            _ => {
                if let Some(r) = vr.rules.iter().find(|r| **r == Rule::Required) {
                    let why = match entry {
                        None => "is required but not set in the env file",
                        Some(e) if e.value.is_none() => {
                            "is required but has no value here (a bare name takes it from the shell)"
                        }
                        Some(_) => "is required but empty",
                    };
                    push(r, why.to_string());
                }
                continue;
            }
        };
        for rule in &vr.rules {
            for message in broken(rule, value, file) {
                push(rule, message);
            }
        }
    }
    out.sort_by_key(|v| (v.line.unwrap_or(usize::MAX), v.var.clone()));
    out
}

/// The outcome of checking one environment's env file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EnvReport {
    pub file: PathBuf,
    /// How the file is named in messages (as written in slipway.toml).
    pub shown: String,
    pub violations: Vec<Violation>,
}

impl EnvReport {
    pub fn ok(&self) -> bool {
        self.violations.is_empty()
    }

    pub fn lines(&self) -> Vec<String> {
        self.violations
            .iter()
            .map(|v| v.located(&self.shown))
            .collect()
    }

    /// The error deploy preflight and `slipway check` stop with (exit 2).
    pub fn error(&self) -> Error {
        let n = self.violations.len();
        Error::Preflight(format!(
            "env file {} breaks {n} rule{}:\n{}\n  nothing was changed; fix the env file and run `slipway check`",
            self.shown,
            if n == 1 { "" } else { "s" },
            self.lines()
                .iter()
                .map(|l| format!("  {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        ))
    }
}

/// Read `env`'s env file and check it. `Ok(None)`: no rules apply.
pub fn check_environment(
    rules: &EnvRules,
    env: &str,
    env_file: Option<&str>,
    dir: &Path,
) -> Result<Option<EnvReport>> {
    if !rules.applies_to(env) {
        return Ok(None);
    }
    let Some(shown) = env_file else {
        return Err(Error::Preflight(format!(
            "env_rules apply to environment `{env}`, but it has no env_file to check\n  hint: set environments.{env}.env_file, or limit the rules with env_rules.environments"
        )));
    };
    let file = dir.join(shown);
    let parsed = EnvFile::read(&file).map_err(|e| {
        Error::Preflight(format!(
            "cannot read env file {} (environments.{env}.env_file): {e}",
            file.display()
        ))
    })?;
    Ok(Some(EnvReport {
        file,
        shown: shown.to_string(),
        violations: check(rules, env, &parsed),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn production() -> EnvRules {
        EnvRules {
            vars: preset("production")
                .unwrap_or_default()
                .into_iter()
                .map(|(var, rules)| VarRule {
                    var: var.into(),
                    rules,
                    environments: None,
                    from: "preset".into(),
                })
                .collect(),
        }
    }

    const GOOD: &str = "NODE_ENV=production
DATABASE_URL=postgresql://goodgo:Zq8-not-a-default@postgres:5432/goodgo
JWT_SECRET=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
JWT_REFRESH_SECRET=bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb
REDIS_URL=redis://redis:6379
TYPESENSE_API_KEY=cccccccccccccccccccccccccccccccccccc
CORS_ORIGINS=https://goodgo.example
";

    #[test]
    fn the_production_preset_passes_a_good_file() {
        let v = check(&production(), "production", &EnvFile::parse(GOOD));
        assert!(v.is_empty(), "{v:?}");
    }

    #[test]
    fn every_violation_at_once_with_lines_and_no_values() {
        let bad = "NODE_ENV=development
DATABASE_URL=postgresql://goodgo:change-me@postgres:5432/goodgo
JWT_SECRET=short-secret-canary
JWT_REFRESH_SECRET=short-secret-canary
REDIS_URL=localhost:6379
CORS_ORIGINS=*
MINIO_PASSWORD=minioadmin
";
        let v = check(&production(), "production", &EnvFile::parse(bad));
        let got: Vec<(Option<usize>, &str, &str)> =
            v.iter().map(|v| (v.line, v.var.as_str(), v.rule)).collect();
        assert_eq!(
            got,
            vec![
                (Some(1), "NODE_ENV", "equals"),
                (Some(2), "DATABASE_URL", "not_default"),
                (Some(3), "JWT_SECRET", "min_length"),
                (Some(4), "JWT_REFRESH_SECRET", "min_length"),
                (Some(4), "JWT_REFRESH_SECRET", "distinct_from"),
                (Some(5), "REDIS_URL", "url"),
                (Some(6), "CORS_ORIGINS", "not_contains"),
                (Some(7), "MINIO_PASSWORD", "not_default"),
                (None, "TYPESENSE_API_KEY", "required"),
            ]
        );
        for x in &v {
            let line = x.located(".env");
            assert!(!line.contains("short-secret-canary"), "{line}");
            assert!(!line.contains("change-me"), "{line}");
            assert!(!line.contains("minioadmin"), "{line}");
        }
        assert_eq!(
            v[0].located(".env"),
            ".env:1: NODE_ENV: must be `production` (preset)"
        );
    }

    #[test]
    fn rules_and_scopes() {
        let rules = EnvRules {
            vars: vec![
                VarRule {
                    var: "MODE".into(),
                    rules: vec![Rule::OneOf(vec!["a".into(), "b".into()])],
                    environments: Some(vec!["prod".into()]),
                    from: "x".into(),
                },
                VarRule {
                    var: "CODE".into(),
                    rules: vec![
                        Rule::Matches("^[A-Z]{3}$".into()),
                        Rule::NotEquals(vec!["ABC".into()]),
                    ],
                    environments: None,
                    from: "x".into(),
                },
                VarRule {
                    var: "HOOK".into(),
                    rules: vec![Rule::Url(Vec::new())],
                    environments: None,
                    from: "x".into(),
                },
            ],
        };
        let f = EnvFile::parse("MODE=c\nCODE=ABC\nHOOK=https://x.example/h\n");
        let rules_of = |env: &str| -> Vec<&'static str> {
            check(&rules, env, &f).iter().map(|v| v.rule).collect()
        };
        assert_eq!(rules_of("prod"), vec!["one_of", "not_equals"]);
        assert_eq!(rules_of("staging"), vec!["not_equals"]);
        let f = EnvFile::parse("MODE=a\nCODE=abcd\nHOOK=not a url\n");
        assert_eq!(
            check(&rules, "prod", &f)
                .iter()
                .map(|v| v.rule)
                .collect::<Vec<_>>(),
            vec!["matches", "url"]
        );
    }

    #[test]
    fn defaults_and_placeholders() {
        for v in [
            "admin",
            "Password",
            "change-me-in-prod",
            "xyz",
            "minioadmin",
        ] {
            assert!(is_default(v), "{v}");
        }
        for v in ["k3Jf9-unique-value", "example-password-not-real"] {
            assert!(!is_default(v), "{v}");
        }
    }
}
