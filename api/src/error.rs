//! Application errors as GraphQL errors, in one place: every resolver's error is an
//! [`AppError`] (the application's kinds and words), turned here into an `async_graphql::Error`
//! with `extensions.code` (and `field` for bad input, `limit` for a limit, `retryAfterSeconds`
//! when rate limited, `reason` for a business refusal). Internal details never reach the client:
//! they are logged, and the client gets the request id to quote (see [`finalize_response`]).

use async_graphql::ErrorExtensions;
pub use fishapp_app::error::{AppError, NO_SUCH_SAGA};
use fishapp_domain::ErrorCode;

/// An application error as a GraphQL error (a local trait: neither type is this crate's).
pub trait GqlError {
    fn extend(&self) -> async_graphql::Error;
}

/// Resolvers return `Err(e.extend())`, or use `?` on `Result<_, AppError>` inside functions
/// returning [`ApiResult`]; async-graphql's blanket `From<impl Display>` would keep the message
/// but drop the code (`finalize_response` then treats the error as internal).
impl GqlError for AppError {
    fn extend(&self) -> async_graphql::Error {
        if let AppError::Internal(source) = self {
            tracing::error!(error = %source, "internal error while resolving a GraphQL request");
        }
        async_graphql::Error::new(self.to_string()).extend_with(|_, ext| {
            ext.set("code", self.code().as_str());
            match self {
                AppError::BadUserInput { field, .. } => ext.set("field", field.as_str()),
                AppError::OverLimit { field, limit, .. } => {
                    ext.set("field", field.as_str());
                    ext.set("limit", *limit);
                }
                AppError::RateLimited {
                    retry_after_seconds,
                } => ext.set("retryAfterSeconds", *retry_after_seconds),
                AppError::Refused { reason, .. } => ext.set("reason", *reason),
                _ => {}
            }
        })
    }
}

/// An error of ours as a request-level error (no location, no path): the one error of a
/// response refused before it ran.
pub fn server_error(error: AppError) -> async_graphql::ServerError {
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

impl<T, E: Into<AppError>> IntoGql<T> for Result<T, E> {
    fn gql(self) -> ApiResult<T> {
        self.map_err(|e| e.into().extend())
    }
}

/// Last touch on every GraphQL response: each error gets the request id, and an error without
/// a code gets one — request-level errors (parse, validation, limits: no path) are the client's
/// (`BAD_USER_INPUT`); a resolver error without a code escaped `AppError`, so it is treated as
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

    fn extensions(e: AppError) -> serde_json::Value {
        let server = e.extend().into_server_error(async_graphql::Pos::default());
        serde_json::to_value(server.extensions).expect("extensions serialize")
    }

    #[test]
    fn bad_input_names_the_field() {
        let ext = extensions(AppError::bad_input("email", "not an email address"));
        assert_eq!(ext["code"], "BAD_USER_INPUT");
        assert_eq!(ext["field"], "email");
    }

    #[test]
    fn rate_limited_says_how_long_to_wait() {
        let ext = extensions(AppError::RateLimited {
            retry_after_seconds: 42,
        });
        assert_eq!(ext["code"], "RATE_LIMITED");
        assert_eq!(ext["retryAfterSeconds"], 42);
    }

    #[test]
    fn internal_details_stay_out_of_the_message() {
        let gql = AppError::internal("password=hunter2").extend();
        assert_eq!(gql.message, "internal error");
    }

    #[test]
    fn every_kind_keeps_its_code() {
        let ext = extensions(AppError::over_limit("body", "maxJsonBytes", "too big"));
        assert_eq!(
            (&ext["code"], &ext["field"], &ext["limit"]),
            (
                &serde_json::json!("BAD_USER_INPUT"),
                &serde_json::json!("body"),
                &serde_json::json!("maxJsonBytes")
            )
        );
        let ext = extensions(AppError::Unavailable("later".into()));
        assert_eq!(ext["code"], "UNAVAILABLE");
    }
}
