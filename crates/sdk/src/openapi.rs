//! OpenAPI 3 documents from declarative path tables: what `sys/internal/specs/openapi` and a
//! path's help answer carry, in Coffer, and what a plugin returns in its help answer for
//! OpenBao's document ([`backend_document`]).
//!
//! A path pattern is a regular expression; it becomes one or more OpenAPI path templates: a
//! named group `(?P<name>…)` is the parameter `{name}`, an unnamed catch-all (`.*`) is
//! `{path}`, an optional group gives a template with and one without it, and an optional
//! trailing slash is dropped.

use crate::field::FieldType;
use crate::framework::{FieldSpec, PathFlags, PathSpec};
use crate::Operation;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// The OpenAPI version of the documents.
pub const OPENAPI_VERSION: &str = "3.0.2";

/// Paths under one prefix, documented together: a mount or one of a server's own trees.
pub struct Table<'a> {
    /// `kv/`, `auth/userpass/`, `sys/` … (`""` for a backend's own, mount-relative paths).
    pub prefix: String,
    /// `secrets`, `auth`, `system` or `identity`.
    pub tag: &'static str,
    /// The rows documented, in order.
    pub specs: &'a [PathSpec],
    /// The flags of a path relative to the prefix (unauthenticated, sudo): the mounted
    /// backend's own answer, so the document says what the router does.
    pub flags: Box<dyn Fn(&str) -> PathFlags + 'a>,
    /// What the whole tree is, for help on the mount itself.
    pub overview: String,
}

impl<'a> Table<'a> {
    /// A backend's own table, mount-relative, with flags from its rows: what a plugin's help
    /// answer carries (see [`backend_document`]).
    pub fn of_backend(specs: &'a [PathSpec], tag: &'static str) -> Self {
        Table {
            prefix: String::new(),
            tag,
            specs,
            flags: Box::new(move |rel: &str| {
                specs
                    .iter()
                    .find(|s| {
                        regex::Regex::new(&format!("^(?:{})$", s.pattern)).map(|re| re.is_match(rel)).unwrap_or(false)
                    })
                    .map(|s| s.flags)
                    .unwrap_or_default()
            }),
            overview: String::new(),
        }
    }
}

/// The OpenAPI document of a backend's paths, relative to its mount (`/config`, …): what
/// OpenBao reads from the `openapi` key of a backend's help answer and merges, under the
/// mount's path, into `sys/internal/specs/openapi`. Request bodies are schemas in place
/// (OpenBao decodes the document into its own types, which drop `$ref`s: observed on 2.7.2)
/// and operations carry no `operationId`: OpenBao keeps a fragment's ids as they are, so ids
/// here would repeat once per mount of the plugin; without them OpenBao lists the operations
/// unnamed (observed on 2.7.2), and Coffer's host names them after the full path.
pub fn backend_document(specs: &[PathSpec], tag: &'static str, info: Value) -> Map<String, Value> {
    let t = Table::of_backend(specs, tag);
    let mut b = Builder { fragment: true, ..Builder::default() };
    for spec in specs {
        b.add_spec(&t, "", spec);
    }
    b.document(info)
}

// ---------------------------------------------------------------------------------------------
// Patterns → OpenAPI path templates

/// One node of a parsed path pattern.
#[derive(Debug, Clone)]
enum Node {
    Lit(char),
    /// A named group: a parameter.
    Param(String),
    /// Anything else that matches variable text (`.`, classes, `\w`…).
    Wild,
    /// A group with alternatives.
    Group(Vec<Vec<Node>>),
    Optional(Box<Node>),
}

/// A piece of an expanded template.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Lit(char),
    Param(String),
    Wild,
}

