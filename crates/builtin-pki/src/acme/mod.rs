//! The PKI engine's ACME server (RFC 8555), as OpenBao 2.x serves it: directories at
//! `acme/`, `roles/:role/acme/`, `issuer/:ref/acme/` and `issuer/:ref/roles/:role/acme/`
//! (unauthenticated rows), accounts bound to a JWK (optionally through an external account
//! binding), orders, authorizations with `http-01` and `dns-01` challenges validated in the
//! background, finalization through the engine's own signing (`sign/:role` or
//! `sign-verbatim`), certificate download, revocation and key roll-over; `config/acme`,
//! `config/cluster` (the absolute URLs ACME needs) and the EAB keys (`acme/new-eab`, `eab/`).
//!
//! Storage (the mount's view, JSON): `config/acme`, `config/cluster`, `acme/account/<id>`,
//! `acme/thumbprint/<directory>/<jwk thumbprint>` (→ account id: accounts belong to one directory), `acme/account-orders/<account>/<order>`,
//! `acme/order/<id>`, `acme/authz/<id>`, `acme/cert/<serial>` (→ account id),
//! `acme/eab/<key id>`. Nonces live in memory: single use, 15 minutes.

pub mod jws;
mod validate;

use crate::{get_json, name_field, put_json, role::Role, row, Pki, Route};
use coffer_sdk::field::FieldType;
use coffer_sdk::framework::{FieldData, FieldSpec, PathSpec};
use coffer_sdk::{LogicalError, Operation, Request, Response, Result, StorageView};
use jws::{b64d, b64e, Jws, JwsError};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::Arc;

const NONCE_LIFETIME: i64 = 15 * 60;
/// The most nonces kept at once.
const MAX_NONCES: usize = 65536;
/// How long an order and its authorizations stay usable.
const ORDER_LIFETIME: i64 = 24 * 3600;
/// Validation attempts of a challenge; the n-th retry waits n times `RETRY_STEP_SECS` (as
/// OpenBao: 5, 10, … 30 seconds, about 105 seconds in all).
const ATTEMPTS: u64 = 7;
const RETRY_STEP_SECS: u64 = 5;

/// What the server keeps in memory: the nonces it handed out and a lock for the writes the
/// background validations race with.
#[derive(Default)]
pub struct State {
    nonces: std::sync::Mutex<HashMap<String, i64>>,
    lock: tokio::sync::Mutex<()>,
}

impl State {
    fn new_nonce(&self) -> String {
        let mut b = [0u8; 24];
        if aws_lc_rs::rand::fill(&mut b).is_err() {
            return String::new();
        }
        let n = b64e(&b);
        let now = crate::now();
        let mut map = self.nonces.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() > 4096 {
            map.retain(|_, exp| *exp > now);
        }
        // A flood of new-nonce requests cannot grow the map without bound: past the cap, some
        // outstanding nonces are forgotten (their clients get badNonce and retry).
        if map.len() >= MAX_NONCES {
            let drop: Vec<String> = map.keys().take(MAX_NONCES / 2).cloned().collect();
            for k in drop {
                map.remove(&k);
            }
        }
        map.insert(n.clone(), now + NONCE_LIFETIME);
        n
    }

    fn take_nonce(&self, n: &str) -> bool {
        let mut map = self.nonces.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.remove(n).is_some_and(|exp| exp > crate::now())
    }
}

#[derive(Serialize, Deserialize, Clone)]
pub struct AcmeConfig {
    enabled: bool,
    allowed_issuers: Vec<String>,
    allowed_roles: Vec<String>,
    allow_role_ext_key_usage: bool,
    default_directory_policy: String,
    dns_resolver: String,
    eab_policy: String,
}

impl Default for AcmeConfig {
    fn default() -> Self {
        AcmeConfig {
            enabled: false,
            allowed_issuers: vec!["*".into()],
            allowed_roles: vec!["*".into()],
            allow_role_ext_key_usage: false,
            default_directory_policy: "sign-verbatim".into(),
            dns_resolver: String::new(),
            eab_policy: "not-required".into(),
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Default)]
pub struct ClusterConfig {
    path: String,
    aia_path: String,
}

#[derive(Serialize, Deserialize, Clone)]
struct Account {
    id: String,
    jwk: Map<String, Value>,
    thumbprint: String,
    status: String,
    contact: Vec<String>,
    created: i64,
    #[serde(default)]
    eab_key_id: String,
    /// The directory it was created in (`acme/directory`, `roles/r/acme/directory`, …).
    directory: String,
    /// When it was deactivated or revoked (Unix seconds; 0 while valid).
    #[serde(default)]
    status_changed: i64,
}

#[derive(Serialize, Deserialize, Clone)]
struct Identifier {
    #[serde(rename = "type")]
    kind: String,
    value: String,
}

#[derive(Serialize, Deserialize, Clone)]
struct Order {
    id: String,
    account: String,
    status: String,
    identifiers: Vec<Identifier>,
    authzs: Vec<String>,
    expires: i64,
    #[serde(default)]
    serial: String,
    /// The issued certificate and its chain, PEM.
    #[serde(default)]
    certificate: String,
}

#[derive(Serialize, Deserialize, Clone)]
struct Challenge {
    #[serde(rename = "type")]
    kind: String,
    token: String,
    status: String,
    #[serde(default)]
    validated: i64,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Serialize, Deserialize, Clone)]
struct Authz {
    id: String,
    account: String,
    identifier: Identifier,
    wildcard: bool,
    status: String,
    expires: i64,
    challenges: Vec<Challenge>,
}

#[derive(Serialize, Deserialize)]
struct EabEntry {
    id: String,
    key: String,
    key_type: String,
    acme_directory: String,
    created_on: i64,
}

/// An ACME error (RFC 8555 section 6.7), answered as `application/problem+json`.
pub struct Problem {
    status: u16,
    kind: &'static str,
    detail: String,
}

fn problem(status: u16, kind: &'static str, detail: impl Into<String>) -> Problem {
    Problem { status, kind, detail: detail.into() }
}

fn malformed(detail: impl Into<String>) -> Problem {
    problem(400, "malformed", detail)
}

fn unauthorized(detail: impl Into<String>) -> Problem {
    problem(403, "unauthorized", detail)
}

impl From<JwsError> for Problem {
    fn from(e: JwsError) -> Self {
        let status = if e.kind == "unauthorized" { 403 } else { 400 };
        Problem { status, kind: e.kind, detail: e.detail }
    }
}

/// Internal failures (storage) are ACME's serverInternal; the detail stays generic.
impl From<LogicalError> for Problem {
    fn from(e: LogicalError) -> Self {
        match e.kind {
            coffer_sdk::ErrorKind::BadRequest => malformed(e.to_string()),
            _ => problem(500, "serverInternal", "the server experienced an internal error"),
        }
    }
}

type PResult<T> = std::result::Result<T, Problem>;

/// A raw answer with the headers ACME needs (sent when the mount's `allowed_response_headers`
/// lets them through, as in OpenBao).
fn answer(status: u16, content_type: &str, body: Vec<u8>, headers: Vec<(&str, String)>) -> Response {
    let mut h = Map::new();
    for (k, v) in headers {
        match h.get_mut(k) {
            Some(Value::Array(a)) => a.push(json!(v)),
            _ => {
                h.insert(k.to_string(), json!([v]));
            }
        }
    }
    let mut d = crate::raw(content_type, body).data.unwrap_or_default();
    d.insert("http_status_code".into(), json!(status));
    d.insert("http_headers".into(), Value::Object(h));
    Response::data(d)
}

