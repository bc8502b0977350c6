#![forbid(unsafe_code)]
//! The AppRole auth method: machines log in with a role ID and (usually) a secret ID.
//!
//! Storage (the mount's own view), all JSON:
//!
//! | key | content |
//! |---|---|
//! | `salt` | 32 random bytes (hex) keying every HMAC below, created on first use |
//! | `role/<name>` | [`RoleEntry`]: role ID, secret-ID constraints, token settings |
//! | `role_id/<hmac>` | the role name, under HMAC-SHA-256(salt, "role_id" ‖ role ID) |
//! | `secret_id/<role name>/<hmac>` | [`SecretIdEntry`], under HMAC-SHA-256(salt, "secret_id" ‖ secret ID) |
//! | `accessor/<hmac>` | role name and secret-ID HMAC, under HMAC-SHA-256(salt, "accessor" ‖ accessor) |
//!
//! Secret IDs are never stored; they are returned only by the call that creates them.

use async_trait::async_trait;
use coffer_sdk::field::FieldType;
use coffer_sdk::framework::{FieldData, FieldSpec, Handler, PathFlags, PathSpec, Paths};
use coffer_sdk::tokenutil::{addr_in_cidrs, parse_cidr, token_fields, TokenParams};
use coffer_sdk::{ErrorKind, LogicalError, Operation, Request, Response, ResponseStatus, Result, StorageView};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sha2::Sha256;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};
use subtle::ConstantTimeEq;

/// A role name as OpenBao accepts it: word characters, with `-` and `.` inside.
const NAME: &str = r"[A-Za-z0-9_](?:[A-Za-z0-9_.\-]*[A-Za-z0-9_])?";

const INVALID_CREDENTIALS: &str = "invalid role or secret ID";
const TIDY_WARNING: &str =
    "Tidy operation successfully started. Any information from the operation will be printed to the server logs.";

/// The paths of the AppRole method, one variant per row of [`build_specs`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    List,
    Role,
    RoleId,
    SecretId,
    CustomSecretId,
    SecretIdLookup,
    SecretIdDestroy,
    AccessorLookup,
    AccessorDestroy,
    Login,
    Tidy,
    /// `role/<name>/<endpoint>`: one setting of a role (an endpoint of [`FIELD_ENDPOINTS`]).
    RoleField(&'static str),
}

/// The role's one-setting endpoints (`role/<name>/policies`, …): each reads, writes and resets
/// (DELETE) the role fields it names, as OpenBao serves them. The first field is the one a
/// reset returns to its default. Each has its row, routed as [`Route::RoleField`].
const FIELD_ENDPOINTS: &[(&str, &[&str])] = &[
    ("policies", &["token_policies", "policies"]),
    ("period", &["token_period", "period"]),
    ("secret-id-bound-cidrs", &["secret_id_bound_cidrs"]),
    ("secret-id-num-uses", &["secret_id_num_uses"]),
    ("secret-id-ttl", &["secret_id_ttl"]),
    ("token-bound-cidrs", &["token_bound_cidrs"]),
    ("token-max-ttl", &["token_max_ttl"]),
    ("token-num-uses", &["token_num_uses"]),
    ("token-ttl", &["token_ttl"]),
    ("local-secret-ids", &["local_secret_ids"]),
];

/// Login, destroy and tidy serialise on one of these, chosen by the secret ID's HMAC, so that a
/// use count is read, decremented and written back without a concurrent login in between.
const LOCK_STRIPES: usize = 16;

/// A role as stored.
#[derive(Clone, Serialize, Deserialize)]
struct RoleEntry {
    role_id: String,
    bind_secret_id: bool,
    #[serde(default)]
    secret_id_bound_cidrs: Vec<String>,
    /// Whether secret_id_bound_cidrs was ever given (even empty): a read shows null before.
    #[serde(default)]
    secret_id_bound_cidrs_set: bool,
    #[serde(default)]
    secret_id_num_uses: i64,
    #[serde(default)]
    secret_id_ttl: i64,
    #[serde(default)]
    local_secret_ids: bool,
    #[serde(flatten)]
    token: TokenParams,
}

/// A secret ID's properties as stored (the secret ID itself is not).
#[derive(Clone, Serialize, Deserialize)]
struct SecretIdEntry {
    secret_id_accessor: String,
    /// Remaining uses; 0 = unlimited.
    secret_id_num_uses: i64,
    /// Seconds, as granted; 0 = no expiry.
    secret_id_ttl: i64,
    /// Unix nanoseconds.
    creation_time: i64,
    /// Unix nanoseconds; 0 = never.
    expiration_time: i64,
    last_updated_time: i64,
    #[serde(default)]
    metadata: Map<String, Value>,
    #[serde(default)]
    cidr_list: Vec<String>,
    #[serde(default)]
    token_bound_cidrs: Vec<String>,
}

impl SecretIdEntry {
    fn expired(&self, now: i64) -> bool {
        self.expiration_time != 0 && now >= self.expiration_time
    }
    fn to_response(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("cidr_list".into(), json!(self.cidr_list));
        m.insert("creation_time".into(), json!(rfc3339(self.creation_time)));
        m.insert("expiration_time".into(), json!(rfc3339(self.expiration_time)));
        m.insert("last_updated_time".into(), json!(rfc3339(self.last_updated_time)));
        m.insert("metadata".into(), Value::Object(self.metadata.clone()));
        m.insert("secret_id_accessor".into(), json!(self.secret_id_accessor));
        m.insert("secret_id_num_uses".into(), json!(self.secret_id_num_uses));
        m.insert("secret_id_ttl".into(), json!(self.secret_id_ttl));
        m.insert("token_bound_cidrs".into(), json!(self.token_bound_cidrs));
        m
    }
}

/// What an accessor points at.
#[derive(Clone, Serialize, Deserialize)]
struct AccessorEntry {
    role_name: String,
    secret_id_hmac: String,
}

#[derive(Serialize, Deserialize)]
struct RoleIdEntry {
    name: String,
}

