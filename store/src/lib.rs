//! Fishapp's Postgres access. One module per context (account, board, chat, media, outbox); SQL
//! stays in plain sight in those modules, and every write that others must hear about appends its
//! event to the outbox in the same transaction. This crate also owns the schema migrations, which
//! are embedded in the binary.
//!
//! Depends on `fishapp-domain` only. Used by the activities (writes of the sagas), the API (reads,
//! and single-context writes such as sign-up) and the relay (the outbox).

pub mod account;
pub mod board;
pub mod chat;
pub mod database;
pub mod media;
pub mod migrations;
pub mod notify;
pub mod outbox;

pub use database::{Database, DatabaseError};
pub use migrations::{MigrationReport, migrate};
