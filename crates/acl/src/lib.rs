//! Coffer's ACL engine: policies parsed from HCL or JSON, compiled, and the allow/deny
//! decision on a request. Pure computation: no I/O, no async runtime, no storage; where
//! policies are kept (the policy store) is the core's business.
//!
//! A token's policies are merged into one [`Acl`]: rules with the same path pattern are
//! combined (capabilities united, `deny` overriding), and a request is decided by the single
//! highest-priority rule that matches its path, with Vault's priority order:
//! exact paths first; then the rule whose first wildcard (`+` or `*`) comes later; a rule
//! without a trailing `*` over one with it; fewer `+` segments; the longer pattern; the
//! lexicographically larger pattern.

#![forbid(unsafe_code)]

use coffer_sdk::{LogicalError, Operation};
use regex::Regex;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// ACL path templating (`{{identity.entity.name}}`, …): the SDK's, shared with backends that
/// template from the caller's identity (SSH roles).
pub use coffer_sdk::identity_template as template;
pub use template::{AliasFacts, GroupFacts, IdentityFacts};

pub const CAP_DENY: u16 = 1;
pub const CAP_CREATE: u16 = 1 << 1;
pub const CAP_READ: u16 = 1 << 2;
pub const CAP_UPDATE: u16 = 1 << 3;
pub const CAP_DELETE: u16 = 1 << 4;
pub const CAP_LIST: u16 = 1 << 5;
pub const CAP_SUDO: u16 = 1 << 6;
pub const CAP_PATCH: u16 = 1 << 7;
pub const CAP_SUBSCRIBE: u16 = 1 << 8;

const CAP_NAMES: &[(&str, u16)] = &[
    ("create", CAP_CREATE),
    ("delete", CAP_DELETE),
    ("deny", CAP_DENY),
    ("list", CAP_LIST),
    ("patch", CAP_PATCH),
    ("read", CAP_READ),
    ("subscribe", CAP_SUBSCRIBE),
    ("sudo", CAP_SUDO),
    ("update", CAP_UPDATE),
];

pub fn cap_names(bits: u16) -> Vec<String> {
    if bits & CAP_DENY != 0 || bits == 0 {
        return vec!["deny".into()];
    }
    CAP_NAMES.iter().filter(|(_, b)| bits & b != 0).map(|(n, _)| n.to_string()).collect()
}

pub fn op_cap(op: Operation) -> u16 {
    match op {
        Operation::Read => CAP_READ,
        Operation::Create => CAP_CREATE,
        Operation::Update => CAP_UPDATE,
        Operation::Patch => CAP_PATCH,
        Operation::Delete => CAP_DELETE,
        Operation::List => CAP_LIST,
        Operation::Help => CAP_READ,
    }
}

/// Parameter constraints of one rule: key → allowed/denied values (empty = any value).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params {
    pub allowed: Option<BTreeMap<String, Vec<Value>>>,
    pub denied: Option<BTreeMap<String, Vec<Value>>>,
    pub required: Vec<String>,
    pub min_wrapping_ttl: i64,
    pub max_wrapping_ttl: i64,
}

/// One `path "…" { … }` block.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub pattern: String,
    pub caps: u16,
    pub params: Params,
}

/// A parsed policy.
#[derive(Debug, Clone)]
pub struct Policy {
    pub name: String,
    pub raw: String,
    pub rules: Vec<Rule>,
}

impl Policy {
    /// Whether any path of the policy is templated (`{{identity.…}}`): its ACL then depends
    /// on the requesting token's identity.
    pub fn is_templated(&self) -> bool {
        self.rules.iter().any(|r| r.pattern.contains("{{"))
    }
}

/// Why a policy text was refused. The message (`Display`) is what the client is shown, as
/// `failed to parse policy: [line N: ]…`; `line` is 0 when unknown.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The text is neither well-formed HCL nor well-formed JSON.
    #[error("failed to parse policy: {}{source}", at_line(*.line))]
    Syntax {
        line: usize,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A policy that starts as JSON but is not well-formed JSON.
    #[error("failed to parse policy: {}invalid JSON: {source}", at_line(*.line))]
    Json {
        line: usize,
        #[source]
        source: serde_json::Error,
    },
    /// A `min_wrapping_ttl`/`max_wrapping_ttl` that is not a duration.
    #[error("failed to parse policy: {}{setting} is not a valid duration", at_line(*.line))]
    Duration {
        line: usize,
        setting: &'static str,
        #[source]
        source: LogicalError,
    },
    /// Well-formed, but not a policy this server can enforce (unknown key, capability, …).
    #[error("failed to parse policy: {}{message}", at_line(*.line))]
    Invalid { line: usize, message: String },
}

