//! The declarative path table. A backend lists its paths once; routing, validation and
//! coercion of request fields, help text and the OpenAPI document all come from it.

use crate::field::{coerce, FieldType};
use crate::{LogicalError, Operation, Response};
use regex::{Regex, RegexSet};
use serde_json::{Map, Value};
use std::sync::Arc;

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
    /// All patterns at once: one pass finds the first path that matches, instead of one
    /// regex run per path in order.
    set: RegexSet,
    /// Each path's fields, shared with every request's `FieldData` instead of copied into it.
    fields: Vec<Arc<[FieldSpec]>>,
}

/// The outcome of matching a request against the table.
pub struct Matched<'a> {
    pub index: usize,
    pub spec: &'a PathSpec,
    pub fields: FieldData,
}

/// The warning OpenBao adds to an answer when the request carried parameters the path does not
/// declare: `Endpoint ignored these unrecognized parameters: [a b]` (names sorted).
pub fn ignored_parameters_warning(ignored: &[String]) -> String {
    format!("Endpoint ignored these unrecognized parameters: [{}]", ignored.join(" "))
}

/// Adds the ignored-parameters warning to a handler's answer. As in OpenBao, only an answer
/// with a body gets it: an error or an empty (204) answer stays as it is.
pub fn warn_ignored(
    out: Result<Option<Response>, LogicalError>,
    ignored: &[String],
) -> Result<Option<Response>, LogicalError> {
    match out {
        Ok(Some(mut r)) if !ignored.is_empty() => {
            r.warnings.push(ignored_parameters_warning(ignored));
            Ok(Some(r))
        }
        other => other,
    }
}

impl PathTable {
    /// Compiles the table. Patterns are static, so a bad pattern is a programming error.
    pub fn new(specs: Vec<PathSpec>) -> Self {
        let anchored: Vec<String> = specs.iter().map(|s| format!("^(?:{})$", s.pattern)).collect();
        let regexes = anchored.iter().map(|p| Regex::new(p).expect("valid path pattern")).collect();
        let set = RegexSet::new(&anchored).expect("valid path patterns");
        let fields = specs.iter().map(|s| Arc::from(s.fields.as_slice())).collect();
        PathTable { specs, regexes, set, fields }
    }

    pub fn specs(&self) -> &[PathSpec] {
        &self.specs
    }

    /// Finds the path for `path`, checks the operation is declared and coerces the fields.
    pub fn route(&self, op: Operation, path: &str, data: &Map<String, Value>) -> Result<Matched<'_>, LogicalError> {
        let i = self.route_index(op, path)?;
        let (re, spec) = (&self.regexes[i], &self.specs[i]);
        let caps = re.captures(path).ok_or_else(|| LogicalError::unsupported_path(path))?;
        let mut out = Map::new();
        for f in spec.fields.iter() {
            let from_url = caps.name(f.name).map(|m| Value::String(m.as_str().to_string()));
            let raw = from_url.as_ref().or_else(|| data.get(f.name)).filter(|v| !v.is_null());
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
        Ok(Matched { index: i, spec, fields: FieldData { values: out, specs: self.fields[i].clone(), raw } })
    }

    /// The request parameters (body fields or query parameters) that the path `path` does not
    /// declare, sorted; none for writes to paths that take arbitrary input (KV v1) or paths not
    /// in the table. Cheap when there are no parameters (no routing then). A backend calls it in
    /// [`crate::Backend::handle_request`] and hands the list to [`warn_ignored`] with its
    /// answer, so every backend warns as OpenBao's framework does.
    pub fn ignored_parameters(&self, op: Operation, path: &str, data: &Map<String, Value>) -> Vec<String> {
        if data.is_empty() || op == Operation::Help {
            return vec![];
        }
        let Some(i) = self.set.matches(path).into_iter().next() else {
            return vec![];
        };
        let spec = &self.specs[i];
        // A passthrough path keeps any field on a write; its reads and lists still name the
        // query parameters they ignored, as OpenBao's KV v1 does.
        if spec.passthrough && matches!(op, Operation::Create | Operation::Update | Operation::Patch) {
            return vec![];
        }
        let mut out: Vec<String> =
            data.keys().filter(|k| !spec.fields.iter().any(|f| f.name == k.as_str())).cloned().collect();
        out.sort();
        out
    }

    /// The index of the first path that matches `path`, once the operation is checked.
    pub fn route_index(&self, op: Operation, path: &str) -> Result<usize, LogicalError> {
        let i = self.set.matches(path).into_iter().next().ok_or_else(|| LogicalError::unsupported_path(path))?;
        if !self.specs[i].operations.iter().any(|(o, _)| *o == op) {
            return Err(LogicalError::unsupported_operation());
        }
        Ok(i)
    }
}

