//! Reading an environment's env file the way Docker Compose does: `KEY=VALUE`
//! lines, `#` comments, optional `export `, single or double quotes, and a
//! ` #` comment after an unquoted value. Every entry keeps its line, so a
//! rule can point at it without ever showing the value.

use std::path::Path;

/// One `KEY=VALUE` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    /// `None` for a bare `KEY` line (compose takes it from the shell).
    pub value: Option<String>,
    /// 1-based.
    pub line: usize,
}

/// A line compose would not read as an assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    pub line: usize,
    pub why: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvFile {
    /// In file order; a name set twice appears twice (the last one counts).
    pub entries: Vec<Entry>,
    pub malformed: Vec<Malformed>,
}

impl EnvFile {
    pub fn read(path: &Path) -> std::io::Result<EnvFile> {
        Ok(EnvFile::parse(&std::fs::read_to_string(path)?))
    }

    pub fn parse(text: &str) -> EnvFile {
        let mut file = EnvFile::default();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let body = trimmed
                .strip_prefix("export ")
                .map(str::trim_start)
                .unwrap_or(trimmed);
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n.trim(), Some(v)),
                None => (body, None),
            };
            if name.is_empty()
                || name.starts_with(|c: char| c.is_ascii_digit())
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
            {
                // Never quote the line: it may hold a secret.
                file.malformed.push(Malformed {
                    line,
                    why: "not a KEY=VALUE line".into(),
                });
                continue;
            }
            let value = match value.map(unquote) {
                None => None,
                Some(Ok(v)) => Some(v),
                Some(Err(why)) => {
                    file.malformed.push(Malformed { line, why });
                    continue;
                }
            };
            file.entries.push(Entry {
                name: name.to_string(),
                value,
                line,
            });
        }
        file
    }

    /// The entry that counts for `name` (the last one set).
    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().rev().find(|e| e.name == name)
    }

    /// Every value set in the file, with its name.
    pub fn values(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries
            .iter()
            .filter_map(|e| Some((e.name.as_str(), e.value.as_deref()?)))
    }
}

fn unquote(v: &str) -> Result<String, String> {
    let v = v.trim_start();
    if let Some(rest) = v.strip_prefix('\'') {
        return match rest.find('\'') {
            Some(end) => Ok(rest[..end].to_string()),
            None => Err("a single quote is not closed".into()),
        };
    }
    if let Some(rest) = v.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = rest.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => return Ok(out),
                '\\' => match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some('r') => out.push('\r'),
                    Some(other) => out.push(other),
                    None => break,
                },
                c => out.push(c),
            }
        }
        return Err("a double quote is not closed".into());
    }
    // Unquoted: a `#` after whitespace starts a comment.
    let end = v
        .char_indices()
        .find(|&(i, c)| c == '#' && i > 0 && v[..i].ends_with([' ', '\t']))
        .map_or(v.len(), |(i, _)| i);
    Ok(v[..end].trim_end().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_like_compose() {
        let f = EnvFile::parse(
            "# comment\n\nA=1\nexport B = two words # note\nC=\"q \\\"x\\\" # kept\"\nD='it''s'\nE=\nF\nA=again\nG=a#b\n",
        );
        let get = |n: &str| f.get(n).and_then(|e| e.value.clone());
        assert_eq!(get("A").as_deref(), Some("again"));
        assert_eq!(f.get("A").map(|e| e.line), Some(9));
        assert_eq!(get("B").as_deref(), Some("two words"));
        assert_eq!(get("C").as_deref(), Some("q \"x\" # kept"));
        assert_eq!(get("D").as_deref(), Some("it"));
        assert_eq!(get("E").as_deref(), Some(""));
        assert_eq!(f.get("F").map(|e| e.value.clone()), Some(None));
        assert_eq!(get("G").as_deref(), Some("a#b"));
        assert!(f.malformed.is_empty(), "{:?}", f.malformed);
    }

    #[test]
    fn malformed_lines_are_located_not_quoted() {
        let f = EnvFile::parse("OK=1\nthis is not=an assignment\nQ=\"open\n");
        assert_eq!(
            f.malformed,
            vec![
                Malformed {
                    line: 2,
                    why: "not a KEY=VALUE line".into()
                },
                Malformed {
                    line: 3,
                    why: "a double quote is not closed".into()
                }
            ]
        );
    }
}
