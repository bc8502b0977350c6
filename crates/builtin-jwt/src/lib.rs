#![forbid(unsafe_code)]
//! The JWT/OIDC auth method (mounted as `jwt` or `oidc`, one backend).
//!
//! - **JWT login** (`login`): a signed JWT is verified with the mount's keys — PEM public keys
//!   (`jwt_validation_pubkeys`), a JWKS URL, or the JWKS of an OIDC discovery document — then
//!   its issuer, times (with the role's leeways), subject, audience and bound claims are
//!   checked, and the token gets the role's settings, an entity alias named by `user_claim`,
//!   group aliases from `groups_claim` and metadata from `claim_mappings`.
//! - **OIDC** (`oidc/auth_url`, `oidc/callback`): the authorization code flow with state, nonce
//!   and PKCE (S256); the ID token the provider returns is checked as above, and also for its
//!   nonce and the client ID as audience.
//!
//! Signature verification is jsonwebtoken's (aws-lc-rs). Only asymmetric algorithms are taken:
//! RS256/384/512, PS256/384/512, ES256/384, EdDSA; `alg: none` and HS* are refused with 400.
//!
//! Storage (the mount's own view), JSON: `config` → [`Config`] (the client secret included,
//! never returned), `role/<name>` → [`role::Role`]. Pending OIDC logins (state → nonce, PKCE
//! verifier, redirect URI) and fetched key sets live in memory only: a pending login expires
//! after 10 minutes or when the server restarts.

mod claims;
mod keys;
mod role;

use async_trait::async_trait;
use base64::Engine as _;
use coffer_sdk::field::FieldType;
use coffer_sdk::framework::{FieldData, FieldSpec, Handler, PathFlags, PathSpec, Paths};
use coffer_sdk::tokenutil::addr_in_cidrs;
use coffer_sdk::{LogicalError, Operation, Request, Response, Result};
use keys::{CachedKeys, Discovery};
use role::Role;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sha2::Digest as _;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A role name as OpenBao accepts it: word characters, with `-` and `.` inside.
const NAME: &str = r"[A-Za-z0-9_](?:[A-Za-z0-9_.\-]*[A-Za-z0-9_])?";
/// How long an OIDC login may take between `auth_url` and `callback`.
const STATE_TTL: Duration = Duration::from_secs(600);
/// At most this many OIDC logins may be pending at once per mount (they are unauthenticated).
const MAX_PENDING: usize = 10_000;

const NO_KEY: &str =
    "error validating token: error verifying token signature: no known key successfully validated the token signature";

/// The paths of the method, one variant per row of [`build_specs`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Config,
    RoleList,
    Role,
    Login,
    AuthUrl,
    Callback,
}

/// The mount's configuration.
#[derive(Clone, Serialize, Deserialize, Default)]
pub struct Config {
    #[serde(default)]
    oidc_discovery_url: String,
    #[serde(default)]
    oidc_discovery_ca_pem: String,
    #[serde(default)]
    oidc_client_id: String,
    #[serde(default)]
    oidc_client_secret: String,
    #[serde(default)]
    oidc_response_mode: String,
    #[serde(default)]
    oidc_response_types: Vec<String>,
    #[serde(default)]
    jwks_url: String,
    #[serde(default)]
    jwks_ca_pem: String,
    #[serde(default)]
    jwt_validation_pubkeys: Vec<String>,
    #[serde(default)]
    jwt_supported_algs: Vec<String>,
    #[serde(default)]
    bound_issuer: String,
    #[serde(default)]
    default_role: String,
    #[serde(default = "yes")]
    namespace_in_state: bool,
}

fn yes() -> bool {
    true
}

/// A login between `oidc/auth_url` and `oidc/callback`.
struct Pending {
    role: String,
    redirect_uri: String,
    nonce: String,
    code_verifier: String,
    client_nonce: String,
    created: Instant,
}

/// Serve it wrapped in [`coffer_sdk::framework::Backend`].
pub struct Jwt {
    kind: &'static str,
    paths: Paths<Route>,
    keys: Mutex<Option<CachedKeys>>,
    pem_keys: Mutex<Option<Arc<keys::PemKeys>>>,
    discovery: Mutex<Option<(String, Instant, Discovery)>>,
    pending: Mutex<HashMap<String, Pending>>,
}

impl Default for Jwt {
    fn default() -> Self {
        Self::with_type("jwt")
    }
}

fn bad(m: impl Into<String>) -> LogicalError {
    LogicalError::bad_request(m)
}

