//! `slipway smoke`: the smoke suite alone (what `scripts/smoke-test.sh <url>` did).

use crate::error::{Error, Result};
use crate::pipeline::context::compose_for;
use crate::probe::report;
use crate::probe::smoke::Suite;
use crate::probe::Vars;
use crate::settings::Settings;

pub async fn run(s: Settings, url: Option<String>) -> Result<()> {
    if s.config.smoke.is_empty() {
        return Err(Error::Usage(format!(
            "{} has no [[smoke]] checks",
            s.config.path.display()
        )));
    }
    let compose = compose_for(&s.config, &s.env);
    let suite = Suite {
        checks: &s.config.smoke,
        vars: Vars {
            url: url.or_else(|| s.env.url.clone()).unwrap_or_default(),
            env: s.env.name.clone(),
            tag: s.env.tag.clone(),
        },
        compose: &compose,
        cwd: &s.config.dir,
        timeout: s.env.smoke_timeout,
    }
    .run()
    .await;
    if s.out.json {
        s.out.json(&suite);
    } else {
        eprint!("{}", report::text(&suite));
    }
    if suite.ok {
        Ok(())
    } else {
        Err(Error::ChecksFailed(suite.reason()))
    }
}
