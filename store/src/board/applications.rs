//! Applications: a seat taken on a trip (never more than it has), a place in its line, a
//! request to its organiser; given back, promoted, accepted, declined, expired; listed by user
//! and by post. Every change of a trip's seats and line holds the post's row first, so they
//! happen one after another.

use super::reading::post_by_id;
use super::rows::{POST_COLUMNS, PostRow};
use crate::outbox::{self, Event};
use chrono::{DateTime, Utc};
use fishapp_domain::board::{ApplicationStatus, ApplyRefusal, PostStatus};
use fishapp_domain::events::ApplicationData;
use fishapp_domain::events::EventType;
use serde::{Deserialize, Serialize};
use sqlx::{FromRow, PgExecutor, PgPool, Postgres, Transaction};

/// An application: one user's seat on a trip, place in its line, or request to its organiser.
#[derive(Debug, Clone, PartialEq, Eq, FromRow, Serialize, Deserialize)]
pub struct ApplicationRow {
    pub id: i64,
    pub post_id: i64,
    pub user_id: i64,
    /// Absent from histories recorded before the line and approval existed: a seat then.
    #[serde(default)]
    #[sqlx(try_from = "String")]
    pub status: ApplicationStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const APPLICATION_COLUMNS: &str =
    "a.id, a.post_id, a.user_id, a.status, a.created_at, a.updated_at";

impl ApplicationRow {
    /// The application as the domain's events carry it.
    pub fn data(&self) -> ApplicationData {
        ApplicationData {
            id: self.id,
            post_id: self.post_id,
            user_id: self.user_id,
            status: self.status,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// What asking for a seat came to. A refusal is an answer, not an error: the saga ends with
/// it, having changed nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Seat {
    Taken(ApplicationRow),
    Refused(ApplyRefusal),
    /// In the trip's line: no seat yet.
    Waitlisted(ApplicationRow),
    /// A request to the organiser of a trip that approves each application: no seat yet.
    Requested(ApplicationRow),
}

/// How a seat is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SeatWay {
    /// Applying: a free seat (when nobody is in line before), else a place in the line when
    /// `waitlist`; on a trip that approves each application, a request.
    Apply { waitlist: bool },
    /// The trip workflow promotes the first in line (WAITLISTED → APPLIED).
    Promote,
    /// The organiser accepts a request (PENDING_APPROVAL → APPLIED).
    Accept,
}

impl Default for SeatWay {
    /// What every Apply saga asked for before the line and approval existed.
    fn default() -> Self {
        SeatWay::Apply { waitlist: false }
    }
}

/// Asks for a seat on `post_id` for `user_id`, in one transaction that holds the post's row, so
/// that every change of a trip's seats and line is one after another: the count (OPEN, meeting
/// time ahead, not the user's own, a seat left — simultaneous applications can never overfill
/// it), the application row, and its event. Idempotent by (post, user): asked again, the
/// application as it stands is the answer.
pub async fn take_seat(
    db: &PgPool,
    post_id: i64,
    user_id: i64,
    way: SeatWay,
) -> Result<Seat, sqlx::Error> {
    let mut tx = db.begin().await?;
    let post: Option<PostRow> = sqlx::query_as(&format!(
        "SELECT {POST_COLUMNS} FROM board.posts p WHERE id = $1 FOR UPDATE"
    ))
    .bind(post_id)
    .fetch_optional(&mut *tx)
    .await?;
    let held: Option<ApplicationRow> = sqlx::query_as(&format!(
        "SELECT {APPLICATION_COLUMNS} FROM board.applications a WHERE post_id = $1 AND user_id = $2"
    ))
    .bind(post_id)
    .bind(user_id)
    .fetch_optional(&mut *tx)
    .await?;
    let seat = match (way, held) {
        (_, Some(held)) if held.status == ApplicationStatus::Applied => Seat::Taken(held),
        (SeatWay::Apply { .. }, Some(held)) => match held.status {
            ApplicationStatus::Waitlisted => Seat::Waitlisted(held),
            _ => Seat::Requested(held),
        },
        (SeatWay::Apply { waitlist }, None) => {
            apply(&mut tx, post.as_ref(), user_id, waitlist).await?
        }
        (SeatWay::Promote | SeatWay::Accept, None) => Seat::Refused(ApplyRefusal::NotWaiting),
        (SeatWay::Promote | SeatWay::Accept, Some(held)) => {
            let (waiting, event) = match way {
                SeatWay::Promote => (
                    ApplicationStatus::Waitlisted,
                    EventType::ApplicationPromoted,
                ),
                _ => (
                    ApplicationStatus::PendingApproval,
                    EventType::ApplicationAccepted,
                ),
            };
            if held.status != waiting {
                Seat::Refused(ApplyRefusal::NotWaiting)
            } else {
                match (unseated(post.as_ref(), user_id), &post) {
                    (Some(refusal), _) => Seat::Refused(refusal),
                    (None, Some(post)) => seat_waiting(&mut tx, post, held, event).await?,
                    (None, None) => Seat::Refused(ApplyRefusal::NotFound),
                }
            }
        }
    };
    tx.commit().await?;
    Ok(seat)
}

/// A new application, the post's row held: a request, a seat, a place in the line, or why not.
async fn apply(
    tx: &mut Transaction<'_, Postgres>,
    post: Option<&PostRow>,
    user_id: i64,
    waitlist: bool,
) -> Result<Seat, sqlx::Error> {
    let Some(post) = post else {
        return Ok(Seat::Refused(ApplyRefusal::NotFound));
    };
    if was_removed(&mut **tx, post.id, user_id).await? {
        return Ok(Seat::Refused(ApplyRefusal::Removed));
    }
    if let Some(refusal) = not_open_to(post, user_id) {
        return Ok(Seat::Refused(refusal));
    }
    let (status, event) = if post.approval_required {
        // Read with the row held: [`expire_requests`] records the deadline under the same
        // lock, so a request is either there before it (and expires with the rest) or refused.
        if post.requests_closed {
            return Ok(Seat::Refused(ApplyRefusal::RequestsClosed));
        }
        (
            ApplicationStatus::PendingApproval,
            EventType::ApplicationRequested,
        )
    } else if line_length(&mut **tx, post.id).await? == 0 && seat_left(tx, post).await? {
        // A free seat goes to the line first: nobody may take it past those waiting.
        (ApplicationStatus::Applied, EventType::ApplicationCreated)
    } else if waitlist {
        (
            ApplicationStatus::Waitlisted,
            EventType::ApplicationWaitlisted,
        )
    } else {
        return Ok(Seat::Refused(ApplyRefusal::Full));
    };
    if status == ApplicationStatus::Applied {
        count_seat(tx, post.id, 1).await?;
    }
    let application: ApplicationRow = sqlx::query_as(&format!(
        "INSERT INTO board.applications AS a (post_id, user_id, status) VALUES ($1, $2, $3)
         RETURNING {APPLICATION_COLUMNS}"
    ))
    .bind(post.id)
    .bind(user_id)
    .bind(status.as_str())
    .fetch_one(&mut **tx)
    .await?;
    outbox::append(tx, &Event::application(event, &application.data())).await?;
    Ok(match status {
        ApplicationStatus::Applied => Seat::Taken(application),
        ApplicationStatus::Waitlisted => Seat::Waitlisted(application),
        ApplicationStatus::PendingApproval => Seat::Requested(application),
    })
}

/// A waiting application takes a free seat (the post's row held).
async fn seat_waiting(
    tx: &mut Transaction<'_, Postgres>,
    post: &PostRow,
    waiting: ApplicationRow,
    event: EventType,
) -> Result<Seat, sqlx::Error> {
    if !seat_left(tx, post).await? {
        return Ok(Seat::Refused(ApplyRefusal::Full));
    }
    let seated = count_seat(tx, waiting.post_id, 1).await?;
    if !seated {
        return Ok(Seat::Refused(ApplyRefusal::Full));
    }
    let application: ApplicationRow = sqlx::query_as(&format!(
        "UPDATE board.applications a SET status = 'APPLIED', updated_at = now() WHERE id = $1
         RETURNING {APPLICATION_COLUMNS}"
    ))
    .bind(waiting.id)
    .fetch_one(&mut **tx)
    .await?;
    outbox::append(tx, &Event::application(event, &application.data())).await?;
    Ok(Seat::Taken(application))
}

/// Moves the post's count of seats by `delta`; a seat is counted only while one is left (the
/// CHECK on the count would refuse more anyway). Returns whether it moved.
async fn count_seat(
    tx: &mut Transaction<'_, Postgres>,
    post_id: i64,
    delta: i32,
) -> Result<bool, sqlx::Error> {
    let moved = sqlx::query(
        "UPDATE board.posts SET apply_count = apply_count + $2, updated_at = now()
          WHERE id = $1 AND apply_count + $2 BETWEEN 0 AND max_apply",
    )
    .bind(post_id)
    .bind(delta)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(moved == 1)
}

/// Whether `post` (its row held) has a seat for someone new: one not counted, and not still
/// occupied in the room by a member whose withdrawal gave the seat back but has not left yet
/// (Withdraw gives the seat back first, so that an Apply still joining never leaves a member
/// without a seat). So the room never has more members than the trip has seats; the withdrawal
/// tells the trip when it has left, and the seat is given then.
async fn seat_left(
    tx: &mut Transaction<'_, Postgres>,
    post: &PostRow,
) -> Result<bool, sqlx::Error> {
    if post.apply_count >= post.max_apply {
        return Ok(false);
    }
    // The room's tables are the chat context's, read here (same database) in the transaction
    // that holds the post, as `join_room` reads the seat.
    let leaving: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM chat.members m JOIN chat.rooms r ON r.id = m.room_id
          WHERE r.post_id = $1 AND m.user_id <> $2
            AND NOT EXISTS (SELECT 1 FROM board.applications a
                             WHERE a.post_id = $1 AND a.user_id = m.user_id
                               AND a.status = 'APPLIED')",
    )
    .bind(post.id)
    .bind(post.user_id)
    .fetch_one(&mut **tx)
    .await?;
    Ok(i64::from(post.apply_count) + leaving < i64::from(post.max_apply))
}

/// Whether the organiser of `post_id` removed `user_id` from it (they may not apply again).
pub async fn was_removed(
    db: impl PgExecutor<'_>,
    post_id: i64,
    user_id: i64,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM board.removals WHERE post_id = $1 AND user_id = $2)",
    )
    .bind(post_id)
    .bind(user_id)
    .fetch_one(db)
    .await
}

