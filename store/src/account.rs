//! The account context's tables: users, refresh-token families, refresh tokens.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgExecutor, PgPool};
use uuid::Uuid;

#[derive(Debug, Clone, FromRow)]
pub struct UserRow {
    pub id: i64,
    pub email: String,
    pub password_hash: String,
    pub name: String,
    pub sex: String,
    pub introduction: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub struct NewUser<'a> {
    pub email: &'a str,
    pub password_hash: &'a str,
    pub name: &'a str,
    pub sex: &'a str,
    pub introduction: &'a str,
}

/// The email is taken (the unique index said so).
#[derive(Debug, thiserror::Error)]
#[error("email address already registered")]
pub struct EmailTaken;

#[derive(Debug, thiserror::Error)]
pub enum WriteUserError {
    #[error(transparent)]
    EmailTaken(#[from] EmailTaken),
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

const USER_COLUMNS: &str =
    "id, email, password_hash, name, sex, introduction, created_at, updated_at";

fn email_taken(e: sqlx::Error) -> WriteUserError {
    match &e {
        sqlx::Error::Database(db) if db.constraint() == Some("users_email_key") => {
            EmailTaken.into()
        }
        _ => e.into(),
    }
}

pub async fn insert_user(
    db: impl PgExecutor<'_>,
    user: &NewUser<'_>,
) -> Result<UserRow, WriteUserError> {
    sqlx::query_as(&format!(
        "INSERT INTO account.users (email, password_hash, name, sex, introduction)
         VALUES ($1, $2, $3, $4, $5)
         RETURNING {USER_COLUMNS}"
    ))
    .bind(user.email)
    .bind(user.password_hash)
    .bind(user.name)
    .bind(user.sex)
    .bind(user.introduction)
    .fetch_one(db)
    .await
    .map_err(email_taken)
}

pub async fn user_by_id(db: &PgPool, id: i64) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS} FROM account.users WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await
}

/// Users by id, for a page's worth of authors at once.
pub async fn users_by_ids(db: &PgPool, ids: &[i64]) -> Result<Vec<UserRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS} FROM account.users WHERE id = ANY($1)"
    ))
    .bind(ids)
    .fetch_all(db)
    .await
}

/// Looks a user up by email, case-insensitively (the unique index serves it).
pub async fn user_by_email(db: &PgPool, email: &str) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS} FROM account.users WHERE lower(email) = lower($1)"
    ))
    .bind(email)
    .fetch_optional(db)
    .await
}

/// Changes the profile fields given (`None` keeps the current value). The email is not among
/// them: it changes only through a confirmed [`request_email_change`].
pub async fn update_profile(
    db: &PgPool,
    id: i64,
    name: Option<&str>,
    introduction: Option<&str>,
) -> Result<Option<UserRow>, WriteUserError> {
    sqlx::query_as(&format!(
        "UPDATE account.users
            SET name = coalesce($2, name),
                introduction = coalesce($3, introduction),
                updated_at = now()
          WHERE id = $1
          RETURNING {USER_COLUMNS}"
    ))
    .bind(id)
    .bind(name)
    .bind(introduction)
    .fetch_optional(db)
    .await
    .map_err(email_taken)
}

pub async fn set_password_hash(
    db: impl PgExecutor<'_>,
    id: i64,
    password_hash: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE account.users SET password_hash = $2, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(password_hash)
        .execute(db)
        .await?;
    Ok(())
}

/// How long a revoked sign-in is kept (for the record: when and why it ended) before it is
/// pruned like an expired one.
const REVOKED_KEPT: &str = "1 day";

/// A new sign-in, and the sign-ins it pushed out.
#[derive(Debug)]
pub struct Started {
    pub family_id: Uuid,
    /// The user's sign-ins deleted to stay within the cap: their ID tokens must stop too.
    pub ended: Vec<Uuid>,
}

/// Starts a sign-in: a new family with its first refresh token. A user holds at most
/// `max_per_user` sign-ins: beyond it, those that ended (expired or revoked) go first, then the
/// live ones refreshed longest ago — deleted, with their tokens, so that no number of logins
/// grows the tables. Logins of one user take turns (the user row's lock) so the cap holds
/// under concurrent ones.
pub async fn start_family(
    db: &PgPool,
    user_id: i64,
    token_hash: &[u8],
    expires_at: DateTime<Utc>,
    max_per_user: u32,
) -> Result<Started, sqlx::Error> {
    let family_id = Uuid::new_v4();
    let mut tx = db.begin().await?;
    sqlx::query("SELECT 1 FROM account.users WHERE id = $1 FOR NO KEY UPDATE")
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("INSERT INTO account.token_families (id, user_id, expires_at) VALUES ($1, $2, $3)")
        .bind(family_id)
        .bind(user_id)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
    insert_token(&mut *tx, family_id, token_hash, expires_at).await?;
    let ended = sqlx::query_scalar(
        "DELETE FROM account.token_families
          WHERE id IN (SELECT id FROM account.token_families
                        WHERE user_id = $1 AND id <> $2
                        ORDER BY (revoked_at IS NULL AND expires_at > now()) DESC,
                                 refreshed_at DESC, id
                       OFFSET $3)
          RETURNING id",
    )
    .bind(user_id)
    .bind(family_id)
    .bind(i64::from(max_per_user.saturating_sub(1)))
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Started { family_id, ended })
}

