//! The backend SDK: what a secrets engine or auth method sees of Coffer.
//!
//! A backend declares its paths once ([`framework::PathSpec`]: pattern, typed fields,
//! operations, help) and handles [`Request`]s through the [`Backend`] trait, reading and writing
//! its own [`StorageView`]. Backends never see the core, the barrier or HTTP.
//!
//! The same backend runs built into Coffer or as an external plugin: the `coffer-plugin` crate
//! serves it over the plugin protocol OpenBao and Vault speak (`coffer_plugin::serve_with`),
//! and `coffer-plugin-testing` runs its acceptance tests against real Coffer and OpenBao
//! servers. Which versions of this crate work with which servers is written down in
//! `docs/integration/compatibility.md` of the Coffer repository.
//!
//! # A backend in one page
//!
//! A [`framework::Handler`] lists its rows — each naming a route of its own enum — and
//! answers requests already routed to a row, with their fields coerced to the declared types.
//! [`framework::Backend`] wraps it into a [`Backend`]:
//!
//! ```
//! use coffer_sdk::field::FieldType;
//! use coffer_sdk::framework::{self, FieldData, FieldSpec, Handler, PathSpec, Paths};
//! use coffer_sdk::{Backend as _, LogicalError, Operation, Request, Response, Result, SystemInfo};
//! use serde_json::{json, Map, Value};
//! use std::sync::Arc;
//!
//! #[derive(Clone, Copy)]
//! enum Route {
//!     Greeting,
//! }
//!
//! struct Hello {
//!     paths: Paths<Route>,
//! }
//!
//! impl Hello {
//!     fn new() -> Self {
//!         let greeting = PathSpec {
//!             pattern: r"greeting/(?P<name>\w+)",
//!             fields: vec![
//!                 FieldSpec::new("name", FieldType::String, "Whom to greet"),
//!                 FieldSpec::new("times", FieldType::Int, "How often").default(json!(1)),
//!             ],
//!             operations: vec![(Operation::Read, "Greet someone")],
//!             synopsis: "A greeting",
//!             description: "Answers with a greeting for the name in the path.",
//!             ..Default::default()
//!         };
//!         Hello { paths: Paths::new(vec![(Route::Greeting, greeting)]) }
//!     }
//! }
//!
//! #[async_trait::async_trait]
//! impl Handler for Hello {
//!     type Route = Route;
//!     fn backend_type(&self) -> &'static str {
//!         "hello"
//!     }
//!     fn paths(&self) -> &Paths<Route> {
//!         &self.paths
//!     }
//!     async fn handle(&self, route: Route, req: Request, f: FieldData) -> Result<Option<Response>> {
//!         match (route, req.operation) {
//!             (Route::Greeting, Operation::Read) => {
//!                 let times = f.int("times").unwrap_or(1);
//!                 if !(1..=3).contains(&times) {
//!                     return Err(LogicalError::bad_request("times must be 1, 2 or 3"));
//!                 }
//!                 let one = format!("hello, {}", f.str("name").unwrap_or(""));
//!                 let mut data = Map::new();
//!                 data.insert("greeting".into(), json!(vec![one; times as usize].join(" ")));
//!                 Ok(Some(Response::data(data)))
//!             }
//!             _ => Err(LogicalError::unsupported_operation()),
//!         }
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let backend = framework::Backend::new(Hello::new());
//! let request = |path: &str, data: Map<String, Value>| Request {
//!     operation: Operation::Read,
//!     path: path.into(),
//!     data,
//!     mount_point: "hello/".into(),
//!     storage: Arc::new(coffer_sdk::testing::MapView::default()),
//!     system: SystemInfo::default(),
//!     remote_addr: None,
//!     services: None,
//!     client_certs: None,
//!     display_name: "token".into(),
//!     entity_id: String::new(),
//! };
//! let answer = backend.handle_request(request("greeting/ada", Map::new())).await.unwrap().unwrap();
//! assert_eq!(answer.data.unwrap()["greeting"], "hello, ada");
//!
//! // Fields are coerced from the declared types: "x" is not an Int, so this is a 400.
//! let bad = json!({ "times": "x" }).as_object().cloned().unwrap();
//! let err = backend.handle_request(request("greeting/ada", bad)).await.unwrap_err();
//! assert_eq!(err.kind, coffer_sdk::ErrorKind::BadRequest);
//! // Paths the table does not declare are refused.
//! assert!(backend.handle_request(request("nope", Map::new())).await.is_err());
//! # }
//! ```
//!
//! Rows flagged [`framework::PathSpec::unauthenticated`] (a login) or
//! [`framework::PathSpec::sudo`] are reported to the server as OpenBao's `SpecialPaths`
//! ([`Backend::special_paths`]); Coffer and OpenBao then serve them without a token, or only to
//! tokens with `sudo` on the path.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cache;
pub mod database;
pub mod field;
pub mod framework;
pub mod identity_template;
pub mod openapi;
pub mod registry;
pub mod strutil;
pub mod testing;
pub mod tokenutil;

