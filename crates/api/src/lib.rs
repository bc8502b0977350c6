//! Wire types shared by the Coffer server and its clients.
//!
//! These mirror the Vault/OpenBao HTTP envelope so existing clients decode them unchanged.
#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The `{"errors":[…]}` body every failed request carries.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorBody {
    pub errors: Vec<String>,
}

/// The `auth` block of a response (logins, token creation, lookups). Debug hides the token.
#[derive(Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Auth {
    pub client_token: String,
    pub accessor: String,
    pub policies: Vec<String>,
    pub token_policies: Vec<String>,
    /// Omitted when the token has no entity policies, as OpenBao omits it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_policies: Option<Vec<String>>,
    pub metadata: Option<Map<String, Value>>,
    pub lease_duration: i64,
    pub renewable: bool,
    pub entity_id: String,
    pub token_type: String,
    pub orphan: bool,
    pub mfa_requirement: Option<Value>,
    pub num_uses: i64,
}

/// The `wrap_info` block of a wrapped response. Debug hides the token.
#[derive(Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct WrapInfo {
    pub token: String,
    pub accessor: String,
    pub ttl: i64,
    pub creation_time: String,
    pub creation_path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wrapped_accessor: Option<String>,
}

/// The standard response envelope, fields in OpenBao's order (`coffer-http` serialises it).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Envelope {
    pub request_id: String,
    pub lease_id: String,
    pub renewable: bool,
    pub lease_duration: i64,
    pub data: Option<Map<String, Value>>,
    pub wrap_info: Option<WrapInfo>,
    pub warnings: Option<Vec<String>>,
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
