//! The `token_*` fields every auth method's roles share (token_ttl, token_policies, …), with
//! Vault's legacy aliases (`policies`, `ttl`, `max_ttl`, `period`, `bound_cidrs`), and how they
//! become an [`AuthResponse`].

use crate::field::{parse_bool, parse_duration, parse_int, parse_string, parse_string_slice, FieldType};
use crate::framework::FieldSpec;
use crate::{AuthResponse, LogicalError};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// Token settings stored with a role or user.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TokenParams {
    #[serde(default)]
    /// Policies of issued tokens.
    pub token_policies: Vec<String>,
    #[serde(default)]
    /// Default TTL of issued tokens, in seconds (0: the mount's).
    pub token_ttl: i64,
    #[serde(default)]
    /// Maximum TTL of issued tokens, in seconds (0: the mount's).
    pub token_max_ttl: i64,
    #[serde(default)]
    /// A hard cap on the tokens' lifetime, renewals included, in seconds (0: none).
    pub token_explicit_max_ttl: i64,
    #[serde(default)]
    /// Renewal period for periodic tokens, in seconds (0: not periodic).
    pub token_period: i64,
    #[serde(default)]
    /// How many uses each token has (0: unlimited).
    pub token_num_uses: i64,
    #[serde(default)]
    /// Leave out the `default` policy.
    pub token_no_default_policy: bool,
    #[serde(default)]
    /// Networks (CIDR) the tokens may be used from.
    pub token_bound_cidrs: Vec<String>,
    #[serde(default = "default_type")]
    /// `service`, `batch` or `default`.
    pub token_type: String,
    /// Bind each issued token to the address the login came from.
    #[serde(default)]
    pub token_strictly_bind_ip: bool,
    /// The deprecated names (`policies`, `ttl`, …) the settings were last given under: a read
    /// shows those names too, as OpenBao does.
    #[serde(default)]
    pub legacy_names: Vec<String>,
}

fn default_type() -> String {
    "default".into()
}

impl Default for TokenParams {
    fn default() -> Self {
        TokenParams {
            token_policies: vec![],
            token_ttl: 0,
            token_max_ttl: 0,
            token_explicit_max_ttl: 0,
            token_period: 0,
            token_num_uses: 0,
            token_no_default_policy: false,
            token_bound_cidrs: vec![],
            token_type: default_type(),
            token_strictly_bind_ip: false,
            legacy_names: vec![],
        }
    }
}

/// The field specs to add to a role path.
pub fn token_fields() -> Vec<FieldSpec> {
    vec![
        FieldSpec::new("token_policies", FieldType::CommaStringSlice, "Policies attached to issued tokens"),
        FieldSpec::new("policies", FieldType::CommaStringSlice, "Deprecated alias of token_policies"),
        FieldSpec::new("token_ttl", FieldType::DurationSecond, "Initial TTL of issued tokens"),
        FieldSpec::new("ttl", FieldType::DurationSecond, "Deprecated alias of token_ttl"),
        FieldSpec::new("token_max_ttl", FieldType::DurationSecond, "Maximum lifetime of issued tokens"),
        FieldSpec::new("max_ttl", FieldType::DurationSecond, "Deprecated alias of token_max_ttl"),
        FieldSpec::new("token_explicit_max_ttl", FieldType::DurationSecond, "Hard cap on token lifetime"),
        FieldSpec::new("token_period", FieldType::DurationSecond, "Makes issued tokens periodic"),
        FieldSpec::new("period", FieldType::DurationSecond, "Deprecated alias of token_period"),
        FieldSpec::new("token_num_uses", FieldType::Int, "Maximum uses of issued tokens (0 = unlimited)"),
        FieldSpec::new("token_no_default_policy", FieldType::Bool, "Do not add the default policy"),
        FieldSpec::new("token_bound_cidrs", FieldType::CommaStringSlice, "CIDRs allowed to use issued tokens"),
        FieldSpec::new("bound_cidrs", FieldType::CommaStringSlice, "Deprecated alias of token_bound_cidrs"),
        FieldSpec::new("token_type", FieldType::String, "service, batch or default"),
        FieldSpec::new(
            "token_strictly_bind_ip",
            FieldType::Bool,
            "Bind issued tokens to the login's client address (conflicts with token_bound_cidrs)",
        ),
    ]
}

