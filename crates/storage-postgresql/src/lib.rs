//! PostgreSQL storage: every entry is one row `(key bytea primary key, value bytea)` in a table
//! the backend creates when it is missing. Requests borrow a connection from a pool
//! (deadpool-postgres) and run prepared statements cached per connection. A `put` returns once
//! PostgreSQL has committed it (with the server's default `synchronous_commit = on`, flushed to
//! its WAL). Keys are stored as bytes so that the table's order is plain byte order and a
//! listing is one index range scan.
//!
//! With `ha_enabled`, [`PgStorage::ha_lock`] gives the HA lock: a session advisory lock held on
//! a dedicated connection (see `docs/decisions/0009-postgresql-ha-advisory-lock.md`), and while
//! this node holds it every write is fenced by the lock's generation (see `fence.rs` and
//! `docs/decisions/0025-postgresql-ha-fencing.md`): a node that lost the lock cannot write.
//!
//! Errors never include the connection URL (it may carry a password): they name the host,
//! port, database and user only.
#![forbid(unsafe_code)]

use async_trait::async_trait;
use coffer_physical::{check_key, children_of, Storage, StorageError, TxnOp};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio_postgres::NoTls;

mod fence;
mod ha;
use fence::{Fence, FenceCell};
pub use ha::{HaLock, Leader, LockHeld};

/// Default table names (Vault's are `vault_kv_store` / `vault_ha_locks`; ours hold a
/// different layout, so they are named differently to never mix the two).
pub const DEFAULT_TABLE: &str = "coffer_kv_store";
pub const DEFAULT_HA_TABLE: &str = "coffer_ha_locks";
/// Vault's default for `max_parallel`.
pub const DEFAULT_MAX_PARALLEL: usize = 128;

/// The options of a `storage "postgresql" { … }` stanza, with Vault's names.
#[derive(Clone)]
pub struct PgOptions {
    connection_url: String,
    pub table: String,
    pub ha_enabled: bool,
    pub ha_table: String,
    pub max_parallel: usize,
    /// 0: idle connections are kept (up to `max_parallel`).
    pub max_idle_connections: usize,
}

impl std::fmt::Debug for PgOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgOptions")
            .field("connection_url", &"<redacted>")
            .field("table", &self.table)
            .field("ha_enabled", &self.ha_enabled)
            .field("ha_table", &self.ha_table)
            .field("max_parallel", &self.max_parallel)
            .field("max_idle_connections", &self.max_idle_connections)
            .finish()
    }
}

