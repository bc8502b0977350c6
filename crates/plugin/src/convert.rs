//! Translation between the protocol's messages and `coffer_sdk` types, for both sides.
//!
//! Protocol conventions: durations are nanoseconds (the SDK uses seconds), data is a JSON
//! object in a string, errors carry a type from a fixed enumeration.

use crate::proto::{logical, pb};
use coffer_sdk::{AuthResponse, ErrorKind, LogicalError, Operation, Response, SecretLease};
use serde_json::{Map, Value};

const NANOS: i64 = 1_000_000_000;

pub(crate) const ERR_UNKNOWN: u32 = 0;
pub(crate) const ERR_USER: u32 = 1;
pub(crate) const ERR_INTERNAL: u32 = 2;
pub(crate) const ERR_CODED: u32 = 3;
pub(crate) const ERR_BAD_REQUEST: u32 = 4;
pub(crate) const ERR_UNSUPPORTED_OPERATION: u32 = 5;
pub(crate) const ERR_UNSUPPORTED_PATH: u32 = 6;
pub(crate) const ERR_INVALID_REQUEST: u32 = 7;
pub(crate) const ERR_PERMISSION_DENIED: u32 = 8;
pub(crate) const ERR_MULTI_AUTHZ_PENDING: u32 = 9;
pub(crate) const ERR_UNRECOVERABLE: u32 = 10;

pub(crate) fn to_nanos(secs: i64) -> i64 {
    secs.saturating_mul(NANOS)
}

pub(crate) fn to_secs(nanos: i64) -> i64 {
    nanos / NANOS
}

pub(crate) fn now_timestamp() -> prost_types::Timestamp {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    prost_types::Timestamp { seconds: d.as_secs() as i64, nanos: d.subsec_nanos() as i32 }
}

/// A JSON object from the protocol's string form; empty and `null` mean an empty object.
pub(crate) fn json_object(s: &str) -> Result<Map<String, Value>, LogicalError> {
    let s = s.trim();
    if s.is_empty() || s == "null" {
        return Ok(Map::new());
    }
    match serde_json::from_str::<Value>(s) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(Value::Null) => Ok(Map::new()),
        Ok(_) => Err(LogicalError::internal("plugin protocol: data is not a JSON object")),
        Err(e) => Err(LogicalError::internal(format!("plugin protocol: data is not valid JSON: {e}"))),
    }
}

pub(crate) fn json_string(m: &Map<String, Value>) -> String {
    serde_json::to_string(m).unwrap_or_else(|_| "{}".to_string())
}

pub(crate) fn operation_from_str(op: &str) -> Option<Operation> {
    Operation::from_name(op)
}

fn string_map(m: &Map<String, Value>) -> std::collections::HashMap<String, String> {
    m.iter()
        .map(|(k, v)| {
            let s = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), s)
        })
        .collect()
}

fn value_map(m: &std::collections::HashMap<String, String>) -> Map<String, Value> {
    let mut keys: Vec<&String> = m.keys().collect();
    keys.sort();
    keys.into_iter().map(|k| (k.clone(), Value::String(m[k].clone()))).collect()
}

fn lease_options(ttl: i64, max_ttl: i64, renewable: bool) -> pb::LeaseOptions {
    pb::LeaseOptions {
        ttl: to_nanos(ttl),
        renewable,
        increment: 0,
        // The host's Go translation refuses lease options without an issue time.
        issue_time: Some(now_timestamp()),
        max_ttl: to_nanos(max_ttl),
    }
}

fn token_type_to_proto(t: &str) -> u32 {
    match t {
        "service" => 1,
        "batch" => 2,
        "default-service" => 3,
        "default-batch" => 4,
        _ => 0,
    }
}

fn token_type_from_proto(t: u32) -> String {
    match t {
        1 | 3 => "service",
        2 | 4 => "batch",
        _ => "default",
    }
    .to_string()
}

pub(crate) fn auth_to_proto(a: &AuthResponse) -> pb::Auth {
    pb::Auth {
        lease_options: Some(lease_options(a.ttl, a.max_ttl, a.renewable)),
        internal_data: json_string(&a.internal_data),
        display_name: a.display_name.clone(),
        policies: a.policies.clone(),
        metadata: string_map(&a.metadata),
        period: to_nanos(a.period),
        num_uses: a.num_uses,
        alias: a.alias_name.as_ref().map(|name| logical::Alias {
            name: name.clone(),
            metadata: string_map(&a.alias_metadata),
            ..Default::default()
        }),
        group_aliases: a
            .group_aliases
            .iter()
            .map(|name| logical::Alias { name: name.clone(), ..Default::default() })
            .collect(),
        bound_cidrs: a.bound_cidrs.clone(),
        explicit_max_ttl: to_nanos(a.explicit_max_ttl),
        token_type: token_type_to_proto(&a.token_type),
        no_default_policy: a.no_default_policy,
        ..Default::default()
    }
}

