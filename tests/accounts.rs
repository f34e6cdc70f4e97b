//! Accounts and authentication over GraphQL, against the real stack.

#![allow(clippy::unwrap_used)] // in a test, a panic is the failure report

mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{SocketClient, TestApp, error_code};
use fishapp_app::account::tokens::TokenKeys;
use serde_json::{Value, json};
use std::time::Duration;

const SIGN_UP: &str = "mutation($input: CreateUserInput!) {
  createUser(input: $input) { user { id email name sex introduction createdAt } tokenPair { idToken refreshToken } }
}";
const LOGIN: &str = "mutation($email: String!, $password: String!) {
  login(input: { email: $email, password: $password }) { user { id email } tokenPair { idToken refreshToken } }
}";
const REFRESH: &str = "mutation { refreshIDToken { tokenPair { idToken refreshToken } } }";
const LOGOUT: &str = "mutation { logout { success } }";
const CURRENT_USER: &str = "{ currentUser { id email name } }";
const PASSWORD: &str = "fish-on-at-dawn-42";

struct Session {
    user_id: String,
    id_token: String,
    refresh_token: String,
}

fn unique_email() -> String {
    format!("Angler-{}@Example.com", uuid::Uuid::new_v4().simple())
}

fn session_of(payload: &Value) -> Session {
    Session {
        user_id: payload["user"]["id"].as_str().unwrap().to_owned(),
        id_token: payload["tokenPair"]["idToken"].as_str().unwrap().to_owned(),
        refresh_token: payload["tokenPair"]["refreshToken"]
            .as_str()
            .unwrap()
            .to_owned(),
    }
}

