//! The authorization matrix: every query, mutation and subscription of the schema, asked by an
//! anonymous caller, a signed-in stranger, the trip's owner and a member (an applicant), against
//! the real stack. The rows are checked against the schema itself: a root field without a row
//! here fails the test, so a new field cannot ship without its rule.
#![allow(clippy::unwrap_used)] // in a test, a panic is the failure report

mod common;

use common::{LiveSubscription, TestApp, apply_to, post_input, sign_up_session};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Anonymous,
    Stranger,
    Owner,
    Member,
}

/// The columns of a rule. Within a rule, the callers expected to be refused ask first: a success
/// may change what later callers would see (a deleted trip, a withdrawn application).
const ROLES: [Role; 4] = [Role::Anonymous, Role::Stranger, Role::Owner, Role::Member];

/// The password `common::sign_up_session` signs users up with.
const PASSWORD: &str = "a-long-enough-secret";

struct Person {
    id: String,
    email: String,
    id_token: String,
}

/// An owner's open trip with a member, a second trip the member also joined, the saga that
/// created the first, and a stranger.
struct World {
    app: TestApp,
    owner: Person,
    member: Person,
    stranger: Person,
    post: String,
    second_post: String,
    room: String,
    saga: String,
    /// The member's application to the second trip.
    application: String,
}

async fn person(app: &TestApp) -> Person {
    let session = sign_up_session(app).await;
    let body = app
        .graphql_as(
            Some(&session.id_token),
            "{ currentUser { email } }",
            json!({}),
        )
        .await;
    Person {
        id: session.user_id,
        email: body["data"]["currentUser"]["email"]
            .as_str()
            .unwrap()
            .to_owned(),
        id_token: session.id_token,
    }
}

const CREATE_POST: &str =
    "mutation($input: CreatePostInput!) { createPost(input: $input) { sagaId post { id } } }";

async fn world() -> World {
    let app = TestApp::spawn_with_worker(|_| {}).await;
    let (owner, member, stranger) = (person(&app).await, person(&app).await, person(&app).await);
    let mut posts = Vec::new();
    for title in ["Matrix", "Second"] {
        let body = app
            .graphql_as(
                Some(&owner.id_token),
                CREATE_POST,
                json!({ "input": post_input(title) }),
            )
            .await;
        assert!(body["errors"].is_null(), "{body}");
        posts.push(body["data"]["createPost"].clone());
    }
    let post = posts[0]["post"]["id"].as_str().unwrap().to_owned();
    let second_post = posts[1]["post"]["id"].as_str().unwrap().to_owned();
    let saga = posts[0]["sagaId"].as_str().unwrap().to_owned();
    for trip in [&post, &second_post] {
        let applied = apply_to(&app, &member.id_token, &json!(trip)).await;
        assert!(applied["errors"].is_null(), "{applied}");
    }
    let application = app
        .graphql_as(
            Some(&member.id_token),
            "query($id: ID!) { post(id: $id) { applyPosts { id user { id } } } }",
            json!({ "id": second_post }),
        )
        .await["data"]["post"]["applyPosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["user"]["id"] == json!(member.id))
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .expect("the member's application");
    let room = common::room_of(&app, &owner.id_token, &post).await;
    World {
        app,
        owner,
        member,
        stranger,
        post,
        second_post,
        room,
        saga,
        application,
    }
}

impl World {
    fn person(&self, role: Role) -> Option<&Person> {
        match role {
            Role::Anonymous => None,
            Role::Stranger => Some(&self.stranger),
            Role::Owner => Some(&self.owner),
            Role::Member => Some(&self.member),
        }
    }

    fn token(&self, role: Role) -> Option<&str> {
        self.person(role).map(|p| p.id_token.as_str())
    }

    async fn ask(&self, role: Role, query: &str, variables: Value) -> Value {
        self.app
            .graphql_as(self.token(role), query, variables)
            .await
    }

    /// A fresh sign-in of the role's user (for the operations that end or rotate one): its
    /// refresh token.
    async fn fresh_refresh_token(&self, role: Role) -> Option<String> {
        let person = self.person(role)?;
        let body = self
            .app
            .graphql_as(
                None,
                "mutation($e: String!, $p: String!) { login(input: { email: $e, password: $p }) { tokenPair { refreshToken } } }",
                json!({ "e": person.email, "p": PASSWORD }),
            )
            .await;
        Some(
            body["data"]["login"]["tokenPair"]["refreshToken"]
                .as_str()
                .unwrap_or_else(|| panic!("{body}"))
                .to_owned(),
        )
    }

    /// The first answer of a subscription: its error, or `{"data":"open"}` when it is open and
    /// quiet, or its first item.
    async fn subscribe(&self, role: Role, query: &str, variables: Value) -> Value {
        let mut live = LiveSubscription::open(&self.app, self.token(role), query, variables).await;
        match live.next(Duration::from_secs(2)).await {
            None => json!({ "data": "open" }),
            Some(message) if message["type"] == "error" => json!({ "errors": message["payload"] }),
            Some(message) => message["payload"].clone(),
        }
    }
}

/// "ok" (no error), or the error's code.
fn outcome(body: &Value) -> String {
    match body["errors"][0]["extensions"]["code"].as_str() {
        Some(code @ "BAD_USER_INPUT") => format!("{code}: {}", body["errors"][0]["message"]),
        Some(code) => code.to_owned(),
        None if body["errors"].is_null() && !body["data"].is_null() => "ok".to_owned(),
        None => format!("unexpected: {body}"),
    }
}

/// The root fields of the schema, as `Query.name`, `Mutation.name`, `Subscription.name`.
fn root_fields() -> BTreeSet<String> {
    let sdl = fishapp_api::graphql::sdl();
    let mut fields = BTreeSet::new();
    let mut current: Option<&str> = None;
    let mut in_doc = false;
    for line in sdl.lines() {
        if line.trim_start().starts_with("\"\"\"") {
            let quotes = line.matches("\"\"\"").count();
            if quotes == 1 {
                in_doc = !in_doc;
            }
            continue;
        }
        if in_doc {
            continue;
        }
        if let Some(root) = ["Query", "Mutation", "Subscription"]
            .into_iter()
            .find(|root| line.starts_with(&format!("type {root} ")))
        {
            current = Some(root);
            continue;
        }
        if line.starts_with('}') {
            current = None;
            continue;
        }
        if let Some(root) = current {
            let name: String = line
                .trim_start()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                fields.insert(format!("{root}.{name}"));
            }
        }
    }
    fields
}

