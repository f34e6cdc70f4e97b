//! Replaying a saga's recorded history against this build's workflow code: the way to see why a
//! workflow failed, and to prove that a code change is still deterministic for histories already
//! in flight (docs/operations.md).
//!
//! Histories come from three places, all accepted by [`history_from_json`]:
//! - the Temporal CLI (`temporal workflow show -w <id> --output json`) and the Web UI's
//!   "Download" button: proto3 JSON (camelCase names, enums as strings, int64 as strings);
//! - the SDK's own serde encoding (snake_case names), which `tests/histories/` holds;
//! - the server itself, fetched by id ([`replay_executions`]).

use futures::StreamExt;
use prost::Message;
use prost_reflect::{DescriptorPool, DeserializeOptions, DynamicMessage};
use std::sync::LazyLock;
use temporalio_client::{
    Client, WorkflowExecutionInfo, WorkflowFetchHistoryOptions, WorkflowHistory,
    WorkflowListOptions,
};
use temporalio_common::protos::temporal::api::history::v1::History;
use temporalio_sdk::workflow_replayer::{
    WorkflowReplayError, WorkflowReplayFailure, WorkflowReplayer, WorkflowReplayerOptions,
};

/// The Temporal API's message descriptors (see build.rs): what proto3 JSON is parsed against.
static DESCRIPTORS: LazyLock<Result<DescriptorPool, String>> = LazyLock::new(|| {
    DescriptorPool::decode(include_bytes!(env!("TEMPORAL_API_DESCRIPTORS")).as_slice())
        .map_err(|e| e.to_string())
});
const HISTORY_MESSAGE: &str = "temporal.api.history.v1.History";

/// A history file that is neither proto3 JSON nor the SDK's encoding of a history.
#[derive(Debug, thiserror::Error)]
pub enum HistoryFileError {
    #[error("not JSON: {0}")]
    NotJson(serde_json::Error),
    #[error("no history events: expected an object with an `events` list (or the list itself)")]
    NoEvents,
    #[error("not a Temporal history (proto3 JSON): {0}")]
    ProtoJson(String),
    #[error("not a Temporal history (SDK encoding): {0}")]
    SdkJson(String),
}

/// Reads a history in either JSON encoding. Which one is told by the first event's field
/// names: proto3 JSON has `eventId`, the SDK's encoding `event_id`.
pub fn history_from_json(bytes: &[u8]) -> Result<WorkflowHistory, HistoryFileError> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(HistoryFileError::NotJson)?;
    // The Web UI has downloaded the bare list of events in some versions.
    let value = match value {
        serde_json::Value::Array(events) => serde_json::json!({ "events": events }),
        other => other,
    };
    let first = value
        .get("events")
        .and_then(serde_json::Value::as_array)
        .and_then(|events| events.first())
        .ok_or(HistoryFileError::NoEvents)?;
    if first.get("event_id").is_some() {
        let json = serde_json::to_vec(&value).map_err(HistoryFileError::NotJson)?;
        return WorkflowHistory::from_json(&json)
            .map_err(|e| HistoryFileError::SdkJson(e.to_string()));
    }
    from_proto_json(value).map(WorkflowHistory::from)
}

/// proto3 JSON → a dynamic message checked against the descriptors → the wire encoding → the
/// SDK's `History`. Fields this build does not know (a newer server's) are skipped, as a proto
/// parser skips them on the wire.
fn from_proto_json(value: serde_json::Value) -> Result<History, HistoryFileError> {
    let pool = DESCRIPTORS
        .as_ref()
        .map_err(|e| HistoryFileError::ProtoJson(format!("descriptors unreadable: {e}")))?;
    let descriptor = pool.get_message_by_name(HISTORY_MESSAGE).ok_or_else(|| {
        HistoryFileError::ProtoJson(format!("{HISTORY_MESSAGE} is not among the descriptors"))
    })?;
    let options = DeserializeOptions::new().deny_unknown_fields(false);
    let message = DynamicMessage::deserialize_with_options(descriptor, value, &options)
        .map_err(|e| HistoryFileError::ProtoJson(e.to_string()))?;
    History::decode(message.encode_to_vec().as_slice())
        .map_err(|e| HistoryFileError::ProtoJson(e.to_string()))
}

/// A replayer that knows every Fishapp workflow: the same list the worker registers
/// (`fishapp_workflows::register_all!`).
pub fn replayer() -> Result<WorkflowReplayer, WorkflowReplayError> {
    let options = fishapp_workflows::register_all!(WorkflowReplayerOptions::new())
        .map_err(
            |e| temporalio_sdk::workflow_replayer::WorkflowReplayWorkerError::Internal {
                message: e.to_string(),
            },
        )?
        .build();
    WorkflowReplayer::new(options)
}