pub fn path_specs() -> Vec<(Route, PathSpec)> {
    use Operation::{Delete, List, Read, Update};
    let dir_prefix = r"(?:issuer/(?P<issuer_ref>[A-Za-z0-9_\-]+)/)?(?:roles/(?P<role>\w(?:[\w.\-]*\w)?)/)?";
    let dir_fields = || {
        vec![
            name_field("issuer_ref", "The issuer this directory signs with"),
            name_field("role", "The role this directory issues under"),
        ]
    };
    let mut acme_fields = dir_fields();
    acme_fields.extend([
        name_field("acme_op", "The ACME resource"),
        name_field("protected", "The JWS protected header (base64url)"),
        name_field("payload", "The JWS payload (base64url)"),
        name_field("signature", "The JWS signature (base64url)"),
    ]);
    let list = |n: &'static str, d: &'static str| FieldSpec::new(n, FieldType::CommaStringSlice, d);
    vec![
        (
            Route::ConfigAcme,
            row(
                r"config/acme",
                vec![
                    FieldSpec::new("enabled", FieldType::Bool, "Serve the ACME directories").default(json!(false)),
                    list("allowed_issuers", "Issuers ACME may use (names or ids; * for any)").default(json!(["*"])),
                    list("allowed_roles", "Roles ACME may use (* for any)").default(json!(["*"])),
                    FieldSpec::new(
                        "allow_role_ext_key_usage",
                        FieldType::Bool,
                        "Keep the role's extended key usages (else server authentication only)",
                    )
                    .default(json!(false)),
                    name_field(
                        "default_directory_policy",
                        "The policy of acme/directory: sign-verbatim, forbid or role:<name>",
                    )
                    .default(json!("sign-verbatim")),
                    name_field("dns_resolver", "host:port of the DNS server for dns-01 (default: the system's)")
                        .default(json!("")),
                    name_field("eab_policy", "not-required, new-account-required or always-required")
                        .default(json!("not-required")),
                ],
                vec![(Read, "Read the ACME settings"), (Update, "Set the ACME settings")],
                "ACME settings",
            ),
        ),
        (
            Route::ConfigCluster,
            row(
                r"config/cluster",
                vec![
                    name_field("path", "This mount's absolute URL, e.g. https://coffer.example:8200/v1/pki"),
                    name_field("aia_path", "The mount's absolute URL for AIA (may be plain http)"),
                ],
                vec![(Read, "Read the cluster URLs"), (Update, "Set the cluster URLs")],
                "The mount's absolute URLs",
            ),
        ),
        (
            Route::AcmeNewEab,
            row(
                Box::leak(format!("{dir_prefix}acme/new-eab").into_boxed_str()),
                dir_fields(),
                vec![(Update, "Create an external account binding key")],
                "Create an EAB key for this directory",
            ),
        ),
        (Route::AcmeEabs, row(r"eab/?", vec![], vec![(List, "List the unused EAB keys")], "EAB keys")),
        (
            Route::AcmeEab,
            row(
                r"eab/(?P<key_id>[A-Za-z0-9\-]+)",
                vec![name_field("key_id", "The EAB key's id")],
                vec![(Delete, "Delete an EAB key")],
                "An EAB key",
            ),
        ),
        (
            Route::Acme,
            crate::public(row(
                Box::leak(format!(r"{dir_prefix}acme/(?P<acme_op>[A-Za-z0-9_\-/]+)").into_boxed_str()),
                acme_fields,
                vec![(Read, "An ACME resource (GET)"), (Update, "An ACME request (JWS)")],
                "The ACME server (RFC 8555)",
            )),
        ),
    ]
}

async fn acme_config(s: &dyn StorageView) -> Result<AcmeConfig> {
    Ok(get_json(s, "config/acme").await?.unwrap_or_default())
}

async fn cluster_config(s: &dyn StorageView) -> Result<ClusterConfig> {
    Ok(get_json(s, "config/cluster").await?.unwrap_or_default())
}

fn bad(msg: impl Into<String>) -> LogicalError {
    LogicalError::bad_request(msg)
}

fn strings(f: &FieldData, n: &str) -> Vec<String> {
    crate::strings(f, n)
}

/// The routes of this module.
pub async fn handle(pki: &Pki, route: Route, req: &Request, f: &FieldData) -> Result<Option<Response>> {
    let s = req.storage.as_ref();
    match route {
        Route::ConfigAcme => config_acme(s, req.operation, f).await.map(Some),
        Route::ConfigCluster => config_cluster(s, req.operation, f).await.map(Some),
        Route::AcmeNewEab => new_eab(pki, s, f).await.map(Some),
        Route::AcmeEabs => list_eab(s).await,
        Route::AcmeEab => {
            s.delete(&format!("acme/eab/{}", f.str("key_id").unwrap_or(""))).await?;
            Ok(None)
        }
        _ => {
            let ctx_or = Ctx::new(pki, req, f).await;
            let out = match ctx_or {
                Ok(ctx) => ctx.serve(req, f).await,
                Err(p) => Err(p),
            };
            Ok(Some(match out {
                Ok(r) => r,
                Err(p) => {
                    let body = json!({"type": format!("urn:ietf:params:acme:error:{}", p.kind), "detail": p.detail});
                    let headers = vec![("Replay-Nonce", pki.acme.new_nonce())];
                    answer(p.status, "application/problem+json", body.to_string().into_bytes(), headers)
                }
            }))
        }
    }
}

