//! Fishapp's HTTP API: one GraphQL endpoint (async-graphql on axum), health and readiness probes,
//! Prometheus metrics. Reads go to the Postgres read models through `fishapp-store`; changes that
//! span contexts start Temporal workflows through `fishapp-workflows`.

pub mod account;
pub mod board;
pub mod cache;
mod cpu;
pub mod error;
pub mod graphql;
mod health;
pub mod media;
pub mod metrics;
mod router;

pub use account::{Accounts, AuthSettings};
pub use board::{Board, BoardSettings};
pub use cache::Redis;
pub use error::ApiError;
pub use media::{Media, MediaSettings};
pub use router::{Dependencies, HttpSettings, RouterError, router};