fn build_specs() -> Vec<(Route, PathSpec)> {
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let s = |n: &'static str, d: &'static str| FieldSpec::new(n, FieldType::String, d);
    let l = |n: &'static str, d: &'static str| FieldSpec::new(n, FieldType::CommaStringSlice, d);
    vec![
        (
            Route::Config,
            PathSpec {
                flags: PathFlags::NORMAL,
                pattern: "config",
                fields: vec![
                    s("oidc_discovery_url", "OIDC discovery URL (its JWKS verifies tokens; enables the OIDC flow)"),
                    s("oidc_discovery_ca_pem", "CA certificates (PEM) trusted for the discovery URL"),
                    s("oidc_client_id", "The OAuth2 client ID for the OIDC flow"),
                    s("oidc_client_secret", "The OAuth2 client secret (never returned)"),
                    s("oidc_response_mode", "query (the only mode Coffer serves)"),
                    l("oidc_response_types", "code (the only type Coffer serves)"),
                    s("jwks_url", "JWKS URL whose keys verify tokens"),
                    s("jwks_ca_pem", "CA certificates (PEM) trusted for the JWKS URL"),
                    l("jwt_validation_pubkeys", "PEM public keys that verify tokens"),
                    l("jwt_supported_algs", "Accepted signing algorithms (default: all asymmetric ones)"),
                    s("bound_issuer", "The iss a token must carry"),
                    s("default_role", "The role used when a login names none"),
                    FieldSpec::new("namespace_in_state", FieldType::Bool, "Kept for compatibility (one namespace)"),
                    FieldSpec::new("provider_config", FieldType::Map, "Not supported (empty only)"),
                    l("override_allowed_server_names", "Not supported (empty only)"),
                ],
                operations: vec![
                    (Operation::Read, "Read the configuration"),
                    (Operation::Create, "Configure the method"),
                    (Operation::Update, "Configure the method"),
                ],
                passthrough: false,
                synopsis: "Configure the JWT/OIDC method",
                description: "Where keys come from (exactly one of jwt_validation_pubkeys, jwks_url, \
                              oidc_discovery_url), the OIDC client, the bound issuer and the default role.",
            },
        ),
        (
            Route::RoleList,
            PathSpec {
                flags: PathFlags::NORMAL,
                pattern: "role/?",
                fields: vec![],
                operations: vec![(Operation::List, "List the roles")],
                passthrough: false,
                synopsis: "List roles",
                description: "Lists the names of the roles of this mount.",
            },
        ),
        (
            Route::Role,
            PathSpec {
                flags: PathFlags::NORMAL,
                pattern: leak(format!("role/(?P<name>{NAME})")),
                fields: role::role_fields(),
                operations: vec![
                    (Operation::Create, "Create the role"),
                    (Operation::Update, "Update the role"),
                    (Operation::Read, "Read the role"),
                    (Operation::Delete, "Delete the role"),
                ],
                passthrough: false,
                synopsis: "Manage a role",
                description: "What a token must show (audiences, subject, bound claims) and what a login gets.",
            },
        ),
        (
            Route::Login,
            PathSpec {
                flags: PathFlags::NORMAL.unauthenticated(),
                pattern: "login",
                fields: vec![s("role", "The role to log in with (default: default_role)"), s("jwt", "The signed JWT")],
                operations: vec![(Operation::Update, "Log in with a JWT")],
                passthrough: false,
                synopsis: "Log in with a JWT",
                description: "Verifies the JWT against the mount's keys and the role's bounds and returns a token.",
            },
        ),
        (
            Route::AuthUrl,
            PathSpec {
                flags: PathFlags::NORMAL.unauthenticated(),
                pattern: "oidc/auth_url",
                fields: vec![
                    s("role", "The OIDC role (default: default_role)"),
                    s(
                        "redirect_uri",
                        "Where the provider sends the browser back (one of the role's allowed_redirect_uris)",
                    ),
                    s("client_nonce", "A value the client repeats at the callback"),
                ],
                operations: vec![(Operation::Update, "Start an OIDC login")],
                passthrough: false,
                synopsis: "Start an OIDC login",
                description: "Returns the provider's authorization URL with a fresh state, nonce and PKCE challenge.",
            },
        ),
        (
            Route::Callback,
            PathSpec {
                flags: PathFlags::NORMAL.unauthenticated(),
                pattern: "oidc/callback",
                fields: vec![
                    s("state", "The state of the login"),
                    s("code", "The authorization code"),
                    s("id_token", "Not supported (form_post response mode)"),
                    s("client_nonce", "The client nonce given to auth_url"),
                    s("error", "An error the provider reported"),
                    s("error_description", "The provider's description of its error"),
                ],
                operations: vec![
                    (Operation::Read, "Finish an OIDC login"),
                    (Operation::Update, "Finish an OIDC login"),
                ],
                passthrough: false,
                synopsis: "Finish an OIDC login",
                description: "Exchanges the code (with the PKCE verifier), verifies the ID token and returns a token.",
            },
        ),
    ]
}