/// Index just past the group or class that starts at `i` (an opening `(` or `[`).
fn skip_balanced(c: &[char], mut i: usize) -> usize {
    let mut depth = 0usize;
    while i < c.len() {
        match c[i] {
            '\\' => i += 1,
            '[' => {
                // A class: `]` right after `[` or `[^` is literal.
                i += 1;
                if c.get(i) == Some(&'^') {
                    i += 1;
                }
                if c.get(i) == Some(&']') {
                    i += 1;
                }
                while i < c.len() && c[i] != ']' {
                    if c[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                if depth == 0 {
                    return i + 1;
                }
            }
            '(' => depth += 1,
            ')' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    c.len()
}

/// Parses alternatives up to a closing `)` (consumed) or the end.
fn parse_alts(c: &[char], i: &mut usize) -> Vec<Vec<Node>> {
    let mut alts = vec![Vec::new()];
    while *i < c.len() {
        let ch = c[*i];
        let atom = match ch {
            ')' => {
                *i += 1;
                return alts;
            }
            '|' => {
                *i += 1;
                alts.push(Vec::new());
                continue;
            }
            '^' | '$' => {
                *i += 1;
                continue;
            }
            '(' => {
                let rest: String = c[*i..c.len().min(*i + 4)].iter().collect();
                if rest.starts_with("(?P<") || (rest.starts_with("(?<") && !rest.starts_with("(?<=")) {
                    let start = *i + if rest.starts_with("(?P<") { 4 } else { 3 };
                    let end = (start..c.len()).find(|&k| c[k] == '>').unwrap_or(c.len());
                    let name: String = c[start..end].iter().collect();
                    *i = skip_balanced(c, *i);
                    Node::Param(name)
                } else if rest.starts_with("(?") {
                    // (?:…) or flags like (?i:…): parse the inside as a group.
                    let colon = (*i..c.len()).find(|&k| c[k] == ':' || c[k] == ')').unwrap_or(c.len());
                    if c.get(colon) == Some(&')') {
                        // A bare flag group such as (?i): nothing to show.
                        *i = colon + 1;
                        continue;
                    }
                    *i = colon + 1;
                    Node::Group(parse_alts(c, i))
                } else {
                    *i += 1;
                    Node::Group(parse_alts(c, i))
                }
            }
            '[' => {
                *i = skip_balanced(c, *i);
                Node::Wild
            }
            '.' => {
                *i += 1;
                Node::Wild
            }
            '\\' => {
                let e = c.get(*i + 1).copied().unwrap_or('\\');
                *i += 2;
                if e.is_ascii_alphabetic() {
                    Node::Wild
                } else {
                    Node::Lit(e)
                }
            }
            other => {
                *i += 1;
                Node::Lit(other)
            }
        };
        // Quantifiers.
        let mut node = atom;
        match c.get(*i) {
            Some('?') | Some('*') => {
                let star = c[*i] == '*';
                *i += 1;
                if !(star && matches!(node, Node::Wild)) {
                    node = Node::Optional(Box::new(node));
                }
            }
            Some('+') => *i += 1,
            Some('{') => {
                let min_zero = c.get(*i + 1) == Some(&'0');
                *i = (*i..c.len()).find(|&k| c[k] == '}').map(|k| k + 1).unwrap_or(c.len());
                if min_zero && !matches!(node, Node::Wild) {
                    node = Node::Optional(Box::new(node));
                }
            }
            _ => {}
        }
        if c.get(*i) == Some(&'?') {
            *i += 1; // lazy
        }
        alts.last_mut().expect("at least one alternative").push(node);
    }
    alts
}

/// The most variants one pattern may expand to.
const MAX_VARIANTS: usize = 16;

fn expand_seq(seq: &[Node]) -> Vec<Vec<Piece>> {
    let mut out: Vec<Vec<Piece>> = vec![Vec::new()];
    for n in seq {
        let vars = expand_node(n);
        let mut next = Vec::new();
        for prefix in &out {
            for v in &vars {
                if next.len() >= MAX_VARIANTS {
                    break;
                }
                let mut p = prefix.clone();
                p.extend(v.iter().cloned());
                next.push(p);
            }
        }
        out = next;
    }
    out
}

fn expand_node(n: &Node) -> Vec<Vec<Piece>> {
    match n {
        Node::Lit(c) => vec![vec![Piece::Lit(*c)]],
        Node::Param(name) => vec![vec![Piece::Param(name.clone())]],
        Node::Wild => vec![vec![Piece::Wild]],
        Node::Group(alts) => alts.iter().flat_map(|a| expand_seq(a)).take(MAX_VARIANTS).collect(),
        Node::Optional(inner) => {
            let mut v = expand_node(inner);
            v.push(Vec::new());
            v
        }
    }
}

/// A path template: text with `{name}` parameters, and the parameter names in order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Template {
    /// `data/{path}`: the path relative to the prefix, parameters in braces.
    pub text: String,
    /// The parameters' names, in order.
    pub params: Vec<String>,
}

fn render(pieces: &[Piece]) -> Template {
    let mut text = String::new();
    let mut params: Vec<String> = Vec::new();
    let mut last_wild = false;
    for p in pieces {
        match p {
            Piece::Lit(c) => {
                text.push(*c);
                last_wild = false;
            }
            Piece::Param(name) => {
                let _ = write!(text, "{{{name}}}");
                params.push(name.clone());
                last_wild = false;
            }
            Piece::Wild if last_wild => {}
            Piece::Wild => {
                let mut name = "path".to_string();
                let mut n = 2;
                while params.contains(&name) {
                    name = format!("path{n}");
                    n += 1;
                }
                let _ = write!(text, "{{{name}}}");
                params.push(name);
                last_wild = true;
            }
        }
    }
    // An optional or literal trailing slash is not part of the documented path.
    while text.ends_with('/') {
        text.pop();
    }
    Template { text, params }
}

/// The templates a pattern documents, relative to its mount, without duplicates.
pub fn templates(pattern: &str) -> Vec<Template> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    let alts = parse_alts(&chars, &mut i);
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for alt in &alts {
        for v in expand_seq(alt) {
            let t = render(&v);
            if seen.insert(t.text.clone()) {
                out.push(t);
            }
        }
    }
    out
}

/// The OpenAPI path templates of a path pattern (`issued/{id}`), each with its parameter
/// names, for tools that walk a path table (`coffer plugin verify`).
pub fn path_templates(pattern: &str) -> Vec<(String, Vec<String>)> {
    templates(pattern).into_iter().map(|t| (t.text, t.params)).collect()
}

/// Every parameter name a pattern can carry in the URL.
pub fn url_params(pattern: &str) -> BTreeSet<String> {
    templates(pattern).into_iter().flat_map(|t| t.params).collect()
}

/// A concrete path matching a template, to test path lists (sudo, unauthenticated) against.
pub fn sample(template: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for c in template.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push('x');
            }
            '}' => in_param = false,
            c if !in_param => out.push(c),
            _ => {}
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Path items

/// The name of a field type in help text (`string`, `int`, `duration`, …).
pub fn type_name(ty: FieldType) -> &'static str {
    match ty {
        FieldType::String => "string",
        FieldType::Int => "int",
        FieldType::Bool => "bool",
        FieldType::DurationSecond => "duration: seconds or a string such as \"1h30m\"",
        FieldType::Map => "map",
        FieldType::KvPairs => "map of strings: an object, or key=value entries",
        FieldType::CommaStringSlice => "list: an array or a comma-separated string",
        FieldType::Raw => "any",
    }
}

/// Whether `v` is a value of the OpenAPI type `ty`.
fn fits(ty: &str, v: &Value) -> bool {
    match ty {
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        _ => true,
    }
}

fn field_schema(f: &FieldSpec) -> Value {
    let mut s = Map::new();
    // A raw field takes any JSON value: no type.
    let ty = if f.ty == FieldType::Raw { None } else { Some(f.ty.openapi_type()) };
    if let Some(ty) = ty {
        s.insert("type".into(), ty.into());
    }
    if f.ty == FieldType::CommaStringSlice {
        s.insert("items".into(), json!({ "type": "string" }));
    }
    if !f.description.is_empty() {
        s.insert("description".into(), f.description.into());
    }
    if let Some(d) = &f.default {
        if ty.is_none_or(|t| fits(t, d)) {
            s.insert("default".into(), d.clone());
        }
    }
    Value::Object(s)
}

/// `kv-v2/data/{path}` → `KvV2DataPath`.
fn pascal(s: &str) -> String {
    s.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut cs = w.chars();
            let first = cs.next().map(|c| c.to_ascii_uppercase()).unwrap_or_default();
            std::iter::once(first).chain(cs).collect::<String>()
        })
        .collect()
}

