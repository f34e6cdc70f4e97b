//! The custom search attributes every board workflow carries, so that an operator can find all of
//! a post's (or a user's) sagas in the Temporal Web UI with `PostId = "…"` or `UserId = "…"`.

use temporalio_common::protos::temporal::api::enums::v1::IndexedValueType;
use temporalio_common::search_attributes::SearchAttributeKey;

/// Search attribute holding the id of the post a workflow works on.
pub const POST_ID: &str = "PostId";
/// Search attribute holding the id of the user who started a workflow.
pub const USER_ID: &str = "UserId";

/// Typed keys, for setting them when a saga starts and reading them back.
pub const POST_ID_KEY: SearchAttributeKey<String> = SearchAttributeKey::keyword(POST_ID);
pub const USER_ID_KEY: SearchAttributeKey<String> = SearchAttributeKey::keyword(USER_ID);

/// Every custom search attribute Fishapp uses, with its type. Registered at start-up when the
/// namespace lacks them (and by `scripts/stack` for the dev server).
pub const CUSTOM: [(&str, IndexedValueType); 2] = [
    (POST_ID, IndexedValueType::Keyword),
    (USER_ID, IndexedValueType::Keyword),
];
