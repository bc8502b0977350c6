//! The database secrets engine end to end: the real `coffer` binary, the real `bao` CLI, a real
//! PostgreSQL server (scripts/test starts one and sets `COFFER_TEST_PG_ADMIN_URL`, a superuser),
//! and `psql` to prove the issued credentials log in, and that users are gone after revocation
//! and expiry. Without the variable the tests are skipped loudly; in CI (`CI` set) they fail.
mod common;
use common::*;
use serde_json::Value;
use std::process::Command;
use std::time::{Duration, Instant};

/// The superuser URL, or `None` (skipped) outside CI.
fn admin_url() -> Option<String> {
    match std::env::var("COFFER_TEST_PG_ADMIN_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            if std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false") {
                panic!("COFFER_TEST_PG_ADMIN_URL is not set in CI: scripts/test starts PostgreSQL and sets it");
            }
            eprintln!("\n\n*** SKIPPED: COFFER_TEST_PG_ADMIN_URL is not set: database engine tests need PostgreSQL (scripts/test sets it) ***\n\n");
            None
        }
    }
}

/// `postgres://user:password@host:port/db` → (host:port/db, user, password).
fn split_url(url: &str) -> (String, String, String) {
    let rest = url.split_once("://").unwrap().1;
    let (userinfo, hostdb) = rest.rsplit_once('@').unwrap();
    let (user, pw) = userinfo.split_once(':').unwrap();
    (hostdb.to_string(), user.to_string(), pw.to_string())
}

/// Runs `sql` with psql as `user`/`password`; Ok(output) or Err(psql's error).
fn psql(hostdb: &str, user: &str, password: &str, sql: &str) -> Result<String, String> {
    let o = Command::new("psql")
        .arg(format!("postgresql://{hostdb}?sslmode=disable"))
        .args(["-v", "ON_ERROR_STOP=1", "-tA", "-c", sql])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PGUSER", user)
        .env("PGPASSWORD", password)
        .env("PGCONNECT_TIMEOUT", "5")
        .output()
        .expect("run psql (Debian package postgresql-client)");
    if o.status.success() {
        Ok(String::from_utf8_lossy(&o.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&o.stderr).to_string())
    }
}

struct Pg {
    hostdb: String,
    user: String,
    pw: String,
}

impl Pg {
    fn new(url: &str) -> Pg {
        let (hostdb, user, pw) = split_url(url);
        Pg { hostdb, user, pw }
    }
    fn admin(&self, sql: &str) -> String {
        psql(&self.hostdb, &self.user, &self.pw, sql).unwrap_or_else(|e| panic!("admin psql {sql:?}: {e}"))
    }
    fn role_exists(&self, name: &str) -> bool {
        self.admin(&format!("SELECT count(*) FROM pg_roles WHERE rolname = '{name}'")) == "1"
    }
    fn login(&self, user: &str, pw: &str) -> Result<String, String> {
        psql(&self.hostdb, user, pw, "SELECT current_user")
    }
    /// The connection URL with the `{{username}}`/`{{password}}` templates.
    fn templated_url(&self) -> String {
        format!("postgresql://{{{{username}}}}:{{{{password}}}}@{}?sslmode=disable", self.hostdb)
    }
}

/// A unique suffix so tests sharing one database never collide.
fn unique() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{}_{nanos}", std::process::id())
}

