//! The `database` secrets engine: database users on demand (dynamic roles, each user leased and
//! dropped when its lease ends), passwords of existing users rotated on a schedule (static
//! roles), and rotation of the engine's own root credentials, as OpenBao's engine of that name.
//!
//! The engine decides *when*; a [`coffer_sdk::database::Database`] plugin decides *how*. The
//! plugin for a connection is found by its `plugin_name` through the
//! [`DatabaseResolver`] the server hands the engine (built-in plugins, and later the catalog).
//!
//! | path | operations |
//! |---|---|
//! | `config/` | list connections |
//! | `config/<name>` | read (never the password), create/update (initialises the plugin, connects when `verify_connection`), delete |
//! | `reset/<name>` | close and re-open the connection |
//! | `rotate-root/<name>` | new password for the configured `username`; on failure the old one stays |
//! | `roles/`, `roles/<name>` | dynamic roles |
//! | `creds/<role>` | a new leased user |
//! | `static-roles/`, `static-roles/<name>` | static roles (rotated at once on creation) |
//! | `static-creds/<name>` | the current password of a static role |
//! | `rotate-role/<name>` | rotate a static role now |
//!
//! Storage (the mount's view, JSON): `config/<name>`, `role/<name>`, `static-role/<name>`, and
//! `wal/rotate-root/<name>` while a root rotation is in flight (settled by the next tick).
//! Static roles rotate in [`Handler::periodic`]: a role whose `next_rotation` has passed
//! (also while the server was down or sealed) is rotated at the next tick; a failed rotation
//! keeps the old password and is retried with a growing delay.
#![forbid(unsafe_code)]

mod credentials;
mod cron;

use async_trait::async_trait;
use coffer_sdk::database::{
    ChangeExpiration, ChangePassword, ChangePublicKey, CredentialType, Database, DatabaseResolver, DeleteUserRequest,
    InitializeRequest, NewUserRequest, SecretString, Statements, UpdateUserRequest, UsernameMetadata,
};
use coffer_sdk::field::FieldType;
use coffer_sdk::framework::{FieldData, FieldSpec, Handler, PathFlags, PathSpec, Paths};
use coffer_sdk::strutil::glob_match;
use coffer_sdk::{LogicalError, Operation, Request, Response, Result, SecretLease, StorageView};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use cron::Schedule;

/// The shortest `rotation_period` OpenBao accepts.
const MIN_ROTATION_PERIOD: i64 = 5;
/// The shortest `rotation_window`.
const MIN_ROTATION_WINDOW: i64 = 3600;
/// The longest delay between two attempts of a failing static-role rotation.
const MAX_RETRY_DELAY: i64 = 300;
/// Where a root rotation in progress keeps its new password (`<prefix><connection>`).
const ROOT_WAL: &str = "wal/rotate-root/";

/// A root rotation in progress: written before the database is asked to change the password,
/// deleted once the configuration holds the new one.
#[derive(Serialize, Deserialize)]
struct RootRotation {
    new_password: String,
    started: i64,
}

impl Drop for RootRotation {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.new_password);
    }
}

/// The paths of the engine, one variant per row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `config/`
    ConfigList,
    /// `config/<name>`
    Config,
    /// `reset/<name>`
    Reset,
    /// `rotate-root/<name>`
    RotateRoot,
    /// `roles/`
    RoleList,
    /// `roles/<name>`
    Role,
    /// `creds/<role>`
    Creds,
    /// `static-roles/`
    StaticRoleList,
    /// `static-roles/<name>`
    StaticRole,
    /// `static-creds/<name>`
    StaticCreds,
    /// `rotate-role/<name>`
    RotateRole,
}

/// A path under `prefix` ending with a name (OpenBao's generic name: word characters, with
/// `.` and `-` inside).
macro_rules! named {
    ($prefix:literal) => {
        concat!($prefix, r"(?P<name>\w(([\w.\-]+)?\w)?)")
    };
}

fn name_field() -> FieldSpec {
    FieldSpec::new("name", FieldType::String, "Name of the connection or role")
}

fn stmts(name: &'static str, d: &'static str) -> FieldSpec {
    FieldSpec::new(name, FieldType::Raw, d)
}

