//! Dataloaders: every nested field of a list (a post's author, images, fish types, an author's
//! avatar) is loaded for the whole page in one statement. Made per request, so nothing is cached
//! across requests.

use crate::error::ApiResult;
use crate::error::AppError;
use async_graphql::dataloader::{DataLoader, Loader};
use fishapp_domain::board::ApplicationStatus;
use fishapp_domain::media::OwnerType;
use fishapp_store::Database;
use fishapp_store::account::{self, UserRow};
use fishapp_store::board::{self, ApplicationRow, PostRow};
use fishapp_store::chat::{self, MemberRow};
use fishapp_store::media::{self, ImageRow};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};

pub(crate) struct Loaders {
    pub users: DataLoader<UserLoader>,
    /// A post's images, in upload order.
    pub post_images: DataLoader<ImagesLoader>,
    /// A user's images: the avatar is the last.
    pub user_images: DataLoader<ImagesLoader>,
    /// A message's image (one at most).
    pub message_images: DataLoader<ImagesLoader>,
    /// A room's members, oldest first (as many as the field asked for).
    pub members: DataLoader<MembersLoader>,
    pub fish_types: DataLoader<FishTypesLoader>,
    pub posts: DataLoader<PostLoader>,
    /// A post's applications, oldest first (as many as the field asked for).
    pub applications: DataLoader<ApplicationsInLoader>,
    /// A user's seats, newest first (as many as the field asked for).
    pub applications_of_users: DataLoader<UserApplicationsLoader>,
    /// The same with the user's places in lines and requests: for the user themself.
    pub own_applications: DataLoader<UserApplicationsLoader>,
    /// A trip's line, first in line first (as many as the field asked for).
    pub waitlists: DataLoader<ApplicationsInLoader>,
    /// Requests to a trip's organiser, oldest first (as many as the field asked for).
    pub requests: DataLoader<ApplicationsInLoader>,
    /// Those removed from a trip, newest first (as many as the field asked for).
    pub removals: DataLoader<RemovalsLoader>,
    /// One user's application to a post, if any (keys: post id, user id).
    pub application_of: DataLoader<ApplicationOfLoader>,
    /// An application's place in its trip's line, while it is in one.
    pub waitlist_positions: DataLoader<WaitlistPositionLoader>,
    /// A user's posts as the reader may see them, newest first (as many as the field asked for).
    pub posts_of_users: DataLoader<UserPostsLoader>,
    /// A trip's newest reviews (as many as the field asked for, and one more).
    pub reviews: DataLoader<ReviewsLoader>,
    /// One user's review of a post, if any (keys: post id, user id).
    pub review_of: DataLoader<ReviewOfLoader>,
    /// A trip's rating, when it has reviews.
    pub post_ratings: DataLoader<RatingLoader>,
    /// A user's rating as an organiser, when their trips have reviews.
    pub organiser_ratings: DataLoader<RatingLoader>,
    /// The nested data of the request's page of posts, when `posts` loaded it in one go.
    pub page: OnceLock<Page>,
}

