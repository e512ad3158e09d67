//! The printer: human progress on stderr (a line per step with its time, a
//! spinner while waiting when stderr is a terminal), machine output on stdout.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

#[derive(Debug, Clone, Copy)]
pub struct Printer {
    pub json: bool,
    /// `--timings`: the breakdown of where the time went, at the end.
    pub timings: bool,
}

pub struct Step {
    name: String,
    started: Instant,
    bar: ProgressBar,
}

impl Printer {
    pub fn new(json: bool) -> Printer {
        Printer {
            json,
            timings: false,
        }
    }

    pub fn with_timings(self, timings: bool) -> Printer {
        Printer { timings, ..self }
    }

    /// Start a step; finish it with `done` or `fail`.
    pub fn step(&self, name: &str) -> Step {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("  {spinner} {prefix:<10} {wide_msg} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_prefix(name.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        Step {
            name: name.to_string(),
            started: Instant::now(),
            bar,
        }
    }

    pub fn line(&self, msg: impl AsRef<str>) {
        eprintln!("{}", msg.as_ref());
    }

    pub fn warn(&self, msg: impl AsRef<str>) {
        eprintln!("warning: {}", msg.as_ref());
    }

    /// Machine output (stdout). Serializing our own types cannot fail.
    pub fn json(&self, value: &impl Serialize) {
        match serde_json::to_string_pretty(value) {
            Ok(s) => println!("{s}"),
            Err(e) => eprintln!("error: cannot render JSON: {e}"),
        }
    }
}

impl Step {
    pub fn set(&self, msg: impl Into<String>) {
        self.bar.set_message(msg.into());
    }

    fn finish(self, mark: &str, detail: &str) -> Duration {
        let took = self.started.elapsed();
        crate::timings::step(&self.name, detail, mark == "✓", took);
        self.bar.finish_and_clear();
        eprintln!(
            "  {mark} {:<10} {detail}  ({:.1}s)",
            self.name,
            took.as_secs_f64()
        );
        took
    }

    pub fn done(self, detail: impl AsRef<str>) -> Duration {
        self.finish("✓", detail.as_ref())
    }

    pub fn fail(self, detail: impl AsRef<str>) -> Duration {
        self.finish("✗", detail.as_ref())
    }
}