async fn sign_up(app: &TestApp, email: &str) -> Session {
    let body = app
        .graphql_as(
            None,
            SIGN_UP,
            json!({ "input": { "email": email, "password": PASSWORD, "name": "釣り人", "sex": "FEMALE", "introduction": "Trout, mostly." } }),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    session_of(&body["data"]["createUser"])
}

async fn login(app: &TestApp, email: &str, password: &str) -> Value {
    app.graphql_as(None, LOGIN, json!({ "email": email, "password": password }))
        .await
}

async fn current_user(app: &TestApp, id_token: &str) -> Value {
    app.graphql_as(Some(id_token), CURRENT_USER, json!({}))
        .await
}

async fn refresh(app: &TestApp, refresh_token: &str) -> Value {
    app.graphql_as(Some(refresh_token), REFRESH, json!({}))
        .await
}

#[tokio::test]
async fn the_whole_lifecycle() {
    let app = TestApp::spawn().await;
    let email = unique_email();
    let first = sign_up(&app, &email).await;

    let me = current_user(&app, &first.id_token).await;
    assert_eq!(me["data"]["currentUser"]["email"], email, "{me}");
    assert_eq!(me["data"]["currentUser"]["name"], "釣り人");

    // Login is case-insensitive on the email and starts a second sign-in.
    let body = login(&app, &email.to_uppercase(), PASSWORD).await;
    let second = session_of(&body["data"]["login"]);
    assert_eq!(second.user_id, first.user_id);

    // Refresh rotates: the new pair works, the old refresh token is dead.
    let body = refresh(&app, &second.refresh_token).await;
    let rotated = session_of(
        &json!({ "user": { "id": "" }, "tokenPair": body["data"]["refreshIDToken"]["tokenPair"] }),
    );
    assert_ne!(rotated.refresh_token, second.refresh_token);
    assert_eq!(
        current_user(&app, &rotated.id_token).await["data"]["currentUser"]["id"],
        first.user_id
    );

    // Profile update.
    let body = app
        .graphql_as(
            Some(&rotated.id_token),
            "mutation { updateUser(input: { name: \"鮎釣り師\", introduction: \"Ayu in summer.\" }) { user { name introduction email } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        body["data"]["updateUser"]["user"]["name"], "鮎釣り師",
        "{body}"
    );
    assert_eq!(body["data"]["updateUser"]["user"]["email"], email);

    // A password change ends every other sign-in, ID tokens included, at once.
    let body = app
        .graphql_as(
            Some(&rotated.id_token),
            "mutation($old: String!, $new: String!) { updatePassword(input: { oldPassword: $old, newPassword: $new }) { success } }",
            json!({ "old": PASSWORD, "new": "a-brand-new-secret-99" }),
        )
        .await;
    assert_eq!(body["data"]["updatePassword"]["success"], true, "{body}");
    assert_eq!(
        error_code(&current_user(&app, &first.id_token).await),
        "UNAUTHENTICATED"
    );
    assert_eq!(
        error_code(&refresh(&app, &first.refresh_token).await),
        "UNAUTHENTICATED"
    );
    assert!(
        current_user(&app, &rotated.id_token).await["errors"].is_null(),
        "the sign-in that changed it stays"
    );
    assert_eq!(
        error_code(&login(&app, &email, PASSWORD).await),
        "UNAUTHENTICATED"
    );
    assert!(login(&app, &email, "a-brand-new-secret-99").await["errors"].is_null());

    // Logout with the refresh token in the header: the sign-in's ID tokens stop at once.
    let body = app
        .graphql_as(Some(&rotated.refresh_token), LOGOUT, json!({}))
        .await;
    assert_eq!(body["data"]["logout"]["success"], true, "{body}");
    let refused = current_user(&app, &rotated.id_token).await;
    assert_eq!(error_code(&refused), "UNAUTHENTICATED", "{refused}");
    assert_eq!(
        error_code(&refresh(&app, &rotated.refresh_token).await),
        "UNAUTHENTICATED"
    );
}

#[tokio::test]
async fn logout_with_the_refresh_token_as_argument_revokes_the_presented_id_token() {
    let app = TestApp::spawn().await;
    let session = sign_up(&app, &unique_email()).await;
    let body = app
        .graphql_as(
            Some(&session.id_token),
            "mutation($r: String) { logout(refreshToken: $r) { success } }",
            json!({ "r": session.refresh_token }),
        )
        .await;
    assert_eq!(body["data"]["logout"]["success"], true, "{body}");
    assert_eq!(
        error_code(&current_user(&app, &session.id_token).await),
        "UNAUTHENTICATED"
    );
}

#[tokio::test]
async fn invalid_sign_ups_name_the_field_and_store_nothing() {
    let app = TestApp::spawn().await;
    let email = unique_email();
    let valid = json!({ "email": email, "password": PASSWORD, "name": "taro", "sex": "MALE", "introduction": "hi" });
    let cases = [
        ("email", json!("not-an-email")),
        ("password", json!("short")),
        ("password", json!("password1")), // among the most common
        ("password", json!("x".repeat(129))),
        ("name", json!("ながすぎるなまえですよね")),
        ("name", json!("")),
        ("introduction", json!("")),
    ];
    for (field, value) in cases {
        let mut input = valid.clone();
        input[field] = value.clone();
        let body = app
            .graphql_as(None, SIGN_UP, json!({ "input": input }))
            .await;
        assert_eq!(
            error_code(&body),
            "BAD_USER_INPUT",
            "{field}={value}: {body}"
        );
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body}");
    }
    // None of those created the account.
    sign_up(&app, &email).await;
    // A second sign-up with the same address in another case is refused by the unique index.
    let mut again = valid.clone();
    again["email"] = json!(email.to_lowercase());
    let body = app
        .graphql_as(None, SIGN_UP, json!({ "input": again }))
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["field"], "email");
    // An unknown enum value is a request error, with a code and the request id.
    let mut bad_sex = valid.clone();
    bad_sex["sex"] = json!("OTHER");
    let body = app
        .graphql_as(None, SIGN_UP, json!({ "input": bad_sex }))
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert!(
        body["errors"][0]["extensions"]["requestId"].is_string(),
        "{body}"
    );
}

