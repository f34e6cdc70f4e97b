//! A fault plan for tests: the names of saga steps that fail for good when reached (e.g.
//! `chat.create_room`, or `UpdatePostWorkflow/media.attach_images` for one saga only). Every step consults it before touching anything, so a test can prove
//! that a failure at any step leaves the database and storage as they were. Empty in production
//! (`FISHAPP_FAULT_INJECTION` unset); a non-empty plan is logged loudly at start-up.

use std::collections::HashSet;
use std::sync::Arc;
use temporalio_sdk::ApplicationFailure;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

#[derive(Debug, Clone, Default)]
pub struct FaultPlan(Arc<HashSet<String>>);

impl FaultPlan {
    pub fn new(steps: impl IntoIterator<Item = String>) -> Self {
        Self(Arc::new(steps.into_iter().collect()))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Fails, non-retryably, when the plan names `step`, either alone (every saga) or as
    /// `<workflow type>/<step>` (that saga only, e.g. `UpdatePostWorkflow/media.attach_images`).
    pub fn check(&self, ctx: &ActivityContext, step: &str) -> Result<(), ActivityError> {
        if self.0.is_empty() {
            return Ok(());
        }
        let scoped = ctx
            .info()
            .workflow_type
            .as_deref()
            .is_some_and(|workflow| self.0.contains(&format!("{workflow}/{step}")));
        if scoped || self.0.contains(step) {
            tracing::warn!(step, "injected fault (fault plan)");
            return Err(ActivityError::application(
                ApplicationFailure::non_retryable(format!("injected fault at {step}")),
            ));
        }
        Ok(())
    }
}

/// A business rule said no: retrying cannot help, and the saga reports it to the user.
pub fn rule_violation(message: impl std::fmt::Display) -> ActivityError {
    ActivityError::application(ApplicationFailure::non_retryable(message.to_string()))
}
