//! Renders smoke results for people (one line per check).

use super::smoke::SuiteResult;

pub fn text(suite: &SuiteResult) -> String {
    let width = suite.checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for c in &suite.checks {
        let mark = if c.ok { "✓" } else { "✗" };
        out.push_str(&format!(
            "    {mark} {:width$}  {:>6} ms",
            c.name, c.latency_ms
        ));
        if !c.ok {
            out.push_str(&format!("  {}", c.reason()));
        }
        out.push('\n');
    }
    let failed = suite.failed().count();
    out.push_str(&format!(
        "    {} passed, {} failed ({} ms)\n",
        suite.checks.len() - failed,
        failed,
        suite.duration_ms
    ));
    out
}