/// A removal from a trip: who, and when.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct RemovalRow {
    pub post_id: i64,
    pub user_id: i64,
    pub removed_at: DateTime<Utc>,
}

/// Those removed from these trips, newest first, at most `limit` per trip; one statement for a
/// whole page.
pub async fn removals_of_posts(
    db: &PgPool,
    post_ids: &[i64],
    limit: i64,
) -> Result<Vec<RemovalRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT post_id, user_id, removed_at FROM (
            SELECT *, row_number() OVER (PARTITION BY post_id
                                         ORDER BY removed_at DESC, user_id) AS n
              FROM board.removals WHERE post_id = ANY($1)
         ) r WHERE n <= $2 ORDER BY post_id, removed_at DESC, user_id",
    )
    .bind(post_ids)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Lifts `user_id`'s removal from `post_id`: they may apply to it again. Whether there was one.
pub async fn lift_removal(db: &PgPool, post_id: i64, user_id: i64) -> Result<bool, sqlx::Error> {
    let lifted = sqlx::query("DELETE FROM board.removals WHERE post_id = $1 AND user_id = $2")
        .bind(post_id)
        .bind(user_id)
        .execute(db)
        .await?
        .rows_affected();
    Ok(lifted == 1)
}

async fn line_length(db: impl PgExecutor<'_>, post_id: i64) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM board.applications WHERE post_id = $1 AND status = 'WAITLISTED'",
    )
    .bind(post_id)
    .fetch_one(db)
    .await
}

