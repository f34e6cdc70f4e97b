//! Who is told what, for each event: one transaction per event that records the event's id and
//! writes its notifications, so an event delivered again writes nothing (exactly once in effect,
//! whatever the stream redelivers).
//!
//! The actor of an event is never told of it; a user who muted a kind is not told either.
//! Recipients come from the event where it names them (the trip's reminder and completion carry
//! the members), otherwise from the database as it is when the event is handled — except a
//! cancelled trip's members, which the teardown has already deleted: the consumer keeps its own
//! list of who holds a seat from the application events (`notify.members`).

use fishapp_domain::board::ApplicationStatus;
use fishapp_domain::events::{
    ApplicationData, Envelope, Event, EventType, MessageData, NotificationsData, PostData,
    ReviewData, TripNoticeData, WrittenNotification,
};
use fishapp_domain::notify::NotificationKind;
use fishapp_store::notify::{self as store, Notice, Written};
use serde::de::DeserializeOwned;
use sqlx::PgPool;

/// What handling an event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// Its notifications were written (how many; 0 when nobody was to be told).
    Written(u64),
    /// It had been handled before (a redelivery): nothing written.
    Duplicate,
    /// This database no longer has it (a restore took its change away; see
    /// `fishapp_store::outbox::restored_away`): recorded as handled, nothing written.
    RestoredAway,
}

/// Which events are this database's to handle.
#[derive(Debug, Clone, Copy)]
pub struct Ours {
    /// This database's deployment: another's events on a shared stream are not handled.
    pub deployment: uuid::Uuid,
    /// How long the outbox keeps published events (`RELAY_RETENTION_SECS`): within it, an
    /// event whose row is gone is one a restore took away.
    pub outbox_retention: std::time::Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// The event cannot be read (its `data` is not what its type says): retrying will not help.
    #[error("unreadable event: {0}")]
    Unreadable(String),
    /// The database failed; a retry may succeed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

fn data<D: DeserializeOwned>(envelope: &Envelope) -> Result<D, HandleError> {
    serde_json::from_value(envelope.data.clone())
        .map_err(|e| HandleError::Unreadable(format!("{} data: {e}", envelope.event_type)))
}

/// What one delivered payload came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    Handled(Handled),
    /// Another deployment's event on a shared stream: not ours to handle.
    OtherDeployment,
}

/// Reads `payload` as an event envelope and handles it if it is `ours`. The event's id comes
/// back beside the outcome when the envelope could be read.
pub async fn handle_payload(
    db: &PgPool,
    ours: Ours,
    payload: &[u8],
) -> (Option<uuid::Uuid>, Result<Taken, HandleError>) {
    match serde_json::from_slice::<Envelope>(payload) {
        Ok(envelope) if envelope.deployment != ours.deployment => {
            (Some(envelope.id), Ok(Taken::OtherDeployment))
        }
        Ok(envelope) => (
            Some(envelope.id),
            handle(db, ours, &envelope).await.map(Taken::Handled),
        ),
        Err(e) => (
            None,
            Err(HandleError::Unreadable(format!(
                "not an event envelope: {e}"
            ))),
        ),
    }
}

/// Handles one event of this deployment.
pub async fn handle(db: &PgPool, ours: Ours, envelope: &Envelope) -> Result<Handled, HandleError> {
    let mut tx = db.begin().await?;
    if !store::first_handling(&mut tx, envelope.id).await? {
        return Ok(Handled::Duplicate);
    }
    // An event delivered again after the database went back to a backup (the consumer rewound,
    // or it lagged behind the restore point) may tell of a change that is no longer there.
    let (id, at) = (envelope.id, envelope.occurred_at);
    if fishapp_store::outbox::restored_away(&mut tx, id, at, ours.outbox_retention).await? {
        tx.commit().await?;
        return Ok(Handled::RestoredAway);
    }
    // Types this build does not know (a newer producer) are recorded as handled and skipped.
    let written = match EventType::from_name(&envelope.event_type) {
        Some(event_type) => notify(&mut tx, event_type, envelope).await?,
        None => Vec::new(),
    };
    // The API processes hear of them from the stream too (`notificationAdded`).
    if !written.is_empty() {
        let data = NotificationsData {
            source_event_id: envelope.id,
            notifications: written
                .iter()
                .map(|&(id, user_id)| WrittenNotification { id, user_id })
                .collect(),
        };
        fishapp_store::outbox::append(&mut tx, &Event::notifications_written(&data)).await?;
    }
    tx.commit().await?;
    Ok(Handled::Written(
        u64::try_from(written.len()).unwrap_or(u64::MAX),
    ))
}

