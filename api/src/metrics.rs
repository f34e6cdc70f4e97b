//! Prometheus metrics: per-route request counts and latency histograms, served at `/metrics` on a
//! listener of their own (never the public port) together with whatever else the process
//! registered (the relay's, in `fishapp dev`). The
//! registry is the process's, handed in (no global state), so several apps in one test process
//! count separately. A role may add the text another exporter of its process serves (the
//! Temporal SDK's, in `fishapp worker`): see [`probe_router_with`].

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) struct HttpMetrics {
    requests: IntCounterVec,
    latency: HistogramVec,
}

impl HttpMetrics {
    pub(crate) fn new(registry: &Registry) -> Result<Arc<Self>, prometheus::Error> {
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests answered"),
            &["method", "route", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Time from request to response head",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["method", "route"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        Ok(Arc::new(Self { requests, latency }))
    }
}

/// Middleware: counts and times every request by its route template (never the raw path, which
/// would make one time series per id).
pub(crate) async fn track(
    State(metrics): State<Arc<HttpMetrics>>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    metrics
        .latency
        .with_label_values(&[&method, &route])
        .observe(started.elapsed().as_secs_f64());
    metrics
        .requests
        .with_label_values(&[&method, &route, response.status().as_str()])
        .inc();
    response
}

/// A registry for one process: every metric name starts with `fishapp_`.
pub fn new_registry() -> Registry {
    Registry::new_custom(Some("fishapp".to_owned()), None).unwrap_or_else(|_| Registry::new())
}

/// What the scrapers' listener of every role serves (the relay's and the worker's probe address,
/// the API's metrics address): `/healthz` and `/metrics`.
pub fn probe_router(registry: Registry) -> axum::Router {
    probe_router_with(registry, None)
}

/// [`probe_router`], whose `/metrics` also carries the Prometheus text that another exporter of
/// this process serves at `http://<also>/metrics` (a loopback address: the Temporal SDK's, which
/// serves its metrics only so). When that cannot be read, `/metrics` serves the registry's alone
/// and the log says why.
pub fn probe_router_with(registry: Registry, also: Option<SocketAddr>) -> axum::Router {
    // Loopback only: no proxy, whatever the environment says.
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(SCRAPE_TIMEOUT)
        .build()
        .inspect_err(
            |e| tracing::error!(error = %e, "no HTTP client for the process's other metrics"),
        )
        .ok();
    let also = also.zip(client);
    axum::Router::new()
        .route("/healthz", axum::routing::get(crate::health::healthz))
        .route(
            "/metrics",
            axum::routing::get(move || {
                let (registry, also) = (registry.clone(), also.clone());
                async move { render_registry(&registry, also).await }
            }),
        )
}

async fn render_registry(
    registry: &Registry,
    also: Option<(SocketAddr, reqwest::Client)>,
) -> Response {
    let encoder = TextEncoder::new();
    let mut body = Vec::new();
    if let Err(e) = encoder.encode(&registry.gather(), &mut body) {
        tracing::error!(error = %e, "could not encode metrics");
        return axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    if let Some((addr, client)) = also {
        match scrape(&client, addr).await {
            Ok(text) => body.extend_from_slice(&text),
            Err(e) => {
                tracing::warn!(%addr, error = %e, "could not read the process's other metrics")
            }
        }
    }
    ([(CONTENT_TYPE, encoder.format_type().to_owned())], body).into_response()
}

/// The most a scrape of another exporter may read (the SDK's text is some tens of KiB).
const MAX_SCRAPE_BYTES: usize = 8 << 20;
/// How long a scrape of another exporter may take (it is in this process, on loopback).
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
enum ScrapeError {
    #[error(transparent)]
    Http(#[from] reqwest::Error),
    #[error("the answer is over {MAX_SCRAPE_BYTES} bytes")]
    TooLarge,
}

/// The body of `GET http://<addr>/metrics`, read no further than [`MAX_SCRAPE_BYTES`].
async fn scrape(client: &reqwest::Client, addr: SocketAddr) -> Result<Vec<u8>, ScrapeError> {
    let mut response = client
        .get(format!("http://{addr}/metrics"))
        .send()
        .await?
        .error_for_status()?;
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > MAX_SCRAPE_BYTES {
            return Err(ScrapeError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
