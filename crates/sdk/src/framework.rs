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
    /// The field's name: a named capture of the pattern or a body parameter.
    pub name: &'static str,
    /// How the value is coerced.
    pub ty: FieldType,
    /// One line for help, OpenAPI and generated docs (plugins are reviewed for it).
    pub description: &'static str,
    /// The value [`FieldData::get`] returns when the request does not set the field.
    pub default: Option<Value>,
    /// A request without the field is refused with 400.
    pub required: bool,
}

impl FieldSpec {
    /// A field with no default that may be left out.
    pub fn new(name: &'static str, ty: FieldType, description: &'static str) -> Self {
        FieldSpec { name, ty, description, default: None, required: false }
    }
    /// The same field with a default value.
    pub fn default(mut self, v: Value) -> Self {
        self.default = Some(v);
        self
    }
    /// The same field, required.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }
}

/// What the router needs to know of a path besides its fields and operations. OpenBao keeps
/// these in a backend's `SpecialPaths` and in lists inside its core; here each path says them
/// itself, so routing, the ACL check, help and OpenAPI read one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathFlags {
    /// Served without a token (logins, seal status, …).
    pub unauthenticated: bool,
    /// Root-protected: the caller's policy needs `sudo` on the path besides the operation's
    /// capability.
    pub sudo: bool,
    /// Served while the server is sealed (the ceremonies and status endpoints).
    pub sealed: bool,
    /// Served by an HA standby itself instead of being sent to the active node.
    pub standby: bool,
    /// Recorded by audit devices. Only endpoints that must answer while nothing can be
    /// recorded (sealed, uninitialised) are not.
    pub audited: bool,
}

impl PathFlags {
    /// An ordinary path: needs a token, not root-protected, served when unsealed and active,
    /// audited.
    pub const NORMAL: PathFlags =
        PathFlags { unauthenticated: false, sudo: false, sealed: false, standby: false, audited: true };

    /// The same flags, served without a token.
    pub const fn unauthenticated(mut self) -> Self {
        self.unauthenticated = true;
        self
    }
    /// The same flags, root-protected (`sudo`).
    pub const fn sudo(mut self) -> Self {
        self.sudo = true;
        self
    }
    /// The same flags, served while sealed.
    pub const fn sealed(mut self) -> Self {
        self.sealed = true;
        self
    }
    /// The same flags, served by a standby.
    pub const fn standby(mut self) -> Self {
        self.standby = true;
        self
    }
    /// The same flags, not audited.
    pub const fn unaudited(mut self) -> Self {
        self.audited = false;
        self
    }
}

impl Default for PathFlags {
    fn default() -> Self {
        PathFlags::NORMAL
    }
}

