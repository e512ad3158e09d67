//! The JSON schema of `slipway.toml`, generated from the serde types in
//! `raw.rs` (and the tables they hold), so editors (Even Better TOML, taplo)
//! complete keys and flag typos. `docs/slipway.schema.json` is this output;
//! a unit test fails when the two drift (`SLIPWAY_WRITE_SCHEMA=1 cargo test
//! --lib schema` rewrites the file).

use super::raw::RawConfig;

/// The schema as committed: pretty JSON with a final newline.
pub fn text() -> String {
    let mut schema = schemars::schema_for!(RawConfig);
    schema.insert("title".into(), "slipway.toml".into());
    schema.insert(
        "description".into(),
        "slipway's configuration: the compose project, environments, the services it deploys, smoke checks, notifications, hooks, env file rules and metrics."
            .into(),
    );
    let mut s = serde_json::to_string_pretty(&schema).unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMITTED: &str = "docs/slipway.schema.json";

    #[test]
    fn committed_schema_matches_the_config_types() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(COMMITTED);
        let now = text();
        if std::env::var_os("SLIPWAY_WRITE_SCHEMA").is_some() {
            std::fs::write(&path, &now).expect("write schema");
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == now,
            "{COMMITTED} is not what the config types generate; run `SLIPWAY_WRITE_SCHEMA=1 cargo test --lib schema` and commit it"
        );
    }

    #[test]
    fn the_schema_knows_every_key_of_the_examples() {
        let schema: serde_json::Value = serde_json::from_str(&text()).expect("json");
        assert_eq!(schema["additionalProperties"], false);
        let known = schema["properties"].as_object().expect("properties");
        for example in [
            "examples/goodgo/slipway.toml",
            "examples/startfirst/slipway.toml",
            "examples/swarm/slipway.toml",
        ] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(example);
            let v: toml::Value =
                toml::from_str(&std::fs::read_to_string(path).expect("example")).expect("toml");
            for key in v.as_table().expect("table").keys() {
                assert!(
                    known.contains_key(key),
                    "{example}: `{key}` not in the schema"
                );
            }
        }
        let service = &schema["$defs"]["RawService"];
        assert_eq!(service["additionalProperties"], false, "{service}");
        assert!(
            service["properties"]["health"]["anyOf"].is_array()
                || service["properties"]["health"].is_object()
        );
    }
}
