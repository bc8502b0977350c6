//! `mysql-database-plugin`: the MySQL/MariaDB plugin of the database secrets engine,
//! implementing [`coffer_sdk::database::Database`] with mysql_async.
//!
//! Connection options: `connection_url` in the Go driver's DSN form OpenBao uses
//! (`{{username}}:{{password}}@tcp(host:port)/db?tls=…` or `@unix(/path/to/socket)/`), with
//! `{{username}}`/`{{password}}` replaced by `username` and `password`; `username_template`;
//! `tls_ca` (PEM of the CA that signed the server's certificate). The DSN's `tls` parameter:
//! `false` (the default), `true` (verified), `skip-verify` (encrypted, not verified), `preferred`
//! (as `skip-verify`). Other options and DSN parameters are refused by name.
//!
//! Statements: each command is split at `;` (outside quotes) and run one by one (MySQL commits
//! DDL as it goes, so there is no transaction to roll back: `rollback_statements` run when a
//! creation fails). `{{name}}`/`{{username}}`, `{{password}}` and `{{expiration}}` are replaced.
//! Defaults, as OpenBao's plugin: a password is changed with `ALTER USER … IDENTIFIED BY`, a
//! user without revocation statements loses its privileges and is dropped (`'name'@'%'`), and
//! renewals change nothing (MySQL users have no expiry).
//!
//! The crate depends on no server crate, so it can also be built into an external plugin.
#![forbid(unsafe_code)]

use async_trait::async_trait;
use coffer_sdk::database::{
    render_username_template, CredentialType, Database, DeleteUserRequest, InitializeRequest, InitializeResponse,
    NewUserRequest, NewUserResponse, UpdateUserRequest,
};
use coffer_sdk::{LogicalError, Result};
use mysql_async::prelude::Queryable;
use serde_json::Value;
use std::time::{Duration, SystemTime};
use zeroize::Zeroizing;

/// The plugin's name in `plugin_name`.
pub const PLUGIN_NAME: &str = "mysql-database-plugin";

/// OpenBao's default username shape for MySQL (32 characters at most).
pub const DEFAULT_USERNAME_TEMPLATE: &str = r#"{{ printf "v-%s-%s-%s-%s" (.DisplayName | truncate 10) (.RoleName | truncate 10) (random 20) (unix_time) | truncate 32 }}"#;

const KNOWN_OPTIONS: &[&str] = &["connection_url", "username", "password", "username_template", "tls_ca"];

#[derive(Default)]
struct State {
    opts: Option<mysql_async::Opts>,
    conn: Option<mysql_async::Conn>,
    username_template: String,
    secrets: Vec<Zeroizing<String>>,
}

/// The MySQL/MariaDB plugin: one value per connection.
#[derive(Default)]
pub struct MySql {
    state: tokio::sync::Mutex<State>,
}

impl MySql {
    /// An uninitialised plugin.
    pub fn new() -> Self {
        Self::default()
    }
}

fn bad(msg: impl Into<String>) -> LogicalError {
    LogicalError::bad_request(msg)
}

/// The parts of a Go MySQL DSN: `user:password@proto(address)/db?params`.
#[derive(Debug, PartialEq, Eq)]
struct Dsn {
    user: String,
    password: String,
    proto: String,
    address: String,
    db: String,
    params: Vec<(String, String)>,
}

fn parse_dsn(s: &str) -> Result<Dsn> {
    let invalid = || bad("invalid connection_url: expected user:password@tcp(host:port)/database");
    let (userinfo, rest) = match s.rfind("@") {
        Some(i) if s[..i].find('(').is_none() => (&s[..i], &s[i + 1..]),
        _ => ("", s),
    };
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let (proto, rest) = rest.split_once('(').ok_or_else(invalid)?;
    let (address, rest) = rest.split_once(')').ok_or_else(invalid)?;
    let rest = rest.strip_prefix('/').ok_or_else(invalid)?;
    let (db, query) = rest.split_once('?').unwrap_or((rest, ""));
    let params = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_string(), v.to_string())
        })
        .collect();
    Ok(Dsn {
        user: user.into(),
        password: password.into(),
        proto: proto.into(),
        address: address.into(),
        db: db.into(),
        params,
    })
}