/// Why `user_id` may not apply to `post` (None: it does not exist), by the same rules as
/// [`take_seat`]; checked up front by the API for a clear answer. A full trip is no refusal for
/// one who asks for the line, nor on a trip that approves each application (a request holds no
/// seat).
pub fn refusal(post: Option<&PostRow>, user_id: i64, waitlist: bool) -> Option<ApplyRefusal> {
    let Some(post) = post else {
        return Some(ApplyRefusal::NotFound);
    };
    not_open_to(post, user_id).or_else(|| {
        (post.apply_count >= post.max_apply && !waitlist && !post.approval_required)
            .then_some(ApplyRefusal::Full)
    })
}

/// Why `user_id` may not join `post` at all, whatever its seats.
fn not_open_to(post: &PostRow, user_id: i64) -> Option<ApplyRefusal> {
    if post.user_id == user_id {
        Some(ApplyRefusal::OwnPost)
    } else if post.status != PostStatus::Open {
        Some(ApplyRefusal::NotOpen)
    } else if post.meeting_at <= Utc::now() {
        Some(ApplyRefusal::Past)
    } else {
        None
    }
}

/// Why a waiting application may not be seated now, whatever its seats.
fn unseated(post: Option<&PostRow>, user_id: i64) -> Option<ApplyRefusal> {
    match post {
        None => Some(ApplyRefusal::NotFound),
        Some(post) => not_open_to(post, user_id),
    }
}

