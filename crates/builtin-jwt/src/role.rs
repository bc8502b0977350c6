//! A role (`role/<name>`): what a token must show to log in, and what the login gets.

use coffer_sdk::field::FieldType;
use coffer_sdk::framework::FieldSpec;
use coffer_sdk::tokenutil::{token_fields, TokenParams};
use coffer_sdk::{LogicalError, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

#[derive(Clone, Serialize, Deserialize, Default)]
pub struct Role {
    pub role_type: String,
    #[serde(default)]
    pub bound_audiences: Vec<String>,
    #[serde(default)]
    pub bound_subject: String,
    #[serde(default)]
    pub bound_claims: Map<String, Value>,
    #[serde(default)]
    pub bound_claims_type: String,
    #[serde(default)]
    pub claim_mappings: Map<String, Value>,
    #[serde(default)]
    pub user_claim: String,
    #[serde(default)]
    pub user_claim_json_pointer: bool,
    #[serde(default)]
    pub groups_claim: String,
    #[serde(default)]
    pub allowed_redirect_uris: Vec<String>,
    #[serde(default)]
    pub oidc_scopes: Vec<String>,
    #[serde(default)]
    pub verbose_oidc_logging: bool,
    #[serde(default)]
    pub clock_skew_leeway: i64,
    #[serde(default)]
    pub expiration_leeway: i64,
    #[serde(default)]
    pub not_before_leeway: i64,
    #[serde(default)]
    pub max_age: i64,
    #[serde(flatten)]
    pub token: TokenParams,
}

pub fn role_fields() -> Vec<FieldSpec> {
    let mut f = vec![
        FieldSpec::new("name", FieldType::String, "Name of the role"),
        FieldSpec::new("role_type", FieldType::String, "jwt or oidc (default oidc)"),
        FieldSpec::new("bound_audiences", FieldType::CommaStringSlice, "The aud values a token must carry one of"),
        FieldSpec::new("bound_subject", FieldType::String, "The sub a token must carry"),
        FieldSpec::new("bound_claims", FieldType::Map, "Claims a token must carry, with their accepted values"),
        FieldSpec::new("bound_claims_type", FieldType::String, "string (exact) or glob (`*` wildcards)"),
        FieldSpec::new("claim_mappings", FieldType::Map, "Claim name → metadata key for the token and alias"),
        FieldSpec::new("user_claim", FieldType::String, "The claim naming the user (the entity alias), required"),
        FieldSpec::new("user_claim_json_pointer", FieldType::Bool, "Read user_claim as a JSON pointer"),
        FieldSpec::new("groups_claim", FieldType::String, "The claim listing the user's groups (group aliases)"),
        FieldSpec::new("allowed_redirect_uris", FieldType::CommaStringSlice, "Redirect URIs an OIDC login may use"),
        FieldSpec::new("oidc_scopes", FieldType::CommaStringSlice, "Scopes requested besides openid"),
        FieldSpec::new("verbose_oidc_logging", FieldType::Bool, "Log the claims of each login (off by default)"),
        FieldSpec::new("clock_skew_leeway", FieldType::DurationSecond, "Leeway for clock skew (0: 60 s, -1: none)"),
        FieldSpec::new("expiration_leeway", FieldType::DurationSecond, "Extra leeway on exp (0 or -1: none)"),
        FieldSpec::new("not_before_leeway", FieldType::DurationSecond, "Extra leeway on nbf (0 or -1: none)"),
        FieldSpec::new("max_age", FieldType::DurationSecond, "Largest allowed age of an OIDC authentication"),
        FieldSpec::new("callback_mode", FieldType::String, "Only client is supported"),
        FieldSpec::new("oidc_disable_confirmation", FieldType::Bool, "Not supported (false only)"),
        FieldSpec::new("token_policies_template_claims", FieldType::Bool, "Not supported (false only)"),
        FieldSpec::new("oauth2_metadata", FieldType::CommaStringSlice, "Not supported (empty only)"),
    ];
    f.extend(token_fields());
    f
}

fn bad(m: impl Into<String>) -> LogicalError {
    LogicalError::bad_request(m)
}

fn strings(v: &Value, name: &str) -> Result<Vec<String>> {
    coffer_sdk::field::parse_string_slice(name, v)
        .map(|l| l.into_iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
}

fn signed_duration(v: &Value, name: &str) -> Result<i64> {
    // -1 is meaningful (no leeway): accept it as a number or a string.
    if v.as_i64() == Some(-1) || v.as_str() == Some("-1") {
        return Ok(-1);
    }
    coffer_sdk::field::parse_duration(name, v)
}

impl Role {
    pub fn new() -> Self {
        Role {
            role_type: "oidc".into(),
            bound_claims_type: "string".into(),
            token: TokenParams { token_type: "default".into(), ..TokenParams::default() },
            ..Role::default()
        }
    }

    /// Applies a write's fields (raw request data: durations may be -1).
    pub fn update_from(&mut self, data: &Map<String, Value>) -> Result<()> {
        let get = |k: &str| data.get(k).filter(|v| !v.is_null());
        let text =
            |k: &str| -> Result<Option<String>> { get(k).map(|v| coffer_sdk::field::parse_string(k, v)).transpose() };
        let flag =
            |k: &str| -> Result<Option<bool>> { get(k).map(|v| coffer_sdk::field::parse_bool(k, v)).transpose() };
        let map = |k: &str| -> Result<Option<Map<String, Value>>> {
            match get(k) {
                None => Ok(None),
                Some(Value::Object(m)) => Ok(Some(m.clone())),
                Some(Value::String(s)) if s.trim().is_empty() => Ok(Some(Map::new())),
                Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
                    Ok(Value::Object(m)) => Ok(Some(m)),
                    _ => Err(bad(format!("{k} must be a JSON object"))),
                },
                Some(_) => Err(bad(format!("{k} must be a JSON object"))),
            }
        };
        if let Some(t) = text("role_type")? {
            if t != "jwt" && t != "oidc" {
                return Err(bad(format!("invalid 'role_type': {t}")));
            }
            self.role_type = t;
        }
        if let Some(v) = get("bound_audiences") {
            self.bound_audiences = strings(v, "bound_audiences")?;
        }
        if let Some(t) = text("bound_subject")? {
            self.bound_subject = t;
        }
        if let Some(m) = map("bound_claims")? {
            for (k, v) in &m {
                let ok = match v {
                    Value::String(_) | Value::Number(_) | Value::Bool(_) => true,
                    Value::Array(a) => {
                        a.iter().all(|x| matches!(x, Value::String(_) | Value::Number(_) | Value::Bool(_)))
                    }
                    _ => false,
                };
                if !ok {
                    return Err(bad(format!(
                        "bound_claims: the value of {k:?} must be a string, number, boolean or a list of them"
                    )));
                }
            }
            self.bound_claims = m;
        }
        if let Some(t) = text("bound_claims_type")? {
            if t != "string" && t != "glob" {
                return Err(bad(format!("invalid 'bound_claims_type': {t}")));
            }
            self.bound_claims_type = t;
        }
        if let Some(m) = map("claim_mappings")? {
            let mut seen = std::collections::HashSet::new();
            for (k, v) in &m {
                let Some(target) = v.as_str() else {
                    return Err(bad(format!("claim_mappings: the value of {k:?} must be a string")));
                };
                if !seen.insert(target.to_string()) {
                    return Err(bad(format!("claim_mappings contains multiple mappings for key {target:?}")));
                }
                if target == "role" {
                    return Err(bad("claim_mappings: the metadata key \"role\" is reserved"));
                }
            }
            self.claim_mappings = m;
        }
        if let Some(t) = text("user_claim")? {
            self.user_claim = t;
        }
        if let Some(b) = flag("user_claim_json_pointer")? {
            self.user_claim_json_pointer = b;
        }
        if let Some(t) = text("groups_claim")? {
            self.groups_claim = t;
        }
        if let Some(v) = get("allowed_redirect_uris") {
            self.allowed_redirect_uris = strings(v, "allowed_redirect_uris")?;
        }
        if let Some(v) = get("oidc_scopes") {
            self.oidc_scopes = strings(v, "oidc_scopes")?;
        }
        if let Some(b) = flag("verbose_oidc_logging")? {
            self.verbose_oidc_logging = b;
        }
        for (k, slot) in [
            ("clock_skew_leeway", &mut self.clock_skew_leeway),
            ("expiration_leeway", &mut self.expiration_leeway),
            ("not_before_leeway", &mut self.not_before_leeway),
        ] {
            if let Some(v) = get(k) {
                let d = signed_duration(v, k)?;
                if d < -1 {
                    return Err(bad(format!("{k} must be -1, 0 or a positive duration")));
                }
                *slot = d;
            }
        }
        if let Some(v) = get("max_age") {
            let d = coffer_sdk::field::parse_duration("max_age", v)?;
            if d < 0 {
                return Err(bad("max_age must not be negative"));
            }
            self.max_age = d;
        }
        if let Some(t) = text("callback_mode")? {
            if t != "client" && !t.is_empty() {
                return Err(bad(format!(
                    "callback_mode {t:?} is not supported by Coffer: only \"client\" (the provider redirects to the client)"
                )));
            }
        }
        for k in ["oidc_disable_confirmation", "token_policies_template_claims"] {
            if flag(k)? == Some(true) {
                return Err(bad(format!("{k} is not supported by Coffer: it must be false")));
            }
        }
        if let Some(v) = get("oauth2_metadata") {
            if !strings(v, "oauth2_metadata")?.is_empty() {
                return Err(bad("oauth2_metadata is not supported by Coffer: it must be empty"));
            }
        }
        self.token.update_from(data)?;
        if self.token.token_type == "batch" && self.token.token_num_uses > 0 {
            return Err(bad(
                "'token_type' cannot be 'batch' or 'default_batch' when set to generate tokens with limited use count",
            ));
        }
        // What a role must have.
        if self.user_claim.is_empty() {
            return Err(bad("a user claim must be defined on the role"));
        }
        if self.role_type == "oidc" && self.allowed_redirect_uris.is_empty() {
            return Err(bad("'allowed_redirect_uris' must be set if 'role_type' is 'oidc' or unspecified."));
        }
        if self.role_type == "jwt"
            && self.bound_audiences.is_empty()
            && self.bound_subject.is_empty()
            && self.bound_claims.is_empty()
            && self.token.token_bound_cidrs.is_empty()
        {
            return Err(bad("must have at least one bound constraint when creating/updating a role"));
        }
        Ok(())
    }

    pub fn to_response(&self) -> Map<String, Value> {
        let null_if_empty = |v: Value| match &v {
            Value::Array(a) if a.is_empty() => Value::Null,
            Value::Object(m) if m.is_empty() => Value::Null,
            _ => v,
        };
        let mut out = Map::new();
        out.insert("role_type".into(), json!(self.role_type));
        out.insert("bound_audiences".into(), null_if_empty(json!(self.bound_audiences)));
        out.insert("bound_subject".into(), json!(self.bound_subject));
        out.insert("bound_claims".into(), null_if_empty(Value::Object(self.bound_claims.clone())));
        out.insert("bound_claims_type".into(), json!(self.bound_claims_type));
        out.insert("claim_mappings".into(), null_if_empty(Value::Object(self.claim_mappings.clone())));
        out.insert("user_claim".into(), json!(self.user_claim));
        out.insert("user_claim_json_pointer".into(), json!(self.user_claim_json_pointer));
        out.insert("groups_claim".into(), json!(self.groups_claim));
        out.insert("allowed_redirect_uris".into(), null_if_empty(json!(self.allowed_redirect_uris)));
        out.insert("oidc_scopes".into(), null_if_empty(json!(self.oidc_scopes)));
        out.insert("verbose_oidc_logging".into(), json!(self.verbose_oidc_logging));
        out.insert("clock_skew_leeway".into(), json!(self.clock_skew_leeway));
        out.insert("expiration_leeway".into(), json!(self.expiration_leeway));
        out.insert("not_before_leeway".into(), json!(self.not_before_leeway));
        out.insert("max_age".into(), json!(self.max_age));
        out.insert("callback_mode".into(), json!("client"));
        out.insert("oidc_disable_confirmation".into(), json!(false));
        out.insert("token_policies_template_claims".into(), json!(false));
        out.insert("oauth2_metadata".into(), Value::Null);
        self.token.to_response(&mut out);
        out
    }
}