use async_trait::async_trait;

/// This crate's version. The SDK family (`coffer-api`, `coffer-sdk`, `coffer-plugin`,
/// `coffer-plugin-testing`) is released together under one version, independent of the
/// server's; `coffer plugin new` asks crates.io for this version when no local SDK is found.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
use serde_json::{Map, Value};
use std::sync::Arc;

/// Logical operations, as Vault names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Read a value (`GET`).
    Read,
    /// Write a value that does not exist yet (`PUT`/`POST`, when the existence check says it is missing).
    Create,
    /// Write a value (`PUT`/`POST`).
    Update,
    /// Change part of a value (`PATCH`).
    Patch,
    /// Delete a value (`DELETE`).
    Delete,
    /// List the keys under a path (`LIST`, or `GET ?list=true`).
    List,
    /// Describe a path (`?help=1`).
    Help,
}

impl Operation {
    /// The operation's name as Vault writes it in policies and help (`read`, `update`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Read => "read",
            Operation::Create => "create",
            Operation::Update => "update",
            Operation::Patch => "patch",
            Operation::Delete => "delete",
            Operation::List => "list",
            Operation::Help => "help",
        }
    }

    /// The operation Vault names `name` (`read`, `update`, …).
    pub fn from_name(name: &str) -> Option<Operation> {
        Some(match name {
            "read" => Operation::Read,
            "create" => Operation::Create,
            "update" => Operation::Update,
            "patch" => Operation::Patch,
            "delete" => Operation::Delete,
            "list" => Operation::List,
            "help" => Operation::Help,
            _ => return None,
        })
    }
}

/// What kind of failure a handler reports. The HTTP layer maps each kind to a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// 400
    BadRequest,
    /// 403
    PermissionDenied,
    /// 401: the request's own credentials were refused (an OAuth client or access token,
    /// where the protocol asks for 401 rather than 403).
    Unauthorized,
    /// 404
    NotFound,
    /// 405
    UnsupportedOperation,
    /// 404 "unsupported path"
    UnsupportedPath,
    /// 412
    PreconditionFailed,
    /// 413
    PayloadTooLarge,
    /// 429
    RateLimited,
    /// 500
    Internal,
    /// 503
    Sealed,
    /// 503 without the sealed meaning (storage unavailable, standby without leader)
    Unavailable,
}

