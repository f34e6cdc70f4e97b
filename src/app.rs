//! Wiring: builds the dependency handles from configuration and runs each role. This is the
//! only place that knows every crate.

use crate::config::Config;
use anyhow::Context;
use fishapp_api::{Dependencies, HttpSettings, Redis};
use fishapp_store::{Database, MigrationReport};
use fishapp_workflows::{TaskQueues, Temporal, TemporalSettings};
use std::net::SocketAddr;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Handles on Postgres, Redis, NATS and Temporal. None of them waits for its server: each
/// connects in the background and recovers by itself, so the process starts while they are down.
pub async fn connect_dependencies(
    config: &Config,
    shutdown: &CancellationToken,
) -> anyhow::Result<Dependencies> {
    let db = Database::connect_lazy(&config.database_url, config.database_max_connections)
        .context("database_url")?;
    let redis = Redis::new(&config.redis_url).context("redis_url")?;
    let nats = fishapp_relaylog::nats::connect(&config.nats_url)
        .await
        .context("nats_url")?;
    let temporal = Temporal::connect_in_background(temporal_settings(config), shutdown.clone());
    Ok(Dependencies {
        db,
        redis,
        nats,
        temporal,
        readiness_timeout: config.readiness_timeout(),
    })
}

pub fn temporal_settings(config: &Config) -> TemporalSettings {
    TemporalSettings {
        address: config.temporal_address.clone(),
        namespace: config.temporal_namespace.clone(),
        task_queues: TaskQueues::with_prefix(&config.temporal_task_queue_prefix),
    }
}

/// Creates the database when missing and applies pending migrations (all or none).
pub async fn migrate(config: &Config) -> anyhow::Result<MigrationReport> {
    let created = fishapp_store::database::create_database_if_missing(&config.database_url)
        .await
        .context("could not reach Postgres to create the database")?;
    if created {
        tracing::info!("created the database");
    }
    let db = Database::connect_lazy(&config.database_url, 1).context("database_url")?;
    let report = fishapp_store::migrate(db.pool())
        .await
        .context("migration failed; the database was left as it was")?;
    db.close().await;
    Ok(report)
}

/// The HTTP API, bound to its address and serving in the background.
pub struct RunningApi {
    pub addr: SocketAddr,
    pub task: JoinHandle<anyhow::Result<()>>,
}

/// Binds `http_addr` and serves until `shutdown`; then stops accepting, lets in-flight requests
/// finish for up to `shutdown_grace_secs`, and returns.
pub async fn start_api(
    config: &Config,
    deps: Dependencies,
    shutdown: CancellationToken,
) -> anyhow::Result<RunningApi> {
    let settings = HttpSettings {
        cors_allowed_origins: config.cors_allowed_origins.clone(),
        body_limit_bytes: config.http_body_limit_bytes,
    };
    let router = fishapp_api::router(deps, &settings)?;
    let listener = TcpListener::bind(config.http_addr)
        .await
        .with_context(|| format!("cannot listen on {}", config.http_addr))?;
    let addr = listener.local_addr()?;
    let grace = config.shutdown_grace();
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
    Ok(RunningApi { addr, task })
}

/// `fishapp serve`: the API until SIGTERM/SIGINT.
pub async fn serve(config: &Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let deps = connect_dependencies(config, &shutdown).await?;
    let api = start_api(config, deps, shutdown).await?;
    tracing::info!(addr = %api.addr, "API listening; GraphiQL at http://{}/graphql", api.addr);
    api.task.await?
}

/// `fishapp worker`: the Temporal worker until SIGTERM/SIGINT.
pub async fn worker(config: &Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let temporal = Temporal::connect_in_background(temporal_settings(config), shutdown.clone());
    run_worker(&temporal, shutdown).await
}

async fn run_worker(temporal: &Temporal, shutdown: CancellationToken) -> anyhow::Result<()> {
    if temporal.connected(&shutdown).await.is_some() {
        let queues = temporal.settings().task_queues.all();
        tracing::info!(
            ?queues,
            "Temporal worker: no workflows or activities are registered yet; nothing to do until shutdown"
        );
        shutdown.cancelled().await;
    }
    tracing::info!("Temporal worker stopped");
    Ok(())
}

/// `fishapp dev`: migrate, then the API, the worker and the relay in one process.
pub async fn dev(config: &Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let report = migrate(config).await?;
    tracing::info!(applied = ?report.applied, version = ?report.current, "database migrated");
    let deps = connect_dependencies(config, &shutdown).await?;
    // One Temporal connection for the API and the worker.
    let temporal = deps.temporal.clone();
    let api = start_api(config, deps, shutdown.clone()).await?;
    tracing::info!(
        graphiql = %format!("http://{}/graphql", api.addr),
        temporal_ui = %config.temporal_ui_url,
        "Fishapp is running (API, Temporal worker and outbox relay)"
    );
    let (api, worker, ()) = tokio::join!(
        api.task,
        run_worker(&temporal, shutdown.clone()),
        fishapp_relaylog::run(shutdown.clone()),
    );
    api??;
    worker
}