/// Every root field's rule: what each caller gets, in [`ROLES`] order.
/// What confirming an email change or notifications by e-mail with a token nobody was mailed
/// says, to anyone.
const UNKNOWN_TOKEN: &str =
    r#"BAD_USER_INPUT: "this confirmation is unknown, already used or expired""#;

const RULES: &[(&str, [&str; 4])] = &[
    ("Query.healthCheck", ["ok", "ok", "ok", "ok"]),
    ("Query.currentUser", ["UNAUTHENTICATED", "ok", "ok", "ok"]),
    // A user's notifications are their own: no argument names anyone else.
    ("Query.notifications", ["UNAUTHENTICATED", "ok", "ok", "ok"]),
    (
        "Query.unreadNotificationCount",
        ["UNAUTHENTICATED", "ok", "ok", "ok"],
    ),
    (
        "Query.mutedNotificationKinds",
        ["UNAUTHENTICATED", "ok", "ok", "ok"],
    ),
    (
        "Mutation.markNotificationsRead",
        ["UNAUTHENTICATED", "ok", "ok", "ok"],
    ),
    (
        "Mutation.muteNotificationKind",
        ["UNAUTHENTICATED", "ok", "ok", "ok"],
    ),
    (
        "Query.notificationEmail",
        ["UNAUTHENTICATED", "ok", "ok", "ok"],
    ),
    // This server sends no mail (the one that does: tests/notifications.rs).
    (
        "Mutation.requestNotificationEmail",
        [
            "UNAUTHENTICATED",
            "UNAVAILABLE",
            "UNAVAILABLE",
            "UNAVAILABLE",
        ],
    ),
    (
        "Mutation.confirmNotificationEmail",
        [UNKNOWN_TOKEN, UNKNOWN_TOKEN, UNKNOWN_TOKEN, UNKNOWN_TOKEN],
    ),
    (
        "Mutation.disableNotificationEmail",
        ["UNAUTHENTICATED", "ok", "ok", "ok"],
    ),
    ("Query.user", ["ok", "ok", "ok", "ok"]),
    ("Query.post", ["ok", "ok", "ok", "ok"]),
    ("Query.posts", ["ok", "ok", "ok", "ok"]),
    (
        "Query.saga",
        ["UNAUTHENTICATED", "NOT_FOUND", "ok", "NOT_FOUND"],
    ),
    ("Query.room", ["UNAUTHENTICATED", "NOT_FOUND", "ok", "ok"]),
    ("Mutation.createUser", ["ok", "ok", "ok", "ok"]),
    ("Mutation.login", ["ok", "ok", "ok", "ok"]),
    (
        "Mutation.refreshIDToken",
        ["UNAUTHENTICATED", "ok", "ok", "ok"],
    ),
    ("Mutation.logout", ["UNAUTHENTICATED", "ok", "ok", "ok"]),
    ("Mutation.updateUser", ["UNAUTHENTICATED", "ok", "ok", "ok"]),
    (
        "Mutation.updatePassword",
        ["UNAUTHENTICATED", "ok", "ok", "ok"],
    ),
    // The token is the credential: the same answer whoever asks (a wrong token here).
    (
        "Mutation.confirmEmailChange",
        [UNKNOWN_TOKEN, UNKNOWN_TOKEN, UNKNOWN_TOKEN, UNKNOWN_TOKEN],
    ),
    ("Mutation.createPost", ["UNAUTHENTICATED", "ok", "ok", "ok"]),
    (
        "Mutation.updatePost",
        ["UNAUTHENTICATED", "FORBIDDEN", "ok", "FORBIDDEN"],
    ),
    (
        "Mutation.createApplyPost",
        ["UNAUTHENTICATED", "ok", "CONFLICT", "CONFLICT"],
    ),
    // Only the organiser answers a request, and a seated application is none (NOT_WAITING);
    // the answers that succeed are in tests/trips.rs. Before the member withdraws it below.
    (
        "Mutation.acceptApplyPost",
        ["UNAUTHENTICATED", "NOT_FOUND", "CONFLICT", "NOT_FOUND"],
    ),
    (
        "Mutation.declineApplyPost",
        ["UNAUTHENTICATED", "NOT_FOUND", "CONFLICT", "NOT_FOUND"],
    ),
    (
        "Mutation.deleteApplyPost",
        ["UNAUTHENTICATED", "FORBIDDEN", "FORBIDDEN", "ok"],
    ),
    // The member's application is gone now: NOT_FOUND whoever asks, as for an application to
    // someone else's trip; the organiser's removals that succeed are in tests/trips.rs.
    (
        "Mutation.removeApplyPost",
        ["UNAUTHENTICATED", "NOT_FOUND", "NOT_FOUND", "NOT_FOUND"],
    ),
    // Nobody was removed from this trip: its organiser hears so, anyone else may not ask.
    (
        "Mutation.liftRemoval",
        ["UNAUTHENTICATED", "FORBIDDEN", "NOT_FOUND", "FORBIDDEN"],
    ),
    (
        "Mutation.createMessage",
        ["UNAUTHENTICATED", "NOT_FOUND", "ok", "ok"],
    ),
    // Only a member who held a seat reviews, and only a trip that is over (this one is not);
    // the reviews that succeed are in tests/reviews.rs.
    (
        "Mutation.reviewTrip",
        ["UNAUTHENTICATED", "FORBIDDEN", "FORBIDDEN", "CONFLICT"],
    ),
    (
        "Subscription.createPostResult",
        ["UNAUTHENTICATED", "NOT_FOUND", "ok", "NOT_FOUND"],
    ),
    (
        "Subscription.messageAdded",
        ["UNAUTHENTICATED", "NOT_FOUND", "ok", "ok"],
    ),
    (
        "Subscription.notificationAdded",
        ["UNAUTHENTICATED", "ok", "ok", "ok"],
    ),
    (
        "Subscription.unreadNotificationCount",
        ["UNAUTHENTICATED", "ok", "ok", "ok"],
    ),
    // Last: the owner's success removes the trip the rows above use.
    (
        "Mutation.deletePost",
        ["UNAUTHENTICATED", "FORBIDDEN", "ok", "FORBIDDEN"],
    ),
];