/// Why the PostgreSQL backend could not be configured, opened or used for HA. Messages name
/// the server (host, port, database, user), never the password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgError {
    #[error("storage \"postgresql\": unknown option {0:?}")]
    UnknownOption(String),
    #[error("storage \"postgresql\" needs connection_url (or the VAULT_PG_CONNECTION_URL environment variable)")]
    MissingUrl,
    #[error("storage \"postgresql\": {option} must be \"true\" or \"false\", not {value:?}")]
    NotABool { option: &'static str, value: String },
    #[error("storage \"postgresql\": {option} must be a whole number, not {value:?}")]
    NotACount {
        option: &'static str,
        value: String,
        #[source]
        source: std::num::ParseIntError,
    },
    #[error("storage \"postgresql\": max_parallel must be at least 1")]
    NoParallelism,
    #[error(
        "storage \"postgresql\": {option} {name:?} is not a valid table name (letters, digits and '_', optionally schema.table)"
    )]
    TableName { option: &'static str, name: String },
    #[error("storage \"postgresql\": invalid connection_url: {}", chain(.0))]
    Url(#[source] tokio_postgres::Error),
    #[error("storage \"postgresql\": {0}")]
    Tls(#[source] coffer_pg_tls::PgTlsError),
    #[error("storage \"postgresql\": {0}")]
    Pool(#[source] deadpool_postgres::BuildError),
    #[error("cannot connect to {target}: {}", chain(.source))]
    Connect {
        target: String,
        #[source]
        source: deadpool_postgres::PoolError,
    },
    #[error("cannot create table {table} on {target}: {}", chain(.source))]
    CreateTable {
        table: String,
        target: String,
        #[source]
        source: tokio_postgres::Error,
    },
    /// A statement or connection of the HA lock failed.
    #[error("{target}: {}", chain(.source))]
    Query {
        target: String,
        #[source]
        source: tokio_postgres::Error,
    },
}

fn parse_bool(option: &'static str, v: &str) -> Result<bool, PgError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "t" => Ok(true),
        "false" | "0" | "f" | "" => Ok(false),
        _ => Err(PgError::NotABool { option, value: v.to_string() }),
    }
}

fn parse_count(option: &'static str, v: &str) -> Result<usize, PgError> {
    v.trim().parse::<usize>().map_err(|source| PgError::NotACount { option, value: v.to_string(), source })
}

/// A table name: `name` or `schema.name`, each part `[A-Za-z_][A-Za-z0-9_]*`. Returned quoted.
fn quote_table(name: &str, option: &'static str) -> Result<String, PgError> {
    let parts: Vec<&str> = name.split('.').collect();
    let ok = parts.len() <= 2
        && parts.iter().all(|p| {
            let mut c = p.chars();
            matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_')
                && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
        });
    if !ok {
        return Err(PgError::TableName { option, name: name.to_string() });
    }
    Ok(parts.iter().map(|p| format!("\"{p}\"")).collect::<Vec<_>>().join("."))
}

impl PgOptions {
    /// Reads the stanza's options; `connection_url` may come from `VAULT_PG_CONNECTION_URL`
    /// (or `BAO_PG_CONNECTION_URL`) through `env` instead, as with Vault.
    pub fn from_map(options: &BTreeMap<String, String>, env: impl Fn(&str) -> Option<String>) -> Result<Self, PgError> {
        for k in options.keys() {
            if !matches!(
                k.as_str(),
                "connection_url" | "table" | "ha_enabled" | "ha_table" | "max_parallel" | "max_idle_connections"
            ) {
                return Err(PgError::UnknownOption(k.clone()));
            }
        }
        let connection_url = options
            .get("connection_url")
            .filter(|v| !v.is_empty())
            .cloned()
            .or_else(|| env("BAO_PG_CONNECTION_URL").filter(|v| !v.is_empty()))
            .or_else(|| env("VAULT_PG_CONNECTION_URL").filter(|v| !v.is_empty()))
            .ok_or(PgError::MissingUrl)?;
        let table = options.get("table").cloned().unwrap_or_else(|| DEFAULT_TABLE.into());
        let ha_table = options.get("ha_table").cloned().unwrap_or_else(|| DEFAULT_HA_TABLE.into());
        quote_table(&table, "table")?;
        quote_table(&ha_table, "ha_table")?;
        let max_parallel = match options.get("max_parallel") {
            Some(v) => parse_count("max_parallel", v)?,
            None => DEFAULT_MAX_PARALLEL,
        };
        if max_parallel == 0 {
            return Err(PgError::NoParallelism);
        }
        Ok(PgOptions {
            connection_url,
            table,
            ha_enabled: options.get("ha_enabled").map(|v| parse_bool("ha_enabled", v)).transpose()?.unwrap_or(false),
            ha_table,
            max_parallel,
            max_idle_connections: options
                .get("max_idle_connections")
                .map(|v| parse_count("max_idle_connections", v))
                .transpose()?
                .unwrap_or(0),
        })
    }

    /// Options for a connection URL with every other setting at its default.
    pub fn with_url(url: &str) -> Self {
        PgOptions {
            connection_url: url.to_string(),
            table: DEFAULT_TABLE.into(),
            ha_enabled: false,
            ha_table: DEFAULT_HA_TABLE.into(),
            max_parallel: 16,
            max_idle_connections: 0,
        }
    }
}

/// Formats an error with its whole `source()` chain (tokio-postgres puts the useful part, such
/// as the server's message, in the source). Connection errors never carry the URL.
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

/// Where we connect, for error messages: never the password.
fn describe(cfg: &tokio_postgres::Config) -> String {
    let host = cfg
        .get_hosts()
        .iter()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(s) => s.clone(),
            tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .collect::<Vec<_>>()
        .join(",");
    let port = cfg.get_ports().iter().map(|p| p.to_string()).collect::<Vec<_>>().join(",");
    format!(
        "PostgreSQL at {}:{} (database {:?}, user {:?})",
        if host.is_empty() { "localhost" } else { &host },
        if port.is_empty() { "5432" } else { &port },
        cfg.get_dbname().unwrap_or("-"),
        cfg.get_user().unwrap_or("-")
    )
}

/// The connection's settings and its TLS connector (`None` with `sslmode=disable`): libpq's
/// `sslmode` (default `prefer`), `sslrootcert`, `sslcert` and `sslkey`, in the URL's query or
/// the `key=value` string.
pub(crate) fn parse_url(url: &str) -> Result<(tokio_postgres::Config, Option<coffer_pg_tls::MakeRustls>), PgError> {
    let (rest, tls_options) = coffer_pg_tls::split_tls_options(url);
    let mut cfg: tokio_postgres::Config = rest.parse().map_err(PgError::Url)?;
    let tls = coffer_pg_tls::choose(&tls_options).map_err(PgError::Tls)?;
    cfg.ssl_mode(tls.ssl_mode);
    if cfg.get_connect_timeout().is_none() {
        cfg.connect_timeout(Duration::from_secs(5));
    }
    cfg.keepalives(true);
    cfg.keepalives_idle(Duration::from_secs(5));
    cfg.application_name("coffer");
    Ok((cfg, tls.connector))
}

struct Sql {
    export: String,
    get: String,
    put: String,
    delete: String,
    list_range: String,
    list_from: String,
    /// One fenced write (with `ha_enabled`): `$1` the generation, `$2` the keys to delete,
    /// `$3`/`$4` the keys and values to put (disjoint from `$2`, no key twice). Returns 1 when
    /// the generation was current (the write is applied), 0 when it was stale (nothing changed).
    fenced: String,
}

/// The PostgreSQL backend.
pub struct PgStorage {
    pool: Pool,
    sql: Sql,
    options: PgOptions,
    pg_config: tokio_postgres::Config,
    tls: Option<coffer_pg_tls::MakeRustls>,
    target: String,
    fence: std::sync::Arc<FenceCell>,
}

fn unavailable(target: &str, e: impl std::error::Error + Send + Sync + 'static) -> StorageError {
    StorageError::unavailable(target, PgCause(Box::new(e)))
}

/// A PostgreSQL error whose `Display` is its whole chain (tokio-postgres keeps the server's
/// message in the source), kept as a storage error's cause.
#[derive(Debug)]
struct PgCause(Box<dyn std::error::Error + Send + Sync>);

impl std::fmt::Display for PgCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&chain(self.0.as_ref()))
    }
}

