//! Wire types shared by the Coffer server and its clients.
//!
//! These mirror the Vault/OpenBao HTTP envelope so existing clients decode them unchanged.
//!
//! ```
//! use coffer_api::Envelope;
//!
//! let body = r#"{"request_id":"r1","lease_id":"","renewable":false,"lease_duration":0,
//!                "data":{"value":"v"},"wrap_info":null,"warnings":null,"auth":null}"#;
//! let env: Envelope = serde_json::from_str(body).unwrap();
//! assert_eq!(env.data.unwrap()["value"], "v");
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The `{"errors":[…]}` body every failed request carries.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorBody {
    /// The error messages, for people (their wording is not an API).
    pub errors: Vec<String>,
}

/// The `auth` block of a response (logins, token creation, lookups). Debug hides the token.
#[derive(Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Auth {
    /// The token itself (secret: never logged; `Debug` redacts it).
    pub client_token: String,
    /// The token's accessor: names the token for lookup and revocation without being it.
    pub accessor: String,
    /// Every policy the token carries (its own and its entity's).
    pub policies: Vec<String>,
    /// The policies attached to the token itself.
    pub token_policies: Vec<String>,
    /// Omitted when the token has no entity policies, as OpenBao omits it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_policies: Option<Vec<String>>,
    /// Metadata the auth method attached (user name, role, …).
    pub metadata: Option<Map<String, Value>>,
    /// The token's time to live, in seconds (0: no expiry).
    pub lease_duration: i64,
    /// Whether the token can be renewed.
    pub renewable: bool,
    /// The identity entity the token belongs to (empty when none).
    pub entity_id: String,
    /// `service` or `batch`.
    pub token_type: String,
    /// Whether the token has no parent (revoking a parent does not revoke it).
    pub orphan: bool,
    /// An MFA requirement to satisfy before the token is usable (`null` when none).
    pub mfa_requirement: Option<Value>,
    /// How many uses the token has left (0: unlimited).
    pub num_uses: i64,
}

/// The `wrap_info` block of a wrapped response. Debug hides the token.
#[derive(Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct WrapInfo {
    /// The single-use wrapping token (secret; `Debug` redacts it).
    pub token: String,
    /// The wrapping token's accessor.
    pub accessor: String,
    /// Seconds until the wrapped response expires.
    pub ttl: i64,
    /// When the response was wrapped (RFC 3339).
    pub creation_time: String,
    /// The request path whose response is wrapped.
    pub creation_path: String,
    /// The accessor of a wrapped token, when the wrapped response created one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wrapped_accessor: Option<String>,
}

/// The standard response envelope, fields in OpenBao's order (`coffer-http` serialises it).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Envelope {
    /// A unique id of the request (also in the audit log).
    pub request_id: String,
    /// The lease of a leased secret (empty when none).
    pub lease_id: String,
    /// Whether the lease can be renewed.
    pub renewable: bool,
    /// The lease's time to live in seconds (or a KV `ttl` hint).
    pub lease_duration: i64,
    /// The answer's data.
    pub data: Option<Map<String, Value>>,
    /// Set instead of `data` when the response was wrapped.
    pub wrap_info: Option<WrapInfo>,
    /// Warnings for the user (ignored parameters, deprecations).
    pub warnings: Option<Vec<String>>,
    /// Set by logins and token creation.
    pub auth: Option<Auth>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("client_token", &"<redacted>")
            .field("accessor", &self.accessor)
            .field("policies", &self.policies)
            .field("lease_duration", &self.lease_duration)
            .field("token_type", &self.token_type)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for WrapInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WrapInfo")
            .field("token", &"<redacted>")
            .field("accessor", &self.accessor)
            .field("ttl", &self.ttl)
            .field("creation_path", &self.creation_path)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_tokens() {
        let a = Auth { client_token: "s.supersecrettokenvalue00".into(), ..Default::default() };
        assert!(!format!("{a:?}").contains("supersecret"));
        let w = WrapInfo { token: "s.supersecrettokenvalue00".into(), ..Default::default() };
        assert!(!format!("{w:?}").contains("supersecret"));
    }
}