/// Asks `field` as `role`.
async fn ask(world: &World, field: &str, role: Role) -> Value {
    let unique = || format!("m-{}@example.com", uuid::Uuid::new_v4().simple());
    match field {
        "Query.healthCheck" => world.ask(role, "{ healthCheck }", json!({})).await,
        "Query.currentUser" => world.ask(role, "{ currentUser { id } }", json!({})).await,
        "Query.notifications" => {
            world
                .ask(role, "{ notifications { nodes { id } } }", json!({}))
                .await
        }
        "Query.unreadNotificationCount" => {
            world
                .ask(role, "{ unreadNotificationCount }", json!({}))
                .await
        }
        "Query.mutedNotificationKinds" => {
            world.ask(role, "{ mutedNotificationKinds }", json!({})).await
        }
        "Mutation.markNotificationsRead" => {
            world
                .ask(
                    role,
                    "mutation { markNotificationsRead(input: { all: true }) { count } }",
                    json!({}),
                )
                .await
        }
        "Mutation.muteNotificationKind" => {
            world
                .ask(
                    role,
                    "mutation { muteNotificationKind(input: { kind: NEW_MESSAGES, muted: false }) { mutedKinds } }",
                    json!({}),
                )
                .await
        }
        "Query.notificationEmail" => world.ask(role, "{ notificationEmail }", json!({})).await,
        "Mutation.requestNotificationEmail" => {
            world
                .ask(role, "mutation { requestNotificationEmail }", json!({}))
                .await
        }
        "Mutation.confirmNotificationEmail" => {
            world
                .ask(
                    role,
                    "mutation($t: String!) { confirmNotificationEmail(input: { token: $t }) }",
                    json!({ "t": "not-a-token-anyone-was-mailed" }),
                )
                .await
        }
        "Mutation.disableNotificationEmail" => {
            world
                .ask(role, "mutation { disableNotificationEmail }", json!({}))
                .await
        }
        "Query.user" => {
            world
                .ask(role, "query($id: ID!) { user(id: $id) { id name } }", json!({ "id": world.owner.id }))
                .await
        }
        "Query.post" => {
            world
                .ask(role, "query($id: ID!) { post(id: $id) { id } }", json!({ "id": world.post }))
                .await
        }
        "Query.posts" => world.ask(role, "{ posts(first: 5, input: {}) { pageInfo { hasNextPage } } }", json!({})).await,
        "Query.saga" => {
            world
                .ask(role, "query($id: String!) { saga(id: $id) { status } }", json!({ "id": world.saga }))
                .await
        }
        "Query.room" => {
            world
                .ask(role, "query($p: ID!) { room(post_id: $p) { id } }", json!({ "p": world.post }))
                .await
        }
        "Mutation.createUser" => {
            world
                .ask(
                    role,
                    "mutation($input: CreateUserInput!) { createUser(input: $input) { user { id } } }",
                    json!({ "input": { "email": unique(), "password": PASSWORD, "name": "Angler",
                                       "sex": "MALE", "introduction": "Here for the matrix." } }),
                )
                .await
        }
        "Mutation.login" => {
            world
                .ask(
                    role,
                    "mutation($e: String!, $p: String!) { login(input: { email: $e, password: $p }) { user { id } } }",
                    json!({ "e": world.owner.email, "p": PASSWORD }),
                )
                .await
        }
        "Mutation.refreshIDToken" | "Mutation.logout" => {
            // Each caller presents a refresh token of its own sign-in (a fresh one: these end or
            // rotate it).
            let token = world.fresh_refresh_token(role).await;
            let query = if field == "Mutation.logout" {
                "mutation($r: String) { logout(refreshToken: $r) { success } }"
            } else {
                "mutation($r: String) { refreshIDToken(refreshToken: $r) { tokenPair { idToken } } }"
            };
            world.app.graphql_as(None, query, json!({ "r": token })).await
        }
        "Mutation.updateUser" => {
            world
                .ask(
                    role,
                    "mutation($input: UpdateUserInput!) { updateUser(input: $input) { user { id } } }",
                    json!({ "input": { "introduction": "Changed by the matrix." } }),
                )
                .await
        }
        "Mutation.confirmEmailChange" => {
            world
                .ask(
                    role,
                    "mutation($t: String!) { confirmEmailChange(input: { token: $t }) { user { id } } }",
                    json!({ "t": "not-a-token-anyone-was-mailed" }),
                )
                .await
        }
        "Mutation.updatePassword" => {
            // To the same password: the caller's sign-in goes on for the rows below.
            world
                .ask(
                    role,
                    "mutation($input: UpdatePasswordInput!) { updatePassword(input: $input) { success } }",
                    json!({ "input": { "oldPassword": PASSWORD, "newPassword": PASSWORD } }),
                )
                .await
        }
        "Mutation.createPost" => {
            world
                .ask(role, CREATE_POST, json!({ "input": post_input("By the matrix") }))
                .await
        }
        "Mutation.updatePost" => {
            let mut input = post_input("Renamed");
            input["id"] = json!(world.post);
            world
                .ask(
                    role,
                    "mutation($input: UpdatePostInput!) { updatePost(input: $input) { post { id } } }",
                    json!({ "input": input }),
                )
                .await
        }
        "Mutation.deletePost" => {
            world
                .ask(
                    role,
                    "mutation($input: DeletePostInput!) { deletePost(input: $input) { success } }",
                    json!({ "input": { "id": world.post } }),
                )
                .await
        }
        "Mutation.createApplyPost" => {
            world
                .ask(
                    role,
                    "mutation($input: CreateApplyPostInput!) { createApplyPost(input: $input) { applyPost { id } } }",
                    json!({ "input": { "postId": world.second_post } }),
                )
                .await
        }
        "Mutation.deleteApplyPost" => {
            world
                .ask(
                    role,
                    "mutation($input: DeleteApplyPostInput!) { deleteApplyPost(input: $input) { success } }",
                    json!({ "input": { "id": world.application } }),
                )
                .await
        }
        "Mutation.acceptApplyPost" => {
            world
                .ask(
                    role,
                    "mutation($input: AcceptApplyPostInput!) { acceptApplyPost(input: $input) { applyPost { id } } }",
                    json!({ "input": { "id": world.application } }),
                )
                .await
        }
        "Mutation.declineApplyPost" => {
            world
                .ask(
                    role,
                    "mutation($input: DeclineApplyPostInput!) { declineApplyPost(input: $input) { success } }",
                    json!({ "input": { "id": world.application } }),
                )
                .await
        }
        "Mutation.removeApplyPost" => {
            world
                .ask(
                    role,
                    "mutation($input: RemoveApplyPostInput!) { removeApplyPost(input: $input) { success } }",
                    json!({ "input": { "id": world.application } }),
                )
                .await
        }
        "Mutation.liftRemoval" => {
            world
                .ask(
                    role,
                    "mutation($input: LiftRemovalInput!) { liftRemoval(input: $input) { success } }",
                    json!({ "input": { "postId": world.post, "userId": "1" } }),
                )
                .await
        }
        "Mutation.createMessage" => {
            world
                .ask(
                    role,
                    "mutation($input: CreateMessageInput!) { createMessage(input: $input) { message { id } } }",
                    json!({ "input": { "roomId": world.room, "body": "from the matrix" } }),
                )
                .await
        }
        "Mutation.reviewTrip" => {
            world
                .ask(
                    role,
                    "mutation($input: ReviewTripInput!) { reviewTrip(input: $input) { review { id } } }",
                    json!({ "input": { "postId": world.post, "rating": 5 } }),
                )
                .await
        }
        "Subscription.createPostResult" => {
            world
                .subscribe(
                    role,
                    "subscription($input: CreatePostResultInput!) { createPostResult(input: $input) { post { id } error } }",
                    json!({ "input": { "sagaId": world.saga } }),
                )
                .await
        }
        "Subscription.messageAdded" => {
            world
                .subscribe(
                    role,
                    "subscription($input: MessageAddedInput!) { messageAdded(input: $input) { message { id } } }",
                    json!({ "input": { "roomId": world.room } }),
                )
                .await
        }
        "Subscription.notificationAdded" => {
            world
                .subscribe(role, "subscription { notificationAdded { id } }", json!({}))
                .await
        }
        "Subscription.unreadNotificationCount" => {
            world
                .subscribe(role, "subscription { unreadNotificationCount }", json!({}))
                .await
        }
        other => panic!("no way to ask {other}: add it to `ask`"),
    }
}

#[tokio::test]
async fn every_root_field_has_a_rule_and_every_rule_holds() {
    let ruled: BTreeSet<String> = RULES.iter().map(|(field, _)| (*field).to_owned()).collect();
    let schema = root_fields();
    assert!(schema.len() > 15, "the SDL was not read: {schema:?}");
    let without_rule: Vec<&String> = schema.difference(&ruled).collect();
    let without_field: Vec<&String> = ruled.difference(&schema).collect();
    assert!(
        without_rule.is_empty() && without_field.is_empty(),
        "fields without a rule: {without_rule:?}; rules without a field: {without_field:?}"
    );

    let world = world().await;
    let mut mismatches = Vec::new();
    for (field, expected) in RULES {
        let mut columns: Vec<(&Role, &&str)> = ROLES.iter().zip(expected).collect();
        columns.sort_by_key(|(_, expected)| **expected == "ok");
        for (role, expected) in columns {
            let got = outcome(&ask(&world, field, *role).await);
            if got != *expected {
                mismatches.push(format!(
                    "{field} as {role:?}: expected {expected}, got {got}"
                ));
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
