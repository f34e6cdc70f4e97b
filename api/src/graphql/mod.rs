//! The GraphQL schema. Names follow the original Fishapp's API so that its front end keeps
//! working (see docs/architecture.md); one module per context, merged here.

mod account;
mod applying;
mod board;
mod chat;
pub(crate) mod context;
mod cost;
mod cursor;
mod health;
pub(crate) mod loaders;
mod media;
#[cfg(test)]
mod original_operations;
mod scalars;

use async_graphql::{MergedObject, MergedSubscription, Schema, SchemaBuilder};

pub(crate) use context::RequestContext;
pub use cost::{QueryCostGuard, QueryLimits, refuse_unless_query};

#[derive(MergedObject, Default)]
pub struct Query(
    health::HealthQuery,
    account::AccountQuery,
    board::BoardQuery,
    chat::ChatQuery,
);

#[derive(MergedObject, Default)]
pub struct Mutation(
    account::AccountMutation,
    board::BoardMutation,
    applying::ApplyingMutation,
    chat::ChatMutation,
);

#[derive(MergedSubscription, Default)]
pub struct Subscription(board::BoardSubscription, chat::ChatSubscription);

pub type FishappSchema = Schema<Query, Mutation, Subscription>;

/// Limits that keep one request from costing the server more than any honest front end needs.
pub const MAX_DEPTH: usize = 12;
pub const MAX_COMPLEXITY: usize = 1_000;
/// Directives on one field (`@include`, `@skip`): an honest front end uses one or two; hundreds on
/// one field were an attack on GraphQL servers (GHSA-5gc2-7c65-8fq8).
pub const MAX_DIRECTIVES: usize = 10;

/// The schema, without any request-time data attached yet.
pub fn schema_builder() -> SchemaBuilder<Query, Mutation, Subscription> {
    Schema::build(
        Query::default(),
        Mutation::default(),
        Subscription::default(),
    )
    .limit_depth(MAX_DEPTH)
    .limit_complexity(MAX_COMPLEXITY)
    .limit_directives(MAX_DIRECTIVES)
}

/// The schema in SDL, as `fishapp schema` prints it.
pub fn sdl() -> String {
    schema_builder().finish().sdl()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn directives_per_field_are_limited() {
        let schema = schema_builder().finish();
        let allowed = schema
            .execute("{ healthCheck @skip(if: false) @include(if: true) }")
            .await;
        assert!(allowed.errors.is_empty(), "{:?}", allowed.errors);
        // Counted before validation (which would also refuse unknown directives, after the work).
        let many: String = (0..=MAX_DIRECTIVES).map(|i| format!("@d{i} ")).collect();
        let refused = schema.execute(format!("{{ healthCheck {many} }}")).await;
        assert!(
            refused.errors[0].message.contains("directives"),
            "{:?}",
            refused.errors
        );
    }
}
