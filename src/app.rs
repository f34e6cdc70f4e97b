//! Wiring: builds the dependency handles from configuration and runs each role. This is the
//! only place that knows every crate.

use crate::config::{Config, MailTransportKind, MediaBackend};
use anyhow::Context;
use axum::serve::ListenerExt;
use fishapp_api::client_address::TrustedProxies;
use fishapp_api::graphql::QueryLimits;
use fishapp_api::graphql::streams::StreamCaps;
use fishapp_api::metrics::{new_registry, probe_router};
use fishapp_api::{Dependencies, HttpSettings, Services};
use fishapp_app::account::EmailChangeSettings;
use fishapp_app::account::limits::LoginLimits;
use fishapp_app::account::tokens::{TokenKeys, generate_private_key_pem};
use fishapp_app::cache::WindowLimiter;
use fishapp_app::chat::Chat;
use fishapp_app::chat::live::{LiveChat, LiveSettings};
use fishapp_app::{
    Accounts, AuthSettings, Board, BoardLimits, BoardSettings, Calendar, CalendarSettings, Media,
    MediaSettings, Redis,
};
use fishapp_mail::{MailSettings, Mailer, Transport};
use fishapp_media::{
    DecodeLimits, Gcs, GcsCredentials, GcsSettings, GcsUrls, LocalDisk, MediaStore,
};
use fishapp_relaylog::{RelayMetrics, RelaySettings, StreamSettings};
use fishapp_store::{Database, MigrationReport};
use fishapp_temporal::{Temporal, TemporalSettings};
use fishapp_workflows::TaskQueues;
use fishapp_workflows::trip::TripTimings;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Handles on Postgres, Redis, NATS and Temporal. None of them waits for its server: each
/// connects in the background and recovers by itself, so the process starts while they are down.
pub async fn connect_dependencies(
    config: &Config,
    shutdown: &CancellationToken,
) -> anyhow::Result<Dependencies> {
    let db = database(config)?;
    let redis = Redis::new(&config.connections.redis_url).context("redis_url")?;
    let nats = fishapp_relaylog::nats::connect(&config.connections.nats_url)
        .await
        .context("nats_url")?;
    let temporal = Temporal::connect_in_background(temporal_settings(config), shutdown.clone());
    Ok(Dependencies {
        db,
        redis,
        nats,
        temporal,
        readiness_timeout: config.http.readiness_timeout(),
        relay_stall_threshold: Duration::from_secs(config.relay.relay_stall_threshold_secs),
    })
}

pub fn temporal_settings(config: &Config) -> TemporalSettings {
    TemporalSettings {
        address: config.temporal.temporal_address.clone(),
        namespace: config.temporal.temporal_namespace.clone(),
        task_queues: TaskQueues::with_prefix(&config.temporal.temporal_task_queue_prefix),
        eager_start: config.temporal.temporal_eager_start,
    }
}

/// What to do when the signing key file does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingKey {
    /// `fishapp dev`: create one (kept in the stack's data folder by default).
    Generate,
    /// Production roles: refuse to start (replicas must share one key).
    Refuse,
}

