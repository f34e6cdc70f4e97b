//! Operations written the way the original Fishapp front end writes them — named operations,
//! typed variables (`$pref: ID`, `$fish: [ID!]!`, `$del: [Int!]`, `$image: Upload`), fragments —
//! validated against this schema. An operation that validated against the original must validate
//! here (docs/compatibility.md lists the operations and the exact types kept).

use super::{RequestContext, schema_builder};
use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextExecute};
use async_graphql::{Request, Response, Value, Variables};
use futures::StreamExt;
use serde_json::json;
use std::sync::Arc;

/// Stops every request after validation: nothing is resolved, so no service is needed.
pub(super) struct ValidateOnly;

impl ExtensionFactory for ValidateOnly {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ValidateOnly)
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for ValidateOnly {
    async fn execute(
        &self,
        _ctx: &ExtensionContext<'_>,
        _operation_name: Option<&str>,
        _next: NextExecute<'_>,
    ) -> Response {
        Response::new(Value::Null)
    }
}

const POST_FIELDS: &str = "
fragment PostFields on Post {
  id title content fishingSpotTypeId fishTypeIds prefectureId meetingPlaceId meetingAt maxApply
  images { ...ImageFields }
  user { ...UserFields }
  createdAt updatedAt
}
fragment UserFields on User { id name introduction sex image { ...ImageFields } createdAt updatedAt }
fragment ImageFields on Image { id name ownerId ownerType createdAt updatedAt }";

