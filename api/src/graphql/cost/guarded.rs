//! The schema as the API runs it: every request admitted under the limits first, large
//! documents' checks off the async workers, queries and mutations within a time budget.

use super::{
    OFFLOAD_PARSE_ABOVE_BYTES, OFFLOAD_VALIDATION_ABOVE_SELECTIONS, QueryLimits, admit, error,
};
use crate::error::finalize_response;
use crate::graphql::documents::Documents;
use crate::graphql::{Mutation, Query, Subscription};
use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextValidation,
};
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationType};
use async_graphql::{
    Data, Executor, ObjectType, Request, Response, Schema, SchemaBuilder, ServerError,
    ServerResult, SubscriptionType, ValidationResult, Variables,
};
use fishapp_domain::ErrorCode;
use futures::StreamExt;
use futures::stream::BoxStream;
use std::sync::Arc;
use std::time::Duration;

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

    /// Runs `request` only if it is a query, for GET: a link or an image tag must never change
    /// anything, so GraphQL over HTTP allows GET for queries only. The request is admitted as
    /// every request is, through the kept documents, so a front end that reads over GET has its
    /// documents checked and parsed once too. A mutation or subscription is `Err` (the transport
    /// answers 405); a document the guard refuses gets its refusal as the response, as over POST.
    pub async fn execute_query(&self, mut request: Request) -> Result<Response, ServerError> {
        let schema = match self.admit(&mut request) {
            Ok(schema) => schema,
            Err(refused) => return Ok(Response::from_errors(vec![refused])),
        };
        if let Some(OperationType::Mutation | OperationType::Subscription) =
            selected_operation(&mut request)
        {
            return Err(error(
                ErrorCode::BadUserInput,
                "only queries are accepted over GET; send mutations with POST and subscribe over a WebSocket"
                    .to_owned(),
                None,
            ));
        }
        Ok(self.within_budget(schema, request).await)
    }

    /// Executes an admitted query or mutation on `schema`, stopped at the time budget.
    async fn within_budget(&self, schema: &Schema<Q, M, S>, request: Request) -> Response {
        match tokio::time::timeout(self.limits.timeout, schema.execute(request)).await {
            Ok(response) => response,
            Err(_) => Response::from_errors(vec![over_budget(self.limits.timeout)]),
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
        match self.admit(&mut request) {
            Ok(schema) => self.within_budget(schema, request).await,
            Err(refused) => Response::from_errors(vec![refused]),
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
pub(super) fn selected_operation(request: &mut Request) -> Option<OperationType> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graphql::cost::doubling;
    use async_graphql::Value;

    fn limits() -> QueryLimits {
        QueryLimits::default()
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
    async fn over_get_only_queries_run_and_their_documents_are_kept() {
        struct Reads;
        #[async_graphql::Object]
        impl Reads {
            async fn read(&self) -> i32 {
                1
            }
        }
        static WRITES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        struct Writes;
        #[async_graphql::Object]
        impl Writes {
            async fn write(&self) -> i32 {
                WRITES.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                1
            }
        }
        let build =
            || async_graphql::Schema::build(Reads, Writes, async_graphql::EmptySubscription);
        let schema = Guarded::new(build, limits());
        for _ in 0..2 {
            for query in ["{ read }", "query Q { read }"] {
                let response = schema.execute_query(Request::new(query)).await;
                let data = response.expect("a query runs over GET").data.into_json();
                assert_eq!(data.expect("JSON"), serde_json::json!({ "read": 1 }));
            }
        }
        // Parsed once each, then taken from the kept documents.
        assert_eq!(schema.documents.len(), 2);

        let named = "query Q { read } mutation M { write }";
        for _ in 0..2 {
            // The second time the document is a kept one: it is checked all the same.
            let refused = schema
                .execute_query(Request::new(named).operation_name("M"))
                .await
                .expect_err("a mutation over GET is refused");
            assert!(
                refused.message.contains("only queries"),
                "{}",
                refused.message
            );
            let picked = schema
                .execute_query(Request::new(named).operation_name("Q"))
                .await;
            assert!(picked.expect("the query of the two").errors.is_empty());
        }
        let response = schema
            .execute_query(Request::new("mutation { write }"))
            .await;
        assert!(response.is_err());
        // A document over the limits gets the guard's refusal, as over POST.
        let response = schema
            .execute_query(Request::new(doubling(40)))
            .await
            .expect("refused as a response");
        assert!(response.errors[0].message.contains("expands to"));
        // A GET request never ran a mutation; the same one over the ordinary path does.
        assert_eq!(WRITES.load(std::sync::atomic::Ordering::SeqCst), 0);
        let posted = schema.execute(Request::new("mutation { write }")).await;
        assert!(posted.errors.is_empty(), "{:?}", posted.errors);
        assert_eq!(WRITES.load(std::sync::atomic::Ordering::SeqCst), 1);
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
