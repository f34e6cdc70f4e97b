//! The GraphQL schema. Names follow the original Fishapp's API so that its front end keeps
//! working (see docs/architecture.md); one module per context, merged here.

mod account;
mod board;
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
);

#[derive(MergedObject, Default)]
pub struct Mutation(account::AccountMutation, board::BoardMutation);

#[derive(MergedSubscription, Default)]
pub struct Subscription(board::BoardSubscription);

pub type FishappSchema = Schema<Query, Mutation, Subscription>;

/// Limits that keep one request from costing the server more than any honest front end needs.
pub const MAX_DEPTH: usize = 12;
pub const MAX_COMPLEXITY: usize = 1_000;

/// The schema, without any request-time data attached yet.
pub fn schema_builder() -> SchemaBuilder<Query, Mutation, Subscription> {
    Schema::build(
        Query::default(),
        Mutation::default(),
        Subscription::default(),
    )
    .limit_depth(MAX_DEPTH)
    .limit_complexity(MAX_COMPLEXITY)
}

/// The schema in SDL, as `fishapp schema` prints it.
pub fn sdl() -> String {
    schema_builder().finish().sdl()
}
