//! The mixed board workload the capacity and soak benchmarks offer: its seed data (300 open
//! trips with two photos each, 50 users who each own a trip and its room), its mix of request
//! kinds in a fixed pseudo-random order, and one request of each kind.

use super::seed;
use crate::common::{self, TestApp, sign_up_session};
use serde_json::{Value, json};

pub(crate) const USERS: usize = 50;
pub(crate) const TRIPS: usize = 300;
const PASSWORD: &str = "a-long-enough-secret";

/// What a request does, with its share of the mix (out of 100): mostly reading, some writing,
/// a few sagas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Kind {
    /// `posts(first: 30)` with users, images and fish types, anonymous.
    List,
    /// `post(id)` with its user and images, signed in.
    View,
    /// The last 30 messages of the user's own room.
    Room,
    /// `createMessage` in the user's own room.
    Send,
    /// `login` with the right password (argon2id).
    Login,
    /// `createApplyPost` (the Apply saga).
    Apply,
    /// `createPost` without photos (the CreatePost saga).
    Create,
}

pub(crate) const MIX: [(Kind, u32); 7] = [
    (Kind::List, 40),
    (Kind::View, 26),
    (Kind::Room, 12),
    (Kind::Send, 12),
    (Kind::Login, 3),
    (Kind::Apply, 5),
    (Kind::Create, 2),
];

/// The kind of the `k`-th request of a run: a fixed pseudo-random sequence, so every run
/// offers the same mix in the same order.
pub(crate) fn kind_of(k: u64) -> Kind {
    // SplitMix64: cheap and well spread.
    let mut z = k.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    let mut roll = ((z ^ (z >> 31)) % 100) as u32;
    for (kind, share) in MIX {
        if roll < share {
            return kind;
        }
        roll -= share;
    }
    Kind::List
}

const LIST: &str = "{ posts(first: 30, input: {}) { pageInfo { hasNextPage endCursor }
  nodes { id title content fishingSpotTypeId prefectureId meetingAt maxApply fishTypeIds
          user { id name } images { id url thumbnailUrl width height } } } }";
const VIEW: &str = "query($id: ID!) { post(id: $id) { id title content meetingAt maxApply
  fishTypeIds applyCount user { id name } images { url thumbnailUrl } } }";
const ROOM: &str = "query($post: ID!) { room(post_id: $post) {
  messages(limit: 30) { id body user { id name } } } }";
const SEND: &str = "mutation($input: CreateMessageInput!) {
  createMessage(input: $input) { message { id } } }";
const LOGIN: &str = "mutation($e: String!, $p: String!) {
  login(input: { email: $e, password: $p }) { tokenPair { idToken } } }";
const CREATE: &str = "mutation($input: CreatePostInput!) {
  createPost(input: $input) { post { id status } } }";
const APPLY: &str =
    "mutation($id: ID!) { createApplyPost(input: { postId: $id }) { applyPost { id } } }";

/// A user of the run: signed in, owning one trip (and so a member of its room).
pub(crate) struct User {
    pub(crate) token: String,
    pub(crate) email: String,
    pub(crate) own_post: i64,
    pub(crate) own_room: i64,
}

/// The seeded application and where the load goes.
pub(crate) struct World {
    pub(crate) app: TestApp,
    _relay: common::RunningRelay,
    pub(crate) users: Vec<User>,
    /// Trips of three other authors, with seats for every user.
    pub(crate) trips: Vec<i64>,
    /// The GraphQL endpoint the requests go to: the app's own, or another API process's.
    target: String,
    http: reqwest::Client,
}

impl World {
    /// Sends the load to the API at `addr` instead (e.g. a separate `fishapp serve` on the same
    /// database, task queues and stream).
    pub(crate) fn aim_at(&mut self, addr: std::net::SocketAddr) {
        self.target = format!("http://{addr}/graphql");
    }

    async fn graphql(&self, bearer: Option<&str>, query: &str, variables: Value) -> Value {
        let request = self
            .http
            .post(&self.target)
            .json(&json!({ "query": query, "variables": variables }));
        common::send(request, bearer).await
    }
}

pub(crate) async fn sign_up_with_email(app: &TestApp) -> (String, String, i64) {
    let email = format!("cap-{}@example.com", uuid::Uuid::new_v4().simple());
    let body = app
        .graphql_as(
            None,
            "mutation($input: CreateUserInput!) {
               createUser(input: $input) { user { id } tokenPair { idToken } } }",
            json!({ "input": { "email": email, "password": PASSWORD, "name": "angler",
                    "sex": "MALE", "introduction": "I fish", "image": null } }),
        )
        .await;
    let created = &body["data"]["createUser"];
    let id = created["user"]["id"]
        .as_str()
        .expect("a user")
        .parse()
        .unwrap();
    (
        created["tokenPair"]["idToken"].as_str().unwrap().to_owned(),
        email,
        id,
    )
}