/// The ID-token keys from configuration: the inline PEM, else the key file.
pub fn token_keys(config: &Config, missing: MissingKey) -> anyhow::Result<TokenKeys> {
    let private_pem = match &config.accounts.jwt_private_key_pem {
        Some(pem) => pem.clone(),
        None => read_or_create_key(&config.accounts.jwt_private_key_file, missing)?,
    };
    let previous = config
        .accounts
        .jwt_previous_public_key_files
        .iter()
        .map(|path| {
            std::fs::read_to_string(path).with_context(|| {
                format!(
                    "jwt_previous_public_key_files: cannot read {}",
                    path.display()
                )
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    TokenKeys::new(
        &private_pem,
        &previous,
        &config.accounts.jwt_issuer,
        &config.accounts.jwt_audience,
        Duration::from_secs(config.accounts.id_token_ttl_secs),
    )
    .context("jwt signing key")
}

fn read_or_create_key(path: &std::path::Path, missing: MissingKey) -> anyhow::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(pem) => Ok(pem),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && missing == MissingKey::Generate => {
            let pem = generate_private_key_pem();
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
            }
            write_private(path, &pem).with_context(|| format!("cannot write {}", path.display()))?;
            tracing::info!(path = %path.display(), "generated a development key for signing ID tokens");
            Ok(pem)
        }
        Err(e) => Err(e).with_context(|| {
            format!(
                "no ID-token signing key at {} (FISHAPP_JWT_PRIVATE_KEY_FILE); `fishapp dev` creates one for development",
                path.display()
            )
        }),
    }
}

#[cfg(unix)]
fn write_private(path: &std::path::Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &std::path::Path, contents: &str) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

/// `fishapp keygen`: a new Ed25519 signing key written to `out` (mode 0600, never over an
/// existing file); its public key (SPKI PEM) goes to stdout, for `jwt_previous_public_key_files`
/// during a rotation. With `if_missing`, an existing file is kept and its public key printed.
pub fn keygen(out: &std::path::Path, if_missing: bool) -> anyhow::Result<()> {
    let pem = match std::fs::read_to_string(out) {
        Ok(existing) if if_missing => existing,
        Ok(_) => anyhow::bail!("{} exists; a key is never overwritten", out.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let pem = generate_private_key_pem();
            if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
            write_private(out, &pem).with_context(|| format!("cannot write {}", out.display()))?;
            pem
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", out.display())),
    };
    print!(
        "{}",
        fishapp_app::account::tokens::public_key_pem(&pem)
            .with_context(|| format!("{} is not an Ed25519 PKCS#8 key", out.display()))?
    );
    Ok(())
}

pub fn auth_settings(config: &Config, keys: TokenKeys) -> AuthSettings {
    AuthSettings {
        keys,
        refresh_token_ttl: Duration::from_secs(config.accounts.refresh_token_ttl_secs),
        login_limits: LoginLimits {
            failures_before_delay: config.accounts.login_failures_before_delay,
            max_delay: Duration::from_secs(config.accounts.login_max_delay_secs),
            max_failures_per_ip: config.accounts.login_max_failures_per_ip,
            window: Duration::from_secs(config.accounts.login_failure_window_secs),
        },
        password_hashing_concurrency: config.accounts.password_hashing_concurrency,
        password_hashing_nice: config.accounts.password_hashing_nice,
        redis_key_prefix: config.connections.redis_key_prefix.clone(),
        max_sign_ups_per_ip_per_hour: config.accounts.sign_up_max_per_ip_per_hour,
        max_password_changes_per_hour: config.accounts.password_change_max_per_hour,
        email_change: EmailChangeSettings {
            confirm_url: config.accounts.email_change_confirm_url.clone(),
            ttl: Duration::from_secs(config.accounts.email_change_ttl_secs),
            max_per_day: config.accounts.email_change_max_per_day,
        },
    }
}

/// The process's connection pool from configuration (it connects with the first use).
pub fn database(config: &Config) -> anyhow::Result<Database> {
    Database::connect_lazy_with(
        &config.connections.database_url,
        config.connections.database_max_connections,
        Duration::from_millis(config.connections.database_ping_idle_after_ms),
    )
    .context("database_url")
}

/// The mail transport from configuration (it connects with the first mail, not here).
pub fn mailer(config: &Config) -> anyhow::Result<Mailer> {
    let transport = match config.mail.mail_transport.unwrap_or(MailTransportKind::Off) {
        MailTransportKind::Smtp => Transport::Smtp {
            // Checked when the configuration was loaded.
            url: config.mail.mail_smtp_url.clone().unwrap_or_default(),
        },
        MailTransportKind::Directory => Transport::Directory(config.mail.mail_dir.clone()),
        MailTransportKind::Off => Transport::Off,
    };
    Ok(Mailer::new(&MailSettings {
        transport,
        from: config.mail.mail_from.clone(),
        timeout: Duration::from_secs(10),
    })?)
}

/// Creates the database when missing and applies pending migrations (all or none).
pub async fn migrate(config: &Config) -> anyhow::Result<MigrationReport> {
    let created =
        fishapp_store::database::create_database_if_missing(&config.connections.database_url)
            .await
            .context("could not reach Postgres to create the database")?;
    if created {
        tracing::info!("created the database");
    }
    let db = Database::connect_lazy(&config.connections.database_url, 1).context("database_url")?;
    let report = fishapp_store::migrate(db.pool())
        .await
        .context("migration failed; the database was left as it was")?;
    db.close().await;
    Ok(report)
}

/// The configured object store for images. For Google Cloud Storage this builds the clients
/// (and the URL signer) but makes no request yet.
pub async fn media_store(config: &Config) -> anyhow::Result<MediaStore> {
    Ok(match config.media.media_storage {
        MediaBackend::Local => MediaStore::Local(LocalDisk::new(
            &config.media.media_dir,
            &config.media.media_public_base_url,
        )),
        MediaBackend::Gcs => {
            let credentials = match (
                &config.media.media_gcs_credentials_file,
                config.media.media_gcs_anonymous,
            ) {
                (_, true) => GcsCredentials::Anonymous,
                (Some(file), false) => GcsCredentials::ServiceAccountKeyFile(file.clone()),
                (None, false) => GcsCredentials::ApplicationDefault,
            };
            let urls = if config.media.media_gcs_signed_urls {
                GcsUrls::Signed {
                    ttl: Duration::from_secs(config.media.media_gcs_signed_url_ttl_secs),
                }
            } else {
                GcsUrls::Public {
                    base_url: config.media.media_gcs_public_base_url.clone(),
                }
            };
            let settings = GcsSettings {
                bucket: config.media.media_gcs_bucket.clone(),
                prefix: config.media.media_gcs_prefix.clone(),
                endpoint: config.media.media_gcs_endpoint.clone(),
                credentials,
                urls,
            };
            let store = Box::pin(Gcs::connect(settings))
                .await
                .context("Google Cloud Storage")?;
            MediaStore::Gcs(Box::new(store))
        }
    })
}

/// The HTTP API, bound to its address and serving in the background.
pub struct RunningApi {
    pub addr: SocketAddr,
    /// Where its `/metrics` are served (a listener of its own: not on the public port).
    pub metrics_addr: SocketAddr,
    pub task: JoinHandle<anyhow::Result<()>>,
}

/// The HTTP knobs of the API, from `config`, with metrics registered in `metrics`.
pub fn http_settings(
    config: &Config,
    metrics: prometheus::Registry,
) -> anyhow::Result<HttpSettings> {
    Ok(HttpSettings {
        cors_allowed_origins: config.http.cors_allowed_origins.clone(),
        body_limit_bytes: config.http.http_body_limit_bytes,
        media_dir: (config.media.media_storage == MediaBackend::Local)
            .then(|| config.media.media_dir.clone()),
        query_limits: QueryLimits {
            max_bytes: config.graphql.graphql_max_query_bytes,
            max_tokens: config.graphql.graphql_max_tokens,
            max_nesting: config.graphql.graphql_max_nesting,
            max_selections: config.graphql.graphql_max_selections,
            timeout: Duration::from_millis(config.graphql.graphql_timeout_ms),
            document_cache_entries: config.graphql.graphql_document_cache_entries,
        },
        metrics,
        upload_limits: fishapp_api::graphql::body::UploadLimits {
            max_file_bytes: config.media.media_max_file_bytes,
            max_files: config.media.media_max_files_per_request,
        },
        json_limits: fishapp_api::graphql::body::JsonLimits {
            max_bytes: config.graphql.graphql_max_json_bytes,
            max_values: config.graphql.graphql_max_json_values,
        },
        graphql_ide: config.graphql.graphql_ide.unwrap_or(false),
        graphql_introspection: config.graphql.graphql_introspection.unwrap_or(false),
        // Checked when the configuration was loaded.
        trusted_proxies: TrustedProxies::parse(&config.http.trusted_proxies)
            .map_err(|reason| anyhow::anyhow!("trusted_proxies: {reason}"))?,
        websocket_init_timeout: Duration::from_secs(config.graphql.graphql_ws_init_timeout_secs),
        stream_caps: StreamCaps::new(
            config.graphql.graphql_max_subscriptions_per_connection,
            config.graphql.graphql_max_subscriptions_per_user,
        ),
        websocket_max_operations: config.graphql.graphql_ws_max_operations,
        websocket_buffers: fishapp_api::WebSocketBuffers {
            read: config.graphql.graphql_ws_read_buffer_bytes,
            write: config.graphql.graphql_ws_write_buffer_bytes,
        },
    })
}

/// Binds `http_addr` and serves until `shutdown`; then stops accepting, lets in-flight requests
/// finish for up to `shutdown_grace_secs`, and returns.
pub async fn start_api(
    config: &Config,
    deps: Dependencies,
    keys: TokenKeys,
    metrics: prometheus::Registry,
    shutdown: CancellationToken,
) -> anyhow::Result<RunningApi> {
    let settings = http_settings(config, metrics.clone())?;
    // A per-user limit named `<deployment>:<name>` in Redis.
    let limiter = |name: &str, max: u32, window: Duration| {
        let prefix = format!("{}:{name}", config.connections.redis_key_prefix);
        WindowLimiter::new(deps.redis.clone(), prefix, max, window)
    };
    let hourly = |name: &str, max: u32| limiter(name, max, Duration::from_secs(3_600));
    let calendar = Calendar::new(
        deps.db.clone(),
        keys.clone(),
        CalendarSettings {
            api_url: config.http.http_public_url.clone(),
            post_url: config.board.board_post_url.clone(),
        },
    );
    let mailer = mailer(config)?;
    let accounts = Accounts::new(
        deps.db.clone(),
        deps.redis.clone(),
        mailer.clone(),
        auth_settings(config, keys),
    )
    .await?;
    let media = Media::new(
        deps.db.clone(),
        media_store(config).await?,
        MediaSettings {
            max_file_bytes: config.media.media_max_file_bytes,
            max_files_per_request: config.media.media_max_files_per_request,
            decode_limits: DecodeLimits::default(),
            processing_concurrency: config.media.media_processing_concurrency,
        },
        hourly("images", config.media.media_max_images_per_user_per_hour),
    );
    let board = Board::new(
        deps.db.clone(),
        deps.temporal.clone(),
        media.clone(),
        BoardSettings {
            saga_wait: Duration::from_millis(config.board.board_saga_wait_ms),
            max_images_per_post: config.board.board_max_images_per_post,
            workflow_id_prefix: config.temporal.temporal_task_queue_prefix.clone(),
            trip: TripTimings {
                reminder_before_secs: config.trip.trip_reminder_before_secs,
                requests_expire_before_secs: config.trip.trip_requests_expire_before_secs,
                completed_after_secs: config.trip.trip_completed_after_secs,
            },
        },
        BoardLimits {
            creations: hourly("post-creations", config.board.board_max_posts_per_hour),
            applications: hourly("applications", config.board.board_max_applications_per_hour),
            changes: hourly("post-changes", config.board.board_max_post_changes_per_hour),
        },
    );
    let live = LiveChat::start(
        deps.nats.clone(),
        deps.db.clone(),
        LiveSettings {
            stream: config.relay.relay_stream.clone(),
            subject_prefix: config.relay.relay_subject_prefix.clone(),
        },
        &settings.metrics,
        shutdown.clone(),
    )?;
    let live_notifications = fishapp_app::notify::LiveNotifications::start(
        deps.nats.clone(),
        deps.db.clone(),
        config.relay.relay_stream.clone(),
        &config.relay.relay_subject_prefix,
        &settings.metrics,
        shutdown.clone(),
    )?;
    let chat = Chat::new(
        deps.db.clone(),
        media.clone(),
        live,
        fishapp_app::chat::presence::Presence::start(deps.db.clone(), shutdown.clone()),
        limiter(
            "chat-messages",
            config.chat.chat_max_messages,
            Duration::from_secs(config.chat.chat_message_window_secs),
        ),
    );
    let services = Services {
        accounts,
        media,
        board,
        chat,
        calendar,
        notifications: fishapp_app::Notifications::new(
            deps.db.clone(),
            live_notifications,
            fishapp_app::notify::MailChannel {
                mailer,
                requests: limiter(
                    "notification-mail",
                    config.notify.notify_mail_requests_per_day,
                    Duration::from_secs(24 * 3_600),
                ),
                confirm_url: config.notify.notify_mail_confirm_url.clone(),
                token_ttl: Duration::from_secs(config.notify.notify_mail_token_ttl_secs),
            },
        ),
    };
    let router = fishapp_api::router(deps, services, &settings)?
        .into_make_service_with_connect_info::<SocketAddr>();
    let listener = TcpListener::bind(config.http.http_addr)
        .await
        .with_context(|| format!("cannot listen on {}", config.http.http_addr))?;
    let addr = listener.local_addr()?;
    let metrics_listener = TcpListener::bind(config.http.http_metrics_addr)
        .await
        .with_context(|| format!("cannot listen on {}", config.http.http_metrics_addr))?;
    let metrics_addr = metrics_listener.local_addr()?;
    let scrapes = axum::serve(metrics_listener, probe_router(metrics))
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .into_future();
    tokio::spawn(async move {
        if let Err(e) = scrapes.await {
            tracing::error!(error = %e, "the metrics listener failed");
        }
    });
    // No Nagle: a live message is a small WebSocket frame that must leave at once, not wait for
    // the acknowledgement of the previous one.
    let listener = listener.tap_io(|socket| {
        if let Err(e) = socket.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY on a connection");
        }
    });
    let grace = config.http.shutdown_grace();
    let task = tokio::spawn(async move {
        let serve = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown.clone().cancelled_owned())
            .into_future();
        let mut serve = std::pin::pin!(serve);
        tokio::select! {
            result = &mut serve => return result.context("HTTP server failed"),
            () = shutdown.cancelled() => {}
        }
        // Draining: stop accepting (axum does), wait for in-flight requests, up to the grace.
        match tokio::time::timeout(grace, serve).await {
            Ok(result) => result.context("HTTP server failed"),
            Err(_) => {
                tracing::warn!(
                    ?grace,
                    "in-flight requests still running after the grace period; dropping them"
                );
                Ok(())
            }
        }
    });
    Ok(RunningApi {
        addr,
        metrics_addr,
        task,
    })
}