/// Replays one history; `Ok` when this code makes the same decisions the history recorded.
pub async fn replay(history: WorkflowHistory) -> Result<(), WorkflowReplayError> {
    replayer()?.replay_workflow(history).await
}

/// The visibility query for this deployment's failed sagas: its workflow ids all start with
/// `<prefix>/` (the API's saga ids).
pub fn failed_query(workflow_id_prefix: &str) -> String {
    format!(
        "WorkflowId STARTS_WITH \"{}/\" AND ExecutionStatus = \"Failed\"",
        workflow_id_prefix
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
    )
}

/// One execution's replay verdict.
#[derive(Debug)]
pub struct Verdict {
    pub workflow_id: String,
    pub run_id: String,
    pub workflow_type: String,
    /// `None`: this build makes the decisions the history recorded.
    pub failure: Option<String>,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verdict = if self.failure.is_some() { "FAIL" } else { "ok" };
        write!(
            f,
            "{verdict:<4} {} {} (run {})",
            self.workflow_type, self.workflow_id, self.run_id
        )?;
        if let Some(failure) = &self.failure {
            write!(f, ": {failure}")?;
        }
        Ok(())
    }
}

/// Why a batch replay could not run at all (as opposed to one history failing).
#[derive(Debug, thiserror::Error)]
pub enum BatchReplayError {
    #[error("listing workflows failed: {0}")]
    List(String),
    #[error(transparent)]
    Replayer(#[from] WorkflowReplayError),
}

/// Replays every execution the visibility `query` finds (at most `limit`), one history at a
/// time, and returns a verdict for each. A history that cannot be fetched is a failed verdict,
/// not an error: the other executions are still checked.
pub async fn replay_executions(
    client: &Client,
    namespace: &str,
    query: &str,
    limit: usize,
) -> Result<Vec<Verdict>, BatchReplayError> {
    let replayer = replayer()?;
    let mut executions =
        client.list_workflows(query, WorkflowListOptions::builder().limit(limit).build());
    let mut verdicts = Vec::new();
    while let Some(execution) = executions.next().await {
        let execution = execution.map_err(|e| BatchReplayError::List(e.to_string()))?;
        let history = WorkflowExecutionInfo::builder()
            .namespace(namespace)
            .workflow_id(execution.id())
            .run_id(execution.run_id())
            .build()
            .bind_untyped(client.clone())
            .fetch_history(WorkflowFetchHistoryOptions::default());
        let failure = match replayer.replay_workflow(history).await {
            Ok(()) => None,
            Err(WorkflowReplayError::Replay(failure)) => Some(describe(&failure)),
            Err(other) => Some(other.to_string()),
        };
        verdicts.push(Verdict {
            workflow_id: execution.id().to_owned(),
            run_id: execution.run_id().to_owned(),
            workflow_type: execution.workflow_type().to_owned(),
            failure,
        });
    }
    Ok(verdicts)
}

fn describe(failure: &WorkflowReplayFailure) -> String {
    failure.to_string().replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_know_the_history_message() {
        let pool = DESCRIPTORS.as_ref().expect("descriptors decode");
        assert!(pool.get_message_by_name(HISTORY_MESSAGE).is_some());
    }

    #[test]
    fn not_a_history_is_told_apart() {
        assert!(matches!(
            history_from_json(b"{]"),
            Err(HistoryFileError::NotJson(_))
        ));
        assert!(matches!(
            history_from_json(br#"{"events": []}"#),
            Err(HistoryFileError::NoEvents)
        ));
        assert!(matches!(
            history_from_json(br#"{"events": [{"eventId": "x"}]}"#),
            Err(HistoryFileError::ProtoJson(_))
        ));
        assert!(matches!(
            history_from_json(br#"{"events": [{"event_id": "x"}]}"#),
            Err(HistoryFileError::SdkJson(_))
        ));
    }

    #[test]
    fn the_failed_query_scopes_to_the_prefix_and_escapes_it() {
        assert_eq!(
            failed_query("fishapp"),
            r#"WorkflowId STARTS_WITH "fishapp/" AND ExecutionStatus = "Failed""#
        );
        assert_eq!(
            failed_query(r#"a"b"#),
            r#"WorkflowId STARTS_WITH "a\"b/" AND ExecutionStatus = "Failed""#
        );
    }
}
