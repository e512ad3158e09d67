//! Where a run's wall time went: every step the printer finished (with its
//! detail, which names the services of a rollout wave) and every external
//! command run (by what it is: `docker compose up`, `docker compose pull`, …,
//! how often and for how long in all). Recorded process-wide as the run goes;
//! `--timings` prints the breakdown at the end, `--json` carries it, and the
//! benchmark reads it, so overhead is measured rather than guessed.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepTime {
    pub step: String,
    pub detail: String,
    pub ok: bool,
    pub seconds: f64,
    /// When it began, in seconds since the run started: the gaps between
    /// steps are time no step accounts for.
    pub at: f64,
}

/// One thing that happened to one service's containers, in seconds since
/// the run started (`created`, `started`, `healthy`, `in rotation`, …).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mark {
    pub service: String,
    pub event: String,
    pub at: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CommandTime {
    pub count: usize,
    pub seconds: f64,
}

/// The breakdown of one run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Timings {
    pub steps: Vec<StepTime>,
    /// What ran (`docker compose up`) → how often, and its summed wall time
    /// (invocations that overlap add up beyond the step's own time).
    pub commands: BTreeMap<String, CommandTime>,
    /// Per service, what happened when (a rollout's timeline).
    pub marks: Vec<Mark>,
    /// The run's wall time up to the snapshot.
    pub wall: f64,
}

static RECORD: Mutex<Timings> = Mutex::new(Timings {
    steps: Vec::new(),
    commands: BTreeMap::new(),
    marks: Vec::new(),
    wall: 0.0,
});

static START: OnceLock<Instant> = OnceLock::new();

/// The run starts now (called first thing; later calls change nothing).
pub fn begin() {
    START.get_or_init(Instant::now);
}

fn since_start() -> Duration {
    START.get_or_init(Instant::now).elapsed()
}

fn record() -> std::sync::MutexGuard<'static, Timings> {
    RECORD.lock().unwrap_or_else(|p| p.into_inner())
}

pub fn step(step: &str, detail: &str, ok: bool, took: Duration) {
    tracing::debug!(step, ok, seconds = took.as_secs_f64(), "step");
    let at = round(since_start().saturating_sub(took));
    record().steps.push(StepTime {
        step: step.to_string(),
        detail: detail.to_string(),
        ok,
        seconds: round(took),
        at,
    });
}

/// `service`'s containers reached `event` now.
pub fn mark(service: &str, event: &str) {
    tracing::debug!(service, event, "mark");
    let at = round(since_start());
    record().marks.push(Mark {
        service: service.to_string(),
        event: event.to_string(),
        at,
    });
}

pub fn command(what: String, took: Duration) {
    let mut r = record();
    let c = r.commands.entry(what).or_default();
    c.count += 1;
    c.seconds = ((c.seconds + took.as_secs_f64()) * 1000.0).round() / 1000.0;
}

/// What was recorded so far.
pub fn snapshot() -> Timings {
    let mut t = record().clone();
    t.wall = round(since_start());
    t
}

