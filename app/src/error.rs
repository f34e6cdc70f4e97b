//! The API's one error type. Every resolver returns `Result<T, AppError>`-derived errors through
//! [`ErrorExtensions::extend`], which sets `extensions.code` (and `field` for bad input, and
//! `retryAfterSeconds` when rate limited). Internal details never reach the client: they are
//! logged, and the client gets the request id to quote (see `finalize_response`).

use fishapp_domain::{ErrorCode, Invalid};
use fishapp_temporal::{SagaError, TemporalUnavailable};

type Source = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
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

impl AppError {
    pub fn code(&self) -> ErrorCode {
        match self {
            AppError::BadUserInput { .. } | AppError::OverLimit { .. } => ErrorCode::BadUserInput,
            AppError::Unauthenticated(_) => ErrorCode::Unauthenticated,
            AppError::Forbidden(_) => ErrorCode::Forbidden,
            AppError::NotFound(_) => ErrorCode::NotFound,
            AppError::Conflict(_) => ErrorCode::Conflict,
            AppError::Refused { code, .. } => *code,
            AppError::RateLimited { .. } => ErrorCode::RateLimited,
            AppError::Unavailable(_) => ErrorCode::Unavailable,
            AppError::Timeout(_) => ErrorCode::Timeout,
            AppError::Internal(_) => ErrorCode::InternalServerError,
        }
    }

    pub fn bad_input(field: impl Into<String>, message: impl Into<String>) -> Self {
        AppError::BadUserInput {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn over_limit(
        field: impl Into<String>,
        limit: &'static str,
        message: impl Into<String>,
    ) -> Self {
        AppError::OverLimit {
            field: field.into(),
            limit,
            message: message.into(),
        }
    }

    pub fn internal(source: impl Into<Source>) -> Self {
        AppError::Internal(source.into())
    }

    /// A dependency (Redis, say) failed in a way the client can only wait out.
    pub fn unavailable(what: &str, source: impl std::fmt::Display) -> Self {
        tracing::warn!(dependency = what, error = %source, "dependency unavailable");
        AppError::Unavailable(format!("{what} is unavailable; try again shortly"))
    }
}

impl From<Invalid> for AppError {
    fn from(e: Invalid) -> Self {
        AppError::BadUserInput {
            message: e.to_string(),
            field: e.field,
        }
    }
}

impl From<fishapp_domain::board::ApplyRefusal> for AppError {
    fn from(refusal: fishapp_domain::board::ApplyRefusal) -> Self {
        use fishapp_domain::board::ApplyRefusal;
        AppError::Refused {
            code: match refusal {
                ApplyRefusal::NotFound => ErrorCode::NotFound,
                ApplyRefusal::Removed => ErrorCode::Forbidden,
                _ => ErrorCode::Conflict,
            },
            reason: refusal.code(),
            message: refusal.message().to_owned(),
        }
    }
}

impl From<fishapp_domain::review::ReviewRefusal> for AppError {
    fn from(refusal: fishapp_domain::review::ReviewRefusal) -> Self {
        use fishapp_domain::review::ReviewRefusal;
        AppError::Refused {
            code: match refusal {
                ReviewRefusal::NotFound => ErrorCode::NotFound,
                ReviewRefusal::OwnTrip | ReviewRefusal::NotMember => ErrorCode::Forbidden,
                ReviewRefusal::NotOver | ReviewRefusal::Closed => ErrorCode::Conflict,
            },
            reason: refusal.code(),
            message: refusal.message().to_owned(),
        }
    }
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                AppError::unavailable("the database", e)
            }
            other => AppError::internal(other),
        }
    }
}

impl From<redis::RedisError> for AppError {
    fn from(e: redis::RedisError) -> Self {
        AppError::unavailable("the session store", e)
    }
}

impl From<TemporalUnavailable> for AppError {
    fn from(e: TemporalUnavailable) -> Self {
        AppError::unavailable("the workflow service", e)
    }
}

/// What a client hears of a saga it may not see or that does not exist: never an id (a
/// workflow id names the deployment's prefix).
pub const NO_SUCH_SAGA: &str = "no such saga";

/// Temporal's side of a saga: never the caller's fault, and never a business failure (a saga
/// that failed for a business reason is an outcome, not an error: see `SagaOutcome::Failed`).
impl From<SagaError> for AppError {
    fn from(e: SagaError) -> Self {
        match e {
            SagaError::Unavailable(reason) => AppError::unavailable("the workflow service", reason),
            SagaError::NotFound => AppError::NotFound(NO_SUCH_SAGA.to_owned()),
            SagaError::TimedOut => {
                tracing::error!("a saga timed out");
                AppError::Timeout("the saga ran out of time; nothing more will happen".to_owned())
            }
            SagaError::Aborted(reason) => AppError::internal(format!("saga aborted: {reason}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saga_failures_on_temporal_side_have_codes_of_their_own() {
        let cases = [
            (
                SagaError::Unavailable("refused".into()),
                ErrorCode::Unavailable,
            ),
            (SagaError::NotFound, ErrorCode::NotFound),
            (SagaError::TimedOut, ErrorCode::Timeout),
            (
                SagaError::Aborted("terminated".into()),
                ErrorCode::InternalServerError,
            ),
        ];
        for (error, code) in cases {
            assert_eq!(AppError::from(error).code(), code);
        }
    }

    #[test]
    fn temporal_down_is_unavailable() {
        let e: AppError = TemporalUnavailable {
            reason: "connection refused".into(),
        }
        .into();
        assert_eq!(e.code(), ErrorCode::Unavailable);
    }

    #[test]
    fn internal_details_stay_out_of_the_message() {
        assert_eq!(
            AppError::internal("password=hunter2").to_string(),
            "internal error"
        );
    }
}
