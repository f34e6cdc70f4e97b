//! GraphiQL in a real browser: headless Chromium (Debian's package; `scripts/tools` installs it,
//! `CHROMIUM` names another binary) loads the IDE from the API, runs `{ healthCheck }` and shows
//! the answer — and no request leaves the API's origin. Chromium is driven over the DevTools
//! protocol, with every other host made unresolvable, so a request elsewhere would also fail
//! visibly.
#![allow(clippy::unwrap_used)] // in a test, a panic is the failure report

mod common;

use common::TestApp;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// One page driven over the DevTools protocol: commands get answers, events are kept.
struct Page {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    events: Vec<Value>,
}

impl Page {
    async fn command(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let message = json!({ "id": id, "method": method, "params": params });
        self.ws
            .send(Message::text(message.to_string()))
            .await
            .unwrap();
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(30), self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("no answer to {method}"))
                .unwrap()
                .unwrap();
            let Message::Text(text) = frame else { continue };
            let value: Value = serde_json::from_str(&text).unwrap();
            if value["id"] == id {
                assert!(value["error"].is_null(), "{method}: {value}");
                return value["result"].clone();
            }
            self.events.push(value);
        }
    }

    /// Evaluates a JavaScript expression in the page and returns its (JSON) value.
    async fn eval(&mut self, expression: &str) -> Value {
        let result = self
            .command(
                "Runtime.evaluate",
                json!({ "expression": expression, "returnByValue": true }),
            )
            .await;
        result["result"]["value"].clone()
    }

    /// Polls `expression` until it is truthy, for up to `limit`.
    async fn wait_until(&mut self, expression: &str, limit: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let value = self.eval(expression).await;
            if !value.is_null() && value != json!(false) && value != json!("") {
                return value;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {expression}; page text: {}",
                self.eval("document.body && document.body.innerText").await
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn events_named(&self, method: &str) -> impl Iterator<Item = &Value> {
        self.events.iter().filter(move |e| e["method"] == method)
    }
}

/// Starts headless Chromium with a DevTools port and returns it with the page's socket URL.
async fn launch_chromium(profile: &std::path::Path) -> (tokio::process::Child, String) {
    let binary = std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".to_owned());
    let mut child = tokio::process::Command::new(&binary)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--remote-debugging-port=0",
            // Every host but the API's is unresolvable: a request elsewhere fails for sure.
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start {binary} ({e}): scripts/tools installs Chromium, or set CHROMIUM")
        });
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let browser_ws = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(url) = line.strip_prefix("DevTools listening on ") {
                return url.trim().to_owned();
            }
        }
        panic!("Chromium exited before it listened");
    })
    .await
    .expect("Chromium announces its DevTools socket");
    // Keep reading stderr so the browser never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let port = browser_ws
        .trim_start_matches("ws://127.0.0.1:")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let targets: Value = reqwest::get(format!("http://127.0.0.1:{port}/json/list"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let page = targets
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["type"] == "page")
        .expect("a page target")["webSocketDebuggerUrl"]
        .as_str()
        .unwrap()
        .to_owned();
    (child, page)
}

#[tokio::test]
async fn graphiql_loads_from_the_api_alone_and_runs_a_query() {
    let app = TestApp::spawn_with(|config| {
        config.graphql.graphql_ide = Some(true);
        config.graphql.graphql_introspection = Some(true);
    })
    .await;
    let profile = tempfile::tempdir().unwrap();
    let (mut chromium, page_ws) = launch_chromium(profile.path()).await;
    let (ws, _) = tokio_tungstenite::connect_async(page_ws.as_str())
        .await
        .unwrap();
    let mut page = Page {
        ws,
        next_id: 0,
        events: Vec::new(),
    };
    page.command("Network.enable", json!({})).await;
    page.command("Runtime.enable", json!({})).await;
    page.command("Log.enable", json!({})).await;
    page.command("Page.enable", json!({})).await;

    let origin = format!("http://{}", app.addr);
    page.command(
        "Page.navigate",
        json!({ "url": format!("{origin}/graphql#query=%7B%20healthCheck%20%7D") }),
    )
    .await;
    page.wait_until(
        "!!document.querySelector('.graphiql-execute-button')",
        Duration::from_secs(30),
    )
    .await;
    page.eval("document.querySelector('.graphiql-execute-button').click()")
        .await;
    let answer = page
        .wait_until(
            "(() => { const r = document.querySelector('.graphiql-response'); \
               return r && r.innerText.includes('healthCheck') && r.innerText; })()",
            Duration::from_secs(30),
        )
        .await;
    let answer = answer.as_str().unwrap().replace(char::is_whitespace, "");
    assert!(answer.contains("\"healthCheck\":true"), "{answer}");
    // The schema loaded too (its introspection query is within the limits): the documentation
    // explorer lists the root types.
    page.eval(
        "document.querySelector('.graphiql-sidebar button[aria-label*=\"Documentation\"]').click()",
    )
    .await;
    page.wait_until(
        "document.body.innerText.includes('Root Types') && !document.body.innerText.includes('nested too deep')",
        Duration::from_secs(10),
    )
    .await;

    // Everything the page asked for came from the API (inline data: fonts aside).
    let requested: Vec<String> = page
        .events_named("Network.requestWillBeSent")
        .map(|e| e["params"]["request"]["url"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        requested
            .iter()
            .any(|u| u.ends_with("/graphiql/graphiql.min.js")),
        "{requested:?}"
    );
    let foreign: Vec<&String> = requested
        .iter()
        .filter(|u| !u.starts_with(&origin) && !u.starts_with("data:"))
        .collect();
    assert!(foreign.is_empty(), "requests outside the API: {foreign:?}");
    // Nothing broke the page: no uncaught exception, no Content-Security-Policy refusal.
    let exceptions: Vec<&Value> = page.events_named("Runtime.exceptionThrown").collect();
    assert!(exceptions.is_empty(), "{exceptions:?}");
    let refusals: Vec<&Value> = page
        .events_named("Log.entryAdded")
        .filter(|e| {
            e["params"]["entry"]["text"]
                .as_str()
                .is_some_and(|t| t.contains("Content Security Policy"))
        })
        .collect();
    assert!(refusals.is_empty(), "{refusals:?}");
    chromium.kill().await.ok();
}
