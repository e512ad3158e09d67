//! Predicates as the config states them: what a value a probe reads (a
//! JSONPath result, a header, a body, a command's stdout) must satisfy, in the
//! spirit of Hurl's asserts. Parsed once from `slipway.toml` (`"ok"`, or a
//! table of operators such as `{ gte = 1, lt = 10 }`); `probe::predicate`
//! judges them against what came back. Plain data here, so the config does
//! not depend on the probes that consume it.

use serde_json::Value;

/// How a bare value (not a table) reads: `expect_json = { "$.a" = "ok" }`
/// means equality; `expect_body = "ok"` means "contains".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Literal {
    Equals,
    Contains,
}

/// One operator. A predicate holds several; all must hold.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Equals(Value),
    NotEquals(Value),
    Exists(bool),
    Gt(f64),
    Gte(f64),
    Lt(f64),
    Lte(f64),
    Contains(Value),
    NotContains(Value),
    StartsWith(String),
    EndsWith(String),
    /// A regular expression (source; compiled after expansion).
    Matches(String),
    /// Elements of an array (or nodes a JSONPath selected), keys of an object, characters of a string.
    Count(u64),
    /// `string`, `number`, `integer`, `boolean`, `array`, `object`, `null`.
    Type(String),
    OneOf(Vec<Value>),
}

/// The operator names a table may use, for parsing and "did you mean".
pub const OPERATORS: &[&str] = &[
    "equals",
    "not_equals",
    "exists",
    "gt",
    "gte",
    "lt",
    "lte",
    "contains",
    "not_contains",
    "starts_with",
    "ends_with",
    "matches",
    "count",
    "type",
    "one_of",
];

const TYPES: &[&str] = &[
    "string", "number", "integer", "boolean", "array", "object", "null",
];

#[derive(Debug, Clone, PartialEq)]
pub struct Predicate {
    pub ops: Vec<Op>,
}

impl Predicate {
    /// Parse a config value. Errors are messages; the caller adds the location.
    pub fn parse(v: &toml::Value, literal: Literal) -> Result<Predicate, String> {
        let table = match v {
            toml::Value::Table(t) => t,
            other => {
                let value = to_json(other)?;
                let op = match literal {
                    Literal::Equals => Op::Equals(value),
                    Literal::Contains => match value {
                        Value::String(s) => Op::Contains(Value::String(s)),
                        other => Op::Equals(other),
                    },
                };
                return Ok(Predicate { ops: vec![op] });
            }
        };
        if table.is_empty() {
            return Err(format!(
                "an empty table asserts nothing; use operators such as {}",
                OPERATORS[..4].join(", ")
            ));
        }
        let mut ops = Vec::new();
        for (key, value) in table {
            ops.push(parse_op(key, value)?);
        }
        Ok(Predicate { ops })
    }
}

fn to_json(v: &toml::Value) -> Result<Value, String> {
    serde_json::to_value(v).map_err(|e| format!("cannot use this value: {e}"))
}

fn number(key: &str, v: &toml::Value) -> Result<f64, String> {
    match v {
        toml::Value::Integer(i) => Ok(*i as f64),
        toml::Value::Float(f) => Ok(*f),
        _ => Err(format!("`{key}` takes a number")),
    }
}

fn string(key: &str, v: &toml::Value) -> Result<String, String> {
    v.as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("`{key}` takes a string"))
}

/// Check a regex compiles, with the placeholders standing in for sample values.
pub fn check_regex(pattern: &str) -> Result<(), String> {
    regex::Regex::new(&sample_expand(pattern))
        .map(|_| ())
        .map_err(|e| format!("`{pattern}` is not a regular expression: {e}"))
}

fn parse_op(key: &str, v: &toml::Value) -> Result<Op, String> {
    Ok(match key {
        "equals" => Op::Equals(to_json(v)?),
        "not_equals" => Op::NotEquals(to_json(v)?),
        "exists" => Op::Exists(
            v.as_bool()
                .ok_or_else(|| "`exists` takes true or false".to_string())?,
        ),
        "gt" => Op::Gt(number(key, v)?),
        "gte" => Op::Gte(number(key, v)?),
        "lt" => Op::Lt(number(key, v)?),
        "lte" => Op::Lte(number(key, v)?),
        "contains" => Op::Contains(to_json(v)?),
        "not_contains" => Op::NotContains(to_json(v)?),
        "starts_with" => Op::StartsWith(string(key, v)?),
        "ends_with" => Op::EndsWith(string(key, v)?),
        "matches" => {
            let p = string(key, v)?;
            check_regex(&p)?;
            Op::Matches(p)
        }
        "count" => match v {
            toml::Value::Integer(i) if *i >= 0 => Op::Count(*i as u64),
            _ => return Err("`count` takes a whole number, 0 or more".into()),
        },
        "type" => {
            let t = string(key, v)?;
            if !TYPES.contains(&t.as_str()) {
                return Err(format!(
                    "`type` is one of {}{}",
                    TYPES.join(", "),
                    crate::suggest::did_you_mean(&t, TYPES.iter().copied())
                ));
            }
            Op::Type(t)
        }
        "one_of" => match to_json(v)? {
            Value::Array(items) if !items.is_empty() => Op::OneOf(items),
            _ => return Err("`one_of` takes a non-empty list".into()),
        },
        other => {
            return Err(format!(
                "unknown operator `{other}` (operators: {}){}",
                OPERATORS.join(", "),
                crate::suggest::did_you_mean(other, OPERATORS.iter().copied())
            ))
        }
    })
}

/// A pattern with `{url}`, `{env}`, `{tag}` and `{host}` replaced as
/// `probe::Vars::expand_regex` does for url `http://h`, env `e`, tag `t`
/// (the regex error quotes this text, so it stays what it always was).
pub(crate) fn sample_expand(pattern: &str) -> String {
    pattern
        .replace("{url}", &regex::escape("http://h"))
        .replace("{env}", "e")
        .replace("{tag}", "t")
        .replace("{host}", &regex::escape("h:80"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str, literal: Literal) -> Result<Predicate, String> {
        let v: toml::Table = toml::from_str(&format!("v = {text}")).expect("toml");
        Predicate::parse(&v["v"], literal)
    }

    #[test]
    fn bad_operators_are_refused_with_a_suggestion() {
        let e = p("{ exsts = true }", Literal::Equals).unwrap_err();
        assert!(e.contains("did you mean `exists`"), "{e}");
        assert!(p("{ gt = \"five\" }", Literal::Equals).is_err());
        assert!(p("{ matches = \"(\" }", Literal::Equals).is_err());
        assert!(p("{ type = \"strng\" }", Literal::Equals)
            .unwrap_err()
            .contains("did you mean `string`"));
        assert!(p("{}", Literal::Equals).is_err());
        assert!(p("{ count = -1 }", Literal::Equals).is_err());
    }
}
