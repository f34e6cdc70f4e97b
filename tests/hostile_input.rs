//! The hostile-input suite: what an attacker sends, over HTTP and WebSocket. Every case must get
//! a coded error (`extensions.code` on each error) or, on a WebSocket, a coded error message or
//! a clean close — never a 5xx, a hang or a dropped connection; and the server must be ready
//! afterwards. Each group runs against its own app; `the_suite_has_at_least_200_cases` keeps the
//! count honest.
#![allow(clippy::unwrap_used)] // in a test, a panic is the failure report

mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{TestApp, sign_up_session};
use fishapp_domain::ErrorCode;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// Longest any one case may take: past it, it hung.
const CASE_BUDGET: Duration = Duration::from_secs(15);

/// One HTTP request of the suite.
struct Case {
    name: String,
    method: &'static str,
    /// Path and query string.
    target: String,
    headers: Vec<(&'static str, Vec<u8>)>,
    body: Vec<u8>,
}

impl Case {
    fn post(name: impl Into<String>, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            name: name.into(),
            method: "POST",
            target: "/graphql".to_owned(),
            headers: vec![("content-type", content_type.as_bytes().to_vec())],
            body: body.into(),
        }
    }

    fn json(name: impl Into<String>, body: &Value) -> Self {
        Self::post(name, "application/json", body.to_string())
    }

    fn query(name: impl Into<String>, query: &str, variables: Value) -> Self {
        Self::json(name, &json!({ "query": query, "variables": variables }))
    }

