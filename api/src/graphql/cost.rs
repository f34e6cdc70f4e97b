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
//! through [`offload`], so they never starve the async workers that serve `/healthz` and the
//! other requests. Execution — resolvers, I/O — gets a time budget.

use super::documents::Documents;
use super::{Mutation, Query, Subscription};
use crate::error::finalize_response;
use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextValidation,
};
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet,
};
use async_graphql::{
    Data, ErrorExtensionValues, Executor, Name, ObjectType, Positioned, Request, Response, Schema,
    SchemaBuilder, ServerError, ServerResult, SubscriptionType, ValidationResult, Value, Variables,
};
use fishapp_domain::ErrorCode;
use futures::StreamExt;
use futures::stream::BoxStream;
use std::collections::HashMap;
use std::sync::Arc;
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

/// The schema as the API runs it on every transport (POST, GET, multipart, WebSocket): each
/// request is admitted under [`QueryLimits`] before async-graphql sees it, queries and mutations
/// get the time budget, and every response of a WebSocket operation gets codes and a request id
/// the way an HTTP response does ([`finalize_response`]).
///
/// It holds two copies of the schema. As soon as a schema has any extension, async-graphql runs
/// the extension chain around every field of every response: a boxed future, a registry lookup
/// and type-name strings per field, about a sixth of a 30-post listing's throughput
/// (docs/benchmarks.md). Only large documents need a hook: one that moves async-graphql's
/// parse-depth check and validation, which walk every spread, off the async worker. So only
/// they run on the copy that has it ([`OffloadChecks`]); the rest run on a copy without
/// extensions.
pub struct Guarded<Q, M, S> {
    plain: Schema<Q, M, S>,
    offloading: Schema<Q, M, S>,
    limits: QueryLimits,
    documents: Arc<Documents>,
}

/// Fishapp's schema, guarded.
pub type GuardedSchema = Guarded<Query, Mutation, Subscription>;

// Not derived: the derive would ask the root types to be `Clone`; a `Schema` is a shared handle.
impl<Q, M, S> Clone for Guarded<Q, M, S> {
    fn clone(&self) -> Self {
        Self {
            plain: self.plain.clone(),
            offloading: self.offloading.clone(),
            limits: self.limits,
            documents: self.documents.clone(),
        }
    }
}

impl<Q, M, S> Guarded<Q, M, S>
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
{
    /// `build` gives the schema with its data; it is called twice, once per copy (data is cloned
    /// handles, so both copies share the same state).
    pub fn new(build: impl Fn() -> SchemaBuilder<Q, M, S>, limits: QueryLimits) -> Self {
        Self {
            plain: build().finish(),
            offloading: build().extension(OffloadChecks).finish(),
            documents: Arc::new(Documents::new(limits.document_cache_entries)),
            limits,
        }
    }

    /// Admits `request` (parsing it; a large document off the async worker) and picks the copy
    /// of the schema to run it on. A document admitted before is not checked or parsed again:
    /// the request gets a copy of it ([`Documents`]).
    fn admit(&self, request: &mut Request) -> ServerResult<&Schema<Q, M, S>> {
        let selections = match self.documents.get(&request.query) {
            Some(admitted) => {
                request.set_parsed_query(admitted.document.clone());
                admitted.selections
            }
            None => {
                let limits = self.limits;
                let selections = offload(request.query.len() > OFFLOAD_PARSE_ABOVE_BYTES, || {
                    admit(&limits, request)
                })?;
                self.documents.keep(request, selections);
                selections
            }
        };
        Ok(if selections > OFFLOAD_VALIDATION_ABOVE_SELECTIONS {
            &self.offloading
        } else {
            &self.plain
        })
    }
}

