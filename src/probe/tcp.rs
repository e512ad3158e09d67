//! TCP checks: a port that accepts a connection within the timeout (what
//! `nc -z host port` would tell), for services that speak no HTTP.

use std::time::{Duration, Instant};

use super::{CheckResult, Mismatch, Vars};

/// `HOST:PORT` after placeholders, without a `tcp://` prefix.
pub fn address(raw: &str, vars: &Vars) -> String {
    let a = vars.expand(raw);
    a.strip_prefix("tcp://")
        .unwrap_or(&a)
        .trim_end_matches('/')
        .to_string()
}

pub async fn check(
    name: &str,
    raw: &str,
    vars: &Vars,
    max_latency: Option<Duration>,
    own: Duration,
    limit: Duration,
) -> CheckResult {
    let timeout = own.min(limit).max(Duration::from_millis(1));
    let addr = address(raw, vars);
    let mut result = CheckResult::new(name, "tcp", format!("tcp {addr}"));
    let started = Instant::now();
    let outcome = tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&addr)).await;
    let took = started.elapsed();
    result.latency_ms = took.as_millis() as u64;
    match outcome {
        Err(_) => result.error = Some(super::timeout_message("no connection", own, limit)),
        Ok(Err(e)) => {
            result.error = Some(match e.kind() {
                std::io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
                _ => format!("cannot connect: {e}"),
            })
        }
        Ok(Ok(_stream)) => {
            if let Some(max) = max_latency {
                if took > max {
                    result.failures.push(Mismatch {
                        what: "latency".into(),
                        expected: format!("at most {}", humantime::format_duration(max)),
                        actual: format!("{} ms", result.latency_ms),
                    });
                }
            }
        }
    }
    result.judged()
}
