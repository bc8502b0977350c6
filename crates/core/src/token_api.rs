//! `auth/token/…`: create (plain, orphan, by role), lookup, renew, revoke, roles, accessors,
//! tidy — with Vault's rules for policies, TTLs, periods, orphans and use limits.

use crate::system_paths::TokenRoute;
use crate::token::{now, TokenEntry, TokenRole};
use crate::{Active, Core, CoreResponse, Result};
use coffer_acl::Decision;
use coffer_sdk::field::{parse_bool, parse_string, parse_string_slice};
use coffer_sdk::framework::{FieldData, Routed};
use coffer_sdk::tokenutil::normalize_policies;
use coffer_sdk::{LogicalError, Operation};
use serde_json::{json, Map, Value};

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn opt<'a>(d: &'a Map<String, Value>, k: &str) -> Option<&'a Value> {
    d.get(k).filter(|v| !v.is_null())
}

/// A list field the request set (coerced by the row: a JSON list or comma-separated text).
fn list_field(f: &FieldData, k: &str) -> Option<Vec<String>> {
    f.is_set(k).then(|| {
        f.get(k).and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).map(String::from).collect()
    })
}

/// A string field the request set (empty when it did not).
fn str_field<'a>(f: &'a FieldData, k: &str) -> &'a str {
    f.str(k).unwrap_or("")
}

/// Who is asking, for the token endpoints.
pub(crate) struct Caller<'a> {
    pub token: &'a str,
    pub entry: &'a TokenEntry,
    pub decision: &'a Decision,
    /// The renewing client's connection, shown to the auth method that issued a token.
    pub remote_addr: Option<std::net::IpAddr>,
    pub client_certs: Option<std::sync::Arc<Vec<Vec<u8>>>>,
}

/// A duration as OpenBao writes it in warnings: `768h`, `1h30m`, `2h1s`, `59s` (Go's
/// notation without its zero minutes and seconds).
pub(crate) fn short_duration(secs: i64) -> String {
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

fn glob_match(pattern: &str, s: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == s,
        Some((pre, post)) => s.len() >= pre.len() + post.len() && s.starts_with(pre) && s.ends_with(post),
    }
}

impl Core {
    /// Builds the `auth` block for a token.
    pub(crate) fn auth_block(&self, token: &str, e: &TokenEntry, identity_policies: &[String]) -> coffer_api::Auth {
        let mut all = e.policies.clone();
        for p in identity_policies {
            if !all.contains(p) {
                all.push(p.clone());
            }
        }
        all.sort();
        coffer_api::Auth {
            client_token: token.to_string(),
            accessor: e.accessor.clone(),
            policies: all,
            token_policies: e.policies.clone(),
            identity_policies: if identity_policies.is_empty() { None } else { Some(identity_policies.to_vec()) },
            metadata: e.meta.clone(),
            lease_duration: e.remaining(now()),
            renewable: e.renewable,
            entity_id: e.entity_id.clone(),
            token_type: e.token_type.clone(),
            orphan: e.orphan,
            mfa_requirement: None,
            num_uses: e.num_uses,
        }
    }

    /// Applies TTL rules to a new token entry (default, max, explicit max, period).
    pub(crate) fn apply_ttls(&self, e: &mut TokenEntry, ttl: i64, mount_max: i64) -> Vec<String> {
        let mut warnings = vec![];
        let sys_max = if mount_max > 0 { mount_max.min(self.config.max_lease_ttl) } else { self.config.max_lease_ttl };
        let mut max = sys_max;
        if e.explicit_max_ttl > 0 {
            max = max.min(e.explicit_max_ttl);
        }
        let mut ttl = if e.period > 0 {
            if e.explicit_max_ttl > 0 {
                e.period.min(e.explicit_max_ttl)
            } else {
                e.period
            }
        } else if ttl > 0 {
            ttl
        } else if e.is_root() && e.explicit_max_ttl == 0 {
            0
        } else {
            self.config.default_lease_ttl.min(max)
        };
        if e.period == 0 && ttl > max {
            warnings.push(format!(
                "TTL of \"{}\" exceeded the effective max_ttl of \"{}\"; TTL value is capped accordingly",
                short_duration(ttl),
                short_duration(max)
            ));
            ttl = max;
        }
        e.ttl = ttl;
        e.max_ttl = max;
        e.expire_time = if ttl > 0 { now() + ttl } else { 0 };
        // A token that never expires (a root token) has nothing to renew.
        if ttl == 0 {
            e.renewable = false;
        }
        warnings
    }