fn at_line(line: usize) -> String {
    if line > 0 {
        format!("line {line}: ")
    } else {
        String::new()
    }
}

impl PolicyError {
    /// The same error, placed at `line` of the text.
    fn at(mut self, n: usize) -> Self {
        match &mut self {
            PolicyError::Syntax { line, .. }
            | PolicyError::Json { line, .. }
            | PolicyError::Duration { line, .. }
            | PolicyError::Invalid { line, .. } => *line = n,
        }
        self
    }
}

/// A refused policy is the client's mistake: 400 with the message.
impl From<PolicyError> for LogicalError {
    fn from(e: PolicyError) -> Self {
        LogicalError::bad_request(e.to_string())
    }
}

fn bad(line: usize, msg: impl std::fmt::Display) -> PolicyError {
    PolicyError::Invalid { line, message: msg.to_string() }
}

fn syntax(line: usize, e: impl std::error::Error + Send + Sync + 'static) -> PolicyError {
    PolicyError::Syntax { line, source: Box::new(e) }
}

fn line_of_path(src: &str, pattern: &str, nth: usize) -> usize {
    let needle = format!("\"{pattern}\"");
    src.lines()
        .enumerate()
        .filter(|(_, l)| {
            let t = l.trim_start();
            (t.starts_with("path") || t.starts_with(&needle)) && l.contains(&needle)
        })
        .nth(nth)
        .map(|(i, _)| i + 1)
        .unwrap_or(0)
}

fn as_str_list(v: &Value, line: usize, what: &str) -> Result<Vec<String>, PolicyError> {
    match v {
        Value::Array(a) => a
            .iter()
            .map(|x| {
                x.as_str().map(str::to_string).ok_or_else(|| bad(line, format!("{what} must be a list of strings")))
            })
            .collect(),
        Value::String(s) => Ok(vec![s.clone()]),
        _ => Err(bad(line, format!("{what} must be a list of strings"))),
    }
}

fn param_map(v: &Value, line: usize, what: &str) -> Result<BTreeMap<String, Vec<Value>>, PolicyError> {
    // HCL gives `{ key = [...] }` as an object, sometimes wrapped in a one-element list.
    let obj = match v {
        Value::Object(m) => m.clone(),
        Value::Array(a) => {
            let mut m = Map::new();
            for x in a {
                let Value::Object(o) = x else { return Err(bad(line, format!("{what} must be a map"))) };
                m.extend(o.clone());
            }
            m
        }
        _ => return Err(bad(line, format!("{what} must be a map"))),
    };
    let mut out = BTreeMap::new();
    for (k, v) in obj {
        let vals = match v {
            Value::Array(a) => a,
            Value::Null => vec![],
            other => vec![other],
        };
        out.insert(k.to_lowercase(), vals);
    }
    Ok(out)
}

fn duration_secs(v: &Value, line: usize, what: &'static str) -> Result<i64, PolicyError> {
    coffer_sdk::field::parse_duration(what, v).map_err(|source| PolicyError::Duration { line, setting: what, source })
}