async fn config_acme(s: &dyn StorageView, op: Operation, f: &FieldData) -> Result<Response> {
    let mut c = acme_config(s).await?;
    if op != Operation::Read {
        if f.is_set("enabled") {
            c.enabled = f.bool("enabled").unwrap_or(false);
        }
        if f.is_set("allowed_issuers") {
            c.allowed_issuers = strings(f, "allowed_issuers");
        }
        if f.is_set("allowed_roles") {
            c.allowed_roles = strings(f, "allowed_roles");
        }
        if f.is_set("allow_role_ext_key_usage") {
            c.allow_role_ext_key_usage = f.bool("allow_role_ext_key_usage").unwrap_or(false);
        }
        if f.is_set("default_directory_policy") {
            c.default_directory_policy = f.str("default_directory_policy").unwrap_or("").to_string();
        }
        if f.is_set("dns_resolver") {
            c.dns_resolver = f.str("dns_resolver").unwrap_or("").trim().to_string();
        }
        if f.is_set("eab_policy") {
            c.eab_policy = f.str("eab_policy").unwrap_or("").to_string();
        }
        if !matches!(c.eab_policy.as_str(), "not-required" | "new-account-required" | "always-required") {
            return Err(bad("invalid eab_policy: use not-required, new-account-required or always-required"));
        }
        match c.default_directory_policy.as_str() {
            "sign-verbatim" | "forbid" => {}
            p if p.starts_with("role:") => {
                let r = &p["role:".len()..];
                if get_json::<Role>(s, &format!("role/{r}")).await?.is_none() {
                    return Err(bad(format!("default_directory_policy names role {r:?}, which does not exist")));
                }
            }
            "external-policy" => {
                return Err(bad(
                    "default_directory_policy external-policy is not supported (no external policy service)",
                ))
            }
            p => {
                return Err(bad(format!(
                    "invalid default_directory_policy {p:?}: use sign-verbatim, forbid or role:<name>"
                )))
            }
        }
        for r in &c.allowed_roles {
            if r != "*" && get_json::<Role>(s, &format!("role/{r}")).await?.is_none() {
                return Err(bad(format!("allowed_roles names role {r:?}, which does not exist")));
            }
        }
        if c.allowed_issuers.is_empty() || c.allowed_roles.is_empty() {
            return Err(bad("allowed_issuers and allowed_roles need at least one entry (* for any)"));
        }
        if !c.dns_resolver.is_empty() && c.dns_resolver.parse::<std::net::SocketAddr>().is_err() {
            return Err(bad(format!("dns_resolver {:?} is not an IP address with a port (host:port)", c.dns_resolver)));
        }
        if c.enabled && cluster_config(s).await?.path.is_empty() {
            return Err(bad("ACME needs the mount's absolute URL: set path in config/cluster first"));
        }
        put_json(s, "config/acme", &c).await?;
    }
    let mut d = Map::new();
    d.insert("enabled".into(), json!(c.enabled));
    d.insert("allowed_issuers".into(), json!(c.allowed_issuers));
    d.insert("allowed_roles".into(), json!(c.allowed_roles));
    d.insert("allow_role_ext_key_usage".into(), json!(c.allow_role_ext_key_usage));
    d.insert("default_directory_policy".into(), json!(c.default_directory_policy));
    d.insert("dns_resolver".into(), json!(c.dns_resolver));
    d.insert("eab_policy".into(), json!(c.eab_policy));
    Ok(Response::data(d))
}

fn check_url(name: &str, v: &str) -> Result<()> {
    if v.is_empty() {
        return Ok(());
    }
    let rest = v.strip_prefix("https://").or_else(|| v.strip_prefix("http://"));
    match rest {
        Some(r) if !r.is_empty() && !r.starts_with('/') && !v.contains(char::is_whitespace) => Ok(()),
        _ => Err(bad(format!("{name} must be an absolute http(s) URL, got {v:?}"))),
    }
}

async fn config_cluster(s: &dyn StorageView, op: Operation, f: &FieldData) -> Result<Response> {
    let mut c = cluster_config(s).await?;
    if op != Operation::Read {
        if f.is_set("path") {
            c.path = f.str("path").unwrap_or("").trim().trim_end_matches('/').to_string();
        }
        if f.is_set("aia_path") {
            c.aia_path = f.str("aia_path").unwrap_or("").trim().trim_end_matches('/').to_string();
        }
        check_url("path", &c.path)?;
        check_url("aia_path", &c.aia_path)?;
        if c.path.is_empty() && acme_config(s).await?.enabled {
            return Err(bad("ACME is enabled and needs path: disable it in config/acme first"));
        }
        put_json(s, "config/cluster", &c).await?;
    }
    let mut d = Map::new();
    d.insert("path".into(), json!(c.path));
    d.insert("aia_path".into(), json!(c.aia_path));
    Ok(Response::data(d))
}

fn directory_name(f: &FieldData) -> String {
    let mut p = String::new();
    if let Some(i) = f.str("issuer_ref").filter(|v| !v.is_empty()) {
        p.push_str(&format!("issuer/{i}/"));
    }
    if let Some(r) = f.str("role").filter(|v| !v.is_empty()) {
        p.push_str(&format!("roles/{r}/"));
    }
    p.push_str("acme/directory");
    p
}

async fn new_eab(pki: &Pki, s: &dyn StorageView, f: &FieldData) -> Result<Response> {
    // The directory must be one ACME would serve.
    let cfg = acme_config(s).await?;
    resolve_policy(pki, s, &cfg, f).await.map_err(|p| bad(p.detail))?;
    let mut key = [0u8; 32];
    // drop-cause: aws-lc's Unspecified says nothing more.
    aws_lc_rs::rand::fill(&mut key).map_err(|_| LogicalError::internal("the random generator failed"))?;
    // The key as clients are given it (and base64url-decode it into the MAC key): a 12-character
    // prefix keeps the decoding aligned.
    let e = EabEntry {
        id: uuid::Uuid::new_v4().to_string(),
        key: format!("coffer-eab0-{}", b64e(&key)),
        key_type: "hs".into(),
        acme_directory: directory_name(f),
        created_on: crate::now(),
    };
    put_json(s, &format!("acme/eab/{}", e.id), &e).await?;
    let mut d = Map::new();
    d.insert("id".into(), json!(e.id));
    d.insert("key_type".into(), json!(e.key_type));
    d.insert("key".into(), json!(e.key));
    d.insert("acme_directory".into(), json!(e.acme_directory));
    d.insert("created_on".into(), json!(crate::rfc3339(e.created_on)));
    Ok(Response::data(d))
}

async fn list_eab(s: &dyn StorageView) -> Result<Option<Response>> {
    let keys = s.list("acme/eab/").await?;
    if keys.is_empty() {
        return Ok(None);
    }
    let mut info = Map::new();
    for k in &keys {
        if let Some(e) = get_json::<EabEntry>(s, &format!("acme/eab/{k}")).await? {
            info.insert(
                k.clone(),
                json!({"key_type": e.key_type, "acme_directory": e.acme_directory, "created_on": crate::rfc3339(e.created_on)}),
            );
        }
    }
    let mut d = Map::new();
    d.insert("keys".into(), json!(keys));
    d.insert("key_info".into(), Value::Object(info));
    Ok(Some(Response::data(d)))
}

/// How a directory issues: under a role, or verbatim; with which issuer.
struct Policy {
    role: Option<(String, Role)>,
    issuer_ref: String,
}

fn allowed(list: &[String], names: &[&str]) -> bool {
    list.iter().any(|a| a == "*" || names.iter().any(|n| !n.is_empty() && a == n))
}

async fn resolve_policy(pki: &Pki, s: &dyn StorageView, cfg: &AcmeConfig, f: &FieldData) -> PResult<Policy> {
    let role_name = f.str("role").unwrap_or("").to_string();
    let role = if !role_name.is_empty() {
        let r = get_json::<Role>(s, &format!("role/{role_name}"))
            .await?
            .ok_or_else(|| malformed(format!("role {role_name:?} does not exist")))?;
        if !allowed(&cfg.allowed_roles, &[&role_name]) {
            return Err(unauthorized(format!("role {role_name:?} is not allowed by the ACME configuration")));
        }
        Some((role_name, r))
    } else {
        match cfg.default_directory_policy.as_str() {
            "forbid" => return Err(unauthorized("the default ACME directory is forbidden by the ACME configuration")),
            p if p.starts_with("role:") => {
                let n = &p["role:".len()..];
                let r = get_json::<Role>(s, &format!("role/{n}"))
                    .await?
                    .ok_or_else(|| malformed(format!("the default directory's role {n:?} does not exist")))?;
                Some((n.to_string(), r))
            }
            _ => None,
        }
    };
    let issuer_ref = match f.str("issuer_ref").filter(|v| !v.is_empty()) {
        Some(i) => i.to_string(),
        None => role.as_ref().map(|(_, r)| r.issuer_ref.clone()).filter(|i| !i.is_empty()).unwrap_or("default".into()),
    };
    let issuer = pki.issuer(s, &issuer_ref).await.map_err(|e| malformed(e.to_string()))?;
    if !allowed(&cfg.allowed_issuers, &[&issuer.id, &issuer.name]) && !(allowed(&cfg.allowed_issuers, &[&issuer_ref])) {
        return Err(unauthorized(format!("issuer {issuer_ref:?} is not allowed by the ACME configuration")));
    }
    Ok(Policy { role, issuer_ref: issuer.id })
}

