//! HTTP checks: status, JSONPath predicates, body, headers and latency.
//!
//! [`fetch`] is the only effect: it sends the request and reads the body up
//! to [`BODY_CAP`], so a huge (or endless) response cannot exhaust memory and
//! a server that never answers runs into the check's timeout. [`judge`] is
//! pure: it turns what came back into mismatches, expected against actual.

use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use serde_json::Value;

use crate::config::HttpExpect;

use super::predicate::{shorten, Miss};
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

/// What came back, as plain data.
#[derive(Debug, Clone, Default)]
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// The body was longer than [`BODY_CAP`] and was cut.
    pub cut: bool,
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
    let took = started.elapsed();
    result.latency_ms = took.as_millis() as u64;
    match outcome {
        Err(_) => result.error = Some(super::timeout_message("no answer", e.timeout, limit)),
        Ok(Err(err)) => result.error = Some(err),
        Ok(Ok(resp)) => {
            let (failures, excerpt) = judge(e, &resp, vars, took);
            result.failures = failures;
            result.excerpt = excerpt;
        }
    }
    // Redacted here, at the source, so health waits get it too.
    result.redact(&vars.secrets);
    result.judged()
}

fn to_mismatch(what: &str, m: Miss) -> Mismatch {
    Mismatch {
        what: what.to_string(),
        expected: m.expected,
        actual: m.actual,
    }
}

/// Every assertion of `e` against `resp`; and a body excerpt for the report
/// (unless a body assertion already shows the body).
pub fn judge(
    e: &HttpExpect,
    resp: &Response,
    vars: &Vars,
    took: Duration,
) -> (Vec<Mismatch>, Option<String>) {
    let mut failures = Vec::new();
    failures.extend(status_mismatch(e, resp));
    failures.extend(header_mismatches(e, resp, vars));
    failures.extend(json_mismatches(e, resp, vars));
    let body = body_mismatches(e, resp, vars);
    let body_shown = !body.is_empty();
    failures.extend(body);
    failures.extend(latency_mismatch(e, took));
    let excerpt = if failures.is_empty() || body_shown {
        None
    } else {
        excerpt(&resp.body, resp.cut)
    };
    (failures, excerpt)
}

/// `expect_status`: the status is one of those listed.
fn status_mismatch(e: &HttpExpect, resp: &Response) -> Option<Mismatch> {
    if e.expect_status.contains(&resp.status) {
        return None;
    }
    Some(Mismatch {
        what: "status".into(),
        expected: e
            .expect_status
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(" or "),
        actual: resp.status.to_string(),
    })
}

/// `expect_header`: each header's values, joined, satisfy its predicate.
fn header_mismatches(e: &HttpExpect, resp: &Response, vars: &Vars) -> Vec<Mismatch> {
    let mut failures = Vec::new();
    for (name, pred) in &e.expect_header {
        let values: Vec<&str> = resp
            .headers
            .get_all(name.as_str())
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let actual = (!values.is_empty()).then(|| Value::String(values.join(", ")));
        for m in pred.judge(actual.as_ref(), vars) {
            failures.push(to_mismatch(&format!("header {name}"), m));
        }
    }
    failures
}

/// `expect_json`: the body is JSON and each JSONPath's nodes satisfy its predicate.
fn json_mismatches(e: &HttpExpect, resp: &Response, vars: &Vars) -> Vec<Mismatch> {
    if e.expect_json.is_empty() {
        return Vec::new();
    }
    let json = match serde_json::from_slice::<Value>(&resp.body) {
        Ok(json) => json,
        Err(err) => return vec![not_json(resp, &err)],
    };
    let mut failures = Vec::new();
    for (path, jp, pred) in &e.expect_json {
        let nodes = jp.query(&json).all();
        let actual = match nodes.len() {
            0 => None,
            1 => Some(nodes[0].clone()),
            _ => Some(Value::Array(nodes.into_iter().cloned().collect())),
        };
        for m in pred.judge(actual.as_ref(), vars) {
            failures.push(to_mismatch(path, m));
        }
    }
    failures
}

/// A body that JSON assertions cannot read, saying why.
fn not_json(resp: &Response, err: &serde_json::Error) -> Mismatch {
    Mismatch {
        what: "body".into(),
        expected: "JSON".into(),
        actual: if resp.cut {
            format!(
                "a body cut at {} KiB, which is not whole JSON",
                BODY_CAP / 1024
            )
        } else if resp.body.is_empty() {
            "an empty body".into()
        } else {
            format!("invalid JSON ({err})")
        },
    }
}

/// `expect_body`: the body as text satisfies the predicate.
fn body_mismatches(e: &HttpExpect, resp: &Response, vars: &Vars) -> Vec<Mismatch> {
    let Some(pred) = &e.expect_body else {
        return Vec::new();
    };
    let text = Value::String(String::from_utf8_lossy(&resp.body).into_owned());
    pred.judge(Some(&text), vars)
        .into_iter()
        .map(|m| to_mismatch("body", m))
        .collect()
}

