//! `host = "ssh://[user@]host[:port]"`, `dir` and the `[ssh]` tables: where a
//! remote environment lives and how to reach it. Parsed here, used by
//! `crate::remote`; the local backend never sees them.

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::Deserialize;

use super::spanned::S;
use super::Source;
use crate::error::Result;

/// `[ssh]` (top level) and `[environments.NAME.ssh]` (overrides it, key by key).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSsh {
    /// An ssh_config file (`ssh -F`), relative to slipway.toml.
    pub config: Option<S<String>>,
    /// A private key (`ssh -i`), relative to slipway.toml; CI writes a secret here.
    pub identity_file: Option<S<String>>,
    /// A known_hosts file (`UserKnownHostsFile`), relative to slipway.toml.
    pub known_hosts: Option<S<String>>,
    /// The login user when `host` names none.
    pub user: Option<S<String>>,
}

/// A remote environment: one host reached over the system's OpenSSH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    /// As written, for messages (`ssh://deploy@staging.example.com`).
    pub url: String,
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    /// The project folder on the host (`~/` is the login's home).
    pub dir: String,
    pub ssh: Ssh,
}

/// The `[ssh]` options, resolved (paths absolute).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ssh {
    pub config: Option<PathBuf>,
    pub identity_file: Option<PathBuf>,
    pub known_hosts: Option<PathBuf>,
    pub user: Option<String>,
}

/// `(user, host, port)` from `ssh://[user@]host[:port]`, or what is wrong.
pub fn parse_url(url: &str) -> std::result::Result<(Option<String>, String, Option<u16>), String> {
    let rest = url
        .strip_prefix("ssh://")
        .ok_or("write it as ssh://[user@]host[:port]")?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('/') {
        return Err("a path does not belong in `host`; put the project folder in `dir`".into());
    }
    let (user, hostport) = match rest.rsplit_once('@') {
        Some((u, h)) => (Some(u.to_string()), h),
        None => (None, rest),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') || h.ends_with(']') => {
            let port = p
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("`{p}` is not a port"))?;
            (h, Some(port))
        }
        _ => (hostport, None),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let word = |s: &str| {
        !s.is_empty()
            && !s.starts_with('-')
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-:".contains(c))
    };
    if !word(host) {
        return Err(format!("`{host}` is not a host name or address"));
    }
    if let Some(u) = &user {
        if !word(u) || u.contains(':') {
            return Err(format!("`{u}` is not a user name"));
        }
    }
    Ok((user, host.to_string(), port))
}

