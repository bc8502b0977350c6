//! `postgresql-database-plugin`: the PostgreSQL plugin of the database secrets engine,
//! implementing [`coffer_sdk::database::Database`] with tokio-postgres.
//!
//! Connection options (the engine's `config/<name>` fields it passes on): `connection_url`
//! (a `postgres://` URL or a `key=value` string, with `{{username}}` and `{{password}}`
//! replaced by `username` and `password`), `username`, `password`, `username_template`, and
//! in the URL `sslmode` (`disable`, `allow`, `prefer`, `require`, `verify-ca`, `verify-full`),
//! `sslrootcert` (a PEM file) and a client certificate (`sslcert` and `sslkey`, PEM files),
//! handled with rustls by `coffer-pg-tls`. Other options are refused by name.
//!
//! Statements run in one transaction per call, each command as a simple query (so `DO $$ … $$`
//! blocks and several `;`-separated statements work), with `{{name}}`/`{{username}}`,
//! `{{password}}` and `{{expiration}}` replaced. Defaults, as OpenBao's plugin: passwords are
//! changed with `ALTER ROLE … WITH PASSWORD`, renewals set `VALID UNTIL`, and a user without
//! revocation statements loses its grants and is dropped.
//!
//! The crate depends on no server crate, so it can also be built into an external plugin.
#![forbid(unsafe_code)]

use async_trait::async_trait;
use coffer_sdk::database::{
    render_username_template, CredentialType, Database, DeleteUserRequest, InitializeRequest, InitializeResponse,
    NewUserRequest, NewUserResponse, UpdateUserRequest,
};
use coffer_sdk::{LogicalError, Result};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio_postgres::{Client, Config};
use zeroize::Zeroizing;

/// The plugin's name in `plugin_name`.
pub const PLUGIN_NAME: &str = "postgresql-database-plugin";

/// OpenBao's default username shape for PostgreSQL (63 characters at most: NAMEDATALEN - 1).
pub const DEFAULT_USERNAME_TEMPLATE: &str = r#"{{ printf "v-%s-%s-%s-%s" (.DisplayName | truncate 8) (.RoleName | truncate 8) (random 20) (unix_time) | truncate 63 }}"#;

/// Connection options this plugin knows besides the URL's own.
/// (OpenBao's pool sizes, `disable_escaping` and `password_authentication` are refused by name:
/// the plugin keeps up to four sessions and lets the server choose the password hashing.)
const KNOWN_OPTIONS: &[&str] = &["connection_url", "username", "password", "username_template"];

struct Settings {
    config: Config,
    tls: Option<coffer_pg_tls::MakeRustls>,
    username_template: String,
}

#[derive(Default)]
struct State {
    settings: Option<Arc<Settings>>,
    client: Option<Client>,
    /// Secrets that must never appear in an error message.
    secrets: Vec<Zeroizing<String>>,
}

/// Sessions a plugin keeps open at most (OpenBao's default pool size too).
const SESSIONS: usize = 4;

/// The PostgreSQL plugin: one value per connection, with up to [`SESSIONS`] sessions opened as
/// concurrent requests need them.
pub struct PostgreSql {
    slots: Vec<tokio::sync::Mutex<State>>,
    /// One permit per session: requests wait here in arrival order (a waiter parked on one busy
    /// session while another came free gave a long tail under load).
    gate: tokio::sync::Semaphore,
    next: std::sync::atomic::AtomicUsize,
}

/// A session held for one request, with its place in the queue.
struct Slot<'a> {
    _permit: tokio::sync::SemaphorePermit<'a>,
    state: tokio::sync::MutexGuard<'a, State>,
}

impl std::ops::Deref for Slot<'_> {
    type Target = State;
    fn deref(&self) -> &State {
        &self.state
    }
}

impl std::ops::DerefMut for Slot<'_> {
    fn deref_mut(&mut self) -> &mut State {
        &mut self.state
    }
}

impl Default for PostgreSql {
    fn default() -> Self {
        PostgreSql {
            slots: (0..SESSIONS).map(|_| tokio::sync::Mutex::new(State::default())).collect(),
            gate: tokio::sync::Semaphore::new(SESSIONS),
            next: std::sync::atomic::AtomicUsize::new(0),
        }
    }
}

