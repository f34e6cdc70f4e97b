//! Fishapp's Temporal activities, one module per context (post, chat, media), each registered on
//! its context's task queue (see `fishapp_workflows::TaskQueues`). Activities are the only place
//! where a saga touches the world, so each one is idempotent by the saga's business key: Temporal
//! may run an activity more than once.

pub mod chat;
pub mod faults;
pub mod media;
pub mod post;

pub use chat::ChatActivities;
pub use faults::FaultPlan;
pub use media::MediaActivities;
pub use post::PostActivities;