/// `max_latency`: the answer came within it.
fn latency_mismatch(e: &HttpExpect, took: Duration) -> Option<Mismatch> {
    let max = e.max_latency?;
    (took > max).then(|| Mismatch {
        what: "latency".into(),
        expected: format!("at most {}", humantime::format_duration(max)),
        actual: format!("{} ms", took.as_millis()),
    })
}

async fn fetch(
    client: &reqwest::Client,
    e: &HttpExpect,
    url: &str,
    vars: &Vars,
) -> Result<Response, String> {
    let method = reqwest::Method::from_bytes(e.method.as_bytes()).map_err(|err| err.to_string())?;
    let parsed = reqwest::Url::parse(url).map_err(|err| {
        let hint = if url.starts_with('/') {
            " (is the environment's url set, or --url given?)"
        } else {
            ""
        };
        format!("`{url}` is not a URL: {err}{hint}")
    })?;
    let mut req = client.request(method, parsed);
    for (k, v) in &e.headers {
        req = req.header(k, vars.expand(v));
    }
    if let Some(b) = &e.body {
        req = req.body(vars.expand(b));
    }
    let mut resp = req.send().await.map_err(describe)?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let mut body = Vec::new();
    let mut cut = false;
    while let Some(chunk) = resp.chunk().await.map_err(describe)? {
        let room = BODY_CAP.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if chunk.len() > room {
            // Stop reading: dropping the response closes the connection.
            cut = true;
            break;
        }
    }
    Ok(Response {
        status,
        headers,
        body,
        cut,
    })
}

/// reqwest errors name the URL; keep the cause, which is what a user acts on.
fn describe(e: reqwest::Error) -> String {
    let mut chain = Vec::new();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        chain.push(s.to_string());
        source = s.source();
    }
    let all = chain.join(": ").to_ascii_lowercase();
    let mut msg = if e.is_connect() && all.contains("refused") {
        "connection refused".to_string()
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else if e.is_timeout() {
        "timed out".to_string()
    } else if all.contains("closed") || all.contains("reset") || all.contains("incomplete") {
        if e.is_body() || e.is_decode() {
            "the server closed the connection while sending the body".to_string()
        } else {
            "the server closed the connection without answering".to_string()
        }
    } else if e.is_body() || e.is_decode() {
        "the connection broke while reading the body".to_string()
    } else {
        "request failed".to_string()
    };
    if let Some(last) = chain.last() {
        msg.push_str(&format!(" ({last})"));
    }
    msg
}

/// A short, single-line excerpt of a body for failure reports.
pub fn excerpt(body: &[u8], cut: bool) -> Option<String> {
    if body.is_empty() {
        return Some("empty body".into());
    }
    let head = &body[..body.len().min(400)];
    let text = shorten(&String::from_utf8_lossy(head), 120);
    let more = if cut {
        format!(" (body cut at {} KiB)", BODY_CAP / 1024)
    } else {
        String::new()
    };
    Some(format!("body: {text}{more}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::predicate::{Literal, Predicate};
    use serde_json_path::JsonPath;

    fn expect() -> HttpExpect {
        HttpExpect {
            url: "{url}/health".into(),
            method: "GET".into(),
            headers: Default::default(),
            body: None,
            expect_status: vec![200],
            expect_json: vec![],
            expect_body: None,
            expect_header: vec![],
            max_latency: None,
            timeout: Duration::from_secs(5),
        }
    }

    fn pred(v: toml::Value) -> Predicate {
        Predicate::parse(&v, Literal::Equals).expect("predicate")
    }

    fn resp(status: u16, body: &str) -> Response {
        Response {
            status,
            body: body.as_bytes().to_vec(),
            ..Response::default()
        }
    }

    #[test]
    fn status_json_and_excerpt() {
        let mut e = expect();
        e.expect_json = vec![(
            "$.status".into(),
            JsonPath::parse("$.status").expect("path"),
            pred(toml::Value::String("ok".into())),
        )];
        let v = Vars::default();
        let (f, x) = judge(&e, &resp(200, r#"{"status":"ok"}"#), &v, Duration::ZERO);
        assert!(f.is_empty() && x.is_none());
        let (f, x) = judge(&e, &resp(503, r#"{"status":"down"}"#), &v, Duration::ZERO);
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].what, "status");
        assert_eq!(f[1].actual, "\"down\"");
        assert_eq!(x.as_deref(), Some(r#"body: {"status":"down"}"#));
        let (f, _) = judge(&e, &resp(200, "<html>oops"), &v, Duration::ZERO);
        assert!(f[0].actual.starts_with("invalid JSON"), "{f:?}");
    }

    #[test]
    fn multiple_nodes_are_a_list() {
        let mut e = expect();
        let count: toml::Table = toml::from_str("v = { count = 3 }").expect("toml");
        e.expect_json = vec![(
            "$.items[*].id".into(),
            JsonPath::parse("$.items[*].id").expect("path"),
            pred(count["v"].clone()),
        )];
        let body = r#"{"items":[{"id":1},{"id":2},{"id":3}]}"#;
        let (f, _) = judge(&e, &resp(200, body), &Vars::default(), Duration::ZERO);
        assert!(f.is_empty(), "{f:?}");
    }
}
