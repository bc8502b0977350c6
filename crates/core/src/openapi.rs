//! The OpenAPI 3 document (`sys/internal/specs/openapi`) and path help (`?help=1`).
//!
//! Both come from declarative path tables: every mounted backend's [`Backend::paths`] and the
//! hand-written tables of the paths the core serves itself (`sys/`, `auth/token/`, `identity/`,
//! `cubbyhole/`) at the end of this file. A path pattern is a regular expression; it becomes one
//! or more OpenAPI path templates: a named group `(?P<name>…)` is the parameter `{name}`, an
//! unnamed catch-all (`.*`) is `{path}`, an optional group gives a template with and one without
//! it, and an optional trailing slash is dropped.
//!
//! [`Backend::paths`]: coffer_sdk::Backend::paths

use crate::mounts::Route;
use crate::{Active, Core, CoreRequest, CoreResponse, Result};
use coffer_acl::Acl;
use coffer_sdk::field::FieldType;
use coffer_sdk::framework::{FieldSpec, PathFlags, PathSpec};
use coffer_sdk::{ErrorKind, LogicalError, Operation};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// The OpenAPI version of the documents.
pub const OPENAPI_VERSION: &str = "3.0.2";

/// Paths under one prefix, documented together: a mount or one of the core's own trees.
struct Table<'a> {
    /// `kv/`, `auth/userpass/`, `sys/` …
    prefix: String,
    /// `secrets`, `auth`, `system` or `identity`.
    tag: &'static str,
    specs: &'a [PathSpec],
    /// The flags of a path relative to the prefix (unauthenticated, sudo): the mounted
    /// backend's own answer, so the document says what the router does.
    flags: Box<dyn Fn(&str) -> PathFlags + 'a>,
    /// What the whole tree is, for help on the mount itself.
    overview: String,
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
struct Template {
    text: String,
    params: Vec<String>,
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
fn templates(pattern: &str) -> Vec<Template> {
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
fn url_params(pattern: &str) -> BTreeSet<String> {
    templates(pattern).into_iter().flat_map(|t| t.params).collect()
}

/// A concrete path matching a template, to test path lists (sudo, unauthenticated) against.
fn sample(template: &str) -> String {
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

fn type_name(ty: FieldType) -> &'static str {
    match ty {
        FieldType::String => "string",
        FieldType::Int => "int",
        FieldType::Bool => "bool",
        FieldType::DurationSecond => "duration: seconds or a string such as \"1h30m\"",
        FieldType::Map => "map",
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
struct Builder {
    paths: BTreeMap<String, Value>,
    schemas: BTreeMap<String, Value>,
    ids: BTreeSet<String>,
    /// Paths with parameter names blanked: OpenAPI forbids two templates that differ only
    /// in the names of their parameters.
    shapes: BTreeSet<String>,
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
    fn add_spec(&mut self, t: &Table<'_>, prefix: &str, spec: &PathSpec) {
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
                op.insert("operationId".into(), self.op_id(verb, &full).into());
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
                    let name = format!("{}Request", pascal(&id));
                    self.schemas.insert(name.clone(), Value::Object(schema));
                    op.insert(
                        "requestBody".into(),
                        json!({ "required": true, "content": { content_type: {
                            "schema": { "$ref": format!("#/components/schemas/{name}") } } } }),
                    );
                }
                op.insert("operationId".into(), id.into());
                op.insert("tags".into(), json!([t.tag]));
                op.insert("responses".into(), ok.clone());
                item.insert(method.into(), Value::Object(op));
            }
            if has(Operation::Delete) {
                let mut op = Map::new();
                op.insert("summary".into(), summary(&[Operation::Delete]).into());
                op.insert("operationId".into(), self.op_id("delete", &full).into());
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

    fn document(self) -> Map<String, Value> {
        let mut doc = Map::new();
        doc.insert("openapi".into(), OPENAPI_VERSION.into());
        doc.insert(
            "info".into(),
            json!({
                "title": "Coffer",
                "description": "Coffer's HTTP API, compatible with OpenBao's. Every path below is served under /v1/.",
                "version": crate::version_string(),
                "license": { "name": "MPL-2.0", "url": "https://www.mozilla.org/en-US/MPL/2.0/" },
            }),
        );
        doc.insert("paths".into(), Value::Object(self.paths.into_iter().collect()));
        doc.insert("components".into(), json!({ "schemas": Value::Object(self.schemas.into_iter().collect()) }));
        doc
    }
}

/// The document a caller without a token gets: the envelope, no paths.
pub(crate) fn empty_document() -> Map<String, Value> {
    Builder::default().document()
}

// ---------------------------------------------------------------------------------------------
// Help text

fn help_for_spec(t: &Table<'_>, spec: &PathSpec, rel: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "Path:    {}{rel}", t.prefix);
    let _ = writeln!(s, "Pattern: ^{}$ (below {})\n", spec.pattern, t.prefix);
    if !spec.synopsis.is_empty() {
        let _ = writeln!(s, "{}\n", spec.synopsis);
    }
    if !spec.fields.is_empty() {
        s.push_str("## PARAMETERS\n\n");
        for f in &spec.fields {
            let mut attrs = vec![type_name(f.ty).to_string()];
            if f.required {
                attrs.push("required".into());
            }
            if let Some(d) = &f.default {
                attrs.push(format!("default {d}"));
            }
            let _ = writeln!(s, "    {} ({})\n", f.name, attrs.join("; "));
            if !f.description.is_empty() {
                let _ = writeln!(s, "        {}\n", f.description);
            }
        }
    }
    if !spec.operations.is_empty() {
        s.push_str("## OPERATIONS\n\n");
        for (op, desc) in &spec.operations {
            let method = match op {
                Operation::Read => "GET",
                Operation::List => "LIST",
                Operation::Create | Operation::Update => "POST",
                Operation::Patch => "PATCH",
                Operation::Delete => "DELETE",
                Operation::Help => "GET ?help=1",
            };
            let _ = writeln!(s, "    {method:<7} {:<7} {desc}", op.as_str());
        }
        s.push('\n');
    }
    if !spec.description.is_empty() {
        let _ = writeln!(s, "## DESCRIPTION\n\n{}", spec.description);
    }
    s.trim_end().to_string()
}

fn help_overview(t: &Table<'_>) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "## DESCRIPTION\n\n{}\n", t.overview);
    s.push_str("## PATHS\n\nThe paths below this mount, as patterns; ask for help on any path that matches one.\n\n");
    for spec in t.specs {
        let _ = writeln!(s, "    ^{}$", spec.pattern);
        if !spec.synopsis.is_empty() {
            let _ = writeln!(s, "        {}", spec.synopsis);
        }
        s.push('\n');
    }
    s.trim_end().to_string()
}

// ---------------------------------------------------------------------------------------------
// The core's side

fn mount_overview(route: &Route) -> String {
    let kind = if route.is_auth { "auth method" } else { "secrets engine" };
    let mut s = format!("The {} {kind} mounted at {}.", route.entry.mount_type, route.prefix);
    if !route.entry.description.is_empty() {
        let _ = write!(s, " {}", route.entry.description);
    }
    s
}

fn route_table(route: &Route) -> Table<'_> {
    Table {
        prefix: route.prefix.clone(),
        tag: if route.is_auth { "auth" } else { "secrets" },
        specs: route.backend.paths(),
        flags: Box::new(move |rel| route.backend.path_flags(rel)),
        overview: mount_overview(route),
    }
}

/// The core's own trees, in document order.
fn system_tables() -> Vec<Table<'static>> {
    crate::system_paths::trees()
        .into_iter()
        .map(|t| Table {
            prefix: t.prefix.to_string(),
            tag: t.tag,
            specs: t.specs,
            overview: t.overview.to_string(),
            flags: Box::new(move |rel| t.flags_for(rel).unwrap_or_default()),
        })
        .collect()
}

impl Core {
    /// `sys/internal/specs/openapi`: every system path and the paths of every mount the
    /// caller's policies reach. `generic_mount_paths` is accepted and ignored.
    pub(crate) fn openapi_document(&self, active: &Active, acl: &Acl) -> Result<CoreResponse> {
        let router = active.router.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let mut b = Builder::default();
        for t in system_tables() {
            for spec in t.specs {
                b.add_spec(&t, &t.prefix, spec);
            }
        }
        let mut routes: Vec<_> = router.routes.iter().filter(|r| acl.grants_under(&r.prefix)).collect();
        routes.sort_by(|a, b| a.prefix.cmp(&b.prefix));
        for r in routes {
            let t = route_table(r);
            for spec in t.specs {
                b.add_spec(&t, &t.prefix, spec);
            }
        }
        Ok(CoreResponse::raw(b.document()))
    }

    /// A request with `?help=1`: the help text of the path and its OpenAPI fragment (paths
    /// relative to the mount). Any valid token may ask; the path's ACL is not consulted.
    pub(crate) async fn handle_help(&self, req: &CoreRequest, path: &str) -> Result<CoreResponse> {
        let active = self.active().ok_or_else(LogicalError::sealed)?;
        let token = req.token.as_deref().unwrap_or("");
        let entry = if token.is_empty() { None } else { active.tokens.lookup(token).await? };
        let Some(entry) = entry else {
            return Err(LogicalError::permission_denied());
        };
        if !coffer_sdk::tokenutil::addr_in_cidrs(req.remote_addr, &entry.bound_cidrs)
            || active.identity.is_disabled(&entry.entity_id).await
        {
            return Err(LogicalError::permission_denied());
        }
        let router = active.router.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        // A plugin mount knows its path table once its process runs.
        if let Some((r, rest)) = router.resolve(path) {
            r.backend.ensure_started().await?;
            // A plugin that describes no path table (one built on OpenBao's Go SDK or directly
            // on go-plugin) answers help itself, as OpenBao forwards help to the backend.
            if r.backend.backend_type() == "plugin" && r.backend.paths().is_empty() {
                let sreq = self.backend_request(r, rest, Operation::Help, Map::new(), req.remote_addr);
                let mut m = r.backend.handle_request(sreq).await?.and_then(|resp| resp.data).unwrap_or_default();
                if !m.get("help").is_some_and(Value::is_string) {
                    return Err(LogicalError::unsupported_path(path));
                }
                m.entry("see_also").or_insert(Value::Null);
                return Ok(CoreResponse::raw(m));
            }
        }
        let system = system_tables();
        let table = system
            .into_iter()
            .find(|t| path.starts_with(&t.prefix) || format!("{path}/") == t.prefix)
            .or_else(|| router.resolve(path).map(|(r, _)| route_table(r)));
        let Some(t) = table else {
            return Err(LogicalError::new(
                ErrorKind::NotFound,
                format!("no handler for route \"{path}\". route entry not found."),
            ));
        };
        let rel = path.strip_prefix(t.prefix.as_str()).unwrap_or("");
        let mut b = Builder::default();
        let help = if rel.is_empty() {
            for spec in t.specs {
                b.add_spec(&t, "", spec);
            }
            help_overview(&t)
        } else {
            let found = t.specs.iter().find(|s| {
                regex::Regex::new(&format!("^(?:{})$", s.pattern)).map(|re| re.is_match(rel)).unwrap_or(false)
            });
            let Some(spec) = found else {
                return Err(LogicalError::unsupported_path(path));
            };
            b.add_spec(&t, "", spec);
            help_for_spec(&t, spec, rel)
        };
        let mut m = Map::new();
        m.insert("help".into(), help.into());
        m.insert("openapi".into(), Value::Object(b.document()));
        m.insert("see_also".into(), Value::Null);
        Ok(CoreResponse::raw(m))
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
    fn every_template_parameter_is_named_once() {
        for t in system_tables() {
            for s in t.specs {
                for tpl in templates(s.pattern) {
                    let set: BTreeSet<_> = tpl.params.iter().collect();
                    assert_eq!(set.len(), tpl.params.len(), "{}", s.pattern);
                    assert!(!tpl.text.contains('(') && !tpl.text.contains('?'), "{} → {}", s.pattern, tpl.text);
                }
            }
        }
    }

    #[test]
    fn system_help_patterns_compile() {
        for t in system_tables() {
            for s in t.specs {
                regex::Regex::new(&format!("^(?:{})$", s.pattern)).expect(s.pattern);
            }
        }
    }
}