fn operations() -> Vec<(&'static str, String, serde_json::Value)> {
    vec![
        ("healthCheck", "query HealthCheck { healthCheck }".into(), json!({})),
        (
            "posts, every filter as a typed variable",
            format!(
                "query Posts($first: Int, $after: String, $pref: ID, $spot: ID, $user: ID,
                             $fish: [ID!], $from: Time, $to: Time, $canApply: Boolean,
                             $sort: PostSortBy, $order: PostOrderBy) {{
                   posts(first: $first, after: $after, input: {{
                     prefectureId: $pref, fishingSpotTypeId: $spot, userId: $user,
                     fishTypeIds: $fish, meetingAtFrom: $from, meetingAtTo: $to,
                     canApply: $canApply, sortBy: $sort, orderBy: $order }}) {{
                     pageInfo {{ hasNextPage endCursor }}
                     nodes {{ ...PostFields }}
                   }}
                 }} {POST_FIELDS}"
            ),
            json!({ "first": 10, "pref": "13", "spot": "1", "fish": ["3", "12"],
                    "from": "2026-12-01T00:00:00+09:00", "canApply": true,
                    "sort": "MEETING_AT", "order": "ASC" }),
        ),
        (
            "post",
            format!("query Post($id: ID!) {{ post(id: $id) {{ ...PostFields }} }} {POST_FIELDS}"),
            json!({ "id": "1" }),
        ),
        (
            "currentUser and user",
            "query Me($id: ID!) {
               currentUser { id email name introduction sex image { id name ownerId ownerType } createdAt updatedAt }
               user(id: $id) { id email name introduction sex image { id } createdAt updatedAt }
             }"
            .into(),
            json!({ "id": "1" }),
        ),
        (
            "createUser with an avatar",
            "mutation CreateUser($email: String!, $password: String!, $name: String!, $sex: Sex!,
                                 $introduction: String!, $image: Upload) {
               createUser(input: { email: $email, password: $password, name: $name, sex: $sex,
                                   introduction: $introduction, image: $image }) {
                 user { id email name }
                 tokenPair { idToken refreshToken }
               }
             }"
            .into(),
            json!({ "email": "a@example.com", "password": "a-long-secret", "name": "a",
                    "sex": "FEMALE", "introduction": "hi", "image": null }),
        ),
        (
            "login, refreshIDToken, logout",
            "mutation Login($input: LoginInput!) { login(input: $input) { user { id } tokenPair { idToken refreshToken } } }"
                .into(),
            json!({ "input": { "email": "a@example.com", "password": "a-long-secret" } }),
        ),
        (
            "refreshIDToken",
            "mutation Refresh { refreshIDToken { tokenPair { idToken refreshToken } } }".into(),
            json!({}),
        ),
        ("logout", "mutation Logout { logout { success } }".into(), json!({})),
        (
            "updateUser with String! variables and an avatar",
            "mutation UpdateUser($email: String!, $name: String!, $introduction: String!, $image: Upload) {
               updateUser(input: { email: $email, name: $name, introduction: $introduction, image: $image }) {
                 user { id name image { id } }
               }
             }"
            .into(),
            json!({ "email": "b@example.com", "name": "b", "introduction": "hello", "image": null }),
        ),
        (
            "updatePassword",
            "mutation UpdatePassword($input: UpdatePasswordInput!) { updatePassword(input: $input) { success } }"
                .into(),
            json!({ "input": { "oldPassword": "a-long-secret", "newPassword": "another-secret" } }),
        ),
        (
            "createPost, each field a typed variable",
            format!(
                "mutation CreatePost($title: String!, $content: String!, $spot: ID!, $fish: [ID!]!,
                                     $pref: ID!, $place: String!, $at: Time!, $max: Int!,
                                     $images: [Upload!]) {{
                   createPost(input: {{ title: $title, content: $content, fishingSpotTypeId: $spot,
                                        fishTypeIds: $fish, prefectureId: $pref, meetingPlaceId: $place,
                                        meetingAt: $at, maxApply: $max, images: $images }}) {{
                     post {{ ...PostFields }}
                   }}
                 }} {POST_FIELDS}"
            ),
            json!({ "title": "t", "content": "c", "spot": "1", "fish": ["3"], "pref": "13",
                    "place": "ChIJN1t_tDeuEmsRUsoyG83frY4", "at": "2027-01-01T05:00:00+09:00",
                    "max": 3, "images": null }),
        ),
        (
            "createPost, the input as one variable",
            "mutation CreatePost($input: CreatePostInput!) { createPost(input: $input) { post { id } } }"
                .into(),
            json!({ "input": { "title": "t", "content": "c", "fishingSpotTypeId": "1",
                               "fishTypeIds": ["3"], "prefectureId": "13",
                               "meetingPlaceId": "ChIJN1t_tDeuEmsRUsoyG83frY4",
                               "meetingAt": "2027-01-01T05:00:00+09:00", "maxApply": 3,
                               "images": null } }),
        ),
        (
            "updatePost with [Int!] image ids to delete",
            "mutation UpdatePost($id: ID!, $title: String!, $content: String!, $spot: ID!,
                                 $fish: [ID!]!, $pref: ID!, $place: String!, $at: Time!, $max: Int!,
                                 $del: [Int!], $images: [Upload!]) {
               updatePost(input: { id: $id, title: $title, content: $content,
                                   fishingSpotTypeId: $spot, fishTypeIds: $fish,
                                   prefectureId: $pref, meetingPlaceId: $place, meetingAt: $at,
                                   maxApply: $max, imageIdsToDelete: $del, images: $images }) {
                 post { id images { id } }
               }
             }"
            .into(),
            json!({ "id": "1", "title": "t", "content": "c", "spot": "1", "fish": ["3"],
                    "pref": "13", "place": "ChIJN1t_tDeuEmsRUsoyG83frY4",
                    "at": "2027-01-01T05:00:00+09:00", "max": 3, "del": [1, 2], "images": null }),
        ),
        (
            "deletePost",
            "mutation DeletePost($id: ID!) { deletePost(input: { id: $id }) { success } }".into(),
            json!({ "id": "1" }),
        ),
        (
            "a user's posts and applications",
            format!(
                "query UserPosts($id: ID!) {{
                   user(id: $id) {{
                     posts {{ ...PostFields }}
                     applyPosts {{ id user {{ id }} post {{ id applyPosts {{ id }} }} createdAt updatedAt }}
                   }}
                 }} {POST_FIELDS}"
            ),
            json!({ "id": "1" }),
        ),
        (
            "createApplyPost",
            "mutation CreateApplyPost($postId: ID!) {
               createApplyPost(input: { postId: $postId }) {
                 applyPost { id user { id } post { id } createdAt updatedAt }
               }
             }"
            .into(),
            json!({ "postId": "1" }),
        ),
        (
            "deleteApplyPost",
            "mutation DeleteApplyPost($id: ID!) { deleteApplyPost(input: { id: $id }) { success } }"
                .into(),
            json!({ "id": "1" }),
        ),
        (
            "room, by its snake_case argument",
            "query Room($postId: ID!) {
               room(post_id: $postId) {
                 id post { id }
                 messages { id body roomId user { id } image { id name } createdAt updatedAt }
                 members { id roomId user { id } createdAt updatedAt }
                 createdAt updatedAt
               }
             }"
            .into(),
            json!({ "postId": "1" }),
        ),
        (
            "createMessage, text or one image",
            "mutation CreateMessage($roomId: ID!, $body: String, $image: Upload) {
               createMessage(input: { roomId: $roomId, body: $body, image: $image }) {
                 message { id body roomId user { id } image { id } createdAt updatedAt }
               }
             }"
            .into(),
            json!({ "roomId": "1", "body": "hello", "image": null }),
        ),
    ]
}

