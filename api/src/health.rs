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
    /// Our words, never the dependency's error text (it can name hosts, users, versions): the
    /// details are in the log line of the same check.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// What `/readyz` says of a dependency that did not answer.
const UNAVAILABLE: &str = "did not answer; the server log has the details";

/// 200 when Postgres, Redis, NATS (JetStream) and Temporal all answer, else 503. Every check runs
/// at the same time and is bounded by the configured timeout, so a hung dependency cannot hang
/// the probe; nothing is cached, so the status recovers on the first probe after the dependency.
///
/// The `outbox` check reports the relay (wherever it runs) from the outbox itself: `stalled` when
/// an event has waited longer than the threshold, `failed` when JetStream refused an event for
/// good. It makes the body's status `degraded` but not the HTTP status: the API still serves
/// every request, and taking it out of rotation would not publish a single event.
pub(crate) async fn readyz(State(deps): State<Dependencies>) -> (StatusCode, Json<Readiness>) {
    let timeout = deps.readiness_timeout;
    let (postgres, redis, nats, temporal, outbox) = tokio::join!(
        check("postgres", async {
            deps.db.ping(timeout).await.map_err(|e| e.to_string())
        }),
        check("redis", deps.redis.ping(timeout)),
        check("nats", nats_jetstream(&deps.nats, timeout)),
        check("temporal", async {
            deps.temporal.check(timeout).await.map_err(|e| e.reason)
        }),
        outbox_check(&deps, timeout),
    );
    let mut checks = BTreeMap::from([
        ("postgres", postgres),
        ("redis", redis),
        ("nats", nats),
        ("temporal", temporal),
    ]);
    let ready = checks.values().all(|c| c.error.is_none());
    let relay_healthy = outbox.error.is_none();
    checks.insert("outbox", outbox);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let readiness = Readiness {
        status: if ready && relay_healthy {
            "ready"
        } else {
            "degraded"
        },
        checks,
    };
    (status, Json(readiness))
}

/// The relay's health as the outbox shows it.
async fn outbox_check(deps: &Dependencies, timeout: Duration) -> Check {
    let started = Instant::now();
    let backlog =
        tokio::time::timeout(timeout, fishapp_store::outbox::backlog(deps.db.pool())).await;
    let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let (status, error) = match backlog {
        Err(_) => ("down", Some(format!("no answer within {timeout:?}"))),
        Ok(Err(e)) => {
            tracing::warn!(check = "outbox", error = %e, "cannot read the outbox backlog");
            ("down", Some(UNAVAILABLE.to_owned()))
        }
        Ok(Ok(b)) if b.failed > 0 => (
            "failed",
            Some(format!(
                "{} event(s) refused by JetStream for good; see the relay runbook",
                b.failed
            )),
        ),
        Ok(Ok(b)) if b.waiting > 0 && b.oldest > deps.relay_stall_threshold => (
            "stalled",
            Some(format!(
                "{} event(s) waiting, the oldest for {} s",
                b.waiting,
                b.oldest.as_secs()
            )),
        ),
        Ok(Ok(_)) => ("up", None),
    };
    if let Some(error) = &error {
        tracing::warn!(check = "outbox", status, %error, "outbox relay unhealthy");
    }
    Check {
        status,
        latency_ms,
        error,
    }
}

async fn check(dependency: &str, probe: impl Future<Output = Result<(), String>>) -> Check {
    let started = Instant::now();
    let outcome = probe.await;
    let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    match outcome {
        Ok(()) => Check {
            status: "up",
            latency_ms,
            error: None,
        },
        Err(error) => {
            tracing::warn!(dependency, %error, "readiness check failed");
            Check {
                status: "down",
                latency_ms,
                error: Some(UNAVAILABLE.to_owned()),
            }
        }
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