fn round(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

/// What a command is, for the breakdown: `docker compose <subcommand>`, or
/// the program's name. Options and their values are skipped, so the project,
/// files and services do not split one kind of call into many.
pub fn label(program: &str, args: &[String]) -> String {
    // Compose's global options that take a value (the value is no subcommand).
    const VALUED: &[&str] = &[
        "-p",
        "--project-name",
        "-f",
        "--file",
        "--env-file",
        "--project-directory",
        "--profile",
        "--ansi",
        "--progress",
        "--parallel",
    ];
    let name = program.rsplit('/').next().unwrap_or(program);
    if name != "docker" || args.first().is_none_or(|a| a != "compose") {
        return name.to_string();
    }
    let mut rest = args.iter().skip(1);
    while let Some(a) = rest.next() {
        if VALUED.contains(&a.as_str()) {
            rest.next();
        } else if !a.starts_with('-') {
            return format!("docker compose {a}");
        }
    }
    "docker compose".to_string()
}

/// The breakdown as a table for humans (stderr).
pub fn render(t: &Timings) -> String {
    let mut s = String::from("timings:\n");
    let total: f64 = t.steps.iter().map(|s| s.seconds).sum();
    for st in &t.steps {
        s.push_str(&format!(
            "  {:>7.3}s  {:<12} {}{}\n",
            st.seconds,
            st.step,
            st.detail,
            if st.ok { "" } else { "  (failed)" }
        ));
    }
    s.push_str(&format!("  {total:>7.3}s  in steps\n"));
    if t.wall > 0.0 {
        let before = t.steps.first().map_or(t.wall, |st| st.at);
        s.push_str(&format!(
            "  {:>7.3}s  outside steps (before the first: {before:.3}s)\n",
            (t.wall - total).max(0.0)
        ));
    }
    for (what, c) in &t.commands {
        s.push_str(&format!("  {:>7.3}s  {what} ×{}\n", c.seconds, c.count));
    }
    let mut services: Vec<&str> = Vec::new();
    for m in &t.marks {
        if !services.contains(&m.service.as_str()) {
            services.push(&m.service);
        }
    }
    if !services.is_empty() {
        s.push_str("  per service, seconds since the start:\n");
    }
    for svc in services {
        let line: Vec<String> = t
            .marks
            .iter()
            .filter(|m| m.service == svc)
            .map(|m| format!("{} {:.2}", m.event, m.at))
            .collect();
        s.push_str(&format!("    {svc:<12} {}\n", line.join(" · ")));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_command_is_labelled_by_what_it_does_not_by_its_arguments() {
        let up = args(&[
            "compose",
            "-p",
            "shop",
            "-f",
            "a.yml",
            "up",
            "-d",
            "--no-deps",
            "--",
            "api",
        ]);
        assert_eq!(label("docker", &up), "docker compose up");
        let pull = args(&["compose", "--project-name", "x", "pull", "--", "api"]);
        assert_eq!(label("/usr/bin/docker", &pull), "docker compose pull");
        // A project named like a subcommand is the value of -p, not one.
        let run = args(&[
            "compose",
            "-p",
            "run",
            "--env-file",
            "e",
            "config",
            "--hash",
            "api",
        ]);
        assert_eq!(label("docker", &run), "docker compose config");
        assert_eq!(
            label("docker", &args(&["compose", "version"])),
            "docker compose version"
        );
        assert_eq!(label("/bin/sh", &args(&["-c", "true"])), "sh");
    }

    #[test]
    fn the_table_shows_steps_in_order_and_commands_summed() {
        let mut t = Timings::default();
        t.steps.push(StepTime {
            step: "pull".into(),
            detail: "api, web".into(),
            ok: true,
            seconds: 0.25,
            at: 0.1,
        });
        t.steps.push(StepTime {
            step: "health".into(),
            detail: "api".into(),
            ok: false,
            seconds: 1.5,
            at: 0.35,
        });
        t.commands.insert(
            "docker compose up".into(),
            CommandTime {
                count: 2,
                seconds: 0.8,
            },
        );
        t.wall = 2.0;
        for (service, event, at) in [
            ("api", "created", 0.5),
            ("web", "recreated", 0.6),
            ("api", "healthy", 1.8),
        ] {
            t.marks.push(Mark {
                service: service.into(),
                event: event.into(),
                at,
            });
        }
        let shown = render(&t);
        assert!(
            shown.contains("  0.250s  outside steps (before the first: 0.100s)"),
            "{shown}"
        );
        assert!(
            shown.contains("    api          created 0.50 · healthy 1.80\n"),
            "{shown}"
        );
        assert!(
            shown.contains("    web          recreated 0.60\n"),
            "{shown}"
        );
        let pull = shown.find("pull").unwrap_or(usize::MAX);
        let health = shown.find("health").unwrap_or(0);
        assert!(pull < health, "{shown}");
        assert!(shown.contains("api  (failed)"), "{shown}");
        assert!(shown.contains("  1.750s  in steps"), "{shown}");
        assert!(shown.contains("  0.800s  docker compose up ×2"), "{shown}");
    }
}
