//! Validating probes: `[[smoke]]` checks and a service's HTTP `health` table,
//! from their serde shape to [`SmokeCheck`] / [`HttpExpect`], with
//! `file:line:col` and the key at fault for anything wrong.
//!
//! Both kinds of HTTP probe share one builder, so `health = { http = … }`
//! accepts exactly what an `http` smoke check accepts.

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use serde_json_path::JsonPath;

use super::predicate::{Literal, Predicate};
use super::raw::{RawHttpHealth, RawSmoke, RawStatus};
use super::CONTAINER;
use super::{did_you_mean, names, HttpExpect, SmokeCheck, SmokeKind, Source};
use crate::error::Result;

/// A per-check timeout when none is given.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

type At<'a, T> = Option<(&'a T, Range<usize>)>;

/// The fields of an HTTP probe with the span to blame for each.
struct HttpFields<'a> {
    key: String,
    url: (&'a str, Range<usize>),
    method: At<'a, String>,
    headers: &'a BTreeMap<String, String>,
    body: Option<&'a String>,
    expect_status: At<'a, RawStatus>,
    expect_json: Vec<(&'a str, Range<usize>, &'a toml::Value)>,
    expect_body: At<'a, toml::Value>,
    expect_header: Vec<(&'a str, Range<usize>, &'a toml::Value)>,
    max_latency: At<'a, String>,
    timeout: At<'a, String>,
    default_timeout: Duration,
}

fn duration(src: &Source, key: &str, v: At<String>) -> Result<Option<Duration>> {
    match v {
        None => Ok(None),
        Some((text, span)) => match humantime::parse_duration(text) {
            Ok(d) => Ok(Some(d)),
            Err(_) => src.err(
                span,
                format!(
                    "{key}: `{text}` is not a duration (write e.g. \"100s\", \"2m\", \"500ms\")"
                ),
            ),
        },
    }
}

fn http(src: &Source, f: HttpFields) -> Result<HttpExpect> {
    let key = &f.key;
    if f.url.0.trim().is_empty() {
        return src.err(
            f.url.1,
            format!("{key}.http: give the URL to request, e.g. \"{{url}}/health\""),
        );
    }
    let method = match f.method {
        Some((m, span)) => {
            let up = m.to_ascii_uppercase();
            if !METHODS.contains(&up.as_str()) {
                return src.err(
                    span,
                    format!(
                        "{key}.method: `{m}` is not an HTTP method ({}){}",
                        METHODS.join(", "),
                        did_you_mean(&up, METHODS.iter().copied())
                    ),
                );
            }
            up
        }
        None => "GET".into(),
    };
    for name in f.headers.keys() {
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return src.err(
                f.url.1.clone(),
                format!("{key}.headers: `{name}` is not a header name"),
            );
        }
    }
    let expect_status = match f.expect_status {
        None => vec![200],
        Some((s, span)) => {
            let codes = match s {
                RawStatus::One(c) => vec![*c],
                RawStatus::Many(cs) => cs.clone(),
            };
            if codes.is_empty() || codes.iter().any(|c| !(100..=599).contains(c)) {
                return src.err(
                    span,
                    format!("{key}.expect_status: give a status code (100–599) or a list of them"),
                );
            }
            codes
        }
    };
    let expect_json = f
        .expect_json
        .into_iter()
        .map(|(path, span, value)| {
            let parsed = JsonPath::parse(path).or_else(|e| {
                src.err(
                    span.clone(),
                    format!("{key}.expect_json: `{path}` is not a JSONPath (RFC 9535): {e}"),
                )
            })?;
            let pred = Predicate::parse(value, Literal::Equals)
                .or_else(|m| src.err(span, format!("{key}.expect_json.\"{path}\": {m}")))?;
            Ok((path.to_string(), parsed, pred))
        })
        .collect::<Result<Vec<_>>>()?;
    let expect_body = match f.expect_body {
        None => None,
        Some((v, span)) => Some(
            Predicate::parse(v, Literal::Contains)
                .or_else(|m| src.err(span, format!("{key}.expect_body: {m}")))?,
        ),
    };
    let expect_header = f
        .expect_header
        .into_iter()
        .map(|(name, span, value)| {
            if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return src.err(
                    span,
                    format!("{key}.expect_header: `{name}` is not a header name"),
                );
            }
            let pred = Predicate::parse(value, Literal::Equals)
                .or_else(|m| src.err(span, format!("{key}.expect_header.\"{name}\": {m}")))?;
            Ok((name.to_ascii_lowercase(), pred))
        })
        .collect::<Result<Vec<_>>>()?;
    let timeout_span = f.timeout.as_ref().map_or(f.url.1.clone(), |t| t.1.clone());
    let timeout = duration(src, &format!("{key}.timeout"), f.timeout)?.unwrap_or(f.default_timeout);
    if timeout.is_zero() {
        return src.err(timeout_span, format!("{key}.timeout: must be more than 0"));
    }
    Ok(HttpExpect {
        url: f.url.0.to_string(),
        method,
        headers: f.headers.clone(),
        body: f.body.cloned(),
        expect_status,
        expect_json,
        expect_body,
        expect_header,
        max_latency: duration(src, &format!("{key}.max_latency"), f.max_latency)?,
        timeout,
    })
}