fn parse_rule(pattern: &str, body: &Map<String, Value>, line: usize) -> Result<Rule, PolicyError> {
    let pattern = pattern.trim_start_matches('/').to_string();
    template::validate(&pattern).map_err(|e| bad(line, format!("path {pattern:?}: {e}")))?;
    // A '*' anywhere but at the end is a literal character, as in OpenBao.
    let mut caps = 0u16;
    let mut params = Params::default();
    for (k, v) in body {
        match k.as_str() {
            "capabilities" => {
                for c in as_str_list(v, line, "capabilities")? {
                    let c = c.trim().to_lowercase();
                    let bit = CAP_NAMES
                        .iter()
                        .find(|(n, _)| *n == c)
                        .map(|(_, b)| *b)
                        .ok_or_else(|| bad(line, format!("path {pattern:?}: invalid capability {c:?}")))?;
                    caps |= bit;
                }
            }
            "policy" => {
                let p = v.as_str().unwrap_or("").to_lowercase();
                caps |= match p.as_str() {
                    "deny" => CAP_DENY,
                    "read" => CAP_READ | CAP_LIST,
                    "write" => CAP_CREATE | CAP_READ | CAP_UPDATE | CAP_DELETE | CAP_LIST,
                    "sudo" => CAP_CREATE | CAP_READ | CAP_UPDATE | CAP_DELETE | CAP_LIST | CAP_SUDO,
                    other => return Err(bad(line, format!("path {pattern:?}: invalid policy {other:?}"))),
                };
            }
            "allowed_parameters" => params.allowed = Some(param_map(v, line, "allowed_parameters")?),
            "denied_parameters" => params.denied = Some(param_map(v, line, "denied_parameters")?),
            "required_parameters" => {
                params.required =
                    as_str_list(v, line, "required_parameters")?.into_iter().map(|s| s.to_lowercase()).collect()
            }
            "min_wrapping_ttl" => params.min_wrapping_ttl = duration_secs(v, line, "min_wrapping_ttl")?,
            "max_wrapping_ttl" => params.max_wrapping_ttl = duration_secs(v, line, "max_wrapping_ttl")?,
            // Stanzas OpenBao or Vault know that Coffer does not enforce: refused, never stored
            // to be silently ignored.
            "control_group"
            | "mfa_methods"
            | "pagination_limit"
            | "list_scan_response_keys_filter_path"
            | "expiration" => {
                return Err(bad(line, format!("path {pattern:?}: {k:?} is not supported by this server")));
            }
            other => return Err(bad(line, format!("path {pattern:?}: invalid key {other:?}"))),
        }
    }
    if params.max_wrapping_ttl > 0 && params.min_wrapping_ttl > params.max_wrapping_ttl {
        return Err(bad(line, format!("path {pattern:?}: max_wrapping_ttl cannot be less than min_wrapping_ttl")));
    }
    if caps & CAP_DENY != 0 {
        caps = CAP_DENY;
    }
    Ok(Rule { pattern, caps, params })
}

/// Parses a policy document (HCL, JSON, or either base64-encoded).
pub fn parse(name: &str, text: &str) -> Result<Policy, PolicyError> {
    let mut src = text.to_string();
    if !src.contains('{') {
        use base64::Engine;
        if let Some(decoded) =
            base64::engine::general_purpose::STANDARD.decode(src.trim()).ok().and_then(|b| String::from_utf8(b).ok())
        {
            src = decoded;
        }
    }
    let mut rules = Vec::new();
    let trimmed = src.trim_start();
    if trimmed.starts_with('{') {
        let v: Value = serde_json::from_str(&src).map_err(|e| PolicyError::Json { line: e.line(), source: e })?;
        let paths = v.get("path").and_then(Value::as_object).cloned().unwrap_or_default();
        for (k, body) in paths {
            let Value::Object(b) = body else { return Err(bad(0, format!("path {k:?} must be an object"))) };
            rules.push(parse_rule(&k, &b, 0)?);
        }
        if let Some(Value::Object(top)) = Some(v) {
            for k in top.keys() {
                if k != "path" && k != "name" {
                    return Err(bad(0, format!("invalid key {k:?}")));
                }
            }
        }
    } else {
        let body: hcl::Body = hcl::parse(&src).map_err(|e| syntax(0, e))?;
        let mut seen: HashMap<String, usize> = HashMap::new();
        for s in body.into_iter() {
            match s {
                hcl::Structure::Block(b) if b.identifier.as_str() == "path" => {
                    let pattern = b.labels.first().map(|l| l.as_str().to_string()).unwrap_or_default();
                    let n = seen.entry(pattern.clone()).or_insert(0);
                    let nth = *n;
                    *n += 1;
                    // The line is looked up only for an error message: finding it scans the
                    // text, and doing that for every block made large policies quadratic.
                    let line = || line_of_path(&src, &pattern, nth);
                    let v: Value = hcl::from_body(b.body).map_err(|e| syntax(line(), e))?;
                    let Value::Object(m) = v else { return Err(bad(line(), "path block must hold settings")) };
                    match parse_rule(&pattern, &m, 0) {
                        Ok(r) => rules.push(r),
                        Err(e) => return Err(e.at(line())),
                    }
                }
                hcl::Structure::Attribute(a) if a.key.as_str() == "name" => {}
                hcl::Structure::Block(b) => {
                    let id = b.identifier.to_string();
                    let line = src.lines().position(|l| l.trim_start().starts_with(&id)).map(|i| i + 1).unwrap_or(0);
                    return Err(bad(line, format!("invalid key {id:?}")));
                }
                hcl::Structure::Attribute(a) => {
                    let id = a.key.to_string();
                    let line = src.lines().position(|l| l.trim_start().starts_with(&id)).map(|i| i + 1).unwrap_or(0);
                    return Err(bad(line, format!("invalid key {id:?}")));
                }
            }
        }
    }
    Ok(Policy { name: name.to_string(), raw: text.to_string(), rules })
}

