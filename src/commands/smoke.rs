//! `slipway smoke`: the smoke suite alone (what `scripts/smoke-test.sh <url>`
//! did). Exit 0 when every check passes, 1 when some failed, 2 for a config
//! or usage problem. `--json` prints the results on stdout, `--junit PATH`
//! writes them as JUnit XML.

use std::path::PathBuf;

use crate::backend::compose::context::compose_for;
use crate::error::{Error, Result};
use crate::probe::smoke::Suite;
use crate::probe::{junit, report, Secrets, Vars};
use crate::settings::Settings;

/// Check the URL, run the suite, report it (text or JSON, and JUnit).
pub async fn run(s: Settings, url: Option<String>, junit_path: Option<PathBuf>) -> Result<()> {
    if s.config.smoke.is_empty() {
        // One host of several may have none of its own; the controller runs the rest.
        if s.env.host_address.is_some() {
            s.out.line("no checks of this host's own");
            return Ok(());
        }
        return Err(Error::Usage(format!(
            "{} has no [[smoke]] checks",
            s.config.path.display()
        )));
    }
    checks(&s, &s.config.smoke, url, junit_path).await
}

/// Run `checks` as the suite, reported and judged.
pub async fn checks(
    s: &Settings,
    checks: &[crate::config::SmokeCheck],
    url: Option<String>,
    junit_path: Option<PathBuf>,
) -> Result<()> {
    let url = checked_url(s, checks, url)?;
    let compose = compose_for(&s.config, &s.env);
    let suite = Suite {
        checks,
        vars: Vars {
            url: url.unwrap_or_default(),
            env: s.env.name.clone(),
            tag: s.env.tag.clone(),
            secrets: Secrets::of(&s.config, &s.env),
            host: s.env.host_address.clone(),
        },
        compose: &compose,
        cwd: &s.config.dir,
        timeout: s.env.smoke_timeout,
        concurrency: s.env.smoke_concurrency,
    }
    .run()
    .await;
    if s.out.json {
        s.out.json(&suite);
    } else {
        eprint!("{}", report::text(&suite));
    }
    if let Some(path) = &junit_path {
        junit::write(path, &suite, &format!("slipway smoke ({})", s.env.name))
            .map_err(Error::Environment)?;
    }
    if suite.ok {
        Ok(())
    } else {
        Err(Error::ChecksFailed(format!(
            "{} of {} smoke checks failed",
            suite.failed,
            suite.checks.len()
        )))
    }
}

/// `--url`, else the environment's `url`: a URL if given, and given if a
/// check uses `{url}` or `{host}`.
fn checked_url(
    s: &Settings,
    checks: &[crate::config::SmokeCheck],
    url: Option<String>,
) -> Result<Option<String>> {
    let given = url.is_some();
    let url = url.or_else(|| s.env.url.clone());
    match &url {
        Some(u) => {
            reqwest::Url::parse(u).map_err(|e| {
                Error::Usage(format!(
                    "{} `{u}` is not a URL: {e}",
                    if given {
                        "--url".to_string()
                    } else {
                        format!("environments.{}.url", s.env.name)
                    }
                ))
            })?;
        }
        None => {
            // `{host}` comes from the url, except on one host of several.
            let needs_url = |c: &&crate::config::SmokeCheck| {
                c.uses("{url}") || (c.uses("{host}") && s.env.host_address.is_none())
            };
            if let Some(c) = checks.iter().find(needs_url) {
                return Err(Error::Usage(format!(
                    "smoke check `{}` uses {{url}}, but environments.{}.url is not set\n  hint: pass --url URL",
                    c.name, s.env.name
                )));
            }
        }
    }
    Ok(url)
}
