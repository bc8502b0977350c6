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
use coffer_sdk::framework::{FieldSpec, PathSpec};
use coffer_sdk::{ErrorKind, LogicalError, Operation};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::OnceLock;

/// The OpenAPI version of the documents.
pub const OPENAPI_VERSION: &str = "3.0.2";

/// Paths under one prefix, documented together: a mount or one of the core's own trees.
struct Table<'a> {
    /// `kv/`, `auth/userpass/`, `sys/` …
    prefix: String,
    /// `secrets`, `auth`, `system` or `identity`.
    tag: &'static str,
    specs: &'a [PathSpec],
    /// Mount-relative patterns served without a token (a trailing `*` is a prefix).
    unauthenticated: &'a [&'a str],
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
            let concrete = format!("{}{}", t.prefix, sample(&tpl.text));
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
            let rel = sample(&tpl.text);
            if coffer_sdk::path_matches_any(t.unauthenticated, &rel) {
                item.insert("x-vault-unauthenticated".into(), true.into());
            }
            if crate::policy_store::is_sudo_path(&concrete) {
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
        unauthenticated: route.backend.unauthenticated_paths(),
        overview: mount_overview(route),
    }
}

/// The core's own trees, in document order.
fn system_tables() -> Vec<Table<'static>> {
    vec![
        Table {
            prefix: "sys/".into(),
            tag: "system",
            specs: sys_specs(),
            unauthenticated: SYS_UNAUTHENTICATED,
            overview: "The system backend: seal state, mounts, auth methods, policies, leases, response \
                       wrapping and tools."
                .into(),
        },
        Table {
            prefix: "auth/token/".into(),
            tag: "auth",
            specs: token_specs(),
            unauthenticated: &[],
            overview: "The token store: create, look up, renew and revoke tokens; token roles.".into(),
        },
        Table {
            prefix: "identity/".into(),
            tag: "identity",
            specs: identity_specs(),
            unauthenticated: &[],
            overview: "The identity store: entities, their aliases, and groups.".into(),
        },
        Table {
            prefix: "cubbyhole/".into(),
            tag: "secrets",
            specs: cubbyhole_specs(),
            unauthenticated: &[],
            overview: "Private storage of the calling token, destroyed with it.".into(),
        },
    ]
}