fn path_specs() -> Vec<(Route, PathSpec)> {
    let row = |pattern: &'static str,
               fields: Vec<FieldSpec>,
               operations: Vec<(Operation, &'static str)>,
               synopsis: &'static str,
               description: &'static str| PathSpec {
        pattern,
        fields,
        operations,
        passthrough: false,
        synopsis,
        description,
        flags: PathFlags::NORMAL,
    };
    vec![
        (
            Route::ConfigList,
            row("config/?", vec![], vec![(Operation::List, "List the connections")], "Connections", "Lists the configured database connections."),
        ),
        (
            Route::Config,
            PathSpec {
                passthrough: true,
                ..row(
                    named!("config/"),
                    vec![
                        name_field(),
                        FieldSpec::new("plugin_name", FieldType::String, "The database plugin (postgresql-database-plugin, mysql-database-plugin, …)"),
                        FieldSpec::new("plugin_version", FieldType::String, "The plugin's version; empty for the built-in or only one"),
                        FieldSpec::new("verify_connection", FieldType::Bool, "Connect when the configuration is written").default(json!(true)),
                        FieldSpec::new("allowed_roles", FieldType::CommaStringSlice, "Roles (globs) that may use this connection; empty for none"),
                        stmts("root_rotation_statements", "Statements that change the root user's password (the plugin's default when empty)"),
                        FieldSpec::new("password_policy", FieldType::String, "Password policy generating this connection's passwords"),
                        FieldSpec::new("connection_url", FieldType::String, "Connection string; may hold {{username}} and {{password}}"),
                        FieldSpec::new("username", FieldType::String, "Root username"),
                        FieldSpec::new("password", FieldType::String, "Root password (never returned)"),
                        FieldSpec::new("username_template", FieldType::String, "Template of generated usernames"),
                    ],
                    vec![
                        (Operation::Read, "Read a connection (without its password)"),
                        (Operation::Create, "Configure a connection"),
                        (Operation::Update, "Change a connection"),
                        (Operation::Delete, "Remove a connection"),
                    ],
                    "A database connection",
                    "The plugin, connection details and root credentials of one database. Fields other than the ones \
                     listed are the plugin's own connection options and are passed to it.",
                )
            },
        ),
        (
            Route::Reset,
            row(named!("reset/"), vec![name_field()], vec![(Operation::Update, "Reset the connection")], "Reset a connection", "Closes the connection and opens it again with the stored configuration."),
        ),
        (
            Route::RotateRoot,
            row(named!("rotate-root/"), vec![name_field()], vec![(Operation::Update, "Rotate the root password")], "Rotate root credentials", "Gives the configured root user a new password that only the engine knows. When the database refuses, the old password stays."),
        ),
        (
            Route::RoleList,
            row("roles/?", vec![], vec![(Operation::List, "List the roles")], "Dynamic roles", "Lists the dynamic roles."),
        ),
        (
            Route::Role,
            row(
                named!("roles/"),
                vec![
                    name_field(),
                    FieldSpec::new("db_name", FieldType::String, "The connection this role uses"),
                    stmts("creation_statements", "Statements that create the user"),
                    stmts("revocation_statements", "Statements that remove the user (the plugin's default when empty)"),
                    stmts("rollback_statements", "Statements that undo a failed creation"),
                    stmts("renew_statements", "Statements run when the lease is renewed (the plugin's default when empty)"),
                    FieldSpec::new("default_ttl", FieldType::DurationSecond, "Lease duration of the credentials; 0 for the mount's"),
                    FieldSpec::new("max_ttl", FieldType::DurationSecond, "Longest lease of the credentials; 0 for the mount's"),
                    FieldSpec::new("credential_type", FieldType::String, "password, rsa_private_key or client_certificate (the plugin must support it)").default(json!("password")),
                    FieldSpec::new("credential_config", FieldType::KvPairs, "Options of the credential type (a map, or key=value pairs)"),
                ],
                vec![
                    (Operation::Read, "Read a role"),
                    (Operation::Create, "Create a role"),
                    (Operation::Update, "Change a role"),
                    (Operation::Delete, "Delete a role"),
                ],
                "A dynamic role",
                "How users are created, renewed and removed, and for how long they live.",
            ),
        ),
        (
            Route::Creds,
            row(named!("creds/"), vec![name_field()], vec![(Operation::Read, "Issue credentials")], "Dynamic credentials", "Creates a database user for the role and returns it under a lease; revoking or letting the lease expire removes the user."),
        ),
        (
            Route::StaticRoleList,
            row("static-roles/?", vec![], vec![(Operation::List, "List the static roles")], "Static roles", "Lists the static roles."),
        ),
        (
            Route::StaticRole,
            row(
                named!("static-roles/"),
                vec![
                    name_field(),
                    FieldSpec::new("db_name", FieldType::String, "The connection this role uses"),
                    FieldSpec::new("username", FieldType::String, "The existing database user"),
                    FieldSpec::new("rotation_period", FieldType::DurationSecond, "Rotate this often (at least 5s)"),
                    FieldSpec::new("rotation_schedule", FieldType::String, "Rotate on this cron schedule (UTC)"),
                    FieldSpec::new("rotation_window", FieldType::DurationSecond, "With a schedule: how long after the scheduled time a rotation may still run (at least 1h)"),
                    stmts("rotation_statements", "Statements that set the password (the plugin's default when empty)"),
                    FieldSpec::new("credential_type", FieldType::String, "password or rsa_private_key (the plugin must support it)").default(json!("password")),
                    FieldSpec::new("credential_config", FieldType::KvPairs, "Options of the credential type (a map, or key=value pairs)"),
                ],
                vec![
                    (Operation::Read, "Read a static role"),
                    (Operation::Create, "Create a static role (rotates its password at once)"),
                    (Operation::Update, "Change a static role"),
                    (Operation::Delete, "Delete a static role (the database user stays)"),
                ],
                "A static role",
                "An existing database user whose password the engine rotates on a period or a schedule.",
            ),
        ),
        (
            Route::StaticCreds,
            row(named!("static-creds/"), vec![name_field()], vec![(Operation::Read, "Read the current password")], "Static credentials", "The current username and password of a static role, and when they rotate next."),
        ),
        (
            Route::RotateRole,
            row(named!("rotate-role/"), vec![name_field()], vec![(Operation::Update, "Rotate now")], "Rotate a static role", "Rotates the static role's password now."),
        ),
    ]
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

fn rfc3339(t: i64) -> Value {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| d.format(&time::format_description::well_known::Rfc3339).ok())
        .map(Value::String)
        .unwrap_or(Value::Null)
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

async fn get_json<T: for<'de> Deserialize<'de>>(s: &dyn StorageView, key: &str) -> Result<Option<T>> {
    match s.get(key).await? {
        None => Ok(None),
        Some(raw) => serde_json::from_slice(&raw)
            .map(Some)
            .map_err(|e| LogicalError::internal(format!("stored entry {key:?} is unreadable")).with_source(e)),
    }
}

async fn put_json<T: Serialize>(s: &dyn StorageView, key: &str, v: &T) -> Result<()> {
    let bytes = serde_json::to_vec(v).map_err(|e| LogicalError::internal("cannot encode an entry").with_source(e))?;
    s.put(key, &bytes).await
}

/// A statements field: a string is one command (commas and semicolons inside are kept), a list
/// is several.
fn statements_of(f: &FieldData, name: &str) -> Result<Option<Vec<String>>> {
    match f.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(Some(vec![])),
        Some(Value::String(s)) => Ok(Some(vec![s.clone()])),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| LogicalError::bad_request(format!("{name} must be a list of strings")))
            })
            .collect::<Result<Vec<_>>>()
            .map(Some),
        Some(_) => Err(LogicalError::bad_request(format!("{name} must be a string or a list of strings"))),
    }
}

