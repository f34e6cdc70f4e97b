//! `/healthz` (the process answers) and `/readyz` (every dependency answers a real query).

use crate::router::Dependencies;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

pub(crate) async fn healthz() -> &'static str {
    "ok"
}

#[derive(Debug, Serialize)]
pub(crate) struct Readiness {
    /// "ready" when every check is up, else "degraded".
    status: &'static str,
    checks: BTreeMap<&'static str, Check>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Check {
    status: &'static str,
    latency_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// 200 when Postgres, Redis, NATS (JetStream) and Temporal all answer, else 503. Every check runs
/// at the same time and is bounded by the configured timeout, so a hung dependency cannot hang
/// the probe; nothing is cached, so the status recovers on the first probe after the dependency.
pub(crate) async fn readyz(State(deps): State<Dependencies>) -> (StatusCode, Json<Readiness>) {
    let timeout = deps.readiness_timeout;
    let (postgres, redis, nats, temporal) = tokio::join!(
        check(async { deps.db.ping(timeout).await.map_err(|e| e.to_string()) }),
        check(deps.redis.ping(timeout)),
        check(nats_jetstream(&deps.nats, timeout)),
        check(async { deps.temporal.check(timeout).await.map_err(|e| e.reason) }),
    );
    let checks = BTreeMap::from([
        ("postgres", postgres),
        ("redis", redis),
        ("nats", nats),
        ("temporal", temporal),
    ]);
    let ready = checks.values().all(|c| c.error.is_none());
    for (name, check) in checks.iter().filter(|(_, c)| c.error.is_some()) {
        tracing::warn!(dependency = name, error = ?check.error, "readiness check failed");
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let readiness = Readiness {
        status: if ready { "ready" } else { "degraded" },
        checks,
    };
    (status, Json(readiness))
}

async fn check(probe: impl Future<Output = Result<(), String>>) -> Check {
    let started = Instant::now();
    let outcome = probe.await;
    let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    match outcome {
        Ok(()) => Check {
            status: "up",
            latency_ms,
            error: None,
        },
        Err(error) => Check {
            status: "down",
            latency_ms,
            error: Some(error),
        },
    }
}

/// Asks JetStream for the account's info (`$JS.API.INFO`): proves both the connection and that
/// JetStream is enabled. The reply is read loosely (any JSON without an `error`), because the
/// client's typed reply lags behind or ahead of the server's fields across versions.
async fn nats_jetstream(client: &async_nats::Client, timeout: Duration) -> Result<(), String> {
    let request = client.request("$JS.API.INFO", "".into());
    let reply = match tokio::time::timeout(timeout, request).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(e)) => return Err(e.to_string()),
        Err(_) => {
            return Err(format!(
                "no answer within {timeout:?} (connection: {})",
                client.connection_state()
            ));
        }
    };
    let body: serde_json::Value = serde_json::from_slice(&reply.payload)
        .map_err(|e| format!("JetStream replied with something other than JSON: {e}"))?;
    match body.get("error") {
        None => Ok(()),
        Some(error) => Err(format!("JetStream: {error}")),
    }
}
