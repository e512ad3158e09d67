//! Posting one message to one endpoint so that it can never hurt a deploy:
//! each attempt is bounded by a timeout, a few retries follow with backoff,
//! only failures that may pass (no connection, timeout, 408/429/5xx) are
//! retried, and every message we produce is scrubbed of the URL. The URL
//! itself lives in [`SecretUrl`], which never prints.

use std::fmt;
use std::time::{Duration, Instant};

use serde_json::Value;

/// A webhook URL read from the environment. It is a credential (Slack's
/// URL is the token), so it has no `Display` and its `Debug` hides it.
#[derive(Clone)]
pub struct SecretUrl(reqwest::Url);

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretUrl(<hidden>)")
    }
}

impl SecretUrl {
    /// `None` unless `value` is an absolute http(s) URL. The error never
    /// repeats the value.
    pub fn parse(value: &str) -> Result<SecretUrl, &'static str> {
        match reqwest::Url::parse(value.trim()) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {
                Ok(SecretUrl(u))
            }
            Ok(_) => Err("is not an http(s) URL"),
            Err(_) => Err("is not a URL"),
        }
    }

    /// `text` with the URL, its path and its host cut out: error messages
    /// from lower layers may quote any of them.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.replace(self.0.as_str(), "<url>");
        let path = self.0.path();
        if path.len() > 1 {
            out = out.replace(path, "<path>");
        }
        if let Some(host) = self.0.host_str() {
            if let Some(port) = self.0.port() {
                out = out.replace(&format!("{host}:{port}"), "<host>");
            }
            if host.len() > 3 {
                out = out.replace(host, "<host>");
            }
        }
        out
    }
}

/// How hard to try before giving up on one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// For one attempt: connect, send, and read the answer.
    pub timeout: Duration,
    /// Tries in all (1 + retries).
    pub attempts: u32,
    /// Wait before the first retry; doubles for each next one, up to `MAX_BACKOFF`.
    pub backoff: Duration,
}

const MAX_BACKOFF: Duration = Duration::from_secs(8);

impl Policy {
    pub fn new(timeout: Duration, retries: u32) -> Policy {
        Policy {
            timeout,
            attempts: retries + 1,
            backoff: Duration::from_millis(500),
        }
    }

    /// The wait before retry number `retry` (1-based).
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 1u32 << retry.saturating_sub(1).min(16);
        (self.backoff * factor).min(MAX_BACKOFF)
    }

    /// The longest one message can take: every attempt timing out, plus the waits.
    pub fn budget(&self) -> Duration {
        let waits: Duration = (1..self.attempts).map(|r| self.backoff(r)).sum();
        self.timeout * self.attempts + waits
    }

    /// The same, with one attempt: used once an endpoint has proved unreachable.
    pub fn single(&self) -> Policy {
        Policy {
            attempts: 1,
            ..*self
        }
    }
}

/// What one answer means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    /// May pass later: try again.
    Retry,
    /// Will not pass by trying again (bad URL path, revoked token, bad payload).
    GiveUp,
}

pub fn judge(status: u16) -> Verdict {
    match status {
        200..=299 => Verdict::Delivered,
        408 | 425 | 429 | 500..=599 => Verdict::Retry,
        _ => Verdict::GiveUp,
    }
}

/// The outcome of posting one message, for warnings and `notify test`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Delivery {
    pub delivered: bool,
    pub attempts: u32,
    /// The last HTTP status, if an answer came.
    pub status: Option<u16>,
    /// Why it was not delivered (scrubbed of the URL).
    pub error: Option<String>,
    pub elapsed_ms: u64,
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        // A webhook that redirects is misconfigured; following it could send
        // the payload somewhere unexpected.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("slipway/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}

/// POST `body` as JSON to `url` under `policy`.
pub async fn post(
    client: &reqwest::Client,
    url: &SecretUrl,
    body: &Value,
    policy: &Policy,
) -> Delivery {
    let started = Instant::now();
    let mut last_status = None;
    let mut last_error = String::new();
    for attempt in 1..=policy.attempts.max(1) {
        if attempt > 1 {
            tokio::time::sleep(policy.backoff(attempt - 1)).await;
        }
        let verdict = match once(client, url, body, policy.timeout).await {
            Ok((status, answer)) => {
                last_status = Some(status);
                last_error = format!("HTTP {status}{answer}");
                judge(status)
            }
            Err(e) => {
                last_error = e;
                Verdict::Retry
            }
        };
        match verdict {
            Verdict::Delivered => {
                return Delivery {
                    delivered: true,
                    attempts: attempt,
                    status: last_status,
                    error: None,
                    elapsed_ms: started.elapsed().as_millis() as u64,
                }
            }
            Verdict::GiveUp => {
                return failed(url, attempt, last_status, &last_error, started);
            }
            Verdict::Retry => {}
        }
    }
    failed(
        url,
        policy.attempts.max(1),
        last_status,
        &last_error,
        started,
    )
}