    /// Serves one `auth/token/` request, already routed to its row with the row's fields
    /// coerced (`routed`); `data` is the raw body, for the few places where an explicit null
    /// means something (OpenBao reads `renewable: null` as false).
    pub(crate) async fn handle_token(
        &self,
        active: &Active,
        op: Operation,
        routed: Routed<'_, TokenRoute>,
        data: &Map<String, Value>,
        caller: &Caller<'_>,
    ) -> Result<CoreResponse> {
        use Operation::*;
        use TokenRoute as T;
        let (route, f) = (routed.route, &routed.fields);
        let tokens = &active.tokens;
        let write = matches!(op, Create | Update);
        let mut resp = match (route, op) {
            (T::Create | T::CreateOrphan, _) if write => {
                self.create_token(active, caller, f, data, None, route == T::CreateOrphan).await?
            }
            (T::CreateWithRole, _) if write => {
                let name = str_field(f, "role_name");
                let role = tokens
                    .role(&name.to_lowercase())
                    .await?
                    .ok_or_else(|| LogicalError::bad_request(format!("unknown role {name}")))?;
                self.create_token(active, caller, f, data, Some(role), false).await?
            }
            (T::LookupSelf, Read | Update | Create) => {
                let ip = self.identity_policies(active, &caller.entry.entity_id).await?;
                CoreResponse::data(caller.entry.lookup_data(caller.token, &ip))
            }
            (T::Lookup, Update | Create | Read) => {
                let t = str_field(f, "token").to_string();
                if t.is_empty() {
                    // As OpenBao: no token given looks up the calling token.
                    let ip = self.identity_policies(active, &caller.entry.entity_id).await?;
                    CoreResponse::data(caller.entry.lookup_data(caller.token, &ip))
                } else {
                    match tokens.lookup(&t).await? {
                        Some(e) => {
                            let ip = self.identity_policies(active, &e.entity_id).await?;
                            CoreResponse::data(e.lookup_data(&t, &ip))
                        }
                        None => return Err(LogicalError::new(coffer_sdk::ErrorKind::PermissionDenied, "bad token")),
                    }
                }
            }
            (T::LookupAccessor, Update | Create) => {
                let a = str_field(f, "accessor");
                match tokens.lookup_accessor(a).await? {
                    Some((_, e)) => {
                        let ip = self.identity_policies(active, &e.entity_id).await?;
                        CoreResponse::data(e.lookup_data("", &ip))
                    }
                    None => return Err(LogicalError::bad_request("invalid accessor")),
                }
            }
            (T::RenewSelf, Update | Create) => {
                self.renew(active, caller.token, caller.entry, f.int("increment"), caller).await?
            }
            (T::Renew, Update | Create) => {
                let t = str_field(f, "token").to_string();
                let Some(e) = tokens.lookup(&t).await? else { return Err(LogicalError::bad_request("invalid token")) };
                self.renew(active, &t, &e, f.int("increment"), caller).await?
            }
            (T::RenewAccessor, Update | Create) => {
                let a = str_field(f, "accessor");
                let Some((h, e)) = tokens.lookup_accessor(a).await? else {
                    return Err(LogicalError::bad_request("invalid accessor"));
                };
                let mut r = self.renew_hash(active, &h, &e, f.int("increment"), caller).await?;
                if let Some(a) = r.auth.as_mut() {
                    a.client_token.clear();
                }
                r
            }
            (T::RevokeSelf, Update | Create) => {
                tokens.revoke(caller.token, true).await?;
                CoreResponse::default()
            }
            (T::Revoke | T::RevokeOrphan, Update | Create) => {
                let t = str_field(f, "token");
                if t.is_empty() {
                    return Err(LogicalError::bad_request("missing token to revoke"));
                }
                // As in OpenBao, orphaning needs root or sudo, checked by the handler (400), not
                // by the router (the path is not root-protected).
                if route == T::RevokeOrphan && !(caller.entry.is_root() || caller.decision.sudo) {
                    return Err(LogicalError::bad_request("root or sudo privileges required to revoke and orphan"));
                }
                // Revoking an unknown token is a no-op, but orphaning its children needs it.
                if route == T::RevokeOrphan && tokens.lookup(t).await?.is_none() {
                    return Err(LogicalError::bad_request("token to revoke not found"));
                }
                tokens.revoke(t, route == T::Revoke).await?;
                CoreResponse::default()
            }
            (T::RevokeAccessor, Update | Create) => {
                let a = str_field(f, "accessor");
                match tokens.lookup_accessor(a).await? {
                    Some((h, _)) => {
                        tokens.revoke_hash(&h, true).await?;
                        CoreResponse::default()
                    }
                    None => {
                        // Already gone: nothing to revoke, as OpenBao answers it.
                        let mut r = CoreResponse::default();
                        r.warnings.push("No token found with this accessor".into());
                        r
                    }
                }
            }
            (T::Accessors, List) => CoreResponse::data(obj(json!({ "keys": tokens.accessors().await? }))),
            (T::Tidy, Update | Create) => {
                let n = tokens.tidy().await?;
                // 202 Accepted, as OpenBao answers its (background) tidy.
                let mut r = CoreResponse { status: coffer_sdk::ResponseStatus::Accepted, ..Default::default() };
                r.warnings.push(format!("Tidy operation successfully started; removed {n} stale entries"));
                r
            }
            (T::Roles, List) => {
                let keys = tokens.roles().await?;
                if keys.is_empty() {
                    return Err(LogicalError::not_found());
                }
                CoreResponse::data(obj(json!({ "keys": keys })))
            }
            (T::Role, _) => {
                // One segment, as the row's pattern says.
                let name = str_field(f, "role_name").to_lowercase();
                match op {
                    Read => match tokens.role(&name).await? {
                        Some(role) => CoreResponse::data(role_json(&role)),
                        None => return Err(LogicalError::not_found()),
                    },
                    Create | Update => {
                        let mut role = tokens.role(&name).await?.unwrap_or(TokenRole {
                            name: name.clone(),
                            renewable: true,
                            ..Default::default()
                        });
                        // The row's fields the request set, coerced; nothing else (OpenBao's
                        // token roles take no token_ttl, token_max_ttl, token_policies, …: they
                        // are named in the ignored-parameters warning and not acted on).
                        let coerced: Map<String, Value> = routed
                            .spec
                            .fields
                            .iter()
                            .filter(|field| f.is_set(field.name))
                            .filter_map(|field| f.get(field.name).map(|v| (field.name.to_string(), v.clone())))
                            .collect();
                        let warnings = update_role(&mut role, &coerced)?;
                        tokens.put_role(&role).await?;
                        CoreResponse { warnings, ..Default::default() }
                    }
                    Delete => {
                        tokens.delete_role(&name).await?;
                        CoreResponse::default()
                    }
                    _ => return Err(LogicalError::unsupported_operation()),
                }
            }
            _ => return Err(LogicalError::unsupported_operation()),
        };
        // As OpenBao's framework: parameters the endpoint does not take are named in a warning
        // (only on an enveloped answer with a body: not on the tidy's 202).
        resp.warn_ignored(&routed.ignored);
        resp.mount_type = "token".into();
        Ok(resp)
    }

