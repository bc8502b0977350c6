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
use coffer_sdk::framework::PathSpec;
use coffer_sdk::openapi::{type_name, Builder, Table};
use coffer_sdk::{ErrorKind, LogicalError, Operation};
use serde_json::{json, Map, Value};
use std::fmt::Write as _;

pub use coffer_sdk::openapi::path_templates;

/// The `info` of Coffer's documents.
fn info() -> Value {
    json!({
        "title": "Coffer",
        "description": "Coffer's HTTP API, compatible with OpenBao's. Every path below is served under /v1/.",
        "version": crate::version_string(),
        "license": { "name": "MPL-2.0", "url": "https://www.mozilla.org/en-US/MPL/2.0/" },
    })
}

/// The document a caller without a token gets: the envelope, no paths.
pub(crate) fn empty_document() -> Map<String, Value> {
    Builder::default().document(info())
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
        Ok(CoreResponse::raw(b.document(info())))
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
        m.insert("openapi".into(), Value::Object(b.document(info())));
        m.insert("see_also".into(), Value::Null);
        Ok(CoreResponse::raw(m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parameter_is_named_once() {
        for t in system_tables() {
            for s in t.specs {
                for tpl in coffer_sdk::openapi::templates(s.pattern) {
                    let set: std::collections::BTreeSet<_> = tpl.params.iter().collect();
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