impl PostgreSql {
    /// An uninitialised plugin.
    pub fn new() -> Self {
        Self::default()
    }

    /// A session: first in, first served. Holding one of the gate's permits means a session is
    /// free (only `initialize` locks sessions without a permit, and then the next in turn is
    /// awaited).
    async fn slot(&self) -> Slot<'_> {
        // The semaphore is never closed.
        let permit = match self.gate.acquire().await {
            Ok(p) => p,
            Err(_) => unreachable!("the session gate is never closed"),
        };
        let start = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        for i in 0..self.slots.len() {
            if let Ok(state) = self.slots[(start + i) % self.slots.len()].try_lock() {
                return Slot { _permit: permit, state };
            }
        }
        Slot { _permit: permit, state: self.slots[start % self.slots.len()].lock().await }
    }
}

fn bad(msg: impl Into<String>) -> LogicalError {
    LogicalError::bad_request(msg)
}

/// Percent-encodes a URL's user or password part.
fn url_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A `key=value` string's value, quoted when it needs to be.
fn dsn_quote(s: &str) -> String {
    if !s.is_empty() && !s.contains([' ', '\'', '\\']) {
        return s.to_string();
    }
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn format_expiration(t: SystemTime) -> String {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs() as i64;
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]+0000");
    time::OffsetDateTime::from_unix_timestamp(secs).ok().and_then(|d| d.format(&fmt).ok()).unwrap_or_default()
}

/// A PostgreSQL identifier in double quotes.
fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// A PostgreSQL string literal.
fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn render(stmt: &str, vars: &[(&str, &str)]) -> String {
    let mut s = stmt.to_string();
    for (k, v) in vars {
        s = s.replace(&format!("{{{{{k}}}}}"), v);
    }
    s
}

impl State {
    /// The error text without any secret the plugin knows.
    fn scrub(&self, what: &str, e: &dyn std::fmt::Display) -> LogicalError {
        let mut msg = format!("{what}: {e}");
        for s in &self.secrets {
            if !s.is_empty() {
                msg = msg.replace(s.as_str(), "[redacted]");
            }
        }
        bad(msg)
    }

    async fn client(&mut self) -> Result<&mut Client> {
        if self.client.as_ref().is_some_and(|c| !c.is_closed()) {
            return Ok(self.client.as_mut().expect("checked above"));
        }
        let settings = self.settings.clone().ok_or_else(|| bad("the connection is not initialised"))?;
        let client = match &settings.tls {
            Some(t) => {
                let (client, conn) = settings
                    .config
                    .connect(t.clone())
                    .await
                    .map_err(|e| self.scrub("failed to connect to PostgreSQL", &db_error_text(&e)))?;
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "PostgreSQL connection closed");
                    }
                });
                client
            }
            None => {
                let (client, conn) = settings
                    .config
                    .connect(tokio_postgres::NoTls)
                    .await
                    .map_err(|e| self.scrub("failed to connect to PostgreSQL", &db_error_text(&e)))?;
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "PostgreSQL connection closed");
                    }
                });
                client
            }
        };
        Ok(self.client.insert(client))
    }

    /// Runs `commands` (rendered with `vars`) in one transaction.
    async fn run(&mut self, commands: &[String], vars: &[(&str, &str)]) -> Result<()> {
        let rendered: Vec<String> = commands.iter().map(|c| render(c, vars)).filter(|c| !c.trim().is_empty()).collect();
        let result = {
            let client = self.client().await?;
            match client.transaction().await {
                Err(e) => Err(e),
                Ok(tx) => {
                    let mut r = Ok(());
                    for c in &rendered {
                        if let Err(e) = tx.batch_execute(c).await {
                            r = Err(e);
                            break;
                        }
                    }
                    match r {
                        Ok(()) => tx.commit().await,
                        Err(e) => Err(e),
                    }
                }
            }
        };
        result.map_err(|e| self.scrub("statement failed", &db_error_text(&e)))
    }
}

/// The database's own message when there is one (tokio-postgres's `Display` says only "db error").
/// Otherwise the error with its causes (a TLS failure says why the certificate was refused).
fn db_error_text(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{}: {}", db.severity(), db.message());
    }
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let t = c.to_string();
        if !text.contains(&t) {
            text = format!("{text}: {t}");
        }
        cause = c.source();
    }
    text
}

