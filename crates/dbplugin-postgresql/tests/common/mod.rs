//! Helpers of the external PostgreSQL plugin binary's tests: the PostgreSQL server scripts/test starts
//! (`COFFER_TEST_PG_URL`, a user with CREATEROLE) and logins with the real `psql`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The external plugin binary cargo built for this test.
pub fn plugin_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_postgresql-database-plugin"))
}

/// The creation statement the tests' roles use.
pub const CREATE: &str = "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';";

pub fn find_on_path(cmd: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(cmd)).find(|p| p.is_file())
}

/// The parts of `COFFER_TEST_PG_URL` (`postgres://user:password@host:port/db`).
#[derive(Debug, Clone)]
pub struct Pg {
    pub user: String,
    pub password: String,
    pub host: String,
    pub port: String,
    pub db: String,
}

impl Pg {
    /// From `COFFER_TEST_PG_URL`; `None` (with a notice) when it is not set.
    pub fn from_env() -> Option<Pg> {
        let Ok(url) = std::env::var("COFFER_TEST_PG_URL") else {
            eprintln!("NOTICE: COFFER_TEST_PG_URL is not set: PostgreSQL tests skipped (scripts/test sets it)");
            return None;
        };
        let rest = url.strip_prefix("postgres://").or_else(|| url.strip_prefix("postgresql://")).expect("postgres URL");
        let (cred, hostpart) = rest.rsplit_once('@').expect("user:password@ in COFFER_TEST_PG_URL");
        let (user, password) = cred.split_once(':').expect("user:password in COFFER_TEST_PG_URL");
        let (hostport, db) = hostpart.split_once('/').expect("/db in COFFER_TEST_PG_URL");
        let db = db.split('?').next().unwrap_or(db);
        let (host, port) = hostport.rsplit_once(':').unwrap_or((hostport, "5432"));
        Some(Pg { user: user.into(), password: password.into(), host: host.into(), port: port.into(), db: db.into() })
    }

    /// The `connection_url` template a database connection is configured with.
    pub fn template(&self) -> String {
        format!("postgres://{{{{username}}}}:{{{{password}}}}@{}:{}/{}", self.host, self.port, self.db)
    }

    /// Logs in as `user` with the real `psql` and returns `current_user`, or psql's error.
    pub fn login(&self, user: &str, password: &str) -> Result<String, String> {
        let out = Command::new("psql")
            .args(["-h", &self.host, "-p", &self.port, "-U", user, "-d", &self.db, "-tA", "-c", "SELECT current_user"])
            .env("PGPASSWORD", password)
            .env("PGCONNECT_TIMEOUT", "10")
            .env_remove("PGSERVICE")
            .output()
            .expect("psql runs");
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Whether a role of that name exists (asked as the plugin's own user).
    pub fn role_exists(&self, role: &str) -> bool {
        let q = format!("SELECT count(*) FROM pg_roles WHERE rolname = '{}'", role.replace('\'', "''"));
        let out = Command::new("psql")
            .args(["-h", &self.host, "-p", &self.port, "-U", &self.user, "-d", &self.db, "-tA", "-c", &q])
            .env("PGPASSWORD", &self.password)
            .output()
            .expect("psql runs");
        assert!(out.status.success(), "psql: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim() == "1"
    }
}
