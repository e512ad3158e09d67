//! Predicates: what a value a probe read (a JSONPath result, a header, a body,
//! a command's stdout) must satisfy, in the spirit of Hurl's asserts.
//!
//! A predicate is parsed once from the config (`config::predicate`: `"ok"`,
//! or a table of operators such as `{ gte = 1, lt = 10 }`) and judged here by
//! a pure function that returns what was expected and what came back, never
//! a bare "false".
//! `{url}`, `{env}`, `{tag}` and `{host}` in expected strings are expanded
//! when the check runs.

use serde_json::Value;

pub use crate::config::predicate::{Literal, Op, Predicate};

use super::Vars;

/// A failed operator: what it wanted and what it saw, both short and printable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Miss {
    pub expected: String,
    pub actual: String,
}

impl Predicate {
    /// Check every operator against `actual` (`None`: nothing was there).
    pub fn judge(&self, actual: Option<&Value>, vars: &Vars) -> Vec<Miss> {
        self.ops
            .iter()
            .filter_map(|op| judge_op(op, actual, vars).err())
            .collect()
    }
}

/// A value as a short, single-line text for messages.
pub fn show(v: &Value) -> String {
    let text = match v {
        // Line ends and runs of spaces read as one space in a one-line report;
        // text holding double quotes (JSON in a body) reads better in backticks.
        Value::String(s) => {
            let one = s.split_whitespace().collect::<Vec<_>>().join(" ");
            if one.contains('"') && !one.contains('`') {
                format!("`{one}`")
            } else {
                format!("{one:?}")
            }
        }
        other => other.to_string(),
    };
    shorten(&text, 120)
}

pub fn shorten(text: &str, max: usize) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= max {
        return one_line;
    }
    let cut: String = one_line.chars().take(max).collect();
    format!("{cut}…")
}

fn show_actual(actual: Option<&Value>) -> String {
    actual.map_or_else(|| "nothing".to_string(), show)
}

fn as_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        // Headers and bodies are text: "42" compares as a number.
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn count_of(v: &Value) -> Option<u64> {
    match v {
        Value::Array(a) => Some(a.len() as u64),
        Value::Object(o) => Some(o.len() as u64),
        Value::String(s) => Some(s.chars().count() as u64),
        _ => None,
    }
}

fn contains(actual: &Value, want: &Value) -> bool {
    match (actual, want) {
        (Value::String(a), Value::String(w)) => a.contains(w.as_str()),
        (Value::Array(items), w) => items.contains(w),
        (Value::Object(map), Value::String(k)) => map.contains_key(k),
        _ => false,
    }
}

