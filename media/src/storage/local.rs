//! Local disk: files under a directory, served by the API under `/media`.

use super::{ObjectStore, StorageError, check_key};
use std::path::{Component, Path, PathBuf};

/// Files under a directory; served by the API at `public_base_url`.
#[derive(Debug, Clone)]
pub struct LocalDisk {
    root: PathBuf,
    public_base_url: String,
}

impl LocalDisk {
    pub fn new(root: impl Into<PathBuf>, public_base_url: impl Into<String>) -> Self {
        Self {
            root: root.into(),
            public_base_url: public_base_url.into().trim_end_matches('/').to_owned(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &str) -> Result<PathBuf, StorageError> {
        check_key(key)?;
        let path = self.root.join(key);
        debug_assert!(
            path.components()
                .all(|c| !matches!(c, Component::ParentDir))
        );
        Ok(path)
    }
}

impl ObjectStore for LocalDisk {
    async fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        _content_type: &str,
    ) -> Result<(), StorageError> {
        let path = self.path(key)?;
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        // Write beside, then rename: a reader never sees half a file, a crash never leaves one.
        let partial = path.with_extension(format!("partial-{}", std::process::id()));
        tokio::fs::write(&partial, bytes).await?;
        tokio::fs::rename(&partial, &path).await?;
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        match tokio::fs::remove_file(self.path(key)?).await {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => Ok(other?),
        }
    }

    async fn exists(&self, key: &str) -> Result<bool, StorageError> {
        Ok(tokio::fs::try_exists(self.path(key)?).await?)
    }

    async fn url(&self, key: &str) -> Result<String, StorageError> {
        check_key(key)?;
        Ok(format!("{}/{key}", self.public_base_url))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn put_exists_delete_are_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalDisk::new(dir.path(), "/media/");
        let key = "post/abc/display.jpg";
        assert!(!store.exists(key).await.unwrap());
        store.put(key, b"one".to_vec(), "image/jpeg").await.unwrap();
        store.put(key, b"two".to_vec(), "image/jpeg").await.unwrap();
        assert_eq!(std::fs::read(dir.path().join(key)).unwrap(), b"two");
        assert!(store.exists(key).await.unwrap());
        assert_eq!(store.url(key).await.unwrap(), "/media/post/abc/display.jpg");
        store.delete(key).await.unwrap();
        store.delete(key).await.unwrap();
        assert!(!store.exists(key).await.unwrap());
        // No partial files left behind.
        let leftovers: Vec<_> = walk(dir.path());
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .unwrap()
            .flat_map(|entry| {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path)
                } else {
                    vec![path]
                }
            })
            .collect()
    }

    #[tokio::test]
    async fn a_bad_key_touches_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalDisk::new(dir.path().join("store"), "/media");
        assert!(matches!(
            store
                .put("../outside.jpg", b"x".to_vec(), "image/jpeg")
                .await,
            Err(StorageError::InvalidKey(_))
        ));
        assert!(!dir.path().join("outside.jpg").exists());
    }
}