async fn insert_token(
    db: impl PgExecutor<'_>,
    family_id: Uuid,
    token_hash: &[u8],
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO account.refresh_tokens (token_hash, family_id, expires_at) VALUES ($1, $2, $3)",
    )
    .bind(token_hash)
    .bind(family_id)
    .bind(expires_at)
    .execute(db)
    .await?;
    Ok(())
}

/// What presenting a refresh token led to.
#[derive(Debug, PartialEq, Eq)]
pub enum Rotation {
    /// The token was live: it is now used, and `new_hash` is the family's live token.
    Rotated { user_id: i64, family_id: Uuid },
    /// The token had been rotated already: someone replayed it. The family is now revoked.
    ReuseDetected { user_id: i64, family_id: Uuid },
    /// Unknown, expired, or its family was revoked.
    Rejected,
}

/// How many of a sign-in's rotated (used) refresh tokens are kept for reuse detection.
pub const ROTATED_TOKENS_KEPT: i64 = 50;

/// Exchanges a refresh token for a new one in the same family, atomically: the family's row lock
/// (then the `UPDATE … WHERE used_at IS NULL`) lets one exchange of a token at a time in, so of
/// two concurrent exchanges of the same token exactly one finds it unused. The other sees a used
/// token, which is what a replay looks like, and revokes the family.
pub async fn rotate(
    db: &PgPool,
    token_hash: &[u8],
    new_hash: &[u8],
    new_expires_at: DateTime<Utc>,
) -> Result<Rotation, sqlx::Error> {
    let mut tx = db.begin().await?;
    // The family's row first, as a login that deletes it and the prune lock it before its
    // tokens: taking the token first could deadlock with them.
    let family: Option<Uuid> = sqlx::query_scalar(
        "SELECT f.id FROM account.refresh_tokens t
           JOIN account.token_families f ON f.id = t.family_id
          WHERE t.token_hash = $1
            FOR NO KEY UPDATE OF f",
    )
    .bind(token_hash)
    .fetch_optional(&mut *tx)
    .await?;
    if family.is_none() {
        return Ok(Rotation::Rejected);
    }
    let live: Option<(Uuid, i64)> = sqlx::query_as(
        "UPDATE account.refresh_tokens t
            SET used_at = now()
           FROM account.token_families f
          WHERE t.token_hash = $1
            AND t.used_at IS NULL
            AND t.expires_at > now()
            AND f.id = t.family_id
            AND f.revoked_at IS NULL
          RETURNING t.family_id, f.user_id",
    )
    .bind(token_hash)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some((family_id, user_id)) = live {
        insert_token(&mut *tx, family_id, new_hash, new_expires_at).await?;
        sqlx::query(
            "UPDATE account.token_families SET refreshed_at = now(), expires_at = $2 WHERE id = $1",
        )
        .bind(family_id)
        .bind(new_expires_at)
        .execute(&mut *tx)
        .await?;
        // Only the most recent rotated tokens are kept: presenting one of them again revokes
        // the sign-in; an older one is refused like any unknown token.
        sqlx::query(
            "DELETE FROM account.refresh_tokens
              WHERE family_id = $1 AND used_at IS NOT NULL
                AND token_hash NOT IN (SELECT token_hash FROM account.refresh_tokens
                                        WHERE family_id = $1 AND used_at IS NOT NULL
                                        ORDER BY used_at DESC LIMIT $2)",
        )
        .bind(family_id)
        .bind(ROTATED_TOKENS_KEPT)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        return Ok(Rotation::Rotated { user_id, family_id });
    }

    let used: Option<(Uuid, i64)> = sqlx::query_as(
        "SELECT t.family_id, f.user_id
           FROM account.refresh_tokens t JOIN account.token_families f ON f.id = t.family_id
          WHERE t.token_hash = $1 AND t.used_at IS NOT NULL",
    )
    .bind(token_hash)
    .fetch_optional(&mut *tx)
    .await?;
    let outcome = match used {
        Some((family_id, user_id)) => {
            revoke_family(&mut *tx, family_id, "reuse").await?;
            Rotation::ReuseDetected { user_id, family_id }
        }
        None => Rotation::Rejected,
    };
    tx.commit().await?;
    Ok(outcome)
}

/// The family a refresh token belongs to, whatever its state.
pub async fn family_of(db: &PgPool, token_hash: &[u8]) -> Result<Option<(Uuid, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT t.family_id, f.user_id
           FROM account.refresh_tokens t JOIN account.token_families f ON f.id = t.family_id
          WHERE t.token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(db)
    .await
}

