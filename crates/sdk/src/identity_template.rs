//! Identity templating: `{{identity.entity.name}}` and the other identity parameters, filled in
//! per request from the requesting token's entity — in ACL path patterns (the `coffer-acl`
//! crate), and in backends' settings that OpenBao templates (SSH roles' `allowed_users`,
//! `default_user`, `default_extensions`), from [`crate::SystemServices::identity_facts`].
//!
//! A policy is checked when it is written: unbalanced braces and unknown parameters are
//! refused then. When a token's ACL is built, every templated pattern is rendered from the
//! token's [`IdentityFacts`]; a pattern whose parameter cannot be resolved (no entity, no such
//! metadata key, no alias on that mount, not a member of that group) is dropped, so it grants
//! nothing — it never becomes a wildcard. A substituted value that contains a glob character
//! (`*` or `+`) or template braces also drops the pattern: a value can never widen a path.

use std::collections::BTreeMap;

/// What the requesting token's identity offers to templates. Built by the identity store.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IdentityFacts {
    /// `identity.entity.id`.
    pub entity_id: String,
    /// `identity.entity.name`.
    pub entity_name: String,
    /// `identity.entity.metadata.<key>`.
    pub entity_metadata: BTreeMap<String, String>,
    /// The entity's aliases, one per auth mount.
    pub aliases: Vec<AliasFacts>,
    /// Every group the entity belongs to, directly or through nested groups.
    pub groups: Vec<GroupFacts>,
}

/// One alias of the entity.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AliasFacts {
    /// The auth mount's accessor (`identity.entity.aliases.<accessor>.…`).
    pub mount_accessor: String,
    /// `….id`.
    pub id: String,
    /// `….name`.
    pub name: String,
    /// `….metadata.<key>`.
    pub metadata: BTreeMap<String, String>,
    /// `….custom_metadata.<key>`.
    pub custom_metadata: BTreeMap<String, String>,
}

/// One group of the entity.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupFacts {
    /// `identity.groups.names.<name>.id`.
    pub id: String,
    /// `identity.groups.ids.<id>.name`.
    pub name: String,
    /// `identity.groups.….metadata.<key>`.
    pub metadata: BTreeMap<String, String>,
}

/// A parameter, parsed once when the policy is written.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Param {
    EntityId,
    EntityName,
    EntityMetadata(String),
    AliasId(String),
    AliasName(String),
    AliasMetadata(String, String),
    AliasCustomMetadata(String, String),
    GroupNameById(String),
    GroupIdByName(String),
    GroupMetadataById(String, String),
    GroupMetadataByName(String, String),
}

/// Splits `rest` as `<key>.<field>` where `<field>` is a known field name; `<key>` may itself
/// contain dots (group names do), the field is found from the right.
fn keyed<'a>(rest: &'a str, fields: &[&'static str]) -> Option<(&'a str, &'static str, Option<&'a str>)> {
    for f in fields {
        if let Some(k) = rest.strip_suffix(&format!(".{f}")) {
            if !k.is_empty() && !k.contains(".metadata.") && !k.contains(".custom_metadata.") {
                return Some((k, f, None));
            }
        }
    }
    for f in ["custom_metadata", "metadata"] {
        let marker = format!(".{f}.");
        if let Some(pos) = rest.find(&marker) {
            let (k, meta) = (&rest[..pos], &rest[pos + marker.len()..]);
            if !k.is_empty() && !meta.is_empty() && fields.contains(&f) {
                return Some((k, f, Some(meta)));
            }
        }
    }
    None
}

