//! Accounts over GraphQL: createUser, login, refreshIDToken, logout, currentUser, user(id),
//! updateUser, updatePassword.

use super::USER_LISTS;
use super::applying::ApplyPost;
use super::board::Post;
use super::context::Guards;
use super::loaders::{ListOf, PostsOf, load, load_in_page, loaders};
use super::media::{Image, take_upload};
use super::scalars::Time;
use crate::error::{ApiResult, AppError, IntoGql};
use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject, Upload};
use fishapp_app::account::{ProfileChange, SignUp, TokenPair as Pair};
use fishapp_app::media::{Media, StoredImage};
use fishapp_domain::account::Sex as DomainSex;
use fishapp_store::account::UserRow;
use fishapp_store::board::PostVisibility;

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Sex {
    Male,
    Female,
}

impl From<Sex> for DomainSex {
    fn from(sex: Sex) -> Self {
        match sex {
            Sex::Male => DomainSex::Male,
            Sex::Female => DomainSex::Female,
        }
    }
}

pub(crate) struct User(pub(crate) UserRow);

impl User {
    /// A user by id through the request's loader (one statement for a whole page);
    /// NOT_FOUND with `missing` when there is none.
    pub(crate) async fn load(ctx: &Context<'_>, id: i64, missing: &str) -> ApiResult<User> {
        let users = &loaders(ctx).users;
        let loaded = load_in_page(ctx, |p| p.users.as_ref(), users, id).await?;
        loaded
            .map(User)
            .ok_or_else(|| AppError::NotFound(missing.to_owned()))
            .gql()
    }
}

#[Object]
impl User {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Visible to the user alone; `null` for anyone else.
    async fn email(&self, ctx: &Context<'_>) -> Option<&str> {
        let viewer = ctx.viewer_if_any().await?;
        (viewer.user_id == self.0.id).then_some(self.0.email.as_str())
    }

    /// The address `updateUser` asked to change to, until the link mailed to it is opened
    /// (`confirmEmailChange`) or expires. Visible to the user alone.
    async fn pending_email(&self, ctx: &Context<'_>) -> ApiResult<Option<String>> {
        let Some(viewer) = ctx.viewer_if_any().await else {
            return Ok(None);
        };
        if viewer.user_id != self.0.id {
            return Ok(None);
        }
        ctx.accounts().pending_email(self.0.id).await.gql()
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    /// What members said of the trips the user organised, summed up; `null` before any review.
    async fn organiser_rating(
        &self,
        ctx: &Context<'_>,
    ) -> ApiResult<Option<crate::graphql::review::Rating>> {
        crate::graphql::review::rating_of(ctx, self.0.id, fishapp_store::board::RatingOf::Organiser)
            .await
    }

    /// The user's trips: OPEN, CLOSED and COMPLETED ones for everyone, all but those being
    /// deleted for the user themself; newest first. `first`: at most that many (30 unless asked, up to 100).
    #[graphql(
        complexity = "crate::graphql::list_cost(crate::graphql::USER_LISTS.items(first), child_complexity)"
    )]
    async fn posts(&self, ctx: &Context<'_>, first: Option<i32>) -> ApiResult<Vec<Post>> {
        let limit = USER_LISTS.limit("first", first).gql()?;
        let own = ctx
            .viewer_if_any()
            .await
            .is_some_and(|viewer| viewer.user_id == self.0.id);
        let key = PostsOf {
            list: ListOf {
                id: self.0.id,
                limit,
            },
            visible: if own {
                PostVisibility::Owner
            } else {
                PostVisibility::Public
            },
        };
        let loaded = load(&loaders(ctx).posts_of_users, key).await?;
        Ok(loaded.unwrap_or_default().into_iter().map(Post).collect())
    }

    /// The trips the user applied to, newest application first: their seats, and for the user
    /// themself also their places in lines and their requests (see `ApplyPost.status`).
    /// `first`: at most that many (30 unless asked, up to 100).
    #[graphql(
        complexity = "crate::graphql::list_cost(crate::graphql::USER_LISTS.items(first), child_complexity)"
    )]
    async fn apply_posts(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
    ) -> ApiResult<Vec<ApplyPost>> {
        let limit = USER_LISTS.limit("first", first).gql()?;
        let key = ListOf {
            id: self.0.id,
            limit,
        };
        let own = ctx
            .viewer_if_any()
            .await
            .is_some_and(|viewer| viewer.user_id == self.0.id);
        let loader = if own {
            &loaders(ctx).own_applications
        } else {
            &loaders(ctx).applications_of_users
        };
        let loaded = load(loader, key).await?;
        Ok(loaded
            .unwrap_or_default()
            .into_iter()
            .map(ApplyPost)
            .collect())
    }

    async fn introduction(&self) -> &str {
        &self.0.introduction
    }

    async fn sex(&self) -> Sex {
        if self.0.sex == DomainSex::Female.as_str() {
            Sex::Female
        } else {
            Sex::Male
        }
    }

    /// The avatar, if any (loaded for every user of a page at once).
    async fn image(&self, ctx: &Context<'_>) -> ApiResult<Option<Image>> {
        let images = load(&loaders(ctx).user_images, self.0.id).await?;
        Ok(images.and_then(|mut images| images.pop()).map(Image))
    }

    async fn created_at(&self) -> Time {
        Time(self.0.created_at)
    }

    async fn updated_at(&self) -> Time {
        Time(self.0.updated_at)
    }
}