fn slug(s: &str) -> String {
    s.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()).collect::<Vec<_>>().join("-")
}

/// Collects what a document is built of: paths, component schemas, operation ids in use.
#[derive(Default)]
pub struct Builder {
    paths: BTreeMap<String, Value>,
    schemas: BTreeMap<String, Value>,
    ids: BTreeSet<String>,
    /// Paths with parameter names blanked: OpenAPI forbids two templates that differ only
    /// in the names of their parameters.
    shapes: BTreeSet<String>,
    /// A backend's fragment for a host to merge: request bodies as schemas in place instead
    /// of `$ref`s to `components` (OpenBao reads a plugin's document into its own types, which
    /// keep no `$ref`), and no `operationId`s (mount-relative ids would repeat once per mount
    /// in the host's document).
    fragment: bool,
}

/// `/a/{x}/b` → `/a/{}/b`.
fn shape(template: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for c in template.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push_str("{}");
            }
            '}' => in_param = false,
            c if !in_param => out.push(c),
            _ => {}
        }
    }
    out
}

impl Builder {
    fn op_id(&mut self, verb: &str, path: &str) -> String {
        let base = format!("{verb}-{}", slug(path));
        let base = if base.ends_with('-') { format!("{base}root") } else { base };
        let mut id = base.clone();
        let mut n = 2;
        while !self.ids.insert(id.clone()) {
            id = format!("{base}-{n}");
            n += 1;
        }
        id
    }