impl Core {
    /// `sys/internal/specs/openapi`: every system path and the paths of every mount the
    /// caller's policies reach. `generic_mount_paths` is accepted and ignored.
    pub(crate) fn openapi_document(&self, active: &Active, acl: &Acl) -> Result<CoreResponse> {
        let router = active.router.read().map_err(|_| LogicalError::internal("router lock poisoned"))?.clone();
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
        let router = active.router.read().map_err(|_| LogicalError::internal("router lock poisoned"))?.clone();
        // A plugin mount knows its path table once its process runs.
        if let Some((r, _)) = router.resolve(path) {
            r.backend.ensure_started().await?;
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

// ---------------------------------------------------------------------------------------------
// The hand-written tables of the core's own paths

use FieldType::{Bool, CommaStringSlice as List, DurationSecond as Duration, Int, Map as MapT, String as Str};
use Operation::{Create, Delete, List as ListOp, Read, Update};

fn f(name: &'static str, ty: FieldType, description: &'static str) -> FieldSpec {
    FieldSpec::new(name, ty, description)
}

fn p(
    pattern: &'static str,
    fields: Vec<FieldSpec>,
    operations: Vec<(Operation, &'static str)>,
    synopsis: &'static str,
    description: &'static str,
) -> PathSpec {
    PathSpec { pattern, fields, operations, passthrough: false, synopsis, description }
}

/// `sys/` paths served without a token.
const SYS_UNAUTHENTICATED: &[&str] = &[
    "seal-status",
    "health",
    "init",
    "unseal",
    "leader",
    "generate-root/*",
    // Not rekey/backup nor rekey/recovery-key-backup: those need a token.
    "rekey/init",
    "rekey/update",
    "rekey/verify",
    "wrapping/lookup",
    "internal/ui/mounts",
    "internal/ui/mounts/*",
];

fn mount_fields() -> Vec<FieldSpec> {
    vec![
        f("path", Str, "Where to mount, e.g. \"secret\" or \"team/kv\""),
        f("type", Str, "The backend type, e.g. \"kv\" or \"kv-v2\"").required(),
        f("description", Str, "A human-readable description of the mount"),
        f(
            "config",
            MapT,
            "Tunables: default_lease_ttl, max_lease_ttl, listing_visibility, audit \
                          and header lists",
        ),
        f("options", MapT, "Options for the backend, as string pairs (kv: version)"),
        f("local", Bool, "Keep the mount out of replication"),
        f("seal_wrap", Bool, "Seal-wrap the mount's storage"),
        f("external_entropy_access", Bool, "Give the mount access to external entropy"),
        f("plugin_version", Str, "The plugin version to run"),
    ]
}

fn tune_fields() -> Vec<FieldSpec> {
    vec![
        f("path", Str, "The mount to tune"),
        f("default_lease_ttl", Duration, "Default lease TTL of the mount; \"system\" or 0 uses the server's"),
        f("max_lease_ttl", Duration, "Maximum lease TTL of the mount; \"system\" or 0 uses the server's"),
        f("description", Str, "A new description"),
        f(
            "listing_visibility",
            Str,
            "\"unauth\" to list the mount in the UI without a token, \"hidden\" or \
                          \"\"",
        ),
        f("options", MapT, "Options for the backend, as string pairs"),
        f("token_type", Str, "For auth mounts: default-service, default-batch, service or batch"),
        f("audit_non_hmac_request_keys", List, "Request keys the audit log shows in clear"),
        f("audit_non_hmac_response_keys", List, "Response keys the audit log shows in clear"),
        f("passthrough_request_headers", List, "Request headers passed to the backend"),
        f("allowed_response_headers", List, "Response headers the backend may set"),
    ]
}

fn policy_text() -> FieldSpec {
    f("policy", Str, "The policy document, in HCL or JSON")
}

fn lease_fields() -> Vec<FieldSpec> {
    vec![
        f("lease_id", Str, "The lease"),
        f("url_lease_id", Str, "The lease, given in the URL"),
        f("increment", Duration, "Requested TTL extension"),
        f("sync", Bool, "Revoke before answering (always the case in Coffer)"),
    ]
}

fn random_fields() -> Vec<FieldSpec> {
    vec![
        f("urlbytes", Str, "How many bytes, given in the URL"),
        f("source", Str, "Entropy source: platform, seal or all"),
        f("bytes", Int, "How many bytes (1 to 131072)").default(json!(32)),
        f("format", Str, "Output encoding: base64 or hex").default(json!("base64")),
    ]
}

fn hash_fields() -> Vec<FieldSpec> {
    vec![
        f("urlalgorithm", Str, "Algorithm, given in the URL"),
        f("input", Str, "Base64-encoded input").required(),
        f("algorithm", Str, "sha2-224, sha2-256, sha2-384, sha2-512, sha3-*").default(json!("sha2-256")),
        f("format", Str, "Output encoding: hex or base64").default(json!("hex")),
    ]
}

fn shares_fields() -> Vec<FieldSpec> {
    vec![
        f("secret_shares", Int, "How many key shares to split the key into"),
        f("secret_threshold", Int, "How many shares rebuild the key"),
        f(
            "pgp_keys",
            List,
            "Base64 OpenPGP public keys, one per new share: each share comes back encrypted to its key",
        ),
        f("backup", Bool, "Store the PGP-encrypted new shares for rekey/backup (needs pgp_keys)"),
        f("require_verification", Bool, "Require the new shares to be verified before they take effect"),
    ]
}

fn key_nonce() -> Vec<FieldSpec> {
    vec![f("key", Str, "A key share, base64 or hex"), f("nonce", Str, "The nonce of the operation in progress")]
}

/// Whether `rel` (a path below `sys/`) is one of the system backend's paths, whatever the
/// operation. As in OpenBao's path tables: an operation a known path does not serve is
/// refused with 405 "unsupported operation", a path no pattern matches with 404
/// "unsupported path". Only consulted for refused requests.
pub(crate) fn sys_path_known(rel: &str) -> bool {
    static SET: OnceLock<regex::RegexSet> = OnceLock::new();
    SET.get_or_init(|| {
        regex::RegexSet::new(sys_specs().iter().map(|s| format!("^(?:{})$", s.pattern)))
            .unwrap_or_else(|_| regex::RegexSet::empty())
    })
    .is_match(rel)
}

fn sys_specs() -> &'static [PathSpec] {
    static S: OnceLock<Vec<PathSpec>> = OnceLock::new();
    S.get_or_init(|| {
        vec![
            p(
                "seal-status",
                vec![],
                vec![(Read, "Show the seal state")],
                "Seal state",
                "Whether the server is initialised and sealed, the seal's shares and \
                          threshold, and unseal progress.",
            ),
            p(
                "health",
                vec![
                    f("standbyok", Bool, "Answer a standby with the active code"),
                    f("activecode", Int, "Status code when active"),
                    f("standbycode", Int, "Status code when standby"),
                    f("sealedcode", Int, "Status code when sealed"),
                    f("uninitcode", Int, "Status code when not initialised"),
                ],
                vec![(Read, "Show the server's health")],
                "Health check",
                "The status code tells the state (200 active, 429 standby, 503 sealed, \
                          501 not initialised); the query parameters choose other codes.",
            ),
            p(
                "init",
                vec![
                    f("secret_shares", Int, "How many key shares"),
                    f("secret_threshold", Int, "How many shares unseal"),
                    f(
                        "pgp_keys",
                        List,
                        "Base64 OpenPGP public keys, one per share: each share comes back encrypted to its key",
                    ),
                    f("root_token_pgp_key", Str, "Base64 OpenPGP public key the root token comes back encrypted to"),
                    f(
                        "recovery_pgp_keys",
                        List,
                        "Base64 OpenPGP public keys, one per recovery share (auto-unseal only)",
                    ),
                    f("stored_shares", Int, "Shares stored by an auto-unseal (not supported)"),
                    f("recovery_shares", Int, "Recovery shares (auto-unseal only)"),
                    f("recovery_threshold", Int, "Recovery threshold (auto-unseal only)"),
                ],
                vec![(Read, "Whether the server is initialised"), (Update, "Initialise the server")],
                "Initialisation",
                "Creates the root key and its shares and the first root token; only \
                          once per storage.",
            ),
            p(
                "unseal",
                vec![
                    f("key", Str, "One key share"),
                    f("reset", Bool, "Forget the shares given so far"),
                    f("migrate", Bool, "Seal migration (not supported)"),
                ],
                vec![(Update, "Give one key share")],
                "Unseal",
                "Collects key shares; when the threshold is reached the server unseals.",
            ),
            p(
                "seal",
                vec![],
                vec![(Update, "Seal the server")],
                "Seal",
                "Drops the keys from memory: nothing is served until the next unseal.",
            ),
            p(
                "leader",
                vec![],
                vec![(Read, "Show the HA leader")],
                "HA leader",
                "Whether HA is enabled (storage \"postgresql\" with ha_enabled) and which node is active.",
            ),
            p(
                "ha-status",
                vec![],
                vec![(Read, "Show the HA nodes")],
                "HA nodes",
                "The nodes of the cluster: the active one and the standbys heard from recently.",
            ),
            p(
                "step-down",
                vec![],
                vec![(Update, "Give up the HA lock")],
                "Step down",
                "The active node becomes a standby and lets another node take over.",
            ),
            p(
                "config/cors",
                vec![
                    f("allowed_origins", List, "Origins allowed to make cross-origin requests; \"*\" (alone) for any")
                        .required(),
                    f("allowed_headers", List, "Request headers allowed besides the standard ones"),
                    f("allow_credentials", Bool, "Send Access-Control-Allow-Credentials: true"),
                ],
                vec![
                    (Read, "Show the CORS configuration"),
                    (Update, "Enable CORS with these settings"),
                    (Delete, "Disable CORS"),
                ],
                "CORS configuration",
                "Which web origins may call the API from a browser (docs/cors.md).",
            ),
            p(
                "host-info",
                vec![],
                vec![(Read, "Show host information")],
                "Host information",
                "CPU, memory, disk and host details of the server.",
            ),
            p(
                "key-status",
                vec![],
                vec![(Read, "Show the active key term")],
                "Encryption key status",
                "The term of the active barrier key, when it was installed and how \
                          many encryptions it made.",
            ),
            p(
                "rotate(?:/keyring)?",
                vec![],
                vec![(Update, "Rotate the barrier key")],
                "Key rotation",
                "Installs a new barrier key term; older terms stay to decrypt older \
                          entries.",
            ),
            p(
                "rotate(?:/keyring)?/config",
                vec![
                    f("max_operations", Int, "Rotate after this many encryptions (1000000 to 3865470566)"),
                    f("interval", Duration, "Rotate after this long (at least 24h; 0 disables)"),
                    f("enabled", Bool, "Whether automatic rotation is on"),
                ],
                vec![
                    (Read, "Show the automatic rotation settings"),
                    (Update, "Change the automatic rotation settings"),
                ],
                "Automatic key rotation",
                "When the barrier key is rotated without being asked.",
            ),
            p(
                "generate-root(?:-token)?/attempt",
                vec![
                    f("pgp_key", Str, "Base64 OpenPGP public key the new token is encrypted to (instead of an OTP)"),
                    f("otp", Str, "One-time pad the new token is XORed with"),
                ],
                vec![
                    (Read, "Show the attempt's progress"),
                    (Update, "Start an attempt"),
                    (Delete, "Cancel the attempt"),
                ],
                "Root token generation",
                "Creates a new root token from a quorum of key shares.",
            ),
            p(
                "generate-root(?:-token)?/update",
                key_nonce(),
                vec![(Update, "Give one key share")],
                "Root token generation: shares",
                "Collects key shares for the attempt in progress; the last one returns \
                          the encoded token.",
            ),
            p(
                "(?:rekey|rotate/root)/init",
                shares_fields(),
                vec![(Read, "Show the rekey's progress"), (Update, "Start a rekey"), (Delete, "Cancel the rekey")],
                "Rekey",
                "Splits the root key into a new set of shares, with a new threshold.",
            ),
            p(
                "(?:rekey|rotate/root)/update",
                key_nonce(),
                vec![(Update, "Give one current key share")],
                "Rekey: shares",
                "Collects current key shares; the last one returns the new shares.",
            ),
            p(
                "(?:rekey|rotate/root)/verify",
                key_nonce(),
                vec![
                    (Read, "Show the verification's progress"),
                    (Update, "Give one new key share"),
                    (Delete, "Restart the verification"),
                ],
                "Rekey: verification",
                "Proves the new shares were received before they take effect.",
            ),
            p(
                "(?:rekey|rotate/root)/backup",
                vec![],
                vec![(Read, "Read the backed-up encrypted unseal key shares"), (Delete, "Delete the backup")],
                "Rekey: backup",
                "The PGP-encrypted new shares a rekey with backup stored, by key fingerprint.",
            ),
            p(
                "(?:rekey/recovery-key-backup|rotate/recovery/backup)",
                vec![],
                vec![(Read, "Read the backed-up encrypted recovery key shares"), (Delete, "Delete the backup")],
                "Recovery rekey: backup",
                "The PGP-encrypted new recovery shares a recovery rekey with backup stored.",
            ),
            p(
                "mounts",
                vec![],
                vec![(Read, "List the secrets engines")],
                "Secrets engines",
                "Every mounted secrets engine, with its type, accessor and \
                          configuration.",
            ),
            p(
                "mounts/(?P<path>.+)/tune",
                tune_fields(),
                vec![(Read, "Show the mount's tunables"), (Update, "Change the mount's tunables")],
                "Mount tuning",
                "Lease TTLs, description, visibility and options of a mount.",
            ),
            p(
                "mounts/(?P<path>.+)",
                mount_fields(),
                vec![
                    (Read, "Show the mount"),
                    (Update, "Mount a secrets engine"),
                    (Delete, "Unmount it and delete its data"),
                ],
                "A secrets engine mount",
                "Mounts a secrets engine at the path, shows it, or unmounts it (its \
                          data and leases go with it).",
            ),
            p(
                "remount",
                vec![
                    f("from", Str, "The current mount path").required(),
                    f("to", Str, "The new mount path").required(),
                ],
                vec![(Update, "Move a mount")],
                "Move a mount",
                "Moves a secrets engine or auth method to another path, keeping its \
                          data.",
            ),
            p(
                "remount/status/(?P<migration_id>.+)",
                vec![f("migration_id", Str, "The id a remount returned")],
                vec![(Read, "Show the remount's state")],
                "Remount status",
                "Whether a remount finished.",
            ),
            p(
                "auth",
                vec![],
                vec![(Read, "List the auth methods")],
                "Auth methods",
                "Every enabled auth method, with its type, accessor and configuration.",
            ),
            p(
                "auth/(?P<path>.+)/tune",
                tune_fields(),
                vec![(Read, "Show the auth mount's tunables"), (Update, "Change the auth mount's tunables")],
                "Auth mount tuning",
                "Token TTLs, token type, description and visibility of an auth method.",
            ),
            p(
                "auth/(?P<path>.+)",
                mount_fields(),
                vec![
                    (Read, "Show the auth method"),
                    (Update, "Enable an auth method"),
                    (Delete, "Disable it, revoking its tokens"),
                ],
                "An auth method mount",
                "Enables an auth method at auth/<path>, shows it, or disables it.",
            ),
            p(
                "policy/?",
                vec![],
                vec![(Read, "List the ACL policies"), (ListOp, "List the ACL policies")],
                "ACL policies (legacy path)",
                "The names of every ACL policy.",
            ),
            p(
                "policy/(?P<name>.+)",
                vec![
                    f("name", Str, "The policy's name"),
                    f("rules", Str, "The policy document (legacy name of policy)"),
                    policy_text(),
                ],
                vec![(Read, "Read the policy"), (Update, "Write the policy"), (Delete, "Delete the policy")],
                "An ACL policy (legacy path)",
                "Reads, writes or deletes an ACL policy; root and default cannot be \
                          deleted.",
            ),
            p(
                "policies/acl/?",
                vec![],
                vec![(ListOp, "List the ACL policies")],
                "ACL policies",
                "The names of every ACL policy.",
            ),
            p(
                "policies/acl/(?P<name>.+)",
                vec![f("name", Str, "The policy's name"), policy_text()],
                vec![(Read, "Read the policy"), (Update, "Write the policy"), (Delete, "Delete the policy")],
                "An ACL policy",
                "Reads, writes or deletes an ACL policy; root and default cannot be \
                          deleted.",
            ),
            p(
                "policies/password/?",
                vec![],
                vec![(ListOp, "List the password policies")],
                "Password policies",
                "The names of every password policy.",
            ),
            p(
                "policies/password/(?P<name>[^/]+)/generate",
                vec![f("name", Str, "The policy's name")],
                vec![(Read, "Generate a password")],
                "Generate a password",
                "Returns a new password that satisfies the policy.",
            ),
            p(
                "policies/password/(?P<name>[^/]+)",
                vec![f("name", Str, "The policy's name"), f("policy", Str, "The password policy, in HCL")],
                vec![(Read, "Read the policy"), (Update, "Write the policy"), (Delete, "Delete the policy")],
                "A password policy",
                "Length and character rules passwords are generated from.",
            ),
            p(
                "capabilities",
                vec![
                    f("token", Str, "The token to check"),
                    f("paths", List, "The paths to check"),
                    f("path", List, "Deprecated: use paths"),
                ],
                vec![(Update, "Show a token's capabilities")],
                "Capabilities of a token",
                "The capabilities a token's policies give it on each path.",
            ),
            p(
                "capabilities-accessor",
                vec![
                    f("accessor", Str, "The accessor of the token to check"),
                    f("paths", List, "The paths to check"),
                    f("path", List, "Deprecated: use paths"),
                ],
                vec![(Update, "Show a token's capabilities by accessor")],
                "Capabilities by accessor",
                "The capabilities of the token with this accessor on each path.",
            ),
            p(
                "capabilities-self",
                vec![f("paths", List, "The paths to check"), f("path", List, "Deprecated: use paths")],
                vec![(Update, "Show the caller's capabilities")],
                "Capabilities of the caller",
                "The capabilities of the calling token on each path.",
            ),
            p(
                "internal/ui/mounts",
                vec![],
                vec![(Read, "List visible mounts")],
                "Mounts for the UI",
                "The mounts the caller's policies reach, or those marked unauth \
                          without a token.",
            ),
            p(
                "internal/ui/mounts/(?P<path>.+)",
                vec![f("path", Str, "A path inside the mount")],
                vec![(Read, "Show the mount serving a path")],
                "Mount of a path",
                "The mount serving the path, if the caller may see it.",
            ),
            p(
                "internal/ui/resultant-acl",
                vec![],
                vec![(Read, "Show the caller's merged policy")],
                "Resultant ACL",
                "The caller's policies merged into one set of path rules.",
            ),
            p(
                "internal/specs/openapi",
                vec![f("generic_mount_paths", Bool, "Accepted for compatibility; ignored")],
                vec![(Read, "The OpenAPI document")],
                "OpenAPI document",
                "An OpenAPI 3 document of every system path and of the mounts the \
                          caller's policies reach.",
            ),
            p(
                "leases/lookup",
                vec![f("lease_id", Str, "The lease").required()],
                vec![(Update, "Look up a lease")],
                "Lease lookup",
                "A lease's issue, expiry and renewal times and whether it is renewable.",
            ),
            p(
                "leases/lookup/(?P<prefix>.+?)/?",
                vec![f("prefix", Str, "A lease id prefix")],
                vec![(ListOp, "List lease ids below a prefix")],
                "Lease ids",
                "The lease ids below a prefix.",
            ),
            p(
                "(?:leases/)?renew(?:/(?P<url_lease_id>.+))?",
                lease_fields(),
                vec![(Update, "Renew a lease")],
                "Lease renewal",
                "Extends a renewable lease, within its maximum TTL.",
            ),
            p(
                "(?:leases/)?revoke(?:/(?P<url_lease_id>.+))?",
                lease_fields(),
                vec![(Update, "Revoke a lease")],
                "Lease revocation",
                "Revokes a lease and whatever it stands for.",
            ),
            p(
                "(?:leases/)?revoke-prefix/(?P<prefix>.+)",
                vec![
                    f("prefix", Str, "The lease id prefix"),
                    f("sync", Bool, "Revoke before answering (always the case)"),
                ],
                vec![(Update, "Revoke every lease below a prefix")],
                "Revoke by prefix",
                "Revokes every lease whose id starts with the prefix.",
            ),
            p(
                "(?:leases/)?revoke-force/(?P<prefix>.+)",
                vec![f("prefix", Str, "The lease id prefix")],
                vec![(Update, "Forget every lease below a prefix, ignoring backend errors")],
                "Forced revocation",
                "Revokes every lease below the prefix even when its backend fails to \
                          revoke it.",
            ),
            p(
                "leases/tidy",
                vec![],
                vec![(Update, "Remove stale lease index entries")],
                "Lease tidy",
                "Removes index entries of leases that no longer exist.",
            ),
            p(
                "wrapping/wrap",
                vec![],
                vec![(Update, "Wrap the request body")],
                "Wrap data",
                "Stores the request body in a new single-use wrapping token (set \
                          X-Vault-Wrap-TTL).",
            ),
            p(
                "wrapping/unwrap",
                vec![f("token", Str, "The wrapping token (or send it as the request token)")],
                vec![(Update, "Unwrap a response")],
                "Unwrap",
                "Returns the wrapped response and destroys the wrapping token.",
            ),
            p(
                "wrapping/lookup",
                vec![f("token", Str, "The wrapping token").required()],
                vec![(Update, "Look up a wrapping token")],
                "Wrapping lookup",
                "The creation time, TTL and path of a wrapping token.",
            ),
            p(
                "wrapping/rewrap",
                vec![f("token", Str, "The wrapping token")],
                vec![(Update, "Rewrap a response")],
                "Rewrap",
                "Moves a wrapped response into a new wrapping token.",
            ),
            p(
                "(?:tools/)?random(?:/(?P<urlbytes>[0-9]+))?",
                random_fields(),
                vec![(Update, "Generate random bytes")],
                "Random bytes",
                "Returns random bytes from the server's generator, base64 or hex \
                          encoded.",
            ),
            p(
                "(?:tools/)?random/(?P<source>platform|seal|all)(?:/(?P<urlbytes>[0-9]+))?",
                random_fields(),
                vec![(Update, "Generate random bytes from a source")],
                "Random bytes from a source",
                "Returns random bytes from the named source (all sources are the \
                          server's generator).",
            ),
            p(
                "tools/hash(?:/(?P<urlalgorithm>.+))?",
                hash_fields(),
                vec![(Update, "Hash the input")],
                "Hash",
                "Hashes base64-encoded input with a SHA-2 or SHA-3 function.",
            ),
            p("audit", vec![], vec![(Read, "List the audit devices")], "Audit devices", "Every enabled audit device."),
            p(
                "audit/(?P<path>.+)",
                vec![
                    f("path", Str, "Where to enable the device"),
                    f("type", Str, "The device type, e.g. \"file\"").required(),
                    f("description", Str, "A human-readable description"),
                    f("options", MapT, "Device options, e.g. file_path"),
                    f("local", Bool, "Keep the device out of replication"),
                ],
                vec![(Update, "Enable an audit device"), (Delete, "Disable the audit device")],
                "An audit device",
                "Enables or disables an audit device; every request and response is \
                          recorded by each device.",
            ),
            p(
                "audit-hash/(?P<path>.+)",
                vec![f("path", Str, "The audit device"), f("input", Str, "The value to hash").required()],
                vec![(Update, "Hash a value as the device would")],
                "Audit hash",
                "The HMAC the audit device would log for a value.",
            ),
            p(
                "metrics",
                vec![f("format", Str, "\"prometheus\" for the text exposition format")],
                vec![(Read, "Show the server's metrics")],
                "Metrics",
                "Request counts and timings, as JSON or in Prometheus' format.",
            ),
        ]
    })
}

fn token_create_fields() -> Vec<FieldSpec> {
    vec![
        f("role_name", Str, "The token role to create the token with"),
        f("id", Str, "The token's value (root tokens only)"),
        f("policies", List, "Policies of the token"),
        f("meta", MapT, "Metadata string pairs"),
        f("no_parent", Bool, "Create an orphan token (root or sudo)"),
        f("no_default_policy", Bool, "Leave out the default policy"),
        f("renewable", Bool, "Whether the token can be renewed").default(json!(true)),
        f("ttl", Duration, "Initial TTL"),
        f("explicit_max_ttl", Duration, "Hard cap on the token's lifetime"),
        f("period", Duration, "Make the token periodic"),
        f("type", Str, "service or batch"),
        f("display_name", Str, "A display name"),
        f("num_uses", Int, "How many uses (0 = unlimited)"),
        f("entity_alias", Str, "Entity alias to attach the token to"),
    ]
}

fn token_specs() -> &'static [PathSpec] {
    static S: OnceLock<Vec<PathSpec>> = OnceLock::new();
    S.get_or_init(|| {
        let mut role_fields = vec![
            f("role_name", Str, "The role's name"),
            f("allowed_policies", List, "Policies tokens of this role may have"),
            f("disallowed_policies", List, "Policies tokens of this role may not have"),
            f("allowed_policies_glob", List, "Glob patterns of allowed policies"),
            f("disallowed_policies_glob", List, "Glob patterns of disallowed policies"),
            f("orphan", Bool, "Create orphan tokens"),
            f("renewable", Bool, "Whether tokens can be renewed").default(json!(true)),
            f("path_suffix", Str, "Suffix added to the tokens' creation path"),
            f("allowed_entity_aliases", List, "Entity aliases tokens may be created for"),
            f("explicit_max_ttl", Duration, "Deprecated alias of token_explicit_max_ttl"),
        ];
        role_fields.extend(coffer_sdk::tokenutil::token_fields());
        let tok = || f("token", Str, "The token");
        let acc = || f("accessor", Str, "The token's accessor");
        let inc = || f("increment", Duration, "Requested TTL extension");
        vec![
            p(
                "accessors/?",
                vec![],
                vec![(ListOp, "List token accessors")],
                "Token accessors",
                "The accessors of every token.",
            ),
            p(
                "create",
                token_create_fields(),
                vec![(Update, "Create a child token")],
                "Create a token",
                "Creates a token, a child of the caller's unless no_parent is set.",
            ),
            p(
                "create-orphan",
                token_create_fields(),
                vec![(Update, "Create an orphan token")],
                "Create an orphan token",
                "Creates a token without a parent.",
            ),
            p(
                "create/(?P<role_name>.+)",
                token_create_fields(),
                vec![(Update, "Create a token with a role")],
                "Create a token with a role",
                "Creates a token whose settings the role constrains.",
            ),
            p(
                "lookup",
                vec![tok()],
                vec![(Read, "Look up a token"), (Update, "Look up a token")],
                "Token lookup",
                "The properties of a token.",
            ),
            p(
                "lookup-accessor",
                vec![acc()],
                vec![(Update, "Look up a token by accessor")],
                "Token lookup by accessor",
                "The properties of the token with this accessor.",
            ),
            p(
                "lookup-self",
                vec![],
                vec![(Read, "Look up the caller's token")],
                "Own token lookup",
                "The properties of the calling token.",
            ),
            p(
                "renew",
                vec![tok(), inc()],
                vec![(Update, "Renew a token")],
                "Token renewal",
                "Extends a renewable token's TTL within its limits.",
            ),
            p(
                "renew-accessor",
                vec![acc(), inc()],
                vec![(Update, "Renew a token by accessor")],
                "Token renewal by accessor",
                "Extends the TTL of the token with this accessor.",
            ),
            p(
                "renew-self",
                vec![inc()],
                vec![(Update, "Renew the caller's token")],
                "Own token renewal",
                "Extends the calling token's TTL.",
            ),
            p(
                "revoke",
                vec![tok()],
                vec![(Update, "Revoke a token and its children")],
                "Token revocation",
                "Revokes a token, its children and their leases.",
            ),
            p(
                "revoke-accessor",
                vec![acc()],
                vec![(Update, "Revoke a token by accessor")],
                "Token revocation by accessor",
                "Revokes the token with this accessor and its children.",
            ),
            p(
                "revoke-orphan",
                vec![tok()],
                vec![(Update, "Revoke a token, orphaning its children")],
                "Revoke, keeping children",
                "Revokes a token; its children become orphans.",
            ),
            p(
                "revoke-self",
                vec![],
                vec![(Update, "Revoke the caller's token")],
                "Own token revocation",
                "Revokes the calling token and its children.",
            ),
            p("roles/?", vec![], vec![(ListOp, "List token roles")], "Token roles", "The names of every token role."),
            p(
                "roles/(?P<role_name>[^/]+)",
                role_fields,
                vec![(Read, "Read the role"), (Update, "Write the role"), (Delete, "Delete the role")],
                "A token role",
                "Constraints and defaults for tokens created with the role.",
            ),
            p(
                "tidy",
                vec![],
                vec![(Update, "Remove stale token entries")],
                "Token tidy",
                "Removes leftovers of expired and revoked tokens.",
            ),
        ]
    })
}

fn identity_specs() -> &'static [PathSpec] {
    static S: OnceLock<Vec<PathSpec>> = OnceLock::new();
    S.get_or_init(|| {
        let entity = || {
            vec![
                f("id", Str, "The entity's id"),
                f("name", Str, "The entity's name"),
                f("policies", List, "Policies granted to the entity's tokens"),
                f("metadata", MapT, "Metadata string pairs"),
                f("disabled", Bool, "Refuse the entity's tokens"),
            ]
        };
        let alias = || {
            vec![
                f("id", Str, "The alias' id"),
                f("name", Str, "The alias' name in its auth method"),
                f("canonical_id", Str, "The entity the alias belongs to"),
                f("mount_accessor", Str, "The accessor of the alias' auth method"),
                f("metadata", MapT, "Metadata string pairs"),
            ]
        };
        let group = || {
            vec![
                f("id", Str, "The group's id"),
                f("name", Str, "The group's name"),
                f("type", Str, "internal or external"),
                f("policies", List, "Policies granted to the members' tokens"),
                f("metadata", MapT, "Metadata string pairs"),
                f("member_entity_ids", List, "Member entities"),
                f("member_group_ids", List, "Member groups"),
            ]
        };
        let rwd = || vec![(Read, "Read it"), (Update, "Create or update it"), (Delete, "Delete it")];
        vec![
            p(
                "entity",
                entity(),
                vec![(Update, "Create or update an entity")],
                "Entities",
                "Creates an entity, or updates the one with the given id.",
            ),
            p("entity/id/?", vec![], vec![(ListOp, "List entities by id")], "Entity ids", "The ids of every entity."),
            p("entity/id/(?P<id>[^/]+)", entity(), rwd(), "An entity by id", "Reads, updates or deletes an entity."),
            p(
                "entity/name/?",
                vec![],
                vec![(ListOp, "List entities by name")],
                "Entity names",
                "The names of every entity.",
            ),
            p(
                "entity/name/(?P<name>[^/]+)",
                entity(),
                rwd(),
                "An entity by name",
                "Reads, creates or updates, or deletes an entity.",
            ),
            p(
                "entity-alias",
                alias(),
                vec![(Update, "Create or update an entity alias")],
                "Entity aliases",
                "Ties a name in an auth method to an entity.",
            ),
            p(
                "entity-alias/id/?",
                vec![],
                vec![(ListOp, "List entity aliases")],
                "Entity alias ids",
                "The ids of every entity alias.",
            ),
            p(
                "entity-alias/id/(?P<id>[^/]+)",
                alias(),
                rwd(),
                "An entity alias",
                "Reads, updates or deletes an entity alias.",
            ),
            p(
                "group",
                group(),
                vec![(Update, "Create or update a group")],
                "Groups",
                "Creates a group, or updates the one with the given id.",
            ),
            p("group/id/?", vec![], vec![(ListOp, "List groups by id")], "Group ids", "The ids of every group."),
            p("group/id/(?P<id>[^/]+)", group(), rwd(), "A group by id", "Reads, updates or deletes a group."),
            p(
                "group/name/?",
                vec![],
                vec![(ListOp, "List groups by name")],
                "Group names",
                "The names of every group.",
            ),
            p(
                "group/name/(?P<name>[^/]+)",
                group(),
                rwd(),
                "A group by name",
                "Reads, creates or updates, or deletes a group.",
            ),
            p(
                "lookup/entity",
                vec![
                    f("id", Str, "The entity's id"),
                    f("name", Str, "The entity's name"),
                    f("alias_id", Str, "The id of one of its aliases"),
                    f("alias_name", Str, "The name of one of its aliases (with alias_mount_accessor)"),
                    f("alias_mount_accessor", Str, "The accessor of that alias' auth method"),
                ],
                vec![(Update, "Find an entity")],
                "Entity lookup",
                "Finds an entity by id, name or alias.",
            ),
            p(
                "lookup/group",
                vec![f("id", Str, "The group's id"), f("name", Str, "The group's name")],
                vec![(Update, "Find a group")],
                "Group lookup",
                "Finds a group by id or name.",
            ),
        ]
    })
}

fn cubbyhole_specs() -> &'static [PathSpec] {
    static S: OnceLock<Vec<PathSpec>> = OnceLock::new();
    S.get_or_init(|| {
        vec![PathSpec {
            pattern: ".*",
            fields: vec![],
            operations: vec![
                (Read, "Read the secret"),
                (Create, "Store a secret"),
                (Update, "Store a secret"),
                (Delete, "Delete the secret"),
                (ListOp, "List the keys below the path"),
            ],
            passthrough: true,
            synopsis: "The calling token's private storage",
            description: "Stores JSON objects only the calling token can read; they are \
                          destroyed with the token.",
        }]
    })
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