impl Loaders {
    pub(crate) fn new(db: &Database) -> Self {
        let images_of = |kind| DataLoader::new(ImagesLoader(db.clone(), kind), tokio::spawn);
        Self {
            users: DataLoader::new(UserLoader(db.clone()), tokio::spawn),
            post_images: images_of(OwnerType::Post),
            user_images: images_of(OwnerType::User),
            message_images: images_of(OwnerType::Message),
            members: DataLoader::new(MembersLoader(db.clone()), tokio::spawn),
            fish_types: DataLoader::new(FishTypesLoader(db.clone()), tokio::spawn),
            posts: DataLoader::new(PostLoader(db.clone()), tokio::spawn),
            applications: DataLoader::new(
                ApplicationsInLoader(db.clone(), ApplicationStatus::Applied),
                tokio::spawn,
            ),
            applications_of_users: DataLoader::new(
                UserApplicationsLoader(db.clone(), false),
                tokio::spawn,
            ),
            own_applications: DataLoader::new(
                UserApplicationsLoader(db.clone(), true),
                tokio::spawn,
            ),
            waitlists: DataLoader::new(
                ApplicationsInLoader(db.clone(), ApplicationStatus::Waitlisted),
                tokio::spawn,
            ),
            requests: DataLoader::new(
                ApplicationsInLoader(db.clone(), ApplicationStatus::PendingApproval),
                tokio::spawn,
            ),
            removals: DataLoader::new(RemovalsLoader(db.clone()), tokio::spawn),
            application_of: DataLoader::new(ApplicationOfLoader(db.clone()), tokio::spawn),
            waitlist_positions: DataLoader::new(WaitlistPositionLoader(db.clone()), tokio::spawn),
            posts_of_users: DataLoader::new(UserPostsLoader(db.clone()), tokio::spawn),
            reviews: DataLoader::new(ReviewsLoader(db.clone()), tokio::spawn),
            review_of: DataLoader::new(ReviewOfLoader(db.clone()), tokio::spawn),
            post_ratings: DataLoader::new(
                RatingLoader(db.clone(), board::RatingOf::Trip),
                tokio::spawn,
            ),
            organiser_ratings: DataLoader::new(
                RatingLoader(db.clone(), board::RatingOf::Organiser),
                tokio::spawn,
            ),
            page: OnceLock::new(),
        }
    }
}

/// Values a loader's own statement loaded for a set of keys ahead of time: the same answer
/// `load_one` would give for those keys, without 30 `load_one` calls and a batch task per page.
pub(crate) struct Prefetched<V> {
    keys: HashSet<i64>,
    values: HashMap<i64, V>,
}

impl<V> Prefetched<V> {
    /// The loader's answer for `key` if it was among the keys loaded; `None` for any other key
    /// (ask the loader).
    pub(crate) fn get(&self, key: i64) -> Option<Option<&V>> {
        self.keys.contains(&key).then(|| self.values.get(&key))
    }

    async fn load<L>(loader: &DataLoader<L>, keys: Vec<i64>) -> ApiResult<Self>
    where
        L: Loader<i64, Value = V, Error = LoadError>,
    {
        use crate::error::IntoGql;
        let mut keys = keys;
        keys.sort_unstable();
        keys.dedup();
        let values = loader
            .loader()
            .load(&keys)
            .await
            .map_err(|e| load_error(&e))
            .gql()?;
        Ok(Self {
            keys: keys.into_iter().collect(),
            values,
        })
    }
}

/// A page of posts' authors, images and fish types, each loaded only when the query selects it.
/// Through the loaders a page is the same statements, but 30 `load_one` calls per field, each
/// batch a spawned task after the loader's delay: a sizeable part of a listing's cost
/// (docs/benchmarks.md).
#[derive(Default)]
pub(crate) struct Page {
    pub users: Option<Prefetched<UserRow>>,
    pub images: Option<Prefetched<Vec<ImageRow>>>,
    pub fish_types: Option<Prefetched<Vec<i16>>>,
}

/// What of a page's nested data the query selects.
pub(crate) struct PageSelection {
    pub users: bool,
    pub images: bool,
    pub fish_types: bool,
}

impl PageSelection {
    /// What a post's own selection (`post`: its look-ahead) asks for.
    pub(crate) fn of(post: &async_graphql::Lookahead<'_>) -> Self {
        Self {
            users: post.field("user").exists(),
            images: post.field("images").exists(),
            fish_types: post.field("fishTypeIds").exists(),
        }
    }
}

impl Page {
    /// Loads what `selected` asks for the posts `rows`, the statements side by side (none for
    /// an empty page).
    pub(crate) async fn load(
        loaders: &Loaders,
        rows: &[PostRow],
        selected: PageSelection,
    ) -> ApiResult<Self> {
        async fn when<L>(
            wanted: bool,
            loader: &DataLoader<L>,
            keys: impl FnOnce() -> Vec<i64>,
        ) -> ApiResult<Option<Prefetched<L::Value>>>
        where
            L: Loader<i64, Error = LoadError>,
        {
            match wanted {
                true => Prefetched::load(loader, keys()).await.map(Some),
                false => Ok(None),
            }
        }
        let any = !rows.is_empty();
        let ids = || rows.iter().map(|p| p.id).collect();
        let (users, images, fish_types) = futures::join!(
            when(any && selected.users, &loaders.users, || rows
                .iter()
                .map(|p| p.user_id)
                .collect()),
            when(any && selected.images, &loaders.post_images, ids),
            when(any && selected.fish_types, &loaders.fish_types, ids),
        );
        Ok(Self {
            users: users?,
            images: images?,
            fish_types: fish_types?,
        })
    }
}

