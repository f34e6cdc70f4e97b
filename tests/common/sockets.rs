//! WebSocket clients of the API: one-shot and live graphql-transport-ws subscriptions, a
//! client for queries and mutations over a socket, and the raw connection.

use super::*;

/// A graphql-transport-ws session: connection_init (with the token, when given), one
/// subscription; every message until the server completes it or answers with an error.
pub async fn subscribe(
    app: &TestApp,
    token: Option<&str>,
    query: &str,
    variables: serde_json::Value,
) -> Vec<serde_json::Value> {
    let mut live = LiveSubscription::open(app, token, query, variables).await;
    let mut messages = Vec::new();
    while let Some(value) = live.next(Duration::from_secs(60)).await {
        let kind = value["type"].as_str().unwrap_or_default().to_owned();
        messages.push(value);
        if kind == "complete" || kind == "error" {
            break;
        }
    }
    messages
}

/// One open graphql-transport-ws subscription, read message by message.
pub struct LiveSubscription {
    ws: WebSocketClient,
}

impl LiveSubscription {
    /// Connects, sends connection_init (with the token, when given) and one subscription.
    pub async fn open(
        app: &TestApp,
        token: Option<&str>,
        query: &str,
        variables: serde_json::Value,
    ) -> Self {
        Self::open_at(app.addr, token, query, variables).await
    }

    pub async fn open_at(
        addr: SocketAddr,
        token: Option<&str>,
        query: &str,
        variables: serde_json::Value,
    ) -> Self {
        use futures::SinkExt;
        use tokio_tungstenite::tungstenite::Message;
        let mut ws = ws_connect(addr, Some("graphql-transport-ws"))
            .await
            .expect("the WebSocket connects");
        let send = |v: serde_json::Value| Message::Text(v.to_string().into());
        let payload = match token {
            Some(token) => serde_json::json!({ "Authorization": format!("Bearer {token}") }),
            None => serde_json::json!({}),
        };
        ws.send(send(
            serde_json::json!({ "type": "connection_init", "payload": payload }),
        ))
        .await
        .expect("connection_init sent");
        ws.send(send(serde_json::json!({ "id": "1", "type": "subscribe", "payload": { "query": query, "variables": variables } })))
            .await
            .expect("subscribe sent");
        Self { ws }
    }

    /// The next message of the session (`next`, `error`, `complete`; not the ack), or `None`
    /// when nothing came `within` or the socket closed.
    pub async fn next(&mut self, within: Duration) -> Option<serde_json::Value> {
        use futures::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        let deadline = tokio::time::Instant::now() + within;
        while let Ok(Some(Ok(message))) = tokio::time::timeout_at(deadline, self.ws.next()).await {
            let Message::Text(text) = message else {
                continue;
            };
            let value: serde_json::Value = serde_json::from_str(&text).expect("JSON messages");
            if !matches!(
                value["type"].as_str(),
                Some("connection_ack" | "ping" | "pong")
            ) {
                return Some(value);
            }
        }
        None
    }
}

/// A WebSocket client connection.
pub type WebSocketClient =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a WebSocket to `/graphql`, asking for `protocol` (none: no subprotocol header).
pub async fn ws_connect(
    addr: SocketAddr,
    protocol: Option<&str>,
) -> Result<WebSocketClient, String> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{addr}/graphql")
        .into_client_request()
        .expect("a WebSocket request");
    if let Some(protocol) = protocol {
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            protocol.parse().expect("a header value"),
        );
    }
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(ws, _)| ws)
        .map_err(|e| format!("refused: {e}"))
}

/// A graphql-transport-ws session for queries and mutations as well as subscriptions: each
/// operation has an id, and its messages are read by that id.
pub struct SocketClient {
    ws: WebSocketClient,
    /// Messages read while waiting for another operation's.
    unread: Vec<serde_json::Value>,
}

