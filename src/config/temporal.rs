//! The Temporal frontend, its namespace and task queues, and the worker's probes.

use super::checks::check_scheme;
use super::keys::{Invalid, config_group};
use std::net::SocketAddr;
use url::Url;

config_group! {
    pub struct Temporal {
        title: "Temporal",
        about: "The workflow engine the sagas run on, and where `fishapp worker` answers its probes.",
        temporal_address: Url = Url::parse("http://127.0.0.1:7233").expect("static url"),
            "Temporal frontend (gRPC)";
        temporal_namespace: String = "default".to_owned(),
            "Temporal namespace";
        temporal_task_queue_prefix: String = "fishapp".to_owned(),
            "task queues are `<prefix>.workflows`, `.post`, `.chat`, `.media`";
        temporal_eager_start: bool = true,
            "eager workflow start: where the API and a worker share one process (`fishapp dev`), a saga's first workflow task is handed to that worker in the start call's answer, saving Temporal's matching round trip; elsewhere it has no effect";
        temporal_ui_url: Url = Url::parse("http://127.0.0.1:8233").expect("static url"),
            "the Web UI, for links";
        worker_http_addr: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 8082)),
            "where `fishapp worker` serves `/healthz` (liveness for an orchestrator) and `/metrics` (the Temporal SDK's own: task slots, schedule-to-start and execution latencies, failures by workflow and activity type)";
    }
}

impl Temporal {
    fn check(&self) -> Result<(), Invalid> {
        check_scheme(
            "temporal_address",
            &self.temporal_address,
            &["http", "https"],
        )?;
        check_scheme("temporal_ui_url", &self.temporal_ui_url, &["http", "https"])?;
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
        Ok(())
    }
}