/// `key`'s value from the request's page where the page loaded it (`in_page` picks which of
/// its values), else through `loader`.
pub(crate) async fn load_in_page<L>(
    ctx: &async_graphql::Context<'_>,
    in_page: impl FnOnce(&Page) -> Option<&Prefetched<L::Value>>,
    loader: &DataLoader<L>,
    key: i64,
) -> ApiResult<Option<L::Value>>
where
    L: Loader<i64, Error = LoadError>,
{
    let prefetched = loaders(ctx).page.get().and_then(in_page);
    match prefetched.and_then(|p| p.get(key)) {
        Some(value) => Ok(value.cloned()),
        None => load(loader, key).await,
    }
}

/// Loader errors must be cloneable: the same failure answers every key of the batch.
pub(crate) type LoadError = Arc<sqlx::Error>;

/// The request's loaders.
pub(crate) fn loaders<'a>(ctx: &'a async_graphql::Context<'_>) -> &'a Loaders {
    ctx.data_unchecked::<Loaders>()
}

/// One key's value through a loader (batched with every other key asked in the same tick).
pub(crate) async fn load<K, L>(
    loader: &DataLoader<L>,
    key: K,
) -> crate::error::ApiResult<Option<L::Value>>
where
    K: Send + Sync + std::hash::Hash + Eq + Clone + 'static,
    L: Loader<K, Error = LoadError>,
{
    use crate::error::IntoGql;
    loader.load_one(key).await.map_err(|e| load_error(&e)).gql()
}

/// A loader's failure as the API's error: reported as the database error it was.
fn load_error(e: &LoadError) -> AppError {
    AppError::from(match e.as_ref() {
        sqlx::Error::PoolTimedOut => sqlx::Error::PoolTimedOut,
        sqlx::Error::PoolClosed => sqlx::Error::PoolClosed,
        other => sqlx::Error::Protocol(other.to_string()),
    })
}

pub(crate) struct UserLoader(Database);

/// Ratings by trip or by organiser.
pub(crate) struct RatingLoader(Database, board::RatingOf);

impl Loader<i64> for RatingLoader {
    type Value = board::RatingSummary;
    type Error = LoadError;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, LoadError> {
        Ok(board::ratings(self.0.pool(), self.1, keys).await?)
    }
}

impl Loader<i64> for UserLoader {
    type Value = UserRow;
    type Error = LoadError;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, UserRow>, LoadError> {
        let rows = account::users_by_ids(self.0.pool(), keys).await?;
        Ok(rows.into_iter().map(|u| (u.id, u)).collect())
    }
}

/// The images of owners of one kind, by owner id, in upload order.
pub(crate) struct ImagesLoader(Database, OwnerType);

impl Loader<i64> for ImagesLoader {
    type Value = Vec<ImageRow>;
    type Error = LoadError;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Vec<ImageRow>>, LoadError> {
        let rows = media::images_of_owners(self.0.pool(), self.1, keys).await?;
        let mut by_owner: HashMap<i64, Vec<ImageRow>> = HashMap::new();
        for row in rows {
            if let Some(owner) = row.owner() {
                by_owner.entry(owner.id()).or_default().push(row);
            }
        }
        Ok(by_owner)
    }
}

pub(crate) struct FishTypesLoader(Database);

impl Loader<i64> for FishTypesLoader {
    type Value = Vec<i16>;
    type Error = LoadError;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Vec<i16>>, LoadError> {
        let pairs = board::fish_types_of(self.0.pool(), keys).await?;
        let mut by_post: HashMap<i64, Vec<i16>> = HashMap::new();
        for (post, fish) in pairs {
            by_post.entry(post).or_default().push(fish);
        }
        Ok(by_post)
    }
}

