//! Configuration: documented defaults that point at the local stack, overridden by an optional
//! TOML file, overridden by `FISHAPP_<KEY>` environment variables.
//!
//! The keys are grouped by the context they configure, one module per group; each key is
//! declared once there with its type, default and doc line (see [`keys::config_group!`]), and
//! the group's checks sit next to it. docs/operations.md's tables are generated from the groups
//! (a test fails when they differ); `fishapp config` prints the effective values with secrets
//! redacted. Keys keep their full names inside a group (`config.relay.relay_stream`): the name
//! in code is the name in a file and, upper-cased, in the environment.

mod accounts;
mod board;
mod chat;
mod checks;
mod connections;
mod diagnostics;
mod graphql;
mod http;
pub mod keys;
mod mail;
mod media;
mod notify;
mod relay;
mod serde_lists;
mod temporal;
mod trip;

pub use accounts::Accounts;
pub use board::Board;
pub use chat::Chat;
pub use connections::Connections;
pub use diagnostics::{Diagnostics, LogFormat};
pub use graphql::Graphql;
pub use http::Http;
pub use mail::{Mail, MailTransportKind};
pub use media::{Media, MediaBackend};
pub use notify::Notify;
pub use relay::Relay;
pub use temporal::Temporal;
pub use trip::Trip;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::Uncased;
use figment::{Figment, Provider};
use keys::{ConfigGroup, Invalid, group_table};
use serde::Serialize;
use std::path::Path;

/// Prefix of every environment variable Fishapp reads.
pub const ENV_PREFIX: &str = "FISHAPP_";
/// Environment variable naming the TOML file (also `--config`); not itself a configuration key.
pub const CONFIG_FILE_ENV: &str = "FISHAPP_CONFIG";

/// What is written in place of a secret by [`Config::redacted`].
const REDACTED: &str = "REDACTED";

/// Where docs/operations.md's generated tables begin and end.
#[cfg(test)]
const DOCS_START: &str = "<!-- configuration keys: generated from src/config/, see its tests -->\n";
#[cfg(test)]
const DOCS_END: &str = "<!-- end of configuration keys -->";

/// Every group, in the order the docs list them. A new group is added here (and in
/// [`Config::keys`] and [`Config::docs_tables`], which the compiler walks you to).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Config {
    #[serde(flatten)]
    pub http: Http,
    #[serde(flatten)]
    pub graphql: Graphql,
    #[serde(flatten)]
    pub connections: Connections,
    #[serde(flatten)]
    pub temporal: Temporal,
    #[serde(flatten)]
    pub accounts: Accounts,
    #[serde(flatten)]
    pub mail: Mail,
    #[serde(flatten)]
    pub board: Board,
    #[serde(flatten)]
    pub trip: Trip,
    #[serde(flatten)]
    pub chat: Chat,
    #[serde(flatten)]
    pub media: Media,
    #[serde(flatten)]
    pub relay: Relay,
    #[serde(flatten)]
    pub notify: Notify,
    #[serde(flatten)]
    pub diagnostics: Diagnostics,
}

