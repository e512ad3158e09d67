//! What a tag, an image repository and a name may look like.
//!
//! Everything a user types that ends up as an argument to Docker or Compose is
//! checked here first, so hostile values (`--help`, `../x`, `$(rm -rf /)`) are
//! refused with a clear message instead of reaching another program.

/// A Docker tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn check_tag(tag: &str) -> Result<(), String> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && tag
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{tag}` is not a valid image tag (letters, digits, `_`, `.`, `-`; at most 128; not starting with `.` or `-`)"
        ))
    }
}

/// An image repository without tag or digest, e.g. `ghcr.io/acme/api` or
/// `127.0.0.1:5000/acme/api`.
pub fn check_repository(repo: &str) -> Result<(), String> {
    let bad = || {
        Err(format!(
            "`{repo}` is not an image repository (expected e.g. `ghcr.io/acme/api`, without `:tag` or `@digest`)"
        ))
    };
    if repo.is_empty() || repo.len() > 255 || repo.contains('@') {
        return bad();
    }
    let mut parts = repo.split('/').peekable();
    let mut first = true;
    while let Some(part) = parts.next() {
        let is_last = parts.peek().is_none();
        // Only the registry host (first of several parts) may hold `:port` or uppercase.
        let is_host =
            first && !is_last && (part.contains('.') || part.contains(':') || part == "localhost");
        first = false;
        let ok_char = |c: char| {
            if is_host {
                c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':')
            } else {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
            }
        };
        if part.is_empty()
            || part.contains("..")
            || !part.chars().all(ok_char)
            || !part
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric())
        {
            return bad();
        }
    }
    Ok(())
}

/// Names of the project, environments and services: they become compose
/// arguments, file names and tag parts.
pub fn check_name(what: &str, name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a valid {what} name (letters, digits, `_`, `-`, `.`; starting with a letter or digit)"
        ))
    }
}

/// Split `repo:tag` (the tag is after the last `:` that follows the last `/`).
pub fn split_image(image: &str) -> (&str, Option<&str>) {
    let image = image.split('@').next().unwrap_or(image);
    let slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[slash..].rfind(':') {
        Some(i) => (&image[..slash + i], Some(&image[slash + i + 1..])),
        None => (image, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags() {
        assert!(check_tag("v2").is_ok());
        assert!(check_tag("staging-latest").is_ok());
        assert!(check_tag("1.2.3_rc1").is_ok());
        for bad in [
            "", "--help", "-x", ".x", "../x", "a/b", "a b", "$(id)", "a;b",
        ] {
            assert!(check_tag(bad).is_err(), "{bad}");
        }
        assert!(check_tag(&"a".repeat(129)).is_err());
    }

    #[test]
    fn repositories() {
        for ok in [
            "api",
            "acme/api",
            "ghcr.io/acme/goodgo-api",
            "127.0.0.1:5000/acme/api",
            "localhost/x",
        ] {
            assert!(check_repository(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Api",
            "acme/api:v1",
            "a@sha256:00",
            "--help",
            "a//b",
            "/a",
            "a/../-b",
            "a b",
        ] {
            assert!(check_repository(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names() {
        assert!(check_name("service", "ai-services").is_ok());
        assert!(check_name("service", "-x").is_err());
        assert!(check_name("service", "a;b").is_err());
    }

    #[test]
    fn split() {
        assert_eq!(split_image("a/b:v1"), ("a/b", Some("v1")));
        assert_eq!(
            split_image("127.0.0.1:5000/a/b"),
            ("127.0.0.1:5000/a/b", None)
        );
        assert_eq!(
            split_image("127.0.0.1:5000/a/b:v2"),
            ("127.0.0.1:5000/a/b", Some("v2"))
        );
        assert_eq!(split_image("b@sha256:ff"), ("b", None));
    }
}
