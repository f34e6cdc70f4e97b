//! Subscriptions over WebSocket (graphql-transport-ws and the older graphql-ws). The ID token
//! comes in the `connection_init` payload's `Authorization` (`Bearer <token>`, or the bare token),
//! as in the original API.
//!
//! A socket that does not send `connection_init` within the init timeout is closed with 4408
//! ("Connection initialisation timeout", as graphql-transport-ws prescribes): an open socket
//! costs the server a task and a descriptor, and one that never says who it is must not keep
//! them. The subscription caps (`graphql::streams`) bound what an initialised one may hold.
//!
//! Each operation on a socket runs as an HTTP request would ([`SocketExecutor`]): with a request
//! context of its own, so the ID token is verified again for every operation (a logout, a
//! password change or the token's expiry refuses the next one with UNAUTHENTICATED), and with
//! dataloaders of its own (nothing one operation loaded is served to a later one). A socket may
//! run only so many operations at once, and every message is held to the JSON limits before it
//! is parsed (a message over them closes the socket with 1009).

use crate::error::{AppError, server_error};
use crate::graphql::GuardedSchema;
use crate::graphql::RequestContext;
use crate::graphql::body::JsonLimits;
use crate::graphql::loaders::Loaders;
use crate::graphql::streams::StreamCaps;
use crate::router::{BareToken, credential};
use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql::{Data, Executor};
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Request};
use axum::response::{IntoResponse, Response};
use fishapp_domain::ErrorCode;
use fishapp_store::Database;
use futures::stream::BoxStream;
use futures::{SinkExt, StreamExt};
use std::any::TypeId;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;

/// Close code for a socket that did not initialise in time (graphql-transport-ws).
const INIT_TIMEOUT: u16 = 4408;
/// Close code for a socket that sent too much before initialising.
const BAD_REQUEST: u16 = 4400;
/// Messages a client may send before `connection_init` (graphql-transport-ws allows pings).
const MAX_EARLY_MESSAGES: usize = 8;

/// Close code for a message over the JSON limits (RFC 6455: "message too big").
const TOO_BIG: u16 = 1009;

/// What one WebSocket session needs.
pub(crate) struct Session {
    pub schema: GuardedSchema,
    pub db: Database,
    /// The client's address (after trusted proxies).
    pub client: IpAddr,
    /// A message is a request's JSON: the same limits as a JSON body.
    pub json_limits: JsonLimits,
    pub init_timeout: Duration,
    pub streams: StreamCaps,
    /// Operations (queries, mutations, subscriptions) one socket may run at once.
    pub max_operations: usize,
    pub buffers: Buffers,
}

/// A socket's buffers. The WebSocket library's defaults (128 KiB each) are sized for
/// throughput; a Fishapp socket mostly idles on a subscription, and its read buffer is
/// allocated (and touched) whole when the socket opens — most of an idle subscription's memory.
/// A larger message still arrives whole: the buffer grows to it (up to the JSON limits) and
/// back is not needed, as a rare large message only costs its own socket.
#[derive(Debug, Clone, Copy)]
pub struct Buffers {
    /// Bytes read from the socket at once, allocated up front.
    pub read: usize,
    /// Outgoing bytes gathered before they are written (a flush writes them anyway).
    pub write: usize,
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
        .max_message_size(session.json_limits.max_bytes)
        .max_frame_size(session.json_limits.max_bytes)
        .read_buffer_size(session.buffers.read)
        .write_buffer_size(session.buffers.write)
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
        json_limits,
        streams,
        max_operations,
        ..
    } = session;
    let executor = SocketExecutor {
        schema,
        db,
        client,
        operations: Arc::new(Semaphore::new(max_operations)),
    };
    let (mut sink, stream) = socket.split();
    // A read error (a message over the size limit, a protocol violation) ends the session; the
    // client is then told why with a close frame instead of a bare reset. A message over the
    // JSON limits ends it the same way, before it is parsed.
    let failed = Arc::new(Mutex::new(None::<CloseFrame>));
    let stream = futures::stream::iter(early.into_iter().map(Ok))
        .chain(stream)
        .map({
            let failed = failed.clone();
            move |item| {
                let frame = match &item {
                    Err(e) => Some(close_frame_for(e)),
                    Ok(message) => over_json_limits(message, &json_limits),
                };
                match frame {
                    None => item,
                    Some(frame) => {
                        let reason = frame.reason.to_string();
                        *failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(frame);
                        Err(axum::Error::new(reason))
                    }
                }
            }
        });
    GraphQLWebSocket::new_with_pair(&mut sink, stream, executor, protocol)
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
            data.insert(SocketSignIn { token });
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

/// The sign-in a socket's `connection_init` named (its session data): every operation
/// verifies it again.
struct SocketSignIn {
    token: Option<String>,
}

/// The schema as one socket runs it: each operation gets a request context and dataloaders of
/// its own, as an HTTP request does, and takes one of the socket's operation permits for as
/// long as it runs (a subscription: until it ends).
#[derive(Clone)]
struct SocketExecutor {
    schema: GuardedSchema,
    db: Database,
    client: IpAddr,
    operations: Arc<Semaphore>,
}

impl SocketExecutor {
    fn with_own_context(
        &self,
        request: async_graphql::Request,
        session: Option<&Data>,
    ) -> async_graphql::Request {
        let token = session
            .and_then(|data| data.get(&TypeId::of::<SocketSignIn>()))
            .and_then(|value| value.downcast_ref::<SocketSignIn>())
            .and_then(|sign_in| sign_in.token.clone());
        request
            .data(RequestContext::new(token, self.client))
            .data(Loaders::new(&self.db))
    }
}

impl Executor for SocketExecutor {
    async fn execute(&self, request: async_graphql::Request) -> async_graphql::Response {
        self.schema
            .execute(self.with_own_context(request, None))
            .await
    }

    fn execute_stream(
        &self,
        request: async_graphql::Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, async_graphql::Response> {
        let Ok(permit) = self.operations.clone().try_acquire_owned() else {
            let refused = AppError::Refused {
                code: ErrorCode::Conflict,
                reason: "TOO_MANY_OPERATIONS",
                message: "this connection runs too many operations at once; wait for one to finish"
                    .to_owned(),
            };
            let response = async_graphql::Response::from_errors(vec![server_error(refused)]);
            return self
                .schema
                .finalized(futures::stream::once(async { response }).boxed());
        };
        let request = self.with_own_context(request, session_data.as_deref());
        self.schema
            .execute_stream(request, session_data)
            .map(move |response| {
                // The permit goes back when the operation's stream is dropped.
                let _held = &permit;
                response
            })
            .boxed()
    }
}

/// A close frame when a message is over the JSON limits (its size is also bounded by the
/// WebSocket library, which refuses a larger one as it reads).
fn over_json_limits(message: &Message, limits: &JsonLimits) -> Option<CloseFrame> {
    let bytes: &[u8] = match message {
        Message::Text(text) => text.as_bytes(),
        Message::Binary(bytes) => bytes,
        _ => return None,
    };
    limits.check("message", bytes).err().map(|e| CloseFrame {
        code: TOO_BIG,
        reason: e.to_string().into(),
    })
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
