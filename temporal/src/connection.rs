//! The process's one Temporal client.
//!
//! Temporal being down must not stop the API from serving reads, so the client connects in the
//! background and keeps trying; until it is connected, anything that needs a workflow gets
//! [`TemporalUnavailable`] (the API's `UNAVAILABLE`) and readiness reports Temporal as down.

use crate::search_attributes;
use fishapp_workflows::TaskQueues;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use temporalio_client::tonic::Request;
use temporalio_client::{Client, ClientOptions, Connection, ConnectionOptions, RetryOptions};
use temporalio_common::protos::temporal::api::operatorservice::v1::{
    AddSearchAttributesRequest, ListSearchAttributesRequest,
};
use temporalio_common::protos::temporal::api::workflowservice::v1::GetSystemInfoRequest;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use url::Url;

/// Bounds one connection attempt, so a black-holed address does not stall the retry loop.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Reconnect back-off: starts small for a server that is just starting, capped so that a server
/// that comes back is noticed within half a minute.
const RETRY_INITIAL: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// Where Fishapp's Temporal is and which names it uses there.
#[derive(Debug, Clone)]
pub struct TemporalSettings {
    /// gRPC frontend, e.g. `http://127.0.0.1:7233`.
    pub address: Url,
    pub namespace: String,
    pub task_queues: TaskQueues,
    /// Ask for eager workflow start: where a worker on this same connection serves the
    /// workflow queue (`fishapp dev`), a saga's first workflow task comes back in the start
    /// call's answer and runs at once, instead of going through Temporal's matching service to
    /// a poller. Elsewhere the client finds no local worker and starts the saga as usual.
    pub eager_start: bool,
}

/// Temporal cannot be reached now; retrying later may succeed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("Temporal is unavailable: {reason}")]
pub struct TemporalUnavailable {
    pub reason: String,
}

impl TemporalUnavailable {
    fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
        }
    }
}

#[derive(Clone)]
enum ConnectionState {
    Connecting { last_error: Option<String> },
    Connected(Client),
}

/// A cheap-to-clone handle on the process's Temporal client.
#[derive(Clone)]
pub struct Temporal {
    settings: Arc<TemporalSettings>,
    state: watch::Receiver<ConnectionState>,
}

impl Temporal {
    /// Returns at once; a background task connects (retrying with back-off until `shutdown`) and
    /// then registers Fishapp's search attributes where the namespace lacks them.
    pub fn connect_in_background(settings: TemporalSettings, shutdown: CancellationToken) -> Self {
        let (tx, rx) = watch::channel(ConnectionState::Connecting { last_error: None });
        let settings = Arc::new(settings);
        tokio::spawn(connect_loop(settings.clone(), tx, shutdown));
        Self {
            settings,
            state: rx,
        }
    }

    pub fn settings(&self) -> &TemporalSettings {
        &self.settings
    }

    /// The client, if connected.
    pub fn client(&self) -> Result<Client, TemporalUnavailable> {
        match &*self.state.borrow() {
            ConnectionState::Connected(client) => Ok(client.clone()),
            ConnectionState::Connecting { last_error } => Err(TemporalUnavailable::new(
                last_error
                    .clone()
                    .unwrap_or_else(|| "still connecting".to_owned()),
            )),
        }
    }

    /// Waits until connected; `None` if `cancel` fires first.
    pub async fn connected(&self, cancel: &CancellationToken) -> Option<Client> {
        let mut state = self.state.clone();
        tokio::select! {
            () = cancel.cancelled() => None,
            result = state.wait_for(|s| matches!(s, ConnectionState::Connected(_))) => {
                match result.ok().as_deref() {
                    Some(ConnectionState::Connected(client)) => Some(client.clone()),
                    _ => None,
                }
            }
        }
    }

    /// A real round trip to the frontend (`GetSystemInfo`), bounded by `timeout`.
    pub async fn check(&self, timeout: Duration) -> Result<(), TemporalUnavailable> {
        let client = self.client()?;
        let mut service = client.connection().workflow_service();
        let call = service.get_system_info(Request::new(GetSystemInfoRequest::default()));
        match tokio::time::timeout(timeout, call).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(status)) => Err(TemporalUnavailable::new(format!(
                "{:?}: {}",
                status.code(),
                status.message()
            ))),
            Err(_) => Err(TemporalUnavailable::new(format!(
                "no answer within {timeout:?}"
            ))),
        }
    }
}

async fn connect_loop(
    settings: Arc<TemporalSettings>,
    state: watch::Sender<ConnectionState>,
    shutdown: CancellationToken,
) {
    let mut delay = RETRY_INITIAL;
    let mut failures = 0u32;
    loop {
        match connect(&settings).await {
            Ok(client) => {
                tracing::info!(address = %settings.address, namespace = %settings.namespace, "connected to Temporal");
                if let Err(e) = register_search_attributes(&client, &settings.namespace).await {
                    // Workflows still run; only starting one with these attributes would fail,
                    // and the error there says why.
                    tracing::error!(error = %e, "could not register Fishapp's search attributes");
                }
                state.send_replace(ConnectionState::Connected(client));
                return;
            }
            Err(e) => {
                failures += 1;
                // One clear line when it starts failing, then a reminder now and then.
                if failures == 1 || failures.is_multiple_of(20) {
                    tracing::warn!(
                        address = %settings.address,
                        attempts = failures,
                        error = %e,
                        "Temporal is unreachable; workflows are unavailable until it answers (retrying)"
                    );
                }
                state.send_replace(ConnectionState::Connecting {
                    last_error: Some(e.reason),
                });
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(RETRY_MAX);
    }
}

async fn connect(settings: &TemporalSettings) -> Result<Client, TemporalUnavailable> {
    let retry = RetryOptions::builder()
        .max_elapsed_time(Some(Duration::from_secs(5)))
        .build();
    let options = ConnectionOptions::new(settings.address.clone())
        .identity(format!("fishapp@{}", std::process::id()))
        .connect_timeout(CONNECT_TIMEOUT)
        .retry_options(retry)
        .build();
    let connection = Connection::connect(options)
        .await
        .map_err(|e| TemporalUnavailable::new(e.to_string()))?;
    Client::new(
        connection,
        ClientOptions::new(settings.namespace.clone()).build(),
    )
    .map_err(|e| TemporalUnavailable::new(e.to_string()))
}

/// Adds the custom search attributes the namespace does not have yet. Idempotent.
async fn register_search_attributes(
    client: &Client,
    namespace: &str,
) -> Result<(), temporalio_client::tonic::Status> {
    let mut operator = client.connection().operator_service();
    let existing = operator
        .list_search_attributes(Request::new(ListSearchAttributesRequest {
            namespace: namespace.to_owned(),
        }))
        .await?
        .into_inner()
        .custom_attributes;
    let missing: HashMap<String, i32> = search_attributes::CUSTOM
        .iter()
        .filter(|(name, _)| !existing.contains_key(*name))
        .map(|(name, kind)| ((*name).to_owned(), *kind as i32))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let names: Vec<&String> = missing.keys().collect();
    tracing::info!(?names, namespace, "registering search attributes");
    operator
        .add_search_attributes(Request::new(AddSearchAttributesRequest {
            search_attributes: missing,
            namespace: namespace.to_owned(),
        }))
        .await?;
    Ok(())
}