    /// Documents every template of `spec`, under `prefix` (`""` for mount-relative fragments).
    pub fn add_spec(&mut self, t: &Table<'_>, prefix: &str, spec: &PathSpec) {
        let in_url = url_params(spec.pattern);
        let body_fields: Vec<&FieldSpec> = spec.fields.iter().filter(|f| !in_url.contains(f.name)).collect();
        let has = |o: Operation| spec.operations.iter().any(|(x, _)| *x == o);
        let summary = |ops: &[Operation]| {
            ops.iter().find_map(|o| spec.operations.iter().find(|(x, _)| x == o).map(|(_, d)| *d)).unwrap_or("")
        };
        let writes = has(Operation::Create) || has(Operation::Update) || has(Operation::Patch);
        for tpl in templates(spec.pattern) {
            let full = if tpl.text.is_empty() {
                format!("/{}", prefix.trim_end_matches('/'))
            } else {
                format!("/{prefix}{}", tpl.text)
            };
            if !self.shapes.insert(shape(&full)) {
                continue;
            }
            let mut item = Map::new();
            if !spec.synopsis.is_empty() {
                item.insert("description".into(), spec.synopsis.into());
            }
            let params: Vec<Value> = tpl
                .params
                .iter()
                .map(|name| {
                    let f = spec.fields.iter().find(|f| f.name == name.as_str());
                    let ty = match f.map(|f| f.ty) {
                        Some(FieldType::Int) => "integer",
                        _ => "string",
                    };
                    let desc = f.map(|f| f.description).filter(|d| !d.is_empty()).unwrap_or("Part of the request path");
                    json!({ "name": name, "description": desc, "in": "path", "required": true,
                            "schema": { "type": ty } })
                })
                .collect();
            if !params.is_empty() {
                item.insert("parameters".into(), Value::from(params));
            }
            let flags = (t.flags)(&sample(&tpl.text));
            if flags.unauthenticated {
                item.insert("x-vault-unauthenticated".into(), true.into());
            }
            if flags.sudo {
                item.insert("x-vault-sudo".into(), true.into());
            }
            if has(Operation::Create) {
                item.insert("x-vault-createSupported".into(), true.into());
            }
            // Fields travel in the query string when the path takes no body at all.
            let query: Vec<Value> = if writes {
                Vec::new()
            } else {
                body_fields
                    .iter()
                    .map(|f| {
                        json!({ "name": f.name, "description": f.description, "in": "query",
                                     "schema": field_schema(f) })
                    })
                    .collect()
            };
            let ok = json!({ "200": { "description": "OK" }, "204": { "description": "No content" } });
            if has(Operation::Read) || has(Operation::List) {
                let mut op = Map::new();
                let mut qp = query.clone();
                let verb = if has(Operation::Read) {
                    op.insert("summary".into(), summary(&[Operation::Read]).into());
                    if has(Operation::List) {
                        qp.push(json!({ "name": "list", "description": "List instead of read when `true`",
                                        "in": "query", "schema": { "type": "string" } }));
                    }
                    "read"
                } else {
                    op.insert("summary".into(), summary(&[Operation::List]).into());
                    qp.push(json!({ "name": "list", "description": "Must be `true`", "in": "query",
                                    "required": true, "schema": { "type": "string", "enum": ["true"] } }));
                    "list"
                };
                if !self.fragment {
                    op.insert("operationId".into(), self.op_id(verb, &full).into());
                }
                op.insert("tags".into(), json!([t.tag]));
                if !qp.is_empty() {
                    op.insert("parameters".into(), Value::from(qp));
                }
                op.insert("responses".into(), json!({ "200": { "description": "OK" } }));
                item.insert("get".into(), Value::Object(op));
            }
            for (method, ops, verb, content_type) in [
                ("post", &[Operation::Update, Operation::Create][..], "write", "application/json"),
                ("patch", &[Operation::Patch][..], "patch", "application/merge-patch+json"),
            ] {
                if !ops.iter().any(|o| has(*o)) {
                    continue;
                }
                let mut op = Map::new();
                op.insert("summary".into(), summary(ops).into());
                let id = self.op_id(verb, &full);
                if !body_fields.is_empty() || spec.passthrough {
                    let mut props = Map::new();
                    for f in &body_fields {
                        props.insert(f.name.to_string(), field_schema(f));
                    }
                    let mut schema = Map::new();
                    schema.insert("type".into(), "object".into());
                    schema.insert("properties".into(), Value::Object(props));
                    let required: Vec<&str> = body_fields.iter().filter(|f| f.required).map(|f| f.name).collect();
                    if method == "post" && !required.is_empty() {
                        schema.insert("required".into(), json!(required));
                    }
                    if spec.passthrough {
                        schema.insert("additionalProperties".into(), true.into());
                    }
                    let schema = if self.fragment {
                        Value::Object(schema)
                    } else {
                        let name = format!("{}Request", pascal(&id));
                        self.schemas.insert(name.clone(), Value::Object(schema));
                        json!({ "$ref": format!("#/components/schemas/{name}") })
                    };
                    op.insert(
                        "requestBody".into(),
                        json!({ "required": true, "content": { content_type: { "schema": schema } } }),
                    );
                }
                if !self.fragment {
                    op.insert("operationId".into(), id.into());
                }
                op.insert("tags".into(), json!([t.tag]));
                op.insert("responses".into(), ok.clone());
                item.insert(method.into(), Value::Object(op));
            }
            if has(Operation::Delete) {
                let mut op = Map::new();
                op.insert("summary".into(), summary(&[Operation::Delete]).into());
                if !self.fragment {
                    op.insert("operationId".into(), self.op_id("delete", &full).into());
                }
                op.insert("tags".into(), json!([t.tag]));
                if !query.is_empty() {
                    op.insert("parameters".into(), Value::from(query.clone()));
                }
                op.insert("responses".into(), json!({ "204": { "description": "No content" } }));
                item.insert("delete".into(), Value::Object(op));
            }
            self.paths.insert(full, Value::Object(item));
        }
    }