fn parse_param(raw: &str) -> Option<Param> {
    let p = raw.trim();
    if let Some(rest) = p.strip_prefix("identity.entity.") {
        return match rest {
            "id" => Some(Param::EntityId),
            "name" => Some(Param::EntityName),
            _ => {
                if let Some(key) = rest.strip_prefix("metadata.").filter(|k| !k.is_empty()) {
                    return Some(Param::EntityMetadata(key.into()));
                }
                let rest = rest.strip_prefix("aliases.")?;
                let (acc, field, meta) = keyed(rest, &["id", "name", "metadata", "custom_metadata"])?;
                if acc.contains('.') {
                    return None;
                }
                Some(match (field, meta) {
                    ("id", None) => Param::AliasId(acc.into()),
                    ("name", None) => Param::AliasName(acc.into()),
                    ("metadata", Some(k)) => Param::AliasMetadata(acc.into(), k.into()),
                    ("custom_metadata", Some(k)) => Param::AliasCustomMetadata(acc.into(), k.into()),
                    _ => return None,
                })
            }
        };
    }
    if let Some(rest) = p.strip_prefix("identity.groups.ids.") {
        let (id, field, meta) = keyed(rest, &["name", "metadata"])?;
        return Some(match (field, meta) {
            ("name", None) => Param::GroupNameById(id.into()),
            ("metadata", Some(k)) => Param::GroupMetadataById(id.into(), k.into()),
            _ => return None,
        });
    }
    if let Some(rest) = p.strip_prefix("identity.groups.names.") {
        let (name, field, meta) = keyed(rest, &["id", "metadata"])?;
        return Some(match (field, meta) {
            ("id", None) => Param::GroupIdByName(name.into()),
            ("metadata", Some(k)) => Param::GroupMetadataByName(name.into(), k.into()),
            _ => return None,
        });
    }
    None
}

/// One piece of a templated pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Param(Param),
}

/// Why a templated pattern was refused when the policy was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// `{{` without `}}`, or the reverse.
    #[error("failed to validate policy templating: unbalanced templating characters")]
    Unbalanced,
    /// A parameter no identity offers.
    #[error("failed to validate policy templating: unknown template parameter {0:?}")]
    UnknownParameter(String),
}

fn pieces(pattern: &str) -> Result<Vec<Piece>, TemplateError> {
    let mut out = Vec::new();
    let mut rest = pattern;
    while let Some(open) = rest.find("{{") {
        let (text, after) = (&rest[..open], &rest[open + 2..]);
        if text.contains("}}") {
            return Err(TemplateError::Unbalanced);
        }
        if !text.is_empty() {
            out.push(Piece::Text(text.into()));
        }
        let close = after.find("}}").ok_or(TemplateError::Unbalanced)?;
        let inner = &after[..close];
        if inner.contains("{{") {
            return Err(TemplateError::Unbalanced);
        }
        let param = parse_param(inner).ok_or_else(|| TemplateError::UnknownParameter(inner.trim().to_string()))?;
        out.push(Piece::Param(param));
        rest = &after[close + 2..];
    }
    if rest.contains("}}") {
        return Err(TemplateError::Unbalanced);
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest.into()));
    }
    Ok(out)
}

/// Whether a pattern is templated, refusing a malformed template or an unknown parameter.
pub fn validate(pattern: &str) -> Result<bool, TemplateError> {
    if !pattern.contains("{{") && !pattern.contains("}}") {
        return Ok(false);
    }
    pieces(pattern).map(|_| true)
}

fn resolve<'a>(param: &Param, f: &'a IdentityFacts) -> Option<&'a str> {
    let alias = |acc: &str| f.aliases.iter().find(|a| a.mount_accessor == acc);
    let group_by_id = |id: &str| f.groups.iter().find(|g| g.id == id);
    let group_by_name = |n: &str| f.groups.iter().find(|g| g.name == n);
    match param {
        Param::EntityId => Some(f.entity_id.as_str()),
        Param::EntityName => Some(f.entity_name.as_str()),
        Param::EntityMetadata(k) => f.entity_metadata.get(k).map(String::as_str),
        Param::AliasId(acc) => alias(acc).map(|a| a.id.as_str()),
        Param::AliasName(acc) => alias(acc).map(|a| a.name.as_str()),
        Param::AliasMetadata(acc, k) => alias(acc).and_then(|a| a.metadata.get(k)).map(String::as_str),
        Param::AliasCustomMetadata(acc, k) => alias(acc).and_then(|a| a.custom_metadata.get(k)).map(String::as_str),
        Param::GroupNameById(id) => group_by_id(id).map(|g| g.name.as_str()),
        Param::GroupIdByName(n) => group_by_name(n).map(|g| g.id.as_str()),
        Param::GroupMetadataById(id, k) => group_by_id(id).and_then(|g| g.metadata.get(k)).map(String::as_str),
        Param::GroupMetadataByName(n, k) => group_by_name(n).and_then(|g| g.metadata.get(k)).map(String::as_str),
    }
}

/// A value that could widen the path it is put into (or start another template).
fn forbidden(v: &str) -> bool {
    v.is_empty() || v.contains(['*', '+', '{', '}'])
}