#[derive(SimpleObject)]
pub(crate) struct TokenPair {
    /// A signed JWT (EdDSA), valid for one hour: `Authorization: Bearer <idToken>`.
    id_token: String,
    /// Opaque, valid for ten days, single use: refreshIDToken rotates it.
    refresh_token: String,
}

impl From<Pair> for TokenPair {
    fn from(pair: Pair) -> Self {
        Self {
            id_token: pair.id_token,
            refresh_token: pair.refresh_token,
        }
    }
}

#[derive(SimpleObject)]
pub(crate) struct CreateUserPayload {
    user: User,
    token_pair: TokenPair,
}

#[derive(SimpleObject)]
pub(crate) struct LoginPayload {
    user: User,
    token_pair: TokenPair,
}

#[derive(SimpleObject)]
#[graphql(name = "RefreshIDTokenPayload")]
pub(crate) struct RefreshIdTokenPayload {
    token_pair: TokenPair,
}

#[derive(SimpleObject)]
pub(crate) struct LogoutPayload {
    success: bool,
}

#[derive(SimpleObject)]
pub(crate) struct UpdateUserPayload {
    user: User,
}

#[derive(SimpleObject)]
pub(crate) struct UpdatePasswordPayload {
    success: bool,
}

#[derive(InputObject)]
pub(crate) struct CreateUserInput {
    email: String,
    /// 8 to 128 characters of any kind; not one of the most common passwords.
    password: String,
    /// 1 to 10 characters.
    name: String,
    sex: Sex,
    /// 1 to 1000 characters.
    introduction: String,
    /// The avatar: JPEG, PNG, GIF or WebP.
    image: Option<Upload>,
}

#[derive(InputObject)]
pub(crate) struct LoginInput {
    email: String,
    password: String,
}

/// Fields left out keep their current value.
#[derive(InputObject)]
pub(crate) struct UpdateUserInput {
    email: Option<String>,
    name: Option<String>,
    introduction: Option<String>,
    /// A new avatar; the old one is deleted once the new one is stored.
    image: Option<Upload>,
}

#[derive(InputObject)]
pub(crate) struct ConfirmEmailChangeInput {
    /// The token of the link mailed to the new address.
    token: String,
}

#[derive(SimpleObject)]
pub(crate) struct ConfirmEmailChangePayload {
    user: User,
}

#[derive(InputObject)]
pub(crate) struct UpdatePasswordInput {
    old_password: String,
    new_password: String,
}

#[derive(Default)]
pub(crate) struct AccountQuery;

#[Object]
impl AccountQuery {
    /// The signed-in user, email included.
    async fn current_user(&self, ctx: &Context<'_>) -> ApiResult<User> {
        let viewer = ctx.viewer().await.gql()?;
        Ok(User(ctx.accounts().user(viewer.user_id).await.gql()?))
    }

    /// Anyone's public profile (email only to its owner).
    async fn user(&self, ctx: &Context<'_>, id: ID) -> ApiResult<User> {
        let id = parse_id("id", &id).gql()?;
        Ok(User(ctx.accounts().user(id).await.gql()?))
    }
}

#[derive(Default)]
pub(crate) struct AccountMutation;

#[Object]
impl AccountMutation {
    async fn create_user(
        &self,
        ctx: &Context<'_>,
        input: CreateUserInput,
    ) -> ApiResult<CreateUserPayload> {
        // Everything that can refuse the sign-up is checked before the avatar is processed.
        let checked = ctx
            .accounts()
            .check_sign_up(
                SignUp {
                    email: &input.email,
                    password: &input.password,
                    name: &input.name,
                    sex: input.sex.into(),
                    introduction: &input.introduction,
                },
                ctx.request().client_ip,
            )
            .await
            .gql()?;
        let avatar = ingest_avatar(ctx, None, input.image.as_ref()).await?;
        let signed_up = ctx.accounts().sign_up(checked, avatar.as_ref()).await;
        let (user, pair) = discard_on_error(ctx, avatar.as_ref(), signed_up).await?;
        Ok(CreateUserPayload {
            user: User(user),
            token_pair: pair.into(),
        })
    }

    async fn login(&self, ctx: &Context<'_>, input: LoginInput) -> ApiResult<LoginPayload> {
        let ip = ctx.request().client_ip;
        let (user, pair) = ctx
            .accounts()
            .login(&input.email, &input.password, ip)
            .await
            .gql()?;
        Ok(LoginPayload {
            user: User(user),
            token_pair: pair.into(),
        })
    }