/// One ACME request's context: the configuration, the directory's URLs and policy.
struct Ctx<'a> {
    pki: &'a Pki,
    s: &'a dyn StorageView,
    storage: Arc<dyn StorageView>,
    cfg: AcmeConfig,
    /// `<cluster path>/<directory prefix>acme/`
    base: String,
    /// The absolute URL of this request.
    url: String,
    directory: String,
    policy: Policy,
}

impl<'a> Ctx<'a> {
    async fn new(pki: &'a Pki, req: &'a Request, f: &FieldData) -> PResult<Ctx<'a>> {
        let s = req.storage.as_ref();
        let cfg = acme_config(s).await?;
        if !cfg.enabled {
            return Err(problem(404, "malformed", "ACME is disabled on this mount (config/acme)"));
        }
        let cluster = cluster_config(s).await?;
        if cluster.path.is_empty() {
            return Err(problem(500, "serverInternal", "ACME needs path in config/cluster"));
        }
        let policy = resolve_policy(pki, s, &cfg, f).await?;
        let directory = directory_name(f);
        let base = format!("{}/{}", cluster.path, directory.trim_end_matches("directory"));
        let url = format!("{}/{}", cluster.path, req.path);
        Ok(Ctx { pki, s, storage: Arc::clone(&req.storage), cfg, base, url, directory, policy })
    }

    fn nonce(&self) -> String {
        self.pki.acme.new_nonce()
    }

    fn index_link(&self) -> String {
        format!("<{}directory>;rel=\"index\"", self.base)
    }

    fn json(&self, status: u16, v: &Value, extra: Vec<(&'static str, String)>) -> Response {
        let mut h = vec![("Replay-Nonce", self.nonce()), ("Link", self.index_link())];
        h.extend(extra);
        answer(status, "application/json", v.to_string().into_bytes(), h)
    }

    async fn serve(&self, req: &Request, f: &FieldData) -> PResult<Response> {
        let op = f.str("acme_op").unwrap_or("").trim_end_matches('/').to_string();
        let parts: Vec<&str> = op.split('/').collect();
        if req.operation == Operation::Read {
            return match op.as_str() {
                "directory" => Ok(self.directory_doc()),
                "new-nonce" => {
                    Ok(answer(204, "", Vec::new(), vec![("Replay-Nonce", self.nonce()), ("Link", self.index_link())]))
                }
                _ => Err(problem(405, "malformed", "use POST (POST-as-GET) for this resource")),
            };
        }
        if matches!(op.as_str(), "directory" | "new-nonce") {
            return Err(problem(405, "malformed", "use GET (or HEAD) for this resource"));
        }
        let jws = Jws::parse(
            f.str("protected").unwrap_or(""),
            f.str("payload").unwrap_or(""),
            f.str("signature").unwrap_or(""),
        )?;
        if jws.header_str("url") != Some(self.url.as_str()) {
            return Err(unauthorized(format!("the JWS url header must be {}", self.url)));
        }
        let nonce = jws.header_str("nonce").unwrap_or("");
        if nonce.is_empty() || !self.pki.acme.take_nonce(nonce) {
            return Err(problem(400, "badNonce", "the nonce is unknown, used or expired"));
        }
        let has_jwk = jws.header.get("jwk").is_some();
        let has_kid = jws.header.get("kid").is_some();
        if has_jwk == has_kid {
            return Err(malformed("the JWS must carry exactly one of jwk and kid"));
        }
        match parts.as_slice() {
            ["new-account"] => self.new_account(&jws).await,
            ["revoke-cert"] if has_jwk => self.revoke(&jws, None).await,
            _ if has_jwk => Err(malformed("this request must be signed with the account's key (kid)")),
            _ => {
                let acct = self.account_for(&jws).await?;
                match parts.as_slice() {
                    ["new-order"] => self.new_order(&acct, &jws).await,
                    ["account", id] => self.account_update(&acct, id, &jws).await,
                    ["account", id, "orders"] => self.account_orders(&acct, id).await,
                    ["order", id] => self.order_get(&acct, id).await,
                    ["order", id, "finalize"] => self.finalize(req, &acct, id, &jws).await,
                    ["order", id, "cert"] => self.cert(&acct, id).await,
                    ["authorization", id] => self.authz(&acct, id, &jws).await,
                    ["challenge", id, kind] => self.challenge(&acct, id, kind).await,
                    ["revoke-cert"] => self.revoke(&jws, Some(&acct)).await,
                    ["key-change"] => self.key_change(&acct, &jws).await,
                    _ => Err(problem(404, "malformed", format!("unknown ACME resource {op:?}"))),
                }
            }
        }
    }

    fn directory_doc(&self) -> Response {
        let eab = self.cfg.eab_policy != "not-required";
        let d = json!({
            "newNonce": format!("{}new-nonce", self.base),
            "newAccount": format!("{}new-account", self.base),
            "newOrder": format!("{}new-order", self.base),
            "revokeCert": format!("{}revoke-cert", self.base),
            "keyChange": format!("{}key-change", self.base),
            "meta": {"externalAccountRequired": eab},
        });
        answer(200, "application/json", d.to_string().into_bytes(), vec![])
    }

    fn account_url(&self, id: &str) -> String {
        format!("{}account/{id}", self.base)
    }

    fn account_doc(&self, a: &Account) -> Value {
        let mut d = json!({
            "status": a.status,
            "orders": format!("{}account/{}/orders", self.base, a.id),
        });
        if !a.contact.is_empty() {
            d["contact"] = json!(a.contact);
        }
        d
    }

    async fn account_for(&self, jws: &Jws) -> PResult<Account> {
        let kid = jws.header_str("kid").unwrap_or("");
        let id = kid
            .strip_prefix(&format!("{}account/", self.base))
            .or_else(|| kid.rsplit_once("/account/").map(|(_, id)| id))
            .ok_or_else(|| problem(400, "accountDoesNotExist", "the kid is not an account URL of this server"))?;
        let a: Account = get_json(self.s, &format!("acme/account/{id}"))
            .await?
            .ok_or_else(|| problem(400, "accountDoesNotExist", "no such account"))?;
        jws.verify(&a.jwk)?;
        if a.directory != self.directory {
            return Err(malformed(format!("the account belongs to the ACME directory {}", a.directory)));
        }
        if a.status != "valid" {
            return Err(unauthorized(format!("the account is {}", a.status)));
        }
        if self.cfg.eab_policy == "always-required" && a.eab_key_id.is_empty() {
            return Err(problem(
                401,
                "externalAccountRequired",
                "the ACME configuration requires accounts bound to an external account",
            ));
        }
        Ok(a)
    }

    async fn new_account(&self, jws: &Jws) -> PResult<Response> {
        let jwk = jws.header.get("jwk").and_then(Value::as_object).ok_or_else(|| malformed("jwk is not an object"))?;
        jws.verify(jwk)?;
        let tp = jws::thumbprint(jwk)?;
        let p = jws.payload_json()?;
        if let Some(id) = get_json::<String>(self.s, &tp_key(&self.directory, &tp)).await? {
            if let Some(a) = get_json::<Account>(self.s, &format!("acme/account/{id}")).await? {
                if a.status != "valid" {
                    return Err(unauthorized(format!("the account is {}", a.status)));
                }
                return Ok(self.json(200, &self.account_doc(&a), vec![("Location", self.account_url(&a.id))]));
            }
        }
        if p.get("onlyReturnExisting").and_then(Value::as_bool) == Some(true) {
            return Err(problem(400, "accountDoesNotExist", "no account exists for this key"));
        }
        let contact: Vec<String> = match p.get("contact") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a.iter().map(|c| c.as_str().unwrap_or("").to_string()).collect(),
            Some(_) => return Err(malformed("contact must be a list of URLs")),
        };
        for c in &contact {
            if !c.starts_with("mailto:") || c.len() <= "mailto:".len() {
                return Err(problem(
                    400,
                    "unsupportedContact",
                    format!("unsupported contact {c:?}: only mailto: URLs"),
                ));
            }
        }
        let _g = self.pki.acme.lock.lock().await;
        let eab_key_id = match p.get("externalAccountBinding") {
            Some(b) if !b.is_null() => self.check_eab(b, jwk).await?,
            _ if self.cfg.eab_policy != "not-required" => {
                return Err(problem(
                    401,
                    "externalAccountRequired",
                    "this server requires an external account binding for new accounts",
                ))
            }
            _ => String::new(),
        };
        let a = Account {
            id: uuid::Uuid::new_v4().to_string(),
            jwk: serde_json::from_str(&jws::canonical_jwk(jwk)?).unwrap_or_default(),
            thumbprint: tp.clone(),
            status: "valid".into(),
            contact,
            created: crate::now(),
            eab_key_id: eab_key_id.clone(),
            directory: self.directory.clone(),
            status_changed: 0,
        };
        put_json(self.s, &format!("acme/account/{}", a.id), &a).await?;
        put_json(self.s, &tp_key(&a.directory, &tp), &a.id).await?;
        if !eab_key_id.is_empty() {
            self.s.delete(&format!("acme/eab/{eab_key_id}")).await?;
        }
        Ok(self.json(201, &self.account_doc(&a), vec![("Location", self.account_url(&a.id))]))
    }

    /// Checks an external account binding (RFC 8555 section 7.3.4); the key's id.
    async fn check_eab(&self, b: &Value, jwk: &Map<String, Value>) -> PResult<String> {
        let field = |n: &str| b.get(n).and_then(Value::as_str).unwrap_or("");
        let inner = Jws::parse(field("protected"), field("payload"), field("signature"))?;
        let kid = inner.header_str("kid").unwrap_or("");
        if inner.header_str("url") != Some(self.url.as_str()) {
            return Err(malformed("the external account binding's url must be the new-account URL"));
        }
        if inner.header.contains_key("nonce") {
            return Err(malformed("the external account binding must not carry a nonce"));
        }
        let e: EabEntry = get_json(self.s, &format!("acme/eab/{kid}"))
            .await?
            .ok_or_else(|| unauthorized("the external account binding's key id is unknown or used"))?;
        if e.acme_directory != self.directory {
            return Err(unauthorized(format!(
                "the external account binding key belongs to {} and not to {}",
                e.acme_directory, self.directory
            )));
        }
        let mac_key = b64d(&e.key, "the EAB key")
            .map_err(|e| problem(500, "serverInternal", format!("the stored EAB key is malformed: {}", e.detail)))?;
        inner.verify_hmac(&mac_key)?;
        let bound: Map<String, Value> = serde_json::from_slice(&inner.payload)
            .map_err(|e| malformed(format!("the binding's payload is not a JWK: {e}")))?;
        if jws::thumbprint(&bound)? != jws::thumbprint(jwk)? {
            return Err(malformed("the external account binding is for another key"));
        }
        Ok(e.id)
    }

    async fn account_update(&self, a: &Account, id: &str, jws: &Jws) -> PResult<Response> {
        if id != a.id {
            return Err(unauthorized("the kid is not this account"));
        }
        let p = jws.payload_json()?;
        let mut a = a.clone();
        if let Some(st) = p.get("status").and_then(Value::as_str) {
            if st != "deactivated" {
                return Err(malformed("an account's status can only be set to deactivated"));
            }
            a.status = st.into();
            a.status_changed = crate::now();
        }
        if let Some(Value::Array(c)) = p.get("contact") {
            let c: Vec<String> = c.iter().map(|c| c.as_str().unwrap_or("").to_string()).collect();
            if c.iter().any(|x| !x.starts_with("mailto:")) {
                return Err(problem(400, "unsupportedContact", "only mailto: contacts are supported"));
            }
            a.contact = c;
        }
        put_json(self.s, &format!("acme/account/{}", a.id), &a).await?;
        Ok(self.json(200, &self.account_doc(&a), vec![("Location", self.account_url(&a.id))]))
    }

    async fn account_orders(&self, a: &Account, id: &str) -> PResult<Response> {
        if id != a.id {
            return Err(unauthorized("the kid is not this account"));
        }
        let ids = self.s.list(&format!("acme/account-orders/{id}/")).await?;
        let urls: Vec<String> = ids.iter().map(|o| format!("{}order/{o}", self.base)).collect();
        Ok(self.json(200, &json!({"orders": urls}), vec![]))
    }

    async fn new_order(&self, a: &Account, jws: &Jws) -> PResult<Response> {
        let p = jws.payload_json()?;
        if p.get("notBefore").is_some_and(|v| !v.is_null()) || p.get("notAfter").is_some_and(|v| !v.is_null()) {
            return Err(malformed("notBefore and notAfter are not supported: the role or mount sets the lifetime"));
        }
        let ids: Vec<Identifier> = serde_json::from_value(p.get("identifiers").cloned().unwrap_or(Value::Null))
            .map_err(|e| malformed(format!("identifiers must be a list of {{type, value}}: {e}")))?;
        if ids.is_empty() {
            return Err(malformed("an order needs at least one identifier"));
        }
        let mut idents = Vec::new();
        for i in ids {
            let value = i.value.trim().trim_end_matches('.').to_ascii_lowercase();
            match i.kind.as_str() {
                "dns" => {
                    let bare = value.strip_prefix("*.").unwrap_or(&value);
                    if bare.is_empty()
                        || bare.parse::<std::net::IpAddr>().is_ok()
                        || !bare.split('.').all(|l| {
                            !l.is_empty()
                                && l.len() <= 63
                                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                                && !l.starts_with('-')
                                && !l.ends_with('-')
                        })
                    {
                        return Err(problem(400, "rejectedIdentifier", format!("{value:?} is not a valid DNS name")));
                    }
                }
                "ip" => {
                    if value.parse::<std::net::IpAddr>().is_err() {
                        return Err(problem(400, "rejectedIdentifier", format!("{value:?} is not an IP address")));
                    }
                }
                k => return Err(problem(400, "unsupportedIdentifier", format!("unsupported identifier type {k:?}"))),
            }
            if !idents.iter().any(|x: &Identifier| x.kind == i.kind && x.value == value) {
                idents.push(Identifier { kind: i.kind, value });
            }
        }
        if let Some((name, role)) = &self.policy.role {
            let sub = subject_of(&idents, "");
            role.check_names(&sub).map_err(|e| {
                problem(400, "rejectedIdentifier", format!("role {name:?} does not allow the order: {e}"))
            })?;
        }
        let expires = crate::now() + ORDER_LIFETIME;
        let mut authzs = Vec::new();
        let mut stored = Vec::new();
        for i in &idents {
            let wildcard = i.value.starts_with("*.");
            let kinds: &[&str] = match (i.kind.as_str(), wildcard) {
                ("ip", _) => &["http-01"],
                (_, true) => &["dns-01"],
                _ => &["http-01", "dns-01", "tls-alpn-01"],
            };
            let challenges = kinds
                .iter()
                .map(|k| {
                    let mut t = [0u8; 32];
                    aws_lc_rs::rand::fill(&mut t)
                        // drop-cause: aws-lc's Unspecified says nothing more.
                        .map_err(|_| problem(500, "serverInternal", "the random generator failed"))?;
                    Ok(Challenge {
                        kind: (*k).into(),
                        token: b64e(&t),
                        status: "pending".into(),
                        validated: 0,
                        error: None,
                    })
                })
                .collect::<PResult<Vec<_>>>()?;
            let z = Authz {
                id: uuid::Uuid::new_v4().to_string(),
                account: a.id.clone(),
                identifier: Identifier {
                    kind: i.kind.clone(),
                    value: i.value.strip_prefix("*.").unwrap_or(&i.value).to_string(),
                },
                wildcard,
                status: "pending".into(),
                expires,
                challenges,
            };
            authzs.push(z.id.clone());
            stored.push(z);
        }
        for z in &stored {
            put_json(self.s, &format!("acme/authz/{}", z.id), z).await?;
        }
        let o = Order {
            id: uuid::Uuid::new_v4().to_string(),
            account: a.id.clone(),
            status: "pending".into(),
            identifiers: idents,
            authzs,
            expires,
            serial: String::new(),
            certificate: String::new(),
        };
        put_json(self.s, &format!("acme/order/{}", o.id), &o).await?;
        put_json(self.s, &format!("acme/account-orders/{}/{}", a.id, o.id), &json!({})).await?;
        let doc = self.order_doc(&o);
        Ok(self.json(201, &doc, vec![("Location", format!("{}order/{}", self.base, o.id))]))
    }

    fn order_doc(&self, o: &Order) -> Value {
        let mut d = json!({
            "status": o.status,
            "expires": crate::rfc3339(o.expires),
            "identifiers": o.identifiers,
            "authorizations": o.authzs.iter().map(|z| format!("{}authorization/{z}", self.base)).collect::<Vec<_>>(),
            "finalize": format!("{}order/{}/finalize", self.base, o.id),
        });
        if o.status == "valid" {
            d["certificate"] = json!(format!("{}order/{}/cert", self.base, o.id));
        }
        d
    }

    /// The order, its status brought up to date from its authorizations.
    async fn load_order(&self, a: &Account, id: &str) -> PResult<Order> {
        let mut o: Order = get_json(self.s, &format!("acme/order/{id}"))
            .await?
            .ok_or_else(|| problem(404, "malformed", "no such order"))?;
        if o.account != a.id {
            return Err(unauthorized("the order belongs to another account"));
        }
        if matches!(o.status.as_str(), "pending" | "ready") {
            let mut all_valid = true;
            for z in &o.authzs {
                let st = get_json::<Authz>(self.s, &format!("acme/authz/{z}")).await?.map(|z| z.status);
                match st.as_deref() {
                    Some("valid") => {}
                    Some("pending") => all_valid = false,
                    _ => {
                        o.status = "invalid".into();
                        all_valid = false;
                        break;
                    }
                }
            }
            if o.status != "invalid" && o.expires < crate::now() {
                o.status = "invalid".into();
            } else if all_valid && o.status == "pending" {
                o.status = "ready".into();
            }
            put_json(self.s, &format!("acme/order/{id}"), &o).await?;
        }
        Ok(o)
    }

    async fn order_get(&self, a: &Account, id: &str) -> PResult<Response> {
        let o = self.load_order(a, id).await?;
        Ok(self.json(200, &self.order_doc(&o), vec![]))
    }

    async fn finalize(&self, req: &Request, a: &Account, id: &str, jws: &Jws) -> PResult<Response> {
        let _g = self.pki.acme.lock.lock().await;
        let mut o = self.load_order(a, id).await?;
        if o.status != "ready" {
            return Err(problem(403, "orderNotReady", format!("the order is {}, not ready", o.status)));
        }
        let p = jws.payload_json()?;
        let der = b64d(p.get("csr").and_then(Value::as_str).unwrap_or(""), "csr")?;
        if der.is_empty() {
            return Err(problem(400, "badCSR", "the csr is missing"));
        }
        let pem = der_to_pem("CERTIFICATE REQUEST", &der);
        let csr = crate::ca::parse_csr(&pem).map_err(|e| problem(400, "badCSR", e.to_string()))?;
        // The CSR must name exactly the order's identifiers.
        let mut names: Vec<(String, String)> = Vec::new();
        let cn = csr.params.distinguished_name.get(&rcgen::DnType::CommonName).map(crate::dn_text).unwrap_or_default();
        if !cn.is_empty() {
            let kind = if cn.parse::<std::net::IpAddr>().is_ok() { "ip" } else { "dns" };
            names.push((kind.into(), cn.to_ascii_lowercase()));
        }
        for san in &csr.params.subject_alt_names {
            match san {
                rcgen::SanType::DnsName(n) => names.push(("dns".into(), n.as_str().to_ascii_lowercase())),
                rcgen::SanType::IpAddress(ip) => names.push(("ip".into(), ip.to_string())),
                _ => {
                    return Err(problem(400, "badCSR", "the CSR names something other than DNS names and IP addresses"))
                }
            }
        }
        names.sort();
        names.dedup();
        let mut want: Vec<(String, String)> = o.identifiers.iter().map(|i| (i.kind.clone(), i.value.clone())).collect();
        want.sort();
        if names != want {
            return Err(problem(400, "badCSR", "the CSR's names are not exactly the order's identifiers"));
        }
        let sub = subject_of(&o.identifiers, &cn);
        let mut data = Map::new();
        data.insert("csr".into(), json!(pem));
        data.insert("common_name".into(), json!(sub.common_name));
        data.insert("alt_names".into(), json!(sub.dns_names.join(",")));
        data.insert("ip_sans".into(), json!(sub.ips.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")));
        data.insert("issuer_ref".into(), json!(self.policy.issuer_ref));
        let (path, route, role) = match &self.policy.role {
            Some((name, role)) => {
                let mut role = role.clone();
                if !self.cfg.allow_role_ext_key_usage {
                    role.ext_key_usage.clear();
                    role.server_flag = true;
                    role.client_flag = false;
                    role.code_signing_flag = false;
                    role.email_protection_flag = false;
                }
                (format!("sign/{name}"), Route::Sign, Some(role))
            }
            None => {
                data.insert("ext_key_usage".into(), json!("ServerAuth"));
                ("sign-verbatim".to_string(), Route::SignVerbatim, None)
            }
        };
        let routed = self
            .pki
            .paths
            .route(Operation::Update, &path, &data)
            .map_err(|e| problem(500, "serverInternal", e.to_string()))?;
        let signed = self
            .pki
            .issue_with(req, route, &routed.fields, role)
            .await
            .map_err(|e| problem(400, "badCSR", format!("the CSR cannot be signed: {e}")))?;
        let d = signed.data.unwrap_or_default();
        let leaf = d.get("certificate").and_then(Value::as_str).unwrap_or("").to_string();
        let mut chain = format!("{}\n", leaf.trim_end());
        for c in d.get("ca_chain").and_then(Value::as_array).into_iter().flatten() {
            chain.push_str(c.as_str().unwrap_or("").trim_end());
            chain.push('\n');
        }
        o.serial = d.get("serial_number").and_then(Value::as_str).unwrap_or("").to_string();
        o.certificate = chain;
        o.status = "valid".into();
        put_json(self.s, &format!("acme/order/{}", o.id), &o).await?;
        put_json(self.s, &format!("acme/cert/{}", o.serial.replace(':', "-")), &a.id).await?;
        Ok(self.json(200, &self.order_doc(&o), vec![("Location", format!("{}order/{}", self.base, o.id))]))
    }

    async fn cert(&self, a: &Account, id: &str) -> PResult<Response> {
        let o = self.load_order(a, id).await?;
        if o.status != "valid" || o.certificate.is_empty() {
            return Err(problem(403, "orderNotReady", "the order has no certificate yet"));
        }
        Ok(answer(
            200,
            "application/pem-certificate-chain",
            o.certificate.into_bytes(),
            vec![("Replay-Nonce", self.nonce()), ("Link", self.index_link())],
        ))
    }

    fn authz_doc(&self, z: &Authz) -> Value {
        let mut d = json!({
            "identifier": {"type": z.identifier.kind, "value": z.identifier.value},
            "status": z.status,
            "expires": crate::rfc3339(z.expires),
            "challenges": z.challenges.iter().map(|c| self.challenge_doc(z, c)).collect::<Vec<_>>(),
        });
        if z.wildcard {
            d["wildcard"] = json!(true);
        }
        d
    }

    fn challenge_doc(&self, z: &Authz, c: &Challenge) -> Value {
        let mut d = json!({
            "type": c.kind,
            "url": format!("{}challenge/{}/{}", self.base, z.id, c.kind),
            "token": c.token,
            "status": c.status,
        });
        if c.validated > 0 {
            d["validated"] = json!(crate::rfc3339(c.validated));
        }
        if let Some(e) = &c.error {
            d["error"] = e.clone();
        }
        d
    }

    async fn load_authz(&self, a: &Account, id: &str) -> PResult<Authz> {
        let mut z: Authz = get_json(self.s, &format!("acme/authz/{id}"))
            .await?
            .ok_or_else(|| problem(404, "malformed", "no such authorization"))?;
        if z.account != a.id {
            return Err(unauthorized("the authorization belongs to another account"));
        }
        if z.status == "pending" && z.expires < crate::now() {
            z.status = "expired".into();
        }
        Ok(z)
    }

    async fn authz(&self, a: &Account, id: &str, jws: &Jws) -> PResult<Response> {
        let _g = self.pki.acme.lock.lock().await;
        let mut z = self.load_authz(a, id).await?;
        let p = jws.payload_json()?;
        if let Some(st) = p.get("status").and_then(Value::as_str) {
            if st != "deactivated" {
                return Err(malformed("an authorization's status can only be set to deactivated"));
            }
            if !matches!(z.status.as_str(), "pending" | "valid") {
                return Err(malformed(format!("the authorization is {}", z.status)));
            }
            z.status = "deactivated".into();
            put_json(self.s, &format!("acme/authz/{id}"), &z).await?;
        }
        Ok(self.json(200, &self.authz_doc(&z), vec![]))
    }

    async fn challenge(&self, a: &Account, id: &str, kind: &str) -> PResult<Response> {
        let _g = self.pki.acme.lock.lock().await;
        let mut z = self.load_authz(a, id).await?;
        let i = z
            .challenges
            .iter()
            .position(|c| c.kind == kind)
            .ok_or_else(|| problem(404, "malformed", format!("the authorization has no {kind} challenge")))?;
        if z.status == "pending" && z.challenges[i].status == "pending" {
            z.challenges[i].status = "processing".into();
            put_json(self.s, &format!("acme/authz/{id}"), &z).await?;
            let key_auth = format!("{}.{}", z.challenges[i].token, a.thumbprint);
            let task = Validation {
                pki: self.pki.clone(),
                storage: Arc::clone(&self.storage),
                authz: id.to_string(),
                kind: kind.to_string(),
                domain: z.identifier.value.clone(),
                token: z.challenges[i].token.clone(),
                key_auth,
                resolver: self.cfg.dns_resolver.clone(),
            };
            tokio::spawn(task.run());
        }
        let up = format!("<{}authorization/{}>;rel=\"up\"", self.base, z.id);
        Ok(self.json(200, &self.challenge_doc(&z, &z.challenges[i]), vec![("Link", up)]))
    }

    async fn revoke(&self, jws: &Jws, acct: Option<&Account>) -> PResult<Response> {
        let p = jws.payload_json()?;
        let der = b64d(p.get("certificate").and_then(Value::as_str).unwrap_or(""), "certificate")?;
        let pem = der_to_pem("CERTIFICATE", &der);
        let facts =
            crate::ca::cert_facts(&pem).map_err(|e| malformed(format!("the certificate cannot be parsed: {e}")))?;
        let serial = crate::ca::serial_colons(&facts.serial);
        let key = format!("certs/{}", serial.replace(':', "-"));
        let _g = self.pki.lock.lock().await;
        let entry: crate::CertEntry =
            get_json(self.s, &key).await?.ok_or_else(|| unauthorized("this server did not issue the certificate"))?;
        if crate::ca::pem_to_der(&entry.certificate).ok().as_deref() != Some(&der[..]) {
            return Err(unauthorized("this server did not issue the certificate"));
        }
        match acct {
            Some(a) => {
                let owner = get_json::<String>(self.s, &format!("acme/cert/{}", serial.replace(':', "-"))).await?;
                if owner.as_deref() != Some(a.id.as_str()) {
                    return Err(unauthorized("the certificate was not issued to this account"));
                }
            }
            None => {
                let jwk = jws
                    .header
                    .get("jwk")
                    .and_then(Value::as_object)
                    .ok_or_else(|| malformed("jwk is not an object"))?;
                jws.verify(jwk)?;
                if !jws::jwk_matches_spki(jwk, &facts.spki) {
                    return Err(unauthorized("the JWS is not signed with the certificate's key"));
                }
            }
        }
        if entry.revocation_time != 0 {
            return Err(problem(400, "alreadyRevoked", "the certificate is already revoked"));
        }
        self.pki.mark_revoked(self.s, &key, entry).await?;
        Ok(answer(200, "", Vec::new(), vec![("Replay-Nonce", self.nonce()), ("Link", self.index_link())]))
    }

    async fn key_change(&self, a: &Account, jws: &Jws) -> PResult<Response> {
        let outer = jws.payload_json()?;
        let field = |n: &str| outer.get(n).and_then(Value::as_str).unwrap_or("");
        let inner = Jws::parse(field("protected"), field("payload"), field("signature"))?;
        if inner.header_str("url") != Some(self.url.as_str()) {
            return Err(malformed("the inner JWS's url must be the key-change URL"));
        }
        let new_jwk = inner
            .header
            .get("jwk")
            .and_then(Value::as_object)
            .ok_or_else(|| malformed("the inner JWS must carry the new key as jwk"))?;
        inner.verify(new_jwk)?;
        let p = inner.payload_json()?;
        if p.get("account").and_then(Value::as_str) != Some(self.account_url(&a.id).as_str()) {
            return Err(malformed("the inner payload's account is not the signing account"));
        }
        let old = p.get("oldKey").and_then(Value::as_object).ok_or_else(|| malformed("oldKey is missing"))?;
        if jws::thumbprint(old)? != a.thumbprint {
            return Err(malformed("oldKey is not the account's key"));
        }
        let tp = jws::thumbprint(new_jwk)?;
        let _g = self.pki.acme.lock.lock().await;
        if let Some(other) = get_json::<String>(self.s, &tp_key(&a.directory, &tp)).await? {
            return Err(Problem {
                status: 409,
                kind: "malformed",
                detail: format!("the new key already belongs to account {}", self.account_url(&other)),
            });
        }
        let mut a = a.clone();
        self.s.delete(&tp_key(&a.directory, &a.thumbprint)).await?;
        a.jwk = serde_json::from_str(&jws::canonical_jwk(new_jwk)?).unwrap_or_default();
        a.thumbprint = tp.clone();
        put_json(self.s, &format!("acme/account/{}", a.id), &a).await?;
        put_json(self.s, &tp_key(&a.directory, &tp), &a.id).await?;
        Ok(self.json(200, &self.account_doc(&a), vec![("Location", self.account_url(&a.id))]))
    }
}

/// Where an account is found by its key: accounts belong to the directory they were made in.
fn tp_key(directory: &str, thumbprint: &str) -> String {
    format!("acme/thumbprint/{directory}/{thumbprint}")
}

fn der_to_pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The names of an order as a subject for the role's checks.
fn subject_of(ids: &[Identifier], cn: &str) -> crate::ca::Subject {
    let mut sub = crate::ca::Subject::default();
    for i in ids {
        if i.kind == "ip" {
            if let Ok(ip) = i.value.parse() {
                sub.ips.push(ip);
            }
        } else {
            sub.dns_names.push(i.value.clone());
        }
    }
    sub.common_name = if cn.is_empty() {
        ids.iter().find(|i| i.kind == "dns").map(|i| i.value.clone()).unwrap_or_default()
    } else {
        cn.to_string()
    };
    sub
}

/// A challenge being validated in the background.
struct Validation {
    pki: Pki,
    storage: Arc<dyn StorageView>,
    authz: String,
    kind: String,
    domain: String,
    token: String,
    key_auth: String,
    resolver: String,
}

impl Validation {
    async fn attempt(&self) -> std::result::Result<(), (String, &'static str)> {
        match self.kind.as_str() {
            "http-01" => validate::http01(&self.domain, &self.token, &self.key_auth)
                .await
                .map_err(|e| (e.to_string(), "incorrectResponse")),
            "dns-01" => {
                let digest =
                    b64e(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, self.key_auth.as_bytes()).as_ref());
                validate::dns01(&self.resolver, &self.domain, &digest).await.map_err(|e| (e.to_string(), "dns"))
            }
            "tls-alpn-01" => {
                let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, self.key_auth.as_bytes());
                validate::tls_alpn01(&self.domain, digest.as_ref()).await.map_err(|e| (e.to_string(), "tls"))
            }
            _ => Err(("unsupported challenge".into(), "malformed")),
        }
    }

    async fn run(self) {
        let mut outcome = Err(("not attempted".to_string(), "serverInternal"));
        for n in 0..ATTEMPTS {
            if n > 0 {
                tokio::time::sleep(std::time::Duration::from_secs(n * RETRY_STEP_SECS)).await;
            }
            outcome = self.attempt().await;
            if outcome.is_ok() {
                break;
            }
        }
        let _g = self.pki.acme.lock.lock().await;
        let key = format!("acme/authz/{}", self.authz);
        let Ok(Some(mut z)) = get_json::<Authz>(self.storage.as_ref(), &key).await else { return };
        let Some(c) = z.challenges.iter_mut().find(|c| c.kind == self.kind) else { return };
        if c.status != "processing" {
            return;
        }
        match outcome {
            Ok(()) => {
                c.status = "valid".into();
                c.validated = crate::now();
                if z.status == "pending" {
                    z.status = "valid".into();
                }
            }
            Err((detail, kind)) => {
                c.status = "invalid".into();
                c.error = Some(
                    json!({"type": format!("urn:ietf:params:acme:error:{kind}"), "detail": detail, "status": 400}),
                );
                if z.status == "pending" {
                    z.status = "invalid".into();
                }
            }
        }
        let _ = put_json(self.storage.as_ref(), &key, &z).await;
    }
}