/// Splits `cmd` at `;` outside quotes and backticks.
fn split_statements(cmd: &str) -> Vec<String> {
    let mut out = vec![];
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut chars = cmd.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                cur.push(c);
                if c == '\\' {
                    if let Some(n) = chars.next() {
                        cur.push(n);
                    }
                } else if c == q {
                    quote = None;
                }
            }
            None if c == ';' => {
                if !cur.trim().is_empty() {
                    out.push(cur.trim().to_string());
                }
                cur.clear();
            }
            None => {
                if matches!(c, '\'' | '"' | '`') {
                    quote = Some(c);
                }
                cur.push(c);
            }
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

/// A MySQL string literal.
fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn render(stmt: &str, vars: &[(&str, &str)]) -> String {
    let mut s = stmt.to_string();
    for (k, v) in vars {
        s = s.replace(&format!("{{{{{k}}}}}"), v);
    }
    s
}

fn format_expiration(t: SystemTime) -> String {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs() as i64;
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    time::OffsetDateTime::from_unix_timestamp(secs).ok().and_then(|d| d.format(&fmt).ok()).unwrap_or_default()
}

impl State {
    fn scrub(&self, what: &str, e: &dyn std::fmt::Display) -> LogicalError {
        let mut msg = format!("{what}: {e}");
        for s in &self.secrets {
            if !s.is_empty() {
                msg = msg.replace(s.as_str(), "[redacted]");
            }
        }
        bad(msg)
    }

    async fn conn(&mut self) -> Result<&mut mysql_async::Conn> {
        if self.conn.is_none() {
            let opts = self.opts.clone().ok_or_else(|| bad("the connection is not initialised"))?;
            let c = tokio::time::timeout(Duration::from_secs(10), mysql_async::Conn::new(opts))
                .await
                .map_err(|e| bad("failed to connect to MySQL: timed out after 10s").with_source(e))?
                .map_err(|e| self.scrub("failed to connect to MySQL", &e))?;
            self.conn = Some(c);
        }
        Ok(self.conn.as_mut().expect("set above"))
    }