#[tokio::test]
async fn the_original_front_ends_operations_validate() {
    let schema = schema_builder().extension(ValidateOnly).finish();
    for (name, query, variables) in operations() {
        let request = Request::new(query).variables(Variables::from_json(variables));
        let response = schema.execute(request).await;
        assert!(response.errors.is_empty(), "{name}: {:?}", response.errors);
    }
}

/// Subscriptions validate as the stream starts; the resolver then runs, and an anonymous caller
/// gets its UNAUTHENTICATED (an error with a path: the operation itself was valid).
#[tokio::test]
async fn the_original_front_ends_subscriptions_validate() {
    let schema = schema_builder().finish();
    for (query, variables) in [
        (
            "subscription CreatePostResult($sagaId: String!) {
               createPostResult(input: { sagaId: $sagaId }) { post { id title } error }
             }",
            json!({ "sagaId": "x" }),
        ),
        (
            "subscription MessageAdded($roomId: ID!) {
               messageAdded(input: { roomId: $roomId }) {
                 message { id body roomId user { id name } image { id } createdAt updatedAt }
               }
             }",
            json!({ "roomId": "1" }),
        ),
    ] {
        let request = Request::new(query)
            .variables(Variables::from_json(variables))
            .data(RequestContext::new(
                None,
                std::net::Ipv4Addr::LOCALHOST.into(),
            ));
        let first = schema
            .execute_stream(request)
            .next()
            .await
            .expect("one response");
        assert_eq!(first.errors.len(), 1, "{query}: {:?}", first.errors);
        assert!(
            !first.errors[0].path.is_empty(),
            "{query}: {:?}",
            first.errors
        );
    }
}

/// And the check is real: variables of types the schema does not take there are refused (as the
/// original front end's `$pref: ID` was, when `prefectureId` was an `Int`).
#[tokio::test]
async fn operations_with_other_types_are_refused() {
    let schema = schema_builder().extension(ValidateOnly).finish();
    for (query, variables) in [
        (
            "query($first: ID) { posts(first: $first, input: {}) { nodes { id } } }",
            json!({ "first": "10" }),
        ),
        (
            "query($order: OrderBy) { posts(input: { orderBy: $order }) { nodes { id } } }",
            json!({ "order": "ASC" }),
        ),
        (
            "mutation($del: [ID!]) { updatePost(input: { id: 1, title: \"t\", content: \"c\",
               fishingSpotTypeId: 1, fishTypeIds: [1], prefectureId: 1, meetingPlaceId: \"p\",
               meetingAt: \"2027-01-01T00:00:00Z\", maxApply: 1, imageIdsToDelete: $del }) { post { id } } }",
            json!({ "del": ["1"] }),
        ),
    ] {
        let request = Request::new(query).variables(Variables::from_json(variables));
        let response = schema.execute(request).await;
        assert!(!response.errors.is_empty(), "{query} validated");
    }
}