/// Serve it wrapped in [`coffer_sdk::framework::Backend`].
pub struct AppRole {
    paths: Paths<Route>,
    salt_lock: tokio::sync::Mutex<()>,
    locks: Vec<tokio::sync::Mutex<()>>,
}

impl Default for AppRole {
    fn default() -> Self {
        Self::new()
    }
}

impl AppRole {
    pub fn new() -> Self {
        AppRole {
            paths: Paths::new(specs_static().to_vec()),
            salt_lock: tokio::sync::Mutex::new(()),
            locks: (0..LOCK_STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
        }
    }

    fn lock_for(&self, secret_hmac: &str) -> &tokio::sync::Mutex<()> {
        let b = u8::from_str_radix(secret_hmac.get(..2).unwrap_or("00"), 16).unwrap_or(0);
        &self.locks[b as usize % LOCK_STRIPES]
    }
}

// ---------------------------------------------------------------------------------------------
// Path table

fn role_name_field() -> FieldSpec {
    FieldSpec::new("role_name", FieldType::String, "Name of the role (case-insensitive: stored lower-cased)")
}

fn secret_id_create_fields() -> Vec<FieldSpec> {
    vec![
        role_name_field(),
        FieldSpec::new(
            "metadata",
            FieldType::String,
            "JSON object of string keys and values, attached to the secret ID and copied into the \
             metadata of tokens it logs in",
        ),
        FieldSpec::new(
            "cidr_list",
            FieldType::CommaStringSlice,
            "CIDR blocks the secret ID may be used from; must lie within the role's secret_id_bound_cidrs",
        ),
        FieldSpec::new(
            "token_bound_cidrs",
            FieldType::CommaStringSlice,
            "CIDR blocks the tokens issued with this secret ID may be used from; must lie within the \
             role's token_bound_cidrs",
        ),
        FieldSpec::new(
            "ttl",
            FieldType::DurationSecond,
            "Lifetime of the secret ID; defaults to the role's secret_id_ttl and may not exceed it",
        ),
        FieldSpec::new(
            "num_uses",
            FieldType::Int,
            "Number of logins the secret ID allows (0 = unlimited); defaults to the role's \
             secret_id_num_uses and may not exceed it",
        ),
    ]
}

fn build_specs() -> Vec<(Route, PathSpec)> {
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let role = |suffix: &str| leak(format!("role/(?P<role_name>{NAME}){suffix}"));
    let mut role_fields = vec![
        role_name_field(),
        FieldSpec::new("bind_secret_id", FieldType::Bool, "Whether a login must present a secret ID")
            .default(json!(true)),
        FieldSpec::new(
            "secret_id_bound_cidrs",
            FieldType::CommaStringSlice,
            "CIDR blocks logins with this role must come from",
        ),
        FieldSpec::new(
            "secret_id_num_uses",
            FieldType::Int,
            "Default and maximum number of logins a secret ID of this role allows (0 = unlimited)",
        ),
        FieldSpec::new(
            "secret_id_ttl",
            FieldType::DurationSecond,
            "Default and maximum lifetime of the role's secret IDs (0 = no expiry)",
        ),
        FieldSpec::new(
            "local_secret_ids",
            FieldType::Bool,
            "Whether secret IDs stay local to the cluster; can only be set when the role is created",
        ),
        FieldSpec::new("role_id", FieldType::String, "Role ID to use instead of a generated UUID"),
    ];
    role_fields.extend(token_fields());
    // One path per setting endpoint (in FIELD_ENDPOINTS order, after the others), each
    // declaring only its own fields, as OpenBao lists them.
    let setting_specs: Vec<(Route, PathSpec)> = FIELD_ENDPOINTS
        .iter()
        .map(|(endpoint, keys)| {
            let mut fields = vec![role_name_field()];
            fields.extend(role_fields.iter().filter(|f| keys.contains(&f.name)).cloned());
            let mut operations = vec![(Operation::Read, "Read this setting of the role")];
            if *endpoint != "local-secret-ids" {
                operations.push((Operation::Update, "Change this setting of an existing role"));
                operations.push((Operation::Delete, "Reset this setting of the role to its default"));
            }
            let spec = PathSpec {
                flags: PathFlags::NORMAL,
                pattern: role(&format!("/{endpoint}")),
                fields,
                operations,
                passthrough: false,
                synopsis: "One setting of a role",
                description: "Reads, changes or resets (DELETE) one setting of an existing role; \
                              the same setting as in the role's own path.",
            };
            (Route::RoleField(endpoint), spec)
        })
        .collect();
    let secret_id_field = || FieldSpec::new("secret_id", FieldType::String, "The secret ID");
    let accessor_field = || FieldSpec::new("secret_id_accessor", FieldType::String, "Accessor of the secret ID");
    let mut custom_fields = secret_id_create_fields();
    custom_fields.push(FieldSpec::new("secret_id", FieldType::String, "The secret ID to register (required)"));

    vec![
        (
            Route::List,
            PathSpec {
                flags: PathFlags::NORMAL,
                pattern: "role/?",
                fields: vec![],
                operations: vec![(Operation::List, "List the roles of this mount")],
                passthrough: false,
                synopsis: "List roles",
                description: "Lists the names of the roles registered with this auth method.",
            },
        ),
        (
            Route::Role,
            PathSpec {
                flags: PathFlags::NORMAL,
                pattern: role(""),
                fields: role_fields,
                operations: vec![
                    (Operation::Create, "Create the role"),
                    (Operation::Update, "Update the role"),
                    (Operation::Read, "Read the role's settings"),
                    (Operation::Delete, "Delete the role and all its secret IDs"),
                ],
                passthrough: false,
                synopsis: "Manage a role",
                description: "A role holds the constraints on its secret IDs and the settings of the tokens its \
                          logins receive.",
            },
        ),
        (
            Route::RoleId,
            PathSpec {
                flags: PathFlags::NORMAL,
                pattern: role("/role-id"),
                fields: vec![role_name_field(), FieldSpec::new("role_id", FieldType::String, "The new role ID")],
                operations: vec![(Operation::Read, "Read the role ID"), (Operation::Update, "Set a custom role ID")],
                passthrough: false,
                synopsis: "The role's role ID",
                description: "Reads the role ID logins present, or replaces it with a chosen value.",
            },
        ),
        (
            Route::SecretId,
            PathSpec {
                flags: PathFlags::NORMAL,
                pattern: role("/secret-id/?"),
                fields: secret_id_create_fields(),
                operations: vec![
                    (Operation::Update, "Generate a new secret ID"),
                    (Operation::List, "List the accessors of the role's secret IDs"),
                ],
                passthrough: false,
                synopsis: "Generate or list secret IDs",
                description: "Generates a random secret ID for the role (returned once, never stored in clear), \
                          or lists the accessors of the existing ones.",
            },
        ),
        (
            Route::CustomSecretId,
            PathSpec {
                flags: PathFlags::NORMAL,
                pattern: role("/custom-secret-id"),
                fields: custom_fields,
                operations: vec![(Operation::Update, "Register a chosen secret ID")],
                passthrough: false,
                synopsis: "Register a custom secret ID",
                description: "Registers a secret ID chosen by the caller, with the same options as a generated one.",
            },
        ),
        (
            Route::SecretIdLookup,
            PathSpec {
                flags: PathFlags::NORMAL,
                pattern: role("/secret-id/lookup"),
                fields: vec![role_name_field(), secret_id_field()],
                operations: vec![(Operation::Update, "Look up a secret ID's properties")],
                passthrough: false,
                synopsis: "Look up a secret ID",
                description: "Returns the properties of a secret ID of the role: times, remaining uses, metadata, \
                          CIDR restrictions and accessor.",
            },
        ),
        (
            Route::SecretIdDestroy,
            PathSpec {
                flags: PathFlags::NORMAL,
                pattern: role("/secret-id/destroy"),
                fields: vec![role_name_field(), secret_id_field()],
                operations: vec![
                    (Operation::Update, "Destroy a secret ID"),
                    (Operation::Delete, "Destroy a secret ID"),
                ],
                passthrough: false,
                synopsis: "Destroy a secret ID",
                description: "Invalidates a secret ID of the role.",
            },
        ),
        (
            Route::AccessorLookup,
            PathSpec {
                flags: PathFlags::NORMAL,
                pattern: role("/secret-id-accessor/lookup"),
                fields: vec![role_name_field(), accessor_field()],
                operations: vec![(Operation::Update, "Look up a secret ID by its accessor")],
                passthrough: false,
                synopsis: "Look up a secret ID by accessor",
                description: "Returns the properties of the secret ID the accessor refers to.",
            },
        ),
        (
            Route::AccessorDestroy,
            PathSpec {
                flags: PathFlags::NORMAL,
                pattern: role("/secret-id-accessor/destroy"),
                fields: vec![role_name_field(), accessor_field()],
                operations: vec![
                    (Operation::Update, "Destroy a secret ID by its accessor"),
                    (Operation::Delete, "Destroy a secret ID by its accessor"),
                ],
                passthrough: false,
                synopsis: "Destroy a secret ID by accessor",
                description: "Invalidates the secret ID the accessor refers to.",
            },
        ),
        (
            Route::Login,
            PathSpec {
                flags: PathFlags::NORMAL.unauthenticated(),
                pattern: "login",
                fields: vec![
                    FieldSpec::new("role_id", FieldType::String, "Role ID of the role"),
                    FieldSpec::new(
                        "secret_id",
                        FieldType::String,
                        "Secret ID of the role (when bind_secret_id is set)",
                    ),
                ],
                operations: vec![(Operation::Update, "Log in with a role ID and secret ID")],
                passthrough: false,
                synopsis: "Log in with AppRole",
                description: "Checks the role ID, the secret ID and the CIDR restrictions, consumes one use of the \
                          secret ID and returns a token with the role's settings.",
            },
        ),
        (
            Route::Tidy,
            PathSpec {
                flags: PathFlags::NORMAL,
                pattern: "tidy/secret-id",
                fields: vec![],
                operations: vec![(Operation::Update, "Remove expired secret IDs")],
                passthrough: false,
                synopsis: "Tidy secret IDs",
                description: "Deletes expired secret IDs, secret IDs of deleted roles and dangling accessors.",
            },
        ),
    ]
    .into_iter()
    .chain(setting_specs)
    .collect()
}

/// The rows, built once per process: their patterns are leaked strings.
fn specs_static() -> &'static [(Route, PathSpec)] {
    static P: OnceLock<Vec<(Route, PathSpec)>> = OnceLock::new();
    P.get_or_init(build_specs)
}

