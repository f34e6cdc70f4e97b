//! Fishapp's Temporal plumbing — everything that talks to the Temporal server from outside a
//! workflow: the process's one connection, starting (or joining) a saga under its business key and
//! waiting for its outcome, the search attributes operators filter by, the schedules the worker
//! keeps, and replaying a recorded history. The workflow definitions themselves are in
//! `fishapp-workflows` (deterministic code only); this crate may use tokio and the network.
//!
//! Depends on `fishapp-workflows` (the workflow list, the task queue names). Used by the API
//! (starting sagas), the worker and `fishapp replay` (the binary).

pub mod connection;
pub mod replay;
pub mod sagas;
pub mod schedules;
pub mod search_attributes;

pub use connection::{Temporal, TemporalSettings, TemporalUnavailable};
pub use sagas::{SagaError, SagaInfo, SagaOutcome};