async fn notify(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    event_type: EventType,
    envelope: &Envelope,
) -> Result<Written, HandleError> {
    let notice = |kind, post_id: i64, actor_id: Option<i64>, title: String| Notice {
        kind,
        event_id: envelope.id,
        post_id: Some(post_id),
        room_id: None,
        actor_id,
        title,
    };
    let written = match event_type {
        EventType::ApplicationCreated
        | EventType::ApplicationWaitlisted
        | EventType::ApplicationRequested => {
            let a: ApplicationData = data(envelope)?;
            if a.status == ApplicationStatus::Applied {
                store::add_member(tx, a.post_id, a.user_id).await?;
            }
            to_organiser(
                tx,
                NotificationKind::Applied,
                a.post_id,
                a.user_id,
                envelope,
            )
            .await?
        }
        EventType::ApplicationDeleted => {
            let a: ApplicationData = data(envelope)?;
            store::remove_member(tx, a.post_id, a.user_id).await?;
            to_organiser(
                tx,
                NotificationKind::Withdrew,
                a.post_id,
                a.user_id,
                envelope,
            )
            .await?
        }
        EventType::ApplicationPromoted | EventType::ApplicationAccepted => {
            let a: ApplicationData = data(envelope)?;
            store::add_member(tx, a.post_id, a.user_id).await?;
            let (kind, by_organiser) = if event_type == EventType::ApplicationPromoted {
                (NotificationKind::Promoted, false)
            } else {
                (NotificationKind::RequestAccepted, true)
            };
            to_applicant(tx, kind, &a, by_organiser, envelope).await?
        }
        EventType::ApplicationRemoved => {
            let a: ApplicationData = data(envelope)?;
            store::remove_member(tx, a.post_id, a.user_id).await?;
            to_applicant(tx, NotificationKind::Removed, &a, true, envelope).await?
        }
        EventType::ApplicationDeclined => {
            let a: ApplicationData = data(envelope)?;
            to_applicant(tx, NotificationKind::RequestDeclined, &a, true, envelope).await?
        }
        EventType::ApplicationExpired => {
            let a: ApplicationData = data(envelope)?;
            to_applicant(tx, NotificationKind::RequestExpired, &a, false, envelope).await?
        }
        EventType::PostPublished => {
            let p: PostData = data(envelope)?;
            store::swap_trip_time_and_place(tx, p.id, p.meeting_at, &p.meeting_place_id).await?;
            Vec::new()
        }
        EventType::PostUpdated => {
            let p: PostData = data(envelope)?;
            let before =
                store::swap_trip_time_and_place(tx, p.id, p.meeting_at, &p.meeting_place_id)
                    .await?;
            // Unknown before (a trip the consumer has not seen published): told, to be safe.
            let moved =
                before.is_none_or(|(at, place)| at != p.meeting_at || place != p.meeting_place_id);
            if moved {
                let members = store::seated(tx, p.id).await?;
                let n = notice(
                    NotificationKind::TripChanged,
                    p.id,
                    Some(p.user_id),
                    p.title,
                );
                store::write(tx, &n, &members).await?
            } else {
                Vec::new()
            }
        }
        EventType::PostDeleted => {
            let p: PostData = data(envelope)?;
            let members = store::members_of(tx, p.id).await?;
            store::forget_trip(tx, p.id).await?;
            let n = notice(
                NotificationKind::TripCancelled,
                p.id,
                Some(p.user_id),
                p.title,
            );
            store::write(tx, &n, &members).await?
        }
        EventType::PostReminderDue | EventType::PostCompleted => {
            let t: TripNoticeData = data(envelope)?;
            let kind = if event_type == EventType::PostReminderDue {
                NotificationKind::TripReminder
            } else {
                NotificationKind::TripCompleted
            };
            let n = notice(kind, t.post_id, None, t.title);
            store::write(tx, &n, &t.member_ids).await?
        }
        EventType::PostReviewed => {
            let r: ReviewData = data(envelope)?;
            to_organiser(
                tx,
                NotificationKind::TripReviewed,
                r.post_id,
                r.user_id,
                envelope,
            )
            .await?
        }
        EventType::MessageAdded => {
            let m: MessageData = data(envelope)?;
            match store::room_of(tx, m.room_id).await? {
                Some((post_id, title, members)) => {
                    let n = Notice {
                        room_id: Some(m.room_id),
                        ..notice(
                            NotificationKind::NewMessages,
                            post_id,
                            Some(m.user_id),
                            title,
                        )
                    };
                    store::collapse_message(tx, &n, &members).await?
                }
                None => Vec::new(),
            }
        }
        EventType::PostClosed
        | EventType::RoomCreated
        | EventType::RoomDeleted
        | EventType::MemberJoined
        | EventType::MemberLeft
        | EventType::NotificationsWritten
        | EventType::NotificationsRead
        | EventType::NotificationsPruned => Vec::new(),
    };
    Ok(written)
}

/// Tells the organiser of `post_id` what a member (`actor_id`: an applicant, a reviewer) did
/// (nothing when the trip is gone).
async fn to_organiser(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    kind: NotificationKind,
    post_id: i64,
    actor_id: i64,
    envelope: &Envelope,
) -> Result<Written, HandleError> {
    let Some((organiser, title)) = store::trip_of(tx, post_id).await? else {
        return Ok(Vec::new());
    };
    let n = Notice {
        kind,
        event_id: envelope.id,
        post_id: Some(post_id),
        room_id: None,
        actor_id: Some(actor_id),
        title,
    };
    Ok(store::write(tx, &n, &[organiser]).await?)
}

/// Tells an applicant what became of their application (`by_organiser`: the organiser did it).
async fn to_applicant(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    kind: NotificationKind,
    a: &ApplicationData,
    by_organiser: bool,
    envelope: &Envelope,
) -> Result<Written, HandleError> {
    let trip = store::trip_of(tx, a.post_id).await?;
    let n = Notice {
        kind,
        event_id: envelope.id,
        post_id: Some(a.post_id),
        room_id: None,
        actor_id: trip
            .as_ref()
            .filter(|_| by_organiser)
            .map(|(organiser, _)| *organiser),
        title: trip.map(|(_, title)| title).unwrap_or_default(),
    };
    Ok(store::write(tx, &n, &[a.user_id]).await?)
}