/// The credential type and options a role write leaves: the given ones, checked, or else the
/// stored ones (`cur`); options of another type do not carry over.
fn credential_of(f: &FieldData, cur_type: &str, cur_cfg: &Map<String, Value>) -> Result<(String, Map<String, Value>)> {
    let cur_type = if cur_type.is_empty() { "password" } else { cur_type };
    let kind_s = if f.is_set("credential_type") { f.str("credential_type").unwrap_or("password") } else { cur_type };
    let kind = CredentialType::parse(kind_s).ok_or_else(|| {
        LogicalError::bad_request(format!(
            "invalid credential_type {kind_s:?}: expected password, rsa_private_key or client_certificate"
        ))
    })?;
    let cfg = if f.is_set("credential_config") {
        match f.get("credential_config") {
            Some(Value::Object(m)) => m.clone(),
            Some(Value::Null) | None => Map::new(),
            Some(_) => return Err(LogicalError::bad_request("credential_config must be a map")),
        }
    } else if kind_s == cur_type {
        cur_cfg.clone()
    } else {
        Map::new()
    };
    let cfg = credentials::validate(kind, &cfg)?;
    Ok((kind.as_str().to_string(), cfg))
}

/// The password policy a role's passwords come from: the role's own
/// (`credential_config.password_policy`), else the connection's.
fn policy_for<'a>(cfg: &'a DbConfig, cred: &'a Map<String, Value>) -> &'a str {
    cred.get("password_policy").and_then(Value::as_str).filter(|p| !p.is_empty()).unwrap_or(&cfg.password_policy)
}

/// A connection as stored.
#[derive(Clone, Serialize, Deserialize, Default)]
struct DbConfig {
    plugin_name: String,
    #[serde(default)]
    plugin_version: String,
    #[serde(default)]
    verify_connection: bool,
    #[serde(default)]
    allowed_roles: Vec<String>,
    #[serde(default)]
    root_credentials_rotate_statements: Vec<String>,
    #[serde(default)]
    password_policy: String,
    /// What the plugin got (connection_url, username, password, plugin options).
    #[serde(default)]
    connection_details: Map<String, Value>,
}

impl DbConfig {
    fn allows(&self, role: &str) -> bool {
        self.allowed_roles.iter().any(|g| g == "*" || glob_match(g, role))
    }
}

/// A dynamic role as stored.
#[derive(Clone, Serialize, Deserialize, Default)]
struct Role {
    db_name: String,
    #[serde(default)]
    creation_statements: Vec<String>,
    #[serde(default)]
    revocation_statements: Vec<String>,
    #[serde(default)]
    rollback_statements: Vec<String>,
    #[serde(default)]
    renew_statements: Vec<String>,
    #[serde(default)]
    default_ttl: i64,
    #[serde(default)]
    max_ttl: i64,
    /// `password` (or empty), `rsa_private_key` or `client_certificate`.
    #[serde(default)]
    credential_type: String,
    /// The type's options, checked and with defaults (see `credentials`).
    #[serde(default)]
    credential_config: Map<String, Value>,
}

/// A static role as stored, with its current password.
#[derive(Clone, Serialize, Deserialize, Default)]
struct StaticRole {
    db_name: String,
    username: String,
    #[serde(default)]
    rotation_period: i64,
    #[serde(default)]
    rotation_schedule: String,
    #[serde(default)]
    rotation_window: i64,
    #[serde(default)]
    rotation_statements: Vec<String>,
    #[serde(default)]
    password: String,
    /// `password` (or empty) or `rsa_private_key`.
    #[serde(default)]
    credential_type: String,
    #[serde(default)]
    credential_config: Map<String, Value>,
    /// The current PKCS#8 private key (`rsa_private_key` roles).
    #[serde(default)]
    private_key: String,
    #[serde(default)]
    last_vault_rotation: i64,
    /// When the next rotation is due (Unix seconds).
    #[serde(default)]
    next_rotation: i64,
    /// Failed attempts since the last success (for the retry delay).
    #[serde(default)]
    failures: u32,
}

impl StaticRole {
    /// When the rotation after one done at `at` is due.
    fn next_after(&self, at: i64) -> i64 {
        if !self.rotation_schedule.is_empty() {
            if let Ok(s) = Schedule::parse(&self.rotation_schedule) {
                return s.next_after(at).unwrap_or(i64::MAX);
            }
        }
        at + self.rotation_period.max(MIN_ROTATION_PERIOD)
    }
}

impl Drop for StaticRole {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.password);
    }
}

/// One initialised plugin, for one connection.
type Conn = Arc<dyn Database>;

/// The database secrets engine: a [`Handler`] served wrapped in
/// [`coffer_sdk::framework::Backend`].
pub struct DatabaseEngine {
    paths: Paths<Route>,
    resolver: Arc<dyn DatabaseResolver>,
    /// Initialised plugins by connection name (filled lazily, so after a restart too).
    conns: tokio::sync::Mutex<HashMap<String, Conn>>,
    /// Serialises rotations (static roles, root) so two never race on one user.
    rotations: tokio::sync::Mutex<()>,
}

impl DatabaseEngine {
    /// An engine that finds plugins through `resolver`.
    pub fn new(resolver: Arc<dyn DatabaseResolver>) -> Self {
        DatabaseEngine {
            paths: Paths::new(path_specs()),
            resolver,
            conns: tokio::sync::Mutex::new(HashMap::new()),
            rotations: tokio::sync::Mutex::new(()),
        }
    }

    async fn config(&self, s: &dyn StorageView, name: &str) -> Result<Option<DbConfig>> {
        get_json(s, &format!("config/{name}")).await
    }

    /// A fresh plugin for `cfg`, initialised with its connection details.
    async fn open(&self, cfg: &DbConfig, verify: bool) -> Result<(Conn, Map<String, Value>)> {
        let db = self.resolver.resolve(&cfg.plugin_name, &cfg.plugin_version).await?.ok_or_else(|| {
            LogicalError::bad_request(format!(
                "error creating database object: no built-in or catalogued database plugin is named {:?}",
                cfg.plugin_name
            ))
        })?;
        let db: Conn = Arc::from(db);
        let resp = db
            .initialize(InitializeRequest { config: cfg.connection_details.clone(), verify_connection: verify })
            .await
            .map_err(|e| {
                LogicalError::bad_request(format!("error creating database object: {}", e.messages.join("; ")))
            })?;
        Ok((db, resp.config))
    }

    /// The initialised plugin of connection `name` (opened from storage when not yet).
    async fn conn(&self, s: &dyn StorageView, name: &str) -> Result<Conn> {
        let mut conns = self.conns.lock().await;
        if let Some(c) = conns.get(name) {
            return Ok(c.clone());
        }
        let cfg = self
            .config(s, name)
            .await?
            .ok_or_else(|| LogicalError::bad_request(format!("database connection {name:?} does not exist")))?;
        let (db, _) = self.open(&cfg, false).await?;
        conns.insert(name.to_string(), db.clone());
        Ok(db)
    }