/// Why an application is given up, which decides what the world hears of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GivenUp {
    /// The applicant withdrew (gave the seat back, left the line, took a request back):
    /// `board.application.deleted`.
    Withdrawn,
    /// The organiser removed the applicant: `board.application.removed`, and the removal is
    /// recorded, so they may not apply to the trip again (recorded even when the application
    /// was gone already: a withdrawal that crossed the removal does not undo it).
    Removed,
    /// A failed Apply's compensation: its unpublished event is withdrawn instead, unless it
    /// already went out.
    Undone,
}

/// Gives `user_id`'s application to `post_id` up: the application goes, and a seat it held is
/// counted off; `why` decides what is announced. Gone already is success. Returns what it gave
/// up.
pub async fn give_back_seat(
    db: &PgPool,
    post_id: i64,
    user_id: i64,
    why: GivenUp,
) -> Result<Option<ApplicationRow>, sqlx::Error> {
    let mut tx = db.begin().await?;
    // The post's row first, as every change of its seats and line takes it.
    sqlx::query("SELECT 1 FROM board.posts WHERE id = $1 FOR UPDATE")
        .bind(post_id)
        .execute(&mut *tx)
        .await?;
    if why == GivenUp::Removed {
        // Only while the trip exists: a removal retried after its teardown has nothing to bar.
        sqlx::query(
            "INSERT INTO board.removals (post_id, user_id)
             SELECT id, $2 FROM board.posts WHERE id = $1
             ON CONFLICT DO NOTHING",
        )
        .bind(post_id)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    }
    let deleted: Option<ApplicationRow> = sqlx::query_as(&format!(
        "DELETE FROM board.applications a WHERE post_id = $1 AND user_id = $2
         RETURNING {APPLICATION_COLUMNS}"
    ))
    .bind(post_id)
    .bind(user_id)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(application) = &deleted {
        if application.status == ApplicationStatus::Applied {
            count_seat(&mut tx, post_id, -1).await?;
        }
        let event_type = match why {
            GivenUp::Removed => EventType::ApplicationRemoved,
            GivenUp::Withdrawn | GivenUp::Undone => EventType::ApplicationDeleted,
        };
        let event = Event::application(event_type, &application.data());
        outbox::append_undo(&mut tx, &event, why != GivenUp::Undone).await?;
    }
    tx.commit().await?;
    Ok(deleted)
}

