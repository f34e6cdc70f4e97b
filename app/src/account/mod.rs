//! The account context's behaviour: sign-up, login, token rotation and revocation, password
//! changes. Single-context writes, so they go straight through the store (no workflow).

pub mod limits;
mod mails;
pub mod passwords;
pub mod tokens;

use crate::cache::{Redis, WindowLimiter};
use crate::error::AppError;
use crate::media::StoredImage;
use chrono::{Duration, Utc};
use fishapp_domain::account::{Email, Introduction, NewPassword, PasswordAttempt, Sex, UserName};
use fishapp_domain::media::ImageOwner;
use fishapp_mail::Mailer;
use fishapp_store::Database;
use fishapp_store::account::{self as store, NewUser, Rotation, UserRow, WriteUserError};
use fishapp_store::media as media_store;
use limits::{Denylist, LoginLimiter, LoginLimits, Refused};
use passwords::{Passwords, Verdict};
use std::net::IpAddr;
use tokens::{IdClaims, TokenKeys, new_opaque_token, opaque_token_hash};
use uuid::Uuid;

/// What the account context needs from configuration.
#[derive(Clone)]
pub struct AuthSettings {
    pub keys: TokenKeys,
    pub refresh_token_ttl: std::time::Duration,
    /// Sign-ins one user may hold at once; a new one beyond it ends the least recently
    /// refreshed.
    pub max_sign_ins_per_user: u32,
    pub login_limits: LoginLimits,
    /// Hashes at most at once (0: one core fewer than the machine has, at least 1).
    pub password_hashing_concurrency: usize,
    /// The hashing threads' scheduling priority (nice; 0: the process's own).
    pub password_hashing_nice: i32,
    /// Prefix of every Redis key (lets deployments — and tests — share one Redis).
    pub redis_key_prefix: String,
    /// Sign-ups one client address may make per hour.
    pub max_sign_ups_per_ip_per_hour: u32,
    /// Password changes (attempts, right or wrong) one user may make per hour: a stolen ID
    /// token must not become an oracle for the old password.
    pub max_password_changes_per_hour: u32,
    pub email_change: EmailChangeSettings,
}

/// How an email change is confirmed: a mail to the new address with a link that carries a
/// one-time token.
#[derive(Clone, Debug)]
pub struct EmailChangeSettings {
    /// The confirmation link, with `{token}` where the token goes (a page of the front end,
    /// which calls `confirmEmailChange`).
    pub confirm_url: String,
    /// How long a request can be confirmed.
    pub ttl: std::time::Duration,
    /// Requests one user may make per day.
    pub max_per_day: u32,
}

/// A freshly issued ID token and refresh token.
pub struct TokenPair {
    pub id_token: String,
    pub refresh_token: String,
}

/// The signed-in caller of a request.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub user_id: i64,
    pub claims: IdClaims,
}

pub struct SignUp<'a> {
    pub email: &'a str,
    pub password: &'a str,
    pub name: &'a str,
    pub sex: Sex,
    pub introduction: &'a str,
}

/// A sign-up whose fields passed their checks, from a client within its limit, for an email that
/// was free when checked: [`Accounts::sign_up`] takes only this, so that an avatar is processed
/// only for a sign-up that can succeed.
pub struct CheckedSignUp {
    email: Email,
    password: NewPassword,
    name: UserName,
    sex: Sex,
    introduction: Introduction,
}

/// updateUser's fields, each parsed; a field left out keeps its value.
pub struct ProfileChange {
    email: Option<Email>,
    name: Option<UserName>,
    introduction: Option<Introduction>,
}

impl ProfileChange {
    pub fn parse(
        email: Option<&str>,
        name: Option<&str>,
        introduction: Option<&str>,
    ) -> Result<Self, AppError> {
        Ok(Self {
            email: email.map(|e| Email::parse("email", e)).transpose()?,
            name: name.map(|n| UserName::parse("name", n)).transpose()?,
            introduction: introduction
                .map(|i| Introduction::parse("introduction", i))
                .transpose()?,
        })
    }
}

/// No email address is longer (RFC 5321's path limit); a longer one cannot be an account.
const MAX_EMAIL_BYTES: usize = 254;

const BAD_CREDENTIALS: &str = "email or password is incorrect";
const BAD_REFRESH_TOKEN: &str = "the refresh token is invalid, expired or revoked; sign in again";