/// How a pattern matches.
#[derive(Debug, Clone)]
enum Matcher {
    Exact,
    Prefix(String),
    Segments(Regex),
}

#[derive(Debug, Clone)]
struct CompiledRule {
    pattern: String,
    matcher: Matcher,
    caps: u16,
    params: Params,
    first_wildcard: usize,
    glob_end: bool,
    plus_count: usize,
}

/// Merges the constraints of two rules on the same pattern.
fn merge_params(a: &mut Params, b: &Params) {
    fn merge_map(a: &mut Option<BTreeMap<String, Vec<Value>>>, b: &Option<BTreeMap<String, Vec<Value>>>) {
        let Some(bm) = b else { return };
        let am = a.get_or_insert_with(BTreeMap::new);
        for (k, v) in bm {
            match am.get_mut(k) {
                // An empty list means "any value": it absorbs the other side.
                Some(existing) if existing.is_empty() => {}
                Some(_) if v.is_empty() => {
                    am.insert(k.clone(), vec![]);
                }
                Some(existing) => existing.extend(v.iter().cloned()),
                None => {
                    am.insert(k.clone(), v.clone());
                }
            }
        }
    }
    merge_map(&mut a.allowed, &b.allowed);
    merge_map(&mut a.denied, &b.denied);
    for r in &b.required {
        if !a.required.contains(r) {
            a.required.push(r.clone());
        }
    }
    if b.min_wrapping_ttl > 0 && (a.min_wrapping_ttl == 0 || b.min_wrapping_ttl < a.min_wrapping_ttl) {
        a.min_wrapping_ttl = b.min_wrapping_ttl;
    }
    if b.max_wrapping_ttl > a.max_wrapping_ttl {
        a.max_wrapping_ttl = b.max_wrapping_ttl;
    }
}

/// The merged, compiled rules of a set of policies.
#[derive(Debug, Clone, Default)]
pub struct Acl {
    pub root: bool,
    exact: HashMap<String, CompiledRule>,
    others: Vec<CompiledRule>,
}

/// The verdict on one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub sudo: bool,
    pub caps: u16,
    /// Why a request that matched a rule was refused (parameter constraints).
    pub reason: Option<String>,
}

fn compile(pattern: &str) -> (Matcher, usize, bool, usize) {
    let glob_end = pattern.ends_with('*');
    let body = pattern.strip_suffix('*').unwrap_or(pattern);
    let plus_count = body.split('/').filter(|s| *s == "+").count();
    let first_plus = body.split('/').scan(0usize, |pos, seg| {
        let start = *pos;
        *pos += seg.len() + 1;
        Some((start, seg))
    });
    let mut first_wildcard = pattern.len() + 1;
    for (start, seg) in first_plus {
        if seg == "+" {
            first_wildcard = start;
            break;
        }
    }
    if glob_end && first_wildcard > body.len() {
        first_wildcard = body.len();
    }
    let matcher = if plus_count > 0 {
        let mut re = String::from("^");
        let segs: Vec<&str> = body.split('/').collect();
        for (i, seg) in segs.iter().enumerate() {
            if i > 0 {
                re.push('/');
            }
            if *seg == "+" {
                // OpenBao lets `+` match an empty segment too.
                re.push_str("[^/]*");
            } else {
                re.push_str(&regex::escape(seg));
            }
        }
        if glob_end {
            re.push_str(".*");
        }
        re.push('$');
        Matcher::Segments(Regex::new(&re).expect("escaped pattern"))
    } else if glob_end {
        Matcher::Prefix(body.to_string())
    } else {
        Matcher::Exact
    };
    (matcher, first_wildcard, glob_end, plus_count)
}

impl CompiledRule {
    fn matches(&self, path: &str) -> bool {
        match &self.matcher {
            Matcher::Exact => self.pattern == path,
            Matcher::Prefix(p) => path.starts_with(p.as_str()),
            Matcher::Segments(re) => re.is_match(path),
        }
    }

