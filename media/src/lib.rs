//! Fishapp's media: the image pipeline every upload goes through, and the object stores the
//! results are kept in. No database access here: image metadata lives in the store crate.
//!
//! Depends on nothing of ours. Used by the API (uploads) and the media activities (deletes).

pub mod processing;
pub mod storage;

pub use processing::{DecodeLimits, InputFormat, ProcessError, Processed, Rendition, process};
pub use storage::{
    Gcs, GcsCredentials, GcsSettings, GcsUrls, LocalDisk, MediaStore, ObjectStore, StorageError,
};
