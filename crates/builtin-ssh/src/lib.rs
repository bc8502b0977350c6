#![forbid(unsafe_code)]
//! The SSH secrets engine in CA mode: the mount holds signing keys (issuers; `config/ca` generates
//! or imports one and makes it the default, whose public half is public at `public_key`), roles say which principals, extensions,
//! critical options and lifetimes a certificate may carry, and `sign/:role` signs a client's
//! public key into an OpenSSH user or host certificate (`issue/:role` makes the key pair too).
//! Certificates are built and signed with the `ssh-key` crate.
//!
//! RSA signing keys are refused: the only pure-Rust RSA implementation is not constant-time
//! (RUSTSEC-2023-0071), and a CA key signs on request. RSA *user* keys are signed as usual.
//! OTP and dynamic-key roles are not built (refused with a clear error).
//!
//! Several signing keys per mount, as OpenBao 2.3+ has them: **issuers** (`issuers`,
//! `issuer/:ref`, `issuer/:ref/public_key`, `issuers/import[/:name]`, `config/issuers` for the
//! default one); `config/ca` adds one and makes it the default, roles pick one with `issuer_ref`
//! (default: the default issuer, resolved when signing).
//!
//! Storage (the mount's own view, JSON): `issuer/<id>` (name, OpenSSH private key),
//! `config/issuers` (the default issuer's id), `role/<name>`. A mount written before issuers
//! existed keeps its key at `config/ca_private_key`; the first use turns it into the default
//! issuer.

use async_trait::async_trait;
use coffer_sdk::field::FieldType;
use coffer_sdk::framework::{FieldData, FieldSpec, Handler, PathFlags, PathSpec, Paths};
use coffer_sdk::identity_template;
use coffer_sdk::{LogicalError, Operation, Request, Response, Result, StorageView};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use ssh_key::certificate::{Builder, CertType};
use ssh_key::{Algorithm, EcdsaCurve, LineEnding, PrivateKey, PublicKey};
use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// The paths of the SSH engine, one variant per row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    ConfigCa,
    PublicKey,
    Roles,
    Role,
    Sign,
    Issue,
    Issuers,
    Issuer,
    IssuerPublicKey,
    IssuersImport,
    ConfigIssuers,
}

#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
struct CaEntry {
    private_key: String,
}

#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
struct IssuerEntry {
    id: String,
    name: String,
    private_key: String,
}

#[derive(Serialize, Deserialize, Default)]
struct IssuersConfig {
    default: String,
}

#[derive(Serialize, Deserialize, Clone)]
struct Role {
    allowed_users: String,
    default_user: String,
    allowed_extensions: String,
    default_extensions: BTreeMap<String, String>,
    allowed_critical_options: String,
    default_critical_options: BTreeMap<String, String>,
    ttl: i64,
    max_ttl: i64,
    allow_user_certificates: bool,
    allow_host_certificates: bool,
    allowed_domains: String,
    allow_subdomains: bool,
    allow_bare_domains: bool,
    allow_user_key_ids: bool,
    key_id_format: String,
    allowed_user_key_lengths: BTreeMap<String, i64>,
    algorithm_signer: String,
    not_before_duration: i64,
    /// The issuer that signs (id, name or `default`).
    #[serde(default = "default_ref")]
    issuer_ref: String,
    /// `allowed_users` entries are identity templates.
    #[serde(default)]
    allowed_users_template: bool,
    /// `default_user` is an identity template.
    #[serde(default)]
    default_user_template: bool,
    /// `default_extensions` values are identity templates.
    #[serde(default)]
    default_extensions_template: bool,
}

fn default_ref() -> String {
    "default".into()
}

fn bad(msg: impl Into<String>) -> LogicalError {
    LogicalError::bad_request(msg)
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

async fn get_json<T: for<'de> Deserialize<'de>>(s: &dyn StorageView, key: &str) -> Result<Option<T>> {
    match s.get(key).await? {
        None => Ok(None),
        Some(raw) => serde_json::from_slice(&raw)
            .map(Some)
            // drop-cause: the CA entry holds a private key, which a JSON error could quote.
            .map_err(|_| LogicalError::internal(format!("stored entry at {key:?} is malformed"))),
    }
}

async fn put_json<T: Serialize>(s: &dyn StorageView, key: &str, v: &T) -> Result<()> {
    let bytes = Zeroizing::new(serde_json::to_vec(v).map_err(|e| LogicalError::internal(e.to_string()))?);
    s.put(key, &bytes).await
}

fn str_map(v: Option<&Value>) -> Result<BTreeMap<String, String>> {
    match v {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                other => Ok((k.clone(), other.to_string())),
            })
            .collect(),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(BTreeMap::new()),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(m)) => str_map(Some(&Value::Object(m))),
            _ => Err(bad("expected a map of strings (a JSON object)")),
        },
        Some(_) => Err(bad("expected a map of strings (a JSON object)")),
    }
}

fn int_map(v: Option<&Value>) -> Result<BTreeMap<String, i64>> {
    str_map(v)?
        .into_iter()
        .map(|(k, v)| {
            v.trim()
                .parse::<i64>()
                .map(|n| (k.clone(), n))
                .map_err(|e| bad(format!("allowed_user_key_lengths: {k}: {v:?} is not a number")).with_source(e))
        })
        .collect()
}

fn csv(s: &str) -> Vec<String> {
    s.split(',').map(str::trim).filter(|x| !x.is_empty()).map(str::to_string).collect()
}

fn f(name: &'static str, ty: FieldType, d: &'static str) -> FieldSpec {
    FieldSpec::new(name, ty, d)
}

