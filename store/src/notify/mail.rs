//! The e-mail channel (`notify.mail_settings`): a user's request and its confirmation, and the
//! digests of unread notifications chosen, listed and recorded as sent.

use chrono::{DateTime, Utc};
use fishapp_domain::notify::NotificationKind;
use sqlx::{FromRow, PgPool, Postgres, Transaction};

/// A user's e-mail channel as it stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailState {
    /// No request, or one that expired, or an address that is no longer the account's.
    Off,
    /// A confirmation mail is out and can still be confirmed.
    Pending,
    /// Digests go to the account's address.
    On,
}

/// Asks for `user_id`'s e-mail channel to its current address (`address`): the mailed token's
/// hash waits for confirmation until `expires_at` (a new request replaces the last, and an
/// address confirmed before must be confirmed again).
pub async fn request_mail(
    db: &PgPool,
    user_id: i64,
    address: &str,
    token_hash: &[u8],
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO notify.mail_settings (user_id, address, token_hash, expires_at)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (user_id) DO UPDATE
           SET address = EXCLUDED.address, token_hash = EXCLUDED.token_hash,
               expires_at = EXCLUDED.expires_at, confirmed_at = NULL",
    )
    .bind(user_id)
    .bind(address)
    .bind(token_hash)
    .bind(expires_at)
    .execute(db)
    .await?;
    Ok(())
}

/// Confirms the request whose token hashes to `token_hash`, if it is alive and its address is
/// still the account's; returns the user.
pub async fn confirm_mail(db: &PgPool, token_hash: &[u8]) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE notify.mail_settings s
            SET confirmed_at = now(), token_hash = NULL, expires_at = NULL
           FROM account.users u
          WHERE s.token_hash = $1 AND s.expires_at > now()
            AND u.id = s.user_id AND lower(u.email) = lower(s.address)
         RETURNING s.user_id",
    )
    .bind(token_hash)
    .fetch_optional(db)
    .await
}

/// Turns `user_id`'s e-mail channel off (a pending request included).
pub async fn disable_mail(db: &PgPool, user_id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM notify.mail_settings WHERE user_id = $1")
        .bind(user_id)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn mail_state(db: &PgPool, user_id: i64) -> Result<MailState, sqlx::Error> {
    let state: Option<String> = sqlx::query_scalar(
        "SELECT CASE
                  WHEN lower(u.email) <> lower(s.address) THEN 'off'
                  WHEN s.confirmed_at IS NOT NULL THEN 'on'
                  WHEN s.expires_at > now() THEN 'pending'
                  ELSE 'off' END
           FROM notify.mail_settings s JOIN account.users u ON u.id = s.user_id
          WHERE s.user_id = $1",
    )
    .bind(user_id)
    .fetch_optional(db)
    .await?;
    Ok(match state.as_deref() {
        Some("on") => MailState::On,
        Some("pending") => MailState::Pending,
        _ => MailState::Off,
    })
}

/// A user whose digest is due, locked for this transaction (replicas skip it).
#[derive(Debug, Clone, FromRow)]
pub struct DigestDue {
    pub user_id: i64,
    pub address: String,
    pub name: String,
}

/// The next user to mail, if any: confirmed, the address still the account's, no digest in the
/// last `interval`, and an unread notification not mailed yet that has waited `delay` (so a burst
/// goes out as one).
pub async fn next_digest(
    tx: &mut Transaction<'_, Postgres>,
    interval: std::time::Duration,
    delay: std::time::Duration,
) -> Result<Option<DigestDue>, sqlx::Error> {
    sqlx::query_as(
        "SELECT s.user_id, u.email AS address, u.name
           FROM notify.mail_settings s JOIN account.users u ON u.id = s.user_id
          WHERE s.confirmed_at IS NOT NULL AND lower(u.email) = lower(s.address)
            AND (s.last_mailed_at IS NULL
                 OR s.last_mailed_at < now() - make_interval(secs => $1))
            AND EXISTS (SELECT 1 FROM notify.notifications n
                         WHERE n.user_id = s.user_id AND n.read_at IS NULL
                           AND n.mailed_at IS NULL AND n.updated_at >= s.confirmed_at
                           AND n.updated_at < now() - make_interval(secs => $2))
          LIMIT 1
          FOR UPDATE OF s SKIP LOCKED",
    )
    .bind(interval.as_secs_f64())
    .bind(delay.as_secs_f64())
    .fetch_optional(&mut **tx)
    .await
}

/// One line of a digest: a notification and its trip's meeting time, if the trip still exists.
#[derive(Debug, Clone, FromRow)]
pub struct DigestItem {
    pub id: i64,
    #[sqlx(try_from = "String")]
    pub kind: NotificationKind,
    pub title: String,
    pub count: i32,
    pub meeting_at: Option<DateTime<Utc>>,
}

/// The user's unread notifications not mailed yet (written since they confirmed), oldest first,
/// at most `limit`.
pub async fn digest_items(
    tx: &mut Transaction<'_, Postgres>,
    user_id: i64,
    limit: i64,
) -> Result<Vec<DigestItem>, sqlx::Error> {
    sqlx::query_as(
        "SELECT n.id, n.kind, n.title, n.count, coalesce(p.meeting_at, t.meeting_at) AS meeting_at
           FROM notify.notifications n
           JOIN notify.mail_settings s ON s.user_id = n.user_id
           LEFT JOIN board.posts p ON p.id = n.post_id
           LEFT JOIN notify.trips t ON t.post_id = n.post_id
          WHERE n.user_id = $1 AND n.read_at IS NULL AND n.mailed_at IS NULL
            AND n.updated_at >= s.confirmed_at
          ORDER BY n.updated_at, n.id
          LIMIT $2",
    )
    .bind(user_id)
    .bind(limit)
    .fetch_all(&mut **tx)
    .await
}

/// Records a digest as sent: its notifications mailed, the user's last mail now.
pub async fn digest_sent(
    tx: &mut Transaction<'_, Postgres>,
    user_id: i64,
    ids: &[i64],
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE notify.notifications SET mailed_at = now() WHERE id = ANY($1)")
        .bind(ids)
        .execute(&mut **tx)
        .await?;
    sqlx::query("UPDATE notify.mail_settings SET last_mailed_at = now() WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
