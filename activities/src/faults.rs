//! A fault plan for tests: the names of saga steps that fail when reached (e.g.
//! `chat.create_room`, or `UpdatePostWorkflow/media.attach_images` for one saga only). Every step
//! consults it before touching anything, so a test can prove that a failure at any step leaves
//! the database and storage as they were. A plain name fails for good (non-retryable: the saga
//! compensates); `<step>@<n>` fails the step's first `n` attempts retryably and then lets it run,
//! which is how a test shows that a forward-only step is retried until done. Empty in production
//! (`FISHAPP_FAULT_INJECTION` unset); a non-empty plan is logged loudly at start-up.

use std::collections::HashMap;
use std::sync::Arc;
use temporalio_sdk::ApplicationFailure;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

/// What the plan does to one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Every attempt fails, non-retryably.
    Permanent,
    /// The first `n` attempts fail, retryably.
    Transient(u32),
}

#[derive(Debug, Clone, Default)]
pub struct FaultPlan(Arc<HashMap<String, Fault>>);

impl FaultPlan {
    pub fn new(steps: impl IntoIterator<Item = String>) -> Self {
        let plan = steps
            .into_iter()
            .map(|entry| {
                let transient = entry
                    .rsplit_once('@')
                    .and_then(|(step, n)| Some((step.to_owned(), n.parse().ok()?)));
                match transient {
                    Some((step, n)) => (step, Fault::Transient(n)),
                    None => (entry, Fault::Permanent),
                }
            })
            .collect();
        Self(Arc::new(plan))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Fails when the plan names `step`, either alone (every saga) or as
    /// `<workflow type>/<step>` (that saga only, e.g. `UpdatePostWorkflow/media.attach_images`).
    pub fn check(&self, ctx: &ActivityContext, step: &str) -> Result<(), ActivityError> {
        if self.0.is_empty() {
            return Ok(());
        }
        let info = ctx.info();
        let scoped = info
            .workflow_type
            .as_deref()
            .and_then(|workflow| self.0.get(&format!("{workflow}/{step}")));
        let failure = match scoped.or_else(|| self.0.get(step)) {
            None => return Ok(()),
            Some(Fault::Transient(n)) if info.attempt > *n => return Ok(()),
            Some(Fault::Transient(_)) => {
                ApplicationFailure::new(format!("injected transient fault at {step}"))
            }
            Some(Fault::Permanent) => {
                ApplicationFailure::non_retryable(format!("injected fault at {step}"))
            }
        };
        tracing::warn!(step, attempt = info.attempt, "injected fault (fault plan)");
        Err(ActivityError::application(failure))
    }
}

/// A business rule said no: retrying cannot help, and the saga reports it to the user.
pub fn rule_violation(message: impl std::fmt::Display) -> ActivityError {
    ActivityError::application(ApplicationFailure::non_retryable(message.to_string()))
}
