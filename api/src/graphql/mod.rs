//! The GraphQL schema. Names follow the original Fishapp's API so that its front end keeps
//! working (see docs/architecture.md).

mod query;

use async_graphql::{EmptyMutation, EmptySubscription, Schema};

pub use query::Query;

pub type FishappSchema = Schema<Query, EmptyMutation, EmptySubscription>;

/// Limits that keep one request from costing the server more than any honest front end needs.
pub const MAX_DEPTH: usize = 12;
pub const MAX_COMPLEXITY: usize = 1_000;

/// The schema, without any request-time data attached yet.
pub fn schema_builder() -> async_graphql::SchemaBuilder<Query, EmptyMutation, EmptySubscription> {
    Schema::build(Query, EmptyMutation, EmptySubscription)
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
}

/// The schema in SDL, as `fishapp schema` prints it.
pub fn sdl() -> String {
    schema_builder().finish().sdl()
}