    /// The whole document, with `info` (title, description, version, license).
    pub fn document(self, info: Value) -> Map<String, Value> {
        let mut doc = Map::new();
        doc.insert("openapi".into(), OPENAPI_VERSION.into());
        doc.insert("info".into(), info);
        doc.insert("paths".into(), Value::Object(self.paths.into_iter().collect()));
        doc.insert("components".into(), json!({ "schemas": Value::Object(self.schemas.into_iter().collect()) }));
        doc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(p: &str) -> Vec<String> {
        templates(p).into_iter().map(|t| t.text).collect()
    }

    #[test]
    fn patterns_become_templates() {
        assert_eq!(texts(".*"), ["{path}"]);
        assert_eq!(texts("data/(?P<path>.*)"), ["data/{path}"]);
        assert_eq!(texts("metadata(?:/(?P<path>.*))?"), ["metadata/{path}", "metadata"]);
        assert_eq!(texts("role/?"), ["role"]);
        assert_eq!(texts(r"role/(?P<role_name>\w(([\w-.]+)?\w)?)/secret-id/?"), ["role/{role_name}/secret-id"]);
        assert_eq!(texts(r"users/(?P<username>[A-Za-z0-9_](?:[A-Za-z0-9_.\-]*[A-Za-z0-9_])?)"), ["users/{username}"]);
        assert_eq!(texts("(?:rekey|rotate/root)/init"), ["rekey/init", "rotate/root/init"]);
        assert_eq!(texts("config"), ["config"]);
        assert_eq!(texts(r"keys/(?P<name>[^/]+)/rotate\.now"), ["keys/{name}/rotate.now"]);
    }

    #[test]
    fn a_backend_document_lists_its_paths_mount_relative_with_operations_and_parameters() {
        let specs = vec![PathSpec {
            flags: PathFlags::NORMAL,
            pattern: r"keys/(?P<name>\w+)",
            fields: vec![
                FieldSpec::new("name", FieldType::String, "Key name"),
                FieldSpec::new("size", FieldType::Int, "Key size").required(),
            ],
            operations: vec![(Operation::Read, "Read a key"), (Operation::Update, "Write a key")],
            passthrough: false,
            synopsis: "Keys",
            description: "",
        }];
        let doc = backend_document(&specs, "secrets", json!({ "title": "t", "version": "v1" }));
        let item = &doc["paths"]["/keys/{name}"];
        assert_eq!(item["parameters"][0]["name"], "name");
        assert_eq!(item["get"]["summary"], "Read a key");
        let schema = &item["post"]["requestBody"]["content"]["application/json"]["schema"];
        assert!(item["post"]["operationId"].is_null(), "the host names the operations");
        assert_eq!(schema["properties"]["size"]["type"], "integer");
        assert_eq!(schema["required"], json!(["size"]));
    }
}
