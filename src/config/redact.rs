//! Keeping env file values out of everything a probe reports, and out of
//! what compose says when it fails (it quotes env file lines it cannot read).
//!
//! A smoke check may read a secret back (a debug endpoint echoing its config,
//! `env` run inside a container, a script printing its environment), and that
//! text ends up in excerpts, history reasons, `--json` and JUnit files. Every
//! env file value that may be a secret is replaced by `[NAME]` before any
//! result leaves the probe layer: values of variables named like secrets
//! (`*_SECRET`, `*PASSWORD*`, `*_TOKEN`, `*_KEY`, …) from 4 characters on,
//! any other value from 16 characters on, and the password inside a URL.
//! Short settings (`NODE_ENV=production`, a port) stay readable.

use std::path::Path;

use crate::config::env_file::EnvFile;

/// Values of variables named like secrets are hidden from this length on.
pub const MIN_NAMED_SECRET_LEN: usize = 4;
/// Any other value is hidden from this length on (keys, tokens, DSNs).
pub const MIN_SECRET_LEN: usize = 16;

const SECRET_WORDS: &[&str] = &[
    "SECRET",
    "PASS",
    "PWD",
    "TOKEN",
    "KEY",
    "CREDENTIAL",
    "AUTH",
    "PRIVATE",
    "SALT",
    "CERT",
    "DSN",
    "WEBHOOK",
    "COOKIE",
    "SESSION",
];

/// A variable whose name says it holds a secret.
pub fn secret_name(name: &str) -> bool {
    let up = name.to_ascii_uppercase();
    SECRET_WORDS.iter().any(|w| up.contains(w))
}

#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secrets {
    /// (value, replacement), longest value first so a secret that contains
    /// another is replaced whole.
    pairs: Vec<(String, String)>,
}

/// Names only: a `{:?}` of a command or context must not print the values.
impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.pairs.iter().map(|(_, n)| n.as_str()).collect();
        f.debug_tuple("Secrets").field(&names).finish()
    }
}

impl Secrets {
    pub fn none() -> Secrets {
        Secrets::default()
    }

    /// What `env` must never show: its env file's values, or those of the
    /// `.env` compose reads by itself ([`Config::secrets_file`]).
    pub fn of(cfg: &crate::config::Config, env: &crate::config::Environment) -> Secrets {
        Secrets::from_env_file(cfg.secrets_file(env).as_deref())
    }

    /// The values of an env file. A file that cannot be read holds nothing
    /// to hide (preflight reports the missing file on its own).
    pub fn from_env_file(path: Option<&Path>) -> Secrets {
        match path.map(EnvFile::read) {
            Some(Ok(f)) => Secrets::from_pairs(f.values()),
            _ => Secrets::none(),
        }
    }

    pub fn from_pairs<'a>(values: impl Iterator<Item = (&'a str, &'a str)>) -> Secrets {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (name, value) in values {
            let mut add = |v: &str, min: usize| {
                if v.chars().count() >= min && !pairs.iter().any(|(p, _)| p == v) {
                    pairs.push((v.to_string(), format!("[{name}]")));
                }
            };
            let min = if secret_name(name) {
                MIN_NAMED_SECRET_LEN
            } else {
                MIN_SECRET_LEN
            };
            add(value, min);
            // The password inside a URL (postgres://user:PASSWORD@host) leaks on its own too.
            if let Ok(url) = reqwest::Url::parse(value) {
                if let Some(pw) = url.password() {
                    add(pw, MIN_NAMED_SECRET_LEN);
                    if let Ok(decoded) = urlencoding_decode(pw) {
                        add(&decoded, MIN_NAMED_SECRET_LEN);
                    }
                }
            }
        }
        pairs.sort_by_key(|(v, _)| std::cmp::Reverse(v.len()));
        Secrets { pairs }
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (value, name) in &self.pairs {
            if out.contains(value.as_str()) {
                out = out.replace(value.as_str(), name);
            }
        }
        out
    }

    pub fn redact_in_place(&self, text: &mut String) {
        if !self.is_empty() {
            *text = self.redact(text);
        }
    }
}

/// Percent-decoding without another crate: `%41` → `A`.
fn urlencoding_decode(s: &str) -> Result<String, std::string::FromUtf8Error> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or(())
            {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_replaced_settings_stay() {
        let s = Secrets::from_pairs(
            [
                ("JWT_SECRET", "s3cr3t-canary-value"),
                ("NODE_ENV", "production"),
                ("DB_PASSWORD", "hunter2x"),
                ("SOME_ID", "a-long-opaque-value-123"),
                ("DATABASE_URL", "postgres://app:pa%24%24word-x@db:5432/app"),
            ]
            .into_iter(),
        );
        let text = "token=s3cr3t-canary-value env=production db=hunter2x id=a-long-opaque-value-123 pw=pa$$word-x raw=pa%24%24word-x";
        assert_eq!(
            s.redact(text),
            "token=[JWT_SECRET] env=production db=[DB_PASSWORD] id=[SOME_ID] pw=[DATABASE_URL] raw=[DATABASE_URL]"
        );
        assert_eq!(
            s.redact("postgres://app:pa%24%24word-x@db:5432/app"),
            "[DATABASE_URL]"
        );
    }
}
