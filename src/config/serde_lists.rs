//! Lists that may be written as a TOML list or, in the environment, as one comma-separated
//! string.

use serde::{Deserialize, Deserializer};
use std::path::PathBuf;

pub(super) fn paths_list_or_comma_separated<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Vec<PathBuf>, D::Error> {
    Ok(list_or_comma_separated(d)?
        .into_iter()
        .map(PathBuf::from)
        .collect())
}

pub(super) fn list_or_comma_separated<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrString {
        List(Vec<String>),
        String(String),
    }
    Ok(match ListOrString::deserialize(d)? {
        ListOrString::List(list) => list,
        ListOrString::String(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}
