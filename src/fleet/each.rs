//! Commands that run on every host of a fleet and are shown together:
//! `status` and `history` (merged, `host` on each entry in `--json`), and
//! `recover`, which finishes or undoes each host's run and then brings every
//! host to one release.

use std::collections::BTreeMap;

use futures_util::future::join_all;
use serde_json::{json, Value};

use super::agent::Agent;
use super::plan;
use crate::config::fleet::Fleet;
use crate::error::Result;
use crate::settings::Settings;

/// This command on every host; `(host, exit code, stdout)` in name order.
async fn on_every_host(
    s: &Settings,
    fleet: &Fleet,
    with_env_file: bool,
    args: &[String],
) -> Result<Vec<(String, Option<i32>, String)>> {
    let mut agents = super::start_with(s, fleet, with_env_file, None, &[], args).await?;
    let ends = join_all(agents.iter_mut().map(Agent::end)).await;
    Ok(agents
        .iter()
        .zip(ends)
        .map(|(a, (code, _))| {
            let out = a.stdout.lock().map(|o| o.clone()).unwrap_or_default();
            (a.name.clone(), code, out)
        })
        .collect())
}

fn own_args(json: bool) -> Vec<String> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut args = crate::remote::agent::forward_args(&argv);
    if json && !args.iter().any(|a| a == "--json") {
        args.push("--json".into());
    }
    args
}

fn worst(codes: impl IntoIterator<Item = Option<i32>>) -> u8 {
    codes
        .into_iter()
        .map(|c| c.map_or(3, |c| c.clamp(0, 254) as u8))
        .max()
        .unwrap_or(0)
}

/// `status`, `history` and the other commands: run on every host, shown
/// per host (status, others) or merged (history, and `--json`).
pub async fn show(s: &Settings, fleet: &Fleet, with_env_file: bool, history: bool) -> Result<u8> {
    let json_wanted = s.out.json || history;
    let runs = on_every_host(s, fleet, with_env_file, &own_args(json_wanted)).await?;
    let code = worst(runs.iter().map(|r| r.1));
    if history {
        let merged = merge_history(&parsed(&runs));
        if s.out.json {
            s.out.json(&merged);
        } else {
            print_history(&merged);
        }
    } else if s.out.json {
        s.out.json(&merge_docs(&s.env.name, &parsed(&runs)));
    } else {
        for (host, c, out) in &runs {
            let state = match c {
                Some(_) => String::new(),
                None => "  (lost the connection)".into(),
            };
            println!("── {host}{state}");
            print!("{out}");
        }
    }
    Ok(code)
}

fn parsed(runs: &[(String, Option<i32>, String)]) -> Vec<(String, Value)> {
    runs.iter()
        .map(|(h, _, out)| {
            (
                h.clone(),
                serde_json::from_str(out.trim()).unwrap_or(Value::Null),
            )
        })
        .collect()
}

/// Every host's document under `hosts`, and their `services` in one list
/// with `host` on each.
pub fn merge_docs(env: &str, docs: &[(String, Value)]) -> Value {
    let mut services = Vec::new();
    for (host, doc) in docs {
        // A host's `services` maps a name to what runs; here one list.
        let entries: Vec<(Option<&String>, &Value)> = match doc.get("services") {
            Some(Value::Object(m)) => m.iter().map(|(k, v)| (Some(k), v)).collect(),
            Some(Value::Array(a)) => a.iter().map(|v| (None, v)).collect(),
            _ => Vec::new(),
        };
        for (name, svc) in entries {
            let mut svc = svc.clone();
            if let Some(o) = svc.as_object_mut() {
                if let Some(n) = name {
                    o.insert("service".into(), json!(n));
                }
                o.insert("host".into(), json!(host));
            }
            services.push(svc);
        }
    }
    let hosts: serde_json::Map<String, Value> =
        docs.iter().map(|(h, d)| (h.clone(), d.clone())).collect();
    json!({ "env": env, "services": services, "hosts": hosts })
}

/// One entry per release ID, newest first, with each host's status; the
/// release's status is the first host's that did not succeed (named in the
/// reason), so a release that failed anywhere never reads as succeeded.
pub fn merge_history(docs: &[(String, Value)]) -> Vec<Value> {
    let mut by_id: BTreeMap<i64, Vec<(&str, &Value)>> = BTreeMap::new();
    for (host, doc) in docs {
        for r in doc.as_array().into_iter().flatten() {
            if let Some(id) = r.get("id").and_then(Value::as_i64) {
                by_id.entry(id).or_default().push((host.as_str(), r));
            }
        }
    }
    by_id
        .into_iter()
        .rev()
        .map(|(id, hosts)| {
            let first = hosts[0].1;
            let failing = hosts
                .iter()
                .find(|(_, r)| r.get("status").and_then(Value::as_str) != Some("succeeded"));
            let (status, reason) = match failing {
                Some((h, r)) => (
                    r.get("status").cloned().unwrap_or(Value::Null),
                    r.get("reason")
                        .and_then(Value::as_str)
                        .map(|why| json!(format!("{h}: {why}")))
                        .unwrap_or(Value::Null),
                ),
                None => (json!("succeeded"), first.get("reason").cloned().unwrap_or(Value::Null)),
            };
            let per_host: serde_json::Map<String, Value> = hosts
                .iter()
                .map(|(h, r)| {
                    (
                        h.to_string(),
                        json!({ "status": r.get("status"), "reason": r.get("reason"), "services": r.get("services") }),
                    )
                })
                .collect();
            json!({
                "id": id,
                "kind": first.get("kind"),
                "tag": first.get("tag"),
                "status": status,
                "started_at": first.get("started_at"),
                "reason": reason,
                "hosts": per_host,
            })
        })
        .collect()
}

