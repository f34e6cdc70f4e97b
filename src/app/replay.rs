//! `fishapp replay`: recorded saga histories replayed against this build's workflow code.

use super::temporal_settings;
use crate::config::Config;
use anyhow::Context;
use fishapp_temporal::Temporal;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

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