impl<Q, M, S> Executor for Guarded<Q, M, S>
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
{
    async fn execute(&self, mut request: Request) -> Response {
        let schema = match self.admit(&mut request) {
            Ok(schema) => schema,
            Err(refused) => return Response::from_errors(vec![refused]),
        };
        match tokio::time::timeout(self.limits.timeout, schema.execute(request)).await {
            Ok(response) => response,
            Err(_) => Response::from_errors(vec![over_budget(self.limits.timeout)]),
        }
    }

    /// Subscriptions (over a WebSocket) stream for as long as they last; a query or mutation
    /// sent over a WebSocket gets the same time budget as over HTTP.
    fn execute_stream(
        &self,
        mut request: Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        let stream = match self.admit(&mut request) {
            Ok(schema) => {
                let budgeted = selected_operation(&mut request)
                    .is_some_and(|ty| ty != OperationType::Subscription);
                let stream = schema
                    .execute_stream_with_session_data(request, session_data.unwrap_or_default());
                if budgeted {
                    let budget = self.limits.timeout;
                    futures::stream::once(async move {
                        let mut stream = stream;
                        match tokio::time::timeout(budget, stream.next()).await {
                            Ok(Some(response)) => response,
                            Ok(None) => Response::default(),
                            Err(_) => Response::from_errors(vec![over_budget(budget)]),
                        }
                    })
                    .boxed()
                } else {
                    stream
                }
            }
            Err(refused) => {
                futures::stream::once(async { Response::from_errors(vec![refused]) }).boxed()
            }
        };
        self.finalized(stream)
    }
}

impl<Q, M, S> Guarded<Q, M, S> {
    /// `responses` as a streamed operation's responses go out: with codes and a request id, as
    /// an HTTP response gets them ([`finalize_response`]).
    pub(crate) fn finalized(
        &self,
        responses: BoxStream<'static, Response>,
    ) -> BoxStream<'static, Response> {
        let request_id = uuid::Uuid::new_v4().to_string();
        responses
            .map(move |mut response| {
                finalize_response(&mut response, &request_id);
                response
            })
            .boxed()
    }
}

fn over_budget(budget: Duration) -> ServerError {
    error(
        ErrorCode::Timeout,
        format!(
            "the request took longer than its budget of {} ms and was stopped",
            budget.as_millis()
        ),
        None,
    )
}

/// The type of the operation `request` runs, once its document is parsed; `None` when the
/// operation is ambiguous or unknown (execution says so).
fn selected_operation(request: &mut Request) -> Option<OperationType> {
    let operation_name = request.operation_name.clone();
    let document = request.parsed_query().ok()?;
    match &document.operations {
        DocumentOperations::Single(op) => Some(op.node.ty),
        DocumentOperations::Multiple(ops) => match &operation_name {
            Some(name) => ops.get(name.as_str()).map(|op| op.node.ty),
            None if ops.len() == 1 => ops.values().next().map(|op| op.node.ty),
            None => None,
        },
    }
}

/// The hooks of the schema copy that runs large documents: async-graphql's parse-depth check
/// and its validation leave the async worker. (Their futures do all their work on the first
/// poll, so blocking on them is blocking on CPU work, never on I/O.)
struct OffloadChecks;

impl ExtensionFactory for OffloadChecks {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(OffloadChecks)
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for OffloadChecks {
    /// The document is parsed already (by [`admit`]); what async-graphql does here is its
    /// recursion-depth check.
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        offload(true, || {
            futures::executor::block_on(next.run(ctx, query, variables))
        })
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        offload(true, || futures::executor::block_on(next.run(ctx)))
    }
}

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

/// Refuses a mutation or subscription that came over GET (a link or an image tag must never change
/// anything: GraphQL over HTTP allows GET for queries only). The document is admitted first, under
/// the same limits as every request, so that nothing unbounded is parsed to find out; one that
/// fails admission passes here and is refused by the guard like any other.
pub fn refuse_unless_query(limits: &QueryLimits, request: &mut Request) -> ServerResult<()> {
    if admit(limits, request).is_err() {
        return Ok(());
    }
    match selected_operation(request) {
        Some(OperationType::Mutation | OperationType::Subscription) => Err(error(
            ErrorCode::BadUserInput,
            "only queries are accepted over GET; send mutations with POST and subscribe over a WebSocket"
                .to_owned(),
            None,
        )),
        _ => Ok(()),
    }
}