    async fn create_token(
        &self,
        active: &Active,
        caller: &Caller<'_>,
        f: &FieldData,
        d: &Map<String, Value>,
        role: Option<TokenRole>,
        orphan_path: bool,
    ) -> Result<CoreResponse> {
        let parent = caller.entry;
        let privileged = parent.is_root() || caller.decision.sudo;
        let mut policies = list_field(f, "policies").map(normalize_policies).unwrap_or_default();
        let no_default = match f.is_set("no_default_policy") {
            true => f.bool("no_default_policy").unwrap_or(false),
            false => role.as_ref().is_some_and(|r| r.token.token_no_default_policy),
        };
        if let Some(r) = &role {
            let allowed = &r.allowed_policies;
            if policies.is_empty() {
                policies = if allowed.is_empty() { parent.policies.clone() } else { allowed.clone() };
            }
            for p in &policies {
                if p == "default" {
                    continue;
                }
                let ok_allowed = (allowed.is_empty() && r.allowed_policies_glob.is_empty())
                    || allowed.contains(p)
                    || r.allowed_policies_glob.iter().any(|g| glob_match(g, p));
                let bad =
                    r.disallowed_policies.contains(p) || r.disallowed_policies_glob.iter().any(|g| glob_match(g, p));
                if !ok_allowed || bad {
                    return Err(LogicalError::bad_request(format!(
                        "token policies ({p}) must be subset of the role's allowed policies"
                    )));
                }
            }
            if allowed.is_empty() && r.allowed_policies_glob.is_empty() && !parent.is_root() {
                for p in &policies {
                    if p != "default" && !parent.policies.contains(p) {
                        return Err(LogicalError::bad_request("child policies must be subset of parent"));
                    }
                }
            }
        } else {
            if policies.is_empty() {
                policies = parent.policies.iter().filter(|p| *p != "root" || parent.is_root()).cloned().collect();
            }
            if !privileged {
                for p in &policies {
                    if p != "default" && !parent.policies.contains(p) {
                        return Err(LogicalError::bad_request("child policies must be subset of parent"));
                    }
                }
            }
        }
        if policies.iter().any(|p| p == "root") && !parent.is_root() {
            return Err(LogicalError::bad_request("root tokens may not be created from non-root tokens"));
        }
        if !no_default && !policies.iter().any(|p| p == "default" || p == "root") {
            policies.push("default".into());
        }
        if no_default {
            policies.retain(|p| p != "default");
        }
        let no_parent = f.bool("no_parent").unwrap_or(false);
        if no_parent && !privileged {
            return Err(LogicalError::bad_request("root or sudo privileges required to create orphan token"));
        }
        let orphan = orphan_path || no_parent || role.as_ref().is_some_and(|r| r.orphan);
        let token_type = match f.str("type") {
            None | Some("") | Some("service") => role
                .as_ref()
                .map(|r| if r.token.token_type == "batch" { "batch" } else { "service" })
                .unwrap_or("service")
                .to_string(),
            Some("batch") => "batch".into(),
            Some(other) => return Err(LogicalError::bad_request(format!("unsupported token type {other:?}"))),
        };
        if token_type == "batch" && policies.iter().any(|p| p == "root") {
            return Err(LogicalError::bad_request("batch tokens cannot be root tokens"));
        }
        let dur = |k: &str| -> Result<i64> {
            match f.int(k) {
                Some(n) if n < 0 => Err(LogicalError::bad_request(format!("{k} must be positive"))),
                Some(n) => Ok(n),
                None => Ok(0),
            }
        };
        // `lease` is the deprecated name of `ttl`, which wins when both are given.
        let mut ttl = if f.is_set("ttl") { dur("ttl")? } else { dur("lease")? };
        let mut explicit_max_ttl = dur("explicit_max_ttl")?;
        let mut period = dur("period")?;
        if let Some(r) = &role {
            if ttl == 0 {
                ttl = r.token.token_ttl;
            }
            if explicit_max_ttl == 0 {
                explicit_max_ttl = r.token.token_explicit_max_ttl;
            }
            if period == 0 {
                period = r.token.token_period;
            }
        } else if period > 0 && !privileged {
            return Err(LogicalError::bad_request("root or sudo privileges required to create periodic token"));
        }
        let num_uses = match f.int("num_uses") {
            Some(n) => n,
            None => role.as_ref().map(|r| r.token.token_num_uses).unwrap_or(0),
        };
        if num_uses < 0 {
            return Err(LogicalError::bad_request("number of uses cannot be negative"));
        }
        let mut renewable = match d.get("renewable") {
            Some(Value::Null) => false, // as OpenBao: an explicit null reads as false
            _ => f.bool("renewable").unwrap_or(true),
        };
        if let Some(r) = &role {
            renewable &= r.renewable;
        }
        if token_type == "batch" {
            if period > 0 || num_uses > 0 {
                return Err(LogicalError::bad_request("batch tokens cannot be periodic or have a use limit"));
            }
            renewable = false;
        }
        let display = str_field(f, "display_name").to_string();
        let display_name = if display.is_empty() {
            "token".to_string()
        } else {
            let cleaned: String = display
                .to_lowercase()
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' })
                .collect();
            format!("token-{cleaned}")
        };
        // Key-value pairs (an object, `k=v` entries as a list or comma-separated text), coerced
        // by the row; values given as text are trimmed, as they always were.
        let trim = matches!(d.get("meta"), Some(Value::String(_)));
        // Blank text is no pair at all (OpenBao refuses it; an empty list or object is none).
        if matches!(d.get("meta"), Some(Value::String(s)) if s.trim().is_empty()) {
            return Err(LogicalError::bad_request(
                "Field validation failed: error converting input for field \"meta\": invalid key pair at index 0 in \
                 field \"meta\"",
            ));
        }
        let meta = f.is_set("meta").then(|| {
            let pairs = f.get("meta").and_then(Value::as_object).cloned().unwrap_or_default();
            if !trim {
                return pairs;
            }
            pairs
                .into_iter()
                .map(|(k, v)| (k, Value::String(v.as_str().unwrap_or_default().trim().to_string())))
                .collect::<Map<String, Value>>()
        });
        let id = f.str("id").filter(|s| !s.is_empty());
        if id.is_some() && !parent.is_root() {
            return Err(LogicalError::bad_request("root or sudo privileges required to specify token id"));
        }
        let path = match &role {
            Some(r) if !r.path_suffix.is_empty() => format!("auth/token/create/{}/{}", r.name, r.path_suffix),
            Some(r) => format!("auth/token/create/{}", r.name),
            None if orphan_path => "auth/token/create-orphan".into(),
            None => "auth/token/create".into(),
        };
        let parent_hash = if orphan { None } else { Some(active.tokens.hash(caller.token)) };
        let mut entry = TokenEntry {
            policies,
            path,
            meta,
            display_name,
            num_uses,
            creation_time: now(),
            explicit_max_ttl,
            period,
            renewable,
            orphan,
            parent: parent_hash,
            entity_id: parent.entity_id.clone(),
            token_type,
            role: role.as_ref().map(|r| r.name.clone()).unwrap_or_default(),
            bound_cidrs: role.as_ref().map(|r| r.token.token_bound_cidrs.clone()).unwrap_or_default(),
            ..Default::default()
        };
        let mut warnings = vec![];
        let mut missing: Vec<&String> = entry
            .policies
            .iter()
            .filter(|p| *p != "default" && *p != "root" && active.policies.get(p).is_none())
            .collect();
        missing.sort();
        for p in missing {
            warnings.push(format!("Policy {p:?} does not exist"));
        }
        // As OpenBao: a token without a TTL of its own gets the default TTL, and is warned
        // when a lower maximum (explicit_max_ttl) caps it.
        let ttl = if ttl == 0 && period == 0 && !entry.is_root() { self.config.default_lease_ttl } else { ttl };
        warnings.extend(self.apply_ttls(&mut entry, ttl, 0));
        // A child never outlives its parent's hard limit.
        if parent.expire_time > 0 && (entry.expire_time == 0 || entry.expire_time > parent.expire_time) && !orphan {
            entry.expire_time = parent.expire_time;
            entry.ttl = (parent.expire_time - now()).max(1);
        }
        let (token, entry) = active.tokens.create(entry, id).await?;
        if entry.token_type != "batch" {
            self.register_token_lease(&active.tokens.hash(&token), &entry).await?;
        }
        let ip = self.identity_policies(active, &entry.entity_id).await?;
        let auth = self.auth_block(&token, &entry, &ip);
        Ok(CoreResponse { auth: Some(auth), warnings, ..Default::default() })
    }

