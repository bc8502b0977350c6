//! Database plugins: the contract between the `database` secrets engine and a plugin that
//! manages users in one kind of database.
//!
//! The shape follows version 5 of the database plugin protocol that OpenBao and Vault speak
//! (`Initialize`, `NewUser`, `UpdateUser`, `DeleteUser`, `Type`, `Close`), so a plugin written
//! against this trait can be served in-process by Coffer (the built-in PostgreSQL and MySQL
//! plugins) or as an external plugin process to Coffer and to OpenBao.
//!
//! One [`Database`] value serves one connection (`database/config/:name`): the engine calls
//! [`Database::initialize`] with the connection's configuration, then issues, changes and
//! removes users through it. The engine decides *when* (leases, rotations); the plugin decides
//! *how* (statements, username shape, connection handling).
//!
//! ```
//! use coffer_sdk::database::{Database, DeleteUserRequest, InitializeRequest, InitializeResponse,
//!     NewUserRequest, NewUserResponse, UpdateUserRequest};
//! use std::sync::Mutex;
//!
//! /// A toy database that keeps its users in memory.
//! #[derive(Default)]
//! struct Memory(Mutex<Vec<String>>);
//!
//! #[async_trait::async_trait]
//! impl Database for Memory {
//!     fn type_name(&self) -> String { "memory".into() }
//!     async fn initialize(&self, req: InitializeRequest) -> coffer_sdk::Result<InitializeResponse> {
//!         Ok(InitializeResponse { config: req.config })
//!     }
//!     async fn new_user(&self, req: NewUserRequest) -> coffer_sdk::Result<NewUserResponse> {
//!         let username = format!("v-{}-{}", req.username_config.role_name, self.0.lock().unwrap().len());
//!         self.0.lock().unwrap().push(username.clone());
//!         Ok(NewUserResponse { username })
//!     }
//!     async fn update_user(&self, _req: UpdateUserRequest) -> coffer_sdk::Result<()> { Ok(()) }
//!     async fn delete_user(&self, req: DeleteUserRequest) -> coffer_sdk::Result<()> {
//!         self.0.lock().unwrap().retain(|u| *u != req.username);
//!         Ok(())
//!     }
//!     async fn close(&self) -> coffer_sdk::Result<()> { Ok(()) }
//! }
//! ```

use crate::Result;
use async_trait::async_trait;
use serde_json::{Map, Value};
use std::time::SystemTime;

/// The version of the database plugin protocol this contract corresponds to.
pub const PROTOCOL_VERSION: u32 = 5;

/// A secret string (a password) that is wiped from memory when dropped and never printed.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretString(zeroize::Zeroizing<String>);

impl SecretString {
    /// Wraps `s`.
    pub fn new(s: impl Into<String>) -> Self {
        SecretString(zeroize::Zeroizing::new(s.into()))
    }
    /// The secret text: use it where the database needs it, never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretString(<redacted>)")
    }
}

/// What kind of credential a role hands out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
#[non_exhaustive]
pub enum CredentialType {
    /// A generated password (the default).
    #[default]
    Password,
    /// An RSA key pair: the engine keeps the private key for the client, the plugin installs
    /// the public key.
    RsaPrivateKey,
    /// A client certificate: the engine issues it, the plugin creates the user for its subject.
    ClientCertificate,
}

impl CredentialType {
    /// The API spelling: `password`, `rsa_private_key` or `client_certificate`.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialType::Password => "password",
            CredentialType::RsaPrivateKey => "rsa_private_key",
            CredentialType::ClientCertificate => "client_certificate",
        }
    }
    /// Parses the API spelling; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "password" => Some(CredentialType::Password),
            "rsa_private_key" => Some(CredentialType::RsaPrivateKey),
            "client_certificate" => Some(CredentialType::ClientCertificate),
            _ => None,
        }
    }
    /// The protocol's number for this type (0, 1, 2).
    pub fn wire(self) -> i32 {
        match self {
            CredentialType::Password => 0,
            CredentialType::RsaPrivateKey => 1,
            CredentialType::ClientCertificate => 2,
        }
    }
    /// The type for a protocol number; `None` for an unknown one.
    pub fn from_wire(n: i32) -> Option<Self> {
        match n {
            0 => Some(CredentialType::Password),
            1 => Some(CredentialType::RsaPrivateKey),
            2 => Some(CredentialType::ClientCertificate),
            _ => None,
        }
    }
}

/// Statements a role or connection configures for one step; empty means "the plugin's default".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Statements {
    /// The commands, in order. Each may hold several `;`-separated statements and the
    /// `{{name}}`, `{{username}}`, `{{password}}`, `{{expiration}}` placeholders.
    pub commands: Vec<String>,
}

/// [`Database::initialize`]'s input: the connection's configuration as stored by the engine
/// (`connection_url`, `username`, `password`, `username_template`, plugin-specific keys…).
#[derive(Debug, Clone, Default)]
pub struct InitializeRequest {
    /// The configuration. It holds the root credentials: never log it.
    pub config: Map<String, Value>,
    /// Whether to connect now and fail when the database cannot be reached.
    pub verify_connection: bool,
}

/// [`Database::initialize`]'s output.
#[derive(Debug, Clone, Default)]
pub struct InitializeResponse {
    /// The configuration the engine should store (a plugin may normalise or add keys).
    pub config: Map<String, Value>,
}

