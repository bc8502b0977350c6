#![forbid(unsafe_code)]
//! The Kubernetes auth method: a pod logs in with its service-account token; Coffer asks the
//! cluster's API server whether the token is valid (a TokenReview, `authentication.k8s.io/v1`)
//! and checks the service account against the role.
//!
//! Login, in order: the role (its `token_bound_cidrs` against the client's address); the JWT's
//! claims (verified with `pem_keys` when configured, read unverified otherwise — the TokenReview
//! is what proves it); the issuer when `disable_iss_validation` is false; the service account's
//! name and namespace against the role's globs, or the namespace's labels (read from the API
//! server) against the role's label selector; then the TokenReview, whose answer must say
//! `authenticated`, name the same service account (and uid), and list the role's `audience`
//! when it has one. An API server that cannot be reached answers 503 with its address.
//!
//! Storage (the mount's own view), JSON: `config` → [`Config`] (the reviewer JWT included,
//! never returned: a read shows `token_reviewer_jwt_set`), `role/<name>` → [`Role`].

use async_trait::async_trait;
use base64::Engine as _;
use coffer_sdk::field::{parse_bool, parse_string, parse_string_slice, FieldType};
use coffer_sdk::framework::{FieldData, FieldSpec, Handler, PathFlags, PathSpec, Paths};
use coffer_sdk::tokenutil::{addr_in_cidrs, token_fields, TokenParams};
use coffer_sdk::{ErrorKind, LogicalError, Operation, Request, Response, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::sync::OnceLock;
use std::time::Duration;

const NAME: &str = r"[A-Za-z0-9_](?:[A-Za-z0-9_.\-]*[A-Za-z0-9_])?";
/// Where a pod finds its cluster's CA and its own token (used unless `disable_local_ca_jwt`).
const LOCAL_CA: &str = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";
const LOCAL_JWT: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";
const DEFAULT_ISSUER: &str = "kubernetes/serviceaccount";
const UNAUTHORIZED: &str =
    "lookup failed: service account unauthorized; this could mean it has been deleted or recreated with a new token";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Config,
    RoleList,
    Role,
    Login,
}

#[derive(Clone, Serialize, Deserialize, Default)]
pub struct Config {
    kubernetes_host: String,
    #[serde(default)]
    kubernetes_ca_cert: String,
    #[serde(default)]
    token_reviewer_jwt: String,
    #[serde(default)]
    pem_keys: Vec<String>,
    #[serde(default)]
    disable_local_ca_jwt: bool,
    #[serde(default)]
    issuer: String,
    #[serde(default = "yes")]
    disable_iss_validation: bool,
}

fn yes() -> bool {
    true
}

#[derive(Clone, Serialize, Deserialize, Default)]
pub struct Role {
    #[serde(default)]
    bound_service_account_names: Vec<String>,
    #[serde(default)]
    bound_service_account_namespaces: Vec<String>,
    #[serde(default)]
    bound_service_account_namespace_selector: String,
    #[serde(default)]
    audience: String,
    #[serde(default)]
    alias_name_source: String,
    #[serde(flatten)]
    token: TokenParams,
}

pub struct Kubernetes {
    paths: Paths<Route>,
}

impl Default for Kubernetes {
    fn default() -> Self {
        Self::new()
    }
}

fn bad(m: impl Into<String>) -> LogicalError {
    LogicalError::bad_request(m)
}

fn denied(m: impl Into<String>) -> LogicalError {
    LogicalError::new(ErrorKind::PermissionDenied, m)
}