    /// Asks the auth mount whose login issued `e` whether it may be renewed (a cert login's
    /// token only while the renewing client presents a matching certificate, …). Tokens not
    /// issued by a login, or whose mount is gone or replaced, need no one's consent.
    async fn check_login_renewal(&self, active: &Active, e: &TokenEntry, caller: &Caller<'_>) -> Result<()> {
        if !e.path.starts_with("auth/") || e.path.starts_with("auth/token/") {
            return Ok(());
        }
        let router = active.router.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let Some((route, rest)) = router.resolve(&e.path) else { return Ok(()) };
        if route.entry.accessor != e.mount_accessor {
            return Ok(());
        }
        let mut req = self.backend_request(route, rest, Operation::Update, Map::new(), caller.remote_addr);
        req.client_certs = caller.client_certs.clone();
        let login = coffer_sdk::LoginRenewal {
            metadata: e.meta.clone().unwrap_or_default(),
            policies: e.policies.clone(),
            path: rest.to_string(),
            internal_data: e.internal.clone().map(|i| i.0).unwrap_or_default(),
        };
        route.backend.renew_login(&req, &login).await
    }

    async fn renew(
        &self,
        active: &Active,
        token: &str,
        e: &TokenEntry,
        increment: Option<i64>,
        caller: &Caller<'_>,
    ) -> Result<CoreResponse> {
        if e.token_type == "batch" {
            return Err(LogicalError::bad_request("batch tokens cannot be renewed"));
        }
        let h = active.tokens.hash(token);
        let mut r = self.renew_hash(active, &h, e, increment, caller).await?;
        if let Some(a) = r.auth.as_mut() {
            a.client_token = token.to_string();
        }
        Ok(r)
    }

