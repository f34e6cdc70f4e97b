//! The dead letters an operator looks at and retries (`fishapp dead-letters`): each is handled
//! again by the same rules as the consumer's, straight from its recorded payload (no NATS
//! needed). An event handled at last — or found handled already — leaves the dead letters; one
//! that fails again stays, with one attempt more and the new error. The `notify.handled` record
//! makes a retry write nothing twice, whatever else handles the same event meanwhile.

use super::rules::{self, Handled, Taken};
use crate::AppError;
use fishapp_store::Database;
use fishapp_store::notify::{self as store, DeadLetterRow};

/// What retrying one dead letter did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retried {
    /// Handled now: this many notifications written. The dead letter is gone.
    Handled(u64),
    /// Handled before (e.g. republished and handled by the consumer). The dead letter is gone.
    AlreadyHandled,
    /// This database no longer has the event (a restore took its change away): nothing to
    /// tell. The dead letter is gone.
    RestoredAway,
    /// It failed again (the error); it stays.
    Failed(String),
}

/// The dead letters, oldest first, at most `limit`; with `only`, that one alone.
pub async fn list(
    db: &Database,
    only: Option<i64>,
    limit: i64,
) -> Result<Vec<DeadLetterRow>, AppError> {
    Ok(store::dead_letters(db.pool(), only, limit).await?)
}

/// Handles `letter` again and records what came of it. `outbox_retention`: as the consumer's
/// (`NotifierSettings::outbox_retention`).
pub async fn retry(
    db: &Database,
    outbox_retention: std::time::Duration,
    letter: &DeadLetterRow,
) -> Result<Retried, AppError> {
    let ours = rules::Ours {
        deployment: fishapp_store::outbox::deployment_id(db.pool()).await?,
        outbox_retention,
    };
    let (_, outcome) = rules::handle_payload(db.pool(), ours, letter.payload.as_bytes()).await;
    let retried = match outcome {
        Ok(Taken::Handled(Handled::Written(n))) => Retried::Handled(n),
        Ok(Taken::Handled(Handled::Duplicate)) => Retried::AlreadyHandled,
        Ok(Taken::Handled(Handled::RestoredAway)) => Retried::RestoredAway,
        Ok(Taken::OtherDeployment) => {
            Retried::Failed("an event of another deployment: not handled here".to_owned())
        }
        Err(error) => Retried::Failed(error.to_string()),
    };
    match &retried {
        Retried::Failed(error) => {
            store::dead_letter_failed_again(db.pool(), letter.id, error).await?;
        }
        Retried::Handled(_) | Retried::AlreadyHandled | Retried::RestoredAway => {
            store::forget_dead_letter(db.pool(), letter.id).await?;
        }
    }
    Ok(retried)
}