/// One path of a backend.
#[derive(Debug, Clone, Default)]
pub struct PathSpec {
    /// A regular expression over the mount-relative path, anchored at both ends.
    pub pattern: &'static str,
    /// The fields the path accepts: its named captures and body parameters.
    pub fields: Vec<FieldSpec>,
    /// The operations the path serves, each with a one-line summary for help and OpenAPI.
    pub operations: Vec<(Operation, &'static str)>,
    /// Whether unknown body fields are passed through instead of refused (KV-style paths).
    pub passthrough: bool,
    /// One line: what the path is for.
    pub synopsis: &'static str,
    /// A paragraph or more for `path-help`.
    pub description: &'static str,
    /// Unauthenticated, sudo, sealed, standby, audited.
    pub flags: PathFlags,
}

impl PathSpec {
    /// The path with other flags.
    pub fn with_flags(mut self, flags: PathFlags) -> Self {
        self.flags = flags;
        self
    }
    /// Served without a token.
    pub fn unauthenticated(mut self) -> Self {
        self.flags.unauthenticated = true;
        self
    }
    /// Root-protected (needs `sudo`).
    pub fn sudo(mut self) -> Self {
        self.flags.sudo = true;
        self
    }
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
    /// Tells this table's entries in the per-thread memo from another table's.
    id: u64,
}

/// Where each field of a matched path sits in the path (byte ranges), by field position.
type Spans = Arc<[Option<(usize, usize)>]>;

/// The last path each thread matched, with its row and field spans: a request is matched by
/// its existence check, then by its handler, and flags may be asked in between; the memo lets
/// the regular expressions run once for all of them.
struct Memo {
    table: u64,
    path: String,
    index: usize,
    spans: Spans,
}

thread_local! {
    static LAST_MATCH: std::cell::RefCell<Option<Memo>> = const { std::cell::RefCell::new(None) };
}

/// The outcome of matching a request against the table.
pub struct Matched<'a> {
    /// The row's position in the table.
    pub index: usize,
    /// The row that matched.
    pub spec: &'a PathSpec,
    /// The request's fields, coerced to their declared types.
    pub fields: FieldData,
    /// The request parameters the path does not declare (see [`PathTable::ignored_parameters`]).
    pub ignored: Vec<String>,
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
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        PathTable { specs, regexes, set, fields, id }
    }

    /// The first row matching `path` and where its fields sit in the path, from the thread's
    /// memo when the same table matched the same path last.
    fn locate(&self, path: &str) -> Option<(usize, Spans)> {
        let hit = LAST_MATCH.with(|m| {
            m.borrow().as_ref().filter(|m| m.table == self.id && m.path == path).map(|m| (m.index, m.spans.clone()))
        });
        if hit.is_some() {
            return hit;
        }
        let i = self.set.matches(path).into_iter().next()?;
        let caps = self.regexes[i].captures(path)?;
        let spans: Spans =
            self.specs[i].fields.iter().map(|f| caps.name(f.name).map(|m| (m.start(), m.end()))).collect();
        LAST_MATCH.with(|m| {
            *m.borrow_mut() = Some(Memo { table: self.id, path: path.to_string(), index: i, spans: spans.clone() })
        });
        Some((i, spans))
    }

    /// The rows, in table order.
    pub fn specs(&self) -> &[PathSpec] {
        &self.specs
    }

    /// Finds the path for `path`, checks the operation is declared and coerces the fields.
    pub fn route(&self, op: Operation, path: &str, data: &Map<String, Value>) -> Result<Matched<'_>, LogicalError> {
        let (i, spans) = self.locate(path).ok_or_else(|| LogicalError::unsupported_path(path))?;
        let spec = &self.specs[i];
        if !spec.operations.iter().any(|(o, _)| *o == op) {
            return Err(LogicalError::unsupported_operation());
        }
        let mut out = Map::new();
        for (n, f) in spec.fields.iter().enumerate() {
            let from_url = spans[n].map(|(a, b)| Value::String(path[a..b].to_string()));
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
        let ignored = ignored_in(spec, op, data);
        Ok(Matched { index: i, spec, fields: FieldData { values: out, specs: self.fields[i].clone(), raw }, ignored })
    }

    /// The path matching `path` whatever the operation, with the fields its URL carries (no
    /// body, no defaults checked): what an existence check needs before the ACL has decided
    /// between `create` and `update`. `None` when no path matches or a URL field does not
    /// coerce.
    pub fn match_url(&self, path: &str) -> Option<(usize, FieldData)> {
        let (i, spans) = self.locate(path)?;
        let mut values = Map::new();
        for (n, f) in self.specs[i].fields.iter().enumerate() {
            if let Some((a, b)) = spans[n] {
                values.insert(f.name.to_string(), coerce(f.name, f.ty, &Value::String(path[a..b].to_string())).ok()?);
            }
        }
        Some((i, FieldData { values, specs: self.fields[i].clone(), raw: Map::new() }))
    }

    /// The flags of the first path matching `path` (the normal flags when none matches).
    pub fn flags_for(&self, path: &str) -> PathFlags {
        self.locate(path).map(|(i, _)| self.specs[i].flags).unwrap_or_default()
    }

    /// The index of the first path matching `path`, whatever the operation.
    pub fn find(&self, path: &str) -> Option<usize> {
        self.locate(path).map(|(i, _)| i)
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
        ignored_in(&self.specs[i], op, data)
    }

    /// The index of the first path that matches `path`, once the operation is checked.
    pub fn route_index(&self, op: Operation, path: &str) -> Result<usize, LogicalError> {
        let (i, _) = self.locate(path).ok_or_else(|| LogicalError::unsupported_path(path))?;
        if !self.specs[i].operations.iter().any(|(o, _)| *o == op) {
            return Err(LogicalError::unsupported_operation());
        }
        Ok(i)
    }
}