fn row(
    pattern: &'static str,
    fields: Vec<FieldSpec>,
    ops: Vec<(Operation, &'static str)>,
    synopsis: &'static str,
) -> PathSpec {
    PathSpec {
        flags: PathFlags::NORMAL,
        pattern,
        fields,
        operations: ops,
        passthrough: false,
        synopsis,
        description: synopsis,
    }
}

fn path_specs() -> Vec<(Route, PathSpec)> {
    use FieldType::{Bool, DurationSecond, Int, Map as MapT, String as Str};
    use Operation::{Create, Delete, List, Read, Update};
    let role_name = || f("role", Str, "Name of the role");
    let sign_fields = || {
        vec![
            role_name(),
            f("public_key", Str, "The OpenSSH public key to sign"),
            f("valid_principals", Str, "Comma-separated principals (users or hosts)"),
            f("cert_type", Str, "user or host").default(json!("user")),
            f("key_id", Str, "The certificate's key id (when the role allows it)"),
            f("ttl", DurationSecond, "Requested lifetime"),
            f("critical_options", MapT, "Critical options"),
            f("extensions", MapT, "Extensions"),
            f("key_type", Str, "issue: ed25519 or ec").default(json!("ed25519")),
            f("key_bits", Int, "issue: 256 or 384 for ec").default(json!(0)),
        ]
    };
    let key_fields = || {
        vec![
            f("generate_signing_key", Bool, "Generate the CA key").default(json!(true)),
            f(
                "key_type",
                Str,
                "ssh-ed25519 (default here), ecdsa-sha2-nistp256/384/521 (or ec with key_bits); ssh-rsa is refused",
            )
            .default(json!("ssh-ed25519")),
            f("key_bits", Int, "For ec: 256, 384 or 521").default(json!(0)),
            f("private_key", Str, "A CA private key to import (OpenSSH format)"),
            f("public_key", Str, "Its public key (checked against the private key)"),
            f("managed_key_name", Str, "Refused: managed keys are not supported"),
            f("managed_key_id", Str, "Refused: managed keys are not supported"),
            f("issuer_name", Str, "The new issuer's name"),
            f("set_default", Bool, "Make the new issuer the default").default(json!(false)),
        ]
    };
    let iref = || f("issuer_ref", Str, "An issuer's id or name, or default");
    vec![
        (
            Route::Issuers,
            row(
                "issuers/?",
                vec![
                    f("after", Str, "List the issuers after this id"),
                    f("limit", Int, "At most this many issuers (0: all)").default(json!(0)),
                ],
                vec![(List, "List the issuers")],
                "List issuers",
            ),
        ),
        (
            Route::Issuer,
            row(
                r"issuer/(?P<issuer_ref>[A-Za-z0-9_\-]+)",
                vec![iref(), f("issuer_name", Str, "A new name for the issuer")],
                vec![(Read, "Read an issuer"), (Update, "Rename an issuer"), (Delete, "Delete an issuer")],
                "An issuer",
            ),
        ),
        (
            Route::IssuerPublicKey,
            PathSpec {
                flags: PathFlags::NORMAL.unauthenticated(),
                ..row(
                    r"issuer/(?P<issuer_ref>[A-Za-z0-9_\-]+)/public_key",
                    vec![iref()],
                    vec![(Read, "An issuer's public key, OpenSSH format")],
                    "An issuer's public key",
                )
            },
        ),
        (
            Route::IssuersImport,
            row(
                r"issuers/import(?:/(?P<issuer_name>[A-Za-z0-9_\-]+))?",
                key_fields(),
                vec![(Create, "Add an issuer"), (Update, "Add an issuer")],
                "Add an issuer: generate or import a signing key",
            ),
        ),
        (
            Route::ConfigIssuers,
            row(
                "config/issuers",
                vec![f("default", Str, "The default issuer (id or name)")],
                vec![(Read, "Read the default issuer"), (Update, "Set the default issuer")],
                "The default issuer",
            ),
        ),
        (
            Route::ConfigCa,
            row(
                "config/ca",
                key_fields().into_iter().filter(|k| k.name != "set_default").collect(),
                vec![
                    (Create, "Add an issuer and make it the default"),
                    (Update, "Add an issuer and make it the default"),
                    (Read, "Read the default issuer"),
                    (Delete, "Delete every issuer"),
                ],
                "The default issuer's signing key",
            ),
        ),
        (
            Route::PublicKey,
            PathSpec {
                flags: PathFlags::NORMAL.unauthenticated(),
                ..row("public_key", vec![], vec![(Read, "The CA's public key, OpenSSH format")], "The CA's public key")
            },
        ),
        (Route::Roles, row("roles/?", vec![], vec![(List, "List the roles")], "List roles")),
        (
            Route::Role,
            row(
                r"roles/(?P<role>\w(?:[\w.\-]*\w)?)",
                vec![
                    role_name(),
                    f("key_type", Str, "ca (otp and dynamic are not supported)"),
                    f("allowed_users", Str, "Comma-separated users a user certificate may name; * for any"),
                    f("default_user", Str, "The principal when the request names none"),
                    f("allowed_extensions", Str, "Comma-separated extensions a request may ask for; * for any"),
                    f("default_extensions", MapT, "Extensions every certificate gets"),
                    f(
                        "allowed_critical_options",
                        Str,
                        "Comma-separated critical options a request may ask for; * for any",
                    ),
                    f("default_critical_options", MapT, "Critical options every certificate gets"),
                    f("ttl", DurationSecond, "Default lifetime"),
                    f("max_ttl", DurationSecond, "Maximum lifetime"),
                    f("allow_user_certificates", Bool, "Sign user certificates").default(json!(false)),
                    f("allow_host_certificates", Bool, "Sign host certificates").default(json!(false)),
                    f("allowed_domains", Str, "Comma-separated domains host certificates may name"),
                    f("allow_subdomains", Bool, "Host names under the allowed domains").default(json!(false)),
                    f("allow_bare_domains", Bool, "The allowed domains themselves").default(json!(false)),
                    f("allow_user_key_ids", Bool, "The request may choose the key id").default(json!(false)),
                    f(
                        "key_id_format",
                        Str,
                        "Key id template: {{token_display_name}}, {{role_name}}, {{public_key_hash}}",
                    ),
                    f("allowed_user_key_lengths", MapT, "Minimum key sizes by type (rsa: 2048, …)"),
                    f("algorithm_signer", Str, "default (the CA key's own algorithm)").default(json!("default")),
                    f("not_before_duration", DurationSecond, "Backdating of valid-after").default(json!(30)),
                    f("issuer_ref", Str, "The issuer that signs (id or name; default: the default issuer)"),
                    f(
                        "allowed_users_template",
                        Bool,
                        "allowed_users entries may use identity templates ({{identity.entity.name}}, …)",
                    )
                    .default(json!(false)),
                    f("default_user_template", Bool, "default_user may use identity templates").default(json!(false)),
                    f("default_extensions_template", Bool, "default_extensions values may use identity templates")
                        .default(json!(false)),
                ],
                vec![
                    (Create, "Create a role"),
                    (Update, "Update a role"),
                    (Read, "Read a role"),
                    (Delete, "Delete a role"),
                ],
                "A role",
            ),
        ),
        (
            Route::Sign,
            row(
                r"sign/(?P<role>\w(?:[\w.\-]*\w)?)",
                sign_fields(),
                vec![(Create, "Sign a public key"), (Update, "Sign a public key")],
                "Sign a public key",
            ),
        ),
        (
            Route::Issue,
            row(
                r"issue/(?P<role>\w(?:[\w.\-]*\w)?)",
                sign_fields(),
                vec![(Create, "Make a key pair and sign it"), (Update, "Make a key pair and sign it")],
                "Issue a key pair and certificate",
            ),
        ),
    ]
}

/// The SSH secrets engine; serve it wrapped in [`coffer_sdk::framework::Backend`].
pub struct Ssh {
    paths: Paths<Route>,
    lock: tokio::sync::Mutex<()>,
}

impl Default for Ssh {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Handler for Ssh {
    type Route = Route;

    fn backend_type(&self) -> &'static str {
        "ssh"
    }

    fn paths(&self) -> &Paths<Route> {
        &self.paths
    }

    async fn handle(&self, route: Route, req: Request, fields: FieldData) -> Result<Option<Response>> {
        let s = req.storage.as_ref();
        // A mount from before issuers: its key becomes the default issuer first.
        if s.get("config/ca_private_key").await?.is_some() {
            let _g = self.lock.lock().await;
            self.migrate(s).await?;
        }
        match route {
            Route::ConfigCa => self.config_ca(s, req.operation, &fields).await,
            Route::PublicKey => raw_public_key(&self.ca(s).await?).map(Some),
            Route::Roles => {
                let keys = s.list("role/").await?;
                Ok((!keys.is_empty()).then(|| Response::list(keys)))
            }
            Route::Role => self.role(s, req.operation, &fields).await,
            Route::Sign | Route::Issue => self.sign(&req, route, &fields).await.map(Some),
            Route::Issuers => self.list_issuers(s, &fields).await,
            Route::Issuer => self.issuer_route(s, req.operation, &fields).await,
            Route::IssuerPublicKey => {
                let (_, key) = self.issuer(s, fields.str("issuer_ref").unwrap_or("default")).await?;
                raw_public_key(&key).map(Some)
            }
            Route::IssuersImport => {
                let _g = self.lock.lock().await;
                let make_default = fields.bool("set_default").unwrap_or(false);
                self.add_issuer(s, &fields, make_default).await.map(Some)
            }
            Route::ConfigIssuers => self.config_issuers(s, req.operation, &fields).await.map(Some),
        }
    }
}

/// A public key answered as the bare OpenSSH line (text/plain), as `public_key` paths are.
fn raw_public_key(key: &PrivateKey) -> Result<Response> {
    let mut d = Map::new();
    d.insert("http_content_type".into(), json!("text/plain"));
    d.insert("http_raw_body".into(), json!(format!("{}\n", public_openssh(key)?)));
    d.insert("http_status_code".into(), json!(200));
    Ok(Response::data(d))
}

fn public_openssh(k: &PrivateKey) -> Result<String> {
    k.public_key().to_openssh().map_err(|e| LogicalError::internal("encoding the public key failed").with_source(e))
}

fn rng() -> rand_core_06::OsRng {
    rand_core_06::OsRng
}

/// A new key of an API key type.
fn generate(key_type: &str, bits: i64) -> Result<PrivateKey> {
    let alg = match (key_type, bits) {
        ("ssh-ed25519" | "ed25519", _) => Algorithm::Ed25519,
        ("ecdsa-sha2-nistp256" | "ec" | "ecdsa", 0 | 256) => Algorithm::Ecdsa { curve: EcdsaCurve::NistP256 },
        ("ecdsa-sha2-nistp384", _) | ("ec" | "ecdsa", 384) => Algorithm::Ecdsa { curve: EcdsaCurve::NistP384 },
        ("ecdsa-sha2-nistp521", _) | ("ec" | "ecdsa", 521) => Algorithm::Ecdsa { curve: EcdsaCurve::NistP521 },
        ("ssh-rsa" | "rsa", _) => {
            return Err(bad("RSA keys are not generated here: Rust's RSA implementation is not constant-time \
                 (RUSTSEC-2023-0071); use ssh-ed25519 or ecdsa-sha2-nistp256"))
        }
        (t, b) => return Err(bad(format!("unsupported key_type {t:?} with key_bits {b}"))),
    };
    PrivateKey::random(&mut rng(), alg).map_err(|e| LogicalError::internal("key generation failed").with_source(e))
}

impl Ssh {
    pub fn new() -> Self {
        Ssh { paths: Paths::new(path_specs()), lock: tokio::sync::Mutex::new(()) }
    }

    /// The default issuer's key.
    async fn ca(&self, s: &dyn StorageView) -> Result<PrivateKey> {
        self.issuer(s, "default").await.map(|(_, k)| k)
    }

    /// A mount from before issuers: its one key becomes the default issuer.
    async fn migrate(&self, s: &dyn StorageView) -> Result<()> {
        if let Some(legacy) = get_json::<CaEntry>(s, "config/ca_private_key").await? {
            if s.list("issuer/").await?.is_empty() {
                let e = IssuerEntry {
                    id: uuid::Uuid::new_v4().to_string(),
                    name: String::new(),
                    private_key: legacy.private_key.clone(),
                };
                put_json(s, &format!("issuer/{}", e.id), &e).await?;
                put_json(s, "config/issuers", &IssuersConfig { default: e.id.clone() }).await?;
            }
            s.delete("config/ca_private_key").await?;
        }
        Ok(())
    }

    /// The default issuer's id, when one is set and still exists.
    async fn default_id(&self, s: &dyn StorageView) -> Result<Option<String>> {
        let cfg = get_json::<IssuersConfig>(s, "config/issuers").await?.unwrap_or_default();
        if cfg.default.is_empty() || s.get(&format!("issuer/{}", cfg.default)).await?.is_none() {
            return Ok(None);
        }
        Ok(Some(cfg.default))
    }

    /// An issuer by id, name or `default`, without its key parsed; `None` when nothing matches.
    async fn find_issuer(&self, s: &dyn StorageView, reference: &str) -> Result<Option<IssuerEntry>> {
        if reference.is_empty() || reference == "default" {
            return match self.default_id(s).await? {
                Some(id) => get_json::<IssuerEntry>(s, &format!("issuer/{id}")).await,
                None => Err(bad("no default issuer currently configured")),
            };
        }
        if let Some(e) = get_json::<IssuerEntry>(s, &format!("issuer/{reference}")).await? {
            return Ok(Some(e));
        }
        for id in s.list("issuer/").await? {
            if let Some(e) = get_json::<IssuerEntry>(s, &format!("issuer/{id}")).await? {
                if e.name == reference {
                    return Ok(Some(e));
                }
            }
        }
        Ok(None)
    }

    /// An issuer by id, name or `default`, with its key.
    async fn issuer(&self, s: &dyn StorageView, reference: &str) -> Result<(IssuerEntry, PrivateKey)> {
        let e = self
            .find_issuer(s, reference)
            .await?
            .ok_or_else(|| bad(format!("unable to find issuer for reference: {reference}")))?;
        let parsed = PrivateKey::from_openssh(&e.private_key);
        // drop-cause: the parse error could describe the key material.
        let key = parsed.map_err(|_| LogicalError::internal("the stored CA key cannot be read"))?;
        Ok((e, key))
    }

    async fn list_issuers(&self, s: &dyn StorageView, f: &FieldData) -> Result<Option<Response>> {
        let mut ids = s.list("issuer/").await?;
        ids.sort();
        if let Some(after) = f.str("after").filter(|a| !a.is_empty()) {
            ids.retain(|id| id.as_str() > after);
        }
        let limit = f.int("limit").unwrap_or(0);
        if limit < 0 {
            return Err(bad("limit must be zero (all) or positive"));
        }
        if limit > 0 {
            ids.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        }
        if ids.is_empty() {
            return Ok(None);
        }
        let default = self.default_id(s).await?.unwrap_or_default();
        let mut info = Map::new();
        for id in &ids {
            let (e, k) = self.issuer(s, id).await?;
            info.insert(
                id.clone(),
                json!({"issuer_name": e.name, "is_default": *id == default,
                       "public_key": format!("{}\n", public_openssh(&k)?)}),
            );
        }
        let mut d = Map::new();
        d.insert("keys".into(), json!(ids));
        d.insert("key_info".into(), Value::Object(info));
        Ok(Some(Response::data(d)))
    }

    fn issuer_data(e: &IssuerEntry, k: &PrivateKey) -> Result<Map<String, Value>> {
        let mut d = Map::new();
        d.insert("issuer_id".into(), json!(e.id));
        d.insert("issuer_name".into(), json!(e.name));
        d.insert("public_key".into(), json!(format!("{}\n", public_openssh(k)?)));
        Ok(d)
    }

    async fn check_name_free(&self, s: &dyn StorageView, name: &str, except: &str) -> Result<()> {
        if name.is_empty() {
            return Ok(());
        }
        if name == "default" {
            return Err(bad("reserved keyword 'default' can not be used as issuer name"));
        }
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(bad("issuer name contained invalid characters"));
        }
        for id in s.list("issuer/").await? {
            if let Some(e) = get_json::<IssuerEntry>(s, &format!("issuer/{id}")).await? {
                if e.name == name && e.id != except {
                    return Err(bad("issuer name already in use"));
                }
            }
        }
        Ok(())
    }

    /// How many roles name `reference` as their issuer.
    async fn roles_naming(&self, s: &dyn StorageView, reference: &str) -> Result<usize> {
        let mut n = 0;
        for name in s.list("role/").await? {
            if get_json::<Role>(s, &format!("role/{name}")).await?.is_some_and(|r| r.issuer_ref == reference) {
                n += 1;
            }
        }
        Ok(n)
    }

    async fn issuer_route(&self, s: &dyn StorageView, op: Operation, f: &FieldData) -> Result<Option<Response>> {
        let _g = self.lock.lock().await;
        let reference = f.str("issuer_ref").unwrap_or("");
        if op == Operation::Delete {
            // Deleting what is not there succeeds, as in OpenBao.
            let Some(e) = self.find_issuer(s, reference).await? else { return Ok(None) };
            let was_default = self.default_id(s).await?.as_deref() == Some(e.id.as_str());
            s.delete(&format!("issuer/{}", e.id)).await?;
            let mut warnings = Vec::new();
            if was_default {
                s.delete("config/issuers").await?;
                warnings.push(format!(
                    "Deleted issuer {} (via issuer_ref {reference}); this was configured as the default issuer. \
                     Operations without an explicit issuer will not work until a new default is configured.",
                    e.id
                ));
            }
            // Roles still naming it fail to sign until they are pointed elsewhere: say how many.
            let mut names = vec![e.id.clone()];
            if !e.name.is_empty() {
                names.insert(0, e.name.clone());
            }
            if was_default {
                names.insert(0, "default".into());
            }
            for n in names {
                let count = self.roles_naming(s, &n).await?;
                if count > 0 {
                    warnings.push(format!("{count} roles reference '{n}'"));
                }
            }
            if warnings.is_empty() {
                return Ok(None);
            }
            return Ok(Some(Response { warnings, ..Response::default() }));
        }
        let (mut e, k) = self.issuer(s, reference).await?;
        if op != Operation::Read {
            // As in OpenBao, a write without issuer_name clears the name.
            let n = f.str("issuer_name").unwrap_or("");
            self.check_name_free(s, n, &e.id).await?;
            e.name = n.to_string();
            put_json(s, &format!("issuer/{}", e.id), &e).await?;
        }
        Ok(Some(Response::data(Self::issuer_data(&e, &k)?)))
    }

    async fn config_issuers(&self, s: &dyn StorageView, op: Operation, f: &FieldData) -> Result<Response> {
        let mut warnings = Vec::new();
        if op != Operation::Read {
            let r = f.str("default").unwrap_or("");
            if r.is_empty() || r == "default" {
                return Err(bad("invalid issuer specification; must be non-empty and can't be 'default'."));
            }
            let _g = self.lock.lock().await;
            let (e, _) = self.issuer(s, r).await?;
            let old = get_json::<IssuersConfig>(s, "config/issuers").await?.unwrap_or_default().default;
            put_json(s, "config/issuers", &IssuersConfig { default: e.id.clone() }).await?;
            if old != e.id {
                warnings.push(format!(
                    "Previous default ({old}) has been updated with the issuer '{r}' (resolved to {})",
                    e.id
                ));
            }
        }
        let id = self.default_id(s).await?.ok_or_else(|| bad("no default issuer currently configured"))?;
        let mut d = Map::new();
        d.insert("default".into(), json!(id));
        let mut r = Response::data(d);
        r.warnings = warnings;
        Ok(r)
    }

    /// Generates or imports a signing key as a new issuer: the default when `make_default`, or
    /// when there is no default. Callers hold the lock.
    async fn add_issuer(&self, s: &dyn StorageView, f: &FieldData, make_default: bool) -> Result<Response> {
        let name = f.str("issuer_name").unwrap_or("").to_string();
        self.check_name_free(s, &name, "").await?;
        let key = Self::key_from(f)?;
        let pem = key
            .to_openssh(LineEnding::LF)
            .map_err(|e| LogicalError::internal("encoding the key failed").with_source(e))?;
        let e = IssuerEntry { id: uuid::Uuid::new_v4().to_string(), name, private_key: pem.to_string() };
        put_json(s, &format!("issuer/{}", e.id), &e).await?;
        if make_default || self.default_id(s).await?.is_none() {
            put_json(s, "config/issuers", &IssuersConfig { default: e.id.clone() }).await?;
        }
        Ok(Response::data(Self::issuer_data(&e, &key)?))
    }

    /// The key a `config/ca` or `issuers/import` write asks for: imported or generated.
    fn key_from(f: &FieldData) -> Result<PrivateKey> {
        for k in ["managed_key_name", "managed_key_id"] {
            if f.str(k).is_some_and(|v| !v.is_empty()) {
                return Err(bad(format!("{k}: managed keys are not supported")));
            }
        }
        let private = Zeroizing::new(f.str("private_key").unwrap_or("").trim().to_string());
        let public = f.str("public_key").unwrap_or("").trim().to_string();
        if private.is_empty() != public.is_empty() {
            return Err(bad("only one of public_key and private_key set; both must be set to use, \
                 or both must be blank to auto-generate"));
        }
        if !private.is_empty() {
            let parsed = PrivateKey::from_openssh(private.as_str());
            // drop-cause: the parse error could quote the operator's key material.
            let k = parsed.map_err(|_| bad("private_key is not an OpenSSH private key"))?;
            if k.is_encrypted() {
                return Err(bad("private_key is encrypted; give it unencrypted"));
            }
            if matches!(k.algorithm(), Algorithm::Rsa { .. }) {
                return Err(bad("RSA CA keys are not supported (Rust's RSA is not constant-time: RUSTSEC-2023-0071); use ed25519 or ecdsa"));
            }
            let p = PublicKey::from_openssh(&public)
                .map_err(|e| bad("public_key is not an OpenSSH public key").with_source(e))?;
            if p.key_data() != k.public_key().key_data() {
                return Err(bad("public_key does not match private_key"));
            }
            Ok(k)
        } else if f.bool("generate_signing_key").unwrap_or(true) {
            generate(f.str("key_type").unwrap_or("ssh-ed25519"), f.int("key_bits").unwrap_or(0))
        } else {
            Err(bad("missing public_key"))
        }
    }

    async fn config_ca(&self, s: &dyn StorageView, op: Operation, f: &FieldData) -> Result<Option<Response>> {
        let _g = self.lock.lock().await;
        match op {
            Operation::Read => {
                let (e, k) = self.issuer(s, "default").await?;
                Ok(Some(Response::data(Self::issuer_data(&e, &k)?)))
            }
            Operation::Delete => {
                s.delete("config/ca_private_key").await?;
                let ids = s.list("issuer/").await?;
                for id in &ids {
                    s.delete(&format!("issuer/{id}")).await?;
                }
                s.delete("config/issuers").await?;
                let warnings = vec![format!("Deleted {} issuers, including default issuer if configured.", ids.len())];
                Ok(Some(Response { warnings, ..Response::default() }))
            }
            // Another issuer, which becomes the default (OpenBao 2.3+).
            _ => self.add_issuer(s, f, true).await.map(Some),
        }
    }

    async fn role(&self, s: &dyn StorageView, op: Operation, f: &FieldData) -> Result<Option<Response>> {
        let name = f.str("role").unwrap_or("");
        let key = format!("role/{name}");
        match op {
            Operation::Read => Ok(get_json::<Role>(s, &key).await?.map(|r| Response::data(role_data(&r)))),
            Operation::Delete => s.delete(&key).await.map(|_| None),
            _ => {
                match f.str("key_type").unwrap_or("") {
                    "ca" => {}
                    "otp" | "dynamic" => return Err(bad("key_type otp and dynamic are not supported: only ca")),
                    "" => return Err(bad("missing key_type")),
                    other => return Err(bad(format!("invalid key_type {other:?}: only ca is supported"))),
                }
                let templated = |k: &str| f.bool(k).unwrap_or(false);
                let check = |field: &str, v: &str| {
                    identity_template::validate(v).map(|_| ()).map_err(|e| bad(format!("{field}: {e}")))
                };
                if templated("allowed_users_template") {
                    for u in csv(f.str("allowed_users").unwrap_or("")) {
                        check("allowed_users", &u)?;
                    }
                }
                if templated("default_user_template") {
                    check("default_user", f.str("default_user").unwrap_or(""))?;
                }
                if templated("default_extensions_template") {
                    for v in str_map(f.get("default_extensions"))?.values() {
                        check("default_extensions", v)?;
                    }
                }
                let signer = f.str("algorithm_signer").unwrap_or("default");
                if !matches!(signer, "" | "default") {
                    return Err(bad(format!(
                        "algorithm_signer {signer:?}: only default (the CA key's algorithm: ed25519 or ecdsa) is supported"
                    )));
                }
                let r = Role {
                    allowed_users: f.str("allowed_users").unwrap_or("").to_string(),
                    default_user: f.str("default_user").unwrap_or("").to_string(),
                    allowed_extensions: f.str("allowed_extensions").unwrap_or("").to_string(),
                    default_extensions: str_map(f.get("default_extensions"))?,
                    allowed_critical_options: f.str("allowed_critical_options").unwrap_or("").to_string(),
                    default_critical_options: str_map(f.get("default_critical_options"))?,
                    ttl: f.int("ttl").unwrap_or(0),
                    max_ttl: f.int("max_ttl").unwrap_or(0),
                    allow_user_certificates: f.bool("allow_user_certificates").unwrap_or(false),
                    allow_host_certificates: f.bool("allow_host_certificates").unwrap_or(false),
                    allowed_domains: f.str("allowed_domains").unwrap_or("").to_string(),
                    allow_subdomains: f.bool("allow_subdomains").unwrap_or(false),
                    allow_bare_domains: f.bool("allow_bare_domains").unwrap_or(false),
                    allow_user_key_ids: f.bool("allow_user_key_ids").unwrap_or(false),
                    key_id_format: f.str("key_id_format").unwrap_or("").to_string(),
                    allowed_user_key_lengths: int_map(f.get("allowed_user_key_lengths"))?,
                    algorithm_signer: "default".into(),
                    not_before_duration: f.int("not_before_duration").unwrap_or(30),
                    allowed_users_template: templated("allowed_users_template"),
                    default_user_template: templated("default_user_template"),
                    default_extensions_template: templated("default_extensions_template"),
                    issuer_ref: match f.str("issuer_ref").unwrap_or("") {
                        "" => default_ref(),
                        r => r.to_string(),
                    },
                };
                if r.max_ttl > 0 && r.ttl > r.max_ttl {
                    return Err(bad("ttl cannot be greater than max_ttl"));
                }
                if !r.allow_user_certificates && !r.allow_host_certificates {
                    return Err(bad(
                        "Either 'allow_user_certificates' or 'allow_host_certificates' must be set to 'true'",
                    ));
                }
                put_json(s, &key, &r).await?;
                Ok(None)
            }
        }
    }

    async fn sign(&self, req: &Request, route: Route, f: &FieldData) -> Result<Response> {
        let s = req.storage.as_ref();
        let name = f.str("role").unwrap_or("");
        let role =
            get_json::<Role>(s, &format!("role/{name}")).await?.ok_or_else(|| bad(format!("Unknown role: {name}")))?;
        let (signer, ca) = self.issuer(s, &role.issuer_ref).await?;
        let (public, issued) = match route {
            Route::Issue => {
                let k = generate(f.str("key_type").unwrap_or("ed25519"), f.int("key_bits").unwrap_or(0))?;
                (k.public_key().clone(), Some(k))
            }
            _ => {
                let text = f.str("public_key").unwrap_or("").trim().to_string();
                if text.is_empty() {
                    return Err(bad("missing public_key"));
                }
                let p = PublicKey::from_openssh(&text)
                    .map_err(|e| bad("failed to parse public_key as SSH key").with_source(e))?;
                (p, None)
            }
        };
        check_key_length(&role, &public)?;
        let cert_type = match f.str("cert_type").unwrap_or("user") {
            "user" => CertType::User,
            "host" => CertType::Host,
            other => return Err(bad(format!("cert_type must be either 'user' or 'host', not {other:?}"))),
        };
        if cert_type == CertType::User && !role.allow_user_certificates {
            return Err(bad(
                "Either role type or cert_type is not allowed: user certificates are not allowed by the role",
            ));
        }
        if cert_type == CertType::Host && !role.allow_host_certificates {
            return Err(bad(
                "Either role type or cert_type is not allowed: host certificates are not allowed by the role",
            ));
        }
        // Identity templates, rendered from the caller's entity: an entry that cannot be
        // rendered (no entity, no alias on that mount) allows nothing.
        let facts = if (role.allowed_users_template || role.default_user_template || role.default_extensions_template)
            && !req.entity_id.is_empty()
        {
            match &req.services {
                Some(svc) => svc.identity_facts(&req.entity_id).await?,
                None => None,
            }
        } else {
            None
        };
        let render = |v: &str, on: bool| -> Option<String> {
            match identity_template::validate(v) {
                Ok(true) if on => identity_template::render(v, facts.as_ref()),
                _ => Some(v.to_string()),
            }
        };
        let default_user = render(&role.default_user, role.default_user_template).unwrap_or_default();
        let allowed_users: Vec<String> =
            csv(&role.allowed_users).iter().filter_map(|u| render(u, role.allowed_users_template)).collect();
        let mut role = role;
        if role.default_extensions_template {
            role.default_extensions =
                role.default_extensions.iter().filter_map(|(k, v)| render(v, true).map(|v| (k.clone(), v))).collect();
        }
        let mut principals = csv(f.str("valid_principals").unwrap_or(""));
        if principals.is_empty() && !default_user.is_empty() {
            principals.push(default_user.clone());
        }
        if principals.is_empty() {
            return Err(bad("empty valid principals not allowed by role"));
        }
        for p in &principals {
            let ok = match cert_type {
                CertType::User => allowed_users.iter().any(|a| a == "*" || a == p) || *p == default_user,
                CertType::Host => host_allowed(&role, p),
            };
            if !ok {
                return Err(bad(format!("{p} is not a valid value for valid_principals")));
            }
        }
        let max = if role.max_ttl > 0 { role.max_ttl } else { req.system.max_lease_ttl };
        let mut ttl = f.int("ttl").filter(|t| *t > 0).unwrap_or(if role.ttl > 0 {
            role.ttl
        } else {
            req.system.default_lease_ttl
        });
        let mut warnings = Vec::new();
        if ttl > max {
            warnings.push(format!("TTL {ttl}s is longer than the role's maximum {max}s; the maximum is used"));
            ttl = max;
        }
        let critical = self.options(
            &role.allowed_critical_options,
            &role.default_critical_options,
            f.get("critical_options"),
            "critical option",
        )?;
        let extensions = if cert_type == CertType::User {
            self.options(&role.allowed_extensions, &role.default_extensions, f.get("extensions"), "extension")?
        } else {
            if !str_map(f.get("extensions"))?.is_empty() {
                return Err(bad("extensions are not allowed on host certificates"));
            }
            BTreeMap::new()
        };
        let serial = {
            let mut b = [0u8; 8];
            rand_core_06::RngCore::fill_bytes(&mut rng(), &mut b);
            u64::from_be_bytes(b)
        };
        // OpenBao's key hash: SHA-256 of the key's wire encoding, in hex; the caller's display
        // name as the token shows it (`token`, `token-alice`, `userpass-bob`).
        let key_hash: String =
            public.fingerprint(ssh_key::HashAlg::Sha256).as_bytes().iter().map(|b| format!("{b:02x}")).collect();
        let key_id = match f.str("key_id").filter(|k| !k.is_empty()) {
            Some(k) if role.allow_user_key_ids => k.to_string(),
            Some(_) => return Err(bad("setting key_id is not allowed by role")),
            None if !role.key_id_format.is_empty() => role
                .key_id_format
                .replace("{{role_name}}", name)
                .replace("{{public_key_hash}}", &key_hash)
                .replace("{{token_display_name}}", &req.display_name),
            None => format!("vault-{}-{key_hash}", req.display_name),
        };
        let now = now();
        let valid_after = now.saturating_sub(role.not_before_duration.max(0) as u64);
        let valid_before = now + ttl.max(1) as u64;
        let mut b = Builder::new_with_random_nonce(&mut rng(), public.key_data().clone(), valid_after, valid_before)
            .map_err(|e| LogicalError::internal("building the certificate failed").with_source(e))?;
        let e = |e: ssh_key::Error| bad("invalid certificate field").with_source(e);
        b.serial(serial).map_err(e)?;
        b.key_id(key_id).map_err(e)?;
        b.cert_type(cert_type).map_err(e)?;
        for p in &principals {
            b.valid_principal(p.clone()).map_err(e)?;
        }
        for (k, v) in &critical {
            b.critical_option(k.clone(), v.clone()).map_err(e)?;
        }
        for (k, v) in &extensions {
            b.extension(k.clone(), v.clone()).map_err(e)?;
        }
        let cert = b.sign(&ca).map_err(|e| LogicalError::internal("signing the certificate failed").with_source(e))?;
        let signed =
            cert.to_openssh().map_err(|e| LogicalError::internal("encoding the certificate failed").with_source(e))?;
        let mut d = Map::new();
        d.insert("issuer_id".into(), json!(signer.id));
        d.insert("serial_number".into(), json!(format!("{serial:016x}")));
        d.insert("signed_key".into(), json!(format!("{signed}\n")));
        if let Some(k) = issued {
            let pem = k
                .to_openssh(LineEnding::LF)
                .map_err(|e| LogicalError::internal("encoding the key failed").with_source(e))?;
            d.insert("private_key".into(), json!(pem.to_string()));
            d.insert("private_key_type".into(), json!(k.algorithm().as_str()));
        }
        let mut r = Response::data(d);
        r.warnings = warnings;
        Ok(r)
    }

    /// The role's defaults, plus what the request asks for when the role allows it.
    fn options(
        &self,
        allowed: &str,
        defaults: &BTreeMap<String, String>,
        asked: Option<&Value>,
        what: &str,
    ) -> Result<BTreeMap<String, String>> {
        let asked = str_map(asked)?;
        let allowed = csv(allowed);
        let mut out = defaults.clone();
        for (k, v) in asked {
            if !allowed.iter().any(|a| a == "*" || *a == k) {
                return Err(bad(format!("{what} {k:?} is not allowed by the role")));
            }
            out.insert(k, v);
        }
        Ok(out)
    }
}

