//! `sys/storage/raft/snapshot` (also `sys/storage/snapshot`): a snapshot of the whole storage,
//! as `bao operator raft snapshot save` asks for it, and its restore (`…/snapshot-force` for one
//! taken from a server with other keys). The file is every physical entry as the barrier stored
//! it — still encrypted — with a SHA-256 over all of it (`coffer_physical::snapshot`), so it
//! restores into a server of any backend.

use crate::{Core, CoreResponse, Result};
use base64::Engine;
use coffer_barrier::Restored;
use coffer_sdk::{LogicalError, Operation};
use serde_json::{Map, Value};

impl Core {
    pub(crate) async fn handle_snapshot(
        &self,
        op: Operation,
        force: bool,
        d: &Map<String, Value>,
    ) -> Result<CoreResponse> {
        match op {
            Operation::Read if !force => self.take_snapshot().await,
            Operation::Update | Operation::Create => {
                let b64 = d.get("http_raw_body").and_then(Value::as_str).ok_or_else(|| {
                    LogicalError::bad_request("the request body must be a snapshot file (application/octet-stream)")
                })?;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|e| LogicalError::bad_request("the snapshot body is not readable").with_source(e))?;
                self.restore_snapshot(&bytes, force).await
            }
            _ => Err(LogicalError::unsupported_operation()),
        }
    }

    /// Every stored entry at one point in time, as a snapshot file.
    pub async fn take_snapshot(&self) -> Result<CoreResponse> {
        let (header, bytes) =
            self.barrier.snapshot(&crate::version_string()).await.map_err(crate::error::barrier_err)?;
        tracing::info!(entries = header.entries, bytes = bytes.len(), "storage snapshot taken");
        Ok(CoreResponse { raw_body: Some(("application/octet-stream".into(), bytes)), ..Default::default() })
    }

    /// Replaces the whole storage with a snapshot's. A snapshot that opens with this server's
    /// keys is loaded and served at once (mounts, tokens and policies rebuilt from it); a forced
    /// one with other keys leaves the server sealed, for that server's unseal keys.
    pub async fn restore_snapshot(&self, bytes: &[u8], force: bool) -> Result<CoreResponse> {
        let (header, outcome) = {
            // No ceremony (rekey, generate-root, unseal) may run while storage is replaced.
            let _ceremonies = self.seal.lock().await;
            let (header, outcome) =
                self.barrier.restore_snapshot(bytes, force).await.map_err(crate::error::barrier_err)?;
            if outcome == Restored::Unsealed {
                let active = self.post_unseal().await?;
                *self.active.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(active);
            }
            (header, outcome)
        };
        tracing::warn!(
            entries = header.entries,
            taken = header.created,
            from_backend = %header.backend,
            sealed = (outcome == Restored::Sealed),
            "storage restored from a snapshot"
        );
        if outcome == Restored::Sealed {
            self.seal_now().await?;
        }
        Ok(CoreResponse::default())
    }
}