/// Who the user is for: the plugin builds the username from these (and its `username_template`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsernameMetadata {
    /// The display name of the token asking (e.g. `token`, `userpass-alice`).
    pub display_name: String,
    /// The role the credentials are issued under.
    pub role_name: String,
}

/// [`Database::new_user`]'s input.
#[derive(Debug, Clone, Default)]
pub struct NewUserRequest {
    /// What the username is built from.
    pub username_config: UsernameMetadata,
    /// Which of `password`, `public_key` and `subject` is set.
    pub credential_type: CredentialType,
    /// The generated password ([`CredentialType::Password`]).
    pub password: Option<SecretString>,
    /// The PEM public key to install ([`CredentialType::RsaPrivateKey`]).
    pub public_key: Option<Vec<u8>>,
    /// The certificate subject ([`CredentialType::ClientCertificate`]).
    pub subject: Option<String>,
    /// When the credentials expire (the lease's end), if the database can enforce it.
    pub expiration: Option<SystemTime>,
    /// The role's creation statements.
    pub statements: Statements,
    /// The role's rollback statements, run when creation fails halfway.
    pub rollback_statements: Statements,
}

/// [`Database::new_user`]'s output.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewUserResponse {
    /// The username the plugin created.
    pub username: String,
}

/// A new password and the statements that set it.
#[derive(Debug, Clone, Default)]
pub struct ChangePassword {
    /// The new password.
    pub new_password: SecretString,
    /// The statements (the role's rotation statements, or the plugin's default when empty).
    pub statements: Statements,
}

/// A new public key and the statements that install it.
#[derive(Debug, Clone, Default)]
pub struct ChangePublicKey {
    /// The new PEM public key.
    pub new_public_key: Vec<u8>,
    /// The statements.
    pub statements: Statements,
}

/// A new expiry and the statements that set it (a lease renewal).
#[derive(Debug, Clone)]
pub struct ChangeExpiration {
    /// The new end of validity.
    pub new_expiration: SystemTime,
    /// The role's renew statements.
    pub statements: Statements,
}

/// [`Database::update_user`]'s input: any combination of the three changes.
#[derive(Debug, Clone, Default)]
pub struct UpdateUserRequest {
    /// The user to change.
    pub username: String,
    /// Which kind of credential the change concerns.
    pub credential_type: CredentialType,
    /// A password change (static-role rotation, root rotation).
    pub password: Option<ChangePassword>,
    /// A public-key change.
    pub public_key: Option<ChangePublicKey>,
    /// An expiry change (lease renewal).
    pub expiration: Option<ChangeExpiration>,
}

/// [`Database::delete_user`]'s input.
#[derive(Debug, Clone, Default)]
pub struct DeleteUserRequest {
    /// The user to remove.
    pub username: String,
    /// The role's revocation statements (the plugin's default when empty).
    pub statements: Statements,
}

/// A plugin that manages users in one kind of database. One value serves one connection.
///
/// Methods take `&self`: keep the connection behind interior mutability. Errors are
/// [`crate::LogicalError`]s whose messages the engine shows to the client, so they must never
/// contain the root credentials or a generated password.
#[async_trait]
pub trait Database: Send + Sync {
    /// The plugin's type name (`postgresql-database-plugin`, `mysql-database-plugin`, …).
    fn type_name(&self) -> String;
    /// Configures the connection; connects now when `verify_connection` is set.
    async fn initialize(&self, req: InitializeRequest) -> Result<InitializeResponse>;
    /// Creates a user and returns its name.
    async fn new_user(&self, req: NewUserRequest) -> Result<NewUserResponse>;
    /// Changes a user's password, public key or expiry.
    async fn update_user(&self, req: UpdateUserRequest) -> Result<()>;
    /// Removes a user.
    async fn delete_user(&self, req: DeleteUserRequest) -> Result<()>;
    /// Closes the connection; the value is not used afterwards.
    async fn close(&self) -> Result<()>;
}

/// Makes a fresh, uninitialised [`Database`] for one connection.
pub type DatabaseFactory = std::sync::Arc<dyn Fn() -> Box<dyn Database> + Send + Sync>;

/// Finds the plugin for a connection's `plugin_name`: the server gives the engine one of these,
/// knowing the built-in plugins and the plugin catalog (external plugins of type `database`).
#[async_trait]
pub trait DatabaseResolver: Send + Sync {
    /// A fresh, uninitialised plugin for `plugin_name` (and `plugin_version`, empty for any),
    /// or `None` when no built-in or catalogued database plugin has that name.
    async fn resolve(&self, plugin_name: &str, plugin_version: &str) -> Result<Option<Box<dyn Database>>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_type_spellings_and_wire_numbers_round_trip() {
        for t in [CredentialType::Password, CredentialType::RsaPrivateKey, CredentialType::ClientCertificate] {
            assert_eq!(CredentialType::parse(t.as_str()), Some(t));
            assert_eq!(CredentialType::from_wire(t.wire()), Some(t));
        }
        assert_eq!(CredentialType::parse("token"), None);
        assert_eq!(CredentialType::from_wire(7), None);
    }

    #[test]
    fn secret_string_debug_never_shows_the_secret() {
        let s = SecretString::new("hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2");
    }
}
