//! Fishapp's domain: value types that parse and validate themselves (and the drafts they make
//! up, which cross every boundary: API → saga input → activity → store), post statuses, image
//! owners, every event type and its envelope, and the kinds of error every layer speaks. Nothing
//! here does I/O, so everything here is unit-testable and usable from deterministic workflow code.
//!
//! Depends on nothing of ours; every other crate may depend on it.

pub mod account;
pub mod board;
pub mod chat;
pub mod error;
pub mod events;
pub mod media;
pub mod notify;
pub mod review;
pub mod validation;

pub use error::ErrorCode;
pub use validation::Invalid;
