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

/// A random string of `n` characters from `[A-Za-z0-9]`, from the operating system's generator
/// (for usernames; the engine generates passwords).
pub fn random_alphanumeric(n: usize) -> Result<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(n);
    let mut buf = [0u8; 64];
    while out.len() < n {
        getrandom::fill(&mut buf)
            .map_err(|e| crate::LogicalError::internal("random generator failed").with_source(e))?;
        // 248 = 4 × 62: rejecting the bytes above keeps every character equally likely.
        for b in buf.iter().filter(|b| **b < 248) {
            if out.len() == n {
                break;
            }
            out.push(ALPHABET[usize::from(*b) % ALPHABET.len()] as char);
        }
    }
    Ok(out)
}

/// Renders a username template, the `username_template` connection option of database plugins.
///
/// The syntax is the subset of Go templates OpenBao's templates use: text, and actions
/// `{{ … }}` holding a pipeline (`a | b 8`, the piped value becoming the last argument) whose
/// values are `.DisplayName`, `.RoleName`, string and number literals and parenthesised
/// pipelines, and whose functions are `printf` (`%s`, `%d`, `%v`), `truncate N`, `uppercase`,
/// `lowercase`, `replace OLD NEW`, `random N`, `unix_time`, `unix_time_millis` and `uuid`.
/// Anything else is an error naming it.
///
/// ```
/// use coffer_sdk::database::{render_username_template, UsernameMetadata};
/// let m = UsernameMetadata { display_name: "token-alice".into(), role_name: "readonly".into() };
/// let u = render_username_template("v-{{.DisplayName | truncate 5}}-{{.RoleName | uppercase}}", &m).unwrap();
/// assert_eq!(u, "v-token-READONLY");
/// ```
pub fn render_username_template(template: &str, meta: &UsernameMetadata) -> Result<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let mut text = &rest[..start];
        let mut action = &rest[start + 2..];
        if let Some(a) = action.strip_prefix('-') {
            text = text.trim_end();
            action = a;
        }
        out.push_str(text);
        let end = action.find("}}").ok_or_else(|| template_error("an action is not closed with }}"))?;
        let mut body = &action[..end];
        rest = &action[end + 2..];
        if let Some(b) = body.strip_suffix('-') {
            body = b;
            rest = rest.trim_start();
        }
        let tokens = tokenize(body)?;
        let mut pos = 0;
        let v = eval_pipeline(&tokens, &mut pos, meta)?;
        if pos != tokens.len() {
            return Err(template_error("unexpected text after a pipeline"));
        }
        out.push_str(&v.text());
    }
    out.push_str(rest);
    Ok(out)
}

fn template_error(msg: &str) -> crate::LogicalError {
    crate::LogicalError::bad_request(format!("invalid username_template: {msg}"))
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Field(String),
    Ident(String),
    Str(String),
    Int(i64),
    Pipe,
    Open,
    Close,
}

#[derive(Debug, Clone)]
enum Val {
    Str(String),
    Int(i64),
}

impl Val {
    fn text(&self) -> String {
        match self {
            Val::Str(s) => s.clone(),
            Val::Int(n) => n.to_string(),
        }
    }
}

fn tokenize(s: &str) -> Result<Vec<Tok>> {
    let c: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch.is_whitespace() {
            i += 1;
        } else if ch == '|' {
            out.push(Tok::Pipe);
            i += 1;
        } else if ch == '(' {
            out.push(Tok::Open);
            i += 1;
        } else if ch == ')' {
            out.push(Tok::Close);
            i += 1;
        } else if ch == '"' {
            let mut v = String::new();
            i += 1;
            loop {
                match c.get(i) {
                    None => return Err(template_error("a string literal is not closed")),
                    Some('"') => break,
                    Some('\\') => {
                        match c.get(i + 1) {
                            Some('n') => v.push('\n'),
                            Some('t') => v.push('\t'),
                            Some(o) => v.push(*o),
                            None => return Err(template_error("a string literal is not closed")),
                        }
                        i += 2;
                        continue;
                    }
                    Some(o) => v.push(*o),
                }
                i += 1;
            }
            i += 1;
            out.push(Tok::Str(v));
        } else {
            let start = i;
            while i < c.len() && !c[i].is_whitespace() && !matches!(c[i], '|' | '(' | ')' | '"') {
                i += 1;
            }
            let word: String = c[start..i].iter().collect();
            if let Some(f) = word.strip_prefix('.') {
                out.push(Tok::Field(f.to_string()));
            } else if let Ok(n) = word.parse::<i64>() {
                out.push(Tok::Int(n));
            } else {
                out.push(Tok::Ident(word));
            }
        }
    }
    Ok(out)
}

