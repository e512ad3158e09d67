//! A payload as a Slack incoming-webhook message, readable at a glance: a
//! headline with an emoji and a colour bar per outcome, then environment,
//! release, tag, commit, branch and duration, the reason on failure, and a
//! link to the CI run. Pure: the caller posts the JSON.

use serde_json::{json, Value};

use super::event::{Event, Payload, TEST_EVENT};
use crate::probe::logs::short_name;

const GREEN: &str = "#2EB67D";
const RED: &str = "#E01E5A";
const YELLOW: &str = "#ECB22E";
const BLUE: &str = "#439FE0";

/// Slack caps a section's text at 3000 characters; keep well below.
const REASON_CAP: usize = 1500;
/// A container's log block: its newest lines up to this many characters.
const LOG_CAP: usize = 1200;
/// Containers shown with their lines; the rest are named as omitted.
const LOG_CONTAINERS: usize = 4;

/// The message body for Slack's incoming webhook.
pub fn message(p: &Payload) -> Value {
    let (emoji, colour, headline) = headline(p);
    let mut blocks = vec![json!({
        "type": "section",
        "text": { "type": "mrkdwn", "text": format!("{emoji} {headline}") }
    })];
    let mut fields = vec![field("Environment", &escape(&p.env))];
    if let Some(id) = p.release {
        let kind = p.kind.as_deref().unwrap_or("deploy");
        fields.push(field("Release", &format!("{id} ({kind})")));
    }
    if let Some(tag) = &p.tag {
        fields.push(field("Tag", &format!("`{}`", escape(tag))));
    }
    if let Some(c) = &p.commit {
        fields.push(field("Commit", &format!("`{}`", escape(short_commit(c)))));
    }
    if let Some(b) = &p.branch {
        fields.push(field("Branch", &escape(b)));
    }
    if let Some(s) = p.duration_s {
        fields.push(field("Duration", &duration(s)));
    }
    blocks.push(json!({ "type": "section", "fields": fields }));
    if let Some(reason) = p.reason.as_deref().filter(|r| !r.is_empty()) {
        blocks.push(json!({
            "type": "section",
            "text": { "type": "mrkdwn", "text": format!("*Reason*\n```{}```", code_block(reason)) }
        }));
    }
    for l in p.logs.iter().take(LOG_CONTAINERS) {
        let name = escape(short_name(&l.container, &p.project));
        blocks.push(json!({
            "type": "section",
            "text": { "type": "mrkdwn", "text": format!("*Last lines of {name}*\n```{}```", log_block(&l.lines, LOG_CAP)) }
        }));
    }
    if p.logs.len() > LOG_CONTAINERS {
        blocks.push(json!({
            "type": "context",
            "elements": [{ "type": "mrkdwn", "text": format!(
                "{} more failing containers: `slipway logs --env {} --release {}`",
                p.logs.len() - LOG_CONTAINERS,
                escape(&p.env),
                p.release.unwrap_or_default()
            ) }]
        }));
    }
    let mut context = Vec::new();
    if let Some(url) = &p.run_url {
        context.push(format!("<{}|View the CI run>", escape(url)));
    }
    context.push(format!("{} on {}", escape(&p.project), escape(&p.host)));
    context.push("slipway".to_string());
    blocks.push(json!({
        "type": "context",
        "elements": [{ "type": "mrkdwn", "text": context.join(" · ") }]
    }));
    json!({
        "text": format!("{emoji} {}", plain(&headline)),
        "attachments": [{ "color": colour, "blocks": blocks }]
    })
}

fn field(name: &str, value: &str) -> Value {
    json!({ "type": "mrkdwn", "text": format!("*{name}*\n{value}") })
}

