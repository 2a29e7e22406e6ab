//! The file store: uploaded bytes on the local disk, addressed by their SHA-256, so the same
//! file uploaded twice is stored once and a stored file can never change under its name.
//! (S3-compatible storage for multi-node deployments is a later step behind the same calls.)

use std::path::{Path, PathBuf};
use std::sync::Arc;

use guichet_domain::audit::sha256_hex;

/// Local content-addressed storage.
#[derive(Clone, Debug)]
pub struct FileStore {
    // Shared: the application state holding it is cloned several times per request.
    root: Arc<Path>,
}

impl FileStore {
    /// Storage under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: Arc::from(root.into()) }
    }

    fn path(&self, sha256: &str) -> Option<PathBuf> {
        let ok = sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit());
        ok.then(|| self.root.join(&sha256[..2]).join(sha256))
    }

    /// Stores bytes; returns their SHA-256.
    pub async fn put(&self, bytes: &[u8]) -> std::io::Result<String> {
        let sha = sha256_hex(bytes);
        let path = self.path(&sha).ok_or_else(|| std::io::Error::other("bad hash"))?;
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            return Ok(sha);
        }
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        tokio::fs::write(&tmp, bytes).await?;
        tokio::fs::rename(&tmp, &path).await?;
        Ok(sha)
    }

    /// Reads stored bytes.
    pub async fn get(&self, sha256: &str) -> std::io::Result<Vec<u8>> {
        let path = self.path(sha256).ok_or_else(|| std::io::Error::other("bad hash"))?;
        tokio::fs::read(path).await
    }
}
