//! `hosts = { name = "ssh://…", … }`, `canary` and `max_parallel_hosts` on an
//! environment, and `hosts = [names]` on a service or a `{host}` smoke check:
//! one release spanning several hosts (see `crate::fleet`).

use std::collections::BTreeMap;
use std::path::Path;

use super::raw::RawKnobs;
use super::remote::{self, RawSsh, Remote};
use super::spanned::S;
use super::{did_you_mean, Config, Environment, Source};
use crate::error::{Error, Result};

/// An environment of several hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fleet {
    /// In name order: the lock order, and the canary comes first.
    pub hosts: Vec<FleetHost>,
    /// Hosts switched first, alone, each healthy before the rest.
    pub canary: usize,
    /// Hosts switched at once after the canary; 0 = no limit.
    pub max_parallel_hosts: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetHost {
    pub name: String,
    pub remote: Remote,
}

impl Fleet {
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.hosts.iter().map(|h| h.name.as_str())
    }
}

/// The fleet part of an environment, if it has `hosts`.
pub(super) fn build(
    src: &Source,
    dir: &Path,
    project: &str,
    env: &str,
    knobs: &RawKnobs,
    ssh_top: Option<&RawSsh>,
) -> Result<Option<Fleet>> {
    let Some(hosts) = &knobs.hosts else {
        for (key, v) in [
            ("canary", &knobs.canary),
            ("max_parallel_hosts", &knobs.max_parallel_hosts),
        ] {
            if let Some(v) = v {
                return src.err(
                    v.span(),
                    format!("environments.{env}.{key}: only for an environment with several hosts; add `hosts = {{ web-1 = \"ssh://…\" }}`"),
                );
            }
        }
        return Ok(None);
    };
    if let Some(h) = &knobs.host {
        return src.err(
            h.span(),
            format!(
                "environments.{env}: give either `host` (one host) or `hosts` (several), not both"
            ),
        );
    }
    if hosts.get_ref().is_empty() {
        return src.err(
            hosts.span(),
            format!("environments.{env}.hosts: name at least one host"),
        );
    }
    let mut out = Vec::new();
    for (name, url) in hosts.get_ref() {
        super::names::check_name("host", name.get_ref())
            .or_else(|m| src.err(name.span(), format!("environments.{env}.hosts: {m}")))?;
        let remote = remote::build(
            src,
            dir,
            project,
            env,
            Some(url),
            knobs.dir.as_ref(),
            ssh_top,
            knobs.ssh.as_ref(),
        )?
        .ok_or_else(|| Error::Usage("unreachable: a host without a URL".into()))?;
        out.push(FleetHost {
            name: name.get_ref().clone(),
            remote,
        });
    }
    let count = |v: &Option<S<i64>>, key: &str, max: usize| -> Result<usize> {
        match v {
            Some(n) if *n.get_ref() < 0 || *n.get_ref() as usize > max => src.err(
                n.span(),
                format!(
                    "environments.{env}.{key}: must be between 0 and {max} (the number of hosts)"
                ),
            ),
            Some(n) => Ok(*n.get_ref() as usize),
            None => Ok(0),
        }
    };
    let n = out.len();
    Ok(Some(Fleet {
        canary: count(&knobs.canary, "canary", n)?,
        max_parallel_hosts: count(&knobs.max_parallel_hosts, "max_parallel_hosts", n)?,
        hosts: out,
    }))
}

/// `hosts = [names]` on `what` (a service or a smoke check): each name is a
/// host of some environment, and in every environment with several hosts
/// at least one of them is there (else the service would run nowhere).
pub(super) fn host_list(
    src: &Source,
    what: &str,
    list: Option<&S<Vec<S<String>>>>,
    environments: &BTreeMap<String, Environment>,
) -> Result<Vec<String>> {
    let Some(list) = list else {
        return Ok(Vec::new());
    };
    let fleets: Vec<(&String, &Fleet)> = environments
        .iter()
        .filter_map(|(n, e)| e.fleet.as_ref().map(|f| (n, f)))
        .collect();
    if fleets.is_empty() {
        return src.err(
            list.span(),
            format!("{what}.hosts: no environment has several hosts; add `hosts = {{ name = \"ssh://…\" }}` to one"),
        );
    }
    if list.get_ref().is_empty() {
        return src.err(
            list.span(),
            format!("{what}.hosts: name at least one host, or leave `hosts` out (every host)"),
        );
    }
    for name in list.get_ref() {
        let known = fleets
            .iter()
            .any(|(_, f)| f.names().any(|h| h == name.get_ref()));
        if !known {
            let all: Vec<&str> = fleets.iter().flat_map(|(_, f)| f.names()).collect();
            return src.err(
                name.span(),
                format!(
                    "{what}.hosts: `{}` is not a host of any environment{}",
                    name.get_ref(),
                    did_you_mean(name.get_ref(), all.into_iter())
                ),
            );
        }
    }
    for (env, fleet) in fleets {
        if !list
            .get_ref()
            .iter()
            .any(|n| fleet.names().any(|h| h == n.get_ref()))
        {
            return src.err(
                list.span(),
                format!("{what}.hosts: none of these is a host of environments.{env}, so it would run nowhere there"),
            );
        }
    }
    Ok(list.get_ref().iter().map(|n| n.get_ref().clone()).collect())
}