/// The parameters of `data` that `spec` does not declare, sorted.
fn ignored_in(spec: &PathSpec, op: Operation, data: &Map<String, Value>) -> Vec<String> {
    if data.is_empty() || op == Operation::Help {
        return vec![];
    }
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

/// A path table whose rows each name a route of the backend's own type (an enum, one variant
/// per path): handlers match on the route, never on a row's position, so reordering or adding
/// rows cannot send a request to the wrong handler.
pub struct Paths<R> {
    table: PathTable,
    routes: Vec<R>,
}

/// A request matched to its route.
pub struct Routed<'a, R> {
    /// The route of the row that matched.
    pub route: R,
    /// The row that matched.
    pub spec: &'a PathSpec,
    /// The request's fields, coerced to their declared types.
    pub fields: FieldData,
    /// The parameters the path does not declare, for [`warn_ignored`].
    pub ignored: Vec<String>,
}

impl<R: Copy> Paths<R> {
    /// Compiles the rows. Patterns are static, so a bad pattern is a programming error.
    pub fn new(rows: Vec<(R, PathSpec)>) -> Self {
        let (routes, specs): (Vec<R>, Vec<PathSpec>) = rows.into_iter().unzip();
        Paths { table: PathTable::new(specs), routes }
    }
    /// The compiled table underneath.
    pub fn table(&self) -> &PathTable {
        &self.table
    }
    /// The rows, in table order.
    pub fn specs(&self) -> &[PathSpec] {
        self.table.specs()
    }
    /// The rows with their routes.
    pub fn rows(&self) -> impl Iterator<Item = (R, &PathSpec)> + '_ {
        self.routes.iter().copied().zip(self.table.specs())
    }
    /// Finds the route of `path`, checks the operation is declared and coerces the fields.
    pub fn route(&self, op: Operation, path: &str, data: &Map<String, Value>) -> Result<Routed<'_, R>, LogicalError> {
        let m = self.table.route(op, path, data)?;
        Ok(Routed { route: self.routes[m.index], spec: m.spec, fields: m.fields, ignored: m.ignored })
    }
    /// The route serving `path` whatever the operation, with the fields of its URL.
    pub fn match_url(&self, path: &str) -> Option<(R, FieldData)> {
        self.table.match_url(path).map(|(i, f)| (self.routes[i], f))
    }
    /// The route serving `path`, whatever the operation.
    pub fn find(&self, path: &str) -> Option<(R, &PathSpec)> {
        self.table.find(path).map(|i| (self.routes[i], &self.table.specs()[i]))
    }
    /// The flags of the row serving `path` ([`PathFlags::NORMAL`] when none does).
    pub fn flags_for(&self, path: &str) -> PathFlags {
        self.table.flags_for(path)
    }
}

/// A backend written as a path table with typed routes and one handler per route. Wrap it in
/// [`Backend`] to serve it: the wrapper routes each request, coerces its fields, runs the
/// existence check, calls [`Handler::handle`] and adds the ignored-parameters warning; help,
/// OpenAPI and the special paths come from the same rows.
#[async_trait::async_trait]
pub trait Handler: Send + Sync + 'static {
    /// One variant per path.
    type Route: Copy + Send + Sync + 'static;
    /// The type name as mounted (`kv`, `transit`, …).
    fn backend_type(&self) -> &'static str;
    /// The backend's compiled path table.
    fn paths(&self) -> &Paths<Self::Route>;
    /// Serves one request, already routed to `route` with its fields coerced.
    async fn handle(
        &self,
        route: Self::Route,
        req: crate::Request,
        fields: FieldData,
    ) -> crate::Result<Option<crate::Response>>;
    /// Whether the target of a write on `route` exists (`create` or `update` for the ACL);
    /// `None`: the path has no existence check.
    async fn exists(
        &self,
        _route: Self::Route,
        _req: &crate::Request,
        _fields: &FieldData,
    ) -> crate::Result<Option<bool>> {
        Ok(None)
    }
    /// The answer to a request no row matches; `err` is the unsupported-path error (404),
    /// the default answer. KV version 2 answers a 404 with a hint instead, as OpenBao does.
    async fn unsupported_path(
        &self,
        _req: &crate::Request,
        err: LogicalError,
    ) -> crate::Result<Option<crate::Response>> {
        Err(err)
    }
    /// Revokes a leased secret this backend issued.
    async fn revoke_secret(&self, _req: &crate::Request, _internal: &Map<String, Value>) -> crate::Result<()> {
        Ok(())
    }
    /// Renews a leased secret; the default accepts the proposed TTL.
    async fn renew_secret(
        &self,
        _req: &crate::Request,
        _internal: &Map<String, Value>,
        ttl: i64,
    ) -> crate::Result<i64> {
        Ok(ttl)
    }
    /// Allows or refuses the renewal of a token this auth method's login issued (see
    /// [`crate::Backend::renew_login`]); the default allows it.
    async fn renew_login(&self, _req: &crate::Request, _login: &crate::LoginRenewal) -> crate::Result<()> {
        Ok(())
    }
    /// Background work on the core's schedule (see [`crate::Backend::periodic`]); the default
    /// does nothing.
    async fn periodic(&self, _req: &crate::Request) -> crate::Result<()> {
        Ok(())
    }
}

