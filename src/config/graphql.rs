//! What one GraphQL request and one WebSocket may cost, and the developer tools.

use super::checks::at_least_one;
use super::keys::{Invalid, config_group};

/// Most GraphQL documents kept parsed: far more than any front end sends, and a bound on the
/// cache's memory (up to 4 KiB of text each, plus its parsed form).
const MAX_DOCUMENT_CACHE_ENTRIES: usize = 10_000;

config_group! {
    pub struct Graphql {
        title: "GraphQL limits",
        about: "Bounds on one request, checked before the work it causes (see \"What one GraphQL request may cost\"), and the developer tools.",
        graphql_max_json_bytes: usize = 1024 * 1024,
            "largest JSON of one request: a JSON body, the multipart `operations` part, a GET request's `variables`, a WebSocket message (at most `HTTP_BODY_LIMIT_BYTES`). Over it: HTTP 413 (a WebSocket: closed with 1009)";
        graphql_max_json_values: usize = 10_000,
            "most JSON values (numbers, strings, lists, objects…) in that JSON, counted before it is parsed: parsed, a value takes far more memory than its text";
        graphql_max_query_bytes: usize = 32 * 1024,
            "largest GraphQL document (the query text; variables and uploads are not counted)";
        graphql_max_tokens: usize = 10_000,
            "most lexical tokens in a document";
        graphql_max_nesting: usize = 64,
            "deepest nesting of `{`, `(` and `[` in a document";
        graphql_max_selections: usize = 2_000,
            "most selections (fields, spreads, inline fragments) in an operation once every fragment spread is expanded";
        graphql_document_cache_entries: usize = 256,
            "how many admitted documents (up to 4 KiB each) are kept parsed, least recently used first out: a document sent again skips the guard's checks and parsing (validation still runs, with the request's variables); `0` keeps none; at most 10000";
        graphql_timeout_ms: u64 = 60_000,
            "time budget for executing one query or mutation, over HTTP or a WebSocket (keep it above `BOARD_SAGA_WAIT_MS`)";
        graphql_ws_init_timeout_secs: u64 = 10,
            "how long a new WebSocket may take to send `connection_init`; then it is closed with 4408";
        graphql_max_subscriptions_per_connection: usize = 20,
            "subscriptions one WebSocket connection may hold open; one more gets `CONFLICT` / `TOO_MANY_SUBSCRIPTIONS`";
        graphql_max_subscriptions_per_user: usize = 50,
            "subscriptions one user may hold open, over all their connections to one API process";
        graphql_ws_max_operations: usize = 32,
            "operations (queries, mutations and subscriptions) one WebSocket may run at once; must be more than `GRAPHQL_MAX_SUBSCRIPTIONS_PER_CONNECTION`. One more gets `CONFLICT` / `TOO_MANY_OPERATIONS`";
        graphql_ws_read_buffer_bytes: usize = 4_096,
            "each WebSocket's read buffer, allocated when it opens (the library's default is 128 KiB: most of an idle subscription's memory); a larger message still arrives whole, the buffer grows to it. 512 to 1048576";
        graphql_ws_write_buffer_bytes: usize = 4_096,
            "outgoing bytes a WebSocket gathers before writing them (each message is flushed anyway). 0 to 1048576";
        graphql_ide: Option<bool> = None,
            "serve the GraphiQL IDE to browsers at `/graphql` (assets under `/graphiql/`, all from the binary)",
            shown "unset: on in `fishapp dev`, off otherwise";
        graphql_introspection: Option<bool> = None,
            "answer `__schema` / `__type` queries (off: they resolve to `null`; GraphiQL's docs and completion need them; `__typename` always works)",
            shown "unset: on in `fishapp dev`, off otherwise";
    }
}

impl Graphql {
    fn check(&self) -> Result<(), Invalid> {
        // Every subscription is an operation: the connection must be able to run its
        // subscriptions and still answer a query.
        if self.graphql_ws_max_operations <= self.graphql_max_subscriptions_per_connection {
            return Err((
                "graphql_ws_max_operations",
                "must be more than graphql_max_subscriptions_per_connection".to_owned(),
            ));
        }
        if !(512..=1 << 20).contains(&self.graphql_ws_read_buffer_bytes) {
            return Err((
                "graphql_ws_read_buffer_bytes",
                "must be 512 to 1048576".to_owned(),
            ));
        }
        if self.graphql_ws_write_buffer_bytes > 1 << 20 {
            return Err((
                "graphql_ws_write_buffer_bytes",
                "must be at most 1048576".to_owned(),
            ));
        }
        // The cache sets its table aside up front: a mistyped huge value must be a message, not
        // an allocation failure at start-up.
        if self.graphql_document_cache_entries > MAX_DOCUMENT_CACHE_ENTRIES {
            return Err((
                "graphql_document_cache_entries",
                format!("must be at most {MAX_DOCUMENT_CACHE_ENTRIES} (0 keeps none)"),
            ));
        }
        at_least_one(&[
            (
                "graphql_max_query_bytes",
                self.graphql_max_query_bytes as u64,
            ),
            ("graphql_max_tokens", self.graphql_max_tokens as u64),
            ("graphql_max_json_bytes", self.graphql_max_json_bytes as u64),
            (
                "graphql_max_json_values",
                self.graphql_max_json_values as u64,
            ),
            ("graphql_max_nesting", self.graphql_max_nesting as u64),
            ("graphql_max_selections", self.graphql_max_selections as u64),
            ("graphql_timeout_ms", self.graphql_timeout_ms),
            (
                "graphql_ws_init_timeout_secs",
                self.graphql_ws_init_timeout_secs,
            ),
            (
                "graphql_max_subscriptions_per_connection",
                self.graphql_max_subscriptions_per_connection as u64,
            ),
            (
                "graphql_max_subscriptions_per_user",
                self.graphql_max_subscriptions_per_user as u64,
            ),
        ])
    }
}