pub(crate) struct PostLoader(Database);

impl Loader<i64> for PostLoader {
    type Value = PostRow;
    type Error = LoadError;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, PostRow>, LoadError> {
        let rows = board::posts_by_ids(self.0.pool(), keys).await?;
        Ok(rows.into_iter().map(|p| (p.id, p)).collect())
    }
}

/// The key of a list that is not paged by a cursor but bounded: whose list, and at most how many
/// of its items (the field's `first`). The loaders read each list's first `limit` items in the
/// database, so a list costs what its field's complexity says, never what was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct ListOf {
    pub id: i64,
    pub limit: i64,
}

impl ListOf {
    /// The ids of `keys` and the largest limit among them: one statement reads them all.
    fn batch(keys: &[ListOf]) -> (Vec<i64>, i64) {
        let mut ids: Vec<i64> = keys.iter().map(|k| k.id).collect();
        ids.sort_unstable();
        ids.dedup();
        (ids, keys.iter().map(|k| k.limit).max().unwrap_or(0))
    }

    /// Each key's list out of rows read for the whole batch (grouped by `id`, in order).
    fn answer<T: Clone>(
        keys: &[ListOf],
        rows: Vec<T>,
        id: impl Fn(&T) -> i64,
    ) -> HashMap<ListOf, Vec<T>> {
        let groups = group(rows, id);
        keys.iter()
            .map(|key| {
                let items = groups.get(&key.id).map_or_else(Vec::new, |items| {
                    let limit = usize::try_from(key.limit).unwrap_or(0);
                    items.iter().take(limit).cloned().collect()
                });
                (*key, items)
            })
            .collect()
    }
}

pub(crate) struct MembersLoader(Database);

impl Loader<ListOf> for MembersLoader {
    type Value = Vec<MemberRow>;
    type Error = LoadError;

    async fn load(&self, keys: &[ListOf]) -> Result<HashMap<ListOf, Vec<MemberRow>>, LoadError> {
        let (ids, limit) = ListOf::batch(keys);
        let rows = chat::members_of_rooms(self.0.pool(), &ids, limit).await?;
        Ok(ListOf::answer(keys, rows, |m| m.room_id))
    }
}

/// A user's applications: their seats, or (`.1`) all of them.
pub(crate) struct UserApplicationsLoader(Database, bool);

impl Loader<ListOf> for UserApplicationsLoader {
    type Value = Vec<ApplicationRow>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[ListOf],
    ) -> Result<HashMap<ListOf, Vec<ApplicationRow>>, LoadError> {
        let (ids, limit) = ListOf::batch(keys);
        let rows = board::applications_of_users(self.0.pool(), &ids, limit, self.1).await?;
        Ok(ListOf::answer(keys, rows, |a| a.user_id))
    }
}

/// A trip's reviews, newest first: the first page of each post of a list in one statement.
pub(crate) struct ReviewsLoader(Database);

impl Loader<ListOf> for ReviewsLoader {
    type Value = Vec<board::ReviewRow>;
    type Error = LoadError;

    async fn load(&self, keys: &[ListOf]) -> Result<HashMap<ListOf, Self::Value>, LoadError> {
        let (ids, limit) = ListOf::batch(keys);
        let rows = board::reviews_of_posts(self.0.pool(), &ids, limit).await?;
        Ok(ListOf::answer(keys, rows, |r| r.post_id))
    }
}

/// A trip's applications in one status (its seats, its line, its requests), oldest first.
pub(crate) struct ApplicationsInLoader(Database, ApplicationStatus);

impl Loader<ListOf> for ApplicationsInLoader {
    type Value = Vec<ApplicationRow>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[ListOf],
    ) -> Result<HashMap<ListOf, Vec<ApplicationRow>>, LoadError> {
        let (ids, limit) = ListOf::batch(keys);
        let rows = board::applications_of_posts_in(self.0.pool(), &ids, self.1, limit).await?;
        Ok(ListOf::answer(keys, rows, |a| a.post_id))
    }
}

