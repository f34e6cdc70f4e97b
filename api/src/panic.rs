//! The last line of defence: a handler that panics answers a coded GraphQL error — `INTERNAL_SERVER_ERROR`
//! with the request id, so the user has something to quote — instead of dropping the connection,
//! and the panic is logged with that id. Nothing of the panic's text reaches the client.

use axum::Json;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use fishapp_domain::ErrorCode;
use futures::FutureExt;
use std::panic::AssertUnwindSafe;

/// Middleware: runs the rest of the stack, turning a panic into a 500 with a GraphQL body.
pub(crate) async fn catch_panic(request: Request, next: Next) -> Response {
    let request_id = crate::router::request_id(request.headers()).to_owned();
    match AssertUnwindSafe(next.run(request)).catch_unwind().await {
        Ok(response) => response,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(request_id, panic = %what, "a request handler panicked");
            let body = serde_json::json!({
                "errors": [{
                    "message": "internal error",
                    "extensions": {
                        "code": ErrorCode::InternalServerError.as_str(),
                        "requestId": request_id,
                    },
                }],
            });
            (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    #[tokio::test]
    async fn a_panic_becomes_a_coded_error_with_the_request_id() {
        let router = Router::new()
            .route(
                "/boom",
                get(|| async {
                    if std::hint::black_box(true) {
                        panic!("secret detail");
                    }
                    "unreachable"
                }),
            )
            .layer(axum::middleware::from_fn(catch_panic));
        let request = Request::builder()
            .uri("/boom")
            .header("x-request-id", "req-42")
            .body(Body::empty())
            .expect("a request");
        let response = router.oneshot(request).await.expect("an answer");
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .expect("a body");
        let body: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON");
        assert_eq!(
            body["errors"][0]["extensions"]["code"],
            "INTERNAL_SERVER_ERROR"
        );
        assert_eq!(body["errors"][0]["extensions"]["requestId"], "req-42");
        assert!(!String::from_utf8_lossy(&bytes).contains("secret detail"));
    }
}
