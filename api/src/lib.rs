//! Fishapp's HTTP API — the transport only: one GraphQL endpoint (async-graphql on axum: the
//! schema and its resolvers, uploads, the WebSocket), health and readiness probes, Prometheus
//! metrics. A resolver parses its input into domain values, calls one use case of
//! `fishapp-app` and maps the result; application errors become GraphQL errors in one place
//! ([`error`]).
//!
//! Depends on the application crate (and the domain and store for reads of its own: the
//! dataloaders); nothing depends on it but the binary.

mod calendar;
pub mod client_address;
pub mod error;
mod graphiql;
pub mod graphql;
mod health;
pub mod metrics;
mod panic;
mod router;
mod websocket;

pub use error::AppError;
pub use router::{Dependencies, HttpSettings, RouterError, Services, router, with_middleware};
pub use websocket::Buffers as WebSocketBuffers;