/// `services.NAME.health = { http = … }`. The raw table has no spans of its
/// own (it is read from a `toml::Value`), so errors point at the table.
pub(super) fn health_http(
    src: &Source,
    key: &str,
    span: Range<usize>,
    h: &RawHttpHealth,
) -> Result<HttpExpect> {
    fn at<'a>(v: &'a Option<String>, span: &Range<usize>) -> At<'a, String> {
        v.as_ref().map(|x| (x, span.clone()))
    }
    http(
        src,
        HttpFields {
            key: key.to_string(),
            url: (&h.http, span.clone()),
            method: at(&h.method, &span),
            headers: &h.headers,
            body: h.body.as_ref(),
            expect_status: h.expect_status.as_ref().map(|s| (s, span.clone())),
            expect_json: h
                .expect_json
                .iter()
                .map(|(k, v)| (k.as_str(), span.clone(), v))
                .collect(),
            expect_body: h.expect_body.as_ref().map(|b| (b, span.clone())),
            expect_header: h
                .expect_header
                .iter()
                .map(|(k, v)| (k.as_str(), span.clone(), v))
                .collect(),
            max_latency: at(&h.max_latency, &span),
            timeout: at(&h.timeout, &span),
            default_timeout: Duration::from_secs(5),
        },
    )
}

fn spanned<T>(v: &Option<super::spanned::S<T>>) -> At<'_, T> {
    v.as_ref().map(|s| (s.get_ref(), s.span()))
}

