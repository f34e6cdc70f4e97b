//! The query-cost guard, black-box: hostile documents are refused before validation on every
//! transport, the worst admissible request does not stall the server, and ordinary front-end
//! queries pass unchanged.
#![allow(clippy::unwrap_used)] // in a test, a panic is the failure report

mod common;

use common::{TestApp, error_code, sign_up, subscribe};
use serde_json::{Value, json};
use std::time::Duration;

/// The attack: each fragment spreads the next one twice (`levels` doublings); `wrap` turns the
/// two spreads of the next fragment into a fragment body.
fn doubling(levels: usize, on: &str, leaf: &str, wrap: impl Fn(&str) -> String) -> String {
    let mut fragments = String::new();
    for i in 0..levels {
        let next = format!("...F{}", i + 1);
        fragments.push_str(&format!("fragment F{i} on {on} {{ {} }}\n", wrap(&next)));
    }
    fragments.push_str(&format!("fragment F{levels} on {on} {{ {leaf} }}\n"));
    fragments
}

/// The document: `query { ...F0 }` with plain double spreads.
fn plain_doubling(levels: usize) -> String {
    let fragments = doubling(levels, "Query", "healthCheck", |n| format!("{n} {n}"));
    format!("query {{ ...F0 }}\n{fragments}")
}

fn refused_for_selections(body: &Value) {
    assert_eq!(error_code(body), "BAD_USER_INPUT", "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["limit"], "maxSelections",
        "{body}"
    );
    assert!(body["data"].is_null(), "{body}");
}

#[tokio::test]
async fn the_doubling_attack_is_refused_on_post_get_and_multipart() {
    let app = TestApp::spawn().await;
    for levels in [30, 40, 64] {
        let query = plain_doubling(levels);
        refused_for_selections(&app.graphql(&query).await);

        refused_for_selections(&app.graphql_get(&query).await);

        let multipart = app
            .graphql_multipart(None, &query, json!({}), Vec::new())
            .await;
        refused_for_selections(&multipart);
    }
    // The server is still itself.
    assert_eq!(
        app.graphql("{ healthCheck }").await["data"]["healthCheck"],
        true
    );
}

#[tokio::test]
async fn the_doubling_attack_is_refused_over_websocket() {
    let app = TestApp::spawn().await;
    let fragments = doubling(40, "Subscription", "__typename", |n| format!("{n} {n}"));
    let query = format!(
        "subscription {{ ...F0 createPostResult(input: {{ sagaId: \"x\" }}) {{ error }} }}\n{fragments}"
    );
    let messages = subscribe(&app, None, &query, json!({})).await;
    // async-graphql answers a refused subscription with one `next` carrying the errors, then
    // `complete`.
    let errors = &messages[0]["payload"]["errors"];
    assert_eq!(messages[0]["type"], "next", "{messages:?}");
    assert_eq!(
        errors[0]["extensions"]["code"], "BAD_USER_INPUT",
        "{messages:?}"
    );
    assert_eq!(errors[0]["extensions"]["limit"], "maxSelections");
    assert_eq!(messages[1]["type"], "complete", "{messages:?}");
}

#[tokio::test]
async fn spreads_hidden_in_inline_fragments_fields_and_aliases_are_counted() {
    let app = TestApp::spawn().await;
    let inline = format!(
        "query {{ ...F0 }}\n{}",
        doubling(40, "Query", "healthCheck", |n| format!(
            "... on Query {{ {n} }} ... on Query {{ {n} }}"
        ))
    );
    let in_fields = format!(
        "query {{ user(id: \"1\") {{ ...F0 }} }}\n{}",
        doubling(40, "User", "id", |n| format!("{n} {n}"))
    );
    let aliases = format!(
        "query {{ ...F0 }}\n{}",
        doubling(40, "Query", "healthCheck", |n| format!(
            "a: __typename {n} b: __typename {n}"
        ))
    );
    for query in [inline, in_fields, aliases] {
        refused_for_selections(&app.graphql(&query).await);
    }
}

#[tokio::test]
async fn oversized_documents_are_refused_naming_the_limit() {
    let app = TestApp::spawn_with(|c| {
        c.graphql.graphql_max_query_bytes = 2_000;
        c.graphql.graphql_max_tokens = 100;
        c.graphql.graphql_max_nesting = 10;
    })
    .await;
    let cases = [
        (
            format!("{{ healthCheck }} {}", "#".repeat(2_000)),
            "maxBytes",
        ),
        (format!("{{ {} }}", "healthCheck ".repeat(101)), "maxTokens"),
        (
            format!("{}healthCheck{}", "{ a ".repeat(11), " }".repeat(11)),
            "maxNesting",
        ),
    ];
    for (query, limit) in cases {
        let body = app.graphql(&query).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{limit}: {body}");
        assert_eq!(body["errors"][0]["extensions"]["limit"], limit, "{body}");
    }
}