/// (emoji, colour, headline in mrkdwn) for an event.
fn headline(p: &Payload) -> (&'static str, &'static str, String) {
    let env = format!("*{}*", escape(&p.env));
    let tag = p
        .tag
        .as_deref()
        .map(|t| format!(" `{}`", escape(t)))
        .unwrap_or_default();
    let release = p
        .release
        .map(|r| format!("release {r}"))
        .unwrap_or_default();
    let to = match p.rollback_to {
        Some(t) => format!("release {t}"),
        None => "the state before it (no earlier release)".to_string(),
    };
    let automatic = p.automatic == Some(true);
    if p.event == TEST_EVENT {
        return (
            "🔔",
            BLUE,
            format!("Test message from slipway for {env}: notifications work"),
        );
    }
    match p.event() {
        Some(Event::DeployStarted) => ("🚀", BLUE, format!("Deploying{tag} to {env} ({release})")),
        Some(Event::DeploySucceeded) => {
            ("✅", GREEN, format!("Deployed{tag} to {env} ({release})"))
        }
        Some(Event::DeployFailed) => (
            "🚨",
            RED,
            format!("Deploy of{tag} to {env} failed ({release})"),
        ),
        Some(Event::RollbackStarted) if automatic => (
            "⚠️",
            YELLOW,
            format!("Rolling back {env} to {to}: {release} failed"),
        ),
        Some(Event::RollbackStarted) => ("⏪", BLUE, format!("Rolling back {env} to {to}{tag}")),
        Some(Event::RollbackSucceeded) if automatic => (
            "↩️",
            YELLOW,
            format!("Rolled back {env} to {to} after {release} failed; it is healthy"),
        ),
        Some(Event::RollbackSucceeded) => ("↩️", GREEN, format!("Rolled back {env} to {to}{tag}")),
        Some(Event::RollbackFailed) if automatic => (
            "🔥",
            RED,
            format!("Rollback of {env} to {to} FAILED: a human must act"),
        ),
        Some(Event::RollbackFailed) => (
            "🚨",
            RED,
            format!("Rollback of {env} to {to} failed ({release})"),
        ),
        None => ("ℹ️", BLUE, format!("{} in {env}", escape(&p.event))),
    }
}

/// Slack mrkdwn needs `&`, `<` and `>` escaped; nothing else.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The headline without mrkdwn marks, for notification previews.
fn plain(s: &str) -> String {
    s.replace(['*', '`'], "")
}

fn code_block(reason: &str) -> String {
    let mut r = escape(reason).replace("```", "'''");
    if r.chars().count() > REASON_CAP {
        r = r.chars().take(REASON_CAP).collect::<String>() + "…";
    }
    r
}

/// The newest lines that fit in `cap` characters (a line longer than that
/// is cut), escaped, with how many earlier lines were left out.
fn log_block(lines: &[String], cap: usize) -> String {
    let mut kept: Vec<String> = Vec::new();
    let mut used = 0;
    for line in lines.iter().rev() {
        let mut line = escape(line).replace("```", "'''");
        if line.chars().count() > cap {
            line = line.chars().take(cap).collect::<String>() + "…";
        }
        let len = line.chars().count() + 1;
        if used + len > cap && !kept.is_empty() {
            break;
        }
        used += len;
        kept.push(line);
    }
    let left_out = lines.len() - kept.len();
    kept.reverse();
    let text = kept.join("\n");
    match left_out {
        0 if text.is_empty() => "(no output)".to_string(),
        0 => text,
        n => format!(
            "… {n} earlier line{}\n{text}",
            if n == 1 { "" } else { "s" }
        ),
    }
}

fn short_commit(c: &str) -> &str {
    if c.len() > 7 && c.chars().all(|ch| ch.is_ascii_hexdigit()) {
        &c[..7]
    } else {
        c
    }
}

