//! `identity/oidc/…`: identity tokens (the issuer, named keys, roles, token issue,
//! introspection, discovery) and the OIDC provider (scopes, assignments, clients, providers,
//! and the authorize, token and userinfo endpoints). The keys, JWTs and claim templates are
//! `coffer_identity::oidc`; this is the request handling over them.
//!
//! Key rotation is lazy (decision 0022): every request that reads the keys first rotates those
//! whose `rotation_period` has passed and drops retired versions whose verification time is over.

use crate::system_paths::IdentityRoute;
use crate::token::{now, TokenEntry};
use crate::{Active, BodyShape, Core, CoreResponse, Result};
use coffer_identity::oidc::IdentityFacts;
use coffer_identity::oidc::{
    self, decode_template, half_hash, jwk, render_template, sign_jwt, validate_template, verify_jwt, AccessToken,
    Assignment, AuthCode, Client, Kind, NamedKey, OidcState, Provider, Role, Scope,
};
use coffer_identity::{group_closure, obj};
use coffer_sdk::field::{parse_duration, parse_string, parse_string_slice};
use coffer_sdk::framework::FieldData;
use coffer_sdk::{ErrorKind, LogicalError, Operation, ResponseStatus};
use serde_json::{json, Map, Value};
use zeroize::Zeroizing;

const DAY: i64 = 86400;
/// How long an authorization code may wait for its exchange.
const CODE_TTL: i64 = 300;

fn bad(msg: impl Into<String>) -> LogicalError {
    LogicalError::bad_request(msg)
}

fn data(v: Value) -> CoreResponse {
    CoreResponse::data(obj(v))
}

/// A body served as is (the OIDC documents and OAuth answers), with `kind`'s status when set.
fn raw(v: Value, kind: Option<ErrorKind>) -> CoreResponse {
    let mut r = CoreResponse::data(obj(v));
    r.shape = BodyShape::Raw;
    if let Some(k) = kind {
        r.status = ResponseStatus::Error(k);
    }
    r
}

/// An OAuth error answer (`{"error", "error_description"[, "state"]}`).
fn oauth_err(kind: ErrorKind, error: &str, description: &str, state: Option<&str>) -> CoreResponse {
    let mut v = json!({ "error": error, "error_description": description });
    if let Some(s) = state.filter(|s| !s.is_empty()) {
        v["state"] = s.into();
    }
    raw(v, Some(kind))
}

fn given<'a>(d: &'a Map<String, Value>, k: &str) -> Option<&'a Value> {
    d.get(k).filter(|v| !v.is_null())
}

fn opt_string(d: &Map<String, Value>, k: &str) -> Result<Option<String>> {
    given(d, k).map(|v| parse_string(k, v)).transpose()
}

fn opt_list(d: &Map<String, Value>, k: &str) -> Result<Option<Vec<String>>> {
    given(d, k).map(|v| parse_string_slice(k, v)).transpose()
}

fn opt_duration(d: &Map<String, Value>, k: &str) -> Result<Option<i64>> {
    given(d, k).map(|v| parse_duration(k, v)).transpose()
}

fn keys_list(mut keys: Vec<String>) -> Result<CoreResponse> {
    if keys.is_empty() {
        return Err(LogicalError::not_found());
    }
    keys.sort();
    Ok(data(json!({ "keys": keys })))
}

/// Scheme, host and optional port, nothing else.
fn valid_issuer(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once("://") else { return false };
    if !matches!(scheme, "http" | "https") || rest.is_empty() {
        return false;
    }
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    !rest.contains(['/', '?', '#', '@', ' ']) && !rest.starts_with(':')
}

fn random_id(len: usize) -> Result<String> {
    coffer_crypto::random_base62(len).map_err(|e| LogicalError::internal("random generation failed").with_source(e))
}

fn sha256_hex(s: &str) -> String {
    hex::encode(coffer_crypto::sha256(s.as_bytes()))
}

/// Whether the entity may sign in to a client through its assignments.
fn assigned(st: &OidcState, client: &Client, entity_id: &str, groups: &std::collections::BTreeSet<String>) -> bool {
    client.assignments.iter().filter_map(|a| st.assignments.get(a)).any(|a| {
        a.entity_ids.iter().any(|e| e == "*" || e == entity_id)
            || a.group_ids.iter().any(|g| g == "*" || groups.contains(g))
    })
}

fn key_users(st: &OidcState, key: &str) -> (Vec<String>, Vec<String>) {
    let roles = st.roles.values().filter(|r| r.key == key).map(|r| r.name.clone()).collect();
    let clients = st.clients.values().filter(|c| c.key == key).map(|c| c.name.clone()).collect();
    (roles, clients)
}

impl Core {
    /// The server's address as issuers use it: the configured `api_addr`, else the first
    /// listener's bound address, else OpenBao's default address.
    fn api_base(&self) -> String {
        self.config
            .api_addr
            .clone()
            .filter(|a| !a.is_empty())
            .or_else(|| self.listener_api_addr.get().cloned())
            .unwrap_or_else(|| "http://127.0.0.1:8200".into())
    }

    fn token_issuer(&self, st: &OidcState) -> String {
        let base = if st.issuer.is_empty() { self.api_base() } else { st.issuer.clone() };
        format!("{}/v1/identity/oidc", base.trim_end_matches('/'))
    }