/// A bad configuration value: which key, where it came from, what is wrong. Displays as one
/// line that names the key the way the operator set it (`FISHAPP_HTTP_ADDR`, or the key and
/// the file).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration error: {key}: {message}")]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl Config {
    /// This configuration with the developer tools (GraphiQL, introspection, mail written to a
    /// directory) on unless set: what `fishapp dev` runs with.
    pub fn with_developer_tools(&self) -> Self {
        let mut config = self.clone();
        config.graphql.graphql_ide.get_or_insert(true);
        config.graphql.graphql_introspection.get_or_insert(true);
        config
            .mail
            .mail_transport
            .get_or_insert(MailTransportKind::Directory);
        config
    }

    /// Defaults, then the TOML file (when given: it must exist), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_from(file, Env::prefixed(ENV_PREFIX).ignore(&["config"]))
    }

    /// Defaults, then the file, then `overrides` (the environment, or what a deployment file
    /// sets): one group at a time, so that an error names its key and where it was set.
    pub fn load_from(file: Option<&Path>, overrides: impl Provider) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError {
                    key: CONFIG_FILE_ENV.to_owned(),
                    message: format!("no configuration file at {}", path.display()),
                });
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        let figment = figment.merge(overrides);
        refuse_unknown_keys(&figment)?;
        let config = Config {
            http: extract(&figment)?,
            graphql: extract(&figment)?,
            connections: extract(&figment)?,
            temporal: extract(&figment)?,
            accounts: extract(&figment)?,
            mail: extract(&figment)?,
            board: extract(&figment)?,
            trip: extract(&figment)?,
            chat: extract(&figment)?,
            media: extract(&figment)?,
            relay: extract(&figment)?,
            notify: extract(&figment)?,
            diagnostics: extract(&figment)?,
        };
        config.validate().map_err(|(key, message)| ConfigError {
            key: key_as_set(&figment, key),
            message,
        })?;
        Ok(config)
    }

    /// Every group's checks, then the checks across groups.
    fn validate(&self) -> Result<(), Invalid> {
        self.http.validate()?;
        self.graphql.validate()?;
        self.connections.validate()?;
        self.temporal.validate()?;
        self.accounts.validate()?;
        self.mail.validate()?;
        self.board.validate()?;
        self.trip.validate()?;
        self.chat.validate()?;
        self.media.validate()?;
        self.relay.validate()?;
        self.notify.validate()?;
        self.diagnostics.validate()?;
        if self.graphql.graphql_max_json_bytes > self.http.http_body_limit_bytes {
            return Err((
                "graphql_max_json_bytes",
                "must not be over http_body_limit_bytes".to_owned(),
            ));
        }
        if self.board.board_review_window_secs <= self.trip.trip_completed_after_secs {
            return Err((
                "board_review_window_secs",
                "must be over trip_completed_after_secs: reviews open when a trip is COMPLETED"
                    .to_owned(),
            ));
        }
        Ok(())
    }

    /// Every key, group by group.
    pub fn keys() -> impl Iterator<Item = &'static str> {
        [
            Http::KEYS,
            Graphql::KEYS,
            Connections::KEYS,
            Temporal::KEYS,
            Accounts::KEYS,
            Mail::KEYS,
            Board::KEYS,
            Trip::KEYS,
            Chat::KEYS,
            Media::KEYS,
            Relay::KEYS,
            Notify::KEYS,
            Diagnostics::KEYS,
        ]
        .into_iter()
        .flatten()
        .map(|doc| doc.key)
    }

    /// docs/operations.md's configuration tables, one per group.
    pub fn docs_tables() -> String {
        [
            group_table::<Http>(),
            group_table::<Graphql>(),
            group_table::<Connections>(),
            group_table::<Temporal>(),
            group_table::<Accounts>(),
            group_table::<Mail>(),
            group_table::<Board>(),
            group_table::<Trip>(),
            group_table::<Chat>(),
            group_table::<Media>(),
            group_table::<Relay>(),
            group_table::<Notify>(),
            group_table::<Diagnostics>(),
        ]
        .join("\n")
    }

    /// A copy safe to print or log: passwords in URLs are replaced.
    pub fn redacted(&self) -> Config {
        let mut config = self.clone();
        let connections = &mut config.connections;
        connections.database_url = redact_url(&connections.database_url);
        connections.redis_url = redact_url(&connections.redis_url);
        connections.nats_url = redact_url(&connections.nats_url);
        if config.accounts.jwt_private_key_pem.is_some() {
            config.accounts.jwt_private_key_pem = Some(REDACTED.to_owned());
        }
        config.mail.mail_smtp_url = config.mail.mail_smtp_url.as_deref().map(redact_url);
        config
    }

    /// The effective configuration as TOML, secrets redacted: what `fishapp config` prints.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string(&self.redacted()).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }
}

/// One group's keys (a group ignores the others').
fn extract<G: serde::de::DeserializeOwned>(figment: &Figment) -> Result<G, ConfigError> {
    figment.extract().map_err(|e| from_figment(&e))
}

/// A key no group declares is an error, wherever it was set: a typo never passes silently.
fn refuse_unknown_keys(figment: &Figment) -> Result<(), ConfigError> {
    let data = figment.data().map_err(|e| from_figment(&e))?;
    let known: std::collections::HashSet<&str> = Config::keys().collect();
    for dict in data.values() {
        if let Some(key) = dict.keys().find(|key| !known.contains(key.as_str())) {
            return Err(ConfigError {
                key: key_as_set(figment, key),
                message: "unknown field: no such configuration key (docs/operations.md lists \
                          every key)"
                    .to_owned(),
            });
        }
    }
    Ok(())
}