pub(crate) fn auth_from_proto(a: &pb::Auth) -> Result<AuthResponse, LogicalError> {
    let lo = a.lease_options.unwrap_or_default();
    Ok(AuthResponse {
        policies: a.policies.clone(),
        metadata: value_map(&a.metadata),
        display_name: a.display_name.clone(),
        ttl: to_secs(lo.ttl),
        max_ttl: to_secs(lo.max_ttl),
        explicit_max_ttl: to_secs(a.explicit_max_ttl),
        period: to_secs(a.period),
        num_uses: a.num_uses,
        renewable: lo.renewable,
        no_default_policy: a.no_default_policy,
        token_type: token_type_from_proto(a.token_type),
        bound_cidrs: a.bound_cidrs.clone(),
        alias_name: a.alias.as_ref().map(|al| al.name.clone()).filter(|n| !n.is_empty()),
        alias_metadata: a.alias.as_ref().map(|al| value_map(&al.metadata)).unwrap_or_default(),
        group_aliases: a.group_aliases.iter().map(|g| g.name.clone()).filter(|n| !n.is_empty()).collect(),
        internal_data: json_object(&a.internal_data)?,
    })
}

pub(crate) fn secret_to_proto(s: &SecretLease) -> pb::Secret {
    pb::Secret {
        lease_options: Some(lease_options(s.ttl, s.max_ttl, s.renewable)),
        internal_data: json_string(&s.internal),
        lease_id: String::new(),
    }
}

pub(crate) fn secret_from_proto(s: &pb::Secret) -> Result<SecretLease, LogicalError> {
    let lo = s.lease_options.unwrap_or_default();
    Ok(SecretLease {
        ttl: to_secs(lo.ttl),
        max_ttl: to_secs(lo.max_ttl),
        renewable: lo.renewable,
        internal: json_object(&s.internal_data)?,
    })
}

/// A handler's answer in protocol form. `lease_duration` has no protocol field and is dropped.
pub(crate) fn response_to_proto(r: &Response) -> pb::Response {
    pb::Response {
        secret: r.secret.as_ref().map(secret_to_proto),
        auth: r.auth.as_ref().map(auth_to_proto),
        data: match &r.data {
            Some(d) => json_string(d),
            None => "null".to_string(),
        },
        warnings: r.warnings.clone(),
        ..Default::default()
    }
}

/// A plugin's answer as the SDK sees it. A response that only carries `{"error": "…"}` is
/// how Go backends report a bad request: it becomes one.
pub(crate) fn response_from_proto(r: &pb::Response) -> Result<Response, LogicalError> {
    let data = json_object(&r.data)?;
    if data.len() == 1 {
        if let Some(Value::String(msg)) = data.get("error") {
            return Err(LogicalError::bad_request(msg.clone()));
        }
    }
    let has_data = !(r.data.trim().is_empty() || r.data.trim() == "null");
    Ok(Response {
        data: if has_data { Some(data) } else { None },
        warnings: r.warnings.clone(),
        auth: r.auth.as_ref().map(auth_from_proto).transpose()?,
        secret: r.secret.as_ref().map(secret_from_proto).transpose()?,
        ..Default::default()
    })
}

fn coded(code: i64, msg: String) -> pb::ProtoError {
    pb::ProtoError { err_type: ERR_CODED, err_msg: msg, err_code: code }
}

/// An SDK error in protocol form.
pub(crate) fn error_to_proto(e: &LogicalError) -> pb::ProtoError {
    let msg = e.to_string();
    let typed = |t: u32, msg: String| pb::ProtoError { err_type: t, err_msg: msg, err_code: 0 };
    match e.kind {
        ErrorKind::BadRequest => typed(ERR_BAD_REQUEST, msg),
        ErrorKind::PermissionDenied => typed(ERR_PERMISSION_DENIED, "permission denied".into()),
        ErrorKind::UnsupportedOperation => typed(ERR_UNSUPPORTED_OPERATION, "unsupported operation".into()),
        ErrorKind::UnsupportedPath => typed(ERR_UNSUPPORTED_PATH, "unsupported path".into()),
        ErrorKind::NotFound => coded(404, if msg.is_empty() { "not found".into() } else { msg }),
        ErrorKind::PreconditionFailed => coded(412, msg),
        ErrorKind::PayloadTooLarge => coded(413, msg),
        ErrorKind::RateLimited => coded(429, msg),
        ErrorKind::Sealed | ErrorKind::Unavailable => coded(503, msg),
        _ => typed(ERR_INTERNAL, msg),
    }
}