fn build_specs() -> Vec<(Route, PathSpec)> {
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let s = |n: &'static str, d: &'static str| FieldSpec::new(n, FieldType::String, d);
    let l = |n: &'static str, d: &'static str| FieldSpec::new(n, FieldType::CommaStringSlice, d);
    let b = |n: &'static str, d: &'static str| FieldSpec::new(n, FieldType::Bool, d);
    let mut role_fields = vec![
        s("name", "Name of the role"),
        l("bound_service_account_names", "Service account names allowed to log in (`*` globs)"),
        l("bound_service_account_namespaces", "Namespaces allowed to log in (`*` globs)"),
        s("bound_service_account_namespace_selector", "A LabelSelector (JSON) the namespace's labels must match"),
        s("audience", "An audience the TokenReview must confirm"),
        s("alias_name_source", "serviceaccount_uid (default) or serviceaccount_name (namespace/name)"),
    ];
    role_fields.extend(token_fields());
    vec![
        (
            Route::Config,
            PathSpec {
                flags: PathFlags::NORMAL,
                pattern: "config",
                fields: vec![
                    s("kubernetes_host", "The API server's URL (https://host:port)"),
                    s("kubernetes_ca_cert", "PEM CA certificate of the API server"),
                    s("token_reviewer_jwt", "The JWT Coffer presents to create TokenReviews (never returned)"),
                    l("pem_keys", "PEM public keys that verify service-account JWTs before the review"),
                    b("disable_local_ca_jwt", "Do not read the pod's own CA and token files"),
                    s("issuer", "The iss service-account JWTs must carry (with disable_iss_validation false)"),
                    b("disable_iss_validation", "Skip the issuer check (default true)"),
                    b("use_annotations_as_alias_metadata", "Not supported (false only)"),
                ],
                operations: vec![
                    (Operation::Read, "Read the configuration"),
                    (Operation::Create, "Configure the method"),
                    (Operation::Update, "Configure the method"),
                ],
                passthrough: false,
                synopsis: "Configure the Kubernetes method",
                description: "The API server that reviews tokens, its CA, and the reviewer's JWT.",
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
                fields: role_fields,
                operations: vec![
                    (Operation::Create, "Create the role"),
                    (Operation::Update, "Update the role"),
                    (Operation::Read, "Read the role"),
                    (Operation::Delete, "Delete the role"),
                ],
                passthrough: false,
                synopsis: "Manage a role",
                description: "Which service accounts may log in, and what their tokens get.",
            },
        ),
        (
            Route::Login,
            PathSpec {
                flags: PathFlags::NORMAL.unauthenticated(),
                pattern: "login",
                fields: vec![s("role", "The role to log in with"), s("jwt", "The service account's JWT")],
                operations: vec![(Operation::Update, "Log in with a service-account token")],
                passthrough: false,
                synopsis: "Log in with a service-account token",
                description: "Checks the token with a TokenReview and returns a Coffer token.",
            },
        ),
    ]
}

fn specs_static() -> &'static [(Route, PathSpec)] {
    static P: OnceLock<Vec<(Route, PathSpec)>> = OnceLock::new();
    P.get_or_init(build_specs)
}

use coffer_sdk::strutil::glob_match;