    /// Vault's priority order: is `self` a better match than `other`?
    fn outranks(&self, other: &CompiledRule) -> bool {
        use std::cmp::Ordering::*;
        let key = |r: &CompiledRule| (r.first_wildcard, !r.glob_end, std::cmp::Reverse(r.plus_count), r.pattern.len());
        match key(self).cmp(&key(other)) {
            Greater => true,
            Less => false,
            Equal => self.pattern > other.pattern,
        }
    }
}

/// Glob match of a parameter value: `*` at the start and/or end of the allowed value.
fn value_matches(allowed: &Value, given: &Value) -> bool {
    match (allowed, given) {
        (Value::String(a), Value::String(g)) => {
            if a == "*" {
                return true;
            }
            match (a.strip_prefix('*'), a.strip_suffix('*')) {
                (Some(rest), _) if rest.ends_with('*') => g.contains(&rest[..rest.len() - 1]),
                (Some(suffix), _) => g.ends_with(suffix),
                (None, Some(prefix)) => g.starts_with(prefix),
                (None, None) => a == g,
            }
        }
        (Value::Bool(a), Value::Bool(g)) => a == g,
        (Value::Bool(a), Value::String(g)) | (Value::String(g), Value::Bool(a)) => g == &a.to_string(),
        _ => false,
    }
}

/// Whether a request value is in a rule's value list. As in OpenBao: arrays and numbers never
/// match a non-empty list (the list's numbers come from HCL with another numeric type).
fn value_in(list: &[Value], given: &Value) -> bool {
    match given {
        Value::Array(_) | Value::Object(_) | Value::Number(_) => false,
        g => list.iter().any(|a| value_matches(a, g)),
    }
}

impl Acl {
    pub fn new(policies: &[Arc<Policy>]) -> Acl {
        Acl::with_identity(policies, None)
    }

    /// The ACL of `policies` for a token whose identity is `facts`: templated paths are
    /// rendered from it, and dropped when they cannot be (see [`template`]).
    pub fn with_identity(policies: &[Arc<Policy>], facts: Option<&IdentityFacts>) -> Acl {
        let mut acl = Acl::default();
        let mut merged: BTreeMap<String, (u16, Params)> = BTreeMap::new();
        for p in policies {
            if p.name == "root" {
                acl.root = true;
            }
            for r in &p.rules {
                let pattern = if r.pattern.contains("{{") {
                    match template::render(&r.pattern, facts) {
                        Some(rendered) => rendered,
                        None => continue,
                    }
                } else {
                    r.pattern.clone()
                };
                let e = merged.entry(pattern).or_insert((0, Params::default()));
                e.0 |= r.caps;
                merge_params(&mut e.1, &r.params);
            }
        }
        for (pattern, (mut caps, params)) in merged {
            if caps & CAP_DENY != 0 {
                caps = CAP_DENY;
            }
            let (matcher, first_wildcard, glob_end, plus_count) = compile(&pattern);
            let rule =
                CompiledRule { pattern: pattern.clone(), matcher, caps, params, first_wildcard, glob_end, plus_count };
            if matches!(rule.matcher, Matcher::Exact) {
                acl.exact.insert(pattern, rule);
            } else {
                acl.others.push(rule);
            }
        }
        acl
    }

    fn best_non_exact(&self, path: &str) -> Option<&CompiledRule> {
        let mut best: Option<&CompiledRule> = None;
        for r in &self.others {
            if r.matches(path) && best.is_none_or(|b| r.outranks(b)) {
                best = Some(r);
            }
        }
        best
    }

    /// The rule deciding `path`. A LIST (path ending in `/`) also matches rules written
    /// without the trailing slash, as OpenBao does.
    fn best_for(&self, path: &str, list: bool) -> Option<&CompiledRule> {
        if let Some(r) = self.exact.get(path) {
            return Some(r);
        }
        let trimmed = path.strip_suffix('/').filter(|_| list);
        if let Some(r) = trimmed.and_then(|t| self.exact.get(t)) {
            return Some(r);
        }
        self.best_non_exact(path).or_else(|| trimmed.and_then(|t| self.best_non_exact(t)))
    }

    fn best(&self, path: &str) -> Option<&CompiledRule> {
        self.best_for(path, false)
    }

    /// The capabilities granted on `path` (for sys/capabilities).
    pub fn capabilities(&self, path: &str) -> Vec<String> {
        if self.root {
            return vec!["root".into()];
        }
        cap_names(self.best(path).map(|r| r.caps).unwrap_or(0))
    }

