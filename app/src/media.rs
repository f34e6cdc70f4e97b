//! Uploads: every file is checked against the caps, processed (see `fishapp_media::processing`)
//! off the async runtime, and its renditions put in object storage before anything records it.
//! The upload itself arrives streamed to a temporary file by the multipart parser, and is
//! deleted with it whatever happens.

use crate::cache::WindowLimiter;
use crate::error::AppError;
use fishapp_domain::media::ImageOwner;
use fishapp_media::{DecodeLimits, MediaStore, ObjectStore, ProcessError, Processed, process};
use fishapp_store::Database;
use fishapp_store::media::{self as store, ImageRow, NewImage, Selection};
use std::io::Read;
use std::sync::Arc;
use tokio::sync::Semaphore;
use uuid::Uuid;

/// A file a client uploaded, spooled to a temporary file by the transport (never whole in
/// memory), with the name and type the client gave it (neither is trusted: the type comes from
/// the bytes, and the name is never published).
#[derive(Debug)]
pub struct Upload {
    pub filename: String,
    pub content_type: Option<String>,
    pub content: std::fs::File,
}

impl Upload {
    /// Its size in bytes.
    pub fn size(&self) -> std::io::Result<u64> {
        Ok(self.content.metadata()?.len())
    }
}

#[derive(Debug, Clone)]
pub struct MediaSettings {
    /// Largest file accepted, in bytes.
    pub max_file_bytes: u64,
    /// Most files in one request.
    pub max_files_per_request: usize,
    pub decode_limits: DecodeLimits,
    /// Images processed at most at once (0: one core fewer than the machine has, at least 1).
    pub processing_concurrency: usize,
}

/// An upload that passed every check, with its renditions in object storage but no row yet.
#[derive(Debug, Clone)]
pub struct StoredImage {
    pub id: Uuid,
    pub display_key: String,
    pub thumbnail_key: String,
    pub content_type: &'static str,
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
    pub original_name: String,
}

impl StoredImage {
    pub fn as_new(&self, owner: Option<ImageOwner>, uploader_id: Option<i64>) -> NewImage<'_> {
        NewImage {
            id: self.id,
            owner,
            display_key: &self.display_key,
            thumbnail_key: &self.thumbnail_key,
            content_type: self.content_type,
            width: i32::try_from(self.width).unwrap_or(i32::MAX),
            height: i32::try_from(self.height).unwrap_or(i32::MAX),
            bytes: i64::try_from(self.bytes).unwrap_or(i64::MAX),
            original_name: &self.original_name,
            uploader_id,
        }
    }
}

#[derive(Clone)]
pub struct Media {
    db: Database,
    store: Arc<MediaStore>,
    settings: Arc<MediaSettings>,
    permits: Arc<Semaphore>,
    /// Images each signed-in user may have processed per window, over every entry point
    /// (avatars, a post's photos, chat photos): processing is the costliest thing a request
    /// can ask for.
    per_user: WindowLimiter,
}

impl Media {
    pub fn new(
        db: Database,
        store: MediaStore,
        settings: MediaSettings,
        per_user: WindowLimiter,
    ) -> Self {
        let permits = crate::cpu::cpu_permits(settings.processing_concurrency);
        Self {
            db,
            store: Arc::new(store),
            settings: Arc::new(settings),
            permits: Arc::new(Semaphore::new(permits)),
            per_user,
        }
    }

    /// Counts `count` images against `uploader`'s limit before any of them is processed:
    /// `RATE_LIMITED` past it.
    async fn admit(&self, uploader: i64, count: usize) -> Result<(), AppError> {
        if count == 0 {
            return Ok(());
        }
        let count = u32::try_from(count).unwrap_or(u32::MAX);
        self.per_user.check_n(&uploader.to_string(), count).await
    }

    /// [`Media::ingest`] for a signed-in uploader, within their image limit.
    pub async fn ingest_by(
        &self,
        uploader: i64,
        field: &str,
        upload: Upload,
    ) -> Result<StoredImage, AppError> {
        self.admit(uploader, 1).await?;
        self.ingest(field, upload).await
    }

    pub fn settings(&self) -> &MediaSettings {
        &self.settings
    }

    /// Where a client fetches an object (signed, with the GCS backend configured so).
    pub async fn url(&self, key: &str) -> Result<String, AppError> {
        self.store.url(key).await.map_err(AppError::internal)
    }