/// What `tidy_acme` did, for `tidy-status`.
#[derive(Default, Clone, Copy)]
pub struct TidyCounts {
    pub orders_deleted: u64,
    pub accounts_revoked: u64,
    pub accounts_deleted: u64,
    pub accounts_total: u64,
}

/// `tidy_acme`: an order goes (with its authorizations) `safety_buffer` after its certificate
/// expires, or after the order itself expired when it produced none; a valid account older than
/// `account_buffer` with no order left is revoked, and a revoked or deactivated one is deleted
/// `account_buffer` after that.
pub async fn tidy(pki: &Pki, s: &dyn StorageView, safety_buffer: i64, account_buffer: i64) -> Result<TidyCounts> {
    let _g = pki.acme.lock.lock().await;
    let t = crate::now();
    let mut counts = TidyCounts::default();
    for id in s.list("acme/order/").await? {
        let Some(o) = get_json::<Order>(s, &format!("acme/order/{id}")).await? else { continue };
        let cert_end = if o.certificate.is_empty() {
            None
        } else {
            crate::ca::cert_facts(&o.certificate).ok().map(|f| f.not_after)
        };
        let gone = match cert_end {
            Some(end) => end + safety_buffer < t,
            None => o.expires < t,
        };
        if gone {
            for z in &o.authzs {
                s.delete(&format!("acme/authz/{z}")).await?;
            }
            s.delete(&format!("acme/account-orders/{}/{id}", o.account)).await?;
            s.delete(&format!("acme/order/{id}")).await?;
            counts.orders_deleted += 1;
        }
    }
    for id in s.list("acme/account/").await? {
        let Some(mut a) = get_json::<Account>(s, &format!("acme/account/{id}")).await? else { continue };
        if a.status == "valid" {
            let idle = s.list(&format!("acme/account-orders/{id}/")).await?.is_empty();
            if idle && a.created + account_buffer < t {
                a.status = "revoked".into();
                a.status_changed = t;
                put_json(s, &format!("acme/account/{id}"), &a).await?;
                counts.accounts_revoked += 1;
            }
        } else if a.status_changed + account_buffer < t {
            s.delete(&tp_key(&a.directory, &a.thumbprint)).await?;
            s.delete(&format!("acme/account/{id}")).await?;
            counts.accounts_deleted += 1;
            continue;
        }
        counts.accounts_total += 1;
    }
    Ok(counts)
}
