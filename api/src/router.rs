//! The HTTP surface: routes and the middleware every request passes through.

use crate::calendar;
use crate::client_address::TrustedProxies;
use crate::error::{finalize_response, server_error};
use crate::graphiql;
use crate::graphql::body::{self, BodyError, BodyLimits, JsonLimits, UploadLimits};
use crate::graphql::loaders::Loaders;
use crate::graphql::streams::StreamCaps;
use crate::graphql::{self, GuardedSchema, QueryLimits, RequestContext};
use crate::health;
use crate::metrics::{self, HttpMetrics};
use crate::panic;
use crate::websocket;
use async_graphql::Executor;
use async_graphql_axum::GraphQLResponse;
use axum::Json;
use axum::extract::{ConnectInfo, FromRef, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Router, middleware};
use fishapp_app::account::Accounts;
use fishapp_app::board::Board;
use fishapp_app::cache::Redis;
use fishapp_app::chat::Chat;
use fishapp_app::media::Media;
use fishapp_app::{Calendar, Notifications};
use fishapp_store::Database;
use fishapp_temporal::Temporal;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceBuilder;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The request's id (set by `SetRequestIdLayer` before anything else runs), or "".
pub(crate) fn request_id(headers: &HeaderMap) -> &str {
    headers
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// Handles on everything outside the process that the API talks to. Each connects lazily and
/// reconnects by itself, so the API starts (and serves what it can) while any of them is down.
#[derive(Clone)]
pub struct Dependencies {
    pub db: Database,
    pub redis: Redis,
    pub nats: async_nats::Client,
    pub temporal: Temporal,
    /// Bound on each readiness check.
    pub readiness_timeout: Duration,
    /// `/readyz` reports the outbox relay stalled when an event has waited longer.
    pub relay_stall_threshold: Duration,
}

/// HTTP knobs from configuration.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Origins a browser may call the API from (`*` allows any).
    pub cors_allowed_origins: Vec<String>,
    /// Largest request body accepted, in bytes.
    pub body_limit_bytes: usize,
    /// Where the local object store keeps its files, served under `/media` (None: another
    /// backend serves them).
    pub media_dir: Option<std::path::PathBuf>,
    /// What one GraphQL document may cost (checked before validation, on every transport).
    pub query_limits: QueryLimits,
    /// Files per multipart request and bytes per file, checked while the body streams in.
    pub upload_limits: UploadLimits,
    /// Size and values of a request's JSON (a JSON body, the multipart `operations`, GET
    /// variables, a WebSocket message).
    pub json_limits: JsonLimits,
    /// The process's metrics registry, served at `/metrics`.
    pub metrics: prometheus::Registry,
    /// Serve the GraphiQL IDE to browsers at `/graphql` (its assets under `/graphiql`).
    pub graphql_ide: bool,
    /// Answer introspection queries (`__schema`, `__type`); GraphiQL needs them for its docs.
    pub graphql_introspection: bool,
    /// Proxies whose `X-Forwarded-For` names the client (per-client limits count by it).
    pub trusted_proxies: TrustedProxies,
    /// How long a new WebSocket may take to send `connection_init`.
    pub websocket_init_timeout: Duration,
    /// Subscriptions one connection, and one user, may hold open.
    pub stream_caps: StreamCaps,
    /// Operations (subscriptions included) one WebSocket may run at once.
    pub websocket_max_operations: usize,
    /// Each WebSocket's read buffer and write threshold.
    pub websocket_buffers: crate::websocket::Buffers,
}

#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error("invalid CORS origin {origin:?}: {reason}")]
    InvalidCorsOrigin { origin: String, reason: String },
    #[error("could not set up metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

#[derive(Clone)]
struct AppState {
    deps: Dependencies,
    accounts: Accounts,
    calendar: Calendar,
    schema: GuardedSchema,
    metrics: Arc<HttpMetrics>,
    body_limits: BodyLimits,
    graphql_ide: bool,
    trusted_proxies: TrustedProxies,
    websocket_init_timeout: Duration,
    stream_caps: StreamCaps,
    websocket_max_operations: usize,
    websocket_buffers: crate::websocket::Buffers,
}

impl FromRef<AppState> for Dependencies {
    fn from_ref(state: &AppState) -> Self {
        state.deps.clone()
    }
}

impl FromRef<AppState> for Calendar {
    fn from_ref(state: &AppState) -> Self {
        state.calendar.clone()
    }
}

impl FromRef<AppState> for Arc<HttpMetrics> {
    fn from_ref(state: &AppState) -> Self {
        state.metrics.clone()
    }
}