/// The generic backend over a [`Handler`]: route → coerce fields → existence check → call.
pub struct Backend<H>(pub H);

impl<H> Backend<H> {
    /// Wraps `handler`.
    pub fn new(handler: H) -> Self {
        Backend(handler)
    }
    /// The handler inside.
    pub fn handler(&self) -> &H {
        &self.0
    }
}

#[async_trait::async_trait]
impl<H: Handler> crate::Backend for Backend<H> {
    fn backend_type(&self) -> &'static str {
        self.0.backend_type()
    }
    fn paths(&self) -> &[PathSpec] {
        self.0.paths().specs()
    }
    fn path_flags(&self, path: &str) -> PathFlags {
        self.0.paths().flags_for(path)
    }
    async fn handle_request(&self, req: crate::Request) -> crate::Result<Option<crate::Response>> {
        let routed = match self.0.paths().route(req.operation, &req.path, &req.data) {
            Ok(r) => r,
            Err(e) if e.kind == crate::ErrorKind::UnsupportedPath => return self.0.unsupported_path(&req, e).await,
            Err(e) => return Err(e),
        };
        let ignored = routed.ignored;
        warn_ignored(self.0.handle(routed.route, req, routed.fields).await, &ignored)
    }
    async fn exists(&self, req: &crate::Request) -> crate::Result<Option<bool>> {
        // The check runs before the ACL decides between create and update, whatever operations
        // the path takes: the handler gets the fields of the URL; a path that does not route
        // has no check.
        match self.0.paths().match_url(&req.path) {
            Some((route, fields)) => self.0.exists(route, req, &fields).await,
            None => Ok(None),
        }
    }
    async fn revoke_secret(&self, req: &crate::Request, internal: &Map<String, Value>) -> crate::Result<()> {
        self.0.revoke_secret(req, internal).await
    }
    async fn renew_secret(&self, req: &crate::Request, internal: &Map<String, Value>, ttl: i64) -> crate::Result<i64> {
        self.0.renew_secret(req, internal, ttl).await
    }
    async fn renew_login(&self, req: &crate::Request, login: &crate::LoginRenewal) -> crate::Result<()> {
        self.0.renew_login(req, login).await
    }
    async fn periodic(&self, req: &crate::Request) -> crate::Result<()> {
        self.0.periodic(req).await
    }
}

