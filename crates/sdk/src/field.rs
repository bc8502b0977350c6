//! Typed request fields and Vault's lenient coercions: strings for booleans and numbers,
//! Go-style durations ("90s", "1h30m", "2d") or plain seconds, comma-separated lists.

use crate::LogicalError;
use serde_json::Value;

/// The declared type of a field. Non-exhaustive: a later SDK version may add Vault field
/// types without breaking plugins that match on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FieldType {
    /// A string; numbers and booleans are accepted and turned into their text.
    String,
    /// A whole number, given as a number or a numeric string.
    Int,
    /// A boolean: `true`/`false`, or `"true"`, `"1"`, `"t"`, … as strings.
    Bool,
    /// A duration, normalised to whole seconds.
    DurationSecond,
    /// A JSON object, given as an object or as JSON text.
    Map,
    /// A list given as a JSON array or a comma-separated string.
    CommaStringSlice,
    /// String pairs (Vault's `TypeKVPairs`): a JSON object of strings, or `key=value` entries as
    /// a list or a comma-separated string (what `bao write path metadata=team=red` sends).
    /// Normalised to a JSON object of strings.
    KvPairs,
    /// Anything; passed through.
    Raw,
}

impl FieldType {
    /// Every type, for name lookups.
    pub const ALL: [FieldType; 8] = [
        FieldType::String,
        FieldType::Int,
        FieldType::Bool,
        FieldType::DurationSecond,
        FieldType::Map,
        FieldType::CommaStringSlice,
        FieldType::KvPairs,
        FieldType::Raw,
    ];

    /// The type's name in a path-table description (Vault's field type names, snake case).
    pub fn name(self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Int => "int",
            FieldType::Bool => "bool",
            FieldType::DurationSecond => "duration_second",
            FieldType::Map => "map",
            FieldType::CommaStringSlice => "comma_string_slice",
            FieldType::KvPairs => "kv_pairs",
            FieldType::Raw => "raw",
        }
    }

    /// The type a path-table description names (the inverse of [`FieldType::name`]).
    pub fn from_name(name: &str) -> Option<FieldType> {
        FieldType::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The OpenAPI schema type of the field (`string`, `integer`, `boolean`, `object`, `array`).
    pub fn openapi_type(self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Int | FieldType::DurationSecond => "integer",
            FieldType::Bool => "boolean",
            FieldType::Map | FieldType::KvPairs | FieldType::Raw => "object",
            FieldType::CommaStringSlice => "array",
        }
    }
}

fn type_err(name: &str, want: &str, v: &Value) -> LogicalError {
    let shown = match v {
        Value::String(s) if s.len() <= 64 => format!("{s:?}"),
        Value::String(_) => "a string".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(_) => "an array".to_string(),
        Value::Object(_) => "an object".to_string(),
        Value::Null => "null".to_string(),
    };
    LogicalError::bad_request(format!("error converting input {shown} for field {name:?}: expected {want}"))
}

/// Parses a boolean the way Vault's parseutil does ("true", "1", "t", …).
pub fn parse_bool(name: &str, v: &Value) -> Result<bool, LogicalError> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Number(n) => match n.as_i64() {
            Some(0) => Ok(false),
            Some(1) => Ok(true),
            _ => Err(type_err(name, "a boolean", v)),
        },
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "1" | "t" | "true" => Ok(true),
            "0" | "f" | "false" | "" => Ok(false),
            _ => Err(type_err(name, "a boolean", v)),
        },
        _ => Err(type_err(name, "a boolean", v)),
    }
}

/// Parses an integer from a number or a numeric string.
pub fn parse_int(name: &str, v: &Value) -> Result<i64, LogicalError> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15).map(|f| f as i64))
            .ok_or_else(|| type_err(name, "an integer", v)),
        Value::String(s) if s.trim().is_empty() => Ok(0),
        Value::String(s) => s.trim().parse::<i64>().map_err(|e| type_err(name, "an integer", v).with_source(e)),
        _ => Err(type_err(name, "an integer", v)),
    }
}