fn failed(
    url: &SecretUrl,
    attempts: u32,
    status: Option<u16>,
    error: &str,
    started: Instant,
) -> Delivery {
    Delivery {
        delivered: false,
        attempts,
        status,
        error: Some(url.scrub(error)),
        elapsed_ms: started.elapsed().as_millis() as u64,
    }
}

/// One attempt: the status and a short excerpt of the answer (Slack says why
/// in the body: `invalid_token`, `no_service`, …).
async fn once(
    client: &reqwest::Client,
    url: &SecretUrl,
    body: &Value,
    timeout: Duration,
) -> Result<(u16, String), String> {
    let attempt = async {
        let mut resp = client
            .post(url.0.clone())
            .timeout(timeout)
            .json(body)
            .send()
            .await
            .map_err(|e| describe(e, timeout))?;
        let status = resp.status().as_u16();
        let mut answer = Vec::new();
        while let Ok(Some(chunk)) = resp.chunk().await {
            answer.extend_from_slice(&chunk);
            if answer.len() >= 200 {
                break;
            }
        }
        let text: String = String::from_utf8_lossy(&answer[..answer.len().min(200)])
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let answer = if text.is_empty() || (200..300).contains(&status) {
            String::new()
        } else {
            format!(": {text}")
        };
        Ok((status, answer))
    };
    // reqwest's own timeout covers the request; this one also covers the body.
    match tokio::time::timeout(timeout + Duration::from_millis(200), attempt).await {
        Ok(r) => r,
        Err(_) => Err(no_answer(timeout)),
    }
}

fn no_answer(timeout: Duration) -> String {
    format!("no answer within {}", humantime::format_duration(timeout))
}

/// reqwest errors quote the URL: drop it and keep the cause.
fn describe(e: reqwest::Error, timeout: Duration) -> String {
    let e = e.without_url();
    if e.is_timeout() {
        return no_answer(timeout);
    }
    let mut msg = if e.is_connect() {
        "cannot connect".to_string()
    } else {
        "request failed".to_string()
    };
    let mut source = std::error::Error::source(&e);
    let mut last = None;
    while let Some(s) = source {
        last = Some(s.to_string());
        source = s.source();
    }
    if let Some(l) = last {
        msg.push_str(&format!(" ({l})"));
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_the_budget_bounds_one_message() {
        let p = Policy::new(Duration::from_secs(5), 2);
        assert_eq!(p.attempts, 3);
        assert_eq!(p.backoff(1), Duration::from_millis(500));
        assert_eq!(p.backoff(2), Duration::from_secs(1));
        assert_eq!(p.backoff(10), MAX_BACKOFF);
        assert_eq!(p.budget(), Duration::from_millis(16_500));
        assert_eq!(p.single().budget(), Duration::from_secs(5));
    }

    #[test]
    fn only_passing_failures_are_retried() {
        assert_eq!(judge(200), Verdict::Delivered);
        assert_eq!(judge(204), Verdict::Delivered);
        assert_eq!(judge(429), Verdict::Retry);
        assert_eq!(judge(503), Verdict::Retry);
        assert_eq!(judge(404), Verdict::GiveUp);
        assert_eq!(judge(403), Verdict::GiveUp);
        assert_eq!(judge(302), Verdict::GiveUp);
    }

    #[test]
    fn the_url_never_shows() {
        let url = SecretUrl::parse("https://hooks.slack.com/services/T0/B0/s3cr3t").expect("url");
        assert_eq!(format!("{url:?}"), "SecretUrl(<hidden>)");
        let scrubbed = url.scrub(
            "error for https://hooks.slack.com/services/T0/B0/s3cr3t: dns hooks.slack.com; /services/T0/B0/s3cr3t",
        );
        assert!(
            !scrubbed.contains("s3cr3t") && !scrubbed.contains("hooks.slack"),
            "{scrubbed}"
        );
        assert!(SecretUrl::parse("hooks.slack.com/x").is_err());
        assert!(SecretUrl::parse("ftp://x/y").is_err());
    }

    #[tokio::test]
    async fn a_refused_connection_is_retried_then_reported_without_the_url() {
        let port = crate::fixture::free_port().expect("port");
        let url = SecretUrl::parse(&format!("http://127.0.0.1:{port}/hook/CANARY")).expect("url");
        let mut policy = Policy::new(Duration::from_millis(300), 1);
        policy.backoff = Duration::from_millis(10);
        let d = post(&client(), &url, &serde_json::json!({"a": 1}), &policy).await;
        assert!(!d.delivered);
        assert_eq!(d.attempts, 2);
        let err = d.error.unwrap_or_default();
        assert!(err.contains("cannot connect"), "{err}");
        assert!(
            !err.contains("CANARY") && !err.contains(&port.to_string()),
            "{err}"
        );
    }
}
