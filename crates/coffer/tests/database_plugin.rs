//! External database plugins in Coffer: the built-in PostgreSQL plugin built as an external
//! plugin binary (`postgresql-database-plugin`, database plugin protocol v5) is registered in a
//! real `coffer server -dev`'s catalog as type `database`, named by a `database/config`
//! connection, and issues logins through a role, all with the real `bao` CLI; the login works
//! with `psql`, revoking the lease drops it, and a plugin killed with SIGKILL is restarted. Needs `bao` and `COFFER_TEST_PG_URL` (a user
//! with CREATEROLE; scripts/test sets both), and the plugin binary built next to `coffer`
//! (building the workspace does).

mod common;

use common::{bao_path, cli, coffer_bin, out, pg_url, Server};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const CREATE: &str = "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';";

fn sha256_hex(path: &Path) -> String {
    let o = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8_lossy(&o.stdout).split_whitespace().next().unwrap().to_string()
}

/// `postgres://user:password@host:port/db` in parts.
fn pg_parts(url: &str) -> (String, String, String, String, String) {
    let rest = url.split_once("://").unwrap().1;
    let (cred, hostpart) = rest.rsplit_once('@').unwrap();
    let (user, pass) = cred.split_once(':').unwrap();
    let (hostport, db) = hostpart.split_once('/').unwrap();
    let (host, port) = hostport.rsplit_once(':').unwrap_or((hostport, "5432"));
    let db = db.split('?').next().unwrap();
    (user.into(), pass.into(), host.into(), port.into(), db.into())
}

fn psql(host: &str, port: &str, db: &str, user: &str, password: &str, sql: &str) -> Result<String, String> {
    let o = Command::new("psql")
        .args(["-h", host, "-p", port, "-U", user, "-d", db, "-tA", "-c", sql])
        .env("PGPASSWORD", password)
        .env("PGCONNECT_TIMEOUT", "10")
        .output()
        .expect("psql runs");
    if o.status.success() {
        Ok(String::from_utf8_lossy(&o.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&o.stderr).into_owned())
    }
}

/// The processes running the binary at `path` (their argv[0]).
fn pids(path: &Path) -> Vec<u32> {
    let want = path.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            std::fs::read(e.path().join("cmdline"))
                .ok()
                .and_then(|c| c.split(|b| *b == 0).next().map(|a| String::from_utf8_lossy(a).into_owned()))
                .is_some_and(|a| a == want)
        })
        .filter_map(|e| e.file_name().to_string_lossy().parse().ok())
        .collect()
}

#[test]
fn coffer_runs_an_external_database_plugin_from_its_catalog_and_the_issued_login_works_until_revoked() {
    let Some(bao) = bao_path() else { return };
    let Some(url) = pg_url() else { return };
    let (pg_user, pg_pass, host, port, db) = pg_parts(&url);
    let built = Path::new(coffer_bin()).with_file_name("postgresql-database-plugin");
    assert!(built.exists(), "build the workspace first (the postgresql-database-plugin binary is missing)");
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let bin = plugins.join("coffer-postgresql");
    std::fs::copy(&built, &bin).unwrap();
    let sha = sha256_hex(&bin);
    let s = Server::start_dev_logging_to(
        "root",
        &[&format!("-dev-plugin-dir={}", plugins.display())],
        &dir.path().join("dev.log"),
    );
    let run = |args: &[&str]| cli(&bao, &s.addr, Some("root"), args);
    let ok = |args: &[&str]| {
        let o = run(args);
        assert!(o.status.success(), "bao {args:?}: {}\n{}", out(&o), s.log_text());
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let version = format!("v{}", env!("CARGO_PKG_VERSION"));
    ok(&[
        "plugin",
        "register",
        &format!("-sha256={sha}"),
        &format!("-version={version}"),
        "-command=coffer-postgresql",
        "database",
        "coffer-postgresql",
    ]);
    let listed: Value = serde_json::from_str(&ok(&["plugin", "list", "-format=json", "database"])).unwrap();
    assert!(listed.to_string().contains("coffer-postgresql"), "{listed}");

    ok(&["secrets", "enable", "database"]);
    let template = format!("postgres://{{{{username}}}}:{{{{password}}}}@{host}:{port}/{db}");
    ok(&[
        "write",
        "database/config/pg",
        "plugin_name=coffer-postgresql",
        &format!("plugin_version={version}"),
        &format!("connection_url={template}"),
        &format!("username={pg_user}"),
        &format!("password={pg_pass}"),
        "allowed_roles=readonly",
    ]);
    ok(&["write", "database/roles/readonly", "db_name=pg", "default_ttl=1h", &format!("creation_statements={CREATE}")]);
    let creds: Value = serde_json::from_str(&ok(&["read", "-format=json", "database/creds/readonly"])).unwrap();
    let user = creds["data"]["username"].as_str().expect("a username").to_string();
    let pass = creds["data"]["password"].as_str().expect("a password").to_string();
    let lease = creds["lease_id"].as_str().expect("a lease").to_string();
    assert_eq!(psql(&host, &port, &db, &user, &pass, "SELECT current_user").as_deref(), Ok(user.as_str()));

    // The plugin runs as a process of its own, started by Coffer from the catalog's binary.
    let running = pids(&bin);
    assert_eq!(running.len(), 1, "one process of {} runs: {running:?}", bin.display());
    ok(&["lease", "revoke", &lease]);
    let t = Instant::now();
    let gone = format!("SELECT count(*) FROM pg_roles WHERE rolname = '{user}'");
    while psql(&host, &port, &db, &pg_user, &pg_pass, &gone).as_deref() != Ok("0") {
        assert!(t.elapsed() < Duration::from_secs(20), "revoke did not drop {user}:\n{}", s.log_text());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(psql(&host, &port, &db, &user, &pass, "SELECT 1").is_err(), "a revoked login is refused");

    // The plugin killed with SIGKILL: Coffer starts it again on the next request.
    let st = Command::new("kill").args(["-9", &running[0].to_string()]).status().unwrap();
    assert!(st.success());
    let creds: Value = serde_json::from_str(&ok(&["read", "-format=json", "database/creds/readonly"])).unwrap();
    let (user2, pass2) = (creds["data"]["username"].as_str().unwrap(), creds["data"]["password"].as_str().unwrap());
    assert_eq!(psql(&host, &port, &db, user2, pass2, "SELECT current_user").as_deref(), Ok(user2));
    let now = pids(&bin);
    assert!(now.len() == 1 && now[0] != running[0], "a new process serves the connection: {now:?}");

    // A name neither built in nor catalogued is refused, naming it.
    let o =
        run(&["write", "database/config/nope", "plugin_name=no-such-plugin", &format!("connection_url={template}")]);
    assert!(!o.status.success() && out(&o).contains("no-such-plugin"), "{}", out(&o));
    // A catalogued binary that was replaced is refused by its digest.
    // (Replaced by a rename: the running process keeps the old file.)
    let fake = plugins.join("replacement");
    std::fs::write(&fake, b"#!/bin/sh\nexit 1\n").unwrap();
    std::fs::rename(&fake, &bin).unwrap();
    let o = run(&[
        "write",
        "database/config/pg2",
        "plugin_name=coffer-postgresql",
        &format!("connection_url={template}"),
        &format!("username={pg_user}"),
        &format!("password={pg_pass}"),
    ]);
    assert!(!o.status.success() && out(&o).contains("SHA-256"), "{}", out(&o));
}
