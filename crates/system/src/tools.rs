//! `sys/tools/random`, `sys/tools/hash` (and the legacy `sys/random`).

use crate::{CoreResponse, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use coffer_sdk::field::parse_int;
use coffer_sdk::{LogicalError, Operation};
use serde_json::{json, Map, Value};

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn encode(bytes: &[u8], format: &str) -> Result<String> {
    match format {
        "" | "base64" => Ok(B64.encode(bytes)),
        "hex" => Ok(hex::encode(bytes)),
        other => Err(LogicalError::bad_request(format!(
            "unsupported encoding format {other}; must be \"hex\" or \"base64\""
        ))),
    }
}

/// `rest` is what follows `sys/tools/random` or `sys/random`: `""`, `/<bytes>`, `/<source>`,
/// or `/<source>/<bytes>`.
pub fn random(op: Operation, rest: &str, d: &Map<String, Value>) -> Result<CoreResponse> {
    if !matches!(op, Operation::Update | Operation::Create | Operation::Read) {
        return Err(LogicalError::unsupported_operation());
    }
    let mut bytes: i64 = 32;
    for seg in rest.split('/').filter(|s| !s.is_empty()) {
        match seg {
            "platform" | "seal" | "all" => {}
            n => {
                bytes = n
                    .parse()
                    .map_err(|e| LogicalError::bad_request(format!("unsupported path segment {n:?}")).with_source(e))?
            }
        }
    }
    if let Some(v) = d.get("bytes").filter(|v| !v.is_null()) {
        bytes = parse_int("bytes", v)?;
    }
    if !(1..=128 * 1024).contains(&bytes) {
        return Err(LogicalError::bad_request("bytes must be between 1 and 131072"));
    }
    let format = d.get("format").and_then(Value::as_str).unwrap_or("base64");
    let raw = coffer_crypto::random_bytes(bytes as usize)
        .map_err(|e| LogicalError::internal(e.to_string()).with_source(e))?;
    Ok(CoreResponse::data(obj(json!({ "random_bytes": encode(&raw, format)? }))))
}

pub fn hash(op: Operation, rest: &str, d: &Map<String, Value>) -> Result<CoreResponse> {
    if !matches!(op, Operation::Update | Operation::Create) {
        return Err(LogicalError::unsupported_operation());
    }
    let algo = d
        .get("algorithm")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| rest.trim_matches('/'))
        .to_string();
    let algo = if algo.is_empty() { "sha2-256".to_string() } else { algo };
    let input =
        d.get("input").and_then(Value::as_str).ok_or_else(|| LogicalError::bad_request("missing input to hash"))?;
    // drop-cause: the decoder's error quotes a byte of the input, which may be secret.
    let data = B64.decode(input).map_err(|_| LogicalError::bad_request("unable to decode input as base64"))?;
    let sum = coffer_crypto::digest(&algo, &data)
        .ok_or_else(|| LogicalError::bad_request(format!("unsupported algorithm {algo}")))?;
    let format = d.get("format").and_then(Value::as_str).unwrap_or("hex");
    Ok(CoreResponse::data(obj(json!({ "sum": encode(&sum, format)? }))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_random_follow_their_parameters() {
        let d = json!({"input": B64.encode(b"abc")}).as_object().unwrap().clone();
        let r = hash(Operation::Update, "", &d).unwrap();
        assert_eq!(r.data.unwrap()["sum"], "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        let d = json!({"format": "hex"}).as_object().unwrap().clone();
        let r = random(Operation::Update, "/16", &d).unwrap();
        assert_eq!(r.data.unwrap()["random_bytes"].as_str().unwrap().len(), 32);
        assert!(random(Operation::Update, "/0", &Map::new()).is_err());
        assert!(hash(Operation::Update, "/md5", &json!({"input": ""}).as_object().unwrap().clone()).is_err());
    }
}
