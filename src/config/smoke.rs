//! Validating probes: `[[smoke]]` checks and a service's HTTP `health` table,
//! from their serde shape to [`SmokeCheck`] / [`HttpExpect`], with
//! `file:line:col` and the key at fault for anything wrong.
//!
//! Both kinds of HTTP probe share one builder, so `health = { http = … }`
//! accepts exactly what an `http` smoke check accepts. Each check below is a
//! small function named after what it checks, over a [`Section`] that carries
//! the source, the key to name and the span to blame when a key has none.

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use serde_json_path::JsonPath;

use super::predicate::{Literal, Predicate};
use super::raw::{RawExec, RawHttpHealth, RawSmoke, RawStatus};
use super::spanned::S;
use super::CONTAINER;
use super::{did_you_mean, names, HttpExpect, SmokeCheck, SmokeKind, Source};
use crate::error::Result;

/// A per-check timeout when none is given.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

type At<'a, T> = Option<(&'a T, Range<usize>)>;

/// A probe being checked: where to report, the key its messages start with
/// (`smoke[0] (api)`, `services.api.health`) and the span to blame for a key
/// that has no span of its own.
struct Section<'a> {
    src: &'a Source<'a>,
    key: String,
    at: Range<usize>,
}

impl Section<'_> {
    /// `KEY.FIELD` parsed as a duration, if given.
    fn duration(&self, field: &str, v: At<String>) -> Result<Option<Duration>> {
        duration(self.src, &format!("{}.{field}", self.key), v)
    }

    /// The span of an optional key, if it is given.
    fn given<T>(&self, v: &Option<S<T>>) -> Option<Range<usize>> {
        v.as_ref().map(|x| x.span())
    }

    /// The span of an optional key, or the section's own when it is absent.
    fn span_of<T>(&self, v: &Option<S<T>>) -> Range<usize> {
        v.as_ref().map_or(self.at.clone(), |x| x.span())
    }
}

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

/// Build an HTTP probe, checking each field in the order written below.
fn http(src: &Source, f: HttpFields) -> Result<HttpExpect> {
    // Keys without a span of their own (headers, a defaulted timeout) blame the URL.
    let sec = Section {
        src,
        key: f.key,
        at: f.url.1.clone(),
    };
    if f.url.0.trim().is_empty() {
        return src.err(
            f.url.1,
            format!(
                "{}.http: give the URL to request, e.g. \"{{url}}/health\"",
                sec.key
            ),
        );
    }
    let method = http_method(&sec, f.method)?;
    header_names_valid(&sec, f.headers)?;
    let expect_status = expect_status(&sec, f.expect_status)?;
    let expect_json = expect_json(&sec, f.expect_json)?;
    let expect_body = expect_body(&sec, f.expect_body)?;
    let expect_header = expect_header(&sec, f.expect_header)?;
    let timeout = http_timeout(&sec, f.timeout, f.default_timeout)?;
    Ok(HttpExpect {
        url: f.url.0.to_string(),
        method,
        headers: f.headers.clone(),
        body: f.body.cloned(),
        expect_status,
        expect_json,
        expect_body,
        expect_header,
        max_latency: sec.duration("max_latency", f.max_latency)?,
        timeout,
    })
}

/// `method`: one of [`METHODS`], any case; GET when absent.
fn http_method(sec: &Section, method: At<String>) -> Result<String> {
    let key = &sec.key;
    let Some((m, span)) = method else {
        return Ok("GET".into());
    };
    let up = m.to_ascii_uppercase();
    if !METHODS.contains(&up.as_str()) {
        return sec.src.err(
            span,
            format!(
                "{key}.method: `{m}` is not an HTTP method ({}){}",
                METHODS.join(", "),
                did_you_mean(&up, METHODS.iter().copied())
            ),
        );
    }
    Ok(up)
}

/// `headers`: every name is a valid HTTP header name.
fn header_names_valid(sec: &Section, headers: &BTreeMap<String, String>) -> Result<()> {
    let key = &sec.key;
    for name in headers.keys() {
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return sec.src.err(
                sec.at.clone(),
                format!("{key}.headers: `{name}` is not a header name"),
            );
        }
    }
    Ok(())
}

