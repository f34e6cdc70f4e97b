//! The API's one error type. Every resolver returns `Result<T, ApiError>`; the conversion into a
//! GraphQL error sets `extensions.code` (and `field` for bad input) and keeps internal details
//! out of the response (they are logged instead).

use async_graphql::ErrorExtensions;
use fishapp_domain::ErrorCode;
use fishapp_workflows::TemporalUnavailable;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadUserInput { field: String, message: String },
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::BadUserInput { .. } => ErrorCode::BadUserInput,
            ApiError::Unavailable(_) => ErrorCode::Unavailable,
            ApiError::Internal(_) => ErrorCode::InternalServerError,
        }
    }

    pub fn bad_input(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::BadUserInput {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<TemporalUnavailable> for ApiError {
    fn from(e: TemporalUnavailable) -> Self {
        tracing::warn!(error = %e, "request needs Temporal, which is unavailable");
        ApiError::Unavailable("the workflow service is unavailable; try again shortly".to_owned())
    }
}

/// Resolvers return `Err(e.extend())`: async-graphql's blanket `From<impl Display>` would keep
/// the message but drop the code.
impl ErrorExtensions for ApiError {
    fn extend(&self) -> async_graphql::Error {
        if let ApiError::Internal(source) = self {
            tracing::error!(error = %source, "internal error while resolving a GraphQL request");
        }
        async_graphql::Error::new(self.to_string()).extend_with(|_, ext| {
            ext.set("code", self.code().as_str());
            if let ApiError::BadUserInput { field, .. } = self {
                ext.set("field", field.as_str());
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extensions(e: ApiError) -> serde_json::Value {
        let gql = e.extend();
        let server = gql.into_server_error(async_graphql::Pos::default());
        serde_json::to_value(server.extensions).expect("extensions serialize")
    }

    #[test]
    fn bad_input_names_the_field() {
        let ext = extensions(ApiError::bad_input("email", "not an email address"));
        assert_eq!(ext["code"], "BAD_USER_INPUT");
        assert_eq!(ext["field"], "email");
    }

    #[test]
    fn internal_details_stay_out_of_the_message() {
        let gql = ApiError::Internal("password=hunter2".into()).extend();
        assert_eq!(gql.message, "internal error");
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
