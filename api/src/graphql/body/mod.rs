//! Reading a GraphQL request from an HTTP request: a POST body (JSON, or a multipart upload read
//! under limits that hold *while the body streams in*, see [`multipart`]) or a GET request's query
//! string.
//!
//! Every JSON a client sends (a JSON body, the multipart `operations` part, a GET request's
//! `variables`, a WebSocket message) is held to [`JsonLimits`] before it is parsed: parsed into
//! GraphQL values, a JSON document takes far more memory than its text (a 60 MiB list of zeros
//! took 3.5 GB), so both its size and the number of values in it are bounded. Errors are ours
//! (`BAD_USER_INPUT`, the field at fault where there is one), never the parser's text.

mod json;
mod multipart;
mod query_string;

pub use json::JsonLimits;
pub use multipart::UploadLimits;
pub use query_string::from_query_string;

use crate::error::AppError;
use axum::body::Body;
use futures::StreamExt;

/// How a POST body is read: the upload limits for multipart bodies, the JSON limits for JSON.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    pub upload: UploadLimits,
    pub json: JsonLimits,
    /// The HTTP body limit (enforced by a layer around every route; named here for its error).
    pub body_bytes: usize,
}

/// Why a body is not a GraphQL request we take.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The body passed a size limit (the JSON limit for a JSON body, the HTTP body limit for an
    /// upload): HTTP 413 with this error.
    #[error("{0}")]
    TooLarge(AppError),
    #[error(transparent)]
    Refused(#[from] AppError),
}

fn bad(message: impl Into<String>) -> BodyError {
    BodyError::Refused(AppError::bad_input("body", message))
}

/// Reads the request from a POST body with the given content type.
pub async fn read(
    content_type: Option<&str>,
    body: Body,
    limits: BodyLimits,
) -> Result<async_graphql::Request, BodyError> {
    let boundary = content_type.and_then(|ct| multer::parse_boundary(ct).ok());
    match boundary {
        Some(boundary) => multipart::read_multipart(body, boundary, limits).await,
        None => read_json(content_type, body, &limits).await,
    }
}

fn is_too_large(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(error);
    while let Some(e) = source {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = e.source();
    }
    false
}

async fn read_json(
    content_type: Option<&str>,
    body: Body,
    body_limits: &BodyLimits,
) -> Result<async_graphql::Request, BodyError> {
    let limits = &body_limits.json;
    if let Some(ct) = content_type {
        let essence = ct.split(';').next().unwrap_or_default().trim();
        if !essence.eq_ignore_ascii_case("application/json") {
            let refused = bad(format!(
                "unsupported content type {essence:?}: send application/json, or \
                 multipart/form-data for uploads"
            ));
            return Err(drained(body, refused).await);
        }
    }
    // Kept up to the JSON limit; past it the rest is read and dropped (see `drained`).
    let mut bytes = Vec::new();
    let mut over = false;
    let mut chunks = body.into_data_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| read_error(&e, body_limits.body_bytes))?;
        if over || bytes.len() + chunk.len() > limits.max_bytes {
            over = true;
            bytes = Vec::new();
            continue;
        }
        bytes.extend_from_slice(&chunk);
    }
    if over {
        return Err(too_large("maxJsonBytes", limits.max_bytes));
    }
    parse_operations(&bytes, limits, "body")
}

/// A body over the limit named `limit` (`maxJsonBytes`, `maxBodyBytes`) of `bytes`.
fn too_large(limit: &'static str, bytes: usize) -> BodyError {
    BodyError::TooLarge(AppError::over_limit(
        "body",
        limit,
        format!("the request body is over {bytes} bytes"),
    ))
}

fn read_error(error: &axum::Error, body_bytes: usize) -> BodyError {
    if is_too_large(error) {
        too_large("maxBodyBytes", body_bytes)
    } else {
        bad("the request body could not be read")
    }
}

/// `refused`, once the rest of the body has been read and dropped. A request refused before its
/// body is read would otherwise be answered while the client is still sending, and the
/// connection closed on unread data: the client's TCP stack then sees a reset and often loses
/// the answer. Draining costs bandwidth, never memory (nothing is kept), and stops at the HTTP
/// body limit.
async fn drained(body: Body, refused: BodyError) -> BodyError {
    let mut chunks = body.into_data_stream();
    while let Some(chunk) = chunks.next().await {
        if chunk.is_err() {
            break;
        }
    }
    refused
}

/// One GraphQL request (batches are not served) from JSON bytes, held to `limits` and then
/// read straight into the request (no intermediate JSON tree: this runs for every POST).
fn parse_operations(
    bytes: &[u8],
    limits: &JsonLimits,
    field: &str,
) -> Result<async_graphql::Request, BodyError> {
    if bytes.len() > limits.max_bytes {
        return Err(too_large("maxJsonBytes", limits.max_bytes));
    }
    limits.check(field, bytes)?;
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Err(bad("batched requests are not served: send one operation"));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        // A wrong type can show before a syntax error further on; the syntax error is the one
        // to report. (Only a refused body pays for the second read.)
        let syntax = match e.classify() {
            serde_json::error::Category::Data => {
                serde_json::from_slice::<serde::de::IgnoredAny>(bytes).err()
            }
            _ => Some(e),
        };
        match syntax {
            Some(e) => bad(format!(
                "not a JSON GraphQL request (line {}, column {})",
                e.line(),
                e.column()
            )),
            None => bad(
                "not a GraphQL request: expected {\"query\": …, \"variables\": …, \"operationName\": …}",
            ),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) const LIMITS: BodyLimits = BodyLimits {
        upload: UploadLimits {
            max_file_bytes: 100,
            max_files: 2,
        },
        json: JsonLimits {
            max_bytes: 1024,
            max_values: 50,
        },
        body_bytes: 1 << 20,
    };

    #[tokio::test]
    async fn json_bodies_are_checked_with_our_words() {
        for (ct, body, says) in [
            (Some("text/plain"), "{}", "unsupported content type"),
            (
                Some("application/json"),
                "{\"query\": 1",
                "not a JSON GraphQL request",
            ),
            (
                Some("application/json"),
                "[{\"query\": \"{ a }\"}]",
                "batched",
            ),
            (
                Some("application/json"),
                "{\"variables\": 1}",
                "not a GraphQL request",
            ),
            (
                Some("application/json"),
                "{\"query\": 1}",
                "not a GraphQL request",
            ),
            (Some("application/json"), " \n [1]", "batched"),
            (
                Some("application/json"),
                "{\"query\": \"{ a }\"} trailing",
                "not a JSON GraphQL request",
            ),
        ] {
            match read(ct, Body::from(body), LIMITS).await {
                Err(BodyError::Refused(e)) => {
                    assert!(e.to_string().contains(says), "{body}: {e}")
                }
                other => panic!("{body}: {:?}", other.map(|_| ())),
            }
        }
        let ok = read(
            Some("application/json"),
            Body::from("{\"query\": \"{ a }\"}"),
            LIMITS,
        )
        .await
        .expect("read");
        assert_eq!(ok.query, "{ a }");
    }
}