#[tokio::test]
async fn unknown_email_and_wrong_password_look_the_same() {
    let app = TestApp::spawn().await;
    let email = unique_email();
    sign_up(&app, &email).await;
    let wrong = login(&app, &email, "not-the-password").await;
    let unknown = login(&app, &unique_email(), "not-the-password").await;
    assert_eq!(error_code(&wrong), "UNAUTHENTICATED");
    assert_eq!(
        wrong["errors"][0]["message"],
        unknown["errors"][0]["message"]
    );
    assert_eq!(error_code(&unknown), "UNAUTHENTICATED");
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn forged_and_foreign_id_tokens_are_refused() {
    let app = TestApp::spawn().await;
    let session = sign_up(&app, &unique_email()).await;
    assert!(current_user(&app, &session.id_token).await["errors"].is_null());
    let claims = claims_of(&session.id_token);
    let kid = serde_json::from_slice::<Value>(
        &URL_SAFE_NO_PAD
            .decode(session.id_token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap()["kid"]
        .clone();

    // Tampered payload, original signature.
    let mut parts: Vec<&str> = session.id_token.split('.').collect();
    let mut tampered_claims = claims.clone();
    tampered_claims["sub"] = json!("1");
    let tampered_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&tampered_claims).unwrap());
    parts[1] = &tampered_payload;
    let tampered = parts.join(".");

    // alg: none.
    let none = common::forge_jwt(
        &json!({ "alg": "none", "typ": "JWT", "kid": kid }),
        &claims,
        b"",
    );

    // HS256 "signed" with the public key (the classic algorithm-confusion attack).
    let jwks: Value = app
        .http
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let public = URL_SAFE_NO_PAD
        .decode(jwks["keys"][0]["x"].as_str().unwrap())
        .unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = kid.as_str().map(str::to_owned);
    let hs256 = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(&public),
    )
    .unwrap();

    // Right key, wrong audience; right key, expired.
    let pem = common::test_signing_key();
    let other_audience = TokenKeys::new(
        pem,
        &[],
        "fishapp",
        "someone-else",
        Duration::from_secs(3600),
    )
    .unwrap();
    let family = claims["fid"].as_str().unwrap().parse().unwrap();
    let user_id: i64 = session.user_id.parse().unwrap();
    let wrong_audience = other_audience
        .issue(user_id, family, chrono::Utc::now())
        .unwrap()
        .token;
    let now = chrono::Utc::now();
    let expired = common::id_token_signed(
        pem,
        "fishapp",
        "fishapp",
        user_id,
        family,
        now - chrono::Duration::hours(2),
    );
    // And a control: a fresh token from the same key works.
    let fresh = common::id_token_signed(pem, "fishapp", "fishapp", user_id, family, now);
    assert!(current_user(&app, &fresh).await["errors"].is_null());

    for (what, token) in [
        ("tampered", tampered),
        ("alg none", none),
        ("HS256 with the public key", hs256),
        ("wrong audience", wrong_audience),
        ("expired", expired),
        ("garbage", "not.a.jwt".to_owned()),
        ("a refresh token", session.refresh_token.clone()),
    ] {
        let body = current_user(&app, &token).await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{what}: {body}");
    }
    let body = app.graphql(CURRENT_USER).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "no token: {body}");
}

#[tokio::test]
async fn a_reused_refresh_token_revokes_its_whole_family() {
    let app = TestApp::spawn().await;
    let session = sign_up(&app, &unique_email()).await;
    let body = refresh(&app, &session.refresh_token).await;
    let pair = &body["data"]["refreshIDToken"]["tokenPair"];
    let (new_id, new_refresh) = (
        pair["idToken"].as_str().unwrap(),
        pair["refreshToken"].as_str().unwrap(),
    );
    assert!(current_user(&app, new_id).await["errors"].is_null());

    // A thief replays the first refresh token.
    assert_eq!(
        error_code(&refresh(&app, &session.refresh_token).await),
        "UNAUTHENTICATED"
    );
    // The whole sign-in is over: the legitimate new tokens die too.
    assert_eq!(
        error_code(&refresh(&app, new_refresh).await),
        "UNAUTHENTICATED"
    );
    assert_eq!(
        error_code(&current_user(&app, new_id).await),
        "UNAUTHENTICATED"
    );
}

#[tokio::test]
async fn concurrent_refreshes_with_one_token_have_exactly_one_winner() {
    let app = TestApp::spawn().await;
    let session = sign_up(&app, &unique_email()).await;
    let attempts = (0..12).map(|_| refresh(&app, &session.refresh_token));
    let results = futures::future::join_all(attempts).await;
    let winners = results
        .iter()
        .filter(|body| body["errors"].is_null())
        .count();
    assert_eq!(winners, 1, "{results:#?}");
    for loser in results.iter().filter(|body| !body["errors"].is_null()) {
        assert_eq!(error_code(loser), "UNAUTHENTICATED");
    }
}

/// A login sent through the test's trusted proxy (127.0.0.1) for the client `from`.
async fn login_from(app: &TestApp, from: &str, email: &str, password: &str) -> Value {
    let request = app
        .http
        .post(app.url("/graphql"))
        .header("x-forwarded-for", from)
        .json(&json!({ "query": LOGIN, "variables": { "email": email, "password": password } }));
    common::send(request, None).await
}