/// A protocol error as the SDK sees it.
pub(crate) fn error_from_proto(e: &pb::ProtoError) -> LogicalError {
    let msg = e.err_msg.clone();
    let kind = match e.err_type {
        ERR_USER | ERR_BAD_REQUEST | ERR_INVALID_REQUEST | ERR_MULTI_AUTHZ_PENDING => ErrorKind::BadRequest,
        ERR_UNSUPPORTED_OPERATION => return LogicalError::unsupported_operation(),
        ERR_UNSUPPORTED_PATH => ErrorKind::UnsupportedPath,
        ERR_PERMISSION_DENIED => return LogicalError::permission_denied(),
        ERR_CODED => match e.err_code {
            400 => ErrorKind::BadRequest,
            403 => ErrorKind::PermissionDenied,
            404 if msg.is_empty() || msg == "not found" => return LogicalError::not_found(),
            404 => ErrorKind::NotFound,
            405 => ErrorKind::UnsupportedOperation,
            412 => ErrorKind::PreconditionFailed,
            413 => ErrorKind::PayloadTooLarge,
            429 => ErrorKind::RateLimited,
            503 => ErrorKind::Unavailable,
            c if (400..500).contains(&c) => ErrorKind::BadRequest,
            _ => ErrorKind::Internal,
        },
        ERR_UNKNOWN | ERR_INTERNAL | ERR_UNRECOVERABLE => ErrorKind::Internal,
        _ => ErrorKind::Internal,
    };
    LogicalError::new(kind, msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_objects_tolerate_null_and_empty() {
        assert!(json_object("").unwrap().is_empty());
        assert!(json_object("null").unwrap().is_empty());
        assert_eq!(json_object(r#"{"a":1}"#).unwrap()["a"], json!(1));
        assert!(json_object("[1]").is_err());
    }

    #[test]
    fn errors_round_trip_by_kind() {
        for e in [
            LogicalError::bad_request("nope"),
            LogicalError::unsupported_operation(),
            LogicalError::permission_denied(),
            LogicalError::not_found(),
            LogicalError::internal("boom"),
            LogicalError::new(ErrorKind::PreconditionFailed, "cas"),
        ] {
            let back = error_from_proto(&error_to_proto(&e));
            assert_eq!(back.kind, e.kind, "{e:?}");
        }
        assert_eq!(error_to_proto(&LogicalError::unsupported_operation()).err_type, 5);
        assert_eq!(error_to_proto(&LogicalError::unsupported_path("x")).err_type, 6);
        assert_eq!(
            error_from_proto(&error_to_proto(&LogicalError::unsupported_path("x"))).kind,
            ErrorKind::UnsupportedPath
        );
    }

    #[test]
    fn responses_round_trip() {
        let mut data = Map::new();
        data.insert("k".into(), json!("v"));
        let r = Response {
            data: Some(data),
            warnings: vec!["w".into()],
            auth: Some(AuthResponse {
                policies: vec!["p".into()],
                ttl: 60,
                token_type: "batch".into(),
                alias_name: Some("bob".into()),
                internal_data: json!({"kept": "for renewal"}).as_object().cloned().unwrap_or_default(),
                ..Default::default()
            }),
            secret: Some(SecretLease { ttl: 30, max_ttl: 90, renewable: true, internal: Map::new() }),
            ..Default::default()
        };
        let p = response_to_proto(&r);
        assert_eq!(p.secret.as_ref().unwrap().lease_options.as_ref().unwrap().ttl, 30 * NANOS);
        let back = response_from_proto(&p).unwrap();
        assert_eq!(back.data, r.data);
        assert_eq!(back.auth.as_ref().unwrap().policies, vec!["p".to_string()]);
        assert_eq!(back.auth.as_ref().unwrap().token_type, "batch");
        assert_eq!(back.auth.as_ref().unwrap().alias_name.as_deref(), Some("bob"));
        assert_eq!(back.auth.as_ref().unwrap().internal_data, r.auth.as_ref().unwrap().internal_data);
        assert_eq!(back.secret, r.secret);
        let none = response_from_proto(&response_to_proto(&Response::default())).unwrap();
        assert!(none.data.is_none());
        let err = pb::Response { data: r#"{"error":"bad input"}"#.into(), ..Default::default() };
        assert_eq!(response_from_proto(&err).unwrap_err().kind, ErrorKind::BadRequest);
    }
}
