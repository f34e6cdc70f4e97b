//! Fishapp's Temporal side: the task queues, the search attributes operators filter sagas by,
//! and the client through which the API starts workflows. Workflow definitions (the sagas) live
//! here too as their issues land; their code stays deterministic (no I/O, clocks, randomness or
//! tokio primitives — only the SDK's own).

pub mod board;
pub mod media_cleanup;
pub mod replay;
pub mod saga;
pub mod schedules;
pub mod search_attributes;
pub mod task_queues;
pub mod temporal;

pub use task_queues::TaskQueues;
pub use temporal::{Temporal, TemporalSettings, TemporalUnavailable};