/// An RFC 1123 label (what a namespace name is): lower-case alphanumerics and `-`, at most 63.
fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A Kubernetes LabelSelector (`matchLabels`, `matchExpressions` with In, NotIn, Exists,
/// DoesNotExist), checked at role write and matched against a namespace's labels.
fn parse_selector(text: &str) -> Result<Map<String, Value>> {
    let v: Value = serde_json::from_str(text).map_err(|e| {
        bad(format!("invalid bound_service_account_namespace_selector: Coffer takes a LabelSelector in JSON: {e}"))
    })?;
    let Value::Object(m) = v else {
        return Err(bad("invalid bound_service_account_namespace_selector: not a JSON object"));
    };
    for k in m.keys() {
        if k != "matchLabels" && k != "matchExpressions" {
            return Err(bad(format!("invalid bound_service_account_namespace_selector: unknown key {k:?}")));
        }
    }
    if let Some(ml) = m.get("matchLabels") {
        if !ml.as_object().is_some_and(|o| o.values().all(Value::is_string)) {
            return Err(bad(
                "invalid bound_service_account_namespace_selector: matchLabels must map strings to strings",
            ));
        }
    }
    for e in m.get("matchExpressions").and_then(Value::as_array).into_iter().flatten() {
        let op = e.get("operator").and_then(Value::as_str).unwrap_or_default();
        if !matches!(op, "In" | "NotIn" | "Exists" | "DoesNotExist") || e.get("key").and_then(Value::as_str).is_none() {
            return Err(bad(format!("invalid bound_service_account_namespace_selector: bad expression {e}")));
        }
    }
    Ok(m)
}

fn selector_matches(sel: &Map<String, Value>, labels: &Map<String, Value>) -> bool {
    let label = |k: &str| labels.get(k).and_then(Value::as_str);
    let labels_ok = sel
        .get("matchLabels")
        .and_then(Value::as_object)
        .is_none_or(|ml| ml.iter().all(|(k, v)| label(k) == v.as_str()));
    let exprs_ok = sel.get("matchExpressions").and_then(Value::as_array).is_none_or(|es| {
        es.iter().all(|e| {
            let key = e.get("key").and_then(Value::as_str).unwrap_or_default();
            let values: Vec<&str> = e
                .get("values")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            match e.get("operator").and_then(Value::as_str).unwrap_or_default() {
                "In" => label(key).is_some_and(|v| values.contains(&v)),
                "NotIn" => label(key).is_none_or(|v| !values.contains(&v)),
                "Exists" => label(key).is_some(),
                "DoesNotExist" => label(key).is_none(),
                _ => false,
            }
        })
    });
    labels_ok && exprs_ok
}

/// The service account a JWT names, from the legacy secret-token claims or the projected
/// token's `kubernetes.io` claim.
struct ServiceAccount {
    namespace: String,
    name: String,
    uid: String,
    secret_name: String,
}

fn service_account(claims: &Map<String, Value>) -> Option<ServiceAccount> {
    let s = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_string();
    let sa = if let Some(k) = claims.get("kubernetes.io").and_then(Value::as_object) {
        let acct = k.get("serviceaccount");
        ServiceAccount {
            namespace: s(k.get("namespace")),
            name: s(acct.and_then(|a| a.get("name"))),
            uid: s(acct.and_then(|a| a.get("uid"))),
            secret_name: String::new(),
        }
    } else {
        ServiceAccount {
            namespace: s(claims.get("kubernetes.io/serviceaccount/namespace")),
            name: s(claims.get("kubernetes.io/serviceaccount/service-account.name")),
            uid: s(claims.get("kubernetes.io/serviceaccount/service-account.uid")),
            secret_name: s(claims.get("kubernetes.io/serviceaccount/secret.name")),
        }
    };
    (!sa.namespace.is_empty() && !sa.name.is_empty()).then_some(sa)
}

/// The JWT's claims: verified with `pem_keys` when there are any, else read as they are (the
/// TokenReview is the proof).
fn jwt_claims(jwt: &str, pem_keys: &[String]) -> Result<Map<String, Value>> {
    let parts: Vec<&str> = jwt.trim().split('.').collect();
    let malformed = || denied("the jwt is not a JSON Web Token (three base64url parts)");
    if parts.len() != 3 {
        return Err(malformed());
    }
    if !pem_keys.is_empty() {
        // drop-cause: a decoding error of the client's token says nothing more useful than this.
        let header = jsonwebtoken::decode_header(jwt).map_err(|_| malformed())?;
        let mut v = jsonwebtoken::Validation::new(header.alg);
        v.validate_exp = false;
        v.validate_aud = false;
        v.required_spec_claims.clear();
        for pem in pem_keys {
            let key = match header.alg {
                jsonwebtoken::Algorithm::ES256 | jsonwebtoken::Algorithm::ES384 => {
                    jsonwebtoken::DecodingKey::from_ec_pem(pem.as_bytes())
                }
                jsonwebtoken::Algorithm::EdDSA => jsonwebtoken::DecodingKey::from_ed_pem(pem.as_bytes()),
                jsonwebtoken::Algorithm::HS256 | jsonwebtoken::Algorithm::HS384 | jsonwebtoken::Algorithm::HS512 => {
                    return Err(denied("signing algorithm HS* (a shared secret) is not accepted"));
                }
                _ => jsonwebtoken::DecodingKey::from_rsa_pem(pem.as_bytes()),
            };
            if let Ok(k) = key {
                if let Ok(d) = jsonwebtoken::decode::<Map<String, Value>>(jwt, &k, &v) {
                    return Ok(d.claims);
                }
            }
        }
        return Err(denied("the jwt's signature is not valid for any of pem_keys"));
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[1].trim_end_matches('='))
        .ok()
        .and_then(|b| serde_json::from_slice::<Map<String, Value>>(&b).ok())
        .ok_or_else(malformed)
}

/// What a login talks to: the API server's address, its CA, and the reviewer's bearer token.
struct ApiServer {
    host: String,
    agent: ureq::Agent,
    bearer: String,
}

fn read_local(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok().filter(|s| !s.trim().is_empty())
}

fn api_server(c: &Config, login_jwt: &str) -> Result<ApiServer> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let ca = if c.kubernetes_ca_cert.is_empty() && !c.disable_local_ca_jwt {
        read_local(LOCAL_CA).unwrap_or_default()
    } else {
        c.kubernetes_ca_cert.clone()
    };
    let reviewer = if c.token_reviewer_jwt.is_empty() && !c.disable_local_ca_jwt {
        read_local(LOCAL_JWT).map(|s| s.trim().to_string()).unwrap_or_default()
    } else {
        c.token_reviewer_jwt.clone()
    };
    let mut tls = ureq::tls::TlsConfig::builder();
    if !ca.is_empty() {
        let certs: Vec<_> = ureq::tls::parse_pem(ca.as_bytes())
            .filter_map(|i| match i {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
        tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certs));
    }
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(tls.build())
        .timeout_global(Some(Duration::from_secs(10)))
        .timeout_connect(Some(Duration::from_secs(5)))
        .build();
    Ok(ApiServer {
        host: c.kubernetes_host.trim_end_matches('/').to_string(),
        agent: ureq::Agent::new_with_config(config),
        // Without a reviewer JWT the client's own token creates its review, as in Vault.
        bearer: if reviewer.is_empty() { login_jwt.to_string() } else { reviewer },
    })
}