fn specs_static() -> &'static [(Route, PathSpec)] {
    static P: OnceLock<Vec<(Route, PathSpec)>> = OnceLock::new();
    P.get_or_init(build_specs)
}

fn now_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

fn random_text(bytes: usize) -> Result<String> {
    let mut b = vec![0u8; bytes];
    getrandom::fill(&mut b).map_err(|e| LogicalError::internal("random generator failed").with_source(e))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b))
}

async fn load<T: serde::de::DeserializeOwned>(req: &Request, key: &str) -> Result<Option<T>> {
    match req.storage.get(key).await? {
        None => Ok(None),
        Some(raw) => serde_json::from_slice(&raw)
            .map(Some)
            // drop-cause: the entries hold the client secret, which a JSON error could quote.
            .map_err(|_| LogicalError::internal(format!("stored {key} is malformed"))),
    }
}

async fn save<T: Serialize>(req: &Request, key: &str, v: &T) -> Result<()> {
    let bytes = serde_json::to_vec(v).map_err(|e| LogicalError::internal(e.to_string()))?;
    req.storage.put(key, &bytes).await
}

/// The header's `alg`, refused with a clear message when it is `none` or a shared-secret one.
fn token_alg(jwt: &str, supported: &[String]) -> Result<(jsonwebtoken::Algorithm, Option<String>)> {
    let parts: Vec<&str> = jwt.trim().split('.').collect();
    if parts.len() != 3 {
        return Err(bad("error validating token: a JWT has three dot-separated parts (compact serialization)"));
    }
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[0].trim_end_matches('='))
        .ok()
        .and_then(|h| serde_json::from_slice::<Map<String, Value>>(&h).ok())
        .ok_or_else(|| bad("error validating token: the JWT header is not base64url-encoded JSON"))?;
    let alg = header.get("alg").and_then(Value::as_str).unwrap_or_default();
    if alg.eq_ignore_ascii_case("none") || alg.is_empty() {
        return Err(bad("error validating token: unsigned tokens (alg \"none\") are never accepted"));
    }
    if alg.starts_with("HS") {
        return Err(bad(format!(
            "error validating token: signing algorithm {alg} uses a shared secret and is not accepted; \
             tokens must be signed with a private key (RS*, PS*, ES*, EdDSA)"
        )));
    }
    let Some(parsed) = keys::parse_alg(alg) else {
        return Err(bad(format!("error validating token: unsupported signing algorithm {alg:?}")));
    };
    if !supported.is_empty() && !supported.iter().any(|s| s == alg) {
        return Err(bad(format!("error validating token: signing algorithm {alg} is not one of jwt_supported_algs")));
    }
    Ok((parsed, header.get("kid").and_then(Value::as_str).map(str::to_string)))
}

/// Whether `uri` is one of `allowed`; loopback redirect URIs (localhost, 127.0.0.1, ::1) match
/// whatever their port, as RFC 8252 §7.3 asks for native clients like the CLI.
fn redirect_allowed(uri: &str, allowed: &[String]) -> bool {
    if allowed.iter().any(|a| a == uri) {
        return true;
    }
    let Ok(u) = url::Url::parse(uri) else { return false };
    let loopback = |h: Option<&str>| matches!(h, Some("localhost" | "127.0.0.1" | "[::1]"));
    if !loopback(u.host_str()) {
        return false;
    }
    allowed
        .iter()
        .filter_map(|a| url::Url::parse(a).ok())
        .any(|a| loopback(a.host_str()) && a.scheme() == u.scheme() && a.path() == u.path() && a.query() == u.query())
}

impl Jwt {
    /// The backend, reporting `kind` (`jwt` or `oidc`) as its type.
    pub fn with_type(kind: &'static str) -> Self {
        Jwt {
            kind,
            paths: Paths::new(specs_static().to_vec()),
            keys: Mutex::new(None),
            pem_keys: Mutex::new(None),
            discovery: Mutex::new(None),
            pending: Mutex::new(HashMap::new()),
        }
    }

