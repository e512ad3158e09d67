//! Prometheus textfile-collector metrics, from the recorded history.
//!
//! After a deploy, rollback or recover, the command layer renders every
//! environment's releases ([`render`], pure) and replaces the file
//! atomically ([`write_atomic`]: a temporary file in the same folder, synced,
//! then renamed), so node_exporter never reads half a file. History is the
//! source, not the run that just ended: counters stay right across runs,
//! hosts and CI runners, and a run that died is counted once `recover` closes it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use crate::error::{Error, Result};
use crate::state::{Kind, Release, Status};

/// Statuses a finished release can have, each always written (0 included),
/// so `increase()` sees a series from its first sample.
const FINISHED: &[Status] = &[
    Status::Succeeded,
    Status::RolledBack,
    Status::Failed,
    Status::Aborted,
];
const KINDS: &[Kind] = &[Kind::Deploy, Kind::Rollback];

/// node_exporter's textfile collector reads `*.prom` files only.
pub fn check_path(path: &str) -> std::result::Result<(), String> {
    if path.trim().is_empty() {
        return Err("give a file path, e.g. /var/lib/node_exporter/textfile/slipway.prom".into());
    }
    if !path.ends_with(".prom") {
        return Err(format!(
            "`{path}` does not end in .prom; node_exporter's textfile collector reads only *.prom files"
        ));
    }
    Ok(())
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn seconds(ts: &str) -> Option<f64> {
    let t: jiff::Timestamp = ts.parse().ok()?;
    Some(t.as_millisecond() as f64 / 1000.0)
}

struct Family<'a> {
    name: &'a str,
    kind: &'a str,
    help: &'a str,
    samples: Vec<(String, f64)>,
}

impl<'a> Family<'a> {
    fn new(name: &'a str, kind: &'a str, help: &'a str) -> Family<'a> {
        Family {
            name,
            kind,
            help,
            samples: Vec::new(),
        }
    }
}

/// Every family slipway writes, in the order they are printed.
struct Families<'a> {
    totals: Family<'a>,
    rollbacks: Family<'a>,
    duration: Family<'a>,
    last_ok: Family<'a>,
    success_at: Family<'a>,
    current: Family<'a>,
    in_progress: Family<'a>,
}

