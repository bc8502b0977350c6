//! The claim checks of a login, after the signature: times with the role's leeways, subject,
//! audience, bound claims (exact or glob, lists), and what the claims give the token (the
//! user claim, groups, mapped metadata).

use crate::role::Role;
use coffer_sdk::{LogicalError, Result};
use serde_json::{Map, Value};

/// The leeway a role's 0 stands for (seconds), and -1 means none. OpenBao 2.x, observed,
/// allows 60 s of clock skew and nothing more by default: its `expiration_leeway` and
/// `not_before_leeway` defaults (documented as 150 s) do not apply to JWT logins, and neither
/// do set values. Coffer keeps its defaults (so the same tokens pass) and adds set values.
const DEFAULT_CLOCK_SKEW: i64 = 60;
const DEFAULT_EXPIRATION: i64 = 0;
const DEFAULT_NOT_BEFORE: i64 = 0;

fn leeway(v: i64, default: i64) -> i64 {
    match v {
        0 => default,
        v if v < 0 => 0,
        v => v,
    }
}

fn bad(m: impl Into<String>) -> LogicalError {
    LogicalError::bad_request(m)
}

fn num(claims: &Map<String, Value>, k: &str) -> Result<Option<i64>> {
    match claims.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(Some(
            n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)).ok_or_else(|| bad(format!("invalid {k} claim")))?,
        )),
        Some(_) => Err(bad(format!("error validating token: the {k} claim is not a number"))),
    }
}

/// exp, nbf and iat against `now` (seconds since the epoch) with the role's leeways.
pub fn check_times(claims: &Map<String, Value>, role: &Role, now: i64) -> Result<()> {
    let (exp, nbf, iat) = (num(claims, "exp")?, num(claims, "nbf")?, num(claims, "iat")?);
    if exp.is_none() && nbf.is_none() && iat.is_none() {
        return Err(bad(
            "error validating token: no issued at (iat), not before (nbf), or expiration time (exp) claims in token",
        ));
    }
    let skew = leeway(role.clock_skew_leeway, DEFAULT_CLOCK_SKEW);
    if let Some(exp) = exp {
        if now > exp + leeway(role.expiration_leeway, DEFAULT_EXPIRATION) + skew {
            return Err(bad("error validating token: invalid expiration time (exp) claim: token is expired"));
        }
    }
    if let Some(nbf) = nbf {
        if now < nbf - leeway(role.not_before_leeway, DEFAULT_NOT_BEFORE) - skew {
            return Err(bad("error validating token: invalid not before (nbf) claim: token not yet valid"));
        }
    }
    if let Some(iat) = iat {
        if now < iat - skew {
            return Err(bad("error validating token: invalid issued at (iat) claim: token issued in the future"));
        }
    }
    Ok(())
}

/// The token's audiences (`aud` is a string or a list of strings).
pub fn audiences(claims: &Map<String, Value>) -> Vec<String> {
    match claims.get("aud") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        _ => vec![],
    }
}

/// The role's audience rule; `default_aud` is what a token must carry when the role binds none
/// (the client ID, for an OIDC ID token).
pub fn check_audience(claims: &Map<String, Value>, role: &Role, default_aud: Option<&str>) -> Result<()> {
    let auds = audiences(claims);
    let bound: Vec<String> = if role.bound_audiences.is_empty() {
        default_aud.map(|a| vec![a.to_string()]).unwrap_or_default()
    } else {
        role.bound_audiences.clone()
    };
    if bound.is_empty() {
        if !auds.is_empty() {
            return Err(bad("audience claim found in JWT but no audiences bound to the role"));
        }
        return Ok(());
    }
    if !auds.iter().any(|a| bound.contains(a)) {
        return Err(bad(
            "error validating token: invalid audience (aud) claim: audience claim does not match any expected audience",
        ));
    }
    Ok(())
}

pub fn check_subject(claims: &Map<String, Value>, role: &Role) -> Result<()> {
    if !role.bound_subject.is_empty() && claims.get("sub").and_then(Value::as_str) != Some(&role.bound_subject) {
        return Err(bad("error validating token: invalid subject (sub) claim"));
    }
    Ok(())
}

