//! Subscriptions over WebSocket (graphql-transport-ws and the older graphql-ws). The ID token
//! comes in the `connection_init` payload's `Authorization` (`Bearer <token>`, or the bare token),
//! as in the original API.
//!
//! A socket that does not send `connection_init` within the init timeout is closed with 4408
//! ("Connection initialisation timeout", as graphql-transport-ws prescribes): an open socket
//! costs the server a task and a descriptor, and one that never says who it is must not keep
//! them. The subscription caps (`graphql::streams`) bound what an initialised one may hold.

use crate::graphql::GuardedSchema;
use crate::graphql::RequestContext;
use crate::graphql::loaders::Loaders;
use crate::graphql::streams::StreamCaps;
use crate::router::{BareToken, credential};
use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Request};
use axum::response::{IntoResponse, Response};
use fishapp_store::Database;
use futures::{SinkExt, StreamExt};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Close code for a socket that did not initialise in time (graphql-transport-ws).
const INIT_TIMEOUT: u16 = 4408;
/// Close code for a socket that sent too much before initialising.
const BAD_REQUEST: u16 = 4400;
/// Messages a client may send before `connection_init` (graphql-transport-ws allows pings).
const MAX_EARLY_MESSAGES: usize = 8;

/// What one WebSocket session needs.
pub(crate) struct Session {
    pub schema: GuardedSchema,
    pub db: Database,
    /// The client's address (after trusted proxies).
    pub client: IpAddr,
    /// A message is a request: the same cap as an HTTP body.
    pub max_message_bytes: usize,
    pub init_timeout: Duration,
    pub streams: StreamCaps,
}

pub(crate) async fn upgrade(session: Session, request: Request) -> Response {
    let (mut parts, _body) = request.into_parts();
    let protocol = match GraphQLProtocol::from_request_parts(&mut parts, &()).await {
        Ok(protocol) => protocol,
        Err(rejection) => return rejection.into_response(),
    };
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    upgrade
        .max_message_size(session.max_message_bytes)
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| serve(session, protocol, socket))
}

async fn serve(session: Session, protocol: GraphQLProtocol, mut socket: WebSocket) {
    let Some(early) = until_init(&mut socket, session.init_timeout).await else {
        return;
    };
    let Session {
        schema,
        db,
        client,
        streams,
        ..
    } = session;
    let (mut sink, stream) = socket.split();
    // A read error (a message over the size limit, a protocol violation) ends the session; the
    // client is then told why with a close frame instead of a bare reset.
    let failed = Arc::new(Mutex::new(None::<CloseFrame>));
    let stream = futures::stream::iter(early.into_iter().map(Ok))
        .chain(stream)
        .map({
            let failed = failed.clone();
            move |item| {
                if let Err(e) = &item {
                    *failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(close_frame_for(e));
                }
                item
            }
        });
    GraphQLWebSocket::new_with_pair(&mut sink, stream, schema, protocol)
        .on_connection_init(move |payload| async move {
            if !(payload.is_object() || payload.is_null()) {
                return Err(async_graphql::Error::new(
                    "the connection_init payload must be an object",
                ));
            }
            let token = ["Authorization", "authorization"]
                .iter()
                .find_map(|k| payload.get(k).and_then(|v| v.as_str()))
                .and_then(|v| credential(v, BareToken::Accepted));
            let mut data = async_graphql::Data::default();
            data.insert(RequestContext::new(token, client));
            data.insert(Loaders::new(&db));
            data.insert(streams.for_connection());
            Ok(data)
        })
        .serve()
        .await;
    let frame = failed.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(frame) = frame {
        // The client may be gone already; nothing to do then.
        let _ = sink.send(Message::Close(Some(frame))).await;
    }
}

/// The close frame for a read error: 1009 for a message over the size limit, 1002 otherwise.
/// (axum hides the WebSocket library's error type, so the kind is told by its text:
/// tungstenite's "Space limit exceeded: Message too long: …".)
fn close_frame_for(error: &axum::Error) -> CloseFrame {
    let text = error.to_string().to_ascii_lowercase();
    let too_big = ["too long", "too big", "capacity"]
        .iter()
        .any(|mark| text.contains(mark));
    if too_big {
        CloseFrame {
            code: 1009,
            reason: "the message is over the size limit".into(),
        }
    } else {
        CloseFrame {
            code: 1002,
            reason: "protocol error".into(),
        }
    }
}

/// Reads until the client's `connection_init` (inclusive) and returns what it sent, to be
/// handed on; `None` when the socket was closed here (timeout, too many early messages) or by
/// the client.
async fn until_init(socket: &mut WebSocket, timeout: Duration) -> Option<Vec<Message>> {
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let mut early = Vec::new();
    loop {
        let message = tokio::select! {
            () = &mut deadline => {
                close(socket, INIT_TIMEOUT, "Connection initialisation timeout").await;
                return None;
            }
            message = socket.recv() => message?.ok()?,
        };
        let init = is_connection_init(&message);
        early.push(message);
        if init {
            return Some(early);
        }
        if early.len() > MAX_EARLY_MESSAGES {
            close(socket, BAD_REQUEST, "connection_init expected").await;
            return None;
        }
    }
}

fn is_connection_init(message: &Message) -> bool {
    #[derive(serde::Deserialize)]
    struct Typed<'a> {
        #[serde(rename = "type", borrow)]
        kind: std::borrow::Cow<'a, str>,
    }
    let text = match message {
        Message::Text(text) => text.as_str(),
        _ => return false,
    };
    serde_json::from_str::<Typed<'_>>(text).is_ok_and(|t| t.kind == "connection_init")
}

async fn close(socket: &mut WebSocket, code: u16, reason: &'static str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    // The client may be gone already; nothing to do then.
    let _ = socket.send(Message::Close(Some(frame))).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_init_is_recognised_in_either_protocol() {
        assert!(is_connection_init(&Message::Text(
            r#"{"type":"connection_init","payload":{}}"#.into()
        )));
        assert!(is_connection_init(&Message::Text(
            r#"{"type":"connection_init"}"#.into()
        )));
        assert!(!is_connection_init(&Message::Text(
            r#"{"type":"ping"}"#.into()
        )));
        assert!(!is_connection_init(&Message::Text("not json".into())));
        assert!(!is_connection_init(&Message::Binary(b"{}".to_vec().into())));
    }
}
