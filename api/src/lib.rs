//! Fishapp's HTTP API: one GraphQL endpoint (async-graphql on axum), health and readiness probes,
//! Prometheus metrics. Two layers: `graphql` (types, input parsing into domain values, one use
//! case per resolver, mapping of results) and the use cases per context (`account`, `board`,
//! `media`), which own a request's whole story — reads from `fishapp-store`, and for changes that
//! span contexts, starting and awaiting sagas through `fishapp-temporal`.
//!
//! Depends on every library crate but the relay; nothing depends on it but the binary.

pub mod account;
pub mod board;
pub mod cache;
pub mod chat;
pub mod client_address;
mod cpu;
pub mod error;
mod graphiql;
pub mod graphql;
mod health;
pub mod media;
pub mod metrics;
mod panic;
mod router;
mod websocket;

pub use account::{Accounts, AuthSettings};
pub use board::{Board, BoardSettings};
pub use cache::Redis;
pub use error::ApiError;
pub use media::{Media, MediaSettings};
pub use router::{Dependencies, HttpSettings, RouterError, router, with_middleware};
