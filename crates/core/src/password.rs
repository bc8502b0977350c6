//! Password policies (`sys/policies/password/<name>`): HCL documents with a length and
//! charset rules (`rule "charset" { charset = "…" min-chars = N }`), and a generator that
//! draws every character uniformly from the system CSPRNG.

use crate::error::barrier_err;
use crate::{Core, CoreResponse, Result};
use coffer_barrier::SecureStorage;
pub use coffer_password_policy::PasswordPolicy;
use coffer_sdk::{LogicalError, Operation};
use serde_json::{json, Map, Value};

const PREFIX: &str = "sys/password_policy/";
impl Core {
    pub(crate) async fn handle_password_policy(
        &self,
        op: Operation,
        rest: &str,
        d: &Map<String, Value>,
    ) -> Result<CoreResponse> {
        use Operation::*;
        let b = &self.barrier;
        let rest = rest.trim_end_matches('/');
        if rest.is_empty() {
            return match op {
                List => {
                    let keys = b.list(PREFIX).await.map_err(barrier_err)?;
                    if keys.is_empty() {
                        return Err(LogicalError::not_found());
                    }
                    Ok(CoreResponse::data(obj(json!({ "keys": keys }))))
                }
                _ => Err(LogicalError::unsupported_operation()),
            };
        }
        let (name, generate) = match rest.strip_suffix("/generate") {
            Some(n) => (n, true),
            None => (rest, false),
        };
        if name.is_empty() || name.contains('/') {
            return Err(LogicalError::bad_request("invalid password policy name"));
        }
        let key = format!("{PREFIX}{name}");
        if generate {
            if op != Read {
                return Err(LogicalError::unsupported_operation());
            }
            let Some(raw) = b.get(&key).await.map_err(barrier_err)? else {
                return Err(LogicalError::bad_request(format!("no password policy found with name {name:?}")));
            };
            let policy = PasswordPolicy::parse(&String::from_utf8_lossy(&raw))?;
            return Ok(CoreResponse::data(obj(json!({ "password": policy.generate()? }))));
        }
        match op {
            Read => match b.get(&key).await.map_err(barrier_err)? {
                Some(raw) => Ok(CoreResponse::data(obj(json!({ "policy": String::from_utf8_lossy(&raw) })))),
                // As OpenBao: a 404 that says why.
                None => Err(LogicalError::new(coffer_sdk::ErrorKind::NotFound, "policy does not exist")),
            },
            Create | Update => {
                let text = d.get("policy").and_then(Value::as_str).unwrap_or("");
                let text = decode_maybe_base64(text);
                if text.trim().is_empty() {
                    return Err(LogicalError::bad_request("missing policy"));
                }
                let policy = PasswordPolicy::parse(&text)?;
                // A policy that cannot produce a password is refused up front.
                policy.generate()?;
                b.put(&key, text.as_bytes()).await.map_err(barrier_err)?;
                Ok(CoreResponse::default())
            }
            Delete => {
                b.delete(&key).await.map_err(barrier_err)?;
                Ok(CoreResponse::default())
            }
            _ => Err(LogicalError::unsupported_operation()),
        }
    }
}

/// The system services backends reach through the SDK (password generation, the caller's
/// identity for templates).
pub struct Services {
    pub barrier: std::sync::Arc<coffer_barrier::Barrier>,
    /// The unsealed state whose identity store answers `identity_facts` (set at each unseal).
    pub(crate) active: std::sync::RwLock<std::sync::Weak<crate::Active>>,
}

impl Services {
    pub(crate) fn new(barrier: std::sync::Arc<coffer_barrier::Barrier>) -> Self {
        Services { barrier, active: std::sync::RwLock::new(std::sync::Weak::new()) }
    }

    pub(crate) fn set_active(&self, active: &std::sync::Arc<crate::Active>) {
        *self.active.write().unwrap_or_else(std::sync::PoisonError::into_inner) = std::sync::Arc::downgrade(active);
    }
}

#[async_trait::async_trait]
impl coffer_sdk::SystemServices for Services {
    /// Generates a password from a named policy (or the default policy for "").
    async fn generate_password(&self, name: &str) -> Result<String> {
        if name.is_empty() {
            return Ok(PasswordPolicy::default_policy().generate()?);
        }
        let Some(raw) = self.barrier.get(&format!("{PREFIX}{name}")).await.map_err(barrier_err)? else {
            return Err(LogicalError::bad_request(format!("no password policy found with name {name:?}")));
        };
        Ok(PasswordPolicy::parse(&String::from_utf8_lossy(&raw))?.generate()?)
    }

    async fn identity_facts(&self, entity_id: &str) -> Result<Option<coffer_sdk::identity_template::IdentityFacts>> {
        let active = self.active.read().unwrap_or_else(std::sync::PoisonError::into_inner).upgrade();
        match active {
            Some(a) => Ok(a.identity.facts_for(entity_id).await),
            None => Ok(None),
        }
    }
}

fn decode_maybe_base64(s: &str) -> String {
    use base64::Engine;
    if s.contains('=') && s.contains('\n') || s.contains('"') {
        return s.to_string();
    }
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .filter(|t| t.contains("length"))
        .unwrap_or_else(|| s.to_string())
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}