/// Parses a Go-style duration string ("1h30m", "1.5h", "300ms", "2d") or plain seconds into
/// whole seconds. Returns None when malformed.
pub fn parse_duration_str(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.is_empty() {
        return Some(0);
    }
    if let Ok(n) = s.parse::<i64>() {
        return Some(n);
    }
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let mut total_ns: f64 = 0.0;
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        if num_end == 0 {
            return None;
        }
        let num: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        rest = &rest[unit_end..];
        let mult = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "d" => 86400e9,
            _ => return None,
        };
        total_ns += num * mult;
    }
    if !total_ns.is_finite() || total_ns > 9.2e18 {
        return None;
    }
    let secs = (total_ns / 1e9).floor() as i64;
    Some(if neg { -secs } else { secs })
}

/// Parses a duration field: a number of seconds or a duration string.
pub fn parse_duration(name: &str, v: &Value) -> Result<i64, LogicalError> {
    match v {
        Value::Number(_) => parse_int(name, v),
        Value::String(s) => parse_duration_str(s).ok_or_else(|| type_err(name, "a duration", v)),
        _ => Err(type_err(name, "a duration", v)),
    }
}

/// Parses a list given as an array or comma-separated string.
pub fn parse_string_slice(name: &str, v: &Value) -> Result<Vec<String>, LogicalError> {
    match v {
        Value::Array(a) => a
            .iter()
            .map(|x| match x {
                Value::String(s) => Ok(s.trim().to_string()),
                Value::Number(n) => Ok(n.to_string()),
                Value::Bool(b) => Ok(b.to_string()),
                _ => Err(type_err(name, "a list of strings", v)),
            })
            .collect(),
        Value::String(s) if s.trim().is_empty() => Ok(vec![]),
        Value::String(s) => Ok(s.split(',').map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect()),
        _ => Err(type_err(name, "a list of strings", v)),
    }
}

/// Parses a string field; numbers and booleans are accepted as their text.
pub fn parse_string(name: &str, v: &Value) -> Result<String, LogicalError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(type_err(name, "a string", v)),
    }
}

/// Validates and normalises `v` as `ty`.
pub fn coerce(name: &str, ty: FieldType, v: &Value) -> Result<Value, LogicalError> {
    Ok(match ty {
        FieldType::String => Value::String(parse_string(name, v)?),
        FieldType::Int => Value::from(parse_int(name, v)?),
        FieldType::Bool => Value::Bool(parse_bool(name, v)?),
        FieldType::DurationSecond => Value::from(parse_duration(name, v)?),
        FieldType::CommaStringSlice => Value::from(parse_string_slice(name, v)?),
        FieldType::Map => match v {
            Value::Object(_) => v.clone(),
            Value::String(s) if s.is_empty() => Value::Object(Default::default()),
            Value::String(s) => match serde_json::from_str::<Value>(s) {
                Ok(o @ Value::Object(_)) => o,
                _ => return Err(type_err(name, "a map", v)),
            },
            _ => return Err(type_err(name, "a map", v)),
        },
        FieldType::KvPairs => Value::Object(parse_kv_pairs(name, v)?),
        FieldType::Raw => v.clone(),
    })
}