/// `expect_status`: one code or a list, each 100–599; 200 when absent.
fn expect_status(sec: &Section, status: At<RawStatus>) -> Result<Vec<u16>> {
    let key = &sec.key;
    let Some((s, span)) = status else {
        return Ok(vec![200]);
    };
    let codes = match s {
        RawStatus::One(c) => vec![*c],
        RawStatus::Many(cs) => cs.clone(),
    };
    if codes.is_empty() || codes.iter().any(|c| !(100..=599).contains(c)) {
        return sec.src.err(
            span,
            format!("{key}.expect_status: give a status code (100–599) or a list of them"),
        );
    }
    Ok(codes)
}

/// `expect_json`: each key a JSONPath, each value a predicate.
fn expect_json(
    sec: &Section,
    entries: Vec<(&str, Range<usize>, &toml::Value)>,
) -> Result<Vec<(String, JsonPath, Predicate)>> {
    let key = &sec.key;
    entries
        .into_iter()
        .map(|(path, span, value)| {
            let parsed = JsonPath::parse(path).or_else(|e| {
                sec.src.err(
                    span.clone(),
                    format!("{key}.expect_json: `{path}` is not a JSONPath (RFC 9535): {e}"),
                )
            })?;
            let pred = Predicate::parse(value, Literal::Equals).or_else(|m| {
                sec.src
                    .err(span, format!("{key}.expect_json.\"{path}\": {m}"))
            })?;
            Ok((path.to_string(), parsed, pred))
        })
        .collect()
}

/// `expect_body`: a predicate over the body (a bare string means "contains").
fn expect_body(sec: &Section, body: At<toml::Value>) -> Result<Option<Predicate>> {
    let Some((v, span)) = body else {
        return Ok(None);
    };
    Predicate::parse(v, Literal::Contains)
        .map(Some)
        .or_else(|m| sec.src.err(span, format!("{}.expect_body: {m}", sec.key)))
}

/// `expect_header`: each key a header name (kept lower-case), each value a predicate.
fn expect_header(
    sec: &Section,
    entries: Vec<(&str, Range<usize>, &toml::Value)>,
) -> Result<Vec<(String, Predicate)>> {
    let key = &sec.key;
    entries
        .into_iter()
        .map(|(name, span, value)| {
            if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return sec.src.err(
                    span,
                    format!("{key}.expect_header: `{name}` is not a header name"),
                );
            }
            let pred = Predicate::parse(value, Literal::Equals).or_else(|m| {
                sec.src
                    .err(span, format!("{key}.expect_header.\"{name}\": {m}"))
            })?;
            Ok((name.to_ascii_lowercase(), pred))
        })
        .collect()
}

/// `timeout` of an HTTP probe: a duration above zero, or the probe kind's default.
fn http_timeout(sec: &Section, timeout: At<String>, default: Duration) -> Result<Duration> {
    let span = timeout.as_ref().map_or(sec.at.clone(), |t| t.1.clone());
    let timeout = sec.duration("timeout", timeout)?.unwrap_or(default);
    if timeout.is_zero() {
        return sec
            .src
            .err(span, format!("{}.timeout: must be more than 0", sec.key));
    }
    Ok(timeout)
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

fn spanned<T>(v: &Option<S<T>>) -> At<'_, T> {
    v.as_ref().map(|s| (s.get_ref(), s.span()))
}

/// What an `exec` or `command` check expects of its process.
struct ProcessExpect {
    expect_stdout: Option<Predicate>,
    expect_exit: i32,
    timeout: Duration,
}

/// One `[[smoke]]` table: its name, its one kind, the keys that fit that
/// kind, timing and retries, the kind's own fields, then `pre_traffic`.
pub(super) fn check(src: &Source, i: usize, s: &RawSmoke) -> Result<SmokeCheck> {
    let name = s.name.get_ref();
    if name.trim().is_empty() {
        return src.err(
            s.name.span(),
            format!("smoke[{i}].name: give the check a name"),
        );
    }
    let sec = Section {
        src,
        key: format!("smoke[{i}] ({name})"),
        at: s.name.span(),
    };
    let kind_name = kind_name(&sec, s)?;
    keys_fit_kind(&sec, s, kind_name)?;
    let timeout = smoke_timeout(&sec, s)?;
    let (retries, retry_interval) = retries(&sec, s)?;
    let process = ProcessExpect {
        expect_stdout: expect_stdout(&sec, s)?,
        expect_exit: s.expect_exit.as_ref().map_or(0, |e| *e.get_ref()),
        timeout,
    };
    let kind = if let Some(url) = &s.http {
        SmokeKind::Http(http_check(&sec, s, url)?)
    } else if let Some(exec) = &s.exec {
        exec_check(&sec, exec, process)?
    } else if let Some(command) = &s.command {
        command_check(&sec, command, process)?
    } else {
        tcp_check(&sec, s, timeout)?
    };
    let pre_traffic = pre_traffic(&sec, s, &kind)?;
    Ok(SmokeCheck {
        name: name.clone(),
        kind,
        retries,
        retry_interval,
        pre_traffic,
        hosts: Vec::new(),
    })
}

