//! Fishapp's Postgres access. One module per context (account, board, chat, media, outbox) as the
//! contexts land; SQL stays in plain sight in those modules. This crate also owns the schema
//! migrations, which are embedded in the binary.

pub mod account;
pub mod board;
pub mod chat;
pub mod database;
pub mod media;
pub mod migrations;
pub mod outbox;

pub use database::{Database, DatabaseError};
pub use migrations::{MigrationReport, migrate};
