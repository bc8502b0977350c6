//! The physical storage contract.
//!
//! A backend stores opaque byte values under `/`-separated string keys. It never sees plaintext:
//! everything above it goes through the barrier. Every backend must pass [`conformance::run`].
#![forbid(unsafe_code)]

use async_trait::async_trait;

pub mod conformance;
pub mod snapshot;

/// Errors a backend reports. Messages describe the failure without including stored values.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    #[error("storage backend unavailable: {0}")]
    Unavailable(String),
    #[error("storage backend error: {0}")]
    Backend(String),
    #[error("invalid storage key: {0}")]
    InvalidKey(String),
    /// A write refused because this node is no longer the one allowed to write (an HA node
    /// whose lock another node has taken): it was not applied, and another node may accept it.
    #[error("storage write refused: {0}")]
    Fenced(String),
    /// The backend cannot be reached or has stopped, because of `source`.
    #[error("storage backend unavailable: {context}: {source}")]
    UnavailableBecause {
        context: String,
        #[source]
        source: BoxError,
    },
    /// The backend failed an operation, because of `source`.
    #[error("storage backend error: {context}: {source}")]
    BackendBecause {
        context: String,
        #[source]
        source: BoxError,
    },
}

/// Every entry of a store: keys and the values as stored (a snapshot's content).
pub type Entries = Vec<(String, Vec<u8>)>;

/// A cause kept inside a [`StorageError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

impl StorageError {
    /// The backend failed to `context`, because of `source` (which must not carry stored values).
    pub fn backend(context: impl Into<String>, source: impl Into<BoxError>) -> Self {
        StorageError::BackendBecause { context: context.into(), source: source.into() }
    }
    /// The backend is unavailable (`context`), because of `source`.
    pub fn unavailable(context: impl Into<String>, source: impl Into<BoxError>) -> Self {
        StorageError::UnavailableBecause { context: context.into(), source: source.into() }
    }
}

/// One operation inside an atomic [`Storage::transaction`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnOp {
    Put { key: String, value: Vec<u8> },
    Delete { key: String },
}

/// A physical storage backend.
///
/// Contract (checked by the conformance suite):
/// - a `put` or `delete` that returns `Ok` is durable to the backend's promise (for durable
///   backends: on stable storage, fsynced, before the call returns);
/// - `list(prefix)` returns the immediate children of `prefix`, sorted, with "folders" given
///   once each with a trailing `/`;
/// - `transaction` applies all of its operations or none.
#[async_trait]
pub trait Storage: Send + Sync + 'static {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError>;
    async fn put(&self, key: &str, value: Vec<u8>) -> Result<(), StorageError>;
    async fn delete(&self, key: &str) -> Result<(), StorageError>;
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError>;
    async fn transaction(&self, ops: Vec<TxnOp>) -> Result<(), StorageError>;
    /// The name of the backend type as written in configuration (`file`, `inmem`, …).
    fn kind(&self) -> &'static str;

    /// Every entry, in key order, as of one point in time (a snapshot's content). The default
    /// walks the tree with `list` and `get`, which is consistent only while nothing writes:
    /// durable backends answer from one read transaction instead.
    async fn export(&self) -> Result<Entries, StorageError> {
        let mut out = Vec::new();
        let mut folders = vec![String::new()];
        while let Some(prefix) = folders.pop() {
            for child in self.list(&prefix).await? {
                let key = format!("{prefix}{child}");
                if child.ends_with('/') {
                    folders.push(key);
                } else if let Some(v) = self.get(&key).await? {
                    out.push((key, v));
                }
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Replaces every entry with `entries` (a snapshot's restore): one transaction, so a
    /// failure leaves the old content whole.
    async fn replace_all(&self, entries: Entries) -> Result<(), StorageError> {
        let keep: std::collections::BTreeSet<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
        let mut ops: Vec<TxnOp> = self
            .export()
            .await?
            .into_iter()
            .filter(|(k, _)| !keep.contains(k.as_str()))
            .map(|(key, _)| TxnOp::Delete { key })
            .collect();
        ops.extend(entries.into_iter().map(|(key, value)| TxnOp::Put { key, value }));
        self.transaction(ops).await
    }
}

/// Validates a key: non-empty, no NUL, no leading `/`, no `..` segments.
pub fn check_key(key: &str) -> Result<(), StorageError> {
    if key.is_empty() || key.contains('\0') || key.starts_with('/') {
        return Err(StorageError::InvalidKey("empty, absolute or contains NUL".into()));
    }
    if key.split('/').any(|seg| seg == "..") {
        return Err(StorageError::InvalidKey("contains a '..' segment".into()));
    }
    Ok(())
}

/// Given the sorted full keys under `prefix`, produces the immediate children as `list` returns
/// them. Shared by backends that scan a sorted key range.
pub fn children_of<'a>(prefix: &str, keys: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for k in keys {
        let Some(rest) = k.strip_prefix(prefix) else {
            continue;
        };
        if rest.is_empty() {
            continue;
        }
        let child = match rest.find('/') {
            Some(i) => &rest[..=i],
            None => rest,
        };
        if out.last().map(String::as_str) != Some(child) {
            out.push(child.to_string());
        }
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_groups_folders_once() {
        let keys = ["a/b", "a/c/d", "a/c/e", "a/d", "b/x"];
        assert_eq!(children_of("a/", keys), vec!["b", "c/", "d"]);
        assert_eq!(children_of("", keys), vec!["a/", "b/"]);
    }

    #[test]
    fn keys_are_validated() {
        assert!(check_key("a/b").is_ok());
        assert!(check_key("").is_err());
        assert!(check_key("/a").is_err());
        assert!(check_key("a/../b").is_err());
        assert!(check_key("a\0b").is_err());
    }
}