fn print_history(merged: &[Value]) {
    if merged.is_empty() {
        println!("no releases yet");
        return;
    }
    println!(
        "{:>4}  {:<8}  {:<16}  {:<11}  {:<24}  reason",
        "id", "kind", "tag", "status", "hosts"
    );
    let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("-").to_string();
    for r in merged {
        let hosts = r
            .get("hosts")
            .and_then(Value::as_object)
            .map(|h| h.keys().cloned().collect::<Vec<_>>().join(","))
            .unwrap_or_default();
        println!(
            "{:>4}  {:<8}  {:<16}  {:<11}  {:<24}  {}",
            r.get("id").and_then(Value::as_i64).unwrap_or(0),
            text(r.get("kind")),
            text(r.get("tag")),
            text(r.get("status")),
            hosts,
            r.get("reason").and_then(Value::as_str).unwrap_or("")
        );
    }
}

/// `recover`: each host finishes or undoes its own run; then every host is
/// brought to the newest release that succeeded on all of them.
pub async fn recover(s: &Settings, fleet: &Fleet) -> Result<u8> {
    let runs = on_every_host(s, fleet, true, &own_args(false)).await?;
    for (host, code, out) in &runs {
        println!(
            "── {host}: recover {}",
            code.map_or("lost".into(), |c| format!("exit {c}"))
        );
        print!("{out}");
    }
    let mut code = worst(runs.iter().map(|r| r.1));
    let histories = on_every_host(s, fleet, false, &["history".into(), "--json".into()]).await?;
    let mut succeeded: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut live: BTreeMap<String, Option<i64>> = BTreeMap::new();
    for (host, doc) in parsed(&histories) {
        let ids: Vec<i64> = doc
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r.get("status").and_then(Value::as_str) == Some("succeeded"))
            .filter_map(|r| r.get("id").and_then(Value::as_i64))
            .collect();
        live.insert(host.clone(), ids.iter().copied().max());
        succeeded.insert(host, ids);
    }
    let Some(target) = plan::common_release(&succeeded) else {
        s.out
            .line("the hosts share no succeeded release: nothing to bring together");
        return Ok(code);
    };
    let off = plan::behind_or_ahead(&live, target);
    if off.is_empty() {
        s.out.line(format!("every host runs release {target}"));
        return Ok(code);
    }
    for (h, l) in &off {
        s.out.line(format!(
            "  {h} is on release {}; bringing it to release {target}, the newest every host committed",
            l.map_or("none".into(), |l| l.to_string())
        ));
    }
    let sub = Fleet {
        hosts: fleet
            .hosts
            .iter()
            .filter(|h| off.iter().any(|(n, _)| *n == h.name))
            .cloned()
            .collect(),
        canary: 0,
        max_parallel_hosts: 0,
    };
    let back = on_every_host(
        s,
        &sub,
        true,
        &["rollback".into(), "--to".into(), target.to_string()],
    )
    .await?;
    for (host, c, out) in &back {
        println!(
            "── {host}: rollback --to {target} {}",
            c.map_or("lost".into(), |c| format!("exit {c}"))
        );
        print!("{out}");
    }
    code = code.max(worst(back.iter().map(|r| r.1)));
    if code == 0 {
        s.out.line(format!("every host runs release {target}"));
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_merges_by_release_and_names_the_failing_host() {
        let a = json!([
            { "id": 2, "kind": "deploy", "tag": "v2", "status": "succeeded", "reason": null },
            { "id": 3, "kind": "deploy", "tag": "v3", "status": "rolled_back", "reason": "host b: smoke check `x` failed" },
        ]);
        let b = json!([
            { "id": 2, "kind": "deploy", "tag": "v2", "status": "succeeded", "reason": null },
            { "id": 3, "kind": "deploy", "tag": "v3", "status": "rolled_back", "reason": "smoke check `x` failed" },
        ]);
        let m = merge_history(&[("a".into(), a), ("b".into(), b)]);
        assert_eq!(m[0]["id"], 3);
        assert_eq!(m[0]["status"], "rolled_back");
        assert_eq!(m[0]["hosts"]["b"]["status"], "rolled_back");
        assert_eq!(m[1]["status"], "succeeded");
        assert_eq!(m[1]["hosts"].as_object().map(|h| h.len()), Some(2));
    }

    #[test]
    fn status_services_carry_their_host() {
        let d = merge_docs(
            "prod",
            &[
                (
                    "a".into(),
                    json!({ "services": { "api": { "containers": [] } } }),
                ),
                (
                    "b".into(),
                    json!({ "services": { "ai": { "containers": [] } } }),
                ),
            ],
        );
        assert_eq!(d["services"][1]["host"], "b");
        assert_eq!(d["services"][1]["service"], "ai");
        assert_eq!(d["hosts"]["a"]["services"]["api"]["containers"], json!([]));
    }
}