// ---------------------------------------------------------------------------------------------
// Helpers: time, HMAC, storage

fn now_nanos() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}

/// RFC 3339 in UTC with nanoseconds, trailing zeros trimmed (Go's RFC3339Nano); 0 is Go's zero
/// time, as OpenBao shows a secret ID that never expires.
fn rfc3339(nanos: i64) -> String {
    if nanos == 0 {
        return "0001-01-01T00:00:00Z".into();
    }
    let secs = nanos.div_euclid(1_000_000_000);
    let frac = nanos.rem_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut s = format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}", sod / 3600, (sod % 3600) / 60, sod % 60);
    if frac != 0 {
        let f = format!("{frac:09}");
        s.push('.');
        s.push_str(f.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

/// HMAC-SHA-256(salt, kind ‖ 0 ‖ value), hex: the storage name of a role ID, secret ID or
/// accessor. The kind keeps the three namespaces apart.
fn hmac_hex(salt: &[u8], kind: &str, value: &str) -> String {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(salt).expect("HMAC accepts any key length");
    m.update(kind.as_bytes());
    m.update(&[0]);
    m.update(value.as_bytes());
    to_hex(&m.finalize().into_bytes())
}

fn new_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

async fn get_json<T: for<'de> Deserialize<'de>>(s: &dyn StorageView, key: &str) -> Result<Option<T>> {
    match s.get(key).await? {
        None => Ok(None),
        Some(raw) => serde_json::from_slice(&raw)
            .map(Some)
            // drop-cause: entries hold secret-ID hashes and the salt, which a JSON error could quote.
            .map_err(|_| LogicalError::internal(format!("stored entry at {key:?} is malformed"))),
    }
}

async fn put_json<T: Serialize>(s: &dyn StorageView, key: &str, v: &T) -> Result<()> {
    let bytes = serde_json::to_vec(v).map_err(|e| LogicalError::internal(e.to_string()))?;
    s.put(key, &bytes).await
}

fn role_key(name: &str) -> String {
    format!("role/{name}")
}
fn role_id_key(hmac: &str) -> String {
    format!("role_id/{hmac}")
}
fn secret_key(role: &str, hmac: &str) -> String {
    format!("secret_id/{role}/{hmac}")
}
fn accessor_key(hmac: &str) -> String {
    format!("accessor/{hmac}")
}

fn internal(msg: impl Into<String>) -> LogicalError {
    LogicalError::internal(msg)
}

/// A role as a read shows it.
fn role_read(role: &RoleEntry) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("bind_secret_id".into(), json!(role.bind_secret_id));
    out.insert("local_secret_ids".into(), json!(role.local_secret_ids));
    // OpenBao shows null until the CIDRs are given (then a list, even an empty one).
    let cidrs = if role.secret_id_bound_cidrs.is_empty() && !role.secret_id_bound_cidrs_set {
        Value::Null
    } else {
        json!(role.secret_id_bound_cidrs)
    };
    out.insert("secret_id_bound_cidrs".into(), cidrs);
    out.insert("secret_id_num_uses".into(), json!(role.secret_id_num_uses));
    out.insert("secret_id_ttl".into(), json!(role.secret_id_ttl));
    role.token.to_response(&mut out);
    out
}

fn role_missing(name: &str, kind: ErrorKind) -> LogicalError {
    LogicalError::new(kind, format!("role {name:?} does not exist"))
}

fn validate_cidrs(field: &str, cidrs: &[String]) -> Result<()> {
    for c in cidrs {
        if parse_cidr(c).is_none() {
            return Err(LogicalError::bad_request(format!("invalid CIDR {c:?} in {field}")));
        }
    }
    Ok(())
}

/// Whether every block of `inner` lies inside some block of `outer` (an empty `outer` allows
/// anything).
fn cidrs_within(outer: &[String], inner: &[String]) -> bool {
    if outer.is_empty() {
        return true;
    }
    inner.iter().all(|c| {
        let Some((net, len)) = parse_cidr(c) else { return false };
        outer.iter().any(|o| match parse_cidr(o) {
            Some((_, olen)) => olen <= len && addr_in_cidrs(Some(net), std::slice::from_ref(o)),
            None => false,
        })
    })
}

fn addr_text(addr: Option<std::net::IpAddr>) -> String {
    addr.map(|a| a.to_string()).unwrap_or_else(|| "unknown".into())
}

/// OpenBao refuses batch tokens with a use limit.
fn check_token_type(t: &TokenParams) -> Result<()> {
    if t.token_type == "batch" && t.token_num_uses > 0 {
        return Err(LogicalError::bad_request(
            "'token_type' cannot be 'batch' or 'default_batch' when set to generate tokens with limited use count",
        ));
    }
    Ok(())
}

/// Parses the `metadata` field: a JSON object of strings, given as a string.
fn parse_metadata(s: Option<&str>) -> Result<Map<String, Value>> {
    let s = s.unwrap_or("").trim();
    if s.is_empty() {
        return Ok(Map::new());
    }
    let bad =
        || LogicalError::bad_request("failed to parse metadata: failed to parse the input: invalid <key,value> format");
    match serde_json::from_str::<Value>(s) {
        Ok(Value::Object(m)) if m.values().all(Value::is_string) => Ok(m),
        _ => Err(bad()),
    }
}

fn str_list(f: &FieldData, name: &str) -> Vec<String> {
    f.get(name)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// The backend

impl AppRole {
    /// The mount's HMAC key, created on first use.
    async fn salt(&self, s: &dyn StorageView) -> Result<Vec<u8>> {
        #[derive(Serialize, Deserialize)]
        struct Salt {
            salt: String,
        }
        let read = |v: Option<Salt>| -> Result<Option<Vec<u8>>> {
            match v {
                None => Ok(None),
                Some(x) => {
                    from_hex(&x.salt).filter(|b| b.len() == 32).map(Some).ok_or_else(|| internal("salt is malformed"))
                }
            }
        };
        if let Some(b) = read(get_json::<Salt>(s, "salt").await?)? {
            return Ok(b);
        }
        let _g = self.salt_lock.lock().await;
        if let Some(b) = read(get_json::<Salt>(s, "salt").await?)? {
            return Ok(b);
        }
        let mut b = vec![0u8; 32];
        getrandom::fill(&mut b).map_err(|cause| internal("failed to generate the salt").with_source(cause))?;
        put_json(s, "salt", &Salt { salt: to_hex(&b) }).await?;
        Ok(b)
    }

    /// `role/<name>/<setting>`: read, write or reset one setting of an existing role.
    async fn role_field(&self, req: &Request, name: &str, endpoint: &str, op: Operation) -> Result<Option<Response>> {
        let Some((_, keys)) = FIELD_ENDPOINTS.iter().find(|(e, _)| *e == endpoint) else {
            return Err(LogicalError::unsupported_path(&req.path));
        };
        let s = req.storage.as_ref();
        let role = get_json::<RoleEntry>(s, &role_key(name)).await?;
        if op == Operation::Read {
            let Some(role) = role else { return Ok(None) };
            let all = role_read(&role);
            let out: Map<String, Value> =
                keys.iter().filter_map(|k| all.get(*k).map(|v| (k.to_string(), v.clone()))).collect();
            return Ok(Some(Response::data(out)));
        }
        if endpoint == "local-secret-ids" {
            return Err(LogicalError::unsupported_operation());
        }
        if role.is_none() {
            // As OpenBao: deleting a setting of a missing role is a no-op, writing one a 404.
            if op == Operation::Delete {
                return Ok(None);
            }
            return Err(role_missing(name, ErrorKind::NotFound));
        }
        let data: Map<String, Value> = if op == Operation::Delete {
            let default = match keys[0] {
                "secret_id_bound_cidrs" | "token_bound_cidrs" | "token_policies" => json!([]),
                _ => json!(0),
            };
            [(keys[0].to_string(), default)].into_iter().collect()
        } else {
            req.data.iter().filter(|(k, _)| keys.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect()
        };
        let role_path = format!("role/{name}");
        let m = self.paths.route(Operation::Update, &role_path, &data)?;
        let sub = Request {
            operation: Operation::Update,
            path: role_path,
            data,
            mount_point: req.mount_point.clone(),
            storage: req.storage.clone(),
            system: req.system,
            remote_addr: req.remote_addr,
            services: req.services.clone(),
            client_certs: req.client_certs.clone(),
            display_name: String::new(),
            entity_id: String::new(),
        };
        self.write_role(&sub, name, &m.fields).await
    }

    async fn write_role(&self, req: &Request, name: &str, f: &FieldData) -> Result<Option<Response>> {
        let s = req.storage.as_ref();
        let existing: Option<RoleEntry> = get_json(s, &role_key(name)).await?;
        let creating = existing.is_none();
        let mut role = existing.clone().unwrap_or_else(|| RoleEntry {
            role_id: String::new(),
            bind_secret_id: true,
            secret_id_bound_cidrs: vec![],
            secret_id_bound_cidrs_set: false,
            secret_id_num_uses: 0,
            secret_id_ttl: 0,
            local_secret_ids: false,
            token: TokenParams { token_type: "default".into(), ..TokenParams::default() },
        });
        if f.is_set("bind_secret_id") {
            role.bind_secret_id = f.bool("bind_secret_id").unwrap_or(true);
        }
        if f.is_set("secret_id_bound_cidrs") {
            let c = str_list(f, "secret_id_bound_cidrs");
            validate_cidrs("secret_id_bound_cidrs", &c)?;
            role.secret_id_bound_cidrs = c;
        }
        // Given at all (even as null or empty): a read shows a list from now on.
        if req.data.contains_key("secret_id_bound_cidrs") {
            role.secret_id_bound_cidrs_set = true;
        }
        if f.is_set("secret_id_num_uses") {
            let n = f.int("secret_id_num_uses").unwrap_or(0);
            if n < 0 {
                return Err(LogicalError::bad_request("secret_id_num_uses cannot be negative"));
            }
            role.secret_id_num_uses = n;
        }
        if f.is_set("secret_id_ttl") {
            let t = f.int("secret_id_ttl").unwrap_or(0);
            if t < 0 {
                return Err(LogicalError::bad_request("secret_id_ttl cannot be negative"));
            }
            role.secret_id_ttl = t;
        }
        if f.is_set("local_secret_ids") {
            if !creating {
                return Err(LogicalError::bad_request("local_secret_ids can only be modified during role creation"));
            }
            role.local_secret_ids = f.bool("local_secret_ids").unwrap_or(false);
        }
        role.token.update_from(&req.data)?;
        check_token_type(&role.token)?;
        if !role.bind_secret_id && role.secret_id_bound_cidrs.is_empty() && role.token.token_bound_cidrs.is_empty() {
            return Err(LogicalError::bad_request("at least one constraint should be enabled on the role"));
        }
        let salt = self.salt(s).await?;
        let requested = f.str("role_id").filter(|r| !r.is_empty());
        let previous = existing.map(|e| e.role_id);
        match (requested, &previous) {
            (Some(r), Some(p)) if r == p => {}
            (Some(r), _) => {
                self.claim_role_id(s, &salt, r, name).await?;
                role.role_id = r.to_string();
            }
            (None, Some(_)) => {}
            (None, None) => {
                role.role_id = new_uuid();
                self.claim_role_id(s, &salt, &role.role_id, name).await?;
            }
        }
        put_json(s, &role_key(name), &role).await?;
        if let Some(p) = previous.filter(|p| *p != role.role_id) {
            s.delete(&role_id_key(&hmac_hex(&salt, "role_id", &p))).await?;
        }
        Ok(None)
    }

    /// Fails if `role_id` already belongs to a role other than `name`; otherwise indexes it.
    async fn claim_role_id(&self, s: &dyn StorageView, salt: &[u8], role_id: &str, name: &str) -> Result<()> {
        let key = role_id_key(&hmac_hex(salt, "role_id", role_id));
        if let Some(e) = get_json::<RoleIdEntry>(s, &key).await? {
            if e.name != name {
                return Err(LogicalError::bad_request("role_id already in use"));
            }
        }
        put_json(s, &key, &RoleIdEntry { name: name.to_string() }).await
    }

    async fn set_role_id(&self, req: &Request, name: &str, f: &FieldData) -> Result<Option<Response>> {
        let s = req.storage.as_ref();
        let Some(mut role) = get_json::<RoleEntry>(s, &role_key(name)).await? else {
            return Err(LogicalError::unsupported_path(&req.path));
        };
        let Some(new_id) = f.str("role_id").filter(|r| !r.is_empty()) else {
            return Err(LogicalError::bad_request("missing role_id"));
        };
        let salt = self.salt(s).await?;
        if new_id == role.role_id {
            return Ok(None);
        }
        self.claim_role_id(s, &salt, new_id, name).await?;
        s.delete(&role_id_key(&hmac_hex(&salt, "role_id", &role.role_id))).await?;
        role.role_id = new_id.to_string();
        put_json(s, &role_key(name), &role).await?;
        Ok(None)
    }

    async fn delete_role(&self, req: &Request, name: &str) -> Result<Option<Response>> {
        let s = req.storage.as_ref();
        let Some(role) = get_json::<RoleEntry>(s, &role_key(name)).await? else {
            return Ok(None);
        };
        let salt = self.salt(s).await?;
        for h in s.list(&format!("secret_id/{name}/")).await? {
            let _g = self.lock_for(&h).lock().await;
            self.remove_secret(s, name, &h).await?;
        }
        let idx = role_id_key(&hmac_hex(&salt, "role_id", &role.role_id));
        if get_json::<RoleIdEntry>(s, &idx).await?.is_some_and(|e| e.name == name) {
            s.delete(&idx).await?;
        }
        s.delete(&role_key(name)).await?;
        Ok(None)
    }

    /// Deletes a secret ID entry and its accessor. The caller holds the stripe lock.
    async fn remove_secret(&self, s: &dyn StorageView, role: &str, hmac: &str) -> Result<()> {
        let key = secret_key(role, hmac);
        if let Some(e) = get_json::<SecretIdEntry>(s, &key).await? {
            let salt = self.salt(s).await?;
            s.delete(&accessor_key(&hmac_hex(&salt, "accessor", &e.secret_id_accessor))).await?;
        }
        s.delete(&key).await
    }

    async fn create_secret_id(
        &self,
        req: &Request,
        name: &str,
        f: &FieldData,
        custom: Option<&str>,
    ) -> Result<Option<Response>> {
        let s = req.storage.as_ref();
        let Some(role) = get_json::<RoleEntry>(s, &role_key(name)).await? else {
            return Err(role_missing(name, ErrorKind::NotFound));
        };
        if !role.bind_secret_id {
            return Err(LogicalError::bad_request("bind_secret_id is not set on the role"));
        }
        let secret_id = match custom {
            Some(c) => c.to_string(),
            None => new_uuid(),
        };
        let metadata = parse_metadata(f.str("metadata"))?;
        let cidr_list = str_list(f, "cidr_list");
        validate_cidrs("cidr_list", &cidr_list)?;
        if !cidrs_within(&role.secret_id_bound_cidrs, &cidr_list) {
            return Err(LogicalError::bad_request(format!(
                "failed to verify subset relationship between CIDR blocks on the role {:?} and CIDR blocks on the \
                 secret ID {:?}",
                role.secret_id_bound_cidrs, cidr_list
            )));
        }
        let token_bound_cidrs = str_list(f, "token_bound_cidrs");
        validate_cidrs("token_bound_cidrs", &token_bound_cidrs)?;
        if !cidrs_within(&role.token.token_bound_cidrs, &token_bound_cidrs) {
            return Err(LogicalError::bad_request(format!(
                "failed to verify subset relationship between the token CIDR blocks on the role {:?} and the token \
                 CIDR blocks on the secret ID {:?}",
                role.token.token_bound_cidrs, token_bound_cidrs
            )));
        }
        let num_uses = if f.is_set("num_uses") {
            let n = f.int("num_uses").unwrap_or(0);
            if n < 0 {
                return Err(LogicalError::bad_request("num_uses cannot be negative"));
            }
            if role.secret_id_num_uses > 0 && (n == 0 || n > role.secret_id_num_uses) {
                return Err(LogicalError::bad_request("num_uses cannot be higher than the role's secret_id_num_uses"));
            }
            n
        } else {
            role.secret_id_num_uses
        };
        let ttl = match f.int("ttl").filter(|_| f.is_set("ttl")) {
            Some(t) if t < 0 => return Err(LogicalError::bad_request("ttl cannot be negative")),
            Some(t) if t > 0 => {
                if role.secret_id_ttl > 0 && t > role.secret_id_ttl {
                    return Err(LogicalError::bad_request("ttl cannot be longer than the role's secret_id_ttl"));
                }
                t
            }
            _ => role.secret_id_ttl,
        };

        let salt = self.salt(s).await?;
        let h = hmac_hex(&salt, "secret_id", &secret_id);
        let _g = self.lock_for(&h).lock().await;
        let key = secret_key(name, &h);
        if s.get(&key).await?.is_some() {
            return Err(LogicalError::bad_request("failed to store secret_id: SecretID is already registered"));
        }
        let now = now_nanos();
        let accessor = new_uuid();
        let entry = SecretIdEntry {
            secret_id_accessor: accessor.clone(),
            secret_id_num_uses: num_uses,
            secret_id_ttl: ttl,
            creation_time: now,
            expiration_time: if ttl > 0 { now.saturating_add(ttl.saturating_mul(1_000_000_000)) } else { 0 },
            last_updated_time: now,
            metadata,
            cidr_list,
            token_bound_cidrs,
        };
        put_json(
            s,
            &accessor_key(&hmac_hex(&salt, "accessor", &accessor)),
            &AccessorEntry { role_name: name.to_string(), secret_id_hmac: h.clone() },
        )
        .await?;
        put_json(s, &key, &entry).await?;

        let mut out = Map::new();
        out.insert("secret_id".into(), json!(secret_id));
        out.insert("secret_id_accessor".into(), json!(accessor));
        out.insert("secret_id_num_uses".into(), json!(num_uses));
        out.insert("secret_id_ttl".into(), json!(ttl));
        Ok(Some(Response::data(out)))
    }

    async fn list_secret_ids(&self, req: &Request, name: &str) -> Result<Option<Response>> {
        let s = req.storage.as_ref();
        if get_json::<RoleEntry>(s, &role_key(name)).await?.is_none() {
            return Err(role_missing(name, ErrorKind::BadRequest));
        }
        let mut keys = Vec::new();
        for h in s.list(&format!("secret_id/{name}/")).await? {
            if let Some(e) = get_json::<SecretIdEntry>(s, &secret_key(name, &h)).await? {
                keys.push(e.secret_id_accessor);
            }
        }
        if keys.is_empty() {
            return Ok(None);
        }
        Ok(Some(Response::list(keys)))
    }

    /// The secret ID's HMAC, after checking the role exists (as OpenBao does, with a 500).
    async fn secret_hmac_for(&self, req: &Request, name: &str, f: &FieldData) -> Result<String> {
        let Some(secret_id) = f.str("secret_id").filter(|v| !v.is_empty()) else {
            return Err(LogicalError::bad_request("missing secret_id"));
        };
        let s = req.storage.as_ref();
        if get_json::<RoleEntry>(s, &role_key(name)).await?.is_none() {
            return Err(role_missing(name, ErrorKind::Internal));
        }
        let salt = self.salt(s).await?;
        Ok(hmac_hex(&salt, "secret_id", secret_id))
    }

    /// The accessor's entry, after checking the role exists. `Ok(None)`: no such accessor.
    async fn accessor_for(&self, req: &Request, name: &str, f: &FieldData) -> Result<(String, Option<AccessorEntry>)> {
        let Some(acc) = f.str("secret_id_accessor").filter(|v| !v.is_empty()) else {
            return Err(LogicalError::bad_request("missing secret_id_accessor"));
        };
        let s = req.storage.as_ref();
        if get_json::<RoleEntry>(s, &role_key(name)).await?.is_none() {
            return Err(role_missing(name, ErrorKind::Internal));
        }
        let salt = self.salt(s).await?;
        let entry = get_json::<AccessorEntry>(s, &accessor_key(&hmac_hex(&salt, "accessor", acc))).await?;
        Ok((acc.to_string(), entry))
    }

    async fn lookup_by_hmac(&self, s: &dyn StorageView, name: &str, h: &str) -> Result<Option<Response>> {
        match get_json::<SecretIdEntry>(s, &secret_key(name, h)).await? {
            Some(e) if !e.expired(now_nanos()) => Ok(Some(Response::data(e.to_response()))),
            _ => Ok(None),
        }
    }

    async fn login(&self, req: &Request, f: &FieldData) -> Result<Option<Response>> {
        let s = req.storage.as_ref();
        let Some(role_id) = f.str("role_id").filter(|v| !v.is_empty()) else {
            return Err(LogicalError::bad_request("missing role_id"));
        };
        let invalid = || LogicalError::bad_request(INVALID_CREDENTIALS);
        let salt = self.salt(s).await?;
        let Some(idx) = get_json::<RoleIdEntry>(s, &role_id_key(&hmac_hex(&salt, "role_id", role_id))).await? else {
            return Err(invalid());
        };
        let name = idx.name;
        let Some(role) = get_json::<RoleEntry>(s, &role_key(&name)).await? else {
            return Err(invalid());
        };
        if !bool::from(role.role_id.as_bytes().ct_eq(role_id.as_bytes())) {
            return Err(invalid());
        }
        let role_cidr_check = || {
            if addr_in_cidrs(req.remote_addr, &role.secret_id_bound_cidrs) {
                Ok(())
            } else {
                Err(LogicalError::bad_request(format!(
                    "source address {:?} unauthorized by CIDR restrictions on the role",
                    addr_text(req.remote_addr)
                )))
            }
        };

        let mut metadata = Map::new();
        let mut secret_token_cidrs = Vec::new();
        if role.bind_secret_id {
            let Some(secret_id) = f.str("secret_id").filter(|v| !v.is_empty()) else {
                return Err(LogicalError::bad_request("missing secret_id"));
            };
            let h = hmac_hex(&salt, "secret_id", secret_id);
            let _g = self.lock_for(&h).lock().await;
            let key = secret_key(&name, &h);
            let Some(mut entry) = get_json::<SecretIdEntry>(s, &key).await? else {
                return Err(invalid());
            };
            let now = now_nanos();
            if entry.expired(now) {
                self.remove_secret(s, &name, &h).await?;
                return Err(invalid());
            }
            if !addr_in_cidrs(req.remote_addr, &entry.cidr_list) {
                return Err(LogicalError::bad_request(format!(
                    "source address {:?} unauthorized by CIDR restrictions on the secret ID",
                    addr_text(req.remote_addr)
                )));
            }
            role_cidr_check()?;
            match entry.secret_id_num_uses {
                0 => {}
                1 => self.remove_secret(s, &name, &h).await?,
                n => {
                    entry.secret_id_num_uses = n - 1;
                    entry.last_updated_time = now;
                    put_json(s, &key, &entry).await?;
                }
            }
            metadata = entry.metadata;
            secret_token_cidrs = entry.token_bound_cidrs;
        } else {
            role_cidr_check()?;
        }

        let mut auth = role.token.to_auth("", role_id, req.remote_addr);
        if !secret_token_cidrs.is_empty() {
            auth.bound_cidrs = secret_token_cidrs;
        }
        metadata.insert("role_name".into(), json!(name));
        auth.metadata = metadata;
        auth.alias_metadata.insert("role_name".into(), json!(name));
        Ok(Some(Response { auth: Some(auth), ..Default::default() }))
    }

    /// Removes expired secret IDs, secret IDs of deleted roles and accessors whose secret ID is
    /// gone. Returns how many entries were removed.
    async fn tidy(&self, s: &dyn StorageView) -> Result<usize> {
        let now = now_nanos();
        let mut removed = 0;
        for dir in s.list("secret_id/").await? {
            let role = dir.trim_end_matches('/');
            let role_exists = s.get(&role_key(role)).await?.is_some();
            for h in s.list(&format!("secret_id/{role}/")).await? {
                let _g = self.lock_for(&h).lock().await;
                let key = secret_key(role, &h);
                let stale = match get_json::<SecretIdEntry>(s, &key).await {
                    Ok(Some(e)) => !role_exists || e.expired(now),
                    Ok(None) => false,
                    Err(_) => true,
                };
                if stale {
                    // A malformed entry has no readable accessor; its dangling accessor goes below.
                    let _ = self.remove_secret(s, role, &h).await;
                    s.delete(&key).await?;
                    removed += 1;
                }
            }
        }
        for a in s.list("accessor/").await? {
            let key = accessor_key(&a);
            let dangling = match get_json::<AccessorEntry>(s, &key).await {
                Ok(Some(e)) => s.get(&secret_key(&e.role_name, &e.secret_id_hmac)).await?.is_none(),
                Ok(None) => false,
                Err(_) => true,
            };
            if dangling {
                s.delete(&key).await?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

#[async_trait]
impl Handler for AppRole {
    type Route = Route;

    fn backend_type(&self) -> &'static str {
        "approle"
    }

    /// The rows; `login`'s is flagged unauthenticated (reachable without a token).
    fn paths(&self) -> &Paths<Route> {
        &self.paths
    }

    async fn handle(&self, route: Route, req: Request, fields: FieldData) -> Result<Option<Response>> {
        self.dispatch(route, req, &fields).await
    }

    /// A write to a missing role is a `create`.
    async fn exists(&self, route: Route, req: &Request, fields: &FieldData) -> Result<Option<bool>> {
        match route {
            Route::Role => {
                let name = fields.str("role_name").map(str::to_lowercase).unwrap_or_default();
                Ok(Some(req.storage.get(&role_key(&name)).await?.is_some()))
            }
            _ => Ok(None),
        }
    }
}

impl AppRole {
    /// Serves a routed request (the ignored-parameters warning is added around it).
    async fn dispatch(&self, route: Route, req: Request, f: &FieldData) -> Result<Option<Response>> {
        let name = f.str("role_name").map(str::to_lowercase).unwrap_or_default();
        let s = req.storage.as_ref();
        match (route, req.operation) {
            (Route::List, _) => {
                let keys = s.list("role/").await?;
                if keys.is_empty() {
                    return Ok(None);
                }
                Ok(Some(Response::list(keys)))
            }
            (Route::Role, Operation::Read) => {
                let Some(role) = get_json::<RoleEntry>(s, &role_key(&name)).await? else {
                    return Ok(None);
                };
                Ok(Some(Response::data(role_read(&role))))
            }
            (Route::RoleField(endpoint), op) => self.role_field(&req, &name, endpoint, op).await,
            (Route::Role, Operation::Create | Operation::Update) => self.write_role(&req, &name, f).await,
            (Route::Role, Operation::Delete) => self.delete_role(&req, &name).await,
            (Route::RoleId, Operation::Read) => {
                let Some(role) = get_json::<RoleEntry>(s, &role_key(&name)).await? else {
                    return Ok(None);
                };
                let mut out = Map::new();
                out.insert("role_id".into(), json!(role.role_id));
                Ok(Some(Response::data(out)))
            }
            (Route::RoleId, _) => self.set_role_id(&req, &name, f).await,
            (Route::SecretId, Operation::List) => self.list_secret_ids(&req, &name).await,
            (Route::SecretId, _) => self.create_secret_id(&req, &name, f, None).await,
            (Route::CustomSecretId, _) => {
                if get_json::<RoleEntry>(s, &role_key(&name)).await?.is_none() {
                    return Err(role_missing(&name, ErrorKind::NotFound));
                }
                let Some(custom) = f.str("secret_id").filter(|v| !v.is_empty()) else {
                    return Err(LogicalError::bad_request("missing secret_id"));
                };
                self.create_secret_id(&req, &name, f, Some(custom)).await
            }
            (Route::SecretIdLookup, _) => {
                let h = self.secret_hmac_for(&req, &name, f).await?;
                self.lookup_by_hmac(s, &name, &h).await
            }
            (Route::SecretIdDestroy, _) => {
                let h = self.secret_hmac_for(&req, &name, f).await?;
                let _g = self.lock_for(&h).lock().await;
                self.remove_secret(s, &name, &h).await?;
                Ok(None)
            }
            (Route::AccessorLookup, _) => match self.accessor_for(&req, &name, f).await? {
                // As OpenBao: a 404 whose answer is an ordinary one, the message in data.error.
                (acc, None) => {
                    let mut data = Map::new();
                    data.insert(
                        "error".into(),
                        json!(format!("failed to find accessor entry for secret_id_accessor: {acc:?}")),
                    );
                    Ok(Some(Response { status: ResponseStatus::Error(ErrorKind::NotFound), ..Response::data(data) }))
                }
                (_, Some(e)) if e.role_name != name => Ok(None),
                (_, Some(e)) => self.lookup_by_hmac(s, &name, &e.secret_id_hmac).await,
            },
            (Route::AccessorDestroy, _) => match self.accessor_for(&req, &name, f).await? {
                (acc, None) => Err(LogicalError::bad_request(format!(
                    "failed to find accessor entry for secret_id_accessor: {acc:?}"
                ))),
                (_, Some(e)) if e.role_name != name => {
                    Err(LogicalError::new(ErrorKind::PermissionDenied, "invalid secret id accessor"))
                }
                (_, Some(e)) => {
                    let _g = self.lock_for(&e.secret_id_hmac).lock().await;
                    self.remove_secret(s, &name, &e.secret_id_hmac).await?;
                    Ok(None)
                }
            },
            (Route::Login, _) => self.login(&req, f).await,
            (Route::Tidy, _) => {
                self.tidy(s).await?;
                // As OpenBao: 202 Accepted, the tidy being (in its case) a background job.
                Ok(Some(Response {
                    warnings: vec![TIDY_WARNING.to_string()],
                    status: coffer_sdk::ResponseStatus::Accepted,
                    ..Default::default()
                }))
            }
            _ => Err(LogicalError::unsupported_operation()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_like_go() {
        assert_eq!(rfc3339(0), "0001-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_000_000_000), "1970-01-01T00:00:01Z");
        assert_eq!(rfc3339(1_795_695_708_063_738_046), "2026-11-26T12:21:48.063738046Z");
        assert_eq!(rfc3339(951_782_400_500_000_000), "2000-02-29T00:00:00.5Z");
    }

    #[test]
    fn cidr_subsets() {
        let role = vec!["10.0.0.0/8".to_string()];
        assert!(cidrs_within(&role, &["10.1.0.0/16".into()]));
        assert!(cidrs_within(&role, &["10.1.2.3".into()]));
        assert!(!cidrs_within(&role, &["192.168.0.0/16".into()]));
        assert!(!cidrs_within(&role, &["0.0.0.0/0".into()]));
        assert!(cidrs_within(&[], &["192.168.0.0/16".into()]));
    }

    #[test]
    fn hmacs_are_keyed_and_separated_by_kind() {
        let a = hmac_hex(&[1; 32], "secret_id", "x");
        assert_eq!(a.len(), 64);
        assert_ne!(a, hmac_hex(&[2; 32], "secret_id", "x"));
        assert_ne!(a, hmac_hex(&[1; 32], "accessor", "x"));
        assert_eq!(from_hex(&a).map(|b| to_hex(&b)), Some(a));
    }
}