fn host_allowed(role: &Role, host: &str) -> bool {
    csv(&role.allowed_domains).iter().any(|d| {
        d == "*"
            || (role.allow_bare_domains && host == d)
            || (role.allow_subdomains && host.ends_with(&format!(".{d}")))
    })
}

fn check_key_length(role: &Role, key: &PublicKey) -> Result<()> {
    if role.allowed_user_key_lengths.is_empty() {
        return Ok(());
    }
    let (name, bits) = match key.key_data() {
        ssh_key::public::KeyData::Rsa(r) => ("rsa", r.n.as_positive_bytes().map(|b| b.len() * 8).unwrap_or(0) as i64),
        ssh_key::public::KeyData::Ed25519(_) => ("ed25519", 256),
        ssh_key::public::KeyData::Ecdsa(e) => (
            "ec",
            match e.curve() {
                EcdsaCurve::NistP256 => 256,
                EcdsaCurve::NistP384 => 384,
                EcdsaCurve::NistP521 => 521,
            },
        ),
        _ => ("other", 0),
    };
    match role.allowed_user_key_lengths.get(name) {
        None => Err(bad(format!("key type {name} is not allowed by the role's allowed_user_key_lengths"))),
        Some(min) if bits < *min => {
            Err(bad(format!("key is of an invalid size: {bits} bits, the role wants at least {min}")))
        }
        Some(_) => Ok(()),
    }
}