fn unreachable(host: &str, e: ureq::Error) -> LogicalError {
    LogicalError::new(ErrorKind::Unavailable, format!("could not reach the Kubernetes API server at {host}: {e}"))
        .with_source(e)
}

impl ApiServer {
    /// POSTs the TokenReview and returns its `status`.
    fn review(&self, jwt: &str, audience: &str) -> Result<Map<String, Value>> {
        let mut spec = json!({ "token": jwt });
        if !audience.is_empty() {
            spec["audiences"] = json!([audience]);
        }
        let body = json!({ "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec });
        let url = format!("{}/apis/authentication.k8s.io/v1/tokenreviews", self.host);
        let mut resp = self
            .agent
            .post(&url)
            .header("Authorization", &format!("Bearer {}", self.bearer))
            .header("Accept", "application/json")
            .send_json(&body)
            .map_err(|e| unreachable(&self.host, e))?;
        let status = resp.status().as_u16();
        let answer: Value = resp.body_mut().with_config().limit(1 << 20).read_json().unwrap_or(Value::Null);
        match status {
            200 | 201 => {}
            401 | 403 => {
                let msg = answer.get("message").and_then(Value::as_str).unwrap_or_default();
                return Err(denied(format!(
                    "the Kubernetes API server refused to review the token (HTTP {status}: {msg}): check token_reviewer_jwt \
                     and that its service account may create tokenreviews"
                )));
            }
            other => {
                let msg = answer.get("message").and_then(Value::as_str).unwrap_or_default();
                return Err(LogicalError::new(
                    ErrorKind::Unavailable,
                    format!("the Kubernetes API server answered the TokenReview with HTTP {other}: {msg}"),
                ));
            }
        }
        if answer.get("kind").and_then(Value::as_str) != Some("TokenReview") {
            return Err(LogicalError::new(
                ErrorKind::Unavailable,
                "the Kubernetes API server's answer is not a TokenReview",
            ));
        }
        Ok(answer.get("status").and_then(Value::as_object).cloned().unwrap_or_default())
    }

    /// The labels of a namespace (for the role's selector).
    fn namespace_labels(&self, ns: &str) -> Result<Map<String, Value>> {
        let url = format!("{}/api/v1/namespaces/{ns}", self.host);
        let mut resp = self
            .agent
            .get(&url)
            .header("Authorization", &format!("Bearer {}", self.bearer))
            .header("Accept", "application/json")
            .call()
            .map_err(|e| unreachable(&self.host, e))?;
        let status = resp.status().as_u16();
        if status != 200 {
            return Err(denied(format!(
                "namespace not authorized: the API server answered HTTP {status} when reading namespace {ns:?}'s labels"
            )));
        }
        let v: Value = resp.body_mut().with_config().limit(1 << 20).read_json().unwrap_or(Value::Null);
        Ok(v.pointer("/metadata/labels").and_then(Value::as_object).cloned().unwrap_or_default())
    }
}

async fn load<T: serde::de::DeserializeOwned>(req: &Request, key: &str) -> Result<Option<T>> {
    match req.storage.get(key).await? {
        None => Ok(None),
        Some(raw) => serde_json::from_slice(&raw)
            .map(Some)
            // drop-cause: the config holds the reviewer JWT, which a JSON error could quote.
            .map_err(|_| LogicalError::internal(format!("stored {key} is malformed"))),
    }
}

async fn save<T: Serialize>(req: &Request, key: &str, v: &T) -> Result<()> {
    let bytes = serde_json::to_vec(v).map_err(|e| LogicalError::internal(e.to_string()))?;
    req.storage.put(key, &bytes).await
}

fn check_globs(name: &str, list: &[String]) -> Result<()> {
    if list.len() > 1 && list.iter().any(|x| x == "*") {
        return Err(bad(format!("can not mix \"*\" with values in {name:?}")));
    }
    Ok(())
}

impl Kubernetes {
    pub fn new() -> Self {
        Kubernetes { paths: Paths::new(specs_static().to_vec()) }
    }

    async fn write_config(&self, req: &Request) -> Result<Option<Response>> {
        let d = &req.data;
        let get = |k: &str| d.get(k).filter(|v| !v.is_null());
        let text = |k: &str| -> Result<String> {
            get(k).map(|v| parse_string(k, v)).transpose().map(Option::unwrap_or_default)
        };
        let c = Config {
            kubernetes_host: text("kubernetes_host")?,
            kubernetes_ca_cert: text("kubernetes_ca_cert")?,
            token_reviewer_jwt: text("token_reviewer_jwt")?,
            pem_keys: get("pem_keys")
                .map(|v| parse_string_slice("pem_keys", v))
                .transpose()?
                .unwrap_or_default()
                .into_iter()
                .filter(|s| !s.trim().is_empty())
                .collect(),
            disable_local_ca_jwt: get("disable_local_ca_jwt")
                .map(|v| parse_bool("disable_local_ca_jwt", v))
                .transpose()?
                .unwrap_or(false),
            issuer: text("issuer")?,
            disable_iss_validation: get("disable_iss_validation")
                .map(|v| parse_bool("disable_iss_validation", v))
                .transpose()?
                .unwrap_or(true),
        };
        if get("use_annotations_as_alias_metadata")
            .map(|v| parse_bool("use_annotations_as_alias_metadata", v))
            .transpose()?
            == Some(true)
        {
            return Err(bad("use_annotations_as_alias_metadata is not supported by Coffer: it must be false"));
        }
        if c.kubernetes_host.is_empty() {
            return Err(bad("no host provided"));
        }
        let host = c.kubernetes_host.to_ascii_lowercase();
        if !host.starts_with("https://") && !host.starts_with("http://") {
            return Err(bad("kubernetes_host must be an http:// or https:// URL"));
        }
        if !c.kubernetes_ca_cert.is_empty() {
            let n = ureq::tls::parse_pem(c.kubernetes_ca_cert.as_bytes())
                .filter(|i| matches!(i, Ok(ureq::tls::PemItem::Certificate(_))))
                .count();
            if n == 0 {
                return Err(bad("kubernetes_ca_cert: no PEM certificate found"));
            }
        } else if host.starts_with("https://") {
            if c.disable_local_ca_jwt {
                return Err(bad("kubernetes_ca_cert must be given when disable_local_ca_jwt is true"));
            }
            if read_local(LOCAL_CA).is_none() {
                return Err(bad(format!(
                    "kubernetes_ca_cert is not set and the pod's CA file {LOCAL_CA} cannot be read: give kubernetes_ca_cert"
                )));
            }
        }
        for (i, pem) in c.pem_keys.iter().enumerate() {
            let b = pem.as_bytes();
            let ok = jsonwebtoken::DecodingKey::from_rsa_pem(b).is_ok()
                || jsonwebtoken::DecodingKey::from_ec_pem(b).is_ok()
                || jsonwebtoken::DecodingKey::from_ed_pem(b).is_ok();
            if !ok {
                return Err(bad(format!("pem_keys entry {}: not a PEM RSA, ECDSA or Ed25519 public key", i + 1)));
            }
        }
        save(req, "config", &c).await?;
        Ok(None)
    }

    async fn write_role(&self, req: &Request, key: &str) -> Result<Option<Response>> {
        let d = &req.data;
        let get = |k: &str| d.get(k).filter(|v| !v.is_null());
        let mut r = load::<Role>(req, key).await?.unwrap_or_else(|| Role {
            alias_name_source: "serviceaccount_uid".into(),
            token: TokenParams { token_type: "default".into(), ..TokenParams::default() },
            ..Role::default()
        });
        let list = |k: &str| -> Result<Option<Vec<String>>> {
            get(k)
                .map(|v| parse_string_slice(k, v).map(|l| l.into_iter().filter(|s| !s.is_empty()).collect()))
                .transpose()
        };
        if let Some(l) = list("bound_service_account_names")? {
            r.bound_service_account_names = l;
        }
        if let Some(l) = list("bound_service_account_namespaces")? {
            r.bound_service_account_namespaces = l;
        }
        if let Some(v) = get("bound_service_account_namespace_selector") {
            let s = parse_string("bound_service_account_namespace_selector", v)?;
            if !s.trim().is_empty() {
                parse_selector(&s)?;
            }
            r.bound_service_account_namespace_selector = s;
        }
        if let Some(v) = get("audience") {
            r.audience = parse_string("audience", v)?;
        }
        if let Some(v) = get("alias_name_source") {
            let s = parse_string("alias_name_source", v)?;
            if s != "serviceaccount_uid" && s != "serviceaccount_name" {
                return Err(bad(format!("invalid alias_name_source {s:?}: serviceaccount_uid or serviceaccount_name")));
            }
            r.alias_name_source = s;
        }
        r.token.update_from(d)?;
        if r.token.token_type == "batch" && r.token.token_num_uses > 0 {
            return Err(bad(
                "'token_type' cannot be 'batch' or 'default_batch' when set to generate tokens with limited use count",
            ));
        }
        if r.bound_service_account_names.is_empty() {
            return Err(bad("\"bound_service_account_names\" can not be empty"));
        }
        if r.bound_service_account_namespaces.is_empty() && r.bound_service_account_namespace_selector.trim().is_empty()
        {
            return Err(bad(
                "\"bound_service_account_namespaces\" can not be empty if \"bound_service_account_namespace_selector\" is not set",
            ));
        }
        check_globs("bound_service_account_names", &r.bound_service_account_names)?;
        check_globs("bound_service_account_namespaces", &r.bound_service_account_namespaces)?;
        save(req, key, &r).await?;
        Ok(None)
    }

    fn role_response(r: &Role) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("bound_service_account_names".into(), json!(r.bound_service_account_names));
        m.insert("bound_service_account_namespaces".into(), json!(r.bound_service_account_namespaces));
        m.insert("bound_service_account_namespace_selector".into(), json!(r.bound_service_account_namespace_selector));
        if !r.audience.is_empty() {
            m.insert("audience".into(), json!(r.audience));
        }
        m.insert("alias_name_source".into(), json!(r.alias_name_source));
        r.token.to_response(&mut m);
        m
    }

    async fn login(&self, req: &Request, f: &FieldData) -> Result<Option<Response>> {
        let role_name = f.str("role").filter(|s| !s.is_empty()).ok_or_else(|| bad("missing role"))?;
        let jwt = f.str("jwt").filter(|s| !s.is_empty()).ok_or_else(|| bad("missing jwt"))?.trim().to_string();
        let role = load::<Role>(req, &format!("role/{}", role_name.to_lowercase()))
            .await?
            .ok_or_else(|| bad(format!("invalid role name {role_name:?}")))?;
        if !addr_in_cidrs(req.remote_addr, &role.token.token_bound_cidrs) {
            return Err(LogicalError::permission_denied());
        }
        let c = load::<Config>(req, "config")
            .await?
            .ok_or_else(|| bad("could not load backend configuration: write the mount's config first"))?;
        let claims = jwt_claims(&jwt, &c.pem_keys)?;
        if !c.disable_iss_validation {
            let want = if c.issuer.is_empty() { DEFAULT_ISSUER } else { c.issuer.as_str() };
            if claims.get("iss").and_then(Value::as_str) != Some(want) {
                return Err(denied("invalid issuer (iss) claim"));
            }
        }
        let sa =
            service_account(&claims).ok_or_else(|| denied("the jwt names no service account (namespace and name)"))?;
        // The namespace goes into the API server's URL (selector roles): only a DNS label, as
        // Kubernetes names namespaces, is taken.
        if !is_dns_label(&sa.namespace) {
            return Err(denied("namespace not authorized"));
        }
        if !role.bound_service_account_names.iter().any(|p| glob_match(p, &sa.name)) {
            return Err(denied("service account name not authorized"));
        }
        let by_name = role.bound_service_account_namespaces.iter().any(|p| glob_match(p, &sa.namespace));
        let selector = role.bound_service_account_namespace_selector.trim().to_string();
        let (audience, ns) = (role.audience.clone(), sa.namespace.clone());
        let status = tokio::task::spawn_blocking(move || -> Result<Map<String, Value>> {
            let api = api_server(&c, &jwt)?;
            if !by_name {
                if selector.is_empty() {
                    return Err(denied("namespace not authorized"));
                }
                let sel = parse_selector(&selector)?;
                if !selector_matches(&sel, &api.namespace_labels(&ns)?) {
                    return Err(denied("namespace not authorized"));
                }
            }
            api.review(&jwt, &audience)
        })
        .await
        .map_err(|e| LogicalError::internal("TokenReview task failed").with_source(e))??;

        if status.get("authenticated").and_then(Value::as_bool) != Some(true) {
            let err = status.get("error").and_then(Value::as_str).unwrap_or_default();
            return Err(denied(if err.is_empty() {
                UNAUTHORIZED.to_string()
            } else {
                format!("{UNAUTHORIZED} ({err})")
            }));
        }
        if !role.audience.is_empty() {
            let auds: Vec<&str> = status
                .get("audiences")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if !auds.contains(&role.audience.as_str()) {
                return Err(denied(format!(
                    "the TokenReview does not confirm the role's audience {:?}",
                    role.audience
                )));
            }
        }
        let user = status.get("user").cloned().unwrap_or(Value::Null);
        let username = user.get("username").and_then(Value::as_str).unwrap_or_default();
        if username != format!("system:serviceaccount:{}:{}", sa.namespace, sa.name) {
            return Err(denied("JWT names did not match"));
        }
        let reviewed_uid = user.get("uid").and_then(Value::as_str).unwrap_or_default().to_string();
        if !sa.uid.is_empty() && !reviewed_uid.is_empty() && reviewed_uid != sa.uid {
            return Err(denied("JWT UIDs did not match"));
        }
        let uid = if sa.uid.is_empty() { reviewed_uid } else { sa.uid.clone() };
        let alias = if role.alias_name_source == "serviceaccount_name" {
            format!("{}/{}", sa.namespace, sa.name)
        } else {
            uid.clone()
        };
        if alias.is_empty() {
            return Err(denied(
                "the service account has no uid to name its alias (use alias_name_source=serviceaccount_name)",
            ));
        }
        let mut meta = Map::new();
        meta.insert("service_account_name".into(), json!(sa.name));
        meta.insert("service_account_namespace".into(), json!(sa.namespace));
        meta.insert("service_account_uid".into(), json!(uid));
        meta.insert("service_account_secret_name".into(), json!(sa.secret_name));
        meta.insert("role".into(), json!(role_name));
        let mut auth = role.token.to_auth(&format!("{}-{}", sa.namespace, sa.name), &alias, req.remote_addr);
        auth.metadata = meta.clone();
        auth.alias_metadata = meta;
        Ok(Some(Response { auth: Some(auth), ..Default::default() }))
    }
}

#[async_trait]
impl Handler for Kubernetes {
    type Route = Route;

