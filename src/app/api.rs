//! The HTTP API role: its settings, the services behind the schema, and serving until shutdown.

use super::{MissingKey, auth_settings, connect_dependencies, mailer, token_keys};
use crate::config::{Config, MediaBackend};
use anyhow::Context;
use axum::serve::ListenerExt;
use fishapp_api::client_address::TrustedProxies;
use fishapp_api::graphql::QueryLimits;
use fishapp_api::graphql::streams::StreamCaps;
use fishapp_api::metrics::{new_registry, probe_router_with};
use fishapp_api::{Dependencies, HttpSettings, Services};
use fishapp_app::account::tokens::TokenKeys;
use fishapp_app::cache::WindowLimiter;
use fishapp_app::chat::Chat;
use fishapp_app::chat::live::{LiveChat, LiveSettings};
use fishapp_app::{
    Accounts, Board, BoardLimits, BoardSettings, Calendar, CalendarSettings, Media, MediaSettings,
};
use fishapp_domain::review::ReviewWindow;
use fishapp_media::{
    DecodeLimits, Gcs, GcsCredentials, GcsSettings, GcsUrls, LocalDisk, MediaStore,
};
use fishapp_workflows::trip::TripTimings;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

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

/// The application's use cases behind the schema, from configuration: each with its settings
/// and per-user limits (Redis windows named `<deployment>:<name>`), live chat and live
/// notifications following the stream until `shutdown`.
async fn services(
    config: &Config,
    deps: &Dependencies,
    keys: TokenKeys,
    metrics: &prometheus::Registry,
    shutdown: &CancellationToken,
) -> anyhow::Result<Services> {
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
    tokio::spawn({
        let (accounts, shutdown) = (accounts.clone(), shutdown.clone());
        let every = Duration::from_secs(config.accounts.sign_in_prune_interval_secs);
        async move { accounts.prune_sign_ins_forever(every, shutdown).await }
    });
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
            review_window: ReviewWindow::from_secs(config.board.board_review_window_secs),
        },
        BoardLimits {
            creations: hourly("post-creations", config.board.board_max_posts_per_hour),
            applications: hourly("applications", config.board.board_max_applications_per_hour),
            changes: hourly("post-changes", config.board.board_max_post_changes_per_hour),
            reviews: hourly("reviews", config.board.board_max_reviews_per_hour),
        },
    );
    let live = LiveChat::start(
        deps.nats.clone(),
        deps.db.clone(),
        LiveSettings {
            stream: config.relay.relay_stream.clone(),
            subject_prefix: config.relay.relay_subject_prefix.clone(),
        },
        metrics,
        shutdown.clone(),
    )?;
    let live_notifications = fishapp_app::notify::LiveNotifications::start(
        deps.nats.clone(),
        deps.db.clone(),
        config.relay.relay_stream.clone(),
        &config.relay.relay_subject_prefix,
        metrics,
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
    Ok(Services {
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
    })
}

/// Binds `http_addr` and serves until `shutdown`; then stops accepting, lets in-flight requests
/// finish for up to `shutdown_grace_secs`, and returns. `/metrics` (on `http_metrics_addr`)
/// serves `metrics` and, when given, what the process's Temporal worker records (see
/// [`crate::worker::sdk_metrics_exporter`]).
pub async fn start_api(
    config: &Config,
    deps: Dependencies,
    keys: TokenKeys,
    metrics: prometheus::Registry,
    sdk_metrics: Option<SocketAddr>,
    shutdown: CancellationToken,
) -> anyhow::Result<RunningApi> {
    let settings = http_settings(config, metrics.clone())?;
    let services = services(config, &deps, keys, &settings.metrics, &shutdown).await?;
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
    let scrapes = axum::serve(metrics_listener, probe_router_with(metrics, sdk_metrics))
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
    let api = start_api(config, deps, keys, new_registry(), None, shutdown).await?;
    if config.graphql.graphql_ide == Some(true) {
        tracing::info!(addr = %api.addr, metrics = %api.metrics_addr, "API listening; GraphiQL at http://{}/graphql", api.addr);
    } else {
        tracing::info!(addr = %api.addr, metrics = %api.metrics_addr, "API listening (GraphiQL off: graphql_ide)");
    }
    api.task.await?
}
