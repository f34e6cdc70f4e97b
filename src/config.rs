//! Configuration: documented defaults that point at the local stack, overridden by an optional
//! TOML file, overridden by `FISHAPP_<KEY>` environment variables. Every key is listed in
//! docs/operations.md; `fishapp config` prints the effective values with secrets redacted.

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::Uncased;
use serde::{Deserialize, Deserializer, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use url::Url;

/// Prefix of every environment variable Fishapp reads.
pub const ENV_PREFIX: &str = "FISHAPP_";
/// Environment variable naming the TOML file (also `--config`); not itself a configuration key.
pub const CONFIG_FILE_ENV: &str = "FISHAPP_CONFIG";

/// What is written in place of a secret by [`Config::redacted`].
const REDACTED: &str = "REDACTED";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable, for a terminal.
    Pretty,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Where processed images are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaBackend {
    /// Files under `media_dir`, served by the API under `/media`.
    Local,
    /// A Google Cloud Storage bucket (`media_gcs_*`).
    Gcs,
}

/// How mail leaves the process (`mail_transport`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTransportKind {
    Smtp,
    Directory,
    Off,
}

/// Most GraphQL documents kept parsed: far more than any front end sends, and a bound on the
/// cache's memory (up to 4 KiB of text each, plus its parsed form).
const MAX_DOCUMENT_CACHE_ENTRIES: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP API listens on (port 0 picks a free one).
    pub http_addr: SocketAddr,
    /// Where the API serves `/metrics` (and `/healthz`) for scrapers: never on the public port.
    pub http_metrics_addr: SocketAddr,
    /// Largest request body accepted, in bytes (uploads included).
    pub http_body_limit_bytes: usize,
    /// Largest JSON of one request: a JSON body, the multipart `operations` part, a GET request's
    /// `variables`, a WebSocket message.
    pub graphql_max_json_bytes: usize,
    /// Most JSON values (numbers, strings, lists, objects …) in that JSON.
    pub graphql_max_json_values: usize,
    /// Largest GraphQL document (the query text, not the variables), in bytes.
    pub graphql_max_query_bytes: usize,
    /// Most lexical tokens in a GraphQL document.
    pub graphql_max_tokens: usize,
    /// Deepest bracket nesting in a GraphQL document.
    pub graphql_max_nesting: usize,
    /// Most selections in an operation once every fragment spread is expanded.
    pub graphql_max_selections: usize,
    /// Time budget for executing one GraphQL query or mutation over HTTP.
    pub graphql_timeout_ms: u64,
    /// How many admitted GraphQL documents (up to 4 KiB each) are kept parsed, so that a
    /// document sent again is not parsed again; 0 keeps none.
    pub graphql_document_cache_entries: usize,
    /// How long a new WebSocket may take to send `connection_init`; then it is closed (4408).
    pub graphql_ws_init_timeout_secs: u64,
    /// Subscriptions one WebSocket connection may hold open at once.
    pub graphql_max_subscriptions_per_connection: usize,
    /// Subscriptions one user may hold open at once (per API process).
    pub graphql_max_subscriptions_per_user: usize,
    /// Operations (queries, mutations and subscriptions) one WebSocket connection may run at
    /// once; more than the subscriptions per connection.
    pub graphql_ws_max_operations: usize,
    /// Serve the GraphiQL IDE at `/graphql` to browsers. Unset: on in `fishapp dev`, off in
    /// `fishapp serve`.
    pub graphql_ide: Option<bool>,
    /// Answer introspection queries (`__schema`, `__type`). Unset: on in `fishapp dev`, off in
    /// `fishapp serve`. GraphiQL's documentation and completion need it.
    pub graphql_introspection: Option<bool>,
    /// Origins a browser may call the API from; `*` allows any. In the environment: a
    /// comma-separated list.
    #[serde(deserialize_with = "list_or_comma_separated")]
    pub cors_allowed_origins: Vec<String>,
    /// How long in-flight requests may take to finish after SIGTERM/SIGINT.
    pub shutdown_grace_secs: u64,
    /// Bound on each dependency check of `/readyz`.
    pub readiness_timeout_ms: u64,

    /// Postgres; the database is created by `fishapp migrate` when missing. Secret (password).
    pub database_url: String,
    pub database_max_connections: u32,
    /// Redis (rate limits, token denylist). Secret (password).
    pub redis_url: String,
    /// NATS with JetStream (domain events, live chat). Secret (credentials).
    pub nats_url: String,

    /// Temporal frontend (gRPC).
    pub temporal_address: Url,
    pub temporal_namespace: String,
    /// Every task queue name starts with this: `<prefix>.workflows`, `<prefix>.post`, …
    pub temporal_task_queue_prefix: String,
    /// The Temporal Web UI, for links in logs and messages.
    pub temporal_ui_url: Url,

    /// Ed25519 private key (PKCS#8 PEM) that signs ID tokens. `fishapp dev` creates it when
    /// missing; the other roles refuse to start without it.
    pub jwt_private_key_file: PathBuf,
    /// The same key inline; wins over the file. Secret.
    pub jwt_private_key_pem: Option<String>,
    /// Public keys (SPKI PEM files) that still verify ID tokens during a key rotation.
    #[serde(deserialize_with = "paths_list_or_comma_separated")]
    pub jwt_previous_public_key_files: Vec<PathBuf>,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    pub id_token_ttl_secs: u64,
    pub refresh_token_ttl_secs: u64,
    /// Wrong passwords one client address may try on one account before each further try from
    /// it waits (one second, doubling up to `login_max_delay_secs`). Nobody else is slowed: the
    /// account's owner signs in as usual from their own address.
    pub login_failures_before_delay: u32,
    pub login_max_delay_secs: u64,
    /// Failed logins per client address (any account) within the window.
    pub login_max_failures_per_ip: u32,
    pub login_failure_window_secs: u64,
    /// Proxies (addresses or CIDR networks) whose `X-Forwarded-For` is believed: when the TCP
    /// peer is one, the client is the right-most address in that header that is not one. Empty
    /// (the default): the header is ignored and the peer is the client. In the environment: a
    /// comma-separated list.
    #[serde(deserialize_with = "list_or_comma_separated")]
    pub trusted_proxies: Vec<String>,
    /// Sign-ups one client address may make per hour.
    pub sign_up_max_per_ip_per_hour: u32,
    /// Password changes (attempts) one user may make per hour.
    pub password_change_max_per_hour: u32,
    /// Password hashes computed at most at once (0: one core fewer than the machine has, at least 1).
    pub password_hashing_concurrency: usize,
    /// Prefix of every Redis key Fishapp writes.
    pub redis_key_prefix: String,

    /// Where images are kept: `local` or `gcs`.
    pub media_storage: MediaBackend,
    /// Where the local object store keeps image files (served by the API under `/media`).
    pub media_dir: PathBuf,
    /// What image URLs start with: `/media` (relative to the API) by default; a CDN's address in
    /// production.
    pub media_public_base_url: String,
    /// Largest upload accepted, per file.
    pub media_max_file_bytes: u64,
    /// Most files in one request.
    pub media_max_files_per_request: usize,
    /// Images processed at most at once (0: one core fewer than the machine has, at least 1).
    pub media_processing_concurrency: usize,
    /// Images one signed-in user may upload per hour, over every entry point (avatar, a post's
    /// photos, chat photos).
    pub media_max_images_per_user_per_hour: u32,
    /// Staged uploads nothing attached are deleted once this old.
    pub media_staged_max_age_secs: u64,
    /// How often the cleanup schedule runs.
    pub media_cleanup_interval_secs: u64,
    /// The bucket (its name) when `media_storage` is `gcs`.
    pub media_gcs_bucket: String,
    /// Put before every object name, so that one bucket can serve several deployments.
    pub media_gcs_prefix: String,
    /// Another endpoint than Google's: an emulator, a private endpoint.
    pub media_gcs_endpoint: Option<String>,
    /// A service account key file (JSON); without it, Application Default Credentials.
    pub media_gcs_credentials_file: Option<PathBuf>,
    /// No credentials at all (emulators only).
    pub media_gcs_anonymous: bool,
    /// Private bucket: image URLs are V4 signed URLs valid for `media_gcs_signed_url_ttl_secs`.
    /// Otherwise the bucket is public and URLs are plain.
    pub media_gcs_signed_urls: bool,
    pub media_gcs_signed_url_ttl_secs: u64,
    /// What public image URLs start with (a CDN); the bucket's own address by default.
    pub media_gcs_public_base_url: Option<String>,

    /// The JetStream stream every event goes to.
    pub relay_stream: String,
    /// Subjects are `<prefix>.<event type>` (`fishapp.board.post.published`).
    pub relay_subject_prefix: String,
    /// Republishes of one event id within this window are dropped by JetStream.
    pub relay_duplicate_window_secs: u64,
    /// Events are kept in the stream this long.
    pub relay_stream_max_age_secs: u64,
    /// The stream's total size; past it the oldest events are discarded.
    pub relay_stream_max_bytes: i64,
    /// Largest event the stream accepts; a larger one is a failed outbox row.
    pub relay_stream_max_message_bytes: i32,
    /// Copies of the stream in a NATS cluster.
    pub relay_stream_replicas: usize,
    /// Outbox rows read and published per batch.
    pub relay_batch_size: i64,
    /// Safety-net poll of the outbox (new events normally wake the relay at once).
    pub relay_poll_interval_ms: u64,
    /// How often a standby relay tries to become the leader.
    pub relay_standby_retry_ms: u64,
    /// Longest pause between retries of a failed publish.
    pub relay_max_backoff_ms: u64,
    /// Published outbox rows are deleted once this old.
    pub relay_retention_secs: u64,
    /// How often the leader prunes published rows.
    pub relay_prune_interval_secs: u64,
    /// `/readyz` reports the relay stalled when an event has waited this long.
    pub relay_stall_threshold_secs: u64,
    /// Where `fishapp relay` serves `/healthz` and `/metrics`.
    pub relay_http_addr: SocketAddr,
    /// Where `fishapp worker` serves `/healthz` and `/metrics`.
    pub worker_http_addr: SocketAddr,

    /// How long createPost, updatePost and deletePost wait for their saga before answering
    /// with what is known (createPost: the PENDING post and its sagaId).
    pub board_saga_wait_ms: u64,
    /// Most images one post may have.
    pub board_max_images_per_post: usize,
    /// createPost calls one user may make per hour.
    pub board_max_posts_per_hour: u32,
    /// How often the lifecycle schedule closes trips whose meeting time has passed.
    pub board_close_interval_secs: u64,

    /// Most chat messages one user may send per `chat_message_window_secs` (over all rooms).
    pub chat_max_messages: u32,
    pub chat_message_window_secs: u64,

    /// How mail leaves: `smtp` (`mail_smtp_url`), `directory` (`.eml` files in `mail_dir`,
    /// development) or `off`. Unset: `directory` in `fishapp dev`, `off` otherwise.
    pub mail_transport: Option<MailTransportKind>,
    /// The SMTP server, e.g. `smtp://user:password@host:587?tls=required`. Secret.
    pub mail_smtp_url: Option<String>,
    /// The sender of every mail.
    pub mail_from: String,
    /// Where the `directory` transport writes mails.
    pub mail_dir: PathBuf,
    /// The link an email-change confirmation carries, with `{token}` where the token goes: a
    /// page of the front end that calls `confirmEmailChange`.
    pub email_change_confirm_url: String,
    /// How long an email change can be confirmed.
    pub email_change_ttl_secs: u64,
    /// Email changes one user may request per day.
    pub email_change_max_per_day: u32,

    /// Saga steps that fail for good when reached (`post.publish`, `chat.create_room`, …): for
    /// tests of the compensations only; never set it in production.
    #[serde(deserialize_with = "list_or_comma_separated")]
    pub fault_injection: Vec<String>,

    pub log_format: LogFormat,
    /// A tracing filter directive, e.g. `info` or `info,fishapp_api=debug`.
    pub log_filter: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            http_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            http_metrics_addr: SocketAddr::from(([127, 0, 0, 1], 8083)),
            http_body_limit_bytes: 64 * 1024 * 1024,
            graphql_max_json_bytes: 1024 * 1024,
            graphql_max_json_values: 10_000,
            graphql_max_query_bytes: 32 * 1024,
            graphql_max_tokens: 10_000,
            graphql_max_nesting: 64,
            graphql_max_selections: 2_000,
            graphql_document_cache_entries: 256,
            graphql_timeout_ms: 60_000,
            graphql_ws_init_timeout_secs: 10,
            graphql_max_subscriptions_per_connection: 20,
            graphql_max_subscriptions_per_user: 50,
            graphql_ws_max_operations: 32,
            graphql_ide: None,
            graphql_introspection: None,
            cors_allowed_origins: vec![
                "http://localhost:3000".to_owned(),
                "http://127.0.0.1:3000".to_owned(),
            ],
            shutdown_grace_secs: 30,
            readiness_timeout_ms: 2_000,
            database_url: "postgres://postgres@127.0.0.1:5432/fishapp".to_owned(),
            database_max_connections: 10,
            redis_url: "redis://127.0.0.1:6379".to_owned(),
            nats_url: "nats://127.0.0.1:4222".to_owned(),
            temporal_address: Url::parse("http://127.0.0.1:7233").expect("static url"),
            temporal_namespace: "default".to_owned(),
            temporal_task_queue_prefix: "fishapp".to_owned(),
            temporal_ui_url: Url::parse("http://127.0.0.1:8233").expect("static url"),
            jwt_private_key_file: PathBuf::from(".stack/data/jwt/ed25519.pem"),
            jwt_private_key_pem: None,
            jwt_previous_public_key_files: Vec::new(),
            jwt_issuer: "fishapp".to_owned(),
            jwt_audience: "fishapp".to_owned(),
            id_token_ttl_secs: 3_600,
            refresh_token_ttl_secs: 10 * 24 * 3_600,
            login_failures_before_delay: 5,
            login_max_delay_secs: 15 * 60,
            login_max_failures_per_ip: 100,
            login_failure_window_secs: 15 * 60,
            trusted_proxies: Vec::new(),
            sign_up_max_per_ip_per_hour: 20,
            password_change_max_per_hour: 10,
            password_hashing_concurrency: 0,
            redis_key_prefix: "fishapp".to_owned(),
            media_storage: MediaBackend::Local,
            media_dir: PathBuf::from(".stack/data/media"),
            media_public_base_url: "/media".to_owned(),
            media_max_file_bytes: 10 * 1024 * 1024,
            media_max_files_per_request: 5,
            media_processing_concurrency: 0,
            media_max_images_per_user_per_hour: 100,
            media_staged_max_age_secs: 24 * 3_600,
            media_cleanup_interval_secs: 3_600,
            media_gcs_bucket: String::new(),
            media_gcs_prefix: String::new(),
            media_gcs_endpoint: None,
            media_gcs_credentials_file: None,
            media_gcs_anonymous: false,
            media_gcs_signed_urls: false,
            media_gcs_signed_url_ttl_secs: 3_600,
            media_gcs_public_base_url: None,
            relay_stream: "FISHAPP".to_owned(),
            relay_subject_prefix: "fishapp".to_owned(),
            relay_duplicate_window_secs: 120,
            relay_stream_max_age_secs: 7 * 24 * 3_600,
            relay_stream_max_bytes: 1024 * 1024 * 1024,
            relay_stream_max_message_bytes: 1024 * 1024,
            relay_stream_replicas: 1,
            relay_batch_size: 500,
            relay_poll_interval_ms: 5_000,
            relay_standby_retry_ms: 1_000,
            relay_max_backoff_ms: 30_000,
            relay_retention_secs: 7 * 24 * 3_600,
            relay_prune_interval_secs: 300,
            relay_stall_threshold_secs: 60,
            relay_http_addr: SocketAddr::from(([127, 0, 0, 1], 8081)),
            worker_http_addr: SocketAddr::from(([127, 0, 0, 1], 8082)),
            board_saga_wait_ms: 10_000,
            board_max_images_per_post: 5,
            board_max_posts_per_hour: 30,
            board_close_interval_secs: 300,
            chat_max_messages: 30,
            chat_message_window_secs: 60,
            mail_transport: None,
            mail_smtp_url: None,
            mail_from: "Fishapp <no-reply@localhost>".to_owned(),
            mail_dir: PathBuf::from(".stack/data/mail"),
            email_change_confirm_url: "http://localhost:3000/confirm-email?token={token}"
                .to_owned(),
            email_change_ttl_secs: 24 * 3_600,
            email_change_max_per_day: 5,
            fault_injection: Vec::new(),
            log_format: LogFormat::Pretty,
            log_filter: "info".to_owned(),
        }
    }
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
    /// This configuration with the developer tools (GraphiQL, introspection) on unless set:
    /// what `fishapp dev` runs with.
    pub fn with_developer_tools(&self) -> Self {
        let mut config = self.clone();
        config.graphql_ide.get_or_insert(true);
        config.graphql_introspection.get_or_insert(true);
        config
            .mail_transport
            .get_or_insert(MailTransportKind::Directory);
        config
    }

    /// Defaults, then the TOML file (when given: it must exist), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_from(file, Env::prefixed(ENV_PREFIX))
    }

    fn load_from(file: Option<&Path>, env: Env) -> Result<Self, ConfigError> {
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
        let figment = figment.merge(env.ignore(&["config"]));
        let config: Config = figment.extract().map_err(|e| from_figment(&e))?;
        config.validate().map_err(|(key, message)| ConfigError {
            key: key_as_set(&figment, key),
            message,
        })?;
        Ok(config)
    }

    /// Checks what types alone cannot: URL schemes, ranges, origins.
    fn validate(&self) -> Result<(), (&'static str, String)> {
        check_url(
            "database_url",
            &self.database_url,
            &["postgres", "postgresql"],
        )?;
        check_url(
            "redis_url",
            &self.redis_url,
            &["redis", "rediss", "redis+unix", "unix"],
        )?;
        check_url("nats_url", &self.nats_url, &["nats", "tls", "ws", "wss"])?;
        check_scheme(
            "temporal_address",
            &self.temporal_address,
            &["http", "https"],
        )?;
        check_scheme("temporal_ui_url", &self.temporal_ui_url, &["http", "https"])?;
        if self.database_max_connections == 0 {
            return Err(("database_max_connections", "must be at least 1".to_owned()));
        }
        if self.http_body_limit_bytes < 1024 {
            return Err(("http_body_limit_bytes", "must be at least 1024".to_owned()));
        }
        if self.graphql_max_json_bytes > self.http_body_limit_bytes {
            return Err((
                "graphql_max_json_bytes",
                "must not be over http_body_limit_bytes".to_owned(),
            ));
        }
        // Every subscription is an operation: the connection must be able to run its
        // subscriptions and still answer a query.
        if self.graphql_ws_max_operations <= self.graphql_max_subscriptions_per_connection {
            return Err((
                "graphql_ws_max_operations",
                "must be more than graphql_max_subscriptions_per_connection".to_owned(),
            ));
        }
        // The cache sets its table aside up front: a mistyped huge value must be a message, not
        // an allocation failure at start-up.
        if self.graphql_document_cache_entries > MAX_DOCUMENT_CACHE_ENTRIES {
            return Err((
                "graphql_document_cache_entries",
                format!("must be at most {MAX_DOCUMENT_CACHE_ENTRIES} (0 keeps none)"),
            ));
        }
        if self.readiness_timeout_ms == 0 {
            return Err(("readiness_timeout_ms", "must be at least 1".to_owned()));
        }
        if self.temporal_namespace.trim().is_empty() {
            return Err(("temporal_namespace", "must not be empty".to_owned()));
        }
        let prefix = &self.temporal_task_queue_prefix;
        if prefix.is_empty() || prefix.chars().any(char::is_whitespace) {
            return Err((
                "temporal_task_queue_prefix",
                "must be non-empty and without spaces".to_owned(),
            ));
        }
        fishapp_api::client_address::TrustedProxies::parse(&self.trusted_proxies)
            .map_err(|m| ("trusted_proxies", m))?;
        for origin in &self.cors_allowed_origins {
            check_origin(origin).map_err(|m| ("cors_allowed_origins", m))?;
        }
        for (key, value) in [
            (
                "graphql_max_query_bytes",
                self.graphql_max_query_bytes as u64,
            ),
            ("graphql_max_tokens", self.graphql_max_tokens as u64),
            ("graphql_max_json_bytes", self.graphql_max_json_bytes as u64),
            (
                "graphql_max_json_values",
                self.graphql_max_json_values as u64,
            ),
            ("graphql_max_nesting", self.graphql_max_nesting as u64),
            ("graphql_max_selections", self.graphql_max_selections as u64),
            ("graphql_timeout_ms", self.graphql_timeout_ms),
            (
                "graphql_ws_init_timeout_secs",
                self.graphql_ws_init_timeout_secs,
            ),
            (
                "graphql_max_subscriptions_per_connection",
                self.graphql_max_subscriptions_per_connection as u64,
            ),
            (
                "graphql_max_subscriptions_per_user",
                self.graphql_max_subscriptions_per_user as u64,
            ),
            ("id_token_ttl_secs", self.id_token_ttl_secs),
            ("refresh_token_ttl_secs", self.refresh_token_ttl_secs),
            ("login_failure_window_secs", self.login_failure_window_secs),
            (
                "login_failures_before_delay",
                self.login_failures_before_delay.into(),
            ),
            ("login_max_delay_secs", self.login_max_delay_secs),
            (
                "media_max_images_per_user_per_hour",
                self.media_max_images_per_user_per_hour.into(),
            ),
            (
                "login_max_failures_per_ip",
                self.login_max_failures_per_ip.into(),
            ),
        ] {
            if value == 0 {
                return Err((key, "must be at least 1".to_owned()));
            }
        }
        for (key, value) in [
            ("jwt_issuer", &self.jwt_issuer),
            ("jwt_audience", &self.jwt_audience),
            ("redis_key_prefix", &self.redis_key_prefix),
        ] {
            if value.trim().is_empty() {
                return Err((key, "must not be empty".to_owned()));
            }
        }
        if self.media_storage == MediaBackend::Gcs && self.media_gcs_bucket.trim().is_empty() {
            return Err((
                "media_gcs_bucket",
                "must name a bucket when media_storage is gcs".to_owned(),
            ));
        }
        // V4 signed URLs live at most seven days.
        if !(1..=7 * 24 * 3_600).contains(&self.media_gcs_signed_url_ttl_secs) {
            return Err((
                "media_gcs_signed_url_ttl_secs",
                "must be between 1 and 604800 (seven days)".to_owned(),
            ));
        }
        if self.media_gcs_anonymous && self.media_gcs_signed_urls {
            return Err((
                "media_gcs_signed_urls",
                "anonymous credentials cannot sign URLs".to_owned(),
            ));
        }
        self.validate_mail()?;
        self.validate_relay()?;
        tracing_subscriber::EnvFilter::try_new(&self.log_filter)
            .map_err(|e| ("log_filter", e.to_string()))?;
        Ok(())
    }

    fn validate_mail(&self) -> Result<(), (&'static str, String)> {
        if self.mail_transport == Some(MailTransportKind::Smtp) {
            let url = self.mail_smtp_url.as_deref().unwrap_or_default();
            check_url("mail_smtp_url", url, &["smtp", "smtps"])?;
        }
        if !self.email_change_confirm_url.contains("{token}") {
            return Err((
                "email_change_confirm_url",
                "must contain {token}, where the confirmation token goes".to_owned(),
            ));
        }
        for (key, value) in [
            ("email_change_ttl_secs", self.email_change_ttl_secs),
            (
                "email_change_max_per_day",
                self.email_change_max_per_day.into(),
            ),
        ] {
            if value == 0 {
                return Err((key, "must be at least 1".to_owned()));
            }
        }
        Ok(())
    }

    fn validate_relay(&self) -> Result<(), (&'static str, String)> {
        let name = &self.relay_stream;
        if name.is_empty()
            || name
                .chars()
                .any(|c| c.is_whitespace() || ".*>/\\".contains(c))
        {
            return Err((
                "relay_stream",
                "must be non-empty, without spaces, '.', '*', '>', '/' or '\\'".to_owned(),
            ));
        }
        let prefix = &self.relay_subject_prefix;
        if prefix.split('.').any(|token| {
            token.is_empty()
                || token
                    .chars()
                    .any(|c| c.is_whitespace() || c == '*' || c == '>')
        }) {
            return Err((
                "relay_subject_prefix",
                "must be dot-separated non-empty tokens without spaces or wildcards".to_owned(),
            ));
        }
        // The JetStream client allows this many acknowledgements in flight; a batch's first
        // wave may be all of it.
        if !(1..=5_000).contains(&self.relay_batch_size) {
            return Err(("relay_batch_size", "must be between 1 and 5000".to_owned()));
        }
        for (key, value) in [
            (
                "relay_duplicate_window_secs",
                self.relay_duplicate_window_secs,
            ),
            ("relay_stream_max_age_secs", self.relay_stream_max_age_secs),
            ("relay_poll_interval_ms", self.relay_poll_interval_ms),
            ("relay_standby_retry_ms", self.relay_standby_retry_ms),
            ("relay_max_backoff_ms", self.relay_max_backoff_ms),
            ("relay_prune_interval_secs", self.relay_prune_interval_secs),
            (
                "relay_stall_threshold_secs",
                self.relay_stall_threshold_secs,
            ),
            ("relay_stream_replicas", self.relay_stream_replicas as u64),
        ] {
            if value == 0 {
                return Err((key, "must be at least 1".to_owned()));
            }
        }
        if self.relay_stream_max_bytes < 1 || self.relay_stream_max_message_bytes < 1 {
            return Err((
                "relay_stream_max_bytes",
                "the stream's limits must be positive".to_owned(),
            ));
        }
        // A compensation decides from the outbox whether its event was already published.
        if self.relay_retention_secs < 24 * 3_600
            || self.relay_retention_secs < self.relay_duplicate_window_secs
        {
            return Err((
                "relay_retention_secs",
                "must be at least a day and at least the duplicate window".to_owned(),
            ));
        }
        Ok(())
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }

    pub fn readiness_timeout(&self) -> Duration {
        Duration::from_millis(self.readiness_timeout_ms)
    }

    /// A copy safe to print or log: passwords in URLs are replaced.
    pub fn redacted(&self) -> Config {
        Config {
            database_url: redact_url(&self.database_url),
            redis_url: redact_url(&self.redis_url),
            nats_url: redact_url(&self.nats_url),
            jwt_private_key_pem: self
                .jwt_private_key_pem
                .as_ref()
                .map(|_| REDACTED.to_owned()),
            mail_smtp_url: self.mail_smtp_url.as_deref().map(redact_url),
            ..self.clone()
        }
    }

    /// The effective configuration as TOML, secrets redacted: what `fishapp config` prints.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string(&self.redacted()).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }
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