/// One `[[smoke]]` table.
pub(super) fn check(src: &Source, i: usize, s: &RawSmoke) -> Result<SmokeCheck> {
    let name = s.name.get_ref();
    let key = format!("smoke[{i}] ({name})");
    if name.trim().is_empty() {
        return src.err(
            s.name.span(),
            format!("smoke[{i}].name: give the check a name"),
        );
    }
    let kinds = [
        s.http.is_some(),
        s.exec.is_some(),
        s.command.is_some(),
        s.tcp.is_some(),
    ];
    if kinds.iter().filter(|k| **k).count() != 1 {
        return src.err(
            s.name.span(),
            format!("{key}: give exactly one of `http`, `exec`, `command`, `tcp`"),
        );
    }
    let kind_name = if s.http.is_some() {
        "http"
    } else if s.exec.is_some() {
        "exec"
    } else if s.command.is_some() {
        "command"
    } else {
        "tcp"
    };
    // Keys that only make sense for some kinds: say so rather than ignore them.
    let only = |present: bool, field: &str, kinds: &[&str], span: Range<usize>| -> Result<()> {
        if present && !kinds.contains(&kind_name) {
            return src.err(
                span,
                format!(
                    "{key}.{field}: applies to {} checks, not `{kind_name}`",
                    kinds.join(" and ")
                ),
            );
        }
        Ok(())
    };
    let at = s.name.span();
    let http_only = ["http"];
    only(
        s.method.is_some(),
        "method",
        &http_only,
        s.method.as_ref().map_or(at.clone(), |m| m.span()),
    )?;
    only(!s.headers.is_empty(), "headers", &http_only, at.clone())?;
    only(s.body.is_some(), "body", &http_only, at.clone())?;
    only(
        s.expect_status.is_some(),
        "expect_status",
        &http_only,
        s.expect_status.as_ref().map_or(at.clone(), |m| m.span()),
    )?;
    only(
        !s.expect_json.is_empty(),
        "expect_json",
        &http_only,
        s.expect_json.keys().next().map_or(at.clone(), |k| k.span()),
    )?;
    only(
        s.expect_body.is_some(),
        "expect_body",
        &http_only,
        s.expect_body.as_ref().map_or(at.clone(), |m| m.span()),
    )?;
    only(
        !s.expect_header.is_empty(),
        "expect_header",
        &http_only,
        s.expect_header
            .keys()
            .next()
            .map_or(at.clone(), |k| k.span()),
    )?;
    only(
        s.max_latency.is_some(),
        "max_latency",
        &["http", "tcp"],
        s.max_latency.as_ref().map_or(at.clone(), |m| m.span()),
    )?;
    only(
        s.expect_stdout.is_some(),
        "expect_stdout",
        &["exec", "command"],
        s.expect_stdout.as_ref().map_or(at.clone(), |m| m.span()),
    )?;
    only(
        s.expect_exit.is_some(),
        "expect_exit",
        &["exec", "command"],
        s.expect_exit.as_ref().map_or(at.clone(), |m| m.span()),
    )?;

    let timeout =
        duration(src, &format!("{key}.timeout"), spanned(&s.timeout))?.unwrap_or(DEFAULT_TIMEOUT);
    if timeout.is_zero() {
        return src.err(
            s.timeout.as_ref().map_or(at.clone(), |t| t.span()),
            format!("{key}.timeout: must be more than 0"),
        );
    }
    let retries = match &s.retries {
        Some(r) if !(0..=100).contains(r.get_ref()) => {
            return src.err(
                r.span(),
                format!("{key}.retries: must be between 0 and 100"),
            )
        }
        Some(r) => *r.get_ref() as u32,
        None => 0,
    };
    let retry_interval = duration(
        src,
        &format!("{key}.retry_interval"),
        spanned(&s.retry_interval),
    )?
    .unwrap_or(Duration::from_secs(1));
    if s.retry_interval.is_some() && retries == 0 {
        return src.err(
            s.retry_interval.as_ref().map_or(at.clone(), |t| t.span()),
            format!("{key}.retry_interval: set `retries` too (retry_interval is the pause between attempts)"),
        );
    }
    let expect_stdout = match &s.expect_stdout {
        None => None,
        Some(v) => Some(
            Predicate::parse(v.get_ref(), Literal::Contains)
                .or_else(|m| src.err(v.span(), format!("{key}.expect_stdout: {m}")))?,
        ),
    };
    let expect_exit = s.expect_exit.as_ref().map_or(0, |e| *e.get_ref());

    let kind = if let Some(url) = &s.http {
        SmokeKind::Http(http(
            src,
            HttpFields {
                key: key.clone(),
                url: (url.get_ref(), url.span()),
                method: spanned(&s.method),
                headers: &s.headers,
                body: s.body.as_ref(),
                expect_status: spanned(&s.expect_status),
                expect_json: s
                    .expect_json
                    .iter()
                    .map(|(k, v)| (k.get_ref().as_str(), k.span(), v))
                    .collect(),
                expect_body: spanned(&s.expect_body),
                expect_header: s
                    .expect_header
                    .iter()
                    .map(|(k, v)| (k.get_ref().as_str(), k.span(), v))
                    .collect(),
                max_latency: spanned(&s.max_latency),
                timeout: spanned(&s.timeout),
                default_timeout: DEFAULT_TIMEOUT,
            },
        )?)
    } else if let Some(exec) = &s.exec {
        let e = exec.get_ref();
        names::check_name("service", &e.service)
            .or_else(|m| src.err(exec.span(), format!("{key}.exec.service: {m}")))?;
        if e.command.is_empty() {
            return src.err(
                exec.span(),
                format!("{key}.exec.command: give the command as a list, e.g. [\"redis-cli\", \"ping\"]"),
            );
        }
        SmokeKind::Exec {
            service: e.service.clone(),
            command: e.command.clone(),
            expect_stdout,
            expect_exit,
            timeout,
        }
    } else if let Some(command) = &s.command {
        if command.get_ref().is_empty() || command.get_ref()[0].trim().is_empty() {
            return src.err(
                command.span(),
                format!("{key}.command: give the command as a list, e.g. [\"./scripts/smoke-test.sh\", \"{{url}}\"]"),
            );
        }
        SmokeKind::Command {
            command: command.get_ref().clone(),
            expect_stdout,
            expect_exit,
            timeout,
        }
    } else {
        let Some(tcp) = &s.tcp else {
            return src.err(
                at,
                format!("{key}: give exactly one of `http`, `exec`, `command`, `tcp`"),
            );
        };
        let address = tcp.get_ref();
        // Checked with placeholders filled, since `{host}` carries the port.
        let sample = address.replace("{host}", "h:1").replace("{url}", "h:1");
        let ok = sample
            .trim_start_matches("tcp://")
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && (p.parse::<u16>().is_ok() || p.contains('{')));
        if !ok {
            return src.err(
                tcp.span(),
                format!("{key}.tcp: `{address}` is not HOST:PORT (e.g. \"127.0.0.1:6379\" or \"{{host}}\")"),
            );
        }
        SmokeKind::Tcp {
            address: address.clone(),
            max_latency: duration(src, &format!("{key}.max_latency"), spanned(&s.max_latency))?,
            timeout,
        }
    };
    let pre_traffic = match &s.pre_traffic {
        None => None,
        Some(svc) => {
            let placed = matches!(&kind, SmokeKind::Http(h) if h.url.contains(CONTAINER));
            if !placed {
                return src.err(
                    svc.span(),
                    format!(
                        "{key}.pre_traffic: a pre-traffic check must reach each new container itself: \
                         make it an `http` check with {CONTAINER} in its URL, e.g. \"http://{CONTAINER}:8080/health\""
                    ),
                );
            }
            Some(svc.get_ref().clone())
        }
    };
    Ok(SmokeCheck {
        name: name.clone(),
        kind,
        retries,
        retry_interval,
        pre_traffic,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::{Config, Health, SmokeKind};

    const BASE: &str = r#"
project = "p"
[environments.staging]
url = "http://127.0.0.1:8080"
[environments.production]
url = "http://127.0.0.1:8081"
[services.api]
"#;

    fn parse(extra: &str) -> Result<Config, String> {
        Config::parse(Path::new("slipway.toml"), &format!("{BASE}{extra}"))
            .map_err(|e| e.to_string())
    }

    fn err(extra: &str) -> String {
        match parse(extra) {
            Err(e) => e,
            Ok(_) => panic!("expected an error for {extra}"),
        }
    }

    #[test]
    fn every_kind_and_key_parses() {
        let c = parse(
            r#"
[deploy]
smoke_concurrency = 4
[[smoke]]
name = "api"
http = "{url}/api"
method = "post"
headers = { Authorization = "Bearer x" }
body = '{"q":1}'
expect_status = [200, 201]
expect_json = { "$.status" = "ok", "$.items" = { count = 2 }, "$.ms" = { lt = 100 }, "$.db" = { exists = true } }
expect_body = { matches = "ok|fine" }
expect_header = { "Content-Type" = { contains = "json" } }
max_latency = "2s"
timeout = "3s"
retries = 2
retry_interval = "500ms"
[[smoke]]
name = "redis"
exec = { service = "redis", command = ["redis-cli", "ping"] }
expect_stdout = "PONG"
[[smoke]]
name = "script"
command = ["./smoke.sh", "{url}"]
expect_exit = 0
[[smoke]]
name = "db port"
tcp = "127.0.0.1:5432"
"#,
        )
        .expect("valid");
        assert_eq!(c.environments["staging"].smoke_concurrency, 4);
        assert_eq!(c.smoke.len(), 4);
        let SmokeKind::Http(h) = &c.smoke[0].kind else {
            panic!("http")
        };
        assert_eq!(h.method, "POST");
        assert_eq!(h.expect_status, vec![200, 201]);
        assert_eq!(h.expect_json.len(), 4);
        assert_eq!(h.expect_header[0].0, "content-type");
        assert_eq!(c.smoke[0].retries, 2);
        assert!(matches!(c.smoke[3].kind, SmokeKind::Tcp { .. }));
        assert!(c.smoke[2].uses("{url}") && !c.smoke[3].uses("{url}"));
    }

    #[test]
    fn mistakes_are_located_and_explained() {
        let e = err("[[smoke]]\nname = \"a\"\nhttp = \"{url}\"\nexpect_json = { \"$.a\" = { exsts = true } }\n");
        assert!(
            e.starts_with(
                "slipway.toml:11:17: smoke[0] (a).expect_json.\"$.a\": unknown operator `exsts`"
            ),
            "{e}"
        );
        assert!(e.contains("did you mean `exists`"), "{e}");
        let e = err("[[smoke]]\nname = \"a\"\nhttp = \"{url}\"\nexpect_stdout = \"x\"\n");
        assert!(
            e.contains(
                "smoke[0] (a).expect_stdout: applies to exec and command checks, not `http`"
            ),
            "{e}"
        );
        let e = err("[[smoke]]\nname = \"a\"\nhttp = \"{url}\"\nexpect_status = 1000\n");
        assert!(
            e.starts_with("slipway.toml:11:17:") && e.contains("100–599"),
            "{e}"
        );
        let e = err("[[smoke]]\nname = \"a\"\nhttp = \"{url}\"\nmethod = \"GTE\"\n");
        assert!(e.contains("did you mean `GET`"), "{e}");
        let e = err("[[smoke]]\nname = \"a\"\ntcp = \"localhost\"\n");
        assert!(e.contains("is not HOST:PORT"), "{e}");
        let e = err("[[smoke]]\nname = \"a\"\ntcp = \"h:1\"\nretry_interval = \"1s\"\n");
        assert!(e.contains("set `retries` too"), "{e}");
        let e =
            err("[[smoke]]\nname = \"a\"\nhttp = \"{url}\"\nexpect_body = { matches = \"(\" }\n");
        assert!(e.contains("not a regular expression"), "{e}");
        let e = err("[[smoke]]\nname = \"a\"\nhttp = \"{url}\"\ntcp = \"h:1\"\n");
        assert!(e.contains("exactly one of"), "{e}");
    }

    #[test]
    fn health_tables_share_the_http_builder() {
        let c = parse("health = { http = \"{url}/health\", expect_header = { \"x-ready\" = \"yes\" }, method = \"HEAD\" }\n")
            .expect("valid");
        let Health::Http(h) = &c.services["api"].health else {
            panic!("http health")
        };
        assert_eq!(h.method, "HEAD");
        let e = err("health = { http = \"{url}/health\", expect_stauts = 200 }\n");
        assert!(
            e.starts_with("slipway.toml:8:10: services.api.health: unknown field `expect_stauts`"),
            "{e}"
        );
        assert!(e.contains("did you mean `expect_status`"), "{e}");
        let e = err("health = \"containr\"\n");
        assert!(e.contains("did you mean `container`"), "{e}");
    }

    #[test]
    fn env_rules_are_validated() {
        let c = parse("[env_rules]\npreset = \"production\"\nenvironments = [\"production\"]\n[env_rules.vars.NODE_ENV]\none_of = [\"production\", \"staging\"]\n")
            .expect("valid");
        let node = c
            .env_rules
            .vars
            .iter()
            .find(|v| v.var == "NODE_ENV")
            .expect("NODE_ENV");
        assert_eq!(
            node.from, "env_rules.vars.NODE_ENV",
            "explicit rules replace the preset's"
        );
        assert_eq!(
            node.environments.as_deref(),
            Some(&["production".to_string()][..])
        );
        assert!(c.env_rules.applies_to("production") && !c.env_rules.applies_to("staging"));
        let e = err("[env_rules]\npreset = \"prod\"\n");
        assert!(
            e.starts_with("slipway.toml:9:10: env_rules.preset: no preset `prod`"),
            "{e}"
        );
        let e = err("[env_rules]\nenvironments = [\"prodution\"]\n");
        assert!(e.contains("did you mean `production`"), "{e}");
        let e = err("[env_rules.vars.JWT_SECRET]\nmin_lenght = 32\n");
        assert!(
            e.contains("unknown field `min_lenght`") && e.contains("did you mean `min_length`"),
            "{e}"
        );
        let e = err("[env_rules.vars.A]\ndistinct_from = \"A\"\n");
        assert!(e.contains("never distinct from itself"), "{e}");
        let e = err("[env_rules.vars.A]\nenvironments = [\"staging\"]\n");
        assert!(e.contains("no rule given"), "{e}");
    }
}
