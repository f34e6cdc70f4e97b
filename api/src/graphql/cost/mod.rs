//! The query-cost guard: bounds what one GraphQL document may cost *before* async-graphql
//! validates it.
//!
//! Why: async-graphql's own checks (the recursion-depth check, the depth and complexity
//! visitors) follow every fragment spread, so a 1 KB document whose fragments each spread the
//! next one twice costs 2^levels steps — an anonymous request that occupied a runtime worker for
//! good. The guard admits a document in four linear steps, cheapest first, each with a limit of
//! its own:
//!
//! 1. its size in bytes;
//! 2. a lexical scan: the number of tokens and how deeply brackets nest (the parser recurses);
//! 3. parsing (the parsed document is kept in the request, so async-graphql does not parse again);
//! 4. the size of every operation with each fragment spread expanded, counted once per fragment
//!    (memoized over the fragment graph, so linear in the document) — this also bounds the work
//!    of every later check and of validation.
//!
//! What an admitted request can still cost is bounded by those limits; the parts of it that are
//! CPU-bound and may take a while (parsing a large document, validating a large expansion) run
//! off the async workers, so they never starve those that serve `/healthz` and the other
//! requests. Execution — resolvers, I/O — gets a time budget.
//!
//! Here: the limits and admission. [`lexer`]: step 2. [`expansion`]: step 4. [`guarded`]: the
//! schema that admits every request, offloads the heavy checks and keeps the time budget.

mod expansion;
mod guarded;
mod lexer;

pub use guarded::GuardedSchema;

use async_graphql::{ErrorExtensionValues, Request, ServerError, ServerResult, Value};
use expansion::expanded_size;
use fishapp_domain::ErrorCode;
use lexer::scan;
use std::time::Duration;

/// What one document may cost. The defaults admit every query an honest front end sends (the
/// original app's largest is a few hundred bytes and a few dozen selections) with a wide margin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryLimits {
    /// Largest document, in bytes (variables are not counted: they are data, not work).
    pub max_bytes: usize,
    /// Most lexical tokens (names, punctuators, values) in a document.
    pub max_tokens: usize,
    /// Deepest nesting of `{`, `(` and `[`.
    pub max_nesting: usize,
    /// Most selections (fields, fragment spreads, inline fragments) in the operation with every
    /// fragment spread expanded.
    pub max_selections: usize,
    /// Time budget for executing one query or mutation (over HTTP or a WebSocket).
    pub timeout: Duration,
    /// How many admitted documents are kept parsed ([`super::documents`]); 0 keeps none.
    pub document_cache_entries: usize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        Self {
            max_bytes: 32 * 1024,
            max_tokens: 10_000,
            max_nesting: 64,
            max_selections: 2_000,
            timeout: Duration::from_secs(60),
            document_cache_entries: 256,
        }
    }
}

/// Work above these sizes leaves the async worker (see [`offload`]); below, handing it to
/// another thread would cost more than doing it (parsing 4 KiB or validating a few hundred
/// selections takes well under a millisecond).
pub(super) const OFFLOAD_PARSE_ABOVE_BYTES: usize = 4 * 1024;
const OFFLOAD_VALIDATION_ABOVE_SELECTIONS: usize = 256;

/// Checks `request` against `limits` and parses it (keeping the parsed document in the request).
/// Returns the expanded size of its largest operation.
fn admit(limits: &QueryLimits, request: &mut Request) -> ServerResult<usize> {
    let bytes = request.query.len();
    if bytes > limits.max_bytes {
        let max = limits.max_bytes;
        let message = format!("the query is {bytes} bytes; at most {max} are accepted");
        return Err(too_costly("maxBytes", message));
    }
    let shape = scan(&request.query, limits);
    if shape.tokens > limits.max_tokens {
        let message = format!("the query has more than {} tokens", limits.max_tokens);
        return Err(too_costly("maxTokens", message));
    }
    if shape.nesting > limits.max_nesting {
        let max = limits.max_nesting;
        let message = format!("the query nests brackets more than {max} deep");
        return Err(too_costly("maxNesting", message));
    }
    let document = request.parsed_query()?;
    expanded_size(document, limits.max_selections)
}

/// A document refused for its cost: `BAD_USER_INPUT`, with `extensions.limit` naming which.
fn too_costly(limit: &str, message: String) -> ServerError {
    let mut error = error(ErrorCode::BadUserInput, message, None);
    if let Some(extensions) = error.extensions.as_mut() {
        extensions.set("limit", Value::from(limit));
    }
    error
}

fn error(code: ErrorCode, message: String, at: Option<async_graphql::Pos>) -> ServerError {
    let mut error = ServerError::new(message, at);
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", Value::from(code.as_str()));
    error.extensions = Some(extensions);
    error
}

/// The attack the guard was built for: each fragment spreads the next one twice.
#[cfg(test)]
fn doubling(levels: usize) -> String {
    let mut q = String::from("query { ...F0 }\n");
    for i in 0..levels {
        q.push_str(&format!(
            "fragment F{i} on Query {{ ...F{n} ...F{n} }}\n",
            n = i + 1
        ));
    }
    q.push_str(&format!("fragment F{levels} on Query {{ healthCheck }}\n"));
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> QueryLimits {
        QueryLimits::default()
    }

    #[test]
    fn admitted_documents_are_parsed_once() {
        let mut request = Request::new("{ healthCheck }");
        assert_eq!(admit(&limits(), &mut request).unwrap(), 1);
        // The parsed document stays in the request: async-graphql does not parse it again.
        assert!(request.parsed_query().is_ok());
    }

    #[test]
    fn each_limit_says_which_it_is() {
        let cases = [
            ("{ healthCheck }".repeat(3_000), "bytes"),
            (
                "{ healthCheck }".to_owned() + &" a".repeat(10_000),
                "tokens",
            ),
            ("{".repeat(100), "nests"),
            (doubling(30), "expands to"),
        ];
        for (query, says) in cases {
            let err = admit(&limits(), &mut Request::new(query)).unwrap_err();
            assert!(err.message.contains(says), "{says}: {}", err.message);
            let code = err.extensions.as_ref().and_then(|e| e.get("code"));
            assert_eq!(code, Some(&Value::from("BAD_USER_INPUT")));
            let limit = err.extensions.as_ref().and_then(|e| e.get("limit"));
            assert!(limit.is_some(), "{says}: no extensions.limit");
        }
    }
}