fn eval_pipeline(t: &[Tok], pos: &mut usize, meta: &UsernameMetadata) -> Result<Val> {
    let mut piped: Option<Val> = None;
    loop {
        let mut args = Vec::new();
        let mut func: Option<String> = None;
        while let Some(tok) = t.get(*pos) {
            match tok {
                Tok::Pipe | Tok::Close => break,
                Tok::Ident(name) if func.is_none() && args.is_empty() => func = Some(name.clone()),
                // A name in argument position is a call without arguments (`unix_time`).
                Tok::Ident(name) => args.push(call(name, vec![])?),
                Tok::Field(f) => args.push(Val::Str(match f.as_str() {
                    "DisplayName" => meta.display_name.clone(),
                    "RoleName" => meta.role_name.clone(),
                    other => return Err(template_error(&format!("unknown field .{other}"))),
                })),
                Tok::Str(s) => args.push(Val::Str(s.clone())),
                Tok::Int(n) => args.push(Val::Int(*n)),
                Tok::Open => {
                    *pos += 1;
                    let v = eval_pipeline(t, pos, meta)?;
                    if t.get(*pos) != Some(&Tok::Close) {
                        return Err(template_error("a parenthesis is not closed"));
                    }
                    args.push(v);
                }
            }
            *pos += 1;
        }
        if let Some(p) = piped.take() {
            args.push(p);
        }
        let v = match func {
            Some(f) => call(&f, args)?,
            None if args.len() == 1 => args.remove(0),
            None => return Err(template_error("an empty or malformed command")),
        };
        if t.get(*pos) == Some(&Tok::Pipe) {
            *pos += 1;
            piped = Some(v);
        } else {
            return Ok(v);
        }
    }
}

fn call(name: &str, args: Vec<Val>) -> Result<Val> {
    let int = |v: &Val| match v {
        Val::Int(n) => {
            usize::try_from(*n).map_err(|e| template_error(&format!("{name} needs a positive number")).with_source(e))
        }
        Val::Str(s) => s.parse::<usize>().map_err(|e| template_error(&format!("{name} needs a number")).with_source(e)),
    };
    let arity = |n: usize| {
        if args.len() == n {
            Ok(())
        } else {
            Err(template_error(&format!("{name} takes {n} argument(s), got {}", args.len())))
        }
    };
    let now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    Ok(match name {
        "truncate" => {
            arity(2)?;
            Val::Str(args[1].text().chars().take(int(&args[0])?).collect())
        }
        "uppercase" => {
            arity(1)?;
            Val::Str(args[0].text().to_uppercase())
        }
        "lowercase" => {
            arity(1)?;
            Val::Str(args[0].text().to_lowercase())
        }
        "replace" => {
            arity(3)?;
            Val::Str(args[2].text().replace(&args[0].text(), &args[1].text()))
        }
        "random" => {
            arity(1)?;
            Val::Str(random_alphanumeric(int(&args[0])?)?)
        }
        "unix_time" => {
            arity(0)?;
            Val::Int(now().as_secs() as i64)
        }
        "unix_time_millis" => {
            arity(0)?;
            Val::Int(now().as_millis() as i64)
        }
        "uuid" => {
            arity(0)?;
            let mut b = [0u8; 16];
            getrandom::fill(&mut b)
                .map_err(|e| crate::LogicalError::internal("random generator failed").with_source(e))?;
            b[6] = (b[6] & 0x0f) | 0x40;
            b[8] = (b[8] & 0x3f) | 0x80;
            let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
            Val::Str(format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32]))
        }
        "printf" => {
            let Some((fmt, rest)) = args.split_first() else {
                return Err(template_error("printf needs a format"));
            };
            let fmt = fmt.text();
            let mut out = String::new();
            let mut it = rest.iter();
            let mut chars = fmt.chars();
            while let Some(ch) = chars.next() {
                if ch != '%' {
                    out.push(ch);
                    continue;
                }
                match chars.next() {
                    Some('%') => out.push('%'),
                    Some('s' | 'd' | 'v') => {
                        out.push_str(&it.next().ok_or_else(|| template_error("printf has too few arguments"))?.text())
                    }
                    _ => return Err(template_error("printf supports only %s, %d and %v")),
                }
            }
            Val::Str(out)
        }
        other => return Err(template_error(&format!("function {other:?} is not supported"))),
    })
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
    fn username_templates_render_openbaos_default_shape() {
        let m = UsernameMetadata { display_name: "token-alice-long".into(), role_name: "readonly-role".into() };
        let t = r#"{{ printf "v-%s-%s-%s-%s" (.DisplayName | truncate 8) (.RoleName | truncate 8) (random 20) (unix_time) | truncate 63 }}"#;
        let u = render_username_template(t, &m).unwrap();
        let parts: Vec<&str> = u.split('-').collect();
        assert_eq!(&parts[..4], ["v", "token", "al", "readonly"], "{u}");
        assert_eq!(parts[4].len(), 20, "{u}");
        assert!(parts[5].parse::<u64>().unwrap() > 1_600_000_000);
        assert_eq!(
            render_username_template("{{.RoleName | replace \"-\" \"_\" | uppercase}}", &m).unwrap(),
            "READONLY_ROLE"
        );
        assert!(render_username_template("{{.Nope}}", &m).unwrap_err().to_string().contains(".Nope"));
        assert!(render_username_template("{{ sha512 .RoleName }}", &m).unwrap_err().to_string().contains("sha512"));
        assert!(render_username_template("{{ .RoleName", &m).is_err());
    }

    #[test]
    fn secret_string_debug_never_shows_the_secret() {
        let s = SecretString::new("hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2");
    }
}