    /// Checks, processes and stores one upload. `field` names it in errors (`image`, `images.2`).
    /// Anonymous (a sign-up's avatar, within the sign-up limit); a signed-in user's uploads go
    /// through [`Media::ingest_by`] or [`Media::stage_all`].
    pub async fn ingest(&self, field: &str, upload: Upload) -> Result<StoredImage, AppError> {
        let name = upload.filename.clone();
        let size = upload.size().map_err(AppError::internal)?;
        let max = self.settings.max_file_bytes;
        if size > max {
            return Err(AppError::bad_input(
                field,
                format!("{name:?} is {size} bytes; at most {max} bytes are accepted"),
            ));
        }
        let limits = self.settings.decode_limits;
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(AppError::internal)?;
        let processed = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
            let mut file = upload.content;
            file.read_to_end(&mut bytes)
                .map_err(|e| ProcessError::Corrupt(e.to_string()))?;
            process(&bytes, limits)
        })
        .await
        .map_err(AppError::internal)?
        .map_err(|e| AppError::bad_input(field, format!("{name:?}: {e}")))?;
        self.put(processed, name).await
    }

    async fn put(
        &self,
        processed: Processed,
        original_name: String,
    ) -> Result<StoredImage, AppError> {
        let id = Uuid::now_v7();
        let ext = |content_type: &str| {
            if content_type == "image/png" {
                "png"
            } else {
                "jpg"
            }
        };
        let display_key = format!(
            "images/{id}/display.{}",
            ext(processed.display.content_type)
        );
        let thumbnail_key = format!(
            "images/{id}/thumbnail.{}",
            ext(processed.thumbnail.content_type)
        );
        let image = StoredImage {
            id,
            display_key,
            thumbnail_key,
            content_type: processed.display.content_type,
            width: processed.display.width,
            height: processed.display.height,
            bytes: processed.display.bytes.len() as u64,
            original_name,
        };
        let stored = async {
            self.store
                .put(
                    &image.display_key,
                    processed.display.bytes,
                    processed.display.content_type,
                )
                .await?;
            self.store
                .put(
                    &image.thumbnail_key,
                    processed.thumbnail.bytes,
                    processed.thumbnail.content_type,
                )
                .await
        };
        if let Err(e) = stored.await {
            self.discard(&image).await;
            return Err(AppError::internal(e));
        }
        Ok(image)
    }

    /// Deletes a stored image's objects (a compensation: nothing recorded it). Failures are
    /// logged; the orphan cleanup gets what is left.
    pub async fn discard(&self, image: &StoredImage) {
        self.delete_objects(&image.display_key, &image.thumbnail_key)
            .await;
    }

    async fn delete_objects(&self, display_key: &str, thumbnail_key: &str) {
        let deleted = self
            .store
            .delete_renditions(display_key, thumbnail_key)
            .await;
        if let Err(e) = deleted {
            tracing::warn!(display_key, error = %e, "could not delete an image's objects");
        }
    }

    /// Makes `image` the user's avatar. The old one is deleted only after the new one is
    /// recorded, so a failure never leaves the user with neither.
    pub async fn set_avatar(&self, user_id: i64, image: &StoredImage) -> Result<(), AppError> {
        let replaced = async {
            let mut tx = self.db.pool().begin().await?;
            store::insert_image(
                &mut *tx,
                &image.as_new(Some(ImageOwner::User(user_id)), Some(user_id)),
            )
            .await?;
            let old = store::detach_all_but(&mut *tx, ImageOwner::User(user_id), image.id).await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(old)
        };
        match replaced.await {
            Ok(old) => {
                for row in old {
                    self.delete_objects(&row.display_key, &row.thumbnail_key)
                        .await;
                }
                Ok(())
            }
            Err(e) => {
                self.discard(image).await;
                Err(e.into())
            }
        }
    }

    /// Checks, processes and stores uploads as staged images (rows without an owner) for a
    /// saga to attach: all or none — when one fails, the ones before it are discarded. Fields
    /// are `<field>.<index>`. All of them count against the uploader's image limit first.
    pub async fn stage_all(
        &self,
        field: &str,
        uploads: Vec<Upload>,
        uploader_id: i64,
    ) -> Result<Vec<Uuid>, AppError> {
        self.admit(uploader_id, uploads.len()).await?;
        let mut staged = Vec::with_capacity(uploads.len());
        for (i, upload) in uploads.into_iter().enumerate() {
            let result = async {
                let image = self.ingest(&format!("{field}.{i}"), upload).await?;
                if let Err(e) =
                    store::insert_image(self.db.pool(), &image.as_new(None, Some(uploader_id)))
                        .await
                {
                    self.discard(&image).await;
                    return Err(AppError::from(e));
                }
                Ok(image.id)
            };
            match result.await {
                Ok(id) => staged.push(id),
                Err(e) => {
                    self.discard_staged(&staged).await;
                    return Err(e);
                }
            }
        }
        Ok(staged)
    }

    /// Deletes staged images (objects, then rows) that no saga will attach; attached images
    /// among `ids` are left alone. Failures are logged: the hourly cleanup gets the rest.
    pub async fn discard_staged(&self, ids: &[Uuid]) {
        if ids.is_empty() {
            return;
        }
        let rows = match store::select(self.db.pool(), &Selection::Ids(ids.to_vec())).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "could not look up staged images to discard");
                return;
            }
        };
        let staged: Vec<&ImageRow> = rows.iter().filter(|r| r.owner_id.is_none()).collect();
        for row in &staged {
            self.delete_objects(&row.display_key, &row.thumbnail_key)
                .await;
        }
        let ids: Vec<Uuid> = staged.iter().map(|r| r.id).collect();
        if let Err(e) = store::delete_rows(self.db.pool(), &ids).await {
            tracing::warn!(error = %e, "could not delete staged image rows");
        }
    }
}