    /// Decides a request. `needs_sudo`: the path is sudo-protected.
    pub fn allow(&self, op: Operation, path: &str, data: &Map<String, Value>, needs_sudo: bool) -> Decision {
        if self.root {
            return Decision { allowed: true, sudo: true, caps: u16::MAX, reason: None };
        }
        let Some(rule) = self.best_for(path, op == Operation::List) else {
            return Decision { allowed: false, sudo: false, caps: 0, reason: None };
        };
        let caps = rule.caps;
        let sudo = caps & CAP_SUDO != 0;
        let denied = |reason: Option<String>| Decision { allowed: false, sudo, caps, reason };
        if caps & CAP_DENY != 0 || caps & op_cap(op) == 0 || (needs_sudo && !sudo) {
            return denied(None);
        }
        let p = &rule.params;
        {
            for req in &p.required {
                if !data.keys().any(|k| k.to_lowercase() == *req) {
                    return denied(Some(format!("missing required parameter {req:?}")));
                }
            }
            if let Some(denied_map) = &p.denied {
                if denied_map.get("*").is_some_and(|v| v.is_empty()) && !data.is_empty() {
                    return denied(None);
                }
                for (k, v) in data {
                    let lk = k.to_lowercase();
                    if let Some(vals) = denied_map.get(&lk) {
                        if vals.is_empty() || value_in(vals, v) {
                            return denied(None);
                        }
                    }
                }
            }
            if let Some(allowed_map) = &p.allowed {
                // A "*" key allows any parameter with any value (its value list is ignored).
                let any_key = allowed_map.contains_key("*");
                for (k, v) in data {
                    let lk = k.to_lowercase();
                    match allowed_map.get(&lk) {
                        Some(vals) if vals.is_empty() || value_in(vals, v) => {}
                        Some(_) => return denied(None),
                        None if any_key => {}
                        None => return denied(None),
                    }
                }
            }
        }
        Decision { allowed: true, sudo, caps, reason: None }
    }

    /// Policy wrapping bounds: a rule with min/max_wrapping_ttl demands a wrap TTL in range.
    pub fn wrapping_allows(&self, path: &str, list: bool, wrap_ttl: Option<i64>) -> bool {
        if self.root {
            return true;
        }
        let Some(rule) = self.best_for(path, list) else { return true };
        let (min, max) = (rule.params.min_wrapping_ttl, rule.params.max_wrapping_ttl);
        if min == 0 && max == 0 {
            return true;
        }
        match wrap_ttl {
            None => false,
            Some(t) => (min == 0 || t >= min) && (max == 0 || t <= max),
        }
    }

    /// Whether any non-deny rule could grant something at or below `prefix` (UI mount listing).
    pub fn grants_under(&self, prefix: &str) -> bool {
        if self.root {
            return true;
        }
        let ok = |r: &CompiledRule| r.caps & CAP_DENY == 0 && r.caps != 0;
        self.exact.values().any(|r| ok(r) && r.pattern.starts_with(prefix))
            || self.others.iter().any(|r| {
                ok(r)
                    && match &r.matcher {
                        Matcher::Prefix(p) => p.starts_with(prefix) || prefix.starts_with(p.as_str()),
                        Matcher::Segments(_) => {
                            let lit = &r.pattern[..r.first_wildcard.min(r.pattern.len())];
                            lit.starts_with(prefix) || prefix.starts_with(lit)
                        }
                        Matcher::Exact => false,
                    }
            })
    }

    /// `sys/internal/ui/resultant-acl` data.
    pub fn resultant(&self) -> Map<String, Value> {
        let show = |r: &CompiledRule| serde_json::json!({ "capabilities": cap_names(r.caps) });
        let mut exact = Map::new();
        for (k, r) in &self.exact {
            exact.insert(k.clone(), show(r));
        }
        let mut glob = Map::new();
        // A prefix rule is shown without its trailing `*`, as OpenBao shows it; rules with `+`
        // segments are not shown at all (OpenBao 2.7.2 leaves them out too).
        for r in self.others.iter().filter(|r| !matches!(r.matcher, Matcher::Segments(_))) {
            glob.insert(r.pattern.strip_suffix('*').unwrap_or(&r.pattern).to_string(), show(r));
        }
        let mut m = Map::new();
        m.insert("exact_paths".into(), Value::Object(exact));
        m.insert("glob_paths".into(), Value::Object(glob));
        m.insert("root".into(), Value::Bool(self.root));
        m
    }
}