    async fn write_config(&self, req: &Request) -> Result<Option<Response>> {
        let d = &req.data;
        let get = |k: &str| d.get(k).filter(|v| !v.is_null());
        let text = |k: &str| -> Result<String> {
            get(k).map(|v| coffer_sdk::field::parse_string(k, v)).transpose().map(|o| o.unwrap_or_default())
        };
        let list = |k: &str| -> Result<Vec<String>> {
            get(k)
                .map(|v| coffer_sdk::field::parse_string_slice(k, v))
                .transpose()
                .map(|o| o.unwrap_or_default().into_iter().filter(|s| !s.trim().is_empty()).collect())
        };
        // A write replaces the configuration, as OpenBao's does.
        let c = Config {
            oidc_discovery_url: text("oidc_discovery_url")?,
            oidc_discovery_ca_pem: text("oidc_discovery_ca_pem")?,
            oidc_client_id: text("oidc_client_id")?,
            oidc_client_secret: text("oidc_client_secret")?,
            oidc_response_mode: text("oidc_response_mode")?,
            oidc_response_types: list("oidc_response_types")?,
            jwks_url: text("jwks_url")?,
            jwks_ca_pem: text("jwks_ca_pem")?,
            jwt_validation_pubkeys: list("jwt_validation_pubkeys")?,
            jwt_supported_algs: list("jwt_supported_algs")?,
            bound_issuer: text("bound_issuer")?,
            default_role: text("default_role")?,
            namespace_in_state: match get("namespace_in_state") {
                Some(v) => coffer_sdk::field::parse_bool("namespace_in_state", v)?,
                None => true,
            },
        };
        match get("provider_config") {
            None => {}
            Some(Value::Object(m)) if m.is_empty() => {}
            Some(Value::String(s)) if s.trim().is_empty() || s.trim() == "{}" => {}
            Some(_) => return Err(bad("provider_config is not supported by Coffer: it must be empty")),
        }
        if !list("override_allowed_server_names")?.is_empty() {
            return Err(bad("override_allowed_server_names is not supported by Coffer: it must be empty"));
        }
        let sources = [!c.oidc_discovery_url.is_empty(), !c.jwks_url.is_empty(), !c.jwt_validation_pubkeys.is_empty()];
        if sources.iter().filter(|x| **x).count() != 1 {
            return Err(bad("exactly one of 'jwt_validation_pubkeys', 'jwks_url' or 'oidc_discovery_url' must be set"));
        }
        if !c.oidc_client_id.is_empty() && c.oidc_discovery_url.is_empty() {
            return Err(bad("'oidc_client_id' and 'oidc_client_secret' need 'oidc_discovery_url'"));
        }
        if !c.oidc_client_secret.is_empty() && c.oidc_client_id.is_empty() {
            return Err(bad("'oidc_client_id' must be set when 'oidc_client_secret' is"));
        }
        if !matches!(c.oidc_response_mode.as_str(), "" | "query") {
            return Err(bad(format!(
                "oidc_response_mode {:?} is not supported by Coffer: only \"query\"",
                c.oidc_response_mode
            )));
        }
        if c.oidc_response_types.iter().any(|t| t != "code") {
            return Err(bad("oidc_response_types: only \"code\" is supported by Coffer"));
        }
        for a in &c.jwt_supported_algs {
            if keys::parse_alg(a).is_none() {
                return Err(bad(format!(
                    "invalid jwt_supported_algs entry {a:?}: supported are {}",
                    keys::SUPPORTED_ALGS.join(", ")
                )));
            }
        }
        for (i, pem) in c.jwt_validation_pubkeys.iter().enumerate() {
            if !keys::check_pem(pem) {
                return Err(bad(format!(
                    "error parsing public key {}: not a PEM RSA, ECDSA or Ed25519 public key",
                    i + 1
                )));
            }
        }
        if !c.jwks_ca_pem.is_empty() && c.jwks_url.is_empty() {
            return Err(bad("'jwks_ca_pem' needs 'jwks_url'"));
        }
        if !c.oidc_discovery_ca_pem.is_empty() && c.oidc_discovery_url.is_empty() {
            return Err(bad("'oidc_discovery_ca_pem' needs 'oidc_discovery_url'"));
        }
        // Check the provider answers now, as OpenBao does, so a typo fails here, not at login.
        if !c.oidc_discovery_url.is_empty() {
            let (url, ca) = (c.oidc_discovery_url.clone(), c.oidc_discovery_ca_pem.clone());
            let d = keys::blocking(move || {
                let a = keys::agent(&ca, "oidc_discovery_ca_pem")?;
                keys::fetch_discovery(&a, &url)
            })
            .await
            .map_err(|e| bad(format!("error checking oidc discovery URL: {}", e.messages.join("; "))))?;
            *self.discovery.lock().unwrap_or_else(|e| e.into_inner()) =
                Some((c.oidc_discovery_url.clone(), Instant::now(), d));
        }
        if !c.jwks_url.is_empty() {
            let (url, ca) = (c.jwks_url.clone(), c.jwks_ca_pem.clone());
            keys::blocking(move || {
                let a = keys::agent(&ca, "jwks_ca_pem")?;
                keys::fetch_jwks(&a, &url)
            })
            .await
            .map_err(|e| bad(format!("error checking jwks URL: {}", e.messages.join("; "))))?;
        }
        *self.keys.lock().unwrap_or_else(|e| e.into_inner()) = None;
        save(req, "config", &c).await?;
        Ok(None)
    }