#[derive(Clone)]
pub struct Accounts {
    db: Database,
    mailer: Mailer,
    email_change: EmailChangeSettings,
    email_changes: WindowLimiter,
    passwords: Passwords,
    keys: TokenKeys,
    denylist: Denylist,
    limiter: LoginLimiter,
    sign_ups: WindowLimiter,
    password_changes: WindowLimiter,
    refresh_token_ttl: Duration,
    max_sign_ins_per_user: u32,
}

/// The window of the sign-up and password-change limits.
const HOUR: std::time::Duration = std::time::Duration::from_secs(3600);
/// The window of the email-change limit.
const DAY: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

impl Accounts {
    pub async fn new(
        db: Database,
        redis: Redis,
        mailer: Mailer,
        settings: AuthSettings,
    ) -> Result<Self, passwords::PasswordError> {
        let id_ttl = settings
            .keys
            .id_token_ttl()
            .to_std()
            .unwrap_or(std::time::Duration::from_secs(3600));
        Ok(Self {
            passwords: Passwords::new(
                settings.password_hashing_concurrency,
                settings.password_hashing_nice,
            )
            .await?,
            denylist: Denylist::new(redis.clone(), &settings.redis_key_prefix, id_ttl),
            sign_ups: WindowLimiter::new(
                redis.clone(),
                format!("{}:sign-ups", settings.redis_key_prefix),
                settings.max_sign_ups_per_ip_per_hour,
                HOUR,
            ),
            password_changes: WindowLimiter::new(
                redis.clone(),
                format!("{}:password-changes", settings.redis_key_prefix),
                settings.max_password_changes_per_hour,
                HOUR,
            ),
            limiter: LoginLimiter::new(
                redis.clone(),
                &settings.redis_key_prefix,
                settings.login_limits,
            ),
            email_changes: WindowLimiter::new(
                redis,
                format!("{}:email-changes", settings.redis_key_prefix),
                settings.email_change.max_per_day,
                DAY,
            ),
            mailer,
            email_change: settings.email_change,
            refresh_token_ttl: Duration::from_std(settings.refresh_token_ttl)
                .unwrap_or(Duration::days(10)),
            max_sign_ins_per_user: settings.max_sign_ins_per_user,
            keys: settings.keys,
            db,
        })
    }

    pub fn keys(&self) -> &TokenKeys {
        &self.keys
    }

    /// Everything a sign-up can be refused for before its avatar is processed: the client's
    /// sign-up limit, each field, and an email already registered.
    pub async fn check_sign_up(
        &self,
        input: SignUp<'_>,
        ip: IpAddr,
    ) -> Result<CheckedSignUp, AppError> {
        self.sign_ups.check(&limits::limit_key(ip)).await?;
        let checked = CheckedSignUp {
            email: Email::parse("email", input.email)?,
            password: NewPassword::parse("password", input.password)?,
            name: UserName::parse("name", input.name)?,
            sex: input.sex,
            introduction: Introduction::parse("introduction", input.introduction)?,
        };
        if store::user_by_email(self.db.pool(), checked.email.as_str())
            .await?
            .is_some()
        {
            return Err(email_already_registered());
        }
        Ok(checked)
    }

    /// Creates the account, with its avatar (already processed and stored) recorded in the same
    /// transaction: the account exists with its avatar or not at all.
    pub async fn sign_up(
        &self,
        input: CheckedSignUp,
        avatar: Option<&StoredImage>,
    ) -> Result<(UserRow, TokenPair), AppError> {
        let CheckedSignUp {
            email,
            password,
            name,
            sex,
            introduction,
        } = input;
        let hash = self
            .passwords
            .hash(password.expose())
            .await
            .map_err(AppError::internal)?;
        let mut tx = self.db.pool().begin().await?;
        let user = store::insert_user(
            &mut *tx,
            &NewUser {
                email: email.as_str(),
                password_hash: &hash,
                name: name.as_str(),
                sex: sex.as_str(),
                introduction: introduction.as_str(),
            },
        )
        .await
        .map_err(email_taken)?;
        if let Some(avatar) = avatar {
            media_store::insert_image(
                &mut *tx,
                &avatar.as_new(Some(ImageOwner::User(user.id)), Some(user.id)),
            )
            .await?;
        }
        tx.commit().await?;
        tracing::info!(user_id = user.id, "user signed up");
        let pair = self.start_sign_in(user.id).await?;
        Ok((user, pair))
    }

