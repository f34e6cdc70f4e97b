//! /readyz reports each dependency down (503) while it is unreachable, and ready again by itself
//! once it answers: every dependency is pointed at a dead port, then a proxy to the real
//! service is started on that port.

mod common;

use common::{TestApp, free_port, socket_addr_of, start_proxy, with_port};
use fishapp::config::Config;
use std::time::Duration;

/// Generous: NATS and Temporal reconnect with back-off.
const RECOVERY: Duration = Duration::from_secs(45);

async fn goes_down_and_recovers(dependency: &str, url_of: fn(&mut Config) -> &mut String) {
    let port = free_port().await;
    let mut real = String::new();
    let app = TestApp::spawn_with(|c| {
        let url = url_of(c);
        real = url.clone();
        *url = with_port(url, port);
    })
    .await;

    let (status, body) = app.readyz().await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["checks"][dependency]["status"], "down", "{body}");
    // Our words only: the dependency's own error text names hosts and ports.
    let error = body["checks"][dependency]["error"]
        .as_str()
        .expect("an error for a dependency that is down");
    assert!(error.contains("server log"), "{body}");
    assert!(!error.contains(&port.to_string()), "{body}");
    // Reads that need no dependency keep working.
    assert_eq!(
        app.graphql("{ healthCheck }").await["data"]["healthCheck"],
        true
    );

    let proxy = start_proxy(port, socket_addr_of(&real)).await;
    let body = app.wait_for_readiness(200, RECOVERY).await;
    assert_eq!(body["checks"][dependency]["status"], "up", "{body}");
    proxy.abort();
}

#[tokio::test]
async fn postgres_down_then_back() {
    goes_down_and_recovers("postgres", |c| &mut c.connections.database_url).await;
}

#[tokio::test]
async fn redis_down_then_back() {
    goes_down_and_recovers("redis", |c| &mut c.connections.redis_url).await;
}

#[tokio::test]
async fn nats_down_then_back() {
    goes_down_and_recovers("nats", |c| &mut c.connections.nats_url).await;
}

#[tokio::test]
async fn temporal_down_then_back() {
    let port = free_port().await;
    let real = common::test_config().temporal.temporal_address;
    let app = TestApp::spawn_with(|c| {
        c.temporal
            .temporal_address
            .set_port(Some(port))
            .expect("http URL takes a port");
    })
    .await;
    let (status, body) = app.readyz().await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["checks"]["temporal"]["status"], "down", "{body}");

    let proxy = start_proxy(port, socket_addr_of(real.as_str())).await;
    let body = app.wait_for_readiness(200, RECOVERY).await;
    assert_eq!(body["checks"]["temporal"]["status"], "up", "{body}");
    proxy.abort();
}
