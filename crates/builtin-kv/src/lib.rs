//! The KV secrets engine. Version 1 ([`KvV1`]): arbitrary JSON objects stored under arbitrary
//! paths. Version 2 ([`KvV2`], module [`v2`]): versioned secrets with metadata.
#![forbid(unsafe_code)]

mod util;
pub mod v2;

pub use v2::KvV2;

use async_trait::async_trait;
use coffer_sdk::field::FieldType;
use coffer_sdk::framework::{FieldData, FieldSpec, Handler, PathFlags, PathSpec, Paths};
use coffer_sdk::{LogicalError, Operation, Request, Response, Result};
use serde_json::{Map, Value};

/// The one path of KV version 1: any key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Secret,
}

/// KV version 1; serve it wrapped in [`coffer_sdk::framework::Backend`].
pub struct KvV1 {
    paths: Paths<Route>,
}

impl Default for KvV1 {
    fn default() -> Self {
        Self::new()
    }
}

impl KvV1 {
    pub fn new() -> Self {
        KvV1 {
            paths: Paths::new(vec![(
                Route::Secret,
                PathSpec {
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
                },
            )]),
        }
    }
}

#[async_trait]
impl Handler for KvV1 {
    type Route = Route;

    fn backend_type(&self) -> &'static str {
        "kv"
    }

    fn paths(&self) -> &Paths<Route> {
        &self.paths
    }

    async fn handle(&self, route: Route, req: Request, fields: FieldData) -> Result<Option<Response>> {
        self.dispatch(route, req, fields).await
    }

    /// Every path: a write to a missing key is a `create`.
    async fn exists(&self, _route: Route, req: &Request, _fields: &FieldData) -> Result<Option<bool>> {
        Ok(Some(req.storage.get(&req.path).await?.is_some()))
    }
}

impl KvV1 {
    /// Serves a request of the one route (the ignored-parameters warning is added around it).
    async fn dispatch(&self, Route::Secret: Route, req: Request, fields: FieldData) -> Result<Option<Response>> {
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
                let data = fields.raw;
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
