//! Wiring: builds the dependency handles from configuration and runs each role. This is the
//! only place that knows every crate. The roles that need more than a few lines have a module
//! each (the API, the relay, the notifier, replay); the signing keys have theirs.

mod api;
mod keys;
mod notifier;
mod relay;
mod replay;

pub use api::{RunningApi, http_settings, media_store, serve, start_api};
pub use keys::{MissingKey, auth_settings, keygen, token_keys};
pub use notifier::{dead_letters, notifier, notifier_rewind, notifier_settings, run_notifier};
pub use relay::{relay, relay_settings, run_relay};
pub use replay::{ReplaySource, replay};

use crate::config::{Config, MailTransportKind};
use anyhow::Context;
use fishapp_api::Dependencies;
use fishapp_api::metrics::{new_registry, probe_router_with};
use fishapp_app::Redis;
use fishapp_mail::{MailSettings, Mailer, Transport};
use fishapp_store::{Database, MigrationReport};
use fishapp_temporal::{Temporal, TemporalSettings};
use fishapp_workflows::TaskQueues;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
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

/// Runs `work` (a role without the API: relay, worker) with `probes` (`/healthz` and `/metrics`,
/// see [`fishapp_api::metrics::probe_router`]) served on `addr` until it ends. The address is bound first, so a taken
/// port fails the start, not the end.
async fn with_probes(
    role: &'static str,
    addr: SocketAddr,
    probes: axum::Router,
    shutdown: &CancellationToken,
    work: impl Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!(addr = %listener.local_addr()?, "{role} probes: /healthz, /metrics");
    let stop = shutdown.child_token();
    let probes =
        axum::serve(listener, probes).with_graceful_shutdown(stop.clone().cancelled_owned());
    let work = async {
        let result = work.await;
        stop.cancel();
        result
    };
    let (served, worked) = tokio::join!(probes.into_future(), work);
    served.with_context(|| format!("{role} probes failed"))?;
    worked
}

/// `fishapp worker`: the Temporal worker, serving `queues`, until SIGTERM/SIGINT, with
/// `/healthz` and `/metrics` on `worker_http_addr` (the SDK's own metrics: task slots,
/// schedule-to-start latencies, failures).
pub async fn worker(
    config: &Config,
    queues: &[crate::worker::Queue],
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let temporal = Temporal::connect_in_background(temporal_settings(config), shutdown.clone());
    let db = database(config)?;
    let (sdk_metrics, sdk_metrics_addr) = crate::worker::sdk_metrics_exporter()?;
    let worker = crate::worker::run(
        config,
        &temporal,
        db,
        queues,
        Some(sdk_metrics),
        shutdown.clone(),
    );
    let probes = probe_router_with(new_registry(), Some(sdk_metrics_addr));
    with_probes(
        "worker",
        config.temporal.worker_http_addr,
        probes,
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
    // The worker's SDK metrics join the API's `/metrics`: one scrape for the one process.
    let (sdk_metrics, sdk_metrics_addr) = crate::worker::sdk_metrics_exporter()?;
    let api = start_api(
        config,
        deps,
        keys,
        registry.clone(),
        Some(sdk_metrics_addr),
        shutdown.clone(),
    )
    .await?;
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
            Some(sdk_metrics),
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