/// Exactly one of `http`, `exec`, `command`, `tcp`: its name.
fn kind_name(sec: &Section, s: &RawSmoke) -> Result<&'static str> {
    let kinds = [
        (s.http.is_some(), "http"),
        (s.exec.is_some(), "exec"),
        (s.command.is_some(), "command"),
        (s.tcp.is_some(), "tcp"),
    ];
    let mut given = kinds.iter().filter(|(present, _)| *present);
    match (given.next(), given.next()) {
        (Some((_, kind)), None) => Ok(kind),
        _ => sec.src.err(
            sec.at.clone(),
            format!(
                "{}: give exactly one of `http`, `exec`, `command`, `tcp`",
                sec.key
            ),
        ),
    }
}

/// Keys that only make sense for some kinds: say so rather than ignore them.
fn keys_fit_kind(sec: &Section, s: &RawSmoke, kind_name: &str) -> Result<()> {
    let http = &["http"][..];
    let process = &["exec", "command"][..];
    let map = |m: &BTreeMap<S<String>, toml::Value>| m.keys().next().map(|k| k.span());
    let bare = |present: bool| present.then(|| sec.at.clone());
    // Each key with the span to blame if it is given.
    let given = [
        ("method", http, sec.given(&s.method)),
        ("headers", http, bare(!s.headers.is_empty())),
        ("body", http, bare(s.body.is_some())),
        ("expect_status", http, sec.given(&s.expect_status)),
        ("expect_json", http, map(&s.expect_json)),
        ("expect_body", http, sec.given(&s.expect_body)),
        ("expect_header", http, map(&s.expect_header)),
        (
            "max_latency",
            &["http", "tcp"][..],
            sec.given(&s.max_latency),
        ),
        ("expect_stdout", process, sec.given(&s.expect_stdout)),
        ("expect_exit", process, sec.given(&s.expect_exit)),
    ];
    for (field, kinds, span) in given {
        let Some(span) = span else { continue };
        if !kinds.contains(&kind_name) {
            return sec.src.err(
                span,
                format!(
                    "{}.{field}: applies to {} checks, not `{kind_name}`",
                    sec.key,
                    kinds.join(" and ")
                ),
            );
        }
    }
    Ok(())
}

/// `timeout` of a smoke check: a duration above zero, 10 s when absent.
fn smoke_timeout(sec: &Section, s: &RawSmoke) -> Result<Duration> {
    let timeout = sec
        .duration("timeout", spanned(&s.timeout))?
        .unwrap_or(DEFAULT_TIMEOUT);
    if timeout.is_zero() {
        return sec.src.err(
            sec.span_of(&s.timeout),
            format!("{}.timeout: must be more than 0", sec.key),
        );
    }
    Ok(timeout)
}

/// `retries` (0–100) and `retry_interval`, which needs `retries`.
fn retries(sec: &Section, s: &RawSmoke) -> Result<(u32, Duration)> {
    let key = &sec.key;
    let retries = match &s.retries {
        Some(r) if !(0..=100).contains(r.get_ref()) => {
            return sec.src.err(
                r.span(),
                format!("{key}.retries: must be between 0 and 100"),
            )
        }
        Some(r) => *r.get_ref() as u32,
        None => 0,
    };
    let retry_interval = sec
        .duration("retry_interval", spanned(&s.retry_interval))?
        .unwrap_or(Duration::from_secs(1));
    if s.retry_interval.is_some() && retries == 0 {
        return sec.src.err(
            sec.span_of(&s.retry_interval),
            format!("{key}.retry_interval: set `retries` too (retry_interval is the pause between attempts)"),
        );
    }
    Ok((retries, retry_interval))
}