/// `fishapp serve`: the API until SIGTERM/SIGINT.
pub async fn serve(config: &Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let keys = token_keys(config, MissingKey::Refuse)?;
    let deps = connect_dependencies(config, &shutdown).await?;
    let api = start_api(config, deps, keys, new_registry(), shutdown).await?;
    if config.graphql.graphql_ide == Some(true) {
        tracing::info!(addr = %api.addr, metrics = %api.metrics_addr, "API listening; GraphiQL at http://{}/graphql", api.addr);
    } else {
        tracing::info!(addr = %api.addr, metrics = %api.metrics_addr, "API listening (GraphiQL off: graphql_ide)");
    }
    api.task.await?
}

/// The relay's settings from configuration.
pub fn relay_settings(config: &Config) -> RelaySettings {
    RelaySettings {
        database_url: config.connections.database_url.clone(),
        stream: StreamSettings {
            name: config.relay.relay_stream.clone(),
            subject_prefix: config.relay.relay_subject_prefix.clone(),
            duplicate_window: Duration::from_secs(config.relay.relay_duplicate_window_secs),
            max_age: Duration::from_secs(config.relay.relay_stream_max_age_secs),
            max_bytes: config.relay.relay_stream_max_bytes,
            max_message_bytes: config.relay.relay_stream_max_message_bytes,
            replicas: config.relay.relay_stream_replicas,
        },
        batch_size: config.relay.relay_batch_size,
        poll_interval: Duration::from_millis(config.relay.relay_poll_interval_ms),
        standby_retry: Duration::from_millis(config.relay.relay_standby_retry_ms),
        max_backoff: Duration::from_millis(config.relay.relay_max_backoff_ms),
        retention: Duration::from_secs(config.relay.relay_retention_secs),
        prune_interval: Duration::from_secs(config.relay.relay_prune_interval_secs),
    }
}

