//! Fishapp's Temporal activities, one module per context (post, chat, media), each registered on
//! its context's task queue (see `fishapp_workflows::TaskQueues`). Activities are the only place
//! where a saga touches the world, so each one is idempotent by the saga's business key: Temporal
//! may run an activity more than once.
//!
//! Depends on `fishapp-store`, `fishapp-media` and `fishapp-domain`; never on the API. Used by the
//! workflows (the typed activity definitions they call) and the worker (which registers them).

pub mod chat;
pub mod faults;
pub mod media;
pub mod post;

pub use chat::ChatActivities;
pub use faults::FaultPlan;
pub use media::MediaActivities;
pub use post::PostActivities;