/// Runs CPU-bound `work` without starving the async runtime: when `heavy` and on a
/// multi-threaded runtime, the worker thread hands its other tasks to a fresh thread for the
/// duration ([`tokio::task::block_in_place`]). A current-thread runtime (tests, tools) cannot
/// hand off, so the work runs in place there.
fn offload<T>(heavy: bool, work: impl FnOnce() -> T) -> T {
    let multi_thread = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if heavy && multi_thread {
        tokio::task::block_in_place(work)
    } else {
        work()
    }
}

/// What a lexical scan sees of a document.
#[derive(Debug, PartialEq, Eq)]
struct Shape {
    tokens: usize,
    nesting: usize,
}

/// Counts the tokens of a GraphQL document (the spec's lexical grammar: punctuators, names,
/// numbers, strings and block strings; whitespace, commas and comments are ignored) and the
/// deepest bracket nesting. Linear; stops counting once past the limits, so a document far
/// over them costs no more than one at them. Characters outside the grammar count as one token
/// each (the parser rejects them).
fn scan(query: &str, limits: &QueryLimits) -> Shape {
    let bytes = query.as_bytes();
    let (mut i, mut tokens, mut depth, mut nesting) = (0, 0, 0usize, 0);
    while i < bytes.len() && tokens <= limits.max_tokens && nesting <= limits.max_nesting {
        let b = bytes[i];
        match b {
            b' ' | b'\t' | b'\n' | b'\r' | b',' => {
                i += 1;
                continue;
            }
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
                continue;
            }
            b'{' | b'(' | b'[' => {
                depth += 1;
                nesting = nesting.max(depth);
                i += 1;
            }
            b'}' | b')' | b']' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                i += 3;
                while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                    // An escaped triple quote does not end the block string.
                    i += if bytes[i..].starts_with(b"\\\"\"\"") {
                        4
                    } else {
                        1
                    };
                }
                i += 3;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'.' if bytes[i..].starts_with(b"...") => i += 3,
            b'_' | b'a'..=b'z' | b'A'..=b'Z' => {
                while i < bytes.len() && (bytes[i] == b'_' || bytes[i].is_ascii_alphanumeric()) {
                    i += 1;
                }
            }
            b'-' | b'0'..=b'9' => {
                i += 1;
                while i < bytes.len()
                    && matches!(bytes[i], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
                {
                    i += 1;
                }
            }
            // Punctuators (! $ & : = @ |) and anything else: one token each. A multi-byte UTF-8
            // character outside a string is not GraphQL; counting its bytes is still linear.
            _ => i += 1,
        }
        tokens += 1;
    }
    Shape { tokens, nesting }
}

/// The number of selections in the document's largest operation with every fragment spread
/// expanded, or an error once it passes `max`. Each fragment's size is computed once (memoized),
/// so the count is linear in the document however often fragments spread each other; a cycle
/// of spreads is refused here (validation would refuse it too, but only after walking it).
fn expanded_size(document: &ExecutableDocument, max: usize) -> ServerResult<usize> {
    let mut counter = Expansion {
        document,
        memo: HashMap::new(),
    };
    let operations: Vec<&SelectionSet> = match &document.operations {
        DocumentOperations::Single(op) => vec![&op.node.selection_set.node],
        DocumentOperations::Multiple(ops) => {
            ops.values().map(|op| &op.node.selection_set.node).collect()
        }
    };
    let mut largest = 0;
    for selection_set in operations {
        let size = counter.selection_set(selection_set)?;
        if size > max {
            let message = format!(
                "the query expands to {size} selections once its fragments are spread; at most {max} are accepted"
            );
            return Err(too_costly("maxSelections", message));
        }
        largest = largest.max(size);
    }
    Ok(largest)
}

enum Visit {
    InProgress,
    Done(usize),
}

struct Expansion<'d> {
    document: &'d ExecutableDocument,
    memo: HashMap<&'d Name, Visit>,
}