/// The built-in `default` policy: what every token may do to itself.
pub const DEFAULT_POLICY: &str = r#"# Allow tokens to look up their own properties
path "auth/token/lookup-self" {
  capabilities = ["read"]
}

# Allow tokens to renew and revoke themselves
path "auth/token/renew-self" {
  capabilities = ["update"]
}
path "auth/token/revoke-self" {
  capabilities = ["update"]
}

# Allow a token to look up its own capabilities on a path
path "sys/capabilities-self" {
  capabilities = ["update"]
}

# A token with an entity may read that entity, by id or by name
path "identity/entity/id/{{identity.entity.id}}" {
  capabilities = ["read"]
}
path "identity/entity/name/{{identity.entity.name}}" {
  capabilities = ["read"]
}

# Allow a token to read its own resultant ACL (used by UIs)
path "sys/internal/ui/resultant-acl" {
  capabilities = ["read"]
}

# Allow a token to look up and renew its own leases
path "sys/leases/renew" {
  capabilities = ["update"]
}
path "sys/leases/lookup" {
  capabilities = ["update"]
}

# A private storage area per token
path "cubbyhole/*" {
  capabilities = ["create", "read", "update", "delete", "list"]
}

# Response wrapping
path "sys/wrapping/wrap" {
  capabilities = ["update"]
}
path "sys/wrapping/lookup" {
  capabilities = ["update"]
}
path "sys/wrapping/unwrap" {
  capabilities = ["update"]
}

# Hashing and random bytes
path "sys/tools/hash" {
  capabilities = ["update"]
}
path "sys/tools/hash/*" {
  capabilities = ["update"]
}

