//! The smoke suite as JUnit XML, the format CI test reporters read (GitHub
//! Actions, GitLab, Jenkins). One `<testcase>` per check: an assertion that
//! failed is a `<failure>`, a check that could not run is an `<error>`.
//! Pure: results in, text out; results are already redacted.

use super::smoke::SuiteResult;

/// XML-escape, dropping characters XML 1.0 cannot hold at all.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

fn secs(ms: u64) -> String {
    format!("{:.3}", ms as f64 / 1000.0)
}

/// `suite_name` is e.g. `slipway smoke (staging)`.
pub fn render(suite: &SuiteResult, suite_name: &str) -> String {
    let errors = suite.checks.iter().filter(|c| c.error.is_some()).count();
    let failures = suite.failed - errors;
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    x.push_str(&format!(
        "<testsuites name=\"{n}\" tests=\"{t}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{time}\">\n",
        n = esc(suite_name),
        t = suite.checks.len(),
        time = secs(suite.duration_ms)
    ));
    x.push_str(&format!(
        "  <testsuite name=\"{n}\" tests=\"{t}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"0\" time=\"{time}\">\n",
        n = esc(suite_name),
        t = suite.checks.len(),
        time = secs(suite.duration_ms)
    ));
    for c in &suite.checks {
        x.push_str(&format!(
            "    <testcase name=\"{}\" classname=\"smoke.{}\" time=\"{}\"",
            esc(&c.name),
            c.kind,
            secs(c.latency_ms)
        ));
        if c.ok {
            x.push_str(" />\n");
            continue;
        }
        x.push_str(">\n");
        let mut detail = vec![format!("target: {}", c.target)];
        if c.attempts > 1 {
            detail.push(format!("attempts: {}", c.attempts));
        }
        for m in &c.failures {
            detail.push(format!(
                "{}: expected {}, got {}",
                m.what, m.expected, m.actual
            ));
        }
        if let Some(e) = &c.error {
            detail.push(format!("could not run: {e}"));
        }
        if let Some(ex) = &c.excerpt {
            detail.push(ex.clone());
        }
        let (tag, ty) = if c.error.is_some() {
            ("error", "error")
        } else {
            ("failure", "assertion")
        };
        x.push_str(&format!(
            "      <{tag} message=\"{}\" type=\"{ty}\">{}</{tag}>\n",
            esc(&c.reason()),
            esc(&detail.join("\n"))
        ));
        x.push_str("    </testcase>\n");
    }
    x.push_str("  </testsuite>\n</testsuites>\n");
    x
}

/// Write the report, creating its folder; the error is a sentence for the user.
pub fn write(path: &std::path::Path, suite: &SuiteResult, suite_name: &str) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {} for the JUnit report: {e}", dir.display()))?;
    }
    std::fs::write(path, render(suite, suite_name))
        .map_err(|e| format!("cannot write the JUnit report {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::{CheckResult, Mismatch};
    use std::time::Duration;

    #[test]
    fn failures_errors_and_escaping() {
        let ok = CheckResult::new("api <health>", "http", "GET /".into()).judged();
        let mut bad = CheckResult::new("core \"API\"", "http", "GET /smoke".into());
        bad.failures.push(Mismatch {
            what: "status".into(),
            expected: "200".into(),
            actual: "500 & \u{1}worse".into(),
        });
        let mut down = CheckResult::new("redis", "exec", "redis: redis-cli ping".into());
        down.error = Some("no result within 10s".into());
        let s = SuiteResult::new(
            vec![ok, bad.judged(), down.judged()],
            Duration::from_millis(2500),
        );
        let x = render(&s, "slipway smoke (staging)");
        assert!(
            x.contains("tests=\"3\" failures=\"1\" errors=\"1\" time=\"2.500\""),
            "{x}"
        );
        assert!(
            x.contains(
                "<testcase name=\"api &lt;health&gt;\" classname=\"smoke.http\" time=\"0.000\" />"
            ),
            "{x}"
        );
        assert!(x.contains("name=\"core &quot;API&quot;\""), "{x}");
        assert!(x.contains("got 500 &amp; worse"), "{x}");
        assert!(
            x.contains("<error message=\"no result within 10s\" type=\"error\">"),
            "{x}"
        );
        assert!(!x.contains('\u{1}'));
    }
}
