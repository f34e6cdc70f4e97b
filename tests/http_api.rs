//! The HTTP surface, black-box: GraphQL over POST and GET, GraphiQL, probes, metrics, request
//! ids, CORS and the body limit.

mod common;

use common::TestApp;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn health_check_answers_over_post_and_get() {
    let app = TestApp::spawn().await;

    let body = app.graphql("{ healthCheck }").await;
    assert_eq!(body, json!({ "data": { "healthCheck": true } }));

    let response = app
        .http
        .get(app.url("/graphql"))
        .query(&[("query", "{ healthCheck }")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["data"]["healthCheck"], true);
}

async fn get_html(app: &TestApp, path: &str) -> reqwest::Response {
    app.http
        .get(app.url(path))
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .expect("the API answers")
}

#[tokio::test]
async fn a_browser_gets_graphiql_from_the_binary_when_the_ide_is_on() {
    let app = TestApp::spawn_with(|config| config.graphql.graphql_ide = Some(true)).await;
    let response = get_html(&app, "/graphql").await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let policy = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(policy.contains("script-src 'self'"), "{policy}");
    let page = response.text().await.unwrap();
    assert!(
        page.contains("/graphiql/graphiql.min.js"),
        "not the GraphiQL page: {page:.200}"
    );
    for (asset, kind) in [
        ("/graphiql/graphiql.min.js", "text/javascript"),
        ("/graphiql/graphiql.min.css", "text/css"),
        ("/graphiql/react.production.min.js", "text/javascript"),
        ("/graphiql/react-dom.production.min.js", "text/javascript"),
        ("/graphiql/fishapp.js", "text/javascript"),
    ] {
        let response = app.http.get(app.url(asset)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{asset}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(kind),
            "{asset}"
        );
        assert!(!response.bytes().await.unwrap().is_empty(), "{asset}");
    }
    let missing = app
        .http
        .get(app.url("/graphiql/../Cargo.toml"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn the_ide_and_introspection_are_off_unless_configured() {
    let app = TestApp::spawn().await;
    // A browser's GET is then an ordinary GraphQL GET (without a query: an error, not a page).
    let response = get_html(&app, "/graphql").await;
    assert!(
        !response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(!response.text().await.unwrap().contains("graphiql"));
    let asset = app
        .http
        .get(app.url("/graphiql/graphiql.min.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(asset.status(), 404);
    let body = app.graphql("{ __schema { queryType { name } } }").await;
    assert!(
        body["data"]["__schema"].is_null(),
        "introspection answers nothing: {body}"
    );
    // __typename is not introspection: clients rely on it.
    assert_eq!(
        app.graphql("{ __typename }").await["data"]["__typename"],
        "Query"
    );

    let app = TestApp::spawn_with(|config| config.graphql.graphql_introspection = Some(true)).await;
    let body = app.graphql("{ __schema { queryType { name } } }").await;
    assert_eq!(
        body["data"]["__schema"]["queryType"]["name"], "Query",
        "{body}"
    );
}

#[tokio::test]
async fn an_invalid_query_is_a_graphql_error_not_a_crash() {
    let app = TestApp::spawn().await;
    let body = app.graphql("{ noSuchField }").await;
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("noSuchField"),
        "{body}"
    );
    let body = app.graphql("{ healthCheck ").await;
    assert!(body["errors"].is_array(), "{body}");
    // The process still serves.
    assert_eq!(
        app.graphql("{ healthCheck }").await["data"]["healthCheck"],
        true
    );
}

#[tokio::test]
async fn probes_report_a_live_process_and_ready_dependencies() {
    let app = TestApp::spawn().await;
    let healthz = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(healthz.status(), 200);

    let body = app.wait_for_readiness(200, Duration::from_secs(20)).await;
    assert_eq!(body["status"], "ready");
    for dependency in ["postgres", "redis", "nats", "temporal"] {
        assert_eq!(body["checks"][dependency]["status"], "up", "{body}");
    }
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_a_given_one_is_kept() {
    let app = TestApp::spawn().await;
    let response = app.http.get(app.url("/healthz")).send().await.unwrap();
    let generated = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(generated.len(), 36, "a UUID: {generated}");

    let response = app
        .http
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-me-42");
}

#[tokio::test]
async fn metrics_count_requests_by_route_on_their_own_address() {
    let app = TestApp::spawn().await;
    for _ in 0..3 {
        app.graphql("{ healthCheck }").await;
    }
    // Not on the public port: what the process counts is the operator's.
    let public = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(public.status(), 404);
    let text = app
        .http
        .get(format!("http://{}/metrics", app.metrics_addr))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = text
        .lines()
        .find(|l| {
            l.starts_with("fishapp_http_requests_total")
                && l.contains(r#"route="/graphql""#)
                && l.contains(r#"method="POST""#)
        })
        .unwrap_or_else(|| panic!("no request counter for POST /graphql in:\n{text}"));
    assert!(line.ends_with(" 3"), "{line}");
    assert!(
        text.contains("fishapp_http_request_duration_seconds_bucket"),
        "{text}"
    );
}

/// `fishapp worker`'s `/metrics` carries the Temporal SDK's own metrics (read from the SDK's
/// exporter in the process): after a saga, its workflow tasks and activities are counted by task
/// queue.
#[tokio::test]
async fn the_workers_metrics_carry_the_temporal_sdks() {
    let app = TestApp::spawn().await;
    let (mut worker, probes) = common::worker_process_probed(&app);
    // The API's own Temporal connection may still be coming up on a busy machine.
    app.wait_for_readiness(200, Duration::from_secs(30)).await;
    let token = common::sign_up(&app).await.0;
    let created = app
        .graphql_as(
            Some(&token),
            "mutation($input: CreatePostInput!) { createPost(input: $input) { post { id } } }",
            json!({ "input": common::post_input("Metrics") }),
        )
        .await;
    assert!(created["errors"].is_null(), "{created}");
    let text = sdk_metrics_once_a_workflow_ran(&app, probes).await;
    for family in [
        "temporal_worker_task_slots_available",
        "temporal_workflow_completed_total",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(family)),
            "no {family} in:\n{text}"
        );
    }
    worker.start_kill().unwrap();
}

/// The `/metrics` text at `addr` once it has the latency of a workflow task on the app's
/// workflows queue (the SDK records a task as it completes; a scrape may come a moment before).
async fn sdk_metrics_once_a_workflow_ran(app: &TestApp, addr: std::net::SocketAddr) -> String {
    let workflows_queue = format!(
        "{}.workflows",
        app.config.temporal.temporal_task_queue_prefix
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let text = match app.http.get(format!("http://{addr}/metrics")).send().await {
            Ok(response) => response.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if text.lines().any(|l| {
            l.starts_with("temporal_workflow_task_schedule_to_start_latency_seconds_bucket")
                && l.contains(&workflows_queue)
        }) {
            return text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no workflow task latency for {workflows_queue} in:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `fishapp dev`, the Quick start's one process, as a process: it answers GraphQL, is ready,
/// runs the sagas, and its one `/metrics` carries the API's, the relay's and the worker's SDK
/// metrics.
#[tokio::test]
async fn fishapp_dev_runs_everything_and_scrapes_as_one_process() {
    let app = TestApp::spawn().await;
    let dev = common::ServeProcess::start_as(&app, "dev", &[]).await;
    let (api, metrics) = (dev.addr, dev.metrics_addr);
    let ready = format!("http://{api}/readyz");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !matches!(app.http.get(&ready).send().await, Ok(r) if r.status() == 200) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "fishapp dev is not ready on {api}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Signed up on the test's API (the same database, Redis prefix and signing key), posting
    // through dev's: its worker runs the saga.
    let token = common::sign_up(&app).await.0;
    let request = app.http.post(format!("http://{api}/graphql")).json(&json!({
        "query": "mutation($input: CreatePostInput!) { createPost(input: $input) { post { id status } } }",
        "variables": { "input": common::post_input("Dev") },
    }));
    let created = common::send(request, Some(&token)).await;
    assert_eq!(
        created["data"]["createPost"]["post"]["status"], "OPEN",
        "{created}"
    );
    let text = sdk_metrics_once_a_workflow_ran(&app, metrics).await;
    for family in [
        "fishapp_http_requests_total",
        "fishapp_relay_published_total",
        "temporal_worker_task_slots_available",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(family)),
            "no {family} in:\n{text}"
        );
    }
}

#[tokio::test]
async fn cors_allows_configured_origins_only() {
    let app =
        TestApp::spawn_with(|c| c.http.cors_allowed_origins = vec!["https://app.example".into()])
            .await;
    let preflight = |origin: &'static str| {
        app.http
            .request(reqwest::Method::OPTIONS, app.url("/graphql"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type,authorization",
            )
            .send()
    };
    let allowed = preflight("https://app.example").await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let refused = preflight("https://evil.example").await.unwrap();
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused_with_413() {
    let app = TestApp::spawn_with(|c| c.http.http_body_limit_bytes = 4096).await;
    let query = format!("{{ healthCheck }} # {}", "x".repeat(8192));
    let response = app
        .http
        .post(app.url("/graphql"))
        .json(&json!({ "query": query }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(
        app.graphql("{ healthCheck }").await["data"]["healthCheck"],
        true
    );
}

#[tokio::test]
async fn shutdown_stops_accepting_and_returns_cleanly() {
    let app = TestApp::spawn().await;
    let url = app.url("/healthz");
    let client = app.http.clone();
    assert_eq!(client.get(&url).send().await.unwrap().status(), 200);
    app.stop()
        .await
        .expect("the server drains and stops without error");
    assert!(
        client.get(&url).send().await.is_err(),
        "still accepting after shutdown"
    );
}

#[tokio::test]
async fn mutations_are_refused_over_get() {
    let app = TestApp::spawn().await;
    let response = app
        .http
        .get(app.url("/graphql"))
        .query(&[("query", "mutation { logout { success } }")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "POST");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{body}"
    );
    assert!(body["errors"][0]["extensions"]["requestId"].is_string());
    // Queries still work over GET, and the same mutation over POST reaches its resolver.
    assert_eq!(
        app.graphql_get("{ healthCheck }").await["data"]["healthCheck"],
        true
    );
    let posted = app.graphql("mutation { logout { success } }").await;
    assert_eq!(
        posted["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{posted}"
    );
}

#[tokio::test]
async fn a_flood_of_multipart_parts_is_refused_at_the_first_unexpected_one() {
    let app = TestApp::spawn().await;
    // Built by hand: reqwest's form nests one stream per part, too deep for 5,000 parts.
    let mut body = String::from(
        "--b\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n\
         {\"query\":\"mutation($f: Upload) { healthCheck }\",\"variables\":{\"f\":null}}\r\n\
         --b\r\nContent-Disposition: form-data; name=\"map\"\r\n\r\n{\"0\": [\"variables.f\"]}\r\n",
    );
    for i in 0..5_000 {
        body.push_str(&format!(
            "--b\r\nContent-Disposition: form-data; name=\"extra{i}\"; filename=\"x.png\"\r\n\r\n\
             xxxxxxxxxxxxxxxx\r\n"
        ));
    }
    body.push_str("--b--\r\n");
    let response = app
        .http
        .post(app.url("/graphql"))
        .header("content-type", "multipart/form-data; boundary=b")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{body}"
    );
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("not named in `map`"),
        "{body}"
    );
    assert!(body["errors"][0]["extensions"]["requestId"].is_string());
    // The server is none the worse.
    assert_eq!(
        app.graphql("{ healthCheck }").await["data"]["healthCheck"],
        true
    );
}

#[tokio::test]
async fn a_body_that_is_not_a_graphql_request_gets_a_coded_error_in_our_words() {
    let app = TestApp::spawn().await;
    for (content_type, body, says) in [
        (
            "application/json",
            "{\"query\": ",
            "not a JSON GraphQL request",
        ),
        ("text/plain", "{ healthCheck }", "unsupported content type"),
        (
            "application/json",
            "[{\"query\": \"{ healthCheck }\"}]",
            "batched",
        ),
        (
            "multipart/form-data; boundary=zz",
            "--zz\r\nnonsense",
            "multipart",
        ),
    ] {
        let response = app
            .http
            .post(app.url("/graphql"))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{content_type}");
        let json: serde_json::Value = response.json().await.unwrap();
        assert_eq!(
            json["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
            "{json}"
        );
        let message = json["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(says), "{content_type}: {message}");
    }
}
