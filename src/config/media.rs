//! Images: where they are kept, how large and how many.

use super::checks::at_least_one;
use super::keys::{Invalid, config_group};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Where processed images are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaBackend {
    /// Files under `media_dir`, served by the API under `/media`.
    Local,
    /// A Google Cloud Storage bucket (`media_gcs_*`).
    Gcs,
}

config_group! {
    pub struct Media {
        title: "Media",
        about: "Uploaded images: the limits on them, and the object store (local files or a Google Cloud Storage bucket).",
        media_storage: MediaBackend = MediaBackend::Local,
            "where images are kept: `local` (files under `MEDIA_DIR`, served by the API) or `gcs` (a Google Cloud Storage bucket, below)";
        media_dir: PathBuf = PathBuf::from(".stack/data/media"),
            "the local object store's files (served at `/media`)";
        media_public_base_url: String = "/media".to_owned(),
            "what image URLs start with (relative to the API; a CDN in production)";
        media_max_file_bytes: u64 = 10 * 1024 * 1024,
            "largest upload, per file; larger is `BAD_USER_INPUT` naming the file";
        media_max_files_per_request: usize = 5,
            "most images in one request (`createPost`/`updatePost` `images`; over it is `BAD_USER_INPUT` on `input.images`, nothing kept)";
        media_max_images_per_user_per_hour: u32 = 100,
            "images one signed-in user may upload per hour over every entry point (avatar, a post's photos, chat photos), counted before any is processed; more is `RATE_LIMITED` (a sign-up's avatar counts against the sign-up limit instead)";
        media_processing_concurrency: usize = 0,
            "images decoded and resized at once",
            shown "`0` (cores − 1, at least 1)";
        media_staged_max_age_secs: u64 = 24 * 3_600,
            "staged uploads nothing attached are deleted once this old";
        media_cleanup_interval_secs: u64 = 3_600,
            "how often the cleanup schedule runs";
        media_gcs_bucket: String = String::new(),
            "the bucket's name; required when `MEDIA_STORAGE=gcs`",
            shown "(none)";
        media_gcs_prefix: String = String::new(),
            "put before every object name (`prod/`), so one bucket can serve several deployments";
        media_gcs_endpoint: Option<String> = None,
            "another endpoint: an emulator (`http://127.0.0.1:4443` for `scripts/stack up fake-gcs`) or a private endpoint",
            shown "Google's";
        media_gcs_credentials_file: Option<PathBuf> = None,
            "a service account key file (JSON); ADC is the workload's own account on Google Cloud, or `GOOGLE_APPLICATION_CREDENTIALS`",
            shown "(none: Application Default Credentials)";
        media_gcs_anonymous: bool = false,
            "no credentials at all (emulators only)";
        media_gcs_signed_urls: bool = false,
            "`true` for a private bucket: every image URL is a V4 signed URL (the credentials must be able to sign: a key file, or ADC with `iam.serviceAccounts.signBlob`)";
        media_gcs_signed_url_ttl_secs: u64 = 3_600,
            "how long a signed URL works (at most 604800, seven days)";
        media_gcs_public_base_url: Option<String> = None,
            "what public image URLs start with (a CDN in front of the bucket)",
            shown "`https://storage.googleapis.com/<bucket>`";
    }
}

impl Media {
    fn check(&self) -> Result<(), Invalid> {
        at_least_one(&[
            (
                "media_max_images_per_user_per_hour",
                self.media_max_images_per_user_per_hour.into(),
            ),
            (
                "media_cleanup_interval_secs",
                self.media_cleanup_interval_secs,
            ),
        ])?;
        if self.media_storage == MediaBackend::Gcs && self.media_gcs_bucket.trim().is_empty() {
            return Err((
                "media_gcs_bucket",
                "must name a bucket when media_storage is gcs".to_owned(),
            ));
        }
        // V4 signed URLs live at most seven days.
        if !(1..=7 * 24 * 3_600).contains(&self.media_gcs_signed_url_ttl_secs) {
            return Err((
                "media_gcs_signed_url_ttl_secs",
                "must be between 1 and 604800 (seven days)".to_owned(),
            ));
        }
        if self.media_gcs_anonymous && self.media_gcs_signed_urls {
            return Err((
                "media_gcs_signed_urls",
                "anonymous credentials cannot sign URLs".to_owned(),
            ));
        }
        Ok(())
    }
}