    /// Closes and forgets the plugin of connection `name`.
    async fn close(&self, name: &str) {
        let old = self.conns.lock().await.remove(name);
        if let Some(db) = old {
            if let Err(e) = db.close().await {
                tracing::debug!(connection = name, error = %e, "closing a database connection failed");
            }
        }
    }

    async fn generate_password(&self, req: &Request, policy: &str) -> Result<SecretString> {
        if !policy.is_empty() {
            let services = req
                .services
                .as_ref()
                .ok_or_else(|| LogicalError::bad_request("password policies are not available on this server"))?;
            return Ok(SecretString::new(services.generate_password(policy).await?));
        }
        default_password().map(SecretString::new)
    }

    async fn write_config(&self, req: &Request, f: &FieldData, name: &str) -> Result<Option<Response>> {
        let s = req.storage.as_ref();
        let existing = self.config(s, name).await?;
        let mut cfg = existing.clone().unwrap_or_default();
        if let Some(p) = f.str("plugin_name").filter(|p| !p.is_empty()) {
            cfg.plugin_name = p.to_string();
        }
        if cfg.plugin_name.is_empty() {
            return Err(LogicalError::bad_request("empty plugin name"));
        }
        if let Some(v) = f.str("plugin_version") {
            cfg.plugin_version = v.to_string();
        }
        cfg.verify_connection = f.bool("verify_connection").unwrap_or(true);
        if f.is_set("allowed_roles") {
            cfg.allowed_roles = f
                .get("allowed_roles")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).filter(|s| !s.is_empty()).collect())
                .unwrap_or_default();
        }
        if let Some(st) = statements_of(f, "root_rotation_statements")? {
            cfg.root_credentials_rotate_statements = st;
        }
        if let Some(p) = f.str("password_policy") {
            cfg.password_policy = p.to_string();
        }
        // Everything else is the plugin's: merged over what was stored, as OpenBao does.
        const ENGINE_KEYS: &[&str] = &[
            "name",
            "plugin_name",
            "plugin_version",
            "verify_connection",
            "allowed_roles",
            "root_rotation_statements",
            "password_policy",
        ];
        for (k, v) in &f.raw {
            if !ENGINE_KEYS.contains(&k.as_str()) {
                cfg.connection_details.insert(k.clone(), v.clone());
            }
        }
        let (db, details) = self.open(&cfg, cfg.verify_connection).await?;
        cfg.connection_details = details;
        put_json(s, &format!("config/{name}"), &cfg).await?;
        let old = self.conns.lock().await.insert(name.to_string(), db);
        if let Some(old) = old {
            let _ = old.close().await;
        }
        let mut warnings = vec![];
        let url = cfg.connection_details.get("connection_url").and_then(Value::as_str).unwrap_or_default();
        if url_has_literal_password(url) {
            warnings.push(
                "Password found in connection_url, use a templated url to enable root rotation and prevent read access to password information."
                    .to_string(),
            );
        }
        if warnings.is_empty() {
            return Ok(None);
        }
        let mut r = Response::data(Map::new());
        r.data = None;
        r.warnings = warnings;
        Ok(Some(r))
    }

    fn config_json(cfg: &DbConfig) -> Map<String, Value> {
        let mut details = cfg.connection_details.clone();
        for k in ["password", "private_key", "tls_certificate_key"] {
            details.remove(k);
        }
        obj(json!({
            "plugin_name": cfg.plugin_name,
            "plugin_version": cfg.plugin_version,
            "connection_details": details,
            "allowed_roles": cfg.allowed_roles,
            "root_credentials_rotate_statements": cfg.root_credentials_rotate_statements,
            "password_policy": cfg.password_policy,
        }))
    }

    async fn rotate_root(&self, req: &Request, name: &str) -> Result<Option<Response>> {
        let _g = self.rotations.lock().await;
        let s = req.storage.as_ref();
        // An earlier rotation of this connection left unfinished: settle it first.
        self.settle_root_rotation(s, name).await;
        let mut cfg = self
            .config(s, name)
            .await?
            .ok_or_else(|| LogicalError::bad_request(format!("database connection {name:?} does not exist")))?;
        let username = cfg.connection_details.get("username").and_then(Value::as_str).unwrap_or_default().to_string();
        if username.is_empty() {
            return Err(LogicalError::bad_request("unable to rotate root credentials: no username in configuration"));
        }
        let db = self.conn(s, name).await?;
        let password = self.generate_password(req, &cfg.password_policy).await?;
        // Write-ahead: the new password is on record (behind the barrier) before the database
        // has it, so a crash or a failed store between the two never loses the only password
        // that works.
        let wal_key = format!("{ROOT_WAL}{name}");
        put_json(s, &wal_key, &RootRotation { new_password: password.expose().to_string(), started: now() }).await?;
        let changed = db
            .update_user(UpdateUserRequest {
                username,
                credential_type: CredentialType::Password,
                password: Some(ChangePassword {
                    new_password: password.clone(),
                    statements: Statements { commands: cfg.root_credentials_rotate_statements.clone() },
                }),
                ..Default::default()
            })
            .await;
        if let Err(e) = changed {
            // The database refused: the old password stays the one that works. (Should it have
            // changed after all, the record is kept and the next tick settles it.)
            if self.open(&cfg, true).await.is_ok() {
                s.delete(&wal_key).await?;
            }
            return Err(LogicalError::bad_request(format!("failed to update user: {}", e.messages.join("; "))));
        }
        cfg.connection_details.insert("password".into(), Value::String(password.expose().to_string()));
        put_json(s, &format!("config/{name}"), &cfg).await?;
        s.delete(&wal_key).await?;
        // The open connection logged in with the old password: open anew with the new one.
        self.close(name).await;
        Ok(None)
    }

    /// Settles a root rotation that did not finish (the server stopped, or storing the new
    /// password failed, after the database may have taken it): whichever password the database
    /// accepts becomes the configured one. While the database cannot be reached the record stays
    /// and the next tick tries again.
    async fn settle_root_rotation(&self, s: &dyn StorageView, name: &str) {
        let wal_key = format!("{ROOT_WAL}{name}");
        let settled: Result<()> = async {
            let Some(wal) = get_json::<RootRotation>(s, &wal_key).await? else { return Ok(()) };
            let Some(mut cfg) = self.config(s, name).await? else {
                return s.delete(&wal_key).await;
            };
            let mut next = cfg.clone();
            next.connection_details.insert("password".into(), Value::String(wal.new_password.clone()));
            if let Ok((db, _)) = self.open(&next, true).await {
                let _ = db.close().await;
                cfg = next;
                put_json(s, &format!("config/{name}"), &cfg).await?;
                s.delete(&wal_key).await?;
                self.close(name).await;
                tracing::info!(connection = name, "an unfinished root rotation was completed: the new password works");
            } else if let Ok((db, _)) = self.open(&cfg, true).await {
                let _ = db.close().await;
                s.delete(&wal_key).await?;
                tracing::info!(
                    connection = name,
                    "an unfinished root rotation was dropped: the old password still works"
                );
            } else {
                tracing::warn!(connection = name, "an unfinished root rotation waits: neither password logs in now");
            }
            Ok(())
        }
        .await;
        if let Err(e) = settled {
            tracing::warn!(connection = name, error = %e, "settling an unfinished root rotation failed");
        }
    }

    /// Settles every unfinished root rotation (see [`Self::settle_root_rotation`]).
    async fn settle_root_rotations(&self, req: &Request) -> Result<()> {
        let s = req.storage.as_ref();
        let names = s.list(ROOT_WAL).await?;
        if names.is_empty() {
            return Ok(());
        }
        let _g = self.rotations.lock().await;
        for name in names.iter().filter(|n| !n.ends_with('/')) {
            self.settle_root_rotation(s, name).await;
        }
        Ok(())
    }

    async fn write_role(&self, req: &Request, f: &FieldData, name: &str) -> Result<Option<Response>> {
        let s = req.storage.as_ref();
        let key = format!("role/{name}");
        if get_json::<StaticRole>(s, &format!("static-role/{name}")).await?.is_some() {
            return Err(LogicalError::bad_request("Role and Static Role names must be unique"));
        }
        let mut role: Role = get_json(s, &key).await?.unwrap_or_default();
        (role.credential_type, role.credential_config) =
            credential_of(f, &role.credential_type, &role.credential_config)?;
        if let Some(db) = f.str("db_name").filter(|d| !d.is_empty()) {
            role.db_name = db.to_string();
        }
        if role.db_name.is_empty() {
            return Err(LogicalError::bad_request("empty database name attribute"));
        }
        for (field, slot) in [
            ("creation_statements", &mut role.creation_statements),
            ("revocation_statements", &mut role.revocation_statements),
            ("rollback_statements", &mut role.rollback_statements),
            ("renew_statements", &mut role.renew_statements),
        ] {
            if let Some(st) = statements_of(f, field)? {
                *slot = st;
            }
        }
        if let Some(t) = f.int("default_ttl") {
            role.default_ttl = t.max(0);
        }
        if let Some(t) = f.int("max_ttl") {
            role.max_ttl = t.max(0);
        }
        if role.max_ttl > 0 && role.default_ttl > role.max_ttl {
            return Err(LogicalError::bad_request("ttl cannot be greater than max_ttl"));
        }
        put_json(s, &key, &role).await?;
        Ok(None)
    }

    fn role_json(r: &Role) -> Map<String, Value> {
        let mut m = obj(json!({
            "db_name": r.db_name,
            "creation_statements": r.creation_statements,
            "revocation_statements": r.revocation_statements,
            "rollback_statements": r.rollback_statements,
            "renew_statements": r.renew_statements,
            "default_ttl": r.default_ttl,
            "max_ttl": r.max_ttl,
            "credential_type": if r.credential_type.is_empty() { "password" } else { &r.credential_type },
        }));
        if !r.credential_config.is_empty() {
            m.insert("credential_config".into(), Value::Object(credentials::shown(&r.credential_config)));
        }
        m
    }

    async fn creds(&self, req: &Request, name: &str) -> Result<Option<Response>> {
        let s = req.storage.as_ref();
        let role: Role = get_json(s, &format!("role/{name}"))
            .await?
            .ok_or_else(|| LogicalError::bad_request(format!("unknown role: {name}")))?;
        let cfg = self.config(s, &role.db_name).await?.ok_or_else(|| {
            LogicalError::bad_request(format!("database connection {:?} does not exist", role.db_name))
        })?;
        if !cfg.allows(name) {
            return Err(LogicalError::bad_request(format!("{name:?} is not an allowed role")));
        }
        let (mount_default, mount_max) = (req.system.default_lease_ttl, req.system.max_lease_ttl);
        let max = if role.max_ttl > 0 { role.max_ttl.min(mount_max.max(1)) } else { mount_max };
        let ttl = if role.default_ttl > 0 { role.default_ttl } else { mount_default }.min(max);
        let meta = UsernameMetadata { display_name: req.display_name.clone(), role_name: name.to_string() };
        let kind = match role.credential_type.as_str() {
            "" => CredentialType::Password,
            k => CredentialType::parse(k)
                .ok_or_else(|| LogicalError::internal(format!("stored credential_type {k:?}")))?,
        };
        let mut new_user = NewUserRequest {
            username_config: meta.clone(),
            credential_type: kind,
            expiration: Some(SystemTime::now() + Duration::from_secs(ttl.max(0) as u64)),
            statements: Statements { commands: role.creation_statements.clone() },
            rollback_statements: Statements { commands: role.rollback_statements.clone() },
            ..Default::default()
        };
        // What the client gets besides the username.
        let mut given = Map::new();
        match kind {
            CredentialType::Password => {
                let password = self.generate_password(req, policy_for(&cfg, &role.credential_config)).await?;
                given.insert("password".into(), json!(password.expose()));
                new_user.password = Some(password);
            }
            CredentialType::RsaPrivateKey => {
                if let credentials::Issued::Rsa { public_pem, private_pem } =
                    credentials::new_rsa(&role.credential_config)?
                {
                    new_user.public_key = Some(public_pem.into_bytes());
                    given.insert("rsa_private_key".into(), json!(private_pem.as_str()));
                }
            }
            _ => {
                if let credentials::Issued::Certificate { subject, cert_pem, key_pem, key_type } =
                    credentials::new_certificate(&role.credential_config, &meta, ttl)?
                {
                    new_user.subject = Some(subject);
                    given.insert("client_certificate".into(), json!(cert_pem));
                    given.insert("private_key".into(), json!(key_pem.as_str()));
                    given.insert("private_key_type".into(), json!(key_type));
                }
            }
        }
        let db = self.conn(s, &role.db_name).await?;
        let created = db
            .new_user(new_user)
            .await
            .map_err(|e| LogicalError::bad_request(format!("unable to create user: {}", e.messages.join("; "))))?;
        given.insert("username".into(), json!(created.username));
        let mut resp = Response::data(given);
        resp.secret = Some(SecretLease {
            ttl,
            max_ttl: max,
            renewable: true,
            internal: obj(json!({ "username": created.username, "role": name, "db_name": role.db_name })),
        });
        Ok(Some(resp))
    }

    async fn write_static_role(&self, req: &Request, f: &FieldData, name: &str) -> Result<Option<Response>> {
        let s = req.storage.as_ref();
        let key = format!("static-role/{name}");
        if get_json::<Role>(s, &format!("role/{name}")).await?.is_some() {
            return Err(LogicalError::bad_request("Role and Static Role names must be unique"));
        }
        let existing: Option<StaticRole> = get_json(s, &key).await?;
        let creating = existing.is_none();
        let mut role = existing.unwrap_or_default();
        let (kind, cred_cfg) = credential_of(f, &role.credential_type, &role.credential_config)?;
        if kind == CredentialType::ClientCertificate.as_str() {
            return Err(LogicalError::bad_request(
                "credential_type \"client_certificate\" is for dynamic roles; a static role takes password or rsa_private_key",
            ));
        }
        if !creating && kind != role.credential_type && !(role.credential_type.is_empty() && kind == "password") {
            // The account's credential changes kind: the next rotation installs the new one.
            role.password.clear();
            role.private_key.clear();
        }
        (role.credential_type, role.credential_config) = (kind, cred_cfg);
        if let Some(db) = f.str("db_name").filter(|d| !d.is_empty()) {
            role.db_name = db.to_string();
        }
        if role.db_name.is_empty() {
            return Err(LogicalError::bad_request("empty database name attribute"));
        }
        match f.str("username").filter(|u| !u.is_empty()) {
            Some(u) if !creating && u != role.username => {
                return Err(LogicalError::bad_request("cannot update static account username"));
            }
            Some(u) => role.username = u.to_string(),
            None if creating => {
                return Err(LogicalError::bad_request("username is a required field to create a static account"))
            }
            None => {}
        }
        let period = f.int("rotation_period");
        let schedule = f.str("rotation_schedule").filter(|s| !s.is_empty());
        if period.is_some_and(|p| p > 0) && schedule.is_some() {
            return Err(LogicalError::bad_request("mutually exclusive fields rotation_period and rotation_schedule were both specified; only one of them can be provided"));
        }
        if let Some(p) = period.filter(|p| *p > 0) {
            if p < MIN_ROTATION_PERIOD {
                return Err(LogicalError::bad_request(format!(
                    "rotation_period must be {MIN_ROTATION_PERIOD} seconds or more"
                )));
            }
            role.rotation_period = p;
            role.rotation_schedule.clear();
            role.rotation_window = 0;
        }
        if let Some(sch) = schedule {
            Schedule::parse(sch)?;
            role.rotation_schedule = sch.to_string();
            role.rotation_period = 0;
        }
        if let Some(w) = f.int("rotation_window").filter(|w| *w > 0) {
            if role.rotation_schedule.is_empty() {
                return Err(LogicalError::bad_request("rotation_window is invalid with use of rotation_period"));
            }
            if w < MIN_ROTATION_WINDOW {
                return Err(LogicalError::bad_request("rotation_window must be 3600 seconds or more"));
            }
            role.rotation_window = w;
        }
        if role.rotation_period == 0 && role.rotation_schedule.is_empty() {
            return Err(LogicalError::bad_request(
                "one of rotation_schedule or rotation_period must be provided to create a static account",
            ));
        }
        if let Some(st) = statements_of(f, "rotation_statements")? {
            role.rotation_statements = st;
        }
        let cfg = self.config(s, &role.db_name).await?.ok_or_else(|| {
            LogicalError::bad_request(format!("database connection {:?} does not exist", role.db_name))
        })?;
        if !cfg.allows(name) {
            return Err(LogicalError::bad_request(format!("{name:?} is not an allowed role")));
        }
        if creating {
            // As OpenBao: the engine takes the account over by setting a password only it knows.
            let _g = self.rotations.lock().await;
            self.rotate_static(req, &cfg, &mut role).await.map_err(|e| {
                LogicalError::bad_request(format!("error setting credentials: {}", e.messages.join("; ")))
            })?;
        } else {
            role.next_rotation = role.next_after(role.last_vault_rotation.max(0));
        }
        put_json(s, &key, &role).await?;
        Ok(None)
    }

    /// Sets a new password on a static role's user; on success the role holds it (not stored).
    async fn rotate_static(&self, req: &Request, cfg: &DbConfig, role: &mut StaticRole) -> Result<()> {
        let db = self.conn(req.storage.as_ref(), &role.db_name).await?;
        let statements = Statements { commands: role.rotation_statements.clone() };
        if role.credential_type == CredentialType::RsaPrivateKey.as_str() {
            let credentials::Issued::Rsa { public_pem, private_pem } = credentials::new_rsa(&role.credential_config)?
            else {
                return Err(LogicalError::internal("an RSA key pair was expected"));
            };
            db.update_user(UpdateUserRequest {
                username: role.username.clone(),
                credential_type: CredentialType::RsaPrivateKey,
                public_key: Some(ChangePublicKey { new_public_key: public_pem.into_bytes(), statements }),
                ..Default::default()
            })
            .await?;
            role.private_key = private_pem.to_string();
            role.password.clear();
        } else {
            let password = self.generate_password(req, policy_for(cfg, &role.credential_config)).await?;
            db.update_user(UpdateUserRequest {
                username: role.username.clone(),
                credential_type: CredentialType::Password,
                password: Some(ChangePassword { new_password: password.clone(), statements }),
                ..Default::default()
            })
            .await?;
            role.password = password.expose().to_string();
        }
        let t = now();
        role.last_vault_rotation = t;
        role.next_rotation = role.next_after(t);
        role.failures = 0;
        Ok(())
    }

    /// Rotates static role `name` now and stores the outcome.
    async fn rotate_role_now(&self, req: &Request, name: &str) -> Result<()> {
        let _g = self.rotations.lock().await;
        let s = req.storage.as_ref();
        let key = format!("static-role/{name}");
        let mut role: StaticRole = get_json(s, &key)
            .await?
            .ok_or_else(|| LogicalError::bad_request(format!("no static role found for role name {name:?}")))?;
        let cfg = self.config(s, &role.db_name).await?.ok_or_else(|| {
            LogicalError::bad_request(format!("database connection {:?} does not exist", role.db_name))
        })?;
        self.rotate_static(req, &cfg, &mut role).await.map_err(|e| {
            LogicalError::bad_request(format!("unable to finish rotating credentials: {}", e.messages.join("; ")))
        })?;
        put_json(s, &key, &role).await
    }

    fn static_role_json(r: &StaticRole) -> Map<String, Value> {
        let mut m = obj(json!({
            "db_name": r.db_name,
            "username": r.username,
            "rotation_statements": r.rotation_statements,
            "credential_type": if r.credential_type.is_empty() { "password" } else { &r.credential_type },
            "last_vault_rotation": rfc3339(r.last_vault_rotation),
        }));
        if !r.credential_config.is_empty() {
            m.insert("credential_config".into(), Value::Object(r.credential_config.clone()));
        }
        Self::rotation_fields(r, &mut m);
        m
    }

    fn rotation_fields(r: &StaticRole, m: &mut Map<String, Value>) {
        if r.rotation_schedule.is_empty() {
            m.insert("rotation_period".into(), json!(r.rotation_period));
        } else {
            m.insert("rotation_schedule".into(), json!(r.rotation_schedule));
            if r.rotation_window > 0 {
                m.insert("rotation_window".into(), json!(r.rotation_window));
            }
        }
    }

    /// Rotates every static role that is due; failures wait longer each time.
    async fn rotate_due(&self, req: &Request) -> Result<()> {
        let s = req.storage.as_ref();
        let t = now();
        for name in s.list("static-role/").await? {
            if name.ends_with('/') {
                continue;
            }
            let key = format!("static-role/{name}");
            let Some(role) = get_json::<StaticRole>(s, &key).await? else { continue };
            if role.next_rotation > t {
                continue;
            }
            let _g = self.rotations.lock().await;
            // Read again under the lock: a request may have rotated it meanwhile.
            let Some(mut role) = get_json::<StaticRole>(s, &key).await? else { continue };
            if role.next_rotation > t {
                continue;
            }
            // A schedule with a window: a time missed by more than the window waits for the next one.
            if role.rotation_window > 0 && !role.rotation_schedule.is_empty() && role.failures == 0 {
                let due = role.next_rotation;
                if t > due + role.rotation_window {
                    role.next_rotation = role.next_after(t);
                    put_json(s, &key, &role).await?;
                    continue;
                }
            }
            let Some(cfg) = self.config(s, &role.db_name).await? else { continue };
            match self.rotate_static(req, &cfg, &mut role).await {
                Ok(()) => put_json(s, &key, &role).await?,
                Err(e) => {
                    role.failures = role.failures.saturating_add(1);
                    let delay = (5i64 << role.failures.min(6)).min(MAX_RETRY_DELAY);
                    role.next_rotation = t + delay;
                    tracing::warn!(role = %name, error = %e, retry_in_secs = delay, "static role rotation failed; the old password stays");
                    put_json(s, &key, &role).await?;
                }
            }
        }
        Ok(())
    }
}