/// `expect_stdout`: a predicate over the output (a bare string means "contains").
fn expect_stdout(sec: &Section, s: &RawSmoke) -> Result<Option<Predicate>> {
    let Some(v) = &s.expect_stdout else {
        return Ok(None);
    };
    Predicate::parse(v.get_ref(), Literal::Contains)
        .map(Some)
        .or_else(|m| {
            sec.src
                .err(v.span(), format!("{}.expect_stdout: {m}", sec.key))
        })
}

/// An `http` check: the shared HTTP builder over the smoke table's spanned keys.
fn http_check(sec: &Section, s: &RawSmoke, url: &S<String>) -> Result<HttpExpect> {
    http(
        sec.src,
        HttpFields {
            key: sec.key.clone(),
            url: (url.get_ref(), url.span()),
            method: spanned(&s.method),
            headers: &s.headers,
            body: s.body.as_ref(),
            expect_status: spanned(&s.expect_status),
            expect_json: spanned_keys(&s.expect_json),
            expect_body: spanned(&s.expect_body),
            expect_header: spanned_keys(&s.expect_header),
            max_latency: spanned(&s.max_latency),
            timeout: spanned(&s.timeout),
            default_timeout: DEFAULT_TIMEOUT,
        },
    )
}

/// A table of predicates keyed by JSONPath or header name, each key with its span.
fn spanned_keys(m: &BTreeMap<S<String>, toml::Value>) -> Vec<(&str, Range<usize>, &toml::Value)> {
    m.iter()
        .map(|(k, v)| (k.get_ref().as_str(), k.span(), v))
        .collect()
}

/// An `exec` check: a service name and a non-empty command.
fn exec_check(sec: &Section, exec: &S<RawExec>, p: ProcessExpect) -> Result<SmokeKind> {
    let key = &sec.key;
    let e = exec.get_ref();
    names::check_name("service", &e.service)
        .or_else(|m| sec.src.err(exec.span(), format!("{key}.exec.service: {m}")))?;
    if e.command.is_empty() {
        return sec.src.err(
            exec.span(),
            format!(
                "{key}.exec.command: give the command as a list, e.g. [\"redis-cli\", \"ping\"]"
            ),
        );
    }
    Ok(SmokeKind::Exec {
        service: e.service.clone(),
        command: e.command.clone(),
        expect_stdout: p.expect_stdout,
        expect_exit: p.expect_exit,
        timeout: p.timeout,
    })
}

/// A `command` check: a list whose first item names the program.
fn command_check(sec: &Section, command: &S<Vec<String>>, p: ProcessExpect) -> Result<SmokeKind> {
    if command.get_ref().is_empty() || command.get_ref()[0].trim().is_empty() {
        return sec.src.err(
            command.span(),
            format!("{}.command: give the command as a list, e.g. [\"./scripts/smoke-test.sh\", \"{{url}}\"]", sec.key),
        );
    }
    Ok(SmokeKind::Command {
        command: command.get_ref().clone(),
        expect_stdout: p.expect_stdout,
        expect_exit: p.expect_exit,
        timeout: p.timeout,
    })
}

/// A `tcp` check: `HOST:PORT`, placeholders allowed.
fn tcp_check(sec: &Section, s: &RawSmoke, timeout: Duration) -> Result<SmokeKind> {
    let key = &sec.key;
    let Some(tcp) = &s.tcp else {
        return sec.src.err(
            sec.at.clone(),
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
        return sec.src.err(
            tcp.span(),
            format!(
                "{key}.tcp: `{address}` is not HOST:PORT (e.g. \"127.0.0.1:6379\" or \"{{host}}\")"
            ),
        );
    }
    Ok(SmokeKind::Tcp {
        address: address.clone(),
        max_latency: sec.duration("max_latency", spanned(&s.max_latency))?,
        timeout,
    })
}

/// `pre_traffic`: only an `http` check whose URL reaches each new container.
fn pre_traffic(sec: &Section, s: &RawSmoke, kind: &SmokeKind) -> Result<Option<String>> {
    let Some(svc) = &s.pre_traffic else {
        return Ok(None);
    };
    let placed = matches!(kind, SmokeKind::Http(h) if h.url.contains(CONTAINER));
    if !placed {
        return sec.src.err(
            svc.span(),
            format!(
                "{}.pre_traffic: a pre-traffic check must reach each new container itself: \
                 make it an `http` check with {CONTAINER} in its URL, e.g. \"http://{CONTAINER}:8080/health\"",
                sec.key
            ),
        );
    }
    Ok(Some(svc.get_ref().clone()))
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