/// Those removed from a trip by its organiser, newest first.
pub(crate) struct RemovalsLoader(Database);

impl Loader<ListOf> for RemovalsLoader {
    type Value = Vec<board::RemovalRow>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[ListOf],
    ) -> Result<HashMap<ListOf, Vec<board::RemovalRow>>, LoadError> {
        let (ids, limit) = ListOf::batch(keys);
        let rows = board::removals_of_posts(self.0.pool(), &ids, limit).await?;
        Ok(ListOf::answer(keys, rows, |r| r.post_id))
    }
}

/// One user's application to a post: (post id, user id) → the application. A request asks for
/// one viewer, so a batch is one statement per user in it.
pub(crate) struct ApplicationOfLoader(Database);

impl Loader<(i64, i64)> for ApplicationOfLoader {
    type Value = ApplicationRow;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[(i64, i64)],
    ) -> Result<HashMap<(i64, i64), ApplicationRow>, LoadError> {
        let mut found = HashMap::new();
        for (user_id, post_ids) in by_user(keys) {
            for row in board::applications_of_user_to(self.0.pool(), user_id, &post_ids).await? {
                found.insert((row.post_id, row.user_id), row);
            }
        }
        Ok(found)
    }
}

/// One user's review of a post: (post id, user id) → the review. A request asks for one viewer,
/// so a batch is one statement per user in it.
pub(crate) struct ReviewOfLoader(Database);

impl Loader<(i64, i64)> for ReviewOfLoader {
    type Value = board::ReviewRow;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[(i64, i64)],
    ) -> Result<HashMap<(i64, i64), board::ReviewRow>, LoadError> {
        let mut found = HashMap::new();
        for (user_id, post_ids) in by_user(keys) {
            for row in board::reviews_by_user_of(self.0.pool(), user_id, &post_ids).await? {
                found.insert((row.post_id, row.user_id), row);
            }
        }
        Ok(found)
    }
}

/// (post id, user id) keys as the post ids asked of each user.
fn by_user(keys: &[(i64, i64)]) -> HashMap<i64, Vec<i64>> {
    let mut by_user: HashMap<i64, Vec<i64>> = HashMap::new();
    for (post_id, user_id) in keys {
        by_user.entry(*user_id).or_default().push(*post_id);
    }
    by_user
}

pub(crate) struct WaitlistPositionLoader(Database);

impl Loader<i64> for WaitlistPositionLoader {
    type Value = i64;
    type Error = LoadError;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, i64>, LoadError> {
        Ok(board::waitlist_positions(self.0.pool(), keys)
            .await?
            .into_iter()
            .collect())
    }
}

pub(crate) struct UserPostsLoader(Database);

/// A user's posts as one reader sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct PostsOf {
    pub list: ListOf,
    pub visible: board::PostVisibility,
}

impl Loader<PostsOf> for UserPostsLoader {
    type Value = Vec<PostRow>;
    type Error = LoadError;

    async fn load(&self, keys: &[PostsOf]) -> Result<HashMap<PostsOf, Vec<PostRow>>, LoadError> {
        let mut answers = HashMap::new();
        // At most two statements: the posts readers see, and those their owners see.
        for visible in [board::PostVisibility::Public, board::PostVisibility::Owner] {
            let lists: Vec<ListOf> = keys
                .iter()
                .filter(|k| k.visible == visible)
                .map(|k| k.list)
                .collect();
            if lists.is_empty() {
                continue;
            }
            let (ids, limit) = ListOf::batch(&lists);
            let rows = board::posts_of_users(self.0.pool(), &ids, visible, limit).await?;
            for (list, posts) in ListOf::answer(&lists, rows, |p| p.user_id) {
                answers.insert(PostsOf { list, visible }, posts);
            }
        }
        Ok(answers)
    }
}

/// Rows grouped by a key, each group in the rows' order.
fn group<T>(rows: Vec<T>, key: impl Fn(&T) -> i64) -> HashMap<i64, Vec<T>> {
    let mut groups: HashMap<i64, Vec<T>> = HashMap::new();
    for row in rows {
        groups.entry(key(&row)).or_default().push(row);
    }
    groups
}
