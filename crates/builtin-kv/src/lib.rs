//! The KV secrets engine. Version 1 ([`KvV1`]): arbitrary JSON objects stored under arbitrary
//! paths. Version 2 ([`KvV2`], module [`v2`]): versioned secrets with metadata.
#![forbid(unsafe_code)]

mod util;
pub mod v2;

pub use v2::KvV2;

use async_trait::async_trait;
use coffer_sdk::field::FieldType;
use coffer_sdk::framework::{FieldSpec, PathFlags, PathSpec, PathTable};
use coffer_sdk::{Backend, LogicalError, Operation, Request, Response, Result};
use serde_json::{Map, Value};
use std::sync::OnceLock;

pub struct KvV1 {
    table: PathTable,
}

impl Default for KvV1 {
    fn default() -> Self {
        Self::new()
    }
}

impl KvV1 {
    pub fn new() -> Self {
        KvV1 {
            table: PathTable::new(vec![PathSpec {
                flags: PathFlags::NORMAL,
                pattern: ".*",
                fields: vec![FieldSpec::new(
                    "ttl",
                    FieldType::Raw,
                    "Lease duration hint returned with reads of this secret (Vault KV v1 convention)",
                )],
                operations: vec![
                    (Operation::Read, "Read the secret at this path"),
                    (Operation::Create, "Store a secret at this path"),
                    (Operation::Update, "Store a secret at this path"),
                    (Operation::Delete, "Delete the secret at this path"),
                    (Operation::List, "List the keys under this path"),
                ],
                passthrough: true,
                synopsis: "Pass-through secret storage to the mount's storage view",
                description: "Stores any JSON object under any path; reads return it as written.",
            }]),
        }
    }
}

fn paths_static() -> &'static [PathSpec] {
    static P: OnceLock<Vec<PathSpec>> = OnceLock::new();
    P.get_or_init(|| KvV1::new().table.specs().to_vec())
}

#[async_trait]
impl Backend for KvV1 {
    fn backend_type(&self) -> &'static str {
        "kv"
    }

    fn paths(&self) -> &[PathSpec] {
        paths_static()
    }

    async fn handle_request(&self, req: Request) -> Result<Option<Response>> {
        let ignored = self.table.ignored_parameters(req.operation, &req.path, &req.data);
        coffer_sdk::framework::warn_ignored(self.dispatch(req).await, &ignored)
    }

    async fn exists(&self, req: &Request) -> Result<Option<bool>> {
        Ok(Some(req.storage.get(&req.path).await?.is_some()))
    }
}

impl KvV1 {
    /// Routes a request to its handler (the ignored-parameters warning is added around it).
    async fn dispatch(&self, req: Request) -> Result<Option<Response>> {
        let matched = self.table.route(req.operation, &req.path, &req.data)?;
        let path = req.path.as_str();
        match req.operation {
            Operation::Read => {
                let Some(raw) = req.storage.get(path).await? else {
                    return Ok(None);
                };
                let data: Map<String, Value> = serde_json::from_slice(&raw)
                    // drop-cause: the entry holds secret data, which a JSON error could quote.
                    .map_err(|_| LogicalError::internal(format!("stored entry at {path:?} is not a JSON object")))?;
                // A "ttl" key in the secret sets the advertised lease; otherwise the mount's.
                // `lease` is the older spelling OpenBao still honours when `ttl` is absent.
                let ttl = match data.get("ttl").or_else(|| data.get("lease")) {
                    Some(v) => coffer_sdk::field::parse_duration("ttl", v).unwrap_or(req.system.default_lease_ttl),
                    None => req.system.default_lease_ttl,
                };
                let mut resp = Response::data(data);
                resp.lease_duration = Some(ttl);
                Ok(Some(resp))
            }
            Operation::Create | Operation::Update => {
                if path.is_empty() || path.ends_with('/') {
                    return Err(LogicalError::bad_request("a secret path must not be empty or end with '/'"));
                }
                let data = matched.fields.raw;
                if data.is_empty() {
                    return Err(LogicalError::bad_request("missing data fields"));
                }
                let bytes = serde_json::to_vec(&data).map_err(|e| LogicalError::internal(e.to_string()))?;
                req.storage.put(path, &bytes).await?;
                Ok(None)
            }
            Operation::Delete => {
                req.storage.delete(path).await?;
                Ok(None)
            }
            Operation::List => {
                let prefix = if path.is_empty() || path.ends_with('/') { path.to_string() } else { format!("{path}/") };
                let keys = req.storage.list(&prefix).await?;
                if keys.is_empty() {
                    return Ok(None);
                }
                Ok(Some(Response::list(keys)))
            }
            _ => Err(LogicalError::unsupported_operation()),
        }
    }
}