    fn backend_type(&self) -> &'static str {
        "kubernetes"
    }

    fn paths(&self) -> &Paths<Route> {
        &self.paths
    }

    async fn handle(&self, route: Route, req: Request, f: FieldData) -> Result<Option<Response>> {
        match (route, req.operation) {
            (Route::Config, Operation::Read) => Ok(load::<Config>(&req, "config").await?.map(|c| {
                let mut m = Map::new();
                m.insert("kubernetes_host".into(), json!(c.kubernetes_host));
                m.insert("kubernetes_ca_cert".into(), json!(c.kubernetes_ca_cert));
                m.insert("pem_keys".into(), json!(c.pem_keys));
                m.insert("disable_local_ca_jwt".into(), json!(c.disable_local_ca_jwt));
                m.insert("issuer".into(), json!(c.issuer));
                m.insert("disable_iss_validation".into(), json!(c.disable_iss_validation));
                m.insert("token_reviewer_jwt_set".into(), json!(!c.token_reviewer_jwt.is_empty()));
                Response::data(m)
            })),
            (Route::Config, _) => self.write_config(&req).await,
            (Route::RoleList, _) => {
                let keys = req.storage.list("role/").await?;
                Ok(if keys.is_empty() { None } else { Some(Response::list(keys)) })
            }
            (Route::Role, op) => {
                let key = format!("role/{}", f.str("name").unwrap_or_default().to_lowercase());
                match op {
                    Operation::Read => {
                        Ok(load::<Role>(&req, &key).await?.map(|r| Response::data(Self::role_response(&r))))
                    }
                    Operation::Delete => {
                        req.storage.delete(&key).await?;
                        Ok(None)
                    }
                    _ => self.write_role(&req, &key).await,
                }
            }
            (Route::Login, _) => self.login(&req, &f).await,
        }
    }