/// The outbox relay until `shutdown` (a standby while another process leads), its metrics
/// registered in `registry`.
pub async fn run_relay(
    config: &Config,
    nats: async_nats::Client,
    registry: &prometheus::Registry,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let metrics = RelayMetrics::new(registry).context("relay metrics")?;
    fishapp_relaylog::run(relay_settings(config), nats, metrics, shutdown).await?;
    Ok(())
}

/// Runs `work` (a role without the API: relay, worker) with `/healthz` and `/metrics` served on
/// `addr` until it ends. The address is bound first, so a taken port fails the start, not the
/// end.
async fn with_probes(
    role: &'static str,
    addr: SocketAddr,
    registry: prometheus::Registry,
    shutdown: &CancellationToken,
    work: impl Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!(addr = %listener.local_addr()?, "{role} probes: /healthz, /metrics");
    let stop = shutdown.child_token();
    let probes = axum::serve(listener, probe_router(registry))
        .with_graceful_shutdown(stop.clone().cancelled_owned());
    let work = async {
        let result = work.await;
        stop.cancel();
        result
    };
    let (served, worked) = tokio::join!(probes.into_future(), work);
    served.with_context(|| format!("{role} probes failed"))?;
    worked
}

/// `fishapp relay`: the outbox relay until SIGTERM/SIGINT, with `/healthz` and `/metrics` on
/// `relay_http_addr`.
pub async fn relay(config: &Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let nats = fishapp_relaylog::nats::connect(&config.connections.nats_url)
        .await
        .context("nats_url")?;
    let registry = new_registry();
    let relay = run_relay(config, nats, &registry, shutdown.clone());
    with_probes(
        "relay",
        config.relay.relay_http_addr,
        registry.clone(),
        &shutdown,
        relay,
    )
    .await
}