/// The application's use cases the API serves.
#[derive(Clone)]
pub struct Services {
    pub accounts: Accounts,
    pub media: Media,
    pub board: Board,
    pub chat: Chat,
    pub calendar: Calendar,
    pub notifications: Notifications,
}

/// Builds the whole HTTP application. Serve it with connect info (`into_make_service_with_connect_info::<SocketAddr>`):
/// login limits count per client address.
pub fn router(
    deps: Dependencies,
    services: Services,
    settings: &HttpSettings,
) -> Result<Router, RouterError> {
    let build = || {
        let mut schema = graphql::schema_builder();
        if !settings.graphql_introspection {
            schema = schema.disable_introspection();
        }
        schema
            .data(deps.clone())
            .data(services.accounts.clone())
            .data(services.media.clone())
            .data(services.board.clone())
            .data(services.chat.clone())
            .data(services.calendar.clone())
            .data(services.notifications.clone())
            .data(settings.stream_caps.clone())
    };
    let schema = GuardedSchema::new(build, settings.query_limits);
    let metrics = HttpMetrics::new(&settings.metrics)?;
    let state = AppState {
        deps,
        accounts: services.accounts.clone(),
        calendar: services.calendar.clone(),
        schema,
        metrics: metrics.clone(),
        body_limits: BodyLimits {
            upload: settings.upload_limits,
            json: settings.json_limits,
            body_bytes: settings.body_limit_bytes,
        },
        graphql_ide: settings.graphql_ide,
        trusted_proxies: settings.trusted_proxies.clone(),
        websocket_init_timeout: settings.websocket_init_timeout,
        stream_caps: settings.stream_caps.clone(),
        websocket_max_operations: settings.websocket_max_operations,
        websocket_buffers: settings.websocket_buffers,
    };

    let mut routes = Router::new();
    if let Some(dir) = &settings.media_dir {
        // Keys are unique per image and never rewritten: cache for good.
        let files = ServiceBuilder::new()
            .layer(SetResponseHeaderLayer::overriding(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ))
            .layer(SetResponseHeaderLayer::overriding(
                HeaderName::from_static("x-content-type-options"),
                HeaderValue::from_static("nosniff"),
            ))
            .service(ServeDir::new(dir));
        routes = routes.nest_service("/media", files);
    }
    if settings.graphql_ide {
        routes = routes.route(
            &format!("{}/{{name}}", graphiql::ASSETS_PATH),
            get(graphiql::asset),
        );
    }

    let routes = routes
        .route("/graphql", get(graphql_get).post(graphql_post))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/trips/{file}", get(calendar::trip_event))
        .with_state(state);
    layered(routes, metrics, settings)
}

/// `routes` behind the middleware every request of the API passes through (request id, trace
/// span, CORS, body limit, metrics, panic catcher), with metrics registered in
/// `settings.metrics`. For handlers outside the API that must be measured or served under the same
/// conditions (the benchmarks' plain handlers).
pub fn with_middleware(routes: Router, settings: &HttpSettings) -> Result<Router, RouterError> {
    layered(routes, HttpMetrics::new(&settings.metrics)?, settings)
}

fn layered(
    routes: Router,
    metrics: Arc<HttpMetrics>,
    settings: &HttpSettings,
) -> Result<Router, RouterError> {
    let cors = cors_layer(&settings.cors_allowed_origins)?;
    let trace = TraceLayer::new_for_http()
        .make_span_with(|request: &Request| {
            let request_id = request_id(request.headers());
            // The path only: query strings can carry user data.
            tracing::info_span!("http", method = %request.method(), path = %request.uri().path(), request_id)
        })
        .on_response(DefaultOnResponse::new().level(Level::INFO));

    // Layers wrap bottom-up: the request id is set first, so the trace span, the handlers and
    // the response all see the same one.
    Ok(routes
        .layer(middleware::from_fn(panic::catch_panic))
        .layer(middleware::from_fn_with_state(metrics, metrics::track))
        .layer(RequestBodyLimitLayer::new(settings.body_limit_bytes))
        .layer(cors)
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(trace)
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid)))
}

async fn graphql_post(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    match body::read(content_type, body, state.body_limits).await {
        Ok(request) => execute(&state, peer, &parts.headers, request)
            .await
            .into_response(),
        Err(refused) => {
            let (status, error) = match refused {
                BodyError::TooLarge(error) => (StatusCode::PAYLOAD_TOO_LARGE, error),
                BodyError::Refused(error) => (StatusCode::BAD_REQUEST, error),
            };
            (status, refusal(server_error(error), &parts.headers)).into_response()
        }
    }
}