/// The OpenBao `SpecialPaths` glob for a path pattern: literal text stays, a parameter that is
/// one whole segment becomes `+`, a trailing parameter that may span segments becomes `*`.
/// Other shapes (alternations, optional parts, a parameter inside a segment) have no exact glob:
/// with `widen` the literal prefix up to them followed by `*` is returned (for root paths, where
/// wider is the safe side), without it `None` (for unauthenticated paths, where narrower is).
pub fn glob_for_pattern(pattern: &str, widen: bool) -> Option<String> {
    let c: Vec<char> = pattern.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    let give_up = |out: &str| if widen { Some(format!("{out}*")) } else { None };
    while i < c.len() {
        let ch = c[i];
        // A plain literal character (an escaped punctuation character counts as one).
        let lit = match ch {
            '\\' if i + 1 < c.len() && c[i + 1].is_ascii_punctuation() => Some((c[i + 1], 2)),
            '\\' | '(' | '[' | '.' | '|' | '?' | '*' | '+' | '{' | '^' | '$' => None,
            _ => Some((ch, 1)),
        };
        if let Some((l, n)) = lit {
            let quantified = matches!(c.get(i + n), Some('?' | '*' | '+' | '{'));
            if quantified {
                // `keys/?`: an optional trailing slash is the path without it.
                if l == '/' && c.get(i + n) == Some(&'?') && i + n + 1 == c.len() {
                    return Some(out);
                }
                return give_up(&out);
            }
            out.push(l);
            i += n;
            continue;
        }
        // A variable atom: a group, a class, `.` or an escape class, with its quantifier.
        let start = i;
        match ch {
            '(' => {
                let mut depth = 0;
                while i < c.len() {
                    match c[i] {
                        '\\' => i += 1,
                        '[' => {
                            while i < c.len() && c[i] != ']' {
                                i += 1;
                            }
                        }
                        '(' => depth += 1,
                        ')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
                i += 1;
            }
            '[' => {
                while i < c.len() && c[i] != ']' {
                    i += if c[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
            }
            '\\' => i += 2,
            '.' => i += 1,
            _ => return give_up(&out),
        }
        if matches!(c.get(i), Some('*' | '+')) {
            i += 1;
        } else if matches!(c.get(i), Some('?' | '{')) {
            return give_up(&out);
        }
        let atom: String = c[start..i.min(c.len())].iter().collect();
        let Ok(re) = Regex::new(&format!("^(?:{atom})$")) else { return give_up(&out) };
        let at_segment_start = out.is_empty() || out.ends_with('/');
        let at_segment_end = i >= c.len() || c[i] == '/';
        if !re.is_match("x") || !at_segment_start || !at_segment_end {
            return give_up(&out);
        }
        if re.is_match("x/y") {
            if i < c.len() {
                return give_up(&out);
            }
            out.push('*');
            return Some(out);
        }
        out.push('+');
    }
    Some(out)
}

/// Root-protected and unauthenticated paths as OpenBao's plugin protocol carries them
/// (`SpecialPaths`): globs where a trailing `*` is any suffix and `+` one segment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpecialPaths {
    /// Root-protected paths (`sudo`).
    pub root: Vec<String>,
    /// Paths served without a token.
    pub unauthenticated: Vec<String>,
}

impl SpecialPaths {
    /// The globs of the rows flagged sudo or unauthenticated. A root row without an exact glob
    /// form is widened to its literal prefix; an unauthenticated one is left out (so a host that
    /// reads only globs asks a token for it: narrower, never wider).
    pub fn from_specs(specs: &[PathSpec]) -> SpecialPaths {
        let mut out = SpecialPaths::default();
        for s in specs {
            if s.flags.sudo {
                if let Some(g) = glob_for_pattern(s.pattern, true).filter(|g| !out.root.contains(g)) {
                    out.root.push(g);
                }
            }
            if s.flags.unauthenticated {
                if let Some(g) = glob_for_pattern(s.pattern, false).filter(|g| !out.unauthenticated.contains(g)) {
                    out.unauthenticated.push(g);
                }
            }
        }
        out
    }
    /// The flags these globs give `path`.
    pub fn flags_for(&self, path: &str) -> PathFlags {
        let mut f = PathFlags::NORMAL;
        f.sudo = self.root.iter().any(|g| glob_matches(g, path));
        f.unauthenticated = self.unauthenticated.iter().any(|g| glob_matches(g, path));
        f
    }
}

/// Whether `path` matches a special-paths glob: `+` is exactly one segment, a trailing `*`
/// any suffix (including none), everything else literal.
pub fn glob_matches(glob: &str, path: &str) -> bool {
    let (glob, prefix) = match glob.strip_suffix('*') {
        Some(g) => (g, true),
        None => (glob, false),
    };
    if !glob.contains('+') {
        return if prefix { path.starts_with(glob) } else { path == glob };
    }
    let gsegs: Vec<&str> = glob.split('/').collect();
    let psegs: Vec<&str> = path.split('/').collect();
    if psegs.len() < gsegs.len() || (!prefix && psegs.len() != gsegs.len()) {
        return false;
    }
    for (i, g) in gsegs.iter().enumerate() {
        let p = psegs[i];
        let last = i + 1 == gsegs.len();
        let ok = match *g {
            "+" => !p.is_empty(),
            _ if last && prefix => p.starts_with(g),
            _ => p == *g,
        };
        if !ok {
            return false;
        }
    }
    true
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
    /// A string field (given or default).
    pub fn str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(Value::as_str)
    }
    /// A whole-number field (given or default); durations are whole seconds.
    pub fn int(&self, name: &str) -> Option<i64> {
        self.get(name).and_then(Value::as_i64)
    }
    /// A boolean field (given or default).
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
                let flags = serde_json::json!({ "unauthenticated": p.flags.unauthenticated, "sudo": p.flags.sudo,
                                                "sealed": p.flags.sealed, "standby": p.flags.standby,
                                                "audited": p.flags.audited });
                serde_json::json!({ "pattern": p.pattern, "synopsis": p.synopsis, "description": p.description,
                                    "passthrough": p.passthrough, "operations": ops, "fields": fields,
                                    "flags": flags })
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

/// Why a described path table cannot be read back.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DescriptionError {
    #[error("the path table is not a list")]
    /// The description is not a JSON array.
    NotAList,
    #[error("path pattern {pattern:?}: {source}")]
    /// A row's pattern does not compile.
    Pattern {
        /// The pattern as described.
        pattern: String,
        #[source]
        /// Why it does not compile.
        source: Box<regex::Error>,
    },
    #[error("unknown operation {0:?}")]
    /// A row names an operation this SDK does not know.
    Operation(String),
    #[error("unknown field type {0:?}")]
    /// A field has a type this SDK does not know.
    FieldType(String),
}

/// Reads back what [`describe_paths`] wrote. Entries with an invalid pattern, an unknown
/// operation or field type are an error (a host must not route by a half-understood table).
pub fn paths_from_description(v: &Value) -> Result<Vec<PathSpec>, DescriptionError> {
    let Some(items) = v.as_array() else {
        return Err(DescriptionError::NotAList);
    };
    let text = |o: &Value, k: &str| o.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let pattern = text(item, "pattern");
        if let Err(e) = Regex::new(&format!("^(?:{pattern})$")) {
            return Err(DescriptionError::Pattern { pattern, source: Box::new(e) });
        }
        let mut operations = Vec::new();
        for o in item.get("operations").and_then(Value::as_array).into_iter().flatten() {
            let name = text(o, "operation");
            let op = Operation::from_name(&name).ok_or(DescriptionError::Operation(name))?;
            operations.push((op, intern(&text(o, "summary"))));
        }
        let mut fields = Vec::new();
        for f in item.get("fields").and_then(Value::as_array).into_iter().flatten() {
            let ty_name = text(f, "type");
            let ty = FieldType::from_name(&ty_name).ok_or(DescriptionError::FieldType(ty_name))?;
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
            flags: {
                let flag =
                    |k: &str, d: bool| item.get("flags").and_then(|f| f.get(k)).and_then(Value::as_bool).unwrap_or(d);
                PathFlags {
                    unauthenticated: flag("unauthenticated", false),
                    sudo: flag("sudo", false),
                    sealed: flag("sealed", false),
                    standby: flag("standby", false),
                    audited: flag("audited", true),
                }
            },
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
            flags: PathFlags::NORMAL,
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
    fn patterns_become_special_path_globs_never_wider_when_unauthenticated() {
        assert_eq!(glob_for_pattern("login", false).as_deref(), Some("login"));
        assert_eq!(glob_for_pattern(r"login/(?P<username>[^/]+)", false).as_deref(), Some("login/+"));
        assert_eq!(glob_for_pattern(r"login/(?P<username>\w+)", false).as_deref(), Some("login/+"));
        assert_eq!(glob_for_pattern(r"raw/(?P<path>.*)", false).as_deref(), Some("raw/*"));
        assert_eq!(glob_for_pattern(r"keys/?", false).as_deref(), Some("keys"));
        assert_eq!(
            glob_for_pattern(r"role/(?P<role_name>[^/]+)/secret-id", false).as_deref(),
            Some("role/+/secret-id")
        );
        // A parameter spanning segments in the middle, or an alternation: no exact glob.
        assert_eq!(glob_for_pattern(r"mounts/(?P<path>.+)/tune", false), None);
        assert_eq!(glob_for_pattern(r"mounts/(?P<path>.+)/tune", true).as_deref(), Some("mounts/*"));
        assert_eq!(glob_for_pattern(r"(?:rekey|rotate/root)/init", false), None);
        assert_eq!(glob_for_pattern(r"(?:rekey|rotate/root)/init", true).as_deref(), Some("*"));
        assert_eq!(glob_for_pattern(r"a(?P<x>\w+)", false), None);
    }

    #[test]
    fn special_path_globs_match_as_openbao_reads_them() {
        assert!(glob_matches("login", "login") && !glob_matches("login", "login/x"));
        assert!(glob_matches("login/*", "login/x/y") && glob_matches("login/*", "login/"));
        assert!(glob_matches("role/+/secret-id", "role/a/secret-id"));
        assert!(!glob_matches("role/+/secret-id", "role/a/b/secret-id"));
        assert!(!glob_matches("role/+/secret-id", "role//secret-id"));
        assert!(glob_matches("role/+/x*", "role/a/xyz/more"));
        let sp = SpecialPaths { root: vec!["config/*".into()], unauthenticated: vec!["login".into()] };
        assert!(sp.flags_for("config/a").sudo && !sp.flags_for("config/a").unauthenticated);
        assert!(sp.flags_for("login").unauthenticated && !sp.flags_for("other").sudo);
    }

    #[test]
    fn flags_travel_with_the_described_path_table() {
        let t = PathTable::new(vec![
            PathSpec { pattern: "login", operations: vec![(Operation::Update, "log in")], ..Default::default() }
                .unauthenticated(),
            PathSpec { pattern: "config", operations: vec![(Operation::Update, "configure")], ..Default::default() }
                .sudo(),
        ]);
        assert!(t.flags_for("login").unauthenticated && !t.flags_for("login").sudo);
        assert!(t.flags_for("config").sudo && t.flags_for("config").audited);
        assert_eq!(t.flags_for("nothing"), PathFlags::NORMAL);
        let back = PathTable::new(paths_from_description(&describe_paths(t.specs())).unwrap());
        assert_eq!(back.flags_for("login"), t.flags_for("login"));
        assert_eq!(back.flags_for("config"), t.flags_for("config"));
        let sp = SpecialPaths::from_specs(t.specs());
        assert_eq!(sp, SpecialPaths { root: vec!["config".into()], unauthenticated: vec!["login".into()] });
    }

    #[test]
    fn the_per_thread_memo_never_answers_for_another_table_or_path() {
        let row = |p: &'static str, f: &'static str| PathSpec {
            pattern: p,
            fields: vec![FieldSpec::new(f, FieldType::String, "")],
            operations: vec![(Operation::Read, "r")],
            ..Default::default()
        };
        let a = PathTable::new(vec![row(r"x/(?P<name>\w+)", "name")]);
        let b = PathTable::new(vec![row(r"y", "other"), row(r"x/(?P<id>\w+)", "id")]);
        let empty = Map::new();
        for _ in 0..2 {
            assert_eq!(a.route(Operation::Read, "x/one", &empty).unwrap().fields.str("name"), Some("one"));
            assert_eq!(b.route(Operation::Read, "x/one", &empty).unwrap().fields.str("id"), Some("one"));
            assert_eq!(a.route(Operation::Read, "x/two", &empty).unwrap().fields.str("name"), Some("two"));
            assert_eq!(a.find("y"), None);
            assert_eq!(b.find("y"), Some(0));
        }
    }

    #[test]
    fn typed_routes_survive_reordering_the_rows() {
        #[derive(Debug, Clone, Copy, PartialEq)]
        enum R {
            A,
            B,
        }
        let row =
            |p: &'static str| PathSpec { pattern: p, operations: vec![(Operation::Read, "r")], ..Default::default() };
        let one = Paths::new(vec![(R::A, row("a")), (R::B, row("b"))]);
        let two = Paths::new(vec![(R::B, row("b")), (R::A, row("a"))]);
        for p in [&one, &two] {
            assert_eq!(p.route(Operation::Read, "a", &Map::new()).ok().map(|r| r.route), Some(R::A));
            assert_eq!(p.route(Operation::Read, "b", &Map::new()).ok().map(|r| r.route), Some(R::B));
        }
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
            flags: PathFlags::NORMAL,
        }]);
        let data = json!({"x": "1"}).as_object().unwrap().clone();
        assert!(t.ignored_parameters(Operation::Update, "a", &data).is_empty());
        assert_eq!(t.ignored_parameters(Operation::Read, "a", &data), vec!["x"]);
    }
}