impl TokenParams {
    /// Applies the fields present in `data` (the new names win over the legacy aliases).
    pub fn update_from(&mut self, data: &Map<String, Value>) -> Result<(), LogicalError> {
        let present = |k: &str| data.get(k).is_some_and(|v| !v.is_null());
        for (new, old) in [
            ("token_policies", "policies"),
            ("token_ttl", "ttl"),
            ("token_max_ttl", "max_ttl"),
            ("token_period", "period"),
            ("token_bound_cidrs", "bound_cidrs"),
        ] {
            if present(new) {
                self.legacy_names.retain(|n| n != old);
            } else if present(old) && !self.legacy_names.iter().any(|n| n == old) {
                self.legacy_names.push(old.to_string());
            }
        }
        let get = |new: &str, old: &str| {
            data.get(new).filter(|v| !v.is_null()).or_else(|| data.get(old).filter(|v| !v.is_null()))
        };
        if let Some(v) = get("token_policies", "policies") {
            self.token_policies = normalize_policies(parse_string_slice("token_policies", v)?);
        }
        if let Some(v) = get("token_ttl", "ttl") {
            self.token_ttl = non_negative("token_ttl", parse_duration("token_ttl", v)?)?;
        }
        if let Some(v) = get("token_max_ttl", "max_ttl") {
            self.token_max_ttl = non_negative("token_max_ttl", parse_duration("token_max_ttl", v)?)?;
        }
        if let Some(v) = get("token_explicit_max_ttl", "token_explicit_max_ttl") {
            self.token_explicit_max_ttl =
                non_negative("token_explicit_max_ttl", parse_duration("token_explicit_max_ttl", v)?)?;
        }
        if let Some(v) = get("token_period", "period") {
            self.token_period = non_negative("token_period", parse_duration("token_period", v)?)?;
        }
        if let Some(v) = get("token_num_uses", "token_num_uses") {
            self.token_num_uses = non_negative("token_num_uses", parse_int("token_num_uses", v)?)?;
        }
        if let Some(v) = get("token_no_default_policy", "token_no_default_policy") {
            self.token_no_default_policy = parse_bool("token_no_default_policy", v)?;
        }
        if let Some(v) = get("token_bound_cidrs", "bound_cidrs") {
            let mut cidrs = parse_string_slice("token_bound_cidrs", v)?;
            for c in cidrs.iter_mut() {
                let (ip, len) = parse_cidr(c)
                    .ok_or_else(|| LogicalError::bad_request(format!("invalid CIDR {c:?} in token_bound_cidrs")))?;
                // A single address is kept (and shown) bare, as OpenBao does.
                if len == if ip.is_ipv4() { 32 } else { 128 } {
                    *c = ip.to_string();
                }
            }
            self.token_bound_cidrs = cidrs;
        }
        if let Some(v) = get("token_strictly_bind_ip", "token_strictly_bind_ip") {
            self.token_strictly_bind_ip = parse_bool("token_strictly_bind_ip", v)?;
        }
        if self.token_strictly_bind_ip && !self.token_bound_cidrs.is_empty() {
            return Err(LogicalError::bad_request(
                "'token_strictly_bind_ip' conflicts with 'token_bound_cidrs'; set only one",
            ));
        }
        if let Some(v) = get("token_type", "token_type") {
            let t = parse_string("token_type", v)?;
            let t = match t.as_str() {
                "" | "default" => "default",
                "service" | "default-service" => "service",
                "batch" | "default-batch" => "batch",
                other => return Err(LogicalError::bad_request(format!("invalid token_type {other:?}"))),
            };
            self.token_type = t.to_string();
        }
        if self.token_max_ttl > 0 && self.token_ttl > self.token_max_ttl {
            return Err(LogicalError::bad_request("\"token_ttl\" value must be less than \"token_max_ttl\" value"));
        }
        Ok(())
    }

    /// The fields as a role read shows them (with the legacy aliases Vault also returns).
    pub fn to_response(&self, out: &mut Map<String, Value>) {
        out.insert("token_policies".into(), json!(self.token_policies));
        out.insert("token_ttl".into(), json!(self.token_ttl));
        out.insert("token_max_ttl".into(), json!(self.token_max_ttl));
        out.insert("token_explicit_max_ttl".into(), json!(self.token_explicit_max_ttl));
        out.insert("token_period".into(), json!(self.token_period));
        out.insert("token_num_uses".into(), json!(self.token_num_uses));
        out.insert("token_no_default_policy".into(), json!(self.token_no_default_policy));
        out.insert("token_bound_cidrs".into(), json!(self.token_bound_cidrs));
        out.insert("token_type".into(), json!(self.token_type));
        out.insert("token_strictly_bind_ip".into(), json!(self.token_strictly_bind_ip));
        for old in &self.legacy_names {
            let v = match old.as_str() {
                "policies" => json!(self.token_policies),
                "ttl" => json!(self.token_ttl),
                "max_ttl" => json!(self.token_max_ttl),
                "period" => json!(self.token_period),
                "bound_cidrs" => json!(self.token_bound_cidrs),
                _ => continue,
            };
            out.insert(old.clone(), v);
        }
    }