/// A claim by name, or by JSON pointer when the name starts with `/` (`/a/b` reads
/// `{"a":{"b":…}}`).
pub fn get_claim<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    if name.starts_with('/') {
        let mut cur: &Value = claims.get(name.split('/').nth(1)?.replace("~1", "/").replace("~0", "~").as_str())?;
        for seg in name.split('/').skip(2) {
            let seg = seg.replace("~1", "/").replace("~0", "~");
            cur = match cur {
                Value::Object(m) => m.get(&seg)?,
                Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(cur)
    } else {
        claims.get(name)
    }
}

pub use coffer_sdk::strutil::glob_match;

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Every bound claim must be present and match one of its values (a token claim that is a
/// list matches when any element does).
pub fn check_bound_claims(claims: &Map<String, Value>, role: &Role) -> Result<()> {
    let glob = role.bound_claims_type == "glob";
    for (name, expected) in &role.bound_claims {
        let want: Vec<String> = match expected {
            Value::Array(a) => a.iter().filter_map(scalar_text).collect(),
            v => scalar_text(v).into_iter().collect(),
        };
        let Some(got) = get_claim(claims, name) else {
            return Err(bad(format!("error validating claims: claim {name:?} is missing")));
        };
        let got: Vec<String> = match got {
            Value::Array(a) => a.iter().filter_map(scalar_text).collect(),
            v => scalar_text(v).into_iter().collect(),
        };
        let ok = got.iter().any(|g| want.iter().any(|w| if glob { glob_match(w, g) } else { w == g }));
        if !ok {
            return Err(bad(format!(
                "error validating claims: claim {name:?} does not match any associated bound claim values"
            )));
        }
    }
    Ok(())
}

/// The alias name from the role's user claim.
pub fn user_name(claims: &Map<String, Value>, role: &Role) -> Result<String> {
    let v =
        if role.user_claim_json_pointer { get_claim(claims, &role.user_claim) } else { claims.get(&role.user_claim) };
    match v {
        None | Some(Value::Null) => Err(bad(format!("claim {:?} not found in token", role.user_claim))),
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(_) => Err(bad(format!("claim {:?} could not be converted to string", role.user_claim))),
    }
}

/// The group names of the role's groups claim (a list of strings, or one string).
pub fn groups(claims: &Map<String, Value>, role: &Role) -> Result<Vec<String>> {
    if role.groups_claim.is_empty() {
        return Ok(vec![]);
    }
    let Some(v) = get_claim(claims, &role.groups_claim) else {
        return Err(bad(format!("failed to fetch groups: {:?} claim not found in token", role.groups_claim)));
    };
    match v {
        Value::Array(a) => Ok(a.iter().filter_map(scalar_text).filter(|g| !g.is_empty()).collect()),
        v => scalar_text(v).map(|s| vec![s]).ok_or_else(|| {
            bad(format!("failed to fetch groups: {:?} claim is not a list of strings", role.groups_claim))
        }),
    }
}

/// Token and alias metadata from the role's claim mappings (claims that are missing are
/// skipped; a claim that is not a string is refused).
pub fn mapped_metadata(claims: &Map<String, Value>, role: &Role) -> Result<Map<String, Value>> {
    let mut out = Map::new();
    for (claim, key) in &role.claim_mappings {
        let Some(v) = get_claim(claims, claim) else { continue };
        // As OpenBao: only string claims map (a number, boolean, list or object is refused).
        let Value::String(text) = v else {
            return Err(bad(format!("error converting claim '{claim}' to string")));
        };
        out.insert(key.as_str().unwrap_or_default().to_string(), Value::String(text.clone()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_stars_only() {
        assert!(glob_match("ops*", "ops-x"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxbyy"));
        assert!(!glob_match("ops", "ops-x"));
        assert!(glob_match("*-prod", "eu-prod"));
        assert!(!glob_match("ab*ba", "aba"));
    }

    #[test]
    fn json_pointers_reach_nested_claims() {
        let c: Map<String, Value> = serde_json::from_str(r#"{"a":{"b":["x","y"]},"c/d":1}"#).unwrap();
        assert_eq!(get_claim(&c, "/a/b/1"), Some(&Value::String("y".into())));
        assert_eq!(get_claim(&c, "/c~1d"), Some(&serde_json::json!(1)));
        assert_eq!(get_claim(&c, "/a/z"), None);
    }

    #[test]
    fn leeways_default_and_can_be_disabled() {
        let mut role = Role::default();
        let now = 1_000_000;
        let c = |k: &str, v: i64| serde_json::json!({ k: v }).as_object().unwrap().clone();
        assert!(check_times(&c("exp", now - 50), &role, now).is_ok(), "60 s clock skew by default");
        assert!(check_times(&c("exp", now - 100), &role, now).is_err());
        role.expiration_leeway = 100;
        assert!(check_times(&c("exp", now - 150), &role, now).is_ok(), "a set leeway adds to the skew");
        role.expiration_leeway = -1;
        role.clock_skew_leeway = -1;
        assert!(check_times(&c("exp", now - 1), &role, now).is_err());
        assert!(check_times(&c("iat", now + 1), &role, now).is_err());
        assert!(check_times(&Map::new(), &role, now).is_err());
    }
}
