//! [`S`]: a config value with where it was written, shared by the raw types
//! of every section (`raw`, `notify`, `hooks`, `env_rules`). A leaf of its
//! own so the section files and `raw`, which gathers their tables, need not
//! import each other both ways.

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};
use serde_spanned::Spanned;

/// A value with where it was written. A local type around `Spanned`, so the
/// JSON schema (docs/slipway.schema.json) can describe it as the bare value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct S<T>(Spanned<T>);

impl<T> S<T> {
    pub fn get_ref(&self) -> &T {
        self.0.get_ref()
    }
    pub fn span(&self) -> std::ops::Range<usize> {
        self.0.span()
    }
    pub fn into_inner(self) -> T {
        self.0.into_inner()
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for S<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Straight through, so toml still sees the `Spanned` it records spans for.
        Spanned::deserialize(d).map(S)
    }
}

impl<T: JsonSchema> JsonSchema for S<T> {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
}
