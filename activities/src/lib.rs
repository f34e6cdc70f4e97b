//! Fishapp's Temporal activities, one module per context (post, chat, image), each registered on
//! its context's task queue (see `fishapp_workflows::TaskQueues`). Activities are the only place
//! where a saga touches the world, so each one is idempotent by the saga's business key: Temporal
//! may run an activity more than once.
//!
//! The first activities arrive with the board's sagas; until then the worker serves none.

/// The contexts whose activities this crate will hold, each on its own task queue.
pub const CONTEXTS: [&str; 3] = ["post", "chat", "media"];
