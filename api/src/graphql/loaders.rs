//! Dataloaders: every nested field of a list (a post's author, images, fish types) is loaded for
//! the whole page in one statement. Made per request, so nothing is cached across requests.

use async_graphql::dataloader::{DataLoader, Loader};
use fishapp_domain::media::OwnerType;
use fishapp_store::Database;
use fishapp_store::account::{self, UserRow};
use fishapp_store::board;
use fishapp_store::media::{self, ImageRow};
use std::collections::HashMap;
use std::sync::Arc;

pub(crate) struct Loaders {
    pub users: DataLoader<UserLoader>,
    pub post_images: DataLoader<PostImagesLoader>,
    pub fish_types: DataLoader<FishTypesLoader>,
}

impl Loaders {
    pub(crate) fn new(db: &Database) -> Self {
        Self {
            users: DataLoader::new(UserLoader(db.clone()), tokio::spawn),
            post_images: DataLoader::new(PostImagesLoader(db.clone()), tokio::spawn),
            fish_types: DataLoader::new(FishTypesLoader(db.clone()), tokio::spawn),
        }
    }
}

/// Loader errors must be cloneable: the same failure answers every key of the batch.
type LoadError = Arc<sqlx::Error>;

pub(crate) struct UserLoader(Database);

impl Loader<i64> for UserLoader {
    type Value = UserRow;
    type Error = LoadError;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, UserRow>, LoadError> {
        let rows = account::users_by_ids(self.0.pool(), keys).await?;
        Ok(rows.into_iter().map(|u| (u.id, u)).collect())
    }
}

pub(crate) struct PostImagesLoader(Database);

impl Loader<i64> for PostImagesLoader {
    type Value = Vec<ImageRow>;
    type Error = LoadError;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Vec<ImageRow>>, LoadError> {
        let rows = media::images_of_owners(self.0.pool(), OwnerType::Post, keys).await?;
        let mut by_post: HashMap<i64, Vec<ImageRow>> = HashMap::new();
        for row in rows {
            if let Some(owner) = row.owner_id {
                by_post.entry(owner).or_default().push(row);
            }
        }
        Ok(by_post)
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
