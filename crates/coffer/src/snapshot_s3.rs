//! The S3 destination of automatic snapshots (`storage_type=aws-s3`): the core's
//! [`SnapshotDestination`] over `coffer-snapshot-s3`, whose blocking calls run on tokio's
//! blocking threads. Injected into the core by [`crate::assemble`], so the core does no HTTP.

use coffer_core::snapshot_auto::{AutoConfig, BoxError, S3Connector, SnapshotDestination, StoredSnapshot};
use coffer_snapshot_s3::{S3Bucket, S3Config};
use std::sync::Arc;
use zeroize::Zeroizing;

/// Opens a bucket per configuration and attempt (so changed credentials apply at once).
pub struct Connector;

impl S3Connector for Connector {
    fn open(&self, c: &AutoConfig) -> Result<Arc<dyn SnapshotDestination>, BoxError> {
        let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
        let cfg = S3Config {
            bucket: c.aws_s3_bucket.clone(),
            region: c.aws_s3_region.clone(),
            endpoint: some(&c.aws_s3_endpoint),
            disable_tls: c.aws_s3_disable_tls,
            force_path_style: c.aws_s3_force_path_style,
            access_key_id: some(&c.aws_access_key_id),
            secret_access_key: some(&c.aws_secret_access_key).map(Zeroizing::new),
            session_token: some(&c.aws_session_token).map(Zeroizing::new),
            server_side_encryption: if c.aws_s3_enable_kms {
                Some("aws:kms".into())
            } else if c.aws_s3_server_side_encryption {
                Some("AES256".into())
            } else {
                None
            },
            kms_key_id: some(&c.aws_s3_kms_key),
        };
        let bucket = S3Bucket::new(&cfg)?;
        Ok(Arc::new(Destination { bucket: Arc::new(bucket), prefix: c.s3_key_prefix().to_string() }))
    }
}

struct Destination {
    bucket: Arc<S3Bucket>,
    /// The key prefix, without leading or trailing `/` (may be empty).
    prefix: String,
}

impl Destination {
    fn key(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}/{name}", self.prefix)
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, coffer_snapshot_s3::S3Error> + Send + 'static,
) -> Result<T, BoxError> {
    Ok(tokio::task::spawn_blocking(f).await??)
}

#[async_trait::async_trait]
impl SnapshotDestination for Destination {
    fn url_of(&self, name: &str) -> String {
        self.bucket.url_of(&self.key(name))
    }

    async fn put(&self, name: &str, bytes: Vec<u8>) -> Result<(), BoxError> {
        let (b, key) = (self.bucket.clone(), self.key(name));
        blocking(move || b.put(&key, bytes)).await
    }

    async fn list(&self, file_prefix: &str) -> Result<Vec<StoredSnapshot>, BoxError> {
        let (b, prefix) = (self.bucket.clone(), self.key(file_prefix));
        let strip = self.key("");
        let objects = blocking(move || b.list(&prefix)).await?;
        Ok(objects
            .into_iter()
            .filter_map(|o| {
                let name = o.key.strip_prefix(&strip)?;
                // Only this level: a key further down the prefix is not one of ours.
                (!name.contains('/')).then(|| StoredSnapshot { name: name.to_string(), size: o.size })
            })
            .collect())
    }

    async fn delete(&self, name: &str) -> Result<(), BoxError> {
        let (b, key) = (self.bucket.clone(), self.key(name));
        blocking(move || b.delete(&key)).await
    }
}