/// An error with one or more user-facing messages. Messages never contain secret values.
///
/// An error may also carry its underlying cause ([`LogicalError::with_source`]): clients never
/// see it (neither `Display` nor the HTTP answer prints it), but [`std::error::Error::source`]
/// returns it, and the HTTP layer logs it for internal errors. Only attach causes that cannot
/// contain secret material (I/O, storage, codec errors on non-secret data, …).
#[derive(Clone)]
pub struct LogicalError {
    /// What kind of failure this is: picks the HTTP status.
    pub kind: ErrorKind,
    /// The messages the client sees (in the `errors` array).
    pub messages: Vec<String>,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl LogicalError {
    /// An error of `kind` with one message.
    pub fn new(kind: ErrorKind, msg: impl Into<String>) -> Self {
        LogicalError { kind, messages: vec![msg.into()], source: None }
    }
    /// An error of `kind` with the given messages (possibly none).
    pub fn with_messages(kind: ErrorKind, messages: Vec<String>) -> Self {
        LogicalError { kind, messages, source: None }
    }
    /// A 400 with `msg`.
    pub fn bad_request(msg: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, msg)
    }
    /// A 500 with `msg` (give a cause with [`LogicalError::with_source`]).
    pub fn internal(msg: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, msg)
    }
    /// A 404 without a message, as Vault answers a missing entry.
    pub fn not_found() -> Self {
        Self::with_messages(ErrorKind::NotFound, vec![])
    }
    /// A 403 `permission denied`.
    pub fn permission_denied() -> Self {
        Self::new(ErrorKind::PermissionDenied, "permission denied")
    }
    /// A 405 `unsupported operation`.
    pub fn unsupported_operation() -> Self {
        Self::new(ErrorKind::UnsupportedOperation, "unsupported operation")
    }
    /// A 404 `unsupported path: …` for a path no row of the table matches.
    pub fn unsupported_path(path: &str) -> Self {
        Self::new(ErrorKind::UnsupportedPath, format!("unsupported path: {path}"))
    }
    /// A 503 `Vault is sealed`.
    pub fn sealed() -> Self {
        Self::new(ErrorKind::Sealed, "Vault is sealed")
    }
    /// Keeps `cause` as this error's [`source`](std::error::Error::source): logged by the
    /// server for internal errors, never shown to the client. The cause must not carry secrets.
    #[must_use]
    pub fn with_source(mut self, cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(cause));
        self
    }
    /// The kept cause, if any (the same as [`std::error::Error::source`]).
    pub fn cause(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        self.source.as_deref()
    }
}

/// Two errors are equal when they would look the same to a client: kind and messages (the
/// kept cause is diagnostic only).
impl PartialEq for LogicalError {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.messages == other.messages
    }
}

impl Eq for LogicalError {}

impl std::fmt::Debug for LogicalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("LogicalError");
        d.field("kind", &self.kind).field("messages", &self.messages);
        if let Some(s) = &self.source {
            d.field("source", &format_args!("{s}"));
        }
        d.finish()
    }
}

impl std::fmt::Display for LogicalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.messages.join("; "))
    }
}

impl std::error::Error for LogicalError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// The result of every SDK call: a value or a [`LogicalError`].
pub type Result<T> = std::result::Result<T, LogicalError>;

/// A backend's own slice of storage: keys are relative to the mount, values plaintext.
#[async_trait]
pub trait StorageView: Send + Sync {
    /// The value at `key`, `None` when there is none.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>>;
    /// Stores `value` at `key`, replacing what was there.
    async fn put(&self, key: &str, value: &[u8]) -> Result<()>;
    /// Removes `key` (removing a missing key is not an error).
    async fn delete(&self, key: &str) -> Result<()>;
    /// The keys directly under `prefix` (which ends with `/` or is empty); sub-folders end with `/`.
    async fn list(&self, prefix: &str) -> Result<Vec<String>>;
}

/// What the system tells a backend about its mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SystemInfo {
    /// Effective default lease TTL of the mount, in seconds.
    pub default_lease_ttl: i64,
    /// Effective maximum lease TTL of the mount, in seconds.
    pub max_lease_ttl: i64,
}

