#![forbid(unsafe_code)]
//! An example external database plugin: it manages PostgreSQL roles for the `database` secrets
//! engine of Coffer, OpenBao or Vault, over version 5 of the database plugin protocol
//! (`coffer_plugin::serve_database`, in `main.rs`).
//!
//! Connection configuration (`database/config/NAME`, besides the engine's own keys):
//!
//! | key | meaning |
//! |---|---|
//! | `connection_url` | required; a `postgres://` URL, where `{{username}}` and `{{password}}` stand for the two keys below |
//! | `username`, `password` | the plugin's own login (needs `CREATEROLE`) |
//!
//! Any other key is refused, naming it. Roles' `creation_statements`, `revocation_statements`,
//! `renew_statements` and `rollback_statements` take `{{name}}`, `{{password}}` and
//! `{{expiration}}`; without them the plugin creates a login role valid until the lease ends,
//! and drops it on revocation.

use async_trait::async_trait;
use coffer_sdk::database::{
    Database, DeleteUserRequest, InitializeRequest, InitializeResponse, NewUserRequest, NewUserResponse,
    UpdateUserRequest,
};
use coffer_sdk::{LogicalError, Result};
use serde_json::{Map, Value};
use std::time::SystemTime;
use tokio::sync::Mutex;

/// The type name the plugin reports.
pub const TYPE_NAME: &str = "postgresql-example";

const DEFAULT_CREATE: &str =
    "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';";
const DEFAULT_REVOKE: &str = "DROP ROLE IF EXISTS \"{{name}}\";";
const DEFAULT_PASSWORD: &str = "ALTER ROLE \"{{name}}\" WITH PASSWORD '{{password}}';";
const DEFAULT_RENEW: &str = "ALTER ROLE \"{{name}}\" VALID UNTIL '{{expiration}}';";

/// The configuration keys the plugin knows.
const KNOWN_KEYS: [&str; 3] = ["connection_url", "username", "password"];

/// One connection's worth of PostgreSQL role management.
#[derive(Default)]
pub struct Postgres {
    url: std::sync::Mutex<Option<String>>,
    client: Mutex<Option<tokio_postgres::Client>>,
}

fn text(config: &Map<String, Value>, key: &str) -> Result<String> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(LogicalError::bad_request(format!("{key} must be a string"))),
    }
}

/// Doubles `'` for use inside a SQL string literal.
fn sql_literal(s: &str) -> String {
    s.replace('\'', "''")
}

/// Doubles `"` for use inside a quoted SQL identifier.
fn sql_ident(s: &str) -> String {
    s.replace('"', "\"\"")
}

/// `2026-12-07 16:00:00+0000`, or `infinity` for no expiry.
pub fn format_expiration(t: Option<SystemTime>) -> String {
    let Some(t) = t else { return "infinity".into() };
    let t = time::OffsetDateTime::from(t);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}+0000",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Replaces the placeholders of `stmt`; values are escaped for the quoting the default
/// statements use (`"{{name}}"`, `'{{password}}'`, `'{{expiration}}'`).
pub fn render(stmt: &str, name: &str, password: &str, expiration: &str) -> String {
    stmt.replace("{{name}}", &sql_ident(name))
        .replace("{{username}}", &sql_ident(name))
        .replace("{{password}}", &sql_literal(password))
        .replace("{{expiration}}", &sql_literal(expiration))
}

/// A role name from the token's display name, the role and randomness (at most 63 bytes,
/// PostgreSQL's limit): `v-token-readonly-3f9c…-1765123456`.
pub fn make_username(display_name: &str, role_name: &str) -> String {
    let clean = |s: &str, n: usize| -> String {
        s.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').take(n).collect::<String>().to_lowercase()
    };
    let rand = uuid::Uuid::new_v4().simple().to_string();
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let mut u = format!("v-{}-{}-{}-{now}", clean(display_name, 8), clean(role_name, 8), &rand[..20]);
    u.truncate(63);
    u
}

impl Postgres {
    /// The connection, opened on first use and re-opened when it broke.
    async fn client(&self) -> Result<tokio::sync::MutexGuard<'_, Option<tokio_postgres::Client>>> {
        let mut g = self.client.lock().await;
        if g.as_ref().is_some_and(|c| !c.is_closed()) {
            return Ok(g);
        }
        let url = self
            .url
            .lock()
            .map_err(|_| LogicalError::internal("configuration lock poisoned"))?
            .clone()
            .ok_or_else(|| LogicalError::bad_request("the connection is not initialized"))?;
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            // The URL holds the password: the message names the failure, never the URL.
            .map_err(|e| LogicalError::bad_request(format!("cannot connect to PostgreSQL: {}", pg_reason(&e))))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        *g = Some(client);
        Ok(g)
    }

    /// Runs `commands` (each may hold several statements) in one transaction.
    async fn run(&self, commands: &[String]) -> Result<()> {
        let mut g = self.client().await?;
        let Some(client) = g.as_mut() else { return Err(LogicalError::internal("no connection")) };
        let tx = client.transaction().await.map_err(|e| LogicalError::internal(pg_reason(&e)))?;
        for c in commands {
            tx.batch_execute(c).await.map_err(|e| LogicalError::internal(pg_reason(&e)))?;
        }
        tx.commit().await.map_err(|e| LogicalError::internal(pg_reason(&e)))
    }
}

