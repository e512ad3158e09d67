//! HTTP checks: status, JSONPath values, body substring and latency, with the
//! body read capped so a huge response cannot exhaust memory.

use std::time::{Duration, Instant};

use crate::config::HttpExpect;

use super::{CheckResult, Mismatch, Vars};

/// Bodies beyond this are cut (and judged on what was read).
pub const BODY_CAP: usize = 1024 * 1024;

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::limited(5))
        .user_agent(concat!("slipway/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}

pub async fn check(
    client: &reqwest::Client,
    name: &str,
    e: &HttpExpect,
    vars: &Vars,
    limit: Duration,
) -> CheckResult {
    let url = vars.expand(&e.url);
    let mut result = CheckResult::new(name, "http", format!("{} {url}", e.method));
    let timeout = e.timeout.min(limit).max(Duration::from_millis(1));
    let started = Instant::now();
    let outcome = tokio::time::timeout(timeout, fetch(client, e, &url, vars)).await;
    result.latency_ms = started.elapsed().as_millis() as u64;
    let (status, body) = match outcome {
        Err(_) => {
            result.error = Some(format!(
                "no answer within {}",
                humantime::format_duration(timeout)
            ));
            return result.judged();
        }
        Ok(Err(err)) => {
            result.error = Some(err);
            return result.judged();
        }
        Ok(Ok(r)) => r,
    };
    if !e.expect_status.contains(&status) {
        result.failures.push(Mismatch {
            what: "status".into(),
            expected: e
                .expect_status
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(" or "),
            actual: format!("{status}{}", excerpt(&body)),
        });
    }
    if !e.expect_json.is_empty() {
        match serde_json::from_slice::<serde_json::Value>(&body) {
            Err(_) => result.failures.push(Mismatch {
                what: "body".into(),
                expected: "JSON".into(),
                actual: format!("not JSON{}", excerpt(&body)),
            }),
            Ok(json) => {
                for (path, jp, expected) in &e.expect_json {
                    let nodes = jp.query(&json).all();
                    let actual = nodes
                        .first()
                        .map(|v| v.to_string())
                        .unwrap_or_else(|| "nothing".into());
                    if nodes.first() != Some(&expected) {
                        result.failures.push(Mismatch {
                            what: path.clone(),
                            expected: expected.to_string(),
                            actual,
                        });
                    }
                }
            }
        }
    }
    if let Some(sub) = &e.expect_body {
        let sub = vars.expand(sub);
        if !String::from_utf8_lossy(&body).contains(&sub) {
            result.failures.push(Mismatch {
                what: "body".into(),
                expected: format!("to contain {sub:?}"),
                actual: excerpt(&body).trim_start().to_string(),
            });
        }
    }
    if let Some(max) = e.max_latency {
        if started.elapsed() > max {
            result.failures.push(Mismatch {
                what: "latency".into(),
                expected: format!("at most {}", humantime::format_duration(max)),
                actual: format!("{} ms", result.latency_ms),
            });
        }
    }
    result.judged()
}

async fn fetch(
    client: &reqwest::Client,
    e: &HttpExpect,
    url: &str,
    vars: &Vars,
) -> Result<(u16, Vec<u8>), String> {
    let method = reqwest::Method::from_bytes(e.method.as_bytes()).map_err(|err| err.to_string())?;
    let mut req = client.request(method, url);
    for (k, v) in &e.headers {
        req = req.header(k, vars.expand(v));
    }
    if let Some(b) = &e.body {
        req = req.body(vars.expand(b));
    }
    let mut resp = req.send().await.map_err(describe)?;
    let status = resp.status().as_u16();
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(describe)? {
        let room = BODY_CAP.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= BODY_CAP {
            break;
        }
    }
    Ok((status, body))
}

/// reqwest errors name the URL; keep the cause, which is what a user acts on.
fn describe(e: reqwest::Error) -> String {
    let mut msg = if e.is_connect() {
        "connection refused or unreachable".to_string()
    } else if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_body() || e.is_decode() {
        "the connection broke while reading the body".to_string()
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

/// A short, single-line excerpt of a body for failure messages.
pub fn excerpt(body: &[u8]) -> String {
    if body.is_empty() {
        return String::new();
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(120)]);
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let more = if body.len() > 120 { "…" } else { "" };
    format!(" (body: {one_line}{more})")
}
