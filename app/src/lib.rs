//! Fishapp's application layer: the use cases per context — what a request, a worker's step or a
//! consumer asks of the system, told whole (the checks that need the database, staging uploads,
//! starting or joining a saga under its business key, waiting for it, undoing its own work), and
//! the live feeds (chat events read from JetStream and fanned out by room).
//!
//! - [`account`]: sign-up, login, token rotation and revocation, password and email changes;
//! - [`board`]: posting, changing and tearing down trips, applying and withdrawing, reading;
//! - [`chat`]: a trip's room, writing a message, following a room live ([`chat::live`]);
//! - [`media`]: uploads checked, processed and stored;
//! - [`calendar`]: a trip's iCalendar event, behind a link for its members;
//! - [`notify`]: notifications written from the event stream by their consumer, read by users;
//! - [`cache`]: Redis, for rate limits and the token denylist.
//!
//! No transport here: no axum, no async-graphql. Every error is an [`AppError`]; a transport maps
//! it once. Depends on the domain, the store, the media pipeline, mail and the Temporal client;
//! the API (and any other role: a worker's activities, a consumer) depends on it.

pub mod account;
pub mod board;
pub mod cache;
pub mod calendar;
pub mod chat;
mod cpu;
pub mod error;
pub mod feed;
pub mod media;
pub mod notify;

pub use account::{Accounts, AuthSettings};
pub use board::{Board, BoardLimits, BoardSettings};
pub use cache::Redis;
pub use calendar::{Calendar, CalendarSettings};
pub use error::AppError;
pub use media::{Media, MediaSettings, Upload};
pub use notify::Notifications;