/// PostgreSQL's own message (statements are not echoed: they hold passwords).
fn pg_reason(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}

fn or_default(commands: &[String], default: &str) -> Vec<String> {
    let c: Vec<String> = commands.iter().filter(|c| !c.trim().is_empty()).cloned().collect();
    if c.is_empty() {
        vec![default.to_string()]
    } else {
        c
    }
}

#[async_trait]
impl Database for Postgres {
    fn type_name(&self) -> String {
        TYPE_NAME.into()
    }

    async fn initialize(&self, req: InitializeRequest) -> Result<InitializeResponse> {
        if let Some(k) = req.config.keys().find(|k| !KNOWN_KEYS.contains(&k.as_str())) {
            return Err(LogicalError::bad_request(format!(
                "unsupported configuration key {k:?} (this plugin knows connection_url, username, password)"
            )));
        }
        let template = text(&req.config, "connection_url")?;
        if template.is_empty() {
            return Err(LogicalError::bad_request("connection_url is required"));
        }
        let url = template
            .replace("{{username}}", &text(&req.config, "username")?)
            .replace("{{password}}", &text(&req.config, "password")?);
        *self.url.lock().map_err(|_| LogicalError::internal("configuration lock poisoned"))? = Some(url);
        *self.client.lock().await = None;
        if req.verify_connection {
            let g = self.client().await?;
            if let Some(c) = g.as_ref() {
                c.simple_query("SELECT 1").await.map_err(|e| {
                    LogicalError::bad_request(format!("cannot verify the connection: {}", pg_reason(&e)))
                })?;
            }
        }
        Ok(InitializeResponse { config: req.config })
    }

    async fn new_user(&self, req: NewUserRequest) -> Result<NewUserResponse> {
        let Some(password) = req.password.as_ref() else {
            return Err(LogicalError::bad_request("this plugin issues passwords only (credential_type password)"));
        };
        let name = make_username(&req.username_config.display_name, &req.username_config.role_name);
        let exp = format_expiration(req.expiration);
        let commands: Vec<String> = or_default(&req.statements.commands, DEFAULT_CREATE)
            .iter()
            .map(|c| render(c, &name, password.expose(), &exp))
            .collect();
        if let Err(e) = self.run(&commands).await {
            let rollback: Vec<String> =
                req.rollback_statements.commands.iter().map(|c| render(c, &name, "", &exp)).collect();
            if !rollback.is_empty() {
                let _ = self.run(&rollback).await;
            }
            return Err(e);
        }
        Ok(NewUserResponse { username: name })
    }

    async fn update_user(&self, req: UpdateUserRequest) -> Result<()> {
        if let Some(p) = &req.password {
            let commands: Vec<String> = or_default(&p.statements.commands, DEFAULT_PASSWORD)
                .iter()
                .map(|c| render(c, &req.username, p.new_password.expose(), ""))
                .collect();
            self.run(&commands).await?;
        }
        if let Some(e) = &req.expiration {
            let exp = format_expiration(Some(e.new_expiration));
            let commands: Vec<String> = or_default(&e.statements.commands, DEFAULT_RENEW)
                .iter()
                .map(|c| render(c, &req.username, "", &exp))
                .collect();
            self.run(&commands).await?;
        }
        if req.public_key.is_some() {
            return Err(LogicalError::bad_request("this plugin does not manage public keys"));
        }
        Ok(())
    }

    async fn delete_user(&self, req: DeleteUserRequest) -> Result<()> {
        let commands: Vec<String> = or_default(&req.statements.commands, DEFAULT_REVOKE)
            .iter()
            .map(|c| render(c, &req.username, "", ""))
            .collect();
        self.run(&commands).await
    }

    async fn close(&self) -> Result<()> {
        *self.client.lock().await = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_escaped_for_their_quoting() {
        let s = render(DEFAULT_CREATE, "v-a\"b", "pa'ss", "infinity");
        assert_eq!(s, "CREATE ROLE \"v-a\"\"b\" WITH LOGIN PASSWORD 'pa''ss' VALID UNTIL 'infinity';");
    }

    #[test]
    fn usernames_fit_postgresql_and_name_the_role() {
        let u = make_username("token-with-a-long-display-name", "readonly role!");
        assert!(u.len() <= 63 && u.starts_with("v-tokenwit-readonly-"), "{u}");
        assert_ne!(u, make_username("token", "readonly"));
    }

    #[test]
    fn expirations_are_utc_timestamps_postgresql_reads() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000);
        assert_eq!(format_expiration(Some(t)), "2027-01-15 08:00:00+0000");
        assert_eq!(format_expiration(None), "infinity");
    }

    #[tokio::test]
    async fn unknown_configuration_keys_are_refused_by_name() {
        let mut config = Map::new();
        config.insert("connection_url".into(), "postgres://x".into());
        config.insert("max_open_connections".into(), 4.into());
        let err = Postgres::default().initialize(InitializeRequest { config, verify_connection: false }).await.err();
        assert!(err.unwrap().to_string().contains("max_open_connections"));
    }
}
