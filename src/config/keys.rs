//! How a configuration group is declared: each key once, with its type, default and doc line
//! ([`config_group!`]); the group's checks sit next to it. From that one declaration come the
//! struct, its `Default`, the list of keys (unknown keys are refused against it) and the table of
//! docs/operations.md (generated, and checked by a test).

use serde::Serialize;

/// One configuration key as the docs show it.
#[derive(Debug, Clone, Copy)]
pub struct KeyDoc {
    /// The key as written in a file (`http_addr`); its variable is `FISHAPP_HTTP_ADDR`.
    pub key: &'static str,
    /// What it does, one line for the table.
    pub meaning: &'static str,
    /// How the default is shown when its value alone says too little (`unset: on in fishapp
    /// dev, off otherwise`); otherwise it is rendered from the group's `Default`.
    pub shown_default: Option<&'static str>,
}

/// A group of keys that belong to one context (HTTP, accounts, the relay …).
pub trait ConfigGroup: Serialize + Default {
    /// Its heading in the docs.
    const TITLE: &'static str;
    /// A sentence under the heading.
    const ABOUT: &'static str;
    /// Its keys, in the order the docs list them.
    const KEYS: &'static [KeyDoc];

    /// The checks types alone cannot make (ranges, URL schemes): the key at fault and why.
    /// Written by hand next to the group, as its inherent `check`.
    fn validate(&self) -> Result<(), Invalid>;
}

/// A value that parsed but is not acceptable: the key and what is wrong.
pub type Invalid = (&'static str, String);

/// Declares a configuration group: a struct whose fields are the keys (named as in a file, so
/// that `relay_stream` reads the same in code, TOML and `FISHAPP_RELAY_STREAM`), each with its
/// type, its default and its doc line, plus `shown "…"` where the default needs words. The
/// group writes its own checks as an inherent `fn check(&self) -> Result<(), Invalid>`.
macro_rules! config_group {
    (
        $(#[$group_attr:meta])*
        pub struct $name:ident {
            title: $title:literal,
            about: $about:literal,
            $(
                $(#[$field_attr:meta])*
                $key:ident : $ty:ty = $default:expr, $meaning:literal $(, shown $shown:literal)? ;
            )*
        }
    ) => {
        $(#[$group_attr])*
        #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(default)]
        pub struct $name {
            $(
                #[doc = $meaning]
                $(#[$field_attr])*
                pub $key: $ty,
            )*
        }

        impl Default for $name {
            fn default() -> Self {
                Self { $($key: $default,)* }
            }
        }

        impl $crate::config::keys::ConfigGroup for $name {
            const TITLE: &'static str = $title;
            const ABOUT: &'static str = $about;
            const KEYS: &'static [$crate::config::keys::KeyDoc] = &[
                $(
                    $crate::config::keys::KeyDoc {
                        key: stringify!($key),
                        meaning: $meaning,
                        shown_default: $crate::config::keys::config_group!(@shown $($shown)?),
                    },
                )*
            ];

            fn validate(&self) -> Result<(), $crate::config::keys::Invalid> {
                self.check()
            }
        }
    };
    (@shown) => { None };
    (@shown $shown:literal) => { Some($shown) };
}
pub(crate) use config_group;

/// The default of `key` in `group` as the docs show it: its value in backticks (sizes and long
/// durations also in words), `unset` for an absent optional value, `(empty)` for an empty one.
pub fn shown_default(group: &toml::Table, doc: &KeyDoc) -> String {
    if let Some(shown) = doc.shown_default {
        return shown.to_owned();
    }
    let Some(value) = group.get(doc.key) else {
        return "unset".to_owned();
    };
    match value {
        toml::Value::String(s) if s.is_empty() => "(empty)".to_owned(),
        toml::Value::String(s) => format!("`{s}`"),
        toml::Value::Array(items) if items.is_empty() => "(empty)".to_owned(),
        toml::Value::Array(items) => {
            let items: Vec<String> = items
                .iter()
                .map(|item| match item {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            format!("`{}`", items.join(","))
        }
        toml::Value::Integer(n) => format!("`{n}`{}", in_words(doc.key, *n)),
        other => format!("`{other}`"),
    }
}

/// `(64 MiB)` for a size in bytes, `(7 days)` for a duration in seconds: what a reader would
/// otherwise work out.
fn in_words(key: &str, n: i64) -> String {
    const MIB: i64 = 1024 * 1024;
    const DAY: i64 = 24 * 3_600;
    let plural = |n: i64, unit: &str| {
        if n == 1 {
            format!(" (1 {unit})")
        } else {
            format!(" ({n} {unit}s)")
        }
    };
    if key.ends_with("_bytes") && n >= MIB && n % MIB == 0 {
        if n % (1024 * MIB) == 0 {
            format!(" ({} GiB)", n / (1024 * MIB))
        } else {
            format!(" ({} MiB)", n / MIB)
        }
    } else if key.ends_with("_secs") && n > DAY && n % DAY == 0 {
        plural(n / DAY, "day")
    } else {
        String::new()
    }
}

/// The doc table of one group: a heading, its sentence, then one row per key.
pub fn group_table<G: ConfigGroup>() -> String {
    let defaults = toml::Table::try_from(G::default()).unwrap_or_default();
    let mut out = format!(
        "### {}\n\n{}\n\n| key (`FISHAPP_…`) | default | meaning |\n|---|---|---|\n",
        G::TITLE,
        G::ABOUT
    );
    for doc in G::KEYS {
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            doc.key.to_ascii_uppercase(),
            shown_default(&defaults, doc),
            doc.meaning
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_days_are_also_shown_in_words() {
        assert_eq!(
            in_words("http_body_limit_bytes", 64 * 1024 * 1024),
            " (64 MiB)"
        );
        assert_eq!(in_words("relay_stream_max_bytes", 1 << 30), " (1 GiB)");
        assert_eq!(in_words("relay_retention_secs", 7 * 86_400), " (7 days)");
        assert_eq!(in_words("relay_retention_secs", 86_400), "");
        assert_eq!(in_words("graphql_max_tokens", 1 << 20), "");
    }
}