    /// Runs every statement of `commands` (rendered with `vars`) in order.
    async fn run(&mut self, commands: &[String], vars: &[(&str, &str)]) -> Result<()> {
        let stmts: Vec<String> = commands.iter().flat_map(|c| split_statements(&render(c, vars))).collect();
        for s in &stmts {
            let r = self.conn().await?.query_drop(s.as_str()).await;
            if let Err(e) = r {
                // A broken connection is opened anew next time.
                if !matches!(e, mysql_async::Error::Server(_)) {
                    self.conn = None;
                }
                return Err(self.scrub("statement failed", &e));
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Database for MySql {
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
        let rendered = Zeroizing::new(url.replace("{{username}}", &username).replace("{{password}}", &password));
        let dsn = parse_dsn(&rendered)?;
        let mut b = mysql_async::OptsBuilder::default()
            .user(Some(if dsn.user.is_empty() { username.clone() } else { dsn.user.clone() }))
            .pass(Some(if dsn.password.is_empty() { password.to_string() } else { dsn.password.clone() }))
            .db_name(if dsn.db.is_empty() { None } else { Some(dsn.db.clone()) });
        match dsn.proto.as_str() {
            "tcp" => {
                let (host, port) = match dsn.address.rsplit_once(':') {
                    Some((h, p)) => (
                        h.trim_matches(['[', ']']).to_string(),
                        p.parse::<u16>().map_err(|e| bad("invalid port in connection_url").with_source(e))?,
                    ),
                    None => (dsn.address.clone(), 3306),
                };
                b = b.ip_or_hostname(host).tcp_port(port).prefer_socket(false);
            }
            "unix" => b = b.socket(Some(dsn.address.clone())),
            other => return Err(bad(format!("unsupported protocol {other:?} in connection_url (tcp or unix)"))),
        }
        let tls_ca = get("tls_ca");
        let mut tls = "false".to_string();
        for (k, v) in &dsn.params {
            match k.as_str() {
                "tls" => tls = v.clone(),
                other => return Err(bad(format!("unsupported connection_url parameter {other:?} for {PLUGIN_NAME}"))),
            }
        }
        let mut ssl = mysql_async::SslOpts::default();
        if !tls_ca.is_empty() {
            ssl = ssl.with_root_certs(vec![tls_ca.into_bytes().into()]);
        }
        let ssl = match tls.as_str() {
            "false" | "" => None,
            "true" => Some(ssl),
            "skip-verify" | "preferred" => Some(ssl.with_danger_accept_invalid_certs(true)),
            other => {
                return Err(bad(format!(
                    "invalid tls parameter {other:?}: expected true, false, skip-verify or preferred"
                )))
            }
        };
        b = b.ssl_opts(ssl);
        let template = get("username_template");
        if !template.is_empty() {
            render_username_template(&template, &Default::default())?;
        }
        let mut st = self.state.lock().await;
        if let Some(c) = st.conn.take() {
            let _ = c.disconnect().await;
        }
        st.opts = Some(b.into());
        st.username_template = if template.is_empty() { DEFAULT_USERNAME_TEMPLATE.into() } else { template };
        st.secrets = vec![password.clone()];
        if req.verify_connection {
            let r = st.conn().await?.ping().await;
            if let Err(e) = r {
                st.conn = None;
                return Err(st.scrub("error verifying connection", &e));
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
        let mut st = self.state.lock().await;
        if st.opts.is_none() {
            return Err(bad("the connection is not initialised"));
        }
        let username = render_username_template(&st.username_template, &req.username_config)?;
        let expiration = req.expiration.map(format_expiration).unwrap_or_default();
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
        let mut st = self.state.lock().await;
        if let Some(change) = &req.password {
            let pw = change.new_password.expose();
            st.secrets.push(Zeroizing::new(pw.to_string()));
            let r = if change.statements.commands.is_empty() {
                let stmt =
                    format!("ALTER USER {}@'%' IDENTIFIED BY {}", quote_literal(&req.username), quote_literal(pw));
                st.run(&[stmt], &[]).await
            } else {
                let vars = [("name", req.username.as_str()), ("username", req.username.as_str()), ("password", pw)];
                st.run(&change.statements.commands, &vars).await
            };
            st.secrets.pop();
            r?;
        }
        if let Some(change) = &req.expiration {
            // MySQL users do not expire: only explicit renew statements do something.
            if !change.statements.commands.is_empty() {
                let exp = format_expiration(change.new_expiration);
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
        let mut st = self.state.lock().await;
        let vars = [("name", req.username.as_str()), ("username", req.username.as_str())];
        if !req.statements.commands.is_empty() {
            return st.run(&req.statements.commands, &vars).await;
        }
        let user = format!("{}@'%'", quote_literal(&req.username));
        let stmts = [format!("REVOKE ALL PRIVILEGES, GRANT OPTION FROM {user}"), format!("DROP USER IF EXISTS {user}")];
        // A user that never got a privilege makes REVOKE fail: dropping it is what matters.
        if let Err(e) = st.run(&stmts[..1], &[]).await {
            tracing::debug!(error = %e, "REVOKE before DROP USER failed");
        }
        st.run(&stmts[1..], &[]).await
    }

    async fn close(&self) -> Result<()> {
        let mut st = self.state.lock().await;
        if let Some(c) = st.conn.take() {
            let _ = c.disconnect().await;
        }
        st.opts = None;
        st.secrets.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_dsns_are_parsed() {
        let d = parse_dsn("u:p@w@tcp(127.0.0.1:3306)/app?tls=skip-verify").unwrap();
        assert_eq!((d.user.as_str(), d.password.as_str()), ("u", "p@w"));
        assert_eq!((d.proto.as_str(), d.address.as_str(), d.db.as_str()), ("tcp", "127.0.0.1:3306", "app"));
        assert_eq!(d.params, vec![("tls".into(), "skip-verify".into())]);
        let d = parse_dsn("root@unix(/run/mysqld/mysqld.sock)/").unwrap();
        assert_eq!((d.user.as_str(), d.proto.as_str(), d.db.as_str()), ("root", "unix", ""));
        assert!(parse_dsn("mysql://u:p@host/db").is_err());
    }

    #[test]
    fn statements_split_at_semicolons_outside_quotes() {
        assert_eq!(
            split_statements("CREATE USER 'a;b'@'%' IDENTIFIED BY 'x;y'; GRANT SELECT ON *.* TO 'a;b'@'%';"),
            vec!["CREATE USER 'a;b'@'%' IDENTIFIED BY 'x;y'", "GRANT SELECT ON *.* TO 'a;b'@'%'"]
        );
        assert_eq!(quote_literal("o'k\\"), "'o\\'k\\\\'");
    }
}