    /// Exchanges the refresh token (in `Authorization: Bearer`, or as the argument) for a new
    /// pair; the old refresh token dies. Presenting a dead one ends that sign-in everywhere.
    #[graphql(name = "refreshIDToken")]
    async fn refresh_id_token(
        &self,
        ctx: &Context<'_>,
        refresh_token: Option<String>,
    ) -> ApiResult<RefreshIdTokenPayload> {
        let token = refresh_token_of(ctx, refresh_token.as_deref()).gql()?;
        let pair = ctx.accounts().refresh(&token).await.gql()?;
        Ok(RefreshIdTokenPayload {
            token_pair: pair.into(),
        })
    }

    /// Ends the sign-in of the refresh token (in `Authorization: Bearer`, or as the argument):
    /// its refresh tokens and every ID token issued for it stop working at once.
    async fn logout(
        &self,
        ctx: &Context<'_>,
        refresh_token: Option<String>,
    ) -> ApiResult<LogoutPayload> {
        let token = refresh_token_of(ctx, refresh_token.as_deref()).gql()?;
        // With the refresh token as the argument, the header may carry the ID token to revoke.
        let id_token = match refresh_token {
            Some(_) => ctx.viewer_if_any().await.map(|v| v.claims),
            None => None,
        };
        ctx.accounts()
            .logout(&token, id_token.as_ref())
            .await
            .gql()?;
        Ok(LogoutPayload { success: true })
    }

    /// Changes the profile: `name` and `introduction` at once; a new `email` only once the
    /// link mailed to it is opened (see `User.pendingEmail` and `confirmEmailChange`) — the
    /// answer is the same whether or not the address is registered. A field left out keeps its
    /// value.
    async fn update_user(
        &self,
        ctx: &Context<'_>,
        input: UpdateUserInput,
    ) -> ApiResult<UpdateUserPayload> {
        let viewer = ctx.viewer().await.gql()?;
        // Every field is checked before the avatar is processed.
        let change = ProfileChange::parse(
            input.email.as_deref(),
            input.name.as_deref(),
            input.introduction.as_deref(),
        )
        .gql()?;
        let avatar = ingest_avatar(ctx, Some(viewer.user_id), input.image.as_ref()).await?;
        let updated = ctx.accounts().update_profile(&viewer, change).await;
        let user = discard_on_error(ctx, avatar.as_ref(), updated).await?;
        if let Some(avatar) = &avatar {
            ctx.data_unchecked::<Media>()
                .set_avatar(viewer.user_id, avatar)
                .await
                .gql()?;
        }
        Ok(UpdateUserPayload { user: User(user) })
    }

    /// Makes the address an `updateUser` asked for the account's: the token of the link mailed to
    /// that address proves its mailbox (no sign-in needed). Works once, until the link expires.
    async fn confirm_email_change(
        &self,
        ctx: &Context<'_>,
        input: ConfirmEmailChangeInput,
    ) -> ApiResult<ConfirmEmailChangePayload> {
        let user = ctx
            .accounts()
            .confirm_email_change(&input.token)
            .await
            .gql()?;
        Ok(ConfirmEmailChangePayload { user: User(user) })
    }

    /// Changes the password; every other sign-in of the user ends.
    async fn update_password(
        &self,
        ctx: &Context<'_>,
        input: UpdatePasswordInput,
    ) -> ApiResult<UpdatePasswordPayload> {
        let viewer = ctx.viewer().await.gql()?;
        ctx.accounts()
            .update_password(&viewer, &input.old_password, &input.new_password)
            .await
            .gql()?;
        Ok(UpdatePasswordPayload { success: true })
    }
}

/// Checks, processes and stores an avatar upload (no row yet): a signed-in user's within their
/// image limit, a sign-up's within the sign-up limit.
async fn ingest_avatar(
    ctx: &Context<'_>,
    uploader: Option<i64>,
    upload: Option<&Upload>,
) -> ApiResult<Option<StoredImage>> {
    let Some(upload) = upload else {
        return Ok(None);
    };
    let value = take_upload(ctx, "image", upload).gql()?;
    let media = ctx.data_unchecked::<Media>();
    let stored = match uploader {
        Some(user_id) => media.ingest_by(user_id, "image", value).await,
        None => media.ingest("image", value).await,
    };
    Ok(Some(stored.gql()?))
}

/// A stored avatar that nothing will record (the operation failed) is deleted again.
async fn discard_on_error<T>(
    ctx: &Context<'_>,
    avatar: Option<&StoredImage>,
    result: Result<T, AppError>,
) -> ApiResult<T> {
    if result.is_err()
        && let Some(avatar) = avatar
    {
        ctx.data_unchecked::<Media>().discard(avatar).await;
    }
    result.gql()
}

fn refresh_token_of(ctx: &Context<'_>, argument: Option<&str>) -> Result<String, AppError> {
    argument
        .or(ctx.request().bearer.as_deref())
        .map(str::to_owned)
        .ok_or_else(|| {
            AppError::Unauthenticated(
                "no refresh token: send it as `Authorization: Bearer <refreshToken>`".to_owned(),
            )
        })
}

pub(crate) fn parse_id(field: &str, id: &ID) -> Result<i64, AppError> {
    id.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| AppError::bad_input(field, format!("{field} is not a valid id")))
}