    async fn renew_hash(
        &self,
        active: &Active,
        h: &str,
        e: &TokenEntry,
        increment: Option<i64>,
        caller: &Caller<'_>,
    ) -> Result<CoreResponse> {
        if !e.renewable || e.expire_time == 0 {
            return Err(LogicalError::bad_request("lease is not renewable"));
        }
        self.check_login_renewal(active, e, caller).await?;
        let mut e = e.clone();
        let at = now();
        if e.expire_time > 0 {
            let increment = increment.unwrap_or(0).max(0);
            let mut warnings = vec![];
            if e.period > 0 {
                let ttl = if e.explicit_max_ttl > 0 {
                    e.period.min(e.creation_time + e.explicit_max_ttl - at)
                } else {
                    e.period
                };
                e.expire_time = at + ttl.max(0);
            } else {
                if increment > 0 {
                    e.last_increment = increment;
                }
                let inc = if increment > 0 {
                    increment
                } else if e.last_increment > 0 {
                    e.last_increment
                } else {
                    e.ttl
                };
                let max = if e.max_ttl > 0 { e.max_ttl } else { self.config.max_lease_ttl };
                let max = if e.explicit_max_ttl > 0 { max.min(e.explicit_max_ttl) } else { max };
                let limit = e.creation_time + max;
                let wanted = at + inc;
                if wanted > limit {
                    warnings.push("TTL of the renewed token is capped by its maximum TTL".to_string());
                }
                e.expire_time = wanted.min(limit);
            }
            e.last_renewal_time = at;
            active.tokens.save(h, &e).await?;
            self.touch_token_lease(h, &e).await?;
            let ip = self.identity_policies(active, &e.entity_id).await?;
            return Ok(CoreResponse { auth: Some(self.auth_block("", &e, &ip)), warnings, ..Default::default() });
        }
        let ip = self.identity_policies(active, &e.entity_id).await?;
        Ok(CoreResponse { auth: Some(self.auth_block("", &e, &ip)), ..Default::default() })
    }
}