/// The original front end's style: named operations, variables, fragments reused across types.
#[tokio::test]
async fn ordinary_front_end_queries_with_fragments_pass() {
    let app = TestApp::spawn().await;
    let (token, user_id) = sign_up(&app).await;
    let query = "
        query Board($input: PostsInput!, $first: Int) {
          currentUser { ...UserFields }
          posts(first: $first, input: $input) {
            pageInfo { hasNextPage endCursor }
            nodes { ...PostFields }
          }
        }
        fragment PostFields on Post {
          id title content fishingSpotTypeId fishTypeIds prefectureId meetingPlaceId meetingAt
          maxApply createdAt updatedAt
          images { ...ImageFields }
          user { ...UserFields }
        }
        fragment UserFields on User {
          id name introduction sex createdAt updatedAt
          image { ...ImageFields }
        }
        fragment ImageFields on Image { id name ownerId ownerType createdAt updatedAt }";
    let body = app
        .graphql_as(
            Some(&token),
            query,
            json!({ "input": { "orderBy": "DESC", "sortBy": "CREATED_AT" }, "first": 10 }),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    assert_eq!(body["data"]["currentUser"]["id"], user_id.as_str());
    assert!(body["data"]["posts"]["nodes"].is_array(), "{body}");
}

/// The largest document the default limits admit, many times at once on a two-worker runtime:
/// probes and cheap queries keep answering, and every heavy request gets its answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worst_admissible_request_does_not_stall_the_server() {
    let app = TestApp::spawn().await;
    let limits = fishapp_api::graphql::QueryLimits::default();
    // 3·2^l − 1 selections: the deepest doubling under the limit.
    let levels = (1..30)
        .take_while(|l| 3 * (1usize << l) - 1 <= limits.max_selections)
        .last()
        .unwrap();
    let worst = plain_doubling(levels);
    let heavy: Vec<_> = (0..16)
        .map(|_| {
            let (http, url, query) = (app.http.clone(), app.url("/graphql"), worst.clone());
            tokio::spawn(async move {
                let response = http
                    .post(url)
                    .json(&json!({ "query": query }))
                    .send()
                    .await
                    .unwrap();
                response.json::<Value>().await.unwrap()
            })
        })
        .collect();
    for _ in 0..5 {
        let healthz = app.http.get(app.url("/healthz")).send().await.unwrap();
        assert_eq!(healthz.status(), 200);
        let cheap = app.graphql("{ healthCheck }").await;
        assert_eq!(cheap["data"]["healthCheck"], true, "{cheap}");
    }
    for request in heavy {
        let body = request.await.unwrap();
        // Admitted by the guard; what validation then says (the complexity limit) is its own.
        assert_ne!(
            body["errors"][0]["extensions"]["limit"], "maxSelections",
            "{body}"
        );
    }
}

/// With the selection limit raised far past its default, a document that takes async-graphql
/// seconds to validate is admitted — and still leaves the runtime's two workers free: `/healthz`
/// and a cheap query answer while both heavy requests are still being validated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expensive_validation_runs_off_the_async_workers() {
    let app = TestApp::spawn_with(|c| c.graphql.graphql_max_selections = 1 << 24).await;
    let heavy_query = plain_doubling(20);
    let heavy: Vec<_> = (0..2)
        .map(|_| {
            let (http, url, query) = (app.http.clone(), app.url("/graphql"), heavy_query.clone());
            tokio::spawn(async move {
                http.post(url)
                    .json(&json!({ "query": query }))
                    .send()
                    .await
                    .unwrap()
                    .json::<Value>()
                    .await
                    .unwrap()
            })
        })
        .collect();
    // Let both reach validation.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let healthz = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(healthz.status(), 200);
    let cheap = app.graphql("{ healthCheck }").await;
    assert_eq!(cheap["data"]["healthCheck"], true, "{cheap}");
    assert!(
        heavy.iter().all(|h| !h.is_finished()),
        "the heavy requests finished first: this machine validated 3M selections too fast for the test to show anything"
    );
    for request in heavy {
        request.await.unwrap();
    }
}