    async fn exists(&self, route: Route, req: &Request, f: &FieldData) -> Result<Option<bool>> {
        match route {
            Route::Role => {
                let key = format!("role/{}", f.str("name").unwrap_or_default().to_lowercase());
                Ok(Some(req.storage.get(&key).await?.is_some()))
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
    fn label_selectors_match_as_kubernetes_documents() {
        let sel = parse_selector(
            r#"{"matchLabels":{"stage":"prod"},"matchExpressions":[{"key":"team","operator":"In","values":["a","b"]},{"key":"legacy","operator":"DoesNotExist"}]}"#,
        )
        .unwrap();
        let labels = |j: &str| serde_json::from_str::<Map<String, Value>>(j).unwrap();
        assert!(selector_matches(&sel, &labels(r#"{"stage":"prod","team":"b"}"#)));
        assert!(!selector_matches(&sel, &labels(r#"{"stage":"dev","team":"b"}"#)));
        assert!(!selector_matches(&sel, &labels(r#"{"stage":"prod","team":"c"}"#)));
        assert!(!selector_matches(&sel, &labels(r#"{"stage":"prod","team":"a","legacy":"1"}"#)));
        assert!(parse_selector("stage: prod").is_err());
        assert!(parse_selector(r#"{"matchExpressions":[{"key":"x","operator":"Gt"}]}"#).is_err());
    }

    #[test]
    fn service_accounts_are_read_from_legacy_and_projected_tokens() {
        let legacy = serde_json::from_str::<Map<String, Value>>(
            r#"{"kubernetes.io/serviceaccount/namespace":"ns","kubernetes.io/serviceaccount/service-account.name":"sa","kubernetes.io/serviceaccount/service-account.uid":"u1"}"#,
        )
        .unwrap();
        let sa = service_account(&legacy).unwrap();
        assert_eq!((sa.namespace.as_str(), sa.name.as_str(), sa.uid.as_str()), ("ns", "sa", "u1"));
        let projected = serde_json::from_str::<Map<String, Value>>(
            r#"{"kubernetes.io":{"namespace":"n2","serviceaccount":{"name":"s2","uid":"u2"}}}"#,
        )
        .unwrap();
        assert_eq!(service_account(&projected).unwrap().uid, "u2");
        assert!(service_account(&Map::new()).is_none());
        assert!(glob_match("dev-*", "dev-1") && !glob_match("dev-*", "prod"));
        assert!(is_dns_label("team-a") && !is_dns_label("../x") && !is_dns_label("a?b") && !is_dns_label("-a"));
    }
}
