//! Images over GraphQL: the original's `Image` plus what a client needs to show one.

use super::scalars::Time;
use crate::error::{AppError, IntoGql};
use async_graphql::{Context, Enum, ID, Object, Upload};
use fishapp_app::media::Media;
use fishapp_domain::media::ImageOwner;
use fishapp_store::media::ImageRow;

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "fishapp_domain::media::OwnerType")]
pub(crate) enum OwnerType {
    Post,
    User,
    Message,
}

/// An `Upload` argument as the use cases take it: the spooled file taken out of the request (a
/// variable can be read once; a second read is the client naming one file for two arguments).
pub(crate) fn take_upload(
    ctx: &Context<'_>,
    field: &str,
    upload: &Upload,
) -> Result<fishapp_app::Upload, AppError> {
    let value = upload
        .value(ctx)
        .map_err(|e| AppError::bad_input(field, format!("{field}: {e}")))?;
    Ok(fishapp_app::Upload {
        filename: value.filename,
        content_type: value.content_type,
        content: value.content,
    })
}

pub(crate) struct Image(pub(crate) ImageRow);

impl Image {
    /// Every image the API shows has an owner (staged uploads are never shown).
    fn owner(&self) -> async_graphql::Result<ImageOwner> {
        self.0
            .owner()
            .ok_or_else(|| AppError::internal("an image without an owner was shown"))
            .gql()
    }
}

/// Resolved field by field (`serial`): concurrent resolution would cost a task per field (see
/// `Post`), and nothing here waits on I/O, except signing a GCS URL with credentials that sign
/// remotely (application default credentials without a key): then an image's two URLs are
/// signed one after the other, while the images of a list still go at the same time.
#[Object(serial)]
impl Image {
    /// The image's number (the original API's integer id; `imageIdsToDelete` takes it back).
    async fn id(&self) -> ID {
        ID(self.0.number.to_string())
    }

    /// A generated file name (the uploader's own file name is not published).
    async fn name(&self) -> String {
        let ext = if self.0.content_type == "image/png" {
            "png"
        } else {
            "jpg"
        };
        format!("{}.{ext}", self.0.id)
    }

    async fn owner_id(&self) -> async_graphql::Result<i64> {
        Ok(self.owner()?.id())
    }

    async fn owner_type(&self) -> async_graphql::Result<OwnerType> {
        Ok(self.owner()?.kind().into())
    }

    /// The image, fitted inside 600×800, metadata stripped.
    async fn url(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        ctx.data_unchecked::<Media>()
            .url(&self.0.display_key)
            .await
            .gql()
    }

    /// At most 200×200.
    async fn thumbnail_url(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        ctx.data_unchecked::<Media>()
            .url(&self.0.thumbnail_key)
            .await
            .gql()
    }

    async fn width(&self) -> i32 {
        self.0.width
    }

    async fn height(&self) -> i32 {
        self.0.height
    }

    /// `image/jpeg`, or `image/png` for images with transparency.
    async fn content_type(&self) -> &str {
        &self.0.content_type
    }

    async fn created_at(&self) -> Time {
        Time(self.0.created_at)
    }

    async fn updated_at(&self) -> Time {
        Time(self.0.updated_at)
    }
}