    /// The token the core should mint for a login with these settings.
    ///
    /// `remote` is the login's client address: with `token_strictly_bind_ip` the token is
    /// bound to it.
    pub fn to_auth(&self, display_name: &str, alias_name: &str, remote: Option<std::net::IpAddr>) -> AuthResponse {
        AuthResponse {
            policies: self.token_policies.clone(),
            metadata: Map::new(),
            display_name: display_name.to_string(),
            ttl: self.token_ttl,
            max_ttl: self.token_max_ttl,
            explicit_max_ttl: self.token_explicit_max_ttl,
            period: self.token_period,
            num_uses: self.token_num_uses,
            renewable: true,
            no_default_policy: self.token_no_default_policy,
            token_type: self.token_type.clone(),
            bound_cidrs: match (self.token_strictly_bind_ip, remote) {
                (true, Some(ip)) => vec![ip.to_string()],
                _ => self.token_bound_cidrs.clone(),
            },
            alias_name: Some(alias_name.to_string()),
            alias_metadata: Map::new(),
            group_aliases: Vec::new(),
            internal_data: Map::new(),
        }
    }
}

fn non_negative(name: &str, v: i64) -> Result<i64, LogicalError> {
    if v < 0 {
        return Err(LogicalError::bad_request(format!("{name} must not be negative")));
    }
    Ok(v)
}

/// Lower-cases, trims, drops empties and duplicates, keeps order.
pub fn normalize_policies(p: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for x in p {
        let x = x.trim().to_lowercase();
        if !x.is_empty() && !out.contains(&x) {
            out.push(x);
        }
    }
    out
}

/// Whether two policy lists grant the same, as Vault compares them when a method decides on a
/// renewal: case, order, repeats and `default` aside.
pub fn equivalent_policies(a: &[String], b: &[String]) -> bool {
    let set = |p: &[String]| {
        let mut v: Vec<String> = normalize_policies(p.to_vec()).into_iter().filter(|p| p != "default").collect();
        v.sort();
        v
    };
    set(a) == set(b)
}

/// Parses `a.b.c.d/n`, `a.b.c.d`, or an IPv6 CIDR into (network, prefix length).
pub fn parse_cidr(s: &str) -> Option<(std::net::IpAddr, u8)> {
    let (ip, len) = match s.split_once('/') {
        Some((ip, l)) => (ip.parse::<std::net::IpAddr>().ok()?, l.parse::<u8>().ok()?),
        None => {
            let ip: std::net::IpAddr = s.parse().ok()?;
            (ip, if ip.is_ipv4() { 32 } else { 128 })
        }
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (len <= max).then_some((ip, len))
}

/// Whether `addr` lies in any of `cidrs` (an empty list allows every address).
pub fn addr_in_cidrs(addr: Option<std::net::IpAddr>, cidrs: &[String]) -> bool {
    if cidrs.is_empty() {
        return true;
    }
    let Some(addr) = addr else { return false };
    cidrs.iter().filter_map(|c| parse_cidr(c)).any(|(net, len)| match (net, addr) {
        (std::net::IpAddr::V4(n), std::net::IpAddr::V4(a)) => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            u32::from(n) & mask == u32::from(a) & mask
        }
        (std::net::IpAddr::V6(n), std::net::IpAddr::V6(a)) => {
            let mask = if len == 0 { 0 } else { u128::MAX << (128 - len) };
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equivalent_policies_ignore_case_order_repeats_and_default() {
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(equivalent_policies(&v(&["b", "A", "default"]), &v(&["a", "b", "b"])));
        assert!(!equivalent_policies(&v(&["a"]), &v(&["a", "c"])));
    }

    #[test]
    fn new_names_win_and_aliases_work() {
        let mut t = TokenParams::default();
        let d = json!({"policies": "A, b", "ttl": "1h", "token_max_ttl": 7200, "bound_cidrs": "10.0.0.0/8"});
        t.update_from(d.as_object().unwrap()).unwrap();
        assert_eq!(t.token_policies, vec!["a", "b"]);
        assert_eq!((t.token_ttl, t.token_max_ttl), (3600, 7200));
        let bad = json!({"token_ttl": "3h"});
        assert!(t.update_from(bad.as_object().unwrap()).is_err(), "ttl above max_ttl is refused");
        assert!(t.update_from(json!({"token_bound_cidrs": "nope"}).as_object().unwrap()).is_err());
    }

    #[test]
    fn cidr_matching() {
        let c = vec!["10.1.0.0/16".to_string(), "::1".to_string()];
        assert!(addr_in_cidrs(Some("10.1.2.3".parse().unwrap()), &c));
        assert!(!addr_in_cidrs(Some("10.2.0.1".parse().unwrap()), &c));
        assert!(addr_in_cidrs(Some("::1".parse().unwrap()), &c));
        assert!(!addr_in_cidrs(None, &c));
        assert!(addr_in_cidrs(None, &[]));
    }
}
