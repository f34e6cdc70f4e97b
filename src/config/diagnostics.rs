//! Logs, and the fault injection the compensation tests use.

use super::keys::{Invalid, config_group};
use super::serde_lists::list_or_comma_separated;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable, for a terminal.
    Pretty,
    /// One JSON object per line, for log shippers.
    Json,
}

config_group! {
    pub struct Diagnostics {
        title: "Logs and fault injection",
        about: "Logs never contain secrets or personal data: request spans carry the request id, method and path (no query strings, no bodies); configuration is only ever printed redacted.",
        log_format: LogFormat = LogFormat::Pretty,
            "`pretty` or `json` (one object per line)";
        log_filter: String = "info".to_owned(),
            "tracing filter, e.g. `info,fishapp_api=debug`; `RUST_LOG` wins when set";
        #[serde(deserialize_with = "list_or_comma_separated")]
        fault_injection: Vec<String> = Vec::new(),
            "**tests only**: saga steps that fail for good when reached (`post.publish`, or `UpdatePostWorkflow/media.attach_images` for one saga), or only on their first n attempts, retryably (`chat.leave_room@2`); the worker logs `FAULT INJECTION IS ON` when set";
    }
}

impl Diagnostics {
    fn check(&self) -> Result<(), Invalid> {
        tracing_subscriber::EnvFilter::try_new(&self.log_filter)
            .map_err(|e| ("log_filter", e.to_string()))?;
        Ok(())
    }
}
