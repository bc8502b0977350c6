//! Password policies (`sys/policies/password/<name>`): HCL documents with a length and
//! charset rules (`rule "charset" { charset = "…" min-chars = N }`), stored in the barrier;
//! the generator (`coffer-password-policy`) draws every character uniformly from the system
//! CSPRNG.

use crate::{obj, CoreResponse, Result};
use coffer_barrier::logical_error as barrier_err;
use coffer_barrier::{Barrier, SecureStorage};
pub use coffer_password_policy::PasswordPolicy;
use coffer_sdk::{LogicalError, Operation};
use serde_json::{json, Map, Value};

/// Where the policies are stored, by name.
pub const PREFIX: &str = "sys/password_policy/";

/// Generates a password from a named policy (or the default policy for ""), for backends
/// (`SystemServices::generate_password`).
pub async fn generate(barrier: &Barrier, name: &str) -> Result<String> {
    if name.is_empty() {
        return Ok(PasswordPolicy::default_policy().generate()?);
    }
    let Some(raw) = barrier.get(&format!("{PREFIX}{name}")).await.map_err(barrier_err)? else {
        return Err(LogicalError::bad_request(format!("no password policy found with name {name:?}")));
    };
    Ok(PasswordPolicy::parse(&String::from_utf8_lossy(&raw))?.generate()?)
}

/// `sys/policies/password…` (`rest`: what follows `sys/policies/password`, no leading `/`).
pub async fn handle(b: &Barrier, op: Operation, rest: &str, d: &Map<String, Value>) -> Result<CoreResponse> {
    use Operation::*;
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