/// The trip's seats and line as they stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SeatsView {
    pub max_apply: i32,
    /// Seats taken.
    pub applied: i32,
    /// In the line.
    pub waitlisted: i64,
    /// Requests waiting for the organiser.
    pub requested: i64,
}

/// Who is next in the trip's line, if a seat is free for them (and the trip still takes
/// applicants), with the seats as they stand.
pub async fn next_in_line(
    db: &PgPool,
    post_id: i64,
) -> Result<(Option<ApplicationRow>, SeatsView), sqlx::Error> {
    let post = post_by_id(db, post_id).await?;
    let counts: (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status = 'WAITLISTED'),
                count(*) FILTER (WHERE status = 'PENDING_APPROVAL')
           FROM board.applications WHERE post_id = $1",
    )
    .bind(post_id)
    .fetch_one(db)
    .await?;
    let Some(post) = post else {
        return Ok((None, SeatsView::default()));
    };
    let view = SeatsView {
        max_apply: post.max_apply,
        applied: post.apply_count,
        waitlisted: counts.0,
        requested: counts.1,
    };
    let open = post.status == PostStatus::Open && post.meeting_at > Utc::now();
    if !open || post.apply_count >= post.max_apply || counts.0 == 0 {
        return Ok((None, view));
    }
    let next = sqlx::query_as(&format!(
        "SELECT {APPLICATION_COLUMNS} FROM board.applications a
          WHERE post_id = $1 AND status = 'WAITLISTED' ORDER BY id LIMIT 1"
    ))
    .bind(post_id)
    .fetch_optional(db)
    .await?;
    Ok((next, view))
}

/// The organiser declines a request: it goes, with `application.declined`. Returns it, or None
/// when it is not a request waiting on `post_id` (answered, taken back, expired).
pub async fn decline_request(
    db: &PgPool,
    post_id: i64,
    application_id: i64,
) -> Result<Option<ApplicationRow>, sqlx::Error> {
    let mut tx = db.begin().await?;
    let declined: Option<ApplicationRow> = sqlx::query_as(&format!(
        "DELETE FROM board.applications a
          WHERE id = $1 AND post_id = $2 AND status = 'PENDING_APPROVAL'
          RETURNING {APPLICATION_COLUMNS}"
    ))
    .bind(application_id)
    .bind(post_id)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(request) = &declined {
        let event = Event::application(EventType::ApplicationDeclined, &request.data());
        outbox::append(&mut tx, &event).await?;
    }
    tx.commit().await?;
    Ok(declined)
}

/// Requests nobody answered by the deadline go, each with `application.expired`, and the trip
/// takes no new ones for its current meeting time (see [`apply`]). `for_meeting`: the meeting
/// time whose deadline this is; a trip moved since is left as it is (its workflow comes again
/// at the new deadline). Returns how many went.
pub async fn expire_requests(
    db: &PgPool,
    post_id: i64,
    for_meeting: Option<DateTime<Utc>>,
) -> Result<u64, sqlx::Error> {
    let mut tx = db.begin().await?;
    // The post's row first, as every change of its seats, line and requests takes it.
    let due = sqlx::query(
        "UPDATE board.posts SET requests_closed_for = meeting_at
          WHERE id = $1 AND ($2::timestamptz IS NULL OR meeting_at = $2)",
    )
    .bind(post_id)
    .bind(for_meeting)
    .execute(&mut *tx)
    .await?;
    if due.rows_affected() == 0 {
        return Ok(0);
    }
    let expired: Vec<ApplicationRow> = sqlx::query_as(&format!(
        "DELETE FROM board.applications a WHERE post_id = $1 AND status = 'PENDING_APPROVAL'
          RETURNING {APPLICATION_COLUMNS}"
    ))
    .bind(post_id)
    .fetch_all(&mut *tx)
    .await?;
    for request in &expired {
        let event = Event::application(EventType::ApplicationExpired, &request.data());
        outbox::append(&mut tx, &event).await?;
    }
    tx.commit().await?;
    Ok(expired.len() as u64)
}