fn retry_after(body: &Value) -> u64 {
    body["errors"][0]["extensions"]["retryAfterSeconds"]
        .as_u64()
        .unwrap_or_else(|| panic!("no retryAfterSeconds: {body}"))
}

#[tokio::test]
async fn wrong_passwords_slow_down_the_guessing_client_and_never_the_owner() {
    let app = TestApp::spawn_with(|c| {
        c.accounts.login_failures_before_delay = 3;
        c.http.trusted_proxies = vec!["127.0.0.1".to_owned()];
    })
    .await;
    let email = unique_email();
    sign_up(&app, &email).await;
    let (attacker, owner) = ("203.0.113.7", "198.51.100.20");

    // Two failures, then a success: the count starts again.
    for _ in 0..2 {
        let body = login_from(&app, attacker, &email, "wrong-password").await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    }
    assert!(login_from(&app, attacker, &email, PASSWORD).await["errors"].is_null());

    for _ in 0..3 {
        let body = login_from(&app, attacker, &email, "wrong-password").await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    }
    // The guessing client waits, even with the right password...
    let limited = login_from(&app, attacker, &email, PASSWORD).await;
    assert_eq!(error_code(&limited), "RATE_LIMITED", "{limited}");
    assert_eq!(retry_after(&limited), 1, "{limited}");
    // ...but the owner, from their own address, signs in at once.
    let owner_body = login_from(&app, owner, &email, PASSWORD).await;
    assert!(owner_body["errors"].is_null(), "{owner_body}");

    // Each further wrong try doubles the wait.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let body = login_from(&app, attacker, &email, "wrong-password").await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    let limited = login_from(&app, attacker, &email, "wrong-password").await;
    assert_eq!(error_code(&limited), "RATE_LIMITED", "{limited}");
    assert_eq!(retry_after(&limited), 2, "{limited}");
}

#[tokio::test]
async fn parallel_guesses_cannot_slip_past_the_limit_together() {
    let app = TestApp::spawn_with(|c| c.accounts.login_failures_before_delay = 3).await;
    let email = unique_email();
    sign_up(&app, &email).await;
    let guesses = (0..20).map(|i| {
        let (app, email) = (&app, &email);
        async move { login(app, email, &format!("guess-{i}")).await }
    });
    let answers = futures::future::join_all(guesses).await;
    let checked = answers
        .iter()
        .filter(|body| error_code(body) == "UNAUTHENTICATED")
        .count();
    let limited = answers
        .iter()
        .filter(|body| error_code(body) == "RATE_LIMITED")
        .count();
    assert_eq!((checked, limited), (3, 17), "{answers:#?}");
}

#[tokio::test]
async fn failed_logins_are_rate_limited_per_client_address() {
    let app = TestApp::spawn_with(|c| c.accounts.login_max_failures_per_ip = 4).await;
    for _ in 0..4 {
        assert_eq!(
            error_code(&login(&app, &unique_email(), "whatever-it-is").await),
            "UNAUTHENTICATED"
        );
    }
    assert_eq!(
        error_code(&login(&app, &unique_email(), "whatever-it-is").await),
        "RATE_LIMITED"
    );
}

#[tokio::test]
async fn x_forwarded_for_counts_only_from_a_trusted_proxy() {
    // Not trusted (the default): a client cannot escape its limit by naming other addresses.
    let app = TestApp::spawn_with(|c| c.accounts.login_max_failures_per_ip = 3).await;
    for i in 0..3 {
        let body = login_from(&app, &format!("203.0.113.{i}"), &unique_email(), "x").await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    }
    let body = login_from(&app, "203.0.113.99", &unique_email(), "x").await;
    assert_eq!(error_code(&body), "RATE_LIMITED", "{body}");

    // Behind a trusted proxy each client has its own count; IPv6 clients count by /64.
    let app = TestApp::spawn_with(|c| {
        c.accounts.login_max_failures_per_ip = 3;
        c.http.trusted_proxies = vec!["127.0.0.0/8".to_owned()];
    })
    .await;
    for i in 0..3 {
        let body = login_from(&app, &format!("203.0.113.{i}"), &unique_email(), "x").await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
        let body = login_from(&app, &format!("2001:db8:7::{i}"), &unique_email(), "x").await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    }
    let body = login_from(&app, "203.0.113.99", &unique_email(), "x").await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "a new client: {body}");
    let body = login_from(&app, "2001:db8:7::ffff", &unique_email(), "x").await;
    assert_eq!(error_code(&body), "RATE_LIMITED", "the same /64: {body}");
}