fn role_json(r: &TokenRole) -> Map<String, Value> {
    // The fields OpenBao's token role read shows: the token_* settings it declares (not
    // token_ttl, token_max_ttl, token_policies, token_num_uses), token_bound_cidrs only when
    // set, and the deprecated explicit_max_ttl/period with their own values.
    let mut m = obj(json!({
        "name": r.name,
        "allowed_policies": r.allowed_policies,
        "disallowed_policies": r.disallowed_policies,
        "allowed_policies_glob": r.allowed_policies_glob,
        "disallowed_policies_glob": r.disallowed_policies_glob,
        "orphan": r.orphan,
        "renewable": r.renewable,
        "path_suffix": r.path_suffix,
        "allowed_entity_aliases": r.allowed_entity_aliases,
        "token_explicit_max_ttl": r.token.token_explicit_max_ttl,
        "token_no_default_policy": r.token.token_no_default_policy,
        "token_period": r.token.token_period,
        "token_type": match r.token.token_type.as_str() {
            "default" | "" => "default-service",
            t => t,
        },
        "explicit_max_ttl": r.legacy_explicit_max_ttl,
        "period": r.legacy_period,
    }));
    if !r.token.token_bound_cidrs.is_empty() {
        m.insert("token_bound_cidrs".into(), json!(r.token.token_bound_cidrs));
        // Given under the deprecated name: shown under it too, as OpenBao does.
        if r.token.legacy_names.iter().any(|n| n == "bound_cidrs") {
            m.insert("bound_cidrs".into(), json!(r.token.token_bound_cidrs));
        }
    }
    if r.token.token_num_uses != 0 {
        m.insert("token_num_uses".into(), json!(r.token.token_num_uses));
    }
    m
}