impl std::error::Error for PgCause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.0.as_ref())
    }
}

/// The smallest byte string greater than every string starting with `prefix`, or `None` when
/// there is none (empty prefix, or only 0xFF bytes).
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

impl PgStorage {
    /// Connects, checks the credentials and creates the table(s) when missing. Fails with a
    /// message naming the server (not the password) when it cannot.
    pub async fn open(options: PgOptions) -> Result<Self, PgError> {
        let (pg_config, tls) = parse_url(&options.connection_url)?;
        let target = describe(&pg_config);
        let table = quote_table(&options.table, "table")?;
        let mc = ManagerConfig { recycling_method: RecyclingMethod::Fast };
        let mgr = match &tls {
            Some(t) => Manager::from_config(pg_config.clone(), t.clone(), mc),
            None => Manager::from_config(pg_config.clone(), NoTls, mc),
        };
        let pool = Pool::builder(mgr)
            .max_size(options.max_parallel)
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(Duration::from_secs(10)))
            .wait_timeout(Some(Duration::from_secs(30)))
            .recycle_timeout(Some(Duration::from_secs(5)))
            .build()
            .map_err(PgError::Pool)?;
        let client = pool.get().await.map_err(|source| PgError::Connect { target: target.clone(), source })?;
        let create = format!("CREATE TABLE IF NOT EXISTS {table} (key BYTEA PRIMARY KEY, value BYTEA NOT NULL)");
        client.batch_execute(&create).await.map_err(|source| PgError::CreateTable {
            table: table.clone(),
            target: target.clone(),
            source,
        })?;
        if options.ha_enabled {
            ha::create_table(&client, &options.ha_table, &target).await?;
        }
        drop(client);
        let sql = Sql {
            export: format!("SELECT key, value FROM {table} ORDER BY key"),
            get: format!("SELECT value FROM {table} WHERE key = $1"),
            put: format!(
                "INSERT INTO {table} (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
            ),
            delete: format!("DELETE FROM {table} WHERE key = $1"),
            list_range: format!("SELECT key FROM {table} WHERE key >= $1 AND key < $2 ORDER BY key"),
            list_from: format!("SELECT key FROM {table} WHERE key >= $1 ORDER BY key"),
            fenced: {
                let ha = quote_table(&options.ha_table, "ha_table")?;
                // The FOR SHARE row lock is what orders this write before a new holder's
                // increment of the generation (decision 0025); the CTE is referenced three
                // times, so it is evaluated (and the row locked) once.
                format!(
                    "WITH f AS (SELECT 1 FROM {ha} WHERE ha_key = 'core/lock' AND generation = $1 FOR SHARE), \
                     d AS (DELETE FROM {table} WHERE key = ANY($2::bytea[]) AND EXISTS (SELECT 1 FROM f)), \
                     p AS (INSERT INTO {table} (key, value) SELECT k, v FROM unnest($3::bytea[], $4::bytea[]) AS u(k, v) \
                     WHERE EXISTS (SELECT 1 FROM f) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value) \
                     SELECT count(*) FROM f"
                )
            },
        };
        if options.max_idle_connections > 0 {
            let weak = pool.weak();
            let keep = options.max_idle_connections;
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(10)).await;
                    let Some(pool) = weak.upgrade() else { return };
                    let mut kept = 0usize;
                    pool.retain(|_, _| {
                        kept += 1;
                        kept <= keep
                    });
                }
            });
        }
        tracing::info!("storage \"postgresql\": connected to {target}, table {}", options.table);
        Ok(PgStorage { pool, sql, options, pg_config, tls, target, fence: FenceCell::new() })
    }

    pub fn options(&self) -> &PgOptions {
        &self.options
    }

    /// Where this backend connects, without the password (for messages).
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Deletes every row of the table (tests only need this; the server never calls it).
    pub async fn clear_for_tests(&self) -> Result<(), StorageError> {
        let client = self.client().await?;
        let table = quote_table(&self.options.table, "table").map_err(|e| StorageError::backend("clear", e))?;
        client.batch_execute(&format!("DELETE FROM {table}")).await.map_err(|e| unavailable(&self.target, e))
    }

    /// The HA lock on this database (a dedicated connection, not one of the pool's).
    pub fn ha_lock(&self) -> HaLock {
        HaLock::new(
            self.pg_config.clone(),
            self.tls.clone(),
            self.target.clone(),
            self.options.ha_table.clone(),
            self.fence.clone(),
        )
    }

    /// Writes `puts` and deletes `dels` (disjoint) in one statement fenced by `generation`.
    async fn fenced_write(&self, generation: i64, dels: &[&[u8]], puts: &[(&[u8], &[u8])]) -> Result<(), StorageError> {
        let c = self.client().await?;
        let st = c.prepare_cached(&self.sql.fenced).await.map_err(|e| unavailable(&self.target, e))?;
        let keys: Vec<&[u8]> = puts.iter().map(|(k, _)| *k).collect();
        let values: Vec<&[u8]> = puts.iter().map(|(_, v)| *v).collect();
        let row =
            c.query_one(&st, &[&generation, &dels, &keys, &values]).await.map_err(|e| unavailable(&self.target, e))?;
        let current: i64 = row.try_get(0).map_err(|e| StorageError::backend("reading a row", PgCause(Box::new(e))))?;
        if current == 1 {
            return Ok(());
        }
        tracing::error!(
            generation,
            "a write found the HA lock's generation changed: another node took the lock; this node steps down"
        );
        self.fence.lose(generation);
        Err(fence::refused(&format!(
            "this node's HA lock (generation {generation}) was superseded: another node has taken the lock; \
             this node is no longer the active node"
        )))
    }

    /// `Some(generation)` when writes must be fenced, `None` when they need not; an error when
    /// this node lost the lock it held.
    fn fence_for_write(&self) -> Result<Option<i64>, StorageError> {
        match self.fence.get() {
            Fence::Open => Ok(None),
            Fence::Held(g) => Ok(Some(g)),
            Fence::Standby(Some(g)) => Err(fence::refused(&format!(
                "this node's HA lock (generation {g}) is lost or was given up; this node is a standby"
            ))),
            Fence::Standby(None) => Err(fence::refused("this node is an HA standby: only the active node writes")),
        }
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StorageError> {
        self.pool.get().await.map_err(|e| unavailable(&self.target, e))
    }
}