    fn provider_issuer(&self, p: &Provider) -> String {
        let base = if p.issuer.is_empty() { self.api_base() } else { p.issuer.clone() };
        format!("{}/v1/identity/oidc/provider/{}", base.trim_end_matches('/'), p.name)
    }

    /// The `default` key, the `allow_all` assignment and the `default` provider, made on
    /// first use; then every key whose rotation is due is rotated.
    async fn oidc_prepare(&self, active: &Active, st: &mut OidcState) -> Result<()> {
        let store = &active.identity.oidc;
        let t = now();
        if !st.defaults_made {
            if !st.keys.contains_key("default") {
                let mut k = NamedKey::new("default", "RS256", DAY, DAY, t)?;
                k.allowed_client_ids = vec!["*".into()];
                store.put(Kind::Key, "default", &k).await?;
                st.keys.insert("default".into(), k);
            }
            if !st.assignments.contains_key("allow_all") {
                let a =
                    Assignment { name: "allow_all".into(), entity_ids: vec!["*".into()], group_ids: vec!["*".into()] };
                store.put(Kind::Assignment, "allow_all", &a).await?;
                st.assignments.insert("allow_all".into(), a);
            }
            if !st.providers.contains_key("default") {
                let p = Provider {
                    name: "default".into(),
                    issuer: String::new(),
                    allowed_client_ids: vec!["*".into()],
                    scopes_supported: vec![],
                };
                store.put(Kind::Provider, "default", &p).await?;
                st.providers.insert("default".into(), p);
            }
            st.defaults_made = true;
        }
        let due: Vec<String> = st
            .keys
            .values()
            .filter(|k| k.next_rotation <= t || k.retired.iter().any(|r| r.expires_at <= t))
            .map(|k| k.name.clone())
            .collect();
        for name in due {
            let Some(k) = st.keys.get_mut(&name) else { continue };
            if k.next_rotation <= t {
                let ttl = k.verification_ttl;
                k.rotate(ttl, t)?;
            } else {
                k.prune(t);
            }
            let k = k.clone();
            store.put(Kind::Key, &name, &k).await?;
        }
        st.codes.retain(|_, c| c.expires_at > t);
        st.access_tokens.retain(|_, a| a.expires_at > t);
        Ok(())
    }

    /// The JWKS of the keys `used` selects.
    fn jwks(st: &OidcState, used: impl Fn(&NamedKey) -> bool) -> Value {
        let keys: Vec<Value> =
            st.keys.values().filter(|k| used(k)).flat_map(|k| k.versions().map(jwk)).filter(|v| !v.is_null()).collect();
        json!({ "keys": keys })
    }

    async fn entity_facts(&self, active: &Active, entity_id: &str) -> Result<IdentityFacts> {
        active.identity.facts_for(entity_id).await.ok_or_else(|| bad("no entity associated with the request's token"))
    }

    /// A request for an unauthenticated `identity/oidc/…` row (`rest` is below `identity/`).
    pub(crate) async fn handle_identity_open(
        &self,
        active: &Active,
        req: &crate::CoreRequest,
        rest: &str,
    ) -> Result<CoreResponse> {
        let routed = crate::system_paths::identity_paths().route(req.operation, rest, &req.data)?;
        let basic = req.basic_auth.as_ref().map(|b| (b.0.as_str(), b.1.as_str()));
        self.handle_oidc_open(active, routed.route, &routed.fields, &req.data, req.token.as_deref(), basic).await
    }