    fn config_response(c: &Config) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("oidc_discovery_url".into(), json!(c.oidc_discovery_url));
        m.insert("oidc_discovery_ca_pem".into(), json!(c.oidc_discovery_ca_pem));
        m.insert("oidc_client_id".into(), json!(c.oidc_client_id));
        m.insert("oidc_response_mode".into(), json!(c.oidc_response_mode));
        m.insert("oidc_response_types".into(), json!(c.oidc_response_types));
        m.insert("jwks_url".into(), json!(c.jwks_url));
        m.insert("jwks_ca_pem".into(), json!(c.jwks_ca_pem));
        m.insert("jwt_validation_pubkeys".into(), json!(c.jwt_validation_pubkeys));
        m.insert("jwt_supported_algs".into(), json!(c.jwt_supported_algs));
        m.insert("bound_issuer".into(), json!(c.bound_issuer));
        m.insert("default_role".into(), json!(c.default_role));
        m.insert("namespace_in_state".into(), json!(c.namespace_in_state));
        m.insert("provider_config".into(), json!({}));
        m.insert("override_allowed_server_names".into(), json!([]));
        m.insert("status".into(), json!("valid"));
        m
    }

    /// The discovery document, fetched once an hour (or when the URL changes).
    async fn discovery(&self, c: &Config) -> Result<Discovery> {
        if let Some((url, at, d)) = &*self.discovery.lock().unwrap_or_else(|e| e.into_inner()) {
            if *url == c.oidc_discovery_url && at.elapsed() < Duration::from_secs(3600) {
                return Ok(d.clone());
            }
        }
        let (url, ca) = (c.oidc_discovery_url.clone(), c.oidc_discovery_ca_pem.clone());
        let d =
            keys::blocking(move || keys::fetch_discovery(&keys::agent(&ca, "oidc_discovery_ca_pem")?, &url)).await?;
        *self.discovery.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((c.oidc_discovery_url.clone(), Instant::now(), d.clone()));
        Ok(d)
    }

    /// The JWKS at `url` (cached), fetched anew when `force` and the cache is not brand new.
    async fn jwks(&self, url: &str, ca: &str, force: bool) -> Result<Option<Arc<jsonwebtoken::jwk::JwkSet>>> {
        {
            let cached = self.keys.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(k) = &*cached {
                if force && !k.may_refresh() {
                    return Ok(None);
                }
                if !force && k.fresh(url) {
                    return Ok(Some(k.set.clone()));
                }
            }
        }
        let (u, ca) = (url.to_string(), ca.to_string());
        let set = Arc::new(keys::blocking(move || keys::fetch_jwks(&keys::agent(&ca, "jwks_ca_pem")?, &u)).await?);
        *self.keys.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(CachedKeys { source: url.to_string(), fetched: Instant::now(), set: set.clone() });
        Ok(Some(set))
    }

    /// Verifies the signature with the configured keys; returns the claims and the issuer a
    /// discovery document requires (if any).
    async fn verify(&self, c: &Config, jwt: &str) -> Result<(Map<String, Value>, Option<String>)> {
        let (alg, kid) = token_alg(jwt, &c.jwt_supported_algs)?;
        if !c.jwt_validation_pubkeys.is_empty() {
            let pems = {
                let mut cached = self.pem_keys.lock().unwrap_or_else(|e| e.into_inner());
                match &*cached {
                    Some(k) if k.pems == c.jwt_validation_pubkeys => k.clone(),
                    _ => {
                        let k = Arc::new(keys::PemKeys::new(&c.jwt_validation_pubkeys));
                        *cached = Some(k.clone());
                        k
                    }
                }
            };
            return pems.verify(jwt, alg).map(|m| (m, None)).ok_or_else(|| bad(NO_KEY));
        }
        let (url, ca, issuer) = if !c.jwks_url.is_empty() {
            (c.jwks_url.clone(), c.jwks_ca_pem.clone(), None)
        } else {
            let d = self.discovery(c).await?;
            (d.jwks_uri, c.oidc_discovery_ca_pem.clone(), Some(d.issuer))
        };
        let Some(set) = self.jwks(&url, &ca, false).await? else { return Err(bad(NO_KEY)) };
        match keys::verify_with_jwks(jwt, &set, kid.as_deref(), alg) {
            Ok(m) => Ok((m, issuer)),
            // A key the cached set does not have: the provider may have rotated; look again.
            Err(true) => match self.jwks(&url, &ca, true).await? {
                Some(set) => match keys::verify_with_jwks(jwt, &set, kid.as_deref(), alg) {
                    Ok(m) => Ok((m, issuer)),
                    Err(_) => Err(bad(NO_KEY)),
                },
                None => Err(bad(NO_KEY)),
            },
            Err(false) => Err(bad(NO_KEY)),
        }
    }

    fn check_issuer(c: &Config, claims: &Map<String, Value>, discovered: Option<&str>) -> Result<()> {
        let iss = claims.get("iss").and_then(Value::as_str).unwrap_or_default();
        for want in [Some(c.bound_issuer.as_str()).filter(|s| !s.is_empty()), discovered].into_iter().flatten() {
            if iss != want {
                return Err(bad("error validating token: invalid issuer (iss) claim"));
            }
        }
        Ok(())
    }

    async fn load_config(req: &Request) -> Result<Config> {
        load::<Config>(req, "config").await?.ok_or_else(|| bad("could not load configuration"))
    }

    async fn load_role(req: &Request, c: &Config, given: Option<&str>) -> Result<(String, Role)> {
        let name = given.filter(|s| !s.is_empty()).map(str::to_string).unwrap_or_else(|| c.default_role.clone());
        if name.is_empty() {
            return Err(bad("missing role"));
        }
        let role = load::<Role>(req, &format!("role/{}", name.to_lowercase()))
            .await?
            .ok_or_else(|| bad(format!("role {name:?} could not be found")))?;
        Ok((name, role))
    }

    /// What the checked claims give: alias, groups, metadata, the role's token settings.
    fn auth_for(role_name: &str, role: &Role, claims: &Map<String, Value>, req: &Request) -> Result<Option<Response>> {
        let name = claims::user_name(claims, role)?;
        let groups = claims::groups(claims, role)?;
        let mut meta = claims::mapped_metadata(claims, role)?;
        meta.insert("role".into(), Value::String(role_name.to_string()));
        if role.verbose_oidc_logging {
            // Claims, never the token itself (the role's owner asked for this).
            let all = Value::Object(claims.clone());
            tracing::info!(mount = %req.mount_point, role = role_name, claims = %all, "jwt login claims");
        }
        let mut auth = role.token.to_auth(&name, &name, req.remote_addr);
        auth.metadata = meta.clone();
        auth.alias_metadata = meta;
        auth.group_aliases = groups;
        Ok(Some(Response { auth: Some(auth), ..Default::default() }))
    }

    async fn login(&self, req: &Request, f: &FieldData) -> Result<Option<Response>> {
        let c = Self::load_config(req).await?;
        let (role_name, role) = Self::load_role(req, &c, f.str("role")).await?;
        if role.role_type == "oidc" {
            return Err(bad("role with oidc role_type is not allowed"));
        }
        let jwt = f.str("jwt").filter(|s| !s.is_empty()).ok_or_else(|| bad("missing token"))?;
        if !addr_in_cidrs(req.remote_addr, &role.token.token_bound_cidrs) {
            return Err(LogicalError::permission_denied());
        }
        let (claims, discovered) = self.verify(&c, jwt).await?;
        Self::check_issuer(&c, &claims, discovered.as_deref())?;
        claims::check_times(&claims, &role, now_secs())?;
        claims::check_subject(&claims, &role)?;
        claims::check_audience(&claims, &role, None)?;
        claims::check_bound_claims(&claims, &role)?;
        Self::auth_for(&role_name, &role, &claims, req)
    }

    fn oidc_configured(c: &Config) -> Result<()> {
        if c.oidc_discovery_url.is_empty() || c.oidc_client_id.is_empty() {
            return Err(bad(
                "OIDC login is not configured on this mount: set oidc_discovery_url, oidc_client_id and oidc_client_secret",
            ));
        }
        Ok(())
    }

    async fn auth_url(&self, req: &Request, f: &FieldData) -> Result<Option<Response>> {
        let c = Self::load_config(req).await?;
        Self::oidc_configured(&c)?;
        let (role_name, role) = Self::load_role(req, &c, f.str("role")).await?;
        if role.role_type != "oidc" {
            return Err(bad(format!("role {role_name:?} is not an OIDC role (role_type is {:?})", role.role_type)));
        }
        let redirect_uri =
            f.str("redirect_uri").filter(|s| !s.is_empty()).ok_or_else(|| bad("missing redirect_uri"))?;
        if !redirect_allowed(redirect_uri, &role.allowed_redirect_uris) {
            return Err(bad(format!("unauthorized redirect_uri: {redirect_uri}")));
        }
        let d = self.discovery(&c).await?;
        if d.authorization_endpoint.is_empty() || d.token_endpoint.is_empty() {
            return Err(bad("the OIDC discovery document has no authorization_endpoint or token_endpoint"));
        }
        let (state, nonce, verifier) = (random_text(24)?, random_text(24)?, random_text(32)?);
        let challenge =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
        let mut url = url::Url::parse(&d.authorization_endpoint)
            .map_err(|e| bad(format!("the provider's authorization_endpoint is not a URL: {e}")))?;
        let mut scopes = vec!["openid".to_string()];
        scopes.extend(role.oidc_scopes.iter().filter(|s| *s != "openid").cloned());
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("client_id", &c.oidc_client_id)
                .append_pair("response_type", "code")
                .append_pair("redirect_uri", redirect_uri)
                .append_pair("scope", &scopes.join(" "))
                .append_pair("state", &state)
                .append_pair("nonce", &nonce)
                .append_pair("code_challenge", &challenge)
                .append_pair("code_challenge_method", "S256");
            if role.max_age > 0 {
                q.append_pair("max_age", &role.max_age.to_string());
            }
        }
        {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            p.retain(|_, v| v.created.elapsed() < STATE_TTL);
            if p.len() >= MAX_PENDING {
                return Err(LogicalError::new(
                    coffer_sdk::ErrorKind::RateLimited,
                    "too many OIDC logins are pending on this mount; try again later",
                ));
            }
            p.insert(
                state,
                Pending {
                    role: role_name,
                    redirect_uri: redirect_uri.to_string(),
                    nonce,
                    code_verifier: verifier,
                    client_nonce: f.str("client_nonce").unwrap_or_default().to_string(),
                    created: Instant::now(),
                },
            );
        }
        let mut m = Map::new();
        m.insert("auth_url".into(), Value::String(url.to_string()));
        Ok(Some(Response::data(m)))
    }

    async fn callback(&self, req: &Request, f: &FieldData) -> Result<Option<Response>> {
        let state = f.str("state").unwrap_or_default();
        let pending = self.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(state);
        let Some(p) = pending.filter(|p| p.created.elapsed() < STATE_TTL) else {
            return Err(bad("Expired or missing OAuth state."));
        };
        if !p.client_nonce.is_empty() && f.str("client_nonce").unwrap_or_default() != p.client_nonce {
            return Err(bad("invalid client_nonce"));
        }
        if let Some(e) = f.str("error").filter(|s| !s.is_empty()) {
            let desc = f.str("error_description").unwrap_or_default();
            return Err(bad(format!("Provider error: {e}: {desc}")));
        }
        if f.str("id_token").is_some_and(|s| !s.is_empty()) {
            return Err(bad("id_token responses (form_post) are not supported by Coffer: use the code flow"));
        }
        let code = f.str("code").filter(|s| !s.is_empty()).ok_or_else(|| bad("No code or id_token received."))?;
        let c = Self::load_config(req).await?;
        Self::oidc_configured(&c)?;
        let (role_name, role) = Self::load_role(req, &c, Some(&p.role)).await?;
        let d = self.discovery(&c).await?;

        // The code exchange, with the PKCE verifier and the client's credentials.
        let (token_endpoint, ca, client_id, secret, redirect, code, verifier) = (
            d.token_endpoint.clone(),
            c.oidc_discovery_ca_pem.clone(),
            c.oidc_client_id.clone(),
            c.oidc_client_secret.clone(),
            p.redirect_uri.clone(),
            code.to_string(),
            p.code_verifier.clone(),
        );
        let answer = keys::blocking(move || {
            let agent = keys::agent(&ca, "oidc_discovery_ca_pem")?;
            let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let basic =
                base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", enc(&client_id), enc(&secret)));
            let form = [
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", redirect.as_str()),
                ("code_verifier", verifier.as_str()),
                ("client_id", client_id.as_str()),
            ];
            let mut resp = agent
                .post(&token_endpoint)
                .header("Authorization", &format!("Basic {basic}"))
                .header("Accept", "application/json")
                .send_form(form)
                .map_err(|e| bad(format!("error exchanging the OIDC code: {e}")))?;
            let status = resp.status().as_u16();
            let body: Value = resp.body_mut().read_json().unwrap_or(Value::Null);
            if status != 200 {
                let err = body.get("error").and_then(Value::as_str).unwrap_or("unknown error");
                return Err(bad(format!("error exchanging the OIDC code: the provider answered HTTP {status}: {err}")));
            }
            Ok(body)
        })
        .await?;
        let id_token = answer
            .get("id_token")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("the provider's token answer has no id_token"))?
            .to_string();
        let (claims, discovered) = self.verify(&c, &id_token).await?;
        Self::check_issuer(&c, &claims, discovered.as_deref())?;
        let now = now_secs();
        claims::check_times(&claims, &role, now)?;
        if claims.get("nonce").and_then(Value::as_str) != Some(p.nonce.as_str()) {
            return Err(bad("invalid ID token nonce"));
        }
        if role.max_age > 0 {
            let auth_time = claims
                .get("auth_time")
                .and_then(Value::as_i64)
                .ok_or_else(|| bad("auth_time claim is missing while max_age is set"))?;
            if now > auth_time + role.max_age {
                return Err(bad("auth_time is older than the role's max_age"));
            }
        }
        claims::check_subject(&claims, &role)?;
        claims::check_audience(&claims, &role, Some(&c.oidc_client_id))?;
        claims::check_bound_claims(&claims, &role)?;
        if !addr_in_cidrs(req.remote_addr, &role.token.token_bound_cidrs) {
            return Err(LogicalError::permission_denied());
        }
        Self::auth_for(&role_name, &role, &claims, req)
    }
}