#[tokio::test]
async fn email_is_visible_to_its_owner_only() {
    let app = TestApp::spawn().await;
    let owner = sign_up(&app, &unique_email()).await;
    let other = sign_up(&app, &unique_email()).await;
    let query = "query($id: ID!) { user(id: $id) { id name email } }";
    let vars = json!({ "id": owner.user_id });

    let anonymous = app.graphql_as(None, query, vars.clone()).await;
    assert_eq!(anonymous["data"]["user"]["name"], "釣り人", "{anonymous}");
    assert!(anonymous["data"]["user"]["email"].is_null(), "{anonymous}");
    let someone_else = app
        .graphql_as(Some(&other.id_token), query, vars.clone())
        .await;
    assert!(
        someone_else["data"]["user"]["email"].is_null(),
        "{someone_else}"
    );
    let themselves = app.graphql_as(Some(&owner.id_token), query, vars).await;
    assert!(
        themselves["data"]["user"]["email"].is_string(),
        "{themselves}"
    );

    let missing = app
        .graphql_as(None, query, json!({ "id": "999999999" }))
        .await;
    assert_eq!(error_code(&missing), "NOT_FOUND");
    let malformed = app.graphql_as(None, query, json!({ "id": "abc" })).await;
    assert_eq!(error_code(&malformed), "BAD_USER_INPUT");
}

#[tokio::test]
async fn jwks_publishes_the_key_tokens_name() {
    let app = TestApp::spawn().await;
    let session = sign_up(&app, &unique_email()).await;
    let jwks: Value = app
        .http
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(session.id_token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "EdDSA");
    let key = &jwks["keys"][0];
    assert_eq!(key["kid"], header["kid"], "{jwks}");
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["crv"], "Ed25519");
}

fn sign_up_input(email: &str) -> Value {
    json!({ "input": { "email": email, "password": PASSWORD, "name": "limited", "sex": "FEMALE", "introduction": "hi" } })
}

#[tokio::test]
async fn sign_ups_are_limited_per_client_address() {
    let app = TestApp::spawn_with(|c| c.accounts.sign_up_max_per_ip_per_hour = 2).await;
    for _ in 0..2 {
        let body = app
            .graphql_as(None, SIGN_UP, sign_up_input(&unique_email()))
            .await;
        assert!(body["errors"].is_null(), "{body}");
    }
    let body = app
        .graphql_as(None, SIGN_UP, sign_up_input(&unique_email()))
        .await;
    assert_eq!(error_code(&body), "RATE_LIMITED", "{body}");
    assert!(body["errors"][0]["extensions"]["retryAfterSeconds"].as_u64() > Some(0));
}

#[tokio::test]
async fn password_changes_are_limited_per_user_right_or_wrong() {
    let app = TestApp::spawn_with(|c| c.accounts.password_change_max_per_hour = 2).await;
    let email = unique_email();
    let session = sign_up(&app, &email).await;
    const CHANGE: &str = "mutation($old: String!, $new: String!) { updatePassword(input: { oldPassword: $old, newPassword: $new }) { success } }";
    for guess in ["guess-one-wrong", "guess-two-wrong"] {
        let body = app
            .graphql_as(
                Some(&session.id_token),
                CHANGE,
                json!({ "old": guess, "new": "a-brand-new-secret" }),
            )
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    }
    // The third attempt is refused before the old password is even looked at: right or wrong.
    let body = app
        .graphql_as(
            Some(&session.id_token),
            CHANGE,
            json!({ "old": PASSWORD, "new": "a-brand-new-secret" }),
        )
        .await;
    assert_eq!(error_code(&body), "RATE_LIMITED", "{body}");
    assert_eq!(login(&app, &email, PASSWORD).await["errors"], Value::Null);
}

const UPDATE_EMAIL: &str = "mutation($email: String!) { updateUser(input: { email: $email }) { user { email pendingEmail } } }";
const CONFIRM_EMAIL: &str =
    "mutation($token: String!) { confirmEmailChange(input: { token: $token }) { user { id } } }";

