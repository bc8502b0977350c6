//! The database secrets engine with the built-in `mysql-database-plugin`, end to end against a
//! real MariaDB server (scripts/test starts one and sets `COFFER_TEST_MYSQL_URL`,
//! `mysql://user:password@host:port/db` of a user with every privilege and GRANT OPTION): the
//! real `coffer` binary, the real `bao` CLI, and the `mariadb` client to prove the issued and
//! rotated credentials log in, and that users are gone after revocation and expiry. Without
//! the variable the tests are skipped loudly; in CI (`CI` set) they fail.
mod common;
use common::*;
use std::process::Command;
use std::time::{Duration, Instant};

struct My {
    host: String,
    port: String,
    user: String,
    pw: String,
}

fn mysql() -> Option<My> {
    match std::env::var("COFFER_TEST_MYSQL_URL") {
        Ok(u) if !u.is_empty() => {
            let rest = u.strip_prefix("mysql://").expect("COFFER_TEST_MYSQL_URL is mysql://user:pw@host:port/db");
            let (userinfo, hostdb) = rest.rsplit_once('@').unwrap();
            let (user, pw) = userinfo.split_once(':').unwrap();
            let hostport = hostdb.split('/').next().unwrap();
            let (host, port) = hostport.split_once(':').unwrap();
            Some(My { host: host.into(), port: port.into(), user: user.into(), pw: pw.into() })
        }
        _ => {
            if std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false") {
                panic!("COFFER_TEST_MYSQL_URL is not set in CI: scripts/test starts MariaDB and sets it");
            }
            eprintln!("\n\n*** SKIPPED: COFFER_TEST_MYSQL_URL is not set: MySQL/MariaDB database engine tests need MariaDB (scripts/test sets it) ***\n\n");
            None
        }
    }
}

impl My {
    fn client(&self, user: &str, pw: &str, sql: &str) -> Result<String, String> {
        let o = Command::new("mariadb")
            .args([
                "--no-defaults",
                "-h",
                &self.host,
                "-P",
                &self.port,
                "-u",
                user,
                "--connect-timeout=5",
                "-N",
                "-B",
                "-e",
                sql,
            ])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("MYSQL_PWD", pw)
            .output()
            .expect("run the mariadb client (Debian package mariadb-client)");
        if o.status.success() {
            Ok(String::from_utf8_lossy(&o.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&o.stderr).to_string())
        }
    }
    fn admin(&self, sql: &str) -> String {
        self.client(&self.user, &self.pw, sql).unwrap_or_else(|e| panic!("admin {sql:?}: {e}"))
    }
    fn user_exists(&self, name: &str) -> bool {
        self.admin(&format!("SELECT COUNT(*) FROM mysql.user WHERE User = '{name}'")) == "1"
    }
    fn login(&self, user: &str, pw: &str) -> Result<String, String> {
        self.client(user, pw, "SELECT CURRENT_USER()")
    }
    fn templated_url(&self) -> String {
        format!("{{{{username}}}}:{{{{password}}}}@tcp({}:{})/", self.host, self.port)
    }
}