impl Families<'_> {
    fn new() -> Self {
        Families {
            totals: Family::new(
                "slipway_releases_total",
                "counter",
                "Finished releases by kind and status, from slipway's history.",
            ),
            rollbacks: Family::new(
                "slipway_rollbacks_total",
                "counter",
                "Rollbacks: automatic (a failed deploy put the previous release back) or manual (slipway rollback).",
            ),
            duration: Family::new(
                "slipway_last_deploy_duration_seconds",
                "gauge",
                "Wall time of the last finished deploy.",
            ),
            last_ok: Family::new(
                "slipway_last_deploy_succeeded",
                "gauge",
                "1 if the last finished deploy succeeded, else 0.",
            ),
            success_at: Family::new(
                "slipway_last_success_timestamp_seconds",
                "gauge",
                "When a deploy or rollback last succeeded (Unix time).",
            ),
            current: Family::new(
                "slipway_current_release",
                "gauge",
                "ID of the live release (the last that succeeded).",
            ),
            in_progress: Family::new(
                "slipway_release_in_progress",
                "gauge",
                "1 while a release is unfinished (running, or interrupted: see slipway recover).",
            ),
        }
    }

    /// One environment's releases; `base` holds its labels.
    fn add_env(&mut self, base: &str, rs: &[&Release]) {
        let finished: Vec<&Release> = rs
            .iter()
            .copied()
            .filter(|r| r.status != Status::InProgress)
            .collect();
        self.add_counters(base, &finished);
        self.add_last(base, finished);
        let open = rs.iter().any(|r| r.status == Status::InProgress);
        self.in_progress
            .samples
            .push((base.to_string(), if open { 1.0 } else { 0.0 }));
    }

    /// Releases by kind and status (0 included), and rollbacks by trigger.
    fn add_counters(&mut self, base: &str, finished: &[&Release]) {
        let mut kinds: Vec<Kind> = KINDS.to_vec();
        if finished.iter().any(|r| r.kind == Kind::Adopt) {
            kinds.push(Kind::Adopt);
        }
        for kind in kinds {
            for status in FINISHED {
                let n = finished
                    .iter()
                    .filter(|r| r.kind == kind && r.status == *status)
                    .count();
                self.totals.samples.push((
                    format!(
                        "{base},kind=\"{}\",status=\"{}\"",
                        kind.as_str(),
                        status.as_str()
                    ),
                    n as f64,
                ));
            }
        }
        let automatic = finished
            .iter()
            .filter(|r| {
                r.kind == Kind::Deploy && matches!(r.status, Status::RolledBack | Status::Failed)
            })
            .count();
        let manual = finished.iter().filter(|r| r.kind == Kind::Rollback).count();
        self.rollbacks
            .samples
            .push((format!("{base},trigger=\"automatic\""), automatic as f64));
        self.rollbacks
            .samples
            .push((format!("{base},trigger=\"manual\""), manual as f64));
    }

    /// The last deploy (duration, outcome), the last success and the live release.
    fn add_last(&mut self, base: &str, mut newest: Vec<&Release>) {
        // Newest first: history's order, by ID.
        newest.sort_by_key(|r| std::cmp::Reverse(r.id));
        if let Some(d) = newest.iter().find(|r| r.kind == Kind::Deploy) {
            let took = d
                .finished_at
                .as_deref()
                .and_then(seconds)
                .zip(seconds(&d.started_at))
                .map(|(end, start)| (end - start).max(0.0));
            if let Some(took) = took {
                self.duration.samples.push((base.to_string(), took));
            }
            let ok = if d.status == Status::Succeeded {
                1.0
            } else {
                0.0
            };
            self.last_ok.samples.push((base.to_string(), ok));
        }
        let succeeded = newest
            .iter()
            .find(|r| r.status == Status::Succeeded && r.kind != Kind::Adopt);
        if let Some(at) = succeeded.and_then(|r| r.finished_at.as_deref().and_then(seconds)) {
            self.success_at.samples.push((base.to_string(), at));
        }
        if let Some(r) = newest.iter().find(|r| r.status == Status::Succeeded) {
            self.current.samples.push((base.to_string(), r.id as f64));
        }
    }

    fn write(self, out: &mut String) {
        for f in [
            self.totals,
            self.rollbacks,
            self.duration,
            self.last_ok,
            self.success_at,
            self.current,
            self.in_progress,
        ] {
            let _ = writeln!(out, "# HELP {} {}", f.name, f.help);
            let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind);
            for (labels, v) in f.samples {
                let _ = writeln!(out, "{}{{{labels}}} {v}", f.name);
            }
        }
    }
}

/// The metrics of `project`'s environments: `envs` (those configured) and
/// any other that history names.
pub fn render(project: &str, envs: &[String], releases: &[Release]) -> String {
    let mut by_env: BTreeMap<&str, Vec<&Release>> =
        envs.iter().map(|e| (e.as_str(), Vec::new())).collect();
    for r in releases {
        by_env.entry(r.env.as_str()).or_default().push(r);
    }
    let mut families = Families::new();
    for (env, rs) in &by_env {
        let base = format!("project=\"{}\",env=\"{}\"", escape(project), escape(env));
        families.add_env(&base, rs);
    }
    let mut out = String::new();
    families.write(&mut out);
    out
}