/// The token of the confirmation link in a mail.
fn confirmation_token(mail: &str) -> Option<String> {
    let text = common::mail_text(mail);
    let at = text.find("token=")? + "token=".len();
    Some(
        text[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
            .collect(),
    )
}

/// An email change answers the same for a free and a registered address, claims nothing until
/// the new mailbox's owner confirms, tells the old address, and is limited per user.
#[tokio::test]
async fn an_email_change_neither_reveals_nor_claims_an_address() {
    let smtp = common::SmtpServer::start().await;
    let app = TestApp::spawn_with(|c| {
        c.mail.mail_transport = Some(fishapp::config::MailTransportKind::Smtp);
        c.mail.mail_smtp_url = Some(smtp.url());
        c.accounts.email_change_max_per_day = 3;
    })
    .await;
    let (alice_email, bob_email) = (unique_email(), unique_email());
    let alice = sign_up(&app, &alice_email).await;
    sign_up(&app, &bob_email).await;
    let free = unique_email();

    // Bob's address, then a free one: the same answer; nothing changes yet.
    let mut answers = Vec::new();
    for wanted in [&bob_email, &free] {
        let body = app
            .graphql_as(
                Some(&alice.id_token),
                UPDATE_EMAIL,
                json!({ "email": wanted }),
            )
            .await;
        assert!(body["errors"].is_null(), "{body}");
        let user = &body["data"]["updateUser"]["user"];
        assert_eq!(user["email"], alice_email.as_str());
        assert_eq!(user["pendingEmail"], wanted.as_str());
        answers.push(user.clone());
    }
    // The registered address's owner is told, without a link; Alice learns nothing.
    let to_bob = smtp.mails_to(&bob_email, 1, Duration::from_secs(10)).await;
    assert_eq!(to_bob.len(), 1);
    let text = common::mail_text(&to_bob[0]);
    assert!(text.contains("already has a Fishapp account"), "{text}");
    assert!(confirmation_token(&to_bob[0]).is_none(), "{text}");
    // Logging in with Bob's address still signs Bob in, not Alice.
    let bob_login = login(&app, &bob_email, PASSWORD).await;
    assert_ne!(
        bob_login["data"]["login"]["user"]["id"],
        alice.user_id.as_str()
    );

    // The free address's mailbox confirms.
    let to_free = smtp.mails_to(&free, 1, Duration::from_secs(10)).await;
    assert_eq!(to_free.len(), 1);
    let token = confirmation_token(&to_free[0]).expect("a confirmation link");
    let confirmed = app
        .graphql_as(None, CONFIRM_EMAIL, json!({ "token": token }))
        .await;
    assert_eq!(
        confirmed["data"]["confirmEmailChange"]["user"]["id"], alice.user_id,
        "{confirmed}"
    );
    assert!(login(&app, &free, PASSWORD).await["errors"].is_null());
    assert_eq!(
        error_code(&login(&app, &alice_email, PASSWORD).await),
        "UNAUTHENTICATED"
    );
    let notice = smtp
        .mails_to(&alice_email, 1, Duration::from_secs(10))
        .await;
    assert!(
        common::mail_text(&notice[0]).contains("now signs in with"),
        "{notice:?}"
    );
    // A token works once.
    let again = app
        .graphql_as(None, CONFIRM_EMAIL, json!({ "token": token }))
        .await;
    assert_eq!(error_code(&again), "BAD_USER_INPUT", "{again}");
    assert_eq!(again["errors"][0]["extensions"]["field"], "input.token");

    // Three requests a day: the fourth is refused.
    let third = app
        .graphql_as(
            Some(&alice.id_token),
            UPDATE_EMAIL,
            json!({ "email": unique_email() }),
        )
        .await;
    assert!(third["errors"].is_null(), "{third}");
    let fourth = app
        .graphql_as(
            Some(&alice.id_token),
            UPDATE_EMAIL,
            json!({ "email": unique_email() }),
        )
        .await;
    assert_eq!(error_code(&fourth), "RATE_LIMITED", "{fourth}");
}

#[tokio::test]
async fn without_a_mail_transport_an_email_change_is_refused_and_the_rest_applies() {
    let app = TestApp::spawn().await;
    let email = unique_email();
    let session = sign_up(&app, &email).await;
    let body = app
        .graphql_as(
            Some(&session.id_token),
            UPDATE_EMAIL,
            json!({ "email": unique_email() }),
        )
        .await;
    assert_eq!(error_code(&body), "UNAVAILABLE", "{body}");
    // Naming the current address (in any case) is no change at all.
    let same = app
        .graphql_as(
            Some(&session.id_token),
            UPDATE_EMAIL,
            json!({ "email": email.to_uppercase() }),
        )
        .await;
    assert_eq!(
        same["data"]["updateUser"]["user"]["email"],
        email.as_str(),
        "{same}"
    );
}

/// The sign-ins (refresh-token families) a user holds, in the database.
async fn sign_ins_of(app: &TestApp, user_id: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM account.token_families WHERE user_id = $1")
        .bind(user_id.parse::<i64>().unwrap())
        .fetch_one(&app.pool().await)
        .await
        .unwrap()
}

/// Whether a session can still act: its ID token answers `currentUser`.
async fn acts(app: &TestApp, session: &Session) -> bool {
    let body = current_user(app, &session.id_token).await;
    if body["errors"].is_null() {
        return true;
    }
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    false
}

async fn login_session(app: &TestApp, email: &str) -> Session {
    let body = login(app, email, PASSWORD).await;
    assert!(body["errors"].is_null(), "{body}");
    session_of(&body["data"]["login"])
}

#[tokio::test]
async fn a_user_holds_at_most_the_configured_sign_ins() {
    let app = TestApp::spawn_with(|c| {
        c.accounts.sign_in_max_per_user = 3;
        // The throttling counts a login in flight as a failure until it turns out right; the
        // ten at once below are one client's right password.
        c.accounts.login_failures_before_delay = 100;
    })
    .await;
    let email = unique_email();
    let first = sign_up(&app, &email).await;
    let mut socket = SocketClient::connect(app.addr, Some(&first.id_token)).await;
    let me = socket
        .request("1", "{ currentUser { id } }", json!({}))
        .await;
    assert_eq!(me["data"]["currentUser"]["id"], first.user_id.as_str());
    let mut sessions = Vec::new();
    for _ in 0..3 {
        sessions.push(login_session(&app, &email).await);
    }
    // The fourth sign-in ended the one refreshed longest ago: the sign-up's. Its ID token stops
    // at once — over HTTP and on the socket it signed in —, and its refresh token is gone.
    assert!(!acts(&app, &first).await);
    let after = socket
        .request("2", "{ currentUser { id } }", json!({}))
        .await;
    assert_eq!(error_code(&after), "UNAUTHENTICATED", "{after}");
    assert_eq!(
        error_code(&refresh(&app, &first.refresh_token).await),
        "UNAUTHENTICATED"
    );
    for session in &sessions {
        assert!(acts(&app, session).await);
    }
    assert_eq!(sign_ins_of(&app, &first.user_id).await, 3);

    // Refreshing keeps a sign-in: the oldest login refreshes, so the next login ends the second.
    let body = refresh(&app, &sessions[0].refresh_token).await;
    assert!(body["errors"].is_null(), "{body}");
    let refreshed = session_of(&json!({
        "user": { "id": first.user_id },
        "tokenPair": body["data"]["refreshIDToken"]["tokenPair"],
    }));
    let fifth = login_session(&app, &email).await;
    assert!(acts(&app, &refreshed).await);
    assert!(!acts(&app, &sessions[1]).await);
    assert!(acts(&app, &sessions[2]).await);

    // An ended sign-in goes before any live one: after a logout, the next login deletes the
    // logged-out sign-in (kept until then for at most a day) and ends no one.
    let body = app
        .graphql_as(
            Some(&sessions[2].id_token),
            "mutation($r: String) { logout(refreshToken: $r) { success } }",
            json!({ "r": sessions[2].refresh_token }),
        )
        .await;
    assert_eq!(body["data"]["logout"]["success"], true, "{body}");
    let kept_for: f64 = sqlx::query_scalar(
        "SELECT extract(epoch FROM expires_at - now())::float8 FROM account.token_families
          WHERE user_id = $1 AND revoked_at IS NOT NULL",
    )
    .bind(first.user_id.parse::<i64>().unwrap())
    .fetch_one(&app.pool().await)
    .await
    .unwrap();
    assert!(
        (23.0 * 3600.0..=24.0 * 3600.0).contains(&kept_for),
        "{kept_for}"
    );
    let sixth = login_session(&app, &email).await;
    for session in [&refreshed, &fifth, &sixth] {
        assert!(acts(&app, session).await);
    }
    assert_eq!(sign_ins_of(&app, &first.user_id).await, 3);

    // Logins at once take turns: the cap holds exactly.
    let logins = (0..10).map(|_| login(&app, &email, PASSWORD));
    for body in futures::future::join_all(logins).await {
        assert!(body["errors"].is_null(), "{body}");
    }
    assert_eq!(sign_ins_of(&app, &first.user_id).await, 3);
}

#[tokio::test]
async fn a_sign_in_keeps_only_its_recent_rotated_tokens() {
    let app = TestApp::spawn().await;
    let session = sign_up(&app, &unique_email()).await;
    let kept = usize::try_from(fishapp_store::account::ROTATED_TOKENS_KEPT).unwrap();
    let mut tokens = vec![session.refresh_token.clone()];
    for _ in 0..kept + 5 {
        let body = refresh(&app, tokens.last().unwrap()).await;
        let pair = &body["data"]["refreshIDToken"]["tokenPair"];
        tokens.push(pair["refreshToken"].as_str().unwrap().to_owned());
    }
    let rows: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM account.refresh_tokens t
           JOIN account.token_families f ON f.id = t.family_id
          WHERE f.user_id = $1",
    )
    .bind(session.user_id.parse::<i64>().unwrap())
    .fetch_one(&app.pool().await)
    .await
    .unwrap();
    assert_eq!(
        rows,
        i64::try_from(kept + 1).unwrap(),
        "the kept and the live one"
    );

    // A token older than those kept is refused like an unknown one; the sign-in goes on.
    let current = tokens.last().unwrap().clone();
    assert_eq!(
        error_code(&refresh(&app, &tokens[0]).await),
        "UNAUTHENTICATED"
    );
    let body = refresh(&app, &current).await;
    assert!(body["errors"].is_null(), "{body}");
    let newest = body["data"]["refreshIDToken"]["tokenPair"]["refreshToken"]
        .as_str()
        .unwrap()
        .to_owned();
    // A kept one replayed still ends the whole sign-in.
    assert_eq!(
        error_code(&refresh(&app, &current).await),
        "UNAUTHENTICATED"
    );
    assert_eq!(error_code(&refresh(&app, &newest).await), "UNAUTHENTICATED");
}

