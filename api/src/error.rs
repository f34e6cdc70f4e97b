//! The API's one error type. Every resolver returns `Result<T, ApiError>`-derived errors through
//! [`ErrorExtensions::extend`], which sets `extensions.code` (and `field` for bad input, and
//! `retryAfterSeconds` when rate limited). Internal details never reach the client: they are
//! logged, and the client gets the request id to quote (see `finalize_response`).

use async_graphql::ErrorExtensions;
use fishapp_domain::{ErrorCode, Invalid};
use fishapp_temporal::{SagaError, TemporalUnavailable};

type Source = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadUserInput { field: String, message: String },
    /// A request over one of the server's limits: `BAD_USER_INPUT` with `field` and
    /// `extensions.limit` naming the limit (as the query-cost guard's limits do).
    #[error("{message}")]
    OverLimit {
        field: String,
        limit: &'static str,
        message: String,
    },
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// A business rule said no: `CONFLICT` (or `NOT_FOUND`) with a stable `extensions.reason`.
    #[error("{message}")]
    Refused {
        code: ErrorCode,
        reason: &'static str,
        message: String,
    },
    #[error("too many attempts; try again in {retry_after_seconds} seconds")]
    RateLimited { retry_after_seconds: u64 },
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Timeout(String),
    #[error("internal error")]
    Internal(#[source] Source),
}

impl ApiError {
    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::BadUserInput { .. } | ApiError::OverLimit { .. } => ErrorCode::BadUserInput,
            ApiError::Unauthenticated(_) => ErrorCode::Unauthenticated,
            ApiError::Forbidden(_) => ErrorCode::Forbidden,
            ApiError::NotFound(_) => ErrorCode::NotFound,
            ApiError::Conflict(_) => ErrorCode::Conflict,
            ApiError::Refused { code, .. } => *code,
            ApiError::RateLimited { .. } => ErrorCode::RateLimited,
            ApiError::Unavailable(_) => ErrorCode::Unavailable,
            ApiError::Timeout(_) => ErrorCode::Timeout,
            ApiError::Internal(_) => ErrorCode::InternalServerError,
        }
    }

    pub fn bad_input(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::BadUserInput {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn over_limit(
        field: impl Into<String>,
        limit: &'static str,
        message: impl Into<String>,
    ) -> Self {
        ApiError::OverLimit {
            field: field.into(),
            limit,
            message: message.into(),
        }
    }

    pub fn internal(source: impl Into<Source>) -> Self {
        ApiError::Internal(source.into())
    }

    /// A dependency (Redis, say) failed in a way the client can only wait out.
    pub fn unavailable(what: &str, source: impl std::fmt::Display) -> Self {
        tracing::warn!(dependency = what, error = %source, "dependency unavailable");
        ApiError::Unavailable(format!("{what} is unavailable; try again shortly"))
    }
}

impl From<Invalid> for ApiError {
    fn from(e: Invalid) -> Self {
        ApiError::BadUserInput {
            message: e.to_string(),
            field: e.field,
        }
    }
}

impl From<fishapp_domain::board::ApplyRefusal> for ApiError {
    fn from(refusal: fishapp_domain::board::ApplyRefusal) -> Self {
        use fishapp_domain::board::ApplyRefusal;
        ApiError::Refused {
            code: match refusal {
                ApplyRefusal::NotFound => ErrorCode::NotFound,
                _ => ErrorCode::Conflict,
            },
            reason: refusal.code(),
            message: refusal.message().to_owned(),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                ApiError::unavailable("the database", e)
            }
            other => ApiError::internal(other),
        }
    }
}

impl From<redis::RedisError> for ApiError {
    fn from(e: redis::RedisError) -> Self {
        ApiError::unavailable("the session store", e)
    }
}

impl From<TemporalUnavailable> for ApiError {
    fn from(e: TemporalUnavailable) -> Self {
        ApiError::unavailable("the workflow service", e)
    }
}

/// What a client hears of a saga it may not see or that does not exist: never an id (a
/// workflow id names the deployment's prefix).
pub const NO_SUCH_SAGA: &str = "no such saga";

/// Temporal's side of a saga: never the caller's fault, and never a business failure (a saga
/// that failed for a business reason is an outcome, not an error: see `SagaOutcome::Failed`).
impl From<SagaError> for ApiError {
    fn from(e: SagaError) -> Self {
        match e {
            SagaError::Unavailable(reason) => ApiError::unavailable("the workflow service", reason),
            SagaError::NotFound => ApiError::NotFound(NO_SUCH_SAGA.to_owned()),
            SagaError::TimedOut => {
                tracing::error!("a saga timed out");
                ApiError::Timeout("the saga ran out of time; nothing more will happen".to_owned())
            }
            SagaError::Aborted(reason) => ApiError::internal(format!("saga aborted: {reason}")),
        }
    }
}