fn role_data(r: &Role) -> Map<String, Value> {
    match json!({
        "key_type": "ca", "allowed_users": r.allowed_users, "default_user": r.default_user,
        "allowed_extensions": r.allowed_extensions, "default_extensions": r.default_extensions,
        "allowed_critical_options": r.allowed_critical_options, "default_critical_options": r.default_critical_options,
        "ttl": r.ttl, "max_ttl": r.max_ttl, "allow_user_certificates": r.allow_user_certificates,
        "allow_host_certificates": r.allow_host_certificates, "allowed_domains": r.allowed_domains,
        "allow_subdomains": r.allow_subdomains, "allow_bare_domains": r.allow_bare_domains,
        "allow_user_key_ids": r.allow_user_key_ids, "key_id_format": r.key_id_format,
        "allowed_user_key_lengths": r.allowed_user_key_lengths, "algorithm_signer": r.algorithm_signer,
        "not_before_duration": r.not_before_duration, "issuer_ref": r.issuer_ref,
        "allowed_users_template": r.allowed_users_template, "default_user_template": r.default_user_template,
        "default_extensions_template": r.default_extensions_template,
    }) {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coffer_sdk::framework::Backend as Framework;
    use coffer_sdk::testing::MapView;
    use coffer_sdk::Backend;
    use ssh_key::Certificate;
    use std::sync::Arc;

    fn req(s: &Arc<MapView>, op: Operation, path: &str, data: Value) -> Request {
        Request {
            operation: op,
            path: path.into(),
            data: data.as_object().cloned().unwrap_or_default(),
            mount_point: "ssh/".into(),
            storage: s.clone(),
            system: coffer_sdk::SystemInfo::default(),
            remote_addr: None,
            services: None,
            client_certs: None,
            display_name: "token".into(),
            entity_id: String::new(),
        }
    }

    #[tokio::test]
    async fn a_mount_from_before_issuers_keeps_its_key_as_the_default_issuer_and_signs_with_it() {
        let s = Arc::new(MapView::default());
        let legacy = generate("ssh-ed25519", 0).unwrap();
        let pem = legacy.to_openssh(LineEnding::LF).unwrap().to_string();
        put_json(s.as_ref(), "config/ca_private_key", &CaEntry { private_key: pem }).await.unwrap();
        let ssh = Framework::new(Ssh::new());
        let r = ssh.handle_request(req(&s, Operation::Read, "config/issuers", json!({}))).await.unwrap().unwrap();
        let id = r.data.unwrap()["default"].as_str().unwrap().to_string();
        assert!(s.get("config/ca_private_key").await.unwrap().is_none(), "the legacy entry is gone");
        let r = ssh.handle_request(req(&s, Operation::Read, "public_key", json!({}))).await.unwrap().unwrap();
        let body = r.data.unwrap()["http_raw_body"].as_str().unwrap().to_string();
        assert_eq!(body.trim(), public_openssh(&legacy).unwrap());
        let role = json!({"key_type": "ca", "allow_user_certificates": true, "allowed_users": "*"});
        ssh.handle_request(req(&s, Operation::Update, "roles/r", role)).await.unwrap();
        let user = generate("ssh-ed25519", 0).unwrap();
        let ask = json!({"public_key": public_openssh(&user).unwrap(), "valid_principals": "alice"});
        let r = ssh.handle_request(req(&s, Operation::Update, "sign/r", ask)).await.unwrap().unwrap();
        let d = r.data.unwrap();
        assert_eq!(d["issuer_id"], json!(id));
        let cert = Certificate::from_openssh(d["signed_key"].as_str().unwrap().trim()).unwrap();
        assert_eq!(cert.signature_key(), legacy.public_key().key_data(), "signed by the legacy key");
        // OpenBao's default key id: the caller's display name and the hex SHA-256 of the key.
        let wire = user.public_key().to_bytes().unwrap();
        let hex: String = <sha2::Sha256 as sha2::Digest>::digest(&wire).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(cert.key_id(), format!("vault-token-{hex}"));
    }
}