/// The config as one host of a fleet runs it (`--fleet-host`): its services,
/// the `{host}` checks meant for it (the coordinator runs the rest once), no
/// notifications (the coordinator sends them), `{host}` its address.
pub fn narrow_to_host(cfg: &mut Config, env: &mut Environment, host: &str) -> Result<()> {
    let Some(fleet) = env.fleet.take() else {
        return Err(Error::Usage(format!(
            "--fleet-host: environments.{} has no `hosts`",
            env.name
        )));
    };
    let Some(me) = fleet.hosts.iter().find(|h| h.name == host) else {
        return Err(Error::Usage(format!(
            "--fleet-host: `{host}` is not a host of environments.{}",
            env.name
        )));
    };
    env.host_address = Some(me.remote.host.clone());
    cfg.services.retain(|_, s| on_host(&s.hosts, host));
    cfg.smoke
        .retain(|c| c.uses("{host}") && on_host(&c.hosts, host));
    let services = &cfg.services;
    cfg.pre_traffic.retain(|c| {
        c.pre_traffic
            .as_ref()
            .is_some_and(|s| services.contains_key(s))
    });
    cfg.notify.channels.clear();
    Ok(())
}

/// The checks the coordinator runs once, after every host passed its own.
pub fn environment_checks(cfg: &Config) -> Vec<super::SmokeCheck> {
    cfg.smoke
        .iter()
        .filter(|c| !c.uses("{host}"))
        .cloned()
        .collect()
}

/// Whether something with `hosts` (empty = every host) runs on `host`.
pub fn on_host(hosts: &[String], host: &str) -> bool {
    hosts.is_empty() || hosts.iter().any(|h| h == host)
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::path::Path;

    fn load(text: &str) -> crate::error::Result<Config> {
        Config::parse(Path::new("/srv/app/slipway.toml"), text)
    }

    const FLEET: &str = "project = \"p\"\n\
        [environments.prod]\n\
        hosts = { web-2 = \"ssh://deploy@10.0.0.12:2222\", web-1 = \"ssh://10.0.0.11\", ai-1 = \"ssh://10.0.0.13\" }\n\
        canary = 1\n";

    #[test]
    fn hosts_in_name_order_with_services_placed() {
        let cfg = load(&format!(
            "{FLEET}[services.api]\nhosts = [\"web-1\", \"web-2\"]\n[services.ai]\nhosts = [\"ai-1\"]\n[services.web]\n"
        ))
        .expect("valid");
        let f = cfg.environments["prod"].fleet.clone().expect("fleet");
        assert_eq!(f.names().collect::<Vec<_>>(), ["ai-1", "web-1", "web-2"]);
        assert_eq!((f.canary, f.max_parallel_hosts), (1, 0));
        assert_eq!(f.hosts[2].remote.port, Some(2222));
        assert_eq!(f.hosts[0].remote.dir, "~/.slipway/p/prod");
        assert_eq!(cfg.services["api"].hosts, ["web-1", "web-2"]);
        assert!(cfg.services["web"].hosts.is_empty());
    }

    #[test]
    fn bad_fleet_keys_point_at_their_line() {
        let e = load(&format!("{FLEET}[services.api]\nhosts = [\"web-3\"]\n"))
            .expect_err("unknown host");
        assert!(
            e.to_string()
                .contains("slipway.toml:6:10: services.api.hosts: `web-3` is not a host"),
            "{e}"
        );
        assert!(e.to_string().contains("did you mean"), "{e}");
        let e = load(&format!("{FLEET}max_parallel_hosts = 4\n[services.api]\n"))
            .expect_err("too many");
        assert!(
            e.to_string()
                .contains("max_parallel_hosts: must be between 0 and 3"),
            "{e}"
        );
        let e = load("project = \"p\"\n[environments.s]\nhost = \"ssh://a\"\nhosts = { b = \"ssh://b\" }\n[services.api]\n")
            .expect_err("both");
        assert!(e.to_string().contains("either `host`"), "{e}");
        let e = load("project = \"p\"\n[environments.s]\ncanary = 1\n[services.api]\n")
            .expect_err("canary alone");
        assert!(
            e.to_string()
                .contains("slipway.toml:3:10: environments.s.canary"),
            "{e}"
        );
        let e = load("project = \"p\"\n[environments.s]\nhosts = { b = \"b\" }\n[services.api]\n")
            .expect_err("url");
        assert!(e.to_string().contains("ssh://"), "{e}");
    }
}