#[tokio::test]
async fn sign_ins_whose_tokens_expired_are_deleted() {
    let app = TestApp::spawn_with(|c| {
        c.accounts.refresh_token_ttl_secs = 3;
        c.accounts.sign_in_prune_interval_secs = 1;
    })
    .await;
    let session = sign_up(&app, &unique_email()).await;
    let body = refresh(&app, &session.refresh_token).await;
    assert!(body["errors"].is_null(), "{body}");
    assert_eq!(sign_ins_of(&app, &session.user_id).await, 1);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while sign_ins_of(&app, &session.user_id).await > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the expired sign-in was not pruned"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let tokens: i64 = sqlx::query_scalar("SELECT count(*) FROM account.refresh_tokens")
        .fetch_one(&app.pool().await)
        .await
        .unwrap();
    assert_eq!(tokens, 0, "its tokens went with it");
}

#[tokio::test]
async fn a_refresh_racing_the_login_that_ends_its_sign_in_is_never_an_error() {
    let app = TestApp::spawn_with(|c| c.accounts.sign_in_max_per_user = 1).await;
    let email = unique_email();
    let mut session = sign_up(&app, &email).await;
    for _ in 0..30 {
        // The sign-in refreshes again and again while a login (which ends it) runs: some
        // refresh meets the login's transaction. Each is an answer — a new pair, or refused once
        // the sign-in is gone —, never a failure of the server.
        let refreshing = async {
            let mut token = session.refresh_token.clone();
            loop {
                let body = refresh(&app, &token).await;
                if !body["errors"].is_null() {
                    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
                    return;
                }
                let pair = &body["data"]["refreshIDToken"]["tokenPair"];
                token = pair["refreshToken"].as_str().unwrap().to_owned();
            }
        };
        let (_, logged_in) = tokio::join!(refreshing, login(&app, &email, PASSWORD));
        assert!(logged_in["errors"].is_null(), "{logged_in}");
        session = session_of(&logged_in["data"]["login"]);
        assert!(acts(&app, &session).await);
    }
}