/// Revokes a family; revoking a revoked one keeps its first reason. Returns whether it was live.
pub async fn revoke_family(
    db: impl PgExecutor<'_>,
    family_id: Uuid,
    why: &str,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "UPDATE account.token_families
            SET revoked_at = now(), revoked_why = $2,
                expires_at = least(expires_at, now() + $3::interval)
          WHERE id = $1 AND revoked_at IS NULL",
    )
    .bind(family_id)
    .bind(why)
    .bind(REVOKED_KEPT)
    .execute(db)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Revokes every live family of a user but `keep`; returns the revoked ids.
pub async fn revoke_other_families(
    db: impl PgExecutor<'_>,
    user_id: i64,
    keep: Option<Uuid>,
    why: &str,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE account.token_families
            SET revoked_at = now(), revoked_why = $3,
                expires_at = least(expires_at, now() + $4::interval)
          WHERE user_id = $1 AND revoked_at IS NULL AND id IS DISTINCT FROM $2
          RETURNING id",
    )
    .bind(user_id)
    .bind(keep)
    .bind(why)
    .bind(REVOKED_KEPT)
    .fetch_all(db)
    .await
}

/// Deletes up to `batch` sign-ins that ended — every token expired, or revoked a day ago —
/// with their tokens; returns how many. Replicas may prune at once: each skips the rows another
/// is deleting.
pub async fn prune_ended_sign_ins(db: &PgPool, batch: i64) -> Result<u64, sqlx::Error> {
    let deleted = sqlx::query(
        "DELETE FROM account.token_families
          WHERE id IN (SELECT id FROM account.token_families
                        WHERE expires_at < now()
                        ORDER BY expires_at
                        LIMIT $1
                        FOR UPDATE SKIP LOCKED)",
    )
    .bind(batch)
    .execute(db)
    .await?;
    Ok(deleted.rows_affected())
}

/// Records (or replaces) the user's pending email change: the address waits for the holder of
/// `token` (its hash is kept) until `expires_at`.
pub async fn request_email_change(
    db: &PgPool,
    user_id: i64,
    new_email: &str,
    token_hash: &[u8],
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO account.email_changes (user_id, new_email, token_hash, expires_at)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (user_id) DO UPDATE
            SET new_email = EXCLUDED.new_email, token_hash = EXCLUDED.token_hash,
                expires_at = EXCLUDED.expires_at, created_at = now()",
    )
    .bind(user_id)
    .bind(new_email)
    .bind(token_hash)
    .bind(expires_at)
    .execute(db)
    .await?;
    Ok(())
}

/// The address a user asked to change to, while the request is alive.
pub async fn pending_email(db: &PgPool, user_id: i64) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT new_email FROM account.email_changes WHERE user_id = $1 AND expires_at > now()",
    )
    .bind(user_id)
    .fetch_optional(db)
    .await
}

/// What confirming an email change came to.
#[derive(Debug)]
pub enum Confirmation {
    /// The user's address is the new one now; it was `old_email`.
    Changed { user: UserRow, old_email: String },
    /// No live request has this token (unknown, used, replaced or expired).
    Unknown,
    /// The address was registered by someone else meanwhile.
    Taken,
}

/// Applies the email change whose token hashes to `token_hash`, in one transaction with the
/// removal of the request (a token works once). The unique index decides a race for the
/// address.
pub async fn confirm_email_change(
    db: &PgPool,
    token_hash: &[u8],
) -> Result<Confirmation, sqlx::Error> {
    let mut tx = db.begin().await?;
    let pending: Option<(i64, String)> = sqlx::query_as(
        "DELETE FROM account.email_changes WHERE token_hash = $1 AND expires_at > now()
         RETURNING user_id, new_email",
    )
    .bind(token_hash)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((user_id, new_email)) = pending else {
        return Ok(Confirmation::Unknown);
    };
    let old_email: String =
        sqlx::query_scalar("SELECT email FROM account.users WHERE id = $1 FOR UPDATE")
            .bind(user_id)
            .fetch_one(&mut *tx)
            .await?;
    let changed = sqlx::query_as(&format!(
        "UPDATE account.users SET email = $2, updated_at = now() WHERE id = $1
         RETURNING {USER_COLUMNS}"
    ))
    .bind(user_id)
    .bind(&new_email)
    .fetch_one(&mut *tx)
    .await
    .map_err(email_taken);
    match changed {
        Ok(user) => {
            tx.commit().await?;
            Ok(Confirmation::Changed { user, old_email })
        }
        Err(WriteUserError::EmailTaken(_)) => {
            // The request goes too (the address will not become free for this user by
            // waiting), once the failed transaction has let go of its row.
            tx.rollback().await?;
            sqlx::query("DELETE FROM account.email_changes WHERE user_id = $1")
                .bind(user_id)
                .execute(db)
                .await?;
            Ok(Confirmation::Taken)
        }
        Err(WriteUserError::Sql(e)) => Err(e),
    }
}