fn wait_until(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !f() {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

const CREATE: &str = "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'; GRANT SELECT ON ALL TABLES IN SCHEMA public TO \"{{name}}\";";

#[test]
fn dynamic_credentials_log_in_with_psql_and_are_dropped_on_revoke_and_on_expiry() {
    let Some(url) = admin_url() else { return };
    let Some(bao) = bao_path() else { return };
    let pg = Pg::new(&url);
    let server = Server::start_dev("root");
    let run = |args: &[&str]| cli(&bao, &server.addr, Some("root"), args);
    let ok = |args: &[&str]| {
        let o = run(args);
        assert!(o.status.success(), "bao {args:?}: {}", out(&o));
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    ok(&["secrets", "enable", "database"]);
    ok(&[
        "write",
        "database/config/pg",
        "plugin_name=postgresql-database-plugin",
        &format!("connection_url={}", pg.templated_url()),
        &format!("username={}", pg.user),
        &format!("password={}", pg.pw),
        "allowed_roles=ro,short",
    ]);
    // The root password is never read back.
    let cfg = json(&ok(&["read", "-format=json", "database/config/pg"]));
    assert_eq!(cfg["data"]["plugin_name"], "postgresql-database-plugin");
    assert_eq!(cfg["data"]["connection_details"]["username"], pg.user.as_str());
    assert!(cfg["data"]["connection_details"].get("password").is_none(), "{cfg}");
    assert!(!cfg.to_string().contains(&pg.pw));
    assert_eq!(cfg["data"]["allowed_roles"], serde_json::json!(["ro", "short"]));

    ok(&[
        "write",
        "database/roles/ro",
        "db_name=pg",
        &format!("creation_statements={CREATE}"),
        "default_ttl=1h",
        "max_ttl=24h",
    ]);
    let role = json(&ok(&["read", "-format=json", "database/roles/ro"]));
    assert_eq!(
        role["data"]["creation_statements"],
        serde_json::json!([CREATE]),
        "one string is one statement list entry"
    );
    assert_eq!(role["data"]["default_ttl"], 3600);
    assert_eq!(role["data"]["credential_type"], "password");

    // Issue, log in, renew, revoke.
    let creds = json(&ok(&["read", "-format=json", "database/creds/ro"]));
    let user = creds["data"]["username"].as_str().unwrap().to_string();
    let pw = creds["data"]["password"].as_str().unwrap().to_string();
    let lease = creds["lease_id"].as_str().unwrap().to_string();
    assert!(lease.starts_with("database/creds/ro/"), "{lease}");
    assert_eq!(creds["lease_duration"], 3600);
    assert_eq!(creds["renewable"], true);
    assert!(user.starts_with("v-token-ro-"), "OpenBao's username shape: {user}");
    assert_eq!(pg.login(&user, &pw).unwrap(), user);
    let renewed = json(&ok(&["lease", "renew", "-format=json", "-increment=2h", &lease]));
    assert_eq!(renewed["lease_duration"], 7200);
    let valid_until = pg.admin(&format!(
        "SELECT extract(epoch FROM rolvaliduntil - now())::int FROM pg_roles WHERE rolname = '{user}'"
    ));
    let left: i64 = valid_until.parse().unwrap();
    assert!((7000..=7300).contains(&left), "renewal moved VALID UNTIL to the lease's end: {left}");
    ok(&["lease", "revoke", &lease]);
    assert!(!pg.role_exists(&user), "revoking the lease drops the user");
    assert!(pg.login(&user, &pw).is_err());

    // Coffer's own CLI reads credentials and revokes them through sys/leases just the same.
    let o = cli(coffer_bin(), &server.addr, Some("root"), &["read", "-format=json", "database/creds/ro"]);
    assert!(o.status.success(), "coffer read: {}", out(&o));
    let c = json(&String::from_utf8_lossy(&o.stdout));
    let user = c["data"]["username"].as_str().unwrap().to_string();
    assert!(pg.login(&user, c["data"]["password"].as_str().unwrap()).is_ok());
    let o = cli(
        coffer_bin(),
        &server.addr,
        Some("root"),
        &["write", "sys/leases/revoke", &format!("lease_id={}", c["lease_id"].as_str().unwrap())],
    );
    assert!(o.status.success(), "coffer write sys/leases/revoke: {}", out(&o));
    assert!(!pg.role_exists(&user));

    // Expiry: a 2-second lease's user is dropped without anyone asking.
    ok(&["write", "database/roles/short", "db_name=pg", &format!("creation_statements={CREATE}"), "default_ttl=2s"]);
    let creds = json(&ok(&["read", "-format=json", "database/creds/short"]));
    let user = creds["data"]["username"].as_str().unwrap().to_string();
    assert!(pg.role_exists(&user));
    wait_until("the expired lease's user is dropped", Duration::from_secs(15), || !pg.role_exists(&user));
    let o = run(&["list", "sys/leases/lookup/database/creds/short/"]);
    assert!(!o.status.success(), "the lease is gone too: {}", out(&o));

    // A role the connection does not allow, an unknown role, an unknown credential type.
    ok(&["write", "database/roles/other", "db_name=pg", &format!("creation_statements={CREATE}")]);
    let o = run(&["read", "database/creds/other"]);
    assert!(out(&o).contains("\"other\" is not an allowed role"), "{}", out(&o));
    let o = run(&["read", "database/creds/nope"]);
    assert!(out(&o).contains("unknown role: nope"), "{}", out(&o));
    let o = run(&["write", "database/roles/rsa", "db_name=pg", "creation_statements=x", "credential_type=rsa_pem"]);
    assert!(out(&o).contains("invalid credential_type \"rsa_pem\""), "{}", out(&o));
    let o = run(&["write", "database/config/bad", "plugin_name=nope-database-plugin", "connection_url=x"]);
    assert!(out(&o).contains("nope-database-plugin"), "{}", out(&o));
    let keys = json(&ok(&["list", "-format=json", "database/roles"]));
    assert_eq!(keys, serde_json::json!(["other", "ro", "short"]));
}

#[test]
fn an_unreachable_database_at_creds_time_is_a_clear_error_and_writes_no_lease() {
    let Some(url) = admin_url() else { return };
    let Some(bao) = bao_path() else { return };
    let pg = Pg::new(&url);
    let server = Server::start_dev("root");
    let run = |args: &[&str]| cli(&bao, &server.addr, Some("root"), args);
    assert!(run(&["secrets", "enable", "database"]).status.success());
    // Nothing listens on port 1: verify_connection=true refuses the configuration at once…
    let down = "postgresql://{{username}}:{{password}}@127.0.0.1:1/x?sslmode=disable".to_string();
    let o = run(&[
        "write",
        "database/config/down",
        "plugin_name=postgresql-database-plugin",
        &format!("connection_url={down}"),
        &format!("username={}", pg.user),
        "password=whatever-secret",
        "allowed_roles=*",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    assert!(out(&o).contains("error creating database object") && !out(&o).contains("whatever-secret"), "{}", out(&o));
    // …and without it, `creds` fails clearly and leaves no lease behind.
    let o = run(&[
        "write",
        "database/config/down",
        "plugin_name=postgresql-database-plugin",
        &format!("connection_url={down}"),
        &format!("username={}", pg.user),
        "password=whatever-secret",
        "allowed_roles=*",
        "verify_connection=false",
    ]);
    assert!(o.status.success(), "{}", out(&o));
    let o = run(&["write", "database/roles/r", "db_name=down", &format!("creation_statements={CREATE}")]);
    assert!(o.status.success(), "{}", out(&o));
    let o = run(&["read", "database/creds/r"]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    assert!(out(&o).contains("failed to connect to PostgreSQL"), "{}", out(&o));
    assert!(!out(&o).contains("whatever-secret"));
    let o = run(&["list", "sys/leases/lookup/database/creds/r/"]);
    assert!(!o.status.success(), "no lease was written: {}", out(&o));
}

#[test]
fn a_failing_revocation_keeps_the_lease_and_is_retried_until_it_succeeds() {
    let Some(url) = admin_url() else { return };
    let Some(bao) = bao_path() else { return };
    let pg = Pg::new(&url);
    let server = Server::start_dev("root");
    let run = |args: &[&str]| cli(&bao, &server.addr, Some("root"), args);
    let ok = |args: &[&str]| {
        let o = run(args);
        assert!(o.status.success(), "bao {args:?}: {}", out(&o));
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    ok(&["secrets", "enable", "database"]);
    ok(&[
        "write",
        "database/config/pg",
        "plugin_name=postgresql-database-plugin",
        &format!("connection_url={}", pg.templated_url()),
        &format!("username={}", pg.user),
        &format!("password={}", pg.pw),
        "allowed_roles=*",
    ]);
    let broken = "DROP ROLE \"{{name}}\"; SELECT no_such_function();";
    ok(&[
        "write",
        "database/roles/r",
        "db_name=pg",
        &format!("creation_statements={CREATE}"),
        &format!("revocation_statements={broken}"),
        "default_ttl=2s",
    ]);
    let creds = json(&ok(&["read", "-format=json", "database/creds/r"]));
    let user = creds["data"]["username"].as_str().unwrap().to_string();
    let lease = creds["lease_id"].as_str().unwrap().to_string();
    // An explicit revoke fails, says why, and keeps the lease.
    let o = run(&["lease", "revoke", &lease]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    assert!(out(&o).contains("no_such_function"), "{}", out(&o));
    // Past expiry, the sweeper fails too: the lease stays visible in sys/leases, the user stays.
    std::thread::sleep(Duration::from_secs(5));
    let look = json(&ok(&["write", "-format=json", "sys/leases/lookup", &format!("lease_id={lease}")]));
    assert_eq!(look["data"]["id"], lease.as_str());
    assert!(pg.role_exists(&user));
    // Revoking the token that obtained a lease revokes the lease too; when that fails, the lease
    // is not forgotten (the user would be left behind) but stays, due, and is retried.
    ok(&[
        "write",
        "database/roles/long",
        "db_name=pg",
        &format!("creation_statements={CREATE}"),
        &format!("revocation_statements={broken}"),
        "default_ttl=1h",
    ]);
    ok(&["write", "sys/policies/acl/dbcreds", r#"policy=path "database/creds/*" { capabilities = ["read"] }"#]);
    let token = json(&ok(&["token", "create", "-policy=dbcreds", "-format=json"]))["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_string();
    let o = cli(&bao, &server.addr, Some(&token), &["read", "-format=json", "database/creds/long"]);
    assert!(o.status.success(), "{}", out(&o));
    let c2 = json(&String::from_utf8_lossy(&o.stdout));
    let (user2, lease2) =
        (c2["data"]["username"].as_str().unwrap().to_string(), c2["lease_id"].as_str().unwrap().to_string());
    ok(&["token", "revoke", &token]);
    std::thread::sleep(Duration::from_secs(3));
    let look = json(&ok(&["write", "-format=json", "sys/leases/lookup", &format!("lease_id={lease2}")]));
    assert_eq!(look["data"]["id"], lease2.as_str(), "the token's lease stays while its revocation fails");
    assert!(pg.role_exists(&user2));
    // Once the statements work, the retries revoke both.
    let fixed = "revocation_statements=DROP ROLE IF EXISTS \"{{name}}\";";
    ok(&["write", "database/roles/r", fixed]);
    ok(&["write", "database/roles/long", fixed]);
    wait_until("the retried revocation drops the user", Duration::from_secs(30), || !pg.role_exists(&user));
    wait_until("the token's lease is retried and drops its user", Duration::from_secs(30), || !pg.role_exists(&user2));
    wait_until("the leases are gone", Duration::from_secs(10), || {
        !run(&["list", "sys/leases/lookup/database/creds/r/"]).status.success()
            && !run(&["list", "sys/leases/lookup/database/creds/long/"]).status.success()
    });
}

#[test]
fn static_roles_rotate_on_demand_and_on_their_period_and_root_rotation_keeps_working() {
    let Some(url) = admin_url() else { return };
    let Some(bao) = bao_path() else { return };
    let pg = Pg::new(&url);
    let u = unique();
    let (static_user, root_user) = (format!("coffer_static_{u}"), format!("coffer_root_{u}"));
    pg.admin(&format!("CREATE ROLE {static_user} LOGIN PASSWORD 'initial-pw'"));
    pg.admin(&format!("CREATE ROLE {root_user} LOGIN CREATEROLE PASSWORD 'root-initial-pw'"));
    let server = Server::start_dev("root");
    let run = |args: &[&str]| cli(&bao, &server.addr, Some("root"), args);
    let ok = |args: &[&str]| {
        let o = run(args);
        assert!(o.status.success(), "bao {args:?}: {}", out(&o));
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    ok(&["secrets", "enable", "database"]);
    ok(&[
        "write",
        "database/config/pg",
        "plugin_name=postgresql-database-plugin",
        &format!("connection_url={}", pg.templated_url()),
        &format!("username={}", pg.user),
        &format!("password={}", pg.pw),
        "allowed_roles=*",
    ]);

    // Creating the static role takes the account over: the initial password stops working.
    ok(&["write", "database/static-roles/app", "db_name=pg", &format!("username={static_user}"), "rotation_period=1h"]);
    let read = json(&ok(&["read", "-format=json", "database/static-roles/app"]));
    assert_eq!(read["data"]["rotation_period"], 3600);
    assert_eq!(read["data"]["username"], static_user.as_str());
    let c1 = json(&ok(&["read", "-format=json", "database/static-creds/app"]));
    let p1 = c1["data"]["password"].as_str().unwrap().to_string();
    assert!(c1["data"]["ttl"].as_i64().unwrap() > 3500);
    assert!(pg.login(&static_user, "initial-pw").is_err());
    assert_eq!(pg.login(&static_user, &p1).unwrap(), static_user);
    ok(&["write", "-force", "database/rotate-role/app"]);
    let p2 = json(&ok(&["read", "-format=json", "database/static-creds/app"]))["data"]["password"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(p1, p2);
    assert!(pg.login(&static_user, &p1).is_err(), "the old password fails");
    assert_eq!(pg.login(&static_user, &p2).unwrap(), static_user, "the new one works");
    // On its period (5 s, the shortest), the periodic function rotates it again by itself.
    ok(&["write", "database/static-roles/app", "rotation_period=5s"]);
    wait_until("the period rotates the password", Duration::from_secs(30), || {
        let p = json(&ok(&["read", "-format=json", "database/static-creds/app"]))["data"]["password"]
            .as_str()
            .unwrap()
            .to_string();
        p != p2 && pg.login(&static_user, &p).is_ok()
    });
    let o = run(&[
        "write",
        "database/static-roles/fast",
        "db_name=pg",
        &format!("username={static_user}"),
        "rotation_period=2s",
    ]);
    assert!(out(&o).contains("rotation_period must be 5 seconds or more"), "{}", out(&o));

    // Root rotation on a connection of its own: the engine keeps working, the old password does not.
    ok(&[
        "write",
        "database/config/rooted",
        "plugin_name=postgresql-database-plugin",
        &format!("connection_url={}", pg.templated_url()),
        &format!("username={root_user}"),
        "password=root-initial-pw",
        "allowed_roles=*",
    ]);
    ok(&["write", "database/roles/viaroot", "db_name=rooted", &format!("creation_statements={CREATE}")]);
    ok(&["write", "-force", "database/rotate-root/rooted"]);
    assert!(pg.login(&root_user, "root-initial-pw").is_err(), "only the engine knows the root password now");
    let creds = json(&ok(&["read", "-format=json", "database/creds/viaroot"]));
    let user = creds["data"]["username"].as_str().unwrap();
    assert_eq!(pg.login(user, creds["data"]["password"].as_str().unwrap()).unwrap(), user);
    ok(&["lease", "revoke", creds["lease_id"].as_str().unwrap()]);
    // A root rotation the database refuses leaves the working credentials in place.
    ok(&[
        "write",
        "database/config/rooted",
        "root_rotation_statements=ALTER ROLE \"{{name}}\" WITH NO_SUCH_OPTION '{{password}}'",
    ]);
    let o = run(&["write", "-force", "database/rotate-root/rooted"]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    let creds = json(&ok(&["read", "-format=json", "database/creds/viaroot"]));
    assert!(creds["data"]["username"].as_str().is_some());
    ok(&["lease", "revoke", creds["lease_id"].as_str().unwrap()]);
    ok(&["delete", "database/static-roles/app"]);
    pg.admin(&format!("DROP ROLE IF EXISTS {static_user}"));
    pg.admin(&format!("DROP ROLE IF EXISTS {root_user}"));
}

#[test]
fn an_unfinished_root_rotation_is_settled_on_the_password_the_database_accepts() {
    // A root rotation writes its new password ahead (behind the barrier) before the database
    // takes it. Here the server "stopped" between the database's ALTER ROLE and the stored
    // configuration: the record exists, the database has the new password, the configuration
    // still the old one. The next tick must adopt the new password, so the engine keeps working
    // (without the record, the root would be locked out for good); a record whose password the
    // database never took must be dropped, keeping the old one.
    let Some(url) = admin_url() else { return };
    let pg = Pg::new(&url);
    let root_user = format!("coffer_wal_{}", unique());
    pg.admin(&format!("CREATE ROLE {root_user} LOGIN CREATEROLE PASSWORD 'wal-old-pw'"));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("raw.hcl");
    std::fs::write(&config, "raw_storage_endpoint = true\n").unwrap();
    let server = Server::start_dev_with("root", &[&format!("-config={}", config.display())]);
    let t = [("X-Vault-Token", "root")];
    let call = |method: &str, path: &str, body: &str| http(&server.addr, method, path, &t, body.as_bytes());
    assert_eq!(call("POST", "/v1/sys/mounts/database", r#"{"type":"database"}"#).0, 204);
    let cfg = serde_json::json!({
        "plugin_name": "postgresql-database-plugin",
        "connection_url": pg.templated_url(),
        "username": root_user,
        "password": "wal-old-pw",
        "allowed_roles": "*",
    });
    let (st, body) = call("POST", "/v1/database/config/pg", &cfg.to_string());
    assert!(st == 200 || st == 204, "{st} {body}");
    let role = serde_json::json!({ "db_name": "pg", "creation_statements": CREATE, "default_ttl": "1m" });
    assert_eq!(call("POST", "/v1/database/roles/r", &role.to_string()).0, 204);
    let (_, mounts) = call("GET", "/v1/sys/mounts/database", "");
    let uuid = json(&mounts)["data"]["uuid"].as_str().expect("the mount's uuid").to_string();
    let wal = format!("/v1/sys/raw/logical/{uuid}/wal/rotate-root/pg");

    // 1. The database took the new password; the configuration never learnt it.
    pg.admin(&format!("ALTER ROLE {root_user} PASSWORD 'wal-new-pw'"));
    let record =
        serde_json::json!({ "value": serde_json::json!({"new_password": "wal-new-pw", "started": 1}).to_string() });
    assert_eq!(call("PUT", &wal, &record.to_string()).0, 204);
    wait_until("the tick adopts the password the database accepts", Duration::from_secs(30), || {
        call("GET", &wal, "").0 == 404
    });
    let (st, body) = call("GET", "/v1/database/creds/r", "");
    assert_eq!(st, 200, "the engine works with the adopted password: {body}");
    let creds = json(&body);
    let user = creds["data"]["username"].as_str().unwrap();
    assert_eq!(pg.login(user, creds["data"]["password"].as_str().unwrap()).unwrap(), user);
    assert_eq!(
        call("PUT", "/v1/sys/leases/revoke", &serde_json::json!({"lease_id": creds["lease_id"]}).to_string()).0,
        204
    );

    // 2. A record whose password the database never took is dropped; the working one stays.
    let record =
        serde_json::json!({ "value": serde_json::json!({"new_password": "never-set", "started": 1}).to_string() });
    assert_eq!(call("PUT", &wal, &record.to_string()).0, 204);
    wait_until("the tick drops a record the database never took", Duration::from_secs(30), || {
        call("GET", &wal, "").0 == 404
    });
    assert_eq!(pg.login(&root_user, "wal-new-pw").unwrap(), root_user);
    // The caller's display name goes into the username, as OpenBao's template puts it
    // (`token-alice` truncated to 8 characters).
    let (_, tok) = call("POST", "/v1/auth/token/create", r#"{"display_name":"alice","policies":["root"]}"#);
    let alice = json(&tok)["auth"]["client_token"].as_str().unwrap().to_string();
    let (st, body) = http(&server.addr, "GET", "/v1/database/creds/r", &[("X-Vault-Token", &alice)], b"");
    assert_eq!(st, 200, "{body}");
    let user = json(&body)["data"]["username"].as_str().unwrap().to_string();
    assert!(user.starts_with("v-token-al-r-"), "the caller's display name in {user}");
    assert_eq!(
        call("PUT", "/v1/sys/leases/revoke", &serde_json::json!({"lease_id": json(&body)["lease_id"]}).to_string()).0,
        204
    );
    pg.admin(&format!("DROP ROLE IF EXISTS {root_user}"));
}

#[test]
fn key_pair_and_certificate_roles_are_checked_and_postgresql_refuses_them_as_on_openbao() {
    // The engine takes rsa_private_key and client_certificate roles (their options checked when
    // written); PostgreSQL logs in with passwords only, so its plugin refuses the user, with
    // OpenBao's words. (An SDK plugin that takes public keys is shown issuing them in the
    // scaffold's acceptance test, scripts/scaffold-ci.)
    let Some(url) = admin_url() else { return };
    let pg = Pg::new(&url);
    let server = Server::start_dev("root");
    let t = [("X-Vault-Token", "root")];
    let call = |method: &str, path: &str, body: &str| http(&server.addr, method, path, &t, body.as_bytes());
    assert_eq!(call("POST", "/v1/sys/mounts/database", r#"{"type":"database"}"#).0, 204);
    let cfg = serde_json::json!({
        "plugin_name": "postgresql-database-plugin", "connection_url": pg.templated_url(),
        "username": pg.user, "password": pg.pw, "allowed_roles": "*",
    });
    let (st, body) = call("POST", "/v1/database/config/pg", &cfg.to_string());
    assert!(st == 200 || st == 204, "{st} {body}");
    let role =
        serde_json::json!({ "db_name": "pg", "creation_statements": CREATE, "credential_type": "rsa_private_key" });
    assert_eq!(call("POST", "/v1/database/roles/rsa", &role.to_string()).0, 204);
    let (_, body) = call("GET", "/v1/database/roles/rsa", "");
    let read = json(&body);
    assert_eq!(read["data"]["credential_type"], "rsa_private_key");
    assert_eq!(read["data"]["credential_config"], serde_json::json!({"key_bits": 2048, "format": "pkcs8"}));
    let (st, body) = call("GET", "/v1/database/creds/rsa", "");
    assert_eq!(st, 400, "{body}");
    assert!(body.contains(r#"unsupported credential_type: \"rsa_private_key\""#), "{body}");
    for (cfg, words) in [
        (serde_json::json!({"key_bits": 1024}), "invalid key_bits 1024"),
        (serde_json::json!({"colour": "red"}), "unknown option \\\"colour\\\""),
    ] {
        let role = serde_json::json!({ "db_name": "pg", "creation_statements": CREATE,
                                       "credential_type": "rsa_private_key", "credential_config": cfg });
        let (st, body) = call("POST", "/v1/database/roles/bad", &role.to_string());
        assert_eq!(st, 400, "{body}");
        assert!(body.contains(words), "{words} in {body}");
    }
    // As OpenBao's TypeKVPairs, the options also come as `key=value` text (`bao write … credential_config=key_bits=3072`).
    let role = serde_json::json!({ "db_name": "pg", "creation_statements": CREATE,
                                   "credential_type": "rsa_private_key", "credential_config": "key_bits=3072" });
    assert_eq!(call("POST", "/v1/database/roles/rsa3k", &role.to_string()).0, 204);
    let (_, body) = call("GET", "/v1/database/roles/rsa3k", "");
    assert_eq!(json(&body)["data"]["credential_config"]["key_bits"], 3072);
    let role =
        serde_json::json!({ "db_name": "pg", "creation_statements": CREATE, "credential_type": "client_certificate" });
    let (st, body) = call("POST", "/v1/database/roles/cert", &role.to_string());
    assert_eq!(
        (st, json(&body)["errors"][0].as_str()),
        (400, Some("credential_config validation failed: invalid key_type"))
    );
    assert_eq!(call("GET", "/v1/database/roles/bad", "").0, 404, "nothing stored for a refused role");
}

#[test]
fn static_role_rotation_survives_a_restart_and_catches_up_a_missed_rotation() {
    let Some(url) = admin_url() else { return };
    let Some(bao) = bao_path() else { return };
    let pg = Pg::new(&url);
    let static_user = format!("coffer_restart_{}", unique());
    pg.admin(&format!("CREATE ROLE {static_user} LOGIN PASSWORD 'initial-pw'"));
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_file(dir.path());
    let (keys, root) = init_unseal(&server.addr);
    let run = |addr: &str, args: &[&str]| cli(&bao, addr, Some(&root), args);
    let ok = |addr: &str, args: &[&str]| {
        let o = run(addr, args);
        assert!(o.status.success(), "bao {args:?}: {}", out(&o));
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    let addr = server.addr.clone();
    ok(&addr, &["secrets", "enable", "database"]);
    ok(
        &addr,
        &[
            "write",
            "database/config/pg",
            "plugin_name=postgresql-database-plugin",
            &format!("connection_url={}", pg.templated_url()),
            &format!("username={}", pg.user),
            &format!("password={}", pg.pw),
            "allowed_roles=*",
        ],
    );
    ok(
        &addr,
        &["write", "database/static-roles/app", "db_name=pg", &format!("username={static_user}"), "rotation_period=6s"],
    );
    let p1 = json(&ok(&addr, &["read", "-format=json", "database/static-creds/app"]))["data"]["password"]
        .as_str()
        .unwrap()
        .to_string();
    // Down (and then sealed) across the rotation time: nothing rotates meanwhile…
    server.kill9();
    std::thread::sleep(Duration::from_secs(8));
    assert_eq!(pg.login(&static_user, &p1).unwrap(), static_user, "nothing rotated while the server was down");
    let server = Server::start_with_config(&server.config);
    assert_eq!(server.addr, addr);
    // A restarted server is sealed: still nothing rotates.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(pg.login(&static_user, &p1).unwrap(), static_user, "nothing rotated while sealed");
    unseal(&addr, &keys);
    // …and after unsealing, the missed rotation is caught up.
    wait_until("the missed rotation is caught up", Duration::from_secs(30), || {
        let p = json(&ok(&addr, &["read", "-format=json", "database/static-creds/app"]))["data"]["password"]
            .as_str()
            .unwrap()
            .to_string();
        p != p1 && pg.login(&static_user, &p).is_ok()
    });
    assert!(pg.login(&static_user, &p1).is_err());
    let v: Value = json(&ok(&addr, &["read", "-format=json", "database/static-roles/app"]));
    assert!(v["data"]["last_vault_rotation"].as_str().is_some());
    pg.admin(&format!("DROP ROLE IF EXISTS {static_user}"));
}

/// The keys of an answer's `data`, sorted.
fn data_keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v["data"].as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default();
    k.sort();
    k
}

/// One flow through the CLI against `addr`; what it saw, for comparing two servers.
fn shapes(bao: &str, addr: &str, pg: &Pg, tag: &str) -> Vec<(String, Value)> {
    let run = |args: &[&str]| cli(bao, addr, Some("root"), args);
    let ok = |args: &[&str]| {
        let o = run(args);
        assert!(o.status.success(), "bao {args:?} at {addr}: {}", out(&o));
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    let static_user = format!("coffer_shape_{tag}_{}", unique());
    pg.admin(&format!("CREATE ROLE {static_user} LOGIN PASSWORD 'initial-pw'"));
    let mut seen = vec![];
    ok(&["secrets", "enable", "database"]);
    ok(&[
        "write",
        "database/config/pg",
        "plugin_name=postgresql-database-plugin",
        &format!("connection_url={}", pg.templated_url()),
        &format!("username={}", pg.user),
        &format!("password={}", pg.pw),
        "allowed_roles=ro,app",
    ]);
    let cfg = json(&ok(&["read", "-format=json", "database/config/pg"]));
    seen.push(("config keys".into(), serde_json::json!(data_keys(&cfg))));
    seen.push(("config connection_details".into(), cfg["data"]["connection_details"].clone()));
    seen.push(("config allowed_roles".into(), cfg["data"]["allowed_roles"].clone()));
    ok(&[
        "write",
        "database/roles/ro",
        "db_name=pg",
        &format!("creation_statements={CREATE}"),
        "default_ttl=1h",
        "max_ttl=2h",
    ]);
    let role = json(&ok(&["read", "-format=json", "database/roles/ro"]));
    seen.push(("role".into(), role["data"].clone()));
    let creds = json(&ok(&["read", "-format=json", "database/creds/ro"]));
    seen.push(("creds keys".into(), serde_json::json!(data_keys(&creds))));
    seen.push(("creds lease".into(), serde_json::json!([creds["lease_duration"], creds["renewable"]])));
    let user = creds["data"]["username"].as_str().unwrap();
    seen.push(("creds username prefix".into(), Value::from(user.split('-').take(3).collect::<Vec<_>>().join("-"))));
    let pw = creds["data"]["password"].as_str().unwrap();
    seen.push(("password length".into(), Value::from(pw.len())));
    ok(&["lease", "revoke", creds["lease_id"].as_str().unwrap()]);
    // OpenBao revokes in the background after answering: give either server a few seconds.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while pg.role_exists(user) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    seen.push(("user dropped".into(), Value::from(!pg.role_exists(user))));
    ok(&["write", "database/static-roles/app", "db_name=pg", &format!("username={static_user}"), "rotation_period=1h"]);
    let sr = json(&ok(&["read", "-format=json", "database/static-roles/app"]));
    seen.push(("static role keys".into(), serde_json::json!(data_keys(&sr))));
    let sc = json(&ok(&["read", "-format=json", "database/static-creds/app"]));
    seen.push(("static creds keys".into(), serde_json::json!(data_keys(&sc))));
    seen.push((
        "static creds lease".into(),
        serde_json::json!([sc["lease_id"], sc["lease_duration"], sc["renewable"]]),
    ));
    let o = run(&["read", "database/creds/nope"]);
    seen.push(("unknown role".into(), serde_json::json!([o.status.code(), out(&o).contains("unknown role: nope")])));
    let o = run(&["list", "-format=json", "database/roles"]);
    seen.push(("role list".into(), json(&String::from_utf8_lossy(&o.stdout))));
    let o = run(&["read", "database/roles/none"]);
    seen.push(("missing role".into(), serde_json::json!([o.status.code(), out(&o).contains("No value found")])));
    ok(&["delete", "database/static-roles/app"]);
    pg.admin(&format!("DROP ROLE IF EXISTS {static_user}"));
    seen
}

#[test]
fn the_cli_flow_sees_the_same_response_shapes_as_on_real_openbao() {
    let Some(url) = admin_url() else { return };
    let Some(bao) = bao_path() else { return };
    let pg = Pg::new(&url);
    let server = Server::start_dev("root");
    let real = RealBao::start(&bao);
    let coffer = shapes(&bao, &server.addr, &pg, "c");
    let openbao = shapes(&bao, &real.addr, &pg, "o");
    for ((what, c), (_, o)) in coffer.iter().zip(&openbao) {
        assert_eq!(c, o, "{what}: Coffer {c} vs OpenBao {o}");
    }
}

/// TLS to PostgreSQL with rustls: `verify-full` against the test CA (`COFFER_TEST_PG_CA`, the CA
/// of the server certificate scripts/test gives PostgreSQL) works and the engine's session is
/// encrypted (`pg_stat_ssl`); a CA that did not sign the server's certificate is refused when
/// the connection is written.
#[test]
fn postgresql_connections_use_tls_and_verify_the_server_certificate() {
    let Some(url) = admin_url() else { return };
    let Some(bao) = bao_path() else { return };
    let ca = match std::env::var("COFFER_TEST_PG_CA") {
        Ok(c) if !c.is_empty() => c,
        _ => {
            let in_ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false");
            assert!(
                !in_ci,
                "COFFER_TEST_PG_CA is not set in CI: scripts/test gives PostgreSQL a certificate and sets it"
            );
            eprintln!("\n\n*** SKIPPED: COFFER_TEST_PG_CA is not set: the PostgreSQL TLS test needs it (scripts/test sets it) ***\n\n");
            return;
        }
    };
    let pg = Pg::new(&url);
    let server = Server::start_dev("root");
    let run = |args: &[&str]| cli(&bao, &server.addr, Some("root"), args);
    let ok = |args: &[&str]| {
        let o = run(args);
        assert!(o.status.success(), "bao {args:?}: {}", out(&o));
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    ok(&["secrets", "enable", "database"]);
    let app = format!("coffer-tls-{}", unique());
    let tls_url = format!(
        "postgresql://{{{{username}}}}:{{{{password}}}}@{}?sslmode=verify-full&sslrootcert={ca}&application_name={app}",
        pg.hostdb
    );
    ok(&[
        "write",
        "database/config/tls",
        "plugin_name=postgresql-database-plugin",
        &format!("connection_url={tls_url}"),
        &format!("username={}", pg.user),
        &format!("password={}", pg.pw),
        "allowed_roles=*",
    ]);
    ok(&["write", "database/roles/r", "db_name=tls", &format!("creation_statements={CREATE}")]);
    let creds = json(&ok(&["read", "-format=json", "database/creds/r"]));
    let user = creds["data"]["username"].as_str().unwrap();
    assert_eq!(pg.login(user, creds["data"]["password"].as_str().unwrap()).unwrap(), user);
    let encrypted = pg.admin(&format!(
        "SELECT bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = '{app}'"
    ));
    assert_eq!(encrypted, "t", "the engine's session to PostgreSQL is encrypted");
    ok(&["lease", "revoke", creds["lease_id"].as_str().unwrap()]);

    // A CA that did not sign the server's certificate: the write fails on verification.
    let other = tempfile::tempdir().unwrap();
    let other_ca = other.path().join("other-ca.pem");
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=not the PostgreSQL CA",
        ])
        .arg("-keyout")
        .arg(other.path().join("other-ca.key"))
        .arg("-out")
        .arg(&other_ca)
        .output()
        .expect("run openssl");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let wrong = format!(
        "postgresql://{{{{username}}}}:{{{{password}}}}@{}?sslmode=verify-full&sslrootcert={}",
        pg.hostdb,
        other_ca.display()
    );
    let o = run(&[
        "write",
        "database/config/wrong",
        "plugin_name=postgresql-database-plugin",
        &format!("connection_url={wrong}"),
        &format!("username={}", pg.user),
        &format!("password={}", pg.pw),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    assert!(out(&o).to_lowercase().contains("certificate"), "{}", out(&o));
    let o = run(&[
        "write",
        "database/config/wrong",
        "plugin_name=postgresql-database-plugin",
        "connection_url=postgresql://h/x?sslmode=sometimes",
    ]);
    assert!(out(&o).contains("invalid sslmode \"sometimes\""), "{}", out(&o));
}