/// Coerced field values of a request, with declared defaults.
#[derive(Debug, Clone)]
pub struct FieldData {
    values: Map<String, Value>,
    specs: Arc<[FieldSpec]>,
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

/// The path table as JSON, for hosts and tools that only talk to a backend over the plugin
/// protocol (help answers carry it under `paths`): pattern, synopsis, description, operations
/// with their summaries, fields with type, description, required and default.
pub fn describe_paths(specs: &[PathSpec]) -> Value {
    Value::Array(
        specs
            .iter()
            .map(|p| {
                let ops: Vec<Value> = p
                    .operations
                    .iter()
                    .map(|(o, s)| serde_json::json!({ "operation": o.as_str(), "summary": s }))
                    .collect();
                let fields: Vec<Value> = p
                    .fields
                    .iter()
                    .map(|f| {
                        serde_json::json!({ "name": f.name, "type": f.ty.name(), "description": f.description,
                                            "required": f.required, "default": f.default })
                    })
                    .collect();
                serde_json::json!({ "pattern": p.pattern, "synopsis": p.synopsis, "description": p.description,
                                    "passthrough": p.passthrough, "operations": ops, "fields": fields })
            })
            .collect(),
    )
}

/// Interns a string for the `&'static str` fields of a [`PathSpec`] read back from JSON: each
/// distinct text is allocated once per process, however often a plugin is restarted.
fn intern(s: &str) -> &'static str {
    static SEEN: std::sync::Mutex<std::collections::BTreeSet<&'static str>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(t) = seen.get(s) {
        return t;
    }
    let t: &'static str = Box::leak(s.to_string().into_boxed_str());
    seen.insert(t);
    t
}

/// Reads back what [`describe_paths`] wrote. Entries with an invalid pattern, an unknown
/// operation or field type are an error (a host must not route by a half-understood table).
pub fn paths_from_description(v: &Value) -> Result<Vec<PathSpec>, String> {
    let Some(items) = v.as_array() else {
        return Err("the path table is not a list".into());
    };
    let text = |o: &Value, k: &str| o.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let pattern = text(item, "pattern");
        Regex::new(&format!("^(?:{pattern})$")).map_err(|e| format!("path pattern {pattern:?}: {e}"))?;
        let mut operations = Vec::new();
        for o in item.get("operations").and_then(Value::as_array).into_iter().flatten() {
            let name = text(o, "operation");
            let op = Operation::from_name(&name).ok_or_else(|| format!("unknown operation {name:?}"))?;
            operations.push((op, intern(&text(o, "summary"))));
        }
        let mut fields = Vec::new();
        for f in item.get("fields").and_then(Value::as_array).into_iter().flatten() {
            let ty_name = text(f, "type");
            let ty = FieldType::from_name(&ty_name).ok_or_else(|| format!("unknown field type {ty_name:?}"))?;
            fields.push(FieldSpec {
                name: intern(&text(f, "name")),
                ty,
                description: intern(&text(f, "description")),
                default: f.get("default").filter(|d| !d.is_null()).cloned(),
                required: f.get("required").and_then(Value::as_bool).unwrap_or(false),
            });
        }
        out.push(PathSpec {
            pattern: intern(&pattern),
            fields,
            operations,
            passthrough: item.get("passthrough").and_then(Value::as_bool).unwrap_or(false),
            synopsis: intern(&text(item, "synopsis")),
            description: intern(&text(item, "description")),
        });
    }
    Ok(out)
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

    #[test]
    fn a_described_path_table_reads_back_the_same() {
        let t = table();
        let d = describe_paths(t.specs());
        let back = paths_from_description(&d).unwrap();
        assert_eq!(describe_paths(&back), d);
        let again = PathTable::new(back);
        let data = json!({"on": "1"}).as_object().unwrap().clone();
        let m = again.route(Operation::Update, "config/x", &data).unwrap();
        assert_eq!(m.fields.int("ttl"), Some(60));
        assert_eq!(m.fields.bool("on"), Some(true));
        assert!(paths_from_description(&json!([{"pattern": "a(", "operations": []}])).is_err());
        assert!(paths_from_description(&json!([{"pattern": "a", "operations": [{"operation": "fly"}]}])).is_err());
        assert!(paths_from_description(&json!({})).is_err());
    }

    #[test]
    fn unknown_parameters_are_listed_sorted_and_warned_only_on_answers_with_a_body() {
        let t = table();
        let data = json!({"zeta": 1, "on": true, "alpha": 2, "name": "x"}).as_object().unwrap().clone();
        assert_eq!(t.ignored_parameters(Operation::Update, "config/a", &data), vec!["alpha", "zeta"]);
        assert!(t.ignored_parameters(Operation::Update, "nope", &data).is_empty());
        assert!(t.ignored_parameters(Operation::Read, "config/a", &Map::new()).is_empty());
        let ignored = vec!["alpha".to_string(), "zeta".to_string()];
        let warned = warn_ignored(Ok(Some(Response::data(Map::new()))), &ignored).unwrap().unwrap();
        assert_eq!(warned.warnings, vec!["Endpoint ignored these unrecognized parameters: [alpha zeta]"]);
        assert_eq!(warn_ignored(Ok(None), &ignored).unwrap(), None);
        assert!(warn_ignored(Err(LogicalError::bad_request("x")), &ignored).is_err());
        assert!(warn_ignored(Ok(Some(Response::default())), &[]).unwrap().unwrap().warnings.is_empty());
    }

    #[test]
    fn passthrough_paths_take_any_field_on_writes_but_name_ignored_query_parameters_on_reads() {
        let t = PathTable::new(vec![PathSpec {
            pattern: r".*",
            fields: vec![],
            operations: vec![(Operation::Read, "read"), (Operation::Update, "write")],
            passthrough: true,
            synopsis: "",
            description: "",
        }]);
        let data = json!({"x": "1"}).as_object().unwrap().clone();
        assert!(t.ignored_parameters(Operation::Update, "a", &data).is_empty());
        assert_eq!(t.ignored_parameters(Operation::Read, "a", &data), vec!["x"]);
    }
}
