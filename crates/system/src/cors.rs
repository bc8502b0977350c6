//! Cross-origin resource sharing: the `sys/config/cors` endpoint and the configuration the HTTP
//! layer consults for requests that carry an `Origin`. Stored in the barrier under
//! `core/cors-config`, loaded at unseal, kept in memory.

use crate::{CoreResponse, Result};
use coffer_barrier::{Barrier, SecureStorage};
use coffer_sdk::{LogicalError, Operation};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::sync::{Arc, RwLock};

/// The barrier key of the CORS configuration.
pub const STORAGE_KEY: &str = "core/cors-config";

/// Headers a cross-origin request may always send (OpenBao's list).
pub const STANDARD_HEADERS: &[&str] = &[
    "Content-Type",
    "Authorization",
    "X-Vault-Token",
    "X-Vault-MFA",
    "X-Vault-No-Request-Forwarding",
    "X-Vault-Wrap-Format",
    "X-Vault-Wrap-TTL",
    "X-Requested-With",
    "X-Vault-AWS-IAM-Server-ID",
    "X-Vault-Policy-Override",
];

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorsConfig {
    pub enabled: bool,
    /// Origins allowed to make cross-origin requests; `["*"]` allows any.
    pub allowed_origins: Vec<String>,
    /// The standard headers followed by the operator's.
    pub allowed_headers: Vec<String>,
    #[serde(default)]
    pub allow_credentials: bool,
}

impl CorsConfig {
    pub fn allows_origin(&self, origin: &str) -> bool {
        self.allowed_origins.iter().any(|o| o == "*" || o == origin)
    }
}

/// The configuration in force: `Some` only while CORS is enabled.
#[derive(Debug, Default)]
pub struct CorsState(RwLock<Option<Arc<CorsConfig>>>);

impl CorsState {
    /// The configuration while CORS is enabled (for the HTTP layer).
    pub fn get(&self) -> Option<Arc<CorsConfig>> {
        self.0.read().ok().and_then(|g| g.clone())
    }

    /// Reads the stored configuration (at unseal).
    pub async fn load(&self, barrier: &Barrier) -> Result<()> {
        let c = match barrier.get(STORAGE_KEY).await.map_err(coffer_barrier::logical_error)? {
            Some(raw) => serde_json::from_slice(&raw)
                .map_err(|e| LogicalError::internal("CORS configuration unreadable").with_source(e))?,
            None => CorsConfig::default(),
        };
        self.set(c);
        Ok(())
    }

    async fn store(&self, barrier: &Barrier, c: CorsConfig) -> Result<()> {
        let raw = serde_json::to_vec(&c).map_err(|e| LogicalError::internal(e.to_string()).with_source(e))?;
        barrier.put(STORAGE_KEY, &raw).await.map_err(coffer_barrier::logical_error)?;
        self.set(c);
        Ok(())
    }

    fn set(&self, c: CorsConfig) {
        let v = if c.enabled { Some(Arc::new(c)) } else { None };
        if let Ok(mut g) = self.0.write() {
            *g = v;
        }
    }
}

/// A list given as a JSON list or a comma-separated string.
fn list(name: &str, v: Option<&Value>) -> Result<Vec<String>> {
    let items: Vec<String> = match v {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => s.split(',').map(|p| p.trim().to_string()).collect(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| x.as_str().map(|s| s.trim().to_string()))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| LogicalError::bad_request(format!("{name} must be a list of strings")))?,
        Some(_) => return Err(LogicalError::bad_request(format!("{name} must be a list of strings"))),
    };
    Ok(items.into_iter().filter(|s| !s.is_empty()).collect())
}

fn is_header_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c))
}

impl CorsState {
    /// `sys/config/cors`: read; write (which enables CORS, as in OpenBao); delete (disables it).
    pub async fn handle(&self, barrier: &Barrier, op: Operation, d: &Map<String, Value>) -> Result<CoreResponse> {
        match op {
            Operation::Read => {
                let body = match self.get() {
                    None => json!({ "enabled": false }),
                    Some(c) => json!({
                        "enabled": true,
                        "allowed_origins": c.allowed_origins,
                        "allowed_headers": c.allowed_headers,
                        "allow_credentials": c.allow_credentials,
                    }),
                };
                Ok(CoreResponse::legacy(crate::obj(body)))
            }
            Operation::Update | Operation::Create => {
                let origins = list("allowed_origins", d.get("allowed_origins"))?;
                if origins.is_empty() {
                    return Err(LogicalError::bad_request("at least one origin or the wildcard must be provided"));
                }
                if origins.len() > 1 && origins.iter().any(|o| o == "*") {
                    return Err(LogicalError::bad_request(
                        "to allow all origins the '*' must be the only value for allowed_origins",
                    ));
                }
                let mut headers: Vec<String> = STANDARD_HEADERS.iter().map(|h| h.to_string()).collect();
                for h in list("allowed_headers", d.get("allowed_headers"))? {
                    if !is_header_name(&h) {
                        return Err(LogicalError::bad_request(format!("allowed_headers: {h:?} is not a header name")));
                    }
                    if !headers.iter().any(|x| x.eq_ignore_ascii_case(&h)) {
                        headers.push(h);
                    }
                }
                let allow_credentials = match d.get("allow_credentials") {
                    None | Some(Value::Null) => false,
                    Some(v) => coffer_sdk::field::parse_bool("allow_credentials", v)?,
                };
                self.store(
                    barrier,
                    CorsConfig { enabled: true, allowed_origins: origins, allowed_headers: headers, allow_credentials },
                )
                .await?;
                Ok(CoreResponse::default())
            }
            Operation::Delete => {
                self.store(barrier, CorsConfig::default()).await?;
                Ok(CoreResponse::default())
            }
            _ => Err(LogicalError::unsupported_operation()),
        }
    }
}