#[async_trait]
impl Storage for PgStorage {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        check_key(key)?;
        let c = self.client().await?;
        let st = c.prepare_cached(&self.sql.get).await.map_err(|e| unavailable(&self.target, e))?;
        let row = c.query_opt(&st, &[&key.as_bytes()]).await.map_err(|e| unavailable(&self.target, e))?;
        row.map(|r| {
            r.try_get::<_, Vec<u8>>(0).map_err(|e| StorageError::backend("reading a row", PgCause(Box::new(e))))
        })
        .transpose()
    }

    async fn put(&self, key: &str, value: Vec<u8>) -> Result<(), StorageError> {
        check_key(key)?;
        if let Some(g) = self.fence_for_write()? {
            return self.fenced_write(g, &[], &[(key.as_bytes(), &value)]).await;
        }
        let c = self.client().await?;
        let st = c.prepare_cached(&self.sql.put).await.map_err(|e| unavailable(&self.target, e))?;
        c.execute(&st, &[&key.as_bytes(), &value]).await.map_err(|e| unavailable(&self.target, e))?;
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        check_key(key)?;
        if let Some(g) = self.fence_for_write()? {
            return self.fenced_write(g, &[key.as_bytes()], &[]).await;
        }
        let c = self.client().await?;
        let st = c.prepare_cached(&self.sql.delete).await.map_err(|e| unavailable(&self.target, e))?;
        c.execute(&st, &[&key.as_bytes()]).await.map_err(|e| unavailable(&self.target, e))?;
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let c = self.client().await?;
        let rows = match prefix_end(prefix.as_bytes()) {
            Some(end) => {
                let st = c.prepare_cached(&self.sql.list_range).await.map_err(|e| unavailable(&self.target, e))?;
                c.query(&st, &[&prefix.as_bytes(), &end]).await
            }
            None => {
                let st = c.prepare_cached(&self.sql.list_from).await.map_err(|e| unavailable(&self.target, e))?;
                c.query(&st, &[&prefix.as_bytes()]).await
            }
        }
        .map_err(|e| unavailable(&self.target, e))?;
        let mut keys = Vec::with_capacity(rows.len());
        for r in rows {
            let k: Vec<u8> = r.try_get(0).map_err(|e| StorageError::backend("reading a row", PgCause(Box::new(e))))?;
            keys.push(
                String::from_utf8(k).map_err(|e| StorageError::backend("stored key is not UTF-8", e.utf8_error()))?,
            );
        }
        Ok(children_of(prefix, keys.iter().map(String::as_str)))
    }

    async fn transaction(&self, ops: Vec<TxnOp>) -> Result<(), StorageError> {
        for op in &ops {
            match op {
                TxnOp::Put { key, .. } | TxnOp::Delete { key } => check_key(key)?,
            }
        }
        if let Some(g) = self.fence_for_write()? {
            // One statement: the last operation on each key decides its fate.
            let mut last: BTreeMap<&[u8], Option<&[u8]>> = BTreeMap::new();
            for op in &ops {
                match op {
                    TxnOp::Put { key, value } => last.insert(key.as_bytes(), Some(value.as_slice())),
                    TxnOp::Delete { key } => last.insert(key.as_bytes(), None),
                };
            }
            let dels: Vec<&[u8]> = last.iter().filter(|(_, v)| v.is_none()).map(|(k, _)| *k).collect();
            let puts: Vec<(&[u8], &[u8])> = last.iter().filter_map(|(k, v)| v.map(|v| (*k, v))).collect();
            return self.fenced_write(g, &dels, &puts).await;
        }
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(|e| unavailable(&self.target, e))?;
        let put = tx.prepare_cached(&self.sql.put).await.map_err(|e| unavailable(&self.target, e))?;
        let del = tx.prepare_cached(&self.sql.delete).await.map_err(|e| unavailable(&self.target, e))?;
        for op in &ops {
            let r = match op {
                TxnOp::Put { key, value } => tx.execute(&put, &[&key.as_bytes(), value]).await,
                TxnOp::Delete { key } => tx.execute(&del, &[&key.as_bytes()]).await,
            };
            r.map_err(|e| unavailable(&self.target, e))?;
        }
        tx.commit().await.map_err(|e| unavailable(&self.target, e))
    }

    fn kind(&self) -> &'static str {
        "postgresql"
    }

    /// One `REPEATABLE READ` read-only transaction: every row as of its start, while writes go on.
    async fn export(&self) -> Result<Vec<(String, Vec<u8>)>, StorageError> {
        let mut c = self.client().await?;
        let tx = c
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(|e| unavailable(&self.target, e))?;
        let rows = tx.query(&self.sql.export, &[]).await.map_err(|e| unavailable(&self.target, e))?;
        tx.commit().await.map_err(|e| unavailable(&self.target, e))?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let k: Vec<u8> = r.try_get(0).map_err(|e| StorageError::backend("reading a row", PgCause(Box::new(e))))?;
            let v: Vec<u8> = r.try_get(1).map_err(|e| StorageError::backend("reading a row", PgCause(Box::new(e))))?;
            let k =
                String::from_utf8(k).map_err(|e| StorageError::backend("stored key is not UTF-8", e.utf8_error()))?;
            out.push((k, v));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_is_the_next_byte_string() {
        assert_eq!(prefix_end(b""), None);
        assert_eq!(prefix_end(b"a/"), Some(b"a0".to_vec()));
        assert_eq!(prefix_end(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xff\xff"), None);
    }

    #[test]
    fn options_use_vault_names_and_env() {
        let mut m = BTreeMap::new();
        m.insert("ha_enabled".to_string(), "true".to_string());
        m.insert("max_parallel".to_string(), "4".to_string());
        let o = PgOptions::from_map(&m, |k| (k == "VAULT_PG_CONNECTION_URL").then(|| "postgres://u:p@h/db".into()))
            .unwrap();
        assert!(o.ha_enabled);
        assert_eq!(o.max_parallel, 4);
        assert_eq!(o.table, DEFAULT_TABLE);
        assert!(!format!("{o:?}").contains("u:p"), "Debug hides the URL");
        assert!(PgOptions::from_map(&BTreeMap::new(), |_| None).is_err(), "URL required");
        m.insert("table".into(), "x; drop table y".into());
        assert!(PgOptions::from_map(&m, |_| Some("postgres://h/db".into())).is_err(), "table names checked");
        let mut bad = BTreeMap::new();
        bad.insert("conection_url".to_string(), "x".to_string());
        assert!(PgOptions::from_map(&bad, |_| None).unwrap_err().to_string().contains("unknown option"));
    }

    #[test]
    fn tls_options_are_taken_and_bad_ones_named_without_the_password() {
        let (cfg, tls) = parse_url("postgres://u:pw@h/db?sslmode=require").unwrap();
        assert_eq!(cfg.get_ssl_mode(), tokio_postgres::config::SslMode::Require);
        assert!(tls.is_some());
        let (_, tls) = parse_url("postgres://u:pw@h/db?sslmode=disable").unwrap();
        assert!(tls.is_none());
        let e = parse_url("postgres://u:pw@h/db?sslmode=verify-full&sslrootcert=/nonexistent.pem")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("cannot read sslrootcert") && !e.contains("pw"), "{e}");
    }

    #[test]
    fn errors_do_not_show_the_password() {
        let (cfg, _) = parse_url("postgres://alice:s3cret@db.example:6543/vault").unwrap();
        let d = describe(&cfg);
        assert!(d.contains("db.example:6543") && d.contains("alice") && !d.contains("s3cret"), "{d}");
    }
}
