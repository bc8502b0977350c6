//! `sys/raw/<key>`: read, write, delete and list storage through the barrier (decrypted), as
//! Vault's raw endpoint does. Off unless the configuration says `raw_storage_endpoint = true`;
//! it needs `sudo`; the barrier's own entries (`core/seal-config`, `core/root-key`,
//! `core/keyring`) are refused. `encoding=base64` reads and writes base64 values.

use crate::services::SystemCore;
use crate::{CoreResponse, Result};
use base64::Engine;
use coffer_barrier::{BarrierError, SecureStorage};
use coffer_sdk::{LogicalError, Operation};
use serde_json::{json, Map, Value};

fn raw_err(key: &str, e: BarrierError) -> LogicalError {
    match e {
        BarrierError::Reserved(_) => LogicalError::bad_request(format!("cannot access {key:?}")),
        other => coffer_barrier::logical_error(other),
    }
}

fn base64_wanted(d: &Map<String, Value>) -> Result<bool> {
    match d.get("encoding").and_then(Value::as_str).unwrap_or("") {
        "" => Ok(false),
        "base64" => Ok(true),
        other => Err(LogicalError::bad_request(format!("invalid encoding {other:?}"))),
    }
}

/// `sys/raw/…` (`path` the whole request path).
pub(crate) async fn handle_raw<S: SystemCore>(
    s: &S,
    op: Operation,
    path: &str,
    d: &Map<String, Value>,
) -> Result<CoreResponse> {
    if !s.raw_storage_endpoint() {
        return Err(LogicalError::unsupported_path(path));
    }
    let key = path.strip_prefix("sys/raw").unwrap_or("").trim_start_matches('/');
    let b64 = base64_wanted(d)?;
    match op {
        Operation::List => {
            let keys = s.barrier().list(key).await.map_err(|e| raw_err(key, e))?;
            if keys.is_empty() {
                return Err(LogicalError::not_found());
            }
            Ok(CoreResponse::data(Map::from_iter([("keys".to_string(), json!(keys))])))
        }
        _ if key.is_empty() || key.ends_with('/') => Err(LogicalError::bad_request("a key is required")),
        Operation::Read => {
            let v = s.barrier().get(key).await.map_err(|e| raw_err(key, e))?.ok_or_else(LogicalError::not_found)?;
            let value = if b64 {
                base64::engine::general_purpose::STANDARD.encode(&*v)
            } else {
                String::from_utf8_lossy(&v).into_owned()
            };
            Ok(CoreResponse::data(Map::from_iter([("value".to_string(), Value::String(value))])))
        }
        Operation::Update | Operation::Create => {
            let Some(v) = d.get("value").and_then(Value::as_str) else {
                return Err(LogicalError::bad_request("missing value"));
            };
            let bytes = if b64 {
                base64::engine::general_purpose::STANDARD
                    .decode(v)
                    // drop-cause: the decoder's error quotes a byte of the value, which may be secret.
                    .map_err(|_| LogicalError::bad_request("value is not valid base64"))?
            } else {
                v.as_bytes().to_vec()
            };
            s.barrier().put(key, &bytes).await.map_err(|e| raw_err(key, e))?;
            Ok(CoreResponse::default())
        }
        Operation::Delete => {
            s.barrier().delete(key).await.map_err(|e| raw_err(key, e))?;
            Ok(CoreResponse::default())
        }
        _ => Err(LogicalError::unsupported_operation()),
    }
}