/// The remote part of an environment, if it has `host`.
#[allow(clippy::too_many_arguments)] // one call site, every piece named
pub(super) fn build(
    src: &Source,
    dir: &Path,
    project: &str,
    env: &str,
    host: Option<&S<String>>,
    remote_dir: Option<&S<String>>,
    ssh_top: Option<&RawSsh>,
    ssh_env: Option<&S<RawSsh>>,
) -> Result<Option<Remote>> {
    let Some(host) = host else {
        for (key, span) in [
            ("dir", remote_dir.map(S::span)),
            ("ssh", ssh_env.map(S::span)),
        ] {
            if let Some(span) = span {
                return src.err(
                    span,
                    format!("environments.{env}.{key}: only for a remote environment; add `host = \"ssh://user@host\"`"),
                );
            }
        }
        return Ok(None);
    };
    let (user, name, port) = parse_url(host.get_ref())
        .or_else(|m| src.err(host.span(), format!("environments.{env}.host: {m}")))?;
    let folder = match remote_dir {
        Some(d) => {
            let v = d.get_ref();
            if v.is_empty() || v.contains(['\n', '\0']) || v.starts_with('-') {
                return src.err(
                    d.span(),
                    format!(
                        "environments.{env}.dir: give a folder on the host, e.g. \"~/{project}\""
                    ),
                );
            }
            v.clone()
        }
        None => format!("~/.slipway/{project}/{env}"),
    };
    let pick = |f: fn(&RawSsh) -> &Option<S<String>>| {
        ssh_env
            .and_then(|s| f(s.get_ref()).clone())
            .or_else(|| ssh_top.and_then(|s| f(s).clone()))
    };
    let path = |f: fn(&RawSsh) -> &Option<S<String>>| pick(f).map(|p| dir.join(p.get_ref()));
    let ssh = Ssh {
        config: path(|s| &s.config),
        identity_file: path(|s| &s.identity_file),
        known_hosts: path(|s| &s.known_hosts),
        user: match pick(|s| &s.user) {
            Some(u) if u.get_ref().is_empty() || u.get_ref().starts_with('-') => {
                return src.err(u.span(), "ssh.user: not a user name");
            }
            u => u.map(S::into_inner),
        },
    };
    Ok(Some(Remote {
        url: host.get_ref().clone(),
        user,
        host: name,
        port,
        dir: folder,
        ssh,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_urls() {
        assert_eq!(
            parse_url("ssh://deploy@10.0.0.12:2222"),
            Ok((Some("deploy".into()), "10.0.0.12".into(), Some(2222)))
        );
        assert_eq!(
            parse_url("ssh://staging.example.com"),
            Ok((None, "staging.example.com".into(), None))
        );
        assert_eq!(
            parse_url("ssh://[fe80::1]:22"),
            Ok((None, "fe80::1".into(), Some(22)))
        );
        assert!(parse_url("deploy@host").is_err());
        assert!(parse_url("ssh://host:0").is_err());
        assert!(parse_url("ssh://host:x").is_err());
        assert!(parse_url("ssh://-oProxyCommand=x").is_err());
        assert!(parse_url("ssh://host/srv").is_err());
        assert!(parse_url("ssh://a b@host").is_err());
    }

    fn load(text: &str) -> Result<crate::config::Config> {
        crate::config::Config::parse(Path::new("/srv/app/slipway.toml"), text)
    }

    const BASE: &str = "project = \"p\"\n[services.api]\n";

    #[test]
    fn env_ssh_overrides_top_level_key_by_key() {
        let cfg = load(&format!(
            "{BASE}[ssh]\nidentity_file = \"keys/ci\"\nuser = \"ops\"\n\
             [environments.staging]\nhost = \"ssh://h1\"\n\
             [environments.staging.ssh]\nuser = \"deploy\"\nknown_hosts = \"kh\"\n\
             [environments.local]\n"
        ))
        .expect("valid");
        let r = cfg.environments["staging"].remote.clone().expect("remote");
        assert_eq!(r.dir, "~/.slipway/p/staging");
        assert_eq!(r.ssh.user.as_deref(), Some("deploy"));
        assert_eq!(r.ssh.identity_file, Some(PathBuf::from("/srv/app/keys/ci")));
        assert_eq!(r.ssh.known_hosts, Some(PathBuf::from("/srv/app/kh")));
        assert!(cfg.environments["local"].remote.is_none());
    }

    #[test]
    fn bad_remote_keys_point_at_their_line() {
        let e = load(&format!("{BASE}[environments.s]\nhost = \"deploy@h1\"\n"))
            .expect_err("no scheme");
        assert!(
            e.to_string()
                .contains("slipway.toml:4:8: environments.s.host"),
            "{e}"
        );
        let e = load(&format!("{BASE}[environments.s]\ndir = \"/srv\"\n")).expect_err("dir alone");
        assert!(e.to_string().contains("add `host"), "{e}");
        let e = load(&format!(
            "{BASE}[deploy]\nhost = \"ssh://h\"\n[environments.s]\n"
        ))
        .expect_err("host in deploy");
        assert!(e.to_string().contains("deploy.host"), "{e}");
        let e = load(&format!(
            "{BASE}[ssh]\nidentity = \"k\"\n[environments.s]\n"
        ))
        .expect_err("unknown key");
        assert!(e.to_string().contains("identity_file"), "{e}");
    }
}