impl SocketClient {
    /// Connects and initialises (with `Authorization: Bearer <token>` when given), waiting for
    /// the acknowledgement.
    pub async fn connect(addr: SocketAddr, token: Option<&str>) -> Self {
        let ws = ws_connect(addr, Some("graphql-transport-ws"))
            .await
            .expect("the WebSocket connects");
        let mut client = Self {
            ws,
            unread: Vec::new(),
        };
        let payload = match token {
            Some(token) => serde_json::json!({ "Authorization": format!("Bearer {token}") }),
            None => serde_json::json!({}),
        };
        client
            .send(serde_json::json!({ "type": "connection_init", "payload": payload }))
            .await;
        let ack = client.read(Duration::from_secs(10)).await;
        assert_eq!(
            ack.as_ref().and_then(|m| m["type"].as_str()),
            Some("connection_ack"),
            "{ack:?}"
        );
        client
    }

    async fn send(&mut self, message: serde_json::Value) {
        use futures::SinkExt;
        self.ws
            .send(tokio_tungstenite::tungstenite::Message::Text(
                message.to_string().into(),
            ))
            .await
            .expect("the message is sent");
    }

    /// The next JSON message (pings answered and skipped), or `None` when none came `within`
    /// or the socket closed.
    async fn read(&mut self, within: Duration) -> Option<serde_json::Value> {
        use futures::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        let deadline = tokio::time::Instant::now() + within;
        while let Ok(Some(Ok(message))) = tokio::time::timeout_at(deadline, self.ws.next()).await {
            match message {
                Message::Text(text) => {
                    let value: serde_json::Value =
                        serde_json::from_str(&text).expect("JSON messages");
                    if value["type"] == "ping" {
                        self.send(serde_json::json!({ "type": "pong" })).await;
                        continue;
                    }
                    return Some(value);
                }
                Message::Close(frame) => {
                    return Some(serde_json::json!({
                        "type": "closed",
                        "code": frame.map(|f| u16::from(f.code)),
                    }));
                }
                _ => {}
            }
        }
        None
    }

    /// Starts an operation (query, mutation or subscription) under `id`.
    pub async fn start(&mut self, id: &str, query: &str, variables: serde_json::Value) {
        self.send(serde_json::json!({ "id": id, "type": "subscribe",
                                      "payload": { "query": query, "variables": variables } }))
            .await;
    }

    /// The next message of operation `id` (`next`, `error` or `complete`), or of the socket
    /// (`closed`); `None` when none came `within`.
    pub async fn next_of(&mut self, id: &str, within: Duration) -> Option<serde_json::Value> {
        if let Some(i) = self.unread.iter().position(|m| m["id"] == id) {
            return Some(self.unread.remove(i));
        }
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let message = self.read(left).await?;
            if message["id"] == id || message["type"] == "closed" {
                return Some(message);
            }
            self.unread.push(message);
        }
    }

    /// A query or mutation's response (its `next` payload: `data` and `errors`).
    pub async fn request(
        &mut self,
        id: &str,
        query: &str,
        variables: serde_json::Value,
    ) -> serde_json::Value {
        self.start(id, query, variables).await;
        let message = self
            .next_of(id, Duration::from_secs(30))
            .await
            .expect("an answer within 30 s");
        match message["type"].as_str() {
            Some("next") => message["payload"].clone(),
            Some("error") => serde_json::json!({ "errors": message["payload"] }),
            _ => panic!("unexpected: {message}"),
        }
    }

    /// Sends raw text (not necessarily an operation).
    pub async fn send_text(&mut self, text: String) {
        use futures::SinkExt;
        // The server may close first: what it said is read afterwards.
        let _ = self
            .ws
            .send(tokio_tungstenite::tungstenite::Message::Text(text.into()))
            .await;
    }

    /// Reads until the socket closes: its close code, or `None` when it did not close
    /// `within`.
    pub async fn closed(&mut self, within: Duration) -> Option<Option<u16>> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let message = self.read(left).await?;
            if message["type"] == "closed" {
                return Some(message["code"].as_u64().map(|c| c as u16));
            }
        }
    }
}