fn from_figment(error: &figment::Error) -> ConfigError {
    // figment collects every error; the first one is the one to fix first.
    let error = error
        .clone()
        .into_iter()
        .next()
        .unwrap_or_else(|| error.clone());
    let key = match &error.kind {
        figment::error::Kind::UnknownField(field, _) => field.clone(),
        _ => error.path.join("."),
    };
    let origin = error.metadata.as_ref().map(describe_source);
    let key = match origin {
        Some(Source::Env) => env_name(&key),
        Some(Source::File(path)) => format!("{key} (in {path})"),
        None => key,
    };
    ConfigError {
        key,
        message: error.kind.to_string(),
    }
}

enum Source {
    Env,
    File(String),
}

fn describe_source(metadata: &figment::Metadata) -> Source {
    match &metadata.source {
        Some(figment::Source::File(path)) => Source::File(path.display().to_string()),
        _ if metadata.name.contains("environment") => Source::Env,
        _ => Source::File(metadata.name.to_string()),
    }
}

/// Names `key` the way it was set: as its environment variable when the environment set it, as
/// the key and its file when a file did, as the bare key for a default.
fn key_as_set(figment: &Figment, key: &str) -> String {
    match figment.find_metadata(key).map(describe_source) {
        Some(Source::Env) => env_name(key),
        Some(Source::File(path)) if !path.contains("Serialized") && !path.contains("default") => {
            format!("{key} (in {path})")
        }
        _ => key.to_owned(),
    }
}

fn env_name(key: &str) -> String {
    format!(
        "{ENV_PREFIX}{}",
        Uncased::from(key).as_str().to_ascii_uppercase()
    )
}