/// The notifications consumer's settings from configuration.
pub fn notifier_settings(config: &Config) -> fishapp_app::notify::NotifierSettings {
    let notify = &config.notify;
    fishapp_app::notify::NotifierSettings {
        stream: config.relay.relay_stream.clone(),
        subject_prefix: config.relay.relay_subject_prefix.clone(),
        consumer: notify.notify_consumer.clone(),
        max_attempts: notify.notify_max_attempts,
        concurrency: notify.notify_concurrency,
        retry_delay: Duration::from_millis(notify.notify_retry_delay_ms),
        ack_wait: Duration::from_secs(notify.notify_ack_wait_secs),
        retention: Duration::from_secs(notify.notify_retention_days.saturating_mul(86_400)),
        max_per_user: i64::from(notify.notify_max_per_user),
        // An event cannot come again once it left the stream.
        handled_retention: Duration::from_secs(config.relay.relay_stream_max_age_secs)
            + Duration::from_secs(86_400),
        prune_interval: Duration::from_secs(notify.notify_prune_interval_secs),
        digests: fishapp_app::notify::DigestSettings {
            interval: Duration::from_secs(notify.notify_mail_interval_secs),
            delay: Duration::from_secs(notify.notify_mail_delay_secs),
            poll: Duration::from_secs(notify.notify_mail_poll_secs),
        },
    }
}