/// Parses string pairs: a JSON object (values turned into their text), or `key=value` entries
/// as an array or a comma-separated string. Empty input is an empty map.
pub fn parse_kv_pairs(name: &str, v: &Value) -> Result<serde_json::Map<String, Value>, LogicalError> {
    // OpenBao's words for a pair without its `=` (or input that is no pair at all).
    let bad = |i: usize| {
        LogicalError::bad_request(format!(
            "Field validation failed: error converting input for field {name:?}: invalid key pair at index {i} in \
             field {name:?}"
        ))
    };
    let pair = |i: usize, s: &str| -> Result<(String, Value), LogicalError> {
        match s.split_once('=') {
            Some((k, val)) if !k.trim().is_empty() => Ok((k.trim().to_string(), Value::String(val.to_string()))),
            _ => Err(bad(i)),
        }
    };
    match v {
        Value::Null => Ok(Default::default()),
        Value::Object(m) => m.iter().map(|(k, x)| Ok((k.clone(), Value::String(parse_string(name, x)?)))).collect(),
        Value::String(s) if s.trim().is_empty() => Ok(Default::default()),
        Value::String(s) => s.split(',').enumerate().map(|(i, p)| pair(i, p.trim())).collect(),
        Value::Array(a) => a.iter().enumerate().map(|(i, x)| pair(i, parse_string(name, x)?.trim())).collect(),
        _ => Err(bad(0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kv_pairs_take_objects_lists_and_comma_strings() {
        let want = json!({"team": "red", "site": "ber"});
        assert_eq!(coerce("m", FieldType::KvPairs, &json!("team=red,site=ber")).unwrap(), want);
        assert_eq!(coerce("m", FieldType::KvPairs, &json!(["team=red", "site=ber"])).unwrap(), want);
        assert_eq!(coerce("m", FieldType::KvPairs, &json!({"team": "red", "site": "ber"})).unwrap(), want);
        assert_eq!(coerce("m", FieldType::KvPairs, &json!({"n": 1})).unwrap(), json!({"n": "1"}));
        assert_eq!(coerce("m", FieldType::KvPairs, &json!("a=b=c")).unwrap(), json!({"a": "b=c"}));
        assert_eq!(coerce("m", FieldType::KvPairs, &json!("")).unwrap(), json!({}));
        assert!(coerce("m", FieldType::KvPairs, &json!("novalue")).is_err());
        assert!(coerce("m", FieldType::KvPairs, &json!(["=x"])).is_err());
        assert!(coerce("m", FieldType::KvPairs, &json!(3)).is_err());
        assert_eq!(
            coerce("meta", FieldType::KvPairs, &json!("a=b,novalue")).unwrap_err().to_string(),
            "Field validation failed: error converting input for field \"meta\": invalid key pair at index 1 in \
             field \"meta\""
        );
    }

    #[test]
    fn durations_follow_go_syntax_and_plain_seconds() {
        assert_eq!(parse_duration_str("30m"), Some(1800));
        assert_eq!(parse_duration_str("1h30m"), Some(5400));
        assert_eq!(parse_duration_str("1.5h"), Some(5400));
        assert_eq!(parse_duration_str("1800"), Some(1800));
        assert_eq!(parse_duration_str("2d"), Some(172800));
        assert_eq!(parse_duration_str("500ms"), Some(0));
        assert_eq!(parse_duration_str("10x"), None);
        assert_eq!(parse_duration_str("h"), None);
        assert_eq!(parse_duration("ttl", &json!(1800)).unwrap(), 1800);
        assert!(parse_duration("ttl", &json!(true)).is_err());
    }

    #[test]
    fn booleans_and_ints_accept_strings() {
        assert!(parse_bool("b", &json!("true")).unwrap());
        assert!(!parse_bool("b", &json!("0")).unwrap());
        assert!(parse_bool("b", &json!("maybe")).is_err());
        assert_eq!(parse_int("i", &json!("42")).unwrap(), 42);
        assert_eq!(parse_int("i", &json!(42.0)).unwrap(), 42);
        assert!(parse_int("i", &json!("4x")).is_err());
    }

    #[test]
    fn slices_from_csv_or_arrays() {
        assert_eq!(parse_string_slice("p", &json!("a, b,c")).unwrap(), vec!["a", "b", "c"]);
        assert_eq!(parse_string_slice("p", &json!(["a", "b"])).unwrap(), vec!["a", "b"]);
        assert!(parse_string_slice("p", &json!({"a":1})).is_err());
    }

    #[test]
    fn errors_name_the_field_and_hide_long_values() {
        let e = parse_int("max_versions", &json!("x".repeat(100))).unwrap_err();
        assert!(e.messages[0].contains("max_versions"));
        assert!(!e.messages[0].contains(&"x".repeat(100)));
    }
}