/// A request as a backend sees it: the path is relative to the mount.
pub struct Request {
    /// What the client asked for.
    pub operation: Operation,
    /// The path relative to the mount (`items/a`, not `secret/items/a`).
    pub path: String,
    /// The request body (or query parameters of a read), before coercion.
    pub data: Map<String, Value>,
    /// The mount's path (`secret/`), as the client addressed it.
    pub mount_point: String,
    /// The mount's own key space.
    pub storage: Arc<dyn StorageView>,
    /// The mount's lease settings.
    pub system: SystemInfo,
    /// The client's address, when known (for CIDR-bound credentials).
    pub remote_addr: Option<std::net::IpAddr>,
    /// Password policies and other services the system offers backends.
    pub services: Option<Arc<dyn SystemServices>>,
    /// The certificate chain the client presented on its TLS connection (leaf first, DER),
    /// after it proved it holds the leaf's key. Nothing more is checked: an auth method that
    /// trusts certificates verifies the chain itself. `None` over plain HTTP or without one.
    pub client_certs: Option<Arc<Vec<Vec<u8>>>>,
    /// The caller's token's display name (`token`, `userpass-alice`, …); empty for
    /// unauthenticated paths and internal calls. The database engine puts it in usernames.
    pub display_name: String,
    /// The caller's entity (empty: none, as for a root token); its facts come from
    /// [`SystemServices::identity_facts`].
    pub entity_id: String,
}

/// A token issued by a login of this mount, as the core shows it to the backend when the token
/// is renewed ([`Backend::renew_login`]).
#[derive(Clone, Default, PartialEq)]
pub struct LoginRenewal {
    /// The token's metadata, as the login set it.
    pub metadata: Map<String, Value>,
    /// The token's policies (without `default` unless the login named it).
    pub policies: Vec<String>,
    /// The login path the token came from, relative to the mount (`login`).
    pub path: String,
    /// What the login kept for renewals ([`AuthResponse::internal_data`]).
    pub internal_data: Map<String, Value>,
}

impl std::fmt::Debug for LoginRenewal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRenewal")
            .field("metadata_keys", &self.metadata.keys().collect::<Vec<_>>())
            .field("policies", &self.policies)
            .field("path", &self.path)
            .field("internal_data_keys", &self.internal_data.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Services the core offers to backends (the "system view").
#[async_trait]
pub trait SystemServices: Send + Sync {
    /// Generates a password from the named password policy.
    async fn generate_password(&self, policy: &str) -> Result<String>;

    /// What identity templates may use of entity `entity_id` (a request's
    /// [`Request::entity_id`]): its name, metadata, aliases and groups. `None`: no such entity,
    /// or a server that does not offer identities to this backend (the default).
    async fn identity_facts(&self, entity_id: &str) -> Result<Option<identity_template::IdentityFacts>> {
        let _ = entity_id;
        Ok(None)
    }
}

/// A login's result: the token the core must mint, as a backend describes it.
#[derive(Clone, Default, PartialEq)]
pub struct AuthResponse {
    /// The policies the token gets (besides `default`, unless `no_default_policy`).
    pub policies: Vec<String>,
    /// Metadata recorded with the token and shown in lookups and audit entries.
    pub metadata: Map<String, Value>,
    /// The token's display name (the server prefixes it with the mount's name).
    pub display_name: String,
    /// Seconds; 0 = the mount's default.
    pub ttl: i64,
    /// Seconds; 0 = the mount's maximum.
    pub max_ttl: i64,
    /// Seconds; 0 = no explicit cap beyond the mount's maximum.
    pub explicit_max_ttl: i64,
    /// Seconds; a periodic token is renewable forever by this period (0 = not periodic).
    pub period: i64,
    /// How many uses the token has (0 = unlimited).
    pub num_uses: i64,
    /// Whether the token can be renewed.
    pub renewable: bool,
    /// Whether to leave out the `default` policy.
    pub no_default_policy: bool,
    /// `service`, `batch` or `default`.
    pub token_type: String,
    /// Networks (CIDR) the token may be used from (empty: anywhere).
    pub bound_cidrs: Vec<String>,
    /// The identity alias this login maps to (name within the mount).
    pub alias_name: Option<String>,
    /// Metadata of the identity alias.
    pub alias_metadata: Map<String, Value>,
    /// Group names the identity provider reports for this login (LDAP groups, OIDC groups
    /// claim, …): the entity joins the external groups whose group alias on this mount has one
    /// of these names, and leaves the others bound to the mount.
    pub group_aliases: Vec<String>,
    /// What the method keeps with the token for its own renewals, handed back in
    /// [`LoginRenewal::internal_data`]: stored behind the barrier with the token, never shown
    /// to clients, in lookups or in audit entries (OpenBao's `Auth.InternalData`). Batch tokens
    /// keep none.
    pub internal_data: Map<String, Value>,
}

impl std::fmt::Debug for AuthResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthResponse")
            .field("policies", &self.policies)
            .field("display_name", &self.display_name)
            .field("ttl", &self.ttl)
            .field("token_type", &self.token_type)
            .finish_non_exhaustive()
    }
}

