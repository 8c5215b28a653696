//! Where the lake lives: a local directory (the embedded default) or an S3-compatible bucket, behind one
//! `object_store` interface so the archive and the readers have a single code path.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, PutPayload};

use crate::error::LakeError;

/// The lake: an object store and the prefix everything lives under.
#[derive(Clone)]
pub struct Lake {
    store: Arc<dyn ObjectStore>,
    /// The prefix inside the store (empty for a local directory: the store is rooted there).
    root: Path,
    /// For a local directory: its path, so writes can be fsynced (object_store renames into place but
    /// does not sync, and "durable before the offset is committed" must hold across a power cut).
    local: Option<PathBuf>,
    display: String,
}

impl std::fmt::Debug for Lake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lake")
            .field("location", &self.display)
            .finish()
    }
}

impl std::fmt::Display for Lake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display)
    }
}

impl Lake {
    /// Opens `location`: `s3://bucket[/prefix]` (credentials, region and endpoint from the usual
    /// `AWS_*` variables: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT`,
    /// `AWS_ALLOW_HTTP` for a plain-HTTP test server), `file:///dir`, or a directory path, created if
    /// missing.
    pub fn open(location: &str) -> Result<Self, LakeError> {
        let location = location.trim();
        let refuse = |reason: &str| LakeError::Location {
            location: location.to_owned(),
            reason: reason.to_owned(),
        };
        if location.is_empty() {
            return Err(refuse("empty"));
        }
        if let Some(rest) = location.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(refuse("no bucket in s3://BUCKET/PREFIX"));
            }
            let store = AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .build()?;
            return Ok(Self {
                store: Arc::new(store),
                root: Path::from(prefix.trim_matches('/')),
                local: None,
                display: location.to_owned(),
            });
        }
        if location.contains("://") && !location.starts_with("file://") {
            return Err(refuse(
                "expected s3://BUCKET/PREFIX, file:///DIR or a directory",
            ));
        }
        let dir = PathBuf::from(location.strip_prefix("file://").unwrap_or(location));
        std::fs::create_dir_all(&dir).map_err(|e| refuse(&format!("creating it: {e}")))?;
        let dir = dir
            .canonicalize()
            .map_err(|e| refuse(&format!("resolving it: {e}")))?;
        let store = LocalFileSystem::new_with_prefix(&dir)?;
        Ok(Self {
            store: Arc::new(store),
            root: Path::default(),
            display: dir.display().to_string(),
            local: Some(dir),
        })
    }

    /// The local directory, when the lake is one.
    pub fn local_dir(&self) -> Option<&std::path::Path> {
        self.local.as_deref()
    }

    /// `relative` under the lake's prefix.
    pub(crate) fn path(&self, relative: &str) -> Path {
        let mut path = self.root.clone();
        for part in relative.split('/').filter(|p| !p.is_empty()) {
            path = path.child(part);
        }
        path
    }

    /// Writes `bytes` at `relative` atomically (a reader sees all of it or nothing) and durably before
    /// returning.
    pub(crate) async fn put(&self, relative: &str, bytes: Bytes) -> Result<(), LakeError> {
        self.store
            .put(&self.path(relative), PutPayload::from_bytes(bytes))
            .await?;
        if let Some(dir) = &self.local {
            let file = dir.join(relative);
            sync(&file)?;
            if let Some(parent) = file.parent() {
                sync(parent)?;
            }
        }
        Ok(())
    }

    /// The object at `relative`, or `None` when there is none.
    pub(crate) async fn get(&self, relative: &str) -> Result<Option<Bytes>, LakeError> {
        match self.store.get(&self.path(relative)).await {
            Ok(result) => Ok(Some(result.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes `relative`; an object already gone is not an error (deletes are replayed on recovery).
    pub(crate) async fn delete(&self, relative: &str) -> Result<(), LakeError> {
        match self.store.delete(&self.path(relative)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Every object under `relative` (recursively), sorted by path.
    pub(crate) async fn list(&self, relative: &str) -> Result<Vec<ObjectMeta>, LakeError> {
        let prefix = self.path(relative);
        let mut objects: Vec<ObjectMeta> = match self.store.list(Some(&prefix)).try_collect().await
        {
            Ok(objects) => objects,
            Err(object_store::Error::NotFound { .. }) => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        objects.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(objects)
    }

    /// The object at an absolute store path, or `None` when it is gone (a listing is a moment's view).
    pub(crate) async fn get_path(&self, path: &Path) -> Result<Option<Bytes>, LakeError> {
        match self.store.get(path).await {
            Ok(result) => Ok(Some(result.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// fsyncs a file or a directory.
fn sync(path: &std::path::Path) -> Result<(), LakeError> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|source| LakeError::Durable {
            path: path.display().to_string(),
            source,
        })
}
