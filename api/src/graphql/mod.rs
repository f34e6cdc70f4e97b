//! The GraphQL schema. Names follow the original Fishapp's API so that its front end keeps
//! working (see docs/architecture.md); one module per context, merged here.

mod account;
mod applying;
mod board;
pub mod body;
mod chat;
pub(crate) mod context;
mod cost;
mod cursor;
mod documents;
mod health;
pub(crate) mod loaders;
mod media;
mod notify;
#[cfg(test)]
mod original_operations;
mod review;
mod scalars;
pub mod streams;

use crate::error::AppError;
use async_graphql::{MergedObject, MergedSubscription, Schema, SchemaBuilder};

pub(crate) use context::RequestContext;
pub use cost::{GuardedSchema, QueryLimits};

#[derive(MergedObject, Default)]
pub struct Query(
    health::HealthQuery,
    account::AccountQuery,
    board::BoardQuery,
    chat::ChatQuery,
    notify::NotifyQuery,
);

#[derive(MergedObject, Default)]
pub struct Mutation(
    account::AccountMutation,
    board::BoardMutation,
    applying::ApplyingMutation,
    chat::ChatMutation,
    notify::NotifyMutation,
    review::ReviewMutation,
);

#[derive(MergedSubscription, Default)]
pub struct Subscription(
    board::BoardSubscription,
    chat::ChatSubscription,
    notify::NotifySubscription,
);

pub type FishappSchema = Schema<Query, Mutation, Subscription>;

/// Limits that keep one request from costing the server more than any honest front end needs.
/// Field depth: GraphiQL's own introspection query (types, their fields, and type references
/// many `ofType`s deep) is refused at 12; the original front end's deepest query is 5.
pub const MAX_DEPTH: usize = 16;
/// Complexity counts every field once per item its enclosing lists may return ([`list_cost`]):
/// the original front end's listing (`posts(first: 30)` with every field, images and author) is
/// about 1,800; a list nested in a list nested in a list is refused.
pub const MAX_COMPLEXITY: usize = 5_000;
/// Directives on one field (`@include`, `@skip`): an honest front end uses one or two; hundreds on
/// one field were an attack on GraphQL servers (GHSA-5gc2-7c65-8fq8).
pub const MAX_DIRECTIVES: usize = 10;

/// Images one post may have (the default of `board_max_images_per_post`).
pub(crate) const ASSUMED_IMAGES: usize = 5;

/// A nested list that is not paged by a cursor (`User.posts`, `Post.applyPosts`, …) but
/// bounded: it returns at most `first` items (its default when not given), and its complexity
/// counts exactly that many. What a list costs is then known before it runs, whatever its owner
/// wrote.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ListBound {
    pub default: i64,
    pub max: i64,
}

impl ListBound {
    /// The items the field returns at most, as asked; BAD_USER_INPUT on `field` outside 1..=max.
    pub(crate) fn limit(&self, field: &str, first: Option<i32>) -> Result<i64, AppError> {
        match first.map(i64::from) {
            None => Ok(self.default),
            Some(n) if (1..=self.max).contains(&n) => Ok(n),
            Some(_) => Err(AppError::bad_input(
                field,
                format!("must be 1 to {}", self.max),
            )),
        }
    }

    /// The same count for complexity (an out-of-range `first` is refused by the resolver).
    pub(crate) fn items(&self, first: Option<i32>) -> usize {
        page_items(first, self.default, self.max)
    }
}

/// A user's trips and applications: as many as a page of the listing by default.
pub(crate) const USER_LISTS: ListBound = ListBound {
    default: 30,
    max: 100,
};
/// A trip's applicants: up to `MaxApply::MAX`; the first 100 unless asked.
pub(crate) const APPLICANTS: ListBound = ListBound {
    default: 100,
    max: fishapp_domain::board::MaxApply::MAX,
};
/// A room's members: its trip's owner and applicants.
pub(crate) const MEMBERS: ListBound = ListBound {
    default: 100,
    max: fishapp_domain::board::MaxApply::MAX + 1,
};

/// The complexity of a list field: its own 1 plus its children once per item.
pub(crate) fn list_cost(items: usize, child_complexity: usize) -> usize {
    items.saturating_mul(child_complexity).saturating_add(1)
}

/// A page size as asked (`first`, `limit`), clamped to what the resolver accepts, as a count of
/// items; an out-of-range value is refused by the resolver with its own error.
pub(crate) fn page_items(requested: Option<i32>, default: i64, max: i64) -> usize {
    usize::try_from(requested.map_or(default, i64::from).clamp(1, max)).unwrap_or(1)
}

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

    /// A page of every field the original front end asks for is well inside the limit; lists
    /// nested three deep, or the same page at its largest with nested lists, are not.
    #[tokio::test]
    async fn complexity_counts_page_sizes_and_nested_lists() {
        // Stops after validation: nothing is resolved, so no service is needed.
        let schema = schema_builder()
            .extension(original_operations::ValidateOnly)
            .finish();
        let complexity_error = |errors: &[async_graphql::ServerError]| {
            errors.iter().any(|e| e.message.contains("too complex"))
        };
        let page = "{ posts(first: 30, input: {}) { pageInfo { hasNextPage endCursor } nodes {
            id title content fishingSpotTypeId fishTypeIds prefectureId meetingPlaceId meetingAt
            maxApply images { id name ownerId ownerType createdAt updatedAt }
            user { id name introduction sex image { id name ownerId ownerType createdAt updatedAt }
                   createdAt updatedAt }
            createdAt updatedAt } } }";
        let response = schema.execute(page).await;
        assert!(!complexity_error(&response.errors), "{:?}", response.errors);
        for nested in [
            "{ posts(first: 30, input: {}) { nodes { applyPosts { user { posts { applyPosts { id } } } } } } }",
            "{ posts(first: 30, input: {}) { nodes { user { posts { images {
                id name ownerId ownerType createdAt updatedAt } } } } } }",
        ] {
            let response = schema.execute(nested).await;
            assert!(
                complexity_error(&response.errors),
                "{nested}: {:?}",
                response.errors
            );
        }
        // The same nesting on a page of one passes: the page size is counted.
        let small = "{ posts(first: 1, input: {}) { nodes { user { posts { images {
            id name ownerId ownerType createdAt updatedAt } } } } } }";
        let response = schema.execute(small).await;
        assert!(!complexity_error(&response.errors), "{:?}", response.errors);
    }
}