impl<'d> Expansion<'d> {
    /// Saturating: the sizes of a hostile document overflow any integer; they only need to
    /// compare as "more than the limit".
    fn selection_set(&mut self, set: &'d SelectionSet) -> ServerResult<usize> {
        let mut size = 0usize;
        for selection in &set.items {
            let inner = match &selection.node {
                Selection::Field(field) => self.selection_set(&field.node.selection_set.node)?,
                Selection::InlineFragment(inline) => {
                    self.selection_set(&inline.node.selection_set.node)?
                }
                Selection::FragmentSpread(spread) => self.fragment(&spread.node.fragment_name)?,
            };
            size = size.saturating_add(1).saturating_add(inner);
        }
        Ok(size)
    }

    fn fragment(&mut self, name: &'d Positioned<Name>) -> ServerResult<usize> {
        match self.memo.get(&name.node) {
            Some(Visit::Done(size)) => return Ok(*size),
            Some(Visit::InProgress) => {
                return Err(error(
                    ErrorCode::BadUserInput,
                    format!("fragment {} spreads itself", name.node),
                    Some(name.pos),
                ));
            }
            None => {}
        }
        // An unknown fragment costs nothing here; validation reports it.
        let Some(fragment) = self.document.fragments.get(&name.node) else {
            return Ok(0);
        };
        self.memo.insert(&name.node, Visit::InProgress);
        let size = self.selection_set(&fragment.node.selection_set.node)?;
        self.memo.insert(&name.node, Visit::Done(size));
        Ok(size)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> QueryLimits {
        QueryLimits::default()
    }

    /// The attack from the issue: each fragment spreads the next one twice.
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

    fn size_of(query: &str, max: usize) -> ServerResult<usize> {
        let document = async_graphql::parser::parse_query(query).expect("parses");
        expanded_size(&document, max)
    }

    #[test]
    fn expansion_is_counted_without_walking_it() {
        // 2^(l+1) - 1 spreads plus 2^l leaves: 3·2^l - 1.
        assert_eq!(size_of(&doubling(3), usize::MAX).unwrap(), 3 * 8 - 1);
        // 2^64 overflows any count: it saturates, and is refused at once.
        let err = size_of(&doubling(64), 2_000).unwrap_err();
        assert!(err.message.contains("expands to"), "{}", err.message);
    }

    #[test]
    fn spreads_in_fields_inline_fragments_and_aliases_count() {
        let q = "query { a: healthCheck ...F ... on Query { ...F } user(id: 1) { ...U ...U } }
                 fragment F on Query { healthCheck b: healthCheck }
                 fragment U on User { id name }";
        // a(1) + ...F(1+2) + inline(1 + ...F(1+2)) + user(1 + 2·(1+2))
        assert_eq!(size_of(q, usize::MAX).unwrap(), 1 + 3 + 4 + 7);
    }

    #[test]
    fn the_largest_operation_decides() {
        let q = "query A { healthCheck } query B { ...F ...F } fragment F on Query { healthCheck }";
        assert_eq!(size_of(q, usize::MAX).unwrap(), 4);
    }

    #[test]
    fn fragment_cycles_are_refused_not_followed() {
        let err = size_of(
            "query { ...A } fragment A on Query { ...B } fragment B on Query { ...A }",
            usize::MAX,
        )
        .unwrap_err();
        assert!(err.message.contains("spreads itself"), "{}", err.message);
    }

    #[test]
    fn tokens_follow_the_lexical_grammar() {
        let shape = scan(
            r#"query Q($a: [Int!]) { f(s: "a \" b", b: """x "" y""", n: -1.5e3) # comment { { {
               ...on Q { g } }"#,
            &limits(),
        );
        // query Q ( $ a : [ Int ! ] ) { f ( s : "…" b : """…""" n : -1.5e3 ) ... on Q { g } }
        // (commas and the comment are not tokens)
        assert_eq!(shape.tokens, 31);
        assert_eq!(shape.nesting, 2);
    }