# Signing in to applications that use Coffer as their OIDC provider
path "identity/oidc/provider/+/authorize" {
  capabilities = ["read", "update"]
}
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn acl(hcl: &str) -> Acl {
        Acl::new(&[Arc::new(parse("p", hcl).unwrap())])
    }

    fn allows(a: &Acl, op: Operation, path: &str) -> bool {
        a.allow(op, path, &Map::new(), false).allowed
    }

    #[test]
    fn stanzas_the_server_does_not_enforce_are_refused_at_write() {
        for stanza in [
            r#"mfa_methods = ["okta"]"#,
            "control_group {\n    factor \"ops\" {\n      identity {\n        group_names = [\"ops\"]\n      }\n    }\n  }",
            "pagination_limit = 10",
            r#"expiration = "2030-01-01T00:00:00Z""#,
        ] {
            let text = format!("path \"secret/*\" {{\n  capabilities = [\"read\"]\n  {stanza}\n}}\n");
            let err = parse("p", &text).expect_err(stanza).to_string();
            let key = stanza.split([' ', '=']).next().unwrap();
            assert!(err.contains(key) && err.contains("not supported"), "{stanza}: {err}");
        }
    }

    #[test]
    fn templated_paths_grant_per_identity_and_nothing_without_one() {
        let p = Arc::new(
            parse("p", r#"path "secret/{{identity.entity.name}}/*" { capabilities = ["read"] }"#).expect("templated"),
        );
        assert!(p.is_templated());
        let alice = IdentityFacts { entity_id: "e1".into(), entity_name: "alice".into(), ..Default::default() };
        let acl = Acl::with_identity(std::slice::from_ref(&p), Some(&alice));
        assert_eq!(acl.capabilities("secret/alice/x"), vec!["read"]);
        assert_eq!(acl.capabilities("secret/bob/x"), vec!["deny"]);
        let anonymous = Acl::new(&[p]);
        assert_eq!(anonymous.capabilities("secret/alice/x"), vec!["deny"]);
        assert_eq!(anonymous.capabilities("secret/{{identity.entity.name}}/x"), vec!["deny"]);
        let err = parse("q", r#"path "secret/{{identity.entity.bogus}}" { capabilities = ["read"] }"#)
            .expect_err("unknown parameter")
            .to_string();
        assert!(err.contains("unknown template parameter \"identity.entity.bogus\""), "{err}");
    }

    #[test]
    fn exact_glob_and_plus_priorities() {
        let a = acl(r#"
path "secret/*" { capabilities = ["read"] }
path "secret/super/*" { capabilities = ["deny"] }
path "secret/super/open" { capabilities = ["read", "list"] }
path "secret/+/team" { capabilities = ["update"] }
path "secret/+/+" { capabilities = ["create"] }
path "kv/data/+/x*" { capabilities = ["delete"] }
"#);
        assert!(allows(&a, Operation::Read, "secret/foo"));
        assert!(!allows(&a, Operation::Read, "secret/super/x"), "longer glob wins, deny");
        assert!(allows(&a, Operation::Read, "secret/super/open"), "exact beats glob");
        // "secret/*" has its first wildcard later than "secret/+/team"? No: both at 7; no glob end wins.
        assert!(allows(&a, Operation::Update, "secret/a/team"));
        assert!(!allows(&a, Operation::Read, "secret/a/team"), "the single best rule decides");
        assert!(allows(&a, Operation::Create, "secret/a/b"), "fewer + wins: secret/+/+ vs secret/*");
        assert!(allows(&a, Operation::Delete, "kv/data/q/xyz"));
        assert!(!allows(&a, Operation::Delete, "kv/data/q/r/xyz"), "+ is one segment");
        assert!(allows(&a, Operation::Create, "secret//"), "+ matches an empty segment");
        assert_eq!(a.capabilities("secret/super/open"), vec!["list", "read"]);
        assert_eq!(a.capabilities("nothing"), vec!["deny"]);
    }

    #[test]
    fn policies_merge_and_deny_wins() {
        let p1 = Arc::new(parse("a", r#"path "s/x" { capabilities = ["read"] }"#).unwrap());
        let p2 = Arc::new(parse("b", r#"path "s/x" { capabilities = ["update"] }"#).unwrap());
        let p3 = Arc::new(
            parse(
                "c",
                r#"path "s/y" { capabilities = ["deny"] }
path "s/x2" { capabilities = ["read"] }"#,
            )
            .unwrap(),
        );
        let a = Acl::new(&[p1.clone(), p2.clone()]);
        assert_eq!(a.capabilities("s/x"), vec!["read", "update"]);
        let p4 = Arc::new(parse("d", r#"path "s/y" { capabilities = ["read", "sudo"] }"#).unwrap());
        let b = Acl::new(&[p3, p4]);
        assert_eq!(b.capabilities("s/y"), vec!["deny"]);
    }

    #[test]
    fn parameters_are_enforced() {
        let a = acl(r#"
path "s/p" {
  capabilities = ["create", "update"]
  allowed_parameters = { "name" = ["alice", "bob-*"], "note" = [] }
  denied_parameters = { "note" = ["forbidden"] }
  required_parameters = ["name"]
}
"#);
        let d = |v: Value| a.allow(Operation::Update, "s/p", v.as_object().unwrap(), false).allowed;
        assert!(d(json!({"name": "alice"})));
        assert!(d(json!({"name": "bob-2", "note": "hi"})));
        assert!(!d(json!({"name": ["alice"]})), "arrays never match a value list");
        assert!(!d(json!({"name": "carol"})), "value not allowed");
        assert!(!d(json!({"name": "alice", "other": 1})), "key not allowed");
        assert!(!d(json!({"name": "alice", "note": "forbidden"})), "denied value");
        assert!(!d(json!({"note": "hi"})), "required parameter missing");
    }

    #[test]
    fn sudo_and_errors() {
        let a = acl(r#"path "sys/rotate" { capabilities = ["update"] }
path "sys/audit" { capabilities = ["update", "sudo"] }"#);
        assert!(!a.allow(Operation::Update, "sys/rotate", &Map::new(), true).allowed);
        assert!(a.allow(Operation::Update, "sys/audit", &Map::new(), true).allowed);
        let e = parse("x", "path \"a\" {\n capabilities = [\"read\", \"fly\"]\n}\n").unwrap_err();
        assert!(e.to_string().contains("line 1") && e.to_string().contains("fly"), "{e}");
        let e = parse("x", "path \"a\" {\n capabilities = [\"read\"]\n").unwrap_err();
        assert!(e.to_string().contains("failed to parse policy"), "{e}");
        assert_eq!(parse("x", "path \"a*b\" { capabilities = [\"read\"] }").unwrap().rules[0].pattern, "a*b");
        assert!(parse("x", "bogus \"a\" { }").is_err());
        assert!(parse("default", DEFAULT_POLICY).is_ok());
        let j = parse("j", r#"{"path": {"a/*": {"capabilities": ["list"]}}}"#).unwrap();
        assert_eq!(j.rules[0].caps, CAP_LIST);
    }
}