#[async_trait]
impl Database for PostgreSql {
    fn type_name(&self) -> String {
        PLUGIN_NAME.into()
    }

    async fn initialize(&self, req: InitializeRequest) -> Result<InitializeResponse> {
        let get = |k: &str| req.config.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        for k in req.config.keys() {
            if !KNOWN_OPTIONS.contains(&k.as_str()) {
                return Err(bad(format!("unknown connection option {k:?} for {PLUGIN_NAME}")));
            }
        }
        let url = get("connection_url");
        if url.is_empty() {
            return Err(bad("connection_url cannot be empty"));
        }
        let username = get("username");
        let password = Zeroizing::new(get("password"));
        let is_url = url.starts_with("postgres://") || url.starts_with("postgresql://");
        let rendered = Zeroizing::new(if is_url {
            url.replace("{{username}}", &url_escape(&username)).replace("{{password}}", &url_escape(&password))
        } else {
            url.replace("{{username}}", &dsn_quote(&username)).replace("{{password}}", &dsn_quote(&password))
        });
        let (conn_str, tls_opts) = coffer_pg_tls::split_tls_options(&rendered);
        let conn_str = Zeroizing::new(conn_str);
        let mut config: Config = conn_str.parse().map_err(|e| bad(format!("invalid connection_url: {e}")))?;
        if !url.contains("{{username}}") && config.get_user().is_none() && !username.is_empty() {
            config.user(&username);
        }
        if !url.contains("{{password}}") && config.get_password().is_none() && !password.is_empty() {
            config.password(password.as_bytes());
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        let choice = coffer_pg_tls::choose(&tls_opts).map_err(|e| bad(e.to_string()))?;
        config.ssl_mode(choice.ssl_mode);
        let tls = choice.connector;
        let template = get("username_template");
        if !template.is_empty() {
            // Checked now, so a bad template fails the configuration and not the first `creds`.
            render_username_template(&template, &Default::default())?;
        }
        let settings = Settings {
            config,
            tls,
            username_template: if template.is_empty() { DEFAULT_USERNAME_TEMPLATE.into() } else { template },
        };
        let settings = Arc::new(settings);
        for slot in &self.slots {
            let mut st = slot.lock().await;
            st.client = None;
            st.settings = Some(settings.clone());
            st.secrets = vec![password.clone()];
        }
        let mut st = self.slots[0].lock().await;
        if req.verify_connection {
            let client = st.client().await?;
            if let Err(e) = client.simple_query("SELECT 1").await {
                let e = st.scrub("error verifying connection", &db_error_text(&e));
                st.client = None;
                return Err(e);
            }
        }
        Ok(InitializeResponse { config: req.config })
    }

    async fn new_user(&self, req: NewUserRequest) -> Result<NewUserResponse> {
        if req.credential_type != CredentialType::Password {
            // As OpenBao's plugin answers: this database takes passwords only.
            return Err(bad(format!("unsupported credential_type: {:?}", req.credential_type.as_str())));
        }
        if req.statements.commands.iter().all(|c| c.trim().is_empty()) {
            return Err(bad("empty creation statements"));
        }
        let password = req.password.as_ref().ok_or_else(|| bad("no password was given for the new user"))?;
        let mut st = self.slot().await;
        let template =
            st.settings.as_ref().ok_or_else(|| bad("the connection is not initialised"))?.username_template.clone();
        let username = render_username_template(&template, &req.username_config)?;
        let expiration = req.expiration.map(format_expiration).unwrap_or_else(|| "infinity".into());
        st.secrets.push(Zeroizing::new(password.expose().to_string()));
        let vars = [
            ("name", username.as_str()),
            ("username", username.as_str()),
            ("password", password.expose()),
            ("expiration", expiration.as_str()),
        ];
        let r = st.run(&req.statements.commands, &vars).await;
        if r.is_err() && !req.rollback_statements.commands.is_empty() {
            if let Err(e) = st.run(&req.rollback_statements.commands, &vars).await {
                tracing::warn!(error = %e, "rollback statements failed after a failed user creation");
            }
        }
        st.secrets.pop();
        r?;
        Ok(NewUserResponse { username })
    }

    async fn update_user(&self, req: UpdateUserRequest) -> Result<()> {
        if req.username.is_empty() {
            return Err(bad("missing username"));
        }
        if req.public_key.is_some() {
            return Err(bad(format!("{PLUGIN_NAME} does not support public-key credentials")));
        }
        let mut st = self.slot().await;
        if let Some(change) = &req.password {
            let pw = change.new_password.expose();
            st.secrets.push(Zeroizing::new(pw.to_string()));
            let r = if change.statements.commands.is_empty() {
                let stmt = format!("ALTER ROLE {} WITH PASSWORD {}", quote_ident(&req.username), quote_literal(pw));
                st.run(&[stmt], &[]).await
            } else {
                let vars = [("name", req.username.as_str()), ("username", req.username.as_str()), ("password", pw)];
                st.run(&change.statements.commands, &vars).await
            };
            st.secrets.pop();
            r?;
        }
        if let Some(change) = &req.expiration {
            let exp = format_expiration(change.new_expiration);
            if change.statements.commands.is_empty() {
                let stmt = format!("ALTER ROLE {} VALID UNTIL {}", quote_ident(&req.username), quote_literal(&exp));
                st.run(&[stmt], &[]).await?;
            } else {
                let vars = [
                    ("name", req.username.as_str()),
                    ("username", req.username.as_str()),
                    ("expiration", exp.as_str()),
                ];
                st.run(&change.statements.commands, &vars).await?;
            }
        }
        Ok(())
    }

    async fn delete_user(&self, req: DeleteUserRequest) -> Result<()> {
        if req.username.is_empty() {
            return Err(bad("missing username"));
        }
        let mut st = self.slot().await;
        if !req.statements.commands.is_empty() {
            let vars = [("name", req.username.as_str()), ("username", req.username.as_str())];
            return st.run(&req.statements.commands, &vars).await;
        }
        // The default: take back what was granted in this database, then drop the role.
        let (schemas, db) = {
            let client = st.client().await?;
            let exists = client.query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&req.username]).await;
            match exists {
                Ok(None) => return Ok(()),
                Ok(Some(_)) => {}
                Err(e) => return Err(bad(format!("statement failed: {}", db_error_text(&e)))),
            }
            let rows = client
                .query(
                    "SELECT DISTINCT table_schema FROM information_schema.role_table_grants WHERE grantee = $1",
                    &[&req.username],
                )
                .await
                .map_err(|e| bad(format!("statement failed: {}", db_error_text(&e))))?;
            let schemas: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
            let db: String = client
                .query_one("SELECT current_database()", &[])
                .await
                .map_err(|e| bad(format!("statement failed: {}", db_error_text(&e))))?
                .get(0);
            (schemas, db)
        };
        let user = quote_ident(&req.username);
        let mut stmts = vec![];
        for s in schemas.iter().map(String::as_str).chain(std::iter::once("public")) {
            let s = quote_ident(s);
            stmts.push(format!("REVOKE ALL PRIVILEGES ON ALL TABLES IN SCHEMA {s} FROM {user}"));
            stmts.push(format!("REVOKE ALL PRIVILEGES ON ALL SEQUENCES IN SCHEMA {s} FROM {user}"));
            stmts.push(format!("REVOKE USAGE ON SCHEMA {s} FROM {user}"));
        }
        stmts.push(format!("REVOKE ALL PRIVILEGES ON DATABASE {} FROM {user}", quote_ident(&db)));
        stmts.push(format!("DROP ROLE IF EXISTS {user}"));
        st.run(&stmts, &[]).await
    }

    async fn close(&self) -> Result<()> {
        for slot in &self.slots {
            let mut st = slot.lock().await;
            st.client = None;
            st.settings = None;
            st.secrets.clear();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_get_their_placeholders_and_quoting_is_safe() {
        let v = [("name", "v-x"), ("password", "pw"), ("expiration", "2030-01-01 00:00:00+0000")];
        assert_eq!(
            render("CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';", &v),
            "CREATE ROLE \"v-x\" WITH LOGIN PASSWORD 'pw' VALID UNTIL '2030-01-01 00:00:00+0000';"
        );
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_literal("o'k"), "'o''k'");
        assert_eq!(url_escape("p@ss:w/rd"), "p%40ss%3Aw%2Frd");
        assert_eq!(format_expiration(SystemTime::UNIX_EPOCH + Duration::from_secs(86400)), "1970-01-02 00:00:00+0000");
    }
}