#[async_trait]
impl Handler for Jwt {
    type Route = Route;

    fn backend_type(&self) -> &'static str {
        self.kind
    }

    fn paths(&self) -> &Paths<Route> {
        &self.paths
    }

    async fn handle(&self, route: Route, req: Request, f: FieldData) -> Result<Option<Response>> {
        match (route, req.operation) {
            (Route::Config, Operation::Read) => {
                Ok(load::<Config>(&req, "config").await?.map(|c| Response::data(Self::config_response(&c))))
            }
            (Route::Config, _) => self.write_config(&req).await,
            (Route::RoleList, _) => {
                let keys = req.storage.list("role/").await?;
                Ok(if keys.is_empty() { None } else { Some(Response::list(keys)) })
            }
            (Route::Role, op) => {
                let name = f.str("name").unwrap_or_default().to_lowercase();
                let key = format!("role/{name}");
                match op {
                    Operation::Read => Ok(load::<Role>(&req, &key).await?.map(|r| Response::data(r.to_response()))),
                    Operation::Delete => {
                        req.storage.delete(&key).await?;
                        Ok(None)
                    }
                    _ => {
                        let mut r = load::<Role>(&req, &key).await?.unwrap_or_else(Role::new);
                        r.update_from(&req.data)?;
                        save(&req, &key, &r).await?;
                        Ok(None)
                    }
                }
            }
            (Route::Login, _) => self.login(&req, &f).await,
            (Route::AuthUrl, _) => self.auth_url(&req, &f).await,
            (Route::Callback, _) => self.callback(&req, &f).await,
        }
    }

    async fn exists(&self, route: Route, req: &Request, f: &FieldData) -> Result<Option<bool>> {
        match route {
            Route::Role => {
                let name = f.str("name").unwrap_or_default().to_lowercase();
                Ok(Some(req.storage.get(&format!("role/{name}")).await?.is_some()))
            }
            Route::Config => Ok(Some(req.storage.get("config").await?.is_some())),
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsigned_and_shared_secret_tokens_are_refused_by_name() {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let none = format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64("{}"));
        let e = token_alg(&none, &[]).unwrap_err();
        assert!(e.messages[0].contains("\"none\""), "{:?}", e.messages);
        let hs = format!("{}.{}.sig", b64(r#"{"alg":"HS256"}"#), b64("{}"));
        assert!(token_alg(&hs, &[]).unwrap_err().messages[0].contains("shared secret"));
        let es = format!("{}.{}.sig", b64(r#"{"alg":"ES256","kid":"k"}"#), b64("{}"));
        assert_eq!(token_alg(&es, &[]).unwrap().1.as_deref(), Some("k"));
        assert!(token_alg(&es, &["RS256".into()]).is_err());
        assert!(token_alg("a.b", &[]).is_err());
    }

    #[test]
    fn loopback_redirects_match_whatever_their_port() {
        let allowed = vec!["http://localhost:8250/oidc/callback".to_string(), "https://app.example/cb".to_string()];
        assert!(redirect_allowed("http://localhost:8250/oidc/callback", &allowed));
        assert!(redirect_allowed("http://127.0.0.1:9999/oidc/callback", &allowed));
        assert!(!redirect_allowed("http://localhost:8250/other", &allowed));
        assert!(!redirect_allowed("https://app.example:444/cb", &allowed));
        assert!(!redirect_allowed("http://evil.example/oidc/callback", &allowed));
    }
}