/// Resolvers return `Err(e.extend())`, or use `?` on `Result<_, ApiError>` inside functions
/// returning [`ApiResult`]; async-graphql's blanket `From<impl Display>` would keep the message
/// but drop the code (`finalize_response` then treats the error as internal).
impl ErrorExtensions for ApiError {
    fn extend(&self) -> async_graphql::Error {
        if let ApiError::Internal(source) = self {
            tracing::error!(error = %source, "internal error while resolving a GraphQL request");
        }
        async_graphql::Error::new(self.to_string()).extend_with(|_, ext| {
            ext.set("code", self.code().as_str());
            match self {
                ApiError::BadUserInput { field, .. } => ext.set("field", field.as_str()),
                ApiError::OverLimit { field, limit, .. } => {
                    ext.set("field", field.as_str());
                    ext.set("limit", *limit);
                }
                ApiError::RateLimited {
                    retry_after_seconds,
                } => ext.set("retryAfterSeconds", *retry_after_seconds),
                ApiError::Refused { reason, .. } => ext.set("reason", *reason),
                _ => {}
            }
        })
    }
}

/// An error of ours as a request-level error (no location, no path): the one error of a
/// response refused before it ran.
pub fn server_error(error: ApiError) -> async_graphql::ServerError {
    let error = error.extend();
    async_graphql::ServerError {
        message: error.message,
        source: None,
        locations: Vec::new(),
        path: Vec::new(),
        extensions: error.extensions,
    }
}

/// What resolvers return.
pub type ApiResult<T> = Result<T, async_graphql::Error>;

/// Lets resolvers write `fallible().await.gql()?`.
pub trait IntoGql<T> {
    fn gql(self) -> ApiResult<T>;
}

impl<T, E: Into<ApiError>> IntoGql<T> for Result<T, E> {
    fn gql(self) -> ApiResult<T> {
        self.map_err(|e| e.into().extend())
    }
}

/// Last touch on every GraphQL response: each error gets the request id, and an error without
/// a code gets one — request-level errors (parse, validation, limits: no path) are the client's
/// (`BAD_USER_INPUT`); a resolver error without a code escaped `ApiError`, so it is treated as
/// internal and its message, which may carry details, is replaced.
pub fn finalize_response(response: &mut async_graphql::Response, request_id: &str) {
    for error in &mut response.errors {
        let extensions = error.extensions.get_or_insert_with(Default::default);
        if extensions.get("code").is_none() {
            if error.path.is_empty() {
                extensions.set("code", ErrorCode::BadUserInput.as_str());
            } else {
                tracing::error!(request_id, message = %error.message, "resolver error without a code");
                error.message = "internal error".to_owned();
                extensions.set("code", ErrorCode::InternalServerError.as_str());
            }
        }
        extensions.set("requestId", request_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extensions(e: ApiError) -> serde_json::Value {
        let server = e.extend().into_server_error(async_graphql::Pos::default());
        serde_json::to_value(server.extensions).expect("extensions serialize")
    }

    #[test]
    fn bad_input_names_the_field() {
        let ext = extensions(ApiError::bad_input("email", "not an email address"));
        assert_eq!(ext["code"], "BAD_USER_INPUT");
        assert_eq!(ext["field"], "email");
    }

    #[test]
    fn rate_limited_says_how_long_to_wait() {
        let ext = extensions(ApiError::RateLimited {
            retry_after_seconds: 42,
        });
        assert_eq!(ext["code"], "RATE_LIMITED");
        assert_eq!(ext["retryAfterSeconds"], 42);
    }

    #[test]
    fn internal_details_stay_out_of_the_message() {
        let gql = ApiError::internal("password=hunter2").extend();
        assert_eq!(gql.message, "internal error");
    }

    #[test]
    fn saga_failures_on_temporal_side_have_codes_of_their_own() {
        let cases = [
            (SagaError::Unavailable("refused".into()), "UNAVAILABLE"),
            (SagaError::NotFound, "NOT_FOUND"),
            (SagaError::TimedOut, "TIMEOUT"),
            (
                SagaError::Aborted("terminated".into()),
                "INTERNAL_SERVER_ERROR",
            ),
        ];
        for (error, code) in cases {
            assert_eq!(extensions(error.into())["code"], code);
        }
    }

    #[test]
    fn temporal_down_is_unavailable() {
        let e: ApiError = TemporalUnavailable {
            reason: "connection refused".into(),
        }
        .into();
        assert_eq!(extensions(e)["code"], "UNAVAILABLE");
    }
}
