//! The Temporal worker role: one SDK worker per task queue — workflows on `<prefix>.workflows`,
//! each context's activities on its own queue (post, chat, media) — sharing one Temporal client
//! and runtime. `fishapp worker --queues` serves a subset, so that contexts can be deployed and
//! scaled apart.

use crate::config::Config;
use anyhow::Context;
use fishapp_activities::{ChatActivities, FaultPlan, MediaActivities, PostActivities};
use fishapp_store::Database;
use fishapp_temporal::Temporal;
use fishapp_temporal::schedules::{WorkerSchedules, ensure_worker_schedules};
use std::sync::Arc;
use std::time::Duration;
use temporalio_common::telemetry::TelemetryOptions;
use temporalio_common::telemetry::metrics::CoreMeter;
use temporalio_sdk::runtime::RuntimeOptions;
use temporalio_sdk::{Runtime, Worker, WorkerOptions};
use tokio_util::sync::CancellationToken;

/// A task queue this process can serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Queue {
    /// The sagas themselves (workflow tasks).
    Workflows,
    /// Board activities.
    Post,
    /// Chat activities.
    Chat,
    /// Image activities.
    Media,
}

impl Queue {
    pub const ALL: [Queue; 4] = [Queue::Workflows, Queue::Post, Queue::Chat, Queue::Media];
}

/// Serves the selected task queues until `shutdown`, then lets in-flight tasks finish (the SDK's
/// graceful shutdown). Waits for Temporal first if it is not there yet. `sdk_metrics`: where the
/// SDK records its own metrics (see [`sdk_metrics_exporter`]); none, not recorded.
pub async fn run(
    config: &Config,
    temporal: &Temporal,
    db: Database,
    queues: &[Queue],
    sdk_metrics: Option<Arc<dyn CoreMeter>>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let Some(client) = temporal.connected(&shutdown).await else {
        return Ok(());
    };
    let names = temporal.settings().task_queues.clone();
    let faults = FaultPlan::new(config.diagnostics.fault_injection.iter().cloned());
    if !faults.is_empty() {
        tracing::warn!(steps = ?config.diagnostics.fault_injection, "FAULT INJECTION IS ON: these saga steps will fail (tests only)");
    }

    if queues.contains(&Queue::Workflows) {
        let schedules = WorkerSchedules {
            prefix: config.temporal.temporal_task_queue_prefix.clone(),
            staged_max_age: Duration::from_secs(config.media.media_staged_max_age_secs),
            cleanup_every: Duration::from_secs(config.media.media_cleanup_interval_secs),
            close_posts_every: Duration::from_secs(config.board.board_close_interval_secs),
        };
        ensure_worker_schedules(&client, &names, &schedules).await;
    }

    let telemetry = TelemetryOptions::builder()
        .maybe_metrics(sdk_metrics)
        .build();
    let runtime_options = RuntimeOptions::builder()
        .telemetry_options(telemetry)
        .build()
        .map_err(anyhow::Error::msg)?;
    let runtime = Runtime::from_current_tokio(runtime_options).context("Temporal SDK runtime")?;
    let mut workers = Vec::new();
    for queue in queues {
        let options = match queue {
            // The same list the replayer knows.
            // The post and chat activities too: sagas run their database steps as local
            // activities, on the worker that runs the workflow.
            Queue::Workflows => {
                fishapp_workflows::register_all!(WorkerOptions::new(&names.workflows))?
                    .register_activities(PostActivities::new(db.clone(), faults.clone()))
                    .register_activities(ChatActivities::new(db.clone(), faults.clone()))
                    .build()
            }
            Queue::Post => WorkerOptions::new(&names.post)
                .register_activities(PostActivities::new(db.clone(), faults.clone()))
                .build(),
            Queue::Chat => WorkerOptions::new(&names.chat)
                .register_activities(ChatActivities::new(db.clone(), faults.clone()))
                .build(),
            Queue::Media => {
                let store = crate::app::media_store(config).await?;
                WorkerOptions::new(&names.media)
                    .register_activities(MediaActivities::new(db.clone(), store, faults.clone()))
                    .build()
            }
        };
        workers.push((*queue, Worker::new(&runtime, client.clone(), options)?));
    }
    let stops: Vec<_> = workers.iter().map(|(_, w)| w.shutdown_handle()).collect();
    tracing::info!(queues = ?queues, prefix = %config.temporal.temporal_task_queue_prefix, "Temporal worker polling");
    let stop = async {
        shutdown.cancelled().await;
        for stop in &stops {
            stop();
        }
    };
    let runs = futures::future::join_all(workers.iter_mut().map(|(queue, worker)| {
        let queue = *queue;
        async move { (queue, worker.run().await) }
    }));
    let (results, ()) = tokio::join!(runs, stop);
    for (queue, result) in results {
        result.with_context(|| format!("{queue:?} worker"))?;
    }
    tracing::info!("Temporal worker stopped");
    Ok(())
}

/// The Temporal SDK's metrics exporter, serving Prometheus text on a loopback port of its own
/// (the SDK serves its metrics only so); `fishapp worker`'s `/metrics` reads them from there and
/// appends them to Fishapp's. Names as the SDK makes them: `temporal_` and the metric, counters
/// with `_total`, durations in seconds with `_seconds` (e.g.
/// `temporal_workflow_task_schedule_to_start_latency_seconds`,
/// `temporal_activity_execution_failed_total`, `temporal_worker_task_slots_available`).
pub fn sdk_metrics_exporter() -> anyhow::Result<(Arc<dyn CoreMeter>, std::net::SocketAddr)> {
    use temporalio_common::telemetry::{
        PrometheusExporterOptions, start_prometheus_metric_exporter,
    };
    let options = PrometheusExporterOptions::builder()
        .socket_addr(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
        .counters_total_suffix(true)
        .use_seconds_for_durations(true)
        .unit_suffix(true)
        .build();
    let started =
        start_prometheus_metric_exporter(options).context("the Temporal SDK's metrics exporter")?;
    Ok((started.meter, started.bound_addr))
}