    /// The unauthenticated `identity/oidc/…` rows (discovery, the provider's token and
    /// userinfo endpoints).
    pub(crate) async fn handle_oidc_open(
        &self,
        active: &Active,
        route: IdentityRoute,
        f: &FieldData,
        d: &Map<String, Value>,
        bearer: Option<&str>,
        basic: Option<(&str, &str)>,
    ) -> Result<CoreResponse> {
        use IdentityRoute as R;
        let mut st = active.identity.oidc.state.lock().await;
        self.oidc_prepare(active, &mut st).await?;
        let name = f.str("name").unwrap_or_default().to_string();
        match route {
            R::OidcWellKnownConfig => {
                let iss = self.token_issuer(&st);
                Ok(raw(
                    json!({
                        "issuer": iss,
                        "jwks_uri": format!("{iss}/.well-known/keys"),
                        "response_types_supported": ["id_token"],
                        "subject_types_supported": ["public"],
                        "id_token_signing_alg_values_supported": oidc::ALGORITHMS,
                    }),
                    None,
                ))
            }
            R::OidcWellKnownKeys => {
                let used: std::collections::BTreeSet<String> = st.roles.values().map(|r| r.key.clone()).collect();
                Ok(raw(Self::jwks(&st, |k| used.contains(&k.name)), None))
            }
            R::ProviderWellKnownConfig => {
                let p = st.providers.get(&name).ok_or_else(|| bad(format!("provider {name:?} not found")))?;
                let iss = self.provider_issuer(p);
                let base = if p.issuer.is_empty() { self.api_base() } else { p.issuer.clone() };
                let mut scopes = p.scopes_supported.clone();
                scopes.push("openid".into());
                Ok(raw(
                    json!({
                        "issuer": iss,
                        "jwks_uri": format!("{iss}/.well-known/keys"),
                        "authorization_endpoint": format!("{}/ui/vault/identity/oidc/provider/{name}/authorize", base.trim_end_matches('/')),
                        "token_endpoint": format!("{iss}/token"),
                        "userinfo_endpoint": format!("{iss}/userinfo"),
                        "request_parameter_supported": false,
                        "request_uri_parameter_supported": false,
                        "id_token_signing_alg_values_supported": oidc::ALGORITHMS,
                        "response_types_supported": ["code"],
                        "scopes_supported": scopes,
                        "claims_supported": [],
                        "subject_types_supported": ["public"],
                        "grant_types_supported": ["authorization_code"],
                        "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
                        "code_challenge_methods_supported": ["plain", "S256"],
                    }),
                    None,
                ))
            }
            R::ProviderWellKnownKeys => {
                let p = st.providers.get(&name).ok_or_else(|| bad(format!("provider {name:?} not found")))?;
                let used: std::collections::BTreeSet<String> = st
                    .clients
                    .values()
                    .filter(|c| p.allowed_client_ids.iter().any(|a| a == "*" || a == &c.client_id))
                    .map(|c| c.key.clone())
                    .collect();
                Ok(raw(Self::jwks(&st, |k| used.contains(&k.name)), None))
            }
            R::ProviderToken => self.provider_token(active, &mut st, &name, d, basic).await,
            R::ProviderUserinfo => {
                let denied = || oauth_err(ErrorKind::Unauthorized, "invalid_token", "permission denied", None);
                let Some(tok) = bearer else { return Ok(denied()) };
                let Some(at) = st.access_tokens.get(&sha256_hex(tok)).cloned() else { return Ok(denied()) };
                if at.provider != name || at.expires_at <= now() {
                    return Ok(denied());
                }
                drop(st);
                let facts = match active.identity.facts_for(&at.entity_id).await {
                    Some(f) => f,
                    None => return Ok(denied()),
                };
                let st = active.identity.oidc.state.lock().await;
                let mut claims = Map::new();
                claims.insert("sub".into(), at.entity_id.clone().into());
                for s in at.scopes.iter().filter_map(|s| st.scopes.get(s)) {
                    if let Ok(m) = render_template(&s.template, &facts, now()) {
                        claims.extend(m);
                    }
                }
                Ok(raw(Value::Object(claims), None))
            }
            _ => Err(LogicalError::unsupported_path("identity/oidc")),
        }
    }

    async fn provider_token(
        &self,
        active: &Active,
        st: &mut OidcState,
        name: &str,
        d: &Map<String, Value>,
        basic: Option<(&str, &str)>,
    ) -> Result<CoreResponse> {
        let s = |k: &str| opt_string(d, k).ok().flatten().unwrap_or_default();
        let Some(p) = st.providers.get(name).cloned() else {
            return Ok(oauth_err(
                ErrorKind::BadRequest,
                "invalid_request",
                &format!("provider {name:?} not found"),
                None,
            ));
        };
        let (client_id, secret) = match basic {
            Some((id, sec)) => (id.to_string(), Zeroizing::new(sec.to_string())),
            None => (s("client_id"), Zeroizing::new(s("client_secret"))),
        };
        if client_id.is_empty() {
            return Ok(oauth_err(ErrorKind::BadRequest, "invalid_request", "client_id parameter is required", None));
        }
        let unauth = || oauth_err(ErrorKind::Unauthorized, "invalid_client", "client failed to authenticate", None);
        let Some(client) = st.clients.values().find(|c| c.client_id == client_id).cloned() else { return Ok(unauth()) };
        if client.client_type == "confidential"
            && !coffer_crypto::ct_eq(client.client_secret.as_bytes(), secret.as_bytes())
        {
            return Ok(unauth());
        }
        if !p.allowed_client_ids.iter().any(|a| a == "*" || a == &client_id) {
            return Ok(oauth_err(
                ErrorKind::BadRequest,
                "invalid_client",
                "client is not authorized to use the provider",
                None,
            ));
        }
        let grant = s("grant_type");
        if grant.is_empty() {
            return Ok(oauth_err(ErrorKind::BadRequest, "invalid_request", "grant_type parameter is required", None));
        }
        if grant != "authorization_code" {
            return Ok(oauth_err(
                ErrorKind::BadRequest,
                "unsupported_grant_type",
                "unsupported grant_type value",
                None,
            ));
        }
        let code = s("code");
        if code.is_empty() {
            return Ok(oauth_err(ErrorKind::BadRequest, "invalid_request", "code parameter is required", None));
        }
        let redirect_uri = s("redirect_uri");
        if redirect_uri.is_empty() {
            return Ok(oauth_err(ErrorKind::BadRequest, "invalid_request", "redirect_uri parameter is required", None));
        }
        let invalid =
            || oauth_err(ErrorKind::BadRequest, "invalid_grant", "authorization grant is invalid or expired", None);
        // A code is spent by any attempt to exchange it.
        let Some(c) = st.codes.remove(&sha256_hex(&code)) else { return Ok(invalid()) };
        if c.expires_at <= now() || c.provider != name || c.client_id != client_id {
            return Ok(invalid());
        }
        if c.redirect_uri != redirect_uri {
            return Ok(oauth_err(
                ErrorKind::BadRequest,
                "invalid_grant",
                "redirect_uri does not match the redirect_uri used in the authorization request",
                None,
            ));
        }
        let verifier = s("code_verifier");
        if c.code_challenge.is_empty() {
            if client.client_type == "public" {
                return Ok(invalid());
            }
            if !verifier.is_empty() {
                return Ok(oauth_err(
                    ErrorKind::BadRequest,
                    "invalid_request",
                    "code_verifier parameter is not allowed without a code_challenge in the authorization request",
                    None,
                ));
            }
        } else {
            if verifier.is_empty() {
                return Ok(oauth_err(
                    ErrorKind::BadRequest,
                    "invalid_request",
                    "code_verifier parameter is required",
                    None,
                ));
            }
            let computed = if c.code_challenge_method == "S256" {
                use base64::Engine;
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(coffer_crypto::sha256(verifier.as_bytes()))
            } else {
                verifier.clone()
            };
            if !coffer_crypto::ct_eq(computed.as_bytes(), c.code_challenge.as_bytes()) {
                return Ok(oauth_err(
                    ErrorKind::BadRequest,
                    "invalid_grant",
                    "invalid code_verifier for token exchange",
                    None,
                ));
            }
        }
        let Some(facts) = active.identity.facts_for(&c.entity_id).await else { return Ok(invalid()) };
        let Some(key) = st.keys.get(&client.key) else {
            return Ok(oauth_err(ErrorKind::BadRequest, "server_error", "the client's key does not exist", None));
        };
        if !key.allows_client(&client_id) {
            return Ok(oauth_err(
                ErrorKind::Unauthorized,
                "invalid_client",
                "client is not authorized to use the key",
                None,
            ));
        }
        let access = format!("hvb.{}", random_id(64)?);
        let t = now();
        let mut claims = Map::new();
        for sc in c.scopes.iter().filter_map(|x| st.scopes.get(x)) {
            if let Ok(m) = render_template(&sc.template, &facts, t) {
                claims.extend(m);
            }
        }
        claims.insert("iss".into(), self.provider_issuer(&p).into());
        claims.insert("sub".into(), c.entity_id.clone().into());
        claims.insert("aud".into(), client_id.clone().into());
        claims.insert("iat".into(), t.into());
        claims.insert("exp".into(), (t + client.id_token_ttl).into());
        claims.insert("auth_time".into(), c.auth_time.into());
        claims.insert("namespace".into(), "root".into());
        if !c.nonce.is_empty() {
            claims.insert("nonce".into(), c.nonce.clone().into());
        }
        claims.insert("at_hash".into(), half_hash(&key.current.alg, &access).into());
        claims.insert("c_hash".into(), half_hash(&key.current.alg, &code).into());
        let id_token = sign_jwt(&key.current, &claims)?;
        st.access_tokens.insert(
            sha256_hex(&access),
            AccessToken {
                provider: name.to_string(),
                client_id,
                entity_id: c.entity_id,
                scopes: c.scopes,
                expires_at: t + client.access_token_ttl,
            },
        );
        Ok(raw(
            json!({ "access_token": access, "expires_in": client.access_token_ttl, "id_token": id_token, "token_type": "Bearer" }),
            None,
        ))
    }