fn expand(v: &Value, vars: &Vars) -> Value {
    match v {
        Value::String(s) => Value::String(vars.expand(s)),
        Value::Array(a) => Value::Array(a.iter().map(|x| expand(x, vars)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), expand(x, vars)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn fmt_num(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        n.to_string()
    }
}

/// One operator against the actual value: whether it holds, and if not, what
/// was expected and what was seen, in words.
fn judge_op(op: &Op, actual: Option<&Value>, vars: &Vars) -> Result<(), Miss> {
    if holds(op, actual, vars)? {
        return Ok(());
    }
    Err(Miss {
        expected: expected(op, vars),
        actual: seen(op, actual),
    })
}

fn holds(op: &Op, actual: Option<&Value>, vars: &Vars) -> Result<bool, Miss> {
    Ok(match op {
        Op::Exists(want) => actual.is_some() == *want,
        Op::Equals(want) => actual == Some(&expand(want, vars)),
        Op::NotEquals(want) => actual != Some(&expand(want, vars)),
        Op::Gt(n) | Op::Gte(n) | Op::Lt(n) | Op::Lte(n) => {
            actual.and_then(as_number).is_some_and(|a| match op {
                Op::Gt(_) => a > *n,
                Op::Gte(_) => a >= *n,
                Op::Lt(_) => a < *n,
                _ => a <= *n,
            })
        }
        Op::Contains(want) => actual.is_some_and(|a| contains(a, &expand(want, vars))),
        Op::NotContains(want) => !actual.is_some_and(|a| contains(a, &expand(want, vars))),
        Op::StartsWith(s) => {
            matches!(actual, Some(Value::String(a)) if a.starts_with(&vars.expand(s)))
        }
        Op::EndsWith(s) => matches!(actual, Some(Value::String(a)) if a.ends_with(&vars.expand(s))),
        Op::Matches(pattern) => {
            let re = regex::Regex::new(&vars.expand_regex(pattern)).map_err(|e| Miss {
                expected: format!("to match /{pattern}/"),
                actual: format!("an invalid pattern ({e})"),
            })?;
            match actual {
                Some(Value::String(a)) => re.is_match(a),
                Some(Value::Number(n)) => re.is_match(&n.to_string()),
                _ => false,
            }
        }
        Op::Count(n) => actual.and_then(count_of) == Some(*n),
        Op::Type(t) => actual.is_some_and(|a| {
            let at = type_of(a);
            at == t || (t == "number" && at == "integer")
        }),
        Op::OneOf(items) => actual.is_some_and(|a| items.iter().any(|v| expand(v, vars) == *a)),
    })
}

/// What the operator wanted, as a failure message says it.
fn expected(op: &Op, vars: &Vars) -> String {
    match op {
        Op::Exists(true) => "to exist".into(),
        Op::Exists(false) => "nothing".into(),
        Op::Equals(want) => show(&expand(want, vars)),
        Op::NotEquals(want) => format!("not {}", show(&expand(want, vars))),
        Op::Gt(n) => format!("> {}", fmt_num(*n)),
        Op::Gte(n) => format!(">= {}", fmt_num(*n)),
        Op::Lt(n) => format!("< {}", fmt_num(*n)),
        Op::Lte(n) => format!("<= {}", fmt_num(*n)),
        Op::Contains(want) => format!("to contain {}", show(&expand(want, vars))),
        Op::NotContains(want) => format!("not to contain {}", show(&expand(want, vars))),
        Op::StartsWith(s) => format!("to start with {}", show(&Value::String(vars.expand(s)))),
        Op::EndsWith(s) => format!("to end with {}", show(&Value::String(vars.expand(s)))),
        Op::Matches(pattern) => format!("to match /{}/", vars.expand_regex(pattern)),
        Op::Count(n) => format!("count {n}"),
        Op::Type(t) => format!("a {t}"),
        Op::OneOf(items) => format!(
            "one of {}",
            items
                .iter()
                .map(|v| show(&expand(v, vars)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// What was seen, in the terms of the operator (a count, a type, a value).
fn seen(op: &Op, actual: Option<&Value>) -> String {
    match (op, actual) {
        (Op::Exists(true), _) | (_, None) => "nothing".into(),
        (Op::Count(_), Some(a)) => match count_of(a) {
            Some(c) => format!("count {c}"),
            None => show_actual(actual),
        },
        (Op::Type(_), Some(a)) => format!("a {} ({})", type_of(a), show(a)),
        _ => show_actual(actual),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(text: &str, literal: Literal) -> Result<Predicate, String> {
        let v: toml::Table = toml::from_str(&format!("v = {text}")).expect("toml");
        Predicate::parse(&v["v"], literal)
    }

    fn vars() -> Vars {
        Vars {
            url: "http://127.0.0.1:8080/".into(),
            env: "staging".into(),
            tag: "v2".into(),
            ..Vars::default()
        }
    }

    fn ok(pred: &str, actual: Option<Value>) -> bool {
        p(pred, Literal::Equals)
            .expect("parses")
            .judge(actual.as_ref(), &vars())
            .is_empty()
    }

    #[test]
    fn literals_mean_equals_or_contains() {
        assert!(ok("\"ok\"", Some(json!("ok"))));
        assert!(!ok("\"ok\"", Some(json!("okay"))));
        assert!(ok("3", Some(json!(3))));
        assert!(ok("\"{tag}\"", Some(json!("v2"))));
        let body = p("\"PONG\"", Literal::Contains).expect("parses");
        assert!(body.judge(Some(&json!("+PONG\n")), &vars()).is_empty());
        assert_eq!(
            body.judge(Some(&json!("nope")), &vars()),
            vec![Miss {
                expected: "to contain \"PONG\"".into(),
                actual: "\"nope\"".into()
            }]
        );
    }

    #[test]
    fn operators_pass_and_fail() {
        let cases: &[(&str, Value, Value)] = &[
            ("{ gt = 5 }", json!(6), json!(5)),
            ("{ gte = 5 }", json!(5), json!(4.9)),
            ("{ lt = 5 }", json!("4"), json!("x")),
            ("{ lte = 5 }", json!(5), json!(6)),
            ("{ not_equals = \"down\" }", json!("up"), json!("down")),
            ("{ contains = \"ell\" }", json!("hello"), json!("help")),
            ("{ contains = 2 }", json!([1, 2]), json!([1, 3])),
            (
                "{ not_contains = \"error\" }",
                json!("fine"),
                json!("an error"),
            ),
            (
                "{ starts_with = \"{url}\" }",
                json!("http://127.0.0.1:8080/x"),
                json!("https://x"),
            ),
            ("{ ends_with = \".json\" }", json!("a.json"), json!("a.xml")),
            ("{ matches = '^v\\d+$' }", json!("v12"), json!("version")),
            ("{ matches = '^{tag}$' }", json!("v2"), json!("v22")),
            ("{ count = 2 }", json!([1, 2]), json!([1])),
            ("{ type = \"number\" }", json!(1.5), json!("1.5")),
            ("{ type = \"integer\" }", json!(2), json!(2.5)),
            (
                "{ one_of = [\"ok\", \"degraded\"] }",
                json!("degraded"),
                json!("down"),
            ),
            ("{ equals = { a = 1 } }", json!({"a": 1}), json!({"a": 2})),
            ("{ gte = 1, lt = 10 }", json!(9), json!(10)),
        ];
        for (pred, good, bad) in cases {
            assert!(ok(pred, Some(good.clone())), "{pred} should pass on {good}");
            assert!(!ok(pred, Some(bad.clone())), "{pred} should fail on {bad}");
        }
        assert!(ok("{ exists = false }", None));
        assert!(ok("{ exists = true }", Some(json!(null))));
        assert!(!ok("{ exists = true }", None));
        assert!(!ok("{ gt = 1 }", None));
    }

    #[test]
    fn misses_say_expected_and_actual() {
        let pred = p("{ gte = 1, count = 3 }", Literal::Equals).expect("parses");
        let misses = pred.judge(Some(&json!([1])), &vars());
        assert_eq!(
            misses,
            vec![
                Miss {
                    expected: "count 3".into(),
                    actual: "count 1".into()
                },
                Miss {
                    expected: ">= 1".into(),
                    actual: "[1]".into()
                }
            ]
        );
        let long = "x".repeat(500);
        let miss = &p("\"a\"", Literal::Equals)
            .expect("parses")
            .judge(Some(&json!(long)), &vars())[0];
        assert!(miss.actual.chars().count() < 130, "{}", miss.actual);
    }

    #[test]
    fn config_checks_regexes_expanded_as_vars_would() {
        let sample = Vars {
            url: "http://h".into(),
            env: "e".into(),
            tag: "t".into(),
            ..Vars::default()
        };
        let pattern = "^{url}/{env}/{tag}@{host}[(]$";
        assert_eq!(
            crate::config::predicate::sample_expand(pattern),
            sample.expand_regex(pattern)
        );
    }
}