/// The application (in this process, with its worker and relay) and its seed data, as
/// `fishapp dev` runs it: one Temporal connection for the API and the worker, eager workflow
/// start on.
pub(crate) async fn world() -> World {
    world_with(|_| {}).await
}

/// Like [`world`], with the application's configuration adjusted last (e.g. eager workflow
/// start off, or another Temporal server).
pub(crate) async fn world_with(adjust: impl FnOnce(&mut fishapp::config::Config)) -> World {
    let app = TestApp::spawn_with(|c| {
        c.diagnostics.log_filter = "error".into();
        c.connections.database_max_connections = 20;
        // Writers are many users here; the per-user windows stay out of the way.
        c.board.board_max_posts_per_hour = u32::MAX;
        c.board.board_max_applications_per_hour = u32::MAX;
        c.board.board_max_post_changes_per_hour = u32::MAX;
        c.chat.chat_max_messages = u32::MAX;
        // Each user logs in again and again while their requests use their first sign-in.
        c.accounts.sign_in_max_per_user = u32::MAX;
        adjust(c);
    })
    .await;
    app.start_worker_on_api_connection(&fishapp::worker::Queue::ALL);
    app.wait_for_readiness(200, std::time::Duration::from_secs(30))
        .await;
    let relay = app.start_relay().await;
    let pool = app.pool().await;
    let mut authors = Vec::new();
    for _ in 0..3 {
        authors.push(sign_up_session(&app).await.user_id.parse::<i64>().unwrap());
    }
    let mut trips = Vec::with_capacity(TRIPS);
    for n in 0..TRIPS {
        let (post, _) = seed::open_post(&pool, authors[n % 3], USERS as i32, n).await;
        seed::post_images(&pool, post, 2).await;
        trips.push(post);
    }
    let mut users = Vec::with_capacity(USERS);
    for n in 0..USERS {
        let (token, email, id) = sign_up_with_email(&app).await;
        let (own_post, own_room) = seed::open_post(&pool, id, 4, TRIPS + n).await;
        users.push(User {
            token,
            email,
            own_post,
            own_room,
        });
    }
    World {
        target: app.url("/graphql"),
        http: reqwest::Client::new(),
        app,
        _relay: relay,
        users,
        trips,
    }
}

/// Applies handed out so far: the `n`-th goes to trip n / USERS as user n % USERS, so no user
/// applies to a trip twice and no trip runs out of seats.
static APPLIES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Sends the `k`-th request; whether it succeeded.
pub(crate) async fn request(world: &World, k: u64, kind: Kind) -> bool {
    let user = &world.users[(k % USERS as u64) as usize];
    let body = match kind {
        Kind::List => world.graphql(None, LIST, json!({})).await,
        Kind::View => {
            let post = world.trips[(k % TRIPS as u64) as usize];
            world
                .graphql(Some(&user.token), VIEW, json!({ "id": post.to_string() }))
                .await
        }
        Kind::Room => {
            world
                .graphql(
                    Some(&user.token),
                    ROOM,
                    json!({ "post": user.own_post.to_string() }),
                )
                .await
        }
        Kind::Send => {
            let input =
                json!({ "roomId": user.own_room.to_string(), "body": format!("message {k}") });
            world
                .graphql(Some(&user.token), SEND, json!({ "input": input }))
                .await
        }
        Kind::Login => {
            world
                .graphql(None, LOGIN, json!({ "e": user.email, "p": PASSWORD }))
                .await
        }
        Kind::Apply => {
            let n = APPLIES.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let applicant = &world.users[n % USERS];
            let trip = world.trips[(n / USERS) % TRIPS];
            world
                .graphql(
                    Some(&applicant.token),
                    APPLY,
                    json!({ "id": trip.to_string() }),
                )
                .await
        }
        Kind::Create => {
            let input = json!({
                "title": format!("Capacity {k}"), "content": "A trip.", "fishingSpotTypeId": 1,
                "fishTypeIds": [3], "prefectureId": 13,
                "meetingPlaceId": "ChIJN1t_tDeuEmsRUsoyG83frY4",
                "meetingAt": (chrono::Utc::now() + chrono::Duration::days(7)).to_rfc3339(),
                "maxApply": 4, "images": null, "clientMutationId": null,
            });
            world
                .graphql(Some(&user.token), CREATE, json!({ "input": input }))
                .await
        }
    };
    let ok = body["errors"].is_null();
    if !ok {
        eprintln!("{kind:?} failed: {body}");
    }
    ok
}
