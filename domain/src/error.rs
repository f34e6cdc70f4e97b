//! The kinds of failure a client can be told about. Every layer maps its own errors onto one of
//! these, and the API turns them into GraphQL `extensions.code`.

use std::fmt;

/// What went wrong, from the client's point of view. The string form is the GraphQL
/// `extensions.code` value and is part of the public API: never rename a variant's string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The input is invalid; the error names the field at fault.
    BadUserInput,
    /// No valid credentials were presented.
    Unauthenticated,
    /// The caller is known but may not do this.
    Forbidden,
    /// The thing asked for does not exist (or is not visible to the caller).
    NotFound,
    /// The request conflicts with the current state (e.g. the trip is full).
    Conflict,
    /// Too many attempts; the error says how long to wait.
    RateLimited,
    /// A dependency the request needs is down; retrying later may succeed.
    Unavailable,
    /// The request ran past its time budget and was stopped.
    Timeout,
    /// A bug or an unexpected failure; details are logged, never returned.
    InternalServerError,
}

impl ErrorCode {
    /// Every code, in a stable order (documentation and tests iterate over it).
    pub const ALL: [ErrorCode; 9] = [
        ErrorCode::BadUserInput,
        ErrorCode::Unauthenticated,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::Conflict,
        ErrorCode::RateLimited,
        ErrorCode::Unavailable,
        ErrorCode::Timeout,
        ErrorCode::InternalServerError,
    ];

    /// The wire form, as sent in GraphQL `extensions.code`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadUserInput => "BAD_USER_INPUT",
            ErrorCode::Unauthenticated => "UNAUTHENTICATED",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::Conflict => "CONFLICT",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::Unavailable => "UNAVAILABLE",
            ErrorCode::Timeout => "TIMEOUT",
            ErrorCode::InternalServerError => "INTERNAL_SERVER_ERROR",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn wire_forms_are_distinct_screaming_snake_case() {
        let forms: HashSet<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(forms.len(), ErrorCode::ALL.len());
        for form in forms {
            assert!(
                form.chars().all(|c| c.is_ascii_uppercase() || c == '_'),
                "{form}"
            );
        }
    }
}