/// A list answer; an empty one is a 404, as OpenBao answers.
async fn list(s: &dyn StorageView, prefix: &str) -> Result<Option<Response>> {
    let keys = s.list(prefix).await?;
    if keys.is_empty() {
        return Err(LogicalError::not_found());
    }
    Ok(Some(Response::list(keys)))
}

/// A password of OpenBao's default shape: 20 characters from letters, digits and `-`, with at
/// least one lowercase letter, one uppercase letter, one digit and one `-`.
fn default_password() -> Result<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-";
    loop {
        let mut out = String::with_capacity(20);
        let mut buf = [0u8; 64];
        getrandom::fill(&mut buf).map_err(|e| LogicalError::internal("random generator failed").with_source(e))?;
        // 252 = 4 × 63: rejecting the bytes above keeps every character equally likely.
        for b in buf.iter().filter(|b| **b < 252).take(20) {
            out.push(ALPHABET[usize::from(*b) % ALPHABET.len()] as char);
        }
        if out.len() == 20
            && out.chars().any(|c| c.is_ascii_lowercase())
            && out.chars().any(|c| c.is_ascii_uppercase())
            && out.chars().any(|c| c.is_ascii_digit())
            && out.contains('-')
        {
            return Ok(out);
        }
    }
}

/// Whether a URL-form connection string carries a password that is not the `{{password}}` template.
fn url_has_literal_password(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else { return false };
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    match authority.rsplit_once('@') {
        Some((userinfo, _)) => userinfo.split_once(':').is_some_and(|(_, p)| !p.is_empty() && p != "{{password}}"),
        None => false,
    }
}