    fn get(name: impl Into<String>, query_string: &str) -> Self {
        Self {
            name: name.into(),
            method: "GET",
            target: format!("/graphql?{query_string}"),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    fn with_header(mut self, name: &'static str, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

/// Whether every error of a response carries one of our codes (and there is at least one).
fn coded_errors(body: &Value) -> Result<(), String> {
    let errors = body["errors"]
        .as_array()
        .filter(|e| !e.is_empty())
        .ok_or_else(|| format!("no errors: {body}"))?;
    let known: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    for error in errors {
        let code = error["extensions"]["code"].as_str().unwrap_or_default();
        if !known.contains(&code) {
            return Err(format!("an error without one of our codes: {error}"));
        }
    }
    Ok(())
}

/// Sends the case over a raw TCP connection (so that any bytes, header or body, go out as
/// they are) and checks the answer.
async fn run(app: &TestApp, case: &Case) -> Result<(), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(app.addr)
            .await
            .map_err(|e| e.to_string())?;
        let mut request = format!(
            "{} {} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\ncontent-length: {}\r\n",
            case.method,
            case.target,
            app.addr,
            case.body.len()
        )
        .into_bytes();
        for (name, value) in &case.headers {
            request.extend_from_slice(name.as_bytes());
            request.extend_from_slice(b": ");
            request.extend_from_slice(value);
            request.extend_from_slice(b"\r\n");
        }
        request.extend_from_slice(b"\r\n");
        request.extend_from_slice(&case.body);
        stream
            .write_all(&request)
            .await
            .map_err(|e| format!("the server stopped reading: {e}"))?;
        let mut response = Vec::new();
        stream
            .read_to_end(&mut response)
            .await
            .map_err(|e| format!("the connection dropped: {e}"))?;
        Ok::<_, String>(response)
    };
    let response = tokio::time::timeout(CASE_BUDGET, exchange)
        .await
        .map_err(|_| "no answer: it hung".to_owned())??;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no HTTP response: {text:.200}"))?;
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status line: {head:.200}"))?;
    if status >= 500 {
        return Err(format!("status {status}: {body:.300}"));
    }
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    let json: Value = serde_json::from_str(&body)
        .map_err(|_| format!("status {status}, not JSON: {body:.300}"))?;
    coded_errors(&json).map_err(|e| format!("status {status}: {e}"))
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || tail.len() < size {
            break;
        }
        out.push_str(&tail[..size]);
        rest = tail[size..].trim_start_matches("\r\n");
    }
    out
}

/// Runs every case (a few at a time), then checks the server is still ready. It must be ready
/// first: its Temporal client connects in the background, which can take a few seconds on a
/// loaded machine.
async fn run_all(app: &TestApp, cases: Vec<Case>) {
    app.wait_for_readiness(200, std::time::Duration::from_secs(30))
        .await;
    let results: Vec<(String, Result<(), String>)> = futures::stream::iter(cases)
        .map(|case| async move {
            let result = run(app, &case).await;
            (case.name, result)
        })
        .buffer_unordered(4)
        .collect()
        .await;
    let failures: Vec<String> = results
        .into_iter()
        .filter_map(|(name, result)| result.err().map(|e| format!("{name}: {e}")))
        .collect();
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    let (status, ready) = app.readyz().await;
    assert_eq!(status, 200, "not ready after the suite: {ready}");
}

// --- the cases -----------------------------------------------------------------------------

fn malformed_bodies() -> Vec<Case> {
    let mut cases: Vec<Case> = [
        "",
        "{",
        "}",
        "null",
        "true",
        "[]",
        "[1]",
        "123",
        "\"query\"",
        "{\"query\":1}",
        "{\"query\":null}",
        "{\"query\":\"\"}",
        "{\"query\":\"{\"}",
        "{\"query\":\"}\"}",
        "{\"query\":\"{ nope }\"}",
        "{\"query\":\"{ healthCheck }\",\"variables\":\"x\"}",
        "{\"query\":\"{ healthCheck }\",\"variables\":[1]}",
        "{\"query\":\"{ healthCheck }\",\"variables\":5}",
        "{\"query\":\"{ healthCheck }\",\"operationName\":5}",
        "{\"query\":\"query A { healthCheck } query B { healthCheck }\"}",
        "{\"query\":\"query A { healthCheck }\",\"operationName\":\"B\"}",
        "{\"query\":\"{ healthCheck }\"} trailing",
        "{\"query\":\"{ healthCheck }\"",
        "{\"querry\":\"{ healthCheck }\"}",
        "{\"query\":\"\\u0000{ healthCheck }\"}",
        "{\"query\":\"{ healthCheck(arg: 1) }\"}",
        "[{\"query\":1}]",
        "{\"query\":[\"{ healthCheck }\"]}",
    ]
    .iter()
    .enumerate()
    .map(|(i, body)| Case::post(format!("body {i}: {body:.40}"), "application/json", *body))
    .collect();
    cases.push(Case::post(
        "invalid UTF-8",
        "application/json",
        b"{\"query\":\"\xff\xfe{ healthCheck }\"}".to_vec(),
    ));
    cases.push(Case::post(
        "JSON nested 100,000 deep",
        "application/json",
        format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)),
    ));
    cases.push(Case::post(
        "object nested 10,000 deep in variables",
        "application/json",
        format!(
            "{{\"query\":\"{{ healthCheck }}\",\"variables\":{}1{}}}",
            "{\"a\":".repeat(10_000),
            "}".repeat(10_000)
        ),
    ));
    // `{ healthCheck }` with `variables` of this JSON text.
    let with_variables =
        |variables: String| format!(r#"{{"query":"{{ healthCheck }}","variables":{variables}}}"#);
    for (name, variables) in [
        (
            "variables: 2 MiB of zeros (over the JSON size limit)",
            format!(r#"{{"a":[{}0]}}"#, "0,".repeat(1 << 20)),
        ),
        (
            "variables: 400,000 values in 800 KB (over the value limit)",
            format!(r#"{{"a":[{}0]}}"#, "0,".repeat(400_000)),
        ),
        (
            "variables: 100,000 empty objects",
            format!(r#"{{"a":[{}{{}}]}}"#, "{},".repeat(100_000)),
        ),
        (
            "variables: 50,000 keys",
            format!(
                r#"{{{}"z":0}}"#,
                (0..50_000)
                    .map(|i| format!("\"k{i}\":0,"))
                    .collect::<String>()
            ),
        ),
    ] {
        cases.push(Case::post(
            name,
            "application/json",
            with_variables(variables),
        ));
    }
    cases.push(Case::post(
        "a 4 MB query string",
        "application/json",
        json!({ "query": format!("{{ healthCheck }} #{}", "x".repeat(4 << 20)) }).to_string(),
    ));
    cases
}

fn content_types() -> Vec<Case> {
    let body = json!({ "query": "{ nope }" }).to_string();
    [
        "text/plain",
        "text/html",
        "application/xml",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
        "multipart/form-data; boundary=x",
        "multipart/form-data; boundary=",
        "application/octet-stream",
        "garbage",
        "application/json; charset=utf-16",
        "image/png",
        "",
        "application/graphql",
        "application/json, text/plain",
    ]
    .iter()
    .map(|ct| Case::post(format!("content type {ct:?}"), ct, body.clone()))
    .collect()
}

fn query_strings() -> Vec<Case> {
    let long = format!("query={}", "%7B".repeat(3_000));
    let many_values = format!(
        "query=%7BhealthCheck%7D&variables=%7B%22a%22%3A%5B{}0%5D%7D",
        "0%2C".repeat(10_500)
    );
    [
        "",
        "query=",
        "query=%7B",
        "foo=bar",
        "query=%ZZ",
        "query=%7BhealthCheck%7D&variables=%7B",
        "query=%7BhealthCheck%7D&variables=%5B1%5D",
        "query=mutation%7Blogout%7Bsuccess%7D%7D",
        "query=subscription%7BmessageAdded(input:%7BroomId:1%7D)%7Bmessage%7Bid%7D%7D%7D",
        "query=query%20A%7BhealthCheck%7D&operationName=B",
        "query=%00",
        "query=%7Bnope%7D",
        "query=%7BhealthCheck%7D&query=%7Bnope%7D",
        "variables=%7B%7D",
        long.as_str(),
        many_values.as_str(),
    ]
    .iter()
    .map(|qs| Case::get(format!("GET ?{qs:.60}"), qs))
    .collect()
}

fn hostile_documents() -> Vec<Case> {
    let nested = |n: usize| format!("{}healthCheck{}", "{ a ".repeat(n), " }".repeat(n));
    let list = |n: usize| {
        format!(
            "{{ posts(input: {{}}, first: 1, after: {}\"x\"{}) {{ pageInfo {{ hasNextPage }} }} }}",
            "[".repeat(n),
            "]".repeat(n)
        )
    };
    let aliases = |n: usize| {
        let fields: String = (0..n).map(|i| format!("a{i}: healthCheck ")).collect();
        format!("{{ {fields} }}")
    };
    let directives = |n: usize| format!("{{ healthCheck {} }}", "@include(if: true) ".repeat(n));
    let operations = |n: usize| {
        (0..n)
            .map(|i| format!("query Q{i} {{ healthCheck }} "))
            .collect::<String>()
    };
    let introspection = |depth: usize| {
        format!(
            "{{ __schema {{ types {{ fields {{ type {} name {} }} }} }} }}",
            "{ ofType ".repeat(depth),
            "}".repeat(depth)
        )
    };
    let documents: Vec<(String, String)> = vec![
        ("nested 20".into(), nested(20)),
        ("nested 100".into(), nested(100)),
        ("nested 1,000".into(), nested(1_000)),
        ("nested 10,000".into(), nested(10_000)),
        ("list value nested 100".into(), list(100)),
        ("list value nested 5,000".into(), list(5_000)),
        ("2,500 aliases".into(), aliases(2_500)),
        ("10,000 aliases".into(), aliases(10_000)),
        ("11 directives".into(), directives(11)),
        ("1,000 directives".into(), directives(1_000)),
        ("unknown directive".into(), "{ healthCheck @evil }".into()),
        ("2,000 operations".into(), operations(2_000)),
        (
            "fragment cycle".into(),
            "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }".into(),
        ),
        (
            "fragment self-spread".into(),
            "{ ...A } fragment A on Query { healthCheck ...A }".into(),
        ),
        (
            "three-fragment cycle".into(),
            "{ ...A } fragment A on Query { ...B } fragment B on Query { ...C } fragment C on Query { ...A }".into(),
        ),
        ("unknown fragment".into(), "{ ...Nope }".into()),
        (
            "fragment on a wrong type".into(),
            "{ ...A } fragment A on Post { id }".into(),
        ),
        (
            "fragment on an unknown type".into(),
            "{ ...A } fragment A on Nope { id }".into(),
        ),
        (
            "duplicate fragments".into(),
            "{ ...A } fragment A on Query { healthCheck } fragment A on Query { healthCheck }"
                .into(),
        ),
        (
            "unused fragment".into(),
            "{ healthCheck } fragment A on Query { healthCheck }".into(),
        ),
        (
            "duplicate operation names".into(),
            "query A { healthCheck } query A { healthCheck }".into(),
        ),
        (
            "anonymous beside named".into(),
            "{ healthCheck } query A { healthCheck }".into(),
        ),
        (
            "a 1 MB string literal".into(),
            format!("{{ post(id: \"{}\") {{ id }} }}", "9".repeat(1 << 20)),
        ),
        (
            "an integer past 64 bits".into(),
            "{ posts(input: {}, first: 99999999999999999999999) { pageInfo { hasNextPage } } }".into(),
        ),
        (
            "a float for an Int".into(),
            "{ posts(input: {}, first: 1.5) { pageInfo { hasNextPage } } }".into(),
        ),
        (
            "a negative page".into(),
            "{ posts(input: {}, first: -1) { pageInfo { hasNextPage } } }".into(),
        ),
        ("page 0".into(), "{ posts(input: {}, first: 0) { pageInfo { hasNextPage } } }".into()),
        (
            "a million items".into(),
            "{ posts(input: {}, first: 1000000) { pageInfo { hasNextPage } } }".into(),
        ),
        (
            "a garbage cursor".into(),
            "{ posts(input: {}, first: 1, after: \"garbage\") { pageInfo { hasNextPage } } }".into(),
        ),
        (
            "a cursor of base64 garbage".into(),
            format!(
                "{{ posts(input: {{}}, first: 1, after: \"{}\") {{ pageInfo {{ hasNextPage }} }} }}",
                URL_SAFE_NO_PAD.encode("{\"not\": \"a cursor\"")
            ),
        ),
        ("an unknown field".into(), "{ nope }".into()),
        (
            "an undefined variable type".into(),
            "query($a: Nope) { healthCheck }".into(),
        ),
        (
            "an undeclared variable".into(),
            "{ post(id: $id) { id } }".into(),
        ),
        (
            "a missing argument".into(),
            "{ post { id } }".into(),
        ),
        (
            "introspection 30 deep".into(),
            introspection(30),
        ),
        (
            "a 100,000-character type name".into(),
            format!("{{ __type(name: \"{}\") {{ name }} }}", "x".repeat(100_000)),
        ),
        (
            "subscription over POST".into(),
            "subscription { messageAdded(input: { roomId: 1 }) { message { id } } }".into(),
        ),
        (
            "a selection on a scalar".into(),
            "{ healthCheck { id } }".into(),
        ),
        (
            "a missing selection".into(),
            "{ currentUser }".into(),
        ),
        ("only a comment".into(), "# nothing".into()),
    ];
    documents
        .into_iter()
        .map(|(name, query)| Case::query(name, &query, json!({})))
        .collect()
}

/// Wrong, out-of-range and wrong-type values for the public operations' arguments.
fn bad_variables() -> Vec<Case> {
    let long = "x".repeat(100_000);
    let mut cases = Vec::new();
    let login = "mutation($email: String!, $password: String!) {
        login(input: { email: $email, password: $password }) { user { id } } }";
    for (what, email, password) in [
        ("number email", json!(123), json!("p")),
        ("null email", Value::Null, json!("p")),
        ("list email", json!([]), json!("p")),
        ("object email", json!({}), json!("p")),
        ("huge email", json!(long), json!("p")),
        ("empty both", json!(""), json!("")),
        ("NUL in email", json!("a\u{0}@example.com"), json!("p")),
        ("huge password", json!("a@example.com"), json!(long)),
        ("bool password", json!("a@example.com"), json!(true)),
        ("missing password", json!("a@example.com"), Value::Null),
    ] {
        cases.push(Case::query(
            format!("login: {what}"),
            login,
            json!({ "email": email, "password": password }),
        ));
    }
    let post = "query($id: ID!) { post(id: $id) { id } }";
    let user = "query($id: ID!) { user(id: $id) { id } }";
    for (what, id) in [
        ("letters", json!("abc")),
        ("negative", json!("-1")),
        ("zero", json!("0")),
        ("past 64 bits", json!("999999999999999999999999")),
        ("a float", json!(1.5)),
        ("null", Value::Null),
        ("empty", json!("")),
        ("an object", json!({ "id": 1 })),
        ("a list", json!(["1"])),
        ("whitespace", json!(" 1 ")),
        ("unicode digits", json!("١٢٣")),
        ("huge", json!(long)),
    ] {
        cases.push(Case::query(
            format!("post id {what}"),
            post,
            json!({ "id": id }),
        ));
        cases.push(Case::query(
            format!("user id {what}"),
            user,
            json!({ "id": id }),
        ));
    }
    let posts = "query($first: Int!, $after: String) { posts(input: {}, first: $first, after: $after) { pageInfo { hasNextPage } } }";
    for (what, first, after) in [
        ("string first", json!("ten"), Value::Null),
        ("huge first", json!(1_u64 << 40), Value::Null),
        ("negative first", json!(-5), Value::Null),
        ("number cursor", json!(5), json!(12)),
        ("huge cursor", json!(5), json!(long)),
        ("unicode cursor", json!(5), json!("🎣🎣🎣")),
    ] {
        cases.push(Case::query(
            format!("posts: {what}"),
            posts,
            json!({ "first": first, "after": after }),
        ));
    }
    let review =
        "mutation($input: ReviewTripInput!) { reviewTrip(input: $input) { review { id } } }";
    for (what, post_id, rating, comment) in [
        ("huge rating", json!("1"), json!(1_u64 << 40), Value::Null),
        ("string rating", json!("1"), json!("five"), Value::Null),
        ("float rating", json!("1"), json!(4.5), Value::Null),
        ("huge comment", json!("1"), json!(5), json!(long)),
        ("object comment", json!("1"), json!(5), json!({ "a": 1 })),
        ("huge post id", json!(long), json!(5), Value::Null),
    ] {
        cases.push(Case::query(
            format!("reviewTrip: {what}"),
            review,
            json!({ "input": { "postId": post_id, "rating": rating, "comment": comment } }),
        ));
    }
    let remove =
        "mutation($input: RemoveApplyPostInput!) { removeApplyPost(input: $input) { success } }";
    for (what, id) in [
        ("huge id", json!(long)),
        ("negative id", json!("-1")),
        ("number id", json!(7)),
        ("object id", json!({ "id": 1 })),
        ("unicode id", json!("🎣")),
    ] {
        cases.push(Case::query(
            format!("removeApplyPost: {what}"),
            remove,
            json!({ "input": { "id": id } }),
        ));
    }
    let lift = "mutation($input: LiftRemovalInput!) { liftRemoval(input: $input) { success } }";
    for (what, post_id, user_id) in [
        ("huge user id", json!("1"), json!(long)),
        ("number post id", json!(1), json!("1")),
        ("missing user id", json!("1"), Value::Null),
    ] {
        cases.push(Case::query(
            format!("liftRemoval: {what}"),
            lift,
            json!({ "input": { "postId": post_id, "userId": user_id } }),
        ));
    }
    let reviews = "query($first: Int, $after: String) { post(id: \"1\") { reviews(first: $first, after: $after) { nodes { id } } } }";
    for (what, first, after) in [
        ("huge first", json!(1_u64 << 40), Value::Null),
        ("negative first", json!(-1), Value::Null),
        ("huge cursor", json!(5), json!(long)),
        ("negative cursor", json!(5), json!("-7")),
    ] {
        cases.push(Case::query(
            format!("Post.reviews: {what}"),
            reviews,
            json!({ "first": first, "after": after }),
        ));
    }
    let sign_up =
        "mutation($input: CreateUserInput!) { createUser(input: $input) { user { id } } }";
    let good = json!({ "email": "hostile@example.com", "password": "fish-on-at-dawn-42",
                        "name": "Angler", "sex": "FEMALE", "introduction": "" });
    for (what, field, value) in [
        ("bad email", "email", json!("not-an-email")),
        ("empty email", "email", json!("")),
        ("short password", "password", json!("short")),
        ("huge password", "password", json!(long)),
        ("empty name", "name", json!("")),
        ("huge name", "name", json!(long)),
        ("unknown sex", "sex", json!("ALIEN")),
        ("number sex", "sex", json!(1)),
        ("huge introduction", "introduction", json!(long)),
        (
            "control characters in name",
            "name",
            json!("a\u{7}\u{1b}[31m"),
        ),
        ("null name", "name", Value::Null),
        ("an unknown field", "admin", json!(true)),
    ] {
        let mut input = good.clone();
        input[field] = value;
        cases.push(Case::query(
            format!("createUser: {what}"),
            sign_up,
            json!({ "input": input }),
        ));
    }
    cases.push(Case::query(
        "createUser: input is a string",
        sign_up,
        json!({ "input": "everything" }),
    ));
    cases.push(Case::query(
        "saga: someone else's id format",
        "query($id: String!) { saga(id: $id) { status } }",
        json!({ "id": "../../etc/passwd" }),
    ));
    cases
}

/// Tokens that must not let anyone in: forged, expired, `alg: none`, foreign.
fn bad_tokens(user_id: i64) -> Vec<(&'static str, String)> {
    let now = chrono::Utc::now().timestamp();
    let claims = json!({ "sub": user_id.to_string(), "iss": "fishapp", "aud": "fishapp",
                         "exp": now + 3600, "iat": now, "jti": uuid::Uuid::new_v4(),
                         "fid": uuid::Uuid::new_v4() });
    let key = common::test_signing_key();
    let family = uuid::Uuid::new_v4();
    let now_utc = chrono::Utc::now();
    let sign = |key: &str, issuer: &str, at| {
        common::id_token_signed(key, issuer, "fishapp", user_id, family, at)
    };
    let expired = sign(key, "fishapp", now_utc - chrono::Duration::hours(2));
    let foreign_token = sign(
        &fishapp_app::account::tokens::generate_private_key_pem(),
        "fishapp",
        now_utc,
    );
    let other_issuer = sign(key, "someone-else", now_utc);
    let mut hs256 = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs256.kid = Some("fishapp".to_owned());
    let hs256 = jsonwebtoken::encode(
        &hs256,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(b"a guessed secret"),
    )
    .unwrap();
    vec![
        (
            "alg none",
            common::forge_jwt(&json!({ "alg": "none", "typ": "JWT" }), &claims, b""),
        ),
        (
            "alg None",
            common::forge_jwt(&json!({ "alg": "None" }), &claims, b""),
        ),
        ("HS256", hs256),
        ("expired", expired),
        ("signed by a foreign key", foreign_token),
        ("another issuer", other_issuer),
        ("garbage", "not.a.jwt".to_owned()),
        ("two parts", "a.b".to_owned()),
        ("empty parts", "..".to_owned()),
        (
            "no signature",
            common::forge_jwt(&json!({ "alg": "EdDSA" }), &claims, b""),
        ),
        ("a 16 KB token", "a".repeat(16 * 1024)),
        ("unicode", "トークン".to_owned()),
        (
            "a refresh-token shape",
            fishapp_app::account::tokens::new_opaque_token(),
        ),
    ]
}

fn token_cases(user_id: i64) -> Vec<Case> {
    let query = "{ currentUser { id } }";
    let mut cases = Vec::new();
    for (what, token) in bad_tokens(user_id) {
        for form in ["Bearer ", "bearer ", ""] {
            cases.push(
                Case::query(format!("token {what} as {form:?}…"), query, json!({}))
                    .with_header("authorization", format!("{form}{token}")),
            );
        }
    }
    for (what, value) in [
        ("scheme alone", b"Bearer".to_vec()),
        ("scheme and a space", b"Bearer ".to_vec()),
        ("basic", b"Basic dXNlcjpwYXNz".to_vec()),
        ("not UTF-8", b"Bearer \xff\xfe".to_vec()),
        ("two spaces", b"Bearer  x".to_vec()),
    ] {
        cases.push(
            Case::query(format!("authorization: {what}"), query, json!({}))
                .with_header("authorization", value),
        );
    }
    cases.push(
        Case::query("two authorization headers", query, json!({}))
            .with_header("authorization", "Bearer a")
            .with_header("authorization", "Bearer b"),
    );
    cases
}

/// A multipart part: its name, a file name when it is a file, its bytes.
type Part<'a> = (&'a str, Option<&'a str>, Vec<u8>);

/// A multipart body from its parts.
fn multipart(parts: &[Part<'_>]) -> Case {
    let boundary = "hostile-boundary";
    let mut body = Vec::new();
    for (name, filename, bytes) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match filename {
            Some(file) => body.extend_from_slice(
                format!("content-disposition: form-data; name=\"{name}\"; filename=\"{file}\"\r\ncontent-type: image/png\r\n\r\n").as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("content-disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    Case::post(
        "",
        &format!("multipart/form-data; boundary={boundary}"),
        body,
    )
}

/// A PNG header claiming `width` × `height` (the pixels never follow).
fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[16, 6, 0, 0, 0]);
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(&ihdr);
    png.extend_from_slice(&crc32(&ihdr).to_be_bytes());
    png
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for byte in bytes {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn multipart_cases() -> Vec<Case> {
    let sign_up = |image: bool| {
        json!({
            "query": "mutation($input: CreateUserInput!) { createUser(input: $input) { user { id } } }",
            "variables": { "input": { "email": format!("m-{}@example.com", uuid::Uuid::new_v4().simple()),
                "password": "fish-on-at-dawn-42", "name": "Angler", "sex": "MALE", "introduction": "",
                "image": if image { Value::Null } else { json!("not a file") } } }
        })
        .to_string()
        .into_bytes()
    };
    let map = |m: &str| m.as_bytes().to_vec();
    let avatar = |bytes: Vec<u8>| {
        vec![
            ("operations", None, sign_up(true)),
            ("map", None, map(r#"{"0":["variables.input.image"]}"#)),
            ("0", Some("a.png"), bytes),
        ]
    };
    let many_parts: Vec<(String, Option<&str>, Vec<u8>)> = (0..500)
        .map(|i| (i.to_string(), Some("x.png"), b"x".to_vec()))
        .collect();
    let mut flood = vec![
        ("operations".to_owned(), None, sign_up(true)),
        (
            "map".to_owned(),
            None,
            map(r#"{"0":["variables.input.image"]}"#),
        ),
    ];
    flood.extend(many_parts);
    let flood: Vec<Part<'_>> = flood
        .iter()
        .map(|(n, f, b)| (n.as_str(), *f, b.clone()))
        .collect();
    let cases: Vec<(&str, Vec<Part<'_>>)> = vec![
        ("no parts", vec![]),
        ("no operations", vec![("map", None, map("{}"))]),
        (
            "operations not JSON",
            vec![
                ("operations", None, b"{".to_vec()),
                ("map", None, map("{}")),
            ],
        ),
        (
            "map not JSON",
            vec![("operations", None, sign_up(true)), ("map", None, map("{"))],
        ),
        (
            "map a list",
            vec![
                ("operations", None, sign_up(true)),
                ("map", None, map("[]")),
            ],
        ),
        (
            "map to a missing path",
            vec![
                ("operations", None, sign_up(true)),
                ("map", None, map(r#"{"0":["variables.input.nope.deeper"]}"#)),
                ("0", Some("a.png"), b"x".to_vec()),
            ],
        ),
        (
            "map to a non-upload variable",
            vec![
                ("operations", None, sign_up(true)),
                ("map", None, map(r#"{"0":["variables.input.email"]}"#)),
                ("0", Some("a.png"), b"x".to_vec()),
            ],
        ),
        (
            "file before operations",
            vec![
                ("0", Some("a.png"), b"x".to_vec()),
                ("operations", None, sign_up(true)),
                ("map", None, map(r#"{"0":["variables.input.image"]}"#)),
            ],
        ),
        (
            "a file the map does not name",
            vec![
                ("operations", None, sign_up(true)),
                ("map", None, map("{}")),
                ("7", Some("a.png"), b"x".to_vec()),
            ],
        ),
        (
            "a mapped file that never comes",
            vec![
                ("operations", None, sign_up(true)),
                ("map", None, map(r#"{"0":["variables.input.image"]}"#)),
            ],
        ),
        (
            "one file mapped twice",
            vec![
                ("operations", None, sign_up(true)),
                (
                    "map",
                    None,
                    map(r#"{"0":["variables.input.image","variables.input.image"]}"#),
                ),
                ("0", Some("a.png"), b"x".to_vec()),
            ],
        ),
        ("500 parts", flood),
        (
            "one file at six paths (more paths than files allowed)",
            vec![
                ("operations", None, sign_up(true)),
                (
                    "map",
                    None,
                    map(&format!(
                        r#"{{"0":[{}]}}"#,
                        [r#""variables.input.image""#; 6].join(",")
                    )),
                ),
                ("0", Some("a.png"), b"x".to_vec()),
            ],
        ),
        (
            "one file at 9,000 paths",
            vec![
                ("operations", None, sign_up(true)),
                (
                    "map",
                    None,
                    map(&format!(
                        r#"{{"0":[{}]}}"#,
                        (0..9_000)
                            .map(|i| format!(r#""variables.v.{i}""#))
                            .collect::<Vec<_>>()
                            .join(",")
                    )),
                ),
                ("0", Some("a.png"), b"x".to_vec()),
            ],
        ),
        (
            "operations with 300,000 values",
            vec![
                (
                    "operations",
                    None,
                    format!(
                        r#"{{"query":"{{ healthCheck }}","variables":{{"a":[{}0]}}}}"#,
                        "0,".repeat(300_000)
                    )
                    .into_bytes(),
                ),
                ("map", None, map("{}")),
            ],
        ),
        (
            "an upload where a string goes",
            vec![
                ("operations", None, sign_up(false)),
                ("map", None, map("{}")),
            ],
        ),
        ("an empty image", avatar(Vec::new())),
        (
            "text named .png",
            avatar(b"hello, I am not an image".to_vec()),
        ),
        (
            "a truncated PNG",
            avatar(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec()),
        ),
        (
            "a PNG claiming 100,000 x 100,000",
            avatar(png_claiming(100_000, 100_000)),
        ),
        (
            "a PNG claiming 11,000 x 11,000 (over the decoded-bytes limit)",
            avatar(png_claiming(11_000, 11_000)),
        ),
        ("a PNG claiming 0 x 0", avatar(png_claiming(0, 0))),
        (
            "a GIF header only",
            avatar(b"GIF89a\xff\xff\xff\xff".to_vec()),
        ),
        (
            "a JPEG header only",
            avatar(b"\xff\xd8\xff\xe0\0\x10JFIF\0".to_vec()),
        ),
        (
            "an SVG",
            avatar(
                b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>".to_vec(),
            ),
        ),
    ];
    cases
        .into_iter()
        .map(|(name, parts)| {
            let mut case = multipart(&parts);
            case.name = format!("multipart: {name}");
            case
        })
        .collect()
}

// --- WebSocket -------------------------------------------------------------------------------

type Socket = common::WebSocketClient;

async fn connect(app: &TestApp, protocol: Option<&str>) -> Result<Socket, String> {
    common::ws_connect(app.addr, protocol).await
}

/// What the server did after the messages: answered with a coded error message, or closed the
/// socket with a close frame. Anything else (a hang, a reset without a close) fails.
async fn ws_outcome(socket: &mut Socket, within: Duration) -> Result<String, String> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, socket.next()).await {
            Err(_) => return Err("no answer: it hung".to_owned()),
            Ok(None) => return Err("the connection dropped without a close frame".to_owned()),
            Ok(Some(Err(e))) => return Err(format!("the connection dropped: {e}")),
            Ok(Some(Ok(Message::Close(frame)))) => {
                return Ok(format!("closed {:?}", frame.map(|f| u16::from(f.code))));
            }
            Ok(Some(Ok(Message::Text(text)))) => {
                let value: Value =
                    serde_json::from_str(&text).map_err(|_| format!("not JSON: {text:.200}"))?;
                match value["type"].as_str() {
                    Some("connection_ack" | "ping" | "pong" | "ka") => continue,
                    Some("error") => {
                        let errors = json!({ "errors": value["payload"] });
                        return coded_errors(&errors).map(|()| "error".to_owned());
                    }
                    Some("next" | "data") if !value["payload"]["errors"].is_null() => {
                        return coded_errors(&value["payload"]).map(|()| "errors".to_owned());
                    }
                    Some("connection_error") => return Ok("connection_error".to_owned()),
                    _ => return Err(format!("unexpected: {value}")),
                }
            }
            Ok(Some(Ok(_))) => continue,
        }
    }
}

struct WsCase {
    name: &'static str,
    protocol: Option<&'static str>,
    messages: Vec<Message>,
}

fn text(value: Value) -> Message {
    Message::Text(value.to_string().into())
}

fn ws_cases(token: &str) -> Vec<WsCase> {
    let init = text(
        json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } }),
    );
    let subscribe = |id: Value, query: &str| {
        text(json!({ "id": id, "type": "subscribe", "payload": { "query": query } }))
    };
    let transport = Some("graphql-transport-ws");
    vec![
        WsCase {
            name: "binary message",
            protocol: transport,
            messages: vec![Message::Binary(b"\x00\x01".to_vec().into())],
        },
        WsCase {
            name: "not JSON",
            protocol: transport,
            messages: vec![Message::Text("{".into())],
        },
        WsCase {
            name: "unknown type",
            protocol: transport,
            messages: vec![text(json!({ "type": "hack" }))],
        },
        WsCase {
            name: "subscribe before init",
            protocol: transport,
            messages: vec![subscribe(json!("1"), "subscription { x }")],
        },
        WsCase {
            name: "double init",
            protocol: transport,
            messages: vec![init.clone(), init.clone()],
        },
        WsCase {
            name: "init payload a string",
            protocol: transport,
            messages: vec![text(json!({ "type": "connection_init", "payload": "x" }))],
        },
        WsCase {
            name: "init with a forged token, then subscribe",
            protocol: transport,
            messages: vec![
                text(
                    json!({ "type": "connection_init", "payload": { "Authorization": "Bearer not.a.jwt" } }),
                ),
                subscribe(
                    json!("1"),
                    "subscription { messageAdded(input: { roomId: \"1\" }) { message { id } } }",
                ),
            ],
        },
        WsCase {
            name: "subscribe without an id",
            protocol: transport,
            messages: vec![
                init.clone(),
                text(json!({ "type": "subscribe", "payload": { "query": "{ healthCheck }" } })),
            ],
        },
        WsCase {
            name: "subscribe with a numeric id",
            protocol: transport,
            messages: vec![init.clone(), subscribe(json!(7), "subscription { nope }")],
        },
        WsCase {
            name: "subscribe to an unknown field",
            protocol: transport,
            messages: vec![init.clone(), subscribe(json!("1"), "subscription { nope }")],
        },
        WsCase {
            name: "subscription to a room that does not exist",
            protocol: transport,
            messages: vec![
                init.clone(),
                subscribe(
                    json!("1"),
                    "subscription { messageAdded(input: { roomId: \"999999\" }) { message { id } } }",
                ),
            ],
        },
        WsCase {
            name: "subscription with a bad id",
            protocol: transport,
            messages: vec![
                init.clone(),
                subscribe(
                    json!("1"),
                    "subscription { messageAdded(input: { roomId: \"abc\" }) { message { id } } }",
                ),
            ],
        },
        WsCase {
            name: "the doubling attack",
            protocol: transport,
            messages: vec![
                init.clone(),
                subscribe(json!("1"), &{
                    let mut doc = "subscription { ...F0 } ".to_owned();
                    for i in 0..40 {
                        doc.push_str(&format!(
                            "fragment F{i} on Subscription {{ ...F{} ...F{} }} ",
                            i + 1,
                            i + 1
                        ));
                    }
                    doc.push_str("fragment F40 on Subscription { createPostResult(input: { sagaId: \"x\" }) { error } }");
                    doc
                }),
            ],
        },
        WsCase {
            name: "a message over the size limit",
            protocol: transport,
            messages: vec![init.clone(), Message::Text("x".repeat(2 << 20).into())],
        },
        WsCase {
            name: "a message of 20,000 values",
            protocol: transport,
            messages: vec![
                init.clone(),
                Message::Text(
                    format!(
                        r#"{{"id":"1","type":"subscribe","payload":{{"query":"{{ healthCheck }}","variables":{{"a":[{}0]}}}}}}"#,
                        "0,".repeat(20_000)
                    )
                    .into(),
                ),
            ],
        },
        WsCase {
            name: "40 operations at once",
            protocol: transport,
            messages: std::iter::once(init.clone())
                .chain((0..40).map(|i| {
                    subscribe(
                        json!(i.to_string()),
                        "subscription { messageAdded(input: { roomId: \"1\" }) { message { id } } }",
                    )
                }))
                .collect(),
        },
        WsCase {
            name: "a mutation on a socket whose token is forged",
            protocol: transport,
            messages: vec![
                text(
                    json!({ "type": "connection_init", "payload": { "Authorization": "Bearer x.y.z" } }),
                ),
                subscribe(
                    json!("1"),
                    "mutation { updateUser(input: { introduction: \"x\" }) { user { id } } }",
                ),
            ],
        },
        WsCase {
            name: "nothing at all (init timeout)",
            protocol: transport,
            messages: vec![],
        },
        WsCase {
            name: "pings only (init timeout)",
            protocol: transport,
            messages: vec![text(json!({ "type": "ping" }))],
        },
        WsCase {
            name: "a flood before init",
            protocol: transport,
            messages: (0..20).map(|_| text(json!({ "type": "ping" }))).collect(),
        },
        WsCase {
            name: "legacy protocol: start before init",
            protocol: Some("graphql-ws"),
            messages: vec![text(
                json!({ "id": "1", "type": "start", "payload": { "query": "subscription { nope }" } }),
            )],
        },
        WsCase {
            name: "legacy protocol: unknown field",
            protocol: Some("graphql-ws"),
            messages: vec![
                init.clone(),
                text(
                    json!({ "id": "1", "type": "start", "payload": { "query": "subscription { nope }" } }),
                ),
            ],
        },
    ]
}

// --- the tests -------------------------------------------------------------------------------

#[tokio::test]
async fn malformed_bodies_and_content_types_get_coded_errors() {
    let app = TestApp::spawn().await;
    let mut cases = malformed_bodies();
    cases.extend(content_types());
    run_all(&app, cases).await;
}

#[tokio::test]
async fn malformed_query_strings_get_coded_errors() {
    let app = TestApp::spawn().await;
    run_all(&app, query_strings()).await;
}

#[tokio::test]
async fn hostile_documents_get_coded_errors() {
    let app = TestApp::spawn().await;
    run_all(&app, hostile_documents()).await;
}

#[tokio::test]
async fn bad_variables_get_coded_errors() {
    let app = TestApp::spawn().await;
    run_all(&app, bad_variables()).await;
}

#[tokio::test]
async fn forged_tokens_in_every_header_form_get_coded_errors() {
    let app = TestApp::spawn().await;
    let session = sign_up_session(&app).await;
    run_all(&app, token_cases(session.user_id.parse().unwrap())).await;
}

#[tokio::test]
async fn multipart_abuse_gets_coded_errors() {
    let app = TestApp::spawn().await;
    run_all(&app, multipart_cases()).await;
}

#[tokio::test]
async fn websocket_abuse_gets_a_coded_error_or_a_clean_close() {
    // Messages are held to the JSON limits (1 MiB by default), whatever the HTTP body limit.
    let app = TestApp::spawn_with(|c| c.graphql.graphql_ws_init_timeout_secs = 1).await;
    let session = sign_up_session(&app).await;
    let mut failures = Vec::new();
    for case in ws_cases(&session.id_token) {
        let mut socket = match connect(&app, case.protocol).await {
            Ok(socket) => socket,
            Err(e) => {
                failures.push(format!("{}: {e}", case.name));
                continue;
            }
        };
        for message in case.messages {
            // The server may close before everything is sent: that is a clean refusal too.
            if socket.send(message).await.is_err() {
                break;
            }
        }
        if let Err(e) = ws_outcome(&mut socket, CASE_BUDGET).await {
            failures.push(format!("{}: {e}", case.name));
        }
    }
    // An upgrade without a GraphQL subprotocol is refused over HTTP, not dropped.
    for protocol in [None, Some("chat"), Some("graphql-transport-ws, x")] {
        if let Ok(mut socket) = connect(&app, protocol).await
            && let Err(e) = ws_outcome(&mut socket, CASE_BUDGET).await
        {
            failures.push(format!("protocol {protocol:?}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let (status, ready) = app.readyz().await;
    assert_eq!(status, 200, "{ready}");
}

#[test]
fn the_suite_has_at_least_200_cases() {
    let http = malformed_bodies().len()
        + content_types().len()
        + query_strings().len()
        + hostile_documents().len()
        + bad_variables().len()
        + token_cases(1).len()
        + multipart_cases().len();
    let websocket = ws_cases("token").len() + 3;
    assert!(
        http + websocket >= 200,
        "{http} HTTP and {websocket} WebSocket cases"
    );
}
