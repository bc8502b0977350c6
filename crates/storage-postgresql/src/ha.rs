//! The HA lock: a PostgreSQL session advisory lock taken with `pg_try_advisory_lock` on a
//! connection of its own. PostgreSQL frees the lock when that session ends, so a holder killed
//! with SIGKILL (its socket closed by the kernel) frees it at once. The holder writes who it is
//! (its `api_addr`, an id, its backend pid) into the `ha_table`; readers trust that row only
//! while `pg_locks` shows that very backend holding the lock, so a stale row never names a
//! leader. The holder pings its connection every [`PING_EVERY`]; when the connection dies or a
//! ping fails, [`LockHeld::lost`] fires and the node must stop acting as active.
//!
//! Taking the lock also increments the lock row's `generation`, which fences the holder's
//! writes (see `fence.rs`): a write that finds the generation changed fires `lost` too.

use crate::fence::FenceCell;
use crate::{chain, quote_table, PgError};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_postgres::NoTls;

/// How often the holder checks that its lock connection is alive.
pub const PING_EVERY: Duration = Duration::from_millis(500);
/// How often a standby records itself in the HA table (for `sys/ha-status`).
pub const ECHO_EVERY: Duration = Duration::from_secs(2);
const PING_TIMEOUT: Duration = Duration::from_secs(2);

pub(crate) async fn create_table(client: &tokio_postgres::Client, ha_table: &str, target: &str) -> Result<(), PgError> {
    let t = quote_table(ha_table, "ha_table")?;
    client
        .batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS {t} (ha_key TEXT COLLATE \"C\" PRIMARY KEY, ha_identity TEXT NOT NULL, \
             ha_value TEXT NOT NULL, pid INTEGER NOT NULL, acquired TIMESTAMPTZ NOT NULL DEFAULT now())"
        ))
        .await
        .map_err(|source| PgError::CreateTable { table: ha_table.to_string(), target: target.to_string(), source })?;
    // The fencing generation (decision 0025), added to tables made before it existed. Checked
    // first: ALTER TABLE takes an exclusive lock even when the column is already there.
    let (schema, name) = match ha_table.split_once('.') {
        Some((s, n)) => (Some(s), n),
        None => (None, ha_table),
    };
    let has: bool = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_name = $1 \
             AND column_name = 'generation' AND table_schema = COALESCE($2, current_schema()))",
            &[&name, &schema],
        )
        .await
        .and_then(|r| r.try_get(0))
        .map_err(|source| PgError::CreateTable { table: ha_table.to_string(), target: target.to_string(), source })?;
    if !has {
        client
            .batch_execute(&format!("ALTER TABLE {t} ADD COLUMN IF NOT EXISTS generation BIGINT NOT NULL DEFAULT 0"))
            .await
            .map_err(|source| PgError::CreateTable {
                table: ha_table.to_string(),
                target: target.to_string(),
                source,
            })?;
    }
    Ok(())
}

/// A 64-bit FNV-1a hash of the HA table name: the advisory lock's key, so two Coffer clusters
/// sharing one database with different `ha_table`s do not contend.
fn lock_key(ha_table: &str) -> i64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in format!("coffer-ha:{ha_table}").bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h as i64
}

/// The lock of one database and HA table.
///
/// A standby polls on one kept connection (`session`) rather than connecting for every try;
/// when it gets the lock, that connection becomes the lock's and the next try connects anew.
#[derive(Clone)]
pub struct HaLock {
    pg_config: tokio_postgres::Config,
    tls: Option<coffer_pg_tls::MakeRustls>,
    target: String,
    ha_table: String,
    key: i64,
    session: std::sync::Arc<tokio::sync::Mutex<Option<Session>>>,
    last_echo: std::sync::Arc<std::sync::Mutex<Option<std::time::Instant>>>,
    fence: Arc<FenceCell>,
}

/// Dropping the client ends the connection (its task then returns).
struct Session {
    client: tokio_postgres::Client,
    task: tokio::task::JoinHandle<()>,
}

/// The current holder, as recorded in the HA table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leader {
    pub identity: String,
    pub api_addr: String,
    pub since: std::time::SystemTime,
}

/// The lock, held. Dropping it (or [`LockHeld::release`]) ends the session and frees the lock.
pub struct LockHeld {
    client: std::sync::Arc<tokio_postgres::Client>,
    lost: watch::Receiver<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    fence: Arc<FenceCell>,
    generation: i64,
}

impl HaLock {
    pub(crate) fn new(
        pg_config: tokio_postgres::Config,
        tls: Option<coffer_pg_tls::MakeRustls>,
        target: String,
        ha_table: String,
        fence: Arc<FenceCell>,
    ) -> Self {
        let key = lock_key(&ha_table);
        HaLock {
            pg_config,
            tls,
            target,
            ha_table,
            key,
            session: Default::default(),
            last_echo: Default::default(),
            fence,
        }
    }