fn wait_until(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !f() {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

const CREATE: &str = "CREATE USER '{{name}}'@'%' IDENTIFIED BY '{{password}}'; GRANT SELECT ON *.* TO '{{name}}'@'%';";

#[test]
fn mariadb_dynamic_and_static_credentials_log_in_rotate_and_are_dropped() {
    let Some(my) = mysql() else { return };
    let Some(bao) = bao_path() else { return };
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let (static_user, root_user) = (format!("cst_{nanos}"), format!("crt_{nanos}"));
    my.admin(&format!("CREATE USER '{static_user}'@'%' IDENTIFIED BY 'initial-pw'"));
    my.admin(&format!("CREATE USER '{root_user}'@'%' IDENTIFIED BY 'root-initial-pw'; GRANT ALL PRIVILEGES ON *.* TO '{root_user}'@'%' WITH GRANT OPTION"));
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
        "database/config/my",
        "plugin_name=mysql-database-plugin",
        &format!("connection_url={}", my.templated_url()),
        &format!("username={}", my.user),
        &format!("password={}", my.pw),
        "allowed_roles=*",
    ]);
    let cfg = json(&ok(&["read", "-format=json", "database/config/my"]));
    assert!(!cfg.to_string().contains(&my.pw), "{cfg}");

    // Dynamic: issue, log in, revoke → gone.
    ok(&["write", "database/roles/ro", "db_name=my", &format!("creation_statements={CREATE}"), "default_ttl=1h"]);
    let creds = json(&ok(&["read", "-format=json", "database/creds/ro"]));
    let user = creds["data"]["username"].as_str().unwrap().to_string();
    let pw = creds["data"]["password"].as_str().unwrap().to_string();
    assert!(user.starts_with("v-token-ro-") && user.len() <= 32, "OpenBao's MySQL username shape: {user}");
    assert!(my.login(&user, &pw).unwrap().starts_with(&format!("{user}@")));
    ok(&["lease", "renew", creds["lease_id"].as_str().unwrap()]);
    ok(&["lease", "revoke", creds["lease_id"].as_str().unwrap()]);
    assert!(!my.user_exists(&user), "revoking the lease drops the user");
    assert!(my.login(&user, &pw).is_err());

    // Expiry.
    ok(&["write", "database/roles/short", "db_name=my", &format!("creation_statements={CREATE}"), "default_ttl=2s"]);
    let creds = json(&ok(&["read", "-format=json", "database/creds/short"]));
    let user = creds["data"]["username"].as_str().unwrap().to_string();
    assert!(my.user_exists(&user));
    wait_until("the expired lease's user is dropped", Duration::from_secs(15), || !my.user_exists(&user));

    // Static role: taken over at creation, rotated on demand.
    ok(&["write", "database/static-roles/app", "db_name=my", &format!("username={static_user}"), "rotation_period=1h"]);
    let p1 = json(&ok(&["read", "-format=json", "database/static-creds/app"]))["data"]["password"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(my.login(&static_user, "initial-pw").is_err());
    assert!(my.login(&static_user, &p1).is_ok());
    ok(&["write", "-force", "database/rotate-role/app"]);
    let p2 = json(&ok(&["read", "-format=json", "database/static-creds/app"]))["data"]["password"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(p1, p2);
    assert!(my.login(&static_user, &p1).is_err(), "the old password fails");
    assert!(my.login(&static_user, &p2).is_ok(), "the new one works");

    // Root rotation on a connection of its own keeps the engine working.
    ok(&[
        "write",
        "database/config/rooted",
        "plugin_name=mysql-database-plugin",
        &format!("connection_url={}", my.templated_url()),
        &format!("username={root_user}"),
        "password=root-initial-pw",
        "allowed_roles=*",
    ]);
    ok(&["write", "database/roles/viaroot", "db_name=rooted", &format!("creation_statements={CREATE}")]);
    ok(&["write", "-force", "database/rotate-root/rooted"]);
    assert!(my.login(&root_user, "root-initial-pw").is_err(), "only the engine knows the root password now");
    let creds = json(&ok(&["read", "-format=json", "database/creds/viaroot"]));
    let user = creds["data"]["username"].as_str().unwrap();
    assert!(my.login(user, creds["data"]["password"].as_str().unwrap()).is_ok());
    ok(&["lease", "revoke", creds["lease_id"].as_str().unwrap()]);
    assert!(!my.user_exists(user));

    // TLS asked of a server without it is a clear configuration error.
    let tls_url = format!("{{{{username}}}}:{{{{password}}}}@tcp({}:{})/?tls=nonsense", my.host, my.port);
    let o = run(&[
        "write",
        "database/config/tls",
        "plugin_name=mysql-database-plugin",
        &format!("connection_url={tls_url}"),
        &format!("username={}", my.user),
        &format!("password={}", my.pw),
    ]);
    assert!(out(&o).contains("invalid tls parameter"), "{}", out(&o));
    ok(&["delete", "database/static-roles/app"]);
    my.admin(&format!("DROP USER IF EXISTS '{static_user}'@'%'; DROP USER IF EXISTS '{root_user}'@'%'"));
}