/// Replace `path` with `text` so a reader sees the old file or the new one,
/// never a part: write a temporary file beside it, sync, rename over.
pub fn write_atomic(path: &Path, text: &str) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "metrics.prom".into());
    // A leading dot and no `.prom` ending: the collector ignores it meanwhile.
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        // The rename itself is durable once the folder is synced.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::env(format!("cannot write metrics to {}: {e}", path.display()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release(id: i64, env: &str, kind: Kind, status: Status, start: &str, end: &str) -> Release {
        Release {
            id,
            env: env.into(),
            kind,
            tag: Some(format!("v{id}")),
            status,
            started_at: start.into(),
            finished_at: Some(end.into()),
            reason: None,
            previous: None,
            services: BTreeMap::new(),
            commit: None,
            branch: None,
            run_url: None,
        }
    }

    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
    }

    #[test]
    fn counts_durations_and_last_success_from_history() {
        let h = vec![
            release(
                4,
                "staging",
                Kind::Rollback,
                Status::Succeeded,
                "2026-12-01T10:10:00Z",
                "2026-12-01T10:10:05Z",
            ),
            release(
                3,
                "staging",
                Kind::Deploy,
                Status::RolledBack,
                "2026-12-01T10:05:00Z",
                "2026-12-01T10:05:42Z",
            ),
            release(
                2,
                "staging",
                Kind::Deploy,
                Status::Succeeded,
                "2026-12-01T10:00:00Z",
                "2026-12-01T10:00:30Z",
            ),
            release(
                1,
                "staging",
                Kind::Adopt,
                Status::Succeeded,
                "2026-12-01T09:59:00Z",
                "2026-12-01T09:59:00Z",
            ),
        ];
        let text = render("goodgo", &["staging".into(), "production".into()], &h);
        let s = |l: &str| format!("{{project=\"goodgo\",env=\"staging\"{l}}}");
        assert_eq!(
            value(
                &text,
                &format!(
                    "slipway_releases_total{}",
                    s(",kind=\"deploy\",status=\"succeeded\"")
                )
            ),
            Some(1.0)
        );
        assert_eq!(
            value(
                &text,
                &format!(
                    "slipway_releases_total{}",
                    s(",kind=\"deploy\",status=\"rolled_back\"")
                )
            ),
            Some(1.0)
        );
        assert_eq!(
            value(
                &text,
                &format!(
                    "slipway_releases_total{}",
                    s(",kind=\"deploy\",status=\"aborted\"")
                )
            ),
            Some(0.0)
        );
        assert_eq!(
            value(
                &text,
                &format!(
                    "slipway_releases_total{}",
                    s(",kind=\"adopt\",status=\"succeeded\"")
                )
            ),
            Some(1.0)
        );
        assert_eq!(
            value(
                &text,
                &format!("slipway_rollbacks_total{}", s(",trigger=\"automatic\""))
            ),
            Some(1.0)
        );
        assert_eq!(
            value(
                &text,
                &format!("slipway_rollbacks_total{}", s(",trigger=\"manual\""))
            ),
            Some(1.0)
        );
        // The last deploy is the rolled-back one: 42 s, not a success.
        assert_eq!(
            value(
                &text,
                &format!("slipway_last_deploy_duration_seconds{}", s(""))
            ),
            Some(42.0)
        );
        assert_eq!(
            value(&text, &format!("slipway_last_deploy_succeeded{}", s(""))),
            Some(0.0)
        );
        // The manual rollback is the last success.
        assert_eq!(
            value(
                &text,
                &format!("slipway_last_success_timestamp_seconds{}", s(""))
            ),
            Some(1_796_119_805.0)
        );
        assert_eq!(
            value(&text, &format!("slipway_current_release{}", s(""))),
            Some(4.0)
        );
        // An environment with no history yet still has its counters, at 0.
        assert_eq!(
            value(&text, "slipway_rollbacks_total{project=\"goodgo\",env=\"production\",trigger=\"automatic\"}"),
            Some(0.0)
        );
        assert!(!text.contains(
            "slipway_last_success_timestamp_seconds{project=\"goodgo\",env=\"production\"}"
        ));
    }

    #[test]
    fn labels_are_escaped_and_paths_checked() {
        let text = render("a\"b", &["x".into()], &[]);
        assert!(text.contains("project=\"a\\\"b\""), "{text}");
        assert!(check_path("/var/lib/node_exporter/slipway.prom").is_ok());
        assert!(check_path("/tmp/metrics.txt").is_err());
        assert!(check_path(" ").is_err());
    }

    #[test]
    fn the_config_key_is_checked_and_resolved_against_the_config_folder() {
        let cfg = |t: &str| {
            crate::config::Config::parse(
                Path::new("/srv/app/slipway.toml"),
                &format!("project = \"app\"\n[environments.prod]\n[services.api]\n[metrics]\ntextfile = \"{t}\"\n"),
            )
        };
        let ok = cfg("metrics/slipway.prom").expect("valid");
        assert_eq!(
            ok.metrics_textfile.as_deref(),
            Some(Path::new("/srv/app/metrics/slipway.prom"))
        );
        let e = cfg("slipway.txt").expect_err("not .prom").to_string();
        assert!(
            e.contains("slipway.toml:5:") && e.contains("metrics.textfile"),
            "{e}"
        );
    }

    #[test]
    fn the_file_is_replaced_whole_and_no_temporary_file_stays() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("slipway.prom");
        write_atomic(&p, "a 1\n").expect("first");
        write_atomic(&p, "a 2\n").expect("second");
        assert_eq!(std::fs::read_to_string(&p).expect("read"), "a 2\n");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        let e = write_atomic(&dir.path().join("missing/x.prom"), "a 1\n").expect_err("no folder");
        assert!(e.to_string().contains("missing"), "{e}");
    }
}