/// A backend's answer. `None` from a handler means "no content" (204).
/// Its Debug output shows the keys of `data`, never the values.
#[derive(Default, Clone, PartialEq)]
pub struct Response {
    /// The answer's `data` object (`None`: no data).
    pub data: Option<Map<String, Value>>,
    /// Warnings shown to the client with the answer.
    pub warnings: Vec<String>,
    /// A non-renewable lease duration advertised with the data (seconds), as KV v1 does.
    pub lease_duration: Option<i64>,
    /// Set by login handlers: the core mints a token from it.
    pub auth: Option<AuthResponse>,
    /// A dynamic secret: the core registers a lease and revokes it on time through
    /// [`Backend::revoke_secret`].
    pub secret: Option<SecretLease>,
    /// The status the answer goes out with: normally [`ResponseStatus::Ok`].
    pub status: ResponseStatus,
}

/// How a successful answer's status is chosen (the HTTP layer maps it to a code).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ResponseStatus {
    /// 200 with a body, 204 without.
    #[default]
    Ok,
    /// The work was started and goes on after the answer (tidy operations): 202.
    Accepted,
    /// The data goes out with this error's status (as Vault answers a deleted KV version:
    /// 404 with its metadata).
    Error(ErrorKind),
}

/// The lease terms of a dynamic secret.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SecretLease {
    /// Seconds; 0 = the mount's default.
    pub ttl: i64,
    /// Seconds; 0 = the mount's maximum.
    pub max_ttl: i64,
    /// Whether the lease can be renewed (through [`Backend::renew_secret`]).
    pub renewable: bool,
    /// Whatever the backend needs to revoke or renew it later (never shown to clients).
    pub internal: Map<String, Value>,
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response")
            .field("data_keys", &self.data.as_ref().map(|d| d.keys().collect::<Vec<_>>()))
            .field("warnings", &self.warnings)
            .field("lease_duration", &self.lease_duration)
            .finish()
    }
}

impl Response {
    /// A 200 answer carrying `data`.
    pub fn data(data: Map<String, Value>) -> Self {
        Response {
            data: Some(data),
            warnings: vec![],
            lease_duration: None,
            auth: None,
            secret: None,
            status: ResponseStatus::Ok,
        }
    }
    /// The `{"keys": [...]}` answer to a list.
    pub fn list(keys: Vec<String>) -> Self {
        let mut m = Map::new();
        m.insert("keys".into(), Value::from(keys));
        Response::data(m)
    }
}