    /// The authenticated `identity/oidc/…` rows.
    pub(crate) async fn handle_oidc(
        &self,
        active: &Active,
        op: Operation,
        route: IdentityRoute,
        f: &FieldData,
        d: &Map<String, Value>,
        caller: Option<&TokenEntry>,
    ) -> Result<CoreResponse> {
        use IdentityRoute as R;
        use Operation::*;
        let store = &active.identity.oidc;
        let mut guard = store.state.lock().await;
        let st = &mut *guard;
        self.oidc_prepare(active, st).await?;
        let name = f.str("name").unwrap_or_default().to_string();
        let t = now();
        match route {
            R::OidcConfig => match op {
                Read => Ok(data(json!({ "issuer": st.issuer }))),
                _ => {
                    let issuer = opt_string(d, "issuer")?.unwrap_or_default();
                    let issuer = issuer.trim_end_matches('/').to_string();
                    if !issuer.is_empty() && !valid_issuer(&issuer) {
                        return Err(bad("invalid issuer, which must include only a scheme, host, and optional port (e.g. https://example.com:8200)"));
                    }
                    store.put_config(&issuer).await?;
                    let set = !issuer.is_empty();
                    st.issuer = issuer;
                    let mut r = CoreResponse::default();
                    if set {
                        r.warnings.push("If \"issuer\" is set explicitly, all tokens must be validated against that address. Setting issuer to \"\" restores the default: the server's api_addr.".into());
                    }
                    Ok(r)
                }
            },
            R::OidcKeys => keys_list(st.keys.keys().cloned().collect()),
            R::OidcKey => match op {
                Read => {
                    let k = st.keys.get(&name).ok_or_else(LogicalError::not_found)?;
                    Ok(data(json!({ "algorithm": k.algorithm, "allowed_client_ids": k.allowed_client_ids,
                                     "rotation_period": k.rotation_period, "verification_ttl": k.verification_ttl })))
                }
                Delete => {
                    if name == "default" {
                        return Err(bad("deletion of key \"default\" not allowed"));
                    }
                    let (roles, clients) = key_users(st, &name);
                    if !roles.is_empty() {
                        return Err(bad(format!(
                            "unable to delete key {name:?} because it is currently referenced by these roles: {}",
                            roles.join(", ")
                        )));
                    }
                    if !clients.is_empty() {
                        return Err(bad(format!(
                            "unable to delete key {name:?} because it is currently referenced by these clients: {}",
                            clients.join(", ")
                        )));
                    }
                    if st.keys.remove(&name).is_some() {
                        store.del(Kind::Key, &name).await?;
                    }
                    Ok(CoreResponse::default())
                }
                _ => {
                    let existing = st.keys.get(&name).cloned();
                    let algorithm = opt_string(d, "algorithm")?
                        .or_else(|| existing.as_ref().map(|k| k.algorithm.clone()))
                        .unwrap_or_else(|| "RS256".into());
                    if !oidc::ALGORITHMS.contains(&algorithm.as_str()) {
                        return Err(bad(format!("unknown signing algorithm {algorithm:?}")));
                    }
                    let rotation = opt_duration(d, "rotation_period")?
                        .or(existing.as_ref().map(|k| k.rotation_period))
                        .unwrap_or(DAY);
                    let vttl = opt_duration(d, "verification_ttl")?
                        .or(existing.as_ref().map(|k| k.verification_ttl))
                        .unwrap_or(DAY);
                    if rotation < 60 {
                        return Err(bad("rotation_period must be at least one minute"));
                    }
                    if vttl > 10 * rotation {
                        return Err(bad("verification_ttl cannot be longer than 10x rotation_period"));
                    }
                    let allowed = opt_list(d, "allowed_client_ids")?;
                    let (roles, _) = key_users(st, &name);
                    if let Some(r) = roles.iter().filter_map(|r| st.roles.get(r)).find(|r| r.ttl > vttl) {
                        return Err(bad(format!("unable to update key {name:?} because it is currently referenced by role {:?} whose ttl is longer than the verification_ttl", r.name)));
                    }
                    let mut k = match existing {
                        Some(mut k) => {
                            if k.algorithm != algorithm {
                                k.change_algorithm(&algorithm, t)?;
                            }
                            if k.rotation_period != rotation {
                                k.next_rotation = t + rotation;
                            }
                            k
                        }
                        None => NamedKey::new(&name, &algorithm, rotation, vttl, t)?,
                    };
                    k.rotation_period = rotation;
                    k.verification_ttl = vttl;
                    if let Some(a) = allowed {
                        k.allowed_client_ids = a;
                    }
                    store.put(Kind::Key, &name, &k).await?;
                    st.keys.insert(name, k);
                    Ok(CoreResponse::default())
                }
            },
            R::OidcKeyRotate => {
                let vttl = opt_duration(d, "verification_ttl")?;
                let k = st.keys.get_mut(&name).ok_or_else(|| bad(format!("no named key found at {name:?}")))?;
                let ttl = vttl.unwrap_or(k.verification_ttl);
                k.rotate(ttl, t)?;
                let k = k.clone();
                store.put(Kind::Key, &name, &k).await?;
                Ok(CoreResponse::default())
            }
            R::OidcRoles => keys_list(st.roles.keys().cloned().collect()),
            R::OidcRole => match op {
                Read => {
                    let r = st.roles.get(&name).ok_or_else(LogicalError::not_found)?;
                    Ok(data(json!({ "client_id": r.client_id, "key": r.key, "template": r.template, "ttl": r.ttl })))
                }
                Delete => {
                    if st.roles.remove(&name).is_some() {
                        store.del(Kind::Role, &name).await?;
                    }
                    Ok(CoreResponse::default())
                }
                _ => {
                    let existing = st.roles.get(&name).cloned();
                    let key =
                        opt_string(d, "key")?.filter(|k| !k.is_empty()).or(existing.as_ref().map(|r| r.key.clone()));
                    let Some(key) = key else { return Err(bad("the key parameter is required")) };
                    let Some(nk) = st.keys.get(&key) else { return Err(bad(format!("cannot find key {key:?}"))) };
                    let template = match opt_string(d, "template")? {
                        Some(t) => decode_template(&t),
                        None => existing.as_ref().map(|r| r.template.clone()).unwrap_or_default(),
                    };
                    validate_template(&template).map_err(|e| bad(e.to_string()))?;
                    let ttl = opt_duration(d, "ttl")?.or(existing.as_ref().map(|r| r.ttl)).unwrap_or(DAY);
                    if ttl > nk.verification_ttl {
                        return Err(bad(
                            "a role's token ttl cannot be longer than the verification_ttl of the key it references",
                        ));
                    }
                    let client_id = match opt_string(d, "client_id")?.filter(|c| !c.is_empty()) {
                        Some(c) => c,
                        None => match &existing {
                            Some(r) => r.client_id.clone(),
                            None => random_id(26)?,
                        },
                    };
                    let r = Role { name: name.clone(), key, template, ttl, client_id };
                    store.put(Kind::Role, &name, &r).await?;
                    st.roles.insert(name, r);
                    Ok(CoreResponse::default())
                }
            },
            R::OidcToken => {
                let r = st.roles.get(&name).cloned().ok_or_else(|| bad(format!("role {name:?} not found")))?;
                let entity_id = caller.map(|c| c.entity_id.clone()).unwrap_or_default();
                if entity_id.is_empty() {
                    return Err(bad("no entity associated with the request's token"));
                }
                let k = st.keys.get(&r.key).ok_or_else(|| bad(format!("no key named {:?} found", r.key)))?;
                if !k.allows_client(&r.client_id) {
                    return Err(bad(format!(
                        "the key {:?} does not list the client ID of the role {name:?} as an allowed client ID",
                        r.key
                    )));
                }
                let signer = k.current.clone();
                let iss = self.token_issuer(st);
                drop(guard);
                let facts = self.entity_facts(active, &entity_id).await?;
                let mut claims = render_template(&r.template, &facts, t).map_err(|e| bad(e.to_string()))?;
                claims.insert("aud".into(), r.client_id.clone().into());
                claims.insert("exp".into(), (t + r.ttl).into());
                claims.insert("iat".into(), t.into());
                claims.insert("iss".into(), iss.into());
                claims.insert("namespace".into(), "root".into());
                claims.insert("sub".into(), entity_id.into());
                let token = sign_jwt(&signer, &claims)?;
                Ok(data(json!({ "client_id": r.client_id, "token": token, "ttl": r.ttl })))
            }
            R::OidcIntrospect => {
                let token = opt_string(d, "token")?.unwrap_or_default();
                if token.trim().is_empty() {
                    return Err(bad("missing token to introspect"));
                }
                let client_id = opt_string(d, "client_id")?.filter(|c| !c.is_empty());
                match verify_jwt(&token, st.keys.values().flat_map(NamedKey::versions), client_id.as_deref(), t) {
                    Ok(_) => Ok(raw(json!({ "active": true }), None)),
                    Err(e) => Ok(raw(json!({ "active": false, "error": e.to_string() }), None)),
                }
            }
            R::OidcScopes => keys_list(st.scopes.keys().cloned().collect()),
            R::OidcScope => {
                match op {
                    Read => {
                        let s = st.scopes.get(&name).ok_or_else(LogicalError::not_found)?;
                        Ok(data(json!({ "description": s.description, "template": s.template })))
                    }
                    Delete => {
                        let users: Vec<String> = st
                            .providers
                            .values()
                            .filter(|p| p.scopes_supported.contains(&name))
                            .map(|p| p.name.clone())
                            .collect();
                        if !users.is_empty() {
                            return Err(bad(format!("unable to delete scope {name:?} because it is currently referenced by these providers: {}", users.join(", "))));
                        }
                        if st.scopes.remove(&name).is_some() {
                            store.del(Kind::Scope, &name).await?;
                        }
                        Ok(CoreResponse::default())
                    }
                    _ => {
                        if name == "openid" {
                            return Err(bad("the \"openid\" scope name is reserved"));
                        }
                        let existing = st.scopes.get(&name).cloned();
                        let template = match opt_string(d, "template")? {
                            Some(t) => decode_template(&t),
                            None => existing.as_ref().map(|s| s.template.clone()).unwrap_or_default(),
                        };
                        validate_template(&template).map_err(|e| bad(e.to_string()))?;
                        let description =
                            opt_string(d, "description")?.or(existing.map(|s| s.description)).unwrap_or_default();
                        let s = Scope { name: name.clone(), template, description };
                        store.put(Kind::Scope, &name, &s).await?;
                        st.scopes.insert(name, s);
                        Ok(CoreResponse::default())
                    }
                }
            }
            R::OidcAssignments => keys_list(st.assignments.keys().cloned().collect()),
            R::OidcAssignment => match op {
                Read => {
                    let a = st.assignments.get(&name).ok_or_else(LogicalError::not_found)?;
                    Ok(data(json!({ "entity_ids": a.entity_ids, "group_ids": a.group_ids })))
                }
                Delete => {
                    if name == "allow_all" {
                        return Err(bad("deletion of assignment \"allow_all\" not allowed"));
                    }
                    let users: Vec<String> =
                        st.clients.values().filter(|c| c.assignments.contains(&name)).map(|c| c.name.clone()).collect();
                    if !users.is_empty() {
                        return Err(bad(format!("unable to delete assignment {name:?} because it is currently referenced by these clients: {}", users.join(", "))));
                    }
                    if st.assignments.remove(&name).is_some() {
                        store.del(Kind::Assignment, &name).await?;
                    }
                    Ok(CoreResponse::default())
                }
                _ => {
                    if name == "allow_all" {
                        return Err(bad("modification of assignment \"allow_all\" not allowed"));
                    }
                    let existing = st.assignments.get(&name).cloned();
                    let entity_ids = opt_list(d, "entity_ids")?
                        .or(existing.as_ref().map(|a| a.entity_ids.clone()))
                        .unwrap_or_default();
                    let group_ids = opt_list(d, "group_ids")?.or(existing.map(|a| a.group_ids)).unwrap_or_default();
                    {
                        let ids = active.identity.state.read().await;
                        if let Some(e) = entity_ids.iter().find(|e| !ids.entities.contains_key(*e)) {
                            return Err(bad(format!("entity {e:?} does not exist")));
                        }
                        if let Some(g) = group_ids.iter().find(|g| !ids.groups.contains_key(*g)) {
                            return Err(bad(format!("group {g:?} does not exist")));
                        }
                    }
                    let a = Assignment { name: name.clone(), entity_ids, group_ids };
                    store.put(Kind::Assignment, &name, &a).await?;
                    st.assignments.insert(name, a);
                    Ok(CoreResponse::default())
                }
            },
            R::OidcClients => keys_list(st.clients.keys().cloned().collect()),
            R::OidcClient => match op {
                Read => {
                    let c = st.clients.get(&name).ok_or_else(LogicalError::not_found)?;
                    let mut v = json!({ "access_token_ttl": c.access_token_ttl, "assignments": c.assignments,
                        "client_id": c.client_id, "client_type": c.client_type, "id_token_ttl": c.id_token_ttl,
                        "key": c.key, "redirect_uris": c.redirect_uris });
                    if c.client_type == "confidential" {
                        v["client_secret"] = c.client_secret.as_str().into();
                    }
                    Ok(data(v))
                }
                Delete => {
                    if let Some(c) = st.clients.remove(&name) {
                        store.del(Kind::Client, &name).await?;
                        st.access_tokens.retain(|_, a| a.client_id != c.client_id);
                        st.codes.retain(|_, x| x.client_id != c.client_id);
                    }
                    Ok(CoreResponse::default())
                }
                _ => {
                    let existing = st.clients.get(&name).cloned();
                    let key = opt_string(d, "key")?.filter(|k| !k.is_empty());
                    if let (Some(e), Some(k)) = (&existing, &key) {
                        if &e.key != k {
                            return Err(bad("key modification is not allowed"));
                        }
                    }
                    let key = key.or(existing.as_ref().map(|c| c.key.clone())).unwrap_or_else(|| "default".into());
                    let Some(nk) = st.keys.get(&key) else { return Err(bad(format!("key {key:?} does not exist"))) };
                    let client_type = opt_string(d, "client_type")?.filter(|c| !c.is_empty());
                    if let (Some(e), Some(ct)) = (&existing, &client_type) {
                        if &e.client_type != ct {
                            return Err(bad("client_type modification is not allowed"));
                        }
                    }
                    let client_type = client_type
                        .or(existing.as_ref().map(|c| c.client_type.clone()))
                        .unwrap_or_else(|| "confidential".into());
                    if !matches!(client_type.as_str(), "confidential" | "public") {
                        return Err(bad(format!(
                            "invalid client_type {client_type:?}: must be confidential or public"
                        )));
                    }
                    let assignments = opt_list(d, "assignments")?
                        .or(existing.as_ref().map(|c| c.assignments.clone()))
                        .unwrap_or_default();
                    if let Some(a) = assignments.iter().find(|a| !st.assignments.contains_key(*a)) {
                        return Err(bad(format!("assignment {a:?} does not exist")));
                    }
                    let redirect_uris = opt_list(d, "redirect_uris")?
                        .or(existing.as_ref().map(|c| c.redirect_uris.clone()))
                        .unwrap_or_default();
                    let id_ttl =
                        opt_duration(d, "id_token_ttl")?.or(existing.as_ref().map(|c| c.id_token_ttl)).unwrap_or(DAY);
                    let at_ttl = opt_duration(d, "access_token_ttl")?
                        .or(existing.as_ref().map(|c| c.access_token_ttl))
                        .unwrap_or(DAY);
                    if id_ttl > nk.verification_ttl {
                        return Err(bad("a client's id_token_ttl cannot be greater than the verification_ttl of the key it references"));
                    }
                    for flag in ["client_credentials"] {
                        if given(d, flag).is_some_and(|v| v == &json!(true) || v == &json!("true")) {
                            return Err(bad(format!(
                                "{flag}: Coffer's provider supports the authorization code flow only"
                            )));
                        }
                    }
                    let (client_id, client_secret) = match &existing {
                        Some(c) => (c.client_id.clone(), c.client_secret.clone()),
                        None => (
                            random_id(32)?,
                            Zeroizing::new(if client_type == "confidential" {
                                format!("hvo_secret_{}", random_id(64)?)
                            } else {
                                String::new()
                            }),
                        ),
                    };
                    let c = Client {
                        name: name.clone(),
                        client_id,
                        client_secret,
                        client_type,
                        redirect_uris,
                        assignments,
                        key,
                        id_token_ttl: id_ttl,
                        access_token_ttl: at_ttl,
                    };
                    store.put(Kind::Client, &name, &c).await?;
                    st.clients.insert(name, c);
                    Ok(CoreResponse::default())
                }
            },
            R::OidcProviders => {
                let filter = opt_string(d, "allowed_client_id")?.filter(|c| !c.is_empty());
                let mut keys = Vec::new();
                let mut info = Map::new();
                for p in st.providers.values() {
                    if let Some(c) = &filter {
                        if !p.allowed_client_ids.iter().any(|a| a == "*" || a == c) {
                            continue;
                        }
                    }
                    keys.push(p.name.clone());
                    info.insert(
                        p.name.clone(),
                        json!({ "allowed_client_ids": p.allowed_client_ids, "issuer": self.provider_issuer(p),
                                "scopes_supported": p.scopes_supported }),
                    );
                }
                if keys.is_empty() {
                    return Err(LogicalError::not_found());
                }
                Ok(data(json!({ "keys": keys, "key_info": info })))
            }
            R::OidcProvider => match op {
                Read => {
                    let p = st.providers.get(&name).ok_or_else(LogicalError::not_found)?;
                    Ok(data(json!({ "allowed_client_ids": p.allowed_client_ids, "issuer": self.provider_issuer(p),
                                     "scopes_supported": p.scopes_supported })))
                }
                Delete => {
                    if name == "default" {
                        return Err(bad("deletion of OIDC provider \"default\" not allowed"));
                    }
                    if st.providers.remove(&name).is_some() {
                        store.del(Kind::Provider, &name).await?;
                    }
                    Ok(CoreResponse::default())
                }
                _ => {
                    let existing = st.providers.get(&name).cloned();
                    let issuer = match opt_string(d, "issuer")? {
                        Some(i) => i.trim_end_matches('/').to_string(),
                        None => existing.as_ref().map(|p| p.issuer.clone()).unwrap_or_default(),
                    };
                    if !issuer.is_empty() && !valid_issuer(&issuer) {
                        return Err(bad("invalid issuer, which must include only a scheme, host, and optional port (e.g. https://example.com:8200)"));
                    }
                    let allowed = opt_list(d, "allowed_client_ids")?
                        .or(existing.as_ref().map(|p| p.allowed_client_ids.clone()))
                        .unwrap_or_default();
                    let scopes =
                        opt_list(d, "scopes_supported")?.or(existing.map(|p| p.scopes_supported)).unwrap_or_default();
                    if let Some(s) = scopes.iter().find(|s| !st.scopes.contains_key(*s)) {
                        return Err(bad(format!("scope {s:?} does not exist")));
                    }
                    let p =
                        Provider { name: name.clone(), issuer, allowed_client_ids: allowed, scopes_supported: scopes };
                    store.put(Kind::Provider, &name, &p).await?;
                    st.providers.insert(name, p);
                    Ok(CoreResponse::default())
                }
            },
            R::ProviderAuthorize => {
                let s = |k: &str| opt_string(d, k).ok().flatten().unwrap_or_default();
                let state = s("state");
                let st_ref = Some(state.as_str());
                let err = |e: &str, m: &str| Ok(oauth_err(ErrorKind::BadRequest, e, m, st_ref));
                let Some(p) = st.providers.get(&name).cloned() else {
                    return err("invalid_request", &format!("provider {name:?} not found"));
                };
                let client_id = s("client_id");
                if client_id.is_empty() {
                    return err("invalid_request", "client_id parameter is required");
                }
                let Some(client) = st.clients.values().find(|c| c.client_id == client_id).cloned() else {
                    return err("invalid_client_id", "client with client_id not found");
                };
                if !p.allowed_client_ids.iter().any(|a| a == "*" || a == &client_id) {
                    return err("unauthorized_client", "client is not authorized to use the provider");
                }
                let redirect_uri = s("redirect_uri");
                if redirect_uri.is_empty() {
                    return err("invalid_request", "redirect_uri parameter is required");
                }
                if !client.redirect_uris.contains(&redirect_uri) {
                    return err("invalid_redirect_uri", "redirect_uri is not allowed for the client");
                }
                let scopes: Vec<String> = s("scope").split_whitespace().map(str::to_string).collect();
                if !scopes.iter().any(|x| x == "openid") {
                    return err("invalid_request", "scope parameter must contain the \"openid\" value");
                }
                let response_type = s("response_type");
                if response_type.is_empty() {
                    return err("invalid_request", "response_type parameter is required");
                }
                if response_type != "code" {
                    return err("unsupported_response_type", "unsupported response_type value");
                }
                if given(d, "request").is_some() {
                    return err("request_not_supported", "request parameter is not supported");
                }
                if given(d, "request_uri").is_some() {
                    return err("request_uri_not_supported", "request_uri parameter is not supported");
                }
                let entity_id = caller.map(|c| c.entity_id.clone()).unwrap_or_default();
                if entity_id.is_empty() {
                    return err("access_denied", "identity entity must be associated with the request");
                }
                let groups = {
                    let ids = active.identity.state.read().await;
                    if ids.entity(&entity_id).is_none_or(|e| e.disabled) {
                        return err("access_denied", "identity entity not found or disabled");
                    }
                    group_closure(&ids, &entity_id)
                };
                if !assigned(st, &client, &entity_id, &groups) {
                    return err("access_denied", "identity entity not authorized by client assignment");
                }
                let auth_time = caller.map(|c| c.creation_time).unwrap_or(t);
                if let Some(max_age) = given(d, "max_age") {
                    let max_age = coffer_sdk::field::parse_int("max_age", max_age)?;
                    if max_age < 0 {
                        return err("invalid_request", "max_age must not be negative");
                    }
                    if t - auth_time > max_age {
                        return err("login_required", "the token is older than max_age; log in again");
                    }
                }
                let challenge = s("code_challenge");
                let method =
                    opt_string(d, "code_challenge_method")?.filter(|m| !m.is_empty()).unwrap_or_else(|| "plain".into());
                if !challenge.is_empty() {
                    if !matches!(method.as_str(), "S256" | "plain") {
                        return err("invalid_request", "invalid code_challenge_method");
                    }
                    if !(43..=128).contains(&challenge.len()) {
                        return err("invalid_request", "invalid code_challenge");
                    }
                } else if client.client_type == "public" {
                    return err("invalid_request", "PKCE is required for public clients");
                }
                let code = random_id(32)?;
                st.codes.insert(
                    sha256_hex(&code),
                    AuthCode {
                        provider: name,
                        client_id,
                        entity_id,
                        redirect_uri,
                        scopes: scopes
                            .into_iter()
                            .filter(|x| x != "openid" && p.scopes_supported.contains(x))
                            .collect(),
                        nonce: s("nonce"),
                        code_challenge: challenge,
                        code_challenge_method: method,
                        auth_time,
                        expires_at: t + CODE_TTL,
                    },
                );
                Ok(raw(json!({ "code": code, "state": state }), None))
            }
            R::OidcWellKnownConfig
            | R::OidcWellKnownKeys
            | R::ProviderWellKnownConfig
            | R::ProviderWellKnownKeys
            | R::ProviderToken
            | R::ProviderUserinfo => {
                drop(guard);
                self.handle_oidc_open(active, route, f, d, None, None).await
            }
            _ => Err(LogicalError::unsupported_path("identity/oidc")),
        }
    }
}