/// Applies a role write: `d` holds the row's fields the request set, coerced. Returns the
/// warnings of the answer (a deprecated name given with its new one is ignored).
fn update_role(r: &mut TokenRole, d: &Map<String, Value>) -> Result<Vec<String>> {
    let mut warnings = vec![];
    // OpenBao's order.
    for (new, old) in [
        ("token_period", "period"),
        ("token_bound_cidrs", "bound_cidrs"),
        ("token_explicit_max_ttl", "explicit_max_ttl"),
    ] {
        if opt(d, new).is_some() && opt(d, old).is_some() {
            warnings.push(format!("Both '{new}' and deprecated '{old}' value supplied, ignoring the deprecated value"));
        }
    }
    let list = |k: &str| -> Result<Option<Vec<String>>> {
        // Kept sorted, as OpenBao keeps (and shows) them.
        opt(d, k)
            .map(|v| {
                parse_string_slice(k, v).map(|l| {
                    let mut l = normalize_policies(l);
                    l.sort();
                    l
                })
            })
            .transpose()
    };
    if let Some(v) = list("allowed_policies")? {
        r.allowed_policies = v;
    }
    if let Some(v) = list("disallowed_policies")? {
        r.disallowed_policies = v;
    }
    if let Some(v) = list("allowed_policies_glob")? {
        r.allowed_policies_glob = v;
    }
    if let Some(v) = list("disallowed_policies_glob")? {
        r.disallowed_policies_glob = v;
    }
    if let Some(v) = opt(d, "allowed_entity_aliases") {
        r.allowed_entity_aliases = Some(parse_string_slice("allowed_entity_aliases", v)?);
    }
    if let Some(v) = opt(d, "orphan") {
        r.orphan = parse_bool("orphan", v)?;
    }
    if let Some(v) = opt(d, "renewable") {
        r.renewable = parse_bool("renewable", v)?;
    }
    if let Some(v) = opt(d, "path_suffix") {
        let s = parse_string("path_suffix", v)?;
        if s.contains("..") {
            return Err(LogicalError::bad_request("path_suffix must not contain '..'"));
        }
        r.path_suffix = s;
    }
    let mut td = d.clone();
    if let Some(v) = d.get("explicit_max_ttl") {
        td.entry("token_explicit_max_ttl".to_string()).or_insert(v.clone());
    }
    r.token.update_from(&td)?;
    // The deprecated names keep their own value until the new name is given.
    for (old, new, legacy, current) in [
        ("explicit_max_ttl", "token_explicit_max_ttl", &mut r.legacy_explicit_max_ttl, r.token.token_explicit_max_ttl),
        ("period", "token_period", &mut r.legacy_period, r.token.token_period),
    ] {
        if opt(d, new).is_some() {
            *legacy = 0;
        } else if opt(d, old).is_some() {
            *legacy = current;
        }
    }
    Ok(warnings)
}