fn duration(seconds: f64) -> String {
    let s = seconds.round() as u64;
    if s < 60 {
        format!("{s}s")
    } else {
        format!("{}m {}s", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(event: &str) -> Payload {
        let mut p = Payload::new(event, "goodgo", "staging");
        p.release = Some(8);
        p.kind = Some("deploy".into());
        p.tag = Some("v2".into());
        p.commit = Some("0123456789abcdef0123456789abcdef01234567".into());
        p.branch = Some("develop".into());
        p.run_url = Some("https://github.com/acme/goodgo/actions/runs/42".into());
        p
    }

    fn text_of(v: &Value) -> String {
        v.to_string()
    }

    #[test]
    fn a_failure_shows_everything_at_a_glance() {
        let mut p = payload("deploy_failed");
        p.status = Some("in_progress".into());
        p.reason = Some(
            "smoke check `core API` failed: $.status: expected \"ok\", got \"broken\" <b>".into(),
        );
        p.duration_s = Some(83.4);
        let m = message(&p);
        assert_eq!(m["text"], "🚨 Deploy of v2 to staging failed (release 8)");
        assert_eq!(m["attachments"][0]["color"], RED);
        let all = text_of(&m);
        for needle in [
            "*Environment*\\nstaging",
            "*Release*\\n8 (deploy)",
            "*Tag*\\n`v2`",
            "*Commit*\\n`0123456`",
            "*Branch*\\ndevelop",
            "*Duration*\\n1m 23s",
            "smoke check `core API` failed",
            "&lt;b&gt;",
            "<https://github.com/acme/goodgo/actions/runs/42|View the CI run>",
        ] {
            assert!(all.contains(needle), "{needle} not in {all}");
        }
    }

    #[test]
    fn a_failure_shows_the_failing_containers_last_lines_bounded() {
        let mut p = payload("deploy_failed");
        p.logs = vec![crate::state::ContainerLogs {
            service: "api".into(),
            container: "goodgo-api-1".into(),
            lines: vec!["booting <db>".into(), "fixture: crashing at start".into()],
        }];
        let all = text_of(&message(&p));
        assert!(
            all.contains(
                "*Last lines of api-1*\\n```booting &lt;db&gt;\\nfixture: crashing at start```"
            ),
            "{all}"
        );
        // Many long lines: the newest that fit, and how many were left out.
        let lines: Vec<String> = (0..100)
            .map(|i| format!("{i:03} {}", "x".repeat(96)))
            .collect();
        let block = log_block(&lines, LOG_CAP);
        assert!(block.chars().count() <= LOG_CAP + 40, "{}", block.len());
        assert!(block.starts_with("… 89 earlier lines\n"), "{block}");
        assert!(block.ends_with(&lines[99]), "{block}");
        // One huge line is cut, never dropped whole.
        let block = log_block(&["y".repeat(5000)], LOG_CAP);
        assert_eq!(block.chars().count(), LOG_CAP + 1);
        // More containers than shown: named, with where to see them.
        p.logs = vec![p.logs[0].clone(); 6];
        let m = message(&p);
        let blocks = m["attachments"][0]["blocks"].as_array().expect("blocks");
        assert_eq!(
            blocks
                .iter()
                .filter(|b| b.to_string().contains("Last lines of"))
                .count(),
            LOG_CONTAINERS
        );
        assert!(text_of(&m).contains("2 more failing containers"));
    }

    #[test]
    fn rollbacks_say_where_to_and_whether_automatic() {
        let mut p = payload("rollback_succeeded");
        p.rollback_to = Some(7);
        p.automatic = Some(true);
        let m = message(&p);
        assert_eq!(
            m["text"],
            "↩️ Rolled back staging to release 7 after release 8 failed; it is healthy"
        );
        p.event = "rollback_failed".into();
        assert_eq!(message(&p)["attachments"][0]["color"], RED);
        assert!(message(&p)["text"]
            .as_str()
            .is_some_and(|t| t.contains("a human must act")));
        p.event = "rollback_started".into();
        p.automatic = Some(false);
        p.tag = Some("v1".into());
        assert_eq!(
            message(&p)["text"],
            "⏪ Rolling back staging to release 7 v1"
        );
    }

    #[test]
    fn a_started_message_has_no_reason_block_and_fits_slack_limits() {
        let mut p = payload("deploy_started");
        p.reason = Some("x".repeat(10_000));
        p.event = "deploy_failed".into();
        let m = message(&p);
        for b in m["attachments"][0]["blocks"].as_array().expect("blocks") {
            if let Some(t) = b["text"]["text"].as_str() {
                assert!(t.chars().count() < 3000);
            }
        }
        let started = message(&payload("deploy_started"));
        assert!(!started.to_string().contains("*Reason*"));
        assert_eq!(started["text"], "🚀 Deploying v2 to staging (release 8)");
    }
}
