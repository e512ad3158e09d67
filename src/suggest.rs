//! "Did you mean": the closest known name to a misspelt one, for error
//! messages anywhere (config keys, predicate operators, service names).

/// ` (did you mean `x`?)` for the closest option within a small edit
/// distance, or an empty string when none is close.
pub fn did_you_mean<'a>(given: &str, options: impl Iterator<Item = &'a str>) -> String {
    options
        .map(|o| (strsim::levenshtein(given, o), o))
        .filter(|(d, o)| *d <= 2.max(o.len() / 3))
        .min()
        .map(|(_, o)| format!(" (did you mean `{o}`?)"))
        .unwrap_or_default()
}