    #[test]
    fn scanning_stops_past_the_limits() {
        let limits = QueryLimits {
            max_tokens: 10,
            max_nesting: 5,
            ..limits()
        };
        assert_eq!(scan(&"a ".repeat(1_000), &limits).tokens, 11);
        assert_eq!(scan(&"{".repeat(1_000), &limits).nesting, 6);
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

    #[test]
    fn over_get_only_queries_pass() {
        let limits = limits();
        for query in ["{ healthCheck }", "query Q { healthCheck }"] {
            assert!(
                refuse_unless_query(&limits, &mut Request::new(query)).is_ok(),
                "{query}"
            );
        }
        for query in [
            "mutation { logout { success } }",
            "subscription { createPostResult(input: { sagaId: \"x\" }) { error } }",
        ] {
            assert!(
                refuse_unless_query(&limits, &mut Request::new(query)).is_err(),
                "{query}"
            );
        }
        let named = "query Q { healthCheck } mutation M { logout { success } }";
        let pick = |name: &str| Request::new(named).operation_name(name);
        assert!(refuse_unless_query(&limits, &mut pick("Q")).is_ok());
        assert!(refuse_unless_query(&limits, &mut pick("M")).is_err());
        // A document over the limits is left to the guard (which refuses it for its size).
        assert!(refuse_unless_query(&limits, &mut Request::new(doubling(40))).is_ok());
    }

    #[tokio::test]
    async fn a_kept_document_runs_with_each_requests_own_variables_and_operation() {
        struct Echo;
        #[async_graphql::Object]
        impl Echo {
            async fn echo(&self, n: i32) -> i32 {
                n
            }
        }
        let build = || {
            async_graphql::Schema::build(
                Echo,
                async_graphql::EmptyMutation,
                async_graphql::EmptySubscription,
            )
        };
        let schema = Guarded::new(build, limits());
        let document = "query A($n: Int!, $more: Boolean!) { echo(n: $n) again: echo(n: 7) @include(if: $more) }
                        query B { echo(n: 2) }";
        let run = async |operation: &str, variables: serde_json::Value| {
            let request = Request::new(document)
                .operation_name(operation)
                .variables(Variables::from_json(variables));
            let response = schema.execute(request).await;
            (
                response.data.into_json().expect("JSON"),
                response.errors.len(),
            )
        };
        let both = run("A", serde_json::json!({ "n": 1, "more": true })).await;
        assert_eq!(both, (serde_json::json!({ "echo": 1, "again": 7 }), 0));
        assert_eq!(schema.documents.len(), 1);
        // The same text: the kept copy, which the first run's `@include` did not edit.
        let one = run("A", serde_json::json!({ "n": 3, "more": false })).await;
        assert_eq!(one, (serde_json::json!({ "echo": 3 }), 0));
        let other = run("B", serde_json::json!({})).await;
        assert_eq!(other, (serde_json::json!({ "echo": 2 }), 0));
        // Variables are still validated per request.
        let (data, errors) = run("A", serde_json::json!({ "n": "x", "more": true })).await;
        assert_eq!((data, errors), (serde_json::Value::Null, 1));
        assert_eq!(schema.documents.len(), 1);
    }

    #[tokio::test]
    async fn refused_documents_are_not_kept() {
        let schema = Guarded::new(
            || {
                async_graphql::Schema::build(
                    crate::graphql::health::HealthQuery,
                    async_graphql::EmptyMutation,
                    async_graphql::EmptySubscription,
                )
            },
            limits(),
        );
        for _ in 0..2 {
            let response = schema.execute(Request::new(doubling(30))).await;
            assert!(response.errors[0].message.contains("expands to"));
        }
        assert_eq!(schema.documents.len(), 0);
    }

    #[tokio::test]
    async fn execution_past_the_budget_is_stopped() {
        struct Slow;
        #[async_graphql::Object]
        impl Slow {
            async fn slow(&self) -> bool {
                tokio::time::sleep(Duration::from_secs(30)).await;
                true
            }
        }
        let budget = QueryLimits {
            timeout: Duration::from_millis(50),
            ..limits()
        };
        let build = || {
            async_graphql::Schema::build(
                Slow,
                async_graphql::EmptyMutation,
                async_graphql::EmptySubscription,
            )
        };
        let schema = Guarded::new(build, budget);
        let response = schema.execute(Request::new("{ slow }")).await;
        let code = response.errors[0]
            .extensions
            .as_ref()
            .and_then(|e| e.get("code"));
        assert_eq!(code, Some(&Value::from("TIMEOUT")), "{:?}", response.errors);
    }
}
