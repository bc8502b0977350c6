//! The declarative path table. A backend lists its paths once; routing, validation and
//! coercion of request fields, help text and the OpenAPI document all come from it.

use crate::field::{coerce, FieldType};
use crate::{LogicalError, Operation};
use regex::Regex;
use serde_json::{Map, Value};

/// One field of a path: from the URL (a named capture) or from the request body.
#[derive(Debug, Clone)]
pub struct FieldSpec {
    pub name: &'static str,
    pub ty: FieldType,
    pub description: &'static str,
    pub default: Option<Value>,
    pub required: bool,
}

impl FieldSpec {
    pub fn new(name: &'static str, ty: FieldType, description: &'static str) -> Self {
        FieldSpec { name, ty, description, default: None, required: false }
    }
    pub fn default(mut self, v: Value) -> Self {
        self.default = Some(v);
        self
    }
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }
}

/// One path of a backend.
#[derive(Debug, Clone)]
pub struct PathSpec {
    /// A regular expression over the mount-relative path, anchored at both ends.
    pub pattern: &'static str,
    pub fields: Vec<FieldSpec>,
    pub operations: Vec<(Operation, &'static str)>,
    /// Whether unknown body fields are passed through instead of refused (KV-style paths).
    pub passthrough: bool,
    pub synopsis: &'static str,
    pub description: &'static str,
}

/// A compiled path table.
pub struct PathTable {
    specs: Vec<PathSpec>,
    regexes: Vec<Regex>,
}

/// The outcome of matching a request against the table.
pub struct Matched<'a> {
    pub index: usize,
    pub spec: &'a PathSpec,
    pub fields: FieldData,
}

impl PathTable {
    /// Compiles the table. Patterns are static, so a bad pattern is a programming error.
    pub fn new(specs: Vec<PathSpec>) -> Self {
        let regexes =
            specs.iter().map(|s| Regex::new(&format!("^(?:{})$", s.pattern)).expect("valid path pattern")).collect();
        PathTable { specs, regexes }
    }

    pub fn specs(&self) -> &[PathSpec] {
        &self.specs
    }

    /// Finds the path for `path`, checks the operation is declared and coerces the fields.
    pub fn route(&self, op: Operation, path: &str, data: &Map<String, Value>) -> Result<Matched<'_>, LogicalError> {
        for (i, re) in self.regexes.iter().enumerate() {
            let Some(caps) = re.captures(path) else {
                continue;
            };
            let spec = &self.specs[i];
            if !spec.operations.iter().any(|(o, _)| *o == op) {
                return Err(LogicalError::unsupported_operation());
            }
            let mut values = Map::new();
            for name in re.capture_names().flatten() {
                if let Some(m) = caps.name(name) {
                    values.insert(name.to_string(), Value::String(m.as_str().to_string()));
                }
            }
            let mut out = Map::new();
            for f in &spec.fields {
                let raw = values.get(f.name).or_else(|| data.get(f.name)).filter(|v| !v.is_null());
                match raw {
                    Some(v) => {
                        out.insert(f.name.to_string(), coerce(f.name, f.ty, v)?);
                    }
                    None if f.required && matches!(op, Operation::Create | Operation::Update) => {
                        return Err(LogicalError::bad_request(format!("missing required field {:?}", f.name)));
                    }
                    None => {}
                }
            }
            let raw = if spec.passthrough { data.clone() } else { Map::new() };
            return Ok(Matched { index: i, spec, fields: FieldData { values: out, specs: spec.fields.clone(), raw } });
        }
        Err(LogicalError::unsupported_path(path))
    }
}

/// Coerced field values of a request, with declared defaults.
#[derive(Debug, Clone)]
pub struct FieldData {
    values: Map<String, Value>,
    specs: Vec<FieldSpec>,
    /// The whole request body, for passthrough paths.
    pub raw: Map<String, Value>,
}

impl FieldData {
    /// The given value, or the declared default.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.values.get(name).or_else(|| self.specs.iter().find(|f| f.name == name).and_then(|f| f.default.as_ref()))
    }
    /// Whether the request set the field (defaults do not count).
    pub fn is_set(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }
    pub fn str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(Value::as_str)
    }
    pub fn int(&self, name: &str) -> Option<i64> {
        self.get(name).and_then(Value::as_i64)
    }
    pub fn bool(&self, name: &str) -> Option<bool> {
        self.get(name).and_then(Value::as_bool)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn table() -> PathTable {
        PathTable::new(vec![PathSpec {
            pattern: r"config/(?P<name>\w+)",
            fields: vec![
                FieldSpec::new("name", FieldType::String, "the name"),
                FieldSpec::new("ttl", FieldType::DurationSecond, "ttl").default(json!(60)),
                FieldSpec::new("on", FieldType::Bool, "flag"),
            ],
            operations: vec![(Operation::Read, "read"), (Operation::Update, "write")],
            passthrough: false,
            synopsis: "",
            description: "",
        }])
    }

    #[test]
    fn routes_coerces_and_defaults() {
        let t = table();
        let data = json!({"on": "true"}).as_object().unwrap().clone();
        let m = t.route(Operation::Update, "config/abc", &data).unwrap();
        assert_eq!(m.fields.str("name"), Some("abc"));
        assert_eq!(m.fields.bool("on"), Some(true));
        assert_eq!(m.fields.int("ttl"), Some(60));
        assert!(!m.fields.is_set("ttl"));
    }

    #[test]
    fn wrong_operation_path_or_type_is_refused() {
        let t = table();
        let empty = Map::new();
        assert_eq!(
            t.route(Operation::Delete, "config/a", &empty).err().unwrap().kind,
            crate::ErrorKind::UnsupportedOperation
        );
        assert_eq!(t.route(Operation::Read, "nope", &empty).err().unwrap().kind, crate::ErrorKind::UnsupportedPath);
        let bad = json!({"ttl": "forever"}).as_object().unwrap().clone();
        assert_eq!(t.route(Operation::Update, "config/a", &bad).err().unwrap().kind, crate::ErrorKind::BadRequest);
    }
}
