//! Prometheus metrics: per-route request counts and latency histograms, served at `/metrics` on a
//! listener of their own (never the public port) together with whatever else the process
//! registered (the relay's, in `fishapp dev`). The
//! registry is the process's, handed in (no global state), so several apps in one test process
//! count separately.

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};
use std::sync::Arc;
use std::time::Instant;

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
    axum::Router::new()
        .route("/healthz", axum::routing::get(crate::health::healthz))
        .route(
            "/metrics",
            axum::routing::get(move || {
                let registry = registry.clone();
                async move { render_registry(&registry) }
            }),
        )
}

fn render_registry(registry: &Registry) -> Response {
    let encoder = TextEncoder::new();
    let mut body = Vec::new();
    match encoder.encode(&registry.gather(), &mut body) {
        Ok(()) => ([(CONTENT_TYPE, encoder.format_type().to_owned())], body).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "could not encode metrics");
            axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