/// The pattern with every parameter filled in from `facts`; `None` (the rule grants nothing)
/// when there is no identity, a parameter does not resolve, or a value is forbidden.
pub fn render(pattern: &str, facts: Option<&IdentityFacts>) -> Option<String> {
    let facts = facts.filter(|f| !f.entity_id.is_empty())?;
    let mut out = String::with_capacity(pattern.len() + 32);
    for piece in pieces(pattern).ok()? {
        match piece {
            Piece::Text(t) => out.push_str(&t),
            Piece::Param(p) => {
                let v = resolve(&p, facts)?;
                if forbidden(v) {
                    return None;
                }
                out.push_str(v);
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> IdentityFacts {
        IdentityFacts {
            entity_id: "e-1".into(),
            entity_name: "alice".into(),
            entity_metadata: [("team".to_string(), "red".to_string())].into(),
            aliases: vec![AliasFacts {
                mount_accessor: "auth_userpass_1".into(),
                id: "a-1".into(),
                name: "alice-login".into(),
                metadata: [("dept".to_string(), "ops".to_string())].into(),
                custom_metadata: [("site".to_string(), "ber".to_string())].into(),
            }],
            groups: vec![GroupFacts {
                id: "g-1".into(),
                name: "eng.core".into(),
                metadata: [("cost".to_string(), "42".to_string())].into(),
            }],
        }
    }

    #[test]
    fn every_documented_parameter_resolves_from_the_entity() {
        let f = facts();
        let cases = [
            ("s/{{identity.entity.id}}", "s/e-1"),
            ("s/{{ identity.entity.name }}/*", "s/alice/*"),
            ("s/{{identity.entity.metadata.team}}", "s/red"),
            ("s/{{identity.entity.aliases.auth_userpass_1.id}}", "s/a-1"),
            ("s/{{identity.entity.aliases.auth_userpass_1.name}}", "s/alice-login"),
            ("s/{{identity.entity.aliases.auth_userpass_1.metadata.dept}}", "s/ops"),
            ("s/{{identity.entity.aliases.auth_userpass_1.custom_metadata.site}}", "s/ber"),
            ("s/{{identity.groups.ids.g-1.name}}", "s/eng.core"),
            ("s/{{identity.groups.names.eng.core.id}}", "s/g-1"),
            ("s/{{identity.groups.ids.g-1.metadata.cost}}", "s/42"),
            ("s/{{identity.groups.names.eng.core.metadata.cost}}", "s/42"),
            ("{{identity.entity.name}}/{{identity.entity.metadata.team}}", "alice/red"),
        ];
        for (pattern, want) in cases {
            assert_eq!(validate(pattern), Ok(true), "{pattern}");
            assert_eq!(render(pattern, Some(&f)).as_deref(), Some(want), "{pattern}");
        }
    }

    #[test]
    fn an_unresolvable_parameter_drops_the_pattern_instead_of_matching_anything() {
        let f = facts();
        for pattern in [
            "s/{{identity.entity.metadata.nokey}}",
            "s/{{identity.entity.aliases.auth_other.name}}",
            "s/{{identity.groups.names.ops.id}}",
            "s/{{identity.groups.ids.g-9.name}}",
        ] {
            assert_eq!(render(pattern, Some(&f)), None, "{pattern}");
        }
        assert_eq!(render("s/{{identity.entity.id}}", None), None, "no entity, no path");
    }

    #[test]
    fn values_with_glob_characters_never_widen_a_path() {
        let mut f = facts();
        for bad in ["a*", "+", "x+y", "{{identity.entity.id}}", ""] {
            f.entity_name = bad.into();
            assert_eq!(render("s/{{identity.entity.name}}", Some(&f)), None, "{bad:?}");
        }
    }

    #[test]
    fn malformed_templates_and_unknown_parameters_are_refused_when_written() {
        assert_eq!(validate("s/{{identity.entity.name}"), Err(TemplateError::Unbalanced));
        assert_eq!(validate("s/identity.entity.name}}"), Err(TemplateError::Unbalanced));
        assert_eq!(validate("s/{{a{{b}}"), Err(TemplateError::Unbalanced));
        for unknown in [
            "identity.entity.bogus",
            "identity.entity.metadata.",
            "identity.entity.aliases.acc.password",
            "identity.groups.ids.g.id",
            "token.id",
        ] {
            assert!(
                matches!(validate(&format!("s/{{{{{unknown}}}}}")), Err(TemplateError::UnknownParameter(_))),
                "{unknown}"
            );
        }
        assert_eq!(validate("s/plain/*"), Ok(false));
    }
}
