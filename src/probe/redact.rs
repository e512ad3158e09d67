//! Keeping env file values out of everything a probe reports.
//!
//! A smoke check may read a secret back (a debug endpoint echoing its config,
//! `env` run inside a container, a script printing its environment), and that
//! text ends up in excerpts, history reasons, `--json` and JUnit files. Every
//! env file value long enough to be a secret is replaced by `[NAME]` before
//! any result leaves the probe layer. Short values (`NODE_ENV=production`,
//! a port) are left alone: they are settings, and hiding them would make
//! reports unreadable.

use std::path::Path;

use crate::config::env_file::EnvFile;

/// Values shorter than this are settings, not secrets.
pub const MIN_SECRET_LEN: usize = 8;

#[derive(Debug, Clone, Default)]
pub struct Secrets {
    /// (value, replacement), longest value first so a secret that contains
    /// another is replaced whole.
    pairs: Vec<(String, String)>,
}

impl Secrets {
    pub fn none() -> Secrets {
        Secrets::default()
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
            let mut add = |v: &str| {
                if v.chars().count() >= MIN_SECRET_LEN && !pairs.iter().any(|(p, _)| p == v) {
                    pairs.push((v.to_string(), format!("[{name}]")));
                }
            };
            add(value);
            // The password inside a URL (postgres://user:PASSWORD@host) leaks on its own too.
            if let Ok(url) = reqwest::Url::parse(value) {
                if let Some(pw) = url.password() {
                    add(pw);
                    if let Ok(decoded) = urlencoding_decode(pw) {
                        add(&decoded);
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
    fn long_values_and_url_passwords_are_replaced() {
        let s = Secrets::from_pairs(
            [
                ("JWT_SECRET", "s3cr3t-canary-value"),
                ("NODE_ENV", "prod"),
                ("DATABASE_URL", "postgres://app:pa%24%24word-x@db:5432/app"),
            ]
            .into_iter(),
        );
        let text = "token=s3cr3t-canary-value env=prod pw=pa$$word-x raw=pa%24%24word-x";
        let out = s.redact(text);
        assert_eq!(
            out,
            "token=[JWT_SECRET] env=prod pw=[DATABASE_URL] raw=[DATABASE_URL]"
        );
        assert_eq!(
            s.redact("postgres://app:pa%24%24word-x@db:5432/app"),
            "[DATABASE_URL]"
        );
    }
}