/// The notifications consumer until `shutdown`, its metrics in `registry`.
pub async fn run_notifier(
    config: &Config,
    nats: async_nats::Client,
    db: Database,
    registry: &prometheus::Registry,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let metrics =
        fishapp_app::notify::NotifierMetrics::new(registry).context("notifier metrics")?;
    fishapp_app::notify::consumer::run(
        nats,
        db,
        mailer(config)?,
        notifier_settings(config),
        metrics,
        shutdown,
    )
    .await;
    Ok(())
}

/// `fishapp notifier`: the notifications consumer until SIGTERM/SIGINT, with `/healthz` and
/// `/metrics` on `notify_http_addr`.
pub async fn notifier(config: &Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let nats = fishapp_relaylog::nats::connect(&config.connections.nats_url)
        .await
        .context("nats_url")?;
    let db = database(config)?;
    let registry = new_registry();
    let notifier = run_notifier(config, nats, db, &registry, shutdown.clone());
    with_probes(
        "notifier",
        config.notify.notify_http_addr,
        registry.clone(),
        &shutdown,
        notifier,
    )
    .await
}

/// `fishapp worker`: the Temporal worker, serving `queues`, until SIGTERM/SIGINT, with
/// `/healthz` and `/metrics` on `worker_http_addr`.
pub async fn worker(
    config: &Config,
    queues: &[crate::worker::Queue],
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let temporal = Temporal::connect_in_background(temporal_settings(config), shutdown.clone());
    let db = database(config)?;
    let worker = crate::worker::run(config, &temporal, db, queues, shutdown.clone());
    with_probes(
        "worker",
        config.temporal.worker_http_addr,
        new_registry(),
        &shutdown,
        worker,
    )
    .await
}