#[async_trait]
impl Handler for DatabaseEngine {
    type Route = Route;

    fn backend_type(&self) -> &'static str {
        "database"
    }

    fn paths(&self) -> &Paths<Route> {
        &self.paths
    }

    async fn handle(&self, route: Route, req: Request, f: FieldData) -> Result<Option<Response>> {
        let s = req.storage.as_ref();
        let name = f.str("name").unwrap_or_default().to_string();
        match (route, req.operation) {
            (Route::ConfigList, _) => list(s, "config/").await,
            (Route::Config, Operation::Read) => match self.config(s, &name).await? {
                Some(c) => Ok(Some(Response::data(Self::config_json(&c)))),
                None => Ok(None),
            },
            (Route::Config, Operation::Delete) => {
                s.delete(&format!("config/{name}")).await?;
                s.delete(&format!("{ROOT_WAL}{name}")).await?;
                self.close(&name).await;
                Ok(None)
            }
            (Route::Config, _) => self.write_config(&req, &f, &name).await,
            (Route::Reset, _) => {
                let cfg = self
                    .config(s, &name)
                    .await?
                    .ok_or_else(|| LogicalError::bad_request(format!("database connection {name:?} does not exist")))?;
                self.close(&name).await;
                let (db, _) = self.open(&cfg, false).await?;
                self.conns.lock().await.insert(name, db);
                Ok(None)
            }
            (Route::RotateRoot, _) => self.rotate_root(&req, &name).await,
            (Route::RoleList, _) => list(s, "role/").await,
            (Route::Role, Operation::Read) => match get_json::<Role>(s, &format!("role/{name}")).await? {
                Some(r) => Ok(Some(Response::data(Self::role_json(&r)))),
                None => Ok(None),
            },
            (Route::Role, Operation::Delete) => {
                s.delete(&format!("role/{name}")).await?;
                Ok(None)
            }
            (Route::Role, _) => self.write_role(&req, &f, &name).await,
            (Route::Creds, _) => self.creds(&req, &name).await,
            (Route::StaticRoleList, _) => list(s, "static-role/").await,
            (Route::StaticRole, Operation::Read) => {
                match get_json::<StaticRole>(s, &format!("static-role/{name}")).await? {
                    Some(r) => Ok(Some(Response::data(Self::static_role_json(&r)))),
                    None => Ok(None),
                }
            }
            (Route::StaticRole, Operation::Delete) => {
                s.delete(&format!("static-role/{name}")).await?;
                Ok(None)
            }
            (Route::StaticRole, _) => self.write_static_role(&req, &f, &name).await,
            (Route::StaticCreds, _) => {
                let r: StaticRole = get_json(s, &format!("static-role/{name}"))
                    .await?
                    .ok_or_else(|| LogicalError::bad_request(format!("unknown role: {name}")))?;
                let secret = if r.credential_type == CredentialType::RsaPrivateKey.as_str() {
                    ("rsa_private_key", &r.private_key)
                } else {
                    ("password", &r.password)
                };
                let mut m = obj(json!({
                    "username": r.username,
                    secret.0: secret.1,
                    "last_vault_rotation": rfc3339(r.last_vault_rotation),
                    "ttl": (r.next_rotation - now()).max(0),
                }));
                Self::rotation_fields(&r, &mut m);
                Ok(Some(Response::data(m)))
            }
            (Route::RotateRole, _) => {
                self.rotate_role_now(&req, &name).await?;
                Ok(None)
            }
        }
    }

    async fn exists(&self, route: Route, req: &Request, f: &FieldData) -> Result<Option<bool>> {
        let name = f.str("name").unwrap_or_default();
        let key = match route {
            Route::Config => format!("config/{name}"),
            Route::Role => format!("role/{name}"),
            Route::StaticRole => format!("static-role/{name}"),
            _ => return Ok(None),
        };
        Ok(Some(req.storage.get(&key).await?.is_some()))
    }

    async fn revoke_secret(&self, req: &Request, internal: &Map<String, Value>) -> Result<()> {
        let s = req.storage.as_ref();
        let field = |k: &str| internal.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        let (username, role_name, db_name) = (field("username"), field("role"), field("db_name"));
        if username.is_empty() || db_name.is_empty() {
            return Err(LogicalError::bad_request("the lease names no database user"));
        }
        // The role may be gone: then the plugin's default statements remove the user.
        let statements = get_json::<Role>(s, &format!("role/{role_name}"))
            .await?
            .map(|r| r.revocation_statements)
            .unwrap_or_default();
        let db = self.conn(s, &db_name).await?;
        db.delete_user(DeleteUserRequest { username, statements: Statements { commands: statements } }).await
    }

    async fn renew_secret(&self, req: &Request, internal: &Map<String, Value>, ttl: i64) -> Result<i64> {
        let s = req.storage.as_ref();
        let field = |k: &str| internal.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        let (username, role_name, db_name) = (field("username"), field("role"), field("db_name"));
        let role: Role = get_json(s, &format!("role/{role_name}")).await?.ok_or_else(|| {
            LogicalError::bad_request(format!("error during renew: could not find role with name {role_name}"))
        })?;
        let ttl = if role.max_ttl > 0 { ttl.min(role.max_ttl) } else { ttl };
        let db = self.conn(s, &db_name).await?;
        db.update_user(UpdateUserRequest {
            username,
            credential_type: CredentialType::Password,
            expiration: Some(ChangeExpiration {
                new_expiration: SystemTime::now() + Duration::from_secs(ttl.max(0) as u64),
                statements: Statements { commands: role.renew_statements },
            }),
            ..Default::default()
        })
        .await?;
        Ok(ttl)
    }

    async fn periodic(&self, req: &Request) -> Result<()> {
        self.settle_root_rotations(req).await?;
        self.rotate_due(req).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_passwords_have_openbaos_shape() {
        for _ in 0..50 {
            let p = default_password().unwrap();
            assert_eq!(p.len(), 20);
            assert!(p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
            assert!(p.contains('-') && p.chars().any(|c| c.is_ascii_digit()));
        }
    }

    #[test]
    fn literal_passwords_in_connection_urls_are_spotted() {
        assert!(url_has_literal_password("postgresql://root:secret@localhost:5432/db"));
        assert!(!url_has_literal_password("postgresql://{{username}}:{{password}}@localhost:5432/db"));
        assert!(!url_has_literal_password("postgresql://localhost/db?sslmode=disable"));
        assert!(!url_has_literal_password("host=localhost user=x password=y"));
    }

    #[test]
    fn allowed_roles_take_globs_and_a_star() {
        let c = DbConfig { allowed_roles: vec!["app-*".into(), "ro".into()], ..Default::default() };
        assert!(c.allows("app-1") && c.allows("ro") && !c.allows("rw"));
        assert!(DbConfig { allowed_roles: vec!["*".into()], ..Default::default() }.allows("any"));
        assert!(!DbConfig::default().allows("any"));
    }
}