/// The interface every builtin and external backend implements.
#[async_trait]
pub trait Backend: Send + Sync {
    /// The type name as mounted (`kv`, `transit`, …).
    fn backend_type(&self) -> &'static str;
    /// The declarative path table, for routing, validation, help and OpenAPI.
    fn paths(&self) -> &[framework::PathSpec];
    /// Serves one request: route it, check it, answer it. The path is relative to the mount.
    async fn handle_request(&self, req: Request) -> Result<Option<Response>>;
    /// What the router must know of `path` (relative to the mount): served without a token,
    /// root-protected, … A backend built on [`framework::Backend`] answers from its rows' flags.
    fn path_flags(&self, _path: &str) -> framework::PathFlags {
        framework::PathFlags::NORMAL
    }
    /// The root-protected and unauthenticated paths as globs, for hosts that read them from the
    /// plugin protocol (OpenBao's `SpecialPaths`): by default derived from the rows' flags.
    fn special_paths(&self) -> framework::SpecialPaths {
        framework::SpecialPaths::from_specs(self.paths())
    }
    /// Makes sure the backend is running, for callers about to read [`Backend::paths`] without
    /// sending a request (help). Builtins are always ready; a lazily started plugin starts here.
    async fn ensure_started(&self) -> Result<()> {
        Ok(())
    }
    /// Whether the target of a write already exists: decides whether the ACL checks `create`
    /// or `update`. `None` means the path has no existence check (always `update`).
    async fn exists(&self, _req: &Request) -> Result<Option<bool>> {
        Ok(None)
    }
    /// Revokes a leased secret this backend issued (`internal` is what it put in the lease).
    async fn revoke_secret(&self, _req: &Request, _internal: &Map<String, Value>) -> Result<()> {
        Ok(())
    }
    /// Renews a leased secret; the default accepts the core's proposed TTL.
    async fn renew_secret(&self, _req: &Request, _internal: &Map<String, Value>, ttl: i64) -> Result<i64> {
        Ok(ttl)
    }
    /// Asked before a token this auth mount's login issued is renewed: an error refuses the
    /// renewal (the credential no longer matches, the role was deleted, …). `req` carries the
    /// renewing client's connection (`client_certs`, `remote_addr`). The default allows it.
    async fn renew_login(&self, _req: &Request, _login: &LoginRenewal) -> Result<()> {
        Ok(())
    }
    /// Background work the backend does on its own schedule (rotations, clean-ups), as OpenBao's
    /// `PeriodicFunc`: the core calls it every few seconds on an active, unsealed node, with a
    /// request carrying the mount's storage (operation `Update`, empty path). An error is
    /// logged and the call comes again at the next tick. The default does nothing.
    async fn periodic(&self, _req: &Request) -> Result<()> {
        Ok(())
    }
}

/// Matches `path` against special-path globs (a trailing `*` is any suffix, `+` one segment).
pub fn path_matches_any(patterns: &[&str], path: &str) -> bool {
    patterns.iter().any(|p| framework::glob_matches(p, path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn a_kept_cause_is_the_source_but_never_in_the_client_message() {
        let cause = "x".parse::<i64>().unwrap_err();
        let e = LogicalError::internal("stored entry is unreadable").with_source(cause.clone());
        assert_eq!(e.to_string(), "stored entry is unreadable", "Display is the client message only");
        assert_eq!(e.messages, vec!["stored entry is unreadable".to_string()]);
        assert_eq!(e.source().map(ToString::to_string), Some(cause.to_string()));
        assert_eq!(e.cause().map(ToString::to_string), Some(cause.to_string()));
        assert!(LogicalError::internal("x").source().is_none());
    }

    #[test]
    fn errors_compare_by_kind_and_messages_and_clone_with_their_cause() {
        let plain = LogicalError::bad_request("bad");
        let with = LogicalError::bad_request("bad").with_source(std::fmt::Error);
        assert_eq!(plain, with, "the cause is diagnostic only");
        assert_ne!(plain, LogicalError::internal("bad"));
        assert!(with.clone().source().is_some());
        assert!(format!("{with:?}").contains("source"));
        assert_eq!(LogicalError::with_messages(ErrorKind::NotFound, vec![]), LogicalError::not_found());
    }
}