/// A URL with its credentials replaced: the password, or — for a URL that carries a token in
/// the user part (`nats://s3cr3t-token@nats:4222`) — the user part itself.
fn redact_url(value: &str) -> String {
    match url::Url::parse(value) {
        // Setting either cannot fail on a URL that already carries credentials.
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some(REDACTED));
            url.to_string()
        }
        Ok(mut url) if !url.username().is_empty() => {
            let _ = url.set_username(REDACTED);
            url.to_string()
        }
        Ok(_) => value.to_owned(),
        // Not a URL at all (validation rejects it); print nothing of it.
        Err(_) => REDACTED.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loads with an optional file and an environment prefix nothing sets: the process
    /// environment is shared by tests running in parallel, so env precedence is covered by the
    /// black-box CLI tests, which own their child's environment.
    fn load_with_file(file: Option<&str>) -> Result<Config, ConfigError> {
        let dir = std::env::temp_dir().join(format!(
            "fishapp-config-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("fishapp.toml");
        if let Some(text) = file {
            std::fs::write(&path, text).expect("write config");
        }
        let env = Env::prefixed("FISHAPP_UNIT_TEST_NEVER_SET_");
        let result = Config::load_from(file.map(|_| path.as_path()), env);
        std::fs::remove_dir_all(&dir).ok();
        result
    }

    #[test]
    fn defaults_point_at_the_local_stack_and_validate() {
        let config = load_with_file(None).expect("defaults are valid");
        assert_eq!(config, Config::default());
        assert_eq!(
            config.temporal.temporal_address.as_str(),
            "http://127.0.0.1:7233/"
        );
    }

    #[test]
    fn file_values_override_defaults() {
        let config = load_with_file(Some(
            "database_max_connections = 3\nlog_format = \"json\"\n",
        ))
        .expect("valid file");
        assert_eq!(config.connections.database_max_connections, 3);
        assert_eq!(config.diagnostics.log_format, LogFormat::Json);
    }

    #[test]
    fn a_bad_type_in_the_file_names_key_and_file() {
        let error = load_with_file(Some("database_max_connections = \"many\"\n")).unwrap_err();
        assert!(
            error.key.starts_with("database_max_connections (in "),
            "{error}"
        );
        assert!(error.key.contains("fishapp.toml"), "{error}");
    }

    #[test]
    fn an_unknown_key_in_the_file_is_named() {
        let error = load_with_file(Some("databse_url = \"x\"\n")).unwrap_err();
        assert!(error.key.starts_with("databse_url"), "{error}");
        assert!(error.message.contains("unknown field"), "{error}");
    }

    #[test]
    fn semantic_errors_name_the_key() {
        let error = load_with_file(Some("redis_url = \"http://x\"\n")).unwrap_err();
        assert!(error.key.starts_with("redis_url (in "), "{error}");
        let error = load_with_file(Some("cors_allowed_origins = [\"http://a.example/path\"]\n"))
            .unwrap_err();
        assert!(error.key.starts_with("cors_allowed_origins"), "{error}");
    }

    #[test]
    fn a_review_window_that_closes_before_trips_complete_is_refused() {
        let error = load_with_file(Some(
            "trip_completed_after_secs = 7200\nboard_review_window_secs = 3600\n",
        ))
        .unwrap_err();
        assert!(error.key.starts_with("board_review_window_secs"), "{error}");
        assert!(
            error.message.contains("trip_completed_after_secs"),
            "{error}"
        );
        let huge = load_with_file(Some("board_review_window_secs = 9223372036854775807\n"));
        assert!(huge.is_ok(), "a huge window is reviews that never close");
    }

    #[test]
    fn a_huge_document_cache_is_refused_by_name() {
        let error =
            load_with_file(Some("graphql_document_cache_entries = 1000000000000\n")).unwrap_err();
        assert!(
            error.key.starts_with("graphql_document_cache_entries"),
            "{error}"
        );
        assert!(error.message.contains("at most 10000"), "{error}");
        let off = load_with_file(Some("graphql_document_cache_entries = 0\n")).expect("valid");
        assert_eq!(off.graphql.graphql_document_cache_entries, 0);
    }

    #[test]
    fn a_missing_file_is_an_error() {
        let error = Config::load_from(
            Some(Path::new("/nonexistent/fishapp.toml")),
            Env::prefixed("FISHAPP_UNIT_TEST_NEVER_SET_"),
        )
        .unwrap_err();
        assert_eq!(error.key, CONFIG_FILE_ENV);
    }

    #[test]
    fn passwords_are_redacted() {
        let mut config = Config::default();
        config.connections.database_url = "postgres://app:s3cret@db:5432/fishapp".to_owned();
        config.connections.redis_url = "redis://:hunter2@cache:6379".to_owned();
        config.connections.nats_url = "nats://t0ken-value@nats:4222".to_owned();
        let printed = config.to_redacted_toml();
        assert!(
            !printed.contains("s3cret")
                && !printed.contains("hunter2")
                && !printed.contains("t0ken-value"),
            "{printed}"
        );
        assert!(printed.contains("nats://REDACTED@nats:4222"), "{printed}");
        assert!(
            printed.contains("postgres://app:REDACTED@db:5432/fishapp"),
            "{printed}"
        );
    }

    #[test]
    fn origins_accept_a_comma_separated_string() {
        let config = load_with_file(Some(
            "cors_allowed_origins = \"https://a.example, https://b.example\"\n",
        ))
        .expect("valid");
        assert_eq!(
            config.http.cors_allowed_origins,
            ["https://a.example", "https://b.example"]
        );
    }

    #[test]
    fn an_unknown_environment_variable_is_named_as_set() {
        let error = Config::load_from(None, Serialized::globals(toml::toml! { relay_strem = "X" }))
            .unwrap_err();
        assert!(error.key.starts_with("relay_strem"), "{error}");
    }

    #[test]
    fn every_key_is_declared_once() {
        let mut seen = std::collections::HashSet::new();
        for key in Config::keys() {
            assert!(seen.insert(key), "{key} is declared twice");
        }
        let printed = toml::Table::try_from(Config::default()).expect("defaults serialize");
        for key in printed.keys() {
            assert!(
                seen.contains(key.as_str()),
                "{key} is printed but not declared"
            );
        }
    }

    /// docs/operations.md's tables are generated from the groups; `FISHAPP_WRITE_DOCS=1`
    /// rewrites them.
    #[test]
    fn the_operations_guide_lists_every_key_as_declared() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/operations.md");
        let text = std::fs::read_to_string(&path).expect("docs/operations.md");
        let (start, end) = (
            text.find(DOCS_START).expect("the start marker") + DOCS_START.len(),
            text.find(DOCS_END).expect("the end marker"),
        );
        let generated = format!("\n{}\n", Config::docs_tables());
        if std::env::var_os("FISHAPP_WRITE_DOCS").is_some() {
            let written = format!("{}{generated}{}", &text[..start], &text[end..]);
            std::fs::write(&path, written).expect("write docs/operations.md");
            return;
        }
        assert!(
            text[start..end] == generated,
            "docs/operations.md's configuration tables differ from the keys declared in \
             src/config/: run `FISHAPP_WRITE_DOCS=1 cargo test -p fishapp --lib config` and \
             commit the result"
        );
    }
}
