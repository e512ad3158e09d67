//! Renders smoke results for people: one line per check with pass/fail,
//! latency and, on failure, expected versus got and a short excerpt; then
//! one summary line. Pure: a [`SuiteResult`] in, text out.

use super::smoke::SuiteResult;

pub fn text(suite: &SuiteResult) -> String {
    let width = suite
        .checks
        .iter()
        .map(|c| c.name.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for c in &suite.checks {
        let mark = if c.ok { "✓" } else { "✗" };
        let pad = width.saturating_sub(c.name.chars().count());
        out.push_str(&format!(
            "    {mark} {}{}  {:>6} ms",
            c.name,
            " ".repeat(pad),
            c.latency_ms
        ));
        if c.attempts > 1 {
            out.push_str(&format!(" ({} attempts)", c.attempts));
        }
        if !c.ok {
            let prefix = if c.error.is_some() {
                "could not run: "
            } else {
                ""
            };
            out.push_str(&format!("  {prefix}{}", c.reason()));
        }
        out.push('\n');
    }
    out.push_str(&format!(
        "    {} passed, {} failed in {:.1}s (checks' own time adds up to {:.1}s)\n",
        suite.passed,
        suite.failed,
        suite.duration_ms as f64 / 1000.0,
        suite.latency_sum_ms as f64 / 1000.0
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::{CheckResult, Mismatch};
    use std::time::Duration;

    #[test]
    fn one_line_per_check_with_expected_and_got() {
        let mut ok = CheckResult::new("api health", "http", "GET http://x/health".into());
        ok.latency_ms = 12;
        let mut bad = CheckResult::new("core API", "http", "GET http://x/smoke".into());
        bad.latency_ms = 3;
        bad.failures.push(Mismatch {
            what: "$.status".into(),
            expected: "\"ok\"".into(),
            actual: "\"broken\"".into(),
        });
        bad.excerpt = Some("body: {\"status\":\"broken\"}".into());
        let mut down = CheckResult::new("redis", "tcp", "tcp 127.0.0.1:1".into());
        down.error = Some("connection refused".into());
        down.attempts = 3;
        let s = SuiteResult::new(
            vec![ok.judged(), bad.judged(), down.judged()],
            Duration::from_millis(1500),
        );
        let t = text(&s);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4, "{t}");
        assert_eq!(lines[0], "    ✓ api health      12 ms");
        assert_eq!(
            lines[1],
            "    ✗ core API         3 ms  $.status: expected \"ok\", got \"broken\" — body: {\"status\":\"broken\"}"
        );
        assert_eq!(
            lines[2],
            "    ✗ redis            0 ms (3 attempts)  could not run: connection refused"
        );
        assert!(
            lines[3].starts_with("    1 passed, 2 failed in 1.5s"),
            "{}",
            lines[3]
        );
    }
}