    fn query_err(&self, source: tokio_postgres::Error) -> PgError {
        PgError::Query { target: self.target.clone(), source }
    }

    async fn connect(&self) -> Result<Session, PgError> {
        fn watch<F>(conn: F) -> tokio::task::JoinHandle<()>
        where
            F: std::future::Future<Output = Result<(), tokio_postgres::Error>> + Send + 'static,
        {
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::warn!("HA lock connection ended: {}", chain(&e));
                }
            })
        }
        let (client, task) = match &self.tls {
            Some(t) => {
                let (client, conn) = self.pg_config.connect(t.clone()).await.map_err(|e| self.query_err(e))?;
                (client, watch(conn))
            }
            None => {
                let (client, conn) = self.pg_config.connect(NoTls).await.map_err(|e| self.query_err(e))?;
                (client, watch(conn))
            }
        };
        Ok(Session { client, task })
    }

    /// The kept session, or a new one.
    async fn take_session(&self) -> Result<Session, PgError> {
        match self.session.lock().await.take() {
            Some(s) if !s.client.is_closed() => Ok(s),
            _ => self.connect().await,
        }
    }

    async fn keep_session(&self, s: Session) {
        *self.session.lock().await = Some(s);
    }

    /// Tries once to take the lock. `Ok(Err(leader))`: another node holds it (or held it an
    /// instant ago: `leader` is then `None`).
    /// A standby also records `echo` (what it says about itself, for `sys/ha-status`).
    pub async fn try_acquire(
        &self,
        identity: &str,
        api_addr: &str,
        echo: &str,
    ) -> Result<Result<LockHeld, Option<Leader>>, PgError> {
        // Contending makes this node a standby as far as writes go (decision 0025).
        self.fence.contend();
        let session = self.take_session().await?;
        let got: bool = session
            .client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&self.key])
            .await
            .and_then(|r| r.try_get(0))
            .map_err(|e| self.query_err(e))?;
        if !got {
            let leader = self.leader_on(&session.client).await?;
            if self.echo_due() {
                self.echo_on(&session.client, identity, echo).await?;
            }
            self.keep_session(session).await;
            return Ok(Err(leader));
        }
        // The session is the lock's from here on.
        let Session { client, task: conn_task } = session;
        let t = quote_table(&self.ha_table, "ha_table")?;
        // Under the lock, on its session: record who holds it and take the next generation.
        // The row update waits for the writes of the previous holder that passed its fence
        // (they hold FOR SHARE on this row) and makes every later one fail.
        let generation: i64 = client
            .query_one(
                &format!(
                    "INSERT INTO {t} AS h (ha_key, ha_identity, ha_value, pid, acquired, generation) \
                     VALUES ('core/lock', $1, $2, pg_backend_pid(), now(), 1) \
                     ON CONFLICT (ha_key) DO UPDATE SET ha_identity = EXCLUDED.ha_identity, \
                     ha_value = EXCLUDED.ha_value, pid = EXCLUDED.pid, acquired = EXCLUDED.acquired, \
                     generation = h.generation + 1 RETURNING generation"
                ),
                &[&identity, &api_addr],
            )
            .await
            .and_then(|r| r.try_get(0))
            .map_err(|e| self.query_err(e))?;
        tracing::info!(generation, "took the HA lock; writes are fenced with this generation");
        let (tx, rx) = watch::channel(false);
        let tx = Arc::new(tx);
        self.fence.hold(generation, tx.clone());
        let fence = self.fence.clone();
        let client = std::sync::Arc::new(client);
        let pinger = client.clone();
        let ping_task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(PING_EVERY).await;
                let ok = matches!(tokio::time::timeout(PING_TIMEOUT, pinger.simple_query("")).await, Ok(Ok(_)));
                if !ok {
                    tracing::error!("HA lock connection lost: this node no longer holds the lock");
                    fence.lose(generation);
                    let _ = tx.send(true);
                    return;
                }
            }
        });
        Ok(Ok(LockHeld { client, lost: rx, tasks: vec![conn_task, ping_task], fence: self.fence.clone(), generation }))
    }

    /// Who holds the lock now (the HA row, trusted only while its backend holds the lock).
    pub async fn leader(&self) -> Result<Option<Leader>, PgError> {
        let session = self.take_session().await?;
        let r = self.leader_on(&session.client).await?;
        self.keep_session(session).await;
        Ok(r)
    }

    /// A standby records itself at most every [`ECHO_EVERY`].
    fn echo_due(&self) -> bool {
        let Ok(mut last) = self.last_echo.lock() else { return true };
        let due = last.is_none_or(|t| t.elapsed() >= ECHO_EVERY);
        if due {
            *last = Some(std::time::Instant::now());
        }
        due
    }

    async fn echo_on(&self, client: &tokio_postgres::Client, identity: &str, echo: &str) -> Result<(), PgError> {
        let t = quote_table(&self.ha_table, "ha_table")?;
        client
            .execute(
                &format!(
                    "INSERT INTO {t} (ha_key, ha_identity, ha_value, pid, acquired) \
                     VALUES ('node/' || $1, $1, $2, pg_backend_pid(), now()) \
                     ON CONFLICT (ha_key) DO UPDATE SET ha_value = EXCLUDED.ha_value, pid = EXCLUDED.pid, \
                     acquired = EXCLUDED.acquired"
                ),
                &[&identity, &echo],
            )
            .await
            .map_err(|e| self.query_err(e))?;
        Ok(())
    }

    /// The standbys that echoed within `within`: (identity, echo, when). Forgets the ones
    /// silent for an hour.
    pub async fn standbys(&self, within: Duration) -> Result<Vec<(String, String, std::time::SystemTime)>, PgError> {
        let t = quote_table(&self.ha_table, "ha_table")?;
        let session = self.take_session().await?;
        let err = |e| self.query_err(e);
        session
            .client
            .execute(
                &format!("DELETE FROM {t} WHERE ha_key LIKE 'node/%' AND acquired < now() - interval '1 hour'"),
                &[],
            )
            .await
            .map_err(err)?;
        let rows = session
            .client
            .query(
                &format!(
                    "SELECT ha_identity, ha_value, EXTRACT(EPOCH FROM acquired)::float8 FROM {t} \
                     WHERE ha_key LIKE 'node/%' AND acquired > now() - make_interval(secs => $1) ORDER BY ha_key"
                ),
                &[&within.as_secs_f64()],
            )
            .await
            .map_err(err)?;
        self.keep_session(session).await;
        Ok(rows
            .iter()
            .map(|r| {
                let secs: f64 = r.try_get(2).unwrap_or(0.0);
                (
                    r.try_get(0).unwrap_or_default(),
                    r.try_get(1).unwrap_or_default(),
                    std::time::UNIX_EPOCH + Duration::from_secs_f64(secs.max(0.0)),
                )
            })
            .collect())
    }

    async fn leader_on(&self, client: &tokio_postgres::Client) -> Result<Option<Leader>, PgError> {
        let t = quote_table(&self.ha_table, "ha_table")?;
        let classid = ((self.key as u64) >> 32) as u32 as i64;
        let objid = (self.key as u64 & 0xffff_ffff) as u32 as i64;
        let row = client
            .query_opt(
                &format!(
                    "SELECT ha_identity, ha_value, EXTRACT(EPOCH FROM acquired)::float8 FROM {t} h \
                     WHERE ha_key = 'core/lock' AND EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' \
                     AND l.granted AND l.pid = h.pid AND l.classid::bigint = $1 AND l.objid::bigint = $2 AND l.objsubid = 1)"
                ),
                &[&classid, &objid],
            )
            .await
            .map_err(|e| self.query_err(e))?;
        Ok(row.map(|r| {
            let secs: f64 = r.try_get(2).unwrap_or(0.0);
            Leader {
                identity: r.try_get(0).unwrap_or_default(),
                api_addr: r.try_get(1).unwrap_or_default(),
                since: std::time::UNIX_EPOCH + Duration::from_secs_f64(secs.max(0.0)),
            }
        }))
    }
}

impl LockHeld {
    /// Resolves when the lock is lost (the connection died or stopped answering).
    pub async fn lost(&mut self) {
        while !*self.lost.borrow() {
            if self.lost.changed().await.is_err() {
                return;
            }
        }
    }

    /// The generation this node's writes are fenced with while it holds the lock.
    pub fn generation(&self) -> i64 {
        self.generation
    }

    pub fn is_lost(&self) -> bool {
        *self.lost.borrow() || self.client.is_closed()
    }

    /// Frees the lock now (step-down): unlocks, then ends the session.
    pub async fn release(self) {
        // No write of ours after this point: the next holder's writes must not race ours.
        self.fence.lose(self.generation);
        let _ = tokio::time::timeout(PING_TIMEOUT, self.client.simple_query("SELECT pg_advisory_unlock_all()")).await;
        drop(self);
    }
}

impl Drop for LockHeld {
    fn drop(&mut self) {
        self.fence.lose(self.generation);
        for t in &self.tasks {
            t.abort();
        }
    }
}