fn check_url(
    key: &'static str,
    value: &str,
    schemes: &[&str],
) -> Result<Url, (&'static str, String)> {
    let url = Url::parse(value).map_err(|e| (key, format!("not a URL ({e})")))?;
    check_scheme(key, &url, schemes)?;
    Ok(url)
}

fn check_scheme(
    key: &'static str,
    url: &Url,
    schemes: &[&str],
) -> Result<(), (&'static str, String)> {
    if schemes.contains(&url.scheme()) {
        Ok(())
    } else {
        Err((
            key,
            format!(
                "scheme {:?} is not one of {}",
                url.scheme(),
                schemes.join(", ")
            ),
        ))
    }
}

fn check_origin(origin: &str) -> Result<(), String> {
    if origin == "*" {
        return Ok(());
    }
    let url = Url::parse(origin).map_err(|e| format!("{origin:?} is not an origin ({e})"))?;
    let bare = matches!(url.scheme(), "http" | "https")
        && url.host().is_some()
        && url.path() == "/"
        && !origin.ends_with('/')
        && url.query().is_none();
    if bare {
        Ok(())
    } else {
        Err(format!(
            "{origin:?} is not an origin (scheme://host[:port], no path)"
        ))
    }
}

/// A URL with its credentials replaced: the password, or — for a URL that carries a token in
/// the user part (`nats://s3cr3t-token@nats:4222`) — the user part itself.
fn redact_url(value: &str) -> String {
    match Url::parse(value) {
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

fn paths_list_or_comma_separated<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Vec<PathBuf>, D::Error> {
    Ok(list_or_comma_separated(d)?
        .into_iter()
        .map(PathBuf::from)
        .collect())
}

fn list_or_comma_separated<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
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
        assert_eq!(config.temporal_address.as_str(), "http://127.0.0.1:7233/");
    }

    #[test]
    fn file_values_override_defaults() {
        let config = load_with_file(Some(
            "database_max_connections = 3\nlog_format = \"json\"\n",
        ))
        .expect("valid file");
        assert_eq!(config.database_max_connections, 3);
        assert_eq!(config.log_format, LogFormat::Json);
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
    fn a_huge_document_cache_is_refused_by_name() {
        let error =
            load_with_file(Some("graphql_document_cache_entries = 1000000000000\n")).unwrap_err();
        assert!(
            error.key.starts_with("graphql_document_cache_entries"),
            "{error}"
        );
        assert!(error.message.contains("at most 10000"), "{error}");
        let off = load_with_file(Some("graphql_document_cache_entries = 0\n")).expect("valid");
        assert_eq!(off.graphql_document_cache_entries, 0);
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
        let config = Config {
            database_url: "postgres://app:s3cret@db:5432/fishapp".to_owned(),
            redis_url: "redis://:hunter2@cache:6379".to_owned(),
            nats_url: "nats://t0ken-value@nats:4222".to_owned(),
            ..Config::default()
        };
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
            config.cors_allowed_origins,
            ["https://a.example", "https://b.example"]
        );
    }
}