    /// One error for an unknown email and a wrong password, after the same work.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        ip: IpAddr,
    ) -> Result<(UserRow, TokenPair), AppError> {
        // Bounded before anything is counted or hashed: the email keys the login limits in
        // Redis, the password goes to argon2.
        if email.len() > MAX_EMAIL_BYTES {
            return Err(AppError::Unauthenticated(BAD_CREDENTIALS.to_owned()));
        }
        let password = PasswordAttempt::parse("password", password)?.expose();
        let account = email.trim().to_lowercase();
        let attempt = match self.limiter.attempt(&account, ip).await {
            Ok(attempt) => attempt,
            Err(Refused::Wait(retry_after_seconds)) => {
                return Err(AppError::RateLimited {
                    retry_after_seconds,
                });
            }
            Err(Refused::Unavailable(e)) => return Err(e.into()),
        };
        let user = store::user_by_email(self.db.pool(), &account).await?;
        let verdict = self
            .passwords
            .verify(password, user.as_ref().map(|u| u.password_hash.as_str()))
            .await
            .map_err(AppError::internal)?;
        // A wrong password was counted when the attempt was admitted.
        let (user, rehash) = match (user, verdict) {
            (Some(user), Verdict::Right { rehash }) => (user, rehash),
            _ => return Err(AppError::Unauthenticated(BAD_CREDENTIALS.to_owned())),
        };
        self.limiter.succeeded(attempt).await?;
        if rehash {
            let hash = self
                .passwords
                .hash(password)
                .await
                .map_err(AppError::internal)?;
            store::set_password_hash(self.db.pool(), user.id, &hash).await?;
            tracing::info!(
                user_id = user.id,
                "password rehashed with current parameters"
            );
        }
        let pair = self.start_sign_in(user.id).await?;
        Ok((user, pair))
    }

    /// Rotates a refresh token. Presenting one that was already rotated revokes its family.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair, AppError> {
        let new_token = new_opaque_token();
        let rotation = store::rotate(
            self.db.pool(),
            &opaque_token_hash(refresh_token),
            &opaque_token_hash(&new_token),
            Utc::now() + self.refresh_token_ttl,
        )
        .await?;
        match rotation {
            Rotation::Rotated { user_id, family_id } => Ok(TokenPair {
                id_token: self.issue_id_token(user_id, family_id)?,
                refresh_token: new_token,
            }),
            Rotation::ReuseDetected { user_id, family_id } => {
                tracing::warn!(user_id, %family_id, "refresh token reused; its sign-in is revoked");
                self.denylist.deny(None, &[family_id]).await?;
                Err(AppError::Unauthenticated(BAD_REFRESH_TOKEN.to_owned()))
            }
            Rotation::Rejected => Err(AppError::Unauthenticated(BAD_REFRESH_TOKEN.to_owned())),
        }
    }

    /// Ends the sign-in the refresh token belongs to, and with it every ID token issued for it
    /// (and `id_token` itself, when the caller presented one).
    pub async fn logout(
        &self,
        refresh_token: &str,
        id_token: Option<&IdClaims>,
    ) -> Result<(), AppError> {
        let Some((family_id, user_id)) =
            store::family_of(self.db.pool(), &opaque_token_hash(refresh_token)).await?
        else {
            return Err(AppError::Unauthenticated(BAD_REFRESH_TOKEN.to_owned()));
        };
        store::revoke_family(self.db.pool(), family_id, "logout").await?;
        self.denylist
            .deny(id_token.map(|c| c.jti), &[family_id])
            .await?;
        tracing::info!(user_id, "signed out");
        Ok(())
    }

    /// Verifies an ID token: signature, claims, and that it was not revoked.
    pub async fn authenticate(&self, id_token: &str) -> Result<Viewer, AppError> {
        let claims = self.keys.verify(id_token).map_err(|e| {
            tracing::debug!(error = %e, "ID token refused");
            AppError::Unauthenticated("the ID token is invalid or expired".to_owned())
        })?;
        if self.denylist.is_denied(claims.jti, claims.fid).await? {
            return Err(AppError::Unauthenticated(
                "the ID token was revoked; sign in again".to_owned(),
            ));
        }
        let user_id = claims.sub.parse().map_err(|_| {
            AppError::Unauthenticated("the ID token is invalid or expired".to_owned())
        })?;
        Ok(Viewer { user_id, claims })
    }

    /// Changes the password and ends every other sign-in of the user.
    pub async fn update_password(
        &self,
        viewer: &Viewer,
        old: &str,
        new: &str,
    ) -> Result<(), AppError> {
        let old = PasswordAttempt::parse("oldPassword", old)?.expose();
        let new = NewPassword::parse("newPassword", new)?;
        self.password_changes
            .check(&viewer.user_id.to_string())
            .await?;
        let user = self.user(viewer.user_id).await?;
        if self
            .passwords
            .verify(old, Some(&user.password_hash))
            .await
            .map_err(AppError::internal)?
            == Verdict::Wrong
        {
            return Err(AppError::bad_input(
                "oldPassword",
                "oldPassword is incorrect",
            ));
        }
        let hash = self
            .passwords
            .hash(new.expose())
            .await
            .map_err(AppError::internal)?;
        let mut tx = self.db.pool().begin().await?;
        store::set_password_hash(&mut *tx, user.id, &hash).await?;
        let revoked = store::revoke_other_families(
            &mut *tx,
            user.id,
            Some(viewer.claims.fid),
            "password_change",
        )
        .await?;
        tx.commit().await?;
        self.denylist.deny(None, &revoked).await?;
        tracing::info!(
            user_id = user.id,
            revoked_sign_ins = revoked.len(),
            "password changed"
        );
        Ok(())
    }

    /// Changes the name and introduction at once; a new email address only once it is
    /// confirmed ([`Accounts::request_email_change`]).
    pub async fn update_profile(
        &self,
        viewer: &Viewer,
        change: ProfileChange,
    ) -> Result<UserRow, AppError> {
        let ProfileChange {
            email,
            name,
            introduction,
        } = change;
        let current = self.user(viewer.user_id).await?;
        if let Some(email) = email.filter(|e| e.normalized() != current.email.to_lowercase()) {
            self.request_email_change(&current, &email).await?;
        }
        if name.is_none() && introduction.is_none() {
            return Ok(current);
        }
        store::update_profile(
            self.db.pool(),
            viewer.user_id,
            name.as_ref().map(UserName::as_str),
            introduction.as_ref().map(Introduction::as_str),
        )
        .await
        .map_err(email_taken)?
        .ok_or_else(|| AppError::NotFound("user not found".to_owned()))
    }

    /// Asks the holder of `email` to confirm it as `user`'s new address. The answer is the same
    /// whether the address is free or already someone's — both get a request and a mail, and
    /// the mail alone says which (only the mailbox's owner learns it) — so this is no oracle
    /// for registered addresses, and nobody claims an address without reading its mail.
    async fn request_email_change(&self, user: &UserRow, email: &Email) -> Result<(), AppError> {
        if !self.mailer.is_on() {
            return Err(AppError::Unavailable(
                "email addresses cannot be changed here: this server sends no mail".to_owned(),
            ));
        }
        self.email_changes.check(&user.id.to_string()).await?;
        let token = new_opaque_token();
        let ttl = Duration::from_std(self.email_change.ttl).unwrap_or(Duration::days(1));
        store::request_email_change(
            self.db.pool(),
            user.id,
            email.as_str(),
            &opaque_token_hash(&token),
            Utc::now() + ttl,
        )
        .await?;
        let taken = store::user_by_email(self.db.pool(), email.as_str())
            .await?
            .is_some();
        let mail = if taken {
            mails::address_in_use(email.as_str())
        } else {
            let link = self.email_change.confirm_url.replace("{token}", &token);
            mails::confirm_address(email.as_str(), &user.name, &link, ttl)
        };
        self.mailer.send(&mail).await.map_err(|e| {
            tracing::warn!(user_id = user.id, error = %e, "the confirmation mail was not sent");
            AppError::Unavailable(
                "the confirmation mail could not be sent; try again shortly".to_owned(),
            )
        })?;
        tracing::info!(user_id = user.id, "email change requested");
        Ok(())
    }

    /// The address `user_id` asked to change to, while its request is alive.
    pub async fn pending_email(&self, user_id: i64) -> Result<Option<String>, AppError> {
        Ok(store::pending_email(self.db.pool(), user_id).await?)
    }

    /// Makes a requested address the user's, for whoever holds the mailed token (the token is
    /// the proof of the mailbox; no sign-in is needed). The old address is told.
    pub async fn confirm_email_change(&self, token: &str) -> Result<UserRow, AppError> {
        let token_hash = confirmation_hash(token)?;
        let user = match store::confirm_email_change(self.db.pool(), &token_hash).await? {
            store::Confirmation::Changed { user, old_email } => {
                // Best effort: the change is made; a lost notice is logged, not an error.
                let notice = mails::address_changed(&old_email, &user.email);
                if let Err(e) = self.mailer.send(&notice).await {
                    tracing::warn!(user_id = user.id, error = %e, "the change notice was not sent");
                }
                user
            }
            store::Confirmation::Unknown => return Err(unknown_confirmation()),
            store::Confirmation::Taken => return Err(email_already_registered()),
        };
        tracing::info!(user_id = user.id, "email changed");
        Ok(user)
    }

    pub async fn user(&self, id: i64) -> Result<UserRow, AppError> {
        store::user_by_id(self.db.pool(), id)
            .await?
            .ok_or_else(|| AppError::NotFound("user not found".to_owned()))
    }

    async fn start_sign_in(&self, user_id: i64) -> Result<TokenPair, AppError> {
        let refresh_token = new_opaque_token();
        let started = store::start_family(
            self.db.pool(),
            user_id,
            &opaque_token_hash(&refresh_token),
            Utc::now() + self.refresh_token_ttl,
            self.max_sign_ins_per_user,
        )
        .await?;
        if !started.ended.is_empty() {
            self.denylist.deny(None, &started.ended).await?;
            tracing::info!(
                user_id,
                deleted_sign_ins = started.ended.len(),
                "sign-ins beyond the per-user cap deleted (ended ones first, then the least recently refreshed)"
            );
        }
        Ok(TokenPair {
            id_token: self.issue_id_token(user_id, started.family_id)?,
            refresh_token,
        })
    }

    /// Deletes every sign-in that ended (its tokens all expired, or revoked a day ago), in
    /// batches; returns how many.
    pub async fn prune_ended_sign_ins(&self) -> Result<u64, AppError> {
        const BATCH: i64 = 1_000;
        let mut pruned = 0;
        loop {
            let deleted = store::prune_ended_sign_ins(self.db.pool(), BATCH).await?;
            pruned += deleted;
            if deleted < BATCH as u64 {
                return Ok(pruned);
            }
        }
    }

    /// Prunes ended sign-ins every `every` until `shutdown`. Each API process runs it; they
    /// skip each other's rows.
    pub async fn prune_sign_ins_forever(
        &self,
        every: std::time::Duration,
        shutdown: tokio_util::sync::CancellationToken,
    ) {
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = interval.tick() => {}
            }
            match self.prune_ended_sign_ins().await {
                Ok(0) => {}
                Ok(pruned) => tracing::info!(pruned, "ended sign-ins deleted"),
                Err(e) => tracing::warn!(error = %e, "cannot prune ended sign-ins; next time"),
            }
        }
    }

    fn issue_id_token(&self, user_id: i64, family: Uuid) -> Result<String, AppError> {
        self.keys
            .issue(user_id, family, Utc::now())
            .map(|issued| issued.token)
            .map_err(AppError::internal)
    }
}

/// What a mailed confirmation (`input.token`) that is unknown, used or expired gets.
pub(crate) fn unknown_confirmation() -> AppError {
    AppError::bad_input(
        "input.token",
        "this confirmation is unknown, already used or expired",
    )
}

/// The stored hash of a mailed confirmation token; a string much longer than a token (43
/// characters) is none, and is not hashed.
pub(crate) fn confirmation_hash(token: &str) -> Result<Vec<u8>, AppError> {
    if token.len() > 64 {
        return Err(unknown_confirmation());
    }
    Ok(opaque_token_hash(token))
}

fn email_already_registered() -> AppError {
    AppError::bad_input("email", "email is already registered")
}

fn email_taken(e: WriteUserError) -> AppError {
    match e {
        WriteUserError::EmailTaken(_) => email_already_registered(),
        WriteUserError::Sql(e) => e.into(),
    }
}