/// The first `limit` applications of each of these posts in `status`, oldest first (for the
/// line: its order); one statement for a whole page.
pub async fn applications_of_posts_in(
    db: &PgPool,
    post_ids: &[i64],
    status: ApplicationStatus,
    limit: i64,
) -> Result<Vec<ApplicationRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {APPLICATION_COLUMNS} FROM (
            SELECT *, row_number() OVER (PARTITION BY post_id ORDER BY id) AS n
              FROM board.applications WHERE post_id = ANY($1) AND status = $2
         ) a WHERE n <= $3 ORDER BY a.post_id, a.id"
    ))
    .bind(post_ids)
    .bind(status.as_str())
    .bind(limit)
    .fetch_all(db)
    .await
}

/// (application id, place in its trip's line from 1) of those of these applications that are
/// in a line; one statement for a whole page.
pub async fn waitlist_positions(
    db: &PgPool,
    application_ids: &[i64],
) -> Result<Vec<(i64, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT a.id, (SELECT count(*) FROM board.applications w
                        WHERE w.post_id = a.post_id AND w.status = 'WAITLISTED' AND w.id <= a.id)
           FROM board.applications a
          WHERE a.id = ANY($1) AND a.status = 'WAITLISTED'",
    )
    .bind(application_ids)
    .fetch_all(db)
    .await
}

pub async fn application_by_id(
    db: &PgPool,
    id: i64,
) -> Result<Option<ApplicationRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {APPLICATION_COLUMNS} FROM board.applications a WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await
}

pub async fn application_of(
    db: &PgPool,
    post_id: i64,
    user_id: i64,
) -> Result<Option<ApplicationRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {APPLICATION_COLUMNS} FROM board.applications a WHERE post_id = $1 AND user_id = $2"
    ))
    .bind(post_id)
    .bind(user_id)
    .fetch_optional(db)
    .await
}

/// The `limit` newest applications of each of these users: their seats, or (`all`: for the
/// user themself) also their places in lines and requests; one statement for a whole page.
pub async fn applications_of_users(
    db: &PgPool,
    user_ids: &[i64],
    limit: i64,
    all: bool,
) -> Result<Vec<ApplicationRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {APPLICATION_COLUMNS} FROM (
            SELECT *, row_number() OVER (PARTITION BY user_id ORDER BY id DESC) AS n
              FROM board.applications WHERE user_id = ANY($1) AND ($3 OR status = 'APPLIED')
         ) a WHERE n <= $2 ORDER BY a.user_id, a.id DESC"
    ))
    .bind(user_ids)
    .bind(limit)
    .bind(all)
    .fetch_all(db)
    .await
}

/// `user_id`'s applications (any status) to these posts; one statement for a whole page.
pub async fn applications_of_user_to(
    db: &PgPool,
    user_id: i64,
    post_ids: &[i64],
) -> Result<Vec<ApplicationRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {APPLICATION_COLUMNS} FROM board.applications a
          WHERE user_id = $1 AND post_id = ANY($2)"
    ))
    .bind(user_id)
    .bind(post_ids)
    .fetch_all(db)
    .await
}

/// Deletes every application to a post (the teardown's step before the post itself).
pub async fn delete_applications(db: &PgPool, post_id: i64) -> Result<u64, sqlx::Error> {
    let mut tx = db.begin().await?;
    let deleted = sqlx::query("DELETE FROM board.applications WHERE post_id = $1")
        .bind(post_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    sqlx::query("UPDATE board.posts SET apply_count = 0 WHERE id = $1")
        .bind(post_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(deleted)
}