/// GET serves the GraphiQL IDE to a browser (it asks for HTML) when the IDE is on, subscriptions
/// to a WebSocket upgrade, and runs queries for everyone else (`?query=…`), as the
/// GraphQL-over-HTTP spec allows.
async fn graphql_get(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    if request
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
    {
        let client = state.trusted_proxies.client(peer.ip(), request.headers());
        let settings = websocket::Session {
            schema: state.schema.clone(),
            db: state.deps.db.clone(),
            client,
            json_limits: state.body_limits.json,
            init_timeout: state.websocket_init_timeout,
            streams: state.stream_caps.clone(),
            max_operations: state.websocket_max_operations,
            buffers: state.websocket_buffers,
        };
        return websocket::upgrade(settings, request).await;
    }
    if state.graphql_ide && wants_html(&request) {
        return graphiql::page();
    }
    let headers = request.headers().clone();
    let query_string = request.uri().query().unwrap_or_default();
    let request = match body::from_query_string(query_string, &state.body_limits.json) {
        Ok(request) => request,
        Err(error) => {
            return (
                StatusCode::BAD_REQUEST,
                refusal(server_error(error), &headers),
            )
                .into_response();
        }
    };
    let request = in_context(&state, peer, &headers, request);
    match state.schema.execute_query(request).await {
        Ok(response) => finalized(response, &headers).into_response(),
        Err(refused) => (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "POST")],
            refusal(refused, &headers),
        )
            .into_response(),
    }
}

/// A request refused before it ran: its one error, finalized like every response.
fn refusal(error: async_graphql::ServerError, headers: &HeaderMap) -> GraphQLResponse {
    finalized(async_graphql::Response::from_errors(vec![error]), headers)
}

/// `response` with codes and the request's id ([`finalize_response`]).
fn finalized(mut response: async_graphql::Response, headers: &HeaderMap) -> GraphQLResponse {
    finalize_response(&mut response, request_id(headers));
    response.into()
}

async fn execute(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
    request: async_graphql::Request,
) -> GraphQLResponse {
    let request = in_context(state, peer, headers, request);
    finalized(state.schema.execute(request).await, headers)
}

/// `request` with what its resolvers read: the caller (credential and address) and the
/// request's own loaders.
fn in_context(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
    request: async_graphql::Request,
) -> async_graphql::Request {
    let client = state.trusted_proxies.client(peer.ip(), headers);
    let context = RequestContext::new(bearer_token(headers), client);
    request.data(context).data(Loaders::new(&state.deps.db))
}

/// The credential in `Authorization: Bearer <token>`.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    credential(value, BareToken::Refused)
}

/// Whether an `Authorization` value may be the token alone, without `Bearer ` (the original
/// API's WebSocket clients send it so; HTTP clients never did).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum BareToken {
    Accepted,
    Refused,
}

/// The token of an `Authorization` value: `Bearer <token>` (the scheme is case-insensitive), or
/// the bare token where accepted. Empty is none.
pub(crate) fn credential(value: &str, bare: BareToken) -> Option<String> {
    let value = value.trim();
    let token = match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        // The scheme alone is no token.
        None if value.eq_ignore_ascii_case("bearer") => return None,
        _ if bare == BareToken::Accepted => value,
        _ => return None,
    };
    (!token.is_empty()).then(|| token.to_owned())
}

/// The public keys ID tokens are verified with, for other services that check them.
async fn jwks(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        Json(state.accounts.keys().jwks()),
    )
}

fn wants_html(request: &Request) -> bool {
    request.uri().query().is_none_or(|q| !q.contains("query="))
        && request
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|accept| accept.contains("text/html"))
}

fn cors_layer(origins: &[String]) -> Result<CorsLayer, RouterError> {
    let allow_origin = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        let parsed = origins
            .iter()
            .map(|origin| {
                HeaderValue::from_str(origin).map_err(|e| RouterError::InvalidCorsOrigin {
                    origin: origin.clone(),
                    reason: e.to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        AllowOrigin::list(parsed)
    };
    Ok(CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, REQUEST_ID])
        .expose_headers([REQUEST_ID])
        .max_age(Duration::from_secs(600)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_come_as_bearer_or_bare_where_accepted() {
        for bare in [BareToken::Accepted, BareToken::Refused] {
            assert_eq!(credential("Bearer abc", bare).as_deref(), Some("abc"));
            assert_eq!(credential(" bearer  abc ", bare).as_deref(), Some("abc"));
            assert_eq!(credential("Bearer ", bare), None);
        }
        assert_eq!(
            credential("abc", BareToken::Accepted).as_deref(),
            Some("abc")
        );
        assert_eq!(credential("abc", BareToken::Refused), None);
        assert_eq!(credential("Basic abc", BareToken::Refused), None);
    }
}
