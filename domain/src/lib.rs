//! Fishapp's domain: entities and value types that parse and validate themselves, events and the
//! kinds of error every layer speaks. Nothing here does I/O, so everything here is unit-testable
//! and usable from deterministic workflow code.

pub mod account;
pub mod board;
pub mod error;
pub mod events;
pub mod validation;

pub use error::ErrorCode;
pub use validation::Invalid;