/// `fishapp dev`: migrate, then the API, the worker, the relay and the notifier in one process.
pub async fn dev(config: &Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let config = &config.with_developer_tools();
    let keys = token_keys(config, MissingKey::Generate)?;
    let report = migrate(config).await?;
    tracing::info!(applied = ?report.applied, version = ?report.current, "database migrated");
    let deps = connect_dependencies(config, &shutdown).await?;
    // One Temporal connection for the API and the worker.
    let temporal = deps.temporal.clone();
    let db = deps.db.clone();
    let nats = deps.nats.clone();
    let registry = new_registry();
    let api = start_api(config, deps, keys, registry.clone(), shutdown.clone()).await?;
    tracing::info!(
        graphiql = %format!("http://{}/graphql", api.addr),
        temporal_ui = %config.temporal.temporal_ui_url,
        "Fishapp is running (API, Temporal worker, outbox relay and notifier)"
    );
    let (api, worker, relay, notifier) = tokio::join!(
        api.task,
        crate::worker::run(
            config,
            &temporal,
            db.clone(),
            &crate::worker::Queue::ALL,
            shutdown.clone()
        ),
        run_relay(config, nats.clone(), &registry, shutdown.clone()),
        run_notifier(config, nats, db, &registry, shutdown.clone()),
    );
    api??;
    relay?;
    notifier?;
    worker
}

/// What `fishapp replay` replays.
#[derive(Debug)]
pub enum ReplaySource {
    /// A downloaded history (proto3 JSON or the SDK's encoding).
    File(std::path::PathBuf),
    /// The latest run of one workflow, fetched from Temporal.
    Workflow(String),
    /// Every execution a visibility query finds, at most `limit`.
    Query { query: String, limit: usize },
}

/// `fishapp replay`: histories from a file or from Temporal against this build; an error when
/// any of them does not replay.
pub async fn replay(
    config: &Config,
    source: ReplaySource,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    use fishapp_temporal::replay;
    use temporalio_client::{UntypedWorkflow, WorkflowFetchHistoryOptions};
    let history = match source {
        ReplaySource::File(path) => {
            let bytes =
                std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            replay::history_from_json(&bytes)
                .with_context(|| format!("{} is not a workflow history", path.display()))?
        }
        ReplaySource::Workflow(id) => replay_client(config, &shutdown)
            .await?
            .get_workflow_handle::<UntypedWorkflow>(id)
            .fetch_history(WorkflowFetchHistoryOptions::default()),
        ReplaySource::Query { query, limit } => {
            let client = replay_client(config, &shutdown).await?;
            let verdicts = replay::replay_executions(
                &client,
                &config.temporal.temporal_namespace,
                &query,
                limit,
            )
            .await?;
            for verdict in &verdicts {
                println!("{verdict}");
            }
            let failed = verdicts.iter().filter(|v| v.failure.is_some()).count();
            println!(
                "{} replayed, {failed} failed (query: {query})",
                verdicts.len()
            );
            anyhow::ensure!(
                failed == 0,
                "{failed} of {} histories did not replay",
                verdicts.len()
            );
            return Ok(());
        }
    };
    replay::replay(history).await.context("replay failed")?;
    println!("replay ok: this build makes the same decisions the history recorded");
    Ok(())
}

/// A connected Temporal client for `fishapp replay`, or why there is none within 15 s.
async fn replay_client(
    config: &Config,
    shutdown: &CancellationToken,
) -> anyhow::Result<temporalio_client::Client> {
    let temporal = Temporal::connect_in_background(temporal_settings(config), shutdown.clone());
    tokio::time::timeout(Duration::from_secs(15), temporal.connected(shutdown))
        .await
        .ok()
        .flatten()
        .with_context(|| {
            format!(
                "Temporal at {} did not answer",
                config.temporal.temporal_address
            )
        })
}
